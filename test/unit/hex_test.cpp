/* hex_test.cpp — the core's hex digits against an independent reference. */
#include "core/hex.h"

#include <cctype>
#include <cstdlib>
#include <gtest/gtest.h>

#include "test_util.h"

using namespace vector_vault;

/* Every char: HexDigit takes exactly 0-9a-f, HexDigitAnyCase also A-F, with strtol's values. */
TEST(Hex, DigitsOfEveryChar)
{
	for (int i = 0; i < 256; i++)
	{
		char c = static_cast<char>(i);
		char s[2] = {c, '\0'};
		bool lower = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
		bool upper = c >= 'A' && c <= 'F';
		int want = (lower || upper) ? static_cast<int>(strtol(s, nullptr, 16)) : -1;
		EXPECT_EQ(HexDigit(c), lower ? want : -1) << i;
		EXPECT_EQ(HexDigitAnyCase(c), want) << i;
	}
}

/* Encoding matches the reference for every byte value, and writes exactly 2n chars. */
TEST(Hex, EncodeEveryByte)
{
	uint8_t bytes[256];
	for (int i = 0; i < 256; i++)
		bytes[i] = static_cast<uint8_t>(i);
	char out[513];
	out[512] = 'X';
	EncodeHexLower(bytes, 256, out);
	EXPECT_EQ(std::string(out, 512), Hex(bytes, 256));
	EXPECT_EQ(out[512], 'X');
}
