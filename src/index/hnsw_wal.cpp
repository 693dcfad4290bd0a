/*
 * hnsw_wal.cpp — every WAL-logged write of vault_hnsw pages after the build.
 *
 * Inserts and VACUUM change an index through these functions only, each change a GenericXLog
 * record: the sealed vector appended to the vector stream (which may span pages), a new element
 * record, element records re-sealed in place with new neighbour lists, the vault directory, a
 * scrubbed vector, and the metapage. Allocation state (next element id, tails, directory blocks)
 * travels in the same record as the write that uses it (StageMetaInRecord), so a crash between
 * records leaves unreferenced bytes, never an id or a slot handed out twice. Writers of one
 * index are serialised by a heavyweight lock on a pseudo block (LockIndexForWrite); searches do
 * not take it. What the records contain (formats, sealing) is hnsw_pages.cpp; when an insert
 * calls them is hnsw_insert.cpp.
 */
#include "core/index_record.h"

#include <algorithm>
#include <cstring>

#include "index/hnsw.h"
#include "keys/keys.h"
#include "pg/guard.h"

extern "C"
{
#include "access/generic_xlog.h"
#include "storage/lmgr.h"
#include "utils/rel.h"
}

namespace vector_vault::index
{

namespace
{

/* Pseudo block number of the writers' heavyweight lock. */
constexpr BlockNumber kWriteLockBlock = 0xFFFFFFFEu;

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

} // namespace

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

/* Writes a vault's directory entry: in place when present (entry point and count), else
 * appended (with no build range: its elements are all after the metapage's build_tail). */
void
UpdateDirectoryLogged(Relation index, MetaData *meta, const DirEntry &entry, TouchedList *touched)
{
	DirEntry d = entry;
	d.build_blocks = 0;
	d.build_first = 0;
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
				/* entry point and count; the vault locator stays as the build wrote it */
				DirEntry *w = &reinterpret_cast<DirEntry *>(PageGetContents(wp))[i];
				w->entry = d.entry;
				w->entry_level = d.entry_level;
				w->count = d.count;
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
ScrubVectorLogged(Relation index, BlockNumber block, uint32 offset, size_t record_bytes)
{
	size_t left = record_bytes;
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

} // namespace vector_vault::index
