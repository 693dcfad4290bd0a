/*
 * redact.cpp — what the server log may show of statements that carry secrets or plaintext.
 *
 * Two kinds of value must never reach the server log: secrets (API keys, key-management
 * passwords: the arguments of vault.login, create_api_key, rotate_api_key, revoke_api_key and
 * set_key_password) and plaintext (what etext, ejsonb and evector seal or open). Postgres writes
 * statement text and values to the log in several places:
 *
 *   log_statement          "statement: <text>" (simple protocol: right after raw parsing, BEFORE
 *                          analysis), "execute <name>: <text>" with DETAIL "parameters: $1 = ..."
 *                          (extended protocol, after the Parse message's analysis);
 *   log_min_duration_*     "duration: ... statement/parse/bind/execute ...", after the work;
 *   log_min_error_statement  the STATEMENT: line of a message (debug_query_string);
 *   error texts            message, DETAIL, CONTEXT (which may quote input values or, with
 *                          log_parameter_max_length_on_error, the bind parameters);
 *   auto_explain           "Query Text:" and plans whose constants are the statement's values.
 *
 * Secrets: a statement is SECRET when it calls one of the secret-taking functions. "Calls" is
 * decided on what Postgres resolved, not on spelling: the functions are identified by OID (every
 * C function bound to one of our five secret-taking symbols, whatever its name or schema), and
 * a post_parse_analyze_hook and a planner_hook mark the statement whenever any query analysed or
 * planned while it runs calls one — directly, through an operator, a view or rule (the planner
 * sees the rewritten query), an inlined SQL function (the plan's function dependencies), a SQL
 * or PL/pgSQL function body, a DO block or dynamic SQL (their statements are analysed and
 * planned as they run), EXPLAIN, CREATE TABLE AS, DECLARE, COPY (query) and PREPARE. The mark
 * is remembered for the client message being processed and, by a hash of the statement text,
 * for later messages of the same statement (the Bind and Execute of a Parse). EXECUTE of a
 * prepared statement is SECRET when the prepared query calls one (its analysed tree is walked).
 *
 * The one line Postgres writes before analysis — log_statement for the simple protocol (and the
 * execute line of the extended one, whose Parse may lie in an earlier message) — is judged on the
 * text by a real SQL lexer (every quoting: "x", U&"x" with UESCAPE, comments anywhere) and names
 * read from the catalog: SECRET when it calls, by any spelling, a function whose current name is
 * that of a secret-taking function, or EXECUTEs a prepared statement that calls one; MAYBE when it
 * could hand a value to code that could pass it on: it mentions a function or procedure that is
 * neither built in nor written in C or internal code (SQL, PL/pgSQL, other PLs; any mention, for
 * attribute notation), or uses an operator whose function is one, or names a table or view with
 * triggers or INSERT/UPDATE/DELETE rules, or is a DO block, or calls a built-in function that
 * runs SQL text (query_to_xml and its kin, ts_stat, ts_rewrite). String constants are judged as
 * SQL too, escapes decoded (a DO or function body, dynamic SQL). The names are re-read, in that
 * line's own transaction, after any change to pg_proc, pg_operator or pg_rewrite and after any
 * relation change (CREATE TRIGGER among them); when they cannot be (an aborted transaction block),
 * every statement with a constant is MAYBE.
 *
 * What is redacted. SECRET: the statement text in every line (message, DETAIL such as
 * "prepare:" and "parameters:", CONTEXT, internal query, auto_explain's text and plan) is
 * replaced by a note and the STATEMENT: line is dropped; messages raised by vector_vault's own
 * code keep their text (they never carry a secret). MAYBE: every string and number constant in
 * those texts (the parameter values Postgres prints quoted among them) is replaced by '?' (the
 * statement keeps its shape) and the STATEMENT: line is dropped. Anything shaped like an API key is
 * masked in every line (vv_<id>_xxxx).
 *
 * Plaintext: Postgres' own error texts quote the input they reject (jsonb's parser quotes the
 * token and the line; int4in quotes the text it could not read). While a statement (a client
 * message) has sealed or opened a value, or runs in parallel mode, every ERROR or worse that
 * Postgres' code (not ours) raises goes to the server log with its message reduced to the
 * message's untranslated format string (no values), and its detail, hint, context and internal
 * query replaced by a note; the SQLSTATE is kept.
 *
 * The client that sent the statement still gets the full error: an ERROR that needs redaction is
 * not written to the server log itself; a redacted copy is written instead, at LOG level, its
 * message starting with the original severity ("ERROR (redacted by vector_vault): ...").
 *
 * Not covered (README, "Logging"): values a statement hands, through a domain constraint, a
 * cast or type I/O written in SQL or a PL, to a secret-taking function, for the pre-analysis
 * line only (every line written after analysis is covered); literal plaintext in statement text of
 * a statement that is neither SECRET nor MAYBE (use bind parameters); RAISE of a value by the
 * user's own code; a C function of the user's that calls a secret-taking function.
 */
#include "core/api_key.h"

#include <cctype>
#include <cstring>

#include "auth/auth.h"
#include "pg/guard.h"

extern "C"
{
#include "access/genam.h"
#include "access/transam.h"
#include "access/htup_details.h"
#include "access/parallel.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_language.h"
#include "catalog/pg_operator.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_rewrite.h"
#include "catalog/pg_trigger.h"
#include "commands/prepare.h"
#include "common/hashfn.h"
#include "mb/pg_wchar.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "nodes/plannodes.h"
#include "optimizer/planner.h"
#include "parser/analyze.h"
#include "parser/parser.h"
#include "tcop/tcopprot.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/plancache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
}

namespace vector_vault::auth
{

namespace
{

/* The C symbols of the secret-taking functions (a function bound to one is secret-taking). */
const char *const kSecretSymbols[] = {"vault_login", "vault_create_api_key", "vault_rotate_api_key",
									  "vault_revoke_api_key", "vault_set_key_password"};
/* Their SQL names: a call of one of these names is always taken for a secret-taking call (the
 * catalog may not have been read yet; a function of another schema with such a name only
 * over-redacts). */
const char *const kSecretNames[] = {"login", "create_api_key", "rotate_api_key", "revoke_api_key",
									"set_key_password"};

/* Built-in functions that run SQL given as text. */
const char *const kSqlRunners[] = {"query_to_xml", "query_to_xmlschema",
								   "query_to_xml_and_xmlschema", "ts_stat", "ts_rewrite"};

const char kSecretNote[] = "[redacted by vector_vault: the statement carries a secret]";
const char kPlainNote[] = "[redacted by vector_vault: raised while plaintext was processed]";

/* --- what the catalog says (read in a transaction, used by the log hook without one) ---------- */

/* A name the lexer looks for. */
struct Name
{
	char name[NAMEDATALEN];
	bool secret; /* a secret-taking function (or an operator calling one) has it */
	bool user;   /* a function, operator or relation that may pass values on has it */
};

struct Catalog
{
	MemoryContext cxt;
	Oid *secret_oids; /* sorted */
	int nsecret;
	uint32 *secret_hashes; /* PROCOID syscache hashes of secret_oids (plan dependencies) */
	Oid *user_oids;        /* sorted: non-built-in functions not in C or internal code */
	int nuser;
	Name *names; /* functions, sorted by name */
	int nnames;
	Name *ops; /* operators whose function is secret-taking or a user function */
	int nops;
	Name *rels; /* relations with triggers or INSERT, UPDATE or DELETE rules */
	int nrels;
};

Catalog g_catalog;
/* Functions and operators (pg_proc, pg_operator changes) and relations with triggers or rules
 * (pg_rewrite changes, relcache invalidations) are invalidated separately. */
bool g_funcs_valid = false;
bool g_rels_valid = false;
uint64 g_funcs_invals = 0;
uint64 g_rels_invals = 0;

/* Per client message: marks set by the analysis and planner hooks and by the type code. */
TimestampTz g_secret_ts = 0;
bool g_secret = false;
TimestampTz g_plain_ts = 0;
bool g_plain = false;

/* Hashes of statement texts found to call a secret-taking function (a ring). */
constexpr int kSecretTexts = 256;
uint64 g_secret_texts[kSecretTexts];
int g_secret_texts_next = 0;

/* Set while the redacted server copy of an error is being emitted. */
bool g_in_copy = false;
bool g_copy_hide_stmt = false;

emit_log_hook_type g_prev_emit = nullptr;
post_parse_analyze_hook_type g_prev_analyze = nullptr;
planner_hook_type g_prev_planner = nullptr;

/* Orders Oids. */
int
CompareOid(const void *a, const void *b)
{
	Oid x = *static_cast<const Oid *>(a);
	Oid y = *static_cast<const Oid *>(b);
	return x < y ? -1 : (x > y ? 1 : 0);
}

/* Orders names. */
int
CompareName(const void *a, const void *b)
{
	return strcmp(static_cast<const Name *>(a)->name, static_cast<const Name *>(b)->name);
}

/* True when oid is in the sorted array. */
bool
OidIn(Oid oid, const Oid *oids, int n)
{
	return n > 0 && bsearch(&oid, oids, n, sizeof(Oid), CompareOid) != nullptr;
}

/* The entry for name in a sorted array, or nullptr. */
const Name *
FindName(const char *name, const Name *names, int n)
{
	if (n == 0)
		return nullptr;
	Name key;
	strlcpy(key.name, name, sizeof(key.name));
	return static_cast<const Name *>(bsearch(&key, names, n, sizeof(Name), CompareName));
}

/* Sorts names and merges duplicates. */
int
SortNames(Name *names, int n)
{
	if (n == 0)
		return 0;
	qsort(names, n, sizeof(Name), CompareName);
	int out = 0;
	for (int i = 0; i < n; i++)
	{
		if (out > 0 && strcmp(names[out - 1].name, names[i].name) == 0)
		{
			names[out - 1].secret |= names[i].secret;
			names[out - 1].user |= names[i].user;
		}
		else
			names[out++] = names[i];
	}
	return out;
}

/* True when a text datum of tup equals one of the secret symbols. */
bool
IsSecretSymbol(HeapTuple tup, TupleDesc desc)
{
	bool isnull;
	Datum src = heap_getattr(tup, Anum_pg_proc_prosrc, desc, &isnull);
	if (isnull)
		return false;
	char *s = TextDatumGetCString(src);
	bool secret = false;
	for (const char *sym : kSecretSymbols)
		secret |= strcmp(s, sym) == 0;
	pfree(s);
	return secret;
}

/* Appends to a growing palloc'd array. */
template <typename T>
void
Append(T **arr, int *n, int *cap, const T &v)
{
	if (*n == *cap)
	{
		*cap = *cap == 0 ? 64 : *cap * 2;
		*arr = static_cast<T *>(*arr == nullptr ? palloc(sizeof(T) * *cap)
												: repalloc(*arr, sizeof(T) * *cap));
	}
	(*arr)[(*n)++] = v;
}

/* Reads the secret-taking functions, the user functions, their operators and the relations
 * with triggers or rules from the catalog, into a new context that replaces the old one only
 * when everything was read. */
void
RefreshCatalog()
{
	if ((g_funcs_valid && g_rels_valid) || !IsTransactionState() ||
		IsAbortedTransactionBlockState() || IsBootstrapProcessingMode() ||
		!OidIsValid(MyDatabaseId) || IsParallelWorker())
		return;
	uint64 funcs_invals = g_funcs_invals;
	uint64 rels_invals = g_rels_invals;
	/* Built under the transaction: an error frees it; success moves it to TopMemoryContext. */
	MemoryContext cxt = AllocSetContextCreate(CurTransactionContext, "vector_vault redaction",
											  ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	Catalog c = {};
	c.cxt = cxt;
	int cap_secret = 0, cap_user = 0, cap_names = 0, cap_ops = 0, cap_rels = 0;
	/* vector_vault's own SQL and PL/pgSQL functions take no secret. */
	Oid own_schema = get_namespace_oid("vault", true);

	Relation rel = table_open(ProcedureRelationId, AccessShareLock);
	SysScanDesc scan = systable_beginscan(rel, InvalidOid, false, nullptr, 0, nullptr);
	HeapTuple tup;
	while ((tup = systable_getnext(scan)) != nullptr)
	{
		Form_pg_proc p = reinterpret_cast<Form_pg_proc>(GETSTRUCT(tup));
		Name n;
		strlcpy(n.name, NameStr(p->proname), sizeof(n.name));
		if (p->prolang == ClanguageId)
		{
			if (IsSecretSymbol(tup, RelationGetDescr(rel)))
			{
				Append(&c.secret_oids, &c.nsecret, &cap_secret, p->oid);
				n.secret = true;
				n.user = false;
				Append(&c.names, &c.nnames, &cap_names, n);
			}
		}
		else if (p->oid >= FirstNormalObjectId && p->prolang != INTERNALlanguageId &&
				 p->pronamespace != own_schema)
		{
			Append(&c.user_oids, &c.nuser, &cap_user, p->oid);
			n.secret = false;
			n.user = true;
			Append(&c.names, &c.nnames, &cap_names, n);
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (c.nsecret > 0)
		qsort(c.secret_oids, c.nsecret, sizeof(Oid), CompareOid);
	if (c.nuser > 0)
		qsort(c.user_oids, c.nuser, sizeof(Oid), CompareOid);

	rel = table_open(OperatorRelationId, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, nullptr, 0, nullptr);
	while ((tup = systable_getnext(scan)) != nullptr)
	{
		Form_pg_operator o = reinterpret_cast<Form_pg_operator>(GETSTRUCT(tup));
		bool secret = OidIn(o->oprcode, c.secret_oids, c.nsecret);
		if (secret || OidIn(o->oprcode, c.user_oids, c.nuser))
		{
			Name n;
			strlcpy(n.name, NameStr(o->oprname), sizeof(n.name));
			n.secret = secret;
			n.user = !secret;
			Append(&c.ops, &c.nops, &cap_ops, n);
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	/* INSERT, UPDATE and DELETE rules run their actions with the statement's values. */
	rel = table_open(RewriteRelationId, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, nullptr, 0, nullptr);
	while ((tup = systable_getnext(scan)) != nullptr)
	{
		Form_pg_rewrite r = reinterpret_cast<Form_pg_rewrite>(GETSTRUCT(tup));
		if (r->ev_type == '1') /* ON SELECT: a view's definition */
			continue;
		char *relname = get_rel_name(r->ev_class);
		if (relname == nullptr)
			continue;
		Name n;
		strlcpy(n.name, relname, sizeof(n.name));
		n.secret = false;
		n.user = true;
		Append(&c.rels, &c.nrels, &cap_rels, n);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	/* Triggers (INSTEAD OF triggers of views too) see the rows a statement writes. */
	rel = table_open(TriggerRelationId, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, nullptr, 0, nullptr);
	while ((tup = systable_getnext(scan)) != nullptr)
	{
		Form_pg_trigger tg = reinterpret_cast<Form_pg_trigger>(GETSTRUCT(tup));
		char *relname = tg->tgisinternal ? nullptr : get_rel_name(tg->tgrelid);
		if (relname == nullptr)
			continue;
		Name n;
		strlcpy(n.name, relname, sizeof(n.name));
		n.secret = false;
		n.user = true;
		Append(&c.rels, &c.nrels, &cap_rels, n);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	c.nnames = SortNames(c.names, c.nnames);
	c.nops = SortNames(c.ops, c.nops);
	c.nrels = SortNames(c.rels, c.nrels);
	c.secret_hashes = static_cast<uint32 *>(palloc(sizeof(uint32) * (c.nsecret + 1)));
	for (int i = 0; i < c.nsecret; i++)
		c.secret_hashes[i] = GetSysCacheHashValue1(PROCOID, ObjectIdGetDatum(c.secret_oids[i]));
	MemoryContextSwitchTo(old);

	MemoryContextSetParent(cxt, TopMemoryContext);
	if (g_catalog.cxt != nullptr)
		MemoryContextDelete(g_catalog.cxt);
	g_catalog = c;
	/* A change that arrived while reading leaves the cache stale; the next refresh rereads. */
	g_funcs_valid = funcs_invals == g_funcs_invals;
	g_rels_valid = rels_invals == g_rels_invals;
}

/* Syscache callback: pg_proc or pg_operator changed. */
void
FunctionsChanged(Datum, int, uint32)
{
	g_funcs_valid = false;
	g_funcs_invals++;
}

/* Syscache callback: pg_rewrite changed. */
void
RulesChanged(Datum, int, uint32)
{
	g_rels_valid = false;
	g_rels_invals++;
}

/* Relcache callback: a relation changed (CREATE or DROP TRIGGER among others). */
void
RelationChanged(Datum, Oid)
{
	g_rels_valid = false;
	g_rels_invals++;
}

/* --- marks ---------------------------------------------------------------------------------- */

/* A hash of a statement text (0 for none). */
uint64
TextHash(const char *text)
{
	if (text == nullptr)
		return 0;
	uint64 h = hash_bytes_extended(reinterpret_cast<const unsigned char *>(text),
								   static_cast<int>(strlen(text)), 0x7661756c74ULL);
	return h == 0 ? 1 : h;
}

/* Remembers that text calls a secret-taking function. */
void
RememberSecretText(const char *text)
{
	uint64 h = TextHash(text);
	if (h == 0)
		return;
	for (uint64 x : g_secret_texts)
		if (x == h)
			return;
	g_secret_texts[g_secret_texts_next] = h;
	g_secret_texts_next = (g_secret_texts_next + 1) % kSecretTexts;
}

/* True when text was found to call a secret-taking function. */
bool
IsSecretText(const char *text)
{
	uint64 h = TextHash(text);
	if (h == 0)
		return false;
	for (uint64 x : g_secret_texts)
		if (x == h)
			return true;
	return false;
}

/* Marks the current client message (and its statement text) as carrying a secret. */
void
MarkSecret(const char *source_text)
{
	g_secret = true;
	g_secret_ts = GetCurrentStatementStartTimestamp();
	RememberSecretText(debug_query_string);
	if (source_text != debug_query_string)
		RememberSecretText(source_text);
}

/* True when the current client message was marked as carrying a secret. */
bool
SecretMarked()
{
	return g_secret && g_secret_ts == GetCurrentStatementStartTimestamp();
}

/* True when the current client message sealed or opened a value. */
bool
PlaintextMarked()
{
	return g_plain && g_plain_ts == GetCurrentStatementStartTimestamp();
}

/* --- what an analysed query calls ------------------------------------------------------------ */

struct Calls
{
	bool secret; /* calls a secret-taking function */
	bool user;   /* calls a function that could pass values on to one */
};

/* Notes a function OID. */
void
NoteFunction(Oid fn, Calls *calls)
{
	if (OidIn(fn, g_catalog.secret_oids, g_catalog.nsecret))
		calls->secret = true;
	else if (OidIn(fn, g_catalog.user_oids, g_catalog.nuser))
		calls->user = true;
}

bool CallsWalker(Node *node, Calls *calls);

/* CallsWalker as the walker type nodeFuncs.h takes (through void (*)(void), the type GCC accepts
 * as a generic function pointer). */
bool (*WalkerFn())()
{
	return reinterpret_cast<bool (*)()>(reinterpret_cast<void (*)(void)>(CallsWalker));
}

/* What the analysed queries of a prepared statement call (no catalog access). */
void
PlanSourceCalls(CachedPlanSource *ps, Calls *calls)
{
	if (ps == nullptr)
		return;
	if (ps->query_list == NIL)
	{
		/* Not analysed (or invalidated and released): assume the worst. */
		calls->secret = true;
		return;
	}
	ListCell *lc;
	foreach (lc, ps->query_list)
		CallsWalker(static_cast<Node *>(lfirst(lc)), calls);
}

/* node when it is an analysed Query (utility commands hold raw statements until they run). */
Node *
AnalysedQuery(Node *node)
{
	return node != nullptr && IsA(node, Query) ? node : nullptr;
}

/* Expression and query walker: collects the functions called (no catalog access). */
bool
CallsWalker(Node *node, Calls *calls)
{
	if (node == nullptr)
		return false;
	switch (nodeTag(node))
	{
		case T_FuncExpr:
			NoteFunction(reinterpret_cast<FuncExpr *>(node)->funcid, calls);
			break;
		case T_OpExpr:
		case T_DistinctExpr:
		case T_NullIfExpr:
			NoteFunction(reinterpret_cast<OpExpr *>(node)->opfuncid, calls);
			break;
		case T_ScalarArrayOpExpr:
			NoteFunction(reinterpret_cast<ScalarArrayOpExpr *>(node)->opfuncid, calls);
			break;
		case T_Aggref:
			NoteFunction(reinterpret_cast<Aggref *>(node)->aggfnoid, calls);
			break;
		case T_WindowFunc:
			NoteFunction(reinterpret_cast<WindowFunc *>(node)->winfnoid, calls);
			break;
		case T_Query:
		{
			Query *q = reinterpret_cast<Query *>(node);
			Node *u = q->utilityStmt;
			if (u != nullptr)
			{
				if (IsA(u, CallStmt))
					CallsWalker(reinterpret_cast<Node *>(reinterpret_cast<CallStmt *>(u)->funcexpr),
								calls);
				else if (IsA(u, ExplainStmt))
					CallsWalker(AnalysedQuery(reinterpret_cast<ExplainStmt *>(u)->query), calls);
				else if (IsA(u, CreateTableAsStmt))
					CallsWalker(AnalysedQuery(reinterpret_cast<CreateTableAsStmt *>(u)->query),
								calls);
				else if (IsA(u, DeclareCursorStmt))
					CallsWalker(AnalysedQuery(reinterpret_cast<DeclareCursorStmt *>(u)->query),
								calls);
				else if (IsA(u, ExecuteStmt))
				{
					PreparedStatement *ps =
						FetchPreparedStatement(reinterpret_cast<ExecuteStmt *>(u)->name, false);
					if (ps != nullptr)
						PlanSourceCalls(ps->plansource, calls);
				}
				return false;
			}
			return query_tree_walker(q, WalkerFn(), calls, 0);
		}
		default:
			break;
	}
	return expression_tree_walker(node, WalkerFn(), calls);
}

/* post_parse_analyze_hook: marks statements whose analysed tree calls a secret-taking function. */
void
AnalyzeHook(ParseState *pstate, Query *query, JumbleState *jstate) noexcept
{
	if (g_prev_analyze)
		g_prev_analyze(pstate, query, jstate);
	if (!g_funcs_valid)
		RefreshCatalog();
	Calls calls = {};
	CallsWalker(reinterpret_cast<Node *>(query), &calls);
	if (calls.secret)
		MarkSecret(pstate->p_sourcetext);
}

/* planner_hook: marks statements whose rewritten query (views and rules expanded) or final plan
 * (inlined SQL functions included) calls a secret-taking function. */
PlannedStmt *
PlannerHook(Query *parse, const char *query_string, int cursor_options,
			ParamListInfo params) noexcept
{
	if (!g_funcs_valid)
		RefreshCatalog();
	Calls calls = {};
	CallsWalker(reinterpret_cast<Node *>(parse), &calls);
	if (calls.secret)
		MarkSecret(query_string);
	PlannedStmt *plan = g_prev_planner
							? g_prev_planner(parse, query_string, cursor_options, params)
							: standard_planner(parse, query_string, cursor_options, params);
	ListCell *lc;
	foreach (lc, plan->invalItems)
	{
		PlanInvalItem *item = static_cast<PlanInvalItem *>(lfirst(lc));
		for (int i = 0; item->cacheId == PROCOID && i < g_catalog.nsecret; i++)
			if (g_catalog.secret_hashes[i] == item->hashValue)
			{
				MarkSecret(query_string);
				break;
			}
	}
	return plan;
}

/* --- the lexer -------------------------------------------------------------------------------- */

enum class Tok
{
	kIdent,  /* identifier or keyword; name holds it folded (unquoted) or decoded (quoted) */
	kString, /* string constant of any form, dollar-quoted included */
	kNumber,
	kParam, /* $n */
	kOp,
	kOther, /* punctuation */
};

struct Token
{
	Tok kind;
	const char *begin;
	const char *end;
	bool quoted;
	char name[NAMEDATALEN];
};

/* True for characters that start an unquoted identifier. */
bool
IdentStart(unsigned char c)
{
	return isalpha(c) || c == '_' || c >= 0x80;
}

/* True for characters that continue one. */
bool
IdentCont(unsigned char c)
{
	return IdentStart(c) || isdigit(c) || c == '$';
}

/* True for operator characters. */
bool
OpChar(char c)
{
	return c != '\0' && strchr("+-*/<>=~!@#%^&|`?", c) != nullptr;
}

/* Skips whitespace and comments (nested block comments; unterminated ones run to the end). */
const char *
SkipSpace(const char *p)
{
	for (;;)
	{
		while (*p != '\0' && isspace(static_cast<unsigned char>(*p)))
			p++;
		if (p[0] == '-' && p[1] == '-')
		{
			while (*p != '\0' && *p != '\n')
				p++;
			continue;
		}
		if (p[0] == '/' && p[1] == '*')
		{
			int depth = 1;
			p += 2;
			while (*p != '\0' && depth > 0)
			{
				if (p[0] == '/' && p[1] == '*')
				{
					depth++;
					p += 2;
				}
				else if (p[0] == '*' && p[1] == '/')
				{
					depth--;
					p += 2;
				}
				else
					p++;
			}
			continue;
		}
		return p;
	}
}

/* The end of a quoted body starting after the opening quote q; backslash escapes when bs. */
const char *
QuotedEnd(const char *p, char q, bool bs)
{
	while (*p != '\0')
	{
		if (bs && *p == '\\' && p[1] != '\0')
			p += 2;
		else if (*p == q && p[1] == q)
			p += 2;
		else if (*p == q)
			return p + 1;
		else
			p++;
	}
	return p;
}

/* Appends code point cp to out (UTF-8 in a UTF-8 database, else ASCII or '?'). */
void
PutCodePoint(unsigned long cp, char *out, size_t *n, size_t cap)
{
	unsigned char buf[8];
	int len = 1;
	if (cp < 0x80 || GetDatabaseEncoding() != PG_UTF8)
		buf[0] = cp < 0x80 ? static_cast<unsigned char>(cp) : '?';
	else
	{
		unicode_to_utf8(static_cast<pg_wchar>(cp), buf);
		len = pg_utf_mblen(buf);
	}
	for (int i = 0; i < len && *n + 1 < cap; i++)
		out[(*n)++] = static_cast<char>(buf[i]);
}

/* Decodes the body [b, e) of a "quoted" identifier (U& escapes with escape char esc when u). */
void
DecodeQuoted(const char *b, const char *e, bool u, char esc, char *out, size_t cap)
{
	size_t n = 0;
	for (const char *p = b; p < e; p++)
	{
		if (*p == '"' && p + 1 < e && p[1] == '"')
		{
			if (n + 1 < cap)
				out[n++] = '"';
			p++;
			continue;
		}
		if (u && *p == esc)
		{
			if (p + 1 < e && p[1] == esc)
			{
				if (n + 1 < cap)
					out[n++] = esc;
				p++;
				continue;
			}
			int digits = (p + 1 < e && p[1] == '+') ? 6 : 4;
			const char *h = p + 1 + (digits == 6 ? 1 : 0);
			unsigned long cp = 0;
			int i = 0;
			for (; i < digits && h + i < e && isxdigit(static_cast<unsigned char>(h[i])); i++)
				cp = cp * 16 + (isdigit(static_cast<unsigned char>(h[i]))
									? h[i] - '0'
									: (tolower(static_cast<unsigned char>(h[i])) - 'a' + 10));
			if (i == digits)
			{
				PutCodePoint(cp, out, &n, cap);
				p = h + digits - 1;
				continue;
			}
		}
		if (n + 1 < cap)
			out[n++] = *p;
	}
	out[n] = '\0';
}

/* After a U& constant ending at p: the escape character given by a UESCAPE clause (or '\\'),
 * and the end of that clause in *after. */
char
UEscape(const char *p, const char **after)
{
	*after = p;
	const char *q = SkipSpace(p);
	if (pg_strncasecmp(q, "uescape", 7) != 0 || IdentCont(static_cast<unsigned char>(q[7])))
		return '\\';
	q = SkipSpace(q + 7);
	if (q[0] == '\'' && q[1] != '\0' && q[2] == '\'')
	{
		*after = q + 3;
		return q[1];
	}
	return '\\';
}

/* Lexes SQL text, calling fn(const Token &) for each token. Never fails: an unterminated quote or
 * comment runs to the end of the text. backslash: whether '...' strings take backslash escapes
 * (standard_conforming_strings off; E'...' always does). */
template <typename Fn>
void
Lex(const char *text, bool backslash, Fn fn)
{
	if (text == nullptr)
		return;
	const char *p = text;
	for (;;)
	{
		p = SkipSpace(p);
		if (*p == '\0')
			return;
		Token t;
		t.begin = p;
		t.quoted = false;
		t.name[0] = '\0';
		unsigned char c = static_cast<unsigned char>(*p);
		bool u_prefix = (c == 'u' || c == 'U') && p[1] == '&' && (p[2] == '\'' || p[2] == '"');
		if (u_prefix && p[2] == '"')
		{
			const char *b = p + 3;
			const char *e = QuotedEnd(b, '"', false);
			const char *after;
			char esc = UEscape(e, &after);
			DecodeQuoted(b, e > b && e[-1] == '"' ? e - 1 : e, true, esc, t.name, sizeof(t.name));
			t.kind = Tok::kIdent;
			t.quoted = true;
			p = after;
		}
		else if (u_prefix)
		{
			const char *e = QuotedEnd(p + 3, '\'', false);
			const char *after;
			UEscape(e, &after);
			t.kind = Tok::kString;
			p = after;
		}
		else if ((c == 'e' || c == 'E') && p[1] == '\'')
		{
			t.kind = Tok::kString;
			p = QuotedEnd(p + 2, '\'', true);
		}
		else if (c != '\0' && strchr("bBxXnN", c) != nullptr && p[1] == '\'')
		{
			t.kind = Tok::kString;
			p = QuotedEnd(p + 2, '\'', backslash);
		}
		else if (c == '\'')
		{
			t.kind = Tok::kString;
			p = QuotedEnd(p + 1, '\'', backslash);
		}
		else if (c == '"')
		{
			const char *e = QuotedEnd(p + 1, '"', false);
			DecodeQuoted(p + 1, e > p + 1 && e[-1] == '"' ? e - 1 : e, false, '\\', t.name,
						 sizeof(t.name));
			t.kind = Tok::kIdent;
			t.quoted = true;
			p = e;
		}
		else if (c == '$' && isdigit(static_cast<unsigned char>(p[1])))
		{
			t.kind = Tok::kParam;
			p++;
			while (isdigit(static_cast<unsigned char>(*p)))
				p++;
		}
		else if (c == '$')
		{
			/* $tag$ ... $tag$ (an empty tag too); a lone $ is punctuation. */
			const char *q = p + 1;
			while (IdentStart(static_cast<unsigned char>(*q)) ||
				   (q > p + 1 && isdigit(static_cast<unsigned char>(*q))))
				q++;
			if (*q == '$')
			{
				size_t dlen = static_cast<size_t>(q - p + 1);
				const char *body = q + 1;
				const char *close = body;
				while (*close != '\0' && strncmp(close, p, dlen) != 0)
					close++;
				t.kind = Tok::kString;
				p = *close == '\0' ? close : close + dlen;
			}
			else
			{
				t.kind = Tok::kOther;
				p++;
			}
		}
		else if (IdentStart(c))
		{
			size_t n = 0;
			while (IdentCont(static_cast<unsigned char>(*p)))
			{
				if (n + 1 < sizeof(t.name))
					t.name[n++] = static_cast<char>(*p >= 'A' && *p <= 'Z' ? *p + ('a' - 'A') : *p);
				p++;
			}
			t.name[n] = '\0';
			t.kind = Tok::kIdent;
		}
		else if (isdigit(c) || (c == '.' && isdigit(static_cast<unsigned char>(p[1]))))
		{
			t.kind = Tok::kNumber;
			while (isalnum(static_cast<unsigned char>(*p)) || *p == '.' || *p == '_' ||
				   ((*p == '+' || *p == '-') && (p[-1] == 'e' || p[-1] == 'E')))
				p++;
		}
		else if (OpChar(*p))
		{
			t.kind = Tok::kOp;
			while (OpChar(*p) && !(p[0] == '-' && p[1] == '-') && !(p[0] == '/' && p[1] == '*'))
				p++;
			if (p == t.begin)
				p++;
		}
		else
		{
			t.kind = Tok::kOther;
			p++;
		}
		t.end = p;
		if (t.kind == Tok::kIdent)
		{
			/* Postgres truncates names to NAMEDATALEN - 1 bytes, never inside a character. */
			int len = static_cast<int>(strlen(t.name));
			t.name[pg_mbcliplen(t.name, len, NAMEDATALEN - 1)] = '\0';
		}
		fn(t);
	}
}

/* The value of hex digit c. */
int
HexValue(char c)
{
	return isdigit(static_cast<unsigned char>(c))
			   ? c - '0'
			   : tolower(static_cast<unsigned char>(c)) - 'a' + 10;
}

/* Reads up to max digits of base (8 or 16) at *p into *cp; the count read. */
int
ReadDigits(const char **p, const char *e, int max, int base, unsigned long *cp)
{
	int i = 0;
	*cp = 0;
	for (; i < max && *p < e; i++, (*p)++)
	{
		char c = **p;
		bool ok = base == 8 ? (c >= '0' && c <= '7') : isxdigit(static_cast<unsigned char>(c));
		if (!ok)
			break;
		*cp = *cp * base + HexValue(c);
	}
	return i;
}

/* The value of a string constant token (any form), roughly decoded — enough to read SQL held in
 * it: quotes undoubled, E'...' and U&'...' escapes decoded. palloc'd. */
char *
StringValue(const Token &t, bool backslash)
{
	size_t cap = static_cast<size_t>(t.end - t.begin) * 4 + 1;
	char *out = static_cast<char *>(palloc(cap));
	size_t n = 0;
	if (*t.begin == '$')
	{
		const char *d = strchr(t.begin + 1, '$');
		size_t dlen = static_cast<size_t>(d - t.begin + 1);
		const char *b = d + 1;
		const char *e = t.end;
		if (e - b >= static_cast<ptrdiff_t>(dlen) && strncmp(e - dlen, t.begin, dlen) == 0)
			e -= dlen;
		memcpy(out, b, static_cast<size_t>(e - b));
		out[e - b] = '\0';
		return out;
	}
	const char *q = strchr(t.begin, '\'');
	char c0 = static_cast<char>(tolower(static_cast<unsigned char>(*t.begin)));
	bool u = c0 == 'u';
	bool esc_e = c0 == 'e' || (backslash && (q == t.begin || c0 == 'n'));
	char uesc = '\\';
	const char *e = t.end;
	if (u)
	{
		/* The token may end with a UESCAPE clause: the body ends at its closing quote. */
		const char *close = nullptr;
		for (const char *p = q + 1; p < e && close == nullptr; p++)
		{
			if (*p == '\'' && p + 1 < e && p[1] == '\'')
				p++;
			else if (*p == '\'')
				close = p;
		}
		if (close != nullptr)
		{
			const char *after;
			uesc = UEscape(close + 1, &after);
			e = close + 1;
		}
	}
	for (const char *p = q + 1; p < e; p++)
	{
		if (*p == '\'' && p + 1 < e && p[1] == '\'')
		{
			out[n++] = '\'';
			p++;
			continue;
		}
		if (*p == '\'')
			break;
		unsigned long cp;
		if (u && *p == uesc && p + 1 < e)
		{
			const char *h = p + 1;
			if (*h == uesc)
			{
				out[n++] = uesc;
				p = h;
				continue;
			}
			int digits = *h == '+' ? 6 : 4;
			if (*h == '+')
				h++;
			if (ReadDigits(&h, e, digits, 16, &cp) == digits)
			{
				PutCodePoint(cp, out, &n, cap);
				p = h - 1;
				continue;
			}
		}
		if (esc_e && *p == '\\' && p + 1 < e)
		{
			const char *h = p + 1;
			char c = *h;
			if (c == 'x' && (h++, ReadDigits(&h, e, 2, 16, &cp) > 0))
				PutCodePoint(cp, out, &n, cap);
			else if ((c == 'u' || c == 'U') &&
					 (h++, ReadDigits(&h, e, c == 'u' ? 4 : 8, 16, &cp) > 0))
				PutCodePoint(cp, out, &n, cap);
			else if (c >= '0' && c <= '7' && ReadDigits(&h, e, 3, 8, &cp) > 0)
				PutCodePoint(cp, out, &n, cap);
			else
			{
				out[n++] = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
				h++;
			}
			p = h - 1;
			continue;
		}
		out[n++] = *p;
	}
	out[n] = '\0';
	return out;
}

/* How a text may carry a secret. */
struct Verdict
{
	bool secret;
	bool maybe;
};

/* Notes in *v every operator of the catalog that occurs in the operator run [b, e) (Postgres
 * splits runs such as "!!-" into several operators; a substring match covers every split). */
void
OperatorsIn(const char *b, const char *e, Verdict *v)
{
	for (int i = 0; i < g_catalog.nops; i++)
	{
		size_t len = strlen(g_catalog.ops[i].name);
		for (const char *p = b; p + len <= e; p++)
			if (strncmp(p, g_catalog.ops[i].name, len) == 0)
			{
				v->secret |= g_catalog.ops[i].secret;
				v->maybe |= g_catalog.ops[i].user;
				break;
			}
	}
}

/* Judges SQL text (or a log line holding it) by its tokens, without catalog access. With
 * unknown, the catalog may have changed since it was read: any value in the text may then reach
 * a function, trigger or rule not known yet. String constants are judged as SQL too (to depth
 * 3): a DO body, a function body or dynamic SQL may call a secret-taking function by name. */
Verdict
JudgeText(const char *text, bool unknown, int depth = 0)
{
	Verdict v = {false, false};
	if (text == nullptr)
		return v;
	bool literals = false;
	bool prev_execute = false;
	char prev_name[NAMEDATALEN] = "";
	bool prev_ident = false;
	bool stmt_start = true;
	Lex(text, !standard_conforming_strings,
		[&](const Token &t)
		{
			if (t.kind == Tok::kString || t.kind == Tok::kNumber)
				literals = true;
			if (t.kind == Tok::kString && depth < 3 && !(v.secret && v.maybe))
			{
				char *inner = StringValue(t, !standard_conforming_strings);
				Verdict iv = JudgeText(inner, false, depth + 1);
				v.secret |= iv.secret;
				v.maybe |= iv.maybe;
				pfree(inner);
			}
			/* name ( : a call of that name; a secret-taking function takes no composite
			 * argument, so it cannot be called in attribute notation (x.name). */
			if (t.kind == Tok::kOther && *t.begin == '(' && prev_ident)
			{
				const Name *n = FindName(prev_name, g_catalog.names, g_catalog.nnames);
				if (n != nullptr && n->secret)
					v.secret = true;
				for (const char *s : kSecretNames)
					if (strcmp(prev_name, s) == 0)
						v.secret = true;
				for (const char *s : kSqlRunners)
					if (strcmp(prev_name, s) == 0)
						v.maybe = true;
			}
			/* A user function may be called in attribute notation: any mention counts. */
			if (t.kind == Tok::kIdent)
			{
				const Name *n = FindName(t.name, g_catalog.names, g_catalog.nnames);
				if (n != nullptr && n->user)
					v.maybe = true;
				if (FindName(t.name, g_catalog.rels, g_catalog.nrels) != nullptr)
					v.maybe = true;
			}
			if (t.kind == Tok::kOp)
				OperatorsIn(t.begin, t.end, &v);
			if (stmt_start && t.kind == Tok::kIdent && !t.quoted && strcmp(t.name, "do") == 0)
				v.maybe = true;
			stmt_start = t.kind == Tok::kOther && *t.begin == ';';
			if (t.kind == Tok::kIdent && prev_execute)
			{
				PreparedStatement *ps = FetchPreparedStatement(t.name, false);
				if (ps != nullptr)
				{
					Calls calls = {};
					PlanSourceCalls(ps->plansource, &calls);
					v.secret |= calls.secret;
					v.maybe |= calls.user;
				}
			}
			prev_execute = t.kind == Tok::kIdent && !t.quoted && strcmp(t.name, "execute") == 0;
			prev_ident = t.kind == Tok::kIdent;
			if (prev_ident)
				strlcpy(prev_name, t.name, sizeof(prev_name));
		});
	if (unknown && literals)
		v.maybe = true;
	return v;
}

/* A span of text to replace. */
struct Span
{
	size_t begin;
	size_t end;
	const char *repl;
};

/* Orders spans by start. */
int
CompareSpan(const void *a, const void *b)
{
	size_t x = static_cast<const Span *>(a)->begin;
	size_t y = static_cast<const Span *>(b)->begin;
	return x < y ? -1 : (x > y ? 1 : 0);
}

/* A palloc'd copy of text with every string and number constant replaced by '?' (and, with
 * idents, every "quoted" identifier by "?": error texts quote values that way). A log line mixes
 * SQL text (whose strings follow standard_conforming_strings) with values Postgres quoted itself
 * (no backslash escapes), so the text is lexed both ways and the union of the constants is
 * replaced: a constant is masked whichever reading is right. A leading "duration: <ms> ms" keeps
 * its figure. */
char *
MaskValues(const char *text, bool idents)
{
	StringInfoData out;
	initStringInfo(&out);
	const char *start = text;
	if (strncmp(text, "duration: ", 10) == 0)
	{
		const char *ms = strstr(text, " ms");
		if (ms != nullptr)
		{
			appendBinaryStringInfo(&out, text, static_cast<int>(ms + 3 - text));
			start = ms + 3;
		}
	}
	Span *spans = nullptr;
	int n = 0, cap = 0;
	for (int pass = 0; pass < 2; pass++)
		Lex(start, pass == 1,
			[&](const Token &t)
			{
				const char *repl = nullptr;
				if (t.kind == Tok::kString)
					repl = "'?'";
				else if (t.kind == Tok::kNumber)
					repl = "?";
				else if (idents && t.kind == Tok::kIdent && t.quoted)
					repl = "\"?\"";
				if (repl != nullptr)
					Append(&spans, &n, &cap,
						   Span{static_cast<size_t>(t.begin - start),
								static_cast<size_t>(t.end - start), repl});
			});
	if (n > 0)
		qsort(spans, n, sizeof(Span), CompareSpan);
	size_t done = 0;
	for (int i = 0; i < n;)
	{
		/* Merge overlapping spans; a merge that holds a string is a string. */
		Span m = spans[i++];
		while (i < n && spans[i].begin < m.end)
		{
			if (spans[i].end > m.end)
				m.end = spans[i].end;
			if (spans[i].repl != m.repl)
				m.repl = "'?'";
			i++;
		}
		appendBinaryStringInfo(&out, start + done, static_cast<int>(m.begin - done));
		appendStringInfoString(&out, m.repl);
		done = m.end;
	}
	appendStringInfoString(&out, start + done);
	if (spans != nullptr)
		pfree(spans);
	return out.data;
}

/* --- the log hook ----------------------------------------------------------------------------- */

/* Masks API-key-shaped tokens in place: everything after "vv_<16 hex>_" that looks like the
 * secret or checksum (hex digits and '_', even when truncated) becomes 'x'. */
void
MaskKeys(char *text)
{
	if (text == nullptr)
		return;
	size_t len = strlen(text);
	for (size_t i = 0; i + 3 + kApiKeyIdHex + 1 <= len; i++)
	{
		if (text[i] != 'v' || text[i + 1] != 'v' || text[i + 2] != '_')
			continue;
		bool id_ok = text[i + 3 + kApiKeyIdHex] == '_';
		for (size_t k = i + 3; k < i + 3 + kApiKeyIdHex && id_ok; k++)
			id_ok = isxdigit(static_cast<unsigned char>(text[k]));
		if (!id_ok)
			continue;
		for (size_t k = i + 3 + kApiKeyIdHex + 1; k < i + kApiKeyLength && k < len; k++)
		{
			if (!isxdigit(static_cast<unsigned char>(text[k])) && text[k] != '_')
				break;
			text[k] = 'x';
		}
	}
}

/* True for messages raised by vector_vault's own code (they never carry a secret or plaintext). */
bool
Ours(const ErrorData *edata)
{
	size_t n = edata->filename != nullptr ? strlen(edata->filename) : 0;
	return n > 4 && strcmp(edata->filename + n - 4, ".cpp") == 0;
}

/* The fields of a message that may hold a statement's text or values. */
struct Fields
{
	char *message;
	char *detail;
	char *detail_log;
	char *hint;
	char *context;
	char *internalquery;
	bool hide_stmt;
};

/* The fields of edata. */
Fields
FieldsOf(const ErrorData *edata)
{
	return {edata->message, edata->detail,        edata->detail_log, edata->hint,
			edata->context, edata->internalquery, edata->hide_stmt};
}

/* A masked copy of s (nullptr stays nullptr). */
char *
Masked(const char *s, bool idents)
{
	return s != nullptr ? MaskValues(s, idents) : nullptr;
}

/* A note in place of s (nullptr stays nullptr). */
char *
Note(const char *s, const char *note)
{
	return s != nullptr ? pstrdup(note) : nullptr;
}

/* A copy of s with API-key-shaped tokens masked; *changed when it differs. */
char *
KeysMasked(char *s, bool *changed)
{
	if (s == nullptr || strstr(s, "vv_") == nullptr)
		return s;
	char *c = pstrdup(s);
	MaskKeys(c);
	if (strcmp(c, s) != 0)
	{
		*changed = true;
		return c;
	}
	pfree(c);
	return s;
}

/* The severity word of an error level. */
const char *
Severity(int elevel)
{
	return elevel >= PANIC ? "PANIC" : elevel >= FATAL ? "FATAL" : "ERROR";
}

/* Passes edata on to the previous hook. */
void
Chain(ErrorData *edata)
{
	if (g_prev_emit)
		g_prev_emit(edata);
}

/* emit_log_hook: the server log's copy of every message, redacted as the essay says. */
void
EmitLogHook(ErrorData *edata) noexcept
{
	if (g_in_copy)
	{
		edata->hide_stmt = g_copy_hide_stmt;
		Chain(edata);
		return;
	}
	/* The log_statement line is written before analysis, right after the statement's
	 * transaction started and before it took any lock: the one place where the log hook
	 * reads the catalog, when it changed since the last read (by this session too). */
	bool statement_line = edata->elevel < ERROR && debug_query_string != nullptr &&
						  edata->message_id != nullptr &&
						  (strcmp(edata->message_id, "statement: %s") == 0 ||
						   strcmp(edata->message_id, "%s %s%s%s: %s") == 0);
	if (statement_line && (!g_funcs_valid || !g_rels_valid) && CritSectionCount == 0)
	{
		/* No cancel or timeout while a log line is being written. */
		HOLD_INTERRUPTS();
		RefreshCatalog();
		RESUME_INTERRUPTS();
	}
	bool ours = Ours(edata);
	/* Before analysis an unknown catalog means an unknown statement; so it does for errors,
	 * which may be raised before analysis (then only functions matter: a statement that fails
	 * before analysis runs no trigger or rule). Other lines come after analysis, whose hooks
	 * read the catalog. */
	bool unknown =
		statement_line ? !g_funcs_valid || !g_rels_valid : edata->elevel >= ERROR && !g_funcs_valid;
	Verdict v = JudgeText(debug_query_string, unknown);
	v.secret |= SecretMarked() || IsSecretText(debug_query_string);
	/* Other texts may quote statements too: a deadlock's detail_log holds the other sessions'. */
	const char *texts[] = {edata->message, edata->detail,  edata->detail_log,
						   edata->hint,    edata->context, edata->internalquery};
	for (const char *s : texts)
	{
		if (v.secret)
			break;
		Verdict f = JudgeText(s, false);
		v.secret |= f.secret || IsSecretText(s);
		v.maybe |= f.maybe;
	}
	bool plain = edata->elevel >= ERROR && !ours && (PlaintextMarked() || IsInParallelMode());

	Fields f = FieldsOf(edata);
	bool changed = false;
	if (v.secret)
	{
		if (!ours)
		{
			f.message = Note(f.message, kSecretNote);
			f.hint = Note(f.hint, kSecretNote);
			f.detail = Note(f.detail, kSecretNote);
			f.detail_log = Note(f.detail_log, kSecretNote);
		}
		f.context = Note(f.context, kSecretNote);
		f.internalquery = Note(f.internalquery, kSecretNote);
		f.hide_stmt = true;
		changed = true;
	}
	else if (v.maybe && !ours)
	{
		/* Statement lines (log_statement, durations, auto_explain) keep identifiers; error
		 * texts quote values with double quotes too. */
		bool idents = edata->elevel >= ERROR;
		f.message = Masked(f.message, idents);
		f.detail = Masked(f.detail, idents);
		f.detail_log = Masked(f.detail_log, idents);
		f.hint = Masked(f.hint, idents);
		f.context = Masked(f.context, idents);
		f.internalquery = Masked(f.internalquery, idents);
		f.hide_stmt = true;
		changed = true;
	}
	if (plain)
	{
		/* The untranslated format string carries no value. */
		const char *fmt = edata->message_id != nullptr ? edata->message_id : "error";
		f.message = psprintf("%s %s", fmt, kPlainNote);
		f.detail = Note(f.detail, kPlainNote);
		f.detail_log = Note(f.detail_log, kPlainNote);
		f.hint = Note(f.hint, kPlainNote);
		f.context = Note(f.context, kPlainNote);
		f.internalquery = Note(f.internalquery, kPlainNote);
		changed = true;
	}
	f.message = KeysMasked(f.message, &changed);
	f.detail = KeysMasked(f.detail, &changed);
	f.detail_log = KeysMasked(f.detail_log, &changed);
	f.hint = KeysMasked(f.hint, &changed);
	f.context = KeysMasked(f.context, &changed);
	f.internalquery = KeysMasked(f.internalquery, &changed);

	if (changed && edata->output_to_client && edata->output_to_server)
	{
		/* The client keeps the original (errors, warnings and notices alike: redaction is for
		 * the server log); the server log gets a redacted copy instead. */
		ErrorData copy = *edata;
		copy.elevel = LOG_SERVER_ONLY;
		copy.message = psprintf("%s (redacted by vector_vault): %s", Severity(edata->elevel),
								f.message != nullptr ? f.message : "");
		copy.detail = f.detail;
		copy.detail_log = f.detail_log;
		copy.hint = f.hint;
		copy.context = f.context;
		copy.internalquery = f.internalquery;
		copy.internalpos = f.internalquery != edata->internalquery ? 0 : edata->internalpos;
		edata->output_to_server = false;
		ErrorContextCallback *saved_context = error_context_stack;
		error_context_stack = nullptr;
		HOLD_INTERRUPTS();
		g_in_copy = true;
		g_copy_hide_stmt = f.hide_stmt;
		ThrowErrorData(&copy);
		g_in_copy = false;
		RESUME_INTERRUPTS();
		error_context_stack = saved_context;
		return;
	}
	edata->message = f.message;
	edata->detail = f.detail;
	edata->detail_log = f.detail_log;
	edata->hint = f.hint;
	edata->context = f.context;
	if (f.internalquery != edata->internalquery)
		edata->internalpos = 0;
	edata->internalquery = f.internalquery;
	edata->hide_stmt = f.hide_stmt;
	Chain(edata);
}

} // namespace

/* Notes that the current client message seals or opens a value. */
void
NotePlaintext()
{
	g_plain = true;
	g_plain_ts = GetCurrentStatementStartTimestamp();
}

/* Installs the log, analysis and planner hooks and the catalog callbacks. */
void
RegisterRedaction()
{
	CacheRegisterSyscacheCallback(PROCOID, FunctionsChanged, (Datum) 0);
	CacheRegisterSyscacheCallback(OPEROID, FunctionsChanged, (Datum) 0);
	CacheRegisterSyscacheCallback(RULERELNAME, RulesChanged, (Datum) 0);
	CacheRegisterRelcacheCallback(RelationChanged, (Datum) 0);
	g_prev_emit = emit_log_hook;
	emit_log_hook = EmitLogHook;
	g_prev_analyze = post_parse_analyze_hook;
	post_parse_analyze_hook = AnalyzeHook;
	g_prev_planner = planner_hook;
	planner_hook = PlannerHook;
}

} // namespace vector_vault::auth
