/* secure.cpp — zeroization, constant-time compare and locked, non-dumpable memory. */
#include "core/secure.h"

#include <openssl/crypto.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

namespace vector_vault
{

/* Overwrites len bytes at p with zeros (OPENSSL_cleanse cannot be optimised away). */
void
SecureZero(void *p, size_t len)
{
	/* explicit_bzero: glibc's vectorised memset behind a barrier the optimiser cannot drop
	 * (OPENSSL_cleanse writes byte by byte: 10x slower on the per-query vectors). */
	if (p != nullptr && len > 0)
		explicit_bzero(p, len);
}

/* Compares two byte strings in constant time. */
bool
ConstantTimeEqual(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

/* Excludes a page-aligned range from core dumps. */
bool
ExcludeFromCoreDump(void *p, size_t len)
{
#ifdef MADV_DONTDUMP
	return madvise(p, len, MADV_DONTDUMP) == 0;
#else
	(void) p;
	(void) len;
	return false;
#endif
}

/* Maps locked, non-dumpable anonymous memory; *locked tells whether mlock succeeded. */
void *
AllocateLockedPages(size_t len, bool *locked)
{
	void *p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return nullptr;
	ExcludeFromCoreDump(p, len);
	bool ok = mlock(p, len) == 0;
	if (locked != nullptr)
		*locked = ok;
	return p;
}

/* Zeroes and releases memory from AllocateLockedPages. */
void
FreeLockedPages(void *p, size_t len)
{
	if (p == nullptr)
		return;
	SecureZero(p, len);
	munlock(p, len);
	munmap(p, len);
}

} // namespace vector_vault
