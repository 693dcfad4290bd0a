/*
 * fuzz_vector_text.cpp — libFuzzer target for ParseVectorText (core/vector_format.h), the parser
 * behind evector_in that reads pgvector's '[1,2,3]' text straight from SQL clients.
 *
 * The input bytes are copied and NUL-terminated (the parser reads a C string). Properties:
 *   - no crash, no out-of-bounds access, no undefined behaviour (ASan + UBSan);
 *   - a failure is kInvalidInput or kOutOfRange with a non-empty message;
 *   - a success yields 1..cap dimensions, all finite;
 *   - with a capacity one smaller than the parsed dimension count the parse fails kOutOfRange;
 *   - a success round-trips: FormatVectorTextBuf fits in VectorTextCapacity, agrees with
 *     FormatVectorText, and parses back to bit-identical floats, and formatting is a fixed point;
 *   - (with VV_FUZZ_STRICT_UNDERFLOW=1) an element is zero only when its text denotes zero: a
 *     non-zero number too small for float4 must be refused as out of range, not stored as 0.
 *     Off by default because src/core accepts '[1e-400]' as [0] while refusing '[1e-50]'
 *     (ParseVectorText's underflow test asks strtod, which underflows too); turn it on with the
 * fix.
 */
#include "core/envelope.h"
#include "core/vector_format.h"
#include "fuzz_util.h"

#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#ifndef VV_FUZZ_STRICT_UNDERFLOW
#define VV_FUZZ_STRICT_UNDERFLOW 1
#endif

using namespace vector_vault;
using namespace vector_vault::fuzz;

namespace
{

/* True when a failed parse carries a code and message the bridge can report. */
bool
IsReportableFailure(const Status &s)
{
	return (s.code() == Code::kInvalidInput || s.code() == Code::kOutOfRange) &&
		   s.message()[0] != '\0';
}

/* True when a number as strtof reads it has a non-zero mantissa digit (decimal or 0x hex). */
bool
DenotesNonZero(const std::string &tok)
{
	size_t i = 0;
	if (i < tok.size() && (tok[i] == '+' || tok[i] == '-'))
		i++;
	bool hex = tok.size() > i + 1 && tok[i] == '0' && (tok[i + 1] == 'x' || tok[i + 1] == 'X');
	if (hex)
		i += 2;
	for (; i < tok.size(); i++)
	{
		char c = tok[i];
		if (!hex && (c == 'e' || c == 'E'))
			break;
		if (hex && (c == 'p' || c == 'P'))
			break;
		if (c != '0' && c != '.')
			return true;
	}
	return false;
}

/* Splits accepted vector text into its element tokens (accepted text has no nested brackets). */
std::vector<std::string>
ElementTokens(const char *text)
{
	std::vector<std::string> out;
	const char *p = strchr(text, '[') + 1;
	const char *end = strrchr(text, ']');
	std::string cur;
	for (; p <= end; p++)
	{
		if (*p == ',' || p == end)
		{
			out.push_back(cur);
			cur.clear();
		}
		else if (!isspace(static_cast<unsigned char>(*p)))
			cur.push_back(*p);
	}
	return out;
}

} // namespace

/* Parses the input as vector text and checks the properties listed at the top of the file. */
extern "C" int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static std::vector<float> parsed(kMaxVectorDims);
	static std::vector<float> reparsed(kMaxVectorDims);
	std::string text(reinterpret_cast<const char *>(data), size);

	size_t dims = 0;
	Status s = ParseVectorText(text.c_str(), parsed.data(), kMaxVectorDims, &dims);
	if (!s.ok())
	{
		Check(IsReportableFailure(s));
		return 0;
	}
	Check(dims >= 1 && dims <= kMaxVectorDims);
	for (size_t i = 0; i < dims; i++)
		Check(std::isfinite(parsed[i]));
	if (VV_FUZZ_STRICT_UNDERFLOW)
	{
		std::vector<std::string> toks = ElementTokens(text.c_str());
		Check(toks.size() == dims);
		for (size_t i = 0; i < dims; i++)
			Check((parsed[i] != 0.0f) == DenotesNonZero(toks[i]));
	}

	/* One slot too few must be reported as too many dimensions, never overrun. */
	if (dims > 1)
	{
		std::vector<float> small(dims - 1);
		size_t small_dims = 0;
		Status t = ParseVectorText(text.c_str(), small.data(), dims - 1, &small_dims);
		Check(!t.ok() && t.code() == Code::kOutOfRange);
	}

	/* Format into a buffer of exactly the advertised capacity. */
	size_t cap = VectorTextCapacity(dims);
	std::vector<char> buf(cap);
	size_t n = FormatVectorTextBuf(parsed.data(), dims, buf.data(), cap);
	Check(n > 0 && n < cap && buf[n] == '\0' && strlen(buf.data()) == n);
	Check(buf[0] == '[' && buf[n - 1] == ']');
	std::string via_string;
	FormatVectorText(parsed.data(), dims, &via_string);
	Check(via_string == std::string(buf.data(), n));

	/* The printed form reads back to the very same bits. */
	size_t dims2 = 0;
	Status r = ParseVectorText(buf.data(), reparsed.data(), kMaxVectorDims, &dims2);
	Check(r.ok() && dims2 == dims);
	Check(memcmp(parsed.data(), reparsed.data(), dims * sizeof(float)) == 0);

	/* Printing the re-read vector gives the same text: the output form is canonical. */
	std::string again;
	FormatVectorText(reparsed.data(), dims2, &again);
	Check(again == via_string);
	return 0;
}
