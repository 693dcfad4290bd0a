/*
 * vault.h — vaults, the principal's rights on them, and the vault new values go to.
 *
 * A vault is a row in vault._vaults: a random 63-bit id (stable across dump/restore and across
 * nodes, unlike an OID), a name, an owner role, a state and the current data-key version.
 * Rights are levels, read < write < admin < owner, held by roles through vault._grants (and by
 * the owner). A role has the rights of the roles it inherits from; a superuser gets no implicit
 * rights (it can still grant itself through SQL on the catalog, which the access log records).
 *
 * Each backend caches all vaults and its principal's levels; the cache is rebuilt when the shared
 * access epoch moves (any committed change to vaults, grants or keys), when the current role
 * changes, or when role membership changes.
 */
#pragma once

#include <cstdint>

#include "pg/pg.h"

namespace vector_vault::vault
{

/* Access levels; the numeric order is the privilege order. */
enum class Level : int
{
	kNone = 0,
	kRead = 1,
	kWrite = 2,
	kAdmin = 3,
	kOwner = 4
};

/* A vault as the cache knows it. */
struct VaultInfo
{
	uint64_t id;
	NameData name;
	bool dropped;
	uint32_t key_version;
	Oid owner;
	Level level; /* of the current principal */
};

/* Defines vector_vault.vault. */
void DefineGucs();

/* Installs the cache invalidation callbacks. */
void RegisterCallbacks();

/* Installs the ProcessUtility hook that keeps DROP ROLE from orphaning vaults and grants. */
void RegisterRoleGuard();

/* True when member has the privileges of role; a superuser gets no implicit shortcut. */
bool RoleHasRightsOf(Oid member, Oid role);

/* The vault with this id, or nullptr. */
const VaultInfo *LookupVault(uint64_t id);

/* The active vault with this name, or nullptr. */
const VaultInfo *LookupVaultByName(const char *name);

/* The active vault with this name; raises 42704 (with a hint) when there is none. */
const VaultInfo *RequireVault(const char *name);

/* The vault named by vector_vault.vault; raises ERROR with a hint when unset or unknown. */
const VaultInfo *CurrentVault();

/* Raises 42501 unless the current principal has at least `needed` on the vault. */
void RequireLevel(const VaultInfo *v, Level needed, const char *action);

/* Name of a level ("read", ...). */
const char *LevelName(Level level);

/* Parses 'read' / 'write' / 'admin'; raises 22023 otherwise. */
Level ParseGrantLevel(const char *text);

/* Ids of the active vaults the current principal may read (palloc'd; *n receives the count). */
uint64_t *ReadableVaults(int *n);

/* Drops this backend's cache (after a local catalog change). */
void InvalidateCache();

/* Asks for the shared access epoch to be bumped when the current transaction commits. */
void BumpEpochAtCommit();

} // namespace vector_vault::vault
