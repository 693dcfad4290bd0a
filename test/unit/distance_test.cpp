/* distance_test.cpp — exact distances against hand values; SIMD kernels against exact ones. */
#include "core/distance.h"
#include "core/half.h"
#include "core/half_distance.h"

#include <algorithm>
#include <cmath>
#include <cstring>
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

/* Every L1 kernel family this CPU runs, against a scalar double reference, for every tail
 * length (masked AVX-512 tails, 8- and 16-wide AVX2 loops); values of both signs and wide
 * magnitude so a lost sign bit or a dropped tail element shows. */
TEST(Distance, L1KernelsMatchScalarReference)
{
	std::mt19937 rng(11);
	std::uniform_real_distribution<float> u(-1, 1);
	int families = 0;
	for (const char *family : {"avx512f", "avx2", "scalar"})
	{
		DistanceKernel k = L1KernelFamily(family);
		if (k == nullptr)
			continue;
		families++;
		for (size_t n = 1; n <= 100; n++)
		{
			std::vector<float> a(n), b(n);
			for (size_t i = 0; i < n; i++)
			{
				a[i] = u(rng) * (i % 3 == 0 ? 100.0f : 1.0f);
				b[i] = u(rng);
			}
			double ref = 0;
			for (size_t i = 0; i < n; i++)
				ref += std::fabs(static_cast<double>(a[i]) - b[i]);
			EXPECT_NEAR(k(a.data(), b.data(), n), ref, 1e-5 * ref) << family << " n " << n;
			EXPECT_DOUBLE_EQ(ExactL1(a.data(), b.data(), n), ref) << n;
		}
	}
	EXPECT_GE(families, 1);
	EXPECT_EQ(L1KernelFamily("nonsense"), nullptr);
	float a[] = {1, -2, 3, 0.5f}, b[] = {-1, 2, 3, 0.5f};
	EXPECT_FLOAT_EQ(FastL1(a, b, 4), 6.0f);
	EXPECT_EQ(L1Kernel()(a, b, 4), FastL1(a, b, 4));
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

/* The dispatched exact kernels (AVX where present) give the very bits of the SSE2 baseline:
 * regression output must not depend on the CPU. Wide value ranges make rounding order visible. */
TEST(Distance, ExactKernelsBitIdenticalToBaseline)
{
	std::mt19937 rng(11);
	std::uniform_real_distribution<float> u(-1, 1);
	std::uniform_int_distribution<int> e(-20, 20);
	for (size_t n = 1; n <= 200; n++)
	{
		std::vector<float> a(n), b(n);
		for (size_t i = 0; i < n; i++)
		{
			a[i] = std::ldexp(u(rng), e(rng));
			b[i] = std::ldexp(u(rng), e(rng));
		}
		double l2 = ExactL2(a.data(), b.data(), n);
		double l2b = ExactL2Baseline(a.data(), b.data(), n);
		double ip = ExactInnerProduct(a.data(), b.data(), n);
		double ipb = ExactInnerProductBaseline(a.data(), b.data(), n);
		EXPECT_EQ(std::memcmp(&l2, &l2b, sizeof l2), 0) << n;
		EXPECT_EQ(std::memcmp(&ip, &ipb, sizeof ip), 0) << n;
	}
	/* positive control: a different summation order does change bits on such data */
	std::vector<float> a(64), b(64);
	for (size_t i = 0; i < 64; i++)
	{
		a[i] = std::ldexp(u(rng), e(rng));
		b[i] = std::ldexp(u(rng), e(rng));
	}
	int differ = 0;
	for (int trial = 0; trial < 50; trial++)
	{
		std::shuffle(a.begin(), a.end(), rng);
		double naive = 0;
		for (size_t i = 0; i < 64; i++)
			naive += static_cast<double>(a[i]) * b[i];
		double ip = ExactInnerProductBaseline(a.data(), b.data(), 64);
		differ += std::memcmp(&naive, &ip, sizeof ip) != 0;
	}
	EXPECT_GT(differ, 0);
}

/* Every half-kernel family this CPU runs equals the float32 kernel on the widened halves (same
 * scale), for lengths that exercise the SIMD bodies and tails. */
TEST(Distance, HalfKernelsMatchFloatKernelsOnWidenedHalves)
{
	std::mt19937 rng(5);
	std::uniform_real_distribution<float> u(-4, 4);
	int families = 0;
	for (const char *family : {"avx512f", "avx2", "scalar"})
	{
		HalfDistanceKernel l2, ip, l1;
		if (!HalfKernelFamily(family, &l2, &ip, &l1))
			continue;
		families++;
		for (size_t n = 1; n <= 70; n++)
		{
			std::vector<float> q(n), wide(n);
			std::vector<uint16_t> x(n);
			for (size_t i = 0; i < n; i++)
			{
				q[i] = u(rng);
				ASSERT_TRUE(FloatToHalf(u(rng), &x[i]));
				wide[i] = HalfToFloat(x[i]);
			}
			double rl2 = ExactL2(q.data(), wide.data(), n);
			double rip = ExactInnerProduct(q.data(), wide.data(), n);
			double rl1 = ExactL1(q.data(), wide.data(), n);
			EXPECT_NEAR(l2(q.data(), x.data(), n), rl2 * rl2, 1e-4 * (1 + rl2 * rl2)) << family;
			EXPECT_NEAR(ip(q.data(), x.data(), n), -rip, 1e-4 * (1 + std::fabs(rip))) << family;
			EXPECT_NEAR(l1(q.data(), x.data(), n), rl1, 1e-4 * (1 + rl1)) << family;
		}
	}
	EXPECT_GE(families, 2); /* scalar and at least the chosen one */
	HalfDistanceKernel l2, ip, l1;
	EXPECT_FALSE(HalfKernelFamily("nonsense", &l2, &ip, &l1));
}

/* WidenHalves (SIMD where the CPU has it) gives HalvesToFloats' exact floats, bodies and tails. */
TEST(Distance, WidenHalvesIsExact)
{
	std::mt19937 rng(9);
	std::uniform_int_distribution<int> bits(0, 0xFFFF);
	for (size_t n = 1; n <= 70; n++)
	{
		std::vector<uint16_t> h(n);
		for (auto &x : h)
		{
			x = static_cast<uint16_t>(bits(rng));
			if ((x & 0x7C00) == 0x7C00)
				x &= 0x83FF; /* no infinities or NaNs: a vector never holds them */
		}
		std::vector<float> a(n), b(n);
		WidenHalves(h.data(), n, a.data());
		HalvesToFloats(h.data(), n, b.data());
		EXPECT_EQ(memcmp(a.data(), b.data(), sizeof(float) * n), 0) << n;
	}
}
