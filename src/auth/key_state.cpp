/*
 * key_state.cpp — the one rule that says whether an API key is valid now.
 *
 * A key is valid when its row in vault._api_keys exists, is not revoked, has not expired, and
 * the presented secret's SHA-256 equals the current digest, or the previous one while the
 * rotation's overlap window lasts (the key is then valid only until the window ends). The
 * owner's own rights cap what the key can do; that part is applied by the vault cache. Both
 * vault.login and the vault cache (which re-checks the key whenever the access epoch moves)
 * call KeyValidity, so the rule is written once. The row is read with a heap scan (no SQL; see
 * pg/catalog_scan.h); digests are compared in constant time.
 */
#include "core/secure.h"

#include <cstring>

#include "auth/auth.h"
#include "pg/catalog_scan.h"

extern "C"
{
#include "utils/timestamp.h"
}

namespace vector_vault::auth
{

namespace
{

/* True when a bytea datum holds exactly this 32-byte digest (constant time). */
bool
DigestMatches(Datum value, const uint8_t digest[32])
{
	bytea *b = DatumGetByteaPP(value);
	return VARSIZE_ANY_EXHDR(b) == 32 && ConstantTimeEqual(VARDATA_ANY(b), digest, 32);
}

} // namespace

/* Reads the key's row and decides whether the presented digest is valid now. */
KeyValidity
CheckKey(const char *key_id, const uint8_t digest[32])
{
	KeyValidity out;
	memset(&out, 0, sizeof(out));
	pg::CatalogScan scan;
	pg::BeginCatalogScan(&scan, "_api_keys");
	AttrNumber a_id = pg::CatalogColumn(&scan, "key_id");
	AttrNumber a_owner = pg::CatalogColumn(&scan, "owner");
	AttrNumber a_revoked = pg::CatalogColumn(&scan, "revoked_at");
	AttrNumber a_expires = pg::CatalogColumn(&scan, "expires_at");
	AttrNumber a_secret = pg::CatalogColumn(&scan, "secret_hash");
	AttrNumber a_old = pg::CatalogColumn(&scan, "old_secret_hash");
	AttrNumber a_old_until = pg::CatalogColumn(&scan, "old_valid_until");
	bool found = false, revoked = false, expired = false, match = false;
	TimestampTz now = GetCurrentTimestamp();
	while (!found && pg::NextCatalogRow(&scan))
	{
		bool isnull;
		Datum id = pg::CatalogValue(&scan, a_id, &isnull);
		if (isnull || strcmp(TextDatumGetCString(id), key_id) != 0)
			continue;
		found = true;
		bool revoked_null, exp_null, old_null, old_until_null;
		out.owner = DatumGetObjectId(pg::CatalogValue(&scan, a_owner, &isnull));
		(void) pg::CatalogValue(&scan, a_revoked, &revoked_null);
		Datum exp = pg::CatalogValue(&scan, a_expires, &exp_null);
		Datum current = pg::CatalogValue(&scan, a_secret, &isnull);
		Datum old = pg::CatalogValue(&scan, a_old, &old_null);
		Datum old_until = pg::CatalogValue(&scan, a_old_until, &old_until_null);
		revoked = !revoked_null;
		expired = !exp_null && DatumGetTimestampTz(exp) <= now;
		bool old_ok = !old_until_null && DatumGetTimestampTz(old_until) > now;
		out.expires_at = exp_null ? 0 : DatumGetTimestampTz(exp);
		match = !isnull && DigestMatches(current, digest);
		if (!match && !old_null && old_ok)
		{
			match = DigestMatches(old, digest);
			/* valid on the previous secret only until the rotation's overlap ends */
			TimestampTz until = DatumGetTimestampTz(old_until);
			if (match && (out.expires_at == 0 || until < out.expires_at))
				out.expires_at = until;
		}
	}
	pg::EndCatalogScan(&scan);
	out.exists = found;
	if (!found)
		out.reason = "it no longer exists";
	else if (revoked)
		out.reason = "it was revoked";
	else if (expired)
		out.reason = "it expired";
	else if (!match)
		out.reason = "it was rotated";
	else
		out.valid = true;
	return out;
}

/* The active vaults an API key is scoped to: the count, and the id and name when it is one. */
int
KeyVaults(const char *key_id, uint64_t *single_id, char *single_name, size_t cap)
{
	single_name[0] = '\0';
	*single_id = 0;
	pg::CatalogScan scan;
	pg::BeginCatalogScan(&scan, "_api_key_vaults");
	AttrNumber a_key = pg::CatalogColumn(&scan, "key_id");
	AttrNumber a_vault = pg::CatalogColumn(&scan, "vault_id");
	int n = 0;
	int64 *ids = static_cast<int64 *>(palloc(sizeof(int64) * 16));
	int cap_ids = 16;
	while (pg::NextCatalogRow(&scan))
	{
		bool isnull;
		Datum kid = pg::CatalogValue(&scan, a_key, &isnull);
		if (isnull || strcmp(TextDatumGetCString(kid), key_id) != 0)
			continue;
		if (n == cap_ids)
		{
			cap_ids *= 2;
			ids = static_cast<int64 *>(repalloc(ids, sizeof(int64) * cap_ids));
		}
		ids[n++] = DatumGetInt64(pg::CatalogValue(&scan, a_vault, &isnull));
	}
	pg::EndCatalogScan(&scan);
	int active = 0;
	pg::BeginCatalogScan(&scan, "_vaults");
	AttrNumber v_id = pg::CatalogColumn(&scan, "vault_id");
	AttrNumber v_name = pg::CatalogColumn(&scan, "name");
	AttrNumber v_state = pg::CatalogColumn(&scan, "state");
	while (pg::NextCatalogRow(&scan))
	{
		bool isnull;
		int64 id = DatumGetInt64(pg::CatalogValue(&scan, v_id, &isnull));
		bool listed = false;
		for (int i = 0; i < n && !listed; i++)
			listed = ids[i] == id;
		if (!listed ||
			strcmp(TextDatumGetCString(pg::CatalogValue(&scan, v_state, &isnull)), "active") != 0)
			continue;
		if (active++ == 0)
		{
			*single_id = static_cast<uint64_t>(id);
			strlcpy(single_name, TextDatumGetCString(pg::CatalogValue(&scan, v_name, &isnull)),
					cap);
		}
	}
	pg::EndCatalogScan(&scan);
	pfree(ids);
	if (active != 1)
	{
		single_name[0] = '\0';
		*single_id = 0;
	}
	return active;
}

} // namespace vector_vault::auth
