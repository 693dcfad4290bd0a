/*
 * keyring_shred.h — destroying a vault's data-key entries (crypto-shredding, DESIGN.md §4).
 *
 * A shred finds a vault's entries by what they are, not only by what they are called: every
 * regular file in the keyring whose bytes are a data-key entry of the vault (and version) is
 * overwritten with zeros, fsynced and unlinked, under whatever name it has (a renamed copy, a
 * rotation's ".next" file, a temporary file a crash left). A file that merely carries the vault's
 * entry name is never written unless its bytes are that entry: a symbolic link of that name is
 * unlinked without being followed, and a regular file of that name holding anything else (another
 * vault's key, an unrelated file hard-linked in) is left untouched and reported. All directory
 * operations are relative to one descriptor of the keyring directory, and files are opened with
 * O_NOFOLLOW, so nothing outside the keyring is ever written.
 */
#pragma once
#include "core/pure.h"
#include "core/status.h"

#include <cstddef>
#include <cstdint>

namespace vector_vault
{

/* What a shred did. */
struct ShredReport
{
	int destroyed = 0;     /* entries of the vault overwritten and unlinked (any name) */
	int links_removed = 0; /* symbolic links with the vault's entry names, unlinked unfollowed */
	int refused = 0;       /* files with the vault's entry names that do not hold its entry */
	char first_problem[256] = {0}; /* the first link or refused file, for a warning */
};

/*
 * Destroys every data-key entry of vault_id (of key_version only, unless it is 0) in dir, as
 * described above. Returns an error when the directory cannot be read or a file that holds an
 * entry of the vault could not be destroyed; refused files and removed links are only counted
 * in *report (the caller warns).
 */
Status ShredDataKeyEntries(const char *dir, uint64_t vault_id, uint32_t key_version,
						   ShredReport *report);

} // namespace vector_vault
