/*
 * fuzz_sparsevec_binary.cpp — libFuzzer target for ParseSparseBinary (core/sparse_format.h), the
 * parser behind esparsevec_recv that reads pgvector's sparsevec binary form (int32 dims, int32
 * nnz, int32 zero, 0-based int32 indices, float4 values, big-endian).
 *
 * Properties:
 *   - no crash, no out-of-bounds access, no undefined behaviour (ASan + UBSan);
 *   - a failure is kInvalidInput or kOutOfRange with a non-empty message;
 *   - a success has size == SparseBinarySize(nnz), indices strictly ascending and below dims,
 *     values finite and non-zero, and FormatSparseBinary reproduces the input bytes exactly.
 */
#include "core/sparse_format.h"
#include "fuzz_util.h"

#include <cmath>
#include <cstdint>
#include <vector>

using namespace vector_vault;
using namespace vector_vault::fuzz;

/* Parses the input as a binary sparsevec and checks the properties listed at the top. */
extern "C" int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static std::vector<uint32_t> idx(kMaxSparseNnz);
	static std::vector<float> val(kMaxSparseNnz);
	std::vector<uint8_t> in(data, data + size);
	uint32_t dims = 0, nnz = 0;
	Status s =
		ParseSparseBinary(in.data(), in.size(), idx.data(), val.data(), kMaxSparseNnz, &dims, &nnz);
	if (!s.ok())
	{
		Check((s.code() == Code::kInvalidInput || s.code() == Code::kOutOfRange) &&
			  s.message()[0] != '\0');
		return 0;
	}
	Check(size == SparseBinarySize(nnz) && dims >= 1 && dims <= kMaxSparseDims && nnz <= dims);
	for (uint32_t i = 0; i < nnz; i++)
		Check(idx[i] < dims && (i == 0 || idx[i] > idx[i - 1]) && std::isfinite(val[i]) &&
			  val[i] != 0.0f);
	std::vector<uint8_t> out(SparseBinarySize(nnz));
	FormatSparseBinary(SparseView{dims, nnz, idx.data(), val.data()}, out.data());
	Check(out == in);
	return 0;
}
