/* api_key.cpp — API key format, digests and scrypt password hashes (see api_key.h). */
#include "core/api_key.h"

#include "core/aead.h"
#include "core/hex.h"
#include "core/secure.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <openssl/evp.h>
#include <openssl/kdf.h>

namespace vector_vault
{

namespace
{

constexpr uint32_t kDefaultLog2N = 15;
constexpr uint32_t kDefaultR = 8;
constexpr uint32_t kDefaultP = 1;

/* Runs scrypt. */
Status
Scrypt(const char *password, size_t len, const uint8_t *salt, size_t salt_len, uint32_t log2_n,
	   uint32_t r, uint32_t p, uint8_t out[32])
{
	if (log2_n < 10 || log2_n > 22 || r < 1 || r > 32 || p < 1 || p > 16)
		return Status::Error(Code::kInvalidInput, "unsupported password hash parameters");
	uint64_t n = 1ull << log2_n;
	uint64_t maxmem = 128ull * r * (n + p + 2) + (1u << 20);
	if (EVP_PBE_scrypt(password, len, salt, salt_len, n, r, p, maxmem, out, 32) != 1)
		return Status::Error(Code::kInternal, "scrypt failed");
	return Status::Ok();
}

} // namespace

/* CRC-32 (IEEE 802.3, reflected, as zlib). */
uint32_t
Crc32(const uint8_t *data, size_t len)
{
	uint32_t crc = 0xFFFFFFFFu;
	for (size_t i = 0; i < len; i++)
	{
		crc ^= data[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
	}
	return ~crc;
}

/* SHA-256. */
Status
Sha256(const uint8_t *data, size_t len, uint8_t out[kSha256Bytes])
{
	unsigned int n = 0;
	if (EVP_Digest(data, len, out, &n, EVP_sha256(), nullptr) != 1 || n != kSha256Bytes)
		return Status::Error(Code::kInternal, "SHA-256 failed");
	return Status::Ok();
}

/* Formats vv_<id>_<secret>_<checksum>. */
void
FormatApiKey(const ParsedApiKey &key, char out[kApiKeyLength + 1])
{
	char *p = out;
	memcpy(p, "vv_", 3);
	p += 3;
	snprintf(p, kApiKeyIdHex + 1, "%016" PRIx64, key.id);
	p += kApiKeyIdHex;
	*p++ = '_';
	EncodeHexLower(key.secret, kApiKeySecretBytes, p);
	p += kApiKeySecretHex;
	uint32_t crc = Crc32(reinterpret_cast<const uint8_t *>(out), static_cast<size_t>(p - out));
	*p++ = '_';
	snprintf(p, kApiKeyChecksumHex + 1, "%08x", crc);
	out[kApiKeyLength] = '\0';
}

/* A fresh random key. */
Status
NewApiKey(ParsedApiKey *key, char out[kApiKeyLength + 1])
{
	uint8_t idb[8];
	do
	{
		VV_RETURN_IF_ERROR(RandomBytes(idb, sizeof(idb)));
		key->id = 0;
		for (uint8_t b : idb)
			key->id = (key->id << 8) | b;
	} while (key->id == 0);
	VV_RETURN_IF_ERROR(RandomBytes(key->secret, kApiKeySecretBytes));
	FormatApiKey(*key, out);
	return Status::Ok();
}

/* Parses and validates a key's text. */
Status
ParseApiKey(const char *text, size_t len, ParsedApiKey *out)
{
	if (len != kApiKeyLength)
		return Status::Error(Code::kInvalidInput,
							 "API key has the wrong length (%zu characters, expected %zu)", len,
							 kApiKeyLength);
	if (memcmp(text, "vv_", 3) != 0 || text[3 + kApiKeyIdHex] != '_' ||
		text[3 + kApiKeyIdHex + 1 + kApiKeySecretHex] != '_')
		return Status::Error(Code::kInvalidInput,
							 "API key is not of the form vv_<id>_<secret>_<checksum>");
	const size_t sep1 = 3 + kApiKeyIdHex, sep2 = sep1 + 1 + kApiKeySecretHex;
	for (size_t i = 3; i < len; i++)
		if (i != sep1 && i != sep2 && HexDigit(text[i]) < 0)
			return Status::Error(Code::kInvalidInput,
								 "API key contains a character that is not a lower-case hex digit");
	uint32_t want = 0;
	for (size_t i = 0; i < kApiKeyChecksumHex; i++)
		want = (want << 4) | static_cast<uint32_t>(HexDigit(text[len - kApiKeyChecksumHex + i]));
	uint32_t got = Crc32(reinterpret_cast<const uint8_t *>(text), len - kApiKeyChecksumHex - 1);
	if (want != got)
		return Status::Error(Code::kInvalidInput,
							 "API key checksum does not match: the key was mistyped or truncated");
	uint64_t id = 0;
	for (size_t i = 0; i < kApiKeyIdHex; i++)
		id = (id << 4) | static_cast<uint64_t>(HexDigit(text[3 + i]));
	const char *s = text + 3 + kApiKeyIdHex + 1;
	for (size_t i = 0; i < kApiKeySecretBytes; i++)
		out->secret[i] = static_cast<uint8_t>(HexDigit(s[2 * i]) << 4 | HexDigit(s[2 * i + 1]));
	out->id = id;
	return Status::Ok();
}

/* Hashes a password with a fresh salt. */
Status
HashPassword(const char *password, size_t len, PasswordHash *out)
{
	VV_RETURN_IF_ERROR(RandomBytes(out->salt, sizeof(out->salt)));
	out->log2_n = kDefaultLog2N;
	out->r = kDefaultR;
	out->p = kDefaultP;
	return Scrypt(password, len, out->salt, sizeof(out->salt), out->log2_n, out->r, out->p,
				  out->hash);
}

/* Verifies a password in constant time. */
Status
VerifyPassword(const char *password, size_t len, const PasswordHash &stored, bool *match)
{
	uint8_t got[32];
	Status s = Scrypt(password, len, stored.salt, sizeof(stored.salt), stored.log2_n, stored.r,
					  stored.p, got);
	*match = s.ok() && ConstantTimeEqual(got, stored.hash, sizeof(got));
	SecureZero(got, sizeof(got));
	return s;
}

} // namespace vector_vault
