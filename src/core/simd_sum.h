/*
 * simd_sum.h — horizontal sums of AVX and AVX-512 float registers, shared by the distance kernels
 * (distance.cpp) and the sq8 kernels (quantize.cpp). Internal to src/core: each function carries
 * its own target attribute, so including this header changes no other code's instruction set.
 */
#pragma once
#include "core/pure.h"

#include <immintrin.h>

namespace vector_vault::simd
{

/* Sum of the eight lanes of an AVX register. */
__attribute__((target("avx2,fma"))) inline float
HorizontalSum256(__m256 v)
{
	__m128 lo = _mm256_castps256_ps128(v);
	__m128 hi = _mm256_extractf128_ps(v, 1);
	lo = _mm_add_ps(lo, hi);
	lo = _mm_hadd_ps(lo, lo);
	lo = _mm_hadd_ps(lo, lo);
	return _mm_cvtss_f32(lo);
}

/* Sums the 16 lanes as a tree (halves, then quarters, then hadd), not one serial chain of 16
 * adds. The zero-masked extracts with a full mask are the plain instruction: the unmasked
 * intrinsics start from _mm512_undefined_*, which GCC 12 reports as maybe-uninitialized. */
__attribute__((target("avx512f"))) inline float
HorizontalSum512(__m512 v)
{
	__m512d w = _mm512_castps_pd(v);
	__m256 lo = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xFF, w, 0));
	__m256 hi = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xFF, w, 1));
	__m256 s = _mm256_add_ps(lo, hi);
	__m128 q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
	q = _mm_hadd_ps(q, q);
	q = _mm_hadd_ps(q, q);
	return _mm_cvtss_f32(q);
}

} // namespace vector_vault::simd
