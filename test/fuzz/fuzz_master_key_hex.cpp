/*
 * fuzz_master_key_hex.cpp — libFuzzer target for ParseMasterKeyHex (core/master_key_text.h), which
 * decodes what vector_vault.master_key_file holds or what vector_vault.master_key_command prints.
 *
 * The input is passed as (pointer, length) with no terminator, exactly as the file and command
 * readers do. Properties:
 *   - no crash, no read outside the buffer, no undefined behaviour (ASan + UBSan);
 *   - the result agrees with an independent decoder: success exactly when the text, stripped of
 *     surrounding spaces, tabs, CRs and LFs, is 64 hex digits, and then the same 32 bytes;
 *   - FormatKeyHex of the result is the lower-cased key text;
 *   - a failure is kKeyUnavailable, leaves the output untouched (no partial key), and its message
 *     contains no run of six or more hex digits (no key material is echoed).
 */
#include "core/aead.h"
#include "core/master_key_text.h"
#include "fuzz_util.h"

#include <cctype>
#include <cstdint>
#include <cstring>
#include <vector>

using namespace vector_vault;
using namespace vector_vault::fuzz;

namespace
{

/* Value of a hex digit or -1 (the reference decoder's own table). */
int
Nibble(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The documented rule, implemented independently: true and the key when the text is valid. */
bool
ReferenceDecode(const uint8_t *text, size_t len, uint8_t key[kKeyBytes], size_t *start)
{
	auto space = [](uint8_t c)
	{
		return c == ' ' || c == '\t' || c == '\n' || c == '\r';
	};
	size_t b = 0, e = len;
	while (b < e && space(text[b]))
		b++;
	while (e > b && space(text[e - 1]))
		e--;
	*start = b;
	if (e - b != 2 * kKeyBytes)
		return false;
	for (size_t i = 0; i < kKeyBytes; i++)
	{
		int hi = Nibble(text[b + 2 * i]);
		int lo = Nibble(text[b + 2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		key[i] = static_cast<uint8_t>(hi * 16 + lo);
	}
	return true;
}

} // namespace

/* Decodes the input as key text and compares against the reference decoder. */
extern "C" int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	std::vector<char> in(data, data + size);
	uint8_t key[kKeyBytes];
	memset(key, 0x5A, sizeof(key));
	Status s = ParseMasterKeyHex(in.data(), in.size(), key);

	uint8_t want[kKeyBytes];
	size_t start = 0;
	bool valid = ReferenceDecode(data, size, want, &start);
	Check(s.ok() == valid);
	if (!s.ok())
	{
		Check(s.code() == Code::kKeyUnavailable && s.message()[0] != '\0');
		for (uint8_t b : key)
			Check(b == 0x5A);
		if (size < 100000)
			Check(!HasHexRun(s.message(), 6));
		return 0;
	}
	Check(memcmp(key, want, kKeyBytes) == 0);
	char hex[2 * kKeyBytes + 1];
	FormatKeyHex(key, hex);
	Check(strlen(hex) == 2 * kKeyBytes);
	for (size_t i = 0; i < 2 * kKeyBytes; i++)
		Check(hex[i] == tolower(static_cast<unsigned char>(data[start + i])));
	return 0;
}
