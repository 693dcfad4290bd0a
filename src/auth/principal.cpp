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
KeyPrincipal g_key;
bool g_key_active = false;
/* What the principal was before this transaction changed it (for abort). */
KeyPrincipal g_saved;
bool g_saved_active = false;
bool g_changed_in_xact = false;
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
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
	{
		if (g_changed_in_xact)
		{
			g_key = g_saved;
			g_key_active = g_saved_active;
			g_generation++;
		}
		if (g_key_active && g_key.transaction)
		{
			g_key_active = false;
			g_generation++;
		}
		g_changed_in_xact = false;
	}
	else if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
			 event == XACT_EVENT_PREPARE)
	{
		if (g_key_active && g_key.transaction)
		{
			SecureZero(&g_key, sizeof(g_key));
			g_key_active = false;
			g_generation++;
		}
		g_changed_in_xact = false;
	}
}

/* Remembers the principal before the first change in a transaction. */
void
SaveForAbort()
{
	if (!g_changed_in_xact)
	{
		g_saved = g_key;
		g_saved_active = g_key_active;
		g_changed_in_xact = true;
	}
}

} // namespace

/* The current key principal or nullptr. */
KeyPrincipal *
CurrentKey()
{
	return g_key_active ? &g_key : nullptr;
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
	return g_key_active ? g_key.key_id : "";
}

namespace detail
{
/* Starts a key principal (called by vault.login after verification). */
void
SetKey(const char *key_id, const uint8_t digest[32], bool transaction)
{
	SaveForAbort();
	memset(&g_key, 0, sizeof(g_key));
	strlcpy(g_key.key_id, key_id, sizeof(g_key.key_id));
	memcpy(g_key.digest, digest, 32);
	g_key.transaction = transaction;
	g_key_active = true;
	g_generation++;
	vault::InvalidateCache();
}

/* Ends the key principal (vault.logout). */
void
ClearKey()
{
	SaveForAbort();
	g_key_active = false;
	g_generation++;
	vault::InvalidateCache();
}
} // namespace detail

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
