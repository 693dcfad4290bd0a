/*
 * init.cpp — where vector_vault starts: the module magic and _PG_init.
 *
 * Loaded through shared_preload_libraries, _PG_init runs in the postmaster: it defines every
 * vector_vault.* GUC, reserves the prefix (so a typo in postgresql.conf is reported, not silently
 * kept as a placeholder), loads the master key and checks the keyring, and asks for shared
 * memory.
 *
 * Loaded any other way (CREATE EXTENSION, LOAD, a function call in a server started without
 * the preload) it refuses with a plain ERROR before it defines anything: Postgres ends the
 * session with FATAL when a PGC_POSTMASTER setting (master_key_file, keyring_dir, cache_size)
 * is defined after startup, and without the postmaster's master key and shared memory no vault
 * operation could work anyway. Nothing is hooked or defined before the refusal, so the ERROR is
 * safe: the library is not entered in Postgres' list of loaded libraries, and every later
 * attempt in the session refuses the same way (test/t/003_master_key_errors.pl, case k).
 */
#include "keys/claims.h"
#include "keys/keys.h"
#include "pg/guard.h"
#include "pg/shmem.h"
#include "auth/auth.h"
#include "index/hnsw.h"
#include "type/codec.h"
#include "vault/citus.h"
#include "vault/vault.h"

extern "C"
{
#include "miscadmin.h"
#include "utils/guc.h"

	PG_MODULE_MAGIC;

	PGDLLEXPORT void _PG_init(void);
}

/* Module entry point. */
void
_PG_init(void)
{
	using namespace vector_vault;
	/* Refuse before defining PGC_POSTMASTER settings, which would be FATAL after startup. */
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR, (errcode(pg::kSqlStateMasterKey),
						errmsg("vector_vault is not loaded through shared_preload_libraries"),
						errhint("Add vector_vault to shared_preload_libraries in postgresql.conf "
								"and restart the server.")));
	keys::DefineGucs();
	vault::DefineGucs();
	index::DefineGucs();
	index::DefineScanGucs();
	type::DefineGucs();
	auth::DefineGucs();
	vault::citus::DefineGucs();
	MarkGUCPrefixReserved("vector_vault");
	keys::RegisterXactCallbacks();
	keys::RegisterClaimCallbacks();
	vault::RegisterCallbacks();
	vault::RegisterRoleGuard();
	type::RegisterDdlHook();
	auth::Register();
	vault::citus::Register();
	if (process_shared_preload_libraries_in_progress)
	{
		auth::RegisterShmem();
		keys::RegisterKeySlot();
		keys::RegisterNonceBudget();
		pg::RegisterShmemHooks();
		keys::LoadAtPostmasterStart();
		keys::RegisterStartupReconcile();
	}
}
