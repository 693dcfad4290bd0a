/*
 * durable_file.h — small files that must survive power loss: keyring entries and shred intents.
 *
 * A write goes to a temporary file in the same directory, is fsynced, renamed over the final
 * name, and the directory is fsynced, so after a crash the file is either the old one or the
 * complete new one. A removal overwrites the file with zeros and fsyncs before unlinking, so
 * on an in-place file system the wrapped key is gone from the block device, not just unlinked
 * (copy-on-write file systems and SSD remapping may keep old blocks; the wrapping under the
 * master key still protects them, and master-key rotation retires them for good).
 *
 * The keyring is trusted only as a directory: owned by the server's user and writable by nobody
 * else (CheckKeyringDirectory). Its files are never followed through symbolic links: reads and
 * removals open them with O_NOFOLLOW (and O_NONBLOCK, so a FIFO cannot block) and act only on
 * regular files, so a link planted in the keyring can neither feed a read nor direct a removal's
 * overwrite at another file.
 */
#pragma once
#include "core/pure.h"
#include "core/status.h"

#include <cstddef>
#include <cstdint>

namespace vector_vault
{

/* Atomically and durably writes len bytes to dir/name with mode 0600. */
Status WriteFileDurably(const char *dir, const char *name, const uint8_t *data, size_t len);

/* Reads a whole regular file of at most cap bytes into buf, never through a symbolic link;
 * Code::kNotFound when it does not exist. */
Status ReadSmallFile(const char *dir, const char *name, uint8_t *buf, size_t cap, size_t *len);

/* Overwrites, unlinks and fsyncs the directory; succeeds when the file was already gone. A
 * symbolic link or other non-regular file is unlinked without writing through it, and a file
 * with other hard links is unlinked without being overwritten (the bytes are another name's). */
Status RemoveFileDurably(const char *dir, const char *name);

/* Unlinks dir/name (never through a link) without overwriting it and fsyncs the directory; for
 * files that hold no secret, where an interrupted overwrite would only leave a damaged file
 * (a zeroed shred intent could not be read back). Succeeds when the file was already gone. */
Status UnlinkDurably(const char *dir, const char *name);

/* Renames dir/from to dir/to (atomically replacing it) and fsyncs the directory. */
Status RenameDurably(const char *dir, const char *from, const char *to);

/* True when dir/name exists (as anything, a dangling symbolic link included). */
bool FileExists(const char *dir, const char *name);

/* Creates dir with mode 0700 if missing and checks it is a directory we can write. */
Status EnsurePrivateDirectory(const char *dir);

/* Checks that dir is owned by the current user and not writable by group or others. */
Status CheckKeyringDirectory(const char *dir);

/* True when path (after resolving symlinks) is root or inside root. */
bool PathIsInside(const char *path, const char *root);

} // namespace vector_vault
