/*
 * master_key.cpp — the master key and keyring directory at postmaster start.
 *
 * _PG_init runs in the postmaster when vector_vault is in shared_preload_libraries. There we read
 * the key (file or command), check the keyring directory is outside PGDATA, and check the key
 * against the keyring's master.check entry (creating it on first start). The outcome is kept in
 * process memory that every backend inherits through fork: either a ready key in a locked,
 * MADV_DONTDUMP page, or an error message and hint (never containing key material) that every
 * vault operation repeats. The server starts either way: a missing key must not keep the
 * database down, only the encrypted data locked.
 *
 * A key command runs with a deadline (vector_vault.master_key_command_timeout) in its own process
 * group, killed when it overruns, so a hanging command delays the start by at most that long.
 *
 * Crash restarts. After a backend crash the postmaster re-creates shared memory without
 * restarting. It does not read the key source again: master_key_file/_command are fixed for the
 * postmaster's life, and after vault.rotate_master_key() they name the *old* key, while a
 * command could hang or fail. Instead, when the old shared segment is torn down
 * (SaveKeyBeforeReset, an on_shmem_exit callback of the postmaster) the postmaster copies the key
 * in use, and the key of a rotation in flight, into its own locked page; the new segment gets
 * whichever of them opens the keyring's master.check once an interrupted rotation has been
 * completed or discarded (KeepKeyAcrossCrashRestart). Nothing taken from the crashed segment is
 * trusted without that authenticated check; when neither opens it the source is read again as at
 * start. A full restart reads the configured source, so it must name the current key.
 *
 * A failure is not retried while the server runs (a backend cannot put a key into the page every
 * other backend inherited from the postmaster); every failure's hint therefore says that the fix
 * takes effect at the next restart.
 */
#include "keys/keys.h"

#include "core/durable_file.h"
#include "core/keyring_format.h"
#include "core/master_key_text.h"
#include "core/secure.h"

#include <cstring>
#include <ctime>
#include <dirent.h>

#include "pg/guard.h"
#include "pg/shmem.h"

extern "C"
{
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "miscadmin.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include <sys/mman.h>
}

namespace vector_vault::keys
{

namespace
{

char *g_key_command = nullptr;
char *g_key_file = nullptr;
char *g_keyring_dir = nullptr;
int g_key_command_timeout = kKeyCommandTimeoutDefault;

/* What LoadAtPostmasterStart found; inherited by every backend. */
struct MasterState
{
	bool attempted;
	bool ready;
	char error[256];
	char hint[512];
};
MasterState g_state;

/* Locked, non-dumpable page holding the key read at start (postmaster only after init): the key
 * in use at kCurrent, and across a crash restart the key of a rotation in flight at kPending. */
uint8_t *g_key_page = nullptr;
constexpr size_t kKeyPageBytes = 4096;
constexpr size_t kCurrent = 0;
constexpr size_t kPending = kKeyBytes;

/*
 * The key every backend uses lives in one page of shared memory (locked, excluded from core
 * dumps), so vault.rotate_master_key() can switch all sessions at once. Readers and writers hold
 * the keyring lock. The same page holds, at kPending, the new key of a master-key rotation from
 * just before its commit marker is written until the switch, so that a crash restart in that
 * window can serve with the key the keyring then needs.
 */
uint8_t *g_shared_key = nullptr;
bool g_shmem_seen = false;

/* Shared memory needed: a page, plus room to align it. */
Size
KeySlotSize(void)
{
	return 3 * kKeyPageBytes;
}

/* Copies the key in use (and a rotation's pending key) from the shared page into the
 * postmaster's own page before the segment goes away, then zeroes the shared copy. */
void
SaveKeyBeforeReset(int, Datum) noexcept
{
	if (g_shared_key == nullptr)
		return;
	if (g_key_page != nullptr && g_state.ready)
		memcpy(g_key_page, g_shared_key, 2 * kKeyBytes);
	SecureZero(g_shared_key, kKeyPageBytes);
	g_shared_key = nullptr;
}

void KeepKeyAcrossCrashRestart();

/* Places the key page in shared memory and copies in the key read at start (or kept across a
 * crash restart). */
void
KeySlotInit(bool)
{
	bool found;
	char *base =
		static_cast<char *>(ShmemInitStruct("vector_vault master key", KeySlotSize(), &found));
	uintptr_t p =
		(reinterpret_cast<uintptr_t>(base) + kKeyPageBytes - 1) & ~(uintptr_t) (kKeyPageBytes - 1);
	g_shared_key = reinterpret_cast<uint8_t *>(p);
	if (found)
		return;
	(void) ExcludeFromCoreDump(g_shared_key, kKeyPageBytes);
	(void) mlock(g_shared_key, kKeyPageBytes);
	memset(g_shared_key, 0, kKeyPageBytes);
	/* A re-initialisation after a crash: keep serving with the key that was in use. */
	if (g_shmem_seen)
		KeepKeyAcrossCrashRestart();
	g_shmem_seen = true;
	/* Registered anew for each segment (shmem_exit forgets its callbacks); children drop it. */
	if (!IsUnderPostmaster)
		on_shmem_exit(SaveKeyBeforeReset, 0);
	if (g_state.ready && g_key_page != nullptr)
		memcpy(g_shared_key, g_key_page, kKeyBytes);
}

/* What every hint ends with: a fix is seen only by a restart (issue 11: a key file fixed with
 * chmod 600 kept failing and nothing said why). */
constexpr const char kRestartHint[] = "The master key and keyring are checked only when the server "
									  "starts: restart the server after the fix.";

/* Records a startup failure; the hint always says that a fix needs a restart. */
void
Fail(const char *error, const char *hint)
{
	g_state.ready = false;
	strlcpy(g_state.error, error, sizeof(g_state.error));
	if (strstr(hint, "restart") != nullptr)
		strlcpy(g_state.hint, hint, sizeof(g_state.hint));
	else
		snprintf(g_state.hint, sizeof(g_state.hint), "%s%s%s", hint, hint[0] ? " " : "",
				 kRestartHint);
}

/* Zeroes the key when the postmaster exits. */
void
ZeroKeyAtExit(int, Datum) noexcept
{
	if (g_key_page != nullptr)
		SecureZero(g_key_page, kKeyPageBytes);
}

/* Without master.check: does the key open the keyring's data-key entries? Sets *any to whether
 * there are any (an empty keyring accepts every key). Checks up to 8, all must open. */
Status
KeyOpensDataKeys(const uint8_t *key, bool *any)
{
	*any = false;
	DIR *d = opendir(g_keyring_dir);
	if (d == nullptr)
		return Status::Ok();
	Status result;
	int checked = 0;
	struct dirent *de;
	while ((de = readdir(d)) != nullptr && checked < 8 && result.ok())
	{
		KeyringEntryInfo info;
		if (!ParseDataKeyFileName(de->d_name, &info.vault_id, &info.key_version))
			continue;
		uint8_t entry[kKeyringEntryBytes];
		size_t len = 0;
		if (!ReadSmallFile(g_keyring_dir, de->d_name, entry, sizeof(entry), &len).ok())
			continue;
		*any = true;
		checked++;
		info.kind = KeyringEntryKind::kDataKey;
		uint8_t unwrapped[kKeyBytes];
		result = OpenKeyringEntry(key, entry, len, info, unwrapped);
		SecureZero(unwrapped, sizeof(unwrapped));
	}
	closedir(d);
	return result;
}

/* Verifies the key against master.check, creating the check entry on first start (or, when it
 * was lost, after the key has opened the keyring's existing entries). */
void
CheckAgainstKeyring(const uint8_t *key)
{
	uint8_t entry[kKeyringEntryBytes];
	size_t len = 0;
	Status s = ReadSmallFile(g_keyring_dir, kMasterCheckFileName, entry, sizeof(entry), &len);
	KeyringEntryInfo info;
	info.kind = KeyringEntryKind::kMasterCheck;
	if (s.code() == Code::kNotFound)
	{
		bool any = false;
		if (!KeyOpensDataKeys(key, &any).ok())
		{
			char msg[256];
			snprintf(msg, sizeof(msg),
					 "the master key does not match the keyring in \"%s\" (its master.check "
					 "entry is missing)",
					 g_keyring_dir);
			Fail(msg, "The keyring's entries were wrapped with a different master key: configure "
					  "that key (master.check is then recreated), or restore master.check from "
					  "the keyring backup.");
			return;
		}
		if (any)
			ereport(LOG, (errmsg("vector_vault: recreating the keyring's missing master.check "
								 "(the master key opens the existing entries)")));
		uint8_t random_key[kKeyBytes];
		info.created_at = static_cast<uint64_t>(time(nullptr));
		s = RandomBytes(random_key, sizeof(random_key));
		if (s.ok())
			s = SealKeyringEntry(key, info, random_key, entry);
		SecureZero(random_key, sizeof(random_key));
		if (s.ok())
			s = WriteFileDurably(g_keyring_dir, kMasterCheckFileName, entry, sizeof(entry));
		if (!s.ok())
			Fail(s.message(), "Check that the keyring directory is writable by the server.");
		else
			g_state.ready = true;
		return;
	}
	if (!s.ok())
	{
		Fail(s.message(), "Check the keyring directory and its master.check file.");
		return;
	}
	uint8_t unwrapped[kKeyBytes];
	s = OpenKeyringEntry(key, entry, len, info, unwrapped);
	SecureZero(unwrapped, sizeof(unwrapped));
	if (!s.ok())
	{
		char msg[256];
		snprintf(msg, sizeof(msg), "the master key does not match the keyring in \"%s\"",
				 g_keyring_dir);
		Fail(msg, "The keyring was created with a different master key: configure that key, or "
				  "point vector_vault.keyring_dir at the keyring that belongs to this key.");
		return;
	}
	g_state.ready = true;
}

/* True when key opens the keyring's master.check entry (authenticated: never a false yes). */
bool
KeyOpensMasterCheck(const uint8_t *key)
{
	uint8_t entry[kKeyringEntryBytes];
	size_t len = 0;
	if (!ReadSmallFile(g_keyring_dir, kMasterCheckFileName, entry, sizeof(entry), &len).ok())
		return false;
	KeyringEntryInfo info;
	info.kind = KeyringEntryKind::kMasterCheck;
	uint8_t unwrapped[kKeyBytes];
	bool ok = OpenKeyringEntry(key, entry, len, info, unwrapped).ok();
	SecureZero(unwrapped, sizeof(unwrapped));
	return ok;
}

/* True when the key bytes are all zero (no key). */
bool
IsZeroKey(const uint8_t *key)
{
	uint8_t acc = 0;
	for (size_t i = 0; i < kKeyBytes; i++)
		acc |= key[i];
	return acc == 0;
}

/* Crash restart (postmaster): finishes or discards an interrupted master-key rotation, then keeps
 * whichever saved key opens master.check; reads the configured source only when none does. */
void
KeepKeyAcrossCrashRestart()
{
	if (g_key_page != nullptr && g_state.ready)
	{
		FinishInterruptedRotation();
		Status dir_ok = CheckKeyringDirectory(g_keyring_dir);
		const size_t order[2] = {kCurrent, kPending};
		for (size_t at : order)
		{
			const uint8_t *candidate = g_key_page + at;
			if (!dir_ok.ok() || IsZeroKey(candidate) || !KeyOpensMasterCheck(candidate))
				continue;
			if (at != kCurrent)
				memcpy(g_key_page + kCurrent, candidate, kKeyBytes);
			SecureZero(g_key_page + kPending, kKeyBytes);
			ereport(LOG, (errmsg("vector_vault: kept the master key in use across the crash "
								 "restart%s (the key source is read only at server start)",
								 at == kPending ? ", the one an interrupted rotation switched to"
												: "")));
			return;
		}
	}
	if (g_key_page != nullptr)
		SecureZero(g_key_page, kKeyPageBytes);
	LoadAtPostmasterStart();
}

} // namespace

/* Defines the key GUCs. */
void
DefineGucs()
{
	DefineCustomStringVariable(
		"vector_vault.master_key_command",
		"Shell command that prints the 256-bit master key as 64 hexadecimal characters.", nullptr,
		&g_key_command, "", PGC_POSTMASTER, GUC_SUPERUSER_ONLY, nullptr, nullptr, nullptr);
	DefineCustomStringVariable("vector_vault.master_key_file",
							   "File holding the 256-bit master key as 64 hexadecimal characters "
							   "(mode 0600).",
							   nullptr, &g_key_file, "", PGC_POSTMASTER, GUC_SUPERUSER_ONLY,
							   nullptr, nullptr, nullptr);
	DefineCustomIntVariable("vector_vault.master_key_command_timeout",
							"Seconds vector_vault.master_key_command (and a new_key_command of "
							"vault.rotate_master_key) may run before it is killed.",
							nullptr, &g_key_command_timeout, kKeyCommandTimeoutDefault,
							kKeyCommandTimeoutMin, kKeyCommandTimeoutMax, PGC_SIGHUP,
							GUC_UNIT_S | GUC_SUPERUSER_ONLY, nullptr, nullptr, nullptr);
	DefineCustomStringVariable("vector_vault.keyring_dir",
							   "Directory, outside the data directory, holding the wrapped vault "
							   "keys.",
							   nullptr, &g_keyring_dir, "", PGC_POSTMASTER, GUC_SUPERUSER_ONLY,
							   nullptr, nullptr, nullptr);
}

/* Registers the shared key page (from _PG_init while preloading). */
void
RegisterKeySlot()
{
	pg::AddShmemClient({KeySlotSize, KeySlotInit});
}

/* Loads the master key and checks the keyring (postmaster only). */
void
LoadAtPostmasterStart()
{
	g_state.attempted = true;
	g_state.ready = false;
	FinishInterruptedRotation();
	bool has_cmd = g_key_command != nullptr && g_key_command[0] != '\0';
	bool has_file = g_key_file != nullptr && g_key_file[0] != '\0';
	if (has_cmd && has_file)
		Fail("both vector_vault.master_key_command and vector_vault.master_key_file are set",
			 "Set exactly one of them in postgresql.conf.");
	else if (!has_cmd && !has_file)
		Fail("no master key is configured",
			 "Set vector_vault.master_key_file or vector_vault.master_key_command in "
			 "postgresql.conf and restart the server.");
	else if (g_keyring_dir == nullptr || g_keyring_dir[0] != '/')
		Fail("vector_vault.keyring_dir is not set to an absolute path",
			 "Set vector_vault.keyring_dir to a directory outside the data directory and restart.");
	else
	{
		/* Refuse a keyring inside PGDATA before creating anything there. */
		char parent[MAXPGPATH];
		strlcpy(parent, g_keyring_dir, sizeof(parent));
		get_parent_directory(parent);
		bool inside = PathIsInside(g_keyring_dir, DataDir) || PathIsInside(parent, DataDir);
		Status s = inside ? Status::Ok() : EnsurePrivateDirectory(g_keyring_dir);
		if (s.ok() && !inside)
			s = CheckKeyringDirectory(g_keyring_dir);
		if (!s.ok())
			Fail(s.message(), "The keyring directory must be owned by the server's OS user and "
							  "writable by nobody else (e.g. chmod 0700); anyone who can write "
							  "it can delete, replace or redirect vault keys.");
		else if (inside)
			Fail("vector_vault.keyring_dir must be outside the data directory",
				 "A keyring inside PGDATA would be copied into every base backup next to the data "
				 "it protects. Move it, e.g. to /var/lib/vector_vault/keyring.");
		else
		{
			bool locked = false;
			if (g_key_page == nullptr)
				g_key_page = static_cast<uint8_t *>(AllocateLockedPages(kKeyPageBytes, &locked));
			else
				locked = true;
			if (g_key_page == nullptr)
				Fail("could not allocate memory for the master key", "");
			else
			{
				SecureZero(g_key_page, kKeyPageBytes);
				s = has_cmd ? RunMasterKeyCommand(g_key_command, g_key_page, g_key_command_timeout)
							: ReadMasterKeyFile(g_key_file, g_key_page);
				if (!s.ok())
					Fail(s.message(),
						 has_cmd ? "Check vector_vault.master_key_command: it must exit 0 and "
								   "print 64 hexadecimal characters within "
								   "vector_vault.master_key_command_timeout."
								 : "Check vector_vault.master_key_file: it must hold "
								   "64 hexadecimal characters and have mode 0600.");
				else
					CheckAgainstKeyring(g_key_page);
				if (!locked)
					ereport(LOG, (errmsg("vector_vault: could not lock the master key page in "
										 "memory; it may be swapped out"),
								  errhint("Raise the server's RLIMIT_MEMLOCK.")));
				if (!g_shmem_seen)
					on_proc_exit(ZeroKeyAtExit, 0);
			}
		}
	}
	if (!g_state.ready)
	{
		if (g_key_page != nullptr)
			SecureZero(g_key_page, kKeyPageBytes);
		ereport(WARNING, (errmsg("vector_vault: %s; vault operations will fail until this is fixed",
								 g_state.error),
						  errhint("%s", g_state.hint)));
	}
	else
		ereport(LOG, (errmsg("vector_vault: master key loaded, keyring at \"%s\"", g_keyring_dir)));
}

/* Errors unless the key is ready. */
void
RequireMasterKey()
{
	/* Defensive: _PG_init refuses to load without the preload (src/admin/init.cpp). */
	if (!g_state.attempted)
		ereport(ERROR, (errcode(pg::kSqlStateMasterKey),
						errmsg("vector_vault is not loaded through shared_preload_libraries"),
						errhint("Add vector_vault to shared_preload_libraries in postgresql.conf "
								"and restart the server.")));
	if (!g_state.ready)
		ereport(ERROR, (errcode(pg::kSqlStateMasterKey),
						errmsg("vector_vault master key is not available: %s", g_state.error),
						g_state.hint[0] ? errhint("%s", g_state.hint) : 0));
}

/* The keyring directory. */
const char *
KeyringDir()
{
	RequireMasterKey();
	return g_keyring_dir;
}

namespace detail
{
/* The keyring directory without checks. */
const char *
KeyringDirNoError()
{
	return g_keyring_dir;
}

/* The master key bytes in shared memory (caller holds the keyring lock). */
const uint8_t *
MasterKeyBytes()
{
	RequireMasterKey();
	if (g_shared_key == nullptr)
		ereport(ERROR, (errcode(pg::kSqlStateMasterKey),
						errmsg("vector_vault master key is not available"),
						errhint("Add vector_vault to shared_preload_libraries and restart.")));
	return g_shared_key;
}

/* Replaces the shared master key (rotation; caller holds the keyring lock exclusively). */
void
SetMasterKeyBytes(const uint8_t key[kKeyBytes])
{
	memcpy(g_shared_key + kCurrent, key, kKeyBytes);
}

/* Records (key) or clears (nullptr) the key a rotation is committing to (keyring lock held). */
void
SetPendingMasterKey(const uint8_t *key)
{
	if (g_shared_key == nullptr)
		return;
	if (key != nullptr)
		memcpy(g_shared_key + kPending, key, kKeyBytes);
	else
		SecureZero(g_shared_key + kPending, kKeyBytes);
}

/* Seconds a master-key command may run. */
int
KeyCommandTimeout()
{
	return g_key_command_timeout;
}

/* The configured key sources, for messages. */
void
ConfiguredKeySource(const char **file, const char **command)
{
	*file = g_key_file;
	*command = g_key_command;
}
} // namespace detail

} // namespace vector_vault::keys
