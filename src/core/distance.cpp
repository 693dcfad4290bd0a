/*
 * distance.cpp — exact and SIMD distance kernels with run-time dispatch (see distance.h).
 *
 * The SIMD kernels keep several independent accumulators so the loop is bound by loads, not by
 * the latency of one dependent add chain, and finish the tail with a scalar loop.
 */
#include "core/distance.h"
#include "core/simd_sum.h"

#include <cmath>
#include <cstring>
#include <immintrin.h>

namespace vector_vault
{

namespace
{

/* Sum of the lanes of four double accumulators, in a fixed order. */
double
SumLanes(__m128d s0, __m128d s1, __m128d s2, __m128d s3)
{
	__m128d s = _mm_add_pd(_mm_add_pd(s0, s1), _mm_add_pd(s2, s3));
	return _mm_cvtsd_f64(s) + _mm_cvtsd_f64(_mm_unpackhi_pd(s, s));
}

/* Widens floats i..i+3 of p to two pairs of doubles. */
inline void
Widen4(const float *p, __m128d *lo, __m128d *hi)
{
	__m128 f = _mm_loadu_ps(p);
	*lo = _mm_cvtps_pd(f);
	*hi = _mm_cvtps_pd(_mm_movehl_ps(f, f));
}

/*
 * Exact L2 and inner product: eight double lanes, lane k summing the elements i = k (mod 8), then
 * ((l0,l1) + (l2,l3)) + ((l4,l5) + (l6,l7)) pairwise and the two halves last, then the scalar
 * tail. Every product of widened floats is exact in double, only the sums round, and the sums
 * happen in this order on every CPU: the SSE2 version (baseline x86-64) and the AVX version
 * (same lanes, two 4-wide registers, no FMA) give bit-identical results, so regression output
 * is stable wherever it runs.
 */

/* Squared L2 sum of the first n - n % 8 elements, SSE2. */
double
SquaredL2LanesSse2(const float *a, const float *b, size_t n)
{
	__m128d s0 = _mm_setzero_pd(), s1 = _mm_setzero_pd(), s2 = _mm_setzero_pd(),
			s3 = _mm_setzero_pd();
	for (size_t i = 0; i + 8 <= n; i += 8)
	{
		__m128d a0, a1, a2, a3, b0, b1, b2, b3;
		Widen4(a + i, &a0, &a1);
		Widen4(a + i + 4, &a2, &a3);
		Widen4(b + i, &b0, &b1);
		Widen4(b + i + 4, &b2, &b3);
		__m128d d0 = _mm_sub_pd(a0, b0), d1 = _mm_sub_pd(a1, b1), d2 = _mm_sub_pd(a2, b2),
				d3 = _mm_sub_pd(a3, b3);
		s0 = _mm_add_pd(s0, _mm_mul_pd(d0, d0));
		s1 = _mm_add_pd(s1, _mm_mul_pd(d1, d1));
		s2 = _mm_add_pd(s2, _mm_mul_pd(d2, d2));
		s3 = _mm_add_pd(s3, _mm_mul_pd(d3, d3));
	}
	return SumLanes(s0, s1, s2, s3);
}

/* Inner product of the first n - n % 8 elements, SSE2. */
double
DotLanesSse2(const float *a, const float *b, size_t n)
{
	__m128d s0 = _mm_setzero_pd(), s1 = _mm_setzero_pd(), s2 = _mm_setzero_pd(),
			s3 = _mm_setzero_pd();
	for (size_t i = 0; i + 8 <= n; i += 8)
	{
		__m128d a0, a1, a2, a3, b0, b1, b2, b3;
		Widen4(a + i, &a0, &a1);
		Widen4(a + i + 4, &a2, &a3);
		Widen4(b + i, &b0, &b1);
		Widen4(b + i + 4, &b2, &b3);
		s0 = _mm_add_pd(s0, _mm_mul_pd(a0, b0));
		s1 = _mm_add_pd(s1, _mm_mul_pd(a1, b1));
		s2 = _mm_add_pd(s2, _mm_mul_pd(a2, b2));
		s3 = _mm_add_pd(s3, _mm_mul_pd(a3, b3));
	}
	return SumLanes(s0, s1, s2, s3);
}

/* The SSE2 lane reduction on two AVX registers holding lanes 0-3 and 4-7. */
__attribute__((target("avx"))) inline double
SumLanesAvx(__m256d lo, __m256d hi)
{
	return SumLanes(_mm256_castpd256_pd128(lo), _mm256_extractf128_pd(lo, 1),
					_mm256_castpd256_pd128(hi), _mm256_extractf128_pd(hi, 1));
}

/* Squared L2 sum of the first n - n % 8 elements, AVX (same lanes and order as SSE2). */
__attribute__((target("avx"))) double
SquaredL2LanesAvx(const float *a, const float *b, size_t n)
{
	__m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
	for (size_t i = 0; i + 8 <= n; i += 8)
	{
		__m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(a + i)),
								   _mm256_cvtps_pd(_mm_loadu_ps(b + i)));
		__m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(a + i + 4)),
								   _mm256_cvtps_pd(_mm_loadu_ps(b + i + 4)));
		lo = _mm256_add_pd(lo, _mm256_mul_pd(d0, d0));
		hi = _mm256_add_pd(hi, _mm256_mul_pd(d1, d1));
	}
	return SumLanesAvx(lo, hi);
}

/* Inner product of the first n - n % 8 elements, AVX (same lanes and order as SSE2). */
__attribute__((target("avx"))) double
DotLanesAvx(const float *a, const float *b, size_t n)
{
	__m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
	for (size_t i = 0; i + 8 <= n; i += 8)
	{
		lo = _mm256_add_pd(lo, _mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(a + i)),
											 _mm256_cvtps_pd(_mm_loadu_ps(b + i))));
		hi = _mm256_add_pd(hi, _mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(a + i + 4)),
											 _mm256_cvtps_pd(_mm_loadu_ps(b + i + 4))));
	}
	return SumLanesAvx(lo, hi);
}

using LaneSum = double (*)(const float *, const float *, size_t);

/* The exact lane kernels for this CPU (AVX when present: same results, half the instructions). */
struct ExactKernels
{
	LaneSum l2;
	LaneSum dot;
};

/* Picks the exact kernels once. */
const ExactKernels &
ExactChosen()
{
	static const ExactKernels k = []
	{
		__builtin_cpu_init();
		if (__builtin_cpu_supports("avx"))
			return ExactKernels{SquaredL2LanesAvx, DotLanesAvx};
		return ExactKernels{SquaredL2LanesSse2, DotLanesSse2};
	}();
	return k;
}

} // namespace

/* Euclidean distance in double precision (fixed lane order, see above). */
double
ExactL2(const float *a, const float *b, size_t n)
{
	double s = ExactChosen().l2(a, b, n);
	for (size_t i = n - n % 8; i < n; i++)
	{
		double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
		s += d * d;
	}
	return std::sqrt(s);
}

/* Inner product in double precision (fixed lane order, as ExactL2). */
double
ExactInnerProduct(const float *a, const float *b, size_t n)
{
	double s = ExactChosen().dot(a, b, n);
	for (size_t i = n - n % 8; i < n; i++)
		s += static_cast<double>(a[i]) * static_cast<double>(b[i]);
	return s;
}

/* Exact kernels with the SSE2 lanes whatever the CPU (tests compare the two). */
double
ExactL2Baseline(const float *a, const float *b, size_t n)
{
	double s = SquaredL2LanesSse2(a, b, n);
	for (size_t i = n - n % 8; i < n; i++)
	{
		double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
		s += d * d;
	}
	return std::sqrt(s);
}

/* Inner product with the SSE2 lanes whatever the CPU. */
double
ExactInnerProductBaseline(const float *a, const float *b, size_t n)
{
	double s = DotLanesSse2(a, b, n);
	for (size_t i = n - n % 8; i < n; i++)
		s += static_cast<double>(a[i]) * static_cast<double>(b[i]);
	return s;
}

/* Cosine distance in double precision, clamped to [0, 2]. */
double
ExactCosineDistance(const float *a, const float *b, size_t n)
{
	double dot = 0.0, na = 0.0, nb = 0.0;
	for (size_t i = 0; i < n; i++)
	{
		dot += static_cast<double>(a[i]) * b[i];
		na += static_cast<double>(a[i]) * a[i];
		nb += static_cast<double>(b[i]) * b[i];
	}
	double sim = dot / std::sqrt(na * nb);
	if (std::isnan(sim))
		return NAN;
	if (sim > 1.0)
		sim = 1.0;
	else if (sim < -1.0)
		sim = -1.0;
	return 1.0 - sim;
}

/* Taxicab distance in double precision. */
double
ExactL1(const float *a, const float *b, size_t n)
{
	double s = 0.0;
	for (size_t i = 0; i < n; i++)
		s += std::fabs(static_cast<double>(a[i]) - static_cast<double>(b[i]));
	return s;
}

/* Euclidean norm in double precision. */
double
ExactNorm(const float *a, size_t n)
{
	double s = 0.0;
	for (size_t i = 0; i < n; i++)
		s += static_cast<double>(a[i]) * a[i];
	return std::sqrt(s);
}

namespace
{

/* Portable squared L2 with four accumulators. */
float
L2SquaredScalar(const float *a, const float *b, size_t n)
{
	float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	size_t i = 0;
	for (; i + 4 <= n; i += 4)
	{
		float d0 = a[i] - b[i], d1 = a[i + 1] - b[i + 1];
		float d2 = a[i + 2] - b[i + 2], d3 = a[i + 3] - b[i + 3];
		s0 += d0 * d0;
		s1 += d1 * d1;
		s2 += d2 * d2;
		s3 += d3 * d3;
	}
	for (; i < n; i++)
	{
		float d = a[i] - b[i];
		s0 += d * d;
	}
	return (s0 + s1) + (s2 + s3);
}

/* Portable negative inner product with four accumulators. */
float
NegInnerProductScalar(const float *a, const float *b, size_t n)
{
	float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	size_t i = 0;
	for (; i + 4 <= n; i += 4)
	{
		s0 += a[i] * b[i];
		s1 += a[i + 1] * b[i + 1];
		s2 += a[i + 2] * b[i + 2];
		s3 += a[i + 3] * b[i + 3];
	}
	for (; i < n; i++)
		s0 += a[i] * b[i];
	return -((s0 + s1) + (s2 + s3));
}

/* Portable L1 (taxicab) with four accumulators. */
float
L1Scalar(const float *a, const float *b, size_t n)
{
	float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	size_t i = 0;
	for (; i + 4 <= n; i += 4)
	{
		s0 += std::fabs(a[i] - b[i]);
		s1 += std::fabs(a[i + 1] - b[i + 1]);
		s2 += std::fabs(a[i + 2] - b[i + 2]);
		s3 += std::fabs(a[i + 3] - b[i + 3]);
	}
	for (; i < n; i++)
		s0 += std::fabs(a[i] - b[i]);
	return (s0 + s1) + (s2 + s3);
}

/* AVX2+FMA squared L2: two 8-wide accumulators. */
__attribute__((target("avx2,fma"))) float
L2SquaredAvx2(const float *a, const float *b, size_t n)
{
	__m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
	size_t i = 0;
	for (; i + 16 <= n; i += 16)
	{
		__m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
		__m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
		acc0 = _mm256_fmadd_ps(d0, d0, acc0);
		acc1 = _mm256_fmadd_ps(d1, d1, acc1);
	}
	for (; i + 8 <= n; i += 8)
	{
		__m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
		acc0 = _mm256_fmadd_ps(d0, d0, acc0);
	}
	float s = simd::HorizontalSum256(_mm256_add_ps(acc0, acc1));
	for (; i < n; i++)
	{
		float d = a[i] - b[i];
		s += d * d;
	}
	return s;
}

/* AVX2+FMA negative inner product. */
__attribute__((target("avx2,fma"))) float
NegInnerProductAvx2(const float *a, const float *b, size_t n)
{
	__m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
	size_t i = 0;
	for (; i + 16 <= n; i += 16)
	{
		acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
		acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
	}
	for (; i + 8 <= n; i += 8)
		acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
	float s = simd::HorizontalSum256(_mm256_add_ps(acc0, acc1));
	for (; i < n; i++)
		s += a[i] * b[i];
	return -s;
}

/* AVX2 L1: |a - b| by clearing the sign bit, two 8-wide accumulators. */
__attribute__((target("avx2,fma"))) float
L1Avx2(const float *a, const float *b, size_t n)
{
	const __m256 sign = _mm256_set1_ps(-0.0f);
	__m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
	size_t i = 0;
	for (; i + 16 <= n; i += 16)
	{
		__m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
		__m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
		acc0 = _mm256_add_ps(acc0, _mm256_andnot_ps(sign, d0));
		acc1 = _mm256_add_ps(acc1, _mm256_andnot_ps(sign, d1));
	}
	for (; i + 8 <= n; i += 8)
	{
		__m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
		acc0 = _mm256_add_ps(acc0, _mm256_andnot_ps(sign, d0));
	}
	float s = simd::HorizontalSum256(_mm256_add_ps(acc0, acc1));
	for (; i < n; i++)
		s += std::fabs(a[i] - b[i]);
	return s;
}

/* AVX-512F squared L2: two 16-wide accumulators. */
__attribute__((target("avx512f"))) float
L2SquaredAvx512(const float *a, const float *b, size_t n)
{
	__m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
	size_t i = 0;
	for (; i + 32 <= n; i += 32)
	{
		__m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
		__m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
		acc0 = _mm512_fmadd_ps(d0, d0, acc0);
		acc1 = _mm512_fmadd_ps(d1, d1, acc1);
	}
	for (; i + 16 <= n; i += 16)
	{
		__m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
		acc0 = _mm512_fmadd_ps(d0, d0, acc0);
	}
	if (i < n)
	{
		__mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
		__m512 d0 = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
		acc1 = _mm512_fmadd_ps(d0, d0, acc1);
	}
	return simd::HorizontalSum512(_mm512_add_ps(acc0, acc1));
}

/* AVX-512F negative inner product. */
__attribute__((target("avx512f"))) float
NegInnerProductAvx512(const float *a, const float *b, size_t n)
{
	__m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
	size_t i = 0;
	for (; i + 32 <= n; i += 32)
	{
		acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
		acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
	}
	for (; i + 16 <= n; i += 16)
		acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
	if (i < n)
	{
		__mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
		acc1 =
			_mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc1);
	}
	return -simd::HorizontalSum512(_mm512_add_ps(acc0, acc1));
}

/* AVX-512F L1: two 16-wide accumulators, masked tail. */
__attribute__((target("avx512f"))) float
L1Avx512(const float *a, const float *b, size_t n)
{
	__m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
	size_t i = 0;
	for (; i + 32 <= n; i += 32)
	{
		__m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
		__m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
		acc0 = _mm512_add_ps(acc0, _mm512_abs_ps(d0));
		acc1 = _mm512_add_ps(acc1, _mm512_abs_ps(d1));
	}
	for (; i + 16 <= n; i += 16)
	{
		__m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
		acc0 = _mm512_add_ps(acc0, _mm512_abs_ps(d0));
	}
	if (i < n)
	{
		__mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
		__m512 d0 = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
		acc1 = _mm512_add_ps(acc1, _mm512_abs_ps(d0));
	}
	return simd::HorizontalSum512(_mm512_add_ps(acc0, acc1));
}

/* The kernels chosen for this CPU. */
struct Kernels
{
	DistanceKernel l2;
	DistanceKernel ip;
	DistanceKernel l1;
	const char *name;
};

/* Picks kernels once, from CPUID. */
const Kernels &
Chosen()
{
	static const Kernels k = []
	{
		__builtin_cpu_init();
		if (__builtin_cpu_supports("avx512f"))
			return Kernels{L2SquaredAvx512, NegInnerProductAvx512, L1Avx512, "avx512f"};
		if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
			return Kernels{L2SquaredAvx2, NegInnerProductAvx2, L1Avx2, "avx2"};
		return Kernels{L2SquaredScalar, NegInnerProductScalar, L1Scalar, "scalar"};
	}();
	return k;
}

} // namespace

/* Squared L2 with the best kernel. */
float
FastL2Squared(const float *a, const float *b, size_t n)
{
	return Chosen().l2(a, b, n);
}

/* Negative inner product with the best kernel. */
float
FastNegInnerProduct(const float *a, const float *b, size_t n)
{
	return Chosen().ip(a, b, n);
}

/* L1 (taxicab) with the best kernel. */
float
FastL1(const float *a, const float *b, size_t n)
{
	return Chosen().l1(a, b, n);
}

/* L1 with a named kernel family, for tests; nullptr when unknown or unsupported here. */
DistanceKernel
L1KernelFamily(const char *family)
{
	__builtin_cpu_init();
	if (std::strcmp(family, "avx512f") == 0)
		return __builtin_cpu_supports("avx512f") ? L1Avx512 : nullptr;
	if (std::strcmp(family, "avx2") == 0)
		return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? L1Avx2 : nullptr;
	if (std::strcmp(family, "scalar") == 0)
		return L1Scalar;
	return nullptr;
}

/* The chosen squared-L2 kernel. */
DistanceKernel
L2SquaredKernel()
{
	return Chosen().l2;
}

/* The chosen negative-inner-product kernel. */
DistanceKernel
NegInnerProductKernel()
{
	return Chosen().ip;
}

/* The chosen L1 kernel. */
DistanceKernel
L1Kernel()
{
	return Chosen().l1;
}

/* Name of the chosen kernel family. */
const char *
FastKernelName()
{
	return Chosen().name;
}

/* Scales v to unit length. */
bool
NormalizeVector(float *v, size_t n)
{
	double norm = ExactNorm(v, n);
	if (norm == 0.0 || !std::isfinite(norm))
		return false;
	for (size_t i = 0; i < n; i++)
		v[i] = static_cast<float>(v[i] / norm);
	return true;
}

} // namespace vector_vault
