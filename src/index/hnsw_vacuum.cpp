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
 *   3. re-seals the dead elements with the deleted flag and empty lists (so they are unreachable
 *      and their old neighbour lists are gone from the page), re-seals the repaired lists, writes
 *      the directory and bumps the metapage counter; readers then revalidate the changed pages.
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

	const float *Vector(ElementId id) const
	{
		return base->Vector(id);
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

/* Repairs one list in C++ and copies it out; false on an exception. */
bool
RepairIsland(const VacuumGraph &g, const hnsw::GraphParams &p, ElementId id, int layer,
			 uint32 *out) noexcept
{
	try
	{
		std::vector<ElementId> fresh = hnsw::RepairLinks(g, p, id, layer);
		out[0] = static_cast<uint32>(fresh.size());
		std::copy(fresh.begin(), fresh.end(), out + 1);
		return true;
	}
	catch (...)
	{
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

/* Repairs the lists around the dead elements and writes every changed page (see file comment). */
void
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
				ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY),
								errmsg("out of memory repairing vault_hnsw")));
		}
		if (all != nullptr)
		{
			if (nrw == rcap)
			{
				rcap *= 2;
				rw = static_cast<ElementRewrite *>(repalloc(rw, sizeof(ElementRewrite) * rcap));
			}
			rw[nrw++] = {id, ce.graph_block, ce.graph_off, 0, all, InvalidXLogRecPtr};
		}
		if ((id & 4095) == 0)
			vacuum_delay_point();
	}
	/* Dead elements: deleted flag, empty lists. */
	for (int i = 0; i < ndead; i++)
	{
		if (nrw == rcap)
		{
			rcap *= 2;
			rw = static_cast<ElementRewrite *>(repalloc(rw, sizeof(ElementRewrite) * rcap));
		}
		uint32 *empty = static_cast<uint32 *>(palloc0(LinksBytes(m, dead[i].level)));
		rw[nrw++] = {dead[i].id,      dead[i].block, dead[i].off,
					 kElementDeleted, empty,         InvalidXLogRecPtr};
	}
	/* New entry points for vaults whose entry died; live counts. */
	int nv;
	const DirEntry *vaults = CachedVaults(ref, &nv);
	DirEntry *dir = static_cast<DirEntry *>(palloc(sizeof(DirEntry) * Max(nv, 1)));
	memcpy(dir, vaults, sizeof(DirEntry) * nv);
	for (int v = 0; v < nv; v++)
	{
		uint32 live = 0;
		ElementId best = kNoElement;
		int best_level = -1;
		for (ElementId id = 0; id < nelem; id++)
		{
			CachedElement ce;
			if (!GetCachedElement(ref, id, &ce) || ce.vault_id != dir[v].vault_id || g.Deleted(id))
				continue;
			live++;
			if (static_cast<int>(ce.level) > best_level)
			{
				best = id;
				best_level = ce.level;
			}
		}
		bool entry_dead = dir[v].entry != kNoElement && g.Deleted(dir[v].entry);
		if (entry_dead || live == 0)
		{
			dir[v].entry = best;
			dir[v].entry_level = static_cast<int16>(best_level);
		}
		dir[v].count = live;
	}

	/* 3. pages */
	std::sort(rw, rw + nrw,
			  [](const ElementRewrite &a, const ElementRewrite &b) { return a.block < b.block; });
	RewriteElements(index, m, rw, nrw);
	/* The dead elements' sealed vectors leave the pages too: no decryptable copy remains. */
	for (int i = 0; i < ndead; i++)
		ScrubVectorLogged(index, dead[i].vec_block, dead[i].vec_offset, meta.dims);
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
					e[i] = dir[v];
		block = GetOpaque(page)->next;
		GenericXLogFinish(state);
		UnlockReleaseBuffer(buf);
	}
	Buffer mbuf = ReadBuffer(index, kMetaBlock);
	LockBuffer(mbuf, BUFFER_LOCK_EXCLUSIVE);
	MetaData updated = *MetaOf(BufferGetPage(mbuf));
	BumpMeta(index, mbuf, updated);
	UnlockReleaseBuffer(mbuf);
}

/* Rewrites the relinked lists and bumps the metapage; the cache then revalidates. */
void
GuardedRelink(Relation index, int m, ElementRewrite *rw, int nrw, const CacheRef &ref)
{
	PG_TRY()
		;
		{
			RewriteElements(index, m, rw, nrw);
			Buffer mbuf = ReadBuffer(index, kMetaBlock);
			LockBuffer(mbuf, BUFFER_LOCK_EXCLUSIVE);
			MetaData updated = *MetaOf(BufferGetPage(mbuf));
			BumpMeta(index, mbuf, updated);
			UnlockReleaseBuffer(mbuf);
		}
		PG_CATCH()
			;
			{
				CacheMarkInvalid(ref);
				PG_RE_THROW();
			}
		PG_END_TRY();
		CacheMarkInvalid(ref);
}

/* Runs RepairAndWrite, marking the cache stale if it fails half-way. */
void
GuardedRepair(Relation index, const MetaData &meta, const Dead *dead, int ndead,
			  const CacheRef &ref)
{
	PG_TRY()
		;
		{
			RepairAndWrite(index, meta, dead, ndead, ref);
		}
		PG_CATCH()
			;
			{
				CacheMarkInvalid(ref);
				PG_RE_THROW();
			}
		PG_END_TRY();
}

} // namespace

/* ambulkdelete. */
IndexBulkDeleteResult *
hnsw_bulkdelete(IndexVacuumInfo *info, IndexBulkDeleteResult *stats,
				IndexBulkDeleteCallback callback, void *callback_state)
{
	Relation index = info->index;
	if (stats == nullptr)
		stats = static_cast<IndexBulkDeleteResult *>(palloc0(sizeof(IndexBulkDeleteResult)));
	LockIndexForWrite(index);
	MetaData meta = ReadMeta(index);

	/* 1. find dead elements from the plaintext headers */
	int cap = 256, ndead = 0;
	Dead *dead = static_cast<Dead *>(palloc(sizeof(Dead) * cap));
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	BufferAccessStrategy strategy = info->strategy;
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
				if (h.flags & kElementDeleted)
					continue;
				if (callback(&h.heap_tid, callback_state))
				{
					if (ndead == cap)
					{
						cap *= 2;
						dead = static_cast<Dead *>(repalloc(dead, sizeof(Dead) * cap));
					}
					dead[ndead++] = {h.element_id, b, off, h.level, h.vec_block, h.vec_offset};
				}
				else
					stats->num_index_tuples += 1;
			}
		}
		UnlockReleaseBuffer(buf);
	}
	stats->num_pages = nblocks;
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
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	for (BlockNumber b = 1; b < nblocks; b++)
	{
		Buffer buf = ReadBuffer(index, b);
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
				if (!(h.flags & kElementDeleted) && h.vault_id == vault_id &&
					h.key_version == key_version)
					n++;
			}
		}
		UnlockReleaseBuffer(buf);
	}
	return n;
}

namespace
{

/* Nearest elements to id's vector in its vault (C++ search, copied out); false on an exception. */
bool
NearestIsland(const CacheGraph &g, ElementId id, ElementId entry, int entry_level, ElementId *out,
			  int *n) noexcept
{
	try
	{
		std::vector<hnsw::Candidate> found = hnsw::Search(
			g, g.params, g.Vector(id), entry, entry_level, 64, BackendVisitedSet(g.Capacity()));
		int k = 0;
		for (const hnsw::Candidate &c : found)
			if (k < 64)
				out[k++] = c.id;
		*n = k;
		return true;
	}
	catch (...)
	{
		return false;
	}
}

/* Marks everything reachable from start (any layer) in seen. */
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
		for (int l = 0; l <= g.Level(e); l++)
		{
			int c = g.Links(e, l, links);
			for (int k = 0; k < c; k++)
				if (!seen[links[k]])
				{
					seen[links[k]] = 1;
					stack[sp++] = links[k];
				}
		}
	}
}

/*
 * Gives every live element that no path from its vault's entry reaches a layer-0 link from its
 * nearest reachable element (where there is room, else in place of a link whose target has
 * other inbound links). Inner-product graphs can strand a few elements between VACUUMs.
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
	int cap = 64, nrw = 0;
	ElementRewrite *rw = static_cast<ElementRewrite *>(palloc(sizeof(ElementRewrite) * cap));
	ElementId near[64];
	for (ElementId u = 0; u < n; u++)
	{
		CachedElement ce;
		if (seen[u] || !GetCachedElement(ref, u, &ce) || ce.deleted)
			continue;
		const DirEntry *d = nullptr;
		for (int v = 0; v < nv; v++)
			if (vaults[v].vault_id == ce.vault_id)
				d = &vaults[v];
		if (d == nullptr || d->entry == kNoElement || d->entry == u)
			continue;
		int k = 0;
		if (!NearestIsland(g, u, d->entry, d->entry_level, near, &k))
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory relinking vault_hnsw")));
		/* a target already being rewritten in this pass keeps its pending list */
		ElementId target = kNoElement;
		uint32 *all = nullptr;
		for (int pass = 0; pass < 2 && target == kNoElement; pass++)
		{
			for (int i = 0; i < k && target == kNoElement; i++)
			{
				ElementId t = near[i];
				CachedElement te;
				if (t == u || !seen[t] || !GetCachedElement(ref, t, &te) || te.deleted)
					continue;
				uint32 *list = nullptr;
				for (int r = 0; r < nrw; r++)
					if (rw[r].id == t)
						list = const_cast<uint32 *>(rw[r].links);
				bool fresh_list = list == nullptr;
				if (fresh_list)
				{
					list = static_cast<uint32 *>(palloc(LinksBytes(m, te.level)));
					CacheGetAllLinks(ref, t, list);
				}
				if (pass == 0 && list[0] < static_cast<uint32>(2 * m))
					list[1 + list[0]++] = u;
				else if (pass == 1)
				{
					int j = static_cast<int>(list[0]);
					while (j-- > 0 && g.InDegree(list[1 + j]) < 2)
						;
					if (j < 0)
					{
						if (fresh_list)
							pfree(list);
						continue;
					}
					list[1 + j] = u;
				}
				else
				{
					if (fresh_list)
						pfree(list);
					continue;
				}
				target = t;
				if (fresh_list)
				{
					if (nrw == cap)
					{
						cap *= 2;
						rw = static_cast<ElementRewrite *>(
							repalloc(rw, sizeof(ElementRewrite) * cap));
					}
					rw[nrw++] = {t, te.graph_block, te.graph_off, 0, list, InvalidXLogRecPtr};
				}
				all = list;
			}
		}
		(void) all;
		if (target != kNoElement)
			MarkReachable(g, u, seen, stack);
	}
	if (nrw > 0)
	{
		std::sort(rw, rw + nrw,
				  [](const ElementRewrite &a, const ElementRewrite &b)
				  { return a.block < b.block; });
		GuardedRelink(index, m, rw, nrw, ref);
		ereport(DEBUG1,
				(errmsg("vault_hnsw VACUUM relinked elements through %d neighbour lists", nrw)));
	}
	ReleaseCache(&ref);
	UnlockIndexForWrite(index);
}

} // namespace

/* amvacuumcleanup: statistics when bulkdelete did not run. */
IndexBulkDeleteResult *
hnsw_vacuumcleanup(IndexVacuumInfo *info, IndexBulkDeleteResult *stats)
{
	if (info->analyze_only)
		return stats;
	if (RelationGetNumberOfBlocks(info->index) > 1)
		RelinkUnreachable(info->index);
	if (stats == nullptr)
	{
		stats = static_cast<IndexBulkDeleteResult *>(palloc0(sizeof(IndexBulkDeleteResult)));
		Relation index = info->index;
		BlockNumber nblocks = RelationGetNumberOfBlocks(index);
		for (BlockNumber b = 1; b < nblocks; b++)
		{
			Buffer buf = ReadBufferExtended(index, MAIN_FORKNUM, b, RBM_NORMAL, info->strategy);
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
					if (!(h.flags & kElementDeleted))
						stats->num_index_tuples += 1;
				}
			}
			UnlockReleaseBuffer(buf);
		}
		stats->num_pages = nblocks;
	}
	return stats;
}

} // namespace vector_vault::index
