/*
 * secure.h — handling of secret bytes in the core.
 *
 * Secrets (master key, data keys, API-key secrets, decrypted plaintext buffers) are zeroed with
 * a call the compiler may not elide. SecretBuffer is an RAII owner for core-only code (tests,
 * build threads); bridge code that must survive a Postgres longjmp uses plain arrays plus
 * SecureZero instead, because a destructor would not run.
 */
#pragma once
#include "core/pure.h"

#include <cstddef>
#include <cstdint>

namespace vector_vault
{

/* Overwrites len bytes at p with zeros in a way the optimiser keeps. */
void SecureZero(void *p, size_t len);

/* Compares two byte strings in time independent of where they differ. */
bool ConstantTimeEqual(const void *a, const void *b, size_t len);

/* Maps len bytes of anonymous memory that is locked (best effort) and excluded from core dumps. */
void *AllocateLockedPages(size_t len, bool *locked);

/* Zeroes, unlocks and unmaps memory from AllocateLockedPages. */
void FreeLockedPages(void *p, size_t len);

/* Excludes an existing page-aligned range from core dumps; false when the kernel refused. */
bool ExcludeFromCoreDump(void *p, size_t len);

/* A fixed-size secret that zeroes itself when it goes out of scope (core-only code). */
template <size_t N> struct SecretBuffer
{
	uint8_t bytes[N] = {0};

	~SecretBuffer()
	{
		SecureZero(bytes, N);
	}
};

} // namespace vector_vault
