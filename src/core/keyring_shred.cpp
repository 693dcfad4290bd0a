/* keyring_shred.cpp — destroying a vault's data-key entries by content (see keyring_shred.h). */
#include "core/keyring_shred.h"

#include "core/keyring_format.h"
#include "core/secure.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace vector_vault
{

namespace
{

/* True when name is the entry name of vault_id (and key_version, unless 0). */
bool
IsEntryNameOf(const char *name, uint64_t vault_id, uint32_t key_version)
{
	uint64_t v;
	uint32_t ver;
	return ParseDataKeyFileName(name, &v, &ver) && v == vault_id &&
		   (key_version == 0 || ver == key_version);
}

/* True when bytes are a data-key entry of vault_id (and key_version, unless 0). */
bool
IsEntryOf(const uint8_t *bytes, size_t len, uint64_t vault_id, uint32_t key_version)
{
	KeyringEntryInfo info;
	return PeekKeyringEntry(bytes, len, &info).ok() && info.kind == KeyringEntryKind::kDataKey &&
		   info.vault_id == vault_id && (key_version == 0 || info.key_version == key_version);
}

/* True when all len bytes are zero (an entry a crash left half-shredded). */
bool
AllZero(const uint8_t *bytes, size_t len)
{
	uint8_t acc = 0;
	for (size_t i = 0; i < len; i++)
		acc |= bytes[i];
	return acc == 0;
}

/* Notes the first problem for the caller's warning. */
void
Note(ShredReport *report, const char *what, const char *name)
{
	if (report->first_problem[0] == '\0')
		snprintf(report->first_problem, sizeof(report->first_problem), "\"%s\" %s", name, what);
}

/* Writes zeros over the first len bytes of fd and fsyncs; false on failure. */
bool
Zero(int fd, size_t len)
{
	uint8_t zeros[kKeyringEntryBytes] = {0};
	size_t done = 0;
	while (done < len)
	{
		ssize_t n = pwrite(fd, zeros, len - done, static_cast<off_t>(done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		done += static_cast<size_t>(n);
	}
	return fsync(fd) == 0;
}

} // namespace

/* Destroys a vault's entries by content; see keyring_shred.h. */
Status
ShredDataKeyEntries(const char *dir, uint64_t vault_id, uint32_t key_version, ShredReport *report)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return Status::Error(Code::kIo, "could not open keyring directory \"%s\": %s", dir,
							 strerror(errno));
	DIR *d = fdopendir(dup(dfd));
	if (d == nullptr)
	{
		close(dfd);
		return Status::Error(Code::kIo, "could not read keyring directory \"%s\": %s", dir,
							 strerror(errno));
	}
	std::vector<std::string> names;
	struct dirent *de;
	while ((de = readdir(d)) != nullptr)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			names.emplace_back(de->d_name);
	closedir(d);

	Status result;
	bool changed = false;
	for (const std::string &n : names)
	{
		const char *name = n.c_str();
		bool named = IsEntryNameOf(name, vault_id, key_version);
		struct stat lst;
		if (fstatat(dfd, name, &lst, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (S_ISLNK(lst.st_mode))
		{
			if (!named)
				continue;
			/* Never followed: the link goes, its target stays as it is. */
			if (unlinkat(dfd, name, 0) == 0)
			{
				report->links_removed++;
				changed = true;
				Note(report, "was a symbolic link (removed without following it)", name);
			}
			else if (result.ok())
				result = Status::Error(Code::kIo, "could not remove link \"%s/%s\": %s", dir, name,
									   strerror(errno));
			continue;
		}
		if (!S_ISREG(lst.st_mode) || lst.st_size != static_cast<off_t>(kKeyringEntryBytes))
		{
			if (named)
			{
				report->refused++;
				Note(report, "is not a keyring entry (left untouched)", name);
			}
			continue;
		}
		int fd = openat(dfd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		if (fd < 0)
		{
			if (named && result.ok())
				result = Status::Error(Code::kIo, "could not open \"%s/%s\": %s", dir, name,
									   strerror(errno));
			continue;
		}
		struct stat st;
		uint8_t bytes[kKeyringEntryBytes];
		ssize_t got = -1;
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_ino == lst.st_ino &&
			st.st_dev == lst.st_dev)
			got = pread(fd, bytes, sizeof(bytes), 0);
		bool ours = got == static_cast<ssize_t>(sizeof(bytes)) &&
					(IsEntryOf(bytes, sizeof(bytes), vault_id, key_version) ||
					 (named && AllZero(bytes, sizeof(bytes))));
		SecureZero(bytes, sizeof(bytes));
		if (!ours)
		{
			close(fd);
			if (named)
			{
				report->refused++;
				Note(report, "does not hold this vault's key (left untouched)", name);
			}
			continue;
		}
		bool zeroed = Zero(fd, kKeyringEntryBytes);
		close(fd);
		if (!zeroed || unlinkat(dfd, name, 0) != 0)
		{
			if (result.ok())
				result = Status::Error(Code::kIo, "could not destroy keyring entry \"%s/%s\": %s",
									   dir, name, strerror(errno));
			continue;
		}
		report->destroyed++;
		changed = true;
	}
	if (changed && fsync(dfd) != 0 && result.ok())
		result =
			Status::Error(Code::kIo, "could not fsync directory \"%s\": %s", dir, strerror(errno));
	close(dfd);
	return result;
}

} // namespace vector_vault
