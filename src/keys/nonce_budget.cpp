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
 */
#include "core/durable_file.h"
#include "core/envelope.h"
#include "core/keyring_format.h"

#include <cinttypes>
#include <cstring>

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

constexpr int kSlots = 1024;
constexpr uint64 kChunk = 1ull << 20;
constexpr uint64 kWarnAt = 1ull << 31;
constexpr uint64 kRefuseAt = (1ull << 32) - (1ull << 24);

struct Slot
{
	uint64 vault_id; /* 0 = free */
	uint32 key_version;
	bool loaded;
	pg_atomic_uint64 count;
	uint64 reserved;
};

struct Budget
{
	LWLock *lock;
	Slot slots[kSlots];
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
		for (Slot &s : g_budget->slots)
			pg_atomic_init_u64(&s.count, 0);
}

/* Requests the table's LWLock and returns its size. */
Size
BudgetRequest(void)
{
	return pg::RequestLockedStruct("vector_vault nonce budget", sizeof(Budget));
}

/* Writes a reservation durably (caller holds the budget lock exclusively). */
void
Reserve(Slot *s, uint64 upto)
{
	uint8_t buf[8];
	PutU64(buf, upto);
	char name[kKeyringFileNameMax];
	CountFileName(s->vault_id, s->key_version, name);
	Status st = WriteFileDurably(KeyringDir(), name, buf, sizeof(buf));
	if (!st.ok())
		pg::ThrowStatus(st, "could not record the key's use count", nullptr);
	s->reserved = upto;
}

/* The slot of a key version, loading its reservation on first use (lock held exclusively). */
Slot *
SlotFor(uint64_t vault_id, uint32_t version)
{
	int start = static_cast<int>((vault_id * 31 + version) % kSlots);
	for (int i = 0; i < kSlots; i++)
	{
		Slot *s = &g_budget->slots[(start + i) % kSlots];
		if (s->vault_id == vault_id && s->key_version == version)
			return s;
		if (s->vault_id == 0)
		{
			s->vault_id = vault_id;
			s->key_version = version;
			char name[kKeyringFileNameMax];
			CountFileName(vault_id, version, name);
			uint8_t buf[8];
			size_t len = 0;
			uint64 from = 0;
			if (ReadSmallFile(KeyringDir(), name, buf, sizeof(buf), &len).ok() && len == 8)
				from = GetU64(buf);
			pg_atomic_write_u64(&s->count, from);
			s->reserved = from;
			s->loaded = true;
			return s;
		}
	}
	return nullptr; /* table full: the count is kept only for the first kSlots versions */
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
	/* Fast path: a known slot with room in its reservation. */
	int start = static_cast<int>((vault_id * 31 + key_version) % kSlots);
	Slot *s = &g_budget->slots[start];
	uint64 n;
	if (s->vault_id == vault_id && s->key_version == key_version && s->loaded)
	{
		n = pg_atomic_fetch_add_u64(&s->count, 1) + 1;
		if (n < s->reserved && n < kWarnAt)
			return;
	}
	else
	{
		LWLockAcquire(g_budget->lock, LW_EXCLUSIVE);
		s = SlotFor(vault_id, key_version);
		LWLockRelease(g_budget->lock);
		if (s == nullptr)
			return;
		n = pg_atomic_fetch_add_u64(&s->count, 1) + 1;
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
	if (n >= s->reserved)
	{
		LWLockAcquire(g_budget->lock, LW_EXCLUSIVE);
		if (n >= s->reserved)
			Reserve(s, n + kChunk);
		LWLockRelease(g_budget->lock);
	}
}

/* The seals counted so far for a key version (an upper bound after a restart). */
uint64_t
SealCount(uint64_t vault_id, uint32_t key_version)
{
	if (g_budget == nullptr)
		return 0;
	LWLockAcquire(g_budget->lock, LW_EXCLUSIVE);
	Slot *s = SlotFor(vault_id, key_version);
	uint64 n = s ? pg_atomic_read_u64(&s->count) : 0;
	LWLockRelease(g_budget->lock);
	return n;
}

} // namespace vector_vault::keys
