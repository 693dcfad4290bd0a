/* keyring_test.cpp — keyring entries: wrap/unwrap, binding to vault and version, file names. */
#include "core/durable_file.h"
#include "core/keyring_format.h"

#include <cstdlib>
#include <cstring>
#include <gtest/gtest.h>
#include <string>
#include <unistd.h>

using namespace vector_vault;

namespace
{

const uint8_t kMaster[kKeyBytes] = {9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
									9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 1};
const uint8_t kData[kKeyBytes] = {42, 41, 40, 39, 38, 37, 36, 35, 34, 33, 32, 31, 30, 29, 28, 27,
								  26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11};

/* The expected-fields record for a data key. */
KeyringEntryInfo
DataInfo(uint64_t vault, uint32_t ver)
{
	KeyringEntryInfo i;
	i.kind = KeyringEntryKind::kDataKey;
	i.vault_id = vault;
	i.key_version = ver;
	i.created_at = 1700000000;
	return i;
}

} // namespace

TEST(KeyringEntry, WrapUnwrap)
{
	uint8_t entry[kKeyringEntryBytes];
	ASSERT_TRUE(SealKeyringEntry(kMaster, DataInfo(77, 2), kData, entry).ok());
	/* The data key is not in the entry in the clear. */
	EXPECT_EQ(memmem(entry, sizeof(entry), kData, 8), nullptr);
	uint8_t out[kKeyBytes];
	ASSERT_TRUE(OpenKeyringEntry(kMaster, entry, sizeof(entry), DataInfo(77, 2), out).ok());
	EXPECT_EQ(memcmp(out, kData, kKeyBytes), 0);
}

TEST(KeyringEntry, BoundToVaultAndVersion)
{
	uint8_t entry[kKeyringEntryBytes];
	ASSERT_TRUE(SealKeyringEntry(kMaster, DataInfo(77, 2), kData, entry).ok());
	uint8_t out[kKeyBytes];
	EXPECT_FALSE(OpenKeyringEntry(kMaster, entry, sizeof(entry), DataInfo(78, 2), out).ok());
	EXPECT_FALSE(OpenKeyringEntry(kMaster, entry, sizeof(entry), DataInfo(77, 3), out).ok());
	/* Rewriting the header fields to match is caught by the tag. */
	entry[8] = 78;
	EXPECT_EQ(OpenKeyringEntry(kMaster, entry, sizeof(entry), DataInfo(78, 2), out).code(),
			  Code::kCorrupt);
}

TEST(KeyringEntry, WrongMasterAndEveryFlippedByteFail)
{
	uint8_t entry[kKeyringEntryBytes];
	ASSERT_TRUE(SealKeyringEntry(kMaster, DataInfo(5, 1), kData, entry).ok());
	uint8_t out[kKeyBytes];
	uint8_t other[kKeyBytes];
	memcpy(other, kMaster, kKeyBytes);
	other[3] ^= 4;
	EXPECT_EQ(OpenKeyringEntry(other, entry, sizeof(entry), DataInfo(5, 1), out).code(),
			  Code::kCorrupt);
	for (size_t i = 0; i < sizeof(entry); i++)
	{
		entry[i] ^= 0x10;
		EXPECT_FALSE(OpenKeyringEntry(kMaster, entry, sizeof(entry), DataInfo(5, 1), out).ok())
			<< i;
		entry[i] ^= 0x10;
	}
	EXPECT_FALSE(OpenKeyringEntry(kMaster, entry, sizeof(entry) - 1, DataInfo(5, 1), out).ok());
}

TEST(KeyringEntry, FileNames)
{
	char name[kKeyringFileNameMax];
	DataKeyFileName(0x00ab00cd00ef0012ull, 17, name);
	EXPECT_STREQ(name, "vault-00ab00cd00ef0012-v17.key");
	uint64_t vault = 0;
	uint32_t ver = 0;
	ASSERT_TRUE(ParseDataKeyFileName(name, &vault, &ver));
	EXPECT_EQ(vault, 0x00ab00cd00ef0012ull);
	EXPECT_EQ(ver, 17u);
	EXPECT_FALSE(ParseDataKeyFileName("vault-00ab00cd00ef0012-v0.key", &vault, &ver));
	EXPECT_FALSE(ParseDataKeyFileName("vault-00AB00cd00ef0012-v1.key", &vault, &ver));
	EXPECT_FALSE(ParseDataKeyFileName("vault-00ab00cd00ef0012-v1.ke", &vault, &ver));
	EXPECT_FALSE(ParseDataKeyFileName("master.check", &vault, &ver));
	ShredIntentFileName(3, name);
	EXPECT_STREQ(name, "shred-0000000000000003.intent");
	ASSERT_TRUE(ParseShredIntentFileName(name, &vault));
	EXPECT_EQ(vault, 3u);
}

TEST(DurableFile, WriteReadRemove)
{
	char tmpl[] = "/tmp/vv_keyring_test_XXXXXX";
	ASSERT_NE(mkdtemp(tmpl), nullptr);
	std::string dir = std::string(tmpl) + "/ring";
	ASSERT_TRUE(EnsurePrivateDirectory(dir.c_str()).ok());
	const uint8_t data[5] = {1, 2, 3, 4, 5};
	ASSERT_TRUE(WriteFileDurably(dir.c_str(), "a.key", data, 5).ok());
	EXPECT_TRUE(FileExists(dir.c_str(), "a.key"));
	uint8_t buf[16];
	size_t len = 0;
	ASSERT_TRUE(ReadSmallFile(dir.c_str(), "a.key", buf, sizeof(buf), &len).ok());
	EXPECT_EQ(len, 5u);
	EXPECT_EQ(ReadSmallFile(dir.c_str(), "a.key", buf, 4, &len).code(), Code::kCorrupt);
	EXPECT_EQ(ReadSmallFile(dir.c_str(), "b.key", buf, 16, &len).code(), Code::kNotFound);
	ASSERT_TRUE(RemoveFileDurably(dir.c_str(), "a.key").ok());
	EXPECT_FALSE(FileExists(dir.c_str(), "a.key"));
	EXPECT_TRUE(RemoveFileDurably(dir.c_str(), "a.key").ok());
	EXPECT_TRUE(PathIsInside(dir.c_str(), tmpl));
	EXPECT_FALSE(PathIsInside(tmpl, dir.c_str()));
	rmdir(dir.c_str());
	rmdir(tmpl);
}
