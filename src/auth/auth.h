/*
 * auth.h — who is asking: the principal, API keys, the access log, TLS and redaction.
 *
 * A session's principal is its current Postgres role, unless an application logged in with an
 * API key (vault.login): then the principal is the key, whose rights on each vault are the key's
 * level capped by its owner role's current level. The key's validity (revoked, expired, rotated
 * past its overlap window) and the owner's rights are re-read whenever the shared access epoch
 * moves, so a revocation reaches every session on its next statement.
 */
#pragma once

#include <cstdint>

#include "pg/pg.h"

extern "C"
{
#include "utils/guc.h"
}

namespace vector_vault::auth
{

/* The API key a session is logged in with. */
struct KeyPrincipal
{
	char key_id[17];    /* 16 hex digits */
	uint8_t digest[32]; /* SHA-256 of the secret this session presented */
	bool transaction;   /* ends with the transaction (vault.login(key, true)) */
	bool invalid;       /* revoked, expired or rotated: every access is refused */
	char reason[64];    /* why it is invalid */
	Oid owner;          /* owner role (filled when the vault cache loads) */
	int64 expires_at;   /* TimestampTz, 0 = never */
};

/* Whether a presented API key is valid now (key_state.cpp: the one place that decides). */
struct KeyValidity
{
	bool valid;
	bool exists;        /* the key id has a row (revoked, expired or not) */
	Oid owner;          /* the key's owner role (when the key exists) */
	int64 expires_at;   /* TimestampTz after which it stops being valid, 0 = never */
	const char *reason; /* why it is not valid (static text) */
};

/* Reads vault._api_keys (no SQL) and applies the rule: exists, not revoked, not expired, the
 * digest matches the current secret or the previous one inside the rotation's overlap. */
KeyValidity CheckKey(const char *key_id, const uint8_t digest[32]);

/* How many active vaults an API key is scoped to; their id and name when exactly one. */
int KeyVaults(const char *key_id, uint64_t *single_id, char *single_name, size_t cap);

/* The key principal, or nullptr when the session acts as its role. */
KeyPrincipal *CurrentKey();

/* Changes with every login and logout, so caches keyed on the principal can tell. */
uint64_t PrincipalGeneration();

/* Ends any key login (DISCARD ALL). */
void EndLoginForReset();

/* Defines the auth GUCs and hooks (from _PG_init). */
void DefineGucs();

/* Registers transaction callbacks, the log redaction hook and shared memory. */
void Register();

/* False when vector_vault.require_ssl forbids this connection (TCP without TLS). */
bool TransportAllowed();

/* Raises 28000 when vector_vault.require_ssl forbids this connection (TCP without TLS). */
void RequireSecureConnection(const char *what);

/* --- top-level-only changes and parallel workers (session_guard.cpp) ----------------------- */

/* True when the executing function (funcid, SQL name `name`) was called directly by the client's
 * own top-level "SELECT name(...)" that reads no table (not from a function, trigger, policy,
 * view, the planner or commit). */
bool CalledDirectlyByClient(Oid funcid, const char *name);

/* Raises 42501 unless CalledDirectlyByClient; `what` names the call in the message. */
void RequireDirectClientCall(Oid funcid, const char *name, const char *what);

/* Check hook body of vector_vault.vault: may the selected vault change from here? */
bool MayChangeSelectedVault(GucSource source);

/* Brackets vault.login's own change of vector_vault.vault. */
void SetInternalVaultChange(bool on);

/* In a parallel worker: its leader's key principal, or nullptr (errors when unknown). */
KeyPrincipal *LeaderKey();

/* In a parallel worker: whether its leader's connection satisfies vector_vault.require_ssl. */
bool LeaderTransportAllowed();

/* --- the server log (redact.cpp) ----------------------------------------------------------- */

/* Installs the redaction hooks (log, analysis, planner) and their catalog callbacks. */
void RegisterRedaction();

/* Notes that the current statement seals or opens a value: until its client message ends, errors
 * raised by Postgres' own code reach the server log without their values (message, detail,
 * context). Call it before plaintext is handed to any Postgres function. */
void NotePlaintext();

/* --- access log (audit.cpp) ---------------------------------------------------------------- */
/* Events name a vault by id and name (vault_id 0 and vault nullptr: none): the entry stays tied to
 * that vault even after a drop and the reuse of its name. */

/* Records an event right away: it survives the rollback of the current transaction (server log
 * and access log queue). A successful login ("login", "ok") that the queue cannot take raises
 * 53000, which undoes the login with its transaction. */
void AuditNow(const char *action, uint64_t vault_id, const char *vault, const char *result,
			  const char *detail);

/* Records a state change in vault._access_log within the current transaction: the entry
 * commits with the change or not at all. */
void AuditAtCommit(const char *action, uint64_t vault_id, const char *vault, const char *result,
				   const char *detail);

/* Records a change to a vault (create, drop, grant, revoke) by id, within the current
 * transaction: the entry stays tied to this vault even after a drop and the reuse of its name. */
void AuditVaultChangeAtCommit(const char *action, uint64_t vault_id, const char *vault,
							  const char *detail);

/* Records a failed login now, under the key id it tried (the session has no key yet). */
void AuditLoginFailure(const char *attempted_key_id, const char *result, const char *detail);

/* The key id of the principal, or "" (for log entries). */
const char *CurrentKeyIdOrEmpty();

/* --- failed-login limiter (rate_limit.cpp) -------------------------------------------------- */

/* Raises 28000 when this client, or this (key id, client) pair, is currently blocked; key_id is
 * nullptr for a malformed key. */
void CheckLoginAllowed(const char *key_id);

/* Raises 28000 when a role's key-management password attempts (subject "role-<name>") are
 * currently blocked, or the role has no entry while the limiter's password area is full. */
void CheckPasswordAttemptAllowed(const char *role_subject);

/* Counts a failed login: per (key id, client) when the key id exists, else per client (key_id
 * nullptr: a malformed key). */
void NoteLoginFailure(const char *key_id, bool key_exists);

/* Clears the (key id, client) and client counters after a successful login. */
void NoteLoginSuccess(const char *key_id);

/* Counts a wrong key-management password for a role (subject "role-<name>"). */
void NotePasswordFailure(const char *role_subject);

/* Clears a role's key-management password counter after a right password. */
void NotePasswordSuccess(const char *role_subject);

/* The client address of this session ("local" for Unix sockets). */
const char *ClientAddress();

/* --- shared memory --------------------------------------------------------------------------- */

/* Registers the rate limiter's and the audit queue's shared memory. */
void RegisterShmem();

} // namespace vector_vault::auth
