/*
 * api_keys.cpp — API keys and logins: vault.set_key_password, vault.create_api_key,
 * vault.rotate_api_key, vault.revoke_api_key, vault.login, vault.logout, vault.principal.
 *
 * Key management needs the owner role's key-management password (set with
 * vault.set_key_password), checked against an scrypt hash; failures are rate-limited and logged.
 * Only SHA-256 digests of key secrets are stored; a key is shown once, when created or rotated.
 * A key session cannot manage keys (keys do not mint keys).
 */
#include "core/aead.h"
#include "core/api_key.h"
#include "core/secure.h"

#include <cinttypes>
#include <cstring>

#include "auth/auth.h"
#include "pg/guard.h"
#include "pg/privileged.h"
#include "vault/vault.h"

extern "C"
{
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
}

using namespace vector_vault;

namespace vector_vault::auth::detail
{
void SetKey(const char *key_id, const uint8_t digest[32], bool transaction);
void ClearKey();
} // namespace vector_vault::auth::detail

namespace
{

/* Raises an error when the session is logged in with an API key. */
void
RefuseInKeySession(const char *what)
{
	if (auth::CurrentKey() != nullptr)
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						errmsg("%s is not allowed in an API key session", what),
						errhint("Run vault.logout() and manage keys as the owner role.")));
}

/* bytea datum of n bytes. */
Datum
Bytes(const uint8_t *p, size_t n)
{
	bytea *b = static_cast<bytea *>(palloc(VARHDRSZ + n));
	SET_VARSIZE(b, VARHDRSZ + n);
	memcpy(VARDATA(b), p, n);
	return PointerGetDatum(b);
}

/* Checks the current role's key-management password; logs and refuses a wrong one. */
void
VerifyKeyPassword(text *password)
{
	/* The caller, captured before EnterPrivileged switches to the extension owner. */
	Oid caller = GetUserId();
	const char *role = GetUserNameFromId(caller, false);
	char subject[NAMEDATALEN + 8];
	snprintf(subject, sizeof(subject), "role-%s", role);
	auth::CheckPasswordAttemptAllowed(subject);
	pg::PrivilegedScope scope;
	pg::EnterPrivileged(&scope);
	Oid types[1] = {OIDOID};
	Datum values[1] = {ObjectIdGetDatum(caller)};
	if (SPI_execute_with_args(
			"SELECT salt, log2_n, r, p, hash FROM vault._key_passwords WHERE role::oid "
			"OPERATOR(pg_catalog.=) $1",
			1, types, values, nullptr, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read vault._key_passwords");
	bool found = SPI_processed == 1;
	PasswordHash stored;
	memset(&stored, 0, sizeof(stored));
	if (found)
	{
		HeapTuple t = SPI_tuptable->vals[0];
		TupleDesc d = SPI_tuptable->tupdesc;
		bool isnull;
		bytea *salt = DatumGetByteaPP(SPI_getbinval(t, d, 1, &isnull));
		bytea *hash = DatumGetByteaPP(SPI_getbinval(t, d, 5, &isnull));
		if (VARSIZE_ANY_EXHDR(salt) != sizeof(stored.salt) ||
			VARSIZE_ANY_EXHDR(hash) != sizeof(stored.hash))
			elog(ERROR, "damaged key-management password entry");
		memcpy(stored.salt, VARDATA_ANY(salt), sizeof(stored.salt));
		memcpy(stored.hash, VARDATA_ANY(hash), sizeof(stored.hash));
		stored.log2_n = static_cast<uint32_t>(DatumGetInt32(SPI_getbinval(t, d, 2, &isnull)));
		stored.r = static_cast<uint32_t>(DatumGetInt32(SPI_getbinval(t, d, 3, &isnull)));
		stored.p = static_cast<uint32_t>(DatumGetInt32(SPI_getbinval(t, d, 4, &isnull)));
	}
	pg::LeavePrivileged(&scope);
	if (!found)
		ereport(
			ERROR,
			(errcode(ERRCODE_INVALID_PASSWORD),
			 errmsg("role \"%s\" has no key-management password", role),
			 errhint("Set one with vault.set_key_password(new_password) using a bind parameter.")));
	bool match = false;
	Status s = VerifyPassword(VARDATA_ANY(password), VARSIZE_ANY_EXHDR(password), stored, &match);
	if (!s.ok())
		pg::ThrowStatus(s, "could not check the key-management password", nullptr);
	if (!match)
	{
		auth::NotePasswordFailure(subject);
		auth::AuditNow("key_password", 0, nullptr, "denied", "wrong key-management password");
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PASSWORD), errmsg("key-management password is wrong"),
				 errhint("Failed attempts are logged and rate-limited.")));
	}
	auth::NotePasswordSuccess(subject);
}

/* Hex text of a key id. */
void
KeyIdText(uint64_t id, char out[17])
{
	snprintf(out, 17, "%016" PRIx64, id);
}

/* Validates a key id argument (16 lower-case hex digits). */
void
CheckKeyIdArg(const char *key_id)
{
	bool ok = strlen(key_id) == 16;
	for (const char *p = key_id; ok && *p; p++)
		ok = (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f');
	if (!ok)
		ereport(
			ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid API key id \"%s\"", key_id),
			 errhint("A key id is the 16 hex digits after \"vv_\"; vault.api_keys lists yours.")));
}

/* Requires that key_id exists and is owned by the current role. */
void
RequireOwnKey(const char *key_id)
{
	Oid types[2] = {TEXTOID, OIDOID};
	Datum values[2] = {CStringGetTextDatum(key_id), ObjectIdGetDatum(GetUserId())};
	uint64 found = pg::RunPrivileged(
		"SELECT 1 FROM vault._api_keys WHERE key_id OPERATOR(pg_catalog.=) $1 AND owner::oid "
		"OPERATOR(pg_catalog.=) $2",
		2, types, values);
	if (found == 0)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
						errmsg("API key %s does not exist or is not yours", key_id),
						errhint("vault.api_keys lists the keys you own.")));
}

/* The checks rotate_api_key and revoke_api_key share (non-null password and key id, no key
 * session, the owner's password, a well-formed id of a key the caller owns); the key id. */
char *
OwnKeyArgument(FunctionCallInfo fcinfo, const char *fn)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("password and key id must not be null")));
	RefuseInKeySession(fn);
	VerifyKeyPassword(PG_GETARG_TEXT_PP(0));
	char *key_id = text_to_cstring(PG_GETARG_TEXT_PP(1));
	CheckKeyIdArg(key_id);
	RequireOwnKey(key_id);
	return key_id;
}

/* Gives key a fresh random secret (and a fresh id when new_id), writes the key's text and the
 * secret's SHA-256 (the only form stored), and zeroes the secret, also when it raises. */
void
FreshSecret(ParsedApiKey *key, bool new_id, char text_key[kApiKeyLength + 1],
			uint8_t digest[kSha256Bytes])
{
	Status s = new_id ? NewApiKey(key, text_key) : RandomBytes(key->secret, kApiKeySecretBytes);
	if (s.ok() && !new_id)
		FormatApiKey(*key, text_key);
	if (s.ok())
		s = Sha256(key->secret, kApiKeySecretBytes, digest);
	SecureZero(key->secret, sizeof(key->secret));
	if (!s.ok())
	{
		SecureZero(text_key, kApiKeyLength + 1);
		pg::ThrowStatus(s, nullptr, nullptr);
	}
}

/* Records a key change (detail "key <id> <done>") in the access log at commit. */
void
AuditKeyChange(const char *action, const char *key_id, const char *done)
{
	char detail[64];
	snprintf(detail, sizeof(detail), "key %s %s", key_id, done);
	auth::AuditAtCommit(action, 0, nullptr, "ok", detail);
}

} // namespace

/* vault.set_key_password(new_password text, old_password text): sets the key-management password.
 */
VV_FUNCTION(vault_set_key_password)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("new password must not be null")));
	RefuseInKeySession("vault.set_key_password()");
	text *fresh = PG_GETARG_TEXT_PP(0);
	if (VARSIZE_ANY_EXHDR(fresh) < 12)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("key-management password must be at least 12 characters")));
	/* Changing an existing password needs the old one. */
	Oid types[1] = {OIDOID};
	Datum values[1] = {ObjectIdGetDatum(GetUserId())};
	pg::PrivilegedScope scope;
	pg::EnterPrivileged(&scope);
	SPI_execute_with_args(
		"SELECT 1 FROM vault._key_passwords WHERE role::oid OPERATOR(pg_catalog.=) $1", 1, types,
		values, nullptr, true, 1);
	bool exists = SPI_processed == 1;
	pg::LeavePrivileged(&scope);
	if (exists)
	{
		if (PG_ARGISNULL(1))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PASSWORD),
							errmsg("the current key-management password is required"),
							errhint("Pass it as the second argument.")));
		VerifyKeyPassword(PG_GETARG_TEXT_PP(1));
	}
	PasswordHash h;
	Status s = HashPassword(VARDATA_ANY(fresh), VARSIZE_ANY_EXHDR(fresh), &h);
	if (!s.ok())
		pg::ThrowStatus(s, "could not hash the password", nullptr);
	Oid t2[6] = {OIDOID, BYTEAOID, INT4OID, INT4OID, INT4OID, BYTEAOID};
	Datum v2[6] = {ObjectIdGetDatum(GetUserId()),
				   Bytes(h.salt, sizeof(h.salt)),
				   Int32GetDatum(static_cast<int32>(h.log2_n)),
				   Int32GetDatum(static_cast<int32>(h.r)),
				   Int32GetDatum(static_cast<int32>(h.p)),
				   Bytes(h.hash, sizeof(h.hash))};
	pg::RunPrivileged(
		"INSERT INTO vault._key_passwords (role, salt, log2_n, r, p, hash) VALUES ($1::regrole, "
		"$2, $3, $4, $5, $6) "
		"ON CONFLICT (role) DO UPDATE SET salt = EXCLUDED.salt, log2_n = EXCLUDED.log2_n, r = "
		"EXCLUDED.r, "
		"p = EXCLUDED.p, hash = EXCLUDED.hash, set_at = pg_catalog.now()",
		6, t2, v2, nullptr);
	SecureZero(&h, sizeof(h));
	auth::AuditAtCommit("set_key_password", 0, nullptr, "ok", nullptr);
	PG_RETURN_VOID();
}

/* vault.create_api_key(password, vaults jsonb, label, expires_at): a new key, returned once. */
VV_FUNCTION(vault_create_api_key)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("password and vaults must not be null")));
	RefuseInKeySession("vault.create_api_key()");
	if (!PG_ARGISNULL(3) && PG_GETARG_TIMESTAMPTZ(3) <= GetCurrentTransactionStartTimestamp())
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("expires_at must be in the future"),
						errhint("Pass NULL for a key that does not expire.")));
	VerifyKeyPassword(PG_GETARG_TEXT_PP(0));
	Jsonb *vaults = PG_GETARG_JSONB_P(1);
	if (!JB_ROOT_IS_OBJECT(vaults) || JB_ROOT_COUNT(vaults) == 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("vaults must be a non-empty JSON object"),
						errhint("Write '{\"support_docs\": \"read\", \"other\": \"write\"}'.")));
	/* Parse and check every vault level before anything is written. */
	int n = static_cast<int>(JB_ROOT_COUNT(vaults));
	uint64 *ids = static_cast<uint64 *>(palloc(sizeof(uint64) * n));
	const char **levels = static_cast<const char **>(palloc(sizeof(char *) * n));
	int k = 0;
	JsonbIterator *it = JsonbIteratorInit(&vaults->root);
	JsonbValue v;
	JsonbIteratorToken tok;
	char *name = nullptr;
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			name = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE)
		{
			if (v.type != jbvString)
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								errmsg("level of vault \"%s\" must be a string", name)));
			char *level_text = pnstrdup(v.val.string.val, v.val.string.len);
			vault::Level level = vault::ParseGrantLevel(level_text);
			const vault::VaultInfo *vi = vault::RequireVault(name);
			if (vi->level < level)
				ereport(
					ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("cannot give a key %s access to vault \"%s\"", level_text, name),
					 errdetail(
						 "A key never exceeds its owner's rights; the current role has %s access.",
						 vault::LevelName(vi->level))));
			ids[k] = vi->id;
			levels[k] = vault::LevelName(level);
			k++;
		}
	}
	ParsedApiKey key;
	char text_key[kApiKeyLength + 1];
	uint8_t digest[kSha256Bytes];
	FreshSecret(&key, true, text_key, digest);
	char key_id[17];
	KeyIdText(key.id, key_id);
	Oid types[5] = {TEXTOID, OIDOID, TEXTOID, BYTEAOID, TIMESTAMPTZOID};
	Datum values[5] = {CStringGetTextDatum(key_id), ObjectIdGetDatum(GetUserId()),
					   PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2),
					   Bytes(digest, sizeof(digest)),
					   PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3)};
	char nulls[6] = {' ', ' ', PG_ARGISNULL(2) ? 'n' : ' ', ' ', PG_ARGISNULL(3) ? 'n' : ' ', '\0'};
	pg::RunPrivileged(
		"INSERT INTO vault._api_keys (key_id, owner, label, secret_hash, expires_at) VALUES ($1, "
		"$2::regrole, $3, $4, "
		"$5)",
		5, types, values, nulls);
	for (int i = 0; i < k; i++)
	{
		Oid t2[3] = {TEXTOID, INT8OID, TEXTOID};
		Datum v2[3] = {CStringGetTextDatum(key_id), Int64GetDatum(static_cast<int64>(ids[i])),
					   CStringGetTextDatum(levels[i])};
		pg::RunPrivileged(
			"INSERT INTO vault._api_key_vaults (key_id, vault_id, level) VALUES ($1, $2, $3)", 3,
			t2, v2, nullptr);
	}
	AuditKeyChange("create_api_key", key_id, "created");
	text *result = cstring_to_text(text_key);
	SecureZero(text_key, sizeof(text_key));
	PG_RETURN_TEXT_P(result);
}

/* vault.rotate_api_key(password, key_id, overlap): a new secret for the same key id. */
VV_FUNCTION(vault_rotate_api_key)
{
	char *key_id = OwnKeyArgument(fcinfo, "vault.rotate_api_key()");
	ParsedApiKey key;
	key.id = strtoull(key_id, nullptr, 16);
	char text_key[kApiKeyLength + 1];
	uint8_t digest[kSha256Bytes];
	FreshSecret(&key, false, text_key, digest);
	Datum overlap = PG_ARGISNULL(2)
						? DirectFunctionCall3(interval_in, CStringGetDatum("0"),
											  ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1))
						: PG_GETARG_DATUM(2);
	Oid types[3] = {TEXTOID, BYTEAOID, INTERVALOID};
	Datum values[3] = {CStringGetTextDatum(key_id), Bytes(digest, sizeof(digest)), overlap};
	uint64 n = pg::RunPrivileged(
		"UPDATE vault._api_keys SET old_secret_hash = secret_hash, old_valid_until = "
		"pg_catalog.now() "
		"OPERATOR(pg_catalog.+) $3, secret_hash = $2, rotated_at = pg_catalog.now() WHERE key_id "
		"OPERATOR(pg_catalog.=) $1 AND revoked_at IS NULL",
		3, types, values, nullptr);
	if (n != 1)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("API key %s is revoked", key_id), errhint("Create a new key.")));
	vault::BumpEpochAtCommit();
	AuditKeyChange("rotate_api_key", key_id, "rotated");
	text *result = cstring_to_text(text_key);
	SecureZero(text_key, sizeof(text_key));
	PG_RETURN_TEXT_P(result);
}

/* vault.revoke_api_key(password, key_id): the key stops working on every session's next statement.
 */
VV_FUNCTION(vault_revoke_api_key)
{
	char *key_id = OwnKeyArgument(fcinfo, "vault.revoke_api_key()");
	Oid types[1] = {TEXTOID};
	Datum values[1] = {CStringGetTextDatum(key_id)};
	pg::RunPrivileged("UPDATE vault._api_keys SET revoked_at = pg_catalog.now() WHERE key_id "
					  "OPERATOR(pg_catalog.=) $1 AND "
					  "revoked_at IS NULL",
					  1, types, values, nullptr);
	vault::BumpEpochAtCommit();
	AuditKeyChange("revoke_api_key", key_id, "revoked");
	PG_RETURN_VOID();
}

/* vault.login(api_key text, transaction_only boolean): act as the key from now on. */
VV_FUNCTION(vault_login)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("API key must not be null")));
	auth::RequireDirectClientCall(fcinfo->flinfo->fn_oid, "login", "vault.login()");
	auth::RequireSecureConnection("vault.login()");
	text *arg = PG_GETARG_TEXT_PP(0);
	bool transaction_only = !PG_ARGISNULL(1) && PG_GETARG_BOOL(1);
	ParsedApiKey key;
	Status s = ParseApiKey(VARDATA_ANY(arg), VARSIZE_ANY_EXHDR(arg), &key);
	if (!s.ok())
	{
		auth::CheckLoginAllowed(nullptr);
		auth::NoteLoginFailure(nullptr, false);
		auth::AuditNow("login", 0, nullptr, "failed", "malformed API key");
		ereport(ERROR, (errcode(ERRCODE_INVALID_PASSWORD), errmsg("malformed API key"),
						errdetail("%s.", s.message()),
						errhint("Pass the key exactly as vault.create_api_key returned it.")));
	}
	char key_id[17];
	KeyIdText(key.id, key_id);
	auth::CheckLoginAllowed(key_id);
	uint8_t digest[kSha256Bytes];
	s = Sha256(key.secret, kApiKeySecretBytes, digest);
	SecureZero(key.secret, sizeof(key.secret));
	if (!s.ok())
		pg::ThrowStatus(s, nullptr, nullptr);

	auth::KeyValidity validity = auth::CheckKey(key_id, digest);
	bool valid = validity.valid;
	bool key_exists = validity.exists;
	char vault_name[NAMEDATALEN] = {0};
	uint64_t vault_id = 0;
	int nvaults = valid ? auth::KeyVaults(key_id, &vault_id, vault_name, sizeof(vault_name)) : 0;
	if (!valid)
	{
		auth::NoteLoginFailure(key_id, key_exists);
		auth::AuditLoginFailure(key_id, "failed", "unknown, revoked, expired or wrong API key");
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PASSWORD), errmsg("API key authentication failed"),
				 errhint("Check the key: it may be mistyped, revoked, expired, or rotated.")));
	}
	auth::NoteLoginSuccess(key_id);
	auth::detail::SetKey(key_id, digest, transaction_only);
	SecureZero(digest, sizeof(digest));
	auth::AuditNow("login", vault_id, vault_name[0] ? vault_name : nullptr, "ok",
				   transaction_only ? "transaction-scoped" : "session");
	if (nvaults == 1)
	{
		auth::SetInternalVaultChange(true);
		(void) set_config_option("vector_vault.vault", vault_name, PGC_USERSET, PGC_S_SESSION,
								 transaction_only ? GUC_ACTION_LOCAL : GUC_ACTION_SET, true, 0,
								 false);
		auth::SetInternalVaultChange(false);
		PG_RETURN_TEXT_P(cstring_to_text(vault_name));
	}
	PG_RETURN_NULL();
}

/* vault.logout(): back to acting as the session's role. */
VV_FUNCTION(vault_logout)
{
	(void) fcinfo;
	auth::RequireDirectClientCall(fcinfo->flinfo->fn_oid, "logout", "vault.logout()");
	if (auth::CurrentKey() != nullptr)
	{
		auth::AuditNow("logout", 0, nullptr, "ok", nullptr);
		auth::detail::ClearKey();
	}
	PG_RETURN_VOID();
}

/* vault.principal(): who the session acts as. */
VV_FUNCTION(vault_principal)
{
	(void) fcinfo;
	auth::KeyPrincipal *k = auth::CurrentKey();
	const char *role = GetUserNameFromId(GetUserId(), false);
	if (k == nullptr)
		PG_RETURN_TEXT_P(cstring_to_text(psprintf("role %s", role)));
	PG_RETURN_TEXT_P(
		cstring_to_text(psprintf("api key %s%s (connected as role %s)", k->key_id,
								 k->transaction ? ", this transaction only" : "", role)));
}
