/*
 * claims.cpp — one owner per vault identity in a shared keyring (see claims.h).
 *
 * A vault id is chosen at random and checked for uniqueness when the vault is created, but the
 * catalog row that carries it can be copied: CREATE DATABASE ... TEMPLATE copies it, pg_restore
 * into a second database copies it, and a second cluster given the same keyring directory sees
 * the same entries. Before claims, every copy unwrapped, rotated and shredded the same keyring
 * entries, so a drop in a copy destroyed the original's data and the copy's catalog decided on its
 * own who could decrypt the original's ciphertext.
 *
 * Now the keyring holds, next to a vault's entries, a claim file naming the owning database by
 * (system identifier, database OID). OIDs are unique within a cluster and never reused while the
 * database exists; a TEMPLATE copy or a restore gets a new OID, while a base backup, a standby,
 * PITR and pg_upgrade (which keeps database OIDs since PostgreSQL 15) keep both. The keyring code
 * asks here before it unwraps (DataKey), adds (CreateDataKey) or shreds (ScheduleShred) an entry.
 *
 * A copy becomes a vault owner of its own through vault.adopt_copied_vaults(): the same data keys
 * (its ciphertext must keep decrypting) are re-wrapped under a fresh keyring id that this
 * database claims, and vault._vaults.keyring_id maps the vault id (which envelopes carry) to it.
 * From then on a drop in either database shreds only its own entries. KeyringIdOf() is that map,
 * cached per backend and reloaded when the shared access epoch moves.
 */
#include "keys/claims.h"

#include "core/durable_file.h"
#include "core/envelope.h"
#include "core/keyring_format.h"
#include "core/secure.h"

#include <algorithm>
#include <cinttypes>
#include <cstring>
#include <ctime>
#include <dirent.h>

#include "keys/keys.h"
#include "pg/catalog_scan.h"
#include "pg/guard.h"
#include "pg/shmem.h"

extern "C"
{
#include "access/xact.h"
#include "access/xlog.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "utils/memutils.h"
}

namespace vector_vault::keys
{

namespace
{

constexpr size_t kClaimBytes = 20;
const uint8_t kClaimMagic[4] = {'V', 'V', 'C', 'L'};
constexpr uint32_t kClaimFormat = 1;

/* A file this transaction wrote (a claim or a re-wrapped entry), removed if it aborts. */
struct PendingFile
{
	char name[kKeyringFileNameMax];
	int nest_level;
};
constexpr int kMaxPendingFiles = 1024;
PendingFile *g_pending = nullptr;
int g_npending = 0;

/* One adopted vault: catalog id -> keyring id. */
struct IdPair
{
	uint64_t vault_id;
	uint64_t keyring_id;
};

/* The per-backend map of adopted vaults (sorted by vault_id). */
struct IdMap
{
	bool valid;
	uint64 epoch;
	int count;
	IdPair *pairs; /* in g_map_context */
};
IdMap g_map;
MemoryContext g_map_context = nullptr;

/* The claim file name of a keyring id. */
void
ClaimFileName(uint64_t kid, char out[kKeyringFileNameMax])
{
	snprintf(out, kKeyringFileNameMax, "claim-%016" PRIx64 ".db", kid);
}

/* Remembers a file to remove if the (sub)transaction aborts. */
void
RememberPending(const char *name)
{
	if (g_pending == nullptr)
		g_pending = static_cast<PendingFile *>(
			MemoryContextAlloc(TopMemoryContext, sizeof(PendingFile) * kMaxPendingFiles));
	if (g_npending == kMaxPendingFiles)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("too many keyring entries written in one transaction")));
	strlcpy(g_pending[g_npending].name, name, kKeyringFileNameMax);
	g_pending[g_npending].nest_level = GetCurrentTransactionNestLevel();
	g_npending++;
}

/* Removes pending files of nesting level >= level (all when level is 0); never raises. */
void
UndoPending(int level)
{
	const char *dir = detail::KeyringDirNoError();
	int keep = 0;
	for (int i = 0; i < g_npending; i++)
	{
		if (g_pending[i].nest_level >= level)
		{
			Status s = RemoveFileDurably(dir, g_pending[i].name);
			if (!s.ok())
				ereport(WARNING, (errmsg("vector_vault: %s", s.message())));
		}
		else
			g_pending[keep++] = g_pending[i];
	}
	g_npending = keep;
}

/* Transaction end: keeps what committed, removes what aborted. */
void
ClaimXactCallback(XactEvent event, void *) noexcept
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
	{
		if (g_npending > 0)
			UndoPending(0);
		g_map.valid = false;
	}
	else if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
		g_npending = 0;
}

/* Subtransaction end: an aborted subtransaction's files go, a committed one's move up. */
void
ClaimSubXactCallback(SubXactEvent event, SubTransactionId, SubTransactionId, void *) noexcept
{
	int level = GetCurrentTransactionNestLevel();
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		if (g_npending > 0)
			UndoPending(level);
		g_map.valid = false;
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
		for (int i = 0; i < g_npending; i++)
			if (g_pending[i].nest_level >= level)
				g_pending[i].nest_level = level - 1;
}

/* Attribute number of a column, or InvalidAttrNumber when the table has none (older catalog). */
AttrNumber
OptionalColumn(const pg::CatalogScan *scan, const char *column)
{
	TupleDesc desc = RelationGetDescr(scan->rel);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		if (!att->attisdropped && strcmp(NameStr(att->attname), column) == 0)
			return att->attnum;
	}
	return InvalidAttrNumber;
}

/* Loads the vault id -> keyring id map from vault._vaults (plain heap scan, no SQL). */
void
LoadMap()
{
	if (g_map_context == nullptr)
		g_map_context = AllocSetContextCreate(TopMemoryContext, "vector_vault keyring ids",
											  ALLOCSET_SMALL_SIZES);
	MemoryContextReset(g_map_context);
	g_map = IdMap();
	uint64 epoch = pg::AccessEpoch();
	pg::CatalogScan scan;
	pg::BeginCatalogScan(&scan, "_vaults");
	AttrNumber a_id = pg::CatalogColumn(&scan, "vault_id");
	AttrNumber a_kid = OptionalColumn(&scan, "keyring_id");
	int cap = 0;
	while (a_kid != InvalidAttrNumber && pg::NextCatalogRow(&scan))
	{
		bool null_id, null_kid;
		Datum id = pg::CatalogValue(&scan, a_id, &null_id);
		Datum kid = pg::CatalogValue(&scan, a_kid, &null_kid);
		if (null_id || null_kid)
			continue;
		if (g_map.count == cap)
		{
			cap = cap == 0 ? 16 : cap * 2;
			IdPair *grown =
				static_cast<IdPair *>(MemoryContextAlloc(g_map_context, sizeof(IdPair) * cap));
			if (g_map.count > 0)
				memcpy(grown, g_map.pairs, sizeof(IdPair) * g_map.count);
			g_map.pairs = grown;
		}
		g_map.pairs[g_map.count++] = {static_cast<uint64_t>(DatumGetInt64(id)),
									  static_cast<uint64_t>(DatumGetInt64(kid))};
	}
	pg::EndCatalogScan(&scan);
	if (g_map.count > 1)
		std::sort(g_map.pairs, g_map.pairs + g_map.count,
				  [](const IdPair &a, const IdPair &b) { return a.vault_id < b.vault_id; });
	g_map.epoch = epoch;
	g_map.valid = true;
}

/* Reads a claim file: false when there is none (or it is malformed, which is reported). */
bool
ReadClaim(const char *dir, uint64_t kid, uint64_t *sysid, uint32_t *db_oid)
{
	char name[kKeyringFileNameMax];
	ClaimFileName(kid, name);
	uint8_t buf[kClaimBytes];
	size_t len = 0;
	Status s = ReadSmallFile(dir, name, buf, sizeof(buf), &len);
	if (s.code() == Code::kNotFound)
		return false;
	if (!s.ok())
		pg::ThrowStatus(s, "could not read a keyring claim", nullptr);
	if (len != kClaimBytes || memcmp(buf, kClaimMagic, 4) != 0 || GetU32(buf + 4) != kClaimFormat)
		ereport(ERROR,
				(errcode(pg::kSqlStateCorrupt), errmsg("keyring claim \"%s\" is malformed", name),
				 errhint("Restore it from a keyring backup, or remove it and run "
						 "vault.adopt_copied_vaults() in the database that owns the "
						 "vault.")));
	*sysid = GetU64(buf + 8);
	*db_oid = GetU32(buf + 16);
	return true;
}

/* Writes this database's claim on kid durably (not undone on abort when pending is false). */
void
WriteClaimFile(uint64_t kid, bool pending)
{
	const char *dir = KeyringDir();
	char name[kKeyringFileNameMax];
	ClaimFileName(kid, name);
	uint8_t buf[kClaimBytes];
	memcpy(buf, kClaimMagic, 4);
	PutU32(buf + 4, kClaimFormat);
	PutU64(buf + 8, GetSystemIdentifier());
	PutU32(buf + 16, MyDatabaseId);
	if (pending)
		RememberPending(name);
	Status s = WriteFileDurably(dir, name, buf, sizeof(buf));
	if (!s.ok())
		pg::ThrowStatus(s, "could not write the vault's keyring claim",
						"Check that vector_vault.keyring_dir is writable by the server.");
}

} // namespace

/* True when the keyring holds some key version of keyring id kid. */
bool
KeyringHasEntries(const char *dir, uint64_t kid)
{
	DIR *d = opendir(dir);
	if (d == nullptr)
		return false;
	bool found = false;
	struct dirent *de;
	while (!found && (de = readdir(d)) != nullptr)
	{
		uint64_t v;
		uint32_t ver;
		found = ParseDataKeyFileName(de->d_name, &v, &ver) && v == kid;
	}
	closedir(d);
	return found;
}

/* Installs the transaction callbacks. */
void
RegisterClaimCallbacks()
{
	RegisterXactCallback(ClaimXactCallback, nullptr);
	RegisterSubXactCallback(ClaimSubXactCallback, nullptr);
}

/* The keyring id of a vault in this database. */
uint64_t
KeyringIdOf(uint64_t vault_id)
{
	if (!g_map.valid || g_map.epoch != pg::AccessEpoch())
		LoadMap();
	int lo = 0, hi = g_map.count - 1;
	while (lo <= hi)
	{
		int mid = (lo + hi) / 2;
		if (g_map.pairs[mid].vault_id == vault_id)
			return g_map.pairs[mid].keyring_id;
		if (g_map.pairs[mid].vault_id < vault_id)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return vault_id;
}

/* Forgets the map. */
void
InvalidateKeyringIds()
{
	g_map.valid = false;
}

/* Who claims kid. */
ClaimOwner
ClaimOf(uint64_t kid, uint32_t *db_oid)
{
	uint64_t sysid = 0;
	uint32_t oid = 0;
	*db_oid = 0;
	if (!ReadClaim(KeyringDir(), kid, &sysid, &oid))
		return ClaimOwner::kNobody;
	if (sysid != GetSystemIdentifier())
		return ClaimOwner::kOtherDatabase;
	*db_oid = oid;
	return oid == MyDatabaseId ? ClaimOwner::kThisDatabase : ClaimOwner::kOtherDatabase;
}

/* Refuses a keyring use by a database that does not own the entries. */
void
RequireClaim(uint64_t kid, const char *action)
{
	uint32_t db = 0;
	ClaimOwner owner = ClaimOf(kid, &db);
	if (owner == ClaimOwner::kThisDatabase)
		return;
	if (owner == ClaimOwner::kNobody)
	{
		/* Entries from before claims existed: the first database that uses them owns them.
		 * Best effort (a read-only keyring on a standby stays unclaimed until the primary
		 * claims it). */
		if (!RecoveryInProgress() && KeyringHasEntries(KeyringDir(), kid))
			WriteClaimFile(kid, false);
		return;
	}
	char *other = db != 0 ? get_database_name(db) : nullptr;
	ereport(ERROR,
			(errcode(pg::kSqlStateKeyUnavailable),
			 errmsg("cannot %s: the keys of vault %016" PRIx64 " belong to %s", action, kid,
					other != nullptr
						? psprintf("database \"%s\"", other)
						: (db != 0 ? "another database" : "a database of another cluster")),
			 errdetail("This database holds a copy of that database's vault catalog (CREATE "
					   "DATABASE ... TEMPLATE, or a restored dump); the keyring entries stay with "
					   "the database that created them."),
			 errhint("A superuser can give this copy keys of its own with SELECT * FROM "
					 "vault.adopt_copied_vaults() (when restoring a dump: restore its pre-data and "
					 "data sections, adopt, then restore post-data); vault.drop_vault() here "
					 "removes the copy without touching the other database's keys.")));
}

/* Claims a new vault's keyring id (removed again on abort). */
void
ClaimNewVault(uint64_t kid)
{
	uint32_t db = 0;
	if (ClaimOf(kid, &db) != ClaimOwner::kNobody)
		ereport(ERROR, (errcode(ERRCODE_DUPLICATE_OBJECT),
						errmsg("keyring id %016" PRIx64 " is already claimed", kid)));
	WriteClaimFile(kid, true);
}

/* Records this database's claim on kid (removed again on abort). */
void
WriteClaim(uint64_t kid)
{
	WriteClaimFile(kid, true);
}

/* Moves kid's claim to this database. */
void
TakeClaim(uint64_t kid)
{
	WriteClaimFile(kid, false);
}

/* Removes kid's claim; never raises (runs after commit and in the reconciler). */
void
RemoveClaim(const char *dir, uint64_t kid)
{
	char name[kKeyringFileNameMax];
	ClaimFileName(kid, name);
	if (dir == nullptr || !FileExists(dir, name))
		return;
	Status s = RemoveFileDurably(dir, name);
	if (!s.ok())
		ereport(WARNING, (errmsg("vector_vault: %s", s.message())));
}

/* Copies every key version of `from` into entries bound to `to`. */
int
RewrapEntries(uint64_t from, uint64_t to)
{
	const char *dir = KeyringDir();
	if (FileExists(dir, kRotationMarkerFileName))
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("a master key rotation is being finished"),
						errhint("Restart the server to finish it, then adopt again.")));
	/* Versions first: writing while iterating would change the directory. */
	uint32_t versions[1024];
	int n = 0;
	DIR *d = opendir(dir);
	if (d == nullptr)
		ereport(ERROR, (errcode_for_file_access(),
						errmsg("could not open keyring directory \"%s\": %m", dir)));
	struct dirent *de;
	while ((de = readdir(d)) != nullptr)
	{
		uint64_t v;
		uint32_t ver;
		if (ParseDataKeyFileName(de->d_name, &v, &ver) && v == from && n < 1024)
			versions[n++] = ver;
	}
	closedir(d);
	for (int i = 0; i < n; i++)
	{
		char src[kKeyringFileNameMax], dst[kKeyringFileNameMax];
		DataKeyFileName(from, versions[i], src);
		DataKeyFileName(to, versions[i], dst);
		uint8_t entry[kKeyringEntryBytes];
		uint8_t key[kKeyBytes];
		size_t len = 0;
		KeyringEntryInfo expected;
		expected.kind = KeyringEntryKind::kDataKey;
		expected.vault_id = from;
		expected.key_version = versions[i];
		KeyringEntryInfo info = expected;
		info.vault_id = to;
		info.created_at = static_cast<uint64_t>(time(nullptr));
		RememberPending(dst);
		LWLockAcquire(pg::Shared()->keyring_lock, LW_EXCLUSIVE);
		Status s = ReadSmallFile(dir, src, entry, sizeof(entry), &len);
		if (s.ok())
			s = OpenKeyringEntry(detail::MasterKeyBytes(), entry, len, expected, key);
		if (s.ok())
			s = SealKeyringEntry(detail::MasterKeyBytes(), info, key, entry);
		SecureZero(key, sizeof(key));
		if (s.ok())
			s = WriteFileDurably(dir, dst, entry, sizeof(entry));
		LWLockRelease(pg::Shared()->keyring_lock);
		if (!s.ok())
			pg::ThrowStatus(s, "could not re-wrap a vault key for this database", nullptr);
	}
	return n;
}

} // namespace vector_vault::keys
