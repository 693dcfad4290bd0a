/*
 * half.h — IEEE 754 binary16 ("half") conversion for half-precision vectors (ehalfvec, issue 11).
 *
 * A half has 1 sign bit, 5 exponent bits and 10 fraction bits: finite values up to 65504,
 * normals down to 2^-14, subnormals down to 2^-24. Float to half rounds to nearest, ties to
 * even, as IEEE 754 and F16C's vcvtps2ph with _MM_FROUND_TO_NEAREST_INT do. A finite float whose
 * rounded magnitude would exceed 65504 (|x| >= 65520) is an error, never an infinity (pgvector's
 * halfvec raises "value out of range: overflow" there too); NaN and infinities are refused as
 * in every vector; values too small for a subnormal round to a signed zero (IEEE underflow, as
 * pgvector). Half to float is exact: every half is a float.
 *
 * Errors name the element's position, never its value (a vector is plaintext). The conversions
 * are scalar bit arithmetic, the same on every CPU; they run once per value at the type and
 * cache boundaries, not in the distance loops.
 */
#pragma once
#include "core/pure.h"
#include "core/status.h"

#include <cstddef>
#include <cstdint>

namespace vector_vault
{

/* Largest finite half. */
constexpr float kHalfMax = 65504.0f;

/* Rounds a finite float to the nearest half (ties to even); false when |f| rounds past 65504
 * or f is NaN or infinite (*out unchanged then). */
bool FloatToHalf(float f, uint16_t *out);

/* The float a half denotes (exact; infinities and NaNs map to their float counterparts). */
float HalfToFloat(uint16_t h);

/* Converts n floats to halves; kOutOfRange naming the first element (1-based) that overflows,
 * kInvalidInput for NaN or infinity. */
Status FloatsToHalves(const float *in, size_t n, uint16_t *out);

/* Converts n halves to floats (exact). */
void HalvesToFloats(const uint16_t *in, size_t n, float *out);

/*
 * pgvector's halfvec binary form (send/recv): int16 dimensions, int16 zero, then that many
 * big-endian binary16 values. The parser takes untrusted bytes (fuzzed: fuzz_halfvec_binary),
 * writes dims halves to out (capacity cap) and refuses NaN and infinities by position.
 */
Status ParseHalfVectorBinary(const uint8_t *data, size_t len, uint16_t *out, size_t cap,
							 size_t *dims);

/* Size of the halfvec binary form for dims elements. */
constexpr size_t
HalfVectorBinarySize(size_t dims)
{
	return 4 + 2 * dims;
}

/* Writes the binary form (HalfVectorBinarySize(dims) bytes) into out. */
void FormatHalfVectorBinary(const uint16_t *v, size_t dims, uint8_t *out);

} // namespace vector_vault
