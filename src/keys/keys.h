/*
 * keys.h — where every key comes from (DESIGN.md §4).
 *
 *   master key   read at postmaster start (master_key.cpp) from
 *                vector_vault.master_key_file or vector_vault.master_key_command (bounded by
 *                vector_vault.master_key_command_timeout), kept in a locked, non-dumpable page,
 *                never visible to SQL or logs; kept, not read again, across crash restarts.
 *   keyring      vector_vault.keyring_dir, outside PGDATA (so in no WAL and no base backup):
 *                one file per vault data-key version, wrapped under the master key
 *                (keyring.cpp, format in core/keyring_format.h).
 *   data keys    unwrapped on demand into a small per-backend cache in locked memory
 *                (key_cache.cpp); the cache is dropped whenever the shared access epoch moves.
 *   shredding    vault.drop_vault() schedules its keys for deletion; they are deleted right
 *                after commit, with a durable intent file bridging a crash between the two;
 *                entries are found by content and never through links (core/keyring_shred.h).
 */
#pragma once

#include <cstdint>

namespace vector_vault::keys
{

/* Defines the master-key and keyring GUCs. */
void DefineGucs();

/* Loads and checks the master key and keyring; runs in the postmaster while preloading. */
void LoadAtPostmasterStart();

/* Registers the shared-memory page that holds the master key for every backend. */
void RegisterKeySlot();

/* Completes (or discards) a master-key rotation a crash interrupted (postmaster start). */
void FinishInterruptedRotation();

/* Raises ERROR (22V03) unless the master key and keyring are usable. */
void RequireMasterKey();

/* The configured keyring directory; raises ERROR when unusable. */
const char *KeyringDir();

/*
 * The 32-byte data key of a vault version, unwrapped from the keyring on first use. The pointer
 * stays valid until the next DataKey() call. Raises 22V02 when the entry is missing.
 */
const uint8_t *DataKey(uint64_t vault_id, uint32_t key_version);

/* Generates a data key version and writes its keyring entry durably; undone on abort. */
void CreateDataKey(uint64_t vault_id, uint32_t key_version);

/* True when a keyring entry exists for the vault version. */
bool DataKeyExists(uint64_t vault_id, uint32_t key_version);

/* True when the keyring holds at least one key version of the vault (false once shredded). */
bool VaultHasKeys(uint64_t vault_id);

/* The keyring's data-key entries as one directory read saw them, for callers that ask about
 * every element or vault of an index at once (a cache load): DataKeyExists and VaultHasKeys
 * each read the directory, which is quadratic over a thousand vaults. */
struct KeySnapshot;

/* Reads the keyring directory once; palloc'd in the current memory context. */
KeySnapshot *SnapshotKeys();

/* DataKeyExists as of the snapshot (key_version 0: VaultHasKeys as of the snapshot). */
bool SnapshotHasKey(const KeySnapshot *snap, uint64_t vault_id, uint32_t key_version);

/* Frees a snapshot. */
void FreeKeySnapshot(KeySnapshot *snap);

/* Arranges for a key version (every version when 0) to be shredded when this transaction commits.
 */
void ScheduleShred(uint64_t vault_id, uint32_t key_version);

/* Finishes shreds whose transaction committed before a crash; drops aborted intents. */
void ReconcileKeyring();

/* Registers the background worker that reconciles the keyring once recovery has finished, so a
 * drop interrupted by a crash is finished at the next start (from _PG_init, preload only). */
void RegisterStartupReconcile();

/* Registers the transaction callbacks that carry out creations and shreds. */
void RegisterXactCallbacks();

/* Registers the shared table of per-key-version seal counts (from _PG_init). */
void RegisterNonceBudget();

/* Counts one AES-GCM seal under a key version; refuses near the random-nonce limit. */
void NoteSeal(uint64_t vault_id, uint32_t key_version);

/* Seals counted for a key version (an upper bound after a restart). */
uint64_t SealCount(uint64_t vault_id, uint32_t key_version);

/* Frees the shared counting slots of a shredded key version (every version when 0). */
void ForgetSealCounts(uint64_t vault_id, uint32_t key_version);

/* Forgets every cached data key in this backend. */
void InvalidateDataKeyCache();

/* Cache internals shared by keyring.cpp and key_cache.cpp. */
namespace detail
{
/* The cached key for (vault, version) or nullptr; refreshes the epoch first. */
const uint8_t *CacheLookup(uint64_t vault_id, uint32_t key_version);
/* Copies a key into the cache and returns the cached copy. */
const uint8_t *CacheInsert(uint64_t vault_id, uint32_t key_version, const uint8_t *key);
/* The keyring directory as configured, without checks (for abort paths, which may not raise). */
const char *KeyringDirNoError();
/* The master key bytes (caller holds the keyring lock). */
const uint8_t *MasterKeyBytes();
/* Replaces the master key (rotation, keyring lock held exclusively). */
void SetMasterKeyBytes(const uint8_t *key);
/* Records the key a rotation commits to (nullptr clears it), so that a crash restart between its
 * commit marker and the switch serves with it (rotation, keyring lock held exclusively). */
void SetPendingMasterKey(const uint8_t *key);
/* vector_vault.master_key_command_timeout in seconds. */
int KeyCommandTimeout();
/* The configured key file and command. */
void ConfiguredKeySource(const char **file, const char **command);
} // namespace detail

} // namespace vector_vault::keys
