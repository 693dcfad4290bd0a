/*
 * identity.cpp — one vault identity per keyring, the catalog side (issue 14).
 *
 * keys/claims.cpp makes the keyring refuse a database that does not own a vault's entries. This
 * file holds what the catalog adds to that:
 *
 *   adoption   vault.adopt_copied_vaults() (superuser only) gives a copied database vaults of its
 *              own: each active vault whose entries another database claims gets a fresh
 *              keyring id, the same data keys re-wrapped under it (so the copy's ciphertext keeps
 *              decrypting) and claimed by this database, recorded in vault._vaults.keyring_id.
 *              Superuser only, because adopting lets the copy's catalog, which whoever made the
 *              copy controls, decide who decrypts data that was the original's.
 *   roles      vault._vaults names roles by OID (regrole), which Postgres does not know about.
 *              SyncRoleDependencies() records an ACL-type shared dependency (pg_shdepend) of the
 *              empty table vault._roles_in_use on every role the catalog names, so DROP ROLE
 *              from any database of the cluster is refused with Postgres' own message.
 *   restores   a dump's vault catalog is COPYed table by table; when vault._vaults fails (a vault
 *              of that name exists) the other tables used to go in anyway, importing API keys and
 *              key-management passwords. CheckCatalogRestore() refuses every catalog COPY into a
 *              database that has vaults of its own.
 */
#include "vault/identity.h"

#include "core/aead.h"

#include <algorithm>
#include <cinttypes>
#include <cstring>

#include "auth/auth.h"
#include "keys/claims.h"
#include "keys/keys.h"
#include "pg/catalog_scan.h"
#include "pg/guard.h"
#include "pg/privileged.h"
#include "vault/vault.h"

extern "C"
{
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_shdepend.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
}

using namespace vector_vault;

namespace vector_vault::vault
{

namespace
{

/* A growable, palloc'd array of role OIDs. */
struct OidSet
{
	Oid *oids;
	int count;
	int cap;
};

/* Appends an OID. */
void
AddOid(OidSet *set, Oid oid)
{
	if (!OidIsValid(oid))
		return;
	if (set->count == set->cap)
	{
		set->cap = set->cap == 0 ? 16 : set->cap * 2;
		set->oids = set->oids == nullptr
						? static_cast<Oid *>(palloc(sizeof(Oid) * set->cap))
						: static_cast<Oid *>(repalloc(set->oids, sizeof(Oid) * set->cap));
	}
	set->oids[set->count++] = oid;
}

/* Sorts and de-duplicates (updateAclDependencies wants both); always leaves a palloc'd array. */
void
SortUnique(OidSet *set)
{
	if (set->oids == nullptr)
		set->oids = static_cast<Oid *>(palloc(sizeof(Oid)));
	std::sort(set->oids, set->oids + set->count);
	set->count = static_cast<int>(std::unique(set->oids, set->oids + set->count) - set->oids);
}

/* Adds the role column of rows of a catalog table, optionally only where `filter` holds. */
void
CollectRoles(OidSet *set, const char *table, const char *column, const char *null_column,
			 const char *text_column, const char *text_value)
{
	pg::CatalogScan scan;
	pg::BeginCatalogScan(&scan, table);
	AttrNumber a_role = pg::CatalogColumn(&scan, column);
	AttrNumber a_null = null_column ? pg::CatalogColumn(&scan, null_column) : InvalidAttrNumber;
	AttrNumber a_text = text_column ? pg::CatalogColumn(&scan, text_column) : InvalidAttrNumber;
	while (pg::NextCatalogRow(&scan))
	{
		bool isnull;
		if (a_null != InvalidAttrNumber)
		{
			(void) pg::CatalogValue(&scan, a_null, &isnull);
			if (!isnull)
				continue;
		}
		if (a_text != InvalidAttrNumber)
		{
			Datum t = pg::CatalogValue(&scan, a_text, &isnull);
			if (isnull || strcmp(TextDatumGetCString(t), text_value) != 0)
				continue;
		}
		Datum role = pg::CatalogValue(&scan, a_role, &isnull);
		if (!isnull)
			AddOid(set, DatumGetObjectId(role));
	}
	pg::EndCatalogScan(&scan);
}

/* The OID of vault._roles_in_use, the object the role dependencies hang on (Invalid before the
 * extension's identity objects exist). */
Oid
AnchorRelation()
{
	Oid nsp = get_namespace_oid("vault", true);
	return OidIsValid(nsp) ? get_relname_relid("_roles_in_use", nsp) : InvalidOid;
}

/* The ACL-type shared dependencies this database's anchor holds now. */
void
CurrentDependencies(Oid anchor, OidSet *set)
{
	Relation rel = table_open(SharedDependRelationId, AccessShareLock);
	ScanKeyData key[3];
	ScanKeyInit(&key[0], Anum_pg_shdepend_dbid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(MyDatabaseId));
	ScanKeyInit(&key[1], Anum_pg_shdepend_classid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(RelationRelationId));
	ScanKeyInit(&key[2], Anum_pg_shdepend_objid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(anchor));
	SysScanDesc scan = systable_beginscan(rel, SharedDependDependerIndexId, true, nullptr, 3, key);
	HeapTuple tup;
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_shdepend dep = reinterpret_cast<Form_pg_shdepend>(GETSTRUCT(tup));
		if (dep->objsubid == 0 && dep->refclassid == AuthIdRelationId &&
			dep->deptype == SHARED_DEPENDENCY_ACL)
			AddOid(set, dep->refobjid);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
}

} // namespace

/* Brings pg_shdepend in line with the roles the catalog names. */
void
SyncRoleDependencies()
{
	Oid anchor = AnchorRelation();
	if (!OidIsValid(anchor))
		return;
	/* Self-conflicting: two syncs must not both add the same dependency. */
	LockRelationOid(anchor, ShareUpdateExclusiveLock);
	OidSet want = {nullptr, 0, 0};
	CollectRoles(&want, "_vaults", "owner", nullptr, "state", "active");
	CollectRoles(&want, "_grants", "grantee", nullptr, nullptr, nullptr);
	CollectRoles(&want, "_api_keys", "owner", "revoked_at", nullptr, nullptr);
	/* Roles that no longer exist cannot take a dependency (an orphan from before). */
	int keep = 0;
	for (int i = 0; i < want.count; i++)
		if (SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(want.oids[i])))
			want.oids[keep++] = want.oids[i];
	want.count = keep;
	OidSet have = {nullptr, 0, 0};
	CurrentDependencies(anchor, &have);
	SortUnique(&want);
	SortUnique(&have);
	HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(anchor));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", anchor);
	Oid owner = reinterpret_cast<Form_pg_class>(GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	updateAclDependencies(RelationRelationId, anchor, 0, owner, have.count, have.oids, want.count,
						  want.oids);
	CommandCounterIncrement();
}

/* Refuses merging a dump's vault catalog into a database with vaults of its own. */
void
CheckCatalogRestore(const RangeVar *rv)
{
	static const char *const kTables[] = {"_vaults", "_grants", "_api_keys", "_api_key_vaults",
										  "_key_passwords"};
	Oid relid = RangeVarGetRelid(rv, NoLock, true);
	Oid nsp = get_namespace_oid("vault", true);
	if (!OidIsValid(relid) || !OidIsValid(nsp) || get_rel_namespace(relid) != nsp)
		return;
	const char *table = get_rel_name(relid);
	bool ours = false;
	for (const char *t : kTables)
		ours |= table != nullptr && strcmp(table, t) == 0;
	if (!ours)
		return;
	bool any = false, own = false;
	pg::CatalogScan scan;
	pg::BeginCatalogScan(&scan, "_vaults");
	AttrNumber a_id = pg::CatalogColumn(&scan, "vault_id");
	AttrNumber a_state = pg::CatalogColumn(&scan, "state");
	while (pg::NextCatalogRow(&scan))
	{
		any = true;
		bool isnull;
		char *state = TextDatumGetCString(pg::CatalogValue(&scan, a_state, &isnull));
		uint64_t id = static_cast<uint64_t>(DatumGetInt64(pg::CatalogValue(&scan, a_id, &isnull)));
		uint32_t db = 0;
		/* A tombstone is this database's history; an active vault is its own when it holds the
		 * claim on the entries. */
		own |= strcmp(state, "active") != 0 ||
			   keys::ClaimOf(keys::KeyringIdOf(id), &db) == keys::ClaimOwner::kThisDatabase;
	}
	pg::EndCatalogScan(&scan);
	if (own || (any && strcmp(table, "_vaults") == 0))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot restore vault.%s into a database that already has vaults", table),
				 errdetail("A dump's vault catalog (vaults, grants, API keys, key-management "
						   "passwords) restores only as a whole into a database whose vault "
						   "catalog is empty; merging it would import keys and passwords for "
						   "vaults that are not restored."),
				 errhint("Restore into a new database (CREATE DATABASE, then pg_restore into it), "
						 "then run SELECT * FROM vault.adopt_copied_vaults() there as a "
						 "superuser.")));
}

/* True when the owner role was dropped. */
bool
OwnerRoleIsGone(Oid owner)
{
	return !SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(owner));
}

} // namespace vector_vault::vault

namespace
{

/* A fresh random keyring id no vault row and no keyring entry or claim uses. */
uint64_t
FreshKeyringId()
{
	for (int attempt = 0; attempt < 16; attempt++)
	{
		uint8_t raw[8];
		Status s = RandomBytes(raw, sizeof(raw));
		if (!s.ok())
			pg::ThrowStatus(s, nullptr, nullptr);
		uint64_t candidate = 0;
		for (uint8_t b : raw)
			candidate = (candidate << 8) | b;
		candidate &= 0x7FFFFFFFFFFFFFFFull;
		uint32_t db = 0;
		if (candidate != 0 && vault::LookupVault(candidate) == nullptr &&
			!keys::DataKeyExists(candidate, 1) &&
			keys::ClaimOf(candidate, &db) == keys::ClaimOwner::kNobody)
			return candidate;
	}
	elog(ERROR, "could not pick an unused keyring id");
}

/* Appends one result row of adopt_copied_vaults. */
void
EmitAdoption(Tuplestorestate *ts, TupleDesc desc, const char *name, uint64_t id, uint64_t kid,
			 const char *action)
{
	Datum values[4] = {CStringGetTextDatum(name), Int64GetDatum(static_cast<int64>(id)),
					   Int64GetDatum(static_cast<int64>(kid)), CStringGetTextDatum(action)};
	bool nulls[4] = {false, false, false, false};
	tuplestore_putvalues(ts, desc, values, nulls);
}

/* One active vault row, as adoption needs it. */
struct VaultRow
{
	uint64_t id;
	uint64_t kid;
	char *name;
};

} // namespace

/*
 * vault.adopt_copied_vaults(take_over boolean DEFAULT false)
 *   RETURNS TABLE (vault text, vault_id bigint, keyring_id bigint, action text)
 * Gives every active vault of this database whose keyring entries another database claims its
 * own keyring identity (or, with take_over, moves the claim here: for a restore whose original
 * is gone for good, e.g. after pg_upgrade or a disaster). Superuser only.
 */
VV_FUNCTION(vault_adopt_copied_vaults)
{
	bool take_over = PG_GETARG_BOOL(0);
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to adopt copied vaults"),
				 errdetail("Adopting lets this database's catalog decide who decrypts data that "
						   "was copied from another database."),
				 errhint("Ask a superuser to run SELECT * FROM vault.adopt_copied_vaults().")));
	PreventCommandIfReadOnly("vault.adopt_copied_vaults()");
	PreventCommandDuringRecovery("vault.adopt_copied_vaults()");
	keys::RequireMasterKey();
	ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
	InitMaterializedSRF(fcinfo, 0);
	Tuplestorestate *ts = rsinfo->setResult;
	TupleDesc desc = rsinfo->setDesc;

	Oid nsp = get_namespace_oid("vault", false);
	/* One adoption at a time; vault changes wait (they update rows of vault._vaults). */
	LockRelationOid(get_relname_relid("_vaults", nsp), ShareRowExclusiveLock);
	VaultRow *rows = nullptr;
	int n = 0, cap = 0;
	{
		pg::CatalogScan scan;
		pg::BeginCatalogScan(&scan, "_vaults");
		AttrNumber a_id = pg::CatalogColumn(&scan, "vault_id");
		AttrNumber a_name = pg::CatalogColumn(&scan, "name");
		AttrNumber a_state = pg::CatalogColumn(&scan, "state");
		AttrNumber a_kid = pg::CatalogColumn(&scan, "keyring_id");
		while (pg::NextCatalogRow(&scan))
		{
			bool isnull, kid_null;
			if (strcmp(TextDatumGetCString(pg::CatalogValue(&scan, a_state, &isnull)), "active") !=
				0)
				continue;
			if (n == cap)
			{
				cap = cap == 0 ? 16 : cap * 2;
				rows = rows == nullptr
						   ? static_cast<VaultRow *>(palloc(sizeof(VaultRow) * cap))
						   : static_cast<VaultRow *>(repalloc(rows, sizeof(VaultRow) * cap));
			}
			VaultRow &r = rows[n++];
			r.id = static_cast<uint64_t>(DatumGetInt64(pg::CatalogValue(&scan, a_id, &isnull)));
			Datum kid = pg::CatalogValue(&scan, a_kid, &kid_null);
			r.kid = kid_null ? r.id : static_cast<uint64_t>(DatumGetInt64(kid));
			r.name = TextDatumGetCString(pg::CatalogValue(&scan, a_name, &isnull));
		}
		pg::EndCatalogScan(&scan);
	}
	bool changed = false;
	for (int i = 0; i < n; i++)
	{
		const VaultRow &r = rows[i];
		uint32_t db = 0;
		keys::ClaimOwner owner = keys::ClaimOf(r.kid, &db);
		if (owner == keys::ClaimOwner::kThisDatabase)
		{
			EmitAdoption(ts, desc, r.name, r.id, r.kid, "already this database's");
			continue;
		}
		if (!keys::VaultHasKeys(r.id))
		{
			EmitAdoption(ts, desc, r.name, r.id, r.kid,
						 "no keys in the keyring (shredded); drop the vault");
			continue;
		}
		if (owner == keys::ClaimOwner::kNobody || take_over)
		{
			keys::TakeClaim(r.kid);
			auth::AuditVaultChangeAtCommit("adopt_vault", r.id, r.name,
										   owner == keys::ClaimOwner::kNobody
											   ? "claimed unclaimed keyring entries"
											   : "took over the keyring claim");
			EmitAdoption(ts, desc, r.name, r.id, r.kid,
						 owner == keys::ClaimOwner::kNobody ? "claimed" : "taken over");
			changed = true;
			continue;
		}
		uint64_t fresh = FreshKeyringId();
		int versions = keys::RewrapEntries(r.kid, fresh);
		keys::WriteClaim(fresh);
		Oid types[2] = {INT8OID, INT8OID};
		Datum values[2] = {Int64GetDatum(static_cast<int64>(r.id)),
						   Int64GetDatum(static_cast<int64>(fresh))};
		pg::RunPrivileged("UPDATE vault._vaults SET keyring_id = $2 WHERE vault_id "
						  "OPERATOR(pg_catalog.=) $1",
						  2, types, values);
		auth::AuditVaultChangeAtCommit("adopt_vault", r.id, r.name,
									   psprintf("re-wrapped %d key versions under a keyring id of "
												"this database",
												versions));
		EmitAdoption(ts, desc, r.name, r.id, fresh,
					 psprintf("re-wrapped %d key versions under a new keyring id", versions));
		changed = true;
	}
	if (changed)
	{
		keys::InvalidateKeyringIds();
		keys::InvalidateDataKeyCache();
		vault::BumpEpochAtCommit();
	}
	vault::SyncRoleDependencies();
	return (Datum) 0;
}

/* Statement trigger on vault._vaults, _grants and _api_keys: SyncRoleDependencies(). */
VV_FUNCTION(vault_sync_role_dependencies)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
						errmsg("vault._sync_role_dependencies() runs only as a trigger")));
	vault::SyncRoleDependencies();
	return PointerGetDatum(nullptr);
}
