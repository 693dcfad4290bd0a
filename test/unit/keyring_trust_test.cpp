/* keyring_trust_test.cpp — the keyring directory's trust checks, no-follow file access, and
 * shredding by content (issue 14, "Keyring directory trust"). */
#include "core/durable_file.h"
#include "core/keyring_format.h"
#include "core/keyring_shred.h"

#include <cstdio>
#include <cstring>
#include <gtest/gtest.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

using namespace vector_vault;

namespace
{

const uint8_t kMaster[kKeyBytes] = {7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
									7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 2};
const uint8_t kData[kKeyBytes] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
								  17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

/* A temporary keyring directory, removed with everything in it at the end of a test. */
struct TempRing
{
	std::string base;
	std::string dir;

	TempRing()
	{
		char tmpl[] = "/tmp/vv_trust_test_XXXXXX";
		base = mkdtemp(tmpl);
		dir = base + "/ring";
		mkdir(dir.c_str(), 0700);
	}
	~TempRing()
	{
		std::string cmd = "rm -rf '" + base + "'";
		(void) system(cmd.c_str());
	}
	std::string Path(const std::string &name) const
	{
		return dir + "/" + name;
	}
};

/* Writes a data-key entry of (vault, version) to dir/name. */
void
WriteEntry(const TempRing &r, const std::string &name, uint64_t vault, uint32_t version)
{
	KeyringEntryInfo info;
	info.kind = KeyringEntryKind::kDataKey;
	info.vault_id = vault;
	info.key_version = version;
	uint8_t entry[kKeyringEntryBytes];
	ASSERT_TRUE(SealKeyringEntry(kMaster, info, kData, entry).ok());
	ASSERT_TRUE(WriteFileDurably(r.dir.c_str(), name.c_str(), entry, sizeof(entry)).ok());
}

/* The bytes of a file ("" when it cannot be read). */
std::string
Slurp(const std::string &path)
{
	FILE *f = fopen(path.c_str(), "rb");
	if (f == nullptr)
		return "";
	std::string s;
	char buf[256];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		s.append(buf, n);
	fclose(f);
	return s;
}

/* The entry file name of (vault, version). */
std::string
EntryName(uint64_t vault, uint32_t version)
{
	char name[kKeyringFileNameMax];
	DataKeyFileName(vault, version, name);
	return name;
}

} // namespace

TEST(KeyringTrust, DirectoryModeAndOwner)
{
	TempRing r;
	EXPECT_TRUE(CheckKeyringDirectory(r.dir.c_str()).ok());
	chmod(r.dir.c_str(), 0750);
	EXPECT_TRUE(CheckKeyringDirectory(r.dir.c_str()).ok()); /* group may read, not write */
	chmod(r.dir.c_str(), 0770);
	Status s = CheckKeyringDirectory(r.dir.c_str());
	EXPECT_FALSE(s.ok());
	EXPECT_NE(strstr(s.message(), "writable by group or others (mode 0770)"), nullptr);
	chmod(r.dir.c_str(), 0777);
	EXPECT_FALSE(CheckKeyringDirectory(r.dir.c_str()).ok());
	chmod(r.dir.c_str(), 0700);
	if (geteuid() == 0)
	{
		ASSERT_EQ(chown(r.dir.c_str(), 12345, 12345), 0);
		s = CheckKeyringDirectory(r.dir.c_str());
		EXPECT_FALSE(s.ok());
		EXPECT_NE(strstr(s.message(), "owned by user id 12345"), nullptr);
	}
}

TEST(KeyringTrust, ReadsAndRemovalsNeverFollowLinks)
{
	TempRing r;
	std::string victim = r.base + "/victim";
	FILE *f = fopen(victim.c_str(), "w");
	fputs("precious", f);
	fclose(f);
	ASSERT_EQ(symlink(victim.c_str(), r.Path("link.count").c_str()), 0);
	uint8_t buf[64];
	size_t len = 0;
	Status s = ReadSmallFile(r.dir.c_str(), "link.count", buf, sizeof(buf), &len);
	EXPECT_FALSE(s.ok());
	EXPECT_NE(strstr(s.message(), "symbolic link"), nullptr);
	EXPECT_TRUE(FileExists(r.dir.c_str(), "link.count"));
	ASSERT_TRUE(RemoveFileDurably(r.dir.c_str(), "link.count").ok());
	EXPECT_FALSE(FileExists(r.dir.c_str(), "link.count"));
	EXPECT_EQ(Slurp(victim), "precious"); /* the target was not zeroed */
	/* A hard link: unlinked, but the other name's bytes stay. */
	ASSERT_EQ(link(victim.c_str(), r.Path("hard.count").c_str()), 0);
	ASSERT_TRUE(RemoveFileDurably(r.dir.c_str(), "hard.count").ok());
	EXPECT_EQ(Slurp(victim), "precious");
	/* A FIFO neither blocks a read nor is read. */
	ASSERT_EQ(mkfifo(r.Path("fifo.count").c_str(), 0600), 0);
	EXPECT_FALSE(ReadSmallFile(r.dir.c_str(), "fifo.count", buf, sizeof(buf), &len).ok());
	ASSERT_TRUE(RemoveFileDurably(r.dir.c_str(), "fifo.count").ok());
}

TEST(KeyringTrust, ShredFindsEntriesByContentAndNeverFollowsLinks)
{
	TempRing r;
	const uint64_t a = 0xaaaa, b = 0xbbbb;
	WriteEntry(r, EntryName(b, 1), b, 1);
	std::string b_before = Slurp(r.Path(EntryName(b, 1)));
	/* A's version 1 renamed away inside the keyring, a link to B's key in its place. */
	WriteEntry(r, "stash-a1", a, 1);
	ASSERT_EQ(symlink(r.Path(EntryName(b, 1)).c_str(), r.Path(EntryName(a, 1)).c_str()), 0);
	/* A's version 2 file replaced by a hard link to an unrelated file; its key in a .next file. */
	std::string victim = r.base + "/victim";
	FILE *f = fopen(victim.c_str(), "w");
	fputs("server-owned file", f);
	fclose(f);
	ASSERT_EQ(link(victim.c_str(), r.Path(EntryName(a, 2)).c_str()), 0);
	WriteEntry(r, EntryName(a, 2) + ".next", a, 2);
	/* A's version 3 as it should be; a half-shredded (zeroed) version 4 left by a crash. */
	WriteEntry(r, EntryName(a, 3), a, 3);
	std::string zeros(kKeyringEntryBytes, '\0');
	ASSERT_TRUE(WriteFileDurably(r.dir.c_str(), EntryName(a, 4).c_str(),
								 reinterpret_cast<const uint8_t *>(zeros.data()), zeros.size())
					.ok());

	ShredReport report;
	Status s = ShredDataKeyEntries(r.dir.c_str(), a, 0, &report);
	ASSERT_TRUE(s.ok()) << s.message();
	EXPECT_EQ(report.destroyed, 4); /* stash-a1, v2 .next, v3, zeroed v4 */
	EXPECT_EQ(report.links_removed, 1);
	EXPECT_EQ(report.refused, 1); /* the hard link to the unrelated file */
	EXPECT_NE(strstr(report.first_problem, "symbolic link"), nullptr);
	EXPECT_EQ(Slurp(r.Path(EntryName(b, 1))), b_before); /* B's key untouched */
	EXPECT_EQ(Slurp(victim), "server-owned file");       /* the unrelated file untouched */
	EXPECT_FALSE(FileExists(r.dir.c_str(), "stash-a1"));
	EXPECT_FALSE(FileExists(r.dir.c_str(), EntryName(a, 1).c_str()));
	EXPECT_FALSE(FileExists(r.dir.c_str(), (EntryName(a, 2) + ".next").c_str()));
	EXPECT_FALSE(FileExists(r.dir.c_str(), EntryName(a, 3).c_str()));
	EXPECT_FALSE(FileExists(r.dir.c_str(), EntryName(a, 4).c_str()));
	EXPECT_TRUE(FileExists(r.dir.c_str(), EntryName(a, 2).c_str())); /* refused, reported */
}

TEST(KeyringTrust, ShredOneVersionKeepsTheOthers)
{
	TempRing r;
	const uint64_t a = 0x1234;
	WriteEntry(r, EntryName(a, 1), a, 1);
	WriteEntry(r, EntryName(a, 2), a, 2);
	ShredReport report;
	ASSERT_TRUE(ShredDataKeyEntries(r.dir.c_str(), a, 1, &report).ok());
	EXPECT_EQ(report.destroyed, 1);
	EXPECT_FALSE(FileExists(r.dir.c_str(), EntryName(a, 1).c_str()));
	EXPECT_TRUE(FileExists(r.dir.c_str(), EntryName(a, 2).c_str()));
	/* A file named as the vault's entry that holds another vault's key is left alone. */
	WriteEntry(r, EntryName(a, 3), 0x9999, 1);
	report = ShredReport();
	ASSERT_TRUE(ShredDataKeyEntries(r.dir.c_str(), a, 3, &report).ok());
	EXPECT_EQ(report.destroyed, 0);
	EXPECT_EQ(report.refused, 1);
	EXPECT_TRUE(FileExists(r.dir.c_str(), EntryName(a, 3).c_str()));
}
