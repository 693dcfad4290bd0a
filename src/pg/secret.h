/*
 * secret.h — memory for plaintext and keys that is zeroed on every path, errors included.
 *
 * Bridge code cannot use destructors to wipe secrets: Postgres errors longjmp past C++ frames.
 * What it has instead is the memory context: on an error the transaction's contexts are reset or
 * deleted, and a reset callback registered on a context runs before its memory is released. So
 * every buffer from AllocSecret / AllocLockedSecret is tied to CurrentMemoryContext at the time of
 * the call: released early with FreeSecret / FreeLockedSecret (zeroed then), or else zeroed (and a
 * locked mapping unmapped) when that context goes away, whichever comes first. A raise between
 * allocation and release therefore never leaves plaintext behind.
 *
 * Rules: free a buffer from AllocSecret only with FreeSecret (never pfree, never hand it to
 * Postgres to free, never repalloc); do not return it as a function result (return a copy).
 */
#pragma once

#include "pg/pg.h"

#include <cstddef>

namespace vector_vault::pg
{

/* len bytes in CurrentMemoryContext, zeroed when released or when the context goes away. */
void *AllocSecret(size_t len);

/* Zeroes and releases a buffer from AllocSecret now (nullptr: nothing). */
void FreeSecret(void *p);

/* len bytes of locked memory excluded from core dumps (core AllocateLockedPages), zeroed and
 * unmapped when released or when CurrentMemoryContext goes away; ERROR when it cannot map. */
void *AllocLockedSecret(size_t len);

/* Zeroes and unmaps memory from AllocLockedSecret now (nullptr: nothing). */
void FreeLockedSecret(void *p);

/* What the secret allocator did in this backend (vault._secret_wipes(), for tests). */
struct SecretStats
{
	int64 allocated;      /* buffers handed out */
	int64 freed;          /* released by FreeSecret / FreeLockedSecret */
	int64 wiped_on_reset; /* zeroed by their context going away (an error path, usually) */
};

/* This backend's counters. */
SecretStats GetSecretStats();

} // namespace vector_vault::pg
