/*
 * fuzz_keyring_entry.cpp — libFuzzer target for keyring entries and keyring file names
 * (core/keyring_format.h): what the server reads from vector_vault.keyring_dir, a directory an
 * attacker with file access can write into.
 *
 * Each input is used three ways.
 *  1. As an entry: PeekKeyringEntry and OpenKeyringEntry (fixed master key) never crash, agree
 *     with an independent reading of the layout, and OpenKeyringEntry only succeeds on an entry
 *     that peeks to exactly the expected kind, vault and version.
 *  2. As seal parameters (kind, vault, version, time, key): the sealed entry peeks back to the
 *     same fields and opens to the same key; flipping any one of its 88 bytes, expecting another
 *     vault, version or kind, or using another master key fails.
 *  3. As a NUL-terminated file name: ParseDataKeyFileName / ParseShredIntentFileName accept only
 *     names that DataKeyFileName / ShredIntentFileName could have produced for the parsed values
 *     (the data-key parser also tolerates leading zeros in the version), and formatting parsed
 *     values reads back to the same values.
 */
#include "core/aead.h"
#include "core/envelope.h"
#include "core/keyring_format.h"
#include "fuzz_util.h"

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

using namespace vector_vault;
using namespace vector_vault::fuzz;

namespace
{

const uint8_t kMaster[kKeyBytes] = {
	0x76, 0x76, 0x2d, 0x66, 0x75, 0x7a, 0x7a, 0x2d, 0x6b, 0x65, 0x79, 0x72, 0x69, 0x6e, 0x67, 0x21,
	0xf0, 0xe1, 0xd2, 0xc3, 0xb4, 0xa5, 0x96, 0x87, 0x78, 0x69, 0x5a, 0x4b, 0x3c, 0x2d, 0x1e, 0x0f};

/* Property 1: untrusted bytes as a keyring entry. */
void
FuzzPeekAndOpen(const uint8_t *data, size_t size)
{
	std::vector<uint8_t> in(data, data + size);
	KeyringEntryInfo info;
	Status s = PeekKeyringEntry(in.data(), in.size(), &info);
	bool expect_ok = size == kKeyringEntryBytes && memcmp(data, "VVKR", 4) == 0 && data[4] == 1 &&
					 (data[5] == 1 || data[5] == 2) && data[6] == 0 && data[7] == 0;
	Check(s.ok() == expect_ok);
	uint8_t key[kKeyBytes];
	memset(key, 0xA5, sizeof(key));
	if (!s.ok())
	{
		Check(s.code() == Code::kCorrupt && s.message()[0] != '\0');
		KeyringEntryInfo any;
		Check(!OpenKeyringEntry(kMaster, in.data(), in.size(), any, key).ok());
		return;
	}
	Check(static_cast<uint8_t>(info.kind) == data[5] && info.vault_id == GetU64(data + 8) &&
		  info.key_version == GetU32(data + 16) && info.created_at == GetU64(data + 20));

	/* Opening as what it claims to be: fails (kCorrupt) unless the tag is genuine. */
	Status o = OpenKeyringEntry(kMaster, in.data(), in.size(), info, key);
	Check(o.ok() || o.code() == Code::kCorrupt);

	/* Opening as anything else: always refused, whatever the tag. */
	KeyringEntryInfo other = info;
	other.vault_id ^= 1;
	Check(!OpenKeyringEntry(kMaster, in.data(), in.size(), other, key).ok());
	other = info;
	other.key_version += 1;
	Check(!OpenKeyringEntry(kMaster, in.data(), in.size(), other, key).ok());
}

/* Property 2: seal an entry from the input's fields and check it resists tampering. */
void
FuzzSealOpen(const uint8_t *data, size_t size)
{
	uint8_t buf[1 + 8 + 4 + 8 + kKeyBytes] = {0};
	memcpy(buf, data, size < sizeof(buf) ? size : sizeof(buf));
	KeyringEntryInfo info;
	info.kind = (buf[0] & 1) ? KeyringEntryKind::kMasterCheck : KeyringEntryKind::kDataKey;
	info.vault_id = GetU64(buf + 1);
	info.key_version = GetU32(buf + 9);
	info.created_at = GetU64(buf + 13);
	const uint8_t *key = buf + 21;

	uint8_t entry[kKeyringEntryBytes];
	Check(SealKeyringEntry(kMaster, info, key, entry).ok());
	KeyringEntryInfo peeked;
	Check(PeekKeyringEntry(entry, sizeof(entry), &peeked).ok());
	Check(peeked.kind == info.kind && peeked.vault_id == info.vault_id &&
		  peeked.key_version == info.key_version && peeked.created_at == info.created_at);
	uint8_t out[kKeyBytes];
	Check(OpenKeyringEntry(kMaster, entry, sizeof(entry), info, out).ok());
	Check(memcmp(out, key, kKeyBytes) == 0);

	uint8_t mask = (size > 0 && data[size - 1] != 0) ? data[size - 1] : 0x40;
	for (size_t i = 0; i < sizeof(entry); i++)
	{
		entry[i] ^= mask;
		Check(!OpenKeyringEntry(kMaster, entry, sizeof(entry), info, out).ok());
		entry[i] ^= mask;
	}
	Check(!OpenKeyringEntry(kMaster, entry, sizeof(entry) - 1, info, out).ok());

	KeyringEntryInfo wrong = info;
	wrong.vault_id += 1;
	Check(!OpenKeyringEntry(kMaster, entry, sizeof(entry), wrong, out).ok());
	wrong = info;
	wrong.key_version ^= 0x80000000u;
	Check(!OpenKeyringEntry(kMaster, entry, sizeof(entry), wrong, out).ok());
	wrong = info;
	wrong.kind = info.kind == KeyringEntryKind::kDataKey ? KeyringEntryKind::kMasterCheck
														 : KeyringEntryKind::kDataKey;
	Check(!OpenKeyringEntry(kMaster, entry, sizeof(entry), wrong, out).ok());

	uint8_t other[kKeyBytes];
	memcpy(other, kMaster, kKeyBytes);
	other[buf[1] % kKeyBytes] ^= 0x01;
	Status o = OpenKeyringEntry(other, entry, sizeof(entry), info, out);
	Check(!o.ok() && o.code() == Code::kCorrupt);
}

/* Removes leading zeros from the version digits of a data-key file name, for comparison. */
std::string
WithoutVersionLeadingZeros(const std::string &name)
{
	const size_t digits = 6 + 16 + 2;
	size_t end = name.size() - 4;
	size_t first = digits;
	while (first + 1 < end && name[first] == '0')
		first++;
	return name.substr(0, digits) + name.substr(first);
}

/* Property 3: untrusted bytes as a keyring file name. */
void
FuzzFileNames(const uint8_t *data, size_t size)
{
	std::string name(reinterpret_cast<const char *>(data), size);
	const char *cname = name.c_str();
	std::string visible(cname); /* what the parsers see: up to the first NUL */
	char formatted[kKeyringFileNameMax];

	uint64_t vault_id = 0;
	uint32_t key_version = 0;
	if (ParseDataKeyFileName(cname, &vault_id, &key_version))
	{
		Check(key_version >= 1);
		DataKeyFileName(vault_id, key_version, formatted);
		Check(WithoutVersionLeadingZeros(visible) == formatted);
		uint64_t v2 = 0;
		uint32_t k2 = 0;
		Check(ParseDataKeyFileName(formatted, &v2, &k2) && v2 == vault_id && k2 == key_version);
		Check(!ParseShredIntentFileName(cname, &v2));
	}

	if (ParseShredIntentFileName(cname, &vault_id))
	{
		ShredIntentFileName(vault_id, formatted);
		Check(visible == formatted);
	}

	/* Names we write ourselves always parse back. */
	if (size >= 12)
	{
		uint64_t id = GetU64(data);
		uint32_t ver = GetU32(data + 8);
		DataKeyFileName(id, ver, formatted);
		uint64_t v2 = 0;
		uint32_t k2 = 0;
		bool ok = ParseDataKeyFileName(formatted, &v2, &k2);
		Check(ok == (ver != 0));
		Check(!ok || (v2 == id && k2 == ver));
		ShredIntentFileName(id, formatted);
		Check(ParseShredIntentFileName(formatted, &v2) && v2 == id);
		Check(strcmp(kMasterCheckFileName, formatted) != 0);
	}
}

} // namespace

/* Runs the three properties on every input. */
extern "C" int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FuzzPeekAndOpen(data, size);
	FuzzSealOpen(data, size);
	FuzzFileNames(data, size);
	return 0;
}
