/*
 * rotation.cpp — key rotation without downtime.
 *
 * Master key: vault.rotate_master_key(new_key_file | new_key_command) reads the new key, re-wraps
 * every keyring entry (and master.check) under it into "<name>.next" files, durably writes a
 * "rotation.commit" marker, renames every .next file over its entry, switches the key in shared
 * memory (every session at once: data keys themselves do not change, so nothing is re-encrypted),
 * and removes the marker. A crash before the marker leaves the old keyring (the .next files are
 * discarded at start); a crash after it is completed at start. Either way the server then needs
 * the key that matches the keyring: after a successful rotation, point
 * vector_vault.master_key_file (or _command) at the new key before the next restart. A crash
 * restart (a backend crash, the postmaster staying up) needs no such change: the postmaster
 * keeps the key in use, or the pending key of a rotation the crash interrupted after its commit
 * marker, and does not read the configured source again (keys/master_key.cpp). Completing or
 * discarding an interrupted rotation at start is keys/rotation_recovery.cpp.
 *
 * Vault data keys: vault.rotate_key(vault) creates the next version, which new values use at
 * once; CALL vault.reencrypt(vault) rewrites older values (and, through the updated rows, their
 * index entries) in batches, committing as it goes, in the tables it may rewrite without running
 * anybody else's code; after VACUUM, vault.retire_key_version(vault, version) checks nothing live
 * still uses the version and shreds it at commit. Where values are and who may rewrite them is
 * rotation_scan.cpp; retirement is blocked by values in relations of roles with access to the
 * vault, and by copies of outsiders unless force => true (then they are reported and shredded).
 */
#include "core/aead.h"
#include "core/durable_file.h"
#include "core/envelope.h"
#include "core/keyring_format.h"
#include "core/master_key_text.h"
#include "core/secure.h"

#include <cinttypes>
#include <cstring>
#include <dirent.h>

#include "admin/rotation_scan.h"
#include "auth/auth.h"
#include "index/hnsw.h"
#include "keys/keys.h"
#include "pg/guard.h"
#include "pg/privileged.h"
#include "pg/secret.h"
#include "pg/shmem.h"
#include "type/codec.h"
#include "vault/vault.h"

extern "C"
{
#include "access/relation.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "executor/spi.h"
#include "storage/lwlock.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
}

using namespace vector_vault;

namespace
{

constexpr const char *kMarker = kRotationMarkerFileName;
constexpr int kMaxEntries = 100000;

/* True for the files a master-key rotation re-wraps. */
bool
IsEntryFile(const char *name)
{
	uint64_t v;
	uint32_t ver;
	return strcmp(name, kMasterCheckFileName) == 0 || ParseDataKeyFileName(name, &v, &ver);
}

} // namespace

/* vault.rotate_master_key(new_key_file text, new_key_command text): re-wraps the keyring. */
VV_FUNCTION(vault_rotate_master_key)
{
	if (!superuser())
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						errmsg("only a superuser can rotate the master key")));
	bool has_file = !PG_ARGISNULL(0), has_cmd = !PG_ARGISNULL(1);
	if (has_file == has_cmd)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("give exactly one of new_key_file and new_key_command")));
	keys::RequireMasterKey();
	PreventInTransactionBlock(true, "vault.rotate_master_key()");
	/* Finish shreds a crash interrupted first: their half-deleted entries are not to be
	 * re-wrapped (and would fail to open). */
	keys::ReconcileKeyring();
	const char *dir = keys::KeyringDir();
	/* Zeroed and unmapped on every exit, errors included (pg/secret.h). */
	uint8_t *fresh = static_cast<uint8_t *>(pg::AllocLockedSecret(kKeyBytes));
	char *source = text_to_cstring(PG_GETARG_TEXT_PP(has_file ? 0 : 1));
	Status s = has_file ? ReadMasterKeyFile(source, fresh)
						: RunMasterKeyCommand(source, fresh, keys::detail::KeyCommandTimeout());
	if (!s.ok())
	{
		pg::ThrowStatus(s, "could not read the new master key",
						"Check the file or command you passed.");
	}
	LWLockAcquire(pg::Shared()->keyring_lock, LW_EXCLUSIVE);
	if (ConstantTimeEqual(fresh, keys::detail::MasterKeyBytes(), kKeyBytes))
	{
		LWLockRelease(pg::Shared()->keyring_lock);
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("the new master key is the one in use")));
	}
	/* 1. every entry re-wrapped into <name>.next */
	DIR *d = opendir(dir);
	if (d == nullptr)
	{
		LWLockRelease(pg::Shared()->keyring_lock);
		ereport(ERROR, (errcode_for_file_access(),
						errmsg("could not open keyring directory \"%s\": %m", dir)));
	}
	char(*names)[kKeyringFileNameMax] =
		static_cast<char(*)[kKeyringFileNameMax]>(MemoryContextAllocHuge(
			CurrentMemoryContext, sizeof(char[kKeyringFileNameMax]) * kMaxEntries));
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != nullptr && n < kMaxEntries)
		if (IsEntryFile(de->d_name))
			strlcpy(names[n++], de->d_name, kKeyringFileNameMax);
	closedir(d);
	for (int i = 0; i < n && s.ok(); i++)
	{
		uint8_t entry[kKeyringEntryBytes];
		size_t len = 0;
		KeyringEntryInfo info;
		uint8_t key[kKeyBytes];
		s = ReadSmallFile(dir, names[i], entry, sizeof(entry), &len);
		if (s.ok())
			s = PeekKeyringEntry(entry, len, &info);
		if (s.ok())
			s = OpenKeyringEntry(keys::detail::MasterKeyBytes(), entry, len, info, key);
		if (s.ok())
			s = SealKeyringEntry(fresh, info, key, entry);
		SecureZero(key, sizeof(key));
		char next[kNextFileNameMax];
		NextFileName(names[i], next);
		if (s.ok())
			s = WriteFileDurably(dir, next, entry, sizeof(entry));
	}
	if (!s.ok())
	{
		for (int i = 0; i < n; i++)
		{
			char next[kNextFileNameMax];
			NextFileName(names[i], next);
			(void) RemoveFileDurably(dir, next);
		}
		LWLockRelease(pg::Shared()->keyring_lock);
		pg::ThrowStatus(s, "master key rotation failed; the keyring is unchanged", nullptr);
	}
	/* 2. the commit point. From just before it the new key is also in shared memory as the
	 * pending key: a crash restart from here on finds the keyring under the new key and must be
	 * able to serve with it (keys/master_key.cpp). */
	keys::detail::SetPendingMasterKey(fresh);
	const uint8_t mark[4] = {'V', 'V', 'R', 'C'};
	s = WriteFileDurably(dir, kMarker, mark, sizeof(mark));
	if (!s.ok())
	{
		keys::detail::SetPendingMasterKey(nullptr);
		LWLockRelease(pg::Shared()->keyring_lock);
		pg::ThrowStatus(
			s, "master key rotation failed before its commit point; restart to clean up", nullptr);
	}
	/* 3. switch: renames, the shared key, the marker */
	int renamed = 0;
	Status first_failure;
	for (int i = 0; i < n; i++)
	{
		char next[kNextFileNameMax];
		NextFileName(names[i], next);
		Status r = RenameDurably(dir, next, names[i]);
		if (r.ok())
			renamed++;
		else if (first_failure.ok())
			first_failure = r;
	}
	/* Past the commit point the new key is the keyring's key, renamed or not: entries whose
	 * rename failed are read from their .next files while the marker stays (keys::DataKey). */
	keys::detail::SetMasterKeyBytes(fresh);
	keys::detail::SetPendingMasterKey(nullptr);
	if (renamed == n)
		(void) RemoveFileDurably(dir, kMarker);
	LWLockRelease(pg::Shared()->keyring_lock);
	pg::FreeLockedSecret(fresh);
	if (renamed != n)
		ereport(WARNING,
				(errmsg("master key rotation committed, but %d of %d keyring entries could not be "
						"renamed into place",
						n - renamed, n),
				 errdetail("%s", first_failure.message()),
				 errhint("Sessions read those entries from their .next files meanwhile; fix the "
						 "keyring directory, then restart the server to finish the rotation.")));
	auth::AuditNow("rotate_master_key", 0, nullptr, "ok",
				   psprintf("%d keyring entries re-wrapped", n));
	const char *file, *cmd;
	keys::detail::ConfiguredKeySource(&file, &cmd);
	ereport(
		NOTICE,
		(errmsg("the keyring (%d entries) is now wrapped under the new master key", n),
		 errhint(
			 "Before the next restart set vector_vault.master_key_%s = '%s' in postgresql.conf.",
			 has_file ? "file" : "command", source)));
	PG_RETURN_INT32(n);
}

/* vault.rotate_key(vault text): a new data key version for new values. */
VV_FUNCTION(vault_rotate_key)
{
	char *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	PreventCommandIfReadOnly("vault.rotate_key()");
	const vault::VaultInfo *v = vault::RequireVault(name);
	vault::RequireLevel(v, vault::Level::kAdmin, "rotate the key");
	uint64_t id = v->id;
	uint32_t next = v->key_version + 1;
	keys::CreateDataKey(id, next);
	pg::PrivilegedScope scope;
	pg::EnterPrivileged(&scope);
	Oid types[2] = {INT8OID, INT4OID};
	Datum values[2] = {Int64GetDatum(static_cast<int64>(id)),
					   Int32GetDatum(static_cast<int32>(next))};
	if (SPI_execute_with_args(
			"UPDATE vault._vaults SET key_version = $2 WHERE vault_id OPERATOR(pg_catalog.=) $1", 2,
			types, values, nullptr, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update vault._vaults");
	pg::LeavePrivileged(&scope);
	vault::BumpEpochAtCommit();
	auth::AuditAtCommit("rotate_key", id, name, "ok", psprintf("key version %u", next));
	PG_RETURN_INT32(static_cast<int32>(next));
}

/* vault.key_version_of(evector | etext | ejsonb): the key version a value is sealed with. */
VV_FUNCTION(vault_key_version_of)
{
	uint64 vault_id;
	uint32 key_version;
	type::PeekEnvelope(PG_GETARG_DATUM(0), &vault_id, &key_version);
	PG_RETURN_INT32(static_cast<int32>(key_version));
}

/* vault.reseal(value): the value sealed again under its vault's current key (write level). */
VV_FUNCTION(vault_reseal)
{
	struct varlena *raw = PG_DETOAST_DATUM_PACKED(PG_GETARG_DATUM(0));
	EnvelopeHeader h;
	Status s = DecodeEnvelopeHeader(reinterpret_cast<const uint8_t *>(VARDATA_ANY(raw)),
									VARSIZE_ANY_EXHDR(raw), &h);
	if (!s.ok())
		pg::ThrowStatus(s, "invalid encrypted value", nullptr);
	type::EnvelopeRef ref;
	type::ReadEnvelope(PG_GETARG_DATUM(0), h.kind, &ref);
	const vault::VaultInfo *v = vault::LookupVault(h.vault_id);
	if (v == nullptr || v->dropped)
		ereport(ERROR, (errcode(pg::kSqlStateKeyUnavailable),
						errmsg("the value's vault does not exist or was dropped")));
	vault::RequireLevel(v, vault::Level::kWrite, "re-encrypt values");
	if (h.key_version == v->key_version)
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	uint8_t *pt = static_cast<uint8_t *>(pg::AllocSecret(h.payload_len));
	type::OpenValue(ref, pt);
	struct varlena *out = type::SealValueInVault(h.kind, v, pt, h.payload_len);
	pg::FreeSecret(pt);
	PG_RETURN_POINTER(out);
}

namespace
{

/* Raises the error for a holder that keeps a key version from being retired. */
[[noreturn]] void
RefuseRetire(const admin::KeyHolder &h, int32 version, const char *name, bool force)
{
	char *where = h.column != nullptr ? psprintf("%s.%s", h.relation, quote_identifier(h.column))
									  : psprintf("index %s", h.relation);
	char *count = h.remaining < 0 ? pstrdup("an unknown number of")
								  : psprintf("%lld", static_cast<long long>(h.remaining));
	const char *hint;
	if (h.remaining < 0)
		hint = "It is a temporary table of another session: wait until that session ends, or "
			   "shred the version anyway with force => true.";
	else if (h.owner_has_rights && h.column == nullptr)
		hint = "VACUUM the index's table after vault.reencrypt, then retry.";
	else if (h.owner_has_rights && h.not_rewritable == nullptr)
		hint = "CALL vault.reencrypt(vault) first (and VACUUM the tables).";
	else if (h.owner_has_rights)
		hint = "Its owner has access to the vault, so these values are the vault's data: have "
			   "them rewritten (CALL vault.reencrypt by the table's owner, or REFRESH a "
			   "materialized view), or revoke the owner's access first.";
	else
		hint = "Its owner has no access to the vault: force => true shreds the version anyway, "
			   "and these copies can never be decrypted again.";
	char *message =
		h.column != nullptr
			? psprintf("%s values in %s still use key version %d of vault \"%s\"", count, where,
					   version, name)
			: psprintf("index \"%s\" still holds %s live entries under key version %d of vault "
					   "\"%s\"",
					   get_rel_name(h.relid), count, version, name);
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE), errmsg("%s", message),
			 errdetail("%s is owned by role \"%s\", which %s access to the vault%s%s.", h.relation,
					   h.owner_name, h.owner_has_rights ? "has" : "has no",
					   h.not_rewritable != nullptr ? "; vault.reencrypt does not rewrite it: " : "",
					   h.not_rewritable != nullptr ? h.not_rewritable : ""),
			 errhint("%s%s", hint,
					 force && h.owner_has_rights && h.remaining >= 0
						 ? " force => true does not shred values held by roles with access."
						 : "")));
}

} // namespace

/*
 * vault.retire_key_version(vault text, version int, force bool DEFAULT false): shreds an old
 * version that nothing live uses. Values and index entries are counted as the extension owner
 * in every table, materialized view and vault_hnsw index of the database (nested in domains,
 * arrays and composites too). Holders whose owner has access to the vault always block. Holders
 * whose owner has no access (copies), and temporary tables of other sessions (which cannot be
 * read), block unless force => true; then they are reported and shredded with the version.
 */
VV_FUNCTION(vault_retire_key_version)
{
	char *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int32 version = PG_GETARG_INT32(1);
	bool force = PG_GETARG_BOOL(2);
	PreventCommandIfReadOnly("vault.retire_key_version()");
	const vault::VaultInfo *v = vault::RequireVault(name);
	vault::RequireLevel(v, vault::Level::kAdmin, "retire a key version");
	if (version < 1 || static_cast<uint32_t>(version) >= v->key_version)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("key version %d of vault \"%s\" cannot be retired", version, name),
						errdetail("Only versions below the current one (%u) can be retired.",
								  v->key_version)));
	uint64_t id = v->id;
	/* A prepared (two-phase) transaction may hold values sealed under the version that no scan
	 * can see yet (found by sql/44_round2_attack_pass, 3a): retire only when there is none. */
	{
		pg::PrivilegedScope scope;
		pg::EnterPrivileged(&scope);
		if (SPI_execute("SELECT 1 FROM pg_catalog.pg_prepared_xacts p WHERE p.database "
						"OPERATOR(pg_catalog.=) pg_catalog.current_database() LIMIT 1",
						true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read pg_prepared_xacts");
		bool prepared = SPI_processed > 0;
		pg::LeavePrivileged(&scope);
		if (prepared)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("cannot retire key version %d of vault \"%s\" while prepared "
							"transactions exist in this database",
							version, name),
					 errdetail("A prepared transaction may hold values sealed under that version."),
					 errhint("COMMIT PREPARED or ROLLBACK PREPARED them "
							 "(SELECT gid FROM pg_prepared_xacts), then retry.")));
	}
	admin::KeyHolder *holders;
	int n = admin::ScanKeyHolders(id, v->owner, static_cast<uint32_t>(version),
								  static_cast<uint32_t>(version), GetUserId(), true, &holders);
	/* Values of the vault's own members first: force never overrides them. */
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < n; i++)
		{
			const admin::KeyHolder &h = holders[i];
			bool member = h.owner_has_rights && h.remaining >= 0;
			/* An unreadable temporary table of a role without access holds at most copies:
			 * reported, never blocking (or anybody could stop every rotation). */
			bool copies = h.remaining >= 0 || h.owner_has_rights;
			if (pass == 0 ? member : (!force && copies))
				RefuseRetire(h, version, name, force);
		}
	int64 shredded_copies = 0;
	for (int i = 0; i < n; i++)
	{
		const admin::KeyHolder &h = holders[i];
		if (h.remaining > 0)
			shredded_copies += h.remaining;
		ereport(
			WARNING,
			(errmsg("%s %s of vault \"%s\" in %s%s%s (owner \"%s\") become undecryptable",
					h.remaining < 0 ? "any" : psprintf("%lld", static_cast<long long>(h.remaining)),
					h.column != nullptr ? "values" : "index entries", name, h.relation,
					h.column != nullptr ? "." : "",
					h.column != nullptr ? quote_identifier(h.column) : "", h.owner_name),
			 errdetail("Key version %d is shredded although %s %s.", version, h.relation,
					   h.remaining >= 0
						   ? "holds them (its owner has no access to the vault; force => true)"
						   : "could not be checked (a temporary table of another session)")));
	}
	keys::ScheduleShred(id, static_cast<uint32_t>(version));
	vault::BumpEpochAtCommit();
	auth::AuditAtCommit(
		"retire_key_version", id, name, "ok",
		n == 0 ? psprintf("key version %d shredded", version)
			   : psprintf("key version %d shredded; %lld values and index entries in "
						  "%d relations of roles without access (or unreadable) became "
						  "undecryptable",
						  version, static_cast<long long>(shredded_copies), n));
	PG_RETURN_VOID();
}

/* vault.seal_count(vault text, version int): AES-GCM seals counted under a key version (admin). */
VV_FUNCTION(vault_seal_count)
{
	char *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	const vault::VaultInfo *v = vault::RequireVault(name);
	vault::RequireLevel(v, vault::Level::kAdmin, "read key usage");
	PG_RETURN_INT64(
		static_cast<int64>(keys::SealCount(v->id, static_cast<uint32_t>(PG_GETARG_INT32(1)))));
}
