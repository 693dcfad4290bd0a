/*
 * principal_token.h — the API-key principal as a Citus coordinator hands it to its workers.
 *
 * A worker sees only the role Citus connects as. When a session on the coordinator is logged in
 * with an API key, every statement it sends to workers carries a token that names the key and
 * proves, with an HMAC-SHA256 under a key derived from the master key (which only the nodes
 * hold), that the coordinator vouches for it: for which connecting role, until when, and which
 * of the key's secrets the session presented (as an HMAC of its SHA-256 digest, so neither the
 * secret nor the stored digest is on the wire or in a worker's statement log). The worker then
 * acts as that key for the statement's transaction and re-checks the key against its own copy of
 * the catalog as for any login (revoked, expired, rotated), so nothing the token says outlives a
 * revocation.
 *
 * Text form: "vvpt1.<key id, 16 hex>.<expiry, unix seconds>.<digest mac, 64 hex>.<mac, 64 hex>",
 * mac = HMAC(token key, "vvpt1|" key id "|" context "|" expiry "|" digest mac hex). The context is
 * what the token is bound to besides the key, and is not in the text: both sides compute it.
 * vault/citus.cpp uses the connecting role, the Citus distributed transaction id and the
 * originating session's global pid (a token is useless outside that transaction and session).
 */
#pragma once
#include "core/pure.h"

#include <cstddef>
#include <cstdint>

#include "core/status.h"

namespace vector_vault
{

constexpr size_t kPrincipalTokenMax = 200;
constexpr size_t kPrincipalTokenKeyBytes = 32;

/* Derives the token key from the master key (HMAC-SHA256 with a fixed label). */
Status DerivePrincipalTokenKey(const uint8_t master[32], uint8_t out[kPrincipalTokenKeyBytes]);

/* Writes a token for (key id, binding context, expiry, presented secret's digest). */
Status MakePrincipalToken(const uint8_t key[kPrincipalTokenKeyBytes], const char *key_id,
						  const char *context, uint64_t expiry, const uint8_t digest[32],
						  char out[kPrincipalTokenMax]);

/* What a verified token says. */
struct PrincipalTokenClaims
{
	char key_id[17];
	uint64_t expiry;
	uint8_t digest_mac[32];
};

/* Parses a token and checks its MAC for this binding context (constant-time compare); the
 * caller checks the expiry. Code::kCorrupt for anything forged, altered or malformed. */
Status OpenPrincipalToken(const uint8_t key[kPrincipalTokenKeyBytes], const char *token,
						  const char *context, PrincipalTokenClaims *out);

/* True when digest is the one whose MAC the token carries. */
bool PrincipalTokenDigestMatches(const uint8_t key[kPrincipalTokenKeyBytes],
								 const uint8_t digest[32], const uint8_t digest_mac[32]);

} // namespace vector_vault
