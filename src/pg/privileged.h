/*
 * privileged.h — running catalog queries as the extension's owner.
 *
 * vector_vault's own tables (vault._vaults, vault._grants, ...) are not readable or writable by
 * ordinary roles. Our C functions run as the caller, capture the caller's identity, and then
 * switch to the owner of schema "vault" (whoever ran CREATE EXTENSION) for the SPI statements
 * that read or change those tables. While switched, search_path is pinned to pg_catalog so no
 * caller-created function or operator can be picked up, and the security context is
 * restricted. Transaction and subtransaction abort restore both automatically.
 *
 * This is the only file that connects SPI (.ci/check-boundary enforces it): every statement the
 * extension runs goes through EnterPrivileged (as the extension owner) or EnterCallerScope (as
 * the caller), both with search_path = pg_catalog, pg_temp (pg_temp last: it is then searched
 * for relations and types only after pg_catalog, and never for functions or operators) and
 * SECURITY_RESTRICTED_OPERATION. Code on the hot path that must not run SQL at all (the rights
 * cache) reads our tables with pg/catalog_scan.h.
 */
#pragma once

#include "pg/pg.h"

namespace vector_vault::pg
{

/* Saved identity and GUC nest level; plain data so it may live across Postgres calls. */
struct PrivilegedScope
{
	Oid saved_user;
	int saved_sec_context;
	int guc_nest_level;
};

/* Switches to the extension owner, pins search_path and connects SPI. */
void EnterPrivileged(PrivilegedScope *scope);

/* Like EnterPrivileged but keeps the caller's identity: for statements the extension runs on
 * the caller's behalf (pinned search_path, security-restricted, SPI connected). Undo with
 * LeavePrivileged. */
void EnterCallerScope(PrivilegedScope *scope);

/* Disconnects SPI, restores search_path and the caller's identity. */
void LeavePrivileged(PrivilegedScope *scope);

/* Runs one statement on our catalog as the extension owner (Enter, execute, Leave); nulls as for
 * SPI_execute_with_args (nullptr: none). Returns the rows it processed. */
uint64 RunPrivileged(const char *sql, int nargs, Oid *types, Datum *values,
					 const char *nulls = nullptr);

/* Oid of the owner of schema "vault" (errors when the extension is not installed). */
Oid ExtensionOwner();

} // namespace vector_vault::pg
