/*
 * keyring_format.h — one keyring entry: a key wrapped under the master key (DESIGN.md §4).
 *
 *   offset  size  field
 *        0     4  magic "VVKR"
 *        4     1  format version (1)
 *        5     1  kind: 1 vault data key, 2 master-key check
 *        6     2  reserved (0)
 *        8     8  vault id (little endian; 0 for the master-key check)
 *       16     4  key version (little endian)
 *       20     8  creation time, Unix seconds (little endian; informational)
 *       28    12  nonce
 *       40    32  the wrapped 256-bit key (AES-256-GCM ciphertext)
 *       72    16  GCM tag
 *
 * Bytes 0..27 are the associated data: an entry copied to another vault's or version's file name
 * fails to open. The master-key check entry wraps a random key that nobody uses; it exists so a
 * wrong master key is told apart from a corrupt data-key entry.
 *
 * Files in the keyring directory:
 *   master.check                  the master-key check entry
 *   vault-<16 hex>-v<version>.key one data key version of one vault
 *   shred-<16 hex>.intent         a pending crypto-shred (vault id + transaction id), see keys/
 */
#pragma once
#include "core/pure.h"
#include "core/aead.h"
#include "core/status.h"

#include <cstddef>
#include <cstdint>

namespace vector_vault
{

constexpr size_t kKeyringEntryBytes = 88;
constexpr size_t kKeyringAadBytes = 28;
constexpr size_t kKeyringFileNameMax = 64;

/* What a keyring entry wraps. */
enum class KeyringEntryKind : uint8_t
{
	kDataKey = 1,
	kMasterCheck = 2
};

/* The plaintext, authenticated fields of an entry. */
struct KeyringEntryInfo
{
	KeyringEntryKind kind = KeyringEntryKind::kDataKey;
	uint64_t vault_id = 0;
	uint32_t key_version = 0;
	uint64_t created_at = 0;
};

/* Wraps key under master into a kKeyringEntryBytes entry with a fresh nonce. */
Status SealKeyringEntry(const uint8_t master[kKeyBytes], const KeyringEntryInfo &info,
						const uint8_t key[kKeyBytes], uint8_t out[kKeyringEntryBytes]);

/* Validates the plaintext fields of an entry without unwrapping it. */
Status PeekKeyringEntry(const uint8_t *data, size_t size, KeyringEntryInfo *info);

/*
 * Validates an entry, checks it is the expected kind/vault/version, and unwraps its key.
 * Code::kCorrupt means the tag failed: a wrong master key or a modified entry.
 */
Status OpenKeyringEntry(const uint8_t master[kKeyBytes], const uint8_t *data, size_t size,
						const KeyringEntryInfo &expected, uint8_t key_out[kKeyBytes]);

/* File name of a vault's data-key entry: vault-<16 hex>-v<version>.key. */
void DataKeyFileName(uint64_t vault_id, uint32_t key_version, char out[kKeyringFileNameMax]);

/* File name of a pending shred for a vault: shred-<16 hex>.intent. */
void ShredIntentFileName(uint64_t vault_id, char out[kKeyringFileNameMax]);

/* Parses a data-key file name; false when name is not one. */
bool ParseDataKeyFileName(const char *name, uint64_t *vault_id, uint32_t *key_version);

/* Parses a shred-intent file name; false when name is not one. */
bool ParseShredIntentFileName(const char *name, uint64_t *vault_id);

constexpr const char *kMasterCheckFileName = "master.check";

/* Name of the marker that commits a master-key rotation: while it exists, "<entry>.next" files
 * hold entries wrapped under the new key that have not been renamed into place yet. */
constexpr const char *kRotationMarkerFileName = "rotation.commit";

/* Room for an entry's name plus ".next". */
constexpr size_t kNextFileNameMax = kKeyringFileNameMax + 8;

/* Formats "<entry>.next", the name a master-key rotation writes an entry's re-wrapped copy to. */
void NextFileName(const char *entry, char out[kNextFileNameMax]);

} // namespace vector_vault
