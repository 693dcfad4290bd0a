/*
 * vault_sql.cpp — the SQL management surface: vault.create_vault, vault.drop_vault, vault.grant,
 * vault.revoke, vault.access_level, vault.reconcile_keyring.
 *
 * Each function runs as its caller (no SECURITY DEFINER), checks the caller's level itself, and
 * only then writes the catalog tables as the extension owner (pg/privileged.h). Every statement
 * names its operators as OPERATOR(pg_catalog.=) in addition to the pinned search_path.
 */
#include "core/aead.h"

#include "auth/auth.h"
#include "keys/claims.h"
#include "keys/keys.h"
#include "pg/guard.h"
#include "pg/privileged.h"
#include "vault/identity.h"
#include "vault/vault.h"

extern "C"
{
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
}

using namespace vector_vault;
using vault::Level;
using vault::VaultInfo;

namespace
{

/* Checks a vault name: 1-63 characters, letters, digits, '_', '.', '-', not starting with a digit.
 */
void
ValidateVaultName(const char *name)
{
	size_t len = strlen(name);
	bool ok = len >= 1 && len < NAMEDATALEN;
	for (size_t i = 0; ok && i < len; i++)
	{
		char c = name[i];
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
		bool other = (c >= '0' && c <= '9') || c == '.' || c == '-';
		ok = alpha || (i > 0 && other);
	}
	if (!ok)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("invalid vault name \"%s\"", name),
						errhint("Use 1 to 63 letters, digits, '_', '.' or '-', starting with a "
								"letter or '_'.")));
}

/* The level currently granted to role on vault (kNone when no grant row). */
Level
GrantedLevel(uint64_t vault_id, Oid role)
{
	pg::PrivilegedScope scope;
	pg::EnterPrivileged(&scope);
	Oid types[2] = {INT8OID, OIDOID};
	Datum values[2] = {Int64GetDatum(static_cast<int64>(vault_id)), ObjectIdGetDatum(role)};
	int rc = SPI_execute_with_args("SELECT level FROM vault._grants WHERE vault_id "
								   "OPERATOR(pg_catalog.=) $1 AND grantee::oid "
								   "OPERATOR(pg_catalog.=) $2",
								   2, types, values, nullptr, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read vault._grants");
	Level level = Level::kNone;
	if (SPI_processed == 1)
	{
		char *text = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		level = vault::ParseGrantLevel(text);
	}
	pg::LeavePrivileged(&scope);
	return level;
}

/* Refuses catalog changes where they cannot be made. */
void
RequireWritable(const char *what)
{
	PreventCommandIfReadOnly(what);
	PreventCommandDuringRecovery(what);
}

} // namespace

/* vault.create_vault(name text): creates a vault owned by the caller, with data key version 1. */
VV_FUNCTION(vault_create_vault)
{
	char *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	RequireWritable("vault.create_vault()");
	ValidateVaultName(name);
	keys::RequireMasterKey();
	if (vault::LookupVaultByName(name) != nullptr)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT), errmsg("vault \"%s\" already exists", name),
				 errhint("Choose another name, or drop the existing vault first.")));
	uint64_t id = 0;
	for (int attempt = 0; id == 0; attempt++)
	{
		if (attempt == 16)
			elog(ERROR, "could not pick an unused vault id");
		uint8_t raw[8];
		Status s = RandomBytes(raw, sizeof(raw));
		if (!s.ok())
			pg::ThrowStatus(s, nullptr, nullptr);
		uint64_t candidate = 0;
		for (uint8_t b : raw)
			candidate = (candidate << 8) | b;
		candidate &= 0x7FFFFFFFFFFFFFFFull;
		if (candidate != 0 && vault::LookupVault(candidate) == nullptr &&
			!keys::DataKeyExists(candidate, 1))
			id = candidate;
	}
	/* The key is durable before any row can refer to it. */
	keys::CreateDataKey(id, 1);
	Oid types[3] = {INT8OID, TEXTOID, OIDOID};
	Datum values[3] = {Int64GetDatum(static_cast<int64>(id)), CStringGetTextDatum(name),
					   ObjectIdGetDatum(GetUserId())};
	pg::RunPrivileged(
		"INSERT INTO vault._vaults (vault_id, name, owner) VALUES ($1, $2, $3::regrole)", 3, types,
		values);
	auth::AuditVaultChangeAtCommit("create_vault", id, name, nullptr);
	vault::BumpEpochAtCommit();
	vault::SyncRoleDependencies();
	PG_RETURN_VOID();
}

/* vault.drop_vault(name text): marks the vault dropped and shreds its keys at commit. */
VV_FUNCTION(vault_drop_vault)
{
	char *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	RequireWritable("vault.drop_vault()");
	const VaultInfo *v = vault::RequireVault(name);
	/* A vault whose owner role is gone (dropped before shared dependencies were recorded) has
	 * nobody with the owner's rights: a superuser may drop it, so it can always be shredded. */
	if (!(superuser() && vault::OwnerRoleIsGone(v->owner)))
		vault::RequireLevel(v, Level::kOwner, "drop the vault");
	uint64_t id = v->id;
	/* A copy of another database's vault (TEMPLATE copy, restored dump) drops only its catalog
	 * rows: the keyring entries belong to the other database and stay. */
	uint32_t claim_db = 0;
	bool shred =
		keys::ClaimOf(keys::KeyringIdOf(id), &claim_db) != keys::ClaimOwner::kOtherDatabase;
	Oid types[1] = {INT8OID};
	Datum values[1] = {Int64GetDatum(static_cast<int64>(id))};
	uint64 n =
		pg::RunPrivileged("UPDATE vault._vaults SET state = 'dropped', dropped_at = "
						  "pg_catalog.now() WHERE vault_id OPERATOR(pg_catalog.=) $1 AND state "
						  "OPERATOR(pg_catalog.=) 'active'",
						  1, types, values);
	if (n != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("vault \"%s\" does not exist", name),
				 errdetail("It was dropped by a concurrent transaction.")));
	pg::RunPrivileged("DELETE FROM vault._grants WHERE vault_id OPERATOR(pg_catalog.=) $1", 1,
					  types, values);
	if (shred)
		keys::ScheduleShred(id, 0);
	else
	{
		char *other = claim_db != 0 ? get_database_name(claim_db) : nullptr;
		ereport(NOTICE,
				(errmsg("the keys of vault \"%s\" were not shredded: they belong to %s", name,
						other != nullptr ? psprintf("database \"%s\"", other) : "another database"),
				 errdetail("This database held a copy of that database's vault (CREATE DATABASE "
						   "... TEMPLATE, or a restored dump); only the copy was dropped."),
				 errhint("Drop the vault in the database that owns it to shred its keys.")));
	}
	auth::AuditVaultChangeAtCommit("drop_vault", id, name,
								   shred ? "keys shredded at commit"
										 : "copy dropped; keys belong to another database");
	vault::BumpEpochAtCommit();
	vault::SyncRoleDependencies();
	PG_RETURN_VOID();
}

/* vault.grant(vault text, role regrole, level text): gives a role read, write or admin. */
VV_FUNCTION(vault_grant)
{
	char *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Oid role = PG_GETARG_OID(1);
	char *level_text = text_to_cstring(PG_GETARG_TEXT_PP(2));
	RequireWritable("vault.grant()");
	const VaultInfo *v = vault::RequireVault(name);
	vault::RequireLevel(v, Level::kAdmin, "grant access");
	keys::RequireClaim(keys::KeyringIdOf(v->id), "grant access to a copied vault");
	Level level = vault::ParseGrantLevel(level_text);
	if (level > v->level)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot grant %s access to vault \"%s\"", vault::LevelName(level),
						NameStr(v->name)),
				 errdetail("The current role holds only %s access.", vault::LevelName(v->level))));
	if (role == v->owner)
		ereport(ERROR, (errcode(ERRCODE_INVALID_GRANT_OPERATION),
						errmsg("role \"%s\" owns vault \"%s\"", GetUserNameFromId(role, false),
							   NameStr(v->name)),
						errhint("The owner already has every right on the vault.")));
	if (GrantedLevel(v->id, role) == Level::kAdmin && v->level < Level::kOwner)
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						errmsg("only the owner of vault \"%s\" can change an admin's grant",
							   NameStr(v->name))));
	Oid types[4] = {INT8OID, OIDOID, TEXTOID, OIDOID};
	Datum values[4] = {Int64GetDatum(static_cast<int64>(v->id)), ObjectIdGetDatum(role),
					   CStringGetTextDatum(vault::LevelName(level)), ObjectIdGetDatum(GetUserId())};
	pg::RunPrivileged(
		"INSERT INTO vault._grants (vault_id, grantee, level, granted_by) "
		"VALUES ($1, $2::regrole, $3, $4::regrole) ON CONFLICT (vault_id, grantee) DO "
		"UPDATE SET level = EXCLUDED.level, granted_by = EXCLUDED.granted_by, "
		"granted_at = pg_catalog.now()",
		4, types, values);
	auth::AuditVaultChangeAtCommit(
		"grant", v->id, NameStr(v->name),
		psprintf("%s to %s", vault::LevelName(level), GetUserNameFromId(role, false)));
	vault::BumpEpochAtCommit();
	vault::SyncRoleDependencies();
	PG_RETURN_VOID();
}

/* vault.revoke(vault text, role regrole): removes a role's grant on a vault. */
VV_FUNCTION(vault_revoke)
{
	char *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Oid role = PG_GETARG_OID(1);
	RequireWritable("vault.revoke()");
	const VaultInfo *v = vault::RequireVault(name);
	vault::RequireLevel(v, Level::kAdmin, "revoke access");
	if (role == v->owner)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_GRANT_OPERATION),
				 errmsg("cannot revoke the owner's rights on vault \"%s\"", NameStr(v->name)),
				 errhint("Drop the vault, or have its owner grant access and drop it.")));
	Level existing = GrantedLevel(v->id, role);
	if (existing == Level::kAdmin && v->level < Level::kOwner)
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						errmsg("only the owner of vault \"%s\" can revoke an admin's grant",
							   NameStr(v->name))));
	if (existing == Level::kNone)
	{
		ereport(NOTICE, (errmsg("role \"%s\" has no grant on vault \"%s\"",
								GetUserNameFromId(role, false), NameStr(v->name))));
		PG_RETURN_VOID();
	}
	Oid types[2] = {INT8OID, OIDOID};
	Datum values[2] = {Int64GetDatum(static_cast<int64>(v->id)), ObjectIdGetDatum(role)};
	pg::RunPrivileged("DELETE FROM vault._grants WHERE vault_id OPERATOR(pg_catalog.=) $1 AND "
					  "grantee::oid OPERATOR(pg_catalog.=) $2",
					  2, types, values);
	auth::AuditVaultChangeAtCommit(
		"revoke", v->id, NameStr(v->name),
		psprintf("%s from %s", vault::LevelName(existing), GetUserNameFromId(role, false)));
	vault::BumpEpochAtCommit();
	vault::SyncRoleDependencies();
	PG_RETURN_VOID();
}

/* vault.access_level(vault text): the current principal's level, or NULL. */
VV_FUNCTION(vault_access_level)
{
	char *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	const VaultInfo *v = vault::LookupVaultByName(name);
	if (v == nullptr || v->level == Level::kNone)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(vault::LevelName(v->level)));
}

/* vault.vault_id(vault text): the id of a vault the principal can access (NULL otherwise). */
VV_FUNCTION(vault_vault_id)
{
	const VaultInfo *v = vault::LookupVaultByName(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	if (v == nullptr || v->level == Level::kNone)
		PG_RETURN_NULL();
	PG_RETURN_INT64(static_cast<int64>(v->id));
}

/* vault.reconcile_keyring(): finishes shreds interrupted by a crash. */
VV_FUNCTION(vault_reconcile_keyring)
{
	(void) fcinfo;
	keys::ReconcileKeyring();
	PG_RETURN_VOID();
}

/* vault._owns_vault_id(id bigint): does the principal (a role, not an API key) own the vault,
 * dropped ones included? Used by vault.access_log: entries follow the vault's id, not its name. */
VV_FUNCTION(vault_owns_vault_id)
{
	const VaultInfo *v = vault::LookupVault(static_cast<uint64_t>(PG_GETARG_INT64(0)));
	PG_RETURN_BOOL(v != nullptr && auth::CurrentKey() == nullptr &&
				   vault::RoleHasRightsOf(GetUserId(), v->owner));
}

/* vault._acts_for(role regrole): is the principal a role with the rights of `role`? Superusers
 * get no shortcut: they see other roles' keys and log entries only in the underlying tables. */
VV_FUNCTION(vault_acts_for)
{
	PG_RETURN_BOOL(auth::CurrentKey() == nullptr &&
				   vault::RoleHasRightsOf(GetUserId(), PG_GETARG_OID(0)));
}
