/*
 * hnsw_insert.cpp — INSERT into vault_hnsw: plan with the cache, write pages, apply to the cache.
 *
 * Writers of one index are serialised by a heavyweight page lock on a pseudo block (searches do
 * not take it), so the writer may plan against the shared cache without racing another writer.
 * An insert:
 *   1. plans with the cache: greedy descent and searchBaseLayer inside the vault's sub-graph,
 *      the neighbour heuristic for its own lists and for each neighbour that gains a link;
 *   2. writes pages, each change WAL-logged through GenericXLog (hnsw_wal.cpp): the sealed
 *      vector appended to the vector stream, the element record, the neighbours' re-sealed
 *      lists, the directory;
 *   3. bumps the metapage's change counter in the last WAL record and, still holding the
 *      metapage lock, applies the same change to the cache (memory only, cannot fail).
 * The element's id is allocated in the metapage by the same WAL record that writes the element
 * (and the first directory page is linked from the metapage by the record that creates it), so a
 * crash or an error mid-insert can leave an unreachable element, which VACUUM relinks, or an
 * unused vector slot, never an id or a slot handed out twice.
 * If anything fails in 2 or 3 the cache entry is marked stale and the next reader revalidates it
 * against the pages; a standby sees the counter move only after every page of the insert.
 * InsertVector runs the steps as PlanInsert, WriteElementPages, WriteNeighbourPages and
 * CommitInsert over one InsertWork.
 */
#include "core/secure.h"

#include <algorithm>
#include <cstring>

#include "index/hnsw.h"
#include "keys/keys.h"
#include "pg/guard.h"
#include "pg/secret.h"

extern "C"
{
#include "access/generic_xlog.h"
#include "storage/lmgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"
}

namespace vector_vault::index
{

namespace
{

/* The plan of one insert in plain arrays (no destructors: it lives across Postgres calls). */
struct PodPlan
{
	int stride; /* 2m: room for any list */
	int own_counts[hnsw::kMaxLevel + 1];
	ElementId *own;
	int max_updates;
	int nupdates;
	ElementId *upd_ids;
	int *upd_layers;
	int *upd_counts;
	ElementId *upd_links;
	bool new_entry;
	bool ok;
};

/* Runs the C++ planner and copies its result out; catches every exception. */
void
PlanIsland(const CacheGraph &g, ElementId id, const float *v, int level, ElementId entry,
		   int entry_level, hnsw::VisitedSet *visited, PodPlan *out) noexcept
{
	EnterIsland(g);
	try
	{
		hnsw::InsertPlan plan =
			hnsw::PlanInsert(g, g.params, id, v, level, entry, entry_level, visited);
		for (int l = 0; l <= level; l++)
		{
			out->own_counts[l] = static_cast<int>(plan.own[l].size());
			std::copy(plan.own[l].begin(), plan.own[l].end(), out->own + l * out->stride);
		}
		out->nupdates = 0;
		for (const hnsw::LinkUpdate &u : plan.updates)
		{
			if (out->nupdates == out->max_updates)
				break;
			int k = out->nupdates++;
			out->upd_ids[k] = u.id;
			out->upd_layers[k] = u.layer;
			out->upd_counts[k] = static_cast<int>(u.links.size());
			std::copy(u.links.begin(), u.links.end(),
					  out->upd_links + static_cast<size_t>(k) * out->stride);
		}
		out->new_entry = plan.new_entry;
		out->ok = true;
	}
	catch (...)
	{
		out->ok = false;
	}
	LeaveIsland(g);
}

} // namespace

/* One insert's state, passed between its steps (plain memory: it lives across raising calls). */
struct InsertWork
{
	Relation index;
	CacheRef *ref;
	MetaData meta;
	const float *v;
	uint64 vault_id;
	uint32 key_version;
	ItemPointer tid;
	ElementId id;
	int level;
	int m;
	DirEntry d; /* the vault's directory entry, updated by the insert */
	PodPlan plan;
	uint32 *links; /* the new element's lists: plaintext structure, a pg::AllocSecret buffer */
	char *rec;     /* sealed record scratch */
	TouchedList touched;
	ElementHeader h;
	BlockNumber gblock;
	OffsetNumber goff;
	ElementRewrite *rw; /* neighbours whose lists change */
	int nrw;
};

/* Takes a cache reference with room for one more element at level (reloading once to grow). */
CacheRef
AcquireCacheWithRoom(Relation index, uint64 vault_id, ElementId next_id, int level)
{
	CacheRef ref = AcquireCacheFor(index, false, &vault_id, 1);
	if (CacheHasRoom(ref, next_id, level))
		return ref;
	/* Let the cache grow: a stale mark makes the next acquire reload it with headroom. */
	CacheMarkInvalid(ref);
	ReleaseCache(&ref);
	ref = AcquireCacheFor(index, false, &vault_id, 1);
	if (!CacheHasRoom(ref, next_id, level))
	{
		ReleaseCache(&ref);
		elog(ERROR, "vault_hnsw cache could not make room for a new element");
	}
	return ref;
}

/* Allocates the plan and record buffers of an insert. */
void
AllocInsertWork(InsertWork *w)
{
	const int m = w->m, level = w->level;
	w->touched = {static_cast<Touched *>(palloc(sizeof(Touched) * 32)), 0, 32};
	PodPlan &plan = w->plan;
	memset(&plan, 0, sizeof(plan));
	plan.stride = 2 * m;
	plan.own = static_cast<ElementId *>(palloc0(sizeof(ElementId) * (level + 1) * plan.stride));
	plan.max_updates = (level + 1) * m;
	plan.upd_ids = static_cast<ElementId *>(palloc(sizeof(ElementId) * plan.max_updates));
	plan.upd_layers = static_cast<int *>(palloc(sizeof(int) * plan.max_updates));
	plan.upd_counts = static_cast<int *>(palloc(sizeof(int) * plan.max_updates));
	plan.upd_links =
		static_cast<ElementId *>(palloc(sizeof(ElementId) * plan.max_updates * plan.stride));
	/* Neighbour lists are plaintext structure: zeroed on every exit (pg/secret.h). */
	w->links = static_cast<uint32 *>(pg::AllocSecret(LinksBytes(m, level)));
	memset(w->links, 0, LinksBytes(m, level));
	w->rec = static_cast<char *>(palloc(
		Max(VectorRecordBytes(w->meta.dims, WidthOf(w->meta)), ElementRecordBytes(m, level))));
}

/* The vault's directory entry in the cache, or an empty one for its first element. */
DirEntry
VaultEntry(const CacheRef &ref, uint64 vault_id)
{
	int nv;
	const DirEntry *vaults = CachedVaults(ref, &nv);
	DirEntry d;
	memset(&d, 0, sizeof(d));
	d.vault_id = vault_id;
	d.entry = kNoElement;
	d.entry_level = -1;
	for (int i = 0; i < nv; i++)
		if (vaults[i].vault_id == vault_id)
			d = vaults[i];
	return d;
}

/* Step 1: plans the element's lists and its neighbours' new lists with the cache. */
void
PlanInsert(InsertWork *w)
{
	CacheStageVector(*w->ref, w->id, w->v);
	CacheGraph g = GraphOf(*w->ref);
	g.params.ef_construction = w->meta.ef_construction;
	g.StageInsert(w->id, w->v);
	PlanIsland(g, w->id, w->v, w->level, w->d.entry, w->d.entry_level,
			   BackendVisitedSet(g.Capacity()), &w->plan);
	if (!w->plan.ok)
	{
		RethrowGraphError(g);
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY),
						errmsg("out of memory planning a vault_hnsw insert")));
	}
}

/* Step 2a: writes the sealed vector and the new element record (it allocates the id). */
void
WriteElementPages(InsertWork *w)
{
	const int m = w->m;
	BlockNumber vblock;
	uint32 voff;
	SealVector(w->id, w->vault_id, w->key_version, w->v, w->meta.dims, WidthOf(w->meta), w->rec);
	AppendVectorLogged(w->index, &w->meta, w->rec,
					   VectorRecordBytes(w->meta.dims, WidthOf(w->meta)), &vblock, &voff,
					   &w->touched);
	ElementHeader &h = w->h;
	memset(&h, 0, sizeof(h));
	h.element_id = w->id;
	h.level = static_cast<uint8>(w->level);
	h.heap_tid = *w->tid;
	h.vault_id = w->vault_id;
	h.key_version = w->key_version;
	h.vec_block = vblock;
	h.vec_offset = voff;
	for (int l = 0; l <= w->level; l++)
	{
		uint32 *dst = l == 0 ? w->links : w->links + (1 + 2 * m) + (l - 1) * (1 + m);
		dst[0] = static_cast<uint32>(w->plan.own_counts[l]);
		memcpy(dst + 1, w->plan.own + l * w->plan.stride, sizeof(uint32) * w->plan.own_counts[l]);
	}
	SealElement(h, m, w->links, w->rec);
	w->meta.next_element_id = w->id + 1;
	w->meta.element_count += 1;
	AddElementLogged(w->index, &w->meta, w->rec, ElementRecordBytes(m, w->level), &w->gblock,
					 &w->goff, &w->touched);
}

/* Step 2b: rewrites each neighbour whose lists gain the element (one rewrite per neighbour,
 * every changed layer applied), then the vault's directory entry. */
void
WriteNeighbourPages(InsertWork *w)
{
	const int m = w->m;
	const PodPlan &plan = w->plan;
	ElementRewrite *rw =
		static_cast<ElementRewrite *>(palloc0(sizeof(ElementRewrite) * Max(plan.nupdates, 1)));
	int nrw = 0;
	for (int u = 0; u < plan.nupdates; u++)
	{
		ElementId nb = plan.upd_ids[u];
		int k = 0;
		while (k < nrw && rw[k].id != nb)
			k++;
		CachedElement ce;
		if (!GetCachedElement(*w->ref, nb, &ce))
			continue;
		if (k == nrw)
		{
			uint32 *all = static_cast<uint32 *>(palloc(LinksBytes(m, ce.level)));
			CacheGetAllLinks(*w->ref, nb, all);
			rw[nrw] = {nb, ce.graph_block, ce.graph_off, 0, all, InvalidXLogRecPtr};
			nrw++;
		}
		uint32 *all = const_cast<uint32 *>(rw[k].links);
		int layer = plan.upd_layers[u];
		uint32 *dst = layer == 0 ? all : all + (1 + 2 * m) + (layer - 1) * (1 + m);
		dst[0] = static_cast<uint32>(plan.upd_counts[u]);
		memcpy(dst + 1, plan.upd_links + static_cast<size_t>(u) * plan.stride,
			   sizeof(uint32) * plan.upd_counts[u]);
	}
	std::sort(rw, rw + nrw,
			  [](const ElementRewrite &a, const ElementRewrite &b) { return a.block < b.block; });
	RewriteElements(w->index, m, rw, nrw);
	for (int k = 0; k < nrw; k++)
		Touch(&w->touched, rw[k].block, rw[k].lsn, kGraphPage);
	w->rw = rw;
	w->nrw = nrw;

	w->d.count += 1;
	if (plan.new_entry)
	{
		w->d.entry = w->id;
		w->d.entry_level = static_cast<int16>(w->level);
	}
	UpdateDirectoryLogged(w->index, &w->meta, w->d, &w->touched);
}

/* Step 3: the metapage last, then the same change applied to the cache while the metapage is
 * still locked (memory only, cannot fail). */
void
CommitInsert(InsertWork *w)
{
	const int m = w->m;
	CacheRef &ref = *w->ref;
	Buffer mbuf = ReadBuffer(w->index, kMetaBlock);
	LockBuffer(mbuf, BUFFER_LOCK_EXCLUSIVE);
	MetaData updated = *MetaOf(BufferGetPage(mbuf));
	CopyAllocation(&updated, w->meta);
	XLogRecPtr mlsn = BumpMeta(w->index, mbuf, updated);
	uint64 counter = MetaOf(BufferGetPage(mbuf))->change_counter;

	int vault_index = CacheSetVault(ref, w->d);
	CacheAddElement(ref, w->id, w->h, w->v, w->links, w->gblock, w->goff, vault_index);
	for (int k = 0; k < w->nrw; k++)
	{
		CachedElement ce;
		GetCachedElement(ref, w->rw[k].id, &ce);
		for (int l = 0; l <= ce.level; l++)
		{
			const uint32 *src =
				l == 0 ? w->rw[k].links : w->rw[k].links + (1 + 2 * m) + (l - 1) * (1 + m);
			CacheSetLinks(ref, w->rw[k].id, l, src + 1, static_cast<int>(src[0]));
		}
	}
	for (int k = 0; k < w->touched.n; k++)
		CacheNoteBlock(ref, w->touched.items[k].block, w->touched.items[k].lsn,
					   w->touched.items[k].kind);
	CacheNoteBlock(ref, kMetaBlock, mlsn, kMetaPage);
	CacheSetCounter(ref, counter);
	UnlockReleaseBuffer(mbuf);
}

/* Steps 1-3 of the file comment; on any error the cache entry is marked stale. */
void
RunInsertSteps(InsertWork *w)
{
	PG_TRY();
	{
		PlanInsert(w);
		WriteElementPages(w);
		WriteNeighbourPages(w);
		CommitInsert(w);
	}
	PG_CATCH();
	{
		CacheMarkInvalid(*w->ref);
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/* Inserts one decrypted vector of a vault into the index. */
void
InsertVector(Relation index, const float *v, uint64 vault_id, uint32 key_version, ItemPointer tid)
{
	LockIndexForWrite(index);
	InsertWork w;
	memset(&w, 0, sizeof(w));
	w.index = index;
	w.meta = ReadMeta(index);
	w.m = w.meta.m;
	w.level = RandomLevel(w.meta.m);
	w.id = w.meta.next_element_id;
	w.v = v;
	w.vault_id = vault_id;
	w.key_version = key_version;
	w.tid = tid;
	CacheRef ref = AcquireCacheWithRoom(index, vault_id, w.id, w.level);
	w.ref = &ref;
	AllocInsertWork(&w);
	w.d = VaultEntry(ref, vault_id);
	RunInsertSteps(&w);
	ReleaseCache(&ref);
	UnlockIndexForWrite(index);
	pg::FreeSecret(w.links);
}

/* aminsert: decrypts the new row's vector and inserts it. */
bool
hnsw_insert(Relation index, Datum *values, bool *isnull, ItemPointer heap_tid, Relation,
			IndexUniqueCheck, bool, IndexInfo *) noexcept
{
	if (isnull[0])
		return false;
	MemoryContext ctx =
		AllocSetContextCreate(CurrentMemoryContext, "vault_hnsw insert", ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(ctx);
	MetaData meta = ReadMeta(index);
	/* The decrypted vector: zeroed on every exit, errors included (pg/secret.h). */
	float *v = static_cast<float *>(pg::AllocSecret(sizeof(float) * meta.dims));
	uint64 vault_id;
	uint32 key_version;
	if (OpenVectorForIndex(values[0], meta.dims, static_cast<Metric>(meta.metric), v, &vault_id,
						   &key_version))
		InsertVector(index, v, vault_id, key_version, heap_tid);
	pg::FreeSecret(v);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(ctx);
	return false;
}

} // namespace vector_vault::index
