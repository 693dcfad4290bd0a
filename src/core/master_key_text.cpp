/* master_key_text.cpp — parsing and fetching the master key (see master_key_text.h). */
#include "core/master_key_text.h"

#include "core/hex.h"
#include "core/secure.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <csignal>
#include <ctime>
#include <poll.h>
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

namespace
{

/* Milliseconds on the monotonic clock. */
int64_t
NowMs()
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

/* Appends what fd has to buf (up to its capacity, discarding the rest); false at end of file. */
bool
ReadAvailable(int fd, char *buf, size_t cap, size_t *total)
{
	char sink[256];
	ssize_t n;
	if (*total < cap)
		n = read(fd, buf + *total, cap - *total);
	else
		n = read(fd, sink, sizeof(sink));
	SecureZero(sink, sizeof(sink));
	if (n < 0)
		return errno == EINTR || errno == EAGAIN;
	if (n == 0)
		return false;
	if (*total < cap)
		*total += static_cast<size_t>(n);
	else
		*total = cap + 1; /* marks "too much output" */
	return true;
}

/* True once the child pid has exited; leaves it unreaped (a zombie keeps its process group id
 * from being reused until we have signalled the group). */
bool
ChildExited(pid_t pid)
{
	siginfo_t info;
	memset(&info, 0, sizeof(info));
	if (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0)
		return errno == ECHILD;
	return info.si_pid == pid;
}

/* Kills what is left of the command's process group, then reaps the command itself. */
int
KillGroupAndReap(pid_t pid)
{
	(void) kill(-pid, SIGKILL);
	int wstatus = 0;
	while (waitpid(pid, &wstatus, 0) < 0)
		if (errno != EINTR)
			return -1;
	return wstatus;
}

} // namespace

/* Runs command through /bin/sh in its own process group and parses what it prints. */
Status
RunMasterKeyCommand(const char *command, uint8_t out[kKeyBytes], int timeout_seconds)
{
	if (timeout_seconds < kKeyCommandTimeoutMin)
		timeout_seconds = kKeyCommandTimeoutMin;
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) != 0)
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
		/* Own process group, so a timeout can kill everything the command started. */
		setpgid(0, 0);
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, STDIN_FILENO);
		dup2(pipefd[1], STDOUT_FILENO);
		execl("/bin/sh", "sh", "-c", command, static_cast<char *>(nullptr));
		_exit(127);
	}
	(void) setpgid(pid, pid); /* also here: no window in which a kill of the group misses */
	close(pipefd[1]);
	int64_t deadline = NowMs() + static_cast<int64_t>(timeout_seconds) * 1000;
	char buf[kMaxKeyText];
	size_t total = 0;
	bool eof = false;
	bool exited = false;
	while (!exited)
	{
		int64_t left = deadline - NowMs();
		if (left <= 0)
			break;
		if (ChildExited(pid))
		{
			exited = true;
			break;
		}
		if (eof)
		{
			/* Output closed, command still running: wait for it in short steps. */
			struct timespec step = {0, 20 * 1000 * 1000};
			nanosleep(&step, nullptr);
			continue;
		}
		struct pollfd p = {pipefd[0], POLLIN, 0};
		int rc = poll(&p, 1, static_cast<int>(left < 50 ? left : 50));
		if (rc > 0)
			eof = !ReadAvailable(pipefd[0], buf, sizeof(buf), &total);
		else if (rc < 0 && errno != EINTR)
			break;
	}
	if (!exited)
	{
		close(pipefd[0]);
		(void) KillGroupAndReap(pid);
		SecureZero(buf, sizeof(buf));
		return Status::Error(Code::kKeyUnavailable,
							 "master key command did not exit within %d seconds and was killed",
							 timeout_seconds);
	}
	/* The command has exited: take what it wrote (already in the pipe), without waiting for an
	 * end of file that a process it left behind may hold off forever. */
	for (;;)
	{
		struct pollfd p = {pipefd[0], POLLIN, 0};
		if (eof || poll(&p, 1, 0) <= 0 || !ReadAvailable(pipefd[0], buf, sizeof(buf), &total))
			break;
	}
	close(pipefd[0]);
	int wstatus = KillGroupAndReap(pid);
	if (wstatus < 0)
	{
		SecureZero(buf, sizeof(buf));
		return Status::Error(Code::kKeyUnavailable, "could not wait for master key command: %s",
							 strerror(errno));
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
	if (total > sizeof(buf) || total == sizeof(buf))
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
