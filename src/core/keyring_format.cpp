/* keyring_format.cpp — sealing, validating and naming keyring entries (see keyring_format.h). */
#include "core/keyring_format.h"

#include "core/envelope.h"
#include "core/hex.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace vector_vault
{

namespace
{

const uint8_t kMagic[4] = {'V', 'V', 'K', 'R'};

/* Writes the authenticated header of an entry. */
void
EncodeAad(const KeyringEntryInfo &info, uint8_t *out)
{
	memcpy(out, kMagic, 4);
	out[4] = 1;
	out[5] = static_cast<uint8_t>(info.kind);
	out[6] = 0;
	out[7] = 0;
	PutU64(out + 8, info.vault_id);
	PutU32(out + 16, info.key_version);
	PutU64(out + 20, info.created_at);
}

/* Parses exactly 16 lower-case hex digits. */
bool
ParseHex16(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	for (int i = 0; i < 16; i++)
	{
		int d = HexDigit(s[i]);
		if (d < 0)
			return false;
		v = (v << 4) | static_cast<uint64_t>(d);
	}
	*out = v;
	return true;
}

} // namespace

/* Wraps key under master with a fresh nonce. */
Status
SealKeyringEntry(const uint8_t master[kKeyBytes], const KeyringEntryInfo &info,
				 const uint8_t key[kKeyBytes], uint8_t out[kKeyringEntryBytes])
{
	EncodeAad(info, out);
	uint8_t *nonce = out + kKeyringAadBytes;
	VV_RETURN_IF_ERROR(RandomBytes(nonce, kNonceBytes));
	return AeadSeal(master, nonce, out, kKeyringAadBytes, key, kKeyBytes, nonce + kNonceBytes,
					nonce + kNonceBytes + kKeyBytes);
}

/* Validates the plaintext fields of an entry. */
Status
PeekKeyringEntry(const uint8_t *data, size_t size, KeyringEntryInfo *info)
{
	if (size != kKeyringEntryBytes)
		return Status::Error(Code::kCorrupt, "keyring entry has %zu bytes, expected %zu", size,
							 kKeyringEntryBytes);
	if (memcmp(data, kMagic, 4) != 0)
		return Status::Error(Code::kCorrupt, "keyring entry has a bad magic number");
	if (data[4] != 1)
		return Status::Error(Code::kCorrupt, "keyring entry has unsupported format %u", data[4]);
	if (data[5] != static_cast<uint8_t>(KeyringEntryKind::kDataKey) &&
		data[5] != static_cast<uint8_t>(KeyringEntryKind::kMasterCheck))
		return Status::Error(Code::kCorrupt, "keyring entry has unknown kind %u", data[5]);
	if (data[6] != 0 || data[7] != 0)
		return Status::Error(Code::kCorrupt, "keyring entry has non-zero reserved bytes");
	info->kind = static_cast<KeyringEntryKind>(data[5]);
	info->vault_id = GetU64(data + 8);
	info->key_version = GetU32(data + 16);
	info->created_at = GetU64(data + 20);
	return Status::Ok();
}

/* Validates, matches and unwraps an entry. */
Status
OpenKeyringEntry(const uint8_t master[kKeyBytes], const uint8_t *data, size_t size,
				 const KeyringEntryInfo &expected, uint8_t key_out[kKeyBytes])
{
	KeyringEntryInfo info;
	VV_RETURN_IF_ERROR(PeekKeyringEntry(data, size, &info));
	if (info.kind != expected.kind || info.vault_id != expected.vault_id ||
		info.key_version != expected.key_version)
		return Status::Error(Code::kCorrupt,
							 "keyring entry belongs to another key (vault %016" PRIx64
							 " version %u)",
							 info.vault_id, info.key_version);
	const uint8_t *nonce = data + kKeyringAadBytes;
	Status s = AeadOpen(master, nonce, data, kKeyringAadBytes, nonce + kNonceBytes, kKeyBytes,
						nonce + kNonceBytes + kKeyBytes, key_out);
	if (!s.ok() && s.code() == Code::kCorrupt)
		return Status::Error(Code::kCorrupt,
							 "keyring entry failed authentication: wrong master key or modified "
							 "entry");
	return s;
}

/* Formats vault-<16 hex>-v<version>.key. */
void
DataKeyFileName(uint64_t vault_id, uint32_t key_version, char out[kKeyringFileNameMax])
{
	snprintf(out, kKeyringFileNameMax, "vault-%016" PRIx64 "-v%u.key", vault_id, key_version);
}

/* Formats <entry>.next. */
void
NextFileName(const char *entry, char out[kNextFileNameMax])
{
	snprintf(out, kNextFileNameMax, "%s.next", entry);
}

/* Formats shred-<16 hex>.intent. */
void
ShredIntentFileName(uint64_t vault_id, char out[kKeyringFileNameMax])
{
	snprintf(out, kKeyringFileNameMax, "shred-%016" PRIx64 ".intent", vault_id);
}

/* Parses vault-<16 hex>-v<version>.key. */
bool
ParseDataKeyFileName(const char *name, uint64_t *vault_id, uint32_t *key_version)
{
	size_t len = strlen(name);
	if (len < 6 + 16 + 2 + 1 + 4 || strncmp(name, "vault-", 6) != 0 ||
		strncmp(name + 22, "-v", 2) != 0 || strcmp(name + len - 4, ".key") != 0)
		return false;
	if (!ParseHex16(name + 6, vault_id))
		return false;
	uint64_t v = 0;
	const char *p = name + 24;
	const char *end = name + len - 4;
	if (p == end || end - p > 10)
		return false;
	for (; p < end; p++)
	{
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + static_cast<uint64_t>(*p - '0');
	}
	if (v == 0 || v > UINT32_MAX)
		return false;
	*key_version = static_cast<uint32_t>(v);
	return true;
}

/* Parses shred-<16 hex>.intent. */
bool
ParseShredIntentFileName(const char *name, uint64_t *vault_id)
{
	return strlen(name) == 6 + 16 + 7 && strncmp(name, "shred-", 6) == 0 &&
		   strcmp(name + 22, ".intent") == 0 && ParseHex16(name + 6, vault_id);
}

} // namespace vector_vault
