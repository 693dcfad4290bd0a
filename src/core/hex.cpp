/* hex.cpp — hexadecimal digits (see hex.h). */
#include "core/hex.h"

namespace vector_vault
{

/* Value of a lower-case hex digit, or -1. */
int
HexDigit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Value of a hex digit of either case, or -1. */
int
HexDigitAnyCase(char c)
{
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return HexDigit(c);
}

/* Writes n bytes as 2n lower-case hex digits (no terminator). */
void
EncodeHexLower(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++)
	{
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
}

} // namespace vector_vault
