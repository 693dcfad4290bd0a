/* envelope_test.cpp — value envelope: round trip, strict decoding, tamper detection, nonces. */
#include "core/envelope.h"

#include "test_util.h"

#include <cstring>
#include <gtest/gtest.h>
#include <unordered_set>

using namespace vector_vault;

namespace
{

const uint8_t kKey[kKeyBytes] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
								 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

/* Seals a small vector envelope for the tests. */
std::vector<uint8_t>
SealVector(const std::vector<float> &v, uint64_t vault = 0x1122334455667788ull, uint32_t ver = 3)
{
	EnvelopeHeader h;
	h.kind = ValueKind::kVector;
	h.vault_id = vault;
	h.key_version = ver;
	h.payload_len = static_cast<uint32_t>(v.size() * sizeof(float));
	std::vector<uint8_t> out(EnvelopeSize(h.payload_len));
	EXPECT_TRUE(
		SealEnvelope(h, kKey, reinterpret_cast<const uint8_t *>(v.data()), out.data()).ok());
	return out;
}

} // namespace

TEST(Envelope, RoundTripAndHeader)
{
	std::vector<float> v = {1.5f, -2.0f, 3.25f};
	auto env = SealVector(v);
	ASSERT_EQ(env.size(), kEnvelopeOverhead + 12);
	EnvelopeHeader h;
	ASSERT_TRUE(DecodeEnvelopeHeader(env.data(), env.size(), &h).ok());
	EXPECT_EQ(h.kind, ValueKind::kVector);
	EXPECT_EQ(h.vault_id, 0x1122334455667788ull);
	EXPECT_EQ(h.key_version, 3u);
	EXPECT_EQ(h.payload_len, 12u);
	std::vector<float> out(3);
	ASSERT_TRUE(
		OpenEnvelope(env.data(), env.size(), kKey, reinterpret_cast<uint8_t *>(out.data())).ok());
	EXPECT_EQ(out, v);
	/* The plaintext bytes do not appear in the envelope. */
	auto hay = std::string(env.begin(), env.end());
	auto needle = std::string(reinterpret_cast<const char *>(v.data()), 12);
	EXPECT_EQ(hay.find(needle), std::string::npos);
}

TEST(Envelope, EveryFlippedByteFails)
{
	std::vector<float> v = {0.25f, 0.5f, 0.75f, 1.0f};
	auto env = SealVector(v);
	std::vector<uint8_t> pt(16);
	for (size_t i = 0; i < env.size(); i++)
	{
		for (uint8_t mask : {0x01, 0x80, 0xff})
		{
			env[i] ^= mask;
			Status s = OpenEnvelope(env.data(), env.size(), kKey, pt.data());
			EXPECT_FALSE(s.ok()) << "byte " << i << " mask " << int(mask);
			EXPECT_EQ(s.code(), Code::kCorrupt) << "byte " << i;
			env[i] ^= mask;
		}
	}
	EXPECT_TRUE(OpenEnvelope(env.data(), env.size(), kKey, pt.data()).ok());
}

TEST(Envelope, TruncationAndExtensionFail)
{
	auto env = SealVector({1, 2, 3});
	std::vector<uint8_t> pt(64);
	EnvelopeHeader h;
	for (size_t len = 0; len < env.size(); len++)
		EXPECT_FALSE(DecodeEnvelopeHeader(env.data(), len, &h).ok()) << len;
	env.push_back(0);
	EXPECT_FALSE(OpenEnvelope(env.data(), env.size(), kKey, pt.data()).ok());
}

TEST(Envelope, KindSwapIsCaught)
{
	auto env = SealVector({1, 2, 3});
	env[1] = static_cast<uint8_t>(ValueKind::kText);
	std::vector<uint8_t> pt(12);
	EnvelopeHeader h;
	ASSERT_TRUE(DecodeEnvelopeHeader(env.data(), env.size(), &h).ok());
	EXPECT_EQ(OpenEnvelope(env.data(), env.size(), kKey, pt.data()).code(), Code::kCorrupt);
}

/* ehalfvec (kind 4) is a known kind, its header decodes, and an evector envelope relabelled as
 * ehalfvec fails authentication; esparsevec is kind 5, and kind 6 is unknown and refused before
 * any decryption. */
TEST(Envelope, HalfVectorKindIsKnownAndAuthenticated)
{
	auto env = SealVector({1, 2, 3});
	std::vector<uint8_t> pt(12);
	EnvelopeHeader h;
	env[1] = static_cast<uint8_t>(ValueKind::kHalfVector);
	ASSERT_TRUE(DecodeEnvelopeHeader(env.data(), env.size(), &h).ok());
	EXPECT_EQ(h.kind, ValueKind::kHalfVector);
	EXPECT_EQ(OpenEnvelope(env.data(), env.size(), kKey, pt.data()).code(), Code::kCorrupt);
	env[1] = static_cast<uint8_t>(ValueKind::kSparseVector);
	EXPECT_TRUE(DecodeEnvelopeHeader(env.data(), env.size(), &h).ok());
	env[1] = 6;
	EXPECT_EQ(DecodeEnvelopeHeader(env.data(), env.size(), &h).code(), Code::kCorrupt);
}

TEST(Envelope, StrictHeaderValidation)
{
	EnvelopeHeader h;
	h.kind = ValueKind::kVector;
	h.vault_id = 7;
	h.key_version = 1;
	h.payload_len = 6; /* not a multiple of 4 */
	std::vector<uint8_t> out(EnvelopeSize(6));
	EXPECT_FALSE(SealEnvelope(h, kKey, out.data(), out.data()).ok());
	h.payload_len = 4;
	h.vault_id = 0;
	EXPECT_FALSE(SealEnvelope(h, kKey, out.data(), out.data()).ok());
	h.vault_id = 7;
	h.key_version = 0;
	EXPECT_FALSE(SealEnvelope(h, kKey, out.data(), out.data()).ok());
	h.key_version = 1;
	h.flags = 1;
	EXPECT_FALSE(SealEnvelope(h, kKey, out.data(), out.data()).ok());
	h.flags = 0;
	h.payload_len = (kMaxVectorDims + 1) * 4;
	std::vector<uint8_t> big(EnvelopeSize(h.payload_len));
	EXPECT_FALSE(SealEnvelope(h, kKey, big.data(), big.data()).ok());
}

TEST(Envelope, WrongKeyFails)
{
	auto env = SealVector({1, 2});
	uint8_t other[kKeyBytes];
	memcpy(other, kKey, kKeyBytes);
	other[0] ^= 1;
	std::vector<uint8_t> pt(8);
	EXPECT_EQ(OpenEnvelope(env.data(), env.size(), other, pt.data()).code(), Code::kCorrupt);
}

TEST(Envelope, NoncesUniqueOver100000Seals)
{
	EnvelopeHeader h;
	h.kind = ValueKind::kText;
	h.vault_id = 42;
	h.key_version = 1;
	h.payload_len = 1;
	uint8_t pt = 'x';
	std::vector<uint8_t> out(EnvelopeSize(1));
	std::unordered_set<std::string> nonces;
	nonces.reserve(100000);
	for (int i = 0; i < 100000; i++)
	{
		ASSERT_TRUE(SealEnvelope(h, kKey, &pt, out.data()).ok());
		nonces.insert(
			std::string(reinterpret_cast<const char *>(EnvelopeNonce(out.data())), kNonceBytes));
	}
	EXPECT_EQ(nonces.size(), 100000u);
}
