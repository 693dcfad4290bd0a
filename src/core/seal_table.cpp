/* seal_table.cpp — slot placement of the nonce budget (see seal_table.h). */
#include "core/seal_table.h"

namespace vector_vault
{

/* Mixes vault id and version into a window start. */
size_t
SealTableHome(uint64_t vault_id, uint32_t key_version, size_t nslots)
{
	uint64_t h = (vault_id ^ (static_cast<uint64_t>(key_version) * 0x9E3779B97F4A7C15ull)) *
				 0xBF58476D1CE4E5B9ull;
	h ^= h >> 31;
	return static_cast<size_t>(h % nslots);
}

/* Scans the key's window. */
long
SealTableFind(const SealSlotKey *slots, size_t nslots, uint64_t vault_id, uint32_t key_version)
{
	size_t home = SealTableHome(vault_id, key_version, nslots);
	for (size_t i = 0; i < kSealWays && i < nslots; i++)
	{
		size_t at = (home + i) % nslots;
		if (!SealSlotFree(slots[at]) && slots[at].vault_id == vault_id &&
			slots[at].key_version == key_version)
			return static_cast<long>(at);
	}
	return -1;
}

/* A free slot of the window, else its least recently used one. */
size_t
SealTableVictim(const SealSlotKey *slots, size_t nslots, uint64_t vault_id, uint32_t key_version,
				bool *evict)
{
	size_t home = SealTableHome(vault_id, key_version, nslots);
	size_t best = home;
	for (size_t i = 0; i < kSealWays && i < nslots; i++)
	{
		size_t at = (home + i) % nslots;
		if (SealSlotFree(slots[at]))
		{
			*evict = false;
			return at;
		}
		if (slots[at].last_use < slots[best].last_use)
			best = at;
	}
	*evict = true;
	return best;
}

} // namespace vector_vault
