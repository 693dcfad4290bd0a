/*
 * graph_build.cpp — the only translation unit that includes hnswlib (see graph_build.h).
 */
#include "core/graph_build.h"

#include "core/distance.h"

#include <algorithm>
#include <exception>
#include <memory>
#include <string>
#include <chrono>
#include <mutex>
#include <system_error>
#include <thread>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-variable"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#include <hnswlib/hnswlib.h>
#pragma GCC diagnostic pop

namespace vector_vault::hnsw
{

namespace
{

/* An hnswlib space whose distance is our run-time-dispatched kernel. */
class KernelSpace : public hnswlib::SpaceInterface<float>
{
  public:
	KernelSpace(size_t dims, DistanceKernel kernel) : dims_(dims), kernel_(kernel) {}

	size_t get_data_size() override
	{
		return dims_ * sizeof(float);
	}

	hnswlib::DISTFUNC<float> get_dist_func() override
	{
		return &KernelSpace::Distance;
	}

	void *get_dist_func_param() override
	{
		return this;
	}

  private:
	/* hnswlib's distance callback. */
	static float Distance(const void *a, const void *b, const void *param)
	{
		const KernelSpace *s = static_cast<const KernelSpace *>(param);
		return s->kernel_(static_cast<const float *>(a), static_cast<const float *>(b), s->dims_);
	}

	size_t dims_;
	DistanceKernel kernel_;
};

} // namespace

/* Neighbour list of element i on a layer. */
int
BuiltGraph::Links(uint32_t i, int layer, const uint32_t **out) const
{
	const uint32_t *p;
	if (layer == 0)
		p = &links0[static_cast<size_t>(i) * (1 + 2 * m)];
	else
		p = &upper[upper_start[i] + static_cast<size_t>(layer - 1) * (1 + m)];
	*out = p + 1;
	return static_cast<int>(p[0]);
}

namespace
{

/* Graph accessor over a BuiltGraph and its vectors (for the search in RepairReachability). */
struct BuiltAccessor : FloatVectors<BuiltAccessor>
{
	const BuiltGraph *g;
	const float *vectors;
	size_t dims;

	const float *Vector(ElementId id) const
	{
		return vectors + static_cast<size_t>(id) * dims;
	}
	int Links(ElementId id, int layer, ElementId *out) const
	{
		if (layer > g->levels[id])
			return 0;
		const uint32_t *ids;
		int n = g->Links(id, layer, &ids);
		std::copy(ids, ids + n, out);
		return n;
	}
	int Level(ElementId id) const
	{
		return g->levels[id];
	}
	bool Deleted(ElementId) const
	{
		return false;
	}
	uint32_t Capacity() const
	{
		return g->n;
	}
	void Prefetch(ElementId id) const
	{
		__builtin_prefetch(Vector(id));
	}
	int InDegree(ElementId) const
	{
		return 2; /* unused by Search */
	}
};

/* Marks everything reachable from start through layer-0 links in seen (searches explore layer 0
 * only, after a greedy descent); returns how many were new. */
uint32_t
MarkReachable(const BuiltGraph &g, ElementId start, std::vector<uint8_t> *seen)
{
	if ((*seen)[start])
		return 0;
	std::vector<ElementId> stack{start};
	(*seen)[start] = 1;
	uint32_t n = 0;
	while (!stack.empty())
	{
		ElementId e = stack.back();
		stack.pop_back();
		n++;
		const uint32_t *ids;
		int c = g.Links(e, 0, &ids);
		for (int k = 0; k < c; k++)
			if (!(*seen)[ids[k]])
			{
				(*seen)[ids[k]] = 1;
				stack.push_back(ids[k]);
			}
	}
	return n;
}

} // namespace

static uint32_t RepairOnePass(const BuildRequest &req, BuiltGraph *g);

/* Links every unreachable element from its nearest reachable one. */
Status
RepairReachability(const BuildRequest &req, BuiltGraph *g, uint32_t *repaired)
{
	*repaired = 0;
	if (g->n == 0 || g->entry == kNoElement)
		return Status::Ok();
	try
	{
		/* A replaced link can strand another element; a few passes reach a fixed point. */
		for (int pass = 0; pass < 10; pass++)
		{
			uint32_t n = RepairOnePass(req, g);
			*repaired += n;
			if (n == 0)
				break;
		}
		return Status::Ok();
	}
	catch (const std::bad_alloc &)
	{
		return Status::Error(Code::kInternal, "out of memory while repairing the graph");
	}
}

/* The distance a request builds with: its kernel, else squared L2. */
static DistanceKernel
RequestKernel(const BuildRequest &req)
{
	if (req.kernel != nullptr)
		return req.kernel;
	return L2SquaredKernel();
}

/* One pass of RepairReachability. */
static uint32_t
RepairOnePass(const BuildRequest &req, BuiltGraph *g)
{
	std::vector<uint8_t> seen(g->n, 0);
	uint32_t reached = MarkReachable(*g, g->entry, &seen);
	if (reached == g->n)
		return 0;
	BuiltAccessor acc{{}, g, req.vectors, req.dims};
	GraphParams p;
	p.m = req.m;
	p.dims = req.dims;
	p.dist = RequestKernel(req);
	OwnedVisitedSet visited(g->n);
	const size_t stride0 = 1 + 2 * static_cast<size_t>(req.m);
	uint32_t repaired = 0;
	for (ElementId u = 0; u < g->n; u++)
	{
		if (seen[u])
			continue;
		repaired++;
		std::vector<Candidate> near =
			Search(acc, p, acc.Vector(u), g->entry, g->entry_level, 64, visited.get());
		ElementId target = kNoElement;
		for (const Candidate &c : near)
		{
			if (c.id == u || !seen[c.id])
				continue;
			if (target == kNoElement)
				target = c.id;
			if (g->links0[c.id * stride0] < 2u * req.m)
			{
				target = c.id;
				break;
			}
		}
		if (target == kNoElement)
			target = g->entry;
		uint32_t *list = &g->links0[target * stride0];
		if (list[0] < 2u * req.m)
			list[1 + list[0]++] = u;
		else
			list[list[0]] = u;
		reached += MarkReachable(*g, u, &seen);
	}
	return repaired;
}

/* Bytes a build of n vectors needs. */
size_t
EstimateBuildBytes(uint64_t n, size_t dims, int m)
{
	size_t per = 2 * dims * sizeof(float)              /* our copy + hnswlib's */
				 + 2 * (1 + 2 * m) * sizeof(uint32_t)  /* layer 0 links, twice */
				 + 64                                  /* labels, levels, locks */
				 + (1 + m) * sizeof(uint32_t) * 2 / m; /* expected upper layers */
	return static_cast<size_t>(n) * per + (1u << 20);
}

/* Allocates an empty graph. */
BuiltGraph *
NewBuiltGraph()
{
	return new (std::nothrow) BuiltGraph();
}

/* Frees a graph. */
void
DeleteBuiltGraph(BuiltGraph *g)
{
	delete g;
}

/* Joins a build's threads when it goes out of scope (after asking them to stop), so that no
 * joinable std::thread is ever destroyed. */
struct ThreadJoiner
{
	std::vector<std::thread> &threads;
	std::atomic<bool> &stop;

	/* Joins every thread still joinable. */
	void JoinAll()
	{
		for (std::thread &t : threads)
			if (t.joinable())
				t.join();
	}

	~ThreadJoiner()
	{
		bool any = false;
		for (std::thread &t : threads)
			any = any || t.joinable();
		if (any)
			stop = true;
		JoinAll();
	}
};

/* Runs hnswlib on req.threads threads and copies the graph out in element order. */
Status
BuildGraph(const BuildRequest &req, BuiltGraph *out)
{
	try
	{
		out->n = req.n;
		out->m = req.m;
		out->levels.assign(req.levels, req.levels + req.n);
		if (req.n == 0)
			return Status::Ok();
		KernelSpace space(req.dims, RequestKernel(req));
		auto index = std::make_unique<hnswlib::HierarchicalNSW<float>>(
			&space, req.n, static_cast<size_t>(req.m), static_cast<size_t>(req.ef_construction),
			100);
		/* Levels come from req.levels; hnswlib's shared generator must not matter. */
		index->mult_ = 0.0;
		std::atomic<uint32_t> next{0};
		std::atomic<bool> failed{false};
		std::string error;
		std::mutex error_lock;
		auto worker = [&]()
		{
			try
			{
				for (;;)
				{
					if (failed.load(std::memory_order_relaxed) ||
						(req.cancel && req.cancel->load(std::memory_order_relaxed)))
						return;
					uint32_t i = next.fetch_add(1);
					if (i >= req.n)
						return;
					index->addPoint(req.vectors + static_cast<size_t>(i) * req.dims, i,
									static_cast<int>(req.levels[i]));
					if (req.progress)
						req.progress->fetch_add(1, std::memory_order_relaxed);
				}
			}
			catch (const std::exception &e)
			{
				std::lock_guard<std::mutex> g(error_lock);
				error = e.what();
				failed = true;
			}
			catch (...)
			{
				std::lock_guard<std::mutex> g(error_lock);
				error = "unknown exception";
				failed = true;
			}
		};
		/* The first element alone, so the others always find an entry point. */
		index->addPoint(req.vectors, 0, static_cast<int>(req.levels[0]));
		next = 1;
		int nthreads = req.threads < 1 ? 1 : req.threads;
		std::vector<std::thread> threads;
		std::atomic<int> running{0};
		std::atomic<bool> polled_cancel{false};
		auto tracked = [&]()
		{
			worker();
			running.fetch_sub(1);
		};
		int spawn = req.poll ? nthreads : nthreads - 1;
		running = spawn;
		/* Every started thread is joined on every way out, an exception included: destroying a
		 * joinable std::thread calls std::terminate, which would restart the whole cluster. */
		ThreadJoiner joiner{threads, failed};
		for (int t = 0; t < spawn; t++)
		{
			try
			{
				if (t == req.fail_thread_start)
					throw std::system_error(
						std::make_error_code(std::errc::resource_unavailable_try_again));
				threads.emplace_back(tracked);
			}
			catch (const std::system_error &e)
			{
				/* The threads already started stop at their next element; the build fails. */
				std::lock_guard<std::mutex> g(error_lock);
				error = std::string("could not start build thread ") + std::to_string(t + 1) +
						" of " + std::to_string(spawn) + ": " + e.what();
				failed = true;
				running.fetch_sub(spawn - t);
				break;
			}
		}
		if (req.poll)
		{
			while (running.load() > 0)
			{
				std::this_thread::sleep_for(std::chrono::milliseconds(20));
				if (req.poll(req.poll_arg, next.load() > req.n ? req.n : next.load()))
				{
					polled_cancel = true;
					failed = true;
				}
			}
		}
		else if (!failed)
			worker();
		joiner.JoinAll();
		if (polled_cancel)
			return Status::Error(Code::kInvalidInput, "index build cancelled");
		if (failed)
			return Status::Error(Code::kInternal, "hnswlib failed: %s", error.c_str());
		if (req.cancel && req.cancel->load())
			return Status::Error(Code::kInvalidInput, "index build cancelled");

		/* Copy out, translating hnswlib's internal ids into element ids (labels). */
		std::vector<uint32_t> label_of(req.n);
		std::vector<uint32_t> internal_of(req.n);
		for (uint32_t in = 0; in < req.n; in++)
		{
			uint32_t label = static_cast<uint32_t>(index->getExternalLabel(in));
			label_of[in] = label;
			internal_of[label] = in;
		}
		const size_t stride0 = 1 + 2 * static_cast<size_t>(req.m);
		const size_t strideU = 1 + static_cast<size_t>(req.m);
		out->links0.assign(req.n * stride0, 0);
		out->upper_start.assign(req.n, 0);
		out->upper.clear();
		for (uint32_t e = 0; e < req.n; e++)
		{
			uint32_t in = internal_of[e];
			int level = index->element_levels_[in];
			out->levels[e] = static_cast<uint8_t>(level);
			unsigned int *ll = index->get_linklist0(in);
			unsigned int cnt = index->getListCount(ll);
			const unsigned int *ids = ll + 1;
			uint32_t *dst = &out->links0[e * stride0];
			dst[0] = cnt;
			for (unsigned int k = 0; k < cnt; k++)
				dst[1 + k] = label_of[ids[k]];
			out->upper_start[e] = out->upper.size();
			for (int l = 1; l <= level; l++)
			{
				unsigned int *ul = index->get_linklist(in, l);
				unsigned int uc = index->getListCount(ul);
				size_t base = out->upper.size();
				out->upper.resize(base + strideU, 0);
				out->upper[base] = uc;
				for (unsigned int k = 0; k < uc; k++)
					out->upper[base + 1 + k] = label_of[ul[1 + k]];
			}
		}
		out->entry = label_of[index->enterpoint_node_];
		out->entry_level = index->maxlevel_;
		return Status::Ok();
	}
	catch (const std::bad_alloc &)
	{
		return Status::Error(Code::kInternal, "out of memory while building the graph");
	}
	catch (const std::exception &e)
	{
		return Status::Error(Code::kInternal, "hnswlib failed: %s", e.what());
	}
}

} // namespace vector_vault::hnsw
