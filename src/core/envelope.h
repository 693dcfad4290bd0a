/*
 * envelope.h — the on-disk form of every encrypted column value (DESIGN.md §5).
 *
 *   offset  size  field
 *        0     1  format version (1)
 *        1     1  kind: 1 evector, 2 etext, 3 ejsonb, 4 ehalfvec, 5 esparsevec
 *        2     1  flags (none defined yet; must be 0)
 *        3     1  reserved (must be 0)
 *        4     4  key version of the vault data key (little endian, >= 1)
 *        8     8  vault id (little endian, != 0)
 *       16     4  payload length in bytes (little endian)
 *       20    12  nonce, fresh and random for every seal
 *       32     n  AES-256-GCM ciphertext of the payload
 *     32+n    16  GCM tag
 *
 * The first 20 bytes are the associated data, so changing the kind (feeding an etext where an
 * evector is expected), the vault, the key version or the length is caught by the tag exactly
 * like a changed ciphertext byte. Decoding is strict: every size is checked before any byte is
 * read, unknown versions, kinds and flags are refused. The Postgres varlena header is not part of
 * the envelope; the bridge adds it.
 */
#pragma once
#include "core/pure.h"
#include "core/aead.h"
#include "core/status.h"

#include <cstddef>
#include <cstdint>

namespace vector_vault
{

/* The SQL type an envelope belongs to; part of the authenticated header. */
enum class ValueKind : uint8_t
{
	kVector = 1,
	kText = 2,
	kJson = 3,
	kHalfVector = 4,  /* dims binary16 values, host order (core/half.h) */
	kSparseVector = 5 /* dims, nnz, indices, values (core/sparse_format.h) */
};

constexpr uint8_t kEnvelopeFormat = 1;
constexpr size_t kEnvelopeHeaderBytes = 20;
constexpr size_t kEnvelopeOverhead = kEnvelopeHeaderBytes + kNonceBytes + kTagBytes;
/* Largest payload: keeps the whole varlena under Postgres' 1 GB limit. */
constexpr size_t kMaxEnvelopePayload = 0x3FFFFFFF - kEnvelopeOverhead - 64;
/* Largest evector, in dimensions. */
constexpr uint32_t kMaxVectorDims = 16000;

/* The authenticated, plaintext part of an envelope. */
struct EnvelopeHeader
{
	ValueKind kind = ValueKind::kVector;
	uint8_t flags = 0;
	uint32_t key_version = 0;
	uint64_t vault_id = 0;
	uint32_t payload_len = 0;
};

/* Total envelope size for a payload of payload_len bytes. */
constexpr size_t
EnvelopeSize(size_t payload_len)
{
	return kEnvelopeOverhead + payload_len;
}

/* Validates and decodes the header of an envelope of exactly size bytes. */
Status DecodeEnvelopeHeader(const uint8_t *data, size_t size, EnvelopeHeader *out);

/* Seals pt (h.payload_len bytes) under key with a fresh nonce into out (EnvelopeSize bytes). */
Status SealEnvelope(const EnvelopeHeader &h, const uint8_t key[kKeyBytes], const uint8_t *pt,
					uint8_t *out);

/* Validates, authenticates and decrypts an envelope into pt (header.payload_len bytes). */
Status OpenEnvelope(const uint8_t *data, size_t size, const uint8_t key[kKeyBytes], uint8_t *pt);

/* The 12-byte nonce of a validated envelope (unique per seal, so it names the plaintext). */
inline const uint8_t *
EnvelopeNonce(const uint8_t *data)
{
	return data + kEnvelopeHeaderBytes;
}

/* Little-endian helpers shared by every core format. */
inline void
PutU32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = static_cast<uint8_t>(v >> (8 * i));
}

inline void
PutU64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = static_cast<uint8_t>(v >> (8 * i));
}

inline uint32_t
GetU32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

inline uint64_t
GetU64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

} // namespace vector_vault
