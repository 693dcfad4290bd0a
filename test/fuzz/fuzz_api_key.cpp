/*
 * fuzz_api_key.cpp — libFuzzer target for ParseApiKey (core/api_key.h), which reads what an
 * application passes to vault.login() before any catalog lookup.
 *
 * Properties:
 *   - no crash, no read outside the buffer (the input has no terminator), no UB (ASan + UBSan);
 *   - success exactly when the text is vv_<16 hex>_<40 hex>_<8 hex>, lower case, and the checksum
 *     is the CRC-32 of everything before the last '_' (an independent check here);
 *   - a parsed key formats back to the identical text;
 *   - a failure's message contains no run of eight or more hex digits (no secret echoed);
 *   - any id and secret taken from the input format to a key that parses back to them.
 */
#include "core/api_key.h"
#include "fuzz_util.h"

#include <cctype>
#include <cstdint>
#include <cstring>
#include <vector>

using namespace vector_vault;
using namespace vector_vault::fuzz;

namespace
{

/* True for a lower-case hex digit. */
bool
LowerHex(uint8_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* The documented format, checked independently of the parser. */
bool
ReferenceValid(const uint8_t *t, size_t n)
{
	if (n != kApiKeyLength || memcmp(t, "vv_", 3) != 0)
		return false;
	size_t u1 = 3 + kApiKeyIdHex, u2 = u1 + 1 + kApiKeySecretHex;
	if (t[u1] != '_' || t[u2] != '_')
		return false;
	for (size_t i = 3; i < n; i++)
		if (i != u1 && i != u2 && !LowerHex(t[i]))
			return false;
	uint32_t want = 0;
	for (size_t i = u2 + 1; i < n; i++)
		want = want * 16 + static_cast<uint32_t>(t[i] <= '9' ? t[i] - '0' : t[i] - 'a' + 10);
	return want == Crc32(t, u2);
}

} // namespace

/* Parses the input as a key; then formats a key built from the input's bytes. */
extern "C" int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	std::vector<char> in(data, data + size);
	ParsedApiKey k;
	Status s = ParseApiKey(in.data(), in.size(), &k);
	Check(s.ok() == ReferenceValid(data, size));
	if (s.ok())
	{
		char text[kApiKeyLength + 1];
		FormatApiKey(k, text);
		Check(memcmp(text, data, kApiKeyLength) == 0);
	}
	else
		Check(!HasHexRun(s.message(), 8));

	if (size >= 8 + kApiKeySecretBytes)
	{
		ParsedApiKey g;
		memcpy(&g.id, data, 8);
		memcpy(g.secret, data + 8, kApiKeySecretBytes);
		char text[kApiKeyLength + 1];
		FormatApiKey(g, text);
		ParsedApiKey back;
		Check(ParseApiKey(text, strlen(text), &back).ok());
		Check(back.id == g.id && memcmp(back.secret, g.secret, kApiKeySecretBytes) == 0);
	}
	return 0;
}
