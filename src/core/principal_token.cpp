/* principal_token.cpp — API-key principal tokens for Citus workers (see principal_token.h). */
#include "core/principal_token.h"
#include "core/hex.h"
#include "core/secure.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace vector_vault
{

namespace
{

constexpr char kLabel[] = "vector_vault citus principal token v1";
constexpr char kPrefix[] = "vvpt1";

/* HMAC-SHA256 of msg under key. */
Status
Hmac(const uint8_t *key, size_t key_len, const void *msg, size_t len, uint8_t out[32])
{
	unsigned int n = 0;
	if (HMAC(EVP_sha256(), key, static_cast<int>(key_len), static_cast<const unsigned char *>(msg),
			 len, out, &n) == nullptr ||
		n != 32)
		return Status::Error(Code::kInternal, "HMAC-SHA256 failed");
	return Status::Ok();
}

/* Decodes exactly 2*n hex digits into out. */
bool
DecodeHex(const char *s, size_t n, uint8_t *out)
{
	for (size_t i = 0; i < n; i++)
	{
		int hi = HexDigit(s[2 * i]);
		int lo = HexDigit(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[i] = static_cast<uint8_t>(hi << 4 | lo);
	}
	return true;
}

/* The MAC over the signed fields. */
Status
TokenMac(const uint8_t key[kPrincipalTokenKeyBytes], const char *key_id, const char *context,
		 uint64_t expiry, const char *dmac_hex, uint8_t out[32])
{
	size_t need = strlen(kPrefix) + strlen(key_id) + strlen(context) + strlen(dmac_hex) + 32;
	char *msg = new char[need];
	int n =
		snprintf(msg, need, "%s|%s|%s|%" PRIu64 "|%s", kPrefix, key_id, context, expiry, dmac_hex);
	Status s = Hmac(key, kPrincipalTokenKeyBytes, msg, static_cast<size_t>(n), out);
	delete[] msg;
	return s;
}

} // namespace

/* Token key = HMAC(master, label). */
Status
DerivePrincipalTokenKey(const uint8_t master[32], uint8_t out[kPrincipalTokenKeyBytes])
{
	return Hmac(master, 32, kLabel, sizeof(kLabel) - 1, out);
}

/* Writes the text form. */
Status
MakePrincipalToken(const uint8_t key[kPrincipalTokenKeyBytes], const char *key_id,
				   const char *context, uint64_t expiry, const uint8_t digest[32],
				   char out[kPrincipalTokenMax])
{
	if (strlen(key_id) != 16)
		return Status::Error(Code::kInvalidInput, "key id must be 16 hex digits");
	uint8_t dmac[32];
	Status s = Hmac(key, kPrincipalTokenKeyBytes, digest, 32, dmac);
	if (!s.ok())
		return s;
	char dmac_hex[65];
	EncodeHexLower(dmac, 32, dmac_hex);
	dmac_hex[64] = '\0';
	uint8_t mac[32];
	s = TokenMac(key, key_id, context, expiry, dmac_hex, mac);
	if (!s.ok())
		return s;
	char mac_hex[65];
	EncodeHexLower(mac, 32, mac_hex);
	mac_hex[64] = '\0';
	snprintf(out, kPrincipalTokenMax, "%s.%s.%" PRIu64 ".%s.%s", kPrefix, key_id, expiry, dmac_hex,
			 mac_hex);
	return Status::Ok();
}

/* Parses and verifies. */
Status
OpenPrincipalToken(const uint8_t key[kPrincipalTokenKeyBytes], const char *token,
				   const char *context, PrincipalTokenClaims *out)
{
	Status bad = Status::Error(Code::kCorrupt, "invalid principal token");
	size_t plen = strlen(kPrefix);
	if (strlen(token) >= kPrincipalTokenMax || strncmp(token, kPrefix, plen) != 0 ||
		token[plen] != '.')
		return bad;
	const char *p = token + plen + 1;
	if (strlen(p) < 17 || p[16] != '.')
		return bad;
	for (int i = 0; i < 16; i++)
		if (HexDigit(p[i]) < 0)
			return bad;
	memcpy(out->key_id, p, 16);
	out->key_id[16] = '\0';
	p += 17;
	uint64_t expiry = 0;
	int digits = 0;
	while (*p >= '0' && *p <= '9' && digits < 20)
	{
		expiry = expiry * 10 + static_cast<uint64_t>(*p - '0');
		p++;
		digits++;
	}
	if (digits == 0 || *p != '.' || strlen(p + 1) != 64 + 1 + 64 || p[65] != '.')
		return bad;
	char dmac_hex[65];
	memcpy(dmac_hex, p + 1, 64);
	dmac_hex[64] = '\0';
	uint8_t mac[32];
	if (!DecodeHex(dmac_hex, 32, out->digest_mac) || !DecodeHex(p + 66, 32, mac))
		return bad;
	uint8_t expect[32];
	Status s = TokenMac(key, out->key_id, context, expiry, dmac_hex, expect);
	if (!s.ok())
		return s;
	if (!ConstantTimeEqual(expect, mac, 32))
		return bad;
	out->expiry = expiry;
	return Status::Ok();
}

/* Compares HMAC(key, digest) with the token's digest MAC in constant time. */
bool
PrincipalTokenDigestMatches(const uint8_t key[kPrincipalTokenKeyBytes], const uint8_t digest[32],
							const uint8_t digest_mac[32])
{
	uint8_t m[32];
	if (!Hmac(key, kPrincipalTokenKeyBytes, digest, 32, m).ok())
		return false;
	return ConstantTimeEqual(m, digest_mac, 32);
}

} // namespace vector_vault
