/*
 * sparse_format.h — pgvector's sparsevec forms, and the sealed payload of esparsevec (issue 11).
 *
 * Text: '{1:0.5,3:2}/5' — 1-based index:value pairs in any order, then the dimension count.
 * Zero values are dropped, the pairs are sorted by index, a repeated index is an error (as
 * pgvector). Binary (send/recv): int32 dims, int32 nnz, int32 zero, nnz int32 0-based indices,
 * nnz float4 values, all big-endian; indices strictly ascending, values finite and non-zero.
 * Both parsers take untrusted bytes (fuzzed) and never put element text into an error message.
 *
 * Payload (the plaintext an envelope of kind 5 seals): u32 dims, u32 nnz, nnz u32 0-based
 * indices, nnz f32 values, host order. The ciphertext's length therefore reveals nnz, as any
 * length-preserving encryption of a variable-length value does (etext reveals its length too).
 *
 * Distances run on the sorted pairs by merging, in double precision, and equal evector's on the
 * dense form of the same values (a missing element is 0).
 */
#pragma once
#include "core/pure.h"
#include "core/status.h"

#include <cstddef>
#include <cstdint>
#include <string>

namespace vector_vault
{

/* pgvector's limits: dimensions and stored (non-zero) elements. */
constexpr uint32_t kMaxSparseDims = 1000000000;
constexpr uint32_t kMaxSparseNnz = 16000;

/* A sparse vector over caller-owned arrays (indices 0-based, strictly ascending). */
struct SparseView
{
	uint32_t dims = 0;
	uint32_t nnz = 0;
	const uint32_t *indices = nullptr;
	const float *values = nullptr;
};

/* Parses NUL-terminated text into indices/values (capacity cap pairs); sorts, drops zeros. */
Status ParseSparseText(const char *text, uint32_t *indices, float *values, size_t cap,
					   uint32_t *dims, uint32_t *nnz);

/* Appends the text form ('{i:v,...}/dims', 1-based, shortest float digits). */
void FormatSparseText(const SparseView &v, std::string *out);

/* Bytes of the text form at most, including the NUL. */
constexpr size_t
SparseTextCapacity(uint32_t nnz)
{
	return 2 + static_cast<size_t>(nnz) * (11 + 1 + 16) + 1 + 11 + 1;
}

/* Writes the text form into buf (capacity cap, NUL-terminated); returns bytes written or 0. */
size_t FormatSparseTextBuf(const SparseView &v, char *buf, size_t cap);

/* Parses the binary form (len bytes) into indices/values (capacity cap pairs). */
Status ParseSparseBinary(const uint8_t *data, size_t len, uint32_t *indices, float *values,
						 size_t cap, uint32_t *dims, uint32_t *nnz);

/* Size of the binary form. */
constexpr size_t
SparseBinarySize(uint32_t nnz)
{
	return 12 + 8 * static_cast<size_t>(nnz);
}

/* Writes the binary form (SparseBinarySize(nnz) bytes). */
void FormatSparseBinary(const SparseView &v, uint8_t *out);

/* Size of the sealed payload. */
constexpr size_t
SparsePayloadSize(uint32_t nnz)
{
	return 8 + 8 * static_cast<size_t>(nnz);
}

/* Writes the payload (SparsePayloadSize(v.nnz) bytes). */
void PackSparse(const SparseView &v, uint8_t *out);

/* Reads a payload in place (out points into data); kCorrupt unless it is well formed. */
Status UnpackSparse(const uint8_t *data, size_t len, SparseView *out);

/* Distances over the pairs, double precision; dims must be equal (callers check). */
/* -1, 0 or 1: pgvector's sparsevec order, which is the dense order — the first min(dims)
 * elements compared one by one (absent elements are 0), then the vector with fewer dimensions
 * first. */
int CompareSparse(const SparseView &a, const SparseView &b);

double SparseL2(const SparseView &a, const SparseView &b);
double SparseInnerProduct(const SparseView &a, const SparseView &b);
double SparseL1(const SparseView &a, const SparseView &b);
/* 1 - cosine similarity, clamped to [0, 2]; NaN when a norm is zero (as evector). */
double SparseCosineDistance(const SparseView &a, const SparseView &b);
double SparseNorm(const SparseView &a);

/* a divided by its Euclidean norm into idx/val (capacity a.nnz), elements that underflow to zero
 * dropped (as pgvector); returns the number of pairs written (0 for a zero vector). */
uint32_t SparseNormalize(const SparseView &a, uint32_t *idx, float *val);

} // namespace vector_vault
