/* half_test.cpp — binary16 conversion: exhaustive half->float, every tie, overflow and underflow
 * edges, and random floats against a brute-force nearest-half reference (and F16C's instruction
 * where the CPU has it). */
#include "core/half.h"

#include <cmath>
#include <cstring>
#include <gtest/gtest.h>
#include <immintrin.h>
#include <random>
#include <string>

using namespace vector_vault;

namespace
{

/* The value a finite half denotes, from the definition (double). */
double
HalfValue(uint16_t h)
{
	int e = (h >> 10) & 0x1f;
	int m = h & 0x3ff;
	double v = e == 0 ? std::ldexp(m, -24) : std::ldexp(1024 + m, e - 25);
	return (h & 0x8000) ? -v : v;
}

/* Nearest half to a finite float of magnitude < 65520 by binary search over the positive
 * halves (their bit patterns are ordered like their values), ties to the even pattern. */
uint16_t
ReferenceHalf(float f)
{
	double a = std::fabs(static_cast<double>(f));
	int lo = 0, hi = 0x7bff;
	while (lo < hi)
	{
		int mid = (lo + hi + 1) / 2;
		if (HalfValue(static_cast<uint16_t>(mid)) <= a)
			lo = mid;
		else
			hi = mid - 1;
	}
	uint16_t h = static_cast<uint16_t>(lo);
	if (lo < 0x7bff)
	{
		double below = a - HalfValue(h), above = HalfValue(static_cast<uint16_t>(lo + 1)) - a;
		if (above < below || (above == below && (h & 1)))
			h++;
	}
	return static_cast<uint16_t>(h | (std::signbit(f) ? 0x8000 : 0));
}

/* F16C's conversion, round to nearest even; false when the CPU lacks F16C. */
__attribute__((target("f16c"))) uint16_t
F16c(float f)
{
	return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
}

} // namespace

TEST(Half, EveryHalfConvertsExactlyAndRoundTrips)
{
	for (uint32_t h = 0; h <= 0xffff; h++)
	{
		uint16_t x = static_cast<uint16_t>(h);
		float f = HalfToFloat(x);
		int e = (h >> 10) & 0x1f;
		if (e == 31)
		{
			EXPECT_TRUE((h & 0x3ff) ? std::isnan(f) : std::isinf(f)) << h;
			uint16_t out = 0;
			EXPECT_FALSE(FloatToHalf(f, &out)) << h;
			continue;
		}
		EXPECT_EQ(static_cast<double>(f), HalfValue(x)) << h;
		uint16_t back = 0;
		ASSERT_TRUE(FloatToHalf(f, &back)) << h;
		EXPECT_EQ(back, x) << h; /* signed zeros included */
	}
}

TEST(Half, TiesGoToEvenAndNeighboursToTheNearer)
{
	int ties = 0;
	for (uint32_t h = 0; h < 0x7bff; h++)
	{
		double lo = HalfValue(static_cast<uint16_t>(h)),
			   hi = HalfValue(static_cast<uint16_t>(h + 1));
		float mid = static_cast<float>((lo + hi) / 2);
		ASSERT_EQ(static_cast<double>(mid), (lo + hi) / 2) << "midpoint must be a float";
		uint16_t even = static_cast<uint16_t>((h & 1) ? h + 1 : h), out = 0;
		for (float s : {1.0f, -1.0f})
		{
			ASSERT_TRUE(FloatToHalf(s * mid, &out));
			EXPECT_EQ(out, static_cast<uint16_t>(even | (s < 0 ? 0x8000 : 0))) << h;
			ASSERT_TRUE(FloatToHalf(s * std::nextafter(mid, 0.0f), &out));
			EXPECT_EQ(out & 0x7fff, h) << h;
			ASSERT_TRUE(FloatToHalf(s * std::nextafter(mid, 1e9f), &out));
			EXPECT_EQ(out & 0x7fff, h + 1) << h;
		}
		ties++;
	}
	EXPECT_EQ(ties, 0x7bff);
}

TEST(Half, OverflowIsAnErrorNotInfinity)
{
	uint16_t out = 0;
	ASSERT_TRUE(FloatToHalf(65504.0f, &out));
	EXPECT_EQ(out, 0x7bff);
	/* just below the half-way point to 65536 rounds down to the largest half */
	ASSERT_TRUE(FloatToHalf(std::nextafter(65520.0f, 0.0f), &out));
	EXPECT_EQ(out, 0x7bff);
	ASSERT_TRUE(FloatToHalf(-std::nextafter(65520.0f, 0.0f), &out));
	EXPECT_EQ(out, 0xfbff);
	out = 0x1234;
	EXPECT_FALSE(FloatToHalf(65520.0f, &out));
	EXPECT_FALSE(FloatToHalf(-65520.0f, &out));
	EXPECT_FALSE(FloatToHalf(1e10f, &out));
	EXPECT_FALSE(FloatToHalf(3.4e38f, &out));
	EXPECT_FALSE(FloatToHalf(INFINITY, &out));
	EXPECT_FALSE(FloatToHalf(-INFINITY, &out));
	EXPECT_FALSE(FloatToHalf(NAN, &out));
	EXPECT_EQ(out, 0x1234) << "a failed conversion writes nothing";

	float v[] = {1, 2, 70000, 4};
	uint16_t h[4];
	Status st = FloatsToHalves(v, 4, h);
	EXPECT_EQ(st.code(), Code::kOutOfRange);
	EXPECT_NE(std::string(st.message()).find("element 3"), std::string::npos) << st.message();
	EXPECT_EQ(std::string(st.message()).find("70000"), std::string::npos) << "no value in errors";
	v[2] = NAN;
	EXPECT_EQ(FloatsToHalves(v, 4, h).code(), Code::kInvalidInput);
	v[2] = -INFINITY;
	EXPECT_EQ(FloatsToHalves(v, 4, h).code(), Code::kInvalidInput);
	v[2] = 3;
	ASSERT_TRUE(FloatsToHalves(v, 4, h).ok());
	float back[4];
	HalvesToFloats(h, 4, back);
	EXPECT_EQ(std::memcmp(back, v, sizeof v), 0);
}

TEST(Half, UnderflowRoundsToSignedZeroOrSmallestSubnormal)
{
	uint16_t out = 0xffff;
	const float tiny = std::ldexp(1.0f, -25); /* half of the smallest subnormal: a tie */
	ASSERT_TRUE(FloatToHalf(tiny, &out));
	EXPECT_EQ(out, 0x0000);
	ASSERT_TRUE(FloatToHalf(std::nextafter(tiny, 1.0f), &out));
	EXPECT_EQ(out, 0x0001);
	ASSERT_TRUE(FloatToHalf(-1e-10f, &out));
	EXPECT_EQ(out, 0x8000);
	ASSERT_TRUE(FloatToHalf(std::ldexp(1.0f, -24) * 1.5f, &out)); /* tie between 1 and 2: 2 */
	EXPECT_EQ(out, 0x0002);
	ASSERT_TRUE(FloatToHalf(std::ldexp(1.0f, -14), &out)); /* smallest normal */
	EXPECT_EQ(out, 0x0400);
	/* the largest subnormal plus more than half a unit rounds into the normals */
	ASSERT_TRUE(FloatToHalf(std::ldexp(1023.75f, -24), &out));
	EXPECT_EQ(out, 0x0400);
}

TEST(Half, RandomFloatsMatchReferenceAndF16c)
{
	__builtin_cpu_init();
	bool f16c = __builtin_cpu_supports("f16c");
	std::mt19937 rng(5);
	std::uniform_int_distribution<uint32_t> bits(0, 0xffffffffu);
	int checked = 0;
	for (int i = 0; i < 400000; i++)
	{
		uint32_t u = bits(rng);
		/* half the draws from the exponents binary16 covers, so most are in range */
		if (i % 2)
			u = (u & 0x807fffffu) | ((100u + (u >> 23) % 45u) << 23);
		float f;
		std::memcpy(&f, &u, sizeof f);
		uint16_t out = 0;
		bool ok = FloatToHalf(f, &out);
		if (!std::isfinite(f) || std::fabs(f) >= 65520.0f)
		{
			EXPECT_FALSE(ok) << u;
			continue;
		}
		ASSERT_TRUE(ok) << u;
		EXPECT_EQ(out, ReferenceHalf(f)) << std::hex << u;
		if (f16c)
		{
			EXPECT_EQ(out, F16c(f)) << std::hex << u;
		}
		checked++;
	}
	EXPECT_GT(checked, 150000);
	RecordProperty("f16c_compared", f16c ? "yes" : "no");
}
