/*
 * index_record.h — the two sealed records of a vault_hnsw index, in pure C++ (so they are unit
 * tested and fuzzed without a server; src/index/hnsw_pages.cpp puts them on pages).
 *
 * Element record (one per element, on graph pages):
 *   offset  size  field (little endian)
 *        0     4  element id
 *        4     1  level (0..16)
 *        5     1  flags (bit 0: deleted)
 *        6     2  reserved
 *        8     6  heap TID (block hi, block lo, offset)
 *       14     2  padding
 *       16     8  vault id
 *       24     4  key version
 *       28     4  vector block
 *       32     4  vector offset
 *       36     4  padding
 *       40    12  nonce
 *       52     n  sealed neighbour lists: layer 0 (count + 2M ids), then each upper layer
 *                 (count + M ids), all uint32
 *     52+n    16  GCM tag; the 40-byte header is the associated data
 *
 * Vector record (one per element, in the vector stream): nonce (12) | sealed float4s, or
 * binary16 halves in an index on ehalfvec | tag (16), associated data "VVEC" (float4s) or "VVEH"
 * (halves) | element id | vault id | key version | dimensions, so a record cannot be moved to
 * another element, vault, version or index shape, nor read at the other width.
 */
#pragma once
#include "core/pure.h"
#include "core/aead.h"
#include "core/status.h"

#include <cstddef>
#include <cstdint>

namespace vector_vault
{

constexpr size_t kElementHeaderBytes = 40;
constexpr int kMaxElementLevel = 16;
constexpr int kMaxElementM = 100;

/* The plaintext fields of an element record. */
struct ElementRecordInfo
{
	uint32_t element_id;
	uint8_t level;
	uint8_t flags;
	uint64_t vault_id;
	uint32_t key_version;
	uint32_t vec_block;
	uint32_t vec_offset;
};

/* Bytes of the plaintext neighbour lists of an element of a level. */
size_t ElementLinksBytes(int m, int level);

/* Bytes of a whole element record. */
size_t ElementRecordSize(int m, int level);

/* Validates size and level and reads the header fields (no key needed). */
Status PeekElementRecord(const uint8_t *rec, size_t size, int m, ElementRecordInfo *out);

/* Authenticates and decrypts the lists into links (ElementLinksBytes); checks every count. */
Status OpenElementRecord(const uint8_t *rec, size_t size, int m, const uint8_t key[kKeyBytes],
						 uint32_t *links);

/* Seals links into a record whose 40-byte header is already written, with a fresh nonce. */
Status SealElementRecord(uint8_t *rec, int m, int level, const uint8_t key[kKeyBytes],
						 const uint32_t *links);

/* How the vector stream holds each dimension: float32 (evector indexes, and every index built
 * before the width existed) or binary16 halves (indexes on ehalfvec: half the stream). */
enum class ElementWidth : uint8_t
{
	kFloat32 = 4,
	kHalf = 2
};

/* Bytes of a vector record. */
constexpr size_t
VectorRecordSize(uint32_t dims, ElementWidth width = ElementWidth::kFloat32)
{
	return kNonceBytes + static_cast<size_t>(dims) * static_cast<size_t>(width) + kTagBytes;
}

/* Seals a vector into a record; a half record rounds each float to the nearest half (exact for
 * ehalfvec values, which is all the index seals at that width) and fails with kOutOfRange past
 * 65504, kInvalidInput on NaN or infinity. */
Status SealVectorRecord(uint32_t element_id, uint64_t vault_id, uint32_t key_version,
						const float *v, uint32_t dims, ElementWidth width,
						const uint8_t key[kKeyBytes], uint8_t *out);

/* Authenticates and decrypts a vector record of exactly VectorRecordSize(dims, width) bytes into
 * dims floats (halves widened in place, exactly). The associated data names the width, so a
 * record cannot be read at another width. */
Status OpenVectorRecord(const uint8_t *rec, size_t size, uint32_t element_id, uint64_t vault_id,
						uint32_t key_version, uint32_t dims, ElementWidth width,
						const uint8_t key[kKeyBytes], float *out);

} // namespace vector_vault
