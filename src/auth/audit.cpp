/*
 * audit.cpp — the access log: every login, failed login, denied access, key change, grant
 * change, vault creation and drop, with time, role, key id (never the secret), vault, action,
 * result and client address.
 *
 * A denial is followed by an ERROR that rolls back the transaction, so its record cannot be
 * written in that transaction. Every event therefore goes through a queue in shared memory and
 * is written to vault._access_log by a background worker of the same database, in its own
 * transaction: a denial stays recorded when its transaction rolls back. State changes (grants,
 * keys, vaults) are queued only when their transaction commits, so the log never claims a change
 * that did not happen. Failures and denials are also written to the server log as they happen
 * (so a crash before the worker runs, or a standby, which cannot write tables, loses nothing).
 *
 * One worker per database is started on demand (RegisterDynamicBackgroundWorker) and exits once
 * the queue has been empty for half a second (a connected worker would block DROP DATABASE). Owners
 * read their vaults' entries (and their API keys' logins) through the vault.access_log view.
 */
#include <cstring>

#include "auth/auth.h"
#include "pg/guard.h"
#include "pg/shmem.h"
#include "vault/vault.h"

extern "C"
{
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

	PGDLLEXPORT void vault_audit_worker_main(Datum arg);
}

namespace vector_vault::auth
{

namespace
{

constexpr int kCapacity = 4096;
constexpr int kMaxWorkers = 16;
constexpr int kBatch = 256;

/* One queued event. */
struct Event
{
	bool used;
	Oid dbid;
	TimestampTz at;
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

struct Queue
{
	LWLock *lock;
	int count;
	uint64 dropped;
	Writer writers[kMaxWorkers];
	Event events[kCapacity];
};

Queue *g_queue = nullptr;

/* Events waiting for this transaction's commit. */
Event g_pending[64];
int g_npending = 0;

/* Fills an event for the current session. */
void
Fill(Event *e, const char *action, const char *vault, const char *result, const char *detail)
{
	memset(e, 0, sizeof(*e));
	e->used = true;
	e->dbid = MyDatabaseId;
	e->at = GetCurrentTimestamp();
	const char *role = OidIsValid(GetUserId()) ? GetUserNameFromId(GetUserId(), true) : nullptr;
	strlcpy(e->role, role ? role : "", sizeof(e->role));
	strlcpy(e->key_id, CurrentKeyIdOrEmpty(), sizeof(e->key_id));
	strlcpy(e->vault, vault ? vault : "", sizeof(e->vault));
	/* Entries are tied to the vault's id: a later vault of the same name does not inherit them. */
	if (vault != nullptr && IsTransactionState())
	{
		const vault::VaultInfo *v = vault::LookupVaultByName(vault);
		e->vault_id = v ? static_cast<int64>(v->id) : 0;
	}
	strlcpy(e->action, action, sizeof(e->action));
	strlcpy(e->result, result, sizeof(e->result));
	strlcpy(e->client, ClientAddress(), sizeof(e->client));
	strlcpy(e->detail, detail ? detail : "", sizeof(e->detail));
}

/* True when the writer's process is alive. */
bool
WriterAlive(const Writer &w)
{
	if (w.pid == 0)
		return GetCurrentTimestamp() < TimestampTzPlusMilliseconds(w.registered, 10000);
	return BackendPidGetProc(w.pid) != nullptr;
}

/* Starts this database's writer. */
void
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
	if (!RegisterDynamicBackgroundWorker(&worker, nullptr))
		ereport(LOG,
				(errmsg("vector_vault: could not start the access log writer; events stay queued"),
				 errhint("Raise max_worker_processes.")));
}

/* Puts events into the shared queue and wakes (or starts) the database's writer. */
void
Enqueue(const Event *events, int n)
{
	if (g_queue == nullptr || n == 0)
		return;
	bool start = false;
	int wake_pid = 0;
	LWLockAcquire(g_queue->lock, LW_EXCLUSIVE);
	int slot = 0;
	for (int i = 0; i < n; i++)
	{
		while (slot < kCapacity && g_queue->events[slot].used)
			slot++;
		if (slot == kCapacity)
		{
			g_queue->dropped++;
			continue;
		}
		g_queue->events[slot] = events[i];
		g_queue->count++;
	}
	Writer *w = nullptr;
	for (Writer &x : g_queue->writers)
		if (x.dbid == MyDatabaseId)
			w = &x;
	if (w != nullptr && !WriterAlive(*w))
	{
		w->dbid = InvalidOid;
		w = nullptr;
	}
	if (w == nullptr && !RecoveryInProgress())
	{
		for (Writer &x : g_queue->writers)
		{
			if (!OidIsValid(x.dbid))
			{
				x.dbid = MyDatabaseId;
				x.pid = 0;
				x.registered = GetCurrentTimestamp();
				start = true;
				break;
			}
		}
	}
	else if (w != nullptr)
		wake_pid = w->pid;
	LWLockRelease(g_queue->lock);
	if (start)
		StartWriter(MyDatabaseId);
	if (wake_pid != 0)
	{
		PGPROC *proc = BackendPidGetProc(wake_pid);
		if (proc != nullptr)
			SetLatch(&proc->procLatch);
	}
}

/* Writes an event to the server log (failures and denials). */
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

/* Moves pending events to the queue at commit, drops them at abort. */
void
XactCallback(XactEvent event, void *)
{
	if (g_npending == 0)
		return;
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
	{
		Enqueue(g_pending, g_npending);
		g_npending = 0;
	}
	else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		g_npending = 0;
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

/* Inserts events into vault._access_log (or logs them when the extension is not here). */
void
WriteEvents(const Event *events, int n)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "writing vector_vault access log");
	bool have = SPI_execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname "
							"OPERATOR(pg_catalog.=) 'vector_vault'",
							true, 1) == SPI_OK_SELECT &&
				SPI_processed == 1;
	for (int i = 0; i < n; i++)
	{
		const Event &e = events[i];
		if (!have)
		{
			LogEvent(e);
			continue;
		}
		Oid types[9] = {TIMESTAMPTZOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
						TEXTOID,        TEXTOID, TEXTOID, INT8OID};
		Datum values[9] = {TimestampTzGetDatum(e.at),     CStringGetTextDatum(e.role),
						   CStringGetTextDatum(e.key_id), CStringGetTextDatum(e.vault),
						   CStringGetTextDatum(e.action), CStringGetTextDatum(e.result),
						   CStringGetTextDatum(e.client), CStringGetTextDatum(e.detail),
						   Int64GetDatum(e.vault_id)};
		if (SPI_execute_with_args(
				"INSERT INTO vault._access_log (at, role, key_id, vault, action, result, "
				"client_addr, detail, vault_id) VALUES ($1, NULLIF($2, ''), NULLIF($3, ''), "
				"NULLIF($4, ''), $5, $6, $7, NULLIF($8, ''), NULLIF($9, 0))",
				9, types, values, nullptr, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not write the vector_vault access log");
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, nullptr);
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

/* Registers the commit callback. */
void
RegisterAuditCallbacks()
{
	RegisterXactCallback(XactCallback, nullptr);
}
} // namespace detail

/* Queues a filled event now (failures and denials also go to the server log at once). */
static void
RecordNow(const Event &e)
{
	if (strcmp(e.result, "ok") != 0)
		LogEvent(e);
	Enqueue(&e, 1);
}

/* Records an event now; it survives this transaction's rollback. */
void
AuditNow(const char *action, const char *vault, const char *result, const char *detail)
{
	Event e;
	Fill(&e, action, vault, result, detail);
	RecordNow(e);
}

/* A slot for an event that waits for this transaction's commit. */
static Event *
PendingSlot()
{
	if (g_npending == lengthof(g_pending))
	{
		Enqueue(g_pending, g_npending);
		g_npending = 0;
	}
	return &g_pending[g_npending++];
}

/* Records an event when this transaction commits. */
void
AuditAtCommit(const char *action, const char *vault, const char *result, const char *detail)
{
	Fill(PendingSlot(), action, vault, result, detail);
}

/* Records a change to a vault, by id, when this transaction commits. */
void
AuditVaultChangeAtCommit(const char *action, uint64_t vault_id, const char *vault,
						 const char *detail)
{
	Event *e = PendingSlot();
	Fill(e, action, nullptr, "ok", detail);
	strlcpy(e->vault, vault, sizeof(e->vault));
	e->vault_id = static_cast<int64>(vault_id);
}

/* Records a failed login under the key id it tried. */
void
AuditLoginFailure(const char *attempted_key_id, const char *result, const char *detail)
{
	Event e;
	Fill(&e, "login", nullptr, result, detail);
	strlcpy(e.key_id, attempted_key_id ? attempted_key_id : "", sizeof(e.key_id));
	RecordNow(e);
}

} // namespace vector_vault::auth

using namespace vector_vault::auth;

/* Entry point of a database's access log writer. */
void
vault_audit_worker_main(Datum arg)
{
	Oid dbid = DatumGetObjectId(arg);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dbid, InvalidOid, 0);
	/* Settings a database or role owner can attach (ALTER DATABASE/ROLE ... SET) must neither
	 * redirect our statements (search_path) nor stop the writer (read-only default, timeouts):
	 * they are overridden here. Our statements are schema-qualified besides. */
	static const char *const kPinned[][2] = {
		{"search_path", "pg_catalog, pg_temp"},
		{"default_transaction_read_only", "off"},
		{"default_transaction_isolation", "read committed"},
		{"statement_timeout", "0"},
		{"lock_timeout", "0"},
		{"idle_in_transaction_session_timeout", "0"},
		{"synchronous_commit", "on"},
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
			WriteEvents(batch, n);
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
