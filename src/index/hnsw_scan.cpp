/*
 * hnsw_scan.cpp — where a search starts: ORDER BY col <op> $1 LIMIT k on a vault_hnsw index.
 *
 * On the first amgettuple the query value (itself an evector) is decrypted — which checks that
 * the principal may read the query's vault — and the set of vaults the principal may read is
 * taken from the vault catalog. Then, holding the decrypted cache shared, each readable vault's
 * sub-graph is searched from its own entry point with ef = vector_vault.ef_search, and the
 * results are merged by distance. Other vaults' sub-graphs are never touched, so their data
 * cannot appear in results and their size does not change this query's latency or row count.
 *
 * When the executor wants more rows than the first round produced (a WHERE clause filtering
 * the index's output, or a large LIMIT), vector_vault.iterative_scan decides what happens, with
 * the settings and meanings of pgvector 0.8's hnsw.iterative_scan:
 *
 *   off            one round: at most ef_search rows per readable vault, then the scan ends.
 *   relaxed_order  (our default) the search is repeated with ef doubled and only rows not yet
 *                  returned are handed out; a later round can find a row closer than one an
 *                  earlier round already returned, so rows may come slightly out of order.
 *   strict_order   the same rounds, but a row closer than the last one returned is dropped
 *                  instead of being returned late: distances never decrease, at some cost in
 *                  recall (the same trade pgvector makes). Under the sq8 cache every candidate
 *                  of a round is re-ranked exactly first, so the order is the exact one.
 *
 * Rounds are bounded by vector_vault.max_scan_tuples: once the candidates gathered by all
 * rounds so far (ef per readable vault and round, whether returned, filtered or already seen)
 * reach it, no further round starts. Like pgvector's setting it is approximate (the round that
 * crosses it finishes, so the work is under three times the bound: rounds double) and it does
 * not shorten the first round. Without it a filter that matches nothing made the scan double ef
 * until it had walked every readable sub-graph. A further cap on a round's memory
 * (pgvector's scan_mem_multiplier) is not needed here: a round holds ef hits per vault, and ef
 * stops growing at max_scan_tuples.
 *
 * vault.last_hnsw_scan() reports the last scan this backend started: rounds, candidates,
 * rows returned and why it ended, so tests and users can see how much work a filter cost.
 * It reports counts only, over vaults the principal may read.
 */
#include "core/distance.h"
#include "core/secure.h"

#include <algorithm>
#include <cstring>

#include "index/hnsw.h"
#include "pg/guard.h"
#include "type/codec.h"
#include "vault/vault.h"

extern "C"
{
#include "access/relscan.h"
#include "pgstat.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/rel.h"
}

namespace vector_vault::index
{

int g_iterative_scan = kIterativeRelaxed;
int g_max_scan_tuples = kDefaultMaxScanTuples;

namespace
{

/* Why a scan stopped asking for rounds (vault.last_hnsw_scan().ended). */
enum class Ended : uint8
{
	kRunning = 0,   /* still open, or the executor stopped reading before the end */
	kOneRound = 1,  /* iterative_scan = off */
	kGraphDone = 2, /* a round found fewer candidates than ef: nothing more to find */
	kMaxTuples = 3, /* max_scan_tuples reached */
	kEfCeiling = 4, /* ef reached the hard ceiling */
	kNullQuery = 5  /* ORDER BY col <op> NULL: every row, once */
};

/* The counters of the last scan this backend started (vault.last_hnsw_scan()). */
struct LastScan
{
	int32 rounds;
	int64 candidates;
	int64 returned;
	int64 dropped; /* strict_order: rows dropped because a closer one came late */
	Ended ended;
};

LastScan g_last_scan;

/* One result: distance, element and heap TID. */
struct Hit
{
	float dist;
	ElementId id;
	ItemPointerData tid;
};

/* Scan state. */
struct ScanState
{
	MemoryContext ctx;
	bool have_query;
	bool searched;
	bool exhausted;
	bool counted; /* this scan is in pg_stat_*_indexes.idx_scan */
	float *query;
	uint32 dims;
	int ef;
	int mode;        /* iterative_scan at the first round */
	int64 tuples;    /* candidates gathered by all rounds */
	float last_dist; /* distance of the last row returned (strict_order) */
	bool any_returned;
	Hit *hits;
	int nhits;
	int pos;
	uint8 *returned; /* bitmap of element ids already returned */
	uint32 returned_bits;
	MemoryContextCallback zero_query;
};

/* Zeroes the decrypted query when the scan context goes away. */
void
ZeroQuery(void *arg) noexcept
{
	ScanState *s = static_cast<ScanState *>(arg);
	if (s->query != nullptr)
		SecureZero(s->query, sizeof(float) * s->dims);
}

/* Runs one vault's search in C++ and copies the hits out; false on an exception. */
bool
SearchIsland(const CacheGraph &g, const float *q, ElementId entry, int entry_level, int ef,
			 hnsw::VisitedSet *visited, hnsw::Candidate *out, int *n) noexcept
{
	EnterIsland(g);
	try
	{
		std::vector<hnsw::Candidate> found =
			hnsw::Search(g, g.params, q, entry, entry_level, ef, visited);
		int k = 0;
		for (const hnsw::Candidate &c : found)
			if (k < ef)
				out[k++] = c;
		*n = k;
		LeaveIsland(g);
		return true;
	}
	catch (...)
	{
		LeaveIsland(g);
		return false;
	}
}

/* True when an element was already returned by an earlier round. */
bool
WasReturned(const ScanState *s, ElementId id)
{
	return id < s->returned_bits && (s->returned[id >> 3] & (1 << (id & 7)));
}

/* Remembers a returned element. */
void
MarkReturned(ScanState *s, ElementId id)
{
	if (id >= s->returned_bits)
	{
		uint32 bits = Max(id + 1, s->returned_bits * 2);
		bits = (bits + 7) & ~7u;
		uint8 *fresh = static_cast<uint8 *>(MemoryContextAllocZero(s->ctx, bits / 8));
		if (s->returned)
			memcpy(fresh, s->returned, s->returned_bits / 8);
		s->returned = fresh;
		s->returned_bits = bits;
	}
	s->returned[id >> 3] |= static_cast<uint8>(1 << (id & 7));
}

/* Decrypts and prepares the query vector (read access to its vault is checked here). */
void
PrepareQuery(IndexScanDesc scan, ScanState *s)
{
	Relation index = scan->indexRelation;
	MetaData meta = ReadMeta(index);
	type::EnvelopeRef ref;
	type::ReadVectorEnvelope(scan->orderByData[0].sk_argument, &ref); /* evector or ehalfvec */
	uint32 dims = type::VectorDimsOf(ref);
	if (dims != meta.dims)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("different evector dimensions %u and %u", meta.dims, dims)));
	MemoryContext old = MemoryContextSwitchTo(s->ctx);
	s->query = static_cast<float *>(palloc(sizeof(float) * dims));
	s->dims = dims;
	MemoryContextSwitchTo(old);
	type::OpenVectorFloats(ref, s->query);
	(void) PrepareForMetric(static_cast<Metric>(meta.metric), s->query, dims);
	s->have_query = true;
}

/* True when vault_id is among the readable ids (sorted by SortReadable). */
bool
IsReadable(const uint64_t *readable, int nreadable, uint64_t vault_id)
{
	return std::binary_search(readable, readable + nreadable, vault_id);
}

/* Sorts the readable vault ids for IsReadable: a principal may read thousands of vaults. */
void
SortReadable(uint64_t *readable, int nreadable)
{
	std::sort(readable, readable + nreadable);
}

/* The readable vaults' sub-graphs in the cache directory. */
DirEntry *
ReadableSubgraphs(const CacheRef &ref, uint64_t *readable, int nreadable, int *n)
{
	SortReadable(readable, nreadable);
	int nv;
	const DirEntry *vaults = CachedVaults(ref, &nv);
	DirEntry *out = static_cast<DirEntry *>(palloc(sizeof(DirEntry) * Max(Min(nv, nreadable), 1)));
	int k = 0;
	for (int i = 0; i < nv && k < nreadable; i++)
		if (vaults[i].entry != kNoElement && IsReadable(readable, nreadable, vaults[i].vault_id))
			out[k++] = vaults[i];
	*n = k;
	return out;
}

/* One search round over every readable vault with the current ef. */
void
SearchRound(IndexScanDesc scan, ScanState *s)
{
	Relation index = scan->indexRelation;
	int nreadable;
	uint64_t *readable = vault::ReadableVaults(&nreadable);
	MemoryContext old = MemoryContextSwitchTo(s->ctx);
	int cap = Max(s->ef, 1) * Max(nreadable, 1);
	Hit *hits = static_cast<Hit *>(palloc(sizeof(Hit) * cap));
	hnsw::Candidate *found =
		static_cast<hnsw::Candidate *>(palloc(sizeof(hnsw::Candidate) * s->ef));
	MemoryContextSwitchTo(old);
	int nhits = 0;
	bool more_possible = false;
	bool failed = false;

	CacheRef ref = AcquireCacheFor(index, false, readable, nreadable);
	CacheGraph g = GraphOf(ref);
	int nsub;
	DirEntry *subgraphs = ReadableSubgraphs(ref, readable, nreadable, &nsub);
	for (int i = 0; i < nsub && !failed; i++)
	{
		DirEntry d = subgraphs[i];
		int n = 0;
		if (!SearchIsland(g, s->query, d.entry, d.entry_level, s->ef,
						  BackendVisitedSet(g.Capacity()), found, &n))
		{
			failed = true;
			break;
		}
		/* A full round may have missed rows; the directory's count is only a statistic (a
		 * crash can leave it stale until VACUUM), so it does not end the iteration. */
		if (n >= s->ef)
			more_possible = true;
		for (int k = 0; k < n && nhits < cap; k++)
		{
			CachedElement ce;
			if (!GetCachedElement(ref, found[k].id, &ce) || ce.deleted || ce.vault_id != d.vault_id)
				continue;
			hits[nhits++] = {found[k].dist, found[k].id, ce.tid};
		}
	}
	pfree(subgraphs);
	if (failed)
	{
		RethrowGraphError(g);
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory during vault_hnsw search")));
	}
	auto closer = [](const Hit &a, const Hit &b)
	{
		return a.dist < b.dist || (a.dist == b.dist && a.id < b.id);
	};
	std::sort(hits, hits + nhits, closer);
	/* sq8 and sq4 distances are approximate: the closest ef (sq4: every hit) get exact ones
	 * from their sealed vectors. */
	if (IsQuantized(CachedRepresentation(ref)))
	{
		int top = s->mode == kIterativeStrict || CachedRepresentation(ref) == Representation::kSq4
					  ? nhits
					  : Min(nhits, s->ef);
		for (int k = 0; k < top; k++)
			hits[k].dist = ExactDistance(g, s->query, hits[k].id);
		std::sort(hits, hits + top, closer);
	}
	ReleaseCache(&ref);
	s->hits = hits;
	s->nhits = nhits;
	s->pos = 0;
	s->tuples += nhits;
	g_last_scan.rounds++;
	g_last_scan.candidates = s->tuples;
	if (s->mode == kIterativeOff)
		g_last_scan.ended = Ended::kOneRound;
	else if (!more_possible)
		g_last_scan.ended = Ended::kGraphDone;
	else if (s->tuples >= g_max_scan_tuples)
		g_last_scan.ended = Ended::kMaxTuples;
	else if (s->ef >= kMaxEfSearch * 64)
		g_last_scan.ended = Ended::kEfCeiling;
	s->exhausted = g_last_scan.ended != Ended::kRunning;
	pfree(readable);
}

/* All live elements of the readable vaults (for a NULL query). */
void
ListAll(IndexScanDesc scan, ScanState *s)
{
	int nreadable;
	uint64_t *readable = vault::ReadableVaults(&nreadable);
	SortReadable(readable, nreadable);
	/* the readable vaults' element facts, nothing decrypted */
	CacheRef ref = AcquireCacheFor(scan->indexRelation, false, readable, nreadable, true);
	uint32 n = CachedElements(ref);
	Hit *hits = static_cast<Hit *>(MemoryContextAlloc(s->ctx, sizeof(Hit) * Max(n, 1u)));
	int k = 0;
	for (ElementId id = 0; id < n; id++)
	{
		CachedElement ce;
		if (!GetCachedElement(ref, id, &ce) || ce.deleted)
			continue;
		if (IsReadable(readable, nreadable, ce.vault_id))
			hits[k++] = {0.0f, id, ce.tid};
	}
	ReleaseCache(&ref);
	s->hits = hits;
	s->nhits = k;
	s->pos = 0;
	pfree(readable);
}

} // namespace

/* ambeginscan. */
IndexScanDesc
hnsw_beginscan(Relation index, int nkeys, int norderbys) noexcept
{
	IndexScanDesc scan = RelationGetIndexScan(index, nkeys, norderbys);
	ScanState *s = static_cast<ScanState *>(palloc0(sizeof(ScanState)));
	s->ctx = AllocSetContextCreate(CurrentMemoryContext, "vault_hnsw scan", ALLOCSET_DEFAULT_SIZES);
	s->zero_query.func = ZeroQuery;
	s->zero_query.arg = s;
	MemoryContextRegisterResetCallback(s->ctx, &s->zero_query);
	scan->opaque = s;
	return scan;
}

/* amrescan: new order-by value, fresh state. */
void
hnsw_rescan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys, int norderbys) noexcept
{
	ScanState *s = static_cast<ScanState *>(scan->opaque);
	if (keys && scan->numberOfKeys > 0)
		memmove(scan->keyData, keys, scan->numberOfKeys * sizeof(ScanKeyData));
	if (orderbys && scan->numberOfOrderBys > 0)
		memmove(scan->orderByData, orderbys, scan->numberOfOrderBys * sizeof(ScanKeyData));
	(void) nkeys;
	(void) norderbys;
	MemoryContextReset(s->ctx);
	MemoryContextRegisterResetCallback(s->ctx, &s->zero_query);
	s->query = nullptr;
	s->have_query = false;
	s->searched = false;
	s->exhausted = false;
	s->counted = false;
	s->hits = nullptr;
	s->nhits = 0;
	s->pos = 0;
	s->returned = nullptr;
	s->returned_bits = 0;
	s->ef = g_ef_search;
	s->mode = g_iterative_scan;
	s->tuples = 0;
	s->last_dist = 0;
	s->any_returned = false;
	g_last_scan = LastScan{};
}

/* amgettuple: the next closest row. */
bool
hnsw_gettuple(IndexScanDesc scan, ScanDirection dir) noexcept
{
	ScanState *s = static_cast<ScanState *>(scan->opaque);
	if (!ScanDirectionIsForward(dir))
		elog(ERROR, "vault_hnsw supports only forward scans");
	if (scan->numberOfOrderBys == 0)
		return false;
	/* One index scan per rescan, as btree and pgvector count them (issue 11: idx_scan stayed 0,
	 * so "unused index" advice said to drop vault_hnsw indexes). */
	if (!s->counted)
	{
		pgstat_count_index_scan(scan->indexRelation);
		s->counted = true;
	}
	if (scan->orderByData[0].sk_flags & SK_ISNULL)
	{
		/* ORDER BY col <-> NULL: every distance is NULL, so every row, in no particular order. */
		if (!s->searched)
		{
			ListAll(scan, s);
			s->searched = true;
			s->exhausted = true;
			g_last_scan.ended = Ended::kNullQuery;
		}
	}
	else if (!s->have_query)
		PrepareQuery(scan, s);
	for (;;)
	{
		if (!s->searched)
		{
			SearchRound(scan, s);
			s->searched = true;
		}
		while (s->pos < s->nhits)
		{
			Hit &h = s->hits[s->pos++];
			if (WasReturned(s, h.id))
				continue;
			MarkReturned(s, h.id);
			/* strict_order: a row found late that is closer than one already returned is
			 * dropped, so distances never go down (pgvector does the same). */
			if (s->mode == kIterativeStrict && s->any_returned && h.dist < s->last_dist)
			{
				g_last_scan.dropped++;
				continue;
			}
			s->last_dist = h.dist;
			s->any_returned = true;
			g_last_scan.returned++;
			scan->xs_heaptid = h.tid;
			scan->xs_recheck = false;
			scan->xs_recheckorderby = false;
			return true;
		}
		if (s->exhausted)
			return false;
		s->ef *= 2;
		s->searched = false;
		CHECK_FOR_INTERRUPTS();
	}
}

/* Defines vector_vault.iterative_scan and vector_vault.max_scan_tuples (from _PG_init). */
void
DefineScanGucs()
{
	static const struct config_enum_entry modes[] = {{"off", kIterativeOff, false},
													 {"relaxed_order", kIterativeRelaxed, false},
													 {"strict_order", kIterativeStrict, false},
													 {nullptr, 0, false}};
	DefineCustomEnumVariable(
		"vector_vault.iterative_scan",
		"What a vault_hnsw scan does when the executor wants more rows than ef_search gave: "
		"off (stop), relaxed_order (search again with a larger ef; rows may come slightly out "
		"of order) or strict_order (search again; rows never out of order).",
		"As pgvector's hnsw.iterative_scan; rounds stop at vector_vault.max_scan_tuples.",
		&g_iterative_scan, kIterativeRelaxed, modes, PGC_USERSET, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable(
		"vector_vault.max_scan_tuples",
		"Candidates a vault_hnsw iterative scan may gather before it starts no further round.",
		"Approximate, and the first round is never shortened (as pgvector's "
		"hnsw.max_scan_tuples).",
		&g_max_scan_tuples, kDefaultMaxScanTuples, 1, INT_MAX, PGC_USERSET, 0, nullptr, nullptr,
		nullptr);
}

/* amendscan. */
void
hnsw_endscan(IndexScanDesc scan) noexcept
{
	ScanState *s = static_cast<ScanState *>(scan->opaque);
	MemoryContextDelete(s->ctx);
	pfree(s);
	scan->opaque = nullptr;
}

} // namespace vector_vault::index

/* vault.last_hnsw_scan(): counters of the last vault_hnsw scan this backend started. */
VV_FUNCTION(vault_last_hnsw_scan)
{
	using vector_vault::index::Ended;
	using vector_vault::index::g_last_scan;
	static const char *const kEnded[] = {"running",         "off",        "graph_done",
										 "max_scan_tuples", "ef_ceiling", "null_query"};
	TupleDesc desc;
	if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("vault.last_hnsw_scan must return a record"),
						errhint("Call it as SELECT * FROM vault.last_hnsw_scan().")));
	desc = BlessTupleDesc(desc);
	Datum values[5] = {Int32GetDatum(g_last_scan.rounds), Int64GetDatum(g_last_scan.candidates),
					   Int64GetDatum(g_last_scan.returned), Int64GetDatum(g_last_scan.dropped),
					   CStringGetTextDatum(kEnded[static_cast<int>(g_last_scan.ended)])};
	bool nulls[5] = {false, false, false, false, false};
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
