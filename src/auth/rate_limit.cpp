/*
 * rate_limit.cpp — failed vault.login attempts, limited per key id and per client address.
 *
 * A small table in shared memory counts failures per subject ("key:<id>" or "addr:<address>")
 * in a fixed window. After kMaxFailures failures within kWindowSeconds the subject is refused
 * until the window ends — without checking the key at all, so guessing gets no answers. A
 * success clears the key's and the address's counters. The table is a fixed array with
 * least-recently-used replacement; an attacker rotating through many addresses can evict
 * entries, which bounds memory, not security (each key id still has its own counter).
 *
 * Unix-socket clients share the address "local"; counting them by address would let one local
 * process lock every local application out, so they are limited per key id (or role) only.
 * Key-management passwords are limited per role under the subject "role-<name>".
 */
#include "core/api_key.h"

#include <cstring>
#include <initializer_list>

#include "auth/auth.h"
#include "pg/guard.h"
#include "pg/shmem.h"

extern "C"
{
#include "libpq/libpq-be.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"
#include "common/ip.h"
}

namespace vector_vault::auth
{

namespace
{

constexpr int kEntries = 512;
constexpr int kMaxFailures = 5;
constexpr int kWindowSeconds = 60;

struct Entry
{
	uint64 subject; /* hash of the subject text; 0 = free */
	int failures;
	TimestampTz window_start;
	TimestampTz last;
};

struct Limiter
{
	LWLock *lock;
	Entry entries[kEntries];
};

Limiter *g_limiter = nullptr;
char g_client[64];

/* 64-bit hash of a subject. */
uint64
SubjectHash(const char *kind, const char *value)
{
	uint8_t d[kSha256Bytes];
	char buf[160];
	snprintf(buf, sizeof(buf), "%s:%s", kind, value);
	(void) Sha256(reinterpret_cast<const uint8_t *>(buf), strlen(buf), d);
	uint64 h = 0;
	for (int i = 0; i < 8; i++)
		h = (h << 8) | d[i];
	return h == 0 ? 1 : h;
}

/* False for Unix-socket clients, which all share the address "local". */
bool
CountsAddress()
{
	return strcmp(ClientAddress(), "local") != 0;
}

/* Finds a subject's entry; with create, takes a free or the least recently used one. */
Entry *
Find(uint64 subject, bool create, TimestampTz now)
{
	Entry *lru = nullptr;
	for (int i = 0; i < kEntries; i++)
	{
		Entry *e = &g_limiter->entries[i];
		if (e->subject == subject)
			return e;
		if (lru == nullptr || e->subject == 0 || (lru->subject != 0 && e->last < lru->last))
			lru = e;
	}
	if (!create)
		return nullptr;
	memset(lru, 0, sizeof(*lru));
	lru->subject = subject;
	lru->window_start = now;
	return lru;
}

/* Seconds a subject is still blocked (0 when allowed). */
long
BlockedFor(uint64 subject, TimestampTz now)
{
	Entry *e = Find(subject, false, now);
	if (e == nullptr || e->failures < kMaxFailures)
		return 0;
	TimestampTz until = TimestampTzPlusMilliseconds(e->window_start, kWindowSeconds * 1000L);
	if (now >= until)
		return 0;
	return static_cast<long>((until - now) / USECS_PER_SEC) + 1;
}

/* Creates the table. */
void
LimiterInit(bool)
{
	g_limiter = pg::InitLockedStruct<Limiter>("vector_vault login limiter");
}

/* Requests the LWLock and returns the size. */
Size
LimiterRequest(void)
{
	return pg::RequestLockedStruct("vector_vault login limiter", sizeof(Limiter));
}

} // namespace

namespace detail
{
/* Registers the limiter's shared memory. */
void
RegisterLimiterShmem()
{
	pg::AddShmemClient({LimiterRequest, LimiterInit});
}
} // namespace detail

/* The client address ("local" for Unix sockets). */
const char *
ClientAddress()
{
	if (MyProcPort == nullptr)
		return "local";
	if (MyProcPort->raddr.addr.ss_family == AF_UNIX)
		return "local";
	char host[NI_MAXHOST];
	host[0] = '\0';
	if (pg_getnameinfo_all(&MyProcPort->raddr.addr, MyProcPort->raddr.salen, host, sizeof(host),
						   nullptr, 0, NI_NUMERICHOST) != 0)
		return "unknown";
	strlcpy(g_client, host, sizeof(g_client));
	return g_client;
}

/* Refuses a blocked subject (key id, or a role's password) or address; password selects the
 * wording and the access-log action. */
static void
CheckAllowed(const char *key_id, bool password)
{
	if (g_limiter == nullptr)
		return;
	TimestampTz now = GetCurrentTimestamp();
	LWLockAcquire(g_limiter->lock, LW_SHARED);
	long by_key = key_id ? BlockedFor(SubjectHash("key", key_id), now) : 0;
	long by_addr = CountsAddress() ? BlockedFor(SubjectHash("addr", ClientAddress()), now) : 0;
	LWLockRelease(g_limiter->lock);
	if (by_key > 0 || by_addr > 0)
	{
		const char *what = by_key == 0 ? "from this address"
						   : password  ? "of this role's key-management password"
									   : "for this API key";
		if (password)
			AuditNow("key_password", nullptr, "blocked", what);
		else
			AuditLoginFailure(key_id, "blocked", what);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("too many failed %s %s", password ? "attempts" : "vault logins", what),
				 errhint("Try again in %ld seconds.", Max(by_key, by_addr))));
	}
}

/* Refuses blocked key ids and addresses. */
void
CheckLoginAllowed(const char *key_id)
{
	CheckAllowed(key_id, false);
}

/* Refuses blocked key-management password subjects and addresses. */
void
CheckPasswordAttemptAllowed(const char *role_subject)
{
	CheckAllowed(role_subject, true);
}

/* Counts a failure for the key and the address. */
void
NoteLoginFailure(const char *key_id)
{
	if (g_limiter == nullptr)
		return;
	TimestampTz now = GetCurrentTimestamp();
	LWLockAcquire(g_limiter->lock, LW_EXCLUSIVE);
	for (int k = 0; k < 2; k++)
	{
		if ((k == 0 && key_id == nullptr) || (k == 1 && !CountsAddress()))
			continue;
		uint64 subject = k == 0 ? SubjectHash("key", key_id) : SubjectHash("addr", ClientAddress());
		Entry *e = Find(subject, true, now);
		if (now >= TimestampTzPlusMilliseconds(e->window_start, kWindowSeconds * 1000L))
		{
			e->window_start = now;
			e->failures = 0;
		}
		e->failures++;
		e->last = now;
	}
	LWLockRelease(g_limiter->lock);
}

/* Clears the counters after a success. */
void
NoteLoginSuccess(const char *key_id)
{
	if (g_limiter == nullptr)
		return;
	TimestampTz now = GetCurrentTimestamp();
	LWLockAcquire(g_limiter->lock, LW_EXCLUSIVE);
	for (uint64 subject : {SubjectHash("key", key_id), SubjectHash("addr", ClientAddress())})
	{
		Entry *e = Find(subject, false, now);
		if (e != nullptr)
			memset(e, 0, sizeof(*e));
	}
	LWLockRelease(g_limiter->lock);
}

} // namespace vector_vault::auth
