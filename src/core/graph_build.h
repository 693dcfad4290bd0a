/*
 * graph_build.h — building an HNSW graph in memory with hnswlib on several threads.
 *
 * CREATE INDEX collects the decrypted vectors of one vault, then calls BuildGraph, which runs
 * hnswlib's addPoint from `threads` std::threads. The threads never call Postgres and every
 * exception stays inside this translation unit (it becomes a Status). The caller can cancel
 * (the bridge polls Postgres' interrupt flag and sets `cancel`) and watch progress.
 *
 * hnswlib details handled here (see PITFALLS.md): its headers define non-inline functions, so
 * they are included only in hnsw_build.cpp; its distance kernels are chosen at compile time, so
 * we plug in our own space that calls the run-time-dispatched kernels of core/distance.h; its
 * level generator is shared and unlocked, so levels are drawn by the caller (deterministic,
 * passed to addPoint) and hnswlib's own draw is neutralised (mult_ = 0 makes it 0 whatever the
 * racing generator returns). Its SSE prefetch reads one id past the end of a link list (benign,
 * inside malloc slack); the ASan build therefore compiles hnswlib with NO_MANUAL_VECTORIZATION.
 */
#pragma once
#include "core/pure.h"
#include "core/distance.h"
#include "core/hnsw_graph.h"
#include "core/status.h"

#include <atomic>
#include <cstdint>
#include <vector>

namespace vector_vault::hnsw
{

/* Inputs of one in-memory build (one vault's sub-graph). */
struct BuildRequest
{
	const float *vectors = nullptr; /* n * dims floats, already normalised for cosine */
	uint32_t n = 0;
	size_t dims = 0;
	int m = 16;
	int ef_construction = 64;
	DistanceKernel kernel = nullptr; /* the metric's kernel (metric.h); squared L2 when unset */
	const uint8_t *levels = nullptr; /* level of each element */
	int threads = 2;
	std::atomic<bool> *cancel = nullptr;       /* set by the caller to stop early */
	std::atomic<uint32_t> *progress = nullptr; /* elements added so far */
	/*
	 * When set, the calling thread does not add points itself: every 20 ms it calls
	 * poll(poll_arg, done) — the bridge reads Postgres' interrupt flag and reports progress
	 * there — and cancels the build when poll returns true.
	 */
	bool (*poll)(void *arg, uint32_t done) = nullptr; /* never raises: a Postgres error here
														 would unwind through C++ frames */
	void *poll_arg = nullptr;
	/* Test hook: starting build thread number fail_thread_start (from 0) fails as if the
	 * system had refused it (std::system_error); -1 (the default) never. */
	int fail_thread_start = -1;
};

/* The built graph in element order (element i is vectors[i]). */
struct BuiltGraph
{
	uint32_t n = 0;
	int m = 16;
	ElementId entry = kNoElement;
	int entry_level = -1;
	std::vector<uint8_t> levels;
	/* links0[i * (1 + 2m)] = count, followed by the ids */
	std::vector<uint32_t> links0;
	/* upper links: for element i with level L, upper_start[i] indexes L blocks of (1 + m) */
	std::vector<uint64_t> upper_start;
	std::vector<uint32_t> upper;

	/* Neighbour list of element i on layer (count returned, ids in *out). */
	int Links(uint32_t i, int layer, const uint32_t **out) const;
};

/* Builds the graph; Code::kInternal on hnswlib failure, kInvalidInput when cancelled. */
Status BuildGraph(const BuildRequest &req, BuiltGraph *out);

/*
 * Makes every element reachable from the entry point: each element no path reaches gets a
 * layer-0 link from its nearest reachable element (appended where there is room, else replacing
 * that element's farthest link). Returns how many elements were unreachable. hnswlib's heuristic
 * can strand elements, above all with inner product.
 */
Status RepairReachability(const BuildRequest &req, BuiltGraph *g, uint32_t *repaired);

/* Bytes an in-memory build of n vectors needs (hnswlib's arrays plus our copy), for budgets. */
size_t EstimateBuildBytes(uint64_t n, size_t dims, int m);

/* Allocates an empty BuiltGraph on the C++ heap (for owners tied to a memory context). */
BuiltGraph *NewBuiltGraph();

/* Frees a graph from NewBuiltGraph. */
void DeleteBuiltGraph(BuiltGraph *g);

} // namespace vector_vault::hnsw
