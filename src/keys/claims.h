/*
 * claims.h — which database of the cluster owns a vault's keyring entries (issue 14).
 *
 * The keyring is shared by every database of the cluster (and by standbys and restores), but a
 * vault row lives in one database's catalog. A copy of that catalog (CREATE DATABASE ...
 * TEMPLATE, pg_dump/pg_restore into another database, a second cluster given the same keyring)
 * carries the same vault ids. Each vault's entries therefore carry a claim file,
 * claim-<keyring id>.db, naming the cluster (system identifier) and the database (OID) that owns
 * them. Only the claiming database may unwrap, add or shred the entries; a copy is refused with
 * a hint until a superuser gives it its own keyring identity (vault.adopt_copied_vaults(), which
 * re-wraps the same data keys under a new keyring id recorded in vault._vaults.keyring_id).
 * See docs/design.md, "One vault identity per keyring".
 */
#pragma once

#include <cstdint>

namespace vector_vault::keys
{

/* Who holds the claim on a keyring id. */
enum class ClaimOwner
{
	kNobody, /* no claim file: created before claims existed */
	kThisDatabase,
	kOtherDatabase
};

/* The keyring id under which this database keeps a vault's entries (the vault id unless the
 * vault was adopted from a copy). */
uint64_t KeyringIdOf(uint64_t vault_id);

/* Who holds the claim on keyring id kid; *db_oid receives the claiming database's OID (0 when
 * another cluster's or nobody's). */
ClaimOwner ClaimOf(uint64_t kid, uint32_t *db_oid);

/* Raises 22V02 (with a hint) unless this database holds the claim on kid; an unclaimed id is
 * claimed on the way (vaults created before claims existed). `action` names what was refused. */
void RequireClaim(uint64_t kid, const char *action);

/* Claims a new vault's keyring id for this database; raises when someone claims it already. */
void ClaimNewVault(uint64_t kid);

/* Durably records that this database owns kid; removed again if the transaction aborts. */
void WriteClaim(uint64_t kid);

/* Makes this database the owner of kid, replacing another database's claim (not undone on
 * abort: the caller asserts that the other database is gone for good). */
void TakeClaim(uint64_t kid);

/* Removes kid's claim (after all its entries were shredded); warns on failure, never raises. */
void RemoveClaim(const char *dir, uint64_t kid);

/* Re-wraps every key version of keyring id `from` under the new keyring id `to` (same data keys,
 * entries bound to `to`); the new entries are removed again if the transaction aborts. Returns
 * the number of versions copied. */
int RewrapEntries(uint64_t from, uint64_t to);

/* Forgets the vault id -> keyring id map (after this transaction changed it). */
void InvalidateKeyringIds();

/* Installs the transaction callback that undoes claims and re-wrapped entries on abort. */
void RegisterClaimCallbacks();

/* True when the keyring directory holds some key version of keyring id kid. */
bool KeyringHasEntries(const char *dir, uint64_t kid);

} // namespace vector_vault::keys
