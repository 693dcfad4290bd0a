/* glue.cpp — registering the auth module with the server (called from _PG_init). */
#include "auth/auth.h"

namespace vector_vault::auth
{

namespace detail
{
void RegisterLimiterShmem();
void RegisterAuditShmem();
void RegisterAuditCallbacks();
void RegisterSessionGuardShmem();
} // namespace detail

/* Registers the rate limiter's, the access log queue's and the principal slots' shared memory. */
void
RegisterShmem()
{
	detail::RegisterLimiterShmem();
	detail::RegisterAuditShmem();
	detail::RegisterSessionGuardShmem();
}

} // namespace vector_vault::auth
