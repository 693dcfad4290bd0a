/* glue.cpp — registering the auth module with the server (called from _PG_init). */
#include "auth/auth.h"

namespace vector_vault::auth
{

namespace detail
{
void RegisterLimiterShmem();
void RegisterAuditShmem();
void RegisterAuditCallbacks();
} // namespace detail

/* Registers the rate limiter's and the access log queue's shared memory. */
void
RegisterShmem()
{
	detail::RegisterLimiterShmem();
	detail::RegisterAuditShmem();
}

} // namespace vector_vault::auth
