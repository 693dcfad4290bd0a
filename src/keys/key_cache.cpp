/*
 * key_cache.cpp — unwrapped vault data keys, per backend, in locked memory.
 *
 * Unwrapping a key means reading a keyring file and an AES-GCM open; a busy session would do it
 * for every value. So each backend keeps up to kSlots unwrapped keys in an open-addressed table
 * inside pages that are mlocked and excluded from core dumps. The table is emptied (and zeroed)
 * whenever the shared access epoch moves, which is how a vault drop or key rotation in another
 * session reaches this one on its next statement, and at backend exit.
 */
#include "keys/keys.h"

#include "core/aead.h"
#include "core/secure.h"

#include <cstring>

#include "pg/shmem.h"

extern "C"
{
#include "storage/ipc.h"
}

namespace vector_vault::keys
{

namespace
{

struct Slot
{
	uint64_t vault_id;
	uint32_t key_version; /* 0 = empty */
	uint32_t pad;
	uint8_t key[kKeyBytes];
};

constexpr int kSlots = 256;
constexpr size_t kCacheBytes = ((sizeof(Slot) * kSlots + 4095) / 4096) * 4096;

Slot *g_slots = nullptr;
uint64 g_epoch = 0;

/* Zeroes the cache (and the cipher context's remembered key) when the backend exits. */
void
ZeroAtExit(int, Datum) noexcept
{
	if (g_slots != nullptr)
		SecureZero(g_slots, kCacheBytes);
	AeadForgetKeys();
}

/* Allocates the locked cache on first use. */
void
EnsureCache()
{
	if (g_slots != nullptr)
		return;
	bool locked = false;
	void *p = AllocateLockedPages(kCacheBytes, &locked);
	if (p == nullptr)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY),
						errmsg("could not allocate locked memory for vault keys")));
	g_slots = static_cast<Slot *>(p);
	memset(g_slots, 0, kCacheBytes);
	g_epoch = pg::AccessEpoch();
	before_shmem_exit(ZeroAtExit, 0);
}

/* Slot index to start probing at. */
int
HashOf(uint64_t vault_id, uint32_t key_version)
{
	uint64_t h = (vault_id ^ (static_cast<uint64_t>(key_version) * 0x9E3779B97F4A7C15ull)) *
				 0xBF58476D1CE4E5B9ull;
	return static_cast<int>((h >> 32) % kSlots);
}

} // namespace

/* Empties the cache, and the key the decrypting cipher context keeps for re-use. */
void
InvalidateDataKeyCache()
{
	if (g_slots != nullptr)
		SecureZero(g_slots, kCacheBytes);
	AeadForgetKeys();
}

namespace detail
{

/* Finds a cached key, first dropping the cache if the epoch moved. */
const uint8_t *
CacheLookup(uint64_t vault_id, uint32_t key_version)
{
	EnsureCache();
	uint64 epoch = pg::AccessEpoch();
	if (epoch != g_epoch)
	{
		InvalidateDataKeyCache();
		g_epoch = epoch;
		return nullptr;
	}
	int start = HashOf(vault_id, key_version);
	for (int i = 0; i < kSlots; i++)
	{
		Slot *s = &g_slots[(start + i) % kSlots];
		if (s->key_version == 0)
			return nullptr;
		if (s->vault_id == vault_id && s->key_version == key_version)
			return s->key;
	}
	return nullptr;
}

/* Stores a key, emptying the table first when it is full. */
const uint8_t *
CacheInsert(uint64_t vault_id, uint32_t key_version, const uint8_t *key)
{
	EnsureCache();
	for (int attempt = 0; attempt < 2; attempt++)
	{
		int start = HashOf(vault_id, key_version);
		for (int i = 0; i < kSlots; i++)
		{
			Slot *s = &g_slots[(start + i) % kSlots];
			if (s->key_version == 0 || (s->vault_id == vault_id && s->key_version == key_version))
			{
				s->vault_id = vault_id;
				s->key_version = key_version;
				memcpy(s->key, key, kKeyBytes);
				return s->key;
			}
		}
		InvalidateDataKeyCache();
	}
	elog(ERROR, "vault key cache insert failed");
	return nullptr;
}

} // namespace detail

} // namespace vector_vault::keys
