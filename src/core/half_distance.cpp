/* half_distance.cpp — float32-query-to-half-vector kernels (see half_distance.h). */
#include "core/half_distance.h"

#include "core/half.h"
#include "core/simd_sum.h"

#include <cmath>
#include <cpuid.h>
#include <cstring>
#include <immintrin.h>

namespace vector_vault
{

namespace
{

/* Scalar squared L2 (four accumulators, as the float32 scalar kernel). */
float
L2HalfScalar(const float *q, const uint16_t *x, size_t n)
{
	float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	size_t i = 0;
	for (; i + 4 <= n; i += 4)
	{
		float d0 = q[i] - HalfToFloat(x[i]), d1 = q[i + 1] - HalfToFloat(x[i + 1]);
		float d2 = q[i + 2] - HalfToFloat(x[i + 2]), d3 = q[i + 3] - HalfToFloat(x[i + 3]);
		s0 += d0 * d0;
		s1 += d1 * d1;
		s2 += d2 * d2;
		s3 += d3 * d3;
	}
	for (; i < n; i++)
	{
		float d = q[i] - HalfToFloat(x[i]);
		s0 += d * d;
	}
	return (s0 + s1) + (s2 + s3);
}

/* Scalar negative inner product. */
float
IpHalfScalar(const float *q, const uint16_t *x, size_t n)
{
	float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	size_t i = 0;
	for (; i + 4 <= n; i += 4)
	{
		s0 += q[i] * HalfToFloat(x[i]);
		s1 += q[i + 1] * HalfToFloat(x[i + 1]);
		s2 += q[i + 2] * HalfToFloat(x[i + 2]);
		s3 += q[i + 3] * HalfToFloat(x[i + 3]);
	}
	for (; i < n; i++)
		s0 += q[i] * HalfToFloat(x[i]);
	return -((s0 + s1) + (s2 + s3));
}

/* Scalar L1. */
float
L1HalfScalar(const float *q, const uint16_t *x, size_t n)
{
	float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	size_t i = 0;
	for (; i + 4 <= n; i += 4)
	{
		s0 += std::fabs(q[i] - HalfToFloat(x[i]));
		s1 += std::fabs(q[i + 1] - HalfToFloat(x[i + 1]));
		s2 += std::fabs(q[i + 2] - HalfToFloat(x[i + 2]));
		s3 += std::fabs(q[i + 3] - HalfToFloat(x[i + 3]));
	}
	for (; i < n; i++)
		s0 += std::fabs(q[i] - HalfToFloat(x[i]));
	return (s0 + s1) + (s2 + s3);
}

/* Eight halves widened to floats (AVX2 family). */
__attribute__((target("avx2,fma,f16c"))) inline __m256
Load8(const uint16_t *x)
{
	return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(x)));
}

/* AVX2+FMA+F16C squared L2: two 8-wide accumulators. */
__attribute__((target("avx2,fma,f16c"))) float
L2HalfAvx2(const float *q, const uint16_t *x, size_t n)
{
	__m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
	size_t i = 0;
	for (; i + 16 <= n; i += 16)
	{
		__m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(q + i), Load8(x + i));
		__m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(q + i + 8), Load8(x + i + 8));
		acc0 = _mm256_fmadd_ps(d0, d0, acc0);
		acc1 = _mm256_fmadd_ps(d1, d1, acc1);
	}
	for (; i + 8 <= n; i += 8)
	{
		__m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(q + i), Load8(x + i));
		acc0 = _mm256_fmadd_ps(d0, d0, acc0);
	}
	float s = simd::HorizontalSum256(_mm256_add_ps(acc0, acc1));
	for (; i < n; i++)
	{
		float d = q[i] - HalfToFloat(x[i]);
		s += d * d;
	}
	return s;
}

/* AVX2+FMA+F16C negative inner product. */
__attribute__((target("avx2,fma,f16c"))) float
IpHalfAvx2(const float *q, const uint16_t *x, size_t n)
{
	__m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
	size_t i = 0;
	for (; i + 16 <= n; i += 16)
	{
		acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), Load8(x + i), acc0);
		acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), Load8(x + i + 8), acc1);
	}
	for (; i + 8 <= n; i += 8)
		acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), Load8(x + i), acc0);
	float s = simd::HorizontalSum256(_mm256_add_ps(acc0, acc1));
	for (; i < n; i++)
		s += q[i] * HalfToFloat(x[i]);
	return -s;
}

/* AVX2+F16C L1: |q - x| by clearing the sign bit. */
__attribute__((target("avx2,fma,f16c"))) float
L1HalfAvx2(const float *q, const uint16_t *x, size_t n)
{
	const __m256 sign = _mm256_set1_ps(-0.0f);
	__m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
	size_t i = 0;
	for (; i + 16 <= n; i += 16)
	{
		__m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(q + i), Load8(x + i));
		__m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(q + i + 8), Load8(x + i + 8));
		acc0 = _mm256_add_ps(acc0, _mm256_andnot_ps(sign, d0));
		acc1 = _mm256_add_ps(acc1, _mm256_andnot_ps(sign, d1));
	}
	for (; i + 8 <= n; i += 8)
	{
		__m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(q + i), Load8(x + i));
		acc0 = _mm256_add_ps(acc0, _mm256_andnot_ps(sign, d0));
	}
	float s = simd::HorizontalSum256(_mm256_add_ps(acc0, acc1));
	for (; i < n; i++)
		s += std::fabs(q[i] - HalfToFloat(x[i]));
	return s;
}

/* Sixteen halves widened to floats (AVX-512F has vcvtph2ps on 512 bits; the zero-masked form
 * with a full mask is the plain instruction, see simd_sum.h on GCC 12's undefined registers). */
__attribute__((target("avx512f"))) inline __m512
Load16(const uint16_t *x)
{
	return _mm512_maskz_cvtph_ps(0xFFFF, _mm256_loadu_si256(reinterpret_cast<const __m256i *>(x)));
}

/* AVX-512F squared L2: 16-wide, the tail masked. */
__attribute__((target("avx512f"))) float
L2HalfAvx512(const float *q, const uint16_t *x, size_t n)
{
	__m512 acc = _mm512_setzero_ps();
	size_t i = 0;
	for (; i + 16 <= n; i += 16)
	{
		__m512 d = _mm512_sub_ps(_mm512_loadu_ps(q + i), Load16(x + i));
		acc = _mm512_fmadd_ps(d, d, acc);
	}
	float s = simd::HorizontalSum512(acc);
	for (; i < n; i++)
	{
		float d = q[i] - HalfToFloat(x[i]);
		s += d * d;
	}
	return s;
}

/* AVX-512F negative inner product. */
__attribute__((target("avx512f"))) float
IpHalfAvx512(const float *q, const uint16_t *x, size_t n)
{
	__m512 acc = _mm512_setzero_ps();
	size_t i = 0;
	for (; i + 16 <= n; i += 16)
		acc = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), Load16(x + i), acc);
	float s = simd::HorizontalSum512(acc);
	for (; i < n; i++)
		s += q[i] * HalfToFloat(x[i]);
	return -s;
}

/* AVX-512F L1. */
__attribute__((target("avx512f"))) float
L1HalfAvx512(const float *q, const uint16_t *x, size_t n)
{
	__m512 acc = _mm512_setzero_ps();
	size_t i = 0;
	for (; i + 16 <= n; i += 16)
	{
		__m512 d = _mm512_sub_ps(_mm512_loadu_ps(q + i), Load16(x + i));
		acc = _mm512_add_ps(acc, _mm512_castsi512_ps(_mm512_and_si512(
									 _mm512_castps_si512(d), _mm512_set1_epi32(0x7FFFFFFF))));
	}
	float s = simd::HorizontalSum512(acc);
	for (; i < n; i++)
		s += std::fabs(q[i] - HalfToFloat(x[i]));
	return s;
}

/* Widens halves eight at a time (F16C). */
__attribute__((target("avx2,fma,f16c"))) void
WidenAvx2(const uint16_t *in, size_t n, float *out)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(out + i, Load8(in + i));
	for (; i < n; i++)
		out[i] = HalfToFloat(in[i]);
}

/* True when the CPU has F16C (CPUID leaf 1, ECX bit 29); every AVX2 CPU we know has it, but
 * the kernels must not assume so. */
bool
HasF16c()
{
	unsigned a = 0, b = 0, c = 0, d = 0;
	return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29)) != 0;
}

/* One family of kernels. */
struct HalfKernels
{
	HalfDistanceKernel l2;
	HalfDistanceKernel ip;
	HalfDistanceKernel l1;
	void (*widen)(const uint16_t *, size_t, float *);
};

/* The family by name, if this CPU runs it. */
bool
Family(const char *family, HalfKernels *out)
{
	__builtin_cpu_init();
	if (std::strcmp(family, "avx512f") == 0 && __builtin_cpu_supports("avx512f"))
		*out = {L2HalfAvx512, IpHalfAvx512, L1HalfAvx512,
				__builtin_cpu_supports("avx2") && HasF16c() ? WidenAvx2 : HalvesToFloats};
	else if (std::strcmp(family, "avx2") == 0 && __builtin_cpu_supports("avx2") &&
			 __builtin_cpu_supports("fma") && HasF16c())
		*out = {L2HalfAvx2, IpHalfAvx2, L1HalfAvx2, WidenAvx2};
	else if (std::strcmp(family, "scalar") == 0)
		*out = {L2HalfScalar, IpHalfScalar, L1HalfScalar, HalvesToFloats};
	else
		return false;
	return true;
}

/* Picks the family once. */
const HalfKernels &
Chosen()
{
	static const HalfKernels k = []
	{
		HalfKernels f{};
		if (!Family("avx512f", &f) && !Family("avx2", &f))
			Family("scalar", &f);
		return f;
	}();
	return k;
}

} // namespace

/* See half_distance.h. */
HalfDistanceKernel
L2SquaredHalfKernel()
{
	return Chosen().l2;
}

/* See half_distance.h. */
HalfDistanceKernel
NegInnerProductHalfKernel()
{
	return Chosen().ip;
}

/* See half_distance.h. */
HalfDistanceKernel
L1HalfKernel()
{
	return Chosen().l1;
}

/* See half_distance.h. */
void
WidenHalves(const uint16_t *in, size_t n, float *out)
{
	Chosen().widen(in, n, out);
}

/* See half_distance.h. */
bool
HalfKernelFamily(const char *family, HalfDistanceKernel *l2, HalfDistanceKernel *ip,
				 HalfDistanceKernel *l1)
{
	HalfKernels k{};
	if (!Family(family, &k))
		return false;
	*l2 = k.l2;
	*ip = k.ip;
	*l1 = k.l1;
	return true;
}

} // namespace vector_vault
