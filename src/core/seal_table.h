/*
 * seal_table.h — which shared slot counts the seals of a (vault, key version).
 *
 * The nonce budget (keys/nonce_budget.cpp) counts AES-GCM seals per key version in a fixed table
 * of shared memory. A cluster may create any number of key versions over its life, so the table
 * is a cache: the durable truth is each version's count file, and a slot can be given to another
 * version at any time once its count is on disk. The table is set-associative: a key lives in one
 * of kSealWays consecutive slots starting at its home; a key not in the table takes a free slot
 * of its window, else the least recently used one (ties: the lowest index). Lookups never scan
 * more than kSealWays slots and need no tombstones. This file holds only that placement logic;
 * the counters, locking and files are the bridge's.
 */
#pragma once
#include "core/pure.h"

#include <cstddef>
#include <cstdint>

namespace vector_vault
{

constexpr size_t kSealWays = 8;

/* The identity and recency of one slot (a plain struct: it lives in shared memory). */
struct SealSlotKey
{
	uint64_t vault_id;    /* with key_version 0: free */
	uint32_t key_version; /* versions start at 1; 0 = free */
	uint32_t pad;
	uint64_t last_use; /* larger is more recent */
};

/* True when the slot holds no key. */
inline bool
SealSlotFree(const SealSlotKey &k)
{
	return k.key_version == 0;
}

/* First slot of the window of (vault_id, key_version) in a table of nslots (>= kSealWays). */
size_t SealTableHome(uint64_t vault_id, uint32_t key_version, size_t nslots);

/* Index of the slot holding (vault_id, key_version), or -1. */
long SealTableFind(const SealSlotKey *slots, size_t nslots, uint64_t vault_id,
				   uint32_t key_version);

/* The slot a key not in the table should take: a free one of its window, else the least
 * recently used one, which *evict (true) says holds another key that must be saved first. */
size_t SealTableVictim(const SealSlotKey *slots, size_t nslots, uint64_t vault_id,
					   uint32_t key_version, bool *evict);

} // namespace vector_vault
