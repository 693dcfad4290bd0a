/*
 * fuzz_index_record.cpp — libFuzzer target for the vault_hnsw record decoders
 * (core/index_record.h): element records read from graph pages and vector records read from the
 * vector stream, both untrusted bytes from disk.
 *
 * Input: first byte picks m (2..100), the rest is the record. Properties:
 *   - no crash, no out-of-bounds read, no UB for any bytes;
 *   - PeekElementRecord succeeds only when the size matches the level's record size;
 *   - OpenElementRecord with the fuzzer's fixed key succeeds only on records sealed with it
 *     (a seeded valid record, possibly); on success every list count is within capacity;
 *   - a record sealed here opens back to the same lists, and flipping any byte makes it fail;
 *   - OpenVectorRecord accepts only the exact size and fails on any bytes not sealed here.
 */
#include "core/index_record.h"
#include "fuzz_util.h"

#include <cstdint>
#include <cstring>
#include <vector>

using namespace vector_vault;
using namespace vector_vault::fuzz;

namespace
{

const uint8_t kKey[kKeyBytes] = {7, 1, 4, 2, 8, 5, 7, 1, 4, 2, 8, 5, 7, 1, 4, 2,
								 8, 5, 7, 1, 4, 2, 8, 5, 7, 1, 4, 2, 8, 5, 7, 1};

} // namespace

/* Decodes the input as an element record and a vector record; round-trips a sealed record. */
extern "C" int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int m = 2 + data[0] % 99;
	std::vector<uint8_t> rec(data + 1, data + size);
	ElementRecordInfo info;
	Status s = PeekElementRecord(rec.data(), rec.size(), m, &info);
	if (s.ok())
	{
		Check(rec.size() == ElementRecordSize(m, info.level));
		std::vector<uint32_t> links(ElementLinksBytes(m, info.level) / 4);
		if (OpenElementRecord(rec.data(), rec.size(), m, kKey, links.data()).ok())
		{
			Check(links[0] <= static_cast<uint32_t>(2 * m));
			for (int l = 1; l <= info.level; l++)
				Check(links[(1 + 2 * m) + (l - 1) * (1 + m)] <= static_cast<uint32_t>(m));
		}
	}
	/* Any input bytes as a vector record of 1..64 dims must fail (never sealed here). */
	uint32_t dims = rec.empty() ? 1 : 1 + rec[0] % 64;
	std::vector<float> v(dims);
	ElementWidth width = size > 2 && (data[2] & 1) ? ElementWidth::kHalf : ElementWidth::kFloat32;
	Status vs = OpenVectorRecord(rec.data(), rec.size(), 1, 2, 3, dims, width, kKey, v.data());
	Check(!vs.ok() || rec.size() == VectorRecordSize(dims, width));

	/* Seal a record built from the input and check the round trip and tamper detection. */
	int level = size > 1 ? data[1] % 3 : 0;
	std::vector<uint8_t> sealed(ElementRecordSize(m, level), 0);
	sealed[0] = 9;
	sealed[4] = static_cast<uint8_t>(level);
	sealed[16] = 1; /* vault id 1 */
	sealed[24] = 1; /* key version 1 */
	std::vector<uint32_t> links(ElementLinksBytes(m, level) / 4, 0);
	links[0] = static_cast<uint32_t>(size % (2 * m + 1));
	for (size_t i = 1; i < links.size() && i < size; i++)
		links[i] = data[i];
	for (int l = 1; l <= level; l++)
		links[(1 + 2 * m) + (l - 1) * (1 + m)] = static_cast<uint32_t>(size % (m + 1));
	Check(SealElementRecord(sealed.data(), m, level, kKey, links.data()).ok());
	std::vector<uint32_t> back(links.size());
	Check(OpenElementRecord(sealed.data(), sealed.size(), m, kKey, back.data()).ok());
	Check(back == links);
	size_t flip = size % sealed.size();
	sealed[flip] ^= 0x40;
	Check(!OpenElementRecord(sealed.data(), sealed.size(), m, kKey, back.data()).ok());
	return 0;
}
