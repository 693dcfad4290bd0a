/*
 * hnsw_insert.cpp — INSERT into vault_hnsw, and the page writes it shares with VACUUM.
 *
 * Writers of one index are serialised by a heavyweight page lock on a pseudo block (searches do
 * not take it), so the writer may plan against the shared cache without racing another writer.
 * An insert:
 *   1. plans with the cache: greedy descent and searchBaseLayer inside the vault's sub-graph,
 *      the neighbour heuristic for its own lists and for each neighbour that gains a link;
 *   2. writes pages, each change WAL-logged through GenericXLog: the sealed vector appended to
 *      the vector stream, the element record, the neighbours' re-sealed lists, the directory;
 *   3. bumps the metapage's change counter in the last WAL record and, still holding the
 *      metapage lock, applies the same change to the cache (memory only, cannot fail).
 * The element's id is allocated in the metapage by the same WAL record that writes the element
 * (and the first directory page is linked from the metapage by the record that creates it), so a
 * crash or an error mid-insert can leave an unreachable element, which VACUUM relinks, or an
 * unused vector slot, never an id or a slot handed out twice.
 * If anything fails in 2 or 3 the cache entry is marked stale and the next reader revalidates it
 * against the pages; a standby sees the counter move only after every page of the insert.
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

/* Pseudo block number of the writers' heavyweight lock. */
constexpr BlockNumber kWriteLockBlock = 0xFFFFFFFEu;

/* A page the insert changed, for the cache's LSN table. */
struct Touched
{
	BlockNumber block;
	XLogRecPtr lsn;
	PageKind kind;
};

/* Collected touched pages. */
struct TouchedList
{
	Touched *items;
	int n;
	int cap;
};

/* Records a changed page. */
void
Touch(TouchedList *t, BlockNumber block, XLogRecPtr lsn, PageKind kind)
{
	if (t->n == t->cap)
	{
		t->cap *= 2;
		t->items = static_cast<Touched *>(repalloc(t->items, sizeof(Touched) * t->cap));
	}
	t->items[t->n++] = {block, lsn, kind};
}

/* Extends the index by one page, returned exclusively locked. */
Buffer
ExtendIndex(Relation index)
{
	LockRelationForExtension(index, ExclusiveLock);
	Buffer buf = ReadBufferExtended(index, MAIN_FORKNUM, P_NEW, RBM_NORMAL, nullptr);
	UnlockRelationForExtension(index, ExclusiveLock);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	return buf;
}

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

/* Appends a sealed vector record to the stream (WAL-logged); returns where it starts. */
void
AppendVectorLogged(Relation index, MetaData *meta, const char *rec, size_t len,
				   BlockNumber *rec_block, uint32 *rec_off, TouchedList *touched)
{
	size_t cap = VectorPageCapacity();
	if (meta->vector_tail == InvalidBlockNumber || meta->vector_tail_offset >= cap)
	{
		Buffer fresh = ExtendIndex(index);
		GenericXLogState *state = GenericXLogStart(index);
		Page np = GenericXLogRegisterBuffer(state, fresh, GENERIC_XLOG_FULL_IMAGE);
		InitPage(np, kVectorPage);
		Buffer old = InvalidBuffer;
		if (meta->vector_tail != InvalidBlockNumber)
		{
			old = ReadBuffer(index, meta->vector_tail);
			LockBuffer(old, BUFFER_LOCK_EXCLUSIVE);
			Page op = GenericXLogRegisterBuffer(state, old, 0);
			GetOpaque(op)->next = BufferGetBlockNumber(fresh);
		}
		XLogRecPtr lsn = GenericXLogFinish(state);
		if (old != InvalidBuffer)
		{
			Touch(touched, BufferGetBlockNumber(old), lsn, kVectorPage);
			UnlockReleaseBuffer(old);
		}
		meta->vector_tail = BufferGetBlockNumber(fresh);
		meta->vector_tail_offset = 0;
		Touch(touched, meta->vector_tail, lsn, kVectorPage);
		UnlockReleaseBuffer(fresh);
	}
	*rec_block = meta->vector_tail;
	*rec_off = meta->vector_tail_offset;
	size_t done = 0;
	BlockNumber block = meta->vector_tail;
	uint32 offset = meta->vector_tail_offset;
	while (done < len)
	{
		Buffer buf = ReadBuffer(index, block);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		GenericXLogState *state = GenericXLogStart(index);
		Page page = GenericXLogRegisterBuffer(state, buf, 0);
		size_t take = Min(len - done, cap - offset);
		memcpy(PageGetContents(page) + offset, rec + done, take);
		done += take;
		offset += static_cast<uint32>(take);
		reinterpret_cast<PageHeader>(page)->pd_lower =
			static_cast<LocationIndex>(MAXALIGN(SizeOfPageHeaderData) + offset);
		Buffer next = InvalidBuffer;
		if (done < len)
		{
			next = ExtendIndex(index);
			Page np = GenericXLogRegisterBuffer(state, next, GENERIC_XLOG_FULL_IMAGE);
			InitPage(np, kVectorPage);
			GetOpaque(page)->next = BufferGetBlockNumber(next);
		}
		XLogRecPtr lsn = GenericXLogFinish(state);
		Touch(touched, block, lsn, kVectorPage);
		UnlockReleaseBuffer(buf);
		if (next != InvalidBuffer)
		{
			block = BufferGetBlockNumber(next);
			offset = 0;
			Touch(touched, block, lsn, kVectorPage);
			UnlockReleaseBuffer(next);
		}
	}
	meta->vector_tail = block;
	meta->vector_tail_offset = offset;
}

/* Copies an insert's allocation state (next id, element count, tails, directory blocks) into a
 * metapage image; the change counter is not part of it. */
void
CopyAllocation(MetaData *dst, const MetaData &src)
{
	dst->next_element_id = src.next_element_id;
	dst->element_count = src.element_count;
	dst->graph_tail = src.graph_tail;
	dst->vector_tail = src.vector_tail;
	dst->vector_tail_offset = src.vector_tail_offset;
	dst->first_dir_block = src.first_dir_block;
	dst->last_dir_block = src.last_dir_block;
}

/*
 * Registers the metapage in an open WAL record and copies the insert's allocation state into it
 * (next id, element count, tails, directory blocks; not the change counter). The record that
 * makes an element, or the first directory page, durable thereby also makes the metapage know
 * it: a crash or an error between records can leave unreferenced bytes, never an id the
 * metapage would hand out again or a vector slot it would overwrite.
 */
void
StageMetaInRecord(GenericXLogState *state, Buffer meta_buf, const MetaData &local)
{
	CopyAllocation(MetaOf(GenericXLogRegisterBuffer(state, meta_buf, 0)), local);
}

/* Adds an element record to the graph tail page (or a new one), and in the same WAL record
 * allocates its id in the metapage (meta already holds the new next id); returns its location. */
void
AddElementLogged(Relation index, MetaData *meta, const char *rec, size_t len, BlockNumber *block,
				 OffsetNumber *off, TouchedList *touched)
{
	Buffer buf = InvalidBuffer;
	bool fresh = false;
	if (meta->graph_tail != InvalidBlockNumber)
	{
		buf = ReadBuffer(index, meta->graph_tail);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		if (PageGetFreeSpace(BufferGetPage(buf)) < MAXALIGN(len))
		{
			UnlockReleaseBuffer(buf);
			buf = InvalidBuffer;
		}
	}
	if (buf == InvalidBuffer)
	{
		buf = ExtendIndex(index);
		fresh = true;
	}
	GenericXLogState *state = GenericXLogStart(index);
	Page page = GenericXLogRegisterBuffer(state, buf, fresh ? GENERIC_XLOG_FULL_IMAGE : 0);
	if (fresh)
		InitPage(page, kGraphPage);
	*off = PageAddItem(page, reinterpret_cast<Item>(const_cast<char *>(rec)), len,
					   InvalidOffsetNumber, false, false);
	if (*off == InvalidOffsetNumber)
	{
		GenericXLogAbort(state);
		UnlockReleaseBuffer(buf);
		elog(ERROR, "could not add an element to vault_hnsw page");
	}
	*block = BufferGetBlockNumber(buf);
	meta->graph_tail = *block;
	Buffer mbuf = ReadBuffer(index, kMetaBlock);
	LockBuffer(mbuf, BUFFER_LOCK_EXCLUSIVE);
	StageMetaInRecord(state, mbuf, *meta);
	XLogRecPtr lsn = GenericXLogFinish(state);
	UnlockReleaseBuffer(mbuf);
	Touch(touched, *block, lsn, kGraphPage);
	UnlockReleaseBuffer(buf);
}

/* Writes a vault's directory entry: in place when present, else appended. */
void
UpdateDirectoryLogged(Relation index, MetaData *meta, const DirEntry &d, TouchedList *touched)
{
	BlockNumber block = meta->first_dir_block;
	while (block != InvalidBlockNumber)
	{
		Buffer buf = ReadBuffer(index, block);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		Page page = BufferGetPage(buf);
		int k = static_cast<int>(
			(reinterpret_cast<PageHeader>(page)->pd_lower - MAXALIGN(SizeOfPageHeaderData)) /
			sizeof(DirEntry));
		DirEntry *e = reinterpret_cast<DirEntry *>(PageGetContents(page));
		for (int i = 0; i < k; i++)
		{
			if (e[i].vault_id == d.vault_id)
			{
				GenericXLogState *state = GenericXLogStart(index);
				Page wp = GenericXLogRegisterBuffer(state, buf, 0);
				reinterpret_cast<DirEntry *>(PageGetContents(wp))[i] = d;
				XLogRecPtr lsn = GenericXLogFinish(state);
				Touch(touched, block, lsn, kDirPage);
				UnlockReleaseBuffer(buf);
				return;
			}
		}
		BlockNumber next = GetOpaque(page)->next;
		if (next == InvalidBlockNumber)
		{
			/* Not found anywhere: append here or on a new directory page. */
			GenericXLogState *state = GenericXLogStart(index);
			Page wp = GenericXLogRegisterBuffer(state, buf, 0);
			if (PageGetExactFreeSpace(wp) >= sizeof(DirEntry))
			{
				PageHeader ph = reinterpret_cast<PageHeader>(wp);
				memcpy(reinterpret_cast<char *>(wp) + ph->pd_lower, &d, sizeof(DirEntry));
				ph->pd_lower += sizeof(DirEntry);
				XLogRecPtr lsn = GenericXLogFinish(state);
				Touch(touched, block, lsn, kDirPage);
				UnlockReleaseBuffer(buf);
				return;
			}
			Buffer nb = ExtendIndex(index);
			Page np = GenericXLogRegisterBuffer(state, nb, GENERIC_XLOG_FULL_IMAGE);
			InitPage(np, kDirPage);
			PageHeader ph = reinterpret_cast<PageHeader>(np);
			memcpy(reinterpret_cast<char *>(np) + ph->pd_lower, &d, sizeof(DirEntry));
			ph->pd_lower += sizeof(DirEntry);
			GetOpaque(wp)->next = BufferGetBlockNumber(nb);
			XLogRecPtr lsn = GenericXLogFinish(state);
			meta->last_dir_block = BufferGetBlockNumber(nb);
			Touch(touched, block, lsn, kDirPage);
			Touch(touched, meta->last_dir_block, lsn, kDirPage);
			UnlockReleaseBuffer(nb);
			UnlockReleaseBuffer(buf);
			return;
		}
		UnlockReleaseBuffer(buf);
		block = next;
	}
	/* No directory yet: the metapage learns of the first directory page in the same record. */
	Buffer nb = ExtendIndex(index);
	GenericXLogState *state = GenericXLogStart(index);
	Page np = GenericXLogRegisterBuffer(state, nb, GENERIC_XLOG_FULL_IMAGE);
	InitPage(np, kDirPage);
	PageHeader ph = reinterpret_cast<PageHeader>(np);
	memcpy(reinterpret_cast<char *>(np) + ph->pd_lower, &d, sizeof(DirEntry));
	ph->pd_lower += sizeof(DirEntry);
	meta->first_dir_block = meta->last_dir_block = BufferGetBlockNumber(nb);
	Buffer mbuf = ReadBuffer(index, kMetaBlock);
	LockBuffer(mbuf, BUFFER_LOCK_EXCLUSIVE);
	StageMetaInRecord(state, mbuf, *meta);
	XLogRecPtr lsn = GenericXLogFinish(state);
	UnlockReleaseBuffer(mbuf);
	Touch(touched, meta->first_dir_block, lsn, kDirPage);
	UnlockReleaseBuffer(nb);
}

} // namespace

/* Takes the writers' lock of an index. */
void
LockIndexForWrite(Relation index)
{
	LockPage(index, kWriteLockBlock, ExclusiveLock);
}

/* Releases the writers' lock. */
void
UnlockIndexForWrite(Relation index)
{
	UnlockPage(index, kWriteLockBlock, ExclusiveLock);
}

/* Re-seals element records in place, grouping up to four pages per WAL record. */
void
RewriteElements(Relation index, int m, ElementRewrite *rw, int n)
{
	int i = 0;
	char *rec = static_cast<char *>(palloc(ElementRecordBytes(m, hnsw::kMaxLevel)));
	while (i < n)
	{
		GenericXLogState *state = GenericXLogStart(index);
		Buffer bufs[MAX_GENERIC_XLOG_PAGES];
		Page pages[MAX_GENERIC_XLOG_PAGES];
		int nb = 0;
		int first = i;
		for (; i < n; i++)
		{
			int slot = -1;
			for (int k = 0; k < nb; k++)
				if (BufferGetBlockNumber(bufs[k]) == rw[i].block)
					slot = k;
			if (slot < 0)
			{
				if (nb == MAX_GENERIC_XLOG_PAGES)
					break;
				bufs[nb] = ReadBuffer(index, rw[i].block);
				LockBuffer(bufs[nb], BUFFER_LOCK_EXCLUSIVE);
				pages[nb] = GenericXLogRegisterBuffer(state, bufs[nb], 0);
				slot = nb++;
			}
			Page page = pages[slot];
			if (rw[i].off < FirstOffsetNumber || rw[i].off > PageGetMaxOffsetNumber(page))
				elog(ERROR, "vault_hnsw element %u is not where the cache says", rw[i].id);
			ItemId iid = PageGetItemId(page, rw[i].off);
			char *item = static_cast<char *>(PageGetItem(page, iid));
			ElementHeader h;
			memcpy(&h, item, sizeof(h));
			if (h.element_id != rw[i].id || ItemIdGetLength(iid) != ElementRecordBytes(m, h.level))
				elog(ERROR, "vault_hnsw element %u is not where the cache says", rw[i].id);
			h.flags |= rw[i].set_flags;
			if (keys::DataKeyExists(h.vault_id, h.key_version))
			{
				SealElement(h, m, rw[i].links, rec);
				memcpy(item, rec, ElementRecordBytes(m, h.level));
			}
			else
			{
				/* A shredded vault's element: nothing can be sealed; flag it and leave the rest,
				 * which no key can open any more (verify and the cache skip such vaults). */
				memcpy(item, &h, sizeof(h));
			}
		}
		XLogRecPtr lsn = GenericXLogFinish(state);
		for (int k = first; k < i; k++)
			rw[k].lsn = lsn;
		for (int k = 0; k < nb; k++)
			UnlockReleaseBuffer(bufs[k]);
	}
	pfree(rec);
}

/* Zeroes a vector record across the vector pages it spans. */
void
ScrubVectorLogged(Relation index, BlockNumber block, uint32 offset, uint32 dims)
{
	size_t left = VectorRecordBytes(dims);
	size_t cap = VectorPageCapacity();
	while (left > 0 && block != InvalidBlockNumber && block < RelationGetNumberOfBlocks(index))
	{
		Buffer buf = ReadBuffer(index, block);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		if (GetOpaque(BufferGetPage(buf))->kind != kVectorPage || offset >= cap)
		{
			UnlockReleaseBuffer(buf);
			elog(ERROR, "vault_hnsw vector record to scrub is not on a vector page");
		}
		GenericXLogState *state = GenericXLogStart(index);
		Page page = GenericXLogRegisterBuffer(state, buf, 0);
		size_t take = Min(left, cap - offset);
		memset(PageGetContents(page) + offset, 0, take);
		BlockNumber next = GetOpaque(page)->next;
		GenericXLogFinish(state);
		UnlockReleaseBuffer(buf);
		left -= take;
		block = next;
		offset = 0;
	}
}

/* Writes the metapage with the counter bumped. */
XLogRecPtr
BumpMeta(Relation index, Buffer meta_buf, const MetaData &updated)
{
	GenericXLogState *state = GenericXLogStart(index);
	Page page = GenericXLogRegisterBuffer(state, meta_buf, 0);
	MetaData *m = MetaOf(page);
	uint64 counter = m->change_counter;
	*m = updated;
	m->change_counter = counter + 1;
	return GenericXLogFinish(state);
}

/* Inserts one decrypted vector of a vault into the index. */
void
InsertVector(Relation index, const float *v, uint64 vault_id, uint32 key_version, ItemPointer tid)
{
	LockIndexForWrite(index);
	CacheRef ref = AcquireCacheFor(index, false, &vault_id, 1);
	MetaData meta = ReadMeta(index);
	int level = RandomLevel(meta.m);
	if (!CacheHasRoom(ref, meta.next_element_id, level))
	{
		/* Let the cache grow: a stale mark makes the next acquire reload it with headroom. */
		CacheMarkInvalid(ref);
		ReleaseCache(&ref);
		ref = AcquireCacheFor(index, false, &vault_id, 1);
		if (!CacheHasRoom(ref, meta.next_element_id, level))
		{
			ReleaseCache(&ref);
			elog(ERROR, "vault_hnsw cache could not make room for a new element");
		}
	}
	const int m = meta.m;
	const ElementId id = meta.next_element_id;
	TouchedList touched = {static_cast<Touched *>(palloc(sizeof(Touched) * 32)), 0, 32};
	PodPlan plan;
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
	uint32 *links = static_cast<uint32 *>(pg::AllocSecret(LinksBytes(m, level)));
	memset(links, 0, LinksBytes(m, level));
	char *rec = static_cast<char *>(
		palloc(Max(VectorRecordBytes(meta.dims), ElementRecordBytes(m, level))));

	PG_TRY();
	{
		/* The vault's sub-graph. */
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

		/* 1. plan */
		CacheStageVector(ref, id, v);
		CacheGraph g = GraphOf(ref);
		g.params.ef_construction = meta.ef_construction;
		g.StageInsert(id, v);
		PlanIsland(g, id, v, level, d.entry, d.entry_level, BackendVisitedSet(g.Capacity()), &plan);
		if (!plan.ok)
		{
			RethrowGraphError(g);
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY),
							errmsg("out of memory planning a vault_hnsw insert")));
		}

		/* 2. pages: vector, element, neighbours, directory */
		BlockNumber vblock;
		uint32 voff;
		SealVector(id, vault_id, key_version, v, meta.dims, rec);
		AppendVectorLogged(index, &meta, rec, VectorRecordBytes(meta.dims), &vblock, &voff,
						   &touched);

		ElementHeader h;
		memset(&h, 0, sizeof(h));
		h.element_id = id;
		h.level = static_cast<uint8>(level);
		h.heap_tid = *tid;
		h.vault_id = vault_id;
		h.key_version = key_version;
		h.vec_block = vblock;
		h.vec_offset = voff;
		for (int l = 0; l <= level; l++)
		{
			uint32 *dst = l == 0 ? links : links + (1 + 2 * m) + (l - 1) * (1 + m);
			dst[0] = static_cast<uint32>(plan.own_counts[l]);
			memcpy(dst + 1, plan.own + l * plan.stride, sizeof(uint32) * plan.own_counts[l]);
		}
		SealElement(h, m, links, rec);
		BlockNumber gblock;
		OffsetNumber goff;
		meta.next_element_id = id + 1;
		meta.element_count += 1;
		AddElementLogged(index, &meta, rec, ElementRecordBytes(m, level), &gblock, &goff, &touched);

		/* Neighbours: one rewrite per element, with every changed layer applied. */
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
			if (!GetCachedElement(ref, nb, &ce))
				continue;
			if (k == nrw)
			{
				uint32 *all = static_cast<uint32 *>(palloc(LinksBytes(m, ce.level)));
				CacheGetAllLinks(ref, nb, all);
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
				  [](const ElementRewrite &a, const ElementRewrite &b)
				  { return a.block < b.block; });
		RewriteElements(index, m, rw, nrw);
		for (int k = 0; k < nrw; k++)
			Touch(&touched, rw[k].block, rw[k].lsn, kGraphPage);

		d.count += 1;
		if (plan.new_entry)
		{
			d.entry = id;
			d.entry_level = static_cast<int16>(level);
		}
		UpdateDirectoryLogged(index, &meta, d, &touched);

		/* 3. metapage last, then the cache while the metapage is still locked */
		Buffer mbuf = ReadBuffer(index, kMetaBlock);
		LockBuffer(mbuf, BUFFER_LOCK_EXCLUSIVE);
		MetaData updated = *MetaOf(BufferGetPage(mbuf));
		CopyAllocation(&updated, meta);
		XLogRecPtr mlsn = BumpMeta(index, mbuf, updated);
		uint64 counter = MetaOf(BufferGetPage(mbuf))->change_counter;

		int vault_index = CacheSetVault(ref, d);
		CacheAddElement(ref, id, h, v, links, gblock, goff, vault_index);
		for (int k = 0; k < nrw; k++)
		{
			CachedElement ce;
			GetCachedElement(ref, rw[k].id, &ce);
			for (int l = 0; l <= ce.level; l++)
			{
				const uint32 *src =
					l == 0 ? rw[k].links : rw[k].links + (1 + 2 * m) + (l - 1) * (1 + m);
				CacheSetLinks(ref, rw[k].id, l, src + 1, static_cast<int>(src[0]));
			}
		}
		for (int k = 0; k < touched.n; k++)
			CacheNoteBlock(ref, touched.items[k].block, touched.items[k].lsn,
						   touched.items[k].kind);
		CacheNoteBlock(ref, kMetaBlock, mlsn, kMetaPage);
		CacheSetCounter(ref, counter);
		UnlockReleaseBuffer(mbuf);
	}
	PG_CATCH();
	{
		CacheMarkInvalid(ref);
		PG_RE_THROW();
	}
	PG_END_TRY();
	ReleaseCache(&ref);
	UnlockIndexForWrite(index);
	pg::FreeSecret(links);
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
