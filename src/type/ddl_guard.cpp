/*
 * ddl_guard.cpp — no derived copy of an encrypted value is stored in plaintext.
 *
 * A generated column or an index expression is computed when a row is written, with the
 * writer's rights, and stored where the table's owner (who may hold no right on the vault) reads
 * it. Decrypting functions are STABLE so Postgres refuses them there, but a user's function that
 * wraps a decryption and is declared IMMUTABLE is accepted, and would store the writer's
 * plaintext in the heap or the index (security round 2, H4). Following function bodies cannot
 * be done soundly (PL/pgSQL builds statements at run time), so the rule is by type instead: an
 * event trigger at the end of CREATE TABLE, ALTER TABLE, CREATE INDEX (and the other commands
 * that create relations) refuses
 *   - a stored generated column whose expression reads a column holding encrypted values, and
 *   - an index expression or partial-index predicate that reads such a column,
 * unless the expression's result is itself encrypted (an evector typmod cast, a re-sealed
 * value: what is stored is an envelope), or it is exactly vault.vault_of(col) or
 * vault.key_version_of(col), which reveal metadata only (the vault id and key version are in the
 * clear in every envelope).
 * It also refuses encrypted constants kept in definitions (column defaults, CHECK constraints,
 * view and materialized-view queries): a value sealed into a definition is no row, so
 * vault.retire_key_version cannot count it and would make it undecryptable.
 * It refuses an index on an encrypted column with any access method but vault_hnsw (a btree with
 * evector's default opclass would order its pages by the plaintexts; issue 11), and partitioning
 * by an encrypted value (the partition would reveal the plaintext's order or equality).
 * A column "holds encrypted values" when its type is evector, etext or ejsonb, or a domain,
 * array or composite type containing one (type::TypeHoldsEncrypted, the one test rotation and
 * vault.protect use too). Plain index columns of an
 * encrypted type store the envelope (ciphertext) and are allowed.
 *
 * What this does not cover (README, threat model): triggers, rules and RLS policies run with the
 * rights of the session that fires them and can copy what that session may decrypt; a
 * superuser can disable event triggers.
 */
#include "pg/guard.h"
#include "type/codec.h"

extern "C"
{
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "utils/partcache.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "rewrite/rewriteHandler.h"
#include "tcop/utility.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
}

#include "type/encrypted_types.h"
#include "pg/privileged.h"

namespace vector_vault::type
{

namespace
{

/* True when what expr stores reveals no plaintext: its result is itself an encrypted type or an
 * array of one (the stored value is made of envelopes), or it is vault.vault_of(x) /
 * vault.key_version_of(x). */
bool
IsMetadataOnly(Node *expr)
{
	if (expr == nullptr)
		return false;
	/* only an encrypted type itself (or an array of one): a composite holding one may carry
	 * plaintext in its other fields */
	Oid result = exprType(expr);
	Oid elem = get_element_type(getBaseType(result));
	if (type::IsEncryptedScalarType(result) ||
		(OidIsValid(elem) && type::IsEncryptedScalarType(elem)))
		return true;
	if (!IsA(expr, FuncExpr))
		return false;
	FuncExpr *f = reinterpret_cast<FuncExpr *>(expr);
	if (list_length(f->args) != 1 || !IsA(linitial(f->args), Var))
		return false;
	Oid nsp = get_namespace_oid("vault", true);
	if (get_func_namespace(f->funcid) != nsp)
		return false;
	char *name = get_func_name(f->funcid);
	return name != nullptr &&
		   (strcmp(name, "vault_of") == 0 || strcmp(name, "key_version_of") == 0);
}

/* The first column an expression reads that holds encrypted values, or InvalidAttrNumber. */
AttrNumber
EncryptedVarIn(Node *expr, Relation rel)
{
	List *vars = pull_var_clause(expr, PVC_RECURSE_AGGREGATES | PVC_RECURSE_WINDOWFUNCS |
										   PVC_RECURSE_PLACEHOLDERS);
	ListCell *lc;
	foreach (lc, vars)
	{
		Var *v = static_cast<Var *>(lfirst(lc));
		/* a whole-row reference reads every column */
		if (v->varattno == 0)
		{
			TupleDesc desc = RelationGetDescr(rel);
			for (int i = 0; i < desc->natts; i++)
				if (!TupleDescAttr(desc, i)->attisdropped &&
					type::TypeHoldsEncrypted(TupleDescAttr(desc, i)->atttypid))
					return TupleDescAttr(desc, i)->attnum;
			continue;
		}
		if (type::TypeHoldsEncrypted(v->vartype))
			return v->varattno;
	}
	return InvalidAttrNumber;
}

/* Raises 42501 naming the relation and column a derived plaintext would come from. */
void
Refuse(Relation rel, AttrNumber att, const char *what)
{
	ereport(
		ERROR,
		(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
		 errmsg("%s of \"%s\" would store a value computed from encrypted column \"%s\"", what,
				RelationGetRelationName(rel),
				att > 0 ? NameStr(TupleDescAttr(RelationGetDescr(rel), att - 1)->attname) : "?"),
		 errdetail("It is computed with the writer's rights and stored unencrypted, where "
				   "roles without access to the vault could read it."),
		 errhint("Index the encrypted column itself (USING vault_hnsw), or compute the value "
				 "in the application; vault.vault_of(column) and vault.key_version_of(column) "
				 "are allowed.")));
}

/* Walker: true when a tree holds a non-null constant of an encrypted type (queries entered). */
bool
FindEncryptedConst(Node *node, void *context)
{
	if (node == nullptr)
		return false;
	if (IsA(node, Const))
	{
		Const *c = reinterpret_cast<Const *>(node);
		return !c->constisnull && type::TypeHoldsEncrypted(c->consttype);
	}
	if (IsA(node, Query))
		return query_tree_walker(reinterpret_cast<Query *>(node), VV_WALKER(FindEncryptedConst),
								 context, 0);
	return expression_tree_walker(node, VV_WALKER(FindEncryptedConst), context);
}

/* Raises 42501: a definition would keep an encrypted constant, which no key rotation sees. */
void
RefuseConstant(Relation rel, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("%s of \"%s\" would keep an encrypted constant", what,
					RelationGetRelationName(rel)),
			 errdetail("A value sealed into a definition is not a row: vault.retire_key_version "
					   "cannot see it, and it would become undecryptable when its key version "
					   "is retired."),
			 errhint("Keep encrypted values in table rows and refer to them there.")));
}

/* Checks a table's stored generated columns, and its defaults and CHECK constraints for
 * encrypted constants. */
void
CheckTable(Relation rel)
{
	TupleDesc desc = RelationGetDescr(rel);
	if (desc->constr == nullptr)
		return;
	for (int i = 0; i < desc->constr->num_defval; i++)
	{
		AttrDefault *d = &desc->constr->defval[i];
		Node *expr = static_cast<Node *>(stringToNode(d->adbin));
		bool generated =
			TupleDescAttr(desc, d->adnum - 1)->attgenerated == ATTRIBUTE_GENERATED_STORED;
		if (FindEncryptedConst(expr, nullptr))
			RefuseConstant(rel, generated ? "a generated column" : "a column default");
		if (!generated || IsMetadataOnly(expr))
			continue;
		AttrNumber att = EncryptedVarIn(expr, rel);
		if (att != InvalidAttrNumber)
			Refuse(rel, att, "a generated column");
	}
	for (int i = 0; i < desc->constr->num_check; i++)
		if (FindEncryptedConst(static_cast<Node *>(stringToNode(desc->constr->check[i].ccbin)),
							   nullptr))
			RefuseConstant(rel, "a CHECK constraint");
}

/* Checks a view's or materialized view's query for encrypted constants. */
void
CheckViewQuery(Relation rel)
{
	Query *q = get_view_query(rel);
	if (q != nullptr && FindEncryptedConst(reinterpret_cast<Node *>(q), nullptr))
		RefuseConstant(rel, "the query");
}

/* Checks an index's access method, expressions and predicate. */
void
CheckIndex(Relation index)
{
	Oid heap_id = index->rd_index->indrelid;
	Relation heap = table_open(heap_id, AccessShareLock);
	/* Key columns holding encrypted values: only vault_hnsw. A btree (evector's default opclass,
	 * for ORDER BY, DISTINCT and GROUP BY) orders its entries by the decrypted values, so the
	 * order of its pages would reveal the order of the plaintexts to anyone with the files. */
	char *amname = get_am_name(index->rd_rel->relam);
	if (amname == nullptr || strcmp(amname, "vault_hnsw") != 0)
	{
		for (int i = 0; i < index->rd_index->indnkeyatts; i++)
		{
			AttrNumber att = index->rd_index->indkey.values[i];
			/* an expression key whose value is encrypted (COALESCE(v, v), ARRAY[v]) is ordered
			 * by the decrypted values just the same: judge the index column's own type */
			if (att == 0 &&
				type::TypeHoldsEncrypted(TupleDescAttr(RelationGetDescr(index), i)->atttypid))
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("an index using %s on an encrypted expression of \"%s\" is not "
								"allowed",
								amname ? amname : "?", RelationGetRelationName(heap)),
						 errdetail("Its entries would be ordered by the decrypted values, and the "
								   "order of its pages would reveal them."),
						 errhint("Index encrypted values only USING vault_hnsw.")));
			if (att > 0 &&
				type::TypeHoldsEncrypted(TupleDescAttr(RelationGetDescr(heap), att - 1)->atttypid))
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("an index using %s on encrypted column \"%s\" of \"%s\" is not "
								"allowed",
								amname ? amname : "?",
								NameStr(TupleDescAttr(RelationGetDescr(heap), att - 1)->attname),
								RelationGetRelationName(heap)),
						 errdetail("Its entries would be ordered by the decrypted values, and the "
								   "order of its pages would reveal them."),
						 errhint("Index the column USING vault_hnsw; ORDER BY, DISTINCT and "
								 "GROUP BY on it work without an index.")));
		}
	}
	List *exprs = RelationGetIndexExpressions(index);
	ListCell *lc;
	foreach (lc, exprs)
	{
		Node *e = static_cast<Node *>(lfirst(lc));
		if (IsMetadataOnly(e))
			continue;
		AttrNumber att = EncryptedVarIn(e, heap);
		if (att != InvalidAttrNumber)
			Refuse(heap, att, "an index expression");
	}
	List *pred = RelationGetIndexPredicate(index);
	if (pred != NIL)
	{
		AttrNumber att = EncryptedVarIn(reinterpret_cast<Node *>(pred), heap);
		if (att != InvalidAttrNumber)
			Refuse(heap, att, "a partial-index predicate");
	}
	table_close(heap, AccessShareLock);
}

/* Checks every index of a table. */
void
CheckIndexesOf(Relation rel)
{
	List *indexes = RelationGetIndexList(rel);
	ListCell *lc;
	foreach (lc, indexes)
	{
		Relation index = try_relation_open(lfirst_oid(lc), AccessShareLock);
		if (index == nullptr)
			continue;
		CheckIndex(index);
		relation_close(index, AccessShareLock);
	}
}

/* True when the table has a column that can hold an encrypted value. */
bool
HasEncryptedColumn(Relation rel)
{
	TupleDesc desc = RelationGetDescr(rel);
	for (int i = 0; i < desc->natts; i++)
		if (!TupleDescAttr(desc, i)->attisdropped &&
			type::TypeHoldsEncrypted(TupleDescAttr(desc, i)->atttypid))
			return true;
	return false;
}

/*
 * CREATE INDEX CONCURRENTLY, checked before it runs: the event trigger's ERROR comes after the
 * index exists, and a concurrent build leaves it behind, ready for writes (so filled in the
 * plaintexts' order) and one REINDEX away from valid. Key columns are judged by their types;
 * expressions and predicates, whose types are known only once built, are refused on a table
 * with encrypted columns (a plain CREATE INDEX checks them exactly).
 */
void
PrecheckConcurrentIndex(IndexStmt *stmt)
{
	if (stmt->accessMethod != nullptr && strcmp(stmt->accessMethod, "vault_hnsw") == 0)
		return;
	Oid relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	if (!OidIsValid(relid))
		return;
	Relation rel = try_relation_open(relid, AccessShareLock);
	if (rel == nullptr)
		return;
	bool encrypted_table = HasEncryptedColumn(rel);
	ListCell *lc;
	foreach (lc, stmt->indexParams)
	{
		IndexElem *elem = lfirst_node(IndexElem, lc);
		bool bad = false;
		if (elem->name != nullptr)
		{
			AttrNumber att = get_attnum(relid, elem->name);
			bad = att > 0 && type::TypeHoldsEncrypted(get_atttype(relid, att));
		}
		else
			bad = encrypted_table;
		if (bad)
			ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
							errmsg("CREATE INDEX CONCURRENTLY on an encrypted value of \"%s\" "
								   "is not allowed",
								   RelationGetRelationName(rel)),
							errdetail("An index on encrypted values other than vault_hnsw would "
									  "be ordered by the decrypted values."),
							errhint("Index encrypted columns USING vault_hnsw; for an expression "
									"index on this table, CREATE INDEX without CONCURRENTLY.")));
	}
	if (stmt->whereClause != nullptr && encrypted_table)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("CREATE INDEX CONCURRENTLY with a predicate on \"%s\" is not allowed",
						RelationGetRelationName(rel)),
				 errdetail("The table has encrypted columns; a predicate on one would reveal it."),
				 errhint("CREATE INDEX without CONCURRENTLY, which checks the predicate.")));
	relation_close(rel, AccessShareLock);
}

/* REINDEX (no event trigger on PG 15), checked before it runs: an index the guard refuses
 * (left by an older build) must not be made valid. */
void
PrecheckReindex(ReindexStmt *stmt)
{
	if (stmt->relation == nullptr ||
		(stmt->kind != REINDEX_OBJECT_INDEX && stmt->kind != REINDEX_OBJECT_TABLE))
		return;
	Oid relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	if (!OidIsValid(relid))
		return;
	Relation rel = try_relation_open(relid, AccessShareLock);
	if (rel == nullptr)
		return;
	if (rel->rd_rel->relkind == RELKIND_INDEX || rel->rd_rel->relkind == RELKIND_PARTITIONED_INDEX)
		CheckIndex(rel);
	else
	{
		CheckIndexesOf(rel);
	}
	relation_close(rel, AccessShareLock);
}

ProcessUtility_hook_type g_prev_utility = nullptr;

/* Runs the prechecks, then the command. */
void
DdlUtilityHook(PlannedStmt *pstmt, const char *query, bool read_only, ProcessUtilityContext context,
			   ParamListInfo params, QueryEnvironment *env, DestReceiver *dest,
			   QueryCompletion *qc) noexcept
{
	Node *n = pstmt->utilityStmt;
	if (IsA(n, IndexStmt) && reinterpret_cast<IndexStmt *>(n)->concurrent)
		PrecheckConcurrentIndex(reinterpret_cast<IndexStmt *>(n));
	else if (IsA(n, ReindexStmt))
		PrecheckReindex(reinterpret_cast<ReindexStmt *>(n));
	if (g_prev_utility != nullptr)
		g_prev_utility(pstmt, query, read_only, context, params, env, dest, qc);
	else
		standard_ProcessUtility(pstmt, query, read_only, context, params, env, dest, qc);
}

/* Checks one relation the DDL command created or altered. */
void
CheckRelation(Oid relid)
{
	Relation rel = try_relation_open(relid, AccessShareLock);
	if (rel == nullptr)
		return;
	char kind = rel->rd_rel->relkind;
	if (kind == RELKIND_INDEX || kind == RELKIND_PARTITIONED_INDEX)
		CheckIndex(rel);
	else if (kind == RELKIND_RELATION || kind == RELKIND_PARTITIONED_TABLE ||
			 kind == RELKIND_FOREIGN_TABLE || kind == RELKIND_MATVIEW)
	{
		CheckTable(rel);
		/* Partitioning by an encrypted value would file each row by the order (range) or the
		 * equality (list) of its plaintext: which partition holds a row would reveal it. */
		if (kind == RELKIND_PARTITIONED_TABLE)
		{
			PartitionKey key = RelationGetPartitionKey(rel);
			for (int i = 0; key != nullptr && i < key->partnatts; i++)
				if (type::TypeHoldsEncrypted(get_partition_col_typid(key, i)))
					ereport(ERROR,
							(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
							 errmsg("\"%s\" cannot be partitioned by an encrypted value",
									RelationGetRelationName(rel)),
							 errdetail("The partition a row lands in would reveal the order or "
									   "equality of the decrypted values."),
							 errhint("Partition by another column, e.g. a tenant id.")));
		}
		/* ALTER TABLE ... ADD UNIQUE / PRIMARY KEY reports the table, not the index it made. */
		CheckIndexesOf(rel);
	}
	if (kind == RELKIND_VIEW || kind == RELKIND_MATVIEW)
		CheckViewQuery(rel);
	relation_close(rel, AccessShareLock);
}

} // namespace

/* Installs the CREATE INDEX CONCURRENTLY / REINDEX prechecks (from _PG_init). */
void
RegisterDdlHook()
{
	g_prev_utility = ProcessUtility_hook;
	ProcessUtility_hook = DdlUtilityHook;
}

} // namespace vector_vault::type

using namespace vector_vault;

/* Event trigger (ddl_command_end): refuses stored derivations of encrypted values. */
VV_FUNCTION(vault_ddl_guard)
{
	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_EVENT_TRIGGER_PROTOCOL_VIOLATED),
						errmsg("vault._ddl_guard() must be called as an event trigger")));
	if (!OidIsValid(get_extension_oid("vector_vault", true)))
		PG_RETURN_VOID();
	/* The relations this command created or altered (one statement, pinned search_path). */
	pg::PrivilegedScope scope;
	pg::EnterCallerScope(&scope);
	int rc = SPI_execute("SELECT objid FROM pg_catalog.pg_event_trigger_ddl_commands() "
						 "WHERE classid OPERATOR(pg_catalog.=) "
						 "'pg_catalog.pg_class'::pg_catalog.regclass",
						 true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_event_trigger_ddl_commands()");
	int n = static_cast<int>(SPI_processed);
	Oid *relids = static_cast<Oid *>(palloc(sizeof(Oid) * (n + 1)));
	for (int i = 0; i < n; i++)
	{
		bool isnull;
		relids[i] = DatumGetObjectId(
			SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
	}
	pg::LeavePrivileged(&scope);
	for (int i = 0; i < n; i++)
		type::CheckRelation(relids[i]);
	PG_RETURN_VOID();
}
