/*
 * shmem.h — vector_vault's piece of shared memory.
 *
 * One small struct shared by all backends: the access epoch (bumped when vaults, grants, keys or
 * API keys change, so every session re-reads its cached rights and keys on its next statement)
 * and the LWLocks the keyring and the index cache use. Modules that need more shared memory
 * (the decrypted index cache) request it through the same hooks, see RegisterShmemHooks().
 */
#pragma once

#include "pg/pg.h"

#include <cstring>

extern "C"
{
#include "port/atomics.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
}

namespace vector_vault::pg
{

/* Shared state visible to every backend. */
struct SharedState
{
	pg_atomic_uint64 access_epoch; /* bumped after any committed access or key change */
	LWLock *keyring_lock;          /* serialises keyring writes and reconciliation */
};

/* Installs shmem_request/shmem_startup hooks; call from _PG_init while preloading. */
void RegisterShmemHooks();

/* The shared state, or nullptr when the library was not preloaded. */
SharedState *Shared();

/* The current access epoch (0 when not preloaded). */
uint64 AccessEpoch();

/* Increments the access epoch so every session drops its caches. */
void BumpAccessEpoch();

/* Module hooks: space a module needs and its initialisation; registered before RegisterShmemHooks.
 */
struct ShmemClient
{
	Size (*size)(void);
	void (*init)(bool found_any);
};

/* Adds a module's shared-memory needs (at most 8 clients). */
void AddShmemClient(ShmemClient client);

/* For a client's size(): requests the one LWLock of tranche `name` that a LockedStruct of `size`
 * bytes carries; returns the space to reserve. */
Size RequestLockedStruct(const char *name, Size size);

/* For a client's init(): the struct T named `name` in shared memory, zeroed and given the lock of
 * its tranche (field `lock`) when created now; *created (optional) says which. */
template <typename T>
T *
InitLockedStruct(const char *name, bool *created = nullptr)
{
	bool found;
	T *p = static_cast<T *>(ShmemInitStruct(name, sizeof(T), &found));
	if (!found)
	{
		memset(p, 0, sizeof(T));
		p->lock = &GetNamedLWLockTranche(name)[0].lock;
	}
	if (created != nullptr)
		*created = !found;
	return p;
}

} // namespace vector_vault::pg
