/* principal_token_test.cpp — Citus principal tokens: round trip, role, transaction and session
 * binding, tampering. */
#include "core/principal_token.h"

#include <cstring>
#include <gtest/gtest.h>
#include <string>

using namespace vector_vault;

namespace
{

/* A token key derived from a fixed master key. */
void
TestKey(uint8_t k[kPrincipalTokenKeyBytes], uint8_t fill = 7)
{
	uint8_t master[32];
	memset(master, fill, sizeof(master));
	ASSERT_TRUE(DerivePrincipalTokenKey(master, k).ok());
}

} // namespace

TEST(PrincipalToken, RoundTripNamesKeyExpiryAndDigest)
{
	uint8_t k[kPrincipalTokenKeyBytes];
	TestKey(k);
	uint8_t digest[32], other[32];
	memset(digest, 0x5a, sizeof(digest));
	memset(other, 0x5b, sizeof(other));
	char token[kPrincipalTokenMax];
	ASSERT_TRUE(MakePrincipalToken(k, "00112233aabbccdd", "app", 1700000000, digest, token).ok());
	PrincipalTokenClaims c;
	ASSERT_TRUE(OpenPrincipalToken(k, token, "app", &c).ok()) << token;
	EXPECT_STREQ(c.key_id, "00112233aabbccdd");
	EXPECT_EQ(c.expiry, 1700000000u);
	EXPECT_TRUE(PrincipalTokenDigestMatches(k, digest, c.digest_mac));
	EXPECT_FALSE(PrincipalTokenDigestMatches(k, other, c.digest_mac));
	EXPECT_EQ(std::string(token).find("5a5a5a"), std::string::npos) << "digest in clear";
}

TEST(PrincipalToken, BoundToRoleAndMasterKey)
{
	uint8_t k[kPrincipalTokenKeyBytes], k2[kPrincipalTokenKeyBytes];
	TestKey(k);
	TestKey(k2, 8);
	uint8_t digest[32] = {1};
	char token[kPrincipalTokenMax];
	ASSERT_TRUE(MakePrincipalToken(k, "00112233aabbccdd", "app", 1700000000, digest, token).ok());
	PrincipalTokenClaims c;
	EXPECT_FALSE(OpenPrincipalToken(k, token, "other", &c).ok());
	EXPECT_FALSE(OpenPrincipalToken(k2, token, "app", &c).ok());
}

/* vault/citus.cpp binds tokens to "<len>:<role>|dx=<initiator>.<number>.<stamp>|gp=<gpid>": a
 * token of one distributed transaction or session does not open in another. */
TEST(PrincipalToken, BoundToTransactionAndSession)
{
	uint8_t k[kPrincipalTokenKeyBytes];
	TestKey(k);
	uint8_t digest[32] = {2};
	char token[kPrincipalTokenMax];
	const char *made = "3:app|dx=0.24.818751910305024|gp=10000021950";
	ASSERT_TRUE(MakePrincipalToken(k, "00112233aabbccdd", made, 1700000000, digest, token).ok());
	PrincipalTokenClaims c;
	EXPECT_TRUE(OpenPrincipalToken(k, token, made, &c).ok());
	EXPECT_FALSE(
		OpenPrincipalToken(k, token, "3:app|dx=0.25.818751910305024|gp=10000021950", &c).ok());
	EXPECT_FALSE(
		OpenPrincipalToken(k, token, "3:app|dx=0.24.818751910305025|gp=10000021950", &c).ok());
	EXPECT_FALSE(
		OpenPrincipalToken(k, token, "3:app|dx=1.24.818751910305024|gp=10000021950", &c).ok());
	EXPECT_FALSE(
		OpenPrincipalToken(k, token, "3:app|dx=0.24.818751910305024|gp=10000021951", &c).ok());
}

TEST(PrincipalToken, EverySingleCharacterChangeIsRefused)
{
	uint8_t k[kPrincipalTokenKeyBytes];
	TestKey(k);
	uint8_t digest[32] = {9};
	char token[kPrincipalTokenMax];
	ASSERT_TRUE(MakePrincipalToken(k, "00112233aabbccdd", "app", 1700000000, digest, token).ok());
	size_t n = strlen(token);
	for (size_t i = 0; i < n; i++)
	{
		std::string t(token);
		t[i] = t[i] == '1' ? '2' : '1';
		PrincipalTokenClaims c;
		EXPECT_FALSE(OpenPrincipalToken(k, t.c_str(), "app", &c).ok()) << i;
	}
	PrincipalTokenClaims c;
	EXPECT_FALSE(OpenPrincipalToken(k, "", "app", &c).ok());
	EXPECT_FALSE(OpenPrincipalToken(k, "vvpt1.", "app", &c).ok());
	EXPECT_FALSE(
		OpenPrincipalToken(k, std::string(token).substr(0, n - 1).c_str(), "app", &c).ok());
}
