/*
 * fuzz_vector_binary.cpp — libFuzzer target for ParseVectorBinary (core/vector_format.h), the
 * parser behind evector_recv that reads pgvector's binary form (int16 dims, int16 zero, big-endian
 * float4s) from clients using the binary protocol or COPY ... (FORMAT binary).
 *
 * Properties:
 *   - no crash, no out-of-bounds access, no undefined behaviour (ASan + UBSan);
 *   - a failure is kInvalidInput or kOutOfRange with a non-empty message;
 *   - a success means size == VectorBinarySize(dims), 1 <= dims <= cap, every element finite, and
 *     the header says exactly dims with a zero "unused" field;
 *   - a success round-trips: FormatVectorBinary reproduces the input bytes exactly, and the text
 *     form of the same floats parses back to bit-identical values.
 */
#include "core/envelope.h"
#include "core/vector_format.h"
#include "fuzz_util.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

using namespace vector_vault;
using namespace vector_vault::fuzz;

/* Parses the input as a binary vector and checks the properties listed at the top of the file. */
extern "C" int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static std::vector<float> parsed(kMaxVectorDims);
	static std::vector<float> reparsed(kMaxVectorDims);
	/* An exact-size heap copy, so ASan sees any read past the end. */
	std::vector<uint8_t> in(data, data + size);

	size_t dims = 0;
	Status s = ParseVectorBinary(in.data(), in.size(), parsed.data(), kMaxVectorDims, &dims);
	if (!s.ok())
	{
		Check((s.code() == Code::kInvalidInput || s.code() == Code::kOutOfRange) &&
			  s.message()[0] != '\0');
		return 0;
	}
	Check(dims >= 1 && dims <= kMaxVectorDims);
	Check(size == VectorBinarySize(dims));
	Check((static_cast<size_t>(in[0]) << 8 | in[1]) == dims && in[2] == 0 && in[3] == 0);
	for (size_t i = 0; i < dims; i++)
		Check(std::isfinite(parsed[i]));

	/* Binary round trip: the very same bytes. */
	std::vector<uint8_t> out(VectorBinarySize(dims));
	FormatVectorBinary(parsed.data(), dims, out.data());
	Check(out == in);

	/* Text round trip of the same floats: bit-identical. */
	std::string text;
	FormatVectorText(parsed.data(), dims, &text);
	size_t dims2 = 0;
	Status r = ParseVectorText(text.c_str(), reparsed.data(), kMaxVectorDims, &dims2);
	Check(r.ok() && dims2 == dims);
	Check(memcmp(parsed.data(), reparsed.data(), dims * sizeof(float)) == 0);
	return 0;
}
