/* master_key_test.cpp — master key parsing and fetching; errors never echo key text. */
#include "core/master_key_text.h"

#include <cstdio>
#include <cstring>
#include <ctime>
#include <gtest/gtest.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

using namespace vector_vault;

namespace
{
const char *kHex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
}

TEST(MasterKey, ParsesHexWithWhitespace)
{
	uint8_t key[kKeyBytes];
	std::string text = std::string("  ") + kHex + "\n";
	ASSERT_TRUE(ParseMasterKeyHex(text.data(), text.size(), key).ok());
	for (int i = 0; i < 32; i++)
		EXPECT_EQ(key[i], i);
	std::string upper = "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F";
	ASSERT_TRUE(ParseMasterKeyHex(upper.data(), upper.size(), key).ok());
	EXPECT_EQ(key[10], 10);
	char hex[65];
	FormatKeyHex(key, hex);
	EXPECT_STREQ(hex, kHex);
}

TEST(MasterKey, RejectsShortLongNonHexEmpty)
{
	uint8_t key[kKeyBytes];
	std::string s(kHex);
	Status st = ParseMasterKeyHex(s.data(), 63, key);
	EXPECT_EQ(st.code(), Code::kKeyUnavailable);
	EXPECT_NE(strstr(st.message(), "64 hexadecimal"), nullptr);
	std::string longer = s + "00";
	EXPECT_FALSE(ParseMasterKeyHex(longer.data(), longer.size(), key).ok());
	std::string bad = s;
	bad[10] = 'g';
	st = ParseMasterKeyHex(bad.data(), bad.size(), key);
	EXPECT_FALSE(st.ok());
	/* The message never contains any of the key text. */
	EXPECT_EQ(strstr(st.message(), "0102030405"), nullptr);
	EXPECT_EQ(strstr(st.message(), "g"), strstr(st.message(), "g"));
	EXPECT_NE(strstr(st.message(), "not hexadecimal"), nullptr);
	EXPECT_EQ(ParseMasterKeyHex("\n", 1, key).code(), Code::kKeyUnavailable);
}

TEST(MasterKey, FileAndCommand)
{
	char tmpl[] = "/tmp/vv_master_key_test_XXXXXX";
	ASSERT_NE(mkdtemp(tmpl), nullptr);
	std::string path = std::string(tmpl) + "/master.key";
	FILE *f = fopen(path.c_str(), "w");
	ASSERT_NE(f, nullptr);
	fprintf(f, "%s\n", kHex);
	fclose(f);
	chmod(path.c_str(), 0600);
	uint8_t key[kKeyBytes];
	ASSERT_TRUE(ReadMasterKeyFile(path.c_str(), key).ok());
	EXPECT_EQ(key[31], 31);
	chmod(path.c_str(), 0644);
	EXPECT_EQ(ReadMasterKeyFile(path.c_str(), key).code(), Code::kKeyUnavailable);
	chmod(path.c_str(), 0600);
	EXPECT_FALSE(ReadMasterKeyFile((path + ".missing").c_str(), key).ok());

	std::string cmd = "cat " + path;
	uint8_t key2[kKeyBytes];
	ASSERT_TRUE(RunMasterKeyCommand(cmd.c_str(), key2).ok());
	EXPECT_EQ(memcmp(key, key2, kKeyBytes), 0);
	Status st = RunMasterKeyCommand("exit 3", key2);
	EXPECT_FALSE(st.ok());
	EXPECT_NE(strstr(st.message(), "status 3"), nullptr);
	EXPECT_FALSE(RunMasterKeyCommand("echo abc", key2).ok());
	unlink(path.c_str());
	rmdir(tmpl);
}

/* Issue 14: a hanging key command kept the server from starting, and one that left a child
 * holding standard output never returned. */
TEST(MasterKey, CommandTimeoutAndLeftoverChildren)
{
	char tmpl[] = "/tmp/vv_master_key_cmd_XXXXXX";
	ASSERT_NE(mkdtemp(tmpl), nullptr);
	std::string path = std::string(tmpl) + "/master.key";
	FILE *f = fopen(path.c_str(), "w");
	ASSERT_NE(f, nullptr);
	fprintf(f, "%s\n", kHex);
	fclose(f);
	uint8_t key[kKeyBytes];
	time_t t0 = time(nullptr);
	Status st = RunMasterKeyCommand("sleep 30", key, 1);
	EXPECT_FALSE(st.ok());
	EXPECT_NE(strstr(st.message(), "did not exit within 1 seconds"), nullptr) << st.message();
	EXPECT_LE(time(nullptr) - t0, 5);
	/* Prints the key, exits, and leaves a background child holding stdout. */
	std::string cmd = "cat " + path + "; sleep 30 &";
	t0 = time(nullptr);
	st = RunMasterKeyCommand(cmd.c_str(), key, 10);
	EXPECT_TRUE(st.ok()) << st.message();
	EXPECT_EQ(key[31], 31);
	EXPECT_LE(time(nullptr) - t0, 5);
	/* A command that closes stdout and goes on running is still bounded. */
	t0 = time(nullptr);
	cmd = "cat " + path + "; exec >&-; sleep 30";
	st = RunMasterKeyCommand(cmd.c_str(), key, 1);
	EXPECT_FALSE(st.ok());
	EXPECT_LE(time(nullptr) - t0, 5);
	unlink(path.c_str());
	rmdir(tmpl);
}
