/*
 * durable_file.h — small files that must survive power loss: keyring entries and shred intents.
 *
 * A write goes to a temporary file in the same directory, is fsynced, renamed over the final
 * name, and the directory is fsynced, so after a crash the file is either the old one or the
 * complete new one. A removal overwrites the file with zeros and fsyncs before unlinking, so
 * on an in-place file system the wrapped key is gone from the block device, not just unlinked
 * (copy-on-write file systems and SSD remapping may keep old blocks; the wrapping under the
 * master key still protects them, and master-key rotation retires them for good).
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

/* Reads a whole file of at most cap bytes into buf; Code::kNotFound when it does not exist. */
Status ReadSmallFile(const char *dir, const char *name, uint8_t *buf, size_t cap, size_t *len);

/* Overwrites, unlinks and fsyncs the directory; succeeds when the file was already gone. */
Status RemoveFileDurably(const char *dir, const char *name);

/* Renames dir/from to dir/to (atomically replacing it) and fsyncs the directory. */
Status RenameDurably(const char *dir, const char *from, const char *to);

/* True when dir/name exists. */
bool FileExists(const char *dir, const char *name);

/* Creates dir with mode 0700 if missing and checks it is a directory we can write. */
Status EnsurePrivateDirectory(const char *dir);

/* True when path (after resolving symlinks) is root or inside root. */
bool PathIsInside(const char *path, const char *root);

} // namespace vector_vault
