/*
 * api_key.h — API keys and key-management passwords, the pure part.
 *
 * An API key reads vv_<id>_<secret>_<checksum>:
 *   id        16 lower-case hex digits: a random 64-bit public identifier (what logs show)
 *   secret    40 lower-case hex digits: 160 random bits, shown once, never stored
 *   checksum  8 lower-case hex digits: CRC-32 of "vv_<id>_<secret>", so a mistyped or truncated
 *             key is refused offline, before any lookup
 * The server stores only SHA-256(secret) and compares digests in constant time.
 *
 * Key-management passwords are stored as scrypt(password, 16-byte random salt) with N = 2^15,
 * r = 8, p = 1 (about 32 MiB and tens of milliseconds per check: slow for guessing, fine for a
 * management call), parameters kept next to the hash so they can be raised later.
 */
#pragma once
#include "core/pure.h"
#include "core/status.h"

#include <cstddef>
#include <cstdint>

namespace vector_vault
{

constexpr size_t kApiKeyIdHex = 16;
constexpr size_t kApiKeySecretBytes = 20;
constexpr size_t kApiKeySecretHex = 2 * kApiKeySecretBytes;
constexpr size_t kApiKeyChecksumHex = 8;
/* "vv_" + id + "_" + secret + "_" + checksum */
constexpr size_t kApiKeyLength = 3 + kApiKeyIdHex + 1 + kApiKeySecretHex + 1 + kApiKeyChecksumHex;
constexpr size_t kSha256Bytes = 32;

/* A parsed API key: public id and the secret's bytes. */
struct ParsedApiKey
{
	uint64_t id;
	uint8_t secret[kApiKeySecretBytes];
};

/* Creates a new key: random id and secret; writes the text form (kApiKeyLength + 1 bytes). */
Status NewApiKey(ParsedApiKey *key, char out[kApiKeyLength + 1]);

/* Formats a key with a given id and secret (for rotation, which keeps the id). */
void FormatApiKey(const ParsedApiKey &key, char out[kApiKeyLength + 1]);

/* Parses and checks the format and checksum; never reveals the secret in its messages. */
Status ParseApiKey(const char *text, size_t len, ParsedApiKey *out);

/* SHA-256 of data. */
Status Sha256(const uint8_t *data, size_t len, uint8_t out[kSha256Bytes]);

/* CRC-32 (IEEE) of data. */
uint32_t Crc32(const uint8_t *data, size_t len);

/* Parameters and result of a password hash. */
struct PasswordHash
{
	uint8_t salt[16];
	uint32_t log2_n;
	uint32_t r;
	uint32_t p;
	uint8_t hash[32];
};

/* Hashes a password with a fresh salt and the default parameters. */
Status HashPassword(const char *password, size_t len, PasswordHash *out);

/* Recomputes with the stored salt and parameters and compares in constant time. */
Status VerifyPassword(const char *password, size_t len, const PasswordHash &stored, bool *match);

} // namespace vector_vault
