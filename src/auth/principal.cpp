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
 * context of a statement that calls one of the secret-taking vault functions (qualified or not,
 * quoted or not, with comments anywhere, or through EXECUTE of a prepared statement), hides the
 * statement text, and masks anything shaped like an API key, even a truncated one
 * (vv_<id>_<secret>_<checksum> -> vv_<id>_xxxx). Only errors raised by our own code (*.cpp) keep
 * their detail: Postgres' own (a jsonb parse error quoting a misplaced password) may carry it.
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
#include "access/parallel.h"
#include "access/xact.h"
#include "commands/prepare.h"
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
emit_log_hook_type g_prev_emit = nullptr;

/* Functions whose arguments are secrets. */
const char *const kSecretFunctions[] = {"login", "create_api_key", "rotate_api_key",
										"revoke_api_key", "set_key_password"};

/* Skips whitespace and SQL comments. */
const char *
SkipSpace(const char *p)
{
	for (;;)
	{
		while (*p != '\0' && isspace(static_cast<unsigned char>(*p)))
			p++;
		if (p[0] == '-' && p[1] == '-')
		{
			while (*p != '\0' && *p != '\n')
				p++;
			continue;
		}
		if (p[0] == '/' && p[1] == '*')
		{
			const char *e = strstr(p + 2, "*/");
			p = e != nullptr ? e + 2 : p + strlen(p);
			continue;
		}
		return p;
	}
}

/* True for characters that continue an SQL identifier. */
bool
IdentChar(char c)
{
	return isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$';
}

/* Reads an identifier (quoted or not) at p into out (folded to lower case unless quoted);
 * returns the position after it, or nullptr when p does not start one. */
const char *
ReadIdent(const char *p, char *out, size_t cap)
{
	size_t n = 0;
	if (*p == '"')
	{
		p++;
		while (*p != '\0' && *p != '"')
		{
			if (n + 1 < cap)
				out[n++] = *p;
			p++;
		}
		if (*p == '"')
			p++;
	}
	else if (isalpha(static_cast<unsigned char>(*p)) || *p == '_')
	{
		while (IdentChar(*p))
		{
			if (n + 1 < cap)
				out[n++] = static_cast<char>(tolower(static_cast<unsigned char>(*p)));
			p++;
		}
	}
	else
		return nullptr;
	out[n] = '\0';
	return p;
}

/* True when text calls a secret-taking function: its name (qualified or not, quoted or not)
 * followed by "(", with any whitespace or comments between. Over-matching only over-redacts. */
bool
CallsSecretFunction(const char *text)
{
	if (text == nullptr)
		return false;
	char ident[NAMEDATALEN];
	for (const char *p = text; *p != '\0'; p++)
	{
		if (p > text && (IdentChar(p[-1]) || p[-1] == '"'))
			continue;
		const char *after = ReadIdent(p, ident, sizeof(ident));
		if (after == nullptr)
			continue;
		for (const char *f : kSecretFunctions)
			if (strcmp(ident, f) == 0 && *SkipSpace(after) == '(')
				return true;
	}
	return false;
}

/* The source of the prepared statement an EXECUTE names, or nullptr. */
const char *
ExecutedSource(const char *text)
{
	if (text == nullptr)
		return nullptr;
	char ident[NAMEDATALEN];
	const char *p = SkipSpace(text);
	/* EXPLAIN [ANALYZE] EXECUTE name also runs it. */
	while ((p = ReadIdent(p, ident, sizeof(ident))) != nullptr)
	{
		if (strcmp(ident, "execute") == 0)
		{
			if (ReadIdent(SkipSpace(p), ident, sizeof(ident)) == nullptr)
				return nullptr;
			PreparedStatement *ps = FetchPreparedStatement(ident, false);
			return ps != nullptr ? ps->plansource->query_string : nullptr;
		}
		if (strcmp(ident, "explain") != 0 && strcmp(ident, "analyze") != 0 &&
			strcmp(ident, "verbose") != 0)
			return nullptr;
		p = SkipSpace(p);
	}
	return nullptr;
}

/* True when text (or the prepared statement it executes) calls a secret-taking function. */
bool
MentionsSecretFunction(const char *text)
{
	return CallsSecretFunction(text) || CallsSecretFunction(ExecutedSource(text));
}

/* Masks API-key-shaped tokens in place: everything after "vv_<16 hex>_" that looks like the
 * secret or checksum (hex digits and '_', even when truncated) becomes 'x'. */
void
MaskKeys(char *text)
{
	if (text == nullptr)
		return;
	size_t len = strlen(text);
	for (size_t i = 0; i + 3 + kApiKeyIdHex + 1 <= len; i++)
	{
		if (text[i] != 'v' || text[i + 1] != 'v' || text[i + 2] != '_')
			continue;
		bool id_ok = text[i + 3 + kApiKeyIdHex] == '_';
		for (size_t k = i + 3; k < i + 3 + kApiKeyIdHex && id_ok; k++)
			id_ok = isxdigit(static_cast<unsigned char>(text[k]));
		if (!id_ok)
			continue;
		for (size_t k = i + 3 + kApiKeyIdHex + 1; k < i + kApiKeyLength && k < len; k++)
		{
			if (!isxdigit(static_cast<unsigned char>(text[k])) && text[k] != '_')
				break;
			text[k] = 'x';
		}
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
		/* The statement text itself, as log_statement and friends print it. */
		if (edata->message != nullptr &&
			(strncmp(edata->message, "statement:", 10) == 0 ||
			 strncmp(edata->message, "execute", 7) == 0 ||
			 strncmp(edata->message, "duration:", 9) == 0 ||
			 strncmp(edata->message, "bind", 4) == 0 || strncmp(edata->message, "parse", 5) == 0))
			Redact(&edata->message);
		/* Our own messages never carry secrets; anything else raised during such a statement
		 * (a jsonb parse error quoting a misplaced password, say) might. */
		size_t flen = edata->filename != nullptr ? strlen(edata->filename) : 0;
		bool ours = flen > 4 && strcmp(edata->filename + flen - 4, ".cpp") == 0;
		if (!ours)
		{
			/* Postgres quotes the offending input in its messages ('invalid input syntax for
			 * type json: "..."'); such a message may quote a secret. */
			if (edata->message != nullptr && strpbrk(edata->message, "\"'") != nullptr)
				Redact(&edata->message);
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
	PrincipalChanged();
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
	g_prev_emit = emit_log_hook;
	emit_log_hook = EmitLogHook;
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
	AuditNow("tls", nullptr, "denied", what);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			 errmsg("%s requires an encrypted connection", what),
			 errdetail("vector_vault.require_ssl is on and this TCP connection does not use TLS."),
			 errhint("Connect with sslmode=require (or verify-full), or through a Unix socket.")));
}

} // namespace vector_vault::auth
