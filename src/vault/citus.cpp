/*
 * citus.cpp — vector_vault on a Citus cluster (see citus.h; user guide docs/citus.md).
 *
 * Values between nodes. Citus deparses a statement's constants and parameters into the SQL it
 * sends to workers with the types' output functions, sends bind parameters and COPY rows the same
 * way, and reads workers' rows back with the input (or receive) functions. vector_vault's output
 * functions decrypt and its input functions seal, which would put plaintext on the wire and seal
 * it again on the worker under whatever vault that connection selected. So ciphertext I/O
 * (vector_vault.ciphertext_io) is forced on:
 *   - while Citus plans a statement (the planner hook: deparsing happens here),
 *   - while the executor starts and runs a plan that holds a Citus custom scan (deparsing at
 *     start, remote execution and reading results in the run), with the DestReceiver wrapped so
 *     that the rows the client receives are printed with ciphertext I/O as it was (plaintext),
 *   - while COPY FROM feeds a Citus table (input seals plaintext as always, and accepts
 *     envelopes; output to the shards is the envelope),
 *   - from the start of every backend Citus opens on a worker (its application_name), where the
 *     rows sent back are then envelopes and the constants received are accepted as envelopes.
 * The value's vault, key version and nonce stay as the coordinator sealed them; a worker decrypts
 * only what a statement asks it to compute (distances, casts), with its own rights check.
 * The flag is the GUC's own variable, flipped for the scope and restored in PG_FINALLY, so no GUC
 * machinery runs per row.
 *
 * One vault catalog. A statement trigger on each catalog table calls CatalogChanged: on the
 * coordinator it sends vault._citus_apply(<snapshot>) to every worker with metadata through
 * Citus' SendCommandToWorkersWithMetadataViaSuperUser (part of the distributed transaction,
 * committed by two-phase commit); on a worker it refuses the change unless the apply is running.
 * The snapshot holds the catalog rows and, for every active vault version, the keyring entry as
 * it is on disk: the data key wrapped (AES-256-GCM) under the master key, bound to the vault id
 * and version. Every node has the same master key; no data key ever leaves a node unwrapped. A
 * worker checks each entry opens under its master key before writing it. Shreds cannot run in a
 * prepared transaction (keys/keyring.cpp refuses PREPARE), so the apply records them in
 * vault._citus_pending_shreds and the COMMIT PREPARED that makes them final carries them out.
 *
 * A worker that was away. A worker that is down but active is part of every push's two-phase
 * commit, so a drop or rotation fails everywhere until it is back: a drop that succeeded has been
 * shredded on every active node. A worker the operator disabled (citus_disable_node) is skipped,
 * so the drop completes without it and the node owes the shred. Every push therefore carries a
 * generation (a sequence, taken under an EXCLUSIVE lock on vault._citus_nodes that also orders
 * concurrent pushes, so a snapshot is never older than a push that committed before it); the
 * coordinator records in the push's own transaction the generation each reached node committed,
 * and before every distributed statement (CatchUpWorkers, from ExecutorStart) pushes the whole
 * catalog again if a node Citus would send the statement to is behind or has none. The returning
 * node thus applies the drops and rotations it missed, and shreds at its COMMIT PREPARED, before
 * the statement's queries reach it. The coordinator pushes because it already holds the trusted
 * channel (Citus' superuser connections, two-phase commit); a worker pulling would need
 * credentials of its own and would pull inside whichever query first needed a key. The check sits
 * at the distributed statement because that is when a returning node starts serving; a background
 * reconciler would leave a window after activation. vault.citus_pending_shreds() answers "is this
 * vault gone everywhere?" from each reachable node's keyring (vault._citus_held_keys() there and
 * here) and, for an unreachable node, from the vaults dropped since its last push.
 *
 * API-key principals. A worker sees only the role Citus connects as. With
 * vector_vault.citus_coordinator_cn set, for a key session's read-only statement the planner hook
 * starts a coordinated transaction and adds vault._citus_as_key(<token>) to every query level
 * that reads a Citus table (core/principal_token.h: MAC'd under a key derived from the master
 * key, bound to key, presented secret's digest, expiry, role, the distributed transaction id and
 * the session's gpid); on the worker, in a connection the coordinator opened (see GuardOn), it
 * makes the key the transaction's principal before the scan below it returns a row. Writes, COPY,
 * plans made before the current login or in another transaction, and every key-session statement
 * without the setting are refused (fail closed, 0A000).
 */
#include "vault/citus.h"

#include "core/durable_file.h"
#include "core/hex.h"
#include "core/keyring_format.h"
#include "core/principal_token.h"
#include "core/secure.h"

#include <cinttypes>
#include <cstring>
#include <dlfcn.h>

#include "auth/auth.h"
#include "keys/claims.h"
#include "keys/keys.h"
#include "pg/catalog_scan.h"
#include "pg/guard.h"
#include "pg/privileged.h"
#include "pg/shmem.h"
#include "vault/vault.h"

extern "C"
{
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_language.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "libpq/auth.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "nodes/extensible.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "parser/parse_func.h"
#include "optimizer/planner.h"
#include "storage/lwlock.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
}

namespace vector_vault::auth::detail
{
void SetKey(const char *key_id, const uint8_t digest[32], bool transaction);
}

namespace vector_vault::vault::citus
{

/* Processes shreds recorded by vault._citus_apply once the prepared transaction committed. */
void ProcessPendingShreds();

namespace
{

/* Citus functions, found in the process when citus.so is preloaded (nullptr otherwise). */
struct CitusApi
{
	bool (*has_been_loaded)(void);
	int32 (*local_group_id)(void);
	bool (*is_citus_table)(Oid);
	void (*send_to_workers_as_superuser)(const char *);
	/* for principal tokens (nullptr: tokens stay off) */
	void (*use_coordinated_transaction)(void);
	struct CitusTransactionId *(*current_transaction_id)(void); /* palloc'd copy */
	uint64 (*global_pid)(void);
};
CitusApi g_api;

/* Citus' DistributedTransactionId (distributed/transaction_identifier.h, 13.2). */
struct CitusTransactionId
{
	int initiator;
	bool originator;
	uint64 number;
	TimestampTz stamp;
};

/* vector_vault.citus_coordinator_cn (PGC_POSTMASTER): the subject CN of the client certificate
 * the Citus nodes present in citus.node_conninfo; empty (the default) refuses every token. */
char *g_node_cn = nullptr;

/* What this backend's connection was when it authenticated (ClientAuthentication). */
struct StartupIdentity
{
	bool captured;
	bool node_cert;  /* TLS with a verified client certificate whose CN is g_node_cn */
	bool citus_name; /* its application_name had a Citus gpid prefix (Citus' test) */
	bool internal;   /* ... "citus_internal gpid=" or "citus_rebalancer gpid=" */
	uint64 gpid;     /* the gpid in that application_name */
	char *app;       /* the application_name itself (TopMemoryContext) */
};
StartupIdentity g_startup;
/* application_name was ever set to something other than the startup packet's value (Citus does
 * so for run_command_on_* connections, which run a user's SQL text). Never cleared. */
bool g_renamed = false;
GucStringCheckHook g_prev_app_check = nullptr;
needs_fmgr_hook_type g_prev_needs_fmgr = nullptr;
fmgr_hook_type g_prev_fmgr = nullptr;
/* pg_catalog.assign_distributed_transaction_id, once resolved (reset on pg_proc changes). */
Oid g_assign_oid = InvalidOid;
bool g_assign_resolved = false;
bool g_assign_resolving = false;

bool *g_ciphertext_io = nullptr; /* vector_vault.ciphertext_io's variable */
bool g_applying = false;         /* vault._citus_apply is writing the catalog */
bool g_catching_up = false;      /* CatchUpWorkers is pushing the catalog */
/* CatchUpWorkers found no node behind, and pg_dist_node has not changed since (the relcache
 * callback clears it: Citus invalidates pg_dist_node's relcache entry on every node change). */
bool g_nodes_current = false;
TimestampTz g_nodes_checked_at = 0;
Oid g_dist_node_relid = InvalidOid; /* pg_catalog.pg_dist_node, resolved when first needed */
/* Seconds a "no node behind" verdict is trusted without a pg_dist_node change (a belt for direct
 * edits of vault._citus_nodes, which send no invalidation). */
constexpr int kNodesRecheckSeconds = 10;

void CatchUpWorkers();
bool OnWorker();

planner_hook_type g_prev_planner = nullptr;
ExecutorStart_hook_type g_prev_start = nullptr;
ExecutorRun_hook_type g_prev_run = nullptr;
ProcessUtility_hook_type g_prev_utility = nullptr;
ClientAuthentication_hook_type g_prev_auth = nullptr;

/* Application names Citus gives the backends it opens on other nodes. */
constexpr const char *kCitusBackendPrefixes[] = {"citus_internal gpid=", "citus_rebalancer gpid="};
/* Every application-name prefix from which Citus takes a backend's gpid (backend_data.c). */
constexpr const char *kCitusGpidPrefixes[] = {
	"citus_internal gpid=", "citus_rebalancer gpid=", "citus_run_command gpid="};

/* True when Citus is preloaded and its extension exists in this database. */
bool
CitusActive()
{
	return g_api.has_been_loaded != nullptr && g_ciphertext_io != nullptr &&
		   g_api.has_been_loaded();
}

/* Sets ciphertext I/O to `on` and returns the previous value. */
bool
SwapCiphertextIo(bool on)
{
	bool saved = *g_ciphertext_io;
	*g_ciphertext_io = on;
	return saved;
}

/* True when the plan tree holds a custom scan of Citus (its names start with "Citus"). */
bool
HasCitusScan(Plan *plan)
{
	if (plan == nullptr)
		return false;
	check_stack_depth();
	if (IsA(plan, CustomScan))
	{
		auto *cs = reinterpret_cast<CustomScan *>(plan);
		if (cs->methods != nullptr && strncmp(cs->methods->CustomName, "Citus", 5) == 0)
			return true;
		ListCell *lc;
		foreach (lc, cs->custom_plans)
			if (HasCitusScan(static_cast<Plan *>(lfirst(lc))))
				return true;
	}
	if (IsA(plan, Append))
	{
		ListCell *lc;
		foreach (lc, reinterpret_cast<Append *>(plan)->appendplans)
			if (HasCitusScan(static_cast<Plan *>(lfirst(lc))))
				return true;
	}
	if (IsA(plan, MergeAppend))
	{
		ListCell *lc;
		foreach (lc, reinterpret_cast<MergeAppend *>(plan)->mergeplans)
			if (HasCitusScan(static_cast<Plan *>(lfirst(lc))))
				return true;
	}
	if (IsA(plan, SubqueryScan) && HasCitusScan(reinterpret_cast<SubqueryScan *>(plan)->subplan))
		return true;
	return HasCitusScan(plan->lefttree) || HasCitusScan(plan->righttree);
}

/* True when the statement's plan (or one of its subplans) holds a Citus scan. */
bool
StatementIsDistributed(PlannedStmt *stmt)
{
	if (stmt == nullptr)
		return false;
	if (HasCitusScan(stmt->planTree))
		return true;
	ListCell *lc;
	foreach (lc, stmt->subplans)
		if (HasCitusScan(static_cast<Plan *>(lfirst(lc))))
			return true;
	return false;
}

/* Seconds a principal token stays valid (made for one statement of one transaction). */
constexpr int kTokenLifetimeSeconds = 60;

/*
 * Principal tokens (docs/citus.md, "Principals"). A token is visible in SQL text to every session
 * of the role, so a worker accepts it only in a backend that cannot have been steered by another
 * session: the backend's connection presented the nodes' client certificate (CN =
 * vector_vault.citus_coordinator_cn) with the application name "citus_internal gpid=<g>", never
 * changed its application name since (Citus renames the run_command_on_* connections that carry a
 * user's SQL text), runs in a transaction block (Citus opens every block with BEGIN and
 * assign_distributed_transaction_id of the originating transaction), and the token's MAC covers
 * that distributed transaction id and g. What makes the gpid and the id trustworthy is enforced on
 * every node by the guard below: only such certified connections may carry a Citus application
 * name, and only with their startup gpid (Citus otherwise lets any session take another's gpid
 * with SET application_name), and only they may call assign_distributed_transaction_id
 * (EXECUTE is granted to PUBLIC; any session could otherwise adopt another's transaction id).
 */
bool
GuardOn()
{
	return g_node_cn != nullptr && g_node_cn[0] != '\0';
}

/* Tokens are made and accepted: the guard is on and Citus exports what binds them. */
bool
KeyTokensOn()
{
	return GuardOn() && g_api.use_coordinated_transaction != nullptr &&
		   g_api.current_transaction_id != nullptr && g_api.global_pid != nullptr;
}

/* This backend's distributed transaction id (number 0: none assigned). */
CitusTransactionId
CurrentTransactionId()
{
	CitusTransactionId *p = g_api.current_transaction_id();
	CitusTransactionId id = *p;
	pfree(p);
	return id;
}

/* What a token's MAC binds besides the key: the role (length-prefixed, so no role name can
 * imitate the rest), the distributed transaction and the originating session's gpid. */
char *
TokenContext(const char *role, const CitusTransactionId &id, uint64 gpid)
{
	return psprintf("%zu:%s|dx=%d.%" PRIu64 ".%" PRId64 "|gp=%" PRIu64, strlen(role), role,
					id.initiator, static_cast<uint64_t>(id.number), static_cast<int64_t>(id.stamp),
					static_cast<uint64_t>(gpid));
}

/* The gpid Citus would take from an application name (0: none; backend_data.c's test). */
uint64
CitusGpid(const char *name, bool *internal)
{
	if (name == nullptr)
		return 0;
	for (size_t i = 0; i < lengthof(kCitusGpidPrefixes); i++)
	{
		size_t n = strlen(kCitusGpidPrefixes[i]);
		if (strncmp(name, kCitusGpidPrefixes[i], n) == 0)
		{
			if (internal != nullptr)
				*internal = i < 2;
			return static_cast<uint64>(strtoull(name + n, nullptr, 10));
		}
	}
	return 0;
}

/* True when this backend is a connection a Citus node opened (certificate, Citus name) that
 * never changed its application name. */
bool
CertifiedCitusConnection()
{
	return g_startup.captured && g_startup.node_cert && g_startup.internal && !g_renamed;
}

/* Plans made for a key principal, by their content's fingerprint -> principal generation and
 * distributed transaction number at planning. Content, not address: the plan cache copies a plan
 * after planning (prepared statements, the extended protocol), and a plan from another
 * transaction carries a dead token. */
struct PlanEntry
{
	uint64 fingerprint;
	uint64 generation;
	uint64 xact_number;
};
HTAB *g_key_plans = nullptr;

/* A 64-bit hash of the plan's text form (nodeToString; Citus' scans print their plans), without
 * Citus' execution count. Made only for key sessions' statements on distributed tables. */
uint64
PlanFingerprint(PlannedStmt *plan)
{
	char *text = nodeToString(plan);
	/* Citus counts a plan's executions in it (DistributedPlan.numberOfTimesExecuted, bumped when
	 * its scan starts): leave the count out */
	constexpr char kCount[] = ":numberOfTimesExecuted ";
	char *w = text;
	for (const char *r = text; *r != '\0';)
	{
		if (strncmp(r, kCount, sizeof(kCount) - 1) == 0)
		{
			r += sizeof(kCount) - 1;
			while (*r >= '0' && *r <= '9')
				r++;
			continue;
		}
		*w++ = *r++;
	}
	*w = '\0';
	uint64 h = DatumGetUInt64(
		hash_bytes_extended(reinterpret_cast<const unsigned char *>(text), strlen(text), 0));
	pfree(text);
	return h;
}

/* Remembers that this plan carries the current key principal's token. */
void
NoteKeyPlan(PlannedStmt *plan)
{
	if (g_key_plans == nullptr || hash_get_num_entries(g_key_plans) >= 4096)
	{
		if (g_key_plans != nullptr)
			hash_destroy(g_key_plans);
		HASHCTL ctl;
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(uint64);
		ctl.entrysize = sizeof(PlanEntry);
		ctl.hcxt = TopMemoryContext;
		g_key_plans =
			hash_create("vector_vault key plans", 256, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	uint64 key = PlanFingerprint(plan);
	auto *e = static_cast<PlanEntry *>(hash_search(g_key_plans, &key, HASH_ENTER, nullptr));
	e->generation = auth::PrincipalGeneration();
	e->xact_number = CurrentTransactionId().number;
}

/* True when the plan was made for the current key principal in this transaction (and carries
 * its token). */
bool
IsKeyPlan(PlannedStmt *plan)
{
	if (g_key_plans == nullptr || !KeyTokensOn())
		return false;
	uint64 key = PlanFingerprint(plan);
	auto *e = static_cast<PlanEntry *>(hash_search(g_key_plans, &key, HASH_FIND, nullptr));
	return e != nullptr && e->generation == auth::PrincipalGeneration() && e->xact_number != 0 &&
		   e->xact_number == CurrentTransactionId().number;
}

/*
 * Sessions logged in with an API key: a read-only statement planned for the current key carries
 * the key's token to every worker (InjectToken); anything else is refused, because a worker
 * would act with the connection's role, which may hold more rights than the key.
 */
void
RefuseKeyPrincipal(const char *what, PlannedStmt *plan)
{
	auth::KeyPrincipal *key = auth::CurrentKey();
	if (key == nullptr)
		return;
	if (plan != nullptr && plan->commandType == CMD_SELECT && IsKeyPlan(plan))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("%s on distributed tables is not available to API-key sessions", what),
			 errdetail("The statement would run on the workers with the connection's role, which "
					   "may hold more rights than API key %s.",
					   key->key_id),
			 errhint(KeyTokensOn() ? "API-key sessions may only read distributed tables, with a "
									 "plan made in the same transaction (set plan_cache_mode = "
									 "force_custom_plan)."
								   : "Query distributed tables as a role with the vault grants "
									 "you need (docs/citus.md, \"Principals\").")));
}

/* Context of InjectWalker. */
struct InjectContext
{
	Oid func;
	const char *token;
	bool injected;
	bool sql_function; /* a FROM item calls a LANGUAGE sql function (the planner may inline it) */
};

/* The language of a function (InvalidOid when it does not exist). */
Oid
FunctionLanguage(Oid func)
{
	HeapTuple tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(func));
	if (!HeapTupleIsValid(tup))
		return InvalidOid;
	Oid lang = reinterpret_cast<Form_pg_proc>(GETSTRUCT(tup))->prolang;
	ReleaseSysCache(tup);
	return lang;
}

/* True when a range table calls a LANGUAGE sql function in FROM: the planner may inline its
 * body (tables the walker never saw, so without a token) after the hook ran. */
bool
RangeTableHasSqlFunction(List *rtable)
{
	ListCell *lc;
	foreach (lc, rtable)
	{
		auto *rte = static_cast<RangeTblEntry *>(lfirst(lc));
		if (rte->rtekind != RTE_FUNCTION)
			continue;
		ListCell *fc;
		foreach (fc, rte->functions)
		{
			Node *expr = static_cast<RangeTblFunction *>(lfirst(fc))->funcexpr;
			if (expr != nullptr && IsA(expr, FuncExpr) &&
				FunctionLanguage(reinterpret_cast<FuncExpr *>(expr)->funcid) == SQLlanguageId)
				return true;
		}
	}
	return false;
}

/* True when a range table holds a Citus table. */
bool
RangeTableHasCitus(List *rtable)
{
	ListCell *lc;
	foreach (lc, rtable)
	{
		auto *rte = static_cast<RangeTblEntry *>(lfirst(lc));
		if (rte->rtekind == RTE_RELATION && g_api.is_citus_table(rte->relid))
			return true;
	}
	return false;
}

/* Adds vault._citus_as_key(token) to every query level that reads a Citus table (with a null
 * token: only finds whether one does). */
bool
InjectWalker(Node *node, void *arg)
{
	if (node == nullptr)
		return false;
	auto *ctx = static_cast<InjectContext *>(arg);
	if (IsA(node, Query))
	{
		auto *q = reinterpret_cast<Query *>(node);
		if (RangeTableHasSqlFunction(q->rtable))
			ctx->sql_function = true;
		if (RangeTableHasCitus(q->rtable) && q->jointree != nullptr)
		{
			if (ctx->token == nullptr)
			{
				ctx->injected = true; /* a dry run: would inject (and walks on for SQL functions) */
				return query_tree_walker(
					q, reinterpret_cast<bool (*)()>(reinterpret_cast<void (*)(void)>(InjectWalker)),
					arg, 0);
			}
			Const *c = makeConst(TEXTOID, -1, DEFAULT_COLLATION_OID, -1,
								 CStringGetTextDatum(ctx->token), false, false);
			Node *call = reinterpret_cast<Node *>(makeFuncExpr(
				ctx->func, BOOLOID, list_make1(c), InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL));
			q->jointree->quals = q->jointree->quals == nullptr
									 ? call
									 : reinterpret_cast<Node *>(makeBoolExpr(
										   AND_EXPR, list_make2(q->jointree->quals, call), -1));
			ctx->injected = true;
		}
		return query_tree_walker(
			q, reinterpret_cast<bool (*)()>(reinterpret_cast<void (*)(void)>(InjectWalker)), arg,
			0);
	}
	return expression_tree_walker(
		node, reinterpret_cast<bool (*)()>(reinterpret_cast<void (*)(void)>(InjectWalker)), arg);
}

/* The token key derived from the master key (caller zeroes it). */
void
TokenKey(uint8_t out[kPrincipalTokenKeyBytes])
{
	keys::RequireMasterKey();
	LWLockAcquire(pg::Shared()->keyring_lock, LW_SHARED);
	Status s = DerivePrincipalTokenKey(keys::detail::MasterKeyBytes(), out);
	LWLockRelease(pg::Shared()->keyring_lock);
	if (!s.ok())
		pg::ThrowStatus(s, "could not derive the principal token key", nullptr);
}

/* For a key session's read-only statement: the key's token on every level reading Citus. */
bool
InjectToken(Query *parse)
{
	auth::KeyPrincipal *key = auth::CurrentKey();
	if (!KeyTokensOn() || key == nullptr || parse->commandType != CMD_SELECT)
		return false;
	Oid argtypes[1] = {TEXTOID};
	Oid func = LookupFuncName(
		list_make2(makeString(pstrdup("vault")), makeString(pstrdup("_citus_as_key"))), 1, argtypes,
		true);
	if (!OidIsValid(func))
		return false;
	InjectContext probe = {func, nullptr, false, false};
	InjectWalker(reinterpret_cast<Node *>(parse), &probe);
	if (!probe.injected)
		return false; /* reads no Citus table: no token, no coordinated transaction */
	if (probe.sql_function)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a LANGUAGE sql function in FROM is not available to API-key sessions on "
						"distributed tables"),
				 errdetail("The planner may inline its query after the key's principal token was "
						   "added, and its tables would reach the workers without one."),
				 errhint("Write the function's query into the statement, or make it a PL/pgSQL "
						 "function.")));
	uint8_t tk[kPrincipalTokenKeyBytes];
	TokenKey(tk);
	char token[kPrincipalTokenMax];
	uint64_t expiry = static_cast<uint64_t>(time(nullptr)) + kTokenLifetimeSeconds;
	/* the statement's remote tasks run in transaction blocks that Citus opens with this
	 * transaction's id (a lone read otherwise runs on the workers without one) */
	g_api.use_coordinated_transaction();
	CitusTransactionId xid = CurrentTransactionId();
	if (xid.number == 0)
	{
		SecureZero(tk, sizeof(tk));
		return false;
	}
	char *context = TokenContext(GetUserNameFromId(GetUserId(), false), xid, g_api.global_pid());
	Status s = MakePrincipalToken(tk, key->key_id, context, expiry, key->digest, token);
	SecureZero(tk, sizeof(tk));
	if (!s.ok())
		pg::ThrowStatus(s, "could not make the principal token", nullptr);
	InjectContext ctx = {func, token, false, false};
	InjectWalker(reinterpret_cast<Node *>(parse), &ctx);
	return ctx.injected;
}

/* Planner hook: Citus deparses constants for the workers while planning. */
PlannedStmt *
Planner(Query *parse, const char *query_string, int cursor_options, ParamListInfo params) noexcept
{
	planner_hook_type next = g_prev_planner ? g_prev_planner : standard_planner;
	if (!CitusActive())
		return next(parse, query_string, cursor_options, params);
	bool injected = InjectToken(parse);
	bool saved = SwapCiphertextIo(true);
	PlannedStmt *result = nullptr;
	PG_TRY();
	{
		result = next(parse, query_string, cursor_options, params);
	}
	PG_FINALLY();
	{
		*g_ciphertext_io = saved;
	}
	PG_END_TRY();
	if (injected)
		NoteKeyPlan(result);
	return result;
}

/* ExecutorStart hook: Citus' scans deparse again (router plans, parameters) when they start. */
void
ExecutorStart(QueryDesc *qd, int eflags) noexcept
{
	auto next = g_prev_start ? g_prev_start : standard_ExecutorStart;
	if (!CitusActive() || !StatementIsDistributed(qd->plannedstmt))
	{
		next(qd, eflags);
		return;
	}
	if (!(eflags & EXEC_FLAG_EXPLAIN_ONLY))
	{
		RefuseKeyPrincipal("a statement", qd->plannedstmt);
		CatchUpWorkers();
	}
	bool saved = SwapCiphertextIo(true);
	PG_TRY();
	{
		next(qd, eflags);
	}
	PG_FINALLY();
	{
		*g_ciphertext_io = saved;
	}
	PG_END_TRY();
}

/* A DestReceiver that hands rows on with the ciphertext I/O setting of the client. */
struct ClientDest
{
	DestReceiver pub;
	DestReceiver *inner;
	bool client_setting;
};

/* Hands one row on with the client's ciphertext I/O setting. */
bool
ClientReceive(TupleTableSlot *slot, DestReceiver *self)
{
	auto *d = reinterpret_cast<ClientDest *>(self);
	bool saved = SwapCiphertextIo(d->client_setting);
	bool ok = false;
	PG_TRY();
	{
		ok = d->inner->receiveSlot(slot, d->inner);
	}
	PG_FINALLY();
	{
		*g_ciphertext_io = saved;
	}
	PG_END_TRY();
	return ok;
}

/* Startup of the inner receiver. */
void
ClientStartup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	auto *d = reinterpret_cast<ClientDest *>(self);
	d->inner->rStartup(d->inner, operation, typeinfo);
}

/* Shutdown of the inner receiver. */
void
ClientShutdown(DestReceiver *self)
{
	auto *d = reinterpret_cast<ClientDest *>(self);
	d->inner->rShutdown(d->inner);
}

/* The wrapper is palloc'd in the query's context; the caller destroys the inner receiver. */
void
ClientDestroy(DestReceiver *)
{
}

/* ExecutorRun hook: remote execution and results in ciphertext, client rows as the client set. */
void
ExecutorRun(QueryDesc *qd, ScanDirection direction, uint64 count, bool execute_once) noexcept
{
	auto next = g_prev_run ? g_prev_run : standard_ExecutorRun;
	if (!CitusActive() || !StatementIsDistributed(qd->plannedstmt))
	{
		next(qd, direction, count, execute_once);
		return;
	}
	RefuseKeyPrincipal("a statement", qd->plannedstmt);
	auto *wrap = static_cast<ClientDest *>(palloc0(sizeof(ClientDest)));
	wrap->pub.receiveSlot = ClientReceive;
	wrap->pub.rStartup = ClientStartup;
	wrap->pub.rShutdown = ClientShutdown;
	wrap->pub.rDestroy = ClientDestroy;
	wrap->pub.mydest = qd->dest->mydest;
	wrap->inner = qd->dest;
	wrap->client_setting = *g_ciphertext_io;
	DestReceiver *orig = qd->dest;
	qd->dest = &wrap->pub;
	bool saved = SwapCiphertextIo(true);
	PG_TRY();
	{
		next(qd, direction, count, execute_once);
	}
	PG_FINALLY();
	{
		*g_ciphertext_io = saved;
		qd->dest = orig;
	}
	PG_END_TRY();
}

/* ProcessUtility hook: COPY into a Citus table in ciphertext; shreds after COMMIT PREPARED. */
void
Utility(PlannedStmt *pstmt, const char *query_string, bool read_only_tree,
		ProcessUtilityContext context, ParamListInfo params, QueryEnvironment *query_env,
		DestReceiver *dest, QueryCompletion *qc) noexcept
{
	auto next = g_prev_utility ? g_prev_utility : standard_ProcessUtility;
	Node *stmt = pstmt->utilityStmt;
	bool copy_in = false;
	if (IsA(stmt, CopyStmt) && CitusActive())
	{
		auto *copy = reinterpret_cast<CopyStmt *>(stmt);
		if (copy->is_from && copy->relation != nullptr)
		{
			Oid rel = RangeVarGetRelid(copy->relation, NoLock, true);
			copy_in = OidIsValid(rel) && g_api.is_citus_table(rel);
		}
	}
	bool commit_prepared =
		IsA(stmt, TransactionStmt) &&
		reinterpret_cast<TransactionStmt *>(stmt)->kind == TRANS_STMT_COMMIT_PREPARED;
	if (!copy_in)
	{
		next(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
		if (commit_prepared && g_api.has_been_loaded != nullptr)
			ProcessPendingShreds();
		return;
	}
	RefuseKeyPrincipal("COPY", nullptr);
	bool saved = SwapCiphertextIo(true);
	PG_TRY();
	{
		next(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
	}
	PG_FINALLY();
	{
		*g_ciphertext_io = saved;
	}
	PG_END_TRY();
}

/* Records what this backend's connection is (certificate, Citus name, gpid) and refuses a
 * Citus application name without the nodes' certificate while tokens are on. */
void
CaptureStartup(Port *port)
{
	g_startup.captured = true;
	bool internal = false;
	g_startup.gpid = CitusGpid(port->application_name, &internal);
	g_startup.citus_name = g_startup.gpid != 0;
	g_startup.internal = g_startup.citus_name && internal;
	if (port->application_name != nullptr)
		g_startup.app = MemoryContextStrdup(TopMemoryContext, port->application_name);
#ifdef USE_SSL
	g_startup.node_cert = GuardOn() && port->ssl_in_use && port->peer_cert_valid &&
						  port->peer_cn != nullptr && strcmp(port->peer_cn, g_node_cn) == 0;
#endif
	if (GuardOn() && g_startup.citus_name && !g_startup.node_cert)
		ereport(FATAL,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("a Citus application name is reserved for connections between Citus "
						"nodes"),
				 errdetail("The connection did not present a client certificate with CN \"%s\" "
						   "(vector_vault.citus_coordinator_cn).",
						   g_node_cn),
				 errhint("Give every node that certificate in citus.node_conninfo (sslcert, "
						 "sslkey); clients must not use a \"citus_... gpid=\" application "
						 "name.")));
}

/* Backends Citus opens on this node read and write envelopes from their start. */
void
ClientAuthentication(Port *port, int status) noexcept
{
	if (g_prev_auth)
		g_prev_auth(port, status);
	if (status == STATUS_OK && port != nullptr)
		CaptureStartup(port);
	if (status != STATUS_OK || port == nullptr || port->application_name == nullptr ||
		g_ciphertext_io == nullptr)
		return;
	for (const char *prefix : kCitusBackendPrefixes)
		if (strncmp(port->application_name, prefix, strlen(prefix)) == 0)
		{
			SetConfigOption("vector_vault.ciphertext_io", "on", PGC_BACKEND, PGC_S_CLIENT);
			return;
		}
}

/* application_name's check hook, chained: while tokens are on, a Citus name (from which Citus
 * takes the backend's gpid) only on a certified connection and only with its startup gpid. */
bool
AppNameCheck(char **newval, void **extra, GucSource source) noexcept
{
	if (g_prev_app_check != nullptr && !g_prev_app_check(newval, extra, source))
		return false;
	if (*newval == nullptr || !GuardOn() || MyProcPort == nullptr)
		return true; /* the postmaster, background and parallel workers */
	/* PGC_S_TEST only validates (ALTER ROLE ... SET, CREATE FUNCTION ... SET) */
	if (source != PGC_S_TEST && g_startup.captured &&
		(g_startup.app == nullptr || strcmp(*newval, g_startup.app) != 0))
		g_renamed = true;
	uint64 gpid = CitusGpid(*newval, nullptr);
	if (gpid == 0)
		return true;
	if (g_startup.captured && g_startup.node_cert && g_startup.citus_name && gpid == g_startup.gpid)
		return true;
	GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
	GUC_check_errmsg("a Citus application name with this gpid is reserved for connections "
					 "between Citus nodes");
	GUC_check_errhint("Use an application name that does not start with \"citus_\".");
	return false;
}

/* Forgets the resolved OID of assign_distributed_transaction_id when pg_proc changes. */
void
ProcChanged(Datum, int, uint32) noexcept
{
	g_assign_resolved = false;
	g_assign_oid = InvalidOid;
}

/* pg_catalog.assign_distributed_transaction_id(int, bigint, timestamptz), or InvalidOid. */
Oid
AssignOid()
{
	if (g_assign_resolved || g_assign_resolving || !IsTransactionState())
		return g_assign_oid;
	g_assign_resolving = true;
	Oid args[3] = {INT4OID, INT8OID, TIMESTAMPTZOID};
	Oid oid = LookupFuncName(list_make2(makeString(pstrdup("pg_catalog")),
										makeString(pstrdup("assign_distributed_transaction_id"))),
							 3, args, true);
	g_assign_resolving = false;
	g_assign_oid = oid;
	g_assign_resolved = true;
	return oid;
}

/* needs_fmgr_hook: calls of assign_distributed_transaction_id go through FmgrHook. */
bool
NeedsFmgr(Oid fn) noexcept
{
	if (g_prev_needs_fmgr != nullptr && g_prev_needs_fmgr(fn))
		return true;
	if (!GuardOn() || g_api.has_been_loaded == nullptr)
		return false;
	Oid assign = AssignOid();
	return OidIsValid(assign) && fn == assign;
}

/* fmgr_hook: only certified Citus connections may adopt a distributed transaction id. */
void
FmgrHook(FmgrHookEventType event, FmgrInfo *flinfo, Datum *priv) noexcept
{
	/* AssignOid() resolves again after a pg_proc invalidation (never a stale InvalidOid) */
	if (event == FHET_START && GuardOn() && !CertifiedCitusConnection() &&
		flinfo->fn_oid == AssignOid())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("assign_distributed_transaction_id is reserved for connections between "
						"Citus nodes"),
				 errdetail("vector_vault binds API-key principals to the distributed "
						   "transaction (vector_vault.citus_coordinator_cn is set).")));
	if (g_prev_fmgr != nullptr)
		g_prev_fmgr(event, flinfo, priv);
}

/* Chains AppNameCheck into application_name's check hook. */
void
InstallAppNameCheck()
{
	struct config_generic **vars = get_guc_variables();
	int n = GetNumConfigOptions();
	for (int i = 0; i < n; i++)
		if (vars[i]->vartype == PGC_STRING && strcmp(vars[i]->name, "application_name") == 0)
		{
			auto *var = reinterpret_cast<struct config_string *>(vars[i]);
			g_prev_app_check = var->check_hook;
			var->check_hook = AppNameCheck;
			return;
		}
}

/* Finds the variable behind vector_vault.ciphertext_io. */
bool *
FindCiphertextVariable()
{
	struct config_generic **vars = get_guc_variables();
	int n = GetNumConfigOptions();
	for (int i = 0; i < n; i++)
		if (vars[i]->vartype == PGC_BOOL &&
			strcmp(vars[i]->name, "vector_vault.ciphertext_io") == 0)
			return reinterpret_cast<struct config_bool *>(vars[i])->variable;
	return nullptr;
}

/* Copies an SPI text column (nullptr for NULL) into the current memory context. */
char *
SpiText(int row, int col)
{
	return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
}

/* Appends the keyring entries of every active vault version, hex-encoded, as a JSON array. */
void
AppendEntries(StringInfo out)
{
	int rc = SPI_execute("SELECT vault_id, COALESCE(keyring_id, vault_id), key_version "
						 "FROM vault._vaults WHERE state OPERATOR(pg_catalog.=) 'active'",
						 false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "vector_vault: could not read the vault catalog");
	const char *dir = keys::KeyringDir();
	appendStringInfoChar(out, '[');
	bool first = true;
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		uint64_t vault_id = strtoull(SpiText(r, 1), nullptr, 10);
		uint64_t kid = strtoull(SpiText(r, 2), nullptr, 10);
		uint32_t current = static_cast<uint32_t>(strtoul(SpiText(r, 3), nullptr, 10));
		for (uint32_t v = 1; v <= current; v++)
		{
			char name[kKeyringFileNameMax];
			DataKeyFileName(kid, v, name);
			uint8_t entry[kKeyringEntryBytes];
			size_t len = 0;
			LWLockAcquire(pg::Shared()->keyring_lock, LW_SHARED);
			Status s = ReadSmallFile(dir, name, entry, sizeof(entry), &len);
			LWLockRelease(pg::Shared()->keyring_lock);
			if (s.code() == Code::kNotFound)
				continue; /* a retired version */
			if (!s.ok())
				pg::ThrowStatus(s, "could not read a keyring entry to send to the workers",
								nullptr);
			char hex[2 * kKeyringEntryBytes + 1];
			EncodeHexLower(entry, len, hex);
			hex[2 * len] = '\0';
			appendStringInfo(out,
							 "%s{\"vault_id\": %" PRIu64 ", \"kid\": %" PRIu64
							 ", \"version\": %u, \"entry\": \"%s\"}",
							 first ? "" : ", ", vault_id, kid, v, hex);
			first = false;
		}
	}
	appendStringInfoChar(out, ']');
}

/*
 * The whole vault catalog and the wrapped keyring entries as JSON text (palloc'd), stamped with
 * the next catalog generation (*generation). Pushes are serialized by an EXCLUSIVE lock on
 * vault._citus_nodes held to the end of the transaction, so a snapshot is built after every push
 * that committed before it (a catch-up never carries a catalog older than a drop it raced with),
 * and generations grow in commit order.
 */
char *
BuildSnapshot(int64 *generation)
{
	StringInfoData out;
	initStringInfo(&out);
	pg::PrivilegedScope scope;
	pg::EnterPrivileged(&scope);
	if (SPI_execute("LOCK TABLE vault._citus_nodes IN EXCLUSIVE MODE", false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "vector_vault: could not lock vault._citus_nodes");
	if (SPI_execute("SELECT pg_catalog.nextval('vault._citus_generation')", false, 1) !=
			SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "vector_vault: could not take a catalog generation");
	bool isnull;
	*generation =
		DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	int rc = SPI_execute(
		"SELECT pg_catalog.jsonb_build_object("
		"'vaults', COALESCE((SELECT pg_catalog.jsonb_agg(t) FROM vault._vaults t), '[]'),"
		"'grants', COALESCE((SELECT pg_catalog.jsonb_agg(t) FROM vault._grants t), '[]'),"
		"'api_keys', COALESCE((SELECT pg_catalog.jsonb_agg(t) FROM vault._api_keys t), '[]'),"
		"'api_key_vaults', COALESCE((SELECT pg_catalog.jsonb_agg(t) "
		"FROM vault._api_key_vaults t), '[]'),"
		"'key_passwords', COALESCE((SELECT pg_catalog.jsonb_agg(t) "
		"FROM vault._key_passwords t), '[]'))::text",
		false, 1); /* not read-only: a fresh snapshot sees the triggering statement's rows */
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "vector_vault: could not read the vault catalog");
	char *catalog = SpiText(0, 1); /* in SPI's context: used before LeavePrivileged */
	appendStringInfo(
		&out, "{\"generation\": %" PRId64 ", \"catalog\": %s, \"entries\": ", *generation, catalog);
	AppendEntries(&out);
	appendStringInfoChar(&out, '}');
	/* out.data was allocated before SPI connected, in the caller's context */
	pg::LeavePrivileged(&scope);
	return out.data;
}

/* The nodes Citus' SendCommandToWorkersWithMetadata reaches (TargetWorkerSetNodeList). */
#define VV_PUSH_TARGETS                                                                            \
	"n.isactive AND n.noderole OPERATOR(pg_catalog.=) 'primary' AND n.groupid "                    \
	"OPERATOR(pg_catalog.<>) 0 AND n.hasmetadata"

/*
 * Records that every node the push reached holds `generation` once this transaction commits
 * (the push is part of it: the nodes commit it with the coordinator or not at all). A node the
 * push skipped (disabled, no metadata) keeps its older generation and is caught up later.
 */
void
RecordPushedNodes(int64 generation)
{
	pg::PrivilegedScope scope;
	pg::EnterPrivileged(&scope);
	Oid types[1] = {INT8OID};
	Datum values[1] = {Int64GetDatum(generation)};
	int rc = SPI_execute_with_args(
		"INSERT INTO vault._citus_nodes AS s (nodeid, nodename, nodeport, generation, synced_at) "
		"SELECT n.nodeid, n.nodename, n.nodeport, $1, pg_catalog.now() "
		"FROM pg_catalog.pg_dist_node n WHERE " VV_PUSH_TARGETS " "
		"ON CONFLICT (nodeid) DO UPDATE SET nodename = EXCLUDED.nodename, nodeport = "
		"EXCLUDED.nodeport, generation = EXCLUDED.generation, synced_at = EXCLUDED.synced_at",
		1, types, values, nullptr, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "vector_vault: could not record the nodes the catalog reached");
	pg::LeavePrivileged(&scope);
}

/* Sends the snapshot to every worker with metadata, inside this distributed transaction. */
void
PushSnapshot()
{
	if (g_api.send_to_workers_as_superuser == nullptr)
		return;
	int64 generation = 0;
	char *snapshot = BuildSnapshot(&generation);
	char *command =
		psprintf("SELECT vault._citus_apply(%s::pg_catalog.text)", quote_literal_cstr(snapshot));
	/* The command holds password and key digests and wrapped keys: never echoed to the client
	 * (citus.log_remote_commands is a user setting), whatever the session set. */
	int nest = NewGUCNestLevel();
	(void) set_config_option("citus.log_remote_commands", "off", PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, DEBUG1, false);
	g_api.send_to_workers_as_superuser(command);
	AtEOXact_GUC(true, nest);
	pfree(command);
	pfree(snapshot);
	RecordPushedNodes(generation);
}

/* True when this database has the catch-up table (vector_vault 0.2.0 with Citus support). */
bool
HasCatchUpTable()
{
	Oid nsp = get_namespace_oid("vault", true);
	return OidIsValid(nsp) && OidIsValid(get_relname_relid("_citus_nodes", nsp));
}

/* True when an active node the push reaches holds an older catalog than the newest pushed. */
bool
SomeNodeBehind()
{
	int rc = SPI_execute(
		"SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_node n LEFT JOIN vault._citus_nodes s "
		"ON s.nodeid OPERATOR(pg_catalog.=) n.nodeid WHERE " VV_PUSH_TARGETS " AND "
		"(s.generation IS NULL OR s.generation OPERATOR(pg_catalog.<) "
		"(SELECT pg_catalog.max(generation) FROM vault._citus_nodes)))",
		false, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "vector_vault: could not compare the nodes' catalog generations");
	bool isnull;
	return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * Catch-up, before every distributed statement on the coordinator: a node that is active now but
 * missed catalog pushes (it was disabled while a vault was dropped or a key rotated, or was added
 * later) gets the whole catalog first, in this statement's transaction, so it has applied the
 * drops and rotations -- and shreds the keys the others shredded, at COMMIT PREPARED -- before
 * the statement's queries reach it. A read-only transaction cannot push, so it fails instead of
 * reaching a node that is behind. The lookup runs again only after pg_dist_node changed (Citus
 * invalidates its relcache entry on every node change: activation, addition, removal) or after
 * kNodesRecheckSeconds; nodes fall behind only through such a change (or a superuser's edit of
 * vault._citus_nodes).
 */
void
CatchUpWorkers()
{
	if (g_catching_up || g_applying || OnWorker() || IsInParallelMode())
		return;
	TimestampTz now = GetCurrentTimestamp();
	if (g_nodes_current &&
		!TimestampDifferenceExceeds(g_nodes_checked_at, now, kNodesRecheckSeconds * 1000))
		return;
	if (!HasCatchUpTable())
		return;
	if (!OidIsValid(g_dist_node_relid))
		g_dist_node_relid = get_relname_relid("pg_dist_node", PG_CATALOG_NAMESPACE);
	pg::PrivilegedScope scope;
	pg::EnterPrivileged(&scope);
	bool behind = SomeNodeBehind();
	if (behind && XactReadOnly)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("a Citus worker is behind the vault catalog"),
				 errdetail("The worker missed vault catalog changes (it was disabled or added "
						   "since); a read-only transaction cannot send it the catalog."),
				 errhint("Run a distributed statement in a read-write transaction once, or SELECT "
						 "vault.citus_sync() on the coordinator.")));
	if (behind)
	{
		/* the pushes' lock, then look again: another session may have caught the node up */
		if (SPI_execute("LOCK TABLE vault._citus_nodes IN EXCLUSIVE MODE", false, 0) !=
			SPI_OK_UTILITY)
			elog(ERROR, "vector_vault: could not lock vault._citus_nodes");
		behind = SomeNodeBehind();
	}
	pg::LeavePrivileged(&scope);
	if (!behind)
	{
		g_nodes_current = true;
		g_nodes_checked_at = now;
		return;
	}
	g_catching_up = true;
	PG_TRY();
	{
		PushSnapshot();
	}
	PG_FINALLY();
	{
		g_catching_up = false;
	}
	PG_END_TRY();
}

/* Relcache callback: a change of pg_dist_node (or of every relation) asks for a new check. */
void
NodesChanged(Datum, Oid relid) noexcept
{
	if (relid == InvalidOid || relid == g_dist_node_relid)
	{
		g_nodes_current = false;
		g_dist_node_relid = InvalidOid;
	}
}

/* True on a Citus worker (a node whose group is not the coordinator's, 0). */
bool
OnWorker()
{
	return g_api.local_group_id != nullptr && g_api.local_group_id() != 0;
}

/* Shreds a keyring entry version (0: all) at the end of the current transaction. */
void
ShredLater(uint64_t vault_id, uint32_t version)
{
	Oid types[2] = {INT8OID, INT4OID};
	Datum values[2] = {Int64GetDatum(static_cast<int64>(vault_id)),
					   Int32GetDatum(static_cast<int32>(version))};
	int rc =
		SPI_execute_with_args("INSERT INTO vault._citus_pending_shreds (vault_id, key_version) "
							  "VALUES ($1, $2) ON CONFLICT DO NOTHING",
							  2, types, values, nullptr, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "vector_vault: could not record a pending shred");
}

/* Writes the entries of the snapshot this worker lacks, after checking each opens here. */
void
ApplyEntries(text *snapshot)
{
	Oid types[1] = {TEXTOID};
	Datum values[1] = {PointerGetDatum(snapshot)};
	int rc = SPI_execute_with_args(
		"SELECT (e OPERATOR(pg_catalog.->>) 'vault_id')::bigint, "
		"(e OPERATOR(pg_catalog.->>) 'kid')::bigint, (e OPERATOR(pg_catalog.->>) 'version')::int, "
		"pg_catalog.decode(e OPERATOR(pg_catalog.->>) 'entry', 'hex') "
		"FROM pg_catalog.jsonb_array_elements($1::pg_catalog.jsonb OPERATOR(pg_catalog.->) "
		"'entries') e",
		1, types, values, nullptr, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "vector_vault: could not read the keyring entries sent by the coordinator");
	const char *dir = keys::KeyringDir();
	SPITupleTable *tt = SPI_tuptable;
	uint64 n = SPI_processed;
	for (uint64 r = 0; r < n; r++)
	{
		bool isnull;
		uint64_t kid = static_cast<uint64_t>(
			DatumGetInt64(SPI_getbinval(tt->vals[r], tt->tupdesc, 2, &isnull)));
		uint32_t version = static_cast<uint32_t>(
			DatumGetInt32(SPI_getbinval(tt->vals[r], tt->tupdesc, 3, &isnull)));
		bytea *entry = DatumGetByteaPP(SPI_getbinval(tt->vals[r], tt->tupdesc, 4, &isnull));
		const uint8_t *data = reinterpret_cast<const uint8_t *>(VARDATA_ANY(entry));
		size_t len = VARSIZE_ANY_EXHDR(entry);
		char name[kKeyringFileNameMax];
		DataKeyFileName(kid, version, name);
		uint8_t existing[kKeyringEntryBytes];
		size_t existing_len = 0;
		uint8_t key[kKeyBytes];
		KeyringEntryInfo expected;
		expected.kind = KeyringEntryKind::kDataKey;
		expected.vault_id = kid;
		expected.key_version = version;
		LWLockAcquire(pg::Shared()->keyring_lock, LW_EXCLUSIVE);
		Status s = ReadSmallFile(dir, name, existing, sizeof(existing), &existing_len);
		bool missing = s.code() == Code::kNotFound;
		if (missing)
		{
			s = OpenKeyringEntry(keys::detail::MasterKeyBytes(), data, len, expected, key);
			SecureZero(key, sizeof(key));
			if (s.ok())
				s = WriteFileDurably(dir, name, data, len);
		}
		LWLockRelease(pg::Shared()->keyring_lock);
		if (!s.ok())
			ereport(ERROR,
					(errcode(pg::kSqlStateMasterKey),
					 errmsg("could not install key version %u of keyring id %016" PRIx64
							" sent by the coordinator: %s",
							version, kid, s.message()),
					 errhint("Every node of a Citus cluster needs the same vector_vault master "
							 "key (docs/citus.md).")));
		uint32_t claim_db = 0;
		if (missing && keys::ClaimOf(kid, &claim_db) == keys::ClaimOwner::kNobody)
			keys::WriteClaim(kid);
	}
}

/* Records shreds for dropped vaults and retired versions this worker still holds. */
void
RecordShreds(text *snapshot)
{
	Oid types[1] = {TEXTOID};
	Datum values[1] = {PointerGetDatum(snapshot)};
	/* every version this node's catalog knows, with whether the coordinator still has it */
	int rc = SPI_execute_with_args(
		"SELECT v.vault_id, COALESCE(v.keyring_id, v.vault_id), v.state, v.key_version, "
		"ARRAY(SELECT (e OPERATOR(pg_catalog.->>) 'version')::int "
		"FROM pg_catalog.jsonb_array_elements($1::pg_catalog.jsonb OPERATOR(pg_catalog.->) "
		"'entries') e WHERE (e OPERATOR(pg_catalog.->>) 'vault_id')::bigint "
		"OPERATOR(pg_catalog.=) v.vault_id) FROM vault._vaults v",
		1, types, values, nullptr, false, 0); /* not read-only: sees the rows just applied */
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "vector_vault: could not read the vault catalog");
	SPITupleTable *tt = SPI_tuptable;
	uint64 n = SPI_processed;
	const char *dir = keys::KeyringDir();
	for (uint64 r = 0; r < n; r++)
	{
		bool isnull;
		uint64_t vault_id = static_cast<uint64_t>(
			DatumGetInt64(SPI_getbinval(tt->vals[r], tt->tupdesc, 1, &isnull)));
		uint64_t kid = static_cast<uint64_t>(
			DatumGetInt64(SPI_getbinval(tt->vals[r], tt->tupdesc, 2, &isnull)));
		char *state = SPI_getvalue(tt->vals[r], tt->tupdesc, 3);
		uint32_t current = static_cast<uint32_t>(
			DatumGetInt32(SPI_getbinval(tt->vals[r], tt->tupdesc, 4, &isnull)));
		char *kept = SPI_getvalue(tt->vals[r], tt->tupdesc, 5); /* "{1,2}" */
		if (strcmp(state, "active") != 0)
		{
			if (keys::KeyringHasEntries(dir, kid))
				ShredLater(vault_id, 0);
			continue;
		}
		for (uint32_t v = 1; v < current; v++)
		{
			char name[kKeyringFileNameMax];
			DataKeyFileName(kid, v, name);
			uint8_t buf[kKeyringEntryBytes];
			size_t len = 0;
			if (ReadSmallFile(dir, name, buf, sizeof(buf), &len).code() == Code::kNotFound)
				continue;
			/* kept lists the versions the coordinator still has, e.g. "{2,3}" */
			char needle[16];
			snprintf(needle, sizeof(needle), "%u", v);
			bool still = false;
			for (char *p = kept; *p != '\0';)
			{
				while (*p == '{' || *p == ',' || *p == '}')
					p++;
				size_t k = strspn(p, "0123456789");
				if (k > 0 && k == strlen(needle) && strncmp(p, needle, k) == 0)
					still = true;
				p += k;
				if (k == 0 && *p != '\0')
					p++;
			}
			if (!still)
				ShredLater(vault_id, v);
		}
	}
}

} // namespace

/*
 * After COMMIT PREPARED: a prepared transaction's own backend never sees XACT_EVENT_COMMIT, so
 * the access-epoch bump an applied snapshot asked for is done here, once the change is final
 * (every backend of this node then reloads its rights at its next statement), and the shreds it
 * recorded are carried out at the end of this statement's transaction.
 */
void
ProcessPendingShreds()
{
	Oid nsp = get_namespace_oid("vault", true);
	if (!IsTransactionState() || !OidIsValid(nsp) ||
		!OidIsValid(get_relname_relid("_citus_pending_shreds", nsp)))
		return;
	pg::BumpAccessEpoch();
	keys::InvalidateDataKeyCache();
	vault::InvalidateCache();
	pg::PrivilegedScope scope;
	pg::EnterPrivileged(&scope);
	int rc = SPI_execute("SELECT DISTINCT ON (vault_id) vault_id, key_version "
						 "FROM vault._citus_pending_shreds ORDER BY vault_id, key_version",
						 false, 0);
	if (rc == SPI_OK_SELECT)
	{
		SPITupleTable *tt = SPI_tuptable;
		uint64 n = SPI_processed;
		for (uint64 r = 0; r < n; r++)
		{
			bool isnull;
			int64 vault_id = DatumGetInt64(SPI_getbinval(tt->vals[r], tt->tupdesc, 1, &isnull));
			int32 version = DatumGetInt32(SPI_getbinval(tt->vals[r], tt->tupdesc, 2, &isnull));
			keys::ScheduleShred(static_cast<uint64_t>(vault_id), static_cast<uint32_t>(version));
			Oid types[2] = {INT8OID, INT4OID};
			Datum values[2] = {Int64GetDatum(vault_id), Int32GetDatum(version)};
			SPI_execute_with_args("DELETE FROM vault._citus_pending_shreds WHERE vault_id "
								  "OPERATOR(pg_catalog.=) $1 AND (key_version "
								  "OPERATOR(pg_catalog.=) $2 OR $2 OPERATOR(pg_catalog.=) 0)",
								  2, types, values, nullptr, false, 0);
		}
	}
	pg::LeavePrivileged(&scope);
}

/* Defines vector_vault.citus_coordinator_cn (from _PG_init, before the prefix is reserved). */
void
DefineGucs()
{
	DefineCustomStringVariable(
		"vector_vault.citus_coordinator_cn",
		"Subject CN of the client certificate Citus nodes present to each other; turns on "
		"API-key sessions on distributed tables.",
		"Empty (the default): workers refuse every principal token. Set the same value on every "
		"node, with that certificate in citus.node_conninfo (docs/citus.md, \"Principals\").",
		&g_node_cn, "", PGC_POSTMASTER, GUC_SUPERUSER_ONLY, nullptr, nullptr, nullptr);
}

/* Installs the hooks and finds Citus. */
void
Register()
{
	g_ciphertext_io = FindCiphertextVariable();
	g_api.has_been_loaded =
		reinterpret_cast<bool (*)(void)>(dlsym(RTLD_DEFAULT, "CitusHasBeenLoaded"));
	g_api.local_group_id =
		reinterpret_cast<int32 (*)(void)>(dlsym(RTLD_DEFAULT, "GetLocalGroupId"));
	g_api.is_citus_table = reinterpret_cast<bool (*)(Oid)>(dlsym(RTLD_DEFAULT, "IsCitusTable"));
	g_api.send_to_workers_as_superuser = reinterpret_cast<void (*)(const char *)>(
		dlsym(RTLD_DEFAULT, "SendCommandToWorkersWithMetadataViaSuperUser"));
	g_api.use_coordinated_transaction =
		reinterpret_cast<void (*)(void)>(dlsym(RTLD_DEFAULT, "UseCoordinatedTransaction"));
	g_api.current_transaction_id = reinterpret_cast<CitusTransactionId *(*) (void)>(
		dlsym(RTLD_DEFAULT, "GetCurrentDistributedTransactionId"));
	g_api.global_pid = reinterpret_cast<uint64 (*)(void)>(dlsym(RTLD_DEFAULT, "GetGlobalPID"));
	if (g_api.has_been_loaded == nullptr || g_api.local_group_id == nullptr ||
		g_api.is_citus_table == nullptr || g_api.send_to_workers_as_superuser == nullptr)
	{
		g_api = CitusApi();
		return; /* no Citus in this server (or not preloaded before vector_vault) */
	}
	g_prev_planner = planner_hook;
	planner_hook = Planner;
	g_prev_start = ExecutorStart_hook;
	ExecutorStart_hook = ExecutorStart;
	g_prev_run = ExecutorRun_hook;
	ExecutorRun_hook = ExecutorRun;
	g_prev_utility = ProcessUtility_hook;
	ProcessUtility_hook = Utility;
	g_prev_auth = ClientAuthentication_hook;
	ClientAuthentication_hook = ClientAuthentication;
	CacheRegisterRelcacheCallback(NodesChanged, static_cast<Datum>(0));
	if (GuardOn())
	{
		InstallAppNameCheck();
		g_prev_needs_fmgr = needs_fmgr_hook;
		needs_fmgr_hook = NeedsFmgr;
		g_prev_fmgr = fmgr_hook;
		fmgr_hook = FmgrHook;
		CacheRegisterSyscacheCallback(PROCOID, ProcChanged, static_cast<Datum>(0));
	}
}

} // namespace vector_vault::vault::citus

using namespace vector_vault;

/* vault._citus_catalog_changed(): statement trigger on the catalog tables. */
VV_FUNCTION(vault_citus_catalog_changed)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "vault._citus_catalog_changed must be called as a trigger");
	if (vault::citus::CitusActive() && !vault::citus::g_applying)
	{
		if (vault::citus::OnWorker())
			ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							errmsg("vault catalog changes on a Citus worker are not allowed"),
							errdetail("Workers receive the vault catalog from the coordinator."),
							errhint("Run vault management functions on the coordinator.")));
		vault::citus::PushSnapshot();
	}
	PG_RETURN_POINTER(nullptr);
}

/* vault._citus_apply(snapshot text): a worker takes the coordinator's catalog (superuser). */
VV_FUNCTION(vault_citus_apply)
{
	if (!superuser())
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						errmsg("only a superuser (the Citus coordinator) may apply a vault "
							   "catalog snapshot")));
	if (!vault::citus::CitusActive() || !vault::citus::OnWorker())
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("vault._citus_apply runs only on Citus workers")));
	keys::RequireMasterKey();
	text *snapshot = PG_GETARG_TEXT_PP(0);
	vault::citus::g_applying = true;
	PG_TRY();
	{
		pg::PrivilegedScope scope;
		pg::EnterPrivileged(&scope);
		vault::citus::ApplyEntries(snapshot);
		Oid types[1] = {TEXTOID};
		Datum values[1] = {PointerGetDatum(snapshot)};
		static const char *const kStatements[] = {
			"DELETE FROM vault._api_key_vaults",
			"DELETE FROM vault._grants",
			"DELETE FROM vault._api_keys",
			"DELETE FROM vault._key_passwords",
			"INSERT INTO vault._vaults SELECT r.* FROM pg_catalog.jsonb_populate_recordset("
			"NULL::vault._vaults, $1::pg_catalog.jsonb OPERATOR(pg_catalog.->) 'catalog' "
			"OPERATOR(pg_catalog.->) 'vaults') r ORDER BY r.state OPERATOR(pg_catalog.=) 'active' "
			"ON CONFLICT (vault_id) DO UPDATE SET name = EXCLUDED.name, owner = EXCLUDED.owner, "
			"state = EXCLUDED.state, key_version = EXCLUDED.key_version, created_at = "
			"EXCLUDED.created_at, dropped_at = EXCLUDED.dropped_at, keyring_id = "
			"EXCLUDED.keyring_id",
			"INSERT INTO vault._grants SELECT r.* FROM pg_catalog.jsonb_populate_recordset("
			"NULL::vault._grants, $1::pg_catalog.jsonb OPERATOR(pg_catalog.->) 'catalog' "
			"OPERATOR(pg_catalog.->) 'grants') r",
			"INSERT INTO vault._api_keys SELECT r.* FROM pg_catalog.jsonb_populate_recordset("
			"NULL::vault._api_keys, $1::pg_catalog.jsonb OPERATOR(pg_catalog.->) 'catalog' "
			"OPERATOR(pg_catalog.->) 'api_keys') r",
			"INSERT INTO vault._api_key_vaults SELECT r.* FROM pg_catalog.jsonb_populate_recordset("
			"NULL::vault._api_key_vaults, $1::pg_catalog.jsonb OPERATOR(pg_catalog.->) 'catalog' "
			"OPERATOR(pg_catalog.->) 'api_key_vaults') r",
			"INSERT INTO vault._key_passwords SELECT r.* FROM pg_catalog.jsonb_populate_recordset("
			"NULL::vault._key_passwords, $1::pg_catalog.jsonb OPERATOR(pg_catalog.->) 'catalog' "
			"OPERATOR(pg_catalog.->) 'key_passwords') r",
		};
		for (const char *sql : kStatements)
		{
			int rc = SPI_execute_with_args(sql, 1, types, values, nullptr, false, 0);
			if (rc < 0)
				elog(ERROR, "vector_vault: applying the vault catalog failed: %s",
					 SPI_result_code_string(rc));
		}
		keys::InvalidateKeyringIds();
		vault::citus::RecordShreds(snapshot);
		int rc = SPI_execute_with_args(
			"INSERT INTO vault._citus_applied (generation, applied_at) SELECT COALESCE("
			"($1::pg_catalog.jsonb OPERATOR(pg_catalog.->>) 'generation')::bigint, 0), "
			"pg_catalog.now() ON CONFLICT (one) DO UPDATE SET generation = EXCLUDED.generation, "
			"applied_at = EXCLUDED.applied_at",
			1, types, values, nullptr, false, 0);
		if (rc != SPI_OK_INSERT)
			elog(ERROR, "vector_vault: could not record the applied catalog generation");
		pg::LeavePrivileged(&scope);
	}
	PG_FINALLY();
	{
		vault::citus::g_applying = false;
	}
	PG_END_TRY();
	vault::BumpEpochAtCommit();
	keys::InvalidateDataKeyCache();
	PG_RETURN_VOID();
}

/* vault.citus_sync(): sends the catalog to every worker now (superuser, on the coordinator). */
VV_FUNCTION(vault_citus_sync)
{
	if (!superuser())
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						errmsg("only a superuser may run vault.citus_sync()")));
	if (!vault::citus::CitusActive() || vault::citus::OnWorker())
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("vault.citus_sync() runs on the Citus coordinator"),
						errhint("Preload citus before vector_vault and CREATE EXTENSION citus.")));
	vault::citus::PushSnapshot();
	PG_RETURN_VOID();
}

/* vault._citus_held_keys(): the keyring entries on this node's disk for the vaults its catalog
 * knows, as a JSON array of {"vault_id", "version"} (superuser; vault.citus_pending_shreds). */
VV_FUNCTION(vault_citus_held_keys)
{
	if (!superuser())
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						errmsg("only a superuser may list the keyring entries of a node")));
	const char *dir = keys::KeyringDir();
	StringInfoData out;
	initStringInfo(&out);
	appendStringInfoChar(&out, '[');
	bool first = true;
	pg::PrivilegedScope scope;
	pg::EnterPrivileged(&scope);
	int rc = SPI_execute("SELECT vault_id, COALESCE(keyring_id, vault_id), key_version "
						 "FROM vault._vaults ORDER BY vault_id",
						 true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "vector_vault: could not read the vault catalog");
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool isnull;
		int64 vault_id =
			DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
		uint64_t kid = static_cast<uint64_t>(
			DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull)));
		int32 current =
			DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 3, &isnull));
		for (int32 v = 1; v <= current; v++)
		{
			char name[kKeyringFileNameMax];
			DataKeyFileName(kid, static_cast<uint32_t>(v), name);
			uint8_t buf[kKeyringEntryBytes];
			size_t len = 0;
			LWLockAcquire(pg::Shared()->keyring_lock, LW_SHARED);
			Status s = ReadSmallFile(dir, name, buf, sizeof(buf), &len);
			LWLockRelease(pg::Shared()->keyring_lock);
			SecureZero(buf, sizeof(buf));
			if (s.code() == Code::kNotFound)
				continue;
			appendStringInfo(&out, "%s{\"vault_id\": %" PRId64 ", \"version\": %d}",
							 first ? "" : ", ", vault_id, v);
			first = false;
		}
	}
	pg::LeavePrivileged(&scope);
	appendStringInfoChar(&out, ']');
	PG_RETURN_TEXT_P(cstring_to_text(out.data));
}

/* vault._citus_as_key(token text): the statement's transaction acts as the coordinator
 * session's API key (on a worker; see core/principal_token.h). Returns true or raises. */
VV_FUNCTION(vault_citus_as_key)
{
	namespace citus = vault::citus;
	if (!citus::KeyTokensOn())
		ereport(ERROR, (errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
						errmsg("principal tokens are not accepted"),
						errhint("API-key sessions use distributed tables only with "
								"vector_vault.citus_coordinator_cn set (docs/citus.md).")));
	char *token = text_to_cstring(PG_GETARG_TEXT_PP(0));
	/* bound to this backend's distributed transaction and the gpid of the coordinator session
	 * that opened its connection; on the coordinator (local execution) the statement runs in the
	 * key session itself */
	citus::CitusTransactionId xid = citus::CurrentTransactionId();
	/* a connection a node opened (a worker's, or the coordinator's to itself) */
	bool remote = citus::CertifiedCitusConnection();
	if (!remote && !citus::OnWorker() && auth::CurrentKey() == nullptr)
		ereport(ERROR, (errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
						errmsg("principal tokens are accepted only on Citus workers")));
	uint64 gpid = remote ? citus::g_startup.gpid : citus::g_api.global_pid();
	if (xid.number == 0 || gpid == 0 || (remote && !IsTransactionBlock()) ||
		(!remote && citus::OnWorker()))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("principal tokens are accepted only in a distributed transaction on a "
						"connection the Citus coordinator opened"),
				 errhint("Principal tokens are made by the Citus coordinator for its own "
						 "connections.")));
	char *context = citus::TokenContext(GetUserNameFromId(GetUserId(), false), xid, gpid);
	uint8_t tk[kPrincipalTokenKeyBytes];
	citus::TokenKey(tk);
	PrincipalTokenClaims claims;
	Status s = OpenPrincipalToken(tk, token, context, &claims);
	if (!s.ok() || claims.expiry < static_cast<uint64_t>(time(nullptr)))
	{
		SecureZero(tk, sizeof(tk));
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("%s", s.ok() ? "expired principal token" : "invalid principal token"),
				 errhint(s.ok() ? "Prepare the statement again on the coordinator."
								: "Principal tokens are made by the Citus coordinator for "
								  "its own connections.")));
	}
	/* which of the key's secrets the session presented: the current one or the previous one */
	uint8_t digest[32];
	bool found = false;
	pg::CatalogScan scan;
	pg::BeginCatalogScan(&scan, "_api_keys");
	AttrNumber a_id = pg::CatalogColumn(&scan, "key_id");
	AttrNumber a_hash = pg::CatalogColumn(&scan, "secret_hash");
	AttrNumber a_old = pg::CatalogColumn(&scan, "old_secret_hash");
	while (!found && pg::NextCatalogRow(&scan))
	{
		bool isnull;
		Datum id = pg::CatalogValue(&scan, a_id, &isnull);
		if (isnull || strcmp(TextDatumGetCString(id), claims.key_id) != 0)
			continue;
		AttrNumber cols[2] = {a_hash, a_old};
		for (AttrNumber col : cols)
		{
			Datum h = pg::CatalogValue(&scan, col, &isnull);
			if (isnull)
				continue;
			bytea *b = DatumGetByteaPP(h);
			if (VARSIZE_ANY_EXHDR(b) != 32)
				continue;
			if (PrincipalTokenDigestMatches(tk, reinterpret_cast<const uint8_t *>(VARDATA_ANY(b)),
											claims.digest_mac))
			{
				memcpy(digest, VARDATA_ANY(b), 32);
				found = true;
				break;
			}
		}
	}
	pg::EndCatalogScan(&scan);
	SecureZero(tk, sizeof(tk));
	if (!found)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("API key %s named by the principal token is not in this node's catalog",
						claims.key_id),
				 errhint("Run SELECT vault.citus_sync() on the coordinator.")));
	/* revoked, expired or rotated past its overlap: refused before any scan (the vault cache
	 * would refuse the decryption too) */
	auth::KeyValidity validity = auth::CheckKey(claims.key_id, digest);
	if (!validity.valid)
	{
		SecureZero(digest, sizeof(digest));
		ereport(ERROR, (errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
						errmsg("API key %s named by the principal token is not valid: %s",
							   claims.key_id, validity.reason)));
	}
	auth::KeyPrincipal *cur = auth::CurrentKey();
	bool same = cur != nullptr && strcmp(cur->key_id, claims.key_id) == 0 &&
				ConstantTimeEqual(cur->digest, digest, 32);
	if (!same && !remote)
	{
		/* local execution on the coordinator runs in the key session itself; nobody else may
		 * turn a token into a key login here */
		SecureZero(digest, sizeof(digest));
		ereport(ERROR, (errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
						errmsg("principal tokens are accepted only on Citus workers")));
	}
	if (!same)
		auth::detail::SetKey(claims.key_id, digest, true);
	SecureZero(digest, sizeof(digest));
	PG_RETURN_BOOL(true);
}
