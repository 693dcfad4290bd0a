/* distance_test.cpp — exact distances against hand values; SIMD kernels against exact ones. */
#include "core/distance.h"

#include <cmath>
#include <gtest/gtest.h>
#include <random>
#include <vector>

using namespace vector_vault;

TEST(Distance, ExactValues)
{
	float a[] = {1, 2, 3};
	float b[] = {4, 5, 6};
	EXPECT_DOUBLE_EQ(ExactL2(a, b, 3), std::sqrt(27.0));
	EXPECT_DOUBLE_EQ(ExactInnerProduct(a, b, 3), 32.0);
	EXPECT_DOUBLE_EQ(ExactL1(a, b, 3), 9.0);
	EXPECT_DOUBLE_EQ(ExactNorm(a, 3), std::sqrt(14.0));
	EXPECT_NEAR(ExactCosineDistance(a, b, 3), 1.0 - 32.0 / std::sqrt(14.0 * 77.0), 1e-12);
	float z[] = {0, 0, 0};
	EXPECT_TRUE(std::isnan(ExactCosineDistance(a, z, 3)));
	EXPECT_DOUBLE_EQ(ExactCosineDistance(a, a, 3), 0.0);
}

TEST(Distance, FastKernelsMatchExactForEveryLength)
{
	std::mt19937 rng(7);
	std::uniform_real_distribution<float> u(-1, 1);
	for (size_t n = 1; n <= 100; n++)
	{
		std::vector<float> a(n), b(n);
		for (size_t i = 0; i < n; i++)
		{
			a[i] = u(rng);
			b[i] = u(rng);
		}
		double l2 = ExactL2(a.data(), b.data(), n);
		EXPECT_NEAR(FastL2Squared(a.data(), b.data(), n), l2 * l2, 1e-4) << n;
		EXPECT_NEAR(FastNegInnerProduct(a.data(), b.data(), n),
					-ExactInnerProduct(a.data(), b.data(), n), 1e-4)
			<< n;
	}
	SUCCEED() << "kernel: " << FastKernelName();
}

TEST(Distance, Normalize)
{
	float v[] = {3, 4};
	ASSERT_TRUE(NormalizeVector(v, 2));
	EXPECT_FLOAT_EQ(v[0], 0.6f);
	EXPECT_FLOAT_EQ(v[1], 0.8f);
	float z[] = {0, 0};
	EXPECT_FALSE(NormalizeVector(z, 2));
}
