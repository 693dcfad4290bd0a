/* privileged.cpp — SPI as the extension owner with a pinned search_path (see privileged.h). */
#include "pg/privileged.h"

extern "C"
{
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "executor/spi.h"
#include "utils/guc.h"
#include "utils/syscache.h"
}

namespace vector_vault::pg
{

/* Owner of schema "vault". */
Oid
ExtensionOwner()
{
	Oid nsp = get_namespace_oid("vault", true);
	if (!OidIsValid(nsp))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_SCHEMA), errmsg("schema \"vault\" does not exist"),
				 errhint("Run CREATE EXTENSION vector_vault in this database.")));
	HeapTuple tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for namespace %u", nsp);
	Oid owner = reinterpret_cast<Form_pg_namespace>(GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);
	return owner;
}

namespace
{

/* Sets the identity and security context, pins search_path, connects SPI. */
void
EnterScope(PrivilegedScope *scope, Oid user)
{
	if (IsInParallelMode())
		ereport(ERROR, (errcode(ERRCODE_INVALID_TRANSACTION_STATE),
						errmsg("vector_vault cannot run catalog statements in a parallel worker")));
	GetUserIdAndSecContext(&scope->saved_user, &scope->saved_sec_context);
	SetUserIdAndSecContext(OidIsValid(user) ? user : scope->saved_user,
						   scope->saved_sec_context | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_RESTRICTED_OPERATION);
	scope->guc_nest_level = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

} // namespace

/* Switches to the extension owner, pins search_path, connects SPI. */
void
EnterPrivileged(PrivilegedScope *scope)
{
	EnterScope(scope, ExtensionOwner());
}

/* Keeps the caller's identity, pins search_path, restricts, connects SPI. */
void
EnterCallerScope(PrivilegedScope *scope)
{
	EnterScope(scope, InvalidOid);
}

/* Undoes EnterPrivileged. */
void
LeavePrivileged(PrivilegedScope *scope)
{
	SPI_finish();
	AtEOXact_GUC(true, scope->guc_nest_level);
	SetUserIdAndSecContext(scope->saved_user, scope->saved_sec_context);
}

/* Runs one catalog statement as the extension owner; returns rows processed. */
uint64
RunPrivileged(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls)
{
	PrivilegedScope scope;
	EnterPrivileged(&scope);
	int rc = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);
	if (rc < 0)
		elog(ERROR, "vector_vault catalog statement failed: %s", SPI_result_code_string(rc));
	uint64 n = SPI_processed;
	LeavePrivileged(&scope);
	return n;
}

} // namespace vector_vault::pg
