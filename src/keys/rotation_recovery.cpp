/*
 * rotation_recovery.cpp — finishing a master-key rotation that a crash interrupted.
 *
 * vault.rotate_master_key (admin/rotation.cpp) writes every re-wrapped keyring entry as
 * "<name>.next", then a durable "rotation.commit" marker, then renames the .next files over their
 * entries and removes the marker. At postmaster start (and at a crash restart) this file decides
 * from the marker alone: with it, the rotation committed and the renames are completed; without
 * it, the .next files are discarded and the old keyring stays. It runs before the master key is
 * read, touches only files in the keyring directory, and never raises (a failed rename is a
 * WARNING: the entry is then read from its .next file while the marker stays).
 */
#include "core/durable_file.h"
#include "core/keyring_format.h"

#include <cstring>
#include <dirent.h>

#include "keys/keys.h"
#include "pg/guard.h"

using namespace vector_vault;

namespace
{

constexpr const char *kMarker = kRotationMarkerFileName;

/* True when name ends with ".next". */
bool
IsNextFile(const char *name)
{
	size_t n = strlen(name);
	return n > 5 && strcmp(name + n - 5, ".next") == 0;
}

} // namespace

namespace vector_vault::keys
{

/* Postmaster start: completes a committed rotation, discards an uncommitted one. */
void
FinishInterruptedRotation()
{
	const char *dir = detail::KeyringDirNoError();
	if (dir == nullptr || dir[0] != '/')
		return;
	DIR *d = opendir(dir);
	if (d == nullptr)
		return;
	bool committed = FileExists(dir, kMarker);
	struct dirent *de;
	int done = 0;
	while ((de = readdir(d)) != nullptr)
	{
		if (!IsNextFile(de->d_name))
			continue;
		char target[kKeyringFileNameMax + 8];
		strlcpy(target, de->d_name, sizeof(target));
		target[strlen(target) - 5] = '\0';
		Status s =
			committed ? RenameDurably(dir, de->d_name, target) : RemoveFileDurably(dir, de->d_name);
		if (!s.ok())
			ereport(WARNING, (errmsg("vector_vault: %s", s.message())));
		done++;
	}
	/* Temporary files of writes a crash interrupted (".<name>.tmp.<pid>"): never complete. */
	rewinddir(d);
	while ((de = readdir(d)) != nullptr)
		if (de->d_name[0] == '.' && strstr(de->d_name, ".tmp.") != nullptr)
			(void) RemoveFileDurably(dir, de->d_name);
	closedir(d);
	if (committed)
	{
		(void) RemoveFileDurably(dir, kMarker);
		ereport(
			LOG,
			(errmsg(
				 "vector_vault: finished a master key rotation interrupted by a crash (%d entries)",
				 done),
			 errhint("The keyring is now wrapped under the new master key; configure that key.")));
	}
	else if (done > 0)
		ereport(LOG,
				(errmsg("vector_vault: discarded an unfinished master key rotation (%d entries)",
						done)));
}

} // namespace vector_vault::keys
