/* metric_test.cpp — one meaning per metric (core/metric.h): the kernel each metric picks, the
 * normalisation cosine needs, and the sq8 kernel on the same scale as the float32 kernel (an
 * insert compares the two; for cosine the sq8 side was once squared L2 against a float32
 * negative inner product). */
#include "core/metric.h"

#include <cmath>
#include <gtest/gtest.h>
#include <random>
#include <vector>

using namespace vector_vault;

namespace
{

const Metric kAll[] = {Metric::kL2, Metric::kInnerProduct, Metric::kCosine, Metric::kL1};

/* n random vectors of dims floats, prepared for the metric (unit length under cosine). */
std::vector<float>
Vectors(Metric metric, size_t dims, size_t n, uint32_t seed)
{
	std::mt19937 rng(seed);
	std::normal_distribution<float> g(0, 1);
	std::vector<float> v(n * dims);
	for (float &x : v)
		x = g(rng);
	for (size_t k = 0; k < n; k++)
		EXPECT_TRUE(PrepareForMetric(metric, &v[k * dims], dims));
	return v;
}

} // namespace

TEST(Metric, KnownIdsAreTheFourOpclassMetrics)
{
	EXPECT_FALSE(IsKnownMetric(0));
	for (Metric m : kAll)
		EXPECT_TRUE(IsKnownMetric(static_cast<int>(m)));
	EXPECT_FALSE(IsKnownMetric(5));
}

TEST(Metric, KernelsAreTheDocumentedDistances)
{
	const float a[3] = {1, 2, 3}, b[3] = {3, 0, 4};
	EXPECT_FLOAT_EQ(KernelFor(Metric::kL2)(a, b, 3), 4 + 4 + 1);
	EXPECT_FLOAT_EQ(KernelFor(Metric::kInnerProduct)(a, b, 3), -(3 + 0 + 12));
	EXPECT_FLOAT_EQ(KernelFor(Metric::kCosine)(a, b, 3), -(3 + 0 + 12));
	EXPECT_FLOAT_EQ(KernelFor(Metric::kL1)(a, b, 3), 2 + 2 + 1);
}

TEST(Metric, OnlyCosineNormalisesAndRefusesZero)
{
	float v[2] = {3, 4};
	EXPECT_TRUE(PrepareForMetric(Metric::kCosine, v, 2));
	EXPECT_FLOAT_EQ(v[0], 0.6f);
	EXPECT_FLOAT_EQ(v[1], 0.8f);
	float zero[2] = {0, 0};
	EXPECT_FALSE(PrepareForMetric(Metric::kCosine, zero, 2));
	for (Metric m : {Metric::kL2, Metric::kInnerProduct, Metric::kL1})
	{
		float w[2] = {3, 4};
		EXPECT_TRUE(PrepareForMetric(m, w, 2));
		EXPECT_EQ(w[0], 3.0f);
		float z[2] = {0, 0};
		EXPECT_TRUE(PrepareForMetric(m, z, 2)) << static_cast<int>(m);
	}
}

/* For every metric, the sq8 distance of a query to an encoded vector equals the metric's float32
 * kernel on the decoded vector (up to rounding): the two can be compared in one search. */
TEST(Metric, Sq8DistanceIsOnTheKernelsScale)
{
	const size_t dims = 64, n = 200;
	for (Metric m : kAll)
	{
		std::vector<float> data = Vectors(m, dims, n, 7);
		sq8::Trainer t(dims);
		for (size_t k = 0; k < n; k++)
			t.Observe(&data[k * dims]);
		std::vector<float> lo(dims), step(dims), scratch(sq8::ScratchFloats(dims)), dec(dims);
		t.Finish(lo.data(), step.data());
		std::vector<float> q = Vectors(m, dims, 1, 99);
		sq8::PreparedQuery pq;
		PrepareSq8ForMetric(m, q.data(), lo.data(), step.data(), dims, scratch.data(), &pq);
		std::vector<uint8_t> codes(dims);
		for (size_t k = 0; k < 20; k++)
		{
			sq8::Encode(&data[k * dims], lo.data(), step.data(), dims, codes.data());
			sq8::Decode(codes.data(), lo.data(), step.data(), dims, dec.data());
			float want = KernelFor(m)(q.data(), dec.data(), dims);
			float got = sq8::Distance(pq, codes.data());
			EXPECT_NEAR(got, want, 1e-3f * (1 + std::fabs(want)))
				<< "metric " << static_cast<int>(m) << ", vector " << k;
		}
	}
}
