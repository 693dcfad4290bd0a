/*
 * session_guard.cpp — who may change the principal, and how parallel workers inherit it.
 *
 * Top-level only. The session state that says who the session is — the API-key login
 * (vault.login, vault.logout) and the vault new values are sealed under (vector_vault.vault) —
 * may change only through a statement the client itself sent, never from code that runs on the
 * client's behalf: an RLS policy, a trigger, a view, a column default, a domain check, a rule or
 * a function body belongs to whoever wrote it, and a login made there would make the reader's
 * session act as the writer's key (security round 2, H5). The rules:
 *
 *  - vault.login and vault.logout must be called directly in a top-level SELECT without FROM
 *    ("SELECT vault.login($1)"): the executor is at its first nesting level (not inside SPI, a
 *    SQL function, a trigger or a utility statement such as DO, CALL or EXECUTE); the running
 *    plan is the active portal's, from the text the client sent (debug_query_string), so a
 *    query a function runs while the client's statement is planned (a policy's IMMUTABLE or
 *    STABLE function folded by the planner) or committed (a deferred constraint trigger) never
 *    passes, whatever its own text says; the plan reads no relation (so no policy, view, rule
 *    or default of anybody's can be involved); and the plan calls the function exactly as often
 *    as the client's own text does, parsed again (raw parse only: no catalog access), so an
 *    inlined SQL function that adds a call of its own is caught;
 *  - vector_vault.vault may be set by a top-level SET or RESET, by a top-level
 *    "SELECT set_config('vector_vault.vault', ...)" under the same rule, by vault.login itself,
 *    and by configuration (postgresql.conf, ALTER ROLE/DATABASE ... SET, connection options);
 *    a SET inside a function, a function's SET clause or a nested set_config() is refused.
 *
 * Nesting is counted by executor and utility hooks, as pg_stat_statements counts it.
 *
 * Parallel workers. A worker starts from the leader's serialized GUCs, user id and snapshot,
 * not from the leader's memory, so an API-key login would be lost there and the worker would
 * decrypt with the connected role's rights. Before any plan that may use workers starts, the
 * leader publishes its key principal (key id and the digest of the secret it presented, which
 * is what vault._api_keys stores anyway) and whether its connection satisfies
 * vector_vault.require_ssl in a shared-memory slot of its own (indexed by its PGPROC number and
 * stamped with its pid). A worker reads its lock-group leader's slot; nothing a user can run
 * writes these slots, so the state cannot be forged, and a worker that finds no matching slot
 * refuses to decrypt. The worker then loads its rights the way its leader does (heap scans with
 * a fresh snapshot, vault/catalog.cpp): a revocation committed meanwhile applies to it at once.
 */
#include "core/secure.h"

#include <cstring>
#include <utility>

#include "auth/auth.h"
#include "pg/shmem.h"

extern "C"
{
#include "access/parallel.h"
#include "access/xact.h"
#include "executor/executor.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "storage/proc.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
}

namespace vector_vault::auth
{

namespace
{

/* One leader's published principal. */
struct Slot
{
	int pid;           /* the backend that wrote it; 0 = never */
	bool has_key;      /* logged in with an API key */
	bool transport_ok; /* vector_vault.require_ssl allows this connection */
	char key_id[17];
	uint8_t digest[32];
};

struct Slots
{
	int count;
	Slot slot[FLEXIBLE_ARRAY_MEMBER];
};

Slots *g_slots = nullptr;
int g_depth = 0;                  /* executor/utility nesting, 0 = between statements */
QueryDesc *g_top_query = nullptr; /* the top-level plan while it runs */
bool g_toplevel_set = false;      /* a top-level SET/RESET is being executed */
bool g_internal_change = false;   /* vault.login sets vector_vault.vault */
KeyPrincipal g_worker_key;        /* a parallel worker's copy of its leader's key */
int g_worker_state = 0;           /* 0 unread, 1 no key, 2 key */
bool g_worker_transport_ok = true;

ExecutorStart_hook_type g_prev_start = nullptr;
ExecutorRun_hook_type g_prev_run = nullptr;
ExecutorFinish_hook_type g_prev_finish = nullptr;
ProcessUtility_hook_type g_prev_utility = nullptr;

/* Slots for every regular backend (parallel leaders are regular backends). */
Size
SlotsSize()
{
	return add_size(offsetof(Slots, slot), mul_size(sizeof(Slot), MaxBackends));
}

/* Shared memory client: the slots' size. */
Size
ShmemSize(void)
{
	return SlotsSize();
}

/* Shared memory client: creates the slots. */
void
ShmemInit(bool)
{
	bool found;
	g_slots = static_cast<Slots *>(ShmemInitStruct("vector_vault principals", SlotsSize(), &found));
	if (!found)
	{
		memset(g_slots, 0, SlotsSize());
		g_slots->count = MaxBackends;
	}
}

/* This backend's slot, or nullptr. */
Slot *
OwnSlot()
{
	if (g_slots == nullptr || MyProc == nullptr || MyProc->pgprocno >= g_slots->count)
		return nullptr;
	return &g_slots->slot[MyProc->pgprocno];
}

/* Writes this backend's principal into its slot (read by its parallel workers). */
void
Publish()
{
	Slot *s = OwnSlot();
	if (s == nullptr)
		return;
	KeyPrincipal *k = CurrentKey();
	s->pid = 0;
	pg_write_barrier();
	s->has_key = k != nullptr;
	if (k != nullptr)
	{
		memcpy(s->key_id, k->key_id, sizeof(s->key_id));
		memcpy(s->digest, k->digest, sizeof(s->digest));
	}
	else
	{
		SecureZero(s->key_id, sizeof(s->key_id));
		SecureZero(s->digest, sizeof(s->digest));
	}
	s->transport_ok = TransportAllowed();
	pg_write_barrier();
	s->pid = MyProcPid;
}

/* In a parallel worker: copies the leader's published principal once; refuses without one. */
void
ReadLeaderPrincipal()
{
	if (g_worker_state != 0)
		return;
	PGPROC *leader = MyProc != nullptr ? MyProc->lockGroupLeader : nullptr;
	const Slot *s = (leader != nullptr && g_slots != nullptr && leader->pgprocno < g_slots->count)
						? &g_slots->slot[leader->pgprocno]
						: nullptr;
	if (s == nullptr || s->pid == 0 || s->pid != leader->pid)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("parallel worker cannot determine its leader's vault principal"),
				 errhint("Run the query again, or SET max_parallel_workers_per_gather = 0.")));
	pg_read_barrier();
	memset(&g_worker_key, 0, sizeof(g_worker_key));
	if (s->has_key)
	{
		memcpy(g_worker_key.key_id, s->key_id, sizeof(g_worker_key.key_id));
		g_worker_key.key_id[16] = '\0';
		memcpy(g_worker_key.digest, s->digest, sizeof(g_worker_key.digest));
	}
	g_worker_transport_ok = s->transport_ok;
	g_worker_state = s->has_key ? 2 : 1;
}

/* Counts, in a raw (parsed, not analysed) expression, the calls of a function named `name`;
 * subqueries are not entered (a statement with one is refused anyway). */
bool
CountRawCalls(Node *node, void *context)
{
	if (node == nullptr || IsA(node, SubLink))
		return false;
	auto *ctx = static_cast<std::pair<const char *, int> *>(context);
	if (IsA(node, FuncCall))
	{
		List *names = reinterpret_cast<FuncCall *>(node)->funcname;
		if (strcmp(strVal(llast(names)), ctx->first) == 0)
			ctx->second++;
	}
	return raw_expression_tree_walker(node, VV_WALKER(CountRawCalls), context);
}

/* Calls of a function named `name` in the target list of the client's own text of the running
 * statement, when that text is one "SELECT ..." without FROM, WITH, VALUES or set operations;
 * -1 otherwise. The text is parsed again (raw parse only: no catalog access, no side effect). */
int
ClientTextCalls(const char *name)
{
	const PlannedStmt *ps = g_top_query->plannedstmt;
	const char *src = g_top_query->sourceText;
	if (src == nullptr)
		return -1;
	int start = ps->stmt_location > 0 ? ps->stmt_location : 0;
	int len = ps->stmt_len > 0 ? ps->stmt_len : static_cast<int>(strlen(src + start));
	char *text = pnstrdup(src + start, len);
	List *stmts = raw_parser(text, RAW_PARSE_DEFAULT);
	if (list_length(stmts) != 1)
		return -1;
	Node *stmt = linitial_node(RawStmt, stmts)->stmt;
	if (!IsA(stmt, SelectStmt))
		return -1;
	SelectStmt *sel = reinterpret_cast<SelectStmt *>(stmt);
	if (sel->fromClause != NIL || sel->withClause != nullptr || sel->op != SETOP_NONE ||
		sel->valuesLists != NIL || sel->whereClause != nullptr)
		return -1;
	std::pair<const char *, int> ctx(name, 0);
	ListCell *lc;
	foreach (lc, sel->targetList)
		(void) CountRawCalls(lfirst_node(ResTarget, lc)->val, &ctx);
	return ctx.second;
}

/* Counts calls of function `funcid` in a planned expression tree. */
bool
CountPlanCalls(Node *node, void *context)
{
	if (node == nullptr)
		return false;
	auto *ctx = static_cast<std::pair<Oid, int> *>(context);
	if (IsA(node, FuncExpr) && reinterpret_cast<FuncExpr *>(node)->funcid == ctx->first)
		ctx->second++;
	return expression_tree_walker(node, VV_WALKER(CountPlanCalls), context);
}

/* Calls of `funcid` in the running top-level plan's target lists, or -1 when the plan reads a
 * relation, has a subplan or is not a SELECT (a policy, view, rule or default could then be
 * involved). */
int
TopPlanCalls(Oid funcid)
{
	const PlannedStmt *ps = g_top_query->plannedstmt;
	if (ps->commandType != CMD_SELECT || ps->subplans != NIL)
		return -1;
	ListCell *lc;
	foreach (lc, ps->rtable)
	{
		const RangeTblEntry *rte = static_cast<const RangeTblEntry *>(lfirst(lc));
		if (rte->rtekind != RTE_RESULT)
			return -1;
	}
	std::pair<Oid, int> ctx(funcid, 0);
	for (const Plan *plan = ps->planTree; plan != nullptr; plan = plan->lefttree)
	{
		if (plan->righttree != nullptr || plan->initPlan != NIL)
			return -1;
		(void) CountPlanCalls(reinterpret_cast<Node *>(plan->targetlist), &ctx);
		(void) CountPlanCalls(reinterpret_cast<Node *>(plan->qual), &ctx);
	}
	return ctx.second;
}

/* True when the statement now executing is the client's own: the plan the active portal runs
 * (not a query some function runs through SPI while the client's statement is planned or
 * committed), from the text the client sent. */
bool
RunningClientStatement()
{
	return ActivePortal != nullptr && ActivePortal->queryDesc == g_top_query &&
		   debug_query_string != nullptr && g_top_query->sourceText != nullptr &&
		   (g_top_query->sourceText == debug_query_string ||
			strcmp(g_top_query->sourceText, debug_query_string) == 0);
}

/* ExecutorStart: publishes the principal before a plan that may start parallel workers. */
void
StartHook(QueryDesc *qd, int eflags) noexcept
{
	if (qd->plannedstmt->parallelModeNeeded && !IsParallelWorker())
		Publish();
	if (g_prev_start)
		g_prev_start(qd, eflags);
	else
		standard_ExecutorStart(qd, eflags);
}

/* Runs fn one nesting level deeper; the level is restored on error too. */
template <typename Fn>
void
Nested(QueryDesc *top, Fn fn)
{
	QueryDesc *saved_top = g_top_query;
	if (g_depth == 0)
		g_top_query = top;
	g_depth++;
	PG_TRY();
	{
		fn();
	}
	PG_FINALLY();
	{
		g_depth--;
		g_top_query = saved_top;
	}
	PG_END_TRY();
}

/* ExecutorRun: counts nesting. */
void
RunHook(QueryDesc *qd, ScanDirection dir, uint64 count, bool execute_once) noexcept
{
	Nested(qd,
		   [&]()
		   {
			   if (g_prev_run)
				   g_prev_run(qd, dir, count, execute_once);
			   else
				   standard_ExecutorRun(qd, dir, count, execute_once);
		   });
}

/* ExecutorFinish: counts nesting (AFTER triggers run here). */
void
FinishHook(QueryDesc *qd) noexcept
{
	Nested(nullptr,
		   [&]()
		   {
			   if (g_prev_finish)
				   g_prev_finish(qd);
			   else
				   standard_ExecutorFinish(qd);
		   });
}

/* ProcessUtility: counts nesting and notes a top-level SET/RESET. */
void
UtilityHook(PlannedStmt *pstmt, const char *query, bool read_only, ProcessUtilityContext context,
			ParamListInfo params, QueryEnvironment *env, DestReceiver *dest,
			QueryCompletion *qc) noexcept
{
	bool toplevel_set = g_depth == 0 && context == PROCESS_UTILITY_TOPLEVEL &&
						IsA(pstmt->utilityStmt, VariableSetStmt);
	/* A nested RESET (or SET ... TO DEFAULT) of the selected vault never reaches the check hook
	 * (Postgres applies the reset value without checking it): refuse it here; a nested RESET ALL
	 * runs but leaves the selected vault as it was. */
	char *kept_vault = nullptr;
	Node *stmt = pstmt->utilityStmt;
	bool nested = !(g_depth == 0 && context == PROCESS_UTILITY_TOPLEVEL);
	/* ALTER ROLE/DATABASE ... SET vector_vault.* from nested code would change the sessions to
	 * come (any role may set its own defaults): only the client's own statement may do it. */
	if (nested && (IsA(stmt, AlterRoleSetStmt) || IsA(stmt, AlterDatabaseSetStmt)))
	{
		VariableSetStmt *vs = IsA(stmt, AlterRoleSetStmt)
								  ? reinterpret_cast<AlterRoleSetStmt *>(stmt)->setstmt
								  : reinterpret_cast<AlterDatabaseSetStmt *>(stmt)->setstmt;
		if (vs != nullptr &&
			(vs->kind == VAR_RESET_ALL ||
			 (vs->name != nullptr && pg_strncasecmp(vs->name, "vector_vault.", 13) == 0)))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("vector_vault settings of roles and databases can only be changed by "
							"the client's own statement"),
					 errhint("Run ALTER ROLE/DATABASE ... SET at the top level.")));
	}
	/* A holdable cursor is filled at COMMIT with the rights of the principal of that moment and
	 * read later: a transaction-scoped login ends at that COMMIT, and the cursor would hand its
	 * rows to whoever uses the connection next (a transaction pooler's next client). */
	if (IsA(stmt, DeclareCursorStmt) &&
		(reinterpret_cast<DeclareCursorStmt *>(stmt)->options & CURSOR_OPT_HOLD) != 0)
	{
		KeyPrincipal *k = CurrentKey();
		if (k != nullptr && k->transaction)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("cannot declare a WITH HOLD cursor under a transaction-scoped login"),
					 errdetail("Its rows would outlive the login that read them."),
					 errhint("Use a cursor without HOLD, or a session login (vault.login(key)).")));
	}
	if (!toplevel_set && IsA(stmt, VariableSetStmt))
	{
		VariableSetStmt *vs = reinterpret_cast<VariableSetStmt *>(stmt);
		bool ours = vs->name != nullptr && pg_strcasecmp(vs->name, "vector_vault.vault") == 0;
		if (ours && (vs->kind == VAR_RESET || vs->kind == VAR_SET_DEFAULT))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("vector_vault.vault can only be changed by the client's own statement"),
					 errhint("Use RESET vector_vault.vault at the top level.")));
		if (vs->kind == VAR_RESET_ALL)
			kept_vault = pstrdup(GetConfigOption("vector_vault.vault", true, false));
	}
	bool saved = g_toplevel_set;
	g_toplevel_set = toplevel_set;
	Nested(nullptr,
		   [&]()
		   {
			   if (g_prev_utility)
				   g_prev_utility(pstmt, query, read_only, context, params, env, dest, qc);
			   else
				   standard_ProcessUtility(pstmt, query, read_only, context, params, env, dest, qc);
		   });
	g_toplevel_set = saved;
	if (kept_vault != nullptr)
	{
		g_internal_change = true;
		(void) set_config_option("vector_vault.vault", kept_vault, PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SET, true, 0, false);
		g_internal_change = false;
	}
}

/* An aborted statement leaves no nesting behind (the hooks' PG_FINALLY already restore it;
 * this is the backstop for errors raised between hooks). */
void
ResetAtAbort(XactEvent event, void *) noexcept
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
	{
		g_depth = 0;
		g_top_query = nullptr;
		g_toplevel_set = false;
		g_internal_change = false;
	}
}

} // namespace

/* True when the function being executed (funcid, SQL name `name`) was called directly by the
 * client's top-level "SELECT name(...)" without FROM (see the file comment): the executor is at
 * its first level, running the active portal's plan of the client's own text; the plan reads no
 * relation; and the plan calls the function exactly as often as the client's text does (an
 * inlined SQL function adding a call of its own does not pass). */
bool
CalledDirectlyByClient(Oid funcid, const char *name)
{
	if (IsParallelWorker() || g_depth != 1 || g_top_query == nullptr || !RunningClientStatement())
		return false;
	int planned = TopPlanCalls(funcid);
	return planned > 0 && planned == ClientTextCalls(name);
}

/* Raises 42501 unless CalledDirectlyByClient(name). */
void
RequireDirectClientCall(Oid funcid, const char *name, const char *what)
{
	if (CalledDirectlyByClient(funcid, name))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("%s must be called directly by the client", what),
			 errdetail("It was called from a function, trigger, policy, view, default, DO block "
					   "or a statement that reads tables; code that runs on the session's behalf "
					   "may not change who the session acts as."),
			 errhint("Send \"SELECT vault.%s(...)\" as a statement of its own.", name)));
}

/* Check hook of vector_vault.vault: where the selected vault may be changed from. */
bool
MayChangeSelectedVault(GucSource source)
{
	if (source < PGC_S_SESSION || InitializingParallelWorker || g_internal_change)
		return true;
	if (g_toplevel_set)
		return true;
	if (CalledDirectlyByClient(F_SET_CONFIG, "set_config"))
		return true;
	GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
	GUC_check_errmsg("vector_vault.vault can only be changed by the client's own statement");
	GUC_check_errdetail("Functions, triggers, policies, views, defaults, DO blocks and a "
						"function's SET clause may not change the vault values are sealed under.");
	GUC_check_errhint("Use SET vector_vault.vault at the top level, or vault.login.");
	return false;
}

/* Marks vault.login's own change of vector_vault.vault. */
void
SetInternalVaultChange(bool on)
{
	g_internal_change = on;
}

/* In a parallel worker: the leader's key principal (nullptr when it acts as its role). */
KeyPrincipal *
LeaderKey()
{
	ReadLeaderPrincipal();
	return g_worker_state == 2 ? &g_worker_key : nullptr;
}

/* In a parallel worker: whether the leader's connection satisfies vector_vault.require_ssl. */
bool
LeaderTransportAllowed()
{
	ReadLeaderPrincipal();
	return g_worker_transport_ok;
}

namespace detail
{
/* Publishes a changed principal for parallel workers started later (cursors included). */
void
PublishPrincipal()
{
	if (!IsParallelWorker())
		Publish();
}

/* Installs the nesting hooks and the principal slots. */
void
RegisterSessionGuard()
{
	g_prev_start = ExecutorStart_hook;
	ExecutorStart_hook = StartHook;
	g_prev_run = ExecutorRun_hook;
	ExecutorRun_hook = RunHook;
	g_prev_finish = ExecutorFinish_hook;
	ExecutorFinish_hook = FinishHook;
	g_prev_utility = ProcessUtility_hook;
	ProcessUtility_hook = UtilityHook;
	RegisterXactCallback(ResetAtAbort, nullptr);
}

/* Registers the principal slots' shared memory (while preloading). */
void
RegisterSessionGuardShmem()
{
	pg::AddShmemClient({ShmemSize, ShmemInit});
}
} // namespace detail

} // namespace vector_vault::auth
