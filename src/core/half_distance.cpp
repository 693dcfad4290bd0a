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

/* The three metrics as per-lane terms, summed by the kernel templates below; the inner product
 * is negated once at the end (Finish). Scalar terms first, then AVX2 and AVX-512 lanes. */
struct L2Term
{
	static float Scalar(float q, float x)
	{
		float d = q - x;
		return d * d;
	}
	__attribute__((target("avx2,fma"))) static __m256 Add(__m256 acc, __m256 q, __m256 x)
	{
		__m256 d = _mm256_sub_ps(q, x);
		return _mm256_fmadd_ps(d, d, acc);
	}
	__attribute__((target("avx512f"))) static __m512 Add(__m512 acc, __m512 q, __m512 x)
	{
		__m512 d = _mm512_sub_ps(q, x);
		return _mm512_fmadd_ps(d, d, acc);
	}
	static float Finish(float s)
	{
		return s;
	}
};

struct IpTerm
{
	static float Scalar(float q, float x)
	{
		return q * x;
	}
	__attribute__((target("avx2,fma"))) static __m256 Add(__m256 acc, __m256 q, __m256 x)
	{
		return _mm256_fmadd_ps(q, x, acc);
	}
	__attribute__((target("avx512f"))) static __m512 Add(__m512 acc, __m512 q, __m512 x)
	{
		return _mm512_fmadd_ps(q, x, acc);
	}
	static float Finish(float s)
	{
		return -s;
	}
};

struct L1Term
{
	static float Scalar(float q, float x)
	{
		return std::fabs(q - x);
	}
	/* |q - x| by clearing the sign bit. */
	__attribute__((target("avx2,fma"))) static __m256 Add(__m256 acc, __m256 q, __m256 x)
	{
		return _mm256_add_ps(acc, _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(q, x)));
	}
	__attribute__((target("avx512f"))) static __m512 Add(__m512 acc, __m512 q, __m512 x)
	{
		__m512i d = _mm512_castps_si512(_mm512_sub_ps(q, x));
		return _mm512_add_ps(
			acc, _mm512_castsi512_ps(_mm512_and_si512(d, _mm512_set1_epi32(0x7FFFFFFF))));
	}
	static float Finish(float s)
	{
		return s;
	}
};

/* Scalar kernel: four accumulators, as the float32 scalar kernels. */
template <class Term>
float
ScalarKernel(const float *q, const uint16_t *x, size_t n)
{
	float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	size_t i = 0;
	for (; i + 4 <= n; i += 4)
	{
		s0 += Term::Scalar(q[i], HalfToFloat(x[i]));
		s1 += Term::Scalar(q[i + 1], HalfToFloat(x[i + 1]));
		s2 += Term::Scalar(q[i + 2], HalfToFloat(x[i + 2]));
		s3 += Term::Scalar(q[i + 3], HalfToFloat(x[i + 3]));
	}
	for (; i < n; i++)
		s0 += Term::Scalar(q[i], HalfToFloat(x[i]));
	return Term::Finish((s0 + s1) + (s2 + s3));
}

/* Eight halves widened to floats (F16C). */
__attribute__((target("avx2,fma,f16c"))) inline __m256
Load8(const uint16_t *x)
{
	return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(x)));
}

/* AVX2+FMA+F16C kernel: two 8-wide accumulators, a scalar tail. */
template <class Term>
__attribute__((target("avx2,fma,f16c"))) float
Avx2Kernel(const float *q, const uint16_t *x, size_t n)
{
	__m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
	size_t i = 0;
	for (; i + 16 <= n; i += 16)
	{
		acc0 = Term::Add(acc0, _mm256_loadu_ps(q + i), Load8(x + i));
		acc1 = Term::Add(acc1, _mm256_loadu_ps(q + i + 8), Load8(x + i + 8));
	}
	for (; i + 8 <= n; i += 8)
		acc0 = Term::Add(acc0, _mm256_loadu_ps(q + i), Load8(x + i));
	float s = simd::HorizontalSum256(_mm256_add_ps(acc0, acc1));
	for (; i < n; i++)
		s += Term::Scalar(q[i], HalfToFloat(x[i]));
	return Term::Finish(s);
}

/* Sixteen halves widened to floats (AVX-512F has vcvtph2ps on 512 bits; the zero-masked form
 * with a full mask is the plain instruction, see simd_sum.h on GCC 12's undefined registers). */
__attribute__((target("avx512f"))) inline __m512
Load16(const uint16_t *x)
{
	return _mm512_maskz_cvtph_ps(0xFFFF, _mm256_loadu_si256(reinterpret_cast<const __m256i *>(x)));
}

/* AVX-512F kernel: one 16-wide accumulator, a scalar tail. */
template <class Term>
__attribute__((target("avx512f"))) float
Avx512Kernel(const float *q, const uint16_t *x, size_t n)
{
	__m512 acc = _mm512_setzero_ps();
	size_t i = 0;
	for (; i + 16 <= n; i += 16)
		acc = Term::Add(acc, _mm512_loadu_ps(q + i), Load16(x + i));
	float s = simd::HorizontalSum512(acc);
	for (; i < n; i++)
		s += Term::Scalar(q[i], HalfToFloat(x[i]));
	return Term::Finish(s);
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
		*out = {Avx512Kernel<L2Term>, Avx512Kernel<IpTerm>, Avx512Kernel<L1Term>,
				__builtin_cpu_supports("avx2") && HasF16c() ? WidenAvx2 : HalvesToFloats};
	else if (std::strcmp(family, "avx2") == 0 && __builtin_cpu_supports("avx2") &&
			 __builtin_cpu_supports("fma") && HasF16c())
		*out = {Avx2Kernel<L2Term>, Avx2Kernel<IpTerm>, Avx2Kernel<L1Term>, WidenAvx2};
	else if (std::strcmp(family, "scalar") == 0)
		*out = {ScalarKernel<L2Term>, ScalarKernel<IpTerm>, ScalarKernel<L1Term>, HalvesToFloats};
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
