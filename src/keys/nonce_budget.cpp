/*
 * nonce_budget.cpp — counting AES-GCM seals per key version.
 *
 * Every envelope and index record gets a random 96-bit nonce; NIST SP 800-38D allows at most 2^32
 * seals under one key with random nonces. Each seal is counted in shared memory per (vault, key
 * version); the count survives restarts through a small sidecar file in the keyring
 * (vault-<id>-v<n>.count) that holds a reservation: the file is advanced by 2^20 before that
 * many seals are used, so after a crash the count restarts from an upper bound, never below the
 * truth. Past 2^31 seals a WARNING asks for vault.rotate_key (once per backend); at 2^32 - 2^24
 * sealing under that version is refused.
 *
 * Any number of key versions. The shared table has a fixed number of slots, but a cluster may
 * create key versions without end, so the table is only a cache of the count files: a version
 * not in it takes a free slot of its window or evicts the least recently used one
 * (core/seal_table.h), and an eviction first writes the evicted version's exact count to its
 * file, so the version continues from there when it comes back (no count is lost, none
 * inflated). Shredding a version or dropping a vault frees its slots. A seal is never left
 * uncounted: when a slot cannot be had (its count file cannot be read or written) sealing under
 * that version is refused with an error.
 *
 * Concurrency. Slots change hands only under the table's lock; each slot carries a generation
 * that is odd while it changes hands (a sequence lock). The lock-free fast path reads the
 * generation, checks the slot's identity, adds to its count, and re-reads the generation: if the
 * slot changed hands meanwhile, the add may have gone to the wrong version, so the seal is
 * counted again under the lock (an over-count, never an under-count).
 */
#include "core/durable_file.h"
#include "core/envelope.h"
#include "core/keyring_format.h"
#include "core/seal_table.h"

#include <cinttypes>
#include <cstring>
#include <ctime>

#include "keys/keys.h"
#include "pg/guard.h"
#include "pg/shmem.h"

extern "C"
{
#include "port/atomics.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
}

namespace vector_vault::keys
{

namespace
{

constexpr size_t kSlots = 2048;
constexpr uint64 kChunk = 1ull << 20;
constexpr uint64 kWarnAt = 1ull << 31;
constexpr uint64 kRefuseAt = (1ull << 32) - (1ull << 24);

/* The counters of one slot (its identity is in Budget::keys at the same index). */
struct SlotState
{
	pg_atomic_uint32 gen;      /* odd while the slot changes hands */
	pg_atomic_uint64 count;    /* seals counted for the slot's version */
	pg_atomic_uint64 reserved; /* the value in the version's count file */
	pg_atomic_uint64 last_use; /* Unix seconds of the last seal or lookup */
};

struct Budget
{
	LWLock *lock;
	SealSlotKey keys[kSlots]; /* written only under the lock, with the slot's gen odd */
	SlotState state[kSlots];
};

Budget *g_budget = nullptr;
bool g_warned = false;

/* Name of a key version's count file. */
void
CountFileName(uint64_t vault_id, uint32_t version, char out[kKeyringFileNameMax])
{
	snprintf(out, kKeyringFileNameMax, "vault-%016" PRIx64 "-v%u.count", vault_id, version);
}

/* Creates the shared table. */
void
BudgetInit(bool)
{
	bool created;
	g_budget = pg::InitLockedStruct<Budget>("vector_vault nonce budget", &created);
	if (created)
		for (SlotState &s : g_budget->state)
		{
			pg_atomic_init_u32(&s.gen, 0);
			pg_atomic_init_u64(&s.count, 0);
			pg_atomic_init_u64(&s.reserved, 0);
			pg_atomic_init_u64(&s.last_use, 0);
		}
}

/* Requests the table's LWLock and returns its size. */
Size
BudgetRequest(void)
{
	return pg::RequestLockedStruct("vector_vault nonce budget", sizeof(Budget));
}

/* Writes a version's count file durably. */
Status
WriteCount(uint64_t vault_id, uint32_t version, uint64 value)
{
	uint8_t buf[8];
	PutU64(buf, value);
	char name[kKeyringFileNameMax];
	CountFileName(vault_id, version, name);
	return WriteFileDurably(KeyringDir(), name, buf, sizeof(buf));
}

/* Reads a version's count file: 0 when there is none; an error when it is unusable. */
Status
ReadCount(uint64_t vault_id, uint32_t version, uint64 *value)
{
	char name[kKeyringFileNameMax];
	CountFileName(vault_id, version, name);
	uint8_t buf[8];
	size_t len = 0;
	Status s = ReadSmallFile(KeyringDir(), name, buf, sizeof(buf), &len);
	*value = 0;
	if (s.code() == Code::kNotFound)
		return Status::Ok();
	if (s.ok() && len != sizeof(buf))
		return Status::Error(Code::kCorrupt, "seal-count file \"%s\" has %zu bytes, expected 8",
							 name, len);
	if (s.ok())
		*value = GetU64(buf);
	return s;
}

/* Raises the error for a seal that cannot be counted (nothing was sealed yet). */
void
RefuseUncounted(uint64_t vault_id, uint32_t version, const Status &s)
{
	ereport(ERROR, (errcode(pg::kSqlStateKeyUnavailable),
					errmsg("cannot count seals under key version %u of vault %016" PRIx64
						   ", so nothing is sealed under it: %s",
						   version, vault_id, s.message()),
					errhint("Check the seal-count files in vector_vault.keyring_dir; every seal "
							"under a key must be counted to stay within the nonce limit.")));
}

/* Writes a reservation durably (caller holds the budget lock exclusively). */
void
Reserve(size_t at, uint64 upto)
{
	const SealSlotKey &k = g_budget->keys[at];
	Status st = WriteCount(k.vault_id, k.key_version, upto);
	if (!st.ok())
		pg::ThrowStatus(st, "could not record the key's use count", nullptr);
	pg_atomic_write_u64(&g_budget->state[at].reserved, upto);
}

/* Frees a slot (lock held exclusively), saving its exact count first unless forget is set. */
Status
ReleaseSlot(size_t at, bool forget)
{
	SealSlotKey &k = g_budget->keys[at];
	SlotState &st = g_budget->state[at];
	pg_atomic_fetch_add_u32(&st.gen, 1); /* odd: fast paths step aside or recount */
	uint64 count = pg_atomic_read_u64(&st.count);
	if (!forget && count != pg_atomic_read_u64(&st.reserved))
	{
		Status s = WriteCount(k.vault_id, k.key_version, count);
		if (!s.ok())
		{
			pg_atomic_fetch_add_u32(&st.gen, 1); /* unchanged after all */
			return s;
		}
	}
	k = SealSlotKey();
	pg_atomic_write_u64(&st.count, 0);
	pg_atomic_write_u64(&st.reserved, 0);
	pg_atomic_fetch_add_u32(&st.gen, 1);
	return Status::Ok();
}

/* The slot of a key version, taking one (and loading its count file) when it has none; raises
 * an error when no slot can be had (lock held exclusively). */
size_t
SlotFor(uint64_t vault_id, uint32_t version)
{
	long found = SealTableFind(g_budget->keys, kSlots, vault_id, version);
	uint64 now = static_cast<uint64>(time(nullptr));
	if (found >= 0)
	{
		g_budget->keys[found].last_use = now;
		return static_cast<size_t>(found);
	}
	/* recency as the fast paths recorded it */
	size_t home = SealTableHome(vault_id, version, kSlots);
	for (size_t i = 0; i < kSealWays; i++)
	{
		size_t at = (home + i) % kSlots;
		g_budget->keys[at].last_use = pg_atomic_read_u64(&g_budget->state[at].last_use);
	}
	bool evict = false;
	size_t at = SealTableVictim(g_budget->keys, kSlots, vault_id, version, &evict);
	Status s = evict ? ReleaseSlot(at, false) : Status::Ok();
	uint64 from = 0;
	if (s.ok())
		s = ReadCount(vault_id, version, &from);
	if (!s.ok())
		RefuseUncounted(vault_id, version, s);
	SlotState &st = g_budget->state[at];
	pg_atomic_fetch_add_u32(&st.gen, 1);
	g_budget->keys[at].vault_id = vault_id;
	g_budget->keys[at].key_version = version;
	g_budget->keys[at].last_use = now;
	pg_atomic_write_u64(&st.count, from);
	pg_atomic_write_u64(&st.reserved, from);
	pg_atomic_write_u64(&st.last_use, now);
	pg_atomic_fetch_add_u32(&st.gen, 1);
	return at;
}

/* Lock-free count of one seal in the version's slot; false when the slow path must count it. */
bool
CountFast(uint64_t vault_id, uint32_t version, uint64 *n, uint64 *reserved)
{
	size_t home = SealTableHome(vault_id, version, kSlots);
	for (size_t i = 0; i < kSealWays; i++)
	{
		size_t at = (home + i) % kSlots;
		SlotState &st = g_budget->state[at];
		uint32 gen = pg_atomic_read_u32(&st.gen);
		if (gen & 1)
			return false;
		pg_read_barrier();
		const volatile SealSlotKey &k = g_budget->keys[at];
		if (k.key_version != version || k.vault_id != vault_id)
			continue;
		*n = pg_atomic_fetch_add_u64(&st.count, 1) + 1;
		*reserved = pg_atomic_read_u64(&st.reserved);
		if (pg_atomic_read_u32(&st.gen) != gen)
			return false; /* changed hands: count again under the lock */
		uint64 now = static_cast<uint64>(time(nullptr));
		if (pg_atomic_read_u64(&st.last_use) != now)
			pg_atomic_write_u64(&st.last_use, now);
		return true;
	}
	return false;
}

} // namespace

/* Registers the shared table (from _PG_init while preloading). */
void
RegisterNonceBudget()
{
	pg::AddShmemClient({BudgetRequest, BudgetInit});
}

/* Counts one seal under a key version; warns near and refuses at the nonce limit. */
void
NoteSeal(uint64_t vault_id, uint32_t key_version)
{
	if (g_budget == nullptr)
		return;
	uint64 n = 0;
	uint64 reserved = 0;
	if (CountFast(vault_id, key_version, &n, &reserved))
	{
		if (n < reserved && n < kWarnAt)
			return;
		if (n >= reserved)
		{
			/* Reserve ahead, unless the slot changed hands: an eviction saved the exact count,
			 * which includes this seal. */
			LWLockAcquire(g_budget->lock, LW_EXCLUSIVE);
			long at = SealTableFind(g_budget->keys, kSlots, vault_id, key_version);
			if (at >= 0 && n >= pg_atomic_read_u64(&g_budget->state[at].reserved))
				Reserve(static_cast<size_t>(at), n + kChunk);
			LWLockRelease(g_budget->lock);
		}
	}
	else
	{
		LWLockAcquire(g_budget->lock, LW_EXCLUSIVE);
		size_t at = SlotFor(vault_id, key_version);
		n = pg_atomic_fetch_add_u64(&g_budget->state[at].count, 1) + 1;
		if (n >= pg_atomic_read_u64(&g_budget->state[at].reserved))
			Reserve(at, n + kChunk);
		LWLockRelease(g_budget->lock);
	}
	if (n >= kRefuseAt)
		ereport(ERROR, (errcode(pg::kSqlStateKeyUnavailable),
						errmsg("key version %u of vault %016" PRIx64
							   " has sealed %llu values, the safe limit for random nonces",
							   key_version, vault_id, static_cast<unsigned long long>(n)),
						errhint("Rotate the vault's key: SELECT vault.rotate_key(name); then CALL "
								"vault.reencrypt(name).")));
	if (n >= kWarnAt && !g_warned)
	{
		g_warned = true;
		ereport(
			WARNING,
			(errmsg("key version %u of vault %016" PRIx64 " has sealed over 2^31 values",
					key_version, vault_id),
			 errhint("Rotate the vault's key soon (vault.rotate_key); sealing stops at 2^32.")));
	}
}

/* The seals counted so far for a key version (an upper bound after a restart). */
uint64_t
SealCount(uint64_t vault_id, uint32_t key_version)
{
	if (g_budget == nullptr)
		return 0;
	LWLockAcquire(g_budget->lock, LW_EXCLUSIVE);
	long at = SealTableFind(g_budget->keys, kSlots, vault_id, key_version);
	uint64 n = 0;
	Status s;
	if (at >= 0)
		n = pg_atomic_read_u64(&g_budget->state[at].count);
	else
		s = ReadCount(vault_id, key_version, &n);
	LWLockRelease(g_budget->lock);
	if (!s.ok())
		pg::ThrowStatus(s, "could not read the key's use count", nullptr);
	return n;
}

/* Frees the slots of a shredded key version (every version of the vault when 0). */
void
ForgetSealCounts(uint64_t vault_id, uint32_t key_version)
{
	if (g_budget == nullptr)
		return;
	LWLockAcquire(g_budget->lock, LW_EXCLUSIVE);
	for (size_t at = 0; at < kSlots; at++)
	{
		const SealSlotKey &k = g_budget->keys[at];
		if (!SealSlotFree(k) && k.vault_id == vault_id &&
			(key_version == 0 || k.key_version == key_version))
			(void) ReleaseSlot(at, true);
	}
	LWLockRelease(g_budget->lock);
}

} // namespace vector_vault::keys
