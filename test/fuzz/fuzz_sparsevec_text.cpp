/*
 * fuzz_sparsevec_text.cpp — libFuzzer target for ParseSparseText (core/sparse_format.h), the
 * parser behind esparsevec_in that reads pgvector's '{1:0.5,3:2}/5' from any client.
 *
 * Properties:
 *   - no crash, no out-of-bounds access, no undefined behaviour (ASan + UBSan);
 *   - a failure is kInvalidInput or kOutOfRange with a non-empty message;
 *   - a success has 1 <= dims <= kMaxSparseDims, nnz <= kMaxSparseNnz, indices strictly
 *     ascending and below dims, values finite and non-zero;
 *   - printing and parsing again gives the same pairs, bit for bit, and the same text;
 *   - the sealed payload form unpacks to the same pairs.
 */
#include "core/sparse_format.h"
#include "fuzz_util.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

using namespace vector_vault;
using namespace vector_vault::fuzz;

/* Parses the input as sparsevec text and checks the properties listed at the top of the file. */
extern "C" int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static std::vector<uint32_t> idx(kMaxSparseNnz), idx2(kMaxSparseNnz);
	static std::vector<float> val(kMaxSparseNnz), val2(kMaxSparseNnz);
	std::string text(reinterpret_cast<const char *>(data), size);
	text = text.c_str(); /* the server hands over a NUL-terminated string */
	uint32_t dims = 0, nnz = 0;
	Status s = ParseSparseText(text.c_str(), idx.data(), val.data(), kMaxSparseNnz, &dims, &nnz);
	if (!s.ok())
	{
		Check((s.code() == Code::kInvalidInput || s.code() == Code::kOutOfRange) &&
			  s.message()[0] != '\0');
		return 0;
	}
	Check(dims >= 1 && dims <= kMaxSparseDims && nnz <= kMaxSparseNnz && nnz <= dims);
	for (uint32_t i = 0; i < nnz; i++)
	{
		Check(idx[i] < dims && (i == 0 || idx[i] > idx[i - 1]));
		Check(std::isfinite(val[i]) && val[i] != 0.0f);
	}
	SparseView v{dims, nnz, idx.data(), val.data()};
	std::string out;
	FormatSparseText(v, &out);
	uint32_t dims2 = 0, nnz2 = 0;
	Check(
		ParseSparseText(out.c_str(), idx2.data(), val2.data(), kMaxSparseNnz, &dims2, &nnz2).ok());
	Check(dims2 == dims && nnz2 == nnz);
	Check(memcmp(idx.data(), idx2.data(), 4 * nnz) == 0 &&
		  memcmp(val.data(), val2.data(), 4 * nnz) == 0);
	std::string again;
	FormatSparseText(SparseView{dims2, nnz2, idx2.data(), val2.data()}, &again);
	Check(again == out);
	std::vector<uint32_t> payload(SparsePayloadSize(nnz) / 4);
	PackSparse(v, reinterpret_cast<uint8_t *>(payload.data()));
	SparseView u;
	Check(
		UnpackSparse(reinterpret_cast<const uint8_t *>(payload.data()), SparsePayloadSize(nnz), &u)
			.ok());
	Check(u.dims == dims && u.nnz == nnz && memcmp(u.indices, idx.data(), 4 * nnz) == 0);
	return 0;
}
