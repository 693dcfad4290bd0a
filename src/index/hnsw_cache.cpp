/*
 * hnsw_cache.cpp — the index cache: why warm searches do no AES, and why memory is a budget.
 *
 * Index pages hold only ciphertext. Decrypting the vectors a search touches on every query
 * would cost more than the search itself, so each index is decrypted once into a cache in
 * shared memory (vector_vault.cache_size MB, allocated at server start, excluded from core
 * dumps, zeroed on eviction) and searched there with plain pointers: element id -> fixed-size
 * slot holding the element's facts (48 bytes), its level-0 neighbour list and its vector;
 * upper-layer lists sit in a pool.
 *
 * Representations (vector_vault.cache_representation, per entry):
 *   sq8      the vector as one byte per dimension (core/quantize.h), trained on a sample when
 *            the entry loads; scans re-rank their closest candidates with exact distances
 *            decrypted from the sealed vectors (hnsw_scan.cpp);
 *   sq4      half a byte per dimension (16 levels of the same trained range, two codes per byte,
 *            the slot not padded between list and codes), for caches too small for sq8: each
 *            distance unpacks an element's codes and runs sq8's kernel; scans re-rank every hit;
 *   float32  the vector as is;
 *   half     an index on ehalfvec's float32: the vector as the binary16 halves it is (its
 *            stream seals halves, hnsw.h's element width), compared with a float32 query by
 *            the widening kernels of core/half_distance.h; exact, half the bytes;
 *   pages    facts only: lists and vectors are read from the pages and decrypted as a search
 *            visits them. Used when the configured representation does not fit.
 * The graph algorithms see all five through CacheGraph (Dist, PairDist, Links). Page reads
 * inside a C++ island run under PG_TRY; an error is kept and re-raised once the island returns.
 *
 * Residency. A full load reads the element facts only (plaintext headers, nothing decrypted);
 * a vault's lists and vectors are decrypted the first time a search or insert needs that vault
 * (AcquireCacheFor), so a tenant's first query after a restart decrypts its own vault only.
 * Facts are per vault too when the index has a vault locator (hnsw.h: CREATE INDEX records each
 * vault's graph block range and the metapage the block from which later elements go): the
 * full load then reads the directory and the pages from build_tail on (every vault's later
 * elements) and the entry is partial; a vault's facts are read from its own range the first
 * time it is wanted, searched, listed (ListAll asks for facts only) or inserted into, and
 * flagged kVaultFacts. Until then its elements read as absent, and graph pages before
 * build_tail that no loaded vault needed are kUnreadPage in the block table, which
 * revalidation skips. A page read for one vault may hold another's elements (vault
 * boundaries): they are skipped, and decoded when their vault is loaded, unless the page's LSN
 * moved since it was read, in which case every held vault's elements on it are decoded again
 * (and in-degrees recounted) as revalidation would. A vault's build id range is kept so that
 * decrypting its sub-graph visits its own slots and those from the tail on, not all of them.
 * Whenever anything is unclear (no locator: an index built before it; a vault missing from the
 * directory or with a range too long to record) the load reads every graph page before
 * build_tail for all vaults and the entry stops being partial. VACUUM, vault.prewarm and a
 * principal of every vault want every vault: they read every vault's range, which is every
 * graph page as before (but no vector page just to learn its kind). The sq8
 * quantizer of a partial entry trains on the elements of 16 runs of 4 graph pages spread over
 * the index (about 2,400 vectors, whose records share few vector pages, under a few dozen data
 * keys) rather than on every k-th element's of up to 8,192 (a page read and, per vault, a data
 * key unwrapped for nearly each).
 * Entries beyond vector_vault.cache_indexes, or that do not fit, evict the least recently used
 * idle entry; a per-index history keeps load and eviction counts for vault.index_cache.
 *
 * Validity. The metapage carries a change counter that every writer bumps in the last WAL
 * record of its change. A cache entry records the counter it reflects and the LSN of every
 * graph/directory page it decoded. A reader compares counters under the metapage's buffer lock:
 *   equal      the cache is current (writers apply their own changes to the cache before they
 *              release the metapage, so the pair is consistent on the primary);
 *   different  a change happened that this cache did not see (a standby replaying WAL, a writer
 *              that failed half-way, a VACUUM): the entry is revalidated page by page — every
 *              graph or directory page whose LSN differs is decoded again, new elements'
 *              vectors are read — under the entry's exclusive lock.
 * Elements of vaults whose keys are gone (dropped vaults) are never loaded; when the shared
 * access epoch moves, an entry holding such a vault is reloaded, purging its plaintext. Both
 * questions are answered from one listing of the keyring directory per load or check
 * (keys::SnapshotKeys), not a file-system call per vault or element. A
 * dropped index's entry is freed by an object-access hook.
 *
 * Concurrency. Readers (scans) hold the entry's LWLock shared; the single writer of an index
 * (inserts and vacuum are serialised by a heavyweight lock, see hnsw_insert.cpp) also holds it
 * shared and publishes new elements by bumping an atomic count after filling their slot, and
 * rewrites neighbour lists under a per-element seqlock that readers retry on. Loading (facts or
 * a vault), revalidation and eviction take the lock exclusive.
 *
 * When the shared cache is disabled or cannot hold even an index's facts, the backend keeps the
 * facts privately (48 bytes per element, nothing decrypted; a WARNING says so once per backend)
 * and reads the graph from pages: no session ever holds a decrypted copy of an index.
 */
#include "core/half.h"
#include "core/quantize.h"
#include "core/secure.h"

#include <algorithm>
#include <cstring>

#include "index/hnsw.h"
#include "keys/keys.h"
#include "pg/guard.h"
#include "pg/secret.h"
#include "pg/shmem.h"

extern "C"
{
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_class.h"
#include "commands/defrem.h"
#include "utils/syscache.h"
#include "catalog/index.h"
#include "commands/defrem.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/builtins.h"
#include "port/atomics.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include <sys/mman.h>
}

namespace vector_vault::index
{

namespace
{

constexpr uint8 kSlotPresent = 0x01;
constexpr uint8 kSlotLoaded = 0x04; /* neighbour lists and vector are in the slot */
/* Flags of a vault in the cache's copy of its DirEntry, kept where the page has build_blocks
 * (VaultFlags): */
constexpr uint16 kVaultResident = 0x01; /* its lists and vectors are loaded */
constexpr uint16 kVaultFacts = 0x02;    /* its element facts are loaded (partial entries) */
constexpr uint8 kUnreadPage = 0xFF;     /* in the block kinds: not read yet (partial entries) */
constexpr uint8 kSlotDeleted = 0x02;
constexpr uint32 kNoUpper = 0xFFFFFFFFu;
constexpr Size kAlign = 64;

/* The fixed head of an element slot. */
struct SlotHead
{
	pg_atomic_uint32 seq; /* seqlock over the neighbour lists */
	uint8 level;
	uint8 flags;
	uint16 vault_index;
	ItemPointerData tid;
	uint16 pad;
	BlockNumber graph_block;
	OffsetNumber graph_off;
	uint16 pad2;
	uint32 upper_ref;      /* word offset into the upper pool, kNoUpper when level 0 */
	uint32 indegree;       /* layer-0 links pointing here (maintained by loads and the writer) */
	BlockNumber vec_block; /* where the sealed vector starts (re-ranking, pages) */
	uint32 vec_offset;
	uint32 key_version;
	uint32 pad3;
};
static_assert(sizeof(SlotHead) == 48, "slot head layout");

/* A free range of the shared arena region. */
struct Extent
{
	Size off;
	Size len;
};

} // namespace

/* One cached index (shared or backend-private). */
struct CacheEntry
{
	LWLock *lock; /* nullptr for private entries */
	Oid dbid;
	Oid relnode;
	Oid relid;
	bool used;
	bool valid;
	bool stale_vaults; /* must be reloaded to purge vaults whose keys are gone */
	uint8 repr;        /* Representation */
	pg_atomic_uint64 change_counter;
	pg_atomic_uint64 hits; /* searches and inserts served */
	uint64 loads;          /* full loads since the entry was created */
	uint64 vectors;        /* elements resident after the last load (statistics) */
	uint64 epoch;
	uint64 last_used;
	Size arena_off; /* offset in the shared region (shared entries) */
	Size arena_len;
	char *private_arena;
	/* layout */
	uint32 dims;
	int m;
	uint8 metric;
	uint8 width; /* the vector stream's ElementWidth (from the metapage) */
	uint32 slot_bytes;
	uint32 vec_offset;
	uint32 slot_capacity;
	pg_atomic_uint32 nslots;
	Size upper_off;
	uint32 upper_cap;
	uint32 upper_used;
	Size vault_off;
	uint32 vault_cap;
	pg_atomic_uint32 nvaults;
	Size lsn_off;
	Size kind_off;
	Size quant_off; /* sq8: lo[dims] then step[dims] */
	uint32 block_cap;
	uint32 nblocks;
	Size idrange_off; /* per vault: ids [lo, end) of its elements on its build range pages */
	/* The vault locator (hnsw.h): a partial entry holds the facts of the vaults flagged
	 * kVaultFacts and of every element on graph pages from build_tail on; other vaults'
	 * elements read as absent, and graph pages before build_tail not yet read are kUnreadPage. */
	bool partial;
	BlockNumber build_tail;
	uint32 tail_first_id; /* no element on a page from build_tail on has a lower id */
};

namespace
{

/* Loads and evictions of one index, kept across its entry's eviction (for vault.index_cache). */
struct History
{
	Oid dbid;
	Oid relnode;
	Oid relid;
	uint64 loads;
	uint64 evictions;
	uint64 last_used;
};

/* The shared header of the cache; free, entries and history follow it (sizes from the GUC). */
struct CacheShared
{
	LWLock *registry_lock;
	Size region_len;
	uint64 clock;
	int nentries;
	int nfree;
	Extent *free;        /* 2 * nentries + 2 */
	CacheEntry *entries; /* nentries */
	History *history;    /* nhistory */
	int nhistory;
};

CacheShared *g_cache = nullptr;
char *g_region = nullptr;

/* Backend-private fallback copies (element facts only: the pages representation). */
constexpr int kMaxPrivate = 4;
CacheEntry *g_private[kMaxPrivate];
bool g_warned_private = false;

/* History records: indexes come and go more often than entries. */
int
HistoryRecords(void)
{
	return Max(4096, 4 * g_cache_indexes);
}

/* Bytes of the header with its arrays. */
Size
HeaderSize(void)
{
	Size n = static_cast<Size>(g_cache_indexes);
	Size s = MAXALIGN(sizeof(CacheShared));
	s = add_size(s, MAXALIGN(mul_size(2 * n + 2, sizeof(Extent))));
	s = add_size(s, MAXALIGN(mul_size(n, sizeof(CacheEntry))));
	s = add_size(s, MAXALIGN(mul_size(static_cast<Size>(HistoryRecords()), sizeof(History))));
	return s;
}

/* Shared memory needed: header plus the region, with room to align the region to 2 MB. */
Size
CacheShmemSize(void)
{
	if (g_cache_size_mb <= 0)
		return 0;
	return add_size(HeaderSize(),
					add_size(static_cast<Size>(g_cache_size_mb) * 1024 * 1024, 2 * 1024 * 1024));
}

/* Creates the cache header and region in shared memory. */
void
CacheShmemInit(bool)
{
	if (g_cache_size_mb <= 0)
		return;
	bool found = false;
	Size total = CacheShmemSize();
	char *base = static_cast<char *>(ShmemInitStruct("vector_vault index cache", total, &found));
	g_cache = reinterpret_cast<CacheShared *>(base);
	uintptr_t start = reinterpret_cast<uintptr_t>(base + HeaderSize());
	const uintptr_t two_mb = 2 * 1024 * 1024;
	start = (start + two_mb - 1) & ~(two_mb - 1);
	g_region = reinterpret_cast<char *>(start);
	if (!found)
	{
		memset(base, 0, HeaderSize());
		Size n = static_cast<Size>(g_cache_indexes);
		char *p = base + MAXALIGN(sizeof(CacheShared));
		g_cache->nentries = g_cache_indexes;
		g_cache->free = reinterpret_cast<Extent *>(p);
		p += MAXALIGN((2 * n + 2) * sizeof(Extent));
		g_cache->entries = reinterpret_cast<CacheEntry *>(p);
		p += MAXALIGN(n * sizeof(CacheEntry));
		g_cache->history = reinterpret_cast<History *>(p);
		g_cache->nhistory = HistoryRecords();
		LWLockPadded *locks = GetNamedLWLockTranche("vector_vault index cache");
		g_cache->registry_lock = &locks[0].lock;
		for (int i = 0; i < g_cache->nentries; i++)
			g_cache->entries[i].lock = &locks[i + 1].lock;
		g_cache->region_len = static_cast<Size>(g_cache_size_mb) * 1024 * 1024;
		g_cache->nfree = 1;
		g_cache->free[0] = {0, g_cache->region_len};
		/* Plaintext vectors must not end up in core dumps. */
		if (!ExcludeFromCoreDump(g_region, g_cache->region_len))
			ereport(
				LOG,
				(errmsg("vector_vault: could not exclude the index cache from core dumps: %m")));
	}
}

/* Requests the cache's LWLocks (called with the shared-memory request). */
Size
CacheRequest(void)
{
	RequestNamedLWLockTranche("vector_vault index cache", g_cache_indexes + 1);
	return CacheShmemSize();
}

/* Base address of an entry's arena. */
char *
ArenaOf(const CacheEntry *e)
{
	return e->lock ? g_region + e->arena_off : e->private_arena;
}

/* Rounds up to the cache alignment. */
Size
AlignUp(Size x)
{
	return (x + kAlign - 1) & ~(kAlign - 1);
}

/* Slot head of an element. */
inline SlotHead *
Slot(const CacheEntry *e, char *arena, ElementId id)
{
	return reinterpret_cast<SlotHead *>(arena + static_cast<Size>(id) * e->slot_bytes);
}

/* Level-0 list (count + ids) of a slot. */
inline uint32 *
Links0(SlotHead *h)
{
	return reinterpret_cast<uint32 *>(reinterpret_cast<char *>(h) + sizeof(SlotHead));
}

/* Upper-layer pool. */
inline uint32 *
UpperPool(const CacheEntry *e, char *arena)
{
	return reinterpret_cast<uint32 *>(arena + e->upper_off);
}

/* Vault table. */
inline DirEntry *
Vaults(const CacheEntry *e, char *arena)
{
	return reinterpret_cast<DirEntry *>(arena + e->vault_off);
}

/* Per-block LSNs and kinds. */
inline XLogRecPtr *
BlockLsns(const CacheEntry *e, char *arena)
{
	return reinterpret_cast<XLogRecPtr *>(arena + e->lsn_off);
}

inline uint8 *
BlockKinds(const CacheEntry *e, char *arena)
{
	return reinterpret_cast<uint8 *>(arena + e->kind_off);
}

/* Per-vault id ranges: [2i] lowest id, [2i + 1] highest id + 1 (0: none seen). */
inline uint32 *
IdRanges(const CacheEntry *e, char *arena)
{
	return reinterpret_cast<uint32 *>(arena + e->idrange_off);
}

/* The cache's flags of a vault (the page's build_blocks field is not needed in the cache). */
inline uint16 &
VaultFlags(DirEntry &v)
{
	return v.build_blocks;
}

inline uint16
VaultFlags(const DirEntry &v)
{
	return v.build_blocks;
}

/* True when the entry holds the element facts of a vault. */
inline bool
HasFacts(const CacheEntry *e, const DirEntry &v)
{
	return !e->partial || (VaultFlags(v) & kVaultFacts);
}

/* List (count + ids) of a slot on a layer. */
inline uint32 *
ListOf(const CacheEntry *e, char *arena, SlotHead *h, int layer)
{
	if (layer == 0)
		return Links0(h);
	return UpperPool(e, arena) + h->upper_ref + static_cast<Size>(layer - 1) * (1 + e->m);
}

/*
 * Sizes an entry's layout for the given capacities and representation; returns the arena bytes
 * needed. float32, half and sq8 slots hold head, layer-0 list and the vector (4, 2 or 1 bytes per
 * dimension, from a 64-byte boundary; the quantizer's lo/step arrays follow the tables); sq4
 * slots the same with half a byte per dimension right after the list; pages slots only the head,
 * with no upper-layer pool.
 */
Size
Layout(CacheEntry *e, Representation repr, uint32 dims, int m, uint32 slots, uint32 upper_words,
	   uint32 vaults, uint32 blocks)
{
	e->dims = dims;
	e->m = m;
	e->repr = static_cast<uint8>(repr);
	const Size list_end = sizeof(SlotHead) + sizeof(uint32) * (1 + 2 * m);
	Size per_dim = 0; /* bytes per dimension of the 64-byte aligned vector area */
	switch (repr)
	{
		case Representation::kFloat32:
			per_dim = sizeof(float);
			break;
		case Representation::kHalf:
			per_dim = sizeof(uint16);
			break;
		case Representation::kSq8:
			per_dim = 1;
			break;
		case Representation::kSq4:
			/* codes right after the list: a slot is 64-byte aligned as a whole, not its parts */
			e->vec_offset = static_cast<uint32>(list_end);
			e->slot_bytes = static_cast<uint32>(AlignUp(list_end + sq4::PackedBytes(dims)));
			break;
		case Representation::kPages:
			e->vec_offset = 0;
			e->slot_bytes = sizeof(SlotHead);
			upper_words = 0;
			break;
	}
	if (per_dim > 0)
	{
		e->vec_offset = static_cast<uint32>(AlignUp(list_end));
		e->slot_bytes = static_cast<uint32>(e->vec_offset + AlignUp(per_dim * dims));
	}
	e->slot_capacity = slots;
	Size off = AlignUp(static_cast<Size>(slots) * e->slot_bytes);
	e->upper_off = off;
	e->upper_cap = upper_words;
	off = AlignUp(off + sizeof(uint32) * static_cast<Size>(upper_words));
	e->vault_off = off;
	e->vault_cap = vaults;
	off = AlignUp(off + sizeof(DirEntry) * static_cast<Size>(vaults));
	e->lsn_off = off;
	e->block_cap = blocks;
	off = AlignUp(off + sizeof(XLogRecPtr) * static_cast<Size>(blocks));
	e->kind_off = off;
	off = AlignUp(off + blocks);
	e->idrange_off = off;
	off = AlignUp(off + 2 * sizeof(uint32) * static_cast<Size>(vaults));
	e->quant_off = off;
	if (IsQuantized(repr))
		off = AlignUp(off + 2 * sizeof(float) * static_cast<Size>(dims));
	return off;
}

/* The sq8 quantizer's arrays of an entry. */
inline float *
QuantLo(const CacheEntry *e, char *arena)
{
	return reinterpret_cast<float *>(arena + e->quant_off);
}

inline float *
QuantStep(const CacheEntry *e, char *arena)
{
	return reinterpret_cast<float *>(arena + e->quant_off) + e->dims;
}

/* The representation of an entry. */
inline Representation
ReprOf(const CacheEntry *e)
{
	return static_cast<Representation>(e->repr);
}

/* Where an element's vector (float32 or codes) sits in its slot. */
inline char *
VecArea(const CacheEntry *e, SlotHead *s)
{
	return reinterpret_cast<char *>(s) + e->vec_offset;
}

/* The vector stream's width of an entry's index. */
inline ElementWidth
EntryWidth(const CacheEntry *e)
{
	return static_cast<ElementWidth>(e->width);
}

/* Stores an element's float32 vector in its slot in the entry's representation. */
void
StoreVector(const CacheEntry *e, char *arena, SlotHead *s, const float *v)
{
	switch (ReprOf(e))
	{
		case Representation::kFloat32:
			memcpy(VecArea(e, s), v, sizeof(float) * e->dims);
			break;
		case Representation::kHalf:
		{
			/* Exact: a half-width index holds halves (hnsw.h: never a cosine index). */
			uint16 *h = reinterpret_cast<uint16 *>(VecArea(e, s));
			for (uint32 i = 0; i < e->dims; i++)
				if (!FloatToHalf(v[i], &h[i]))
					h[i] = v[i] < 0 ? 0xFBFF : 0x7BFF; /* never for a value read from the stream */
			break;
		}
		case Representation::kSq8:
			sq8::Encode(v, QuantLo(e, arena), QuantStep(e, arena), e->dims,
						reinterpret_cast<uint8_t *>(VecArea(e, s)));
			break;
		case Representation::kSq4:
			sq4::Encode(v, QuantLo(e, arena), QuantStep(e, arena), e->dims,
						reinterpret_cast<uint8_t *>(VecArea(e, s)));
			break;
		case Representation::kPages:
			break;
	}
}

/* Capacities with room for growth from the metapage's current sizes. */
void
Capacities(const MetaData &meta, BlockNumber nblocks, int ndir, uint32 *slots, uint32 *upper,
		   uint32 *vaults, uint32 *blocks)
{
	uint32 n = meta.next_element_id;
	uint32 headroom = Max(256u, n / 4);
	*slots = n + headroom;
	/* Expected upper-layer lists per element: 1/(M-1); keep generous room. */
	double per = 1.0 / Max(1, meta.m - 1);
	*upper = static_cast<uint32>((*slots) * per * 3 * (1 + meta.m)) + 64 * (1 + meta.m);
	*vaults = static_cast<uint32>(ndir) + 64;
	double pages_per_element =
		static_cast<double>(VectorRecordBytes(meta.dims, WidthOf(meta))) / VectorPageCapacity() +
		static_cast<double>(ElementRecordBytes(meta.m, 1)) / (BLCKSZ / 2);
	*blocks = nblocks + static_cast<uint32>(headroom * pages_per_element) + 64;
}

/* Releases a free extent back to the region, merging neighbours. */
void
FreeExtent(Size off, Size len)
{
	if (len == 0)
		return;
	Extent *f = g_cache->free;
	int n = g_cache->nfree;
	int i = 0;
	while (i < n && f[i].off < off)
		i++;
	memmove(&f[i + 1], &f[i], sizeof(Extent) * (n - i));
	f[i] = {off, len};
	n++;
	/* merge with the next, then with the previous */
	if (i + 1 < n && f[i].off + f[i].len == f[i + 1].off)
	{
		f[i].len += f[i + 1].len;
		memmove(&f[i + 1], &f[i + 2], sizeof(Extent) * (n - i - 2));
		n--;
	}
	if (i > 0 && f[i - 1].off + f[i - 1].len == f[i].off)
	{
		f[i - 1].len += f[i].len;
		memmove(&f[i], &f[i + 1], sizeof(Extent) * (n - i - 1));
		n--;
	}
	g_cache->nfree = n;
}

/* First-fit allocation from the region; false when no extent is large enough. */
bool
AllocExtent(Size len, Size *off)
{
	for (int i = 0; i < g_cache->nfree; i++)
	{
		Extent &x = g_cache->free[i];
		if (x.len >= len)
		{
			*off = x.off;
			x.off += len;
			x.len -= len;
			if (x.len == 0)
			{
				memmove(&g_cache->free[i], &g_cache->free[i + 1],
						sizeof(Extent) * (g_cache->nfree - i - 1));
				g_cache->nfree--;
			}
			return true;
		}
	}
	return false;
}

/* Frees an entry's arena (registry lock held exclusively, entry lock held or unused). */
void
DropEntry(CacheEntry *e)
{
	if (e->arena_len > 0)
	{
		SecureZero(g_region + e->arena_off, e->arena_len);
		FreeExtent(e->arena_off, e->arena_len);
	}
	e->arena_len = 0;
	e->used = false;
	e->valid = false;
	e->dbid = InvalidOid;
	e->relnode = InvalidOid;
}

/* Finds the shared entry of an index (registry lock held). */
CacheEntry *
FindShared(Oid dbid, Oid relnode)
{
	for (int i = 0; i < g_cache->nentries; i++)
	{
		CacheEntry *e = &g_cache->entries[i];
		if (e->used && e->dbid == dbid && e->relnode == relnode)
			return e;
	}
	return nullptr;
}

/* The load/eviction history of an index (registry lock held exclusively); recycles the least
 * recently used record of another index. */
History *
HistoryOf(Oid dbid, Oid relnode, Oid relid)
{
	History *oldest = nullptr;
	for (int i = 0; i < g_cache->nhistory; i++)
	{
		History *h = &g_cache->history[i];
		if (h->dbid == dbid && h->relnode == relnode)
		{
			h->last_used = g_cache->clock;
			if (relid != InvalidOid)
				h->relid = relid;
			return h;
		}
		if (oldest == nullptr || h->last_used < oldest->last_used)
			oldest = h;
	}
	*oldest = {dbid, relnode, relid, 0, 0, g_cache->clock};
	return oldest;
}

/*
 * Gives an index a shared entry with an arena of `len` bytes, evicting least recently used
 * idle entries as needed. Registry lock held exclusively. nullptr when it cannot fit.
 */
CacheEntry *
ReserveShared(Oid dbid, Oid relnode, Size len, bool may_evict)
{
	if (len > g_cache->region_len)
		return nullptr;
	CacheEntry *slot = nullptr;
	for (;;)
	{
		Size off;
		if (slot == nullptr)
		{
			for (int i = 0; i < g_cache->nentries && slot == nullptr; i++)
				if (!g_cache->entries[i].used)
					slot = &g_cache->entries[i];
		}
		if (slot != nullptr && AllocExtent(len, &off))
		{
			slot->used = true;
			slot->dbid = dbid;
			slot->relnode = relnode;
			slot->valid = false;
			slot->arena_off = off;
			slot->arena_len = len;
			slot->last_used = ++g_cache->clock;
			return slot;
		}
		if (!may_evict)
			return nullptr;
		/* Evict the least recently used idle entry and try again. */
		CacheEntry *victim = nullptr;
		for (int i = 0; i < g_cache->nentries; i++)
		{
			CacheEntry *e = &g_cache->entries[i];
			if (!e->used)
				continue;
			if (victim == nullptr || e->last_used < victim->last_used)
			{
				if (LWLockConditionalAcquire(e->lock, LW_EXCLUSIVE))
				{
					if (victim != nullptr)
						LWLockRelease(victim->lock);
					victim = e;
				}
			}
		}
		if (victim == nullptr)
			return nullptr;
		HistoryOf(victim->dbid, victim->relnode, victim->relid)->evictions++;
		DropEntry(victim);
		LWLockRelease(victim->lock);
	}
}

/* Recomputes every element's layer-0 in-degree from the lists. */
void
RecountInDegrees(CacheEntry *e, char *arena)
{
	if (ReprOf(e) == Representation::kPages)
		return;
	for (uint32 id = 0; id < e->slot_capacity; id++)
		Slot(e, arena, id)->indegree = 0;
	for (uint32 id = 0; id < e->slot_capacity; id++)
	{
		SlotHead *s = Slot(e, arena, id);
		if (!(s->flags & kSlotPresent))
			continue;
		const uint32 *l = Links0(s);
		uint32 n = Min(l[0], static_cast<uint32>(2 * e->m));
		for (uint32 k = 0; k < n; k++)
			if (l[1 + k] < e->slot_capacity)
				Slot(e, arena, l[1 + k])->indegree++;
	}
}

/* Gives a slot room in the upper-layer pool for its level (kNoUpper on level 0). */
void
ReserveUpper(CacheEntry *e, SlotHead *s, int level)
{
	if (level == 0)
	{
		s->upper_ref = kNoUpper;
		return;
	}
	size_t words = static_cast<size_t>(level) * (1 + e->m);
	if (e->upper_used + words > e->upper_cap)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("vector_vault index cache layout overflow")));
	s->upper_ref = e->upper_used;
	e->upper_used += static_cast<uint32>(words);
}

/* Copies an element's lists, in record order (layer 0, then upper layers), into its slot. */
void
StoreLinks(const CacheEntry *e, char *arena, SlotHead *s, const uint32 *links)
{
	memcpy(Links0(s), links, sizeof(uint32) * (1 + 2 * e->m));
	for (int l = 1; l <= s->level; l++)
		memcpy(ListOf(e, arena, s, l), links + (1 + 2 * e->m) + (l - 1) * (1 + e->m),
			   sizeof(uint32) * (1 + e->m));
}

/* The vault table index of a vault, appended when new. */
int
VaultIndex(CacheEntry *e, char *arena, uint64 vault_id, ElementId id)
{
	DirEntry *vaults = Vaults(e, arena);
	uint32 nv = pg_atomic_read_u32(const_cast<pg_atomic_uint32 *>(&e->nvaults));
	for (uint32 i = 0; i < nv; i++)
		if (vaults[i].vault_id == vault_id)
			return static_cast<int>(i);
	if (nv >= e->vault_cap)
		ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
						errmsg("index element %u names a vault missing from the directory", id)));
	memset(&vaults[nv], 0, sizeof(DirEntry));
	vaults[nv].vault_id = vault_id;
	vaults[nv].entry = kNoElement;
	vaults[nv].entry_level = -1;
	pg_atomic_write_u32(&e->nvaults, nv + 1);
	return static_cast<int>(nv);
}

/* The entry's vault table sorted by vault id, for a load that looks up one vault per element. */
struct VaultLookup
{
	int n;
	uint64 *ids;
	int *index;
};

/* Sorts the vault table (as the directory left it) into a lookup. */
VaultLookup
SortedVaults(CacheEntry *e, char *arena)
{
	const DirEntry *vaults = Vaults(e, arena);
	VaultLookup l;
	l.n = static_cast<int>(pg_atomic_read_u32(&e->nvaults));
	int *order = static_cast<int *>(palloc(sizeof(int) * Max(l.n, 1)));
	for (int i = 0; i < l.n; i++)
		order[i] = i;
	std::sort(order, order + l.n,
			  [vaults](int a, int b) { return vaults[a].vault_id < vaults[b].vault_id; });
	l.ids = static_cast<uint64 *>(palloc(sizeof(uint64) * Max(l.n, 1)));
	for (int i = 0; i < l.n; i++)
		l.ids[i] = vaults[order[i]].vault_id;
	l.index = order;
	return l;
}

/* A vault's table index from the lookup; -1 when the lookup does not know it (VaultIndex). */
int
FindVault(const VaultLookup *l, uint64 vault_id)
{
	const uint64 *it = std::lower_bound(l->ids, l->ids + l->n, vault_id);
	return it != l->ids + l->n && *it == vault_id ? l->index[it - l->ids] : -1;
}

/*
 * Decodes one graph page into the entry; loads vectors of elements new to the cache. In the
 * pages representation only the plaintext headers are read: nothing is decrypted. In a partial
 * entry, an element on a page before build_tail counts only when loading[] flags its vault (its
 * facts are being read now), or with `held` when the entry holds its vault's facts; the rest
 * stay absent.
 */
void
LoadGraphPage(Relation index, CacheEntry *e, char *arena, BlockNumber block, Page copy,
			  MemoryContext tmp, const keys::KeySnapshot *keyring, const VaultLookup *lookup,
			  const bool *loading, bool held)
{
	const bool ranged = e->partial && block < e->build_tail;
	OffsetNumber max = PageGetMaxOffsetNumber(copy);
	const bool pages = ReprOf(e) == Representation::kPages;
	for (OffsetNumber off = FirstOffsetNumber; off <= max; off++)
	{
		ItemId iid = PageGetItemId(copy, off);
		if (!ItemIdIsUsed(iid))
			continue;
		MemoryContext old = MemoryContextSwitchTo(tmp);
		DecodedElement d;
		const char *item = static_cast<char *>(PageGetItem(copy, iid));
		PeekElement(item, ItemIdGetLength(iid), e->m, &d.header);
		d.links = nullptr;
		bool have = keys::SnapshotHasKey(keyring, d.header.vault_id, d.header.key_version);
		const ElementHeader &h = d.header;
		if (h.element_id >= e->slot_capacity)
			ereport(ERROR,
					(errcode(ERRCODE_INDEX_CORRUPTED),
					 errmsg("index element id %u is beyond the metapage's count", h.element_id)));
		SlotHead *s = Slot(e, arena, h.element_id);
		if (!have || (h.flags & kElementDeleted))
		{
			/* the vault's key is gone, or VACUUM removed it (its vector is scrubbed) */
			s->flags = 0;
			MemoryContextSwitchTo(old);
			MemoryContextReset(tmp);
			continue;
		}
		int vault_index = FindVault(lookup, h.vault_id);
		if (vault_index < 0)
			vault_index = VaultIndex(e, arena, h.vault_id, h.element_id);
		if (ranged)
		{
			bool keep = (loading != nullptr && loading[vault_index]) ||
						(held && HasFacts(e, Vaults(e, arena)[vault_index]));
			if (!keep)
			{
				MemoryContextSwitchTo(old);
				MemoryContextReset(tmp);
				continue;
			}
			uint32 *r = IdRanges(e, arena) + 2 * vault_index;
			r[0] = r[1] == 0 ? h.element_id : Min(r[0], h.element_id);
			r[1] = Max(r[1], h.element_id + 1);
		}
		else if (e->partial)
			e->tail_first_id = Min(e->tail_first_id, h.element_id);
		/* Lists and vectors only for vaults already resident; the rest load on first use. */
		bool decode = !pages && (VaultFlags(Vaults(e, arena)[vault_index]) & kVaultResident);
		bool was_loaded = (s->flags & kSlotLoaded) != 0;
		if (decode)
			(void) OpenElement(item, ItemIdGetLength(iid), e->m, &d, false);
		pg_atomic_fetch_add_u32(&s->seq, 1);
		pg_write_barrier();
		if (decode && (!was_loaded || s->level != h.level))
			ReserveUpper(e, s, h.level);
		s->level = h.level;
		s->vault_index = static_cast<uint16>(vault_index);
		s->tid = h.heap_tid;
		s->graph_block = block;
		s->graph_off = off;
		s->vec_block = h.vec_block;
		s->vec_offset = h.vec_offset;
		s->key_version = h.key_version;
		if (decode)
		{
			StoreLinks(e, arena, s, d.links);
			SecureZero(d.links, LinksBytes(e->m, h.level));
			if (!was_loaded)
			{
				float *v = static_cast<float *>(pg::AllocSecret(sizeof(float) * e->dims));
				ReadVector(index, h.vec_block, h.vec_offset, h.element_id, h.vault_id,
						   h.key_version, e->dims, EntryWidth(e), v);
				StoreVector(e, arena, s, v);
				pg::FreeSecret(v);
			}
		}
		s->flags = kSlotPresent | (decode ? kSlotLoaded : 0);
		pg_write_barrier();
		pg_atomic_fetch_add_u32(&s->seq, 1);
		MemoryContextSwitchTo(old);
		MemoryContextReset(tmp);
	}
}

/* A training run's buffers: one decrypted vector and the per-dimension range, in secret memory
 * (pg/secret.h: zeroed when released, or when an error resets their context). */
struct TrainBuffers
{
	float *v;
	float *mins;
	float *maxs;
};

/* Allocates a training run's buffers in the current context and starts an empty range. */
TrainBuffers
StartTraining(uint32 dims)
{
	TrainBuffers t;
	t.v = static_cast<float *>(pg::AllocSecret(sizeof(float) * dims));
	t.mins = static_cast<float *>(pg::AllocSecret(sizeof(float) * dims));
	t.maxs = static_cast<float *>(pg::AllocSecret(sizeof(float) * dims));
	sq8::StartRange(t.mins, t.maxs, dims);
	return t;
}

/* Turns the range into the entry's sq8 parameters and releases (zeroes) the buffers. */
void
FinishTraining(TrainBuffers *t, CacheEntry *e, char *arena)
{
	sq8::ParamsFromRange(t->mins, t->maxs, e->dims, QuantLo(e, arena), QuantStep(e, arena));
	if (ReprOf(e) == Representation::kSq4)
		sq4::StepsFromSq8(QuantStep(e, arena), e->dims);
	pg::FreeSecret(t->v);
	pg::FreeSecret(t->mins);
	pg::FreeSecret(t->maxs);
}

/*
 * Trains an entry's sq8 quantizer on a sample of the index's vectors (every k-th loaded element
 * fact, at most kTrainSample), decrypted one at a time into a buffer that is zeroed after each.
 * It runs after the facts are loaded and before any vault's vectors are coded. Values of later
 * inserts outside the sampled range are clamped; re-ranking with exact distances keeps results in
 * exact order, and the next full load retrains.
 */
void
TrainQuantizer(Relation index, CacheEntry *e, char *arena, uint32 nelements, MemoryContext tmp)
{
	constexpr uint32 kTrainSample = 8192;
	uint32 present = 0;
	for (uint32 id = 0; id < nelements; id++)
		present += (Slot(e, arena, id)->flags & kSlotPresent) != 0;
	uint32 stride = Max(1u, present / kTrainSample);
	MemoryContext old = MemoryContextSwitchTo(tmp);
	TrainBuffers t = StartTraining(e->dims);
	float *v = t.v;
	const DirEntry *vaults = Vaults(e, arena);
	uint32 seen = 0;
	for (uint32 id = 0; id < nelements; id++)
	{
		SlotHead *s = Slot(e, arena, id);
		if (!(s->flags & kSlotPresent) || seen++ % stride != 0)
			continue;
		ReadVector(index, s->vec_block, s->vec_offset, id, vaults[s->vault_index].vault_id,
				   s->key_version, e->dims, EntryWidth(e), v);
		sq8::WidenRange(t.mins, t.maxs, v, e->dims);
		if ((seen & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	FinishTraining(&t, e, arena);
	MemoryContextSwitchTo(old);
	MemoryContextReset(tmp);
}

/*
 * TrainQuantizer for a partial entry, which holds almost no facts yet: the sample is every
 * element of kTrainRuns runs of kRunPages consecutive graph pages spread evenly from the first
 * vault's build range to the end (their plaintext headers say where each vector is), at most
 * kTrainSample vectors. A page's elements are consecutive ids whose vectors share a few vector
 * pages, and a run holds few vaults, so this reads about four pages per 40 vectors instead of
 * one page per vector, and unwraps a few dozen data keys instead of one per vault.
 */
void
TrainQuantizerSampled(Relation index, CacheEntry *e, char *arena, BlockNumber first,
					  BlockNumber nblocks, const keys::KeySnapshot *keyring, MemoryContext tmp)
{
	constexpr uint32 kTrainSample = 8192;
	constexpr BlockNumber kTrainRuns = 16;
	constexpr BlockNumber kRunPages = 4;
	MemoryContext old = MemoryContextSwitchTo(tmp);
	TrainBuffers t = StartTraining(e->dims);
	float *v = t.v;
	PGAlignedBlock copy;
	BlockNumber span = nblocks > first ? nblocks - first : 0;
	BlockNumber step = Max(kRunPages, span / kTrainRuns / kRunPages * kRunPages);
	uint32 seen = 0;
	for (BlockNumber b = first; b < nblocks && seen < kTrainSample;
		 b += (b - first) % kRunPages == kRunPages - 1 ? step - kRunPages + 1 : 1)
	{
		Buffer buf = ReadBuffer(index, b);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		Page page = BufferGetPage(buf);
		bool graph = !PageIsNew(page) && GetOpaque(page)->kind == kGraphPage;
		if (graph)
			memcpy(copy.data, page, BLCKSZ);
		UnlockReleaseBuffer(buf);
		if (!graph)
			continue;
		OffsetNumber max = PageGetMaxOffsetNumber(copy.data);
		for (OffsetNumber off = FirstOffsetNumber; off <= max && seen < kTrainSample; off++)
		{
			ItemId iid = PageGetItemId(copy.data, off);
			if (!ItemIdIsUsed(iid))
				continue;
			ElementHeader h;
			PeekElement(static_cast<char *>(PageGetItem(copy.data, iid)), ItemIdGetLength(iid),
						e->m, &h);
			if ((h.flags & kElementDeleted) ||
				!keys::SnapshotHasKey(keyring, h.vault_id, h.key_version))
				continue;
			ReadVector(index, h.vec_block, h.vec_offset, h.element_id, h.vault_id, h.key_version,
					   e->dims, EntryWidth(e), v);
			sq8::WidenRange(t.mins, t.maxs, v, e->dims);
			seen++;
		}
		CHECK_FOR_INTERRUPTS();
	}
	FinishTraining(&t, e, arena);
	MemoryContextSwitchTo(old);
	MemoryContextReset(tmp);
}

/*
 * Decrypts the neighbour lists and vectors of the given vaults' elements into their slots (the
 * facts are there already) and marks the vaults resident. Links never cross vaults, so these
 * elements' in-degrees come from their own lists. Entry lock held exclusively.
 */
void
LoadVaults(Relation index, CacheEntry *e, char *arena, const bool *want)
{
	uint32 n = pg_atomic_read_u32(&e->nslots);
	/* secret: a page that fails to decrypt raises with plaintext of earlier elements here */
	uint32 *links = static_cast<uint32 *>(pg::AllocSecret(LinksBytes(e->m, hnsw::kMaxLevel)));
	float *v = static_cast<float *>(pg::AllocSecret(sizeof(float) * e->dims));
	DirEntry *vaults = Vaults(e, arena);
	uint32 nv = pg_atomic_read_u32(&e->nvaults);
	/* Where the wanted elements are: every id, or (partial) their vaults' build id ranges and
	 * the ids from the tail on, so a cold vault does not touch the other vaults' slots. */
	uint32 *spans = static_cast<uint32 *>(palloc(sizeof(uint32) * 2 * (nv + 1)));
	int nspans = 0;
	if (!e->partial)
	{
		spans[0] = 0;
		spans[1] = n;
		nspans = 1;
	}
	else
	{
		const uint32 *r = IdRanges(e, arena);
		for (uint32 i = 0; i < nv; i++)
			if (want[i] && r[2 * i + 1] > 0)
			{
				spans[2 * nspans] = r[2 * i];
				spans[2 * nspans + 1] = Min(r[2 * i + 1], n);
				nspans++;
			}
		spans[2 * nspans] = Min(e->tail_first_id, n);
		spans[2 * nspans + 1] = n;
		nspans++;
	}
	for (int sp = 0; sp < nspans; sp++)
		for (uint32 id = spans[2 * sp]; id < spans[2 * sp + 1]; id++)
		{
			SlotHead *s = Slot(e, arena, id);
			if (!(s->flags & kSlotPresent) || (s->flags & kSlotLoaded) || !want[s->vault_index])
				continue;
			ReadElementLinks(index, s->graph_block, s->graph_off, e->m, id, s->level, links);
			ReadVector(index, s->vec_block, s->vec_offset, id, vaults[s->vault_index].vault_id,
					   s->key_version, e->dims, EntryWidth(e), v);
			ReserveUpper(e, s, s->level);
			StoreLinks(e, arena, s, links);
			StoreVector(e, arena, s, v);
			uint32 nl = Min(links[0], static_cast<uint32>(2 * e->m));
			for (uint32 k = 0; k < nl; k++)
				if (links[1 + k] < e->slot_capacity)
					Slot(e, arena, links[1 + k])->indegree++;
			s->flags |= kSlotLoaded;
			if ((id & 1023) == 0)
				CHECK_FOR_INTERRUPTS();
		}
	pg::FreeSecret(links);
	pg::FreeSecret(v);
	pfree(spans);
	for (uint32 i = 0; i < nv; i++)
		if (want[i])
			VaultFlags(vaults[i]) |= kVaultResident;
}

/* True when a vault is among the wanted ones (nullptr: every vault; sorted or not). */
bool
Wanted(const uint64 *wanted, int nwanted, uint64 vault_id)
{
	if (wanted == nullptr)
		return true;
	for (int k = 0; k < nwanted; k++)
		if (wanted[k] == vault_id)
			return true;
	return false;
}

/*
 * Which of the wanted vaults (vault ids; nullptr = every vault) still need loading: into a
 * resident representation (facts_only false), and (*facts, partial entries) their element
 * facts; fills need[] and need_facts[] (nvaults flags) and returns how many need either.
 * Entry lock held.
 */
int
VaultsToLoad(const CacheEntry *e, char *arena, const uint64 *wanted, int nwanted, bool facts_only,
			 bool *need, bool *need_facts)
{
	const bool resident = !facts_only && ReprOf(e) != Representation::kPages;
	const DirEntry *vaults = Vaults(e, arena);
	uint32 nv = pg_atomic_read_u32(const_cast<pg_atomic_uint32 *>(&e->nvaults));
	int count = 0;
	for (uint32 i = 0; i < nv; i++)
	{
		bool w = (resident || e->partial) && Wanted(wanted, nwanted, vaults[i].vault_id);
		need[i] = w && resident && !(VaultFlags(vaults[i]) & kVaultResident);
		need_facts[i] = w && !HasFacts(e, vaults[i]);
		count += need[i] || need_facts[i];
	}
	return count;
}

/* Copies the directory from the pages into the entry's vault table. */
void
LoadDirectory(Relation index, CacheEntry *e, char *arena, const MetaData &meta,
			  const keys::KeySnapshot *keyring)
{
	int n;
	DirEntry *dir = ReadDirectory(index, meta, &n);
	DirEntry *vaults = Vaults(e, arena);
	uint32 nv = pg_atomic_read_u32(const_cast<pg_atomic_uint32 *>(&e->nvaults));
	for (int i = 0; i < n; i++)
	{
		uint32 j = 0;
		while (j < nv && vaults[j].vault_id != dir[i].vault_id)
			j++;
		if (j == nv)
		{
			if (nv >= e->vault_cap)
				ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
								errmsg("vector_vault index cache layout overflow")));
			nv++;
		}
		/* our flags, not the page's; a vault with no build range has all its elements at or
		 * after build_tail, whose facts a partial entry always holds */
		uint16 flags = j < pg_atomic_read_u32(&e->nvaults) ? VaultFlags(vaults[j])
					   : dir[i].build_first == 0           ? kVaultFacts
														   : 0;
		vaults[j] = dir[i];
		VaultFlags(vaults[j]) = flags;
		/* A vault whose keys are gone (dropped) is not searchable from the cache. */
		if (!keys::SnapshotHasKey(keyring, dir[i].vault_id, 0))
			vaults[j].entry = kNoElement;
	}
	pg_atomic_write_u32(&e->nvaults, nv);
	pfree(dir);
}

/* The first graph block of any vault's build range (or build_tail) of a partial entry. */
BlockNumber
FirstBuildBlock(CacheEntry *e, char *arena)
{
	const DirEntry *vaults = Vaults(e, arena);
	uint32 nv = pg_atomic_read_u32(&e->nvaults);
	BlockNumber first = e->build_tail;
	for (uint32 i = 0; i < nv; i++)
		if (vaults[i].build_first != 0)
			first = Min(first, vaults[i].build_first);
	return first;
}

/* A block range [lo, hi) of graph pages to read. */
struct BlockSpan
{
	BlockNumber lo;
	BlockNumber hi;
};

/*
 * Reads the element facts of the vaults flagged in need[] into a partial entry: each vault's
 * build range from the directory (the vault locator), or every graph page before build_tail
 * when some vault's range is unknown (then the entry holds every vault's facts and is no longer
 * partial). Pages from build_tail on are in the entry already. A page read before for other
 * vaults is decoded for the new vaults only while its LSN is the one recorded; a page that
 * changed since is decoded for every vault held, as Refresh would. Entry lock held exclusively
 * (or private).
 */
void
LoadVaultFacts(Relation index, CacheEntry *e, const bool *need)
{
	char *arena = ArenaOf(e);
	MetaData meta = ReadMeta(index);
	DirEntry *vaults = Vaults(e, arena);
	uint32 nv = pg_atomic_read_u32(&e->nvaults);
	int ndir;
	DirEntry *dir = ReadDirectory(index, meta, &ndir);
	bool *loading = static_cast<bool *>(palloc0(Max(nv, 1u)));
	BlockSpan *spans = static_cast<BlockSpan *>(palloc(sizeof(BlockSpan) * Max(nv, 1u)));
	int nspans = 0;
	bool whole = false;
	for (uint32 i = 0; i < nv && !whole; i++)
	{
		if (!need[i] || HasFacts(e, vaults[i]))
			continue;
		const DirEntry *d = nullptr;
		for (int k = 0; k < ndir && d == nullptr; k++)
			if (dir[k].vault_id == vaults[i].vault_id)
				d = &dir[k];
		if (d == nullptr || (d->build_first != 0 && d->build_blocks == 0) ||
			(d->build_first != 0 && d->build_first + d->build_blocks > e->build_tail + 1))
			whole = true; /* not in the directory, or its range is unknown: read them all */
		else if (d->build_first != 0)
			spans[nspans++] = {d->build_first, d->build_first + d->build_blocks};
		loading[i] = true;
	}
	if (whole)
	{
		for (uint32 i = 0; i < nv; i++)
			loading[i] = !HasFacts(e, vaults[i]);
		spans[0] = {1, e->build_tail};
		nspans = 1;
	}
	std::sort(spans, spans + nspans,
			  [](const BlockSpan &a, const BlockSpan &b) { return a.lo < b.lo; });

	MemoryContext tmp = AllocSetContextCreate(CurrentMemoryContext, "vault_hnsw facts load",
											  ALLOCSET_DEFAULT_SIZES);
	keys::KeySnapshot *keyring = keys::SnapshotKeys();
	VaultLookup lookup = SortedVaults(e, arena);
	XLogRecPtr *lsns = BlockLsns(e, arena);
	uint8 *kinds = BlockKinds(e, arena);
	PGAlignedBlock copy;
	BufferAccessStrategy strategy = GetAccessStrategy(BAS_BULKREAD);
	bool recount = false;
	BlockNumber done = 0; /* spans may share a boundary page */
	for (int sp = 0; sp < nspans; sp++)
	{
		BlockNumber hi = Min(spans[sp].hi, Min(e->build_tail, e->nblocks));
		for (BlockNumber b = Max(spans[sp].lo, done); b < hi; b++)
		{
			done = b + 1;
			if (kinds[b] == kVectorPage || kinds[b] == kDirPage)
				continue;
			Buffer buf = ReadBufferExtended(index, MAIN_FORKNUM, b, RBM_NORMAL, strategy);
			LockBuffer(buf, BUFFER_LOCK_SHARE);
			Page page = BufferGetPage(buf);
			XLogRecPtr lsn = PageGetLSN(page);
			uint16 kind = PageIsNew(page) ? 0 : GetOpaque(page)->kind;
			if (kind == kGraphPage)
				memcpy(copy.data, page, BLCKSZ);
			UnlockReleaseBuffer(buf);
			if (kind == kGraphPage)
			{
				bool changed = kinds[b] != kUnreadPage && lsns[b] != lsn;
				/* a page changed since it was read for other vaults: theirs too */
				LoadGraphPage(index, e, arena, b, copy.data, tmp, keyring, &lookup, loading,
							  changed);
				recount |= changed;
			}
			lsns[b] = lsn;
			kinds[b] = static_cast<uint8>(kind);
			CHECK_FOR_INTERRUPTS();
		}
	}
	FreeAccessStrategy(strategy);
	/* Only now: an error above leaves the vaults to be read again on their next use. */
	for (uint32 i = 0; i < nv; i++)
		if (loading[i])
			VaultFlags(vaults[i]) |= kVaultFacts;
	if (whole)
		e->partial = false;
	if (recount)
		RecountInDegrees(e, arena);
	MemoryContextDelete(tmp);
	keys::FreeKeySnapshot(keyring);
	pfree(lookup.ids);
	pfree(lookup.index);
	pfree(dir);
	pfree(loading);
	pfree(spans);
}

/*
 * Brings an entry up to date with the index: a full load when `full`, otherwise decoding only
 * the graph/directory pages whose LSN changed. A full load of an index with a vault locator
 * reads only the directory and the graph pages from build_tail on: the entry is partial, and
 * each vault's facts are read on its first use (LoadVaultFacts). `zeroed`: the arena is known
 * to be all zeros (a fresh reservation), so a full load need not clear it. Entry lock held
 * exclusively (or private).
 */
void
Refresh(Relation index, CacheEntry *e, bool full, bool zeroed = false)
{
	char *arena = ArenaOf(e);
	MetaData meta = ReadMeta(index);
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	/* Until the end, an error leaves the entry marked for another refresh. */
	e->valid = false;
	if (full)
	{
		if (!zeroed)
			memset(arena, 0, static_cast<Size>(e->slot_capacity) * e->slot_bytes);
		memset(arena + e->lsn_off, 0, sizeof(XLogRecPtr) * e->block_cap);
		memset(arena + e->kind_off, 0, e->block_cap);
		memset(IdRanges(e, arena), 0, 2 * sizeof(uint32) * e->vault_cap);
		pg_atomic_write_u32(&e->nslots, 0);
		pg_atomic_write_u32(&e->nvaults, 0);
		e->upper_used = 0;
		e->nblocks = 0;
		/* The vault locator, when the index has one (zero in indexes built before it). */
		e->partial = meta.build_tail != 0 && meta.build_tail < nblocks;
		e->build_tail = e->partial ? meta.build_tail : 0;
		e->tail_first_id = meta.next_element_id;
		if (e->partial)
			memset(arena + e->kind_off + 1, kUnreadPage, e->build_tail - 1);
	}
	MemoryContext tmp = AllocSetContextCreate(CurrentMemoryContext, "vault_hnsw cache load",
											  ALLOCSET_DEFAULT_SIZES);

	PGAlignedBlock copy;
	BufferAccessStrategy strategy = GetAccessStrategy(BAS_BULKREAD);
	XLogRecPtr *lsns = BlockLsns(e, arena);
	uint8 *kinds = BlockKinds(e, arena);
	/* One read of the keyring directory answers "are this vault's keys still there" for every
	 * vault and element below (asking the file system each time is quadratic in vaults). */
	keys::KeySnapshot *keyring = keys::SnapshotKeys();
	LoadDirectory(index, e, arena, meta, keyring);
	VaultLookup lookup = SortedVaults(e, arena);
	for (BlockNumber b = 1; b < nblocks; b++)
	{
		/* Vector pages are append-only: a known one never needs a second look; a partial
		 * entry reads a page before build_tail when a vault on it is first used. */
		if ((b < e->nblocks && kinds[b] == kVectorPage) ||
			(e->partial && b < e->build_tail && kinds[b] == kUnreadPage))
			continue;
		Buffer buf = ReadBufferExtended(index, MAIN_FORKNUM, b, RBM_NORMAL, strategy);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		Page page = BufferGetPage(buf);
		XLogRecPtr lsn = PageGetLSN(page);
		PageOpaque *o = GetOpaque(page);
		uint16 kind = PageIsNew(page) ? 0 : o->kind;
		bool changed = b >= e->nblocks || lsns[b] != lsn;
		if (kind == kGraphPage && changed)
			memcpy(copy.data, page, BLCKSZ);
		UnlockReleaseBuffer(buf);
		if (kind == kGraphPage && changed)
			LoadGraphPage(index, e, arena, b, copy.data, tmp, keyring, &lookup, nullptr, true);
		lsns[b] = lsn;
		kinds[b] = static_cast<uint8>(kind);
		CHECK_FOR_INTERRUPTS();
	}
	FreeAccessStrategy(strategy);
	e->nblocks = nblocks;
	/* A full load reads facts only; the quantizer trains on a sample before any vault loads. */
	if (full && IsQuantized(ReprOf(e)))
	{
		if (e->partial)
			TrainQuantizerSampled(index, e, arena, FirstBuildBlock(e, arena), nblocks, keyring,
								  tmp);
		else
			TrainQuantizer(index, e, arena, meta.next_element_id, tmp);
	}
	/* After a full load nothing is resident: every in-degree is zero. */
	if (!full)
		RecountInDegrees(e, arena);
	pg_write_barrier();
	pg_atomic_write_u32(&e->nslots, meta.next_element_id);
	pg_atomic_write_u64(&e->change_counter, meta.change_counter);
	e->epoch = pg::AccessEpoch();
	e->stale_vaults = false;
	e->valid = true;
	if (full)
		e->loads++;
	e->vectors = meta.next_element_id;
	MemoryContextDelete(tmp);
	keys::FreeKeySnapshot(keyring);
	pfree(lookup.ids);
	pfree(lookup.index);
}

/* True when the entry has room for the index as it is now. */
bool
Fits(const CacheEntry *e, const MetaData &meta, BlockNumber nblocks, int ndir)
{
	bool upper_room =
		ReprOf(e) == Representation::kPages ||
		e->upper_used + static_cast<uint32>(hnsw::kMaxLevel) * (1 + e->m) <= e->upper_cap;
	return meta.next_element_id + 1 <= e->slot_capacity && nblocks + 8 < e->block_cap &&
		   static_cast<uint32>(ndir) + 1 <= e->vault_cap && e->dims == meta.dims &&
		   e->m == meta.m && upper_room;
}

/* True when some cached vault lost its keys since the entry was loaded (a dropped vault). */
bool
HoldsShreddedVault(const CacheEntry *e)
{
	const DirEntry *v = Vaults(e, ArenaOf(e));
	uint32 n = pg_atomic_read_u32(const_cast<pg_atomic_uint32 *>(&e->nvaults));
	keys::KeySnapshot *keyring = keys::SnapshotKeys();
	bool shredded = false;
	for (uint32 i = 0; i < n && !shredded; i++)
		shredded = v[i].entry != kNoElement && !keys::SnapshotHasKey(keyring, v[i].vault_id, 0);
	keys::FreeKeySnapshot(keyring);
	return shredded;
}

/* Finds or creates this backend's private copy of an index. */
CacheEntry *
PrivateEntry(Relation index, const MetaData &meta, BlockNumber nblocks, int ndir)
{
	Oid relnode = index->rd_node.relNode;
	CacheEntry *e = nullptr;
	int free_slot = -1;
	for (int i = 0; i < kMaxPrivate; i++)
	{
		if (g_private[i] == nullptr)
		{
			if (free_slot < 0)
				free_slot = i;
			continue;
		}
		if (g_private[i]->dbid == MyDatabaseId && g_private[i]->relnode == relnode)
			e = g_private[i];
	}
	if (e != nullptr && (!Fits(e, meta, nblocks, ndir)))
	{
		SecureZero(e->private_arena, e->arena_len);
		pfree(e->private_arena);
		e->private_arena = nullptr;
		e->valid = false;
	}
	if (e == nullptr)
	{
		if (free_slot < 0)
		{
			/* drop the first copy: private fallback is a last resort, keep it simple */
			CacheEntry *old = g_private[0];
			if (old->private_arena)
			{
				SecureZero(old->private_arena, old->arena_len);
				pfree(old->private_arena);
			}
			pfree(old);
			g_private[0] = nullptr;
			free_slot = 0;
		}
		e = static_cast<CacheEntry *>(MemoryContextAllocZero(TopMemoryContext, sizeof(CacheEntry)));
		e->dbid = MyDatabaseId;
		e->relnode = relnode;
		e->relid = RelationGetRelid(index);
		e->used = true;
		g_private[free_slot] = e;
	}
	if (e->private_arena == nullptr)
	{
		uint32 slots, upper, vaults, blocks;
		Capacities(meta, nblocks, ndir, &slots, &upper, &vaults, &blocks);
		e->arena_len =
			Layout(e, Representation::kPages, meta.dims, meta.m, slots, upper, vaults, blocks);
		e->metric = meta.metric;
		e->width = static_cast<uint8>(WidthOf(meta));
		e->private_arena = static_cast<char *>(MemoryContextAllocExtended(
			TopMemoryContext, e->arena_len, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO));
		e->valid = false;
	}
	return e;
}

/* Counts directory entries without reading them all twice. */
int
DirCount(Relation index, const MetaData &meta)
{
	int n;
	DirEntry *d = ReadDirectory(index, meta, &n);
	pfree(d);
	return n;
}

} // namespace

namespace
{

object_access_hook_type g_prev_object_access = nullptr;

/* Frees the cache entries of a relfilenode of this database (its index is being dropped). */
void
ForgetIndex(Oid relnode)
{
	if (g_cache != nullptr)
	{
		LWLockAcquire(g_cache->registry_lock, LW_EXCLUSIVE);
		CacheEntry *e = FindShared(MyDatabaseId, relnode);
		/* Busy entries (another backend mid-search) stay; LRU eviction reclaims them later. */
		if (e != nullptr && LWLockConditionalAcquire(e->lock, LW_EXCLUSIVE))
		{
			DropEntry(e);
			LWLockRelease(e->lock);
		}
		LWLockRelease(g_cache->registry_lock);
	}
	for (int i = 0; i < kMaxPrivate; i++)
	{
		CacheEntry *p = g_private[i];
		if (p != nullptr && p->dbid == MyDatabaseId && p->relnode == relnode && p->private_arena)
		{
			SecureZero(p->private_arena, p->arena_len);
			pfree(p->private_arena);
			pfree(p);
			g_private[i] = nullptr;
		}
	}
}

/*
 * Drops a vault_hnsw index's cache entry (zeroing its plaintext) when the index is dropped, so
 * its memory does not wait for LRU eviction. A rolled-back DROP only costs a reload.
 */
void
ObjectAccess(ObjectAccessType access, Oid classId, Oid objectId, int subId, void *arg) noexcept
{
	if (g_prev_object_access)
		g_prev_object_access(access, classId, objectId, subId, arg);
	if (access != OAT_DROP || classId != RelationRelationId || subId != 0)
		return;
	HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(objectId));
	if (!HeapTupleIsValid(tup))
		return;
	Form_pg_class rel = reinterpret_cast<Form_pg_class>(GETSTRUCT(tup));
	Oid relam = rel->relam;
	Oid relnode = rel->relfilenode;
	char kind = rel->relkind;
	ReleaseSysCache(tup);
	if (kind != RELKIND_INDEX || !OidIsValid(relam) ||
		relam != get_index_am_oid("vault_hnsw", true))
		return;
	ForgetIndex(relnode);
}

} // namespace

/* Registers the cache's shared memory and the hook that frees dropped indexes' entries. */
void
RegisterCacheShmem()
{
	pg::AddShmemClient({CacheRequest, CacheShmemInit});
	g_prev_object_access = object_access_hook;
	object_access_hook = ObjectAccess;
}

/* Maps a shared arena into this process's page tables once, so searches take no page faults. */
static void
PopulateOnce(const CacheEntry *e)
{
	static struct
	{
		Oid relnode;
		Size off;
		Size len;
	} done[64];
	static int ndone = 0;
	for (int i = 0; i < ndone; i++)
		if (done[i].relnode == e->relnode && done[i].off == e->arena_off &&
			done[i].len == e->arena_len)
			return;
#ifdef MADV_POPULATE_READ
	uintptr_t start =
		reinterpret_cast<uintptr_t>(g_region + e->arena_off) & ~static_cast<uintptr_t>(4095);
	(void) madvise(reinterpret_cast<void *>(start), e->arena_len + 4096, MADV_POPULATE_READ);
#endif
	if (ndone == 64)
		ndone = 0;
	done[ndone++] = {e->relnode, e->arena_off, e->arena_len};
}

namespace
{

/* What one look at a shared entry found. */
enum class EntryOutcome
{
	kGot,   /* *out references the entry, locked */
	kRetry, /* the entry was refreshed, loaded more vaults, or dropped: look again */
};

/* With entry e of the index found in the registry: takes it when it is valid, current and holds
 * every wanted vault; otherwise loads the missing vaults, refreshes it, or drops it (to be
 * reserved again with a bigger arena) and asks for another look. */
EntryOutcome
UseSharedEntry(Relation index, CacheEntry *e, bool exclusive, const MetaData &seen_meta,
			   uint64 epoch, const uint64 *wanted, int nwanted, bool facts_only, CacheRef *out)
{
	Oid relnode = index->rd_node.relNode;
	LWLockAcquire(e->lock, exclusive ? LW_EXCLUSIVE : LW_SHARED);
	if (e->used && e->dbid == MyDatabaseId && e->relnode == relnode && e->valid &&
		pg_atomic_read_u64(&e->change_counter) == seen_meta.change_counter && e->epoch == epoch)
	{
		char *arena = g_region + e->arena_off;
		uint32 nv = pg_atomic_read_u32(&e->nvaults);
		bool *need = static_cast<bool *>(palloc0(Max(nv, 1u)));
		bool *need_facts = static_cast<bool *>(palloc0(Max(nv, 1u)));
		if (VaultsToLoad(e, arena, wanted, nwanted, facts_only, need, need_facts) == 0)
		{
			pfree(need);
			pfree(need_facts);
			/* A partial entry's untouched slots are not worth mapping in every backend. */
			if (!e->partial)
				PopulateOnce(e);
			pg_atomic_fetch_add_u64(&e->hits, 1);
			*out = CacheRef{e, arena, true, exclusive, index};
			return EntryOutcome::kGot;
		}
		/* Some wanted vault's facts or sub-graph are not loaded yet: load them under the
		 * exclusive lock, facts first. */
		LWLockRelease(e->lock);
		LWLockAcquire(e->lock, LW_EXCLUSIVE);
		if (e->used && e->dbid == MyDatabaseId && e->relnode == relnode && e->valid &&
			pg_atomic_read_u32(&e->nvaults) == nv &&
			VaultsToLoad(e, arena, wanted, nwanted, facts_only, need, need_facts) > 0)
		{
			/* Until both are done, an error leaves the entry for a refresh. */
			e->valid = false;
			if (std::find(need_facts, need_facts + nv, true) != need_facts + nv)
				LoadVaultFacts(index, e, need_facts);
			if (std::find(need, need + nv, true) != need + nv)
				LoadVaults(index, e, arena, need);
			e->valid = true;
		}
		LWLockRelease(e->lock);
		pfree(need);
		pfree(need_facts);
		return EntryOutcome::kRetry;
	}
	LWLockRelease(e->lock);
	/* Stale: refresh under the exclusive lock. */
	LWLockAcquire(e->lock, LW_EXCLUSIVE);
	if (!(e->used && e->dbid == MyDatabaseId && e->relnode == relnode))
	{
		LWLockRelease(e->lock);
		return EntryOutcome::kRetry;
	}
	MetaData meta = ReadMeta(index);
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	int ndir = DirCount(index, meta);
	bool purge = e->epoch != epoch && HoldsShreddedVault(e);
	if (e->valid && !purge && Fits(e, meta, nblocks, ndir))
	{
		if (pg_atomic_read_u64(&e->change_counter) != meta.change_counter)
			Refresh(index, e, false);
		e->epoch = epoch;
		LWLockRelease(e->lock);
		return EntryOutcome::kRetry;
	}
	if (!purge && !e->valid && Fits(e, meta, nblocks, ndir) && e->nblocks > 0)
	{
		Refresh(index, e, false);
		LWLockRelease(e->lock);
		return EntryOutcome::kRetry;
	}
	/* Needs a bigger arena or a purge: drop it and start over. */
	LWLockAcquire(g_cache->registry_lock, LW_EXCLUSIVE);
	DropEntry(e);
	LWLockRelease(g_cache->registry_lock);
	LWLockRelease(e->lock);
	return EntryOutcome::kRetry;
}

/* The representations to try for a new entry, best first (auto: float32 if it fits without
 * evicting anyone, else sq8; pages always last). Returns how many; evict[i] says whether tier i
 * may evict other entries. */
int
RepresentationTiers(ElementWidth width, Representation tiers[4], bool evict[4])
{
	int ntiers = 0;
	evict[0] = evict[1] = evict[2] = evict[3] = true;
	if (g_cache_representation == kReprAuto)
	{
		tiers[ntiers] = Representation::kFloat32;
		evict[ntiers++] = false;
		tiers[ntiers++] = Representation::kSq8;
		tiers[ntiers++] = Representation::kSq4;
	}
	else
		tiers[ntiers++] = static_cast<Representation>(g_cache_representation);
	if (tiers[ntiers - 1] != Representation::kPages)
		tiers[ntiers++] = Representation::kPages;
	/* An index on ehalfvec: its exact tier holds halves, half float32's bytes. */
	for (int i = 0; i < ntiers; i++)
		if (tiers[i] == Representation::kFloat32 && width == ElementWidth::kHalf)
			tiers[i] = Representation::kHalf;
	return ntiers;
}

/* Resets a freshly reserved entry for the index in representation got (registry lock held). */
void
InitReservedEntry(CacheEntry *fresh, Relation index, const MetaData &meta, Representation got,
				  uint32 slots, uint32 upper, uint32 vaults, uint32 blocks)
{
	Oid relnode = index->rd_node.relNode;
	LWLock *lock = fresh->lock;
	Size off = fresh->arena_off;
	Size len = fresh->arena_len;
	bool used = fresh->used;
	Oid dbid = fresh->dbid;
	(void) Layout(fresh, got, meta.dims, meta.m, slots, upper, vaults, blocks);
	fresh->metric = meta.metric;
	fresh->width = static_cast<uint8>(WidthOf(meta));
	fresh->lock = lock;
	fresh->arena_off = off;
	fresh->arena_len = len;
	fresh->used = used;
	fresh->dbid = dbid;
	fresh->relnode = relnode;
	fresh->relid = RelationGetRelid(index);
	fresh->nblocks = 0;
	fresh->valid = false;
	fresh->loads = 0;
	fresh->vectors = 0;
	pg_atomic_init_u32(&fresh->nslots, 0);
	pg_atomic_init_u32(&fresh->nvaults, 0);
	pg_atomic_init_u64(&fresh->change_counter, 0);
	pg_atomic_init_u64(&fresh->hits, 0);
	HistoryOf(MyDatabaseId, relnode, RelationGetRelid(index))->loads++;
}

/* The index is not in the registry: reserves an entry in the best representation that fits and
 * loads it. False when not even the pages representation fits (use a private entry). */
bool
ReserveSharedEntry(Relation index, const MetaData &meta)
{
	Oid relnode = index->rd_node.relNode;
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	int ndir = DirCount(index, meta);
	uint32 slots, upper, vaults, blocks;
	Capacities(meta, nblocks, ndir, &slots, &upper, &vaults, &blocks);
	Representation tiers[4];
	bool evict[4];
	int ntiers = RepresentationTiers(WidthOf(meta), tiers, evict);
	LWLockAcquire(g_cache->registry_lock, LW_EXCLUSIVE);
	CacheEntry *found = FindShared(MyDatabaseId, relnode);
	CacheEntry *fresh = nullptr;
	Representation got = tiers[0];
	for (int tier = 0; found == nullptr && fresh == nullptr && tier < ntiers; tier++)
	{
		got = tiers[tier];
		CacheEntry probe;
		memset(&probe, 0, sizeof(probe));
		Size len = Layout(&probe, got, meta.dims, meta.m, slots, upper, vaults, blocks);
		fresh = ReserveShared(MyDatabaseId, relnode, len, evict[tier]);
	}
	if (fresh != nullptr)
		InitReservedEntry(fresh, index, meta, got, slots, upper, vaults, blocks);
	LWLockRelease(g_cache->registry_lock);
	if (found != nullptr)
		return true; /* another backend reserved it meanwhile */
	if (fresh == nullptr)
		return false;
	LWLockAcquire(fresh->lock, LW_EXCLUSIVE);
	/* A reserved arena is all zeros (the region starts so, DropEntry zeroes what it frees). */
	if (fresh->used && fresh->relnode == relnode && fresh->dbid == MyDatabaseId && !fresh->valid)
		Refresh(index, fresh, true, fresh->nblocks == 0 && fresh->loads == 0);
	LWLockRelease(fresh->lock);
	return true;
}

/* This session's private entry for an index that does not fit in the shared cache, with the
 * wanted vaults' element facts. */
CacheRef
AcquirePrivate(Relation index, const MetaData &meta, uint64 epoch, bool exclusive,
			   const uint64 *wanted, int nwanted)
{
	if (!g_warned_private)
	{
		g_warned_private = true;
		ereport(WARNING,
				(errmsg("vault_hnsw index \"%s\" does not fit in vector_vault.cache_size, not "
						"even as element facts; this session keeps them privately (%zu bytes "
						"per element, nothing decrypted) and reads the graph from index pages",
						RelationGetRelationName(index), sizeof(SlotHead)),
				 errhint("Raise vector_vault.cache_size (currently %d MB); vault.index_cache "
						 "shows what is resident.",
						 g_cache_size_mb)));
	}
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	int ndir = DirCount(index, meta);
	CacheEntry *e = PrivateEntry(index, meta, nblocks, ndir);
	if (!e->valid || e->epoch != epoch)
		Refresh(index, e, !e->valid || HoldsShreddedVault(e));
	else if (pg_atomic_read_u64(&e->change_counter) != meta.change_counter)
		Refresh(index, e, false);
	uint32 nv = pg_atomic_read_u32(&e->nvaults);
	bool *need = static_cast<bool *>(palloc0(Max(nv, 1u)));
	bool *need_facts = static_cast<bool *>(palloc0(Max(nv, 1u)));
	if (VaultsToLoad(e, e->private_arena, wanted, nwanted, true, need, need_facts) > 0)
	{
		e->valid = false;
		LoadVaultFacts(index, e, need_facts);
		e->valid = true;
	}
	pfree(need);
	pfree(need_facts);
	return CacheRef{e, e->private_arena, false, exclusive, index};
}

} // namespace

/* Returns an up-to-date, locked view of an index's decrypted graph. */
CacheRef
AcquireCacheFor(Relation index, bool exclusive, const uint64 *wanted, int nwanted, bool facts_only)
{
	Oid relnode = index->rd_node.relNode;
	for (int attempt = 0;; attempt++)
	{
		if (attempt > 16)
			elog(ERROR, "vector_vault: could not stabilise the index cache");
		MetaData meta = ReadMeta(index);
		uint64 epoch = pg::AccessEpoch();
		if (g_cache == nullptr)
			return AcquirePrivate(index, meta, epoch, exclusive, wanted, nwanted);
		LWLockAcquire(g_cache->registry_lock, LW_SHARED);
		CacheEntry *e = FindShared(MyDatabaseId, relnode);
		if (e != nullptr)
			e->last_used = ++g_cache->clock; /* benign race: only an LRU hint */
		LWLockRelease(g_cache->registry_lock);
		if (e != nullptr)
		{
			CacheRef ref;
			if (UseSharedEntry(index, e, exclusive, meta, epoch, wanted, nwanted, facts_only,
							   &ref) == EntryOutcome::kGot)
				return ref;
			continue;
		}
		if (!ReserveSharedEntry(index, meta))
			return AcquirePrivate(index, meta, epoch, exclusive, wanted, nwanted);
	}
}

/* Releases a cache reference. */
void
ReleaseCache(CacheRef *ref)
{
	if (ref->entry != nullptr && ref->shared)
		LWLockRelease(ref->entry->lock);
	ref->entry = nullptr;
}

/* Marks an index's cached copies stale. */
void
InvalidateCache(Relation index)
{
	Oid relnode = index->rd_node.relNode;
	if (g_cache != nullptr)
	{
		LWLockAcquire(g_cache->registry_lock, LW_SHARED);
		CacheEntry *e = FindShared(MyDatabaseId, relnode);
		if (e != nullptr)
			e->valid = false;
		LWLockRelease(g_cache->registry_lock);
	}
	for (int i = 0; i < kMaxPrivate; i++)
		if (g_private[i] && g_private[i]->relnode == relnode && g_private[i]->dbid == MyDatabaseId)
			g_private[i]->valid = false;
}

/* Per-operation buffers of a CacheGraph (palloc'd; never shared). */
struct GraphScratch
{
	MemoryContext mcxt;
	const float *prepared_for; /* the query pq was prepared from (sq8) */
	sq8::PreparedQuery pq;
	float *pq_buf;  /* sq8::ScratchFloats(dims) */
	uint8_t *codes; /* sq4: one element's unpacked codes (dims bytes) */
	float *va;      /* decoded or decrypted vectors (dims each) */
	float *vb;
	uint32 *links; /* one element's lists, up to kMaxLevel */
	ElementId staged_id;
	const float *staged;
	HalfDistanceKernel half_dist; /* the half representation's kernel for the metric */
	int in_cpp;                   /* > 0 while a C++ island runs the algorithms */
	ErrorData *error;             /* a Postgres error caught inside an island */
	size_t dims;
	int m;
	MemoryContextCallback zero;
};

namespace
{

/* Thrown through C++ frames after a Postgres error was caught in the pages representation. */
struct GraphReadError
{
};

/* Zeroes the decrypted buffers of a scratch when its memory context goes away. */
void
ZeroScratch(void *arg) noexcept
{
	GraphScratch *s = static_cast<GraphScratch *>(arg);
	SecureZero(s->pq_buf, sizeof(float) * sq8::ScratchFloats(s->dims));
	SecureZero(s->codes, s->dims);
	SecureZero(s->va, sizeof(float) * s->dims);
	SecureZero(s->vb, sizeof(float) * s->dims);
	SecureZero(s->links, LinksBytes(s->m, hnsw::kMaxLevel));
}

/*
 * Runs fn, which reads index pages. A Postgres error inside a C++ island is saved in the scratch
 * and becomes a GraphReadError (the island catches it; RethrowGraphError raises it again); with
 * no island running, the error simply propagates.
 */
template <typename Fn>
void
Guarded(GraphScratch *s, Fn fn)
{
	if (s->in_cpp == 0)
	{
		fn();
		return;
	}
	MemoryContext mcxt = CurrentMemoryContext;
	volatile bool failed = false;
	PG_TRY();
	{
		fn();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(s->mcxt);
		if (s->error == nullptr)
			s->error = CopyErrorData();
		FlushErrorState();
		MemoryContextSwitchTo(mcxt);
		failed = true;
	}
	PG_END_TRY();
	if (failed)
		throw GraphReadError();
}

/* Decrypts an element's vector from the pages into out (the staged insert from memory). */
void
ReadElementVector(const CacheGraph &g, ElementId id, float *out)
{
	GraphScratch *sc = g.scratch;
	if (id == sc->staged_id && sc->staged != nullptr)
	{
		memcpy(out, sc->staged, sizeof(float) * g.params.dims);
		return;
	}
	const CacheEntry *e = g.ref->entry;
	SlotHead *s = Slot(e, g.ref->arena, id);
	uint64 vault_id = Vaults(e, g.ref->arena)[s->vault_index].vault_id;
	Relation index = g.ref->index;
	BlockNumber block = s->vec_block;
	uint32 offset = s->vec_offset;
	uint32 key_version = s->key_version;
	ElementWidth width = EntryWidth(e);
	Guarded(sc, [&]
			{ ReadVector(index, block, offset, id, vault_id, key_version, e->dims, width, out); });
}

} // namespace

/* Graph accessor over a cache reference. */
CacheGraph
GraphOf(const CacheRef &ref)
{
	CacheGraph g;
	g.ref = &ref;
	g.params.m = ref.entry->m;
	g.params.dims = ref.entry->dims;
	g.params.dist = KernelFor(static_cast<Metric>(ref.entry->metric));
	GraphScratch *s = static_cast<GraphScratch *>(palloc0(sizeof(GraphScratch)));
	size_t dims = ref.entry->dims;
	s->mcxt = CurrentMemoryContext;
	s->pq_buf = static_cast<float *>(palloc(sizeof(float) * sq8::ScratchFloats(dims)));
	s->codes = static_cast<uint8_t *>(palloc(dims));
	s->va = static_cast<float *>(palloc(sizeof(float) * dims));
	s->vb = static_cast<float *>(palloc(sizeof(float) * dims));
	s->links = static_cast<uint32 *>(palloc(LinksBytes(ref.entry->m, hnsw::kMaxLevel)));
	s->staged_id = kNoElement;
	s->half_dist = HalfKernelFor(static_cast<Metric>(ref.entry->metric));
	s->dims = dims;
	s->m = ref.entry->m;
	s->zero.func = ZeroScratch;
	s->zero.arg = s;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &s->zero);
	g.scratch = s;
	return g;
}

/* Raises the Postgres error an island caught, if any. */
void
RethrowGraphError(const CacheGraph &g)
{
	if (g.scratch != nullptr && g.scratch->error != nullptr)
	{
		ErrorData *e = g.scratch->error;
		g.scratch->error = nullptr;
		ReThrowError(e);
	}
}

/* Enters a C++ island. */
void
EnterIsland(const CacheGraph &g) noexcept
{
	g.scratch->in_cpp++;
}

/* Leaves a C++ island. */
void
LeaveIsland(const CacheGraph &g) noexcept
{
	g.scratch->in_cpp--;
}

/* The representation of a referenced entry. */
Representation
CachedRepresentation(const CacheRef &ref)
{
	return ReprOf(ref.entry);
}

/* Marks the element being inserted (its vector is not on pages yet). */
void
CacheGraph::StageInsert(ElementId id, const float *v) const
{
	scratch->staged_id = id;
	scratch->staged = v;
}

/* Forgets the prepared query. */
void
CacheGraph::NewQuery() const
{
	scratch->prepared_for = nullptr;
}

/* Distance from a float32 query to an element, in the entry's representation. */
float
CacheGraph::Dist(const hnsw::GraphParams &p, const float *q, ElementId id) const
{
	const CacheEntry *e = ref->entry;
	switch (ReprOf(e))
	{
		case Representation::kFloat32:
			return p.dist(q, reinterpret_cast<const float *>(VecArea(e, Slot(e, ref->arena, id))),
						  p.dims);
		case Representation::kHalf:
			/* a staged insert's slot holds its halves already (CacheStageVector): exact */
			return scratch->half_dist(
				q, reinterpret_cast<const uint16 *>(VecArea(e, Slot(e, ref->arena, id))), p.dims);
		case Representation::kSq8:
		case Representation::kSq4:
		{
			if (id == scratch->staged_id && scratch->staged != nullptr)
				return p.dist(q, scratch->staged, p.dims);
			if (scratch->prepared_for != q)
			{
				PrepareSq8ForMetric(static_cast<Metric>(e->metric), q, QuantLo(e, ref->arena),
									QuantStep(e, ref->arena), e->dims, scratch->pq_buf,
									&scratch->pq);
				scratch->prepared_for = q;
			}
			const uint8_t *codes =
				reinterpret_cast<const uint8_t *>(VecArea(e, Slot(e, ref->arena, id)));
			if (ReprOf(e) == Representation::kSq4)
			{
				sq4::Unpack(codes, e->dims, scratch->codes);
				codes = scratch->codes;
			}
			return sq8::Distance(scratch->pq, codes);
		}
		case Representation::kPages:
			break;
	}
	ReadElementVector(*this, id, scratch->va);
	return p.dist(q, scratch->va, p.dims);
}

/* Distance between two elements (float32 from slots, decoded codes, or decrypted pages). */
float
CacheGraph::PairDist(const hnsw::GraphParams &p, ElementId a, ElementId b) const
{
	const CacheEntry *e = ref->entry;
	if (ReprOf(e) == Representation::kFloat32)
		return p.dist(reinterpret_cast<const float *>(VecArea(e, Slot(e, ref->arena, a))),
					  reinterpret_cast<const float *>(VecArea(e, Slot(e, ref->arena, b))), p.dims);
	if (ReprOf(e) == Representation::kHalf)
	{
		CopyVector(a, scratch->va);
		return scratch->half_dist(
			scratch->va, reinterpret_cast<const uint16 *>(VecArea(e, Slot(e, ref->arena, b))),
			p.dims);
	}
	CopyVector(a, scratch->va);
	CopyVector(b, scratch->vb);
	return p.dist(scratch->va, scratch->vb, p.dims);
}

/* An element's float32 vector into out. */
void
CacheGraph::CopyVector(ElementId id, float *out) const
{
	const CacheEntry *e = ref->entry;
	if (id == scratch->staged_id && scratch->staged != nullptr)
	{
		memcpy(out, scratch->staged, sizeof(float) * e->dims);
		return;
	}
	switch (ReprOf(e))
	{
		case Representation::kFloat32:
			memcpy(out, VecArea(e, Slot(e, ref->arena, id)), sizeof(float) * e->dims);
			return;
		case Representation::kHalf:
			WidenHalves(reinterpret_cast<const uint16 *>(VecArea(e, Slot(e, ref->arena, id))),
						e->dims, out);
			return;
		case Representation::kSq8:
			sq8::Decode(reinterpret_cast<const uint8_t *>(VecArea(e, Slot(e, ref->arena, id))),
						QuantLo(e, ref->arena), QuantStep(e, ref->arena), e->dims, out);
			return;
		case Representation::kSq4:
			sq4::Unpack(reinterpret_cast<const uint8_t *>(VecArea(e, Slot(e, ref->arena, id))),
						e->dims, scratch->codes);
			sq8::Decode(scratch->codes, QuantLo(e, ref->arena), QuantStep(e, ref->arena), e->dims,
						out);
			return;
		case Representation::kPages:
			ReadElementVector(*this, id, out);
			return;
	}
}

/* Starts loading an element's vector (resident representations only). */
void
CacheGraph::Prefetch(ElementId id) const
{
	const CacheEntry *e = ref->entry;
	if (ReprOf(e) == Representation::kPages)
		return;
	const char *v = VecArea(e, Slot(e, ref->arena, id));
	__builtin_prefetch(v);
	__builtin_prefetch(v + 64);
}

/* Exact distance from q to an element, its vector decrypted from the pages. */
float
ExactDistance(const CacheGraph &g, const float *q, ElementId id)
{
	ReadElementVector(g, id, g.scratch->va);
	float d = g.params.dist(q, g.scratch->va, g.params.dims);
	SecureZero(g.scratch->va, sizeof(float) * g.params.dims);
	return d;
}

/* Copies a neighbour list: under the element's seqlock, or decrypted from its page. */
int
CacheGraph::Links(ElementId id, int layer, ElementId *out) const
{
	const CacheEntry *e = ref->entry;
	SlotHead *s = Slot(e, ref->arena, id);
	if (layer > s->level || !(s->flags & kSlotPresent))
		return 0;
	int cap = layer == 0 ? 2 * e->m : e->m;
	uint32 published = pg_atomic_read_u32(const_cast<pg_atomic_uint32 *>(&ref->entry->nslots));
	if (ReprOf(e) == Representation::kPages)
	{
		uint32 *all = scratch->links;
		Relation index = ref->index;
		BlockNumber block = s->graph_block;
		OffsetNumber off = s->graph_off;
		int m = e->m;
		int level = s->level;
		Guarded(scratch, [&] { ReadElementLinks(index, block, off, m, id, level, all); });
		const uint32 *list = layer == 0 ? all : all + (1 + 2 * m) + (layer - 1) * (1 + m);
		int n = Min(static_cast<int>(list[0]), cap);
		int k = 0;
		for (int i = 0; i < n; i++)
			if (list[1 + i] < published)
				out[k++] = list[1 + i];
		SecureZero(all, LinksBytes(m, s->level));
		return k;
	}
	for (;;)
	{
		uint32 before = pg_atomic_read_u32(&s->seq);
		if (before & 1)
		{
			pg_spin_delay();
			continue;
		}
		pg_read_barrier();
		const uint32 *list = ListOf(e, ref->arena, s, layer);
		int n = static_cast<int>(list[0]);
		if (n > cap)
			n = cap;
		memcpy(out, list + 1, sizeof(uint32) * n);
		pg_read_barrier();
		if (pg_atomic_read_u32(&s->seq) == before)
		{
			/* never follow an id the cache has not published */
			published = pg_atomic_read_u32(const_cast<pg_atomic_uint32 *>(&ref->entry->nslots));
			int k = 0;
			for (int i = 0; i < n; i++)
				if (out[i] < published)
					out[k++] = out[i];
			return k;
		}
	}
}

/* The top layer of an element. */
int
CacheGraph::Level(ElementId id) const
{
	return Slot(ref->entry, ref->arena, id)->level;
}

/* True for deleted or unloaded elements. */
bool
CacheGraph::Deleted(ElementId id) const
{
	uint8 f = Slot(ref->entry, ref->arena, id)->flags;
	return !(f & kSlotPresent) || (f & kSlotDeleted);
}

/*
 * Layer-0 in-degree. Resident representations keep it exact. The pages representation has no
 * reverse lists, so it counts the element's own layer-0 neighbours that link back to it: a lower
 * bound (links from non-neighbours are missed), which is the safe side for the callers, who only
 * drop or replace a link when the target still has enough other inbound links.
 */
int
CacheGraph::InDegree(ElementId id) const
{
	if (ReprOf(ref->entry) != Representation::kPages)
		return static_cast<int>(Slot(ref->entry, ref->arena, id)->indegree);
	ElementId out[2 * hnsw::kMaxM];
	ElementId back[2 * hnsw::kMaxM];
	int n = Links(id, 0, out);
	int count = 0;
	for (int i = 0; i < n; i++)
	{
		int k = Links(out[i], 0, back);
		for (int j = 0; j < k; j++)
			if (back[j] == id)
			{
				count++;
				break;
			}
	}
	return count;
}

/* Ids are below the slot capacity. */
uint32_t
CacheGraph::Capacity() const
{
	return ref->entry->slot_capacity;
}

/* Reads an element's facts. */
bool
GetCachedElement(const CacheRef &ref, ElementId id, CachedElement *out)
{
	if (id >= ref.entry->slot_capacity)
		return false;
	SlotHead *s = Slot(ref.entry, ref.arena, id);
	out->present = (s->flags & kSlotPresent) != 0;
	out->deleted = (s->flags & kSlotDeleted) != 0;
	out->tid = s->tid;
	out->level = s->level;
	out->graph_block = s->graph_block;
	out->graph_off = s->graph_off;
	out->vault_index = s->vault_index;
	out->vault_id = Vaults(ref.entry, ref.arena)[s->vault_index].vault_id;
	return out->present;
}

/* The cached vault table. */
const DirEntry *
CachedVaults(const CacheRef &ref, int *n)
{
	*n = static_cast<int>(pg_atomic_read_u32(&ref.entry->nvaults));
	return Vaults(ref.entry, ref.arena);
}

/* The change counter the cache reflects. */
uint64
CachedCounter(const CacheRef &ref)
{
	return pg_atomic_read_u64(&ref.entry->change_counter);
}

/* Published element count. */
uint32
CachedElements(const CacheRef &ref)
{
	return pg_atomic_read_u32(&ref.entry->nslots);
}

/* True when a new element of this level fits without growing the cache. */
bool
CacheHasRoom(const CacheRef &ref, ElementId id, int level)
{
	const CacheEntry *e = ref.entry;
	return id < e->slot_capacity &&
		   (ReprOf(e) == Representation::kPages ||
			e->upper_used + static_cast<uint32>(level) * (1 + e->m) <= e->upper_cap) &&
		   pg_atomic_read_u32(const_cast<pg_atomic_uint32 *>(&e->nvaults)) < e->vault_cap &&
		   e->nblocks + 8 < e->block_cap;
}

/* Stores and publishes a new element. */
void
CacheAddElement(const CacheRef &ref, ElementId id, const ElementHeader &h, const float *v,
				const uint32 *links, BlockNumber graph_block, OffsetNumber graph_off,
				int vault_index)
{
	CacheEntry *e = ref.entry;
	SlotHead *s = Slot(e, ref.arena, id);
	pg_atomic_fetch_add_u32(&s->seq, 1);
	pg_write_barrier();
	s->level = h.level;
	s->vault_index = static_cast<uint16>(vault_index);
	s->tid = h.heap_tid;
	s->graph_block = graph_block;
	s->graph_off = graph_off;
	s->vec_block = h.vec_block;
	s->vec_offset = h.vec_offset;
	s->key_version = h.key_version;
	if (ReprOf(e) != Representation::kPages)
	{
		if (h.level > 0)
		{
			s->upper_ref = e->upper_used;
			e->upper_used += static_cast<uint32>(h.level) * (1 + e->m);
		}
		else
			s->upper_ref = kNoUpper;
		StoreLinks(e, ref.arena, s, links);
		StoreVector(e, ref.arena, s, v);
		for (uint32 k = 0; k < Min(links[0], static_cast<uint32>(2 * e->m)); k++)
			if (links[1 + k] < e->slot_capacity)
				Slot(e, ref.arena, links[1 + k])->indegree++;
	}
	s->flags = kSlotPresent | (ReprOf(e) != Representation::kPages ? kSlotLoaded : 0);
	pg_write_barrier();
	pg_atomic_fetch_add_u32(&s->seq, 1);
	if (pg_atomic_read_u32(&e->nslots) <= id)
		pg_atomic_write_u32(&e->nslots, id + 1);
}

/* Replaces one neighbour list under the seqlock. */
void
CacheSetLinks(const CacheRef &ref, ElementId id, int layer, const ElementId *links, int n)
{
	CacheEntry *e = ref.entry;
	if (ReprOf(e) == Representation::kPages)
		return; /* the pages are the lists */
	SlotHead *s = Slot(e, ref.arena, id);
	pg_atomic_fetch_add_u32(&s->seq, 1);
	pg_write_barrier();
	uint32 *list = ListOf(e, ref.arena, s, layer);
	if (layer == 0)
	{
		for (uint32 k = 0; k < Min(list[0], static_cast<uint32>(2 * e->m)); k++)
			if (list[1 + k] < e->slot_capacity)
				Slot(e, ref.arena, list[1 + k])->indegree--;
		for (int k = 0; k < n; k++)
			if (links[k] < e->slot_capacity)
				Slot(e, ref.arena, links[k])->indegree++;
	}
	list[0] = static_cast<uint32>(n);
	memcpy(list + 1, links, sizeof(uint32) * n);
	pg_write_barrier();
	pg_atomic_fetch_add_u32(&s->seq, 1);
}

/* Sets or appends a vault's directory entry. */
int
CacheSetVault(const CacheRef &ref, const DirEntry &d)
{
	CacheEntry *e = ref.entry;
	DirEntry *v = Vaults(e, ref.arena);
	uint32 n = pg_atomic_read_u32(const_cast<pg_atomic_uint32 *>(&e->nvaults));
	for (uint32 i = 0; i < n; i++)
	{
		if (v[i].vault_id == d.vault_id)
		{
			v[i].entry_level = d.entry_level;
			pg_write_barrier();
			v[i].entry = d.entry;
			v[i].count = d.count;
			return static_cast<int>(i);
		}
	}
	v[n] = d;
	/* a vault the writer creates has nothing to load: its elements are all after build_tail */
	VaultFlags(v[n]) = kVaultResident | kVaultFacts;
	pg_write_barrier();
	pg_atomic_write_u32(&e->nvaults, n + 1);
	return static_cast<int>(n);
}

/* Records a block's LSN after the writer changed it. */
void
CacheNoteBlock(const CacheRef &ref, BlockNumber block, XLogRecPtr lsn, PageKind kind)
{
	CacheEntry *e = ref.entry;
	if (block >= e->block_cap)
	{
		e->valid = false;
		return;
	}
	BlockLsns(e, ref.arena)[block] = lsn;
	BlockKinds(e, ref.arena)[block] = static_cast<uint8>(kind);
	if (block >= e->nblocks)
		e->nblocks = block + 1;
}

/* Writes a staged vector into an unpublished slot. */
void
CacheStageVector(const CacheRef &ref, ElementId id, const float *v)
{
	StoreVector(ref.entry, ref.arena, Slot(ref.entry, ref.arena, id), v);
}

/* Copies all lists of an element in record order. */
void
CacheGetAllLinks(const CacheRef &ref, ElementId id, uint32 *out)
{
	const CacheEntry *e = ref.entry;
	SlotHead *s = Slot(e, ref.arena, id);
	if (ReprOf(e) == Representation::kPages)
	{
		ReadElementLinks(ref.index, s->graph_block, s->graph_off, e->m, id, s->level, out);
		return;
	}
	for (;;)
	{
		uint32 before = pg_atomic_read_u32(&s->seq);
		if (before & 1)
		{
			pg_spin_delay();
			continue;
		}
		pg_read_barrier();
		memcpy(out, Links0(s), sizeof(uint32) * (1 + 2 * e->m));
		for (int l = 1; l <= s->level; l++)
			memcpy(out + (1 + 2 * e->m) + (l - 1) * (1 + e->m), ListOf(e, ref.arena, s, l),
				   sizeof(uint32) * (1 + e->m));
		pg_read_barrier();
		if (pg_atomic_read_u32(&s->seq) == before)
			return;
	}
}

/* Marks an entry stale. */
void
CacheMarkInvalid(const CacheRef &ref)
{
	ref.entry->valid = false;
}

/* The backend's visited set, its tag array grown to cover capacity (generations persist). */
hnsw::VisitedSet *
BackendVisitedSet(uint32 capacity)
{
	static uint16 *tags = nullptr;
	static size_t size = 0;
	static hnsw::VisitedSet set;
	if (size < capacity)
	{
		size_t n = capacity + capacity / 4 + 1024;
		uint16 *fresh = static_cast<uint16 *>(MemoryContextAllocExtended(
			TopMemoryContext, sizeof(uint16) * n, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO));
		if (tags != nullptr)
			pfree(tags);
		tags = fresh;
		size = n;
		set = hnsw::VisitedSet(tags, size);
	}
	return &set;
}

/* Sets the counter the cache reflects. */
void
CacheSetCounter(const CacheRef &ref, uint64 counter)
{
	pg_atomic_write_u64(&ref.entry->change_counter, counter);
}

/* Name of a representation in vault.index_cache. */
static const char *
ReprName(Representation r)
{
	switch (r)
	{
		case Representation::kFloat32:
			return "float32";
		case Representation::kHalf:
			return "half";
		case Representation::kSq8:
			return "sq8";
		case Representation::kSq4:
			return "sq4";
		case Representation::kPages:
			return "pages";
	}
	return "unknown";
}

} // namespace vector_vault::index

using namespace vector_vault::index;

/*
 * vault.index_cache_stats(): one row per vault_hnsw index of this database the shared cache
 * holds or has held since the server started: representation ('none' once evicted), resident
 * bytes, elements, vaults, full loads, acquisitions served, evictions. Backend-private element
 * facts of this session show as 'pages (private)'.
 */
VV_FUNCTION(vault_index_cache_stats)
{
	ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
	InitMaterializedSRF(fcinfo, 0);
	struct Row
	{
		Oid relid;
		const char *repr;
		int64 bytes;
		int64 vectors;
		int32 vaults;
		int32 resident_vaults;
		int64 loads;
		int64 hits;
		int64 evictions;
	};
	int cap = (g_cache ? g_cache->nentries + g_cache->nhistory : 0) + kMaxPrivate;
	Row *rows = static_cast<Row *>(palloc0(sizeof(Row) * cap));
	int n = 0;
	if (g_cache != nullptr)
	{
		LWLockAcquire(g_cache->registry_lock, LW_SHARED);
		for (int i = 0; i < g_cache->nentries; i++)
		{
			const CacheEntry *e = &g_cache->entries[i];
			if (!e->used || e->dbid != MyDatabaseId)
				continue;
			int64 evictions = 0, loads = static_cast<int64>(e->loads);
			for (int j = 0; j < g_cache->nhistory; j++)
				if (g_cache->history[j].dbid == e->dbid &&
					g_cache->history[j].relnode == e->relnode)
				{
					evictions = static_cast<int64>(g_cache->history[j].evictions);
					loads = Max(loads, static_cast<int64>(g_cache->history[j].loads));
				}
			int32 nv =
				static_cast<int32>(pg_atomic_read_u32(const_cast<pg_atomic_uint32 *>(&e->nvaults)));
			int32 resident = 0;
			const DirEntry *dir = Vaults(e, g_region + e->arena_off);
			for (int32 v = 0; v < nv; v++)
				resident += ReprOf(e) == Representation::kPages
								? HasFacts(e, dir[v])
								: (VaultFlags(dir[v]) & kVaultResident) != 0;
			rows[n++] = {
				e->relid,
				ReprName(ReprOf(e)),
				static_cast<int64>(e->arena_len),
				static_cast<int64>(e->vectors),
				nv,
				resident,
				loads,
				static_cast<int64>(pg_atomic_read_u64(const_cast<pg_atomic_uint64 *>(&e->hits))),
				evictions};
		}
		for (int j = 0; j < g_cache->nhistory; j++)
		{
			const History *h = &g_cache->history[j];
			if (h->dbid != MyDatabaseId || h->relnode == InvalidOid ||
				FindShared(h->dbid, h->relnode) != nullptr)
				continue;
			rows[n++] = {h->relid,
						 "none",
						 0,
						 0,
						 0,
						 0,
						 static_cast<int64>(h->loads),
						 0,
						 static_cast<int64>(h->evictions)};
		}
		LWLockRelease(g_cache->registry_lock);
	}
	for (int i = 0; i < kMaxPrivate; i++)
	{
		const CacheEntry *e = g_private[i];
		if (e == nullptr || e->private_arena == nullptr || e->dbid != MyDatabaseId)
			continue;
		rows[n++] = {
			e->relid,
			"pages (private)",
			static_cast<int64>(e->arena_len),
			static_cast<int64>(e->vectors),
			static_cast<int32>(pg_atomic_read_u32(const_cast<pg_atomic_uint32 *>(&e->nvaults))),
			static_cast<int32>(pg_atomic_read_u32(const_cast<pg_atomic_uint32 *>(&e->nvaults))),
			static_cast<int64>(e->loads),
			0,
			0};
	}
	for (int i = 0; i < n; i++)
	{
		Datum values[9] = {ObjectIdGetDatum(rows[i].relid), CStringGetTextDatum(rows[i].repr),
						   Int64GetDatum(rows[i].bytes),    Int64GetDatum(rows[i].vectors),
						   Int32GetDatum(rows[i].vaults),   Int32GetDatum(rows[i].resident_vaults),
						   Int64GetDatum(rows[i].loads),    Int64GetDatum(rows[i].hits),
						   Int64GetDatum(rows[i].evictions)};
		bool nulls[9] = {false, false, false, false, false, false, false, false, false};
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * vault.prewarm(index): loads a vault_hnsw index into the shared cache now rather than on its
 * first search; returns the representation it got. Needs SELECT on the table (or ownership),
 * like vault.hnsw_verify.
 */
VV_FUNCTION(vault_prewarm)
{
	Relation heap;
	Relation index = OpenIndexForCaller(PG_GETARG_OID(0), "vault.prewarm", &heap);
	CacheRef ref = AcquireCache(index, false);
	const char *name = ref.shared ? ReprName(ReprOf(ref.entry)) : "pages (private)";
	ReleaseCache(&ref);
	index_close(index, AccessShareLock);
	table_close(heap, AccessShareLock);
	PG_RETURN_TEXT_P(cstring_to_text(name));
}
