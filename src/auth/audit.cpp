/*
 * audit.cpp — the access log: every login, failed login, denied access, key change, grant
 * change, vault creation and drop, with time, role, key id (never the secret), vault, action,
 * result and client address.
 *
 * Two paths, by what an event may cost when it cannot be recorded:
 *
 * - State changes (keys, key passwords, grants, vaults, key versions) are inserted into
 *   vault._access_log by the session itself, as the extension owner, in the transaction that
 *   makes the change: the change and its record commit together or not at all, and no queue,
 *   worker or overload stands between them.
 *
 * - Events that must outlive their transaction (a denial is followed by an ERROR that rolls it
 *   back; a login acts in transactions that may roll back) go through a fixed queue in shared
 *   memory (4,096 slots) and are written by a background worker of the same database in its own
 *   transactions. One worker per database is started on demand (RegisterDynamicBackgroundWorker)
 *   and exits once the queue has been empty for half a second (a connected worker would block
 *   DROP DATABASE); a start that fails (no free max_worker_processes slot) is retried with the
 *   next event instead of being taken for a running worker.
 *
 * Every queued event is also written to the server log at once (a successful login once it is
 * queued; a refused one with result "refused"). Overload degrades in a fixed order. Failures and
 * denials (failed and blocked logins, wrong key-management passwords, refused accesses) may use
 * only the first 3,072 slots. Once more than 64 events wait, a failure identical to one still
 * waiting (same database, role, key id, client, vault, action, result and detail) is merged into
 * it: one row with an attempt count and the time of the last one. A failure that finds neither
 * room nor a twin is dropped from the table and counted, and the server log gets a WARNING when
 * dropping starts (then at most once a minute). Successful events (logins, logouts, master-key
 * rotations) may use every slot; a successful login that finds the queue full waits up to a
 * second for a running writer and is then refused (53000) rather than left unrecorded: the key's
 * login is undone with its transaction. A logout or master-key rotation, which cannot be undone,
 * is counted as dropped instead. vault.access_log_stats() shows, per action and result, what was
 * queued, merged, dropped, refused and is still waiting, since the server started.
 *
 * The worker ignores what a database owner (ALTER DATABASE ... SET) or anyone able to attach role
 * settings could use to stop or redirect it: it pins the settings below with PGC_S_OVERRIDE, runs
 * as the bootstrap superuser whatever "role" says, connects even when the database refuses new
 * connections, and puts a batch it could not write back into the queue to retry it later.
 *
 * On a standby, which cannot write tables, every event goes to the server log only. Events still
 * waiting in the queue when the server stops or crashes never reach the table (they are in the
 * server log). Owners read their vaults' entries (and their API keys' logins) through the
 * vault.access_log view.
 */
#include <cstring>

#include "auth/auth.h"
#include "pg/guard.h"
#include "pg/privileged.h"
#include "pg/shmem.h"

extern "C"
{
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "tcop/dest.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

	PGDLLEXPORT void vault_audit_worker_main(Datum arg);
}

namespace vector_vault::auth
{

namespace
{

constexpr int kCapacity = 4096;     /* queue slots */
constexpr int kFailureSlots = 3072; /* slots failures and denials may use; the rest: successes */
constexpr int kCoalesceAbove = 64;  /* waiting events past which identical failures merge */
constexpr int kRecentSlots = 512;   /* index of waiting failures, for merging (a power of 2) */
constexpr int kKinds = 32;          /* (action, result) pairs counted; the last is "other" */
constexpr int kMaxWorkers = 16;
constexpr int kBatch = 256;
constexpr int kWarnEveryMs = 60000;  /* at most one "dropping" WARNING a minute */
constexpr int kStartGraceMs = 10000; /* a registered writer that has not started yet */
constexpr int kLoginWaitSteps = 20;  /* a successful login waits up to 20 x 50 ms for room */
constexpr long kLoginWaitStepUs = 50000;

/* One queued event. */
struct Event
{
	bool used;
	Oid dbid;
	TimestampTz at;
	TimestampTz last_at; /* of the last merged attempt (attempts > 1) */
	int32 attempts;      /* identical events this one stands for */
	uint32 hash;         /* of the fields that make two failures identical */
	char role[NAMEDATALEN];
	char key_id[17];
	int64 vault_id; /* 0: none */
	char vault[NAMEDATALEN];
	char action[32];
	char result[16];
	char client[64];
	char detail[160];
};

/* The per-database writer a database has (or is starting). */
struct Writer
{
	Oid dbid;
	int pid; /* 0 while starting */
	TimestampTz registered;
};

/* Counters of one (action, result) pair since the server started. */
struct KindStats
{
	char action[32];
	char result[16];
	uint64 queued;    /* took a slot of their own */
	uint64 coalesced; /* merged into a waiting identical event */
	uint64 dropped;   /* not recorded in the table (failures: still in the server log) */
	uint64 refused;   /* successful logins refused because they could not be recorded */
	TimestampTz last_dropped;
};

struct Queue
{
	LWLock *lock;
	int count;
	int next_free;              /* where the search for a free slot starts */
	TimestampTz drop_warned;    /* last "dropping" WARNING */
	TimestampTz start_warned;   /* last "could not start the writer" WARNING */
	TimestampTz refuse_warned;  /* last "refusing logins" WARNING */
	int16 recent[kRecentSlots]; /* hash -> slot + 1 of a waiting failure (0: none) */
	Writer writers[kMaxWorkers];
	KindStats kinds[kKinds];
	Event events[kCapacity];
};

Queue *g_queue = nullptr;

/* What became of an event offered to the queue. */
enum class Outcome
{
	kQueued,
	kCoalesced,
	kDropped,
};

/* True for events that must not be lost: successes (logins, logouts, changes). */
bool
MustKeep(const Event &e)
{
	return strcmp(e.result, "ok") == 0;
}

/* Fills an event for the current session. */
void
Fill(Event *e, const char *action, uint64_t vault_id, const char *vault, const char *result,
	 const char *detail)
{
	memset(e, 0, sizeof(*e));
	e->used = true;
	e->dbid = MyDatabaseId;
	e->at = GetCurrentTimestamp();
	e->attempts = 1;
	const char *role = OidIsValid(GetUserId()) ? GetUserNameFromId(GetUserId(), true) : nullptr;
	strlcpy(e->role, role ? role : "", sizeof(e->role));
	strlcpy(e->key_id, CurrentKeyIdOrEmpty(), sizeof(e->key_id));
	strlcpy(e->vault, vault ? vault : "", sizeof(e->vault));
	/* Entries are tied to the vault's id: a later vault of the same name does not inherit them. */
	e->vault_id = static_cast<int64>(vault_id);
	strlcpy(e->action, action, sizeof(e->action));
	strlcpy(e->result, result, sizeof(e->result));
	strlcpy(e->client, ClientAddress(), sizeof(e->client));
	strlcpy(e->detail, detail ? detail : "", sizeof(e->detail));
}

/* Hash of the fields that make two failures identical (everything but the times). */
uint32
IdentityHash(const Event &e)
{
	uint32 h = hash_bytes_uint32(e.dbid);
	const char *parts[] = {e.role, e.key_id, e.vault, e.action, e.result, e.client, e.detail};
	for (const char *s : parts)
		h = hash_combine(
			h, hash_bytes(reinterpret_cast<const unsigned char *>(s), static_cast<int>(strlen(s))));
	return hash_combine(h, hash_bytes_uint32(static_cast<uint32>(e.vault_id)));
}

/* True when two events are the same failure. */
bool
SameFailure(const Event &a, const Event &b)
{
	return a.dbid == b.dbid && a.vault_id == b.vault_id && strcmp(a.role, b.role) == 0 &&
		   strcmp(a.key_id, b.key_id) == 0 && strcmp(a.vault, b.vault) == 0 &&
		   strcmp(a.action, b.action) == 0 && strcmp(a.result, b.result) == 0 &&
		   strcmp(a.client, b.client) == 0 && strcmp(a.detail, b.detail) == 0;
}

/* The counters of an event's (action, result); the queue lock is held. */
KindStats *
KindOf(const Event &e)
{
	for (int i = 0; i < kKinds - 1; i++)
	{
		KindStats &k = g_queue->kinds[i];
		if (k.action[0] == '\0')
		{
			strlcpy(k.action, e.action, sizeof(k.action));
			strlcpy(k.result, e.result, sizeof(k.result));
			return &k;
		}
		if (strcmp(k.action, e.action) == 0 && strcmp(k.result, e.result) == 0)
			return &k;
	}
	KindStats &other = g_queue->kinds[kKinds - 1];
	strlcpy(other.action, "other", sizeof(other.action));
	strlcpy(other.result, "other", sizeof(other.result));
	return &other;
}

/* True when the writer's process is alive (or was registered moments ago). */
bool
WriterAlive(const Writer &w)
{
	if (w.pid == 0)
		return GetCurrentTimestamp() < TimestampTzPlusMilliseconds(w.registered, kStartGraceMs);
	return BackendPidGetProc(w.pid) != nullptr;
}

/* Emits a WARNING to the server log only (the client, maybe the one flooding, is not told). */
void
ServerWarning(const char *msg, const char *detail, const char *hint)
{
	CommandDest saved = whereToSendOutput;
	if (whereToSendOutput == DestRemote)
		whereToSendOutput = DestNone;
	ereport(WARNING, (errmsg_internal("%s", msg), detail ? errdetail_internal("%s", detail) : 0,
					  hint ? errhint("%s", hint) : 0));
	whereToSendOutput = saved;
}

/* Starts this database's writer; false when no background worker slot was free. */
bool
StartWriter(Oid dbid)
{
	BackgroundWorker worker;
	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(worker.bgw_library_name, "vector_vault", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "vault_audit_worker_main", BGW_MAXLEN);
	snprintf(worker.bgw_name, BGW_MAXLEN, "vector_vault access log writer");
	strlcpy(worker.bgw_type, "vector_vault access log writer", BGW_MAXLEN);
	worker.bgw_main_arg = ObjectIdGetDatum(dbid);
	worker.bgw_notify_pid = 0;
	return RegisterDynamicBackgroundWorker(&worker, nullptr);
}

/* Takes a free slot for an event; -1 when the queue is full. The lock is held. */
int
TakeSlot()
{
	if (g_queue->count >= kCapacity)
		return -1;
	for (int n = 0; n < kCapacity; n++)
	{
		int i = (g_queue->next_free + n) % kCapacity;
		if (!g_queue->events[i].used)
		{
			g_queue->next_free = (i + 1) % kCapacity;
			return i;
		}
	}
	return -1;
}

/* Offers one event to the queue (the lock is held); counts what became of it (a drop only when
 * count_drop: a login that may still wait for room is not dropped yet). */
Outcome
OfferLocked(const Event &in, TimestampTz now, bool count_drop)
{
	KindStats *k = KindOf(in);
	bool keep = MustKeep(in);
	uint32 hash = IdentityHash(in);
	int16 *recent = &g_queue->recent[hash & (kRecentSlots - 1)];
	if (!keep && g_queue->count >= kCoalesceAbove)
	{
		/* The index first, then every waiting event (the index may have been overwritten). */
		Event *twin = nullptr;
		if (*recent > 0)
		{
			Event &e = g_queue->events[*recent - 1];
			if (e.used && e.hash == hash && SameFailure(e, in))
				twin = &e;
		}
		for (int i = 0; i < kCapacity && twin == nullptr; i++)
		{
			Event &e = g_queue->events[i];
			if (e.used && e.hash == hash && SameFailure(e, in))
				twin = &e;
		}
		if (twin != nullptr && twin->attempts < PG_INT32_MAX)
		{
			twin->attempts++;
			twin->last_at = in.at;
			*recent = static_cast<int16>(twin - g_queue->events + 1);
			k->coalesced++;
			return Outcome::kCoalesced;
		}
	}
	int slot = (keep || g_queue->count < kFailureSlots) ? TakeSlot() : -1;
	if (slot < 0)
	{
		if (count_drop)
		{
			k->dropped++;
			k->last_dropped = now;
		}
		return Outcome::kDropped;
	}
	Event &e = g_queue->events[slot];
	e = in;
	e.hash = hash;
	g_queue->count++;
	k->queued++;
	if (!keep)
		*recent = static_cast<int16>(slot + 1);
	return Outcome::kQueued;
}

/* Makes sure this database's writer runs: wakes it, or starts it (retried with every event
 * while no background worker slot is free). False when it could not be started. */
bool
EnsureWriter()
{
	bool start = false;
	int wake_pid = 0;
	LWLockAcquire(g_queue->lock, LW_EXCLUSIVE);
	Writer *w = nullptr;
	for (Writer &x : g_queue->writers)
		if (x.dbid == MyDatabaseId)
			w = &x;
	if (w != nullptr && !WriterAlive(*w))
	{
		w->dbid = InvalidOid;
		w = nullptr;
	}
	if (w == nullptr)
	{
		for (Writer &x : g_queue->writers)
		{
			if (!OidIsValid(x.dbid))
			{
				x.dbid = MyDatabaseId;
				x.pid = 0;
				x.registered = GetCurrentTimestamp();
				w = &x;
				start = true;
				break;
			}
		}
	}
	else
		wake_pid = w->pid;
	LWLockRelease(g_queue->lock);
	bool running = true;
	if (start && !StartWriter(MyDatabaseId))
	{
		running = false;
		/* Not started: forget the registration so that the next event tries again, instead of
		 * taking a writer that never ran for a live one. */
		TimestampTz now = GetCurrentTimestamp();
		bool warn = false;
		LWLockAcquire(g_queue->lock, LW_EXCLUSIVE);
		for (Writer &x : g_queue->writers)
			if (x.dbid == MyDatabaseId && x.pid == 0)
				x.dbid = InvalidOid;
		if (now >= TimestampTzPlusMilliseconds(g_queue->start_warned, kWarnEveryMs))
		{
			g_queue->start_warned = now;
			warn = true;
		}
		int waiting = g_queue->count;
		LWLockRelease(g_queue->lock);
		if (warn)
			ServerWarning(psprintf("vector_vault: could not start the access log writer; %d events "
								   "wait in the queue",
								   waiting),
						  "Every background worker slot (max_worker_processes) is taken. The start "
						  "is retried with every new event; successful logins are refused once "
						  "the queue is full.",
						  "Raise max_worker_processes above what parallel queries and other "
						  "workers use (max_parallel_workers).");
	}
	if (wake_pid != 0)
	{
		PGPROC *proc = BackendPidGetProc(wake_pid);
		if (proc != nullptr)
			SetLatch(&proc->procLatch);
	}
	return running;
}

/* Writes an event to the server log. */
void
LogEvent(const Event &e)
{
	ereport(LOG,
			(errmsg("vector_vault audit: action=%s result=%s role=%s key=%s vault=%s vault_id=%lld "
					"client=%s%s%s",
					e.action, e.result, e.role, e.key_id[0] ? e.key_id : "-",
					e.vault[0] ? e.vault : "-", static_cast<long long>(e.vault_id), e.client,
					e.detail[0] ? " detail=" : "", e.detail)));
}

/* Offers an event to the queue and starts or wakes the writer (*running: whether one runs); a
 * counted drop is reported once a minute in the server log. */
Outcome
Enqueue(const Event &e, bool count_drop, bool *running)
{
	TimestampTz now = GetCurrentTimestamp();
	LWLockAcquire(g_queue->lock, LW_EXCLUSIVE);
	Outcome o = OfferLocked(e, now, count_drop);
	bool warn = false;
	uint64 dropped = 0;
	if (o == Outcome::kDropped && count_drop &&
		now >= TimestampTzPlusMilliseconds(g_queue->drop_warned, kWarnEveryMs))
	{
		g_queue->drop_warned = now;
		warn = true;
		for (const KindStats &k : g_queue->kinds)
			dropped += k.dropped;
	}
	LWLockRelease(g_queue->lock);
	if (warn)
		ServerWarning(
			psprintf("vector_vault: the access log queue is full; events are being dropped from "
					 "vault._access_log (%llu since the server started)",
					 static_cast<unsigned long long>(dropped)),
			"Failed logins and denials that are dropped are still in the server log; successful "
			"logins are refused while they cannot be queued.",
			"See vault.access_log_stats(); check that the access log writer can start "
			"(max_worker_processes) and what floods the log.");
	*running = EnsureWriter();
	return o;
}

/* Creates the queue. */
void
QueueInit(bool)
{
	g_queue = pg::InitLockedStruct<Queue>("vector_vault access log");
}

/* Requests the queue's LWLock and returns its size. */
Size
QueueRequest(void)
{
	return pg::RequestLockedStruct("vector_vault access log", sizeof(Queue));
}

/* Takes up to kBatch events of a database out of the queue. */
int
TakeEvents(Oid dbid, Event *out)
{
	int n = 0;
	LWLockAcquire(g_queue->lock, LW_EXCLUSIVE);
	for (int i = 0; i < kCapacity && n < kBatch; i++)
	{
		Event &e = g_queue->events[i];
		if (e.used && e.dbid == dbid)
		{
			out[n++] = e;
			e.used = false;
			g_queue->count--;
		}
	}
	LWLockRelease(g_queue->lock);
	return n;
}

/* Puts a batch the writer could not write back into the queue; what finds no room goes to the
 * server log and is counted as dropped. */
void
Requeue(const Event *events, int n)
{
	TimestampTz now = GetCurrentTimestamp();
	bool lost[kBatch];
	LWLockAcquire(g_queue->lock, LW_EXCLUSIVE);
	for (int i = 0; i < n; i++)
	{
		int slot = TakeSlot();
		lost[i] = slot < 0;
		if (lost[i])
		{
			KindStats *k = KindOf(events[i]);
			k->dropped++;
			k->last_dropped = now;
			continue;
		}
		g_queue->events[slot] = events[i];
		g_queue->count++;
	}
	LWLockRelease(g_queue->lock);
	for (int i = 0; i < n; i++)
		if (lost[i])
			LogEvent(events[i]);
}

/* The INSERT of one event into vault._access_log. */
const char kInsertSql[] =
	"INSERT INTO vault._access_log (at, role, key_id, vault, action, result, client_addr, detail, "
	"vault_id, attempts, last_at) VALUES ($1, NULLIF($2, ''), NULLIF($3, ''), NULLIF($4, ''), $5, "
	"$6, $7, NULLIF($8, ''), NULLIF($9, 0), $10, $11)";

/* Inserts one event with SPI (connected); raises on failure. */
void
InsertEvent(const Event &e)
{
	Oid types[11] = {TIMESTAMPTZOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,       TEXTOID,
					 TEXTOID,        TEXTOID, INT8OID, INT4OID, TIMESTAMPTZOID};
	Datum values[11] = {
		TimestampTzGetDatum(e.at),     CStringGetTextDatum(e.role),   CStringGetTextDatum(e.key_id),
		CStringGetTextDatum(e.vault),  CStringGetTextDatum(e.action), CStringGetTextDatum(e.result),
		CStringGetTextDatum(e.client), CStringGetTextDatum(e.detail), Int64GetDatum(e.vault_id),
		Int32GetDatum(e.attempts),     TimestampTzGetDatum(e.last_at)};
	char nulls[12] = "          n";
	if (e.attempts > 1)
		nulls[10] = ' ';
	if (SPI_execute_with_args(kInsertSql, 11, types, values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not write the vector_vault access log");
}

/* Inserts events into vault._access_log (or logs them when the extension is not here), in one
 * transaction of the writer, as the bootstrap superuser. */
void
WriteEvents(const Event *events, int n)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	/* Whatever "role" a database setting named, write as the bootstrap superuser. */
	Oid saved_user;
	int saved_context;
	GetUserIdAndSecContext(&saved_user, &saved_context);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID, saved_context | SECURITY_LOCAL_USERID_CHANGE);
	/* pinned search_path, security-restricted, SPI connected (as every internal statement) */
	pg::PrivilegedScope scope;
	pg::EnterCallerScope(&scope);
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "writing vector_vault access log");
	bool have = SPI_execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname "
							"OPERATOR(pg_catalog.=) 'vector_vault'",
							true, 1) == SPI_OK_SELECT &&
				SPI_processed == 1;
	for (int i = 0; i < n; i++)
	{
		if (have)
			InsertEvent(events[i]);
		else
			LogEvent(events[i]);
	}
	PopActiveSnapshot();
	pg::LeavePrivileged(&scope);
	SetUserIdAndSecContext(saved_user, saved_context);
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, nullptr);
}

/* WriteEvents that reports a failure (and rolls back) instead of ending the writer. */
bool
TryWriteEvents(const Event *events, int n)
{
	MemoryContext mcxt = CurrentMemoryContext;
	volatile bool ok = true;
	PG_TRY();
	{
		WriteEvents(events, n);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(mcxt);
		ErrorData *edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		ereport(WARNING, (errmsg("vector_vault: could not write %d access log events: %s; they "
								 "stay queued and are retried",
								 n, edata->message)));
		FreeErrorData(edata);
		pgstat_report_activity(STATE_IDLE, nullptr);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

} // namespace

namespace detail
{
/* Registers the queue's shared memory. */
void
RegisterAuditShmem()
{
	pg::AddShmemClient({QueueRequest, QueueInit});
}

/* Nothing waits for commit any more (state changes are written in their transaction); kept so
 * the auth module's registration stays in one place. */
void
RegisterAuditCallbacks()
{
}
} // namespace detail

/* Records a filled event that must outlive this transaction: the server log at once, then the
 * queue. A successful login that cannot be queued raises 53000 (its transaction, and with it the
 * login, rolls back). */
static void
RecordNow(const Event &e)
{
	bool login_ok = MustKeep(e) && strcmp(e.action, "login") == 0;
	/* A standby writes no tables: its access log is the server log. */
	if (!login_ok || g_queue == nullptr || RecoveryInProgress())
		LogEvent(e);
	if (g_queue == nullptr || RecoveryInProgress())
		return;
	bool running = false;
	if (!login_ok)
	{
		(void) Enqueue(e, true, &running);
		return;
	}
	/* A successful login waits up to a second for room while a writer runs, then is refused. */
	for (int wait = 0; wait < kLoginWaitSteps; wait++)
	{
		if (Enqueue(e, false, &running) != Outcome::kDropped)
		{
			LogEvent(e);
			return;
		}
		if (!running)
			break;
		pg_usleep(kLoginWaitStepUs);
		CHECK_FOR_INTERRUPTS();
	}
	TimestampTz now = GetCurrentTimestamp();
	LWLockAcquire(g_queue->lock, LW_EXCLUSIVE);
	KindOf(e)->refused++;
	bool warn = now >= TimestampTzPlusMilliseconds(g_queue->refuse_warned, kWarnEveryMs);
	if (warn)
		g_queue->refuse_warned = now;
	LWLockRelease(g_queue->lock);
	Event refused = e;
	strlcpy(refused.result, "refused", sizeof(refused.result));
	LogEvent(refused);
	if (warn)
		ServerWarning("vector_vault: the access log queue is full; successful vault logins are "
					  "being refused",
					  nullptr,
					  "See vault.access_log_stats(); check that the access log writer can start "
					  "(max_worker_processes).");
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
			 errmsg("vault login refused: the access log cannot record it"),
			 errdetail("The access log queue is full (%d events wait for the writer).", kCapacity),
			 errhint("Try again later; the server log says why the access log writer falls "
					 "behind (vault.access_log_stats() counts the refusals).")));
}

/* Records an event now; it survives this transaction's rollback. */
void
AuditNow(const char *action, uint64_t vault_id, const char *vault, const char *result,
		 const char *detail)
{
	Event e;
	Fill(&e, action, vault_id, vault, result, detail);
	RecordNow(e);
}

/* Inserts a state change's record into vault._access_log in the current transaction, as the
 * extension owner: it commits with the change or not at all. */
static void
RecordInTransaction(const Event &e)
{
	if (RecoveryInProgress())
	{
		LogEvent(e);
		return;
	}
	pg::PrivilegedScope scope;
	pg::EnterPrivileged(&scope);
	InsertEvent(e);
	pg::LeavePrivileged(&scope);
}

/* Records a state change in the current transaction (it commits with it). */
void
AuditAtCommit(const char *action, uint64_t vault_id, const char *vault, const char *result,
			  const char *detail)
{
	Event e;
	Fill(&e, action, vault_id, vault, result, detail);
	RecordInTransaction(e);
}

/* Records a change to a vault, by id, in the current transaction. */
void
AuditVaultChangeAtCommit(const char *action, uint64_t vault_id, const char *vault,
						 const char *detail)
{
	Event e;
	Fill(&e, action, vault_id, vault, "ok", detail);
	RecordInTransaction(e);
}

/* Records a failed login under the key id it tried. */
void
AuditLoginFailure(const char *attempted_key_id, const char *result, const char *detail)
{
	Event e;
	Fill(&e, "login", 0, nullptr, result, detail);
	strlcpy(e.key_id, attempted_key_id ? attempted_key_id : "", sizeof(e.key_id));
	RecordNow(e);
}

} // namespace vector_vault::auth

using namespace vector_vault::auth;

/* vault.access_log_stats(): per (action, result), what the queue took, merged, dropped, refused
 * and still holds, since the server started (all databases). */
VV_FUNCTION(vault_access_log_stats)
{
	ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
	InitMaterializedSRF(fcinfo, 0);
	if (g_queue == nullptr)
		return (Datum) 0;
	KindStats kinds[kKinds];
	int64 waiting[kKinds];
	memset(waiting, 0, sizeof(waiting));
	LWLockAcquire(g_queue->lock, LW_SHARED);
	memcpy(kinds, g_queue->kinds, sizeof(kinds));
	for (const Event &e : g_queue->events)
	{
		if (!e.used)
			continue;
		for (int i = 0; i < kKinds; i++)
			if (strcmp(kinds[i].action, e.action) == 0 && strcmp(kinds[i].result, e.result) == 0)
			{
				waiting[i]++;
				break;
			}
	}
	LWLockRelease(g_queue->lock);
	for (int i = 0; i < kKinds; i++)
	{
		const KindStats &k = kinds[i];
		if (k.action[0] == '\0')
			continue;
		Datum values[8] = {CStringGetTextDatum(k.action),
						   CStringGetTextDatum(k.result),
						   Int64GetDatum(static_cast<int64>(k.queued)),
						   Int64GetDatum(static_cast<int64>(k.coalesced)),
						   Int64GetDatum(static_cast<int64>(k.dropped)),
						   Int64GetDatum(static_cast<int64>(k.refused)),
						   Int64GetDatum(waiting[i]),
						   TimestampTzGetDatum(k.last_dropped)};
		bool nulls[8] = {false, false, false, false, false, false, false, k.last_dropped == 0};
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* Entry point of a database's access log writer. */
void
vault_audit_worker_main(Datum arg)
{
	Oid dbid = DatumGetObjectId(arg);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	/* Events of sessions already connected are written even when the database refuses new
	 * connections (ALTER DATABASE ... ALLOW_CONNECTIONS false). */
	BackgroundWorkerInitializeConnectionByOid(dbid, InvalidOid, BGWORKER_BYPASS_ALLOWCONN);
	/* Settings a database owner or a role's settings can attach (ALTER DATABASE/ROLE ... SET)
	 * must neither redirect our statements (search_path, role) nor stop the writer (read-only
	 * defaults, timeouts, serializable isolation, replication role): they are overridden here.
	 * transaction_read_only starts every transaction from default_transaction_read_only. Our
	 * statements are schema-qualified besides. */
	static const char *const kPinned[][2] = {
		{"search_path", "pg_catalog, pg_temp"},
		{"role", "none"},
		{"default_transaction_read_only", "off"},
		{"default_transaction_isolation", "read committed"},
		{"default_transaction_deferrable", "off"},
		{"statement_timeout", "0"},
		{"lock_timeout", "0"},
		{"idle_in_transaction_session_timeout", "0"},
		{"synchronous_commit", "on"},
		{"session_replication_role", "origin"},
		{"row_security", "on"},
		{"exit_on_error", "off"},
	};
	for (const auto &setting : kPinned)
		SetConfigOption(setting[0], setting[1], PGC_SUSET, PGC_S_OVERRIDE);
	LWLockAcquire(g_queue->lock, LW_EXCLUSIVE);
	for (Writer &w : g_queue->writers)
		if (w.dbid == dbid)
			w.pid = MyProcPid;
	LWLockRelease(g_queue->lock);
	Event *batch = static_cast<Event *>(palloc(sizeof(Event) * kBatch));
	int idle = 0;
	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		int n = TakeEvents(dbid, batch);
		if (n > 0)
		{
			idle = 0;
			if (TryWriteEvents(batch, n))
				continue;
			/* Put them back and wait a second before the next try. */
			Requeue(batch, n);
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1000L,
							 PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			continue;
		}
		/* Leave quickly when idle: a connected worker would block DROP DATABASE. */
		if (++idle > 2)
		{
			/* Leave only if nothing arrived meanwhile; the next event starts a new writer. */
			LWLockAcquire(g_queue->lock, LW_EXCLUSIVE);
			bool any = false;
			for (int i = 0; i < kCapacity && !any; i++)
				any = g_queue->events[i].used && g_queue->events[i].dbid == dbid;
			if (!any)
				for (Writer &w : g_queue->writers)
					if (w.dbid == dbid)
						w.dbid = InvalidOid;
			LWLockRelease(g_queue->lock);
			if (!any)
				proc_exit(0);
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 200L,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
