/*
 * master_key_text.h — obtaining the 256-bit master key (DESIGN.md §4).
 *
 * The key arrives as 64 hexadecimal characters, from a file (vector_vault.master_key_file) or
 * from the standard output of a command (vector_vault.master_key_command). Surrounding
 * whitespace, including the trailing newline, is ignored; anything else is an error that says
 * what is wrong without echoing any of the key material. Buffers that held key text are zeroed.
 */
#pragma once
#include "core/pure.h"
#include "core/aead.h"
#include "core/status.h"

#include <cstddef>
#include <cstdint>

namespace vector_vault
{

/* Decodes 64 hex characters (plus surrounding whitespace) into a 32-byte key. */
Status ParseMasterKeyHex(const char *text, size_t len, uint8_t out[kKeyBytes]);

/* Reads and decodes a key file; refuses files readable by group or others. */
Status ReadMasterKeyFile(const char *path, uint8_t out[kKeyBytes]);

/* Default, minimum and maximum seconds a master-key command may run. */
constexpr int kKeyCommandTimeoutDefault = 30;
constexpr int kKeyCommandTimeoutMin = 1;
constexpr int kKeyCommandTimeoutMax = 3600;

/*
 * Runs a shell command in its own process group and decodes its standard output as the key.
 * The command must exit 0 within timeout_seconds; otherwise its whole process group is killed
 * (SIGKILL) and an error says so. Output is read until the command itself exits, not until end
 * of file, so a process it leaves behind holding standard output cannot block the caller; such
 * left-behind processes (its process group) are killed too.
 */
Status RunMasterKeyCommand(const char *command, uint8_t out[kKeyBytes],
						   int timeout_seconds = kKeyCommandTimeoutDefault);

/* Encodes a key as 64 lower-case hex characters plus NUL (for generating key files). */
void FormatKeyHex(const uint8_t key[kKeyBytes], char out[2 * kKeyBytes + 1]);

} // namespace vector_vault
