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
 * the index's output, or a large LIMIT), the search is repeated with ef doubled and only new
 * rows are returned, until a round finds nothing new. Such later rows may arrive slightly out of
 * order, as with pgvector's iterative scans.
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
#include "utils/memutils.h"
#include "utils/rel.h"
}

namespace vector_vault::index
{

namespace
{

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
	Hit *hits;
	int nhits;
	int pos;
	uint8 *returned; /* bitmap of element ids already returned */
	uint32 returned_bits;
	MemoryContextCallback zero_query;
};

/* Zeroes the decrypted query when the scan context goes away. */
void
ZeroQuery(void *arg)
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
	type::ReadEnvelope(scan->orderByData[0].sk_argument, ValueKind::kVector, &ref);
	uint32 dims = ref.header.payload_len / sizeof(float);
	if (dims != meta.dims)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("different evector dimensions %u and %u", meta.dims, dims)));
	MemoryContext old = MemoryContextSwitchTo(s->ctx);
	s->query = static_cast<float *>(palloc(sizeof(float) * dims));
	s->dims = dims;
	MemoryContextSwitchTo(old);
	type::OpenValue(ref, reinterpret_cast<uint8_t *>(s->query));
	if (static_cast<Metric>(meta.metric) == Metric::kCosine)
		(void) NormalizeVector(s->query, dims);
	s->have_query = true;
}

/* The readable vaults' sub-graphs in the cache directory (sorting the readable ids first keeps
 * this O(vaults log readable) for a principal who reads thousands of vaults). */
DirEntry *
ReadableSubgraphs(const CacheRef &ref, uint64_t *readable, int nreadable, int *n)
{
	std::sort(readable, readable + nreadable);
	int nv;
	const DirEntry *vaults = CachedVaults(ref, &nv);
	DirEntry *out = static_cast<DirEntry *>(palloc(sizeof(DirEntry) * Max(Min(nv, nreadable), 1)));
	int k = 0;
	for (int i = 0; i < nv && k < nreadable; i++)
		if (vaults[i].entry != kNoElement &&
			std::binary_search(readable, readable + nreadable, vaults[i].vault_id))
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
	/* sq8 distances are approximate: the closest ef get exact ones from their sealed vectors. */
	if (CachedRepresentation(ref) == Representation::kSq8)
	{
		int top = Min(nhits, s->ef);
		for (int k = 0; k < top; k++)
			hits[k].dist = ExactDistance(g, s->query, hits[k].id);
		std::sort(hits, hits + top, closer);
	}
	ReleaseCache(&ref);
	s->hits = hits;
	s->nhits = nhits;
	s->pos = 0;
	s->exhausted = !more_possible || s->ef >= kMaxEfSearch * 64;
	pfree(readable);
}

/* All live elements of the readable vaults (for a NULL query). */
void
ListAll(IndexScanDesc scan, ScanState *s)
{
	int nreadable;
	uint64_t *readable = vault::ReadableVaults(&nreadable);
	static const uint64 kNoVault = 0;
	CacheRef ref = AcquireCacheFor(scan->indexRelation, false, &kNoVault, 0); /* facts only */
	uint32 n = CachedElements(ref);
	Hit *hits = static_cast<Hit *>(MemoryContextAlloc(s->ctx, sizeof(Hit) * Max(n, 1u)));
	int k = 0;
	for (ElementId id = 0; id < n; id++)
	{
		CachedElement ce;
		if (!GetCachedElement(ref, id, &ce) || ce.deleted)
			continue;
		for (int r = 0; r < nreadable; r++)
			if (readable[r] == ce.vault_id)
			{
				hits[k++] = {0.0f, id, ce.tid};
				break;
			}
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
hnsw_beginscan(Relation index, int nkeys, int norderbys)
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
hnsw_rescan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys, int norderbys)
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
}

/* amgettuple: the next closest row. */
bool
hnsw_gettuple(IndexScanDesc scan, ScanDirection dir)
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

/* amendscan. */
void
hnsw_endscan(IndexScanDesc scan)
{
	ScanState *s = static_cast<ScanState *>(scan->opaque);
	MemoryContextDelete(s->ctx);
	pfree(s);
	scan->opaque = nullptr;
}

} // namespace vector_vault::index
