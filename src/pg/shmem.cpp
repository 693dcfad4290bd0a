/* shmem.cpp — requesting and initialising vector_vault's shared memory (see shmem.h). */
#include "pg/shmem.h"

extern "C"
{
#include "storage/ipc.h"
#include "storage/shmem.h"
}

namespace vector_vault::pg
{

namespace
{

SharedState *g_shared = nullptr;
shmem_request_hook_type g_prev_request = nullptr;
shmem_startup_hook_type g_prev_startup = nullptr;
ShmemClient g_clients[8];
int g_nclients = 0;
constexpr int kLWLocks = 1;

/* Reserves our shared memory and LWLocks (PG15: must happen in shmem_request_hook). */
void
RequestHook(void) noexcept
{
	if (g_prev_request)
		g_prev_request();
	RequestAddinShmemSpace(MAXALIGN(sizeof(SharedState)));
	RequestNamedLWLockTranche("vector_vault", kLWLocks);
	for (int i = 0; i < g_nclients; i++)
		RequestAddinShmemSpace(g_clients[i].size());
}

/* Creates or attaches our shared memory after each (re)initialisation of the segment. */
void
StartupHook(void) noexcept
{
	if (g_prev_startup)
		g_prev_startup();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	bool found = false;
	g_shared = static_cast<SharedState *>(
		ShmemInitStruct("vector_vault shared state", sizeof(SharedState), &found));
	if (!found)
	{
		pg_atomic_init_u64(&g_shared->access_epoch, 1);
		g_shared->keyring_lock = &GetNamedLWLockTranche("vector_vault")[0].lock;
	}
	for (int i = 0; i < g_nclients; i++)
		g_clients[i].init(found);
	LWLockRelease(AddinShmemInitLock);
}

} // namespace

/* Installs the shared-memory hooks. */
void
RegisterShmemHooks()
{
	g_prev_request = shmem_request_hook;
	shmem_request_hook = RequestHook;
	g_prev_startup = shmem_startup_hook;
	shmem_startup_hook = StartupHook;
}

/* Registers a module's shared-memory client. */
void
AddShmemClient(ShmemClient client)
{
	if (g_nclients == lengthof(g_clients))
		elog(ERROR, "too many vector_vault shared memory clients");
	g_clients[g_nclients++] = client;
}

/* Requests a locked struct's LWLock; returns its space. */
Size
RequestLockedStruct(const char *name, Size size)
{
	RequestNamedLWLockTranche(name, 1);
	return MAXALIGN(size);
}

/* The shared state or nullptr. */
SharedState *
Shared()
{
	return g_shared;
}

/* Reads the access epoch. */
uint64
AccessEpoch()
{
	return g_shared ? pg_atomic_read_u64(&g_shared->access_epoch) : 0;
}

/* Bumps the access epoch. */
void
BumpAccessEpoch()
{
	if (g_shared)
		pg_atomic_fetch_add_u64(&g_shared->access_epoch, 1);
}

} // namespace vector_vault::pg
