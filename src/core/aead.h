/*
 * aead.h — AES-256-GCM, the one cipher vector_vault uses.
 *
 * Every encrypted thing (column values, index elements, index neighbour lists, keyring entries)
 * is sealed with AES-256-GCM through OpenSSL's EVP interface: a 256-bit key, a fresh random
 * 96-bit nonce per seal, associated data that binds the ciphertext to its header, and a 16-byte
 * tag. Open() fails with Code::kCorrupt on any tag mismatch, so a flipped bit anywhere is an
 * error, never wrong plaintext. With random nonces a key may seal at most 2^32 messages
 * (NIST SP 800-38D); callers count seals per key version and rotate well before that.
 */
#pragma once
#include "core/pure.h"
#include "core/status.h"

#include <cstddef>
#include <cstdint>

namespace vector_vault
{

constexpr size_t kKeyBytes = 32;
constexpr size_t kNonceBytes = 12;
constexpr size_t kTagBytes = 16;

/* Fills buf with len bytes from OpenSSL's CSPRNG. */
Status RandomBytes(uint8_t *buf, size_t len);

/* Encrypts pt into ct (same length; ct may be pt) under key/nonce, authenticating aad; writes
 * the tag. */
Status AeadSeal(const uint8_t key[kKeyBytes], const uint8_t nonce[kNonceBytes], const uint8_t *aad,
				size_t aad_len, const uint8_t *pt, size_t len, uint8_t *ct, uint8_t tag[kTagBytes]);

/* Decrypts ct into pt if the tag authenticates ct and aad; Code::kCorrupt otherwise. */
Status AeadOpen(const uint8_t key[kKeyBytes], const uint8_t nonce[kNonceBytes], const uint8_t *aad,
				size_t aad_len, const uint8_t *ct, size_t len, const uint8_t tag[kTagBytes],
				uint8_t *pt);

/* Wipes the last key this thread's decrypting context kept for re-use (call when keys are
 * dropped: a vault dropped, a key version retired, the key cache cleared). */
void AeadForgetKeys();

} // namespace vector_vault
