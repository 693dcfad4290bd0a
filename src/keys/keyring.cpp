/*
 * keyring.cpp — vault data keys in the keyring directory, and their life cycle.
 *
 * Creation: a data key is generated, wrapped under the master key and written durably (write,
 * fsync, rename, fsync directory) before the vault row that refers to it is inserted, so no
 * value can ever be sealed under a key that is not on disk. If the creating (sub)transaction
 * aborts, the entry is removed again.
 *
 * Shredding (crypto-erase): vault.drop_vault() only schedules. At pre-commit we durably write an
 * intent file naming the vault and the transaction; right after commit we delete every key
 * version of the vault and then the intent. A crash between commit and deletion leaves the
 * intent: the next backend that touches the keyring (or vault.reconcile_keyring()) asks the
 * commit log whether that transaction committed and finishes or discards the shred. After the
 * deletion no copy of the vault's ciphertext anywhere (heap, index, WAL, archives, old base
 * backups, replicas, dumps) can be decrypted with this keyring.
 *
 * The deletion finds the vault's entries by content, under any name, and never writes through a
 * symbolic link or into a file that does not hold the vault's key (core/keyring_shred.h): files
 * planted in the keyring cannot turn a shred against another vault or another file, and a key
 * renamed within the keyring is still destroyed.
 */
#include "keys/keys.h"
#include "keys/claims.h"

#include "core/durable_file.h"
#include "core/envelope.h"
#include "core/keyring_format.h"
#include "core/keyring_shred.h"
#include "core/secure.h"

#include <algorithm>
#include <cinttypes>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <dirent.h>

#include "pg/guard.h"
#include "pg/shmem.h"

extern "C"
{
#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/procarray.h"
#include "tcop/tcopprot.h"
#include "utils/wait_event.h"

	PGDLLEXPORT void vault_keyring_reconcile_main(Datum arg);
}

namespace vector_vault::keys
{

namespace
{

/* A key entry written by the current transaction, to remove if it aborts. */
struct PendingCreate
{
	uint64_t vault_id;
	uint32_t key_version;
	int nest_level;
};

/* A vault key (all versions when key_version is 0) to shred when the transaction commits. */
struct PendingShred
{
	uint64_t vault_id;
	uint32_t key_version;
	int nest_level;
	bool intent_written;
};

constexpr int kMaxPending = 256;
PendingCreate g_creates[kMaxPending];
int g_ncreates = 0;
PendingShred g_shreds[kMaxPending];
int g_nshreds = 0;
bool g_reconciled = false;

constexpr size_t kIntentBytes = 24;
const uint8_t kIntentMagic[4] = {'V', 'V', 'S', 'I'};

/* True when name is the seal-count file of vault_id (of key_version, unless it is 0). */
bool
IsCountFileOf(const char *name, uint64_t vault_id, uint32_t key_version)
{
	char prefix[kKeyringFileNameMax];
	snprintf(prefix, sizeof(prefix), "vault-%016" PRIx64 "-v", vault_id);
	size_t plen = strlen(prefix);
	size_t n = strlen(name);
	if (strncmp(name, prefix, plen) != 0 || n <= plen + 6 || strcmp(name + n - 6, ".count") != 0)
		return false;
	for (size_t i = plen; i < n - 6; i++)
		if (name[i] < '0' || name[i] > '9')
			return false;
	return key_version == 0 || strtoul(name + plen, nullptr, 10) == key_version;
}

/*
 * Shreds a vault's key version (every version when key_version is 0): every entry of it in the
 * keyring, found by content under any name (core/keyring_shred.h), and its seal-count files.
 * Links and impostor files with the vault's entry names are reported loudly and never written
 * through. False when something of the vault may be left (the intent then stays for a retry).
 */
bool
ShredVaultFiles(const char *dir, uint64_t vault_id, uint32_t key_version)
{
	ShredReport report;
	Status s = ShredDataKeyEntries(dir, vault_id, key_version, &report);
	if (report.links_removed > 0 || report.refused > 0)
		ereport(WARNING,
				(errmsg("vector_vault: the keyring entries of vault %016" PRIx64
						" have been tampered with: %s",
						vault_id, report.first_problem),
				 errdetail("%d entries of the vault destroyed, %d symbolic links with its entry "
						   "names removed without following them, %d files with its entry names "
						   "that do not hold its key left untouched.",
						   report.destroyed, report.links_removed, report.refused),
				 errhint("Nothing outside the keyring directory was written. Check who can write "
						 "\"%s\"; a copy of a vault key moved out of it cannot be shredded.",
						 dir)));
	if (!s.ok())
		ereport(WARNING, (errmsg("vector_vault: could not shred key file: %s", s.message())));
	bool ok = s.ok() && report.refused == 0;
	/* the versions' seal counts go with them */
	DIR *d = opendir(dir);
	if (d != nullptr)
	{
		char names[64][kKeyringFileNameMax];
		bool more = true;
		for (int round = 0; more && round < 4096; round++)
		{
			int n = 0;
			struct dirent *de;
			while (n < 64 && (de = readdir(d)) != nullptr)
				if (IsCountFileOf(de->d_name, vault_id, key_version))
					strlcpy(names[n++], de->d_name, kKeyringFileNameMax);
			more = n == 64;
			for (int i = 0; i < n; i++)
				(void) RemoveFileDurably(dir, names[i]);
			if (more)
				rewinddir(d);
		}
		closedir(d);
	}
	ForgetSealCounts(vault_id, key_version);
	if (ok && key_version == 0)
		RemoveClaim(dir, vault_id); /* issue 14: the claim goes with the last entry */
	return ok;
}

/* Writes the durable intent to shred a vault's key(s) if transaction fxid commits. */
void
WriteIntent(const char *dir, uint64_t vault_id, uint32_t key_version, FullTransactionId fxid)
{
	uint8_t buf[kIntentBytes];
	memcpy(buf, kIntentMagic, 4);
	PutU64(buf + 4, vault_id);
	PutU64(buf + 12, U64FromFullTransactionId(fxid));
	PutU32(buf + 20, key_version);
	char name[kKeyringFileNameMax];
	ShredIntentFileName(vault_id, name);
	Status s = WriteFileDurably(dir, name, buf, sizeof(buf));
	if (!s.ok())
		pg::ThrowStatus(s, "could not record the pending vault key shred", nullptr);
}

/* Removes an intent file, warning on failure (runs where ERROR is not allowed). */
void
RemoveIntent(const char *dir, uint64_t vault_id)
{
	char name[kKeyringFileNameMax];
	ShredIntentFileName(vault_id, name);
	/* Not overwritten first: it holds no secret, and a crash in the middle of an overwrite would
	 * leave a zeroed intent that could never be read back (found by 046's d2 case). */
	Status s = UnlinkDurably(dir, name);
	if (!s.ok())
		ereport(WARNING, (errmsg("vector_vault: %s", s.message())));
}

/* Carries out or discards pending work at the end of the top-level transaction. */
void
XactCallback(XactEvent event, void *) noexcept
{
	if (g_ncreates == 0 && g_nshreds == 0)
		return;
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
		{
			const char *dir = KeyringDir();
			FullTransactionId fxid = GetTopFullTransactionId();
			/*
			 * Make this transaction's WAL durable before the intent names its id. Otherwise a crash
			 * before the commit record could lose every record of the id, recovery would hand the
			 * same id to a new transaction, and its commit would carry out our shred (found by
			 * test/t/002_drop_vault_shred.pl). With the records on disk, recovery knows the id and
			 * it stays aborted.
			 */
			if (g_nshreds > 0)
				XLogFlush(XactLastRecEnd);
			for (int i = 0; i < g_nshreds; i++)
			{
				WriteIntent(dir, g_shreds[i].vault_id, g_shreds[i].key_version, fxid);
				g_shreds[i].intent_written = true;
			}
			break;
		}
		case XACT_EVENT_PRE_PREPARE:
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot PREPARE a transaction that created or dropped a vault")));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		{
			const char *dir = KeyringDir();
			LWLockAcquire(pg::Shared()->keyring_lock, LW_EXCLUSIVE);
			for (int i = 0; i < g_nshreds; i++)
			{
				if (ShredVaultFiles(dir, g_shreds[i].vault_id, g_shreds[i].key_version))
					RemoveIntent(dir, g_shreds[i].vault_id);
			}
			LWLockRelease(pg::Shared()->keyring_lock);
			if (g_nshreds > 0)
			{
				InvalidateDataKeyCache();
				pg::BumpAccessEpoch();
			}
			g_ncreates = g_nshreds = 0;
			break;
		}
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		{
			const char *dir = detail::KeyringDirNoError();
			for (int i = 0; i < g_ncreates; i++)
			{
				char name[kKeyringFileNameMax];
				DataKeyFileName(g_creates[i].vault_id, g_creates[i].key_version, name);
				Status s = RemoveFileDurably(dir, name);
				if (!s.ok())
					ereport(WARNING, (errmsg("vector_vault: %s", s.message())));
			}
			for (int i = 0; i < g_nshreds; i++)
				if (g_shreds[i].intent_written)
					RemoveIntent(dir, g_shreds[i].vault_id);
			InvalidateDataKeyCache();
			g_ncreates = g_nshreds = 0;
			break;
		}
		default:
			break;
	}
}

/* Undoes or hands up pending work when a subtransaction ends. */
void
SubXactCallback(SubXactEvent event, SubTransactionId, SubTransactionId, void *) noexcept
{
	int level = GetCurrentTransactionNestLevel();
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		int keep = 0;
		for (int i = 0; i < g_ncreates; i++)
		{
			if (g_creates[i].nest_level >= level)
			{
				char name[kKeyringFileNameMax];
				DataKeyFileName(g_creates[i].vault_id, g_creates[i].key_version, name);
				Status s = RemoveFileDurably(detail::KeyringDirNoError(), name);
				if (!s.ok())
					ereport(WARNING, (errmsg("vector_vault: %s", s.message())));
			}
			else
				g_creates[keep++] = g_creates[i];
		}
		g_ncreates = keep;
		keep = 0;
		for (int i = 0; i < g_nshreds; i++)
			if (g_shreds[i].nest_level < level)
				g_shreds[keep++] = g_shreds[i];
		g_nshreds = keep;
		InvalidateDataKeyCache();
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		for (int i = 0; i < g_ncreates; i++)
			if (g_creates[i].nest_level >= level)
				g_creates[i].nest_level = level - 1;
		for (int i = 0; i < g_nshreds; i++)
			if (g_shreds[i].nest_level >= level)
				g_shreds[i].nest_level = level - 1;
	}
}

/* Reads and validates an intent file; false when it is not a valid intent. */
bool
ReadIntent(const char *dir, const char *name, uint64_t *vault_id, uint32_t *key_version,
		   FullTransactionId *fxid)
{
	uint8_t buf[kIntentBytes];
	size_t len = 0;
	if (!ReadSmallFile(dir, name, buf, sizeof(buf), &len).ok() ||
		memcmp(buf, kIntentMagic, 4) != 0 || (len != kIntentBytes && len != 20))
		return false;
	*vault_id = GetU64(buf + 4);
	*fxid = FullTransactionIdFromU64(GetU64(buf + 12));
	*key_version = len == kIntentBytes ? GetU32(buf + 20) : 0;
	return true;
}

} // namespace

/* Installs the transaction callbacks. */
void
RegisterXactCallbacks()
{
	RegisterXactCallback(XactCallback, nullptr);
	RegisterSubXactCallback(SubXactCallback, nullptr);
}

/* Registers vault_keyring_reconcile_main to run whenever recovery has finished: at start and
 * again after every crash restart (a restart time other than "never" makes Postgres start it
 * again with the other processes). */
void
RegisterStartupReconcile()
{
	BackgroundWorker worker;
	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	strlcpy(worker.bgw_library_name, "vector_vault", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "vault_keyring_reconcile_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "vector_vault keyring reconciler", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "vector_vault keyring reconciler", BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

/* Finishes or discards shred intents left by a crash. */
void
ReconcileKeyring()
{
	const char *dir = KeyringDir();
	LWLockAcquire(pg::Shared()->keyring_lock, LW_EXCLUSIVE);
	DIR *d = opendir(dir);
	if (d == nullptr)
	{
		LWLockRelease(pg::Shared()->keyring_lock);
		ereport(ERROR, (errcode_for_file_access(),
						errmsg("could not open keyring directory \"%s\": %m", dir)));
	}
	/* Collect names first: shredding while iterating would change the directory. */
	char names[64][kKeyringFileNameMax];
	int n = 0;
	struct dirent *de;
	uint64_t vault_id;
	while ((de = readdir(d)) != nullptr && n < 64)
		if (ParseShredIntentFileName(de->d_name, &vault_id))
			strlcpy(names[n++], de->d_name, kKeyringFileNameMax);
	closedir(d);
	for (int i = 0; i < n; i++)
	{
		FullTransactionId fxid;
		uint32_t key_version = 0;
		if (!ReadIntent(dir, names[i], &vault_id, &key_version, &fxid))
		{
			ereport(WARNING,
					(errmsg("vector_vault: ignoring malformed shred intent \"%s\"", names[i])));
			continue;
		}
		TransactionId xid = XidFromFullTransactionId(fxid);
		FullTransactionId next = ReadNextFullTransactionId();
		if (FullTransactionIdFollowsOrEquals(fxid, next))
			continue; /* from another cluster's future; leave it for an operator */
		if (TransactionIdIsCurrentTransactionId(xid) || TransactionIdIsInProgress(xid))
			continue;
		if (TransactionIdPrecedes(xid, ShmemVariableCache->oldestClogXid))
		{
			ereport(WARNING,
					(errmsg("vector_vault: the outcome of shred intent \"%s\" is no longer "
							"known",
							names[i]),
					 errhint("If vault.vaults no longer lists the vault, delete its key "
							 "files and the intent by hand.")));
			continue;
		}
		if (TransactionIdDidCommit(xid))
		{
			if (ShredVaultFiles(dir, vault_id, key_version))
				RemoveIntent(dir, vault_id);
			ereport(LOG, (errmsg("vector_vault: finished shredding the keys of vault %016" PRIx64
								 " after a crash",
								 vault_id)));
		}
		else
			RemoveIntent(dir, vault_id);
	}
	LWLockRelease(pg::Shared()->keyring_lock);
	g_reconciled = true;
}

/* Generates, wraps and durably writes a data key version. */
void
CreateDataKey(uint64_t vault_id, uint32_t key_version)
{
	const char *dir = KeyringDir();
	/* issue 14: entries are kept under this database's keyring id and claimed by it */
	vault_id = KeyringIdOf(vault_id);
	if (key_version != 1)
		RequireClaim(vault_id, "create a key version");
	if (g_ncreates == kMaxPending)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("too many vault keys created in one transaction")));
	char name[kKeyringFileNameMax];
	DataKeyFileName(vault_id, key_version, name);
	if (FileExists(dir, name))
		ereport(ERROR, (errcode(ERRCODE_DUPLICATE_OBJECT),
						errmsg("keyring entry \"%s\" already exists", name)));
	if (key_version == 1)
		ClaimNewVault(vault_id); /* issue 14 */
	uint8_t key[kKeyBytes];
	uint8_t entry[kKeyringEntryBytes];
	KeyringEntryInfo info;
	info.kind = KeyringEntryKind::kDataKey;
	info.vault_id = vault_id;
	info.key_version = key_version;
	info.created_at = static_cast<uint64_t>(time(nullptr));
	Status s = RandomBytes(key, sizeof(key));
	/* Register before writing: an error after the write must still remove the file. */
	g_creates[g_ncreates++] = {vault_id, key_version, GetCurrentTransactionNestLevel()};
	LWLockAcquire(pg::Shared()->keyring_lock, LW_EXCLUSIVE);
	if (s.ok())
		s = SealKeyringEntry(detail::MasterKeyBytes(), info, key, entry);
	SecureZero(key, sizeof(key));
	if (s.ok())
		s = WriteFileDurably(dir, name, entry, sizeof(entry));
	LWLockRelease(pg::Shared()->keyring_lock);
	if (!s.ok())
		pg::ThrowStatus(s, "could not write the vault key to the keyring",
						"Check that vector_vault.keyring_dir is writable by the server.");
}

/* True when the keyring holds the vault version. */
bool
DataKeyExists(uint64_t vault_id, uint32_t key_version)
{
	char name[kKeyringFileNameMax];
	DataKeyFileName(KeyringIdOf(vault_id), key_version, name); /* issue 14 */
	return FileExists(KeyringDir(), name);
}

/* The unwrapped data key for a vault version. */
const uint8_t *
DataKey(uint64_t vault_id, uint32_t key_version)
{
	const uint8_t *cached = detail::CacheLookup(vault_id, key_version);
	if (cached != nullptr)
		return cached;
	const char *dir = KeyringDir();
	if (!g_reconciled)
		ReconcileKeyring();
	/* issue 14: this database's keyring id for the vault, and only if it owns the entries */
	const uint64_t cache_id = vault_id;
	vault_id = KeyringIdOf(vault_id);
	RequireClaim(vault_id, "use the vault's key");
	char name[kKeyringFileNameMax];
	DataKeyFileName(vault_id, key_version, name);
	uint8_t entry[kKeyringEntryBytes];
	size_t len = 0;
	/* Read and unwrap under the keyring lock: a master-key rotation replaces entries. */
	LWLockAcquire(pg::Shared()->keyring_lock, LW_SHARED);
	/* A committed master-key rotation whose rename of this entry failed: its .next file holds
	 * the entry wrapped under the key now in use. */
	char next[kNextFileNameMax];
	NextFileName(name, next);
	bool use_next = FileExists(dir, kRotationMarkerFileName) && FileExists(dir, next);
	Status s = ReadSmallFile(dir, use_next ? next : name, entry, sizeof(entry), &len);
	if (s.code() == Code::kNotFound)
		ereport(ERROR,
				(errcode(pg::kSqlStateKeyUnavailable),
				 errmsg("key version %u of vault %016" PRIx64 " is not in the keyring", key_version,
						vault_id),
				 errdetail("Keyring entry \"%s\" does not exist in \"%s\".", name, dir),
				 errhint("The vault was dropped and its keys shredded, or this server uses a "
						 "different keyring than the one the data was written with.")));
	if (!s.ok())
		pg::ThrowStatus(s, "could not read the vault key", nullptr);
	uint8_t key[kKeyBytes];
	KeyringEntryInfo expected;
	expected.kind = KeyringEntryKind::kDataKey;
	expected.vault_id = vault_id;
	expected.key_version = key_version;
	s = OpenKeyringEntry(detail::MasterKeyBytes(), entry, len, expected, key);
	LWLockRelease(pg::Shared()->keyring_lock);
	if (!s.ok())
	{
		SecureZero(key, sizeof(key));
		ereport(ERROR, (errcode(pg::kSqlStateCorrupt),
						errmsg("keyring entry \"%s\" is unusable: %s", name, s.message()),
						errhint("Restore the keyring entry from a keyring backup taken with the "
								"current master key.")));
	}
	const uint8_t *result = detail::CacheInsert(cache_id, key_version, key);
	SecureZero(key, sizeof(key));
	return result;
}

/* True when some key version of the vault is in the keyring. */
bool
VaultHasKeys(uint64_t vault_id)
{
	return KeyringHasEntries(KeyringDir(), KeyringIdOf(vault_id));
}

/* One data-key entry seen by SnapshotKeys. */
struct SnapshotItem
{
	uint64_t kid;
	uint32_t version;
};

struct KeySnapshot
{
	int n;
	SnapshotItem *items; /* sorted by (kid, version) */
};

/* Reads the keyring directory once into a sorted list of (keyring id, version). */
KeySnapshot *
SnapshotKeys()
{
	const char *dir = KeyringDir();
	KeySnapshot *snap = static_cast<KeySnapshot *>(palloc0(sizeof(KeySnapshot)));
	int cap = 64;
	snap->items = static_cast<SnapshotItem *>(palloc(sizeof(SnapshotItem) * cap));
	DIR *d = AllocateDir(dir);
	struct dirent *de;
	while ((de = ReadDir(d, dir)) != nullptr)
	{
		SnapshotItem it;
		if (!ParseDataKeyFileName(de->d_name, &it.kid, &it.version))
			continue;
		if (snap->n == cap)
		{
			cap *= 2;
			snap->items =
				static_cast<SnapshotItem *>(repalloc(snap->items, sizeof(SnapshotItem) * cap));
		}
		snap->items[snap->n++] = it;
	}
	FreeDir(d);
	std::sort(snap->items, snap->items + snap->n,
			  [](const SnapshotItem &a, const SnapshotItem &b)
			  { return a.kid < b.kid || (a.kid == b.kid && a.version < b.version); });
	return snap;
}

/* Frees a snapshot. */
void
FreeKeySnapshot(KeySnapshot *snap)
{
	pfree(snap->items);
	pfree(snap);
}

/* True when the snapshot holds the vault's key version (any version when key_version is 0). */
bool
SnapshotHasKey(const KeySnapshot *snap, uint64_t vault_id, uint32_t key_version)
{
	const uint64_t kid = KeyringIdOf(vault_id); /* issue 14 */
	const SnapshotItem *begin = snap->items;
	const SnapshotItem *end = begin + snap->n;
	const SnapshotItem *it =
		std::lower_bound(begin, end, SnapshotItem{kid, key_version},
						 [](const SnapshotItem &a, const SnapshotItem &b)
						 { return a.kid < b.kid || (a.kid == b.kid && a.version < b.version); });
	return it != end && it->kid == kid && (key_version == 0 || it->version == key_version);
}

/* Schedules a shred of one key version (every version when key_version is 0) at commit. */
void
ScheduleShred(uint64_t vault_id, uint32_t key_version)
{
	(void) KeyringDir();
	/* issue 14: shred only entries this database owns */
	vault_id = KeyringIdOf(vault_id);
	RequireClaim(vault_id, "shred the vault's keys");
	for (int i = 0; i < g_nshreds; i++)
		if (g_shreds[i].vault_id == vault_id)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("a key of this vault is already being shredded in this transaction"),
					 errhint("Commit first, then retire or drop again.")));
	if (g_nshreds == kMaxPending)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("too many vaults dropped in one transaction")));
	g_shreds[g_nshreds++] = {vault_id, key_version, GetCurrentTransactionNestLevel(), false};
}

} // namespace vector_vault::keys

/* Background worker: finishes shreds interrupted by a crash as soon as recovery has finished (the
 * commit log then says which drops committed), then idles. It stays (an exit would unregister it)
 * so that a crash restart within one postmaster, which ends every process, starts it again and a
 * drop interrupted by a backend's crash is finished without waiting for a session's key use. */
void
vault_keyring_reconcile_main(Datum)
{
	/* Shutdown ends the idle loop quietly (die() would log a FATAL at every shutdown). */
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();
	const char *dir = vector_vault::keys::detail::KeyringDirNoError();
	if (dir != nullptr && dir[0] == '/')
	{
		/* An error is reported and the worker idles on: exiting would restart it every few
		 * seconds with the same error; sessions' first key use and a rotation retry anyway. */
		PG_TRY();
		{
			vector_vault::keys::ReconcileKeyring();
		}
		PG_CATCH();
		{
			LWLockReleaseAll();
			EmitErrorReport();
			FlushErrorState();
		}
		PG_END_TRY();
	}
	while (!ShutdownRequestPending)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH, -1L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	proc_exit(0);
}
