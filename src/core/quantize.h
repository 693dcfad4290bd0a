/*
 * quantize.h — per-dimension 8-bit scalar quantization (SQ8) for the HNSW vector cache.
 *
 * Each dimension i gets its own affine code: value ~= lo[i] + step[i] * code, code in 0..255.
 * lo and step come from the per-dimension minimum and maximum of a training sample (streamed
 * through a Trainer), so a dimension that spans [-0.01, 0.01] and one that spans [-100, 100] both
 * get all 256 levels. Encoding rounds to the nearest level, so an in-range value decodes within
 * step/2 of itself; values outside the trained range clamp to code 0 or 255. Min/max training is
 * sensitive to outliers (one wild value widens the step of its dimension for everyone); it is
 * the simple, exact-bounds choice, and a percentile trainer can replace it behind the same lo/step
 * arrays without touching the kernels.
 *
 * The parameters are two caller-owned float arrays of length dims (lo, step): plain data that the
 * index keeps in shared memory next to the codes. Nothing here holds a pointer into them after a
 * call returns.
 *
 * Search is asymmetric: the query stays float32 and only the stored vectors are codes. A query is
 * prepared once per search into caller-owned scratch (no allocation per query), folding lo and
 * step into per-dimension arrays so the inner loop is "widen 8 or 16 codes to float, then one or
 * two fused multiply-adds":
 *   L2:  sum_i (q_i - lo_i - step_i*c_i)^2       a_i = q_i - lo_i, b_i = step_i, bias = 0
 *        per element: d = a - b*c (FNMA), acc += d*d (FMA)
 *   IP:  -sum_i q_i*(lo_i + step_i*c_i)          a_i = -q_i*step_i, bias = -sum_i q_i*lo_i
 *        per element: acc += a*c (FMA); distance = bias + acc
 *   L1:  sum_i |q_i - lo_i - step_i*c_i|     a, b as L2; per element: d = a - b*c, acc += |d|
 * Each is, up to float rounding, FastL2Squared / FastNegInnerProduct / FastL1 (distance.h) of the
 * query against the decoded vector, so the graph code keeps its "smaller is closer" convention and
 * the caller re-ranks its final candidates with exact float32 distances. Cosine is inner product
 * over normalised vectors, as in the rest of the index: normalise before training, encoding and
 * preparing the query.
 *
 * Kernels are picked at run time from CPUID, like distance.cpp (AVX-512F, AVX2+FMA, portable
 * scalar), and stored in the PreparedQuery, so Distance is one indirect call with no metric
 * branch. SelectKernel lets tests and benchmarks force one family.
 */
#pragma once
#include "core/pure.h"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace vector_vault::sq8
{

/* Largest code; codes are 0..kMaxCode. */
constexpr int kMaxCode = 255;

/* Which distance a prepared query computes (smaller is closer for each). */
enum class Metric : int32_t
{
	kL2Squared = 0,
	kNegInnerProduct = 1,
	kL1 = 2
};

/*
 * Streams training vectors and produces lo/step. Observe any number of vectors of the dimension
 * given at construction, then Finish. Non-finite elements are ignored. Trainers fed on different
 * threads can be combined with Merge. Not stored in shared memory: only Finish's output is.
 */
class Trainer
{
  public:
	/* A trainer for vectors of dims floats. */
	explicit Trainer(size_t dims);

	/* Widens the per-dimension ranges to include v (dims floats). */
	void Observe(const float *v);
	/* Adds another trainer's observations; false (and no change) if the dims differ. */
	bool Merge(const Trainer &other);
	/* Writes lo and step (dims floats each). step > 0 for every dimension: a constant dimension
	 * (or one never observed) gets step 1 and decodes its value exactly from code 0; an
	 * unobserved dimension gets lo 0. */
	void Finish(float *lo, float *step) const;

	/* Number of vectors observed (merged ones included). */
	size_t Count() const
	{
		return count_;
	}

	/* Dimensions per vector. */
	size_t Dims() const
	{
		return dims_;
	}

  private:
	size_t dims_;
	size_t count_ = 0;
	std::vector<float> min_;
	std::vector<float> max_;
};

/*
 * The same training over caller-owned arrays (for code that must not hold C++ objects, such as
 * the Postgres bridge): StartRange empties dims ranges, WidenRange adds a vector, ParamsFromRange
 * writes lo/step exactly as Trainer::Finish does.
 */
void StartRange(float *mins, float *maxs, size_t dims);
void WidenRange(float *mins, float *maxs, const float *v, size_t dims);
void ParamsFromRange(const float *mins, const float *maxs, size_t dims, float *lo, float *step);

/* Codes v (dims floats) to the nearest level, clamping outside [lo, lo + 255*step]; NaN codes 0. */
void Encode(const float *v, const float *lo, const float *step, size_t dims, uint8_t *codes);
/* Writes lo[i] + step[i] * codes[i] to out (dims floats). */
void Decode(const uint8_t *codes, const float *lo, const float *step, size_t dims, float *out);

struct PreparedQuery;

/* A distance kernel over a prepared query and one coded vector of pq.dims codes. */
using Kernel = float (*)(const PreparedQuery &pq, const uint8_t *codes);

/*
 * A query folded with the quantization parameters, ready for Distance. Plain data; a and b point
 * into the caller's scratch, which must outlive the query's use. Backend-local: kernel is a
 * function address, so this is not meant for shared memory (the lo/step arrays are).
 */
struct PreparedQuery
{
	const float *a; /* L2: q - lo; IP: -q * step */
	const float *b; /* L2: step; IP: unused (nullptr) */
	float bias;     /* added to the sum: L2 0, IP -sum q*lo */
	size_t dims;
	Metric metric;
	Kernel kernel; /* chosen for this CPU and metric by Prepare*, or by SelectKernel */
};

/* Floats of scratch a Prepare* call needs for dims dimensions. */
constexpr size_t
ScratchFloats(size_t dims)
{
	return 2 * dims;
}

/* Prepares q for squared-L2 distances; scratch holds ScratchFloats(dims) floats. */
void PrepareL2(const float *q, const float *lo, const float *step, size_t dims, float *scratch,
			   PreparedQuery *out);
/* Prepares q for negative-inner-product distances; scratch as PrepareL2. */
void PrepareNegInnerProduct(const float *q, const float *lo, const float *step, size_t dims,
							float *scratch, PreparedQuery *out);

/* Prepares q for L1 (taxicab) distances; scratch as PrepareL2. */
void PrepareL1(const float *q, const float *lo, const float *step, size_t dims, float *scratch,
			   PreparedQuery *out);

/* Distance from the prepared query to a coded vector (squared L2, negative inner product, L1). */
inline float
Distance(const PreparedQuery &pq, const uint8_t *codes)
{
	return pq.kernel(pq, codes);
}

/* Name of the kernel family chosen for this CPU ("avx512f", "avx2", "scalar"). */
const char *KernelName();

/* Points pq at one kernel family ("avx512f", "avx2", "scalar") for its metric; false, and pq
 * unchanged, when the name is unknown or this CPU lacks the instructions. For tests and
 * benchmarks; Prepare* already picks the best. */
bool SelectKernel(const char *family, PreparedQuery *pq);

} // namespace vector_vault::sq8

/*
 * SQ4: the same per-dimension affine code with 16 levels, two codes per byte (dimension 2j in
 * the low nibble of byte j, 2j+1 in the high one): half a byte per dimension (an
 * eighth of float32's, half of sq8's), for caches too small for sq8. It
 * reuses sq8 whole: the trained lo is sq8's, the step is sq8's times 17 (255 / 15 levels), and a
 * distance unpacks the nibbles into a byte per dimension (Unpack, SIMD where the CPU has it) and
 * runs the sq8 kernel of a query prepared with these lo/step. Coarser codes rank worse, so the
 * caller re-ranks more candidates exactly, as for sq8.
 */
namespace vector_vault::sq4
{

/* Largest code; codes are 0..kMaxCode. */
constexpr int kMaxCode = 15;

/* Bytes of a packed vector of dims codes. */
constexpr size_t
PackedBytes(size_t dims)
{
	return (dims + 1) / 2;
}

/* Turns sq8's trained steps (range / 255) into sq4's (range / 15), in place. */
void StepsFromSq8(float *step, size_t dims);

/* Codes v (dims floats) to the nearest of 16 levels, clamping outside [lo, lo + 15*step], and
 * packs them (PackedBytes(dims) bytes). */
void Encode(const float *v, const float *lo, const float *step, size_t dims, uint8_t *packed);

/* Unpacks dims codes into one byte each (dims bytes), for sq8::Distance and sq8::Decode. */
void Unpack(const uint8_t *packed, size_t dims, uint8_t *codes);

} // namespace vector_vault::sq4
