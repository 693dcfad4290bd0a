/*
 * principal.cpp — the session's principal and TLS enforcement.
 *
 * Login state follows SET semantics: a login made in a transaction that aborts is undone; a
 * transaction-scoped login (vault.login(key, true), for PgBouncer's transaction pooling) ends
 * with its transaction either way, so a pooled server connection never carries one client's
 * key into another client's transaction.
 *
 * Redaction of secrets and plaintext in the server log lives in redact.cpp.
 */
#include "core/secure.h"

#include <cstring>

#include "auth/auth.h"
#include "pg/guard.h"

extern "C"
{
#include "access/parallel.h"
#include "access/xact.h"
#include "libpq/libpq-be.h"
#include "utils/guc.h"
}

namespace vector_vault::auth
{

namespace
{

bool g_require_ssl = false;

/*
 * The principal state: a session login and, on top, a transaction-scoped one (which wins while
 * it lasts and ends with its transaction, uncovering the session login again).
 */
struct State
{
	KeyPrincipal session;
	bool session_active;
	KeyPrincipal txn;
	bool txn_active;
};
State g_state;

/* Snapshots taken before the first change at each (sub)transaction level, for rollbacks. */
struct Saved
{
	int level;
	State state;
};
constexpr int kMaxSaved = 32;
Saved g_saved[kMaxSaved];
int g_nsaved = 0;
uint64_t g_generation = 1;

} // namespace

namespace detail
{
void PublishPrincipal();
}

namespace
{

/* A login, logout or rollback changed the principal: caches keyed on it reload, and parallel
 * workers started from now on see the new one. */
void
PrincipalChanged()
{
	g_generation++;
	detail::PublishPrincipal();
}

/* Ends transaction-scoped logins and undoes logins of aborted transactions. */
void
XactCallback(XactEvent event, void *) noexcept
{
	bool abort = event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT;
	bool commit = event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
				  event == XACT_EVENT_PREPARE;
	if (!abort && !commit)
		return;
	if (abort && g_nsaved > 0)
		g_state = g_saved[0].state;
	if (g_state.txn_active)
	{
		SecureZero(&g_state.txn, sizeof(g_state.txn));
		g_state.txn_active = false;
	}
	if (g_nsaved > 0 || abort)
		PrincipalChanged();
	SecureZero(g_saved, sizeof(g_saved));
	g_nsaved = 0;
}

/* ROLLBACK TO SAVEPOINT undoes logins and logouts made since the savepoint. */
void
SubXactCallback(SubXactEvent event, SubTransactionId, SubTransactionId, void *) noexcept
{
	int level = GetCurrentTransactionNestLevel();
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		int keep = g_nsaved;
		for (int i = 0; i < g_nsaved; i++)
			if (g_saved[i].level >= level)
			{
				g_state = g_saved[i].state;
				keep = i;
				PrincipalChanged();
				break;
			}
		g_nsaved = keep;
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		if (g_nsaved > 0 && g_saved[g_nsaved - 1].level >= level)
		{
			if (g_nsaved > 1 && g_saved[g_nsaved - 2].level >= level - 1)
				g_nsaved--; /* the parent already has an older snapshot */
			else
				g_saved[g_nsaved - 1].level = level - 1;
		}
	}
}

/* Remembers the state before the first change at this (sub)transaction level. */
void
SaveForAbort()
{
	int level = GetCurrentTransactionNestLevel();
	if (g_nsaved > 0 && g_saved[g_nsaved - 1].level == level)
		return;
	if (g_nsaved == kMaxSaved)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("too many nested vault logins")));
	g_saved[g_nsaved++] = {level, g_state};
}

} // namespace

/* The current key principal or nullptr. */
KeyPrincipal *
CurrentKey()
{
	if (IsParallelWorker())
		return LeaderKey();
	if (g_state.txn_active)
		return &g_state.txn;
	return g_state.session_active ? &g_state.session : nullptr;
}

/* Principal generation. */
uint64_t
PrincipalGeneration()
{
	return g_generation;
}

/* Key id or "". */
const char *
CurrentKeyIdOrEmpty()
{
	KeyPrincipal *k = CurrentKey();
	return k ? k->key_id : "";
}

namespace detail
{
/* Starts a key principal (called by vault.login after verification). */
void
SetKey(const char *key_id, const uint8_t digest[32], bool transaction)
{
	SaveForAbort();
	KeyPrincipal *k = transaction ? &g_state.txn : &g_state.session;
	memset(k, 0, sizeof(*k));
	strlcpy(k->key_id, key_id, sizeof(k->key_id));
	memcpy(k->digest, digest, 32);
	k->transaction = transaction;
	if (transaction)
		g_state.txn_active = true;
	else
		g_state.session_active = true;
	PrincipalChanged();
}

/* Ends every key principal (vault.logout, DISCARD ALL). */
void
ClearKey()
{
	SaveForAbort();
	SecureZero(&g_state.txn, sizeof(g_state.txn));
	SecureZero(&g_state.session, sizeof(g_state.session));
	g_state.txn_active = g_state.session_active = false;
	PrincipalChanged();
}
} // namespace detail

/* Ends any key login (DISCARD ALL). */
void
EndLoginForReset()
{
	if (CurrentKey() != nullptr)
	{
		AuditNow("logout", 0, nullptr, "ok", "DISCARD ALL");
		detail::ClearKey();
	}
}

/* Defines vector_vault.require_ssl. */
void
DefineGucs()
{
	DefineCustomBoolVariable(
		"vector_vault.require_ssl",
		"Refuse vault logins, encryption and decryption on TCP connections without TLS.",
		"Unix-socket connections are always allowed.", &g_require_ssl, false, PGC_SIGHUP, 0,
		nullptr, nullptr, nullptr);
}

namespace detail
{
void RegisterAuditCallbacks();
void RegisterSessionGuard();
} // namespace detail

/* Installs the transaction callbacks and the log hook. */
void
Register()
{
	RegisterXactCallback(XactCallback, nullptr);
	RegisterSubXactCallback(SubXactCallback, nullptr);
	detail::RegisterAuditCallbacks();
	detail::RegisterSessionGuard();
	RegisterRedaction();
}

/* True unless vector_vault.require_ssl is on and this is a TCP connection without TLS (in a
 * parallel worker: what its leader's connection allows). */
bool
TransportAllowed()
{
	if (IsParallelWorker())
		return LeaderTransportAllowed();
	if (!g_require_ssl || MyProcPort == nullptr)
		return true;
	if (MyProcPort->laddr.addr.ss_family == AF_UNIX)
		return true;
#ifdef USE_SSL
	if (MyProcPort->ssl_in_use)
		return true;
#endif
	return false;
}

/* Refuses TCP connections without TLS when vector_vault.require_ssl is on. */
void
RequireSecureConnection(const char *what)
{
	if (TransportAllowed())
		return;
	AuditNow("tls", 0, nullptr, "denied", what);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			 errmsg("%s requires an encrypted connection", what),
			 errdetail("vector_vault.require_ssl is on and this TCP connection does not use TLS."),
			 errhint("Connect with sslmode=require (or verify-full), or through a Unix socket.")));
}

} // namespace vector_vault::auth
