/* quantize_test.cpp — SQ8: training, round trip and clamping, every kernel against a double
 * reference over the decoded vector (SIMD tails included), the half-step error bound, and recall
 * of the true nearest neighbour on clustered data. */
#include "core/distance.h"
#include "core/quantize.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <gtest/gtest.h>
#include <random>
#include <string>
#include <vector>

using namespace vector_vault;

namespace
{

const size_t kTailDims[] = {1, 7, 8, 15, 16, 17, 128, 784, 1000};
const char *const kFamilies[] = {"scalar", "avx2", "avx512f"};

/* Trained parameters plus the data they came from (n vectors of dims floats). */
struct Model
{
	size_t dims;
	std::vector<float> data;
	std::vector<float> lo;
	std::vector<float> step;
};

/* n vectors whose dimensions have different offsets and scales (so per-dimension codes matter),
 * trained with a Trainer. */
Model
TrainedModel(size_t dims, size_t n, uint32_t seed)
{
	std::mt19937 rng(seed);
	std::normal_distribution<float> g(0, 1);
	std::uniform_real_distribution<float> logscale(-2, 1);
	std::vector<float> offset(dims), scale(dims);
	for (size_t i = 0; i < dims; i++)
	{
		offset[i] = g(rng);
		scale[i] = std::pow(10.0f, logscale(rng));
	}
	Model m{dims, std::vector<float>(n * dims), std::vector<float>(dims), std::vector<float>(dims)};
	sq8::Trainer t(dims);
	for (size_t k = 0; k < n; k++)
	{
		for (size_t i = 0; i < dims; i++)
			m.data[k * dims + i] = offset[i] + scale[i] * g(rng);
		t.Observe(&m.data[k * dims]);
	}
	t.Finish(m.lo.data(), m.step.data());
	return m;
}

/* Double-precision reference over the decoded vector: squared L2 or negative inner product. */
double
Reference(sq8::Metric metric, const float *q, const float *x, size_t dims)
{
	double s = 0;
	for (size_t i = 0; i < dims; i++)
	{
		if (metric == sq8::Metric::kL2Squared)
		{
			double d = static_cast<double>(q[i]) - x[i];
			s += d * d;
		}
		else if (metric == sq8::Metric::kL1)
			s += std::fabs(static_cast<double>(q[i]) - x[i]);
		else
			s -= static_cast<double>(q[i]) * x[i];
	}
	return s;
}

/* Size of the rounding error a float computation of the distance may make, relative to 1: for L2
 * the sum itself (no cancellation) plus a floor from the squares of q and x; for inner product
 * the magnitude of the terms before cancellation (q*lo and q*x both enter the kernel). */
double
Magnitude(sq8::Metric metric, const float *q, const float *x, const float *lo, size_t dims)
{
	double s = 0;
	for (size_t i = 0; i < dims; i++)
	{
		if (metric == sq8::Metric::kL2Squared)
			s += 1e-2 * (static_cast<double>(q[i]) * q[i] + static_cast<double>(x[i]) * x[i]);
		else if (metric == sq8::Metric::kL1)
			s += 1e-1 * (std::fabs(static_cast<double>(q[i])) + std::fabs(x[i]));
		else
			s += std::fabs(static_cast<double>(q[i])) * (std::fabs(lo[i]) + std::fabs(x[i]));
	}
	return s;
}

/* Prepares q for the metric into scratch. */
sq8::PreparedQuery
Prepare(sq8::Metric metric, const float *q, const Model &m, std::vector<float> *scratch)
{
	scratch->assign(sq8::ScratchFloats(m.dims), 0.0f);
	sq8::PreparedQuery pq;
	if (metric == sq8::Metric::kL2Squared)
		sq8::PrepareL2(q, m.lo.data(), m.step.data(), m.dims, scratch->data(), &pq);
	else if (metric == sq8::Metric::kL1)
		sq8::PrepareL1(q, m.lo.data(), m.step.data(), m.dims, scratch->data(), &pq);
	else
		sq8::PrepareNegInnerProduct(q, m.lo.data(), m.step.data(), m.dims, scratch->data(), &pq);
	return pq;
}

} // namespace

TEST(Sq8Train, FinishGivesMinAndRangeOver255)
{
	float v0[] = {0, -2, 10};
	float v1[] = {255, 3, 10.5f};
	float v2[] = {100, 0, 11};
	sq8::Trainer t(3);
	t.Observe(v0);
	t.Observe(v1);
	t.Observe(v2);
	EXPECT_EQ(t.Count(), 3u);
	float lo[3], step[3];
	t.Finish(lo, step);
	EXPECT_FLOAT_EQ(lo[0], 0);
	EXPECT_FLOAT_EQ(step[0], 1);
	EXPECT_FLOAT_EQ(lo[1], -2);
	EXPECT_FLOAT_EQ(step[1], 5.0f / 255);
	EXPECT_FLOAT_EQ(lo[2], 10);
	EXPECT_FLOAT_EQ(step[2], 1.0f / 255);
	/* the ends of the trained range are codes 0 and 255 */
	uint8_t c[3];
	sq8::Encode(v0, lo, step, 3, c);
	EXPECT_EQ(c[0], 0);
	EXPECT_EQ(c[1], 0);
	EXPECT_EQ(c[2], 0);
	sq8::Encode(v1, lo, step, 3, c);
	EXPECT_EQ(c[0], 255);
	EXPECT_EQ(c[1], 255);
	EXPECT_TRUE(c[2] == 127 || c[2] == 128) << int(c[2]); /* 0.5 / (1/255): a tie, up to rounding */
}

TEST(Sq8Train, MergeEqualsObservingEverything)
{
	Model m = TrainedModel(33, 200, 11);
	sq8::Trainer a(33), b(33);
	for (size_t k = 0; k < 200; k++)
		(k % 3 ? a : b).Observe(&m.data[k * 33]);
	ASSERT_TRUE(a.Merge(b));
	EXPECT_EQ(a.Count(), 200u);
	std::vector<float> lo(33), step(33);
	a.Finish(lo.data(), step.data());
	EXPECT_EQ(lo, m.lo);
	EXPECT_EQ(step, m.step);
	sq8::Trainer other(34);
	EXPECT_FALSE(a.Merge(other));
	EXPECT_EQ(a.Count(), 200u);
}

TEST(Sq8Train, ConstantDimensionHasPositiveStepAndDecodesExactly)
{
	const size_t dims = 4;
	sq8::Trainer t(dims);
	float v0[] = {0.3f, 1e30f, -7.25f, 1.0f};
	float v1[] = {0.3f, 1e30f, -7.25f, NAN};
	float v2[] = {0.3f, 1e30f, 1e-40f, INFINITY}; /* non-finite elements are not observed */
	t.Observe(v0);
	t.Observe(v1);
	float lo[dims], step[dims];
	t.Finish(lo, step);
	for (size_t i = 0; i < dims; i++)
	{
		EXPECT_GT(step[i], 0.0f) << i;
		EXPECT_TRUE(std::isfinite(step[i])) << i;
	}
	uint8_t c[dims];
	float out[dims];
	sq8::Encode(v0, lo, step, dims, c);
	sq8::Decode(c, lo, step, dims, out);
	for (size_t i = 0; i < dims; i++)
	{
		EXPECT_EQ(c[i], 0) << i;
		EXPECT_EQ(out[i], v0[i]) << i; /* exact */
	}
	/* a range too small for a normal step (1e-40 / 255) is treated as constant, not divided by */
	sq8::Trainer tiny(1);
	float z = 0.0f, d = 1e-40f;
	tiny.Observe(&z);
	tiny.Observe(&d);
	tiny.Observe(&v2[2]);
	tiny.Finish(lo, step);
	EXPECT_EQ(lo[0], 0.0f);
	EXPECT_GE(step[0], FLT_MIN);
	/* nothing observed: lo 0, step 1 */
	sq8::Trainer empty(2);
	empty.Finish(lo, step);
	EXPECT_EQ(lo[0], 0.0f);
	EXPECT_EQ(step[1], 1.0f);
}

TEST(Sq8Encode, RoundTripWithinHalfStep)
{
	for (size_t dims : {1, 17, 300})
	{
		Model m = TrainedModel(dims, 500, 3);
		std::vector<uint8_t> c(dims);
		std::vector<float> out(dims);
		float worst = 0; /* largest error seen, in steps */
		for (size_t k = 0; k < 500; k++)
		{
			const float *v = &m.data[k * dims];
			sq8::Encode(v, m.lo.data(), m.step.data(), dims, c.data());
			sq8::Decode(c.data(), m.lo.data(), m.step.data(), dims, out.data());
			for (size_t i = 0; i < dims; i++)
			{
				float err = std::fabs(out[i] - v[i]);
				/* float rounding of v - lo, of the division and of lo + step*code */
				float eps = 1e-4f * m.step[i] + 2 * FLT_EPSILON * std::fabs(v[i]);
				ASSERT_LE(err, m.step[i] / 2 + eps)
					<< "dims " << dims << " vec " << k << " dim " << i;
				worst = std::max(worst, err / m.step[i]);
			}
		}
		EXPECT_GT(worst, 0.45f) << "the test data should reach close to the bound";
	}
}

TEST(Sq8Encode, ClampsOutsideTrainedRange)
{
	float lo[] = {-1, 0, 2, 5};
	float step[] = {0.01f, 1, 0.5f, 0.25f};
	float v[] = {-1.5f, 300, -INFINITY, NAN};
	uint8_t c[4];
	sq8::Encode(v, lo, step, 4, c);
	EXPECT_EQ(c[0], 0);
	EXPECT_EQ(c[1], 255);
	EXPECT_EQ(c[2], 0);
	EXPECT_EQ(c[3], 0); /* NaN cannot reach the index (vectors are checked finite); it codes 0 */
	float w[] = {3.0f, -1e30f, INFINITY, 5.0f + 0.25f * 254.6f};
	sq8::Encode(w, lo, step, 4, c);
	EXPECT_EQ(c[0], 255);
	EXPECT_EQ(c[1], 0);
	EXPECT_EQ(c[2], 255);
	EXPECT_EQ(c[3], 255);
	float out[4];
	sq8::Decode(c, lo, step, 4, out);
	EXPECT_FLOAT_EQ(out[0], -1 + 0.01f * 255);
	EXPECT_FLOAT_EQ(out[1], 0);
	EXPECT_FLOAT_EQ(out[2], 2 + 0.5f * 255);
}

TEST(Sq8Distance, EveryKernelMatchesDecodedReference)
{
	for (size_t dims : kTailDims)
	{
		Model m = TrainedModel(dims, 64, static_cast<uint32_t>(dims));
		std::mt19937 rng(static_cast<uint32_t>(dims) + 1000);
		std::uniform_int_distribution<int> code(0, 255);
		std::normal_distribution<float> g(0, 1);
		std::vector<float> q(dims), x(dims), scratch;
		std::vector<uint8_t> c(dims);
		for (int trial = 0; trial < 20; trial++)
		{
			for (size_t i = 0; i < dims; i++)
			{
				/* codes over the full range, and half the time a real vector's codes */
				c[i] = static_cast<uint8_t>(code(rng));
				q[i] = m.lo[i] + m.step[i] * 128 + m.step[i] * 100 * g(rng);
			}
			if (trial % 2)
				sq8::Encode(&m.data[(trial % 64) * dims], m.lo.data(), m.step.data(), dims,
							c.data());
			sq8::Decode(c.data(), m.lo.data(), m.step.data(), dims, x.data());
			for (auto metric :
				 {sq8::Metric::kL2Squared, sq8::Metric::kNegInnerProduct, sq8::Metric::kL1})
			{
				sq8::PreparedQuery pq = Prepare(metric, q.data(), m, &scratch);
				double ref = Reference(metric, q.data(), x.data(), dims);
				double tol = 1e-4 * std::max(std::fabs(ref), Magnitude(metric, q.data(), x.data(),
																	   m.lo.data(), dims));
				/* the dispatched kernel, also against the float32 kernels over the decoded vector
				 */
				float fast =
					metric == sq8::Metric::kL2Squared ? FastL2Squared(q.data(), x.data(), dims)
					: metric == sq8::Metric::kL1      ? FastL1(q.data(), x.data(), dims)
												 : FastNegInnerProduct(q.data(), x.data(), dims);
				EXPECT_NEAR(sq8::Distance(pq, c.data()), ref, tol) << dims;
				EXPECT_NEAR(sq8::Distance(pq, c.data()), fast, tol) << dims;
				for (const char *family : kFamilies)
				{
					if (!sq8::SelectKernel(family, &pq))
						continue;
					EXPECT_NEAR(sq8::Distance(pq, c.data()), ref, tol)
						<< family << " dims " << dims << " metric " << static_cast<int>(metric);
				}
			}
		}
	}
}

TEST(Sq8Distance, ScalarAndDispatchedKernelsAgree)
{
	std::vector<size_t> lengths;
	for (size_t n = 1; n <= 70; n++)
		lengths.push_back(n);
	lengths.insert(lengths.end(), std::begin(kTailDims), std::end(kTailDims));
	int simd_families = 0;
	for (size_t dims : lengths)
	{
		Model m = TrainedModel(dims, 16, 77);
		std::vector<float> scratch;
		std::vector<uint8_t> c(dims);
		for (size_t k = 0; k < 2; k++)
		{
			const float *q = &m.data[k * dims];
			sq8::Encode(&m.data[(k + 5) * dims], m.lo.data(), m.step.data(), dims, c.data());
			for (auto metric :
				 {sq8::Metric::kL2Squared, sq8::Metric::kNegInnerProduct, sq8::Metric::kL1})
			{
				sq8::PreparedQuery pq = Prepare(metric, q, m, &scratch);
				float dispatched = sq8::Distance(pq, c.data());
				ASSERT_TRUE(sq8::SelectKernel("scalar", &pq));
				float scalar = sq8::Distance(pq, c.data());
				std::vector<float> x(dims);
				sq8::Decode(c.data(), m.lo.data(), m.step.data(), dims, x.data());
				double tol = 1e-5 * std::max(std::fabs(static_cast<double>(scalar)),
											 Magnitude(metric, q, x.data(), m.lo.data(), dims));
				EXPECT_NEAR(dispatched, scalar, tol) << sq8::KernelName() << " dims " << dims
													 << " metric " << static_cast<int>(metric);
				for (const char *family : kFamilies)
				{
					if (!sq8::SelectKernel(family, &pq))
						continue;
					simd_families += std::string(family) != "scalar";
					EXPECT_NEAR(sq8::Distance(pq, c.data()), scalar, tol) << family << " " << dims;
				}
			}
		}
	}
	/* on x86-64 the dispatcher should find something better than scalar on any recent CPU; a
	 * "scalar" here means the SIMD kernels went untested, which the log should say */
	RecordProperty("sq8_kernel", sq8::KernelName());
	if (simd_families == 0)
		GTEST_SKIP() << "no SIMD kernel on this CPU: only the scalar kernel was checked";
}

TEST(Sq8Select, UnknownOrUnsupportedFamilyLeavesQueryAlone)
{
	Model m = TrainedModel(8, 4, 5);
	std::vector<float> scratch;
	sq8::PreparedQuery pq = Prepare(sq8::Metric::kL2Squared, m.data.data(), m, &scratch);
	sq8::Kernel before = pq.kernel;
	EXPECT_FALSE(sq8::SelectKernel("neon", &pq));
	EXPECT_EQ(pq.kernel, before);
	EXPECT_TRUE(sq8::SelectKernel("scalar", &pq));
	EXPECT_TRUE(sq8::SelectKernel(sq8::KernelName(), &pq));
	EXPECT_EQ(pq.kernel, before);
}

TEST(Sq8Distance, L2WithinHalfStepNormOfExact)
{
	/* The decoded vector is within ||step/2|| of x (each coordinate within step_i/2), so by the
	 * triangle inequality | ||q - decode(x)|| - ||q - x|| | <= ||step|| / 2. */
	for (size_t dims : {1, 7, 17, 128, 784})
	{
		Model m = TrainedModel(dims, 300, 21);
		double half_step_norm = 0;
		for (size_t i = 0; i < dims; i++)
			half_step_norm += static_cast<double>(m.step[i]) * m.step[i];
		half_step_norm = std::sqrt(half_step_norm) / 2;
		std::vector<float> scratch;
		std::vector<uint8_t> c(dims);
		double worst = 0; /* largest gap seen, as a fraction of the bound */
		for (size_t k = 0; k < 300; k++)
		{
			const float *q = &m.data[((k * 7 + 3) % 300) * dims];
			const float *x = &m.data[k * dims];
			sq8::Encode(x, m.lo.data(), m.step.data(), dims, c.data());
			sq8::PreparedQuery pq = Prepare(sq8::Metric::kL2Squared, q, m, &scratch);
			double approx = std::sqrt(std::max(0.0f, sq8::Distance(pq, c.data())));
			double exact = ExactL2(q, x, dims);
			double gap = std::fabs(approx - exact);
			ASSERT_LE(gap, half_step_norm * (1 + 1e-3) + 1e-4 * exact) << dims << " " << k;
			worst = std::max(worst, gap / half_step_norm);
		}
		EXPECT_GT(worst, 0.0) << dims;
	}
}

namespace
{

/* Share of queries whose true nearest neighbour (exact float distance) is among the top k by SQ8
 * distance, on a Gaussian mixture of n points in dims dimensions with per-dimension scales. */
double
RecallAtK(sq8::Metric metric, size_t dims, size_t n, size_t queries, size_t k, uint32_t seed)
{
	std::mt19937 rng(seed);
	std::normal_distribution<float> g(0, 1);
	std::uniform_real_distribution<float> logscale(-1, 1);
	std::uniform_int_distribution<size_t> pick(0, 15);
	std::vector<float> scale(dims), centres(16 * dims);
	for (size_t i = 0; i < dims; i++)
		scale[i] = std::pow(10.0f, logscale(rng));
	for (float &v : centres)
		v = g(rng);
	auto draw = [&](float *out)
	{
		const float *c = &centres[pick(rng) * dims];
		for (size_t i = 0; i < dims; i++)
			out[i] = scale[i] * (c[i] + 0.4f * g(rng));
	};
	std::vector<float> data(n * dims), query(queries * dims);
	sq8::Trainer t(dims);
	for (size_t j = 0; j < n; j++)
	{
		draw(&data[j * dims]);
		t.Observe(&data[j * dims]);
	}
	for (size_t j = 0; j < queries; j++)
		draw(&query[j * dims]);
	std::vector<float> lo(dims), step(dims), scratch(sq8::ScratchFloats(dims));
	t.Finish(lo.data(), step.data());
	std::vector<uint8_t> codes(n * dims);
	for (size_t j = 0; j < n; j++)
		sq8::Encode(&data[j * dims], lo.data(), step.data(), dims, &codes[j * dims]);

	size_t hits = 0;
	std::vector<std::pair<float, size_t>> approx(n);
	for (size_t qi = 0; qi < queries; qi++)
	{
		const float *q = &query[qi * dims];
		size_t truth = 0;
		double best = INFINITY;
		for (size_t j = 0; j < n; j++)
		{
			double d = metric == sq8::Metric::kL2Squared
						   ? ExactL2(q, &data[j * dims], dims)
						   : -ExactInnerProduct(q, &data[j * dims], dims);
			if (d < best)
			{
				best = d;
				truth = j;
			}
		}
		sq8::PreparedQuery pq;
		if (metric == sq8::Metric::kL2Squared)
			sq8::PrepareL2(q, lo.data(), step.data(), dims, scratch.data(), &pq);
		else
			sq8::PrepareNegInnerProduct(q, lo.data(), step.data(), dims, scratch.data(), &pq);
		for (size_t j = 0; j < n; j++)
			approx[j] = {sq8::Distance(pq, &codes[j * dims]), j};
		std::partial_sort(approx.begin(), approx.begin() + k, approx.end());
		for (size_t r = 0; r < k; r++)
			hits += approx[r].second == truth;
	}
	return static_cast<double>(hits) / queries;
}

} // namespace

TEST(Sq8Recall, TrueNearestNeighbourInTop10L2)
{
	double recall = RecallAtK(sq8::Metric::kL2Squared, 128, 2000, 50, 10, 2024);
	EXPECT_GE(recall, 0.98);
	/* the top 1 alone, for the log: how often the SQ8 order already has the answer first */
	double top1 = RecallAtK(sq8::Metric::kL2Squared, 128, 2000, 50, 1, 2024);
	std::printf("sq8 L2 recall: true NN in top 10 %.2f, at top 1 %.2f\n", recall, top1);
}

TEST(Sq8Recall, TrueNearestNeighbourInTop10InnerProduct)
{
	double recall = RecallAtK(sq8::Metric::kNegInnerProduct, 128, 2000, 50, 10, 2025);
	EXPECT_GE(recall, 0.98);
	double top1 = RecallAtK(sq8::Metric::kNegInnerProduct, 128, 2000, 50, 1, 2025);
	std::printf("sq8 IP recall: true NN in top 10 %.2f, at top 1 %.2f\n", recall, top1);
}

/* The caller-array training (used by the Postgres bridge) gives exactly Trainer's parameters. */
TEST(Sq8Train, RangeFunctionsEqualTrainer)
{
	const size_t dims = 37;
	std::mt19937 rng(5);
	std::normal_distribution<float> n(0.0f, 3.0f);
	vector_vault::sq8::Trainer t(dims);
	std::vector<float> mins(dims), maxs(dims), v(dims);
	vector_vault::sq8::StartRange(mins.data(), maxs.data(), dims);
	for (int k = 0; k < 500; k++)
	{
		for (size_t i = 0; i < dims; i++)
			v[i] = i == 3 ? 2.5f : (k == 7 && i == 5 ? NAN : n(rng));
		t.Observe(v.data());
		vector_vault::sq8::WidenRange(mins.data(), maxs.data(), v.data(), dims);
	}
	std::vector<float> lo1(dims), st1(dims), lo2(dims), st2(dims);
	t.Finish(lo1.data(), st1.data());
	vector_vault::sq8::ParamsFromRange(mins.data(), maxs.data(), dims, lo2.data(), st2.data());
	EXPECT_EQ(lo1, lo2);
	EXPECT_EQ(st1, st2);
	EXPECT_EQ(st2[3], 1.0f); /* the constant dimension */
}

/* SQ4: steps are sq8's times 17 (range / 15), codes pack two per byte (dimension 2j in the low
 * nibble of byte j), the SIMD and scalar unpack agree on bodies and tails, a round trip is
 * within half a step, and values outside the range clamp to codes 0 and 15. */
TEST(Sq4Encode, PackUnpackRoundTripWithinHalfStep)
{
	for (size_t dims : {1, 2, 31, 33, 300})
	{
		Model m = TrainedModel(dims, 500, 5);
		std::vector<float> step4(m.step);
		sq4::StepsFromSq8(step4.data(), dims);
		for (size_t i = 0; i < dims; i++)
			ASSERT_FLOAT_EQ(step4[i], m.step[i] * 17);
		std::vector<uint8_t> packed(sq4::PackedBytes(dims) + 1, 0xEE);
		std::vector<uint8_t> codes(dims);
		std::vector<float> out(dims);
		float worst = 0;
		for (size_t k = 0; k < 500; k++)
		{
			const float *v = &m.data[k * dims];
			sq4::Encode(v, m.lo.data(), step4.data(), dims, packed.data());
			ASSERT_EQ(packed[sq4::PackedBytes(dims)], 0xEE) << "wrote past the packed bytes";
			sq4::Unpack(packed.data(), dims, codes.data());
			for (size_t i = 0; i < dims; i++)
			{
				ASSERT_LE(codes[i], 15);
				uint8_t nib = i % 2 ? packed[i / 2] >> 4 : packed[i / 2] & 0x0F;
				ASSERT_EQ(codes[i], nib) << "dims " << dims << " dim " << i;
			}
			sq8::Decode(codes.data(), m.lo.data(), step4.data(), dims, out.data());
			for (size_t i = 0; i < dims; i++)
			{
				float err = std::fabs(out[i] - v[i]);
				float eps = 1e-4f * step4[i] + 2 * FLT_EPSILON * std::fabs(v[i]);
				ASSERT_LE(err, step4[i] / 2 + eps) << "dims " << dims << " dim " << i;
				worst = std::max(worst, err / step4[i]);
			}
		}
		EXPECT_GT(worst, 0.4f) << "the test data should reach close to the bound";
	}
	float lo[2] = {0, 0}, step[2] = {1, 1}, v[2] = {-5, 99};
	uint8_t p = 0;
	sq4::Encode(v, lo, step, 2, &p);
	EXPECT_EQ(p, 0xF0) << "below the range codes 0, above it 15";
}
