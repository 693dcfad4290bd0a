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

static_assert(sizeof(ElementHeader) == 40, "element header layout");
static_assert(sizeof(DirEntry) == 24, "directory entry layout");

namespace
{

constexpr size_t kNonce = 12;
constexpr size_t kTag = 16;
constexpr size_t kVectorAad = 24;

/* Builds the associated data of a vector record. */
void
VectorAad(ElementId id, uint64 vault_id, uint32 key_version, uint32 dims, uint8_t *aad)
{
	memcpy(aad, "VVEC", 4);
	PutU32(aad + 4, id);
	PutU64(aad + 8, vault_id);
	PutU32(aad + 16, key_version);
	PutU32(aad + 20, dims);
}

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
	return sizeof(ElementHeader) + kNonce + LinksBytes(m, level) + kTag;
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
	size_t n = LinksBytes(m, h.level);
	memcpy(dst, &h, sizeof(h));
	uint8_t *nonce = reinterpret_cast<uint8_t *>(dst) + sizeof(h);
	Status s = RandomBytes(nonce, kNonce);
	if (s.ok())
		s = AeadSeal(keys::DataKey(h.vault_id, h.key_version), nonce,
					 reinterpret_cast<const uint8_t *>(dst), sizeof(h),
					 reinterpret_cast<const uint8_t *>(links), n, nonce + kNonce,
					 nonce + kNonce + n);
	if (!s.ok())
		pg::ThrowStatus(s, "could not encrypt an index element", nullptr);
}

/* Validates and decrypts an element record. */
bool
OpenElement(const char *src, size_t size, int m, DecodedElement *out, bool missing_key_ok)
{
	if (size < sizeof(ElementHeader))
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED), errmsg("index element record is truncated")));
	memcpy(&out->header, src, sizeof(ElementHeader));
	const ElementHeader &h = out->header;
	if (h.level > hnsw::kMaxLevel || size != ElementRecordBytes(m, h.level))
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index element record %u has an invalid size or level", h.element_id)));
	if (missing_key_ok && !keys::DataKeyExists(h.vault_id, h.key_version))
	{
		out->links = nullptr;
		return false;
	}
	size_t n = LinksBytes(m, h.level);
	out->links = static_cast<uint32 *>(palloc(n));
	const uint8_t *nonce = reinterpret_cast<const uint8_t *>(src) + sizeof(ElementHeader);
	Status s =
		AeadOpen(keys::DataKey(h.vault_id, h.key_version), nonce,
				 reinterpret_cast<const uint8_t *>(src), sizeof(ElementHeader), nonce + kNonce, n,
				 nonce + kNonce + n, reinterpret_cast<uint8_t *>(out->links));
	if (!s.ok())
		ThrowCorrupt("index element record", s);
	/* Neighbour counts must fit their lists. */
	if (out->links[0] > static_cast<uint32>(2 * m))
		ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
						errmsg("index element %u has too many neighbours", h.element_id)));
	for (int l = 1; l <= h.level; l++)
		if (out->links[(1 + 2 * m) + (l - 1) * (1 + m)] > static_cast<uint32>(m))
			ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
							errmsg("index element %u has too many neighbours", h.element_id)));
	return true;
}

/* Seals a vector into a stream record. */
void
SealVector(ElementId id, uint64 vault_id, uint32 key_version, const float *v, uint32 dims,
		   char *dst)
{
	uint8_t aad[kVectorAad];
	VectorAad(id, vault_id, key_version, dims, aad);
	uint8_t *nonce = reinterpret_cast<uint8_t *>(dst);
	size_t n = static_cast<size_t>(dims) * sizeof(float);
	Status s = RandomBytes(nonce, kNonce);
	if (s.ok())
		s = AeadSeal(keys::DataKey(vault_id, key_version), nonce, aad, sizeof(aad),
					 reinterpret_cast<const uint8_t *>(v), n, nonce + kNonce, nonce + kNonce + n);
	if (!s.ok())
		pg::ThrowStatus(s, "could not encrypt an index vector", nullptr);
}

/* Reads and decrypts a vector record that may span vector pages. */
void
ReadVector(Relation index, BlockNumber block, uint32 offset, ElementId id, uint64 vault_id,
		   uint32 key_version, uint32 dims, float *out)
{
	size_t total = VectorRecordBytes(dims);
	size_t cap = VectorPageCapacity();
	char *rec = static_cast<char *>(palloc(total));
	size_t got = 0;
	while (got < total)
	{
		if (block == InvalidBlockNumber || block >= RelationGetNumberOfBlocks(index) ||
			offset >= cap)
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
	uint8_t aad[kVectorAad];
	VectorAad(id, vault_id, key_version, dims, aad);
	size_t n = static_cast<size_t>(dims) * sizeof(float);
	const uint8_t *nonce = reinterpret_cast<const uint8_t *>(rec);
	Status s = AeadOpen(keys::DataKey(vault_id, key_version), nonce, aad, sizeof(aad),
						nonce + kNonce, n, nonce + kNonce + n, reinterpret_cast<uint8_t *>(out));
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
