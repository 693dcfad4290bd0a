/*
 * hnsw.h — the vault_hnsw index access method: shared declarations.
 *
 * Files (one per concern, as pgvector and contrib/bloom split theirs):
 *   hnsw_am.cpp      handler, options, GUCs, cost estimate, validation
 *   hnsw_pages.cpp   on-disk format: metapage, vault directory, element records, vector stream;
 *                    the only place index data is encrypted and decrypted
 *   hnsw_cache.cpp   the decrypted graph cache in shared memory: representations, loading,
 *                    validation, eviction, and reading the graph from pages when it won't fit
 *   hnsw_build.cpp   CREATE INDEX: collect, build with hnswlib on threads, write pages
 *   hnsw_insert.cpp  INSERT: plan with the cache, write pages, apply to the cache
 *   hnsw_scan.cpp    ORDER BY col <op> $1 LIMIT k: where a search starts
 *   hnsw_vacuum.cpp  VACUUM: unlink deleted elements and repair their neighbours
 *   hnsw_verify.cpp  vault.hnsw_verify(index)
 *
 * On disk (every page has a PageOpaque in its special space):
 *   block 0           metapage: parameters, tails, change counter, build_tail (see below)
 *   directory pages   one entry per vault: vault id, entry point, its level, element count,
 *                     and the graph blocks its CREATE INDEX elements were written to
 *   graph pages       element records (items): element id, level, flags, heap TID, vault id,
 *                     key version, vector locator — then the neighbour lists, AES-256-GCM
 *                     sealed under the vault's data key with the header as associated data
 *   vector pages      a byte stream of sealed vectors (nonce, ciphertext, tag); a record may
 *                     continue on the next vector page, so 784-float vectors pack pages fully;
 *                     float32 per dimension, or binary16 halves in an index on ehalfvec (the
 *                     metapage's element_width, fixed by CREATE INDEX; readers take it from
 *                     there, never from the column type)
 * Each vault is its own HNSW sub-graph: links never cross vaults, and a search walks only the
 * sub-graphs of the vaults the principal may read. CREATE INDEX writes each vault's elements on
 * consecutive graph pages and records the range in the vault's entry (build_first,
 * build_blocks); later elements go to pages from the metapage's build_tail on. So one vault's
 * elements are found by reading its range and the pages after build_tail (the cache's vault
 * locator); an index built before these fields existed has them zero and is read whole.
 * Nothing in any page is plaintext except structure (ids, TIDs, levels, counts, vault ids, block
 * numbers), which the threat model leaves unprotected.
 */
#pragma once

#include "core/hnsw_graph.h"
#include "core/index_record.h"
#include "core/metric.h" /* Metric, KernelFor, PrepareForMetric: one place per metric */

#include "pg/pg.h"

extern "C"
{
#include "access/amapi.h"
#include "access/genam.h"
#include "storage/bufmgr.h"
#include "utils/relcache.h"
}

namespace vector_vault::index
{

using hnsw::ElementId;
using hnsw::kNoElement;

/* Reloption defaults and limits (DEFAULT/MIN/MAX triples). */
constexpr int kDefaultM = 16;
constexpr int kMinM = 2;
constexpr int kMaxM = hnsw::kMaxM;
constexpr int kDefaultEfConstruction = 64;
constexpr int kMinEfConstruction = 4;
constexpr int kMaxEfConstruction = 1000;
constexpr int kDefaultEfSearch = 40;
constexpr int kMinEfSearch = 1;
constexpr int kMaxEfSearch = 1000;

/* vector_vault.iterative_scan values, and max_scan_tuples' default (as pgvector's). */
constexpr int kIterativeOff = 0;
constexpr int kIterativeRelaxed = 1;
constexpr int kIterativeStrict = 2;
constexpr int kDefaultMaxScanTuples = 20000;
constexpr int kMaxIndexDims = 16000;

/* Page kinds, in PageOpaque.kind. */
enum PageKind : uint16
{
	kMetaPage = 1,
	kDirPage = 2,
	kGraphPage = 3,
	kVectorPage = 4
};

constexpr uint16 kPageMagic = 0x5648; /* "VH" */
constexpr uint32 kMetaMagic = 0x56564858;
constexpr uint32 kFormatVersion = 1;
constexpr BlockNumber kMetaBlock = 0;

/* Special space of every index page. */
struct PageOpaque
{
	uint16 kind;
	uint16 magic;
	BlockNumber next; /* next directory / vector page, InvalidBlockNumber at the end */
};

/* The metapage contents. */
struct MetaData
{
	uint32 magic;
	uint32 version;
	uint32 dims;
	uint16 m;
	uint16 ef_construction;
	uint8 metric;
	uint8 element_width; /* bytes per dimension in the vector stream: 2 (halves, an index on
						  * ehalfvec) or 4; 0 in indexes built before the field: 4 */
	uint8 pad[6];
	uint64 change_counter; /* bumped by every committed change; validates caches */
	uint32 next_element_id;
	uint32 element_count; /* records ever written (live + deleted) */
	BlockNumber first_dir_block;
	BlockNumber last_dir_block;
	BlockNumber graph_tail;  /* graph page receiving new elements */
	BlockNumber vector_tail; /* vector page receiving new vectors */
	uint32 vector_tail_offset;
	/* The vault locator: the first graph block that may hold elements written after CREATE
	 * INDEX (the build's last graph page, which inserts keep filling); every element on an
	 * earlier graph page lies in its vault's DirEntry build range. 0: no locator (an index
	 * built before it existed; read every graph page). */
	BlockNumber build_tail;
};

/* One vault's sub-graph in the directory. */
struct DirEntry
{
	uint64 vault_id;
	ElementId entry;
	int16 entry_level;
	uint16 build_blocks;     /* graph blocks of its CREATE INDEX elements; 0 with build_first set:
							  * too many to record (read every graph page) */
	uint32 count;            /* live elements */
	BlockNumber build_first; /* first graph block of its CREATE INDEX elements; 0: none */
};

/* Element flags. */
constexpr uint8 kElementDeleted = 0x01;

/* The authenticated header of an element record (graph page item). */
struct ElementHeader
{
	ElementId element_id;
	uint8 level;
	uint8 flags;
	uint16 reserved;
	ItemPointerData heap_tid;
	uint16 pad;
	uint64 vault_id;
	uint32 key_version;
	BlockNumber vec_block;
	uint32 vec_offset;
	uint32 pad2;
};

/* Bytes of plaintext neighbour lists for an element of a level (core/index_record.h). */
inline size_t
LinksBytes(int m, int level)
{
	return ElementLinksBytes(m, level);
}

/* Bytes of an element record on a page. */
size_t ElementRecordBytes(int m, int level);

/* The vector stream's element width of an index, from its metapage. */
inline ElementWidth
WidthOf(const MetaData &meta)
{
	return meta.element_width == static_cast<uint8>(ElementWidth::kHalf) ? ElementWidth::kHalf
																		 : ElementWidth::kFloat32;
}

/* Bytes of a sealed vector record in the stream. */
inline size_t
VectorRecordBytes(uint32 dims, ElementWidth width)
{
	return VectorRecordSize(dims, width);
}

/* Usable bytes of a vector page. */
size_t VectorPageCapacity();

/* Index parameters read from the metapage (or reloptions while building). */
struct IndexParams
{
	uint32 dims;
	int m;
	int ef_construction;
	Metric metric;
	ElementWidth width;
};

/* Reloptions of vault_hnsw. */
struct HnswOptions
{
	int32 vl_len_;
	int m;
	int ef_construction;
};

/* How the cache holds an index's vectors (vector_vault.cache_representation, and per entry). */
enum class Representation : uint8
{
	kFloat32 = 0, /* decrypted float32 vectors and neighbour lists */
	kSq8 = 1,     /* int8 codes per dimension and neighbour lists; final candidates re-ranked */
	kPages = 2,   /* element facts only: lists and vectors are read and decrypted from pages */
	kHalf = 3,    /* binary16 vectors and neighbour lists: an index on ehalfvec's float32 tier
				   * (its values are halves, so nothing is lost; distances widen as they load) */
	kSq4 = 4      /* 4-bit codes (two per byte) and neighbour lists, for caches too small for
				   * sq8; final candidates re-ranked */
};

/* vector_vault.cache_representation = auto: float32 (half for an index on ehalfvec) when it
 * fits, else sq8, else sq4, else pages. */
constexpr int kReprAuto = 5;

/* True for the quantized representations, whose scans re-rank their candidates exactly. */
inline bool
IsQuantized(Representation r)
{
	return r == Representation::kSq8 || r == Representation::kSq4;
}

/* GUC values. */
extern int g_ef_search;
extern int g_cache_size_mb;
extern int g_cache_indexes;
extern int g_cache_representation;
extern int g_build_threads;
extern int g_iterative_scan;
extern int g_max_scan_tuples;

/* Defines the index GUCs and registers the cache's shared memory (from _PG_init). */
void DefineGucs();

/* Defines the scan GUCs, iterative_scan and max_scan_tuples (from _PG_init). */
void DefineScanGucs();

/* Reloption or default values for an index. */
void GetOptions(Relation index, int *m, int *ef_construction);

/* The metric of the index's opclass. */
Metric GetMetric(Relation index);

/* The declared dimensions of the indexed column (errors when undeclared or too large). */
uint32 GetDims(Relation index);

/* The vector stream width a new index gets: halves for a column of ehalfvec (but float32 under
 * cosine, whose unit vectors are not halves), else float32. */
ElementWidth GetWidth(Relation index, Metric metric);

/* Opens a vault_hnsw index and its table (AccessShareLock) for a SQL function acting for the
 * caller: needs SELECT on the table or ownership; errors on anything but a vault_hnsw index. */
Relation OpenIndexForCaller(Oid indexoid, const char *function, Relation *heap);

/* --- hnsw_pages.cpp ------------------------------------------------------------------------ */

/* Initialises a page of a kind. */
void InitPage(Page page, PageKind kind);

/* The opaque data of a page. */
PageOpaque *GetOpaque(Page page);

/* Reads the metapage (share lock, copy). */
MetaData ReadMeta(Relation index);

/* The metapage's data inside a locked page. */
MetaData *MetaOf(Page page);

/* Decrypted contents of an element record. */
struct DecodedElement
{
	ElementHeader header;
	uint32 *links; /* LinksBytes(m, level) / 4 words, palloc'd, caller frees */
};

/* Seals links into a record at dst (ElementRecordBytes bytes). */
void SealElement(const ElementHeader &h, int m, const uint32 *links, char *dst);

/* Validates and decrypts an element record; false when the vault's key is unavailable. */
bool OpenElement(const char *src, size_t size, int m, DecodedElement *out, bool missing_key_ok);

/* Validates an element record and copies its plaintext header (no decryption). */
void PeekElement(const char *src, size_t size, int m, ElementHeader *out);

/* Reads one element record (of a known level) from its page and decrypts its lists into links
 * (LinksBytes(m, level) bytes). */
void ReadElementLinks(Relation index, BlockNumber block, OffsetNumber off, int m, ElementId id,
					  int level, uint32 *links);

/* Seals a vector into a stream record (VectorRecordBytes(dims, width) bytes). */
void SealVector(ElementId id, uint64 vault_id, uint32 key_version, const float *v, uint32 dims,
				ElementWidth width, char *dst);

/* Reads a vector record starting at (block, offset) and decrypts it into out. */
void ReadVector(Relation index, BlockNumber block, uint32 offset, ElementId id, uint64 vault_id,
				uint32 key_version, uint32 dims, ElementWidth width, float *out);

/* Reads every directory entry (palloc'd array). */
DirEntry *ReadDirectory(Relation index, const MetaData &meta, int *n);

/* --- hnsw_cache.cpp ------------------------------------------------------------------------ */

struct CacheEntry;

/* A cached index pinned for use: accessor for the graph algorithms. */
struct CacheRef
{
	CacheEntry *entry;
	char *arena;
	bool shared; /* in shared memory (LWLock held) or backend-private */
	bool exclusive;
	Relation index;
};

/* Registers the cache's shared memory (from _PG_init). */
void RegisterCacheShmem();

/*
 * Returns the index's cached graph, loaded or revalidated against the metapage as needed, locked
 * shared (or exclusive) until ReleaseCache, with the element facts and sub-graphs of the given
 * vaults resident (vaults == nullptr: every vault; facts_only: their element facts, nothing
 * decrypted). A vault's facts are read on its first use, through the vault locator when the
 * index has one (only its own graph pages and those written after CREATE INDEX), else with
 * every other vault's; its lists and vectors are decrypted on its first search or insert. Facts
 * of vaults not asked for may be missing: GetCachedElement reports their elements absent. When
 * the configured representation does not fit in the shared cache, the entry holds element facts
 * only and the graph is read from pages; only when even that does not fit, the backend keeps
 * those facts privately (a WARNING says so).
 */
CacheRef AcquireCacheFor(Relation index, bool exclusive, const uint64 *vaults, int nvaults,
						 bool facts_only = false);

/* AcquireCacheFor with every vault resident (VACUUM, rebuilds). */
inline CacheRef
AcquireCache(Relation index, bool exclusive)
{
	return AcquireCacheFor(index, exclusive, nullptr, 0);
}

/* Releases a reference from AcquireCache. */
void ReleaseCache(CacheRef *ref);

/* Marks the cached copy stale (after a failed write, or after VACUUM rewrote pages). */
void InvalidateCache(Relation index);

struct GraphScratch;

/*
 * Per-element view of the cache used by the graph algorithms (core/hnsw_graph.h) and by scans,
 * whatever the entry's representation. In the pages representation, Links and distances read
 * and decrypt index pages; a Postgres error raised there inside a C++ algorithm is kept in the
 * scratch and surfaces as a C++ exception, which the island catches and RethrowGraphError turns
 * back into the original error once the C++ frames are gone.
 *
 * Invariant: no accessor ever raises a Postgres error (longjmp) into its caller; the C++
 * algorithms that call them see only C++ exceptions, and only inside an island function.
 */
struct CacheGraph
{
	const CacheRef *ref;
	hnsw::GraphParams params;
	GraphScratch *scratch;

	float Dist(const hnsw::GraphParams &p, const float *q, ElementId id) const;
	float PairDist(const hnsw::GraphParams &p, ElementId a, ElementId b) const;
	int Links(ElementId id, int layer, ElementId *out) const;
	int Level(ElementId id) const;
	bool Deleted(ElementId id) const;
	uint32_t Capacity() const;

	/* Layer-0 links pointing at an element (kept by the single writer; pages: a lower bound). */
	int InDegree(ElementId id) const;

	/* Starts loading the first cache lines of an element's vector. */
	void Prefetch(ElementId id) const;

	/* The float32 vector of an element (decoded or read from pages) into out (dims floats). */
	void CopyVector(ElementId id, float *out) const;

	/* Marks the element being inserted, whose vector is not on pages yet (v stays valid). */
	void StageInsert(ElementId id, const float *v) const;

	/* Forgets the prepared query: the next Dist prepares again (a reused query buffer). */
	void NewQuery() const;
};

/* A graph accessor for a cache reference (scratch in the current memory context). */
CacheGraph GraphOf(const CacheRef &ref);

/* Raises the Postgres error a C++ island caught from the graph, if there is one. */
void RethrowGraphError(const CacheGraph &g);

/* Brackets a C++ island running the algorithms on g (page-read errors become exceptions). */
void EnterIsland(const CacheGraph &g) noexcept;
void LeaveIsland(const CacheGraph &g) noexcept;

/* The representation of a referenced entry. */
Representation CachedRepresentation(const CacheRef &ref);

/* Exact distance from q to an element, decrypting its vector from the pages. */
float ExactDistance(const CacheGraph &g, const float *q, ElementId id);

/* Facts about one cached element. */
struct CachedElement
{
	ItemPointerData tid;
	uint64 vault_id;
	int vault_index; /* into CachedVaults() */
	BlockNumber graph_block;
	OffsetNumber graph_off;
	uint8 level;
	bool present;
	bool deleted;
};

/* Reads an element's facts. */
bool GetCachedElement(const CacheRef &ref, ElementId id, CachedElement *out);

/* Cached vault directory entries (count, and array valid while the reference is held). */
const DirEntry *CachedVaults(const CacheRef &ref, int *n);

/* The cache's change counter and element count. */
uint64 CachedCounter(const CacheRef &ref);
uint32 CachedElements(const CacheRef &ref);

/* --- mutation of the cache by the (single) writer holding the index insert lock ------------- */

/* Reserves a slot for a new element id; false when the cache must grow first. */
bool CacheHasRoom(const CacheRef &ref, ElementId id, int level);

/* Stores a new element (vector, links, facts) and publishes it. */
void CacheAddElement(const CacheRef &ref, ElementId id, const ElementHeader &h, const float *v,
					 const uint32 *links, BlockNumber graph_block, OffsetNumber graph_off,
					 int vault_index);

/* Replaces one neighbour list. */
void CacheSetLinks(const CacheRef &ref, ElementId id, int layer, const ElementId *links, int n);

/* Sets or adds a vault's directory entry; returns its index. */
int CacheSetVault(const CacheRef &ref, const DirEntry &e);

/* Records a block's current LSN (and kind) after the writer changed it. */
void CacheNoteBlock(const CacheRef &ref, BlockNumber block, XLogRecPtr lsn, PageKind kind);

/* Sets the change counter the cache reflects. */
void CacheSetCounter(const CacheRef &ref, uint64 counter);

/* Writes a not yet published element's vector, so the planner can compute distances to it. */
void CacheStageVector(const CacheRef &ref, ElementId id, const float *v);

/* Copies all neighbour lists of an element in record order (LinksBytes(m, level) bytes). */
void CacheGetAllLinks(const CacheRef &ref, ElementId id, uint32 *out);

/* Marks the referenced entry stale (a write failed half-way). */
void CacheMarkInvalid(const CacheRef &ref);

/* A per-backend visited-tag array covering ids below capacity. */
hnsw::VisitedSet *BackendVisitedSet(uint32 capacity);

/* --- WAL-logged page writes of inserts and vacuum (hnsw_wal.cpp) ---------------------------- */

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

/* Records a changed page in *t. */
void Touch(TouchedList *t, BlockNumber block, XLogRecPtr lsn, PageKind kind);

/* Appends a sealed vector record to the stream (WAL-logged); returns where it starts. */
void AppendVectorLogged(Relation index, MetaData *meta, const char *rec, size_t len,
						BlockNumber *rec_block, uint32 *rec_off, TouchedList *touched);

/* Copies an insert's allocation state (next id, element count, tails, directory blocks) into a
 * metapage image; the change counter is not part of it. */
void CopyAllocation(MetaData *dst, const MetaData &src);

/* Adds an element record to the graph tail page (or a new one), and in the same WAL record
 * allocates its id in the metapage (meta already holds the new next id); returns its location. */
void AddElementLogged(Relation index, MetaData *meta, const char *rec, size_t len,
					  BlockNumber *block, OffsetNumber *off, TouchedList *touched);

/* Writes a vault's directory entry (in place: entry point, level and count, keeping the vault
 * locator; or appended with an empty build range), WAL-logged. */
void UpdateDirectoryLogged(Relation index, MetaData *meta, const DirEntry &d, TouchedList *touched);

/* The heavyweight lock serialising writers (inserts, vacuum) of one index. */
void LockIndexForWrite(Relation index);
void UnlockIndexForWrite(Relation index);

/* One element record to re-seal in place with new neighbour lists and flags. */
struct ElementRewrite
{
	ElementId id;
	BlockNumber block;
	OffsetNumber off;
	uint8 set_flags;
	const uint32 *links; /* all layers, LinksBytes(m, level) bytes */
	XLogRecPtr lsn;      /* out: LSN of the WAL record that changed the page */
};

/* Re-seals element records in place, WAL-logged, up to four pages per record. */
void RewriteElements(Relation index, int m, ElementRewrite *rw, int n);

/* Overwrites a sealed vector record (which may span vector pages) with zeros, WAL-logged. */
void ScrubVectorLogged(Relation index, BlockNumber block, uint32 offset, size_t record_bytes);

/* Updates the metapage (counter + 1 and the given fields) in one WAL record; returns the LSN. */
XLogRecPtr BumpMeta(Relation index, Buffer meta_buf, const MetaData &updated);

/* --- insert (hnsw_insert.cpp), used by the build's fallback too ---------------------------- */

/* Inserts one decrypted vector of a vault into the index. */
void InsertVector(Relation index, const float *v, uint64 vault_id, uint32 key_version,
				  ItemPointer tid);

/* Draws a random level for a new element. */
int RandomLevel(int m);

/* Live elements of a vault sealed with a key version (headers only, no decryption). */
uint64 CountLiveElements(Relation index, uint64 vault_id, uint32 key_version);

/* --- AM callbacks ------------------------------------------------------------------------- */

IndexBuildResult *hnsw_build(Relation heap, Relation index, IndexInfo *info) noexcept;
void hnsw_buildempty(Relation index) noexcept;
bool hnsw_insert(Relation index, Datum *values, bool *isnull, ItemPointer heap_tid, Relation heap,
				 IndexUniqueCheck check_unique, bool index_unchanged, IndexInfo *info) noexcept;
IndexBulkDeleteResult *hnsw_bulkdelete(IndexVacuumInfo *info, IndexBulkDeleteResult *stats,
									   IndexBulkDeleteCallback callback,
									   void *callback_state) noexcept;
IndexBulkDeleteResult *hnsw_vacuumcleanup(IndexVacuumInfo *info,
										  IndexBulkDeleteResult *stats) noexcept;
IndexScanDesc hnsw_beginscan(Relation index, int nkeys, int norderbys) noexcept;
void hnsw_rescan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys,
				 int norderbys) noexcept;
bool hnsw_gettuple(IndexScanDesc scan, ScanDirection dir) noexcept;
void hnsw_endscan(IndexScanDesc scan) noexcept;
char *hnsw_buildphasename(int64 phase) noexcept;

/* Build progress phases. */
constexpr int64 kPhaseLoad = 2;
constexpr int64 kPhaseBuildGraph = 3;
constexpr int64 kPhaseWrite = 4;

/*
 * Decrypts an evector datum for the index (system path: no principal check, see hnsw_build).
 * False when the value is not indexed: its vault's key was shredded (a dropped vault), or it is
 * a zero vector under cosine distance (undefined; pgvector skips those too).
 */
bool OpenVectorForIndex(Datum d, uint32 dims, Metric metric, float *out, uint64 *vault_id,
						uint32 *key_version);

} // namespace vector_vault::index
