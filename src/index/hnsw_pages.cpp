/*
 * hnsw_pages.cpp — the on-disk format of vault_hnsw, and where index data is encrypted.
 *
 * Two kinds of ciphertext live in an index, both AES-256-GCM under the data key of the vault the
 * element belongs to (so dropping a vault shreds its index entries too):
 *   element records  header (40 bytes, plaintext, authenticated) | nonce | sealed neighbour
 *                    lists | tag. Neighbour lists are re-sealed with a fresh nonce whenever
 *                    they change, so an update rewrites ~200 bytes, not the vector.
 *   vector records   nonce | sealed float4s | tag, in an append-only byte stream across vector
 *                    pages; the associated data binds a vector to its element id, vault, key
 *                    version and dimensions, so records cannot be swapped between elements.
 * Every read validates sizes before touching bytes and fails with 22V01 on any authentication
 * failure, never returning wrong data.
 */
#include "core/aead.h"
#include "core/envelope.h"
#include "core/index_record.h"
#include "core/secure.h"

#include <cinttypes>
#include <cstring>

#include "index/hnsw.h"
#include "keys/keys.h"
#include "pg/guard.h"

extern "C"
{
#include "storage/bufpage.h"
#include "utils/rel.h"
}

namespace vector_vault::index
{

static_assert(sizeof(ElementHeader) == kElementHeaderBytes,
			  "element header layout (core/index_record.h)");
static_assert(offsetof(ElementHeader, vault_id) == 16 &&
				  offsetof(ElementHeader, key_version) == 24 &&
				  offsetof(ElementHeader, vec_block) == 28 &&
				  offsetof(ElementHeader, vec_offset) == 32,
			  "element header layout (core/index_record.h)");
static_assert(sizeof(DirEntry) == 24, "directory entry layout");

namespace
{

/* Raises 22V01 for a failed authentication of index data. */
void
ThrowCorrupt(const char *what, const Status &s)
{
	ereport(ERROR,
			(errcode(pg::kSqlStateCorrupt), errmsg("%s failed validation: %s", what, s.message()),
			 errhint("The index is damaged or was modified; REINDEX it.")));
}

} // namespace

/* Bytes of an element record. */
size_t
ElementRecordBytes(int m, int level)
{
	return ElementRecordSize(m, level);
}

/* Usable bytes of a vector page. */
size_t
VectorPageCapacity()
{
	return BLCKSZ - MAXALIGN(SizeOfPageHeaderData) - MAXALIGN(sizeof(PageOpaque));
}

/* Initialises a page of a kind. */
void
InitPage(Page page, PageKind kind)
{
	PageInit(page, BLCKSZ, MAXALIGN(sizeof(PageOpaque)));
	PageOpaque *o = GetOpaque(page);
	o->kind = kind;
	o->magic = kPageMagic;
	o->next = InvalidBlockNumber;
}

/* The opaque data of a page. */
PageOpaque *
GetOpaque(Page page)
{
	return reinterpret_cast<PageOpaque *>(PageGetSpecialPointer(page));
}

/* The metapage's data inside a page. */
MetaData *
MetaOf(Page page)
{
	return reinterpret_cast<MetaData *>(PageGetContents(page));
}

/* Reads a copy of the metapage. */
MetaData
ReadMeta(Relation index)
{
	Buffer buf = ReadBuffer(index, kMetaBlock);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	Page page = BufferGetPage(buf);
	MetaData m = *MetaOf(page);
	bool ok = GetOpaque(page)->kind == kMetaPage && GetOpaque(page)->magic == kPageMagic;
	UnlockReleaseBuffer(buf);
	if (!ok || m.magic != kMetaMagic)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" is not a vault_hnsw index", RelationGetRelationName(index))));
	if (m.version != kFormatVersion)
		ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
						errmsg("index \"%s\" has unsupported format version %u",
							   RelationGetRelationName(index), m.version),
						errhint("REINDEX the index.")));
	return m;
}

/* Seals an element's neighbour lists. */
void
SealElement(const ElementHeader &h, int m, const uint32 *links, char *dst)
{
	memcpy(dst, &h, sizeof(h));
	keys::NoteSeal(h.vault_id, h.key_version);
	Status s = SealElementRecord(reinterpret_cast<uint8_t *>(dst), m, h.level,
								 keys::DataKey(h.vault_id, h.key_version), links);
	if (!s.ok())
		pg::ThrowStatus(s, "could not encrypt an index element", nullptr);
}

/* Validates and decrypts an element record. */
bool
OpenElement(const char *src, size_t size, int m, DecodedElement *out, bool missing_key_ok)
{
	const uint8_t *rec = reinterpret_cast<const uint8_t *>(src);
	ElementRecordInfo info;
	Status s = PeekElementRecord(rec, size, m, &info);
	if (!s.ok())
		ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED), errmsg("%s", s.message()),
						errhint("The index is damaged; REINDEX it.")));
	memcpy(&out->header, src, sizeof(ElementHeader));
	if (missing_key_ok && !keys::DataKeyExists(info.vault_id, info.key_version))
	{
		out->links = nullptr;
		return false;
	}
	out->links = static_cast<uint32 *>(palloc(ElementLinksBytes(m, info.level)));
	s = OpenElementRecord(rec, size, m, keys::DataKey(info.vault_id, info.key_version), out->links);
	if (!s.ok())
		ThrowCorrupt("index element record", s);
	return true;
}

/* Validates an element record and copies its plaintext header. */
void
PeekElement(const char *src, size_t size, int m, ElementHeader *out)
{
	ElementRecordInfo info;
	Status s = PeekElementRecord(reinterpret_cast<const uint8_t *>(src), size, m, &info);
	if (!s.ok())
		ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED), errmsg("%s", s.message()),
						errhint("The index is damaged; REINDEX it.")));
	memcpy(out, src, sizeof(ElementHeader));
}

/* Reads an element record from its page and decrypts its neighbour lists. */
void
ReadElementLinks(Relation index, BlockNumber block, OffsetNumber off, int m, ElementId id,
				 int level, uint32 *links)
{
	PGAlignedBlock copy;
	Buffer buf = ReadBuffer(index, block);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	Page page = BufferGetPage(buf);
	bool ok = !PageIsNew(page) && GetOpaque(page)->kind == kGraphPage &&
			  off <= PageGetMaxOffsetNumber(page) && ItemIdIsUsed(PageGetItemId(page, off));
	size_t len = 0;
	if (ok)
	{
		ItemId iid = PageGetItemId(page, off);
		len = ItemIdGetLength(iid);
		memcpy(copy.data, PageGetItem(page, iid), len);
	}
	UnlockReleaseBuffer(buf);
	if (!ok)
		ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
						errmsg("index element %u is not where the cache says", id),
						errhint("The index is damaged; REINDEX it.")));
	DecodedElement d;
	OpenElement(copy.data, len, m, &d, false);
	if (d.header.element_id != id || d.header.level != level)
		ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
						errmsg("index element %u is not where the cache says", id),
						errhint("The index is damaged; REINDEX it.")));
	size_t bytes = LinksBytes(m, d.header.level);
	memcpy(links, d.links, bytes);
	SecureZero(d.links, bytes);
	pfree(d.links);
}

/* Seals a vector into a stream record. */
void
SealVector(ElementId id, uint64 vault_id, uint32 key_version, const float *v, uint32 dims,
		   ElementWidth width, char *dst)
{
	keys::NoteSeal(vault_id, key_version);
	Status s =
		SealVectorRecord(id, vault_id, key_version, v, dims, width,
						 keys::DataKey(vault_id, key_version), reinterpret_cast<uint8_t *>(dst));
	if (!s.ok())
		pg::ThrowStatus(s, "could not encrypt an index vector", nullptr);
}

/* Reads and decrypts a vector record that may span vector pages. */
void
ReadVector(Relation index, BlockNumber block, uint32 offset, ElementId id, uint64 vault_id,
		   uint32 key_version, uint32 dims, ElementWidth width, float *out)
{
	size_t total = VectorRecordBytes(dims, width);
	size_t cap = VectorPageCapacity();
	/* Searches of the pages representation and re-ranking call this per candidate: no palloc
	 * for records that fit a block, no relation-size lookup. */
	PGAlignedBlock local;
	char *rec = total <= sizeof(local.data) ? local.data : static_cast<char *>(palloc(total));
	size_t got = 0;
	while (got < total)
	{
		/* A block past the end is refused by ReadBuffer itself (asking the relation's size here
		 * would cost a system call per vector). */
		if (block == InvalidBlockNumber || block == kMetaBlock || offset >= cap)
			ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
							errmsg("index vector of element %u points outside the index", id)));
		Buffer buf = ReadBuffer(index, block);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		Page page = BufferGetPage(buf);
		PageOpaque *o = GetOpaque(page);
		if (o->kind != kVectorPage)
		{
			UnlockReleaseBuffer(buf);
			ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
							errmsg("index vector of element %u is not on a vector page", id)));
		}
		size_t take = Min(total - got, cap - offset);
		memcpy(rec + got, PageGetContents(page) + offset, take);
		got += take;
		block = o->next;
		offset = 0;
		UnlockReleaseBuffer(buf);
	}
	Status s =
		OpenVectorRecord(reinterpret_cast<const uint8_t *>(rec), total, id, vault_id, key_version,
						 dims, width, keys::DataKey(vault_id, key_version), out);
	if (rec != local.data)
		pfree(rec);
	if (!s.ok())
		ThrowCorrupt("index vector record", s);
}

/* Reads all directory entries. */
DirEntry *
ReadDirectory(Relation index, const MetaData &meta, int *n)
{
	int cap = 16;
	int count = 0;
	DirEntry *out = static_cast<DirEntry *>(palloc(sizeof(DirEntry) * cap));
	BlockNumber block = meta.first_dir_block;
	int guard = 0;
	while (block != InvalidBlockNumber)
	{
		if (++guard > 1000000)
			ereport(ERROR,
					(errcode(ERRCODE_INDEX_CORRUPTED), errmsg("index directory chain loops")));
		Buffer buf = ReadBuffer(index, block);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		Page page = BufferGetPage(buf);
		if (GetOpaque(page)->kind != kDirPage)
		{
			UnlockReleaseBuffer(buf);
			ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
							errmsg("index directory page %u is damaged", block)));
		}
		int k = static_cast<int>(
			(reinterpret_cast<PageHeader>(page)->pd_lower - MAXALIGN(SizeOfPageHeaderData)) /
			sizeof(DirEntry));
		const DirEntry *e = reinterpret_cast<const DirEntry *>(PageGetContents(page));
		for (int i = 0; i < k; i++)
		{
			if (count == cap)
			{
				cap *= 2;
				out = static_cast<DirEntry *>(repalloc(out, sizeof(DirEntry) * cap));
			}
			out[count++] = e[i];
		}
		block = GetOpaque(page)->next;
		UnlockReleaseBuffer(buf);
	}
	*n = count;
	return out;
}

} // namespace vector_vault::index
