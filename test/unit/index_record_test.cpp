/* index_record_test.cpp — vault_hnsw element and vector records: round trip, binding, tamper. */
#include "core/index_record.h"

#include <cstring>
#include <gtest/gtest.h>
#include <vector>

using namespace vector_vault;

namespace
{
const uint8_t kKey[kKeyBytes] = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3,
								 2, 3, 8, 4, 6, 2, 6, 4, 3, 3, 8, 3, 2, 7, 9, 5};

/* A sealed element record of a level with recognisable lists. */
std::vector<uint8_t>
Sealed(int m, int level, std::vector<uint32_t> *links)
{
	std::vector<uint8_t> rec(ElementRecordSize(m, level), 0);
	rec[0] = 42;
	rec[4] = static_cast<uint8_t>(level);
	rec[16] = 7;
	rec[24] = 1;
	links->assign(ElementLinksBytes(m, level) / 4, 0);
	(*links)[0] = 3;
	(*links)[1] = 10;
	(*links)[2] = 11;
	(*links)[3] = 12;
	EXPECT_TRUE(SealElementRecord(rec.data(), m, level, kKey, links->data()).ok());
	return rec;
}
} // namespace

TEST(IndexRecord, ElementRoundTripAndEveryByteAuthenticated)
{
	std::vector<uint32_t> links;
	auto rec = Sealed(16, 1, &links);
	ElementRecordInfo info;
	ASSERT_TRUE(PeekElementRecord(rec.data(), rec.size(), 16, &info).ok());
	EXPECT_EQ(info.element_id, 42u);
	EXPECT_EQ(info.vault_id, 7u);
	std::vector<uint32_t> out(links.size());
	ASSERT_TRUE(OpenElementRecord(rec.data(), rec.size(), 16, kKey, out.data()).ok());
	EXPECT_EQ(out, links);
	for (size_t i = 0; i < rec.size(); i++)
	{
		rec[i] ^= 1;
		EXPECT_FALSE(OpenElementRecord(rec.data(), rec.size(), 16, kKey, out.data()).ok()) << i;
		rec[i] ^= 1;
	}
	EXPECT_FALSE(PeekElementRecord(rec.data(), rec.size() - 1, 16, &info).ok());
	EXPECT_FALSE(PeekElementRecord(rec.data(), rec.size(), 15, &info).ok());
}

TEST(IndexRecord, CountsBeyondCapacityAreRefused)
{
	std::vector<uint32_t> links;
	auto rec = Sealed(4, 0, &links);
	links[0] = 9; /* capacity is 2m = 8 */
	ASSERT_TRUE(SealElementRecord(rec.data(), 4, 0, kKey, links.data()).ok());
	std::vector<uint32_t> out(links.size());
	EXPECT_FALSE(OpenElementRecord(rec.data(), rec.size(), 4, kKey, out.data()).ok());
}

TEST(IndexRecord, VectorBoundToElementVaultVersionDims)
{
	float v[4] = {1.5f, -2, 3, 4};
	const ElementWidth f32 = ElementWidth::kFloat32;
	std::vector<uint8_t> rec(VectorRecordSize(4));
	ASSERT_TRUE(SealVectorRecord(5, 6, 2, v, 4, f32, kKey, rec.data()).ok());
	float out[4];
	ASSERT_TRUE(OpenVectorRecord(rec.data(), rec.size(), 5, 6, 2, 4, f32, kKey, out).ok());
	EXPECT_EQ(memcmp(out, v, sizeof(v)), 0);
	EXPECT_FALSE(OpenVectorRecord(rec.data(), rec.size(), 4, 6, 2, 4, f32, kKey, out).ok());
	EXPECT_FALSE(OpenVectorRecord(rec.data(), rec.size(), 5, 7, 2, 4, f32, kKey, out).ok());
	EXPECT_FALSE(OpenVectorRecord(rec.data(), rec.size(), 5, 6, 1, 4, f32, kKey, out).ok());
	EXPECT_FALSE(OpenVectorRecord(rec.data(), rec.size() - 4, 5, 6, 2, 3, f32, kKey, out).ok());
	/* 4 float32 dims are 8 half dims in size: the width is in the associated data */
	float wide[8];
	EXPECT_FALSE(
		OpenVectorRecord(rec.data(), rec.size(), 5, 6, 2, 8, ElementWidth::kHalf, kKey, wide).ok());
	/* the float bytes are not in the record */
	EXPECT_EQ(memmem(rec.data(), rec.size(), v, sizeof(v)), nullptr);
}

/* A half record is half the payload, round-trips halves exactly, refuses what a half cannot
 * hold, and cannot be opened at float32 width (the associated data names the width). */
TEST(IndexRecord, HalfVectorRecord)
{
	const ElementWidth half = ElementWidth::kHalf;
	EXPECT_EQ(VectorRecordSize(768, half) - kNonceBytes - kTagBytes,
			  (VectorRecordSize(768) - kNonceBytes - kTagBytes) / 2);
	float v[8] = {1.5f, -2, 3, 4, 0.099975586f, -65504, 6.1035156e-05f, 0};
	std::vector<uint8_t> rec(VectorRecordSize(8, half));
	ASSERT_TRUE(SealVectorRecord(5, 6, 2, v, 8, half, kKey, rec.data()).ok());
	float out[8];
	ASSERT_TRUE(OpenVectorRecord(rec.data(), rec.size(), 5, 6, 2, 8, half, kKey, out).ok());
	EXPECT_EQ(memcmp(out, v, sizeof(v)), 0);
	EXPECT_FALSE(
		OpenVectorRecord(rec.data(), rec.size(), 5, 6, 2, 4, ElementWidth::kFloat32, kKey, out)
			.ok());
	EXPECT_FALSE(OpenVectorRecord(rec.data(), rec.size(), 5, 7, 2, 8, half, kKey, out).ok());
	rec[kNonceBytes] ^= 1;
	float poison[8];
	memset(poison, 0x5a, sizeof(poison));
	EXPECT_FALSE(OpenVectorRecord(rec.data(), rec.size(), 5, 6, 2, 8, half, kKey, poison).ok());
	/* no unauthenticated plaintext is left in the output */
	for (float f : poison)
		EXPECT_TRUE(f == 0.0f || memcmp(&f, "\x5a\x5a\x5a\x5a", 4) == 0);
	float big[2] = {1, 70000};
	std::vector<uint8_t> r2(VectorRecordSize(2, half));
	EXPECT_EQ(SealVectorRecord(1, 1, 1, big, 2, half, kKey, r2.data()).code(), Code::kOutOfRange);
	/* no half of the vector is left in the record */
	EXPECT_EQ(memmem(r2.data() + kNonceBytes, 4, "\x00\x3c", 2), nullptr);
}
