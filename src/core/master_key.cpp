/* master_key.cpp — parsing and fetching the master key (see master_key.h). */
#include "core/master_key.h"

#include "core/hex.h"
#include "core/secure.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace vector_vault
{

namespace
{

/* True for the whitespace we strip around a key. */
bool
IsSpace(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

constexpr size_t kMaxKeyText = 4096;

} // namespace

/* Decodes a hex key, ignoring surrounding whitespace. */
Status
ParseMasterKeyHex(const char *text, size_t len, uint8_t out[kKeyBytes])
{
	size_t start = 0;
	size_t end = len;
	while (start < end && IsSpace(text[start]))
		start++;
	while (end > start && IsSpace(text[end - 1]))
		end--;
	size_t n = end - start;
	if (n == 0)
		return Status::Error(Code::kKeyUnavailable, "master key is empty");
	if (n != 2 * kKeyBytes)
		return Status::Error(Code::kKeyUnavailable,
							 "master key must be exactly 64 hexadecimal characters, got %zu "
							 "characters",
							 n);
	uint8_t key[kKeyBytes];
	for (size_t i = 0; i < kKeyBytes; i++)
	{
		int hi = HexDigitAnyCase(text[start + 2 * i]);
		int lo = HexDigitAnyCase(text[start + 2 * i + 1]);
		if (hi < 0 || lo < 0)
		{
			SecureZero(key, sizeof(key));
			return Status::Error(Code::kKeyUnavailable,
								 "master key contains a character that is not hexadecimal");
		}
		key[i] = static_cast<uint8_t>(hi << 4 | lo);
	}
	memcpy(out, key, kKeyBytes);
	SecureZero(key, sizeof(key));
	return Status::Ok();
}

/* Reads a key file that only its owner may read. */
Status
ReadMasterKeyFile(const char *path, uint8_t out[kKeyBytes])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return Status::Error(Code::kKeyUnavailable, "could not open master key file \"%s\": %s",
							 path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
	{
		close(fd);
		return Status::Error(Code::kKeyUnavailable, "master key file \"%s\" is not a regular file",
							 path);
	}
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
	{
		close(fd);
		return Status::Error(Code::kKeyUnavailable,
							 "master key file \"%s\" is accessible by group or others (mode %04o)",
							 path, static_cast<unsigned>(st.st_mode & 07777));
	}
	char buf[kMaxKeyText];
	size_t total = 0;
	for (;;)
	{
		ssize_t n = read(fd, buf + total, sizeof(buf) - total);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		total += static_cast<size_t>(n);
		if (total == sizeof(buf))
			break;
	}
	close(fd);
	Status s = ParseMasterKeyHex(buf, total, out);
	SecureZero(buf, sizeof(buf));
	return s;
}

/* Runs command through /bin/sh and parses what it prints. */
Status
RunMasterKeyCommand(const char *command, uint8_t out[kKeyBytes])
{
	int pipefd[2];
	if (pipe(pipefd) != 0)
		return Status::Error(Code::kKeyUnavailable, "could not create pipe: %s", strerror(errno));
	fflush(nullptr);
	pid_t pid = fork();
	if (pid < 0)
	{
		close(pipefd[0]);
		close(pipefd[1]);
		return Status::Error(Code::kKeyUnavailable, "could not fork: %s", strerror(errno));
	}
	if (pid == 0)
	{
		dup2(pipefd[1], STDOUT_FILENO);
		close(pipefd[0]);
		close(pipefd[1]);
		execl("/bin/sh", "sh", "-c", command, static_cast<char *>(nullptr));
		_exit(127);
	}
	close(pipefd[1]);
	char buf[kMaxKeyText];
	size_t total = 0;
	for (;;)
	{
		if (total == sizeof(buf))
		{
			char sink[256];
			ssize_t n = read(pipefd[0], sink, sizeof(sink));
			SecureZero(sink, sizeof(sink));
			if (n > 0 || (n < 0 && errno == EINTR))
				continue;
			break;
		}
		ssize_t n = read(pipefd[0], buf + total, sizeof(buf) - total);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		total += static_cast<size_t>(n);
	}
	close(pipefd[0]);
	int wstatus = 0;
	while (waitpid(pid, &wstatus, 0) < 0)
	{
		if (errno != EINTR)
		{
			SecureZero(buf, sizeof(buf));
			return Status::Error(Code::kKeyUnavailable, "could not wait for master key command: %s",
								 strerror(errno));
		}
	}
	if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0)
	{
		SecureZero(buf, sizeof(buf));
		if (WIFEXITED(wstatus))
			return Status::Error(Code::kKeyUnavailable, "master key command exited with status %d",
								 WEXITSTATUS(wstatus));
		return Status::Error(Code::kKeyUnavailable,
							 "master key command was terminated by a signal");
	}
	if (total == sizeof(buf))
	{
		SecureZero(buf, sizeof(buf));
		return Status::Error(Code::kKeyUnavailable, "master key command printed too much output");
	}
	Status s = ParseMasterKeyHex(buf, total, out);
	SecureZero(buf, sizeof(buf));
	return s;
}

/* Encodes a key as lower-case hex. */
void
FormatKeyHex(const uint8_t key[kKeyBytes], char out[2 * kKeyBytes + 1])
{
	EncodeHexLower(key, kKeyBytes, out);
	out[2 * kKeyBytes] = '\0';
}

} // namespace vector_vault
