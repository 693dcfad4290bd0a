/* aead_test.cpp — AES-256-GCM against the published GCM test vectors, plus tamper checks. */
#include "core/aead.h"

#include "test_util.h"

#include <gtest/gtest.h>
#include <set>

using namespace vector_vault;

namespace
{

struct Vector
{
	const char *name, *key, *nonce, *aad, *pt, *ct, *tag;
};

/* McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 13-16 (AES-256). */
const Vector kVectors[] = {
	{"tc13", "0000000000000000000000000000000000000000000000000000000000000000",
	 "000000000000000000000000", "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
	{"tc14", "0000000000000000000000000000000000000000000000000000000000000000",
	 "000000000000000000000000", "", "00000000000000000000000000000000",
	 "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"},
	{"tc15", "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
	 "cafebabefacedbaddecaf888", "",
	 "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6"
	 "b525b16aedf5aa0de657ba637b391aafd255",
	 "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b105682"
	 "8838c5f61e6393ba7a0abcc9f662898015ad",
	 "b094dac5d93471bdec1a502270e3cc6c"},
	{"tc16", "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
	 "cafebabefacedbaddecaf888", "feedfacedeadbeeffeedfacedeadbeefabaddad2",
	 "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6"
	 "b525b16aedf5aa0de657ba637b39",
	 "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b105682"
	 "8838c5f61e6393ba7a0abcc9f662",
	 "76fc6ece0f4e1768cddf8853bb2d551b"},
};

} // namespace

TEST(Aead, PublishedVectorsSeal)
{
	for (const Vector &v : kVectors)
	{
		auto key = Unhex(v.key), nonce = Unhex(v.nonce), aad = Unhex(v.aad), pt = Unhex(v.pt);
		std::vector<uint8_t> ct(pt.size() + 1);
		uint8_t tag[kTagBytes];
		ASSERT_TRUE(AeadSeal(key.data(), nonce.data(), aad.data(), aad.size(), pt.data(), pt.size(),
							 ct.data(), tag)
						.ok())
			<< v.name;
		EXPECT_EQ(Hex(ct.data(), pt.size()), v.ct) << v.name;
		EXPECT_EQ(Hex(tag, kTagBytes), v.tag) << v.name;
	}
}

TEST(Aead, PublishedVectorsOpen)
{
	for (const Vector &v : kVectors)
	{
		auto key = Unhex(v.key), nonce = Unhex(v.nonce), aad = Unhex(v.aad), ct = Unhex(v.ct),
			 tag = Unhex(v.tag);
		std::vector<uint8_t> pt(ct.size() + 1);
		ASSERT_TRUE(AeadOpen(key.data(), nonce.data(), aad.data(), aad.size(), ct.data(), ct.size(),
							 tag.data(), pt.data())
						.ok())
			<< v.name;
		EXPECT_EQ(Hex(pt.data(), ct.size()), v.pt) << v.name;
	}
}

TEST(Aead, EveryFlippedBitOfCiphertextTagOrAadFails)
{
	const Vector &v = kVectors[3];
	auto key = Unhex(v.key), nonce = Unhex(v.nonce), aad = Unhex(v.aad), ct = Unhex(v.ct),
		 tag = Unhex(v.tag);
	std::vector<uint8_t> pt(ct.size());
	auto try_open = [&]()
	{
		return AeadOpen(key.data(), nonce.data(), aad.data(), aad.size(), ct.data(), ct.size(),
						tag.data(), pt.data());
	};
	for (std::vector<uint8_t> *buf : {&ct, &tag, &aad, &nonce})
	{
		for (size_t i = 0; i < buf->size(); i++)
		{
			(*buf)[i] ^= 0x01;
			Status s = try_open();
			EXPECT_FALSE(s.ok()) << "byte " << i;
			EXPECT_EQ(s.code(), Code::kCorrupt);
			/* Failed opens leave no plaintext behind. */
			for (uint8_t b : pt)
				ASSERT_EQ(b, 0);
			(*buf)[i] ^= 0x01;
		}
	}
	EXPECT_TRUE(try_open().ok());
}

TEST(Aead, WrongKeyFails)
{
	const Vector &v = kVectors[3];
	auto key = Unhex(v.key), nonce = Unhex(v.nonce), aad = Unhex(v.aad), ct = Unhex(v.ct),
		 tag = Unhex(v.tag);
	key[31] ^= 0x80;
	std::vector<uint8_t> pt(ct.size());
	EXPECT_EQ(AeadOpen(key.data(), nonce.data(), aad.data(), aad.size(), ct.data(), ct.size(),
					   tag.data(), pt.data())
				  .code(),
			  Code::kCorrupt);
}

TEST(Aead, RandomBytesDiffer)
{
	std::set<std::string> seen;
	for (int i = 0; i < 1000; i++)
	{
		uint8_t b[16];
		ASSERT_TRUE(RandomBytes(b, sizeof(b)).ok());
		seen.insert(Hex(b, sizeof(b)));
	}
	EXPECT_EQ(seen.size(), 1000u);
}

/* The decrypting context keeps the last key's schedule: interleaving keys, a failed open and
 * AeadForgetKeys must never change what a correct open returns or let a wrong key pass. */
TEST(Aead, KeyScheduleReuseAcrossKeysFailuresAndForget)
{
	std::vector<uint8_t> key_a(kKeyBytes, 0x11), key_b(kKeyBytes, 0x22);
	std::vector<uint8_t> pt(3136);
	for (size_t i = 0; i < pt.size(); i++)
		pt[i] = static_cast<uint8_t>(i * 7);
	struct Sealed
	{
		std::vector<uint8_t> nonce, ct, tag;
	};
	auto seal = [&](const std::vector<uint8_t> &key)
	{
		Sealed s{std::vector<uint8_t>(kNonceBytes), std::vector<uint8_t>(pt.size()),
				 std::vector<uint8_t>(kTagBytes)};
		EXPECT_TRUE(RandomBytes(s.nonce.data(), kNonceBytes).ok());
		EXPECT_TRUE(AeadSeal(key.data(), s.nonce.data(), nullptr, 0, pt.data(), pt.size(),
							 s.ct.data(), s.tag.data())
						.ok());
		return s;
	};
	auto open = [&](const std::vector<uint8_t> &key, const Sealed &s)
	{
		std::vector<uint8_t> out(s.ct.size());
		Status st = AeadOpen(key.data(), s.nonce.data(), nullptr, 0, s.ct.data(), s.ct.size(),
							 s.tag.data(), out.data());
		return std::make_pair(st.code(), out);
	};
	Sealed a1 = seal(key_a), a2 = seal(key_a), b1 = seal(key_b);
	for (int round = 0; round < 3; round++)
	{
		EXPECT_EQ(open(key_a, a1).second, pt);
		EXPECT_EQ(open(key_a, a2).second, pt);            /* same key: schedule re-used */
		EXPECT_EQ(open(key_b, a1).first, Code::kCorrupt); /* wrong key right after */
		EXPECT_EQ(open(key_b, b1).second, pt);
		Sealed bad = a1;
		bad.tag[0] ^= 1;
		EXPECT_EQ(open(key_a, bad).first, Code::kCorrupt);
		EXPECT_EQ(open(key_a, a1).second, pt); /* usable after a failed tag check */
		if (round == 1)
			AeadForgetKeys();
	}
}
