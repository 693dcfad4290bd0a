/*
 * principal.cpp — the session's principal, TLS enforcement and secret redaction in the log.
 *
 * Login state follows SET semantics: a login made in a transaction that aborts is undone; a
 * transaction-scoped login (vault.login(key, true), for PgBouncer's transaction pooling) ends
 * with its transaction either way, so a pooled server connection never carries one client's
 * key into another client's transaction.
 *
 * Redaction: statements that carry a secret (an API key or a key-management password) would
 * otherwise reach the server log through log_statement, log_min_error_statement or the
 * parameter details of the extended protocol. An emit_log_hook rewrites any message, detail or
 * context that mentions one of the secret-taking vault functions, hides the statement text, and
 * masks anything shaped like an API key (vv_<id>_<secret>_<checksum> -> vv_<id>_<redacted>).
 */
#include "core/api_key.h"
#include "core/secure.h"

#include <cctype>
#include <cstring>

#include "auth/auth.h"
#include "pg/guard.h"
#include "vault/vault.h"

extern "C"
{
#include "access/xact.h"
#include "libpq/libpq-be.h"
#include "tcop/tcopprot.h"
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
emit_log_hook_type g_prev_emit = nullptr;

/* Functions whose arguments are secrets. */
const char *const kSecretFunctions[] = {"login", "create_api_key", "rotate_api_key",
										"revoke_api_key", "set_key_password"};

/* True when text mentions a secret-taking function (case-insensitive, with "vault."). */
bool
MentionsSecretFunction(const char *text)
{
	if (text == nullptr)
		return false;
	for (const char *p = text; *p; p++)
	{
		if (pg_strncasecmp(p, "vault", 5) != 0)
			continue;
		const char *q = p + 5;
		while (*q == '"' || *q == ' ')
			q++;
		if (*q != '.')
			continue;
		q++;
		while (*q == '"' || *q == ' ')
			q++;
		for (const char *f : kSecretFunctions)
			if (pg_strncasecmp(q, f, strlen(f)) == 0)
				return true;
	}
	return false;
}

/* Masks API-key-shaped tokens in place: the secret and checksum become 'x'. */
void
MaskKeys(char *text)
{
	if (text == nullptr)
		return;
	size_t len = strlen(text);
	for (size_t i = 0; i + kApiKeyLength <= len; i++)
	{
		if (text[i] != 'v' || text[i + 1] != 'v' || text[i + 2] != '_')
			continue;
		size_t s = i + 3 + kApiKeyIdHex + 1;
		bool hexy = true;
		for (size_t k = s; k < i + kApiKeyLength && hexy; k++)
			hexy = isxdigit(static_cast<unsigned char>(text[k])) || text[k] == '_';
		if (!hexy)
			continue;
		for (size_t k = s; k < i + kApiKeyLength; k++)
			text[k] = 'x';
	}
}

/* Replaces a message with a redaction note. */
void
Redact(char **field)
{
	if (*field != nullptr)
		*field = pstrdup("[redacted by vector_vault: the statement carries a secret]");
}

/* emit_log_hook: redacts secrets before anything reaches the server log. */
void
EmitLogHook(ErrorData *edata)
{
	bool secret = MentionsSecretFunction(edata->message) || MentionsSecretFunction(edata->detail) ||
				  MentionsSecretFunction(edata->context) ||
				  MentionsSecretFunction(edata->internalquery) ||
				  MentionsSecretFunction(debug_query_string);
	if (secret)
	{
		if (MentionsSecretFunction(edata->message) &&
			(strncmp(edata->message, "statement:", 10) == 0 ||
			 strncmp(edata->message, "execute", 7) == 0 ||
			 strncmp(edata->message, "duration:", 9) == 0 ||
			 strncmp(edata->message, "bind", 4) == 0 || strncmp(edata->message, "parse", 5) == 0))
			Redact(&edata->message);
		/* Our own messages never carry secrets; anything else raised during such a statement
		 * (a jsonb parse error quoting a misplaced password, say) might. */
		bool ours = edata->filename != nullptr && strncmp(edata->filename, "src/", 4) == 0;
		if (!ours)
		{
			Redact(&edata->detail);
			Redact(&edata->detail_log);
		}
		Redact(&edata->context);
		Redact(&edata->internalquery);
		edata->hide_stmt = true;
	}
	MaskKeys(edata->message);
	MaskKeys(edata->detail);
	MaskKeys(edata->detail_log);
	MaskKeys(edata->context);
	if (g_prev_emit)
		g_prev_emit(edata);
}

/* Ends transaction-scoped logins and undoes logins of aborted transactions. */
void
XactCallback(XactEvent event, void *)
{
	bool abort = event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT;
	bool commit = event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PREPARE;
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
		g_generation++;
	SecureZero(g_saved, sizeof(g_saved));
	g_nsaved = 0;
}

/* ROLLBACK TO SAVEPOINT undoes logins and logouts made since the savepoint. */
void
SubXactCallback(SubXactEvent event, SubTransactionId, SubTransactionId, void *)
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
				g_generation++;
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
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("too many nested vault logins")));
	g_saved[g_nsaved++] = {level, g_state};
}

} // namespace

/* The current key principal or nullptr. */
KeyPrincipal *
CurrentKey()
{
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
	g_generation++;
	vault::InvalidateCache();
}

/* Ends every key principal (vault.logout, DISCARD ALL). */
void
ClearKey()
{
	SaveForAbort();
	SecureZero(&g_state.txn, sizeof(g_state.txn));
	SecureZero(&g_state.session, sizeof(g_state.session));
	g_state.txn_active = g_state.session_active = false;
	g_generation++;
	vault::InvalidateCache();
}
} // namespace detail

/* Ends any key login (DISCARD ALL). */
void
EndLoginForReset()
{
	if (CurrentKey() != nullptr)
	{
		AuditNow("logout", nullptr, "ok", "DISCARD ALL");
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
}

/* Installs the transaction callbacks and the log hook. */
void
Register()
{
	RegisterXactCallback(XactCallback, nullptr);
	RegisterSubXactCallback(SubXactCallback, nullptr);
	detail::RegisterAuditCallbacks();
	g_prev_emit = emit_log_hook;
	emit_log_hook = EmitLogHook;
}

/* Refuses TCP connections without TLS when vector_vault.require_ssl is on. */
void
RequireSecureConnection(const char *what)
{
	if (!g_require_ssl || MyProcPort == nullptr)
		return;
	if (MyProcPort->laddr.addr.ss_family == AF_UNIX)
		return;
#ifdef USE_SSL
	if (MyProcPort->ssl_in_use)
		return;
#endif
	AuditNow("tls", nullptr, "denied", what);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			 errmsg("%s requires an encrypted connection", what),
			 errdetail("vector_vault.require_ssl is on and this TCP connection does not use TLS."),
			 errhint("Connect with sslmode=require (or verify-full), or through a Unix socket.")));
}

} // namespace vector_vault::auth
