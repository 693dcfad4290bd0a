/* api_key_test.cpp — API key format, checksum, digests and password hashing. */
#include "core/api_key.h"

#include <cstring>
#include <gtest/gtest.h>
#include <set>
#include <string>

using namespace vector_vault;

TEST(ApiKey, NewKeysParseBackAndDiffer)
{
	std::set<std::string> seen;
	for (int i = 0; i < 200; i++)
	{
		ParsedApiKey k;
		char text[kApiKeyLength + 1];
		ASSERT_TRUE(NewApiKey(&k, text).ok());
		ASSERT_EQ(strlen(text), kApiKeyLength);
		ASSERT_EQ(strncmp(text, "vv_", 3), 0);
		ParsedApiKey back;
		ASSERT_TRUE(ParseApiKey(text, strlen(text), &back).ok()) << text;
		EXPECT_EQ(back.id, k.id);
		EXPECT_EQ(memcmp(back.secret, k.secret, kApiKeySecretBytes), 0);
		seen.insert(text);
	}
	EXPECT_EQ(seen.size(), 200u);
}

TEST(ApiKey, EverySingleCharacterTypoIsCaught)
{
	ParsedApiKey k;
	char text[kApiKeyLength + 1];
	ASSERT_TRUE(NewApiKey(&k, text).ok());
	const char alphabet[] = "0123456789abcdef_xA";
	for (size_t i = 0; i < kApiKeyLength; i++)
	{
		for (const char *c = alphabet; *c; c++)
		{
			if (*c == text[i])
				continue;
			std::string t(text);
			t[i] = *c;
			ParsedApiKey out;
			EXPECT_FALSE(ParseApiKey(t.data(), t.size(), &out).ok())
				<< "position " << i << " char " << *c;
		}
	}
	ParsedApiKey out;
	EXPECT_FALSE(ParseApiKey(text, kApiKeyLength - 1, &out).ok());
	EXPECT_FALSE(ParseApiKey("", 0, &out).ok());
}

TEST(ApiKey, MessagesNeverContainTheSecret)
{
	ParsedApiKey k;
	char text[kApiKeyLength + 1];
	ASSERT_TRUE(NewApiKey(&k, text).ok());
	std::string t(text);
	t[kApiKeyLength - 1] = t[kApiKeyLength - 1] == '0' ? '1' : '0';
	ParsedApiKey out;
	Status s = ParseApiKey(t.data(), t.size(), &out);
	ASSERT_FALSE(s.ok());
	std::string secret = t.substr(3 + kApiKeyIdHex + 1, kApiKeySecretHex);
	EXPECT_EQ(std::string(s.message()).find(secret.substr(0, 8)), std::string::npos);
}

TEST(ApiKey, Crc32AndSha256KnownAnswers)
{
	const char *msg = "123456789";
	EXPECT_EQ(Crc32(reinterpret_cast<const uint8_t *>(msg), 9), 0xCBF43926u);
	uint8_t d[kSha256Bytes];
	ASSERT_TRUE(Sha256(reinterpret_cast<const uint8_t *>("abc"), 3, d).ok());
	const uint8_t want[4] = {0xba, 0x78, 0x16, 0xbf};
	EXPECT_EQ(memcmp(d, want, 4), 0);
}

TEST(Password, HashAndVerify)
{
	PasswordHash h;
	ASSERT_TRUE(HashPassword("correct horse", 13, &h).ok());
	bool match = false;
	ASSERT_TRUE(VerifyPassword("correct horse", 13, h, &match).ok());
	EXPECT_TRUE(match);
	ASSERT_TRUE(VerifyPassword("correct horsf", 13, h, &match).ok());
	EXPECT_FALSE(match);
	PasswordHash h2;
	ASSERT_TRUE(HashPassword("correct horse", 13, &h2).ok());
	EXPECT_NE(memcmp(h.salt, h2.salt, sizeof(h.salt)), 0) << "fresh salt per hash";
	EXPECT_NE(memcmp(h.hash, h2.hash, sizeof(h.hash)), 0);
	h.log2_n = 40;
	EXPECT_FALSE(VerifyPassword("correct horse", 13, h, &match).ok());
}
