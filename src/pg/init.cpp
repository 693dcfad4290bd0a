/*
 * init.cpp — where vector_vault starts: the module magic and _PG_init.
 *
 * Loaded through shared_preload_libraries, _PG_init runs in the postmaster: it defines every
 * vector_vault.* GUC, reserves the prefix (so a typo in postgresql.conf is reported, not silently
 * kept as a placeholder), loads the master key and checks the keyring, and asks for shared
 * memory. Loaded any other way it still defines the GUCs, and every vault operation then
 * explains that the library must be preloaded.
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
#include "utils/guc.h"

	PG_MODULE_MAGIC;

	PGDLLEXPORT void _PG_init(void);
}

/* Module entry point. */
void
_PG_init(void)
{
	using namespace vector_vault;
	keys::DefineGucs();
	vault::DefineGucs();
	index::DefineGucs();
	type::DefineGucs();
	auth::DefineGucs();
	MarkGUCPrefixReserved("vector_vault");
	keys::RegisterXactCallbacks();
	keys::RegisterClaimCallbacks();
	vault::RegisterCallbacks();
	vault::RegisterRoleGuard();
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
