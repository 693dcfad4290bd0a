/*
 * rate_limit.cpp — failed vault.login attempts and key-management passwords, limited per subject.
 *
 * A subject may fail kMaxFailures times in a fixed window of kWindowSeconds (the window opens at
 * its first failure); then it is refused until the window ends, without checking anything, so
 * guessing gets no answers. Three kinds of subject, each in its own fixed area of shared memory,
 * so that a flood of one kind cannot touch the counters of another:
 *
 *   password  a role's key-management password ("role-<name>"): guessable, so limited per role
 *             whichever client tries it (only a session of that role can try it at all).
 *   key       an existing API key id *and* the client trying it: a wrong secret for a key id
 *             that exists. Key ids are not secret (logs show them), so counting per key id alone
 *             would let anyone who can connect lock a real key out; counting per (key, client)
 *             lets one client lock out only itself. A per-key global ceiling would buy nothing:
 *             secrets have 160 random bits.
 *   client    the client alone: malformed keys, well-formed keys whose id does not exist (the
 *             ids of a flood of made-up keys all land on one counter), and wrong secrets that
 *             found the key area full. A blocked client is refused every vault.login.
 *
 * The client is the TCP address and the session's login role ("<address>/<role oid>"); Unix
 * sockets have no address, so there it is the login role alone ("local/<role oid>"). Two
 * applications that share both (behind one pooler, say) are one client to the server.
 *
 * Memory is fixed. An entry is live while its window is open (it is limiting, or it has failures
 * inside its window) and is never evicted: only expired or free slots are reused, so no flood can
 * reset a counter. When an area has no free slot, a new subject is handled by a rule per area:
 *   password  a role with no entry may not try its password until a slot expires (fail closed;
 *             filling the area takes 1,024 roles with key-management passwords, each failing
 *             every minute, and only blocks key management, never data access);
 *   key       the wrong secret is counted against the client instead (fail closed for that
 *             client only);
 *   client    the failure is counted in one shared overflow counter; while that is at the limit,
 *             malformed keys from clients with no entry are refused. A malformed key can never
 *             log in, so this locks out no real user; well-formed keys from such clients are
 *             still checked (what a flood gains then is guesses at a 160-bit secret).
 * The first overflow of each window is reported to the server log with the running total.
 *
 * A success clears the (key, client) counter and the client's counter, or the role's password
 * counter; never another subject's. (A client holding a valid key of its own can so reset its
 * own client counter: that counter bounds the volume of hopeless attempts, it guards no secret.)
 */
#include "core/api_key.h"

#include <cstring>

#include "auth/auth.h"
#include "pg/guard.h"
#include "pg/shmem.h"

extern "C"
{
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"
#include "common/ip.h"
}

namespace vector_vault::auth
{

namespace
{

constexpr int kMaxFailures = 5;
constexpr int kWindowSeconds = 60;
constexpr int kPasswordSlots = 1024;
constexpr int kKeySlots = 2048;
constexpr int kClientSlots = 1024;

struct Entry
{
	uint64 subject; /* hash of the subject text; 0 = free */
	int32 failures;
	TimestampTz window_start;
};

struct Limiter
{
	LWLock *lock;
	Entry passwords[kPasswordSlots];
	Entry keys[kKeySlots];
	Entry clients[kClientSlots];
	Entry overflow;           /* client failures that found the client area full, per window */
	uint64 uncounted;         /* all of them since the server started */
	TimestampTz full_noticed; /* when the server log was last told so */
};

/* One area of the table. */
struct Area
{
	Entry *entries;
	int n;
};

Limiter *g_limiter = nullptr;
char g_client[64];

/* 64-bit hash of a subject: its kind and one or two values. */
uint64
SubjectHash(const char *kind, const char *value, const char *value2 = "")
{
	uint8_t d[kSha256Bytes];
	char buf[256];
	snprintf(buf, sizeof(buf), "%s:%s:%s", kind, value, value2);
	(void) Sha256(reinterpret_cast<const uint8_t *>(buf), strlen(buf), d);
	uint64 h = 0;
	for (int i = 0; i < 8; i++)
		h = (h << 8) | d[i];
	return h == 0 ? 1 : h;
}

/* The client as the limiter counts it: address and login role. */
void
ClientIdentity(char *out, size_t len)
{
	snprintf(out, len, "%s/%u", ClientAddress(), GetSessionUserId());
}

/* When an entry's window ends. */
TimestampTz
WindowEnd(const Entry *e)
{
	return TimestampTzPlusMilliseconds(e->window_start, kWindowSeconds * 1000L);
}

/* True while an entry's window is open: it must not be reused. */
bool
Live(const Entry *e, TimestampTz now)
{
	return e->subject != 0 && now < WindowEnd(e);
}

/* A subject's live entry, or nullptr. */
Entry *
Find(Area a, uint64 subject, TimestampTz now)
{
	for (int i = 0; i < a.n; i++)
		if (a.entries[i].subject == subject && Live(&a.entries[i], now))
			return &a.entries[i];
	return nullptr;
}

/* A subject's live entry, or a free or expired slot made its own; nullptr when the area is full
 * of live entries (which are never evicted). */
Entry *
Take(Area a, uint64 subject, TimestampTz now)
{
	Entry *slot = nullptr;
	for (int i = 0; i < a.n; i++)
	{
		Entry *e = &a.entries[i];
		if (!Live(e, now))
		{
			if (slot == nullptr)
				slot = e;
		}
		else if (e->subject == subject)
			return e;
	}
	if (slot != nullptr)
	{
		slot->subject = subject;
		slot->failures = 0;
		slot->window_start = now;
	}
	return slot;
}

/* Seconds (rounded up) until a time, at least 1. */
long
SecondsUntil(TimestampTz until, TimestampTz now)
{
	return static_cast<long>((until - now) / USECS_PER_SEC) + 1;
}

/* Seconds an entry still blocks its subject (0 when allowed or absent). */
long
BlockedFor(const Entry *e, TimestampTz now)
{
	if (e == nullptr || e->failures < kMaxFailures || now >= WindowEnd(e))
		return 0;
	return SecondsUntil(WindowEnd(e), now);
}

/* Seconds until an area full of live entries frees a slot (0 when one is free now). */
long
FullFor(Area a, TimestampTz now)
{
	TimestampTz first = 0;
	for (int i = 0; i < a.n; i++)
	{
		if (!Live(&a.entries[i], now))
			return 0;
		TimestampTz end = WindowEnd(&a.entries[i]);
		if (first == 0 || end < first)
			first = end;
	}
	return SecondsUntil(first, now);
}

/* Frees a subject's entry (after a success). */
void
Clear(Area a, uint64 subject, TimestampTz now)
{
	Entry *e = Find(a, subject, now);
	if (e != nullptr)
		memset(e, 0, sizeof(*e));
}

Area
Passwords()
{
	return {g_limiter->passwords, kPasswordSlots};
}

Area
Keys()
{
	return {g_limiter->keys, kKeySlots};
}

Area
Clients()
{
	return {g_limiter->clients, kClientSlots};
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

/* Records and raises the refusal of a blocked login or password attempt. */
void
Refuse(const char *key_id, bool password, const char *what, long seconds)
{
	if (password)
		AuditNow("key_password", 0, nullptr, "blocked", what);
	else
		AuditLoginFailure(key_id, "blocked", what);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			 errmsg("too many failed %s %s", password ? "attempts" : "vault logins", what),
			 password ? errdetail("Wrong key-management passwords are counted per role.")
					  : errdetail("Failed logins are counted per key id and client (address and "
								  "role), malformed keys and unknown key ids per client."),
			 errhint("Try again in %ld seconds.", seconds)));
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

/* Refuses a blocked client, or a blocked (key id, client) pair. */
void
CheckLoginAllowed(const char *key_id)
{
	if (g_limiter == nullptr)
		return;
	char client[96];
	ClientIdentity(client, sizeof(client));
	uint64 client_subject = SubjectHash("client", client);
	uint64 key_subject = key_id ? SubjectHash("key", key_id, client) : 0;
	TimestampTz now = GetCurrentTimestamp();
	LWLockAcquire(g_limiter->lock, LW_SHARED);
	long by_key = key_id ? BlockedFor(Find(Keys(), key_subject, now), now) : 0;
	Entry *client_entry = Find(Clients(), client_subject, now);
	long by_client = BlockedFor(client_entry, now);
	/* A malformed key can never log in: refusing it locks out no real user. */
	long by_overflow =
		key_id == nullptr && client_entry == nullptr ? BlockedFor(&g_limiter->overflow, now) : 0;
	LWLockRelease(g_limiter->lock);
	if (by_key > 0)
		Refuse(key_id, false, "for this API key", by_key);
	if (by_client > 0)
		Refuse(key_id, false, "from this client", by_client);
	if (by_overflow > 0)
		Refuse(key_id, false, "with malformed keys while the limiter is full", by_overflow);
}

/* Refuses a role whose key-management password is blocked, or that has no entry while the
 * password area is full of live ones. */
void
CheckPasswordAttemptAllowed(const char *role_subject)
{
	if (g_limiter == nullptr)
		return;
	uint64 subject = SubjectHash("password", role_subject);
	TimestampTz now = GetCurrentTimestamp();
	LWLockAcquire(g_limiter->lock, LW_SHARED);
	Entry *e = Find(Passwords(), subject, now);
	long blocked = BlockedFor(e, now);
	long full = e == nullptr ? FullFor(Passwords(), now) : 0;
	LWLockRelease(g_limiter->lock);
	if (blocked > 0)
		Refuse(nullptr, true, "of this role's key-management password", blocked);
	if (full > 0)
		Refuse(nullptr, true, "of key-management passwords by too many roles at once", full);
}

/* Counts a failed login: against (key id, client) when the key exists, else (or when the key
 * area is full) against the client; uncounted when the client area is full too. */
void
NoteLoginFailure(const char *key_id, bool key_exists)
{
	if (g_limiter == nullptr)
		return;
	char client[96];
	ClientIdentity(client, sizeof(client));
	uint64 client_subject = SubjectHash("client", client);
	uint64 key_subject = key_id && key_exists ? SubjectHash("key", key_id, client) : 0;
	TimestampTz now = GetCurrentTimestamp();
	bool notice = false;
	uint64 uncounted = 0;
	LWLockAcquire(g_limiter->lock, LW_EXCLUSIVE);
	Entry *e = key_subject != 0 ? Take(Keys(), key_subject, now) : nullptr;
	if (e == nullptr)
		e = Take(Clients(), client_subject, now);
	if (e == nullptr)
	{
		e = &g_limiter->overflow;
		if (!Live(e, now))
		{
			e->subject = 1;
			e->failures = 0;
			e->window_start = now;
		}
		uncounted = ++g_limiter->uncounted;
		notice =
			g_limiter->full_noticed == 0 ||
			now >= TimestampTzPlusMilliseconds(g_limiter->full_noticed, kWindowSeconds * 1000L);
		if (notice)
			g_limiter->full_noticed = now;
	}
	e->failures++;
	LWLockRelease(g_limiter->lock);
	if (notice)
		ereport(LOG, (errmsg("vector_vault login limiter is full: failed logins of new clients "
							 "are counted together"),
					  errdetail("%llu failed logins could not be counted per client since the "
								"server started.",
								static_cast<unsigned long long>(uncounted)),
					  errhint("More than %d clients failed to log in within %d seconds; look "
							  "for a flood of failed logins in the access log.",
							  kClientSlots, kWindowSeconds)));
}

/* Clears the (key id, client) and client counters after a successful login. */
void
NoteLoginSuccess(const char *key_id)
{
	if (g_limiter == nullptr)
		return;
	char client[96];
	ClientIdentity(client, sizeof(client));
	uint64 client_subject = SubjectHash("client", client);
	uint64 key_subject = SubjectHash("key", key_id, client);
	TimestampTz now = GetCurrentTimestamp();
	LWLockAcquire(g_limiter->lock, LW_EXCLUSIVE);
	Clear(Keys(), key_subject, now);
	Clear(Clients(), client_subject, now);
	LWLockRelease(g_limiter->lock);
}

/* Counts a wrong key-management password against the role (nothing when the password area
 * is full: the role's next attempt is then refused by CheckPasswordAttemptAllowed). */
void
NotePasswordFailure(const char *role_subject)
{
	if (g_limiter == nullptr)
		return;
	uint64 subject = SubjectHash("password", role_subject);
	TimestampTz now = GetCurrentTimestamp();
	LWLockAcquire(g_limiter->lock, LW_EXCLUSIVE);
	Entry *e = Take(Passwords(), subject, now);
	if (e != nullptr)
		e->failures++;
	LWLockRelease(g_limiter->lock);
}

/* Clears a role's password counter after a right password. */
void
NotePasswordSuccess(const char *role_subject)
{
	if (g_limiter == nullptr)
		return;
	uint64 subject = SubjectHash("password", role_subject);
	TimestampTz now = GetCurrentTimestamp();
	LWLockAcquire(g_limiter->lock, LW_EXCLUSIVE);
	Clear(Passwords(), subject, now);
	LWLockRelease(g_limiter->lock);
}

} // namespace vector_vault::auth
