/*
 * identity.h — one vault identity per keyring, seen from the catalog (issue 14): adoption of
 * copied vaults, shared dependencies that keep DROP ROLE (from any database) from orphaning a
 * vault, and the guard that keeps a dump's vault catalog from being merged into a database that
 * has vaults of its own. Design: docs/design.md, "One vault identity per keyring".
 */
#pragma once

#include "pg/pg.h"

extern "C"
{
#include "nodes/primnodes.h"
}

namespace vector_vault::vault
{

/* Records, in pg_shdepend, a dependency of this database's vault catalog on every role it names
 * (vault owners, grantees, owners of live API keys) and removes those no longer named, so DROP
 * ROLE run in any database of the cluster is refused by Postgres itself. */
void SyncRoleDependencies();

/* Raises unless a COPY ... FROM into `rel` may run: a dump's vault catalog restores only into a
 * database without vaults of its own (no-op for tables that are not the vault catalog). */
void CheckCatalogRestore(const RangeVar *rel);

/* True when the vault's owner role no longer exists (a vault orphaned before shared
 * dependencies were recorded); a superuser may then drop it. */
bool OwnerRoleIsGone(Oid owner);

} // namespace vector_vault::vault
