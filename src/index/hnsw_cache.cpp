/*
 * hnsw_cache.cpp — the decrypted graph cache: why warm searches do no AES.
 *
 * Index pages hold only ciphertext. Decrypting the vectors a search touches on every query
 * would cost more than the search itself, so each index is decrypted once into a cache in
 * shared memory (vector_vault.cache_size MB, allocated at server start, excluded from core
 * dumps) and searched there with plain pointers: element id -> fixed-size slot holding the
 * vector, the level-0 neighbour list and the element's facts; upper-layer lists sit in a pool.
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
 * access epoch moves, an entry holding such a vault is reloaded, purging its plaintext.
 *
 * Concurrency. Readers (scans) hold the entry's LWLock shared; the single writer of an index
 * (inserts and vacuum are serialised by a heavyweight lock, see hnsw_insert.cpp) also holds it
 * shared and publishes new elements by bumping an atomic count after filling their slot, and
 * rewrites neighbour lists under a per-element seqlock that readers retry on. Loading,
 * revalidation and eviction take the lock exclusive.
 *
 * When the shared cache is disabled or cannot hold an index, the backend keeps a private copy
 * with the same layout and the same validation (a WARNING says so, once per backend).
 */
#include "core/secure.h"

#include <cstring>

#include "index/hnsw.h"
#include "keys/keys.h"
#include "pg/shmem.h"

extern "C"
{
#include "miscadmin.h"
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

constexpr int kMaxEntries = 64;
constexpr uint8 kSlotPresent = 0x01;
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
	uint32 upper_ref; /* word offset into the upper pool, kNoUpper when level 0 */
	uint32 indegree;  /* layer-0 links pointing here (maintained by loads and the writer) */
};
static_assert(sizeof(SlotHead) == 32, "slot head layout");

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
	bool used;
	bool valid;
	bool stale_vaults; /* must be reloaded to purge vaults whose keys are gone */
	pg_atomic_uint64 change_counter;
	uint64 epoch;
	uint64 last_used;
	Size arena_off; /* offset in the shared region (shared entries) */
	Size arena_len;
	char *private_arena;
	/* layout */
	uint32 dims;
	int m;
	uint8 metric;
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
	uint32 block_cap;
	uint32 nblocks;
};

namespace
{

/* The shared header of the cache. */
struct CacheShared
{
	LWLock *registry_lock;
	Size region_len;
	uint64 clock;
	int nfree;
	Extent free[2 * kMaxEntries + 2];
	CacheEntry entries[kMaxEntries];
};

CacheShared *g_cache = nullptr;
char *g_region = nullptr;

/* Backend-private fallback copies. */
constexpr int kMaxPrivate = 4;
CacheEntry *g_private[kMaxPrivate];
bool g_warned_private = false;

/* Shared memory needed: header plus the region, with room to align the region to 2 MB. */
Size
CacheShmemSize(void)
{
	if (g_cache_size_mb <= 0)
		return 0;
	return add_size(MAXALIGN(sizeof(CacheShared)),
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
	uintptr_t start = reinterpret_cast<uintptr_t>(base + MAXALIGN(sizeof(CacheShared)));
	const uintptr_t two_mb = 2 * 1024 * 1024;
	start = (start + two_mb - 1) & ~(two_mb - 1);
	g_region = reinterpret_cast<char *>(start);
	if (!found)
	{
		memset(g_cache, 0, sizeof(CacheShared));
		LWLockPadded *locks = GetNamedLWLockTranche("vector_vault index cache");
		g_cache->registry_lock = &locks[0].lock;
		for (int i = 0; i < kMaxEntries; i++)
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
	RequestNamedLWLockTranche("vector_vault index cache", kMaxEntries + 1);
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

/* List (count + ids) of a slot on a layer. */
inline uint32 *
ListOf(const CacheEntry *e, char *arena, SlotHead *h, int layer)
{
	if (layer == 0)
		return Links0(h);
	return UpperPool(e, arena) + h->upper_ref + static_cast<Size>(layer - 1) * (1 + e->m);
}

/* Sizes an entry's layout for the given capacities; returns the arena bytes needed. */
Size
Layout(CacheEntry *e, uint32 dims, int m, uint32 slots, uint32 upper_words, uint32 vaults,
	   uint32 blocks)
{
	e->dims = dims;
	e->m = m;
	e->vec_offset = static_cast<uint32>(AlignUp(sizeof(SlotHead) + sizeof(uint32) * (1 + 2 * m)));
	e->slot_bytes = static_cast<uint32>(e->vec_offset + AlignUp(sizeof(float) * dims));
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
	return off;
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
		static_cast<double>(VectorRecordBytes(meta.dims)) / VectorPageCapacity() +
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
	for (int i = 0; i < kMaxEntries; i++)
	{
		CacheEntry *e = &g_cache->entries[i];
		if (e->used && e->dbid == dbid && e->relnode == relnode)
			return e;
	}
	return nullptr;
}

/*
 * Gives an index a shared entry with an arena of `len` bytes, evicting least recently used
 * idle entries as needed. Registry lock held exclusively. nullptr when it cannot fit.
 */
CacheEntry *
ReserveShared(Oid dbid, Oid relnode, Size len)
{
	if (len > g_cache->region_len)
		return nullptr;
	CacheEntry *slot = nullptr;
	for (;;)
	{
		Size off;
		if (slot == nullptr)
		{
			for (int i = 0; i < kMaxEntries && slot == nullptr; i++)
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
		/* Evict the least recently used idle entry and try again. */
		CacheEntry *victim = nullptr;
		for (int i = 0; i < kMaxEntries; i++)
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
		DropEntry(victim);
		LWLockRelease(victim->lock);
	}
}

/* Recomputes every element's layer-0 in-degree from the lists. */
void
RecountInDegrees(CacheEntry *e, char *arena)
{
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

/* Decodes one graph page into the entry; loads vectors of elements new to the cache. */
void
LoadGraphPage(Relation index, CacheEntry *e, char *arena, BlockNumber block, Page copy,
			  MemoryContext tmp)
{
	OffsetNumber max = PageGetMaxOffsetNumber(copy);
	DirEntry *vaults = Vaults(e, arena);
	for (OffsetNumber off = FirstOffsetNumber; off <= max; off++)
	{
		ItemId iid = PageGetItemId(copy, off);
		if (!ItemIdIsUsed(iid))
			continue;
		MemoryContext old = MemoryContextSwitchTo(tmp);
		DecodedElement d;
		bool have = OpenElement(static_cast<char *>(PageGetItem(copy, iid)), ItemIdGetLength(iid),
								e->m, &d, true);
		const ElementHeader &h = d.header;
		if (h.element_id >= e->slot_capacity)
			ereport(ERROR,
					(errcode(ERRCODE_INDEX_CORRUPTED),
					 errmsg("index element id %u is beyond the metapage's count", h.element_id)));
		SlotHead *s = Slot(e, arena, h.element_id);
		bool was_present = (s->flags & kSlotPresent) != 0;
		if (!have || (h.flags & kElementDeleted))
		{
			/* the vault's key is gone, or VACUUM removed it (its vector is scrubbed) */
			s->flags = 0;
			MemoryContextSwitchTo(old);
			MemoryContextReset(tmp);
			continue;
		}
		int vault_index = -1;
		uint32 nv = pg_atomic_read_u32(const_cast<pg_atomic_uint32 *>(&e->nvaults));
		for (uint32 i = 0; i < nv; i++)
			if (vaults[i].vault_id == h.vault_id)
				vault_index = static_cast<int>(i);
		if (vault_index < 0)
		{
			if (nv >= e->vault_cap)
				ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
								errmsg("index element %u names a vault missing from the directory",
									   h.element_id)));
			memset(&vaults[nv], 0, sizeof(DirEntry));
			vaults[nv].vault_id = h.vault_id;
			vaults[nv].entry = kNoElement;
			vaults[nv].entry_level = -1;
			vault_index = static_cast<int>(nv);
			pg_atomic_write_u32(&e->nvaults, nv + 1);
		}
		pg_atomic_fetch_add_u32(&s->seq, 1);
		pg_write_barrier();
		if (!was_present || s->level != h.level)
		{
			s->level = h.level;
			if (h.level > 0)
			{
				size_t words = static_cast<size_t>(h.level) * (1 + e->m);
				if (e->upper_used + words > e->upper_cap)
					ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
									errmsg("vector_vault index cache layout overflow")));
				s->upper_ref = e->upper_used;
				e->upper_used += static_cast<uint32>(words);
			}
			else
				s->upper_ref = kNoUpper;
		}
		s->vault_index = static_cast<uint16>(vault_index);
		s->tid = h.heap_tid;
		s->graph_block = block;
		s->graph_off = off;
		memcpy(Links0(s), d.links, sizeof(uint32) * (1 + 2 * e->m));
		for (int l = 1; l <= h.level; l++)
			memcpy(ListOf(e, arena, s, l), d.links + (1 + 2 * e->m) + (l - 1) * (1 + e->m),
				   sizeof(uint32) * (1 + e->m));
		SecureZero(d.links, LinksBytes(e->m, h.level));
		if (!was_present)
			ReadVector(index, h.vec_block, h.vec_offset, h.element_id, h.vault_id, h.key_version,
					   e->dims,
					   reinterpret_cast<float *>(reinterpret_cast<char *>(s) + e->vec_offset));
		s->flags = kSlotPresent | ((h.flags & kElementDeleted) ? kSlotDeleted : 0);
		pg_write_barrier();
		pg_atomic_fetch_add_u32(&s->seq, 1);
		MemoryContextSwitchTo(old);
		MemoryContextReset(tmp);
	}
}

/* Copies the directory from the pages into the entry's vault table. */
void
LoadDirectory(Relation index, CacheEntry *e, char *arena, const MetaData &meta)
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
		vaults[j] = dir[i];
		/* A vault whose keys are gone (dropped) is not searchable from the cache. */
		if (!keys::VaultHasKeys(dir[i].vault_id))
			vaults[j].entry = kNoElement;
	}
	pg_atomic_write_u32(&e->nvaults, nv);
	pfree(dir);
}

/*
 * Brings an entry up to date with the index: a full load when `full`, otherwise decoding only
 * the graph/directory pages whose LSN changed. Entry lock held exclusively (or private).
 */
void
Refresh(Relation index, CacheEntry *e, bool full)
{
	char *arena = ArenaOf(e);
	MetaData meta = ReadMeta(index);
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	/* Until the end, an error leaves the entry marked for another refresh. */
	e->valid = false;
	if (full)
	{
		memset(arena, 0, static_cast<Size>(e->slot_capacity) * e->slot_bytes);
		memset(arena + e->lsn_off, 0, sizeof(XLogRecPtr) * e->block_cap);
		memset(arena + e->kind_off, 0, e->block_cap);
		pg_atomic_write_u32(&e->nslots, 0);
		pg_atomic_write_u32(&e->nvaults, 0);
		e->upper_used = 0;
		e->nblocks = 0;
	}
	MemoryContext tmp = AllocSetContextCreate(CurrentMemoryContext, "vault_hnsw cache load",
											  ALLOCSET_DEFAULT_SIZES);
	PGAlignedBlock copy;
	BufferAccessStrategy strategy = GetAccessStrategy(BAS_BULKREAD);
	XLogRecPtr *lsns = BlockLsns(e, arena);
	uint8 *kinds = BlockKinds(e, arena);
	LoadDirectory(index, e, arena, meta);
	for (BlockNumber b = 1; b < nblocks; b++)
	{
		/* Vector pages are append-only: a known one never needs a second look. */
		if (b < e->nblocks && kinds[b] == kVectorPage)
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
			LoadGraphPage(index, e, arena, b, copy.data, tmp);
		lsns[b] = lsn;
		kinds[b] = static_cast<uint8>(kind);
		CHECK_FOR_INTERRUPTS();
	}
	FreeAccessStrategy(strategy);
	e->nblocks = nblocks;
	RecountInDegrees(e, arena);
	pg_write_barrier();
	pg_atomic_write_u32(&e->nslots, meta.next_element_id);
	pg_atomic_write_u64(&e->change_counter, meta.change_counter);
	e->epoch = pg::AccessEpoch();
	e->stale_vaults = false;
	e->valid = true;
	MemoryContextDelete(tmp);
}

/* True when the entry has room for the index as it is now. */
bool
Fits(const CacheEntry *e, const MetaData &meta, BlockNumber nblocks, int ndir)
{
	return meta.next_element_id + 1 <= e->slot_capacity && nblocks + 8 < e->block_cap &&
		   static_cast<uint32>(ndir) + 1 <= e->vault_cap && e->dims == meta.dims &&
		   e->m == meta.m &&
		   e->upper_used + static_cast<uint32>(hnsw::kMaxLevel) * (1 + e->m) <= e->upper_cap;
}

/* True when some cached vault lost its keys since the entry was loaded (a dropped vault). */
bool
HoldsShreddedVault(const CacheEntry *e)
{
	const DirEntry *v = Vaults(e, ArenaOf(e));
	uint32 n = pg_atomic_read_u32(const_cast<pg_atomic_uint32 *>(&e->nvaults));
	for (uint32 i = 0; i < n; i++)
		if (v[i].entry != kNoElement && !keys::VaultHasKeys(v[i].vault_id))
			return true;
	return false;
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
		e->used = true;
		g_private[free_slot] = e;
	}
	if (e->private_arena == nullptr)
	{
		uint32 slots, upper, vaults, blocks;
		Capacities(meta, nblocks, ndir, &slots, &upper, &vaults, &blocks);
		e->arena_len = Layout(e, meta.dims, meta.m, slots, upper, vaults, blocks);
		e->metric = meta.metric;
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

/* Registers the cache's shared memory. */
void
RegisterCacheShmem()
{
	pg::AddShmemClient({CacheRequest, CacheShmemInit});
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
	} done[kMaxEntries];
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
	if (ndone == kMaxEntries)
		ndone = 0;
	done[ndone++] = {e->relnode, e->arena_off, e->arena_len};
}

/* Returns an up-to-date, locked view of an index's decrypted graph. */
CacheRef
AcquireCache(Relation index, bool exclusive)
{
	Oid relnode = index->rd_node.relNode;
	for (int attempt = 0;; attempt++)
	{
		if (attempt > 8)
			elog(ERROR, "vector_vault: could not stabilise the index cache");
		MetaData meta = ReadMeta(index);
		uint64 epoch = pg::AccessEpoch();
		if (g_cache != nullptr)
		{
			LWLockAcquire(g_cache->registry_lock, LW_SHARED);
			CacheEntry *e = FindShared(MyDatabaseId, relnode);
			if (e != nullptr)
				e->last_used = ++g_cache->clock; /* benign race: only an LRU hint */
			LWLockRelease(g_cache->registry_lock);
			if (e != nullptr)
			{
				LWLockAcquire(e->lock, exclusive ? LW_EXCLUSIVE : LW_SHARED);
				if (e->used && e->dbid == MyDatabaseId && e->relnode == relnode && e->valid &&
					pg_atomic_read_u64(&e->change_counter) == meta.change_counter &&
					e->epoch == epoch)
				{
					PopulateOnce(e);
					return CacheRef{e, g_region + e->arena_off, true, exclusive};
				}
				LWLockRelease(e->lock);
				/* Stale: refresh under the exclusive lock. */
				LWLockAcquire(e->lock, LW_EXCLUSIVE);
				if (!(e->used && e->dbid == MyDatabaseId && e->relnode == relnode))
				{
					LWLockRelease(e->lock);
					continue;
				}
				meta = ReadMeta(index);
				BlockNumber nblocks = RelationGetNumberOfBlocks(index);
				int ndir = DirCount(index, meta);
				bool purge = e->epoch != epoch && HoldsShreddedVault(e);
				if (e->valid && !purge && Fits(e, meta, nblocks, ndir))
				{
					if (pg_atomic_read_u64(&e->change_counter) != meta.change_counter)
						Refresh(index, e, false);
					e->epoch = epoch;
					LWLockRelease(e->lock);
					continue;
				}
				if (!purge && !e->valid && Fits(e, meta, nblocks, ndir) && e->nblocks > 0)
				{
					Refresh(index, e, false);
					LWLockRelease(e->lock);
					continue;
				}
				/* Needs a bigger arena or a purge: drop it and start over. */
				LWLockAcquire(g_cache->registry_lock, LW_EXCLUSIVE);
				DropEntry(e);
				LWLockRelease(g_cache->registry_lock);
				LWLockRelease(e->lock);
				continue;
			}
			/* Not cached yet: reserve space and load. */
			BlockNumber nblocks = RelationGetNumberOfBlocks(index);
			int ndir = DirCount(index, meta);
			CacheEntry probe;
			memset(&probe, 0, sizeof(probe));
			uint32 slots, upper, vaults, blocks;
			Capacities(meta, nblocks, ndir, &slots, &upper, &vaults, &blocks);
			Size len = Layout(&probe, meta.dims, meta.m, slots, upper, vaults, blocks);
			LWLockAcquire(g_cache->registry_lock, LW_EXCLUSIVE);
			CacheEntry *found = FindShared(MyDatabaseId, relnode);
			CacheEntry *fresh = found ? nullptr : ReserveShared(MyDatabaseId, relnode, len);
			if (fresh != nullptr)
			{
				LWLock *lock = fresh->lock;
				Size off = fresh->arena_off;
				bool used = fresh->used;
				Oid dbid = fresh->dbid;
				(void) Layout(fresh, meta.dims, meta.m, slots, upper, vaults, blocks);
				fresh->metric = meta.metric;
				fresh->lock = lock;
				fresh->arena_off = off;
				fresh->arena_len = len;
				fresh->used = used;
				fresh->dbid = dbid;
				fresh->relnode = relnode;
				fresh->nblocks = 0;
				fresh->valid = false;
				pg_atomic_init_u32(&fresh->nslots, 0);
				pg_atomic_init_u32(&fresh->nvaults, 0);
				pg_atomic_init_u64(&fresh->change_counter, 0);
			}
			LWLockRelease(g_cache->registry_lock);
			if (found != nullptr)
				continue;
			if (fresh != nullptr)
			{
				LWLockAcquire(fresh->lock, LW_EXCLUSIVE);
				if (fresh->used && fresh->relnode == relnode && fresh->dbid == MyDatabaseId &&
					!fresh->valid)
					Refresh(index, fresh, true);
				LWLockRelease(fresh->lock);
				continue;
			}
		}
		/* Private fallback. */
		if (!g_warned_private)
		{
			g_warned_private = true;
			ereport(
				WARNING,
				(errmsg("vault_hnsw index \"%s\" does not fit in vector_vault.cache_size; this "
						"session keeps a private decrypted copy",
						RelationGetRelationName(index)),
				 errhint("Raise vector_vault.cache_size (currently %d MB) to at least the total "
						 "size of your vault_hnsw indexes and restart the server.",
						 g_cache_size_mb)));
		}
		BlockNumber nblocks = RelationGetNumberOfBlocks(index);
		int ndir = DirCount(index, meta);
		CacheEntry *e = PrivateEntry(index, meta, nblocks, ndir);
		if (!e->valid || e->epoch != epoch)
			Refresh(index, e, !e->valid || HoldsShreddedVault(e));
		else if (pg_atomic_read_u64(&e->change_counter) != meta.change_counter)
			Refresh(index, e, false);
		return CacheRef{e, e->private_arena, false, exclusive};
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

/* Graph accessor over a cache reference. */
CacheGraph
GraphOf(const CacheRef &ref)
{
	CacheGraph g;
	g.ref = &ref;
	g.params.m = ref.entry->m;
	g.params.dims = ref.entry->dims;
	g.params.dist = KernelFor(static_cast<Metric>(ref.entry->metric));
	return g;
}

/* The (decrypted) vector of an element. */
const float *
CacheGraph::Vector(ElementId id) const
{
	return reinterpret_cast<const float *>(
		reinterpret_cast<char *>(Slot(ref->entry, ref->arena, id)) + ref->entry->vec_offset);
}

/* Copies a neighbour list under the element's seqlock. */
int
CacheGraph::Links(ElementId id, int layer, ElementId *out) const
{
	const CacheEntry *e = ref->entry;
	SlotHead *s = Slot(e, ref->arena, id);
	if (layer > s->level || !(s->flags & kSlotPresent))
		return 0;
	int cap = layer == 0 ? 2 * e->m : e->m;
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
			uint32 published =
				pg_atomic_read_u32(const_cast<pg_atomic_uint32 *>(&ref->entry->nslots));
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

/* Layer-0 in-degree. */
int
CacheGraph::InDegree(ElementId id) const
{
	return static_cast<int>(Slot(ref->entry, ref->arena, id)->indegree);
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
		   e->upper_used + static_cast<uint32>(level) * (1 + e->m) <= e->upper_cap &&
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
	if (h.level > 0)
	{
		s->upper_ref = e->upper_used;
		e->upper_used += static_cast<uint32>(h.level) * (1 + e->m);
	}
	else
		s->upper_ref = kNoUpper;
	memcpy(Links0(s), links, sizeof(uint32) * (1 + 2 * e->m));
	for (int l = 1; l <= h.level; l++)
		memcpy(ListOf(e, ref.arena, s, l), links + (1 + 2 * e->m) + (l - 1) * (1 + e->m),
			   sizeof(uint32) * (1 + e->m));
	memcpy(reinterpret_cast<char *>(s) + e->vec_offset, v, sizeof(float) * e->dims);
	for (uint32 k = 0; k < Min(links[0], static_cast<uint32>(2 * e->m)); k++)
		if (links[1 + k] < e->slot_capacity)
			Slot(e, ref.arena, links[1 + k])->indegree++;
	s->flags = kSlotPresent;
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
	SlotHead *s = Slot(ref.entry, ref.arena, id);
	memcpy(reinterpret_cast<char *>(s) + ref.entry->vec_offset, v, sizeof(float) * ref.entry->dims);
}

/* Copies all lists of an element in record order. */
void
CacheGetAllLinks(const CacheRef &ref, ElementId id, uint32 *out)
{
	const CacheEntry *e = ref.entry;
	SlotHead *s = Slot(e, ref.arena, id);
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

} // namespace vector_vault::index
