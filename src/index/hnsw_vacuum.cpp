/*
 * hnsw_vacuum.cpp — VACUUM for vault_hnsw: deleted rows leave the graph.
 *
 * ambulkdelete, holding the writers' lock:
 *   1. reads every element record's heap TID (plaintext header, no decryption) and asks VACUUM
 *      which are dead;
 *   2. with the decrypted cache, recomputes the neighbour list of every live element that
 *      pointed at a dead one (candidates: its live neighbours and the live neighbours of the
 *      dead ones, filtered by the heuristic), and picks a new entry point for any vault whose
 *      entry died;
 *   3. re-seals the repaired lists, then the dead elements with the deleted flag and empty lists
 *      (so they are unreachable and their old neighbour lists are gone from the page), writes
 *      the directory and bumps the metapage counter; readers then revalidate the changed pages.
 * amvacuumcleanup, every VACUUM: repairs what an interrupted VACUUM left (links to flagged
 * elements, stale directory entries; RepairAndWrite explains the write order that bounds this),
 * then relinks live elements that no path reaches (RelinkUnreachable).
 * Dead elements' sealed vectors are overwritten with zeros (WAL-logged), so after VACUUM the
 * index pages hold no decryptable copy of a deleted row. Their space is not reused (REINDEX
 * compacts).
 */
#include "core/secure.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "index/hnsw.h"
#include "pg/guard.h"
#include "pg/secret.h"

extern "C"
{
#include "access/genam.h"
#include "access/generic_xlog.h"
#include "commands/vacuum.h"
#include "storage/bufmgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"
}

namespace vector_vault::index
{

namespace
{

/* A cache view in which the elements about to be deleted already count as deleted. */
struct VacuumGraph
{
	const CacheGraph *base;
	const uint8 *dead; /* bitmap by element id */
	uint32 dead_bits;

	float Dist(const hnsw::GraphParams &p, const float *q, ElementId id) const
	{
		return base->Dist(p, q, id);
	}
	float PairDist(const hnsw::GraphParams &p, ElementId a, ElementId b) const
	{
		return base->PairDist(p, a, b);
	}
	int Links(ElementId id, int layer, ElementId *out) const
	{
		return base->Links(id, layer, out);
	}
	int Level(ElementId id) const
	{
		return base->Level(id);
	}
	bool Deleted(ElementId id) const
	{
		return base->Deleted(id) || (id < dead_bits && (dead[id >> 3] & (1 << (id & 7))));
	}
	uint32_t Capacity() const
	{
		return base->Capacity();
	}
	void Prefetch(ElementId id) const
	{
		base->Prefetch(id);
	}
	int InDegree(ElementId id) const
	{
		return base->InDegree(id);
	}
};

/* Bumps only the metapage's change counter, so readers revalidate the pages VACUUM changed. */
void
BumpCounter(Relation index)
{
	Buffer mbuf = ReadBuffer(index, kMetaBlock);
	LockBuffer(mbuf, BUFFER_LOCK_EXCLUSIVE);
	MetaData same = *MetaOf(BufferGetPage(mbuf));
	BumpMeta(index, mbuf, same);
	UnlockReleaseBuffer(mbuf);
}

/* Calls fn(header, block, offset) for every element record on the graph pages: plaintext headers
 * only, no decryption. Used to find dead elements and to count live ones. */
template <typename Fn>
void
ForEachElementHeader(Relation index, BufferAccessStrategy strategy, Fn fn)
{
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	for (BlockNumber b = 1; b < nblocks; b++)
	{
		vacuum_delay_point();
		Buffer buf = ReadBufferExtended(index, MAIN_FORKNUM, b, RBM_NORMAL, strategy);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		Page page = BufferGetPage(buf);
		if (!PageIsNew(page) && GetOpaque(page)->kind == kGraphPage)
		{
			OffsetNumber max = PageGetMaxOffsetNumber(page);
			for (OffsetNumber off = FirstOffsetNumber; off <= max; off++)
			{
				ItemId iid = PageGetItemId(page, off);
				if (!ItemIdIsUsed(iid) || ItemIdGetLength(iid) < sizeof(ElementHeader))
					continue;
				ElementHeader h;
				memcpy(&h, PageGetItem(page, iid), sizeof(h));
				fn(h, b, off);
			}
		}
		UnlockReleaseBuffer(buf);
	}
}

/* Repairs one list in C++ and copies it out; false on an exception. */
bool
RepairIsland(const VacuumGraph &g, const hnsw::GraphParams &p, ElementId id, int layer,
			 uint32 *out) noexcept
{
	EnterIsland(*g.base);
	try
	{
		std::vector<ElementId> fresh = hnsw::RepairLinks(g, p, id, layer);
		out[0] = static_cast<uint32>(fresh.size());
		std::copy(fresh.begin(), fresh.end(), out + 1);
		LeaveIsland(*g.base);
		return true;
	}
	catch (...)
	{
		LeaveIsland(*g.base);
		return false;
	}
}

/* Location and id of a dead element found on the pages. */
struct Dead
{
	ElementId id;
	BlockNumber block;
	OffsetNumber off;
	uint8 level;
	BlockNumber vec_block;
	uint32 vec_offset;
};

/* Grows a rewrite array by one slot. */
ElementRewrite *
NextRewrite(ElementRewrite **rw, int *nrw, int *cap)
{
	if (*nrw == *cap)
	{
		*cap *= 2;
		*rw = static_cast<ElementRewrite *>(repalloc(*rw, sizeof(ElementRewrite) * *cap));
	}
	return &(*rw)[(*nrw)++];
}

/*
 * Repairs the lists around the dead elements (and around elements already flagged deleted, which
 * a crashed VACUUM can leave linked), recomputes the directory, and writes every changed page;
 * false when nothing needed writing (see file comment).
 *
 * Write order is what makes a crash anywhere harmless: first the live elements' repaired lists
 * (after which no live element links to a dead one), then the dead elements' deleted flags, the
 * vector scrubs, the directory and the metapage. A crash before the flags leaves dead elements
 * unflagged, and the next VACUUM finds them again (their heap tuples are still dead); a crash
 * after leaves a stale directory, which the cleanup pass of every VACUUM recomputes.
 */
bool
RepairAndWrite(Relation index, const MetaData &meta, const Dead *dead, int ndead,
			   const CacheRef &ref)
{
	const int m = meta.m;
	CacheGraph base = GraphOf(ref);
	base.params.ef_construction = meta.ef_construction;
	uint32 bits = base.Capacity();
	uint8 *deadmap = static_cast<uint8 *>(palloc0(bits / 8 + 1));
	for (int i = 0; i < ndead; i++)
		if (dead[i].id < bits)
			deadmap[dead[i].id >> 3] |= static_cast<uint8>(1 << (dead[i].id & 7));
	VacuumGraph g{&base, deadmap, bits};
	uint32 nelem = CachedElements(ref);

	int rcap = 256, nrw = 0;
	ElementRewrite *rw = static_cast<ElementRewrite *>(palloc(sizeof(ElementRewrite) * rcap));
	ElementId links_buf[2 * hnsw::kMaxM];
	for (ElementId id = 0; id < nelem; id++)
	{
		if (g.Deleted(id))
			continue;
		CachedElement ce;
		if (!GetCachedElement(ref, id, &ce))
			continue;
		uint32 *all = nullptr;
		for (int l = 0; l <= ce.level; l++)
		{
			int n = base.Links(id, l, links_buf);
			bool touches = false;
			for (int k = 0; k < n && !touches; k++)
				touches = g.Deleted(links_buf[k]);
			if (!touches)
				continue;
			if (all == nullptr)
			{
				all = static_cast<uint32 *>(palloc(LinksBytes(m, ce.level)));
				CacheGetAllLinks(ref, id, all);
			}
			uint32 *dst = l == 0 ? all : all + (1 + 2 * m) + (l - 1) * (1 + m);
			if (!RepairIsland(g, base.params, id, l, dst))
			{
				RethrowGraphError(base);
				ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY),
								errmsg("out of memory repairing vault_hnsw")));
			}
		}
		if (all != nullptr)
			*NextRewrite(&rw, &nrw, &rcap) = {id,  ce.graph_block,   ce.graph_off, 0,
											  all, InvalidXLogRecPtr};
		if ((id & 4095) == 0)
			vacuum_delay_point();
	}
	const int nlive = nrw;
	/* Dead elements: deleted flag, empty lists. */
	for (int i = 0; i < ndead; i++)
	{
		uint32 *empty = static_cast<uint32 *>(palloc0(LinksBytes(m, dead[i].level)));
		*NextRewrite(&rw, &nrw, &rcap) = {dead[i].id,      dead[i].block, dead[i].off,
										  kElementDeleted, empty,         InvalidXLogRecPtr};
	}
	/* Live counts and entry points per vault, in one pass over the elements. */
	int nv;
	const DirEntry *vaults = CachedVaults(ref, &nv);
	DirEntry *dir = static_cast<DirEntry *>(palloc(sizeof(DirEntry) * Max(nv, 1)));
	memcpy(dir, vaults, sizeof(DirEntry) * nv);
	uint32 *live = static_cast<uint32 *>(palloc0(sizeof(uint32) * Max(nv, 1)));
	ElementId *best = static_cast<ElementId *>(palloc(sizeof(ElementId) * Max(nv, 1)));
	int *best_level = static_cast<int *>(palloc(sizeof(int) * Max(nv, 1)));
	for (int v = 0; v < nv; v++)
	{
		best[v] = kNoElement;
		best_level[v] = -1;
	}
	for (ElementId id = 0; id < nelem; id++)
	{
		CachedElement ce;
		if (!GetCachedElement(ref, id, &ce) || g.Deleted(id) || ce.vault_index < 0 ||
			ce.vault_index >= nv)
			continue;
		live[ce.vault_index]++;
		if (static_cast<int>(ce.level) > best_level[ce.vault_index])
		{
			best[ce.vault_index] = id;
			best_level[ce.vault_index] = ce.level;
		}
	}
	bool dir_changed = false;
	for (int v = 0; v < nv; v++)
	{
		bool entry_dead = dir[v].entry != kNoElement && g.Deleted(dir[v].entry);
		if (entry_dead || live[v] == 0)
		{
			dir[v].entry = best[v];
			dir[v].entry_level = static_cast<int16>(best_level[v]);
		}
		dir[v].count = live[v];
		dir_changed |= dir[v].entry != vaults[v].entry ||
					   dir[v].entry_level != vaults[v].entry_level ||
					   dir[v].count != vaults[v].count;
	}
	if (nrw == 0 && !dir_changed)
		return false;

	/* 3. pages, live lists first (see above) */
	auto by_block = [](const ElementRewrite &a, const ElementRewrite &b)
	{
		return a.block < b.block;
	};
	std::sort(rw, rw + nlive, by_block);
	std::sort(rw + nlive, rw + nrw, by_block);
	RewriteElements(index, m, rw, nlive);
	RewriteElements(index, m, rw + nlive, nrw - nlive);
	/* The dead elements' sealed vectors leave the pages too: no decryptable copy remains. */
	for (int i = 0; i < ndead; i++)
		ScrubVectorLogged(index, dead[i].vec_block, dead[i].vec_offset,
						  VectorRecordBytes(meta.dims, WidthOf(meta)));
	/* Directory entries, one page at a time. */
	BlockNumber block = meta.first_dir_block;
	while (block != InvalidBlockNumber)
	{
		Buffer buf = ReadBuffer(index, block);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		GenericXLogState *state = GenericXLogStart(index);
		Page page = GenericXLogRegisterBuffer(state, buf, 0);
		int k = static_cast<int>(
			(reinterpret_cast<PageHeader>(page)->pd_lower - MAXALIGN(SizeOfPageHeaderData)) /
			sizeof(DirEntry));
		DirEntry *e = reinterpret_cast<DirEntry *>(PageGetContents(page));
		for (int i = 0; i < k; i++)
			for (int v = 0; v < nv; v++)
				if (dir[v].vault_id == e[i].vault_id)
				{
					/* entry point and count; the vault locator stays as the build wrote it */
					e[i].entry = dir[v].entry;
					e[i].entry_level = dir[v].entry_level;
					e[i].count = dir[v].count;
				}
		block = GetOpaque(page)->next;
		GenericXLogFinish(state);
		UnlockReleaseBuffer(buf);
	}
	BumpCounter(index);
	return true;
}

/* Rewrites the relinked lists and bumps the metapage; the cache then revalidates. */
void
GuardedRelink(Relation index, int m, ElementRewrite *rw, int nrw, const CacheRef &ref)
{
	PG_TRY();
	{
		RewriteElements(index, m, rw, nrw);
		BumpCounter(index);
	}
	PG_CATCH();
	{
		CacheMarkInvalid(ref);
		PG_RE_THROW();
	}
	PG_END_TRY();
	CacheMarkInvalid(ref);
}

/* Runs RepairAndWrite, marking the cache stale if it fails half-way; true when it wrote. */
bool
GuardedRepair(Relation index, const MetaData &meta, const Dead *dead, int ndead,
			  const CacheRef &ref)
{
	bool wrote = false;
	PG_TRY();
	{
		wrote = RepairAndWrite(index, meta, dead, ndead, ref);
	}
	PG_CATCH();
	{
		CacheMarkInvalid(ref);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return wrote;
}

/* Repairs what a crashed VACUUM can leave: live lists that still link to elements flagged
 * deleted, and a directory whose counts or entry points are stale. Writes only when needed. */
void
RepairLeftovers(Relation index)
{
	LockIndexForWrite(index);
	MetaData meta = ReadMeta(index);
	CacheRef ref = AcquireCache(index, false);
	if (GuardedRepair(index, meta, nullptr, 0, ref))
	{
		CacheMarkInvalid(ref);
		ereport(DEBUG1, (errmsg("vault_hnsw VACUUM repaired links or directory entries left by "
								"an interrupted VACUUM")));
	}
	ReleaseCache(&ref);
	UnlockIndexForWrite(index);
}

} // namespace

/* ambulkdelete. */
IndexBulkDeleteResult *
hnsw_bulkdelete(IndexVacuumInfo *info, IndexBulkDeleteResult *stats,
				IndexBulkDeleteCallback callback, void *callback_state) noexcept
{
	Relation index = info->index;
	if (stats == nullptr)
		stats = static_cast<IndexBulkDeleteResult *>(palloc0(sizeof(IndexBulkDeleteResult)));
	LockIndexForWrite(index);
	MetaData meta = ReadMeta(index);

	/* 1. find dead elements from the plaintext headers */
	int cap = 256, ndead = 0;
	Dead *dead = static_cast<Dead *>(palloc(sizeof(Dead) * cap));
	ForEachElementHeader(index, info->strategy,
						 [&](const ElementHeader &h, BlockNumber b, OffsetNumber off)
						 {
							 if (h.flags & kElementDeleted)
								 return;
							 if (!callback(const_cast<ItemPointer>(&h.heap_tid), callback_state))
							 {
								 stats->num_index_tuples += 1;
								 return;
							 }
							 if (ndead == cap)
							 {
								 cap *= 2;
								 dead = static_cast<Dead *>(repalloc(dead, sizeof(Dead) * cap));
							 }
							 dead[ndead++] = {h.element_id, b,           off,
											  h.level,      h.vec_block, h.vec_offset};
						 });
	stats->num_pages = RelationGetNumberOfBlocks(index);
	if (ndead == 0)
	{
		UnlockIndexForWrite(index);
		return stats;
	}

	/* 2 and 3: repair with the cache, then write the pages */
	CacheRef ref = AcquireCache(index, false);
	GuardedRepair(index, meta, dead, ndead, ref);
	/* Readers revalidate the pages this VACUUM changed. */
	CacheMarkInvalid(ref);
	ReleaseCache(&ref);
	stats->tuples_removed += ndead;
	UnlockIndexForWrite(index);
	return stats;
}

/* Counts live elements of a vault under one key version from the plaintext record headers. */
uint64
CountLiveElements(Relation index, uint64 vault_id, uint32 key_version)
{
	uint64 n = 0;
	ForEachElementHeader(index, nullptr,
						 [&](const ElementHeader &h, BlockNumber, OffsetNumber)
						 {
							 if (!(h.flags & kElementDeleted) && h.vault_id == vault_id &&
								 h.key_version == key_version)
								 n++;
						 });
	return n;
}

namespace
{

/* Nearest elements to q in a vault (C++ search, copied out); false on an exception. */
bool
NearestIsland(const CacheGraph &g, const float *q, ElementId entry, int entry_level, ElementId *out,
			  int *n) noexcept
{
	EnterIsland(g);
	try
	{
		std::vector<hnsw::Candidate> found =
			hnsw::Search(g, g.params, q, entry, entry_level, 64, BackendVisitedSet(g.Capacity()));
		int k = 0;
		for (const hnsw::Candidate &c : found)
			if (k < 64)
				out[k++] = c.id;
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

/* Marks everything reachable from start through layer-0 links in seen. A search descends the
 * upper layers greedily to one start point and then explores layer 0 only, so an element that
 * only upper-layer links reach is invisible to every search that does not start on it. */
void
MarkReachable(const CacheGraph &g, ElementId start, uint8 *seen, ElementId *stack)
{
	if (seen[start])
		return;
	int sp = 0;
	stack[sp++] = start;
	seen[start] = 1;
	ElementId links[2 * hnsw::kMaxM];
	while (sp > 0)
	{
		ElementId e = stack[--sp];
		int c = g.Links(e, 0, links);
		for (int k = 0; k < c; k++)
			if (!seen[links[k]])
			{
				seen[links[k]] = 1;
				stack[sp++] = links[k];
			}
	}
}

/* Elements with at most this many layer-0 inbound links are checked by a search for their own
 * vector after each VACUUM. */
constexpr int kWeakInDegree = 4;

/* Pending rewrites of one relink pass: the lists of elements that gain an inbound link. */
struct RelinkBatch
{
	const CacheRef *ref;
	int m;
	ElementRewrite *rw;
	int n;
	int cap;
};

/* The pending list of t (copied from the cache on first use). */
uint32 *
PendingList(RelinkBatch *b, ElementId t, const CachedElement &te)
{
	for (int r = 0; r < b->n; r++)
		if (b->rw[r].id == t)
			return const_cast<uint32 *>(b->rw[r].links);
	uint32 *list = static_cast<uint32 *>(palloc(LinksBytes(b->m, te.level)));
	CacheGetAllLinks(*b->ref, t, list);
	*NextRewrite(&b->rw, &b->n, &b->cap) = {t, te.graph_block, te.graph_off,
											0, list,           InvalidXLogRecPtr};
	return list;
}

/* Gives u a layer-0 link from t: into a free slot, else in place of a link whose target keeps
 * other inbound links. False when t has neither (or already links to u). */
bool
AddInbound(RelinkBatch *b, const CacheGraph &g, ElementId t, ElementId u)
{
	CachedElement te;
	if (!GetCachedElement(*b->ref, t, &te) || te.deleted)
		return false;
	uint32 *list = PendingList(b, t, te);
	for (uint32 k = 0; k < list[0]; k++)
		if (list[1 + k] == u)
			return false;
	if (list[0] < static_cast<uint32>(2 * b->m))
	{
		list[1 + list[0]++] = u;
		return true;
	}
	for (int j = static_cast<int>(list[0]) - 1; j >= 0; j--)
		if (g.InDegree(list[1 + j]) >= 2)
		{
			list[1 + j] = u;
			return true;
		}
	return false;
}

/*
 * Makes every live element findable again after deletes: an element that no layer-0 path from
 * its vault's entry reaches, or one with few inbound links (kWeakInDegree) that a search for its
 * own vector does not return among the first ten, gets layer-0 links from (up to) its two nearest
 * reachable elements. Well-linked elements (nearly all) are not searched, so this stays cheap.
 * Deletes can leave an element whose only inbound links came from far away; inner-product graphs
 * can strand a few between VACUUMs.
 */
void
RelinkUnreachable(Relation index)
{
	LockIndexForWrite(index);
	MetaData meta = ReadMeta(index);
	const int m = meta.m;
	CacheRef ref = AcquireCache(index, false);
	CacheGraph g = GraphOf(ref);
	g.params.ef_construction = meta.ef_construction;
	uint32 n = CachedElements(ref);
	uint8 *seen = static_cast<uint8 *>(palloc0(n + 1));
	ElementId *stack = static_cast<ElementId *>(palloc(sizeof(ElementId) * (n + 1)));
	int nv;
	const DirEntry *vaults = CachedVaults(ref, &nv);
	for (int v = 0; v < nv; v++)
		if (vaults[v].entry != kNoElement && vaults[v].entry < n)
			MarkReachable(g, vaults[v].entry, seen, stack);
	RelinkBatch batch{&ref, m, static_cast<ElementRewrite *>(palloc(sizeof(ElementRewrite) * 64)),
					  0, 64};
	ElementId near[64];
	float *query = static_cast<float *>(pg::AllocSecret(sizeof(float) * meta.dims));
	for (ElementId u = 0; u < n; u++)
	{
		CachedElement ce;
		if (!GetCachedElement(ref, u, &ce) || ce.deleted)
			continue;
		bool reachable = seen[u] != 0;
		if (reachable && g.InDegree(u) > kWeakInDegree)
			continue;
		const DirEntry *d = nullptr;
		for (int v = 0; v < nv; v++)
			if (vaults[v].vault_id == ce.vault_id)
				d = &vaults[v];
		if (d == nullptr || d->entry == kNoElement || d->entry == u)
			continue;
		int k = 0;
		g.CopyVector(u, query);
		g.NewQuery();
		bool ok = NearestIsland(g, query, d->entry, d->entry_level, near, &k);
		SecureZero(query, sizeof(float) * meta.dims);
		if (!ok)
		{
			RethrowGraphError(g);
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory relinking vault_hnsw")));
		}
		if (reachable)
		{
			bool found = false;
			for (int i = 0; i < k && i < 10 && !found; i++)
				found = near[i] == u;
			if (found)
				continue;
		}
		int added = 0;
		for (int i = 0; i < k && added < 2; i++)
			if (near[i] != u && seen[near[i]] && AddInbound(&batch, g, near[i], u))
				added++;
		if (added > 0 && !reachable)
			MarkReachable(g, u, seen, stack);
		if ((u & 1023) == 0)
			vacuum_delay_point();
	}
	if (batch.n > 0)
	{
		std::sort(batch.rw, batch.rw + batch.n,
				  [](const ElementRewrite &a, const ElementRewrite &b)
				  { return a.block < b.block; });
		GuardedRelink(index, m, batch.rw, batch.n, ref);
		ereport(DEBUG1, (errmsg("vault_hnsw VACUUM relinked elements through %d neighbour lists",
								batch.n)));
	}
	ReleaseCache(&ref);
	UnlockIndexForWrite(index);
}

} // namespace

/* amvacuumcleanup: statistics when bulkdelete did not run. */
IndexBulkDeleteResult *
hnsw_vacuumcleanup(IndexVacuumInfo *info, IndexBulkDeleteResult *stats) noexcept
{
	if (info->analyze_only)
		return stats;
	if (RelationGetNumberOfBlocks(info->index) > 1)
	{
		RepairLeftovers(info->index);
		RelinkUnreachable(info->index);
	}
	if (stats == nullptr)
	{
		stats = static_cast<IndexBulkDeleteResult *>(palloc0(sizeof(IndexBulkDeleteResult)));
		ForEachElementHeader(info->index, info->strategy,
							 [&](const ElementHeader &h, BlockNumber, OffsetNumber)
							 {
								 if (!(h.flags & kElementDeleted))
									 stats->num_index_tuples += 1;
							 });
		stats->num_pages = RelationGetNumberOfBlocks(info->index);
	}
	return stats;
}

} // namespace vector_vault::index
