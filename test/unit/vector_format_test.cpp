/* vector_format_test.cpp — pgvector text and binary forms. */
#include "core/vector_format.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <gtest/gtest.h>
#include <vector>

using namespace vector_vault;

namespace
{

/* Parses text and returns the floats, or fails the test. */
std::vector<float>
Parse(const char *text)
{
	std::vector<float> out(64);
	size_t dims = 0;
	Status s = ParseVectorText(text, out.data(), out.size(), &dims);
	EXPECT_TRUE(s.ok()) << text << ": " << s.message();
	out.resize(dims);
	return out;
}

/* The failure code for text. */
Code
ParseCode(const char *text, size_t cap = 64)
{
	std::vector<float> out(cap);
	size_t dims = 0;
	return ParseVectorText(text, out.data(), cap, &dims).code();
}

} // namespace

TEST(VectorText, Parses)
{
	EXPECT_EQ(Parse("[1,2,3]"), (std::vector<float>{1, 2, 3}));
	EXPECT_EQ(Parse("  [ 1.5 , -2e3,3 ]  "), (std::vector<float>{1.5f, -2000.0f, 3}));
	EXPECT_EQ(Parse("[0]"), (std::vector<float>{0}));
}

TEST(VectorText, IntegerFastPathMatchesFloatParsing)
{
	/* Plain integers of up to 7 digits take a fast path; longer ones, signs, fractions and
	 * exponents go through from_chars. Both must give the float strtof gives. */
	const char *tokens[] = {"0",         "7",  "007", "255", "1000000", "9999999", "16777217",
							"123456789", "-5", "+5",  "3.0", "12e2",    "0000001", "99999999"};
	for (const char *t : tokens)
	{
		std::string text = std::string("[") + t + ", " + t + " ,1]";
		std::vector<float> got = Parse(text.c_str());
		float want = std::strtof(t, nullptr);
		ASSERT_EQ(got.size(), 3u) << text;
		EXPECT_EQ(got[0], want) << t;
		EXPECT_EQ(got[1], want) << t;
	}
	EXPECT_EQ(ParseCode("[12abc]"), Code::kInvalidInput);
	EXPECT_EQ(ParseCode("[12 3]"), Code::kInvalidInput);
	EXPECT_EQ(ParseCode("[1,2,3]", 2), Code::kOutOfRange);
}

TEST(VectorText, Rejects)
{
	EXPECT_EQ(ParseCode(""), Code::kInvalidInput);
	EXPECT_EQ(ParseCode("1,2"), Code::kInvalidInput);
	EXPECT_EQ(ParseCode("[]"), Code::kInvalidInput);
	EXPECT_EQ(ParseCode("[1,]"), Code::kInvalidInput);
	EXPECT_EQ(ParseCode("[,1]"), Code::kInvalidInput);
	EXPECT_EQ(ParseCode("[1 2]"), Code::kInvalidInput);
	EXPECT_EQ(ParseCode("[1,2"), Code::kInvalidInput);
	EXPECT_EQ(ParseCode("[1,2]x"), Code::kInvalidInput);
	EXPECT_EQ(ParseCode("[a]"), Code::kInvalidInput);
	EXPECT_EQ(ParseCode("[NaN]"), Code::kInvalidInput);
	EXPECT_EQ(ParseCode("[inf]"), Code::kInvalidInput);
	EXPECT_EQ(ParseCode("[-Infinity]"), Code::kInvalidInput);
	EXPECT_EQ(ParseCode("[1e39]"), Code::kOutOfRange);
	EXPECT_EQ(ParseCode("[1e-50]"), Code::kOutOfRange);
	EXPECT_EQ(ParseCode("[1,2,3]", 2), Code::kOutOfRange);
}

TEST(VectorText, ErrorsNeverEchoElements)
{
	std::vector<float> out(8);
	size_t dims;
	Status s = ParseVectorText("[123456.75,NaN]", out.data(), 8, &dims);
	ASSERT_FALSE(s.ok());
	EXPECT_EQ(strstr(s.message(), "123456"), nullptr);
	EXPECT_NE(strstr(s.message(), "element 2"), nullptr);
}

TEST(VectorText, FormatsShortestRoundTrip)
{
	float v[] = {1.0f, 0.1f, -2.5f, 1e-5f, 3.4028235e38f};
	std::string s;
	FormatVectorText(v, 5, &s);
	EXPECT_EQ(s, "[1,0.1,-2.5,1e-05,3.4028235e+38]");
	auto back = Parse(s.c_str());
	ASSERT_EQ(back.size(), 5u);
	EXPECT_EQ(memcmp(back.data(), v, sizeof(v)), 0);
	char small[4];
	EXPECT_EQ(FormatVectorTextBuf(v, 5, small, sizeof(small)), 0u);
}

TEST(VectorBinary, RoundTripAndValidation)
{
	float v[] = {1.0f, -0.5f, 42.0f};
	std::vector<uint8_t> bin(VectorBinarySize(3));
	FormatVectorBinary(v, 3, bin.data());
	EXPECT_EQ(bin[0], 0);
	EXPECT_EQ(bin[1], 3);
	float out[8];
	size_t dims = 0;
	ASSERT_TRUE(ParseVectorBinary(bin.data(), bin.size(), out, 8, &dims).ok());
	EXPECT_EQ(dims, 3u);
	EXPECT_EQ(memcmp(out, v, sizeof(v)), 0);
	EXPECT_FALSE(ParseVectorBinary(bin.data(), bin.size() - 1, out, 8, &dims).ok());
	EXPECT_EQ(ParseVectorBinary(bin.data(), bin.size(), out, 2, &dims).code(), Code::kOutOfRange);
	bin[3] = 1;
	EXPECT_FALSE(ParseVectorBinary(bin.data(), bin.size(), out, 8, &dims).ok());
	bin[3] = 0;
	float nan = NAN;
	FormatVectorBinary(&nan, 1, bin.data());
	EXPECT_FALSE(ParseVectorBinary(bin.data(), VectorBinarySize(1), out, 8, &dims).ok());
}
