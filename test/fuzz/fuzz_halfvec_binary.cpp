/*
 * fuzz_halfvec_binary.cpp — libFuzzer target for ParseHalfVectorBinary (core/half.h), the parser
 * behind ehalfvec_recv that reads pgvector's halfvec binary form (int16 dims, int16 zero,
 * big-endian binary16 values) from clients using the binary protocol or COPY ... (FORMAT binary).
 *
 * Properties:
 *   - no crash, no out-of-bounds access, no undefined behaviour (ASan + UBSan);
 *   - a failure is kInvalidInput or kOutOfRange with a non-empty message;
 *   - a success means size == HalfVectorBinarySize(dims), 1 <= dims <= cap, every element
 *     finite, and the header says exactly dims with a zero "unused" field;
 *   - a success round-trips: FormatHalfVectorBinary reproduces the input bytes exactly, and the
 *     halves widened to float and narrowed again are the same halves (widening is exact).
 */
#include "core/envelope.h"
#include "core/half.h"
#include "fuzz_util.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

using namespace vector_vault;
using namespace vector_vault::fuzz;

/* Parses the input as a binary halfvec and checks the properties listed at the top of the file. */
extern "C" int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static std::vector<uint16_t> parsed(kMaxVectorDims);
	static std::vector<uint16_t> again(kMaxVectorDims);
	static std::vector<float> wide(kMaxVectorDims);
	/* An exact-size heap copy, so ASan sees any read past the end. */
	std::vector<uint8_t> in(data, data + size);

	size_t dims = 0;
	Status s = ParseHalfVectorBinary(in.data(), in.size(), parsed.data(), kMaxVectorDims, &dims);
	if (!s.ok())
	{
		Check((s.code() == Code::kInvalidInput || s.code() == Code::kOutOfRange) &&
			  s.message()[0] != '\0');
		return 0;
	}
	Check(dims >= 1 && dims <= kMaxVectorDims);
	Check(size == HalfVectorBinarySize(dims));
	Check((static_cast<size_t>(in[0]) << 8 | in[1]) == dims && in[2] == 0 && in[3] == 0);

	std::vector<uint8_t> out(HalfVectorBinarySize(dims));
	FormatHalfVectorBinary(parsed.data(), dims, out.data());
	Check(out == in);

	HalvesToFloats(parsed.data(), dims, wide.data());
	for (size_t i = 0; i < dims; i++)
		Check(std::isfinite(wide[i]) && std::fabs(wide[i]) <= kHalfMax);
	Check(FloatsToHalves(wide.data(), dims, again.data()).ok());
	Check(memcmp(parsed.data(), again.data(), dims * sizeof(uint16_t)) == 0);
	return 0;
}
