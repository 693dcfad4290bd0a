/*
 * quantize.cpp — SQ8 training, coding and asymmetric distance kernels (see quantize.h).
 *
 * The SIMD kernels widen uint8 codes to float32 lanes (vpmovzxbd + vcvtdq2ps), then spend one
 * FNMA and one FMA per element for L2 and one FMA for inner product against the prepared arrays.
 * Like distance.cpp they keep independent accumulators so the loop is not bound by the latency of
 * a single add chain. AVX2 finishes with a scalar tail; AVX-512F masks the float loads and copies
 * the last codes into a zeroed 16-byte buffer (a masked byte load needs AVX-512BW, and a full
 * 16-byte load could read past the caller's codes). Masked-off lanes load a = b = 0, so they add
 * 0 to either sum.
 */
#include "core/quantize.h"
#include "core/simd_sum.h"

#include <cfloat>
#include <cmath>
#include <cstring>
#include <immintrin.h>

namespace vector_vault
{

/* The nearest of codes 0..max_code to (v - lo) / step, clamped before the conversion (so the cast
 * is always defined, NaN included): sq8's and sq4's one rounding rule. */
inline uint8_t
NearestCode(float v, float lo, float step, int max_code)
{
	float t = (v - lo) / step;
	if (!(t > 0.0f))
		t = 0.0f;
	else if (t > static_cast<float>(max_code))
		t = static_cast<float>(max_code);
	return static_cast<uint8_t>(std::nearbyint(t));
}

} // namespace vector_vault

namespace vector_vault::sq8
{

/* Starts with empty ranges (min +inf, max -inf) in every dimension. */
Trainer::Trainer(size_t dims) : dims_(dims), min_(dims, INFINITY), max_(dims, -INFINITY) {}

/* Widens the ranges; NaN and infinities are skipped. */
void
Trainer::Observe(const float *v)
{
	WidenRange(min_.data(), max_.data(), v, dims_);
	count_++;
}

/* Unions the ranges of two trainers of the same dimension. */
bool
Trainer::Merge(const Trainer &other)
{
	if (other.dims_ != dims_)
		return false;
	for (size_t i = 0; i < dims_; i++)
	{
		if (other.min_[i] < min_[i])
			min_[i] = other.min_[i];
		if (other.max_[i] > max_[i])
			max_[i] = other.max_[i];
	}
	count_ += other.count_;
	return true;
}

/* lo = min, step = (max - min) / 255 computed in double (the range of two finite floats can
 * exceed FLT_MAX; the step cannot); a zero or subnormal step becomes 1, so codes never divide by
 * zero and the one trained value (code 0) decodes exactly. */
void
Trainer::Finish(float *lo, float *step) const
{
	ParamsFromRange(min_.data(), max_.data(), dims_, lo, step);
}

/* Empty ranges: every minimum +inf, every maximum -inf. */
void
StartRange(float *mins, float *maxs, size_t dims)
{
	for (size_t i = 0; i < dims; i++)
	{
		mins[i] = INFINITY;
		maxs[i] = -INFINITY;
	}
}

/* Widens the ranges to include v's finite elements. */
void
WidenRange(float *mins, float *maxs, const float *v, size_t dims)
{
	for (size_t i = 0; i < dims; i++)
	{
		float x = v[i];
		if (!std::isfinite(x))
			continue;
		if (x < mins[i])
			mins[i] = x;
		if (x > maxs[i])
			maxs[i] = x;
	}
}

/* lo = min, step = range / 255; a constant, subnormal-range or unobserved dimension gets step 1
 * (and lo 0 when unobserved). */
void
ParamsFromRange(const float *mins, const float *maxs, size_t dims, float *lo, float *step)
{
	for (size_t i = 0; i < dims; i++)
	{
		if (!(mins[i] <= maxs[i]))
		{
			lo[i] = 0.0f;
			step[i] = 1.0f;
			continue;
		}
		double range = static_cast<double>(maxs[i]) - static_cast<double>(mins[i]);
		float s = static_cast<float>(range / kMaxCode);
		lo[i] = mins[i];
		step[i] = s >= FLT_MIN ? s : 1.0f;
	}
}

/* Rounds each (v - lo) / step to the nearest code (NearestCode). */
void
Encode(const float *v, const float *lo, const float *step, size_t dims, uint8_t *codes)
{
	for (size_t i = 0; i < dims; i++)
		codes[i] = NearestCode(v[i], lo[i], step[i], kMaxCode);
}

/* The affine decode, element by element. */
void
Decode(const uint8_t *codes, const float *lo, const float *step, size_t dims, float *out)
{
	for (size_t i = 0; i < dims; i++)
		out[i] = lo[i] + step[i] * static_cast<float>(codes[i]);
}

namespace
{

/* Portable squared L2 over codes, four accumulators. */
float
L2Scalar(const PreparedQuery &pq, const uint8_t *c)
{
	const float *a = pq.a, *b = pq.b;
	size_t n = pq.dims, i = 0;
	float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	for (; i + 4 <= n; i += 4)
	{
		float d0 = a[i] - b[i] * static_cast<float>(c[i]);
		float d1 = a[i + 1] - b[i + 1] * static_cast<float>(c[i + 1]);
		float d2 = a[i + 2] - b[i + 2] * static_cast<float>(c[i + 2]);
		float d3 = a[i + 3] - b[i + 3] * static_cast<float>(c[i + 3]);
		s0 += d0 * d0;
		s1 += d1 * d1;
		s2 += d2 * d2;
		s3 += d3 * d3;
	}
	for (; i < n; i++)
	{
		float d = a[i] - b[i] * static_cast<float>(c[i]);
		s0 += d * d;
	}
	return pq.bias + ((s0 + s1) + (s2 + s3));
}

/* Portable negative inner product over codes, four accumulators. */
float
NegInnerProductScalar(const PreparedQuery &pq, const uint8_t *c)
{
	const float *a = pq.a;
	size_t n = pq.dims, i = 0;
	float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	for (; i + 4 <= n; i += 4)
	{
		s0 += a[i] * static_cast<float>(c[i]);
		s1 += a[i + 1] * static_cast<float>(c[i + 1]);
		s2 += a[i + 2] * static_cast<float>(c[i + 2]);
		s3 += a[i + 3] * static_cast<float>(c[i + 3]);
	}
	for (; i < n; i++)
		s0 += a[i] * static_cast<float>(c[i]);
	return pq.bias + ((s0 + s1) + (s2 + s3));
}

/* Portable L1 over codes: sum |a - b*c|, four accumulators. */
float
L1Scalar(const PreparedQuery &pq, const uint8_t *c)
{
	const float *a = pq.a, *b = pq.b;
	size_t n = pq.dims, i = 0;
	float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	for (; i + 4 <= n; i += 4)
	{
		s0 += std::fabs(a[i] - b[i] * static_cast<float>(c[i]));
		s1 += std::fabs(a[i + 1] - b[i + 1] * static_cast<float>(c[i + 1]));
		s2 += std::fabs(a[i + 2] - b[i + 2] * static_cast<float>(c[i + 2]));
		s3 += std::fabs(a[i + 3] - b[i + 3] * static_cast<float>(c[i + 3]));
	}
	for (; i < n; i++)
		s0 += std::fabs(a[i] - b[i] * static_cast<float>(c[i]));
	return pq.bias + ((s0 + s1) + (s2 + s3));
}

/* Codes 0..7 of a 16-byte register as eight floats. */
__attribute__((target("avx2,fma"))) inline __m256
WidenLow8(__m128i raw)
{
	return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(raw));
}

/* Codes 8..15 of a 16-byte register as eight floats. */
__attribute__((target("avx2,fma"))) inline __m256
WidenHigh8(__m128i raw)
{
	return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_unpackhi_epi64(raw, raw)));
}

/* AVX2+FMA squared L2 over codes: 32 codes per iteration, four 8-wide accumulators. */
__attribute__((target("avx2,fma"))) float
L2Avx2(const PreparedQuery &pq, const uint8_t *c)
{
	const float *a = pq.a, *b = pq.b;
	size_t n = pq.dims, i = 0;
	__m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
	__m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
	for (; i + 32 <= n; i += 32)
	{
		__m128i r0 = _mm_loadu_si128(reinterpret_cast<const __m128i *>(c + i));
		__m128i r1 = _mm_loadu_si128(reinterpret_cast<const __m128i *>(c + i + 16));
		__m256 d0 = _mm256_fnmadd_ps(_mm256_loadu_ps(b + i), WidenLow8(r0), _mm256_loadu_ps(a + i));
		__m256 d1 = _mm256_fnmadd_ps(_mm256_loadu_ps(b + i + 8), WidenHigh8(r0),
									 _mm256_loadu_ps(a + i + 8));
		__m256 d2 = _mm256_fnmadd_ps(_mm256_loadu_ps(b + i + 16), WidenLow8(r1),
									 _mm256_loadu_ps(a + i + 16));
		__m256 d3 = _mm256_fnmadd_ps(_mm256_loadu_ps(b + i + 24), WidenHigh8(r1),
									 _mm256_loadu_ps(a + i + 24));
		acc0 = _mm256_fmadd_ps(d0, d0, acc0);
		acc1 = _mm256_fmadd_ps(d1, d1, acc1);
		acc2 = _mm256_fmadd_ps(d2, d2, acc2);
		acc3 = _mm256_fmadd_ps(d3, d3, acc3);
	}
	for (; i + 8 <= n; i += 8)
	{
		__m128i r = _mm_loadl_epi64(reinterpret_cast<const __m128i *>(c + i));
		__m256 d = _mm256_fnmadd_ps(_mm256_loadu_ps(b + i), WidenLow8(r), _mm256_loadu_ps(a + i));
		acc0 = _mm256_fmadd_ps(d, d, acc0);
	}
	float s =
		simd::HorizontalSum256(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
	for (; i < n; i++)
	{
		float d = a[i] - b[i] * static_cast<float>(c[i]);
		s += d * d;
	}
	return pq.bias + s;
}

/* AVX2+FMA negative inner product over codes: 32 codes per iteration, four accumulators. */
__attribute__((target("avx2,fma"))) float
NegInnerProductAvx2(const PreparedQuery &pq, const uint8_t *c)
{
	const float *a = pq.a;
	size_t n = pq.dims, i = 0;
	__m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
	__m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
	for (; i + 32 <= n; i += 32)
	{
		__m128i r0 = _mm_loadu_si128(reinterpret_cast<const __m128i *>(c + i));
		__m128i r1 = _mm_loadu_si128(reinterpret_cast<const __m128i *>(c + i + 16));
		acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), WidenLow8(r0), acc0);
		acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), WidenHigh8(r0), acc1);
		acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), WidenLow8(r1), acc2);
		acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), WidenHigh8(r1), acc3);
	}
	for (; i + 8 <= n; i += 8)
	{
		__m128i r = _mm_loadl_epi64(reinterpret_cast<const __m128i *>(c + i));
		acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), WidenLow8(r), acc0);
	}
	float s =
		simd::HorizontalSum256(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
	for (; i < n; i++)
		s += a[i] * static_cast<float>(c[i]);
	return pq.bias + s;
}

/* AVX2+FMA L1 over codes: 16 codes per iteration, |d| by clearing the sign bit. */
__attribute__((target("avx2,fma"))) float
L1Avx2(const PreparedQuery &pq, const uint8_t *c)
{
	const float *a = pq.a, *b = pq.b;
	const __m256 sign = _mm256_set1_ps(-0.0f);
	size_t n = pq.dims, i = 0;
	__m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
	for (; i + 16 <= n; i += 16)
	{
		__m128i r = _mm_loadu_si128(reinterpret_cast<const __m128i *>(c + i));
		__m256 d0 = _mm256_fnmadd_ps(_mm256_loadu_ps(b + i), WidenLow8(r), _mm256_loadu_ps(a + i));
		__m256 d1 =
			_mm256_fnmadd_ps(_mm256_loadu_ps(b + i + 8), WidenHigh8(r), _mm256_loadu_ps(a + i + 8));
		acc0 = _mm256_add_ps(acc0, _mm256_andnot_ps(sign, d0));
		acc1 = _mm256_add_ps(acc1, _mm256_andnot_ps(sign, d1));
	}
	for (; i + 8 <= n; i += 8)
	{
		__m128i r = _mm_loadl_epi64(reinterpret_cast<const __m128i *>(c + i));
		__m256 d = _mm256_fnmadd_ps(_mm256_loadu_ps(b + i), WidenLow8(r), _mm256_loadu_ps(a + i));
		acc0 = _mm256_add_ps(acc0, _mm256_andnot_ps(sign, d));
	}
	float s = simd::HorizontalSum256(_mm256_add_ps(acc0, acc1));
	for (; i < n; i++)
		s += std::fabs(a[i] - b[i] * static_cast<float>(c[i]));
	return pq.bias + s;
}

/* Sixteen codes as sixteen floats. The zero-masked forms with an all-ones mask are the plain
 * instructions; the unmasked intrinsics start from _mm512_undefined_*, which GCC 12 reports as
 * maybe-uninitialized (as HorizontalSum512 avoids _mm512_reduce_add_ps). */
__attribute__((target("avx512f"))) inline __m512
Widen16(const uint8_t *p)
{
	const __mmask16 all = 0xFFFF;
	__m512i wide =
		_mm512_maskz_cvtepu8_epi32(all, _mm_loadu_si128(reinterpret_cast<const __m128i *>(p)));
	return _mm512_maskz_cvtepi32_ps(all, wide);
}

/* The last r < 16 codes as floats, zero-padded, without reading past p + r. */
__attribute__((target("avx512f"))) inline __m512
WidenTail(const uint8_t *p, size_t r)
{
	alignas(16) uint8_t buf[16] = {0};
	std::memcpy(buf, p, r);
	return Widen16(buf);
}

/* Mask of the low r lanes (r < 16). */
inline __mmask16
TailMask(size_t r)
{
	return static_cast<__mmask16>((1u << r) - 1);
}

/* AVX-512F squared L2 over codes: 32 codes per iteration, two 16-wide accumulators. */
__attribute__((target("avx512f"))) float
L2Avx512(const PreparedQuery &pq, const uint8_t *c)
{
	const float *a = pq.a, *b = pq.b;
	size_t n = pq.dims, i = 0;
	__m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
	for (; i + 32 <= n; i += 32)
	{
		__m512 d0 =
			_mm512_fnmadd_ps(_mm512_loadu_ps(b + i), Widen16(c + i), _mm512_loadu_ps(a + i));
		__m512 d1 = _mm512_fnmadd_ps(_mm512_loadu_ps(b + i + 16), Widen16(c + i + 16),
									 _mm512_loadu_ps(a + i + 16));
		acc0 = _mm512_fmadd_ps(d0, d0, acc0);
		acc1 = _mm512_fmadd_ps(d1, d1, acc1);
	}
	for (; i + 16 <= n; i += 16)
	{
		__m512 d = _mm512_fnmadd_ps(_mm512_loadu_ps(b + i), Widen16(c + i), _mm512_loadu_ps(a + i));
		acc0 = _mm512_fmadd_ps(d, d, acc0);
	}
	if (i < n)
	{
		__mmask16 m = TailMask(n - i);
		__m512 d = _mm512_fnmadd_ps(_mm512_maskz_loadu_ps(m, b + i), WidenTail(c + i, n - i),
									_mm512_maskz_loadu_ps(m, a + i));
		acc1 = _mm512_fmadd_ps(d, d, acc1);
	}
	return pq.bias + simd::HorizontalSum512(_mm512_add_ps(acc0, acc1));
}

/* AVX-512F negative inner product over codes. */
__attribute__((target("avx512f"))) float
NegInnerProductAvx512(const PreparedQuery &pq, const uint8_t *c)
{
	const float *a = pq.a;
	size_t n = pq.dims, i = 0;
	__m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
	for (; i + 32 <= n; i += 32)
	{
		acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), Widen16(c + i), acc0);
		acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), Widen16(c + i + 16), acc1);
	}
	for (; i + 16 <= n; i += 16)
		acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), Widen16(c + i), acc0);
	if (i < n)
	{
		__mmask16 m = TailMask(n - i);
		acc1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), WidenTail(c + i, n - i), acc1);
	}
	return pq.bias + simd::HorizontalSum512(_mm512_add_ps(acc0, acc1));
}

/* AVX-512F L1 over codes: 16 codes per iteration, masked tail. */
__attribute__((target("avx512f"))) float
L1Avx512(const PreparedQuery &pq, const uint8_t *c)
{
	const float *a = pq.a, *b = pq.b;
	size_t n = pq.dims, i = 0;
	__m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
	for (; i + 16 <= n; i += 16)
	{
		__m512 d = _mm512_fnmadd_ps(_mm512_loadu_ps(b + i), Widen16(c + i), _mm512_loadu_ps(a + i));
		acc0 = _mm512_add_ps(acc0, _mm512_abs_ps(d));
	}
	if (i < n)
	{
		__mmask16 m = TailMask(n - i);
		__m512 d = _mm512_fnmadd_ps(_mm512_maskz_loadu_ps(m, b + i), WidenTail(c + i, n - i),
									_mm512_maskz_loadu_ps(m, a + i));
		acc1 = _mm512_add_ps(acc1, _mm512_abs_ps(d));
	}
	return pq.bias + simd::HorizontalSum512(_mm512_add_ps(acc0, acc1));
}

/* Whether the CPU runs AVX2 and FMA. */
bool
HasAvx2()
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* Whether the CPU runs AVX-512F. */
bool
HasAvx512()
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f");
}

/* Whether any CPU runs the portable kernels (always). */
bool
HasScalar()
{
	return true;
}

/* One kernel family: its name, a kernel per metric, and whether this CPU can run it. */
struct Family
{
	const char *name;
	Kernel l2;
	Kernel ip;
	Kernel l1;
	bool (*supported)();
};

/* Families, best first. */
const Family kFamilies[] = {
	{"avx512f", L2Avx512, NegInnerProductAvx512, L1Avx512, HasAvx512},
	{"avx2", L2Avx2, NegInnerProductAvx2, L1Avx2, HasAvx2},
	{"scalar", L2Scalar, NegInnerProductScalar, L1Scalar, HasScalar},
};

/* Picks the best family once, from CPUID. */
const Family &
Chosen()
{
	static const Family &f = []() -> const Family &
	{
		for (const Family &fam : kFamilies)
			if (fam.supported())
				return fam;
		return kFamilies[2];
	}();
	return f;
}

/* The family's kernel for a metric. */
Kernel
KernelOf(const Family &f, Metric metric)
{
	switch (metric)
	{
		case Metric::kL2Squared:
			return f.l2;
		case Metric::kNegInnerProduct:
			return f.ip;
		case Metric::kL1:
			return f.l1;
	}
	return f.l2;
}

} // namespace

/* a = q - lo, b = step (copied, so the query does not depend on where lo/step live). */
void
PrepareL2(const float *q, const float *lo, const float *step, size_t dims, float *scratch,
		  PreparedQuery *out)
{
	float *a = scratch, *b = scratch + dims;
	for (size_t i = 0; i < dims; i++)
	{
		a[i] = q[i] - lo[i];
		b[i] = step[i];
	}
	out->a = a;
	out->b = b;
	out->bias = 0.0f;
	out->dims = dims;
	out->metric = Metric::kL2Squared;
	out->kernel = KernelOf(Chosen(), Metric::kL2Squared);
}

/* a = -q * step, bias = -sum q * lo (summed in double, once per query). */
void
PrepareNegInnerProduct(const float *q, const float *lo, const float *step, size_t dims,
					   float *scratch, PreparedQuery *out)
{
	float *a = scratch;
	double bias = 0.0;
	for (size_t i = 0; i < dims; i++)
	{
		a[i] = -(q[i] * step[i]);
		bias -= static_cast<double>(q[i]) * static_cast<double>(lo[i]);
	}
	out->a = a;
	out->b = nullptr;
	out->bias = static_cast<float>(bias);
	out->dims = dims;
	out->metric = Metric::kNegInnerProduct;
	out->kernel = KernelOf(Chosen(), Metric::kNegInnerProduct);
}

/* a = q - lo, b = step, as PrepareL2; the kernel sums |a - b*c| instead of squares. */
void
PrepareL1(const float *q, const float *lo, const float *step, size_t dims, float *scratch,
		  PreparedQuery *out)
{
	PrepareL2(q, lo, step, dims, scratch, out);
	out->metric = Metric::kL1;
	out->kernel = KernelOf(Chosen(), Metric::kL1);
}

/* Name of the chosen family. */
const char *
KernelName()
{
	return Chosen().name;
}

/* Looks the family up by name and checks the CPU before switching pq to it. */
bool
SelectKernel(const char *family, PreparedQuery *pq)
{
	for (const Family &f : kFamilies)
	{
		if (std::strcmp(f.name, family) != 0)
			continue;
		if (!f.supported())
			return false;
		pq->kernel = KernelOf(f, pq->metric);
		return true;
	}
	return false;
}

} // namespace vector_vault::sq8

namespace vector_vault::sq4
{

/* See quantize.h. */
void
StepsFromSq8(float *step, size_t dims)
{
	for (size_t i = 0; i < dims; i++)
		step[i] *= static_cast<float>(sq8::kMaxCode / kMaxCode);
}

/* See quantize.h. */
void
Encode(const float *v, const float *lo, const float *step, size_t dims, uint8_t *packed)
{
	memset(packed, 0, PackedBytes(dims));
	for (size_t i = 0; i < dims; i++)
	{
		uint8_t c = NearestCode(v[i], lo[i], step[i], kMaxCode);
		packed[i / 2] |= static_cast<uint8_t>(i % 2 ? c << 4 : c);
	}
}

namespace
{

/* The portable unpack, from code `from` on. */
void
UnpackFrom(const uint8_t *packed, size_t from, size_t dims, uint8_t *codes)
{
	for (size_t i = from; i < dims; i++)
		codes[i] = static_cast<uint8_t>(i % 2 ? packed[i / 2] >> 4 : packed[i / 2] & 0x0F);
}

/* Sixteen packed bytes to thirty-two codes at a time (AVX2's 128-bit byte interleave). */
__attribute__((target("avx2"))) void
UnpackAvx2(const uint8_t *packed, size_t dims, uint8_t *codes)
{
	const __m128i low = _mm_set1_epi8(0x0F);
	size_t i = 0;
	for (; i + 32 <= dims; i += 32)
	{
		__m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i *>(packed + i / 2));
		__m128i lo = _mm_and_si128(x, low);
		__m128i hi = _mm_and_si128(_mm_srli_epi16(x, 4), low);
		_mm_storeu_si128(reinterpret_cast<__m128i *>(codes + i), _mm_unpacklo_epi8(lo, hi));
		_mm_storeu_si128(reinterpret_cast<__m128i *>(codes + i + 16), _mm_unpackhi_epi8(lo, hi));
	}
	UnpackFrom(packed, i, dims, codes);
}

/* The portable unpack. */
void
UnpackScalar(const uint8_t *packed, size_t dims, uint8_t *codes)
{
	UnpackFrom(packed, 0, dims, codes);
}

} // namespace

/* See quantize.h. */
void
Unpack(const uint8_t *packed, size_t dims, uint8_t *codes)
{
	static const auto kUnpack = []
	{
		__builtin_cpu_init();
		return __builtin_cpu_supports("avx2") ? UnpackAvx2 : UnpackScalar;
	}();
	kUnpack(packed, dims, codes);
}

} // namespace vector_vault::sq4
