/*
 * catalog.cpp — the per-backend cache of vaults and of the principal's levels (see vault.h).
 *
 * The cache is loaded with plain heap scans of vault._vaults, vault._grants and the API-key
 * tables (pg/catalog_scan.h): no SQL runs, so nothing the caller planted (a domain in pg_temp,
 * a function in public) can run with the extension's rights, and parallel workers load it the
 * same way. Levels are computed once per load for the current role. Lookups are a
 * hash probe plus one atomic read of the shared epoch, cheap enough to run for every value a
 * type output or distance function decrypts.
 */
#include "vault/vault.h"

#include <cstring>

#include "auth/auth.h"
#include "pg/guard.h"
#include "pg/catalog_scan.h"
#include "pg/shmem.h"

extern "C"
{
#include "access/xact.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/syscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

namespace vector_vault::vault
{

namespace
{

char *g_current_vault_name = nullptr;

/* The loaded cache. */
struct Cache
{
	bool valid;
	uint64 epoch;
	Oid role;
	uint64_t principal;   /* auth::PrincipalGeneration() at load */
	int64 key_expires_at; /* TimestampTz of the key principal's expiry, 0 = none */
	int count;
	VaultInfo *vaults; /* in CacheContext */
	int *slots;        /* open addressing over vaults by id, -1 empty */
	int nslots;
};
Cache g_cache;
MemoryContext g_context = nullptr;
bool g_bump_at_commit = false;

/* Hash slot of an id. */
int
SlotOf(uint64_t id, int nslots)
{
	return static_cast<int>(((id * 0x9E3779B97F4A7C15ull) >> 33) % static_cast<uint64_t>(nslots));
}

/* Parses a level stored in vault._grants. */
Level
LevelFromText(const char *s)
{
	if (strcmp(s, "read") == 0)
		return Level::kRead;
	if (strcmp(s, "write") == 0)
		return Level::kWrite;
	if (strcmp(s, "admin") == 0)
		return Level::kAdmin;
	return Level::kNone;
}

/* Finds a vault by id in the loaded cache. */
VaultInfo *
Find(uint64_t id)
{
	if (g_cache.nslots == 0)
		return nullptr;
	int start = SlotOf(id, g_cache.nslots);
	for (int i = 0; i < g_cache.nslots; i++)
	{
		int s = g_cache.slots[(start + i) % g_cache.nslots];
		if (s < 0)
			return nullptr;
		if (g_cache.vaults[s].id == id)
			return &g_cache.vaults[s];
	}
	return nullptr;
}

/* Re-checks the key principal (auth::CheckKey, the one validity rule): marks it invalid when it
 * was revoked, expired, or rotated past its overlap window, and returns its owner role. */
Oid
KeyOwner(auth::KeyPrincipal *key)
{
	auth::KeyValidity v = auth::CheckKey(key->key_id, key->digest);
	key->invalid = !v.valid;
	key->expires_at = v.expires_at;
	key->owner = v.owner;
	strlcpy(key->reason, v.valid ? "" : v.reason, sizeof(key->reason));
	return v.valid ? v.owner : InvalidOid;
}

/* Caps each vault's level (computed for the key's owner) by the key's own level on it. */
void
ApplyKeyPrincipal(auth::KeyPrincipal *key, VaultInfo *vaults, int n)
{
	Level *capped = static_cast<Level *>(palloc0(sizeof(Level) * (n + 1)));
	if (!key->invalid)
	{
		pg::CatalogScan scan;
		pg::BeginCatalogScan(&scan, "_api_key_vaults");
		AttrNumber a_key = pg::CatalogColumn(&scan, "key_id");
		AttrNumber a_vault = pg::CatalogColumn(&scan, "vault_id");
		AttrNumber a_level = pg::CatalogColumn(&scan, "level");
		while (pg::NextCatalogRow(&scan))
		{
			bool isnull;
			Datum kid = pg::CatalogValue(&scan, a_key, &isnull);
			if (isnull || strcmp(TextDatumGetCString(kid), key->key_id) != 0)
				continue;
			uint64_t id =
				static_cast<uint64_t>(DatumGetInt64(pg::CatalogValue(&scan, a_vault, &isnull)));
			char *lt = TextDatumGetCString(pg::CatalogValue(&scan, a_level, &isnull));
			for (int k = 0; k < n; k++)
				if (vaults[k].id == id)
					capped[k] = LevelFromText(lt);
		}
		pg::EndCatalogScan(&scan);
	}
	for (int k = 0; k < n; k++)
		if (capped[k] < vaults[k].level)
			vaults[k].level = capped[k];
	pfree(capped);
}

/* Reads vault._vaults into g_context: the array of vaults and its hash slots. */
void
LoadVaults(Oid who)
{
	pg::CatalogScan scan;
	pg::BeginCatalogScan(&scan, "_vaults");
	AttrNumber a_id = pg::CatalogColumn(&scan, "vault_id");
	AttrNumber a_name = pg::CatalogColumn(&scan, "name");
	AttrNumber a_owner = pg::CatalogColumn(&scan, "owner");
	AttrNumber a_state = pg::CatalogColumn(&scan, "state");
	AttrNumber a_version = pg::CatalogColumn(&scan, "key_version");
	int cap = 16, n = 0;
	VaultInfo *vaults =
		static_cast<VaultInfo *>(MemoryContextAllocZero(g_context, sizeof(VaultInfo) * cap));
	while (pg::NextCatalogRow(&scan))
	{
		if (n == cap)
		{
			vaults = static_cast<VaultInfo *>(repalloc(vaults, sizeof(VaultInfo) * cap * 2));
			memset(vaults + cap, 0, sizeof(VaultInfo) * cap);
			cap *= 2;
		}
		bool isnull;
		VaultInfo *v = &vaults[n++];
		v->id = static_cast<uint64_t>(DatumGetInt64(pg::CatalogValue(&scan, a_id, &isnull)));
		char *name = TextDatumGetCString(pg::CatalogValue(&scan, a_name, &isnull));
		namestrcpy(&v->name, name);
		pfree(name);
		v->owner = DatumGetObjectId(pg::CatalogValue(&scan, a_owner, &isnull));
		char *state = TextDatumGetCString(pg::CatalogValue(&scan, a_state, &isnull));
		v->dropped = strcmp(state, "active") != 0;
		pfree(state);
		v->key_version =
			static_cast<uint32_t>(DatumGetInt32(pg::CatalogValue(&scan, a_version, &isnull)));
		v->level = (!v->dropped && OidIsValid(who) && RoleHasRightsOf(who, v->owner))
					   ? Level::kOwner
					   : Level::kNone;
	}
	pg::EndCatalogScan(&scan);
	int nslots = 16;
	while (nslots < 2 * n + 1)
		nslots *= 2;
	int *slots = static_cast<int *>(MemoryContextAlloc(g_context, sizeof(int) * nslots));
	memset(slots, -1, sizeof(int) * nslots);
	for (int i = 0; i < n; i++)
	{
		int s = SlotOf(vaults[i].id, nslots);
		while (slots[s] >= 0)
			s = (s + 1) % nslots;
		slots[s] = i;
	}
	g_cache.vaults = vaults;
	g_cache.slots = slots;
	g_cache.nslots = nslots;
	g_cache.count = n;
}

/* Reads vault._grants and raises each vault's level to what `who` holds through grants. */
void
LoadGrants(Oid who)
{
	pg::CatalogScan scan;
	pg::BeginCatalogScan(&scan, "_grants");
	AttrNumber a_id = pg::CatalogColumn(&scan, "vault_id");
	AttrNumber a_grantee = pg::CatalogColumn(&scan, "grantee");
	AttrNumber a_level = pg::CatalogColumn(&scan, "level");
	while (pg::NextCatalogRow(&scan))
	{
		bool isnull;
		uint64_t id = static_cast<uint64_t>(DatumGetInt64(pg::CatalogValue(&scan, a_id, &isnull)));
		Oid grantee = DatumGetObjectId(pg::CatalogValue(&scan, a_grantee, &isnull));
		char *level_text = TextDatumGetCString(pg::CatalogValue(&scan, a_level, &isnull));
		Level level = LevelFromText(level_text);
		pfree(level_text);
		VaultInfo *v = Find(id);
		if (v == nullptr || v->dropped)
			continue;
		if (level > v->level && OidIsValid(who) && RoleHasRightsOf(who, grantee))
			v->level = level;
	}
	pg::EndCatalogScan(&scan);
}

/*
 * Loads all vaults and grants and computes the current principal's levels. No SQL and no
 * identity switch: plain heap scans of our tables (see pg/catalog_scan.h), so nothing the caller
 * planted can run here, and parallel workers load the same way as their leader.
 */
void
Load()
{
	if (g_context == nullptr)
		g_context = AllocSetContextCreate(TopMemoryContext, "vector_vault vault cache",
										  ALLOCSET_SMALL_SIZES);
	MemoryContextReset(g_context);
	g_cache = Cache();
	Oid role = GetUserId();
	/* A key principal acts with its owner's rights, capped per vault by the key (below). */
	auth::KeyPrincipal *key = auth::CurrentKey();
	Oid who = key != nullptr ? KeyOwner(key) : role;
	LoadVaults(who);
	LoadGrants(who);
	if (key != nullptr)
		ApplyKeyPrincipal(key, g_cache.vaults, g_cache.count);
	g_cache.role = role;
	g_cache.principal = auth::PrincipalGeneration();
	g_cache.key_expires_at = (key != nullptr && !key->invalid) ? key->expires_at : 0;
	g_cache.epoch = pg::AccessEpoch();
	g_cache.valid = true;
}

/* Makes sure the cache reflects the current epoch, role, principal and key expiry. */
void
EnsureLoaded()
{
	if (!g_cache.valid || g_cache.epoch != pg::AccessEpoch() || g_cache.role != GetUserId() ||
		g_cache.principal != auth::PrincipalGeneration() ||
		(g_cache.key_expires_at != 0 &&
		 GetCurrentStatementStartTimestamp() >= g_cache.key_expires_at))
		Load();
}

/* Syscache callback: role or membership changed. */
void
RoleChanged(Datum, int, uint32)
{
	g_cache.valid = false;
}

/* Bumps the shared epoch after a commit that changed vaults or grants. */
void
XactCallback(XactEvent event, void *) noexcept
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
	{
		if (g_bump_at_commit)
			pg::BumpAccessEpoch();
		g_bump_at_commit = false;
	}
	else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
	{
		g_bump_at_commit = false;
		g_cache.valid = false;
	}
}

/* A subtransaction abort may undo catalog changes the cache has seen. */
void
SubXactCallback(SubXactEvent event, SubTransactionId, SubTransactionId, void *) noexcept
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		g_cache.valid = false;
}

} // namespace

/* Check hook of vector_vault.vault: only the client's own statements may change it. */
bool
CheckSelectedVault(char **, void **, GucSource source)
{
	return auth::MayChangeSelectedVault(source);
}

/* Defines vector_vault.vault. */
void
DefineGucs()
{
	DefineCustomStringVariable(
		"vector_vault.vault", "Vault that new encrypted values are sealed under.",
		"Values typed into evector, etext and ejsonb columns are encrypted "
		"with this vault's current data key.",
		&g_current_vault_name, "", PGC_USERSET, 0, CheckSelectedVault, nullptr, nullptr);
}

/* Installs invalidation callbacks. */
void
RegisterCallbacks()
{
	CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, RoleChanged, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHOID, RoleChanged, (Datum) 0);
	RegisterXactCallback(XactCallback, nullptr);
	RegisterSubXactCallback(SubXactCallback, nullptr);
}

/* The vault with this id. */
const VaultInfo *
LookupVault(uint64_t id)
{
	EnsureLoaded();
	return Find(id);
}

/* The active vault with this name. */
const VaultInfo *
LookupVaultByName(const char *name)
{
	EnsureLoaded();
	for (int i = 0; i < g_cache.count; i++)
		if (!g_cache.vaults[i].dropped && strcmp(NameStr(g_cache.vaults[i].name), name) == 0)
			return &g_cache.vaults[i];
	return nullptr;
}

/* The active vault with this name; raises 42704 (with a hint) when there is none. */
const VaultInfo *
RequireVault(const char *name)
{
	const VaultInfo *v = LookupVaultByName(name);
	if (v == nullptr)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("vault \"%s\" does not exist", name),
				 errhint("SELECT name FROM vault.vaults lists the vaults you can use.")));
	return v;
}

/* The vault selected by vector_vault.vault. */
const VaultInfo *
CurrentVault()
{
	if (g_current_vault_name == nullptr || g_current_vault_name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE), errmsg("no vault is selected"),
				 errdetail("Encrypted values are sealed under the vault named by "
						   "vector_vault.vault."),
				 errhint("Run SET vector_vault.vault = '<name>' first; "
						 "SELECT name FROM vault.vaults lists the vaults you can use.")));
	const VaultInfo *v = LookupVaultByName(g_current_vault_name);
	if (v == nullptr)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
						errmsg("vault \"%s\" does not exist", g_current_vault_name),
						errhint("SELECT name FROM vault.vaults lists the vaults you can use; "
								"vault.create_vault(name) creates one.")));
	return v;
}

/* Raises 42501 unless the principal holds `needed`. */
void
RequireLevel(const VaultInfo *v, Level needed, const char *action)
{
	if (v->level >= needed)
		return;
	auth::AuditNow("denied", v->id, NameStr(v->name), "denied", action);
	auth::KeyPrincipal *key = auth::CurrentKey();
	if (key != nullptr && key->invalid)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("API key %s is no longer valid: %s", key->key_id, key->reason),
				 errhint("Log in again with a current key (vault.login), or vault.logout().")));
	ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					errmsg("permission denied to %s in vault \"%s\"", action, NameStr(v->name)),
					errdetail("This needs %s access; the current role has %s.", LevelName(needed),
							  v->level == Level::kNone ? "none" : LevelName(v->level)),
					needed == Level::kOwner
						? errhint("Only the owner of vault \"%s\" can do this.", NameStr(v->name))
						: errhint("The vault's owner or an admin can run vault.grant('%s', role, "
								  "level).",
								  NameStr(v->name))));
}

/* Name of a level. */
const char *
LevelName(Level level)
{
	switch (level)
	{
		case Level::kRead:
			return "read";
		case Level::kWrite:
			return "write";
		case Level::kAdmin:
			return "admin";
		case Level::kOwner:
			return "owner";
		case Level::kNone:
			break;
	}
	return "none";
}

/* Parses a grantable level. */
Level
ParseGrantLevel(const char *text)
{
	Level l = LevelFromText(text);
	if (l == Level::kNone)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("invalid access level \"%s\"", text),
						errhint("Use 'read', 'write' or 'admin'; ownership cannot be granted.")));
	return l;
}

/* Ids of the readable active vaults. */
uint64_t *
ReadableVaults(int *n)
{
	EnsureLoaded();
	uint64_t *out = static_cast<uint64_t *>(palloc(sizeof(uint64_t) * (g_cache.count + 1)));
	int k = 0;
	for (int i = 0; i < g_cache.count; i++)
		if (!g_cache.vaults[i].dropped && g_cache.vaults[i].level >= Level::kRead)
			out[k++] = g_cache.vaults[i].id;
	*n = k;
	return out;
}

/* Drops this backend's cache. */
void
InvalidateCache()
{
	g_cache.valid = false;
}

/* Requests an epoch bump at commit. */
void
BumpEpochAtCommit()
{
	g_bump_at_commit = true;
	g_cache.valid = false;
}

/* True when member has the privileges of role; superusers get no shortcut. */
bool
RoleHasRightsOf(Oid member, Oid role)
{
	if (member == role)
		return true;
	if (superuser_arg(member))
		return is_member_of_role_nosuper(member, role);
	return has_privs_of_role(member, role);
}

} // namespace vector_vault::vault
