/* durable_file.cpp — crash-safe small-file writes and removals (see durable_file.h). */
#include "core/durable_file.h"

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace vector_vault
{

namespace
{

/* Joins dir and name into out; false when it does not fit. */
bool
JoinPath(const char *dir, const char *name, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);
	return n > 0 && static_cast<size_t>(n) < cap;
}

/* Writes all of data to fd, retrying short writes. */
bool
WriteAll(int fd, const uint8_t *data, size_t len)
{
	while (len > 0)
	{
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		data += n;
		len -= static_cast<size_t>(n);
	}
	return true;
}

/* fsyncs a directory so a rename or unlink in it is durable. */
Status
SyncDirectory(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return Status::Error(Code::kIo, "could not open directory \"%s\": %s", dir,
							 strerror(errno));
	int rc = fsync(fd);
	int saved = errno;
	close(fd);
	if (rc != 0)
		return Status::Error(Code::kIo, "could not fsync directory \"%s\": %s", dir,
							 strerror(saved));
	return Status::Ok();
}

} // namespace

/* Atomically and durably writes dir/name. */
Status
WriteFileDurably(const char *dir, const char *name, const uint8_t *data, size_t len)
{
	char path[PATH_MAX];
	char tmp[PATH_MAX];
	char tmpname[128];
	snprintf(tmpname, sizeof(tmpname), ".%s.tmp.%d", name, static_cast<int>(getpid()));
	if (!JoinPath(dir, name, path, sizeof(path)) || !JoinPath(dir, tmpname, tmp, sizeof(tmp)))
		return Status::Error(Code::kIo, "keyring path is too long");
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return Status::Error(Code::kIo, "could not create file \"%s\": %s", tmp, strerror(errno));
	if (!WriteAll(fd, data, len) || fsync(fd) != 0)
	{
		int saved = errno;
		close(fd);
		unlink(tmp);
		return Status::Error(Code::kIo, "could not write file \"%s\": %s", tmp, strerror(saved));
	}
	if (close(fd) != 0)
	{
		int saved = errno;
		unlink(tmp);
		return Status::Error(Code::kIo, "could not close file \"%s\": %s", tmp, strerror(saved));
	}
	if (rename(tmp, path) != 0)
	{
		int saved = errno;
		unlink(tmp);
		return Status::Error(Code::kIo, "could not rename \"%s\" to \"%s\": %s", tmp, path,
							 strerror(saved));
	}
	return SyncDirectory(dir);
}

/* Reads a whole small file. */
Status
ReadSmallFile(const char *dir, const char *name, uint8_t *buf, size_t cap, size_t *len)
{
	char path[PATH_MAX];
	if (!JoinPath(dir, name, path, sizeof(path)))
		return Status::Error(Code::kIo, "keyring path is too long");
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
	{
		if (errno == ENOENT)
			return Status::Error(Code::kNotFound, "file \"%s\" does not exist", path);
		if (errno == ELOOP)
			return Status::Error(Code::kIo,
								 "file \"%s\" is a symbolic link; keyring files must be regular "
								 "files",
								 path);
		return Status::Error(Code::kIo, "could not open file \"%s\": %s", path, strerror(errno));
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
	{
		close(fd);
		return Status::Error(Code::kIo, "file \"%s\" is not a regular file", path);
	}
	size_t total = 0;
	for (;;)
	{
		if (total == cap)
		{
			/* One more byte tells us whether the file is larger than cap. */
			uint8_t extra;
			ssize_t n = read(fd, &extra, 1);
			close(fd);
			if (n != 0)
				return Status::Error(Code::kCorrupt, "file \"%s\" is larger than %zu bytes", path,
									 cap);
			break;
		}
		ssize_t n = read(fd, buf + total, cap - total);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			int saved = errno;
			close(fd);
			return Status::Error(Code::kIo, "could not read file \"%s\": %s", path,
								 strerror(saved));
		}
		if (n == 0)
		{
			close(fd);
			break;
		}
		total += static_cast<size_t>(n);
	}
	*len = total;
	return Status::Ok();
}

/* Overwrites with zeros, unlinks, and fsyncs the directory; never writes through a link. */
Status
RemoveFileDurably(const char *dir, const char *name)
{
	char path[PATH_MAX];
	if (!JoinPath(dir, name, path, sizeof(path)))
		return Status::Error(Code::kIo, "keyring path is too long");
	struct stat lst;
	if (lstat(path, &lst) != 0)
	{
		if (errno == ENOENT)
			return Status::Ok();
		return Status::Error(Code::kIo, "could not stat file \"%s\": %s", path, strerror(errno));
	}
	if (S_ISREG(lst.st_mode))
	{
		int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		if (fd < 0 && errno != ENOENT && errno != ELOOP)
			return Status::Error(Code::kIo, "could not open file \"%s\": %s", path,
								 strerror(errno));
		struct stat st;
		/* Only the file we looked at, only when this is its one name. */
		if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_ino == lst.st_ino &&
			st.st_dev == lst.st_dev && st.st_nlink == 1 && st.st_size > 0 && st.st_size <= 65536)
		{
			uint8_t zeros[4096] = {0};
			size_t left = static_cast<size_t>(st.st_size);
			while (left > 0)
			{
				size_t chunk = left < sizeof(zeros) ? left : sizeof(zeros);
				if (!WriteAll(fd, zeros, chunk))
					break;
				left -= chunk;
			}
			(void) fsync(fd);
		}
		if (fd >= 0)
			close(fd);
	}
	else if (S_ISDIR(lst.st_mode))
		return Status::Error(Code::kIo, "\"%s\" is a directory, not a keyring file", path);
	if (unlink(path) != 0 && errno != ENOENT)
		return Status::Error(Code::kIo, "could not remove file \"%s\": %s", path, strerror(errno));
	return SyncDirectory(dir);
}

/* Unlinks without overwriting, and fsyncs the directory. */
Status
UnlinkDurably(const char *dir, const char *name)
{
	char path[PATH_MAX];
	if (!JoinPath(dir, name, path, sizeof(path)))
		return Status::Error(Code::kIo, "keyring path is too long");
	if (unlink(path) != 0)
	{
		if (errno == ENOENT)
			return Status::Ok();
		return Status::Error(Code::kIo, "could not remove file \"%s\": %s", path, strerror(errno));
	}
	return SyncDirectory(dir);
}

/* Renames within a directory durably. */
Status
RenameDurably(const char *dir, const char *from, const char *to)
{
	char a[PATH_MAX];
	char b[PATH_MAX];
	if (!JoinPath(dir, from, a, sizeof(a)) || !JoinPath(dir, to, b, sizeof(b)))
		return Status::Error(Code::kIo, "keyring path is too long");
	if (rename(a, b) != 0)
		return Status::Error(Code::kIo, "could not rename \"%s\" to \"%s\": %s", a, b,
							 strerror(errno));
	return SyncDirectory(dir);
}

/* True when dir/name exists. */
bool
FileExists(const char *dir, const char *name)
{
	char path[PATH_MAX];
	struct stat st;
	return JoinPath(dir, name, path, sizeof(path)) && lstat(path, &st) == 0;
}

/* Creates dir (0700) if missing; checks it is a writable directory. */
Status
EnsurePrivateDirectory(const char *dir)
{
	struct stat st;
	if (stat(dir, &st) != 0)
	{
		if (errno != ENOENT)
			return Status::Error(Code::kIo, "could not stat \"%s\": %s", dir, strerror(errno));
		if (mkdir(dir, 0700) != 0 && errno != EEXIST)
			return Status::Error(Code::kIo, "could not create directory \"%s\": %s", dir,
								 strerror(errno));
		if (stat(dir, &st) != 0)
			return Status::Error(Code::kIo, "could not stat \"%s\": %s", dir, strerror(errno));
	}
	if (!S_ISDIR(st.st_mode))
		return Status::Error(Code::kIo, "\"%s\" is not a directory", dir);
	if (access(dir, W_OK | X_OK) != 0)
		return Status::Error(Code::kIo, "directory \"%s\" is not writable: %s", dir,
							 strerror(errno));
	return Status::Ok();
}

/* Checks the keyring directory's owner and mode. */
Status
CheckKeyringDirectory(const char *dir)
{
	struct stat st;
	if (stat(dir, &st) != 0)
		return Status::Error(Code::kIo, "could not stat \"%s\": %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return Status::Error(Code::kIo, "\"%s\" is not a directory", dir);
	if (st.st_uid != geteuid())
		return Status::Error(Code::kIo,
							 "keyring directory \"%s\" is owned by user id %u, not by the server's "
							 "user (%u)",
							 dir, static_cast<unsigned>(st.st_uid),
							 static_cast<unsigned>(geteuid()));
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
		return Status::Error(Code::kIo,
							 "keyring directory \"%s\" is writable by group or others (mode %04o)",
							 dir, static_cast<unsigned>(st.st_mode & 07777));
	return Status::Ok();
}

/* True when path resolves to root or to something inside root. */
bool
PathIsInside(const char *path, const char *root)
{
	char rp[PATH_MAX];
	char rr[PATH_MAX];
	if (realpath(path, rp) == nullptr || realpath(root, rr) == nullptr)
		return false;
	size_t n = strlen(rr);
	if (strncmp(rp, rr, n) != 0)
		return false;
	return rp[n] == '\0' || rp[n] == '/' || (n == 1 && rr[0] == '/');
}

} // namespace vector_vault
