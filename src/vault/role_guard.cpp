/*
 * role_guard.cpp — DROP ROLE must not orphan a vault, a grant or an API key.
 *
 * The catalog refers to roles as regrole values; Postgres does not know those references, so
 * a ProcessUtility hook refuses DROP ROLE while the role owns a vault, holds a grant or owns an
 * API key in the current database, with a message that names the vault. From other databases,
 * the shared dependencies that identity.cpp records in pg_shdepend (on vault._roles_in_use) make
 * Postgres refuse the DROP ROLE itself. Without this, a later role that reused the OID would
 * inherit the rights, and a vault whose owner is gone could be dropped by nobody.
 *
 * The same hook refuses COPY into the vault catalog of a database that has vaults of its own
 * (identity.cpp, CheckCatalogRestore).
 */
#include <cstring>

#include "auth/auth.h"
#include "pg/guard.h"
#include "pg/privileged.h"
#include "vault/identity.h"
#include "vault/vault.h"

extern "C"
{
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/acl.h"
}

namespace vector_vault::vault
{

namespace
{

ProcessUtility_hook_type g_prev_utility = nullptr;

/* Raises 2BP01 when the role is referenced by the vault catalog. */
void
CheckRoleUnused(Oid role, const char *name)
{
	pg::PrivilegedScope scope;
	pg::EnterPrivileged(&scope);
	Oid types[1] = {OIDOID};
	Datum values[1] = {ObjectIdGetDatum(role)};
	int rc = SPI_execute_with_args("SELECT 'owns vault ' || name FROM vault._vaults WHERE "
								   "owner::oid OPERATOR(pg_catalog.=) $1 AND state "
								   "OPERATOR(pg_catalog.=) 'active' UNION ALL SELECT 'has a grant "
								   "on vault ' || v.name FROM vault._grants g "
								   "JOIN vault._vaults v USING (vault_id) WHERE g.grantee::oid "
								   "OPERATOR(pg_catalog.=) $1 UNION ALL SELECT "
								   "'owns API key ' || key_id FROM vault._api_keys WHERE "
								   "owner::oid OPERATOR(pg_catalog.=) $1 AND revoked_at IS "
								   "NULL LIMIT 1",
								   1, types, values, nullptr, true, 1);
	char *what = (rc == SPI_OK_SELECT && SPI_processed == 1)
					 ? pstrdup(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1))
					 : nullptr;
	pg::LeavePrivileged(&scope);
	if (what != nullptr)
		ereport(
			ERROR,
			(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
			 errmsg("role \"%s\" cannot be dropped because it %s", name, what),
			 errhint(
				 "Drop the vault, revoke the grant (vault.revoke) or revoke the API key first.")));
}

/* Removes what the catalog keeps about a role that may be dropped: its key-management password
 * and its revoked API keys (a later role reusing the OID must not inherit them). */
void
ForgetRole(Oid role)
{
	Oid types[1] = {OIDOID};
	Datum values[1] = {ObjectIdGetDatum(role)};
	pg::RunPrivileged("DELETE FROM vault._key_passwords WHERE role::oid OPERATOR(pg_catalog.=) $1",
					  1, types, values);
	pg::RunPrivileged("DELETE FROM vault._api_keys WHERE owner::oid OPERATOR(pg_catalog.=) $1", 1,
					  types, values);
}

/* ProcessUtility hook: checks DROP ROLE, ends key logins on DISCARD ALL, then runs the statement.
 */
void
UtilityHook(PlannedStmt *pstmt, const char *query, bool read_only, ProcessUtilityContext context,
			ParamListInfo params, QueryEnvironment *env, DestReceiver *dest,
			QueryCompletion *qc) noexcept
{
	Node *stmt = pstmt->utilityStmt;
	if (IsA(stmt, DropRoleStmt) && OidIsValid(get_extension_oid("vector_vault", true)) &&
		OidIsValid(get_namespace_oid("vault", true)))
	{
		DropRoleStmt *drop = reinterpret_cast<DropRoleStmt *>(stmt);
		ListCell *lc;
		foreach (lc, drop->roles)
		{
			RoleSpec *rs = static_cast<RoleSpec *>(lfirst(lc));
			Oid role = get_rolespec_oid(rs, true);
			if (OidIsValid(role))
			{
				CheckRoleUnused(role, get_rolespec_name(rs));
				ForgetRole(role);
			}
		}
	}
	/* A dump's vault catalog restores only into a database without vaults of its own. */
	if (IsA(stmt, CopyStmt) && reinterpret_cast<CopyStmt *>(stmt)->is_from &&
		reinterpret_cast<CopyStmt *>(stmt)->relation != nullptr &&
		OidIsValid(get_extension_oid("vector_vault", true)))
		CheckCatalogRestore(reinterpret_cast<CopyStmt *>(stmt)->relation);
	/* DISCARD ALL (PgBouncer's session reset) resets the session, its vault login included. */
	if (IsA(stmt, DiscardStmt) && reinterpret_cast<DiscardStmt *>(stmt)->target == DISCARD_ALL)
		auth::EndLoginForReset();
	if (g_prev_utility)
		g_prev_utility(pstmt, query, read_only, context, params, env, dest, qc);
	else
		standard_ProcessUtility(pstmt, query, read_only, context, params, env, dest, qc);
}

} // namespace

/* Installs the DROP ROLE guard. */
void
RegisterRoleGuard()
{
	g_prev_utility = ProcessUtility_hook;
	ProcessUtility_hook = UtilityHook;
}

} // namespace vector_vault::vault
