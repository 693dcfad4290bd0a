/*
 * rotation_scan.cpp — finding every value of a key version, and rewriting only what is safe.
 *
 * Encrypted values hide in more places than columns of type evector, etext or ejsonb: a domain
 * over one of them, an array of them, a composite type with such a field (nested at any depth),
 * a partition, a materialized view. Every enumeration used by rotation goes through
 * type::TypeHoldsEncrypted() (type/encrypted_types.cpp; SQL: vault._holds_encrypted), and values
 * are read by walking the datum (vault._sealed_count, vault._reseal_nested, vault._vault_ids), so
 * retire_key_version never shreds a version that a nested value still uses. Ranges and multiranges
 * count by their subtype (evector has a btree operator class, so a range over it can exist).
 *
 * Counting runs as the extension owner (pg::EnterPrivileged), which reads every table but the
 * temporary tables of other sessions; those are reported as unreadable, never an error, so a
 * role with a temporary table cannot stop rotation for everybody.
 *
 * Rewriting is different: vault.reencrypt UPDATEs as the caller, and an UPDATE runs code that
 * belongs to the table (triggers, rules, policies, CHECK and domain constraints, generated
 * columns, index expressions and operator classes). A column is rewritten only when the caller
 * owns the table (or is a member of its owner) and every function that can run in that UPDATE
 * is built in, belongs to vector_vault, is owned by a superuser or by a role the caller is a
 * member of; a table with an ON UPDATE rule, or a policy that reads other relations, is not
 * rewritten either. Everything else is reported with the reason (KeyHolder::not_rewritable).
 */
#include "core/envelope.h"

#include <cstring>

#include "index/hnsw.h"
#include "admin/rotation_scan.h"
#include "pg/guard.h"
#include "pg/privileged.h"
#include "pg/secret.h"
#include "type/codec.h"
#include "type/encrypted_types.h"
#include "vault/vault.h"

extern "C"
{
#include "access/genam.h"
#include "executor/tuptable.h"
#include "utils/snapmgr.h"
#include "access/tableam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/typcache.h"
}

using namespace vector_vault;

namespace
{

/* What a walk over a datum does at each encrypted value. */
struct Walk
{
	const type::EncryptedTypes *types;
	/* counting: values of vault_id under lo..hi */
	uint64 vault_id;
	uint32 lo, hi;
	int64 count;
	/* resealing (vault != nullptr): values of vault under an older version are sealed again */
	const vault::VaultInfo *vault;
	/* collecting vault ids (ids != nullptr) */
	int64 *ids;
	int nids, maxids;
};

/* Reseals one value of w->vault under its current key version. */
Datum
ResealOne(Datum d, ValueKind kind, const vault::VaultInfo *v)
{
	type::EnvelopeRef ref;
	type::ReadEnvelope(d, kind, &ref);
	uint8_t *pt = static_cast<uint8_t *>(pg::AllocSecret(ref.header.payload_len));
	type::OpenValue(ref, pt);
	struct varlena *out = type::SealValueInVault(kind, v, pt, ref.header.payload_len);
	pg::FreeSecret(pt);
	return PointerGetDatum(out);
}

/* Visits every encrypted value in d (of type typid); returns d, or a new datum when a value in
 * it was resealed (*changed). */
Datum
WalkDatum(Walk *w, Datum d, Oid typid, bool *changed, int depth)
{
	if (depth > type::kMaxTypeDepth)
		ereport(ERROR, (errcode(ERRCODE_STATEMENT_TOO_COMPLEX),
						errmsg("type nesting is too deep to look for encrypted values")));
	check_stack_depth();
	int kind = type::EncryptedKindOf(*w->types, typid);
	if (kind != 0)
	{
		uint64 vid;
		uint32 version;
		type::PeekEnvelope(d, &vid, &version);
		if (w->ids != nullptr)
		{
			if (w->nids == w->maxids)
			{
				w->maxids *= 2;
				w->ids = static_cast<int64 *>(repalloc(w->ids, sizeof(int64) * w->maxids));
			}
			w->ids[w->nids++] = static_cast<int64>(vid);
		}
		else if (w->vault != nullptr)
		{
			if (vid == w->vault->id && version < w->vault->key_version)
			{
				*changed = true;
				return ResealOne(d, static_cast<ValueKind>(kind), w->vault);
			}
		}
		else if (vid == w->vault_id && version >= w->lo && version <= w->hi)
			w->count++;
		return d;
	}
	Oid base = getBaseType(typid);
	Oid elem = get_element_type(base);
	if (OidIsValid(elem))
	{
		if (!type::HoldsEncrypted(*w->types, elem, depth + 1))
			return d;
		ArrayType *arr = DatumGetArrayTypeP(d);
		int16 typlen;
		bool byval;
		char align;
		get_typlenbyvalalign(ARR_ELEMTYPE(arr), &typlen, &byval, &align);
		Datum *elems;
		bool *nulls;
		int n;
		deconstruct_array(arr, ARR_ELEMTYPE(arr), typlen, byval, align, &elems, &nulls, &n);
		bool any = false;
		for (int i = 0; i < n; i++)
			if (!nulls[i])
				elems[i] = WalkDatum(w, elems[i], ARR_ELEMTYPE(arr), &any, depth + 1);
		if (!any)
			return d;
		*changed = true;
		return PointerGetDatum(construct_md_array(elems, nulls, ARR_NDIM(arr), ARR_DIMS(arr),
												  ARR_LBOUND(arr), ARR_ELEMTYPE(arr), typlen, byval,
												  align));
	}
	if (get_typtype(base) != TYPTYPE_COMPOSITE)
		return d;
	HeapTupleHeader th = DatumGetHeapTupleHeader(d);
	TupleDesc desc =
		lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(th), HeapTupleHeaderGetTypMod(th));
	HeapTupleData tuple;
	tuple.t_len = HeapTupleHeaderGetDatumLength(th);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = th;
	Datum *values = static_cast<Datum *>(palloc(sizeof(Datum) * Max(desc->natts, 1)));
	bool *nulls = static_cast<bool *>(palloc(sizeof(bool) * Max(desc->natts, 1)));
	heap_deform_tuple(&tuple, desc, values, nulls);
	bool any = false;
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		if (att->attisdropped || nulls[i] ||
			!type::HoldsEncrypted(*w->types, att->atttypid, depth + 1))
			continue;
		values[i] = WalkDatum(w, values[i], att->atttypid, &any, depth + 1);
	}
	Datum result = d;
	if (any)
	{
		*changed = true;
		result = HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
	}
	ReleaseTupleDesc(desc);
	return result;
}

/* The declared type of argument 0 (a polymorphic function's actual argument type). */
Oid
ArgType(FunctionCallInfo fcinfo)
{
	Oid t = get_fn_expr_argtype(fcinfo->flinfo, 0);
	if (!OidIsValid(t))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("could not determine the argument type")));
	return t;
}

/* True when member has the rights of role, or role is a superuser (whose code we trust). */
bool
Trusts(Oid member, Oid role)
{
	return superuser_arg(role) || vault::RoleHasRightsOf(member, role);
}

/* Role name for messages. */
char *
RoleName(Oid role)
{
	return GetUserNameFromId(role, true) != nullptr ? pstrdup(GetUserNameFromId(role, true))
													: psprintf("%u", role);
}

/* Every function outside pg_catalog and vector_vault that an UPDATE of relid can run (triggers,
 * rules, policies, constraints of the table and of the domains its columns use, defaults and
 * generated columns, index expressions and operator classes, partition keys of ancestors),
 * with its owner. Runs while privileged ($1 = relid). */
const char *const kForeignCodeSql =
	"WITH RECURSIVE types(t) AS ("
	"  SELECT a.atttypid FROM pg_catalog.pg_attribute a"
	"   WHERE a.attrelid OPERATOR(pg_catalog.=) $1 AND a.attnum OPERATOR(pg_catalog.>) 0"
	"  UNION"
	"  SELECT n.t FROM types JOIN pg_catalog.pg_type y ON y.oid OPERATOR(pg_catalog.=) types.t"
	"   CROSS JOIN LATERAL (SELECT y.typbasetype UNION ALL SELECT y.typelem UNION ALL"
	"     SELECT a.atttypid FROM pg_catalog.pg_attribute a"
	"      WHERE a.attrelid OPERATOR(pg_catalog.=) y.typrelid"
	"        AND a.attnum OPERATOR(pg_catalog.>) 0) n(t)"
	"   WHERE n.t OPERATOR(pg_catalog.<>) 0::pg_catalog.oid),"
	" objs(classid, objid) AS ("
	"  SELECT 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid, $1"
	"  UNION ALL SELECT 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid,"
	"   p.relid::pg_catalog.oid FROM pg_catalog.pg_partition_ancestors($1) p"
	"  UNION ALL SELECT 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid, i.indexrelid"
	"   FROM pg_catalog.pg_index i WHERE i.indrelid OPERATOR(pg_catalog.=) $1"
	"  UNION ALL SELECT 'pg_catalog.pg_trigger'::pg_catalog.regclass::pg_catalog.oid, t.oid"
	"   FROM pg_catalog.pg_trigger t WHERE t.tgrelid OPERATOR(pg_catalog.=) $1"
	"  UNION ALL SELECT 'pg_catalog.pg_rewrite'::pg_catalog.regclass::pg_catalog.oid, r.oid"
	"   FROM pg_catalog.pg_rewrite r WHERE r.ev_class OPERATOR(pg_catalog.=) $1"
	"  UNION ALL SELECT 'pg_catalog.pg_policy'::pg_catalog.regclass::pg_catalog.oid, p.oid"
	"   FROM pg_catalog.pg_policy p WHERE p.polrelid OPERATOR(pg_catalog.=) $1"
	"  UNION ALL SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass::pg_catalog.oid, c.oid"
	"   FROM pg_catalog.pg_constraint c WHERE c.conrelid OPERATOR(pg_catalog.=) $1"
	"    OR c.contypid OPERATOR(pg_catalog.=) ANY (SELECT t FROM types)"
	"  UNION ALL SELECT 'pg_catalog.pg_attrdef'::pg_catalog.regclass::pg_catalog.oid, d.oid"
	"   FROM pg_catalog.pg_attrdef d WHERE d.adrelid OPERATOR(pg_catalog.=) $1),"
	" deps AS (SELECT d.refclassid, d.refobjid FROM pg_catalog.pg_depend d JOIN objs o"
	"   ON d.classid OPERATOR(pg_catalog.=) o.classid AND d.objid OPERATOR(pg_catalog.=) o.objid),"
	" procs(fn) AS ("
	"  SELECT refobjid FROM deps"
	"   WHERE refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass"
	"  UNION ALL SELECT t.tgfoid FROM pg_catalog.pg_trigger t"
	"   WHERE t.tgrelid OPERATOR(pg_catalog.=) $1"
	"  UNION ALL SELECT op.oprcode::pg_catalog.oid FROM deps JOIN pg_catalog.pg_operator op"
	"   ON deps.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_operator'::pg_catalog.regclass"
	"   AND op.oid OPERATOR(pg_catalog.=) deps.refobjid"
	"  UNION ALL SELECT ap.amproc::pg_catalog.oid FROM deps JOIN pg_catalog.pg_opclass oc"
	"   ON deps.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_opclass'::pg_catalog.regclass"
	"   AND oc.oid OPERATOR(pg_catalog.=) deps.refobjid"
	"   JOIN pg_catalog.pg_amproc ap ON ap.amprocfamily OPERATOR(pg_catalog.=) oc.opcfamily)"
	" SELECT DISTINCT p.oid::pg_catalog.regprocedure::pg_catalog.text, p.proowner"
	" FROM procs JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) procs.fn"
	" WHERE p.pronamespace OPERATOR(pg_catalog.<>) 'pg_catalog'::pg_catalog.regnamespace"
	"  AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend e JOIN pg_catalog.pg_extension x"
	"   ON x.oid OPERATOR(pg_catalog.=) e.refobjid"
	"   WHERE e.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass"
	"    AND e.objid OPERATOR(pg_catalog.=) p.oid AND e.deptype OPERATOR(pg_catalog.=) 'e'"
	"    AND x.extname OPERATOR(pg_catalog.=) 'vector_vault')"
	" ORDER BY 1";

/* Why the caller may not rewrite relid in place with an UPDATE, or nullptr when it may. Runs
 * while privileged (SPI connected). */
char *
NotRewritable(Oid relid, char relkind, Oid owner, bool other_temp, Oid caller)
{
	if (relkind == RELKIND_MATVIEW)
		return pstrdup("it is a materialized view (REFRESH MATERIALIZED VIEW rewrites it from "
					   "its source)");
	if (other_temp)
		return pstrdup("it is a temporary table of another session");
	if (!vault::RoleHasRightsOf(caller, owner))
		return psprintf("it is owned by role \"%s\", whose code would run with your rights",
						RoleName(owner));
	Oid nsp = get_rel_namespace(relid);
	if (pg_namespace_aclcheck(nsp, caller, ACL_USAGE) != ACLCHECK_OK ||
		pg_class_aclcheck(relid, caller, ACL_SELECT) != ACLCHECK_OK ||
		pg_class_aclcheck(relid, caller, ACL_UPDATE) != ACLCHECK_OK)
		return pstrdup("you lack USAGE on its schema or SELECT and UPDATE on it");
	Oid types[1] = {OIDOID};
	Datum values[1] = {ObjectIdGetDatum(relid)};
	if (SPI_execute_with_args("SELECT r.rulename::pg_catalog.text FROM pg_catalog.pg_rewrite r "
							  "WHERE r.ev_class OPERATOR(pg_catalog.=) $1 AND r.ev_type "
							  "OPERATOR(pg_catalog.=) '2' LIMIT 1",
							  1, types, values, nullptr, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the rules of relation %u", relid);
	if (SPI_processed > 0)
		return psprintf("it has an ON UPDATE rule (\"%s\")",
						SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	if (SPI_execute_with_args(
			"SELECT p.polname::pg_catalog.text FROM pg_catalog.pg_policy p JOIN "
			"pg_catalog.pg_depend d ON d.classid OPERATOR(pg_catalog.=) "
			"'pg_catalog.pg_policy'::pg_catalog.regclass AND d.objid OPERATOR(pg_catalog.=) "
			"p.oid WHERE p.polrelid OPERATOR(pg_catalog.=) $1 AND d.refclassid "
			"OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid "
			"OPERATOR(pg_catalog.<>) $1 LIMIT 1",
			1, types, values, nullptr, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the policies of relation %u", relid);
	if (SPI_processed > 0)
		return psprintf("its policy \"%s\" reads other relations",
						SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	if (SPI_execute_with_args(kForeignCodeSql, 1, types, values, nullptr, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the code attached to relation %u", relid);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool isnull;
		Oid fn_owner = DatumGetObjectId(
			SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
		if (!Trusts(caller, fn_owner))
			return psprintf("an UPDATE of it would run function %s, owned by role \"%s\"",
							SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1),
							RoleName(fn_owner));
	}
	return nullptr;
}

/* Values of the vault under lo..hi in one column of a table or materialized view, counted with
 * a plain heap scan (envelope headers only): no SQL, so no planner, which would evaluate the
 * table's index expressions and inline its functions as the extension owner (found by
 * sql/44_round2_attack_pass, 1a). */
int64
CountValues(Oid relid, const char *column, uint64 vault_id, uint32 lo, uint32 hi)
{
	char relkind = get_rel_relkind(relid);
	if (relkind != RELKIND_RELATION && relkind != RELKIND_MATVIEW)
		return 0;
	AttrNumber att = get_attnum(relid, column);
	if (att == InvalidAttrNumber)
		return 0;
	Relation rel = table_open(relid, AccessShareLock);
	Oid typid = TupleDescAttr(RelationGetDescr(rel), att - 1)->atttypid;
	type::EncryptedTypes types;
	type::LoadEncryptedTypes(&types);
	Walk w = {};
	w.types = &types;
	w.vault_id = vault_id;
	w.lo = lo;
	w.hi = hi;
	Snapshot snapshot = RegisterSnapshot(GetLatestSnapshot());
	TableScanDesc scan = table_beginscan(rel, snapshot, 0, nullptr);
	TupleTableSlot *slot = table_slot_create(rel, nullptr);
	MemoryContext per_row =
		AllocSetContextCreate(CurrentMemoryContext, "vector_vault count", ALLOCSET_SMALL_SIZES);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		CHECK_FOR_INTERRUPTS();
		bool isnull;
		Datum d = slot_getattr(slot, att, &isnull);
		if (isnull)
			continue;
		MemoryContext saved = MemoryContextSwitchTo(per_row);
		bool changed = false;
		(void) WalkDatum(&w, d, typid, &changed, 0);
		MemoryContextSwitchTo(saved);
		MemoryContextReset(per_row);
	}
	MemoryContextDelete(per_row);
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
	return w.count;
}

/* Never run another role's policy as the extension owner: a table whose policies would apply
 * makes the count fail instead (the owner is a superuser, whom they do not bind). Undone by
 * LeavePrivileged. */
void
RowSecurityOff()
{
	(void) set_config_option("row_security", "off", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
}

/* True when relid is a temporary relation of another session (its pages cannot be read). */
bool
IsOtherSessionsTempRel(Oid relid)
{
	return get_rel_persistence(relid) == RELPERSISTENCE_TEMP &&
		   isOtherTempNamespace(get_rel_namespace(relid));
}

/* One relation column (or index) to look at. */
struct Candidate
{
	Oid relid;
	char *relation;
	char *column; /* nullptr: a vault_hnsw index */
	char relkind;
	Oid owner;
	bool other_temp;
	Oid table;      /* for an index: its table */
	Oid typid;      /* the column's type */
	bool generated; /* a generated column: recomputed, never assigned */
};

/* Copies the encrypted columns (and vault_hnsw indexes) into *out; returns how many. Runs
 * while privileged; the array lives in mcxt. */
int
ListCandidates(bool with_indexes, MemoryContext mcxt, Candidate **out)
{
	const char *sql =
		"SELECT c.oid, pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.' "
		"OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname), "
		"e.column_name::pg_catalog.text, "
		"c.relkind::pg_catalog.text, c.relowner, c.oid, a.atttypid, "
		"a.attgenerated OPERATOR(pg_catalog.<>) '' "
		"FROM vault._encrypted_columns() WITH ORDINALITY e(relid, column_name, ord) "
		"JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) e.relid "
		"JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace "
		"JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid "
		"AND a.attname OPERATOR(pg_catalog.=) e.column_name "
		"ORDER BY e.ord";
	const char *index_sql =
		"SELECT i.oid, pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.' "
		"OPERATOR(pg_catalog.||) pg_catalog.quote_ident(i.relname), NULL::pg_catalog.text, "
		"i.relkind::pg_catalog.text, t.relowner, t.oid, 0::pg_catalog.oid, false "
		"FROM pg_catalog.pg_class i JOIN pg_catalog.pg_am a ON a.oid OPERATOR(pg_catalog.=) "
		"i.relam JOIN pg_catalog.pg_index x ON x.indexrelid OPERATOR(pg_catalog.=) i.oid "
		"JOIN pg_catalog.pg_class t ON t.oid OPERATOR(pg_catalog.=) x.indrelid "
		"JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) i.relnamespace "
		"WHERE a.amname OPERATOR(pg_catalog.=) 'vault_hnsw' ORDER BY i.oid";
	int total = 0, cap = 16;
	Candidate *c = static_cast<Candidate *>(MemoryContextAlloc(mcxt, sizeof(Candidate) * cap));
	for (int pass = 0; pass < (with_indexes ? 2 : 1); pass++)
	{
		if (SPI_execute(pass == 0 ? sql : index_sql, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not list the encrypted columns");
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple tup = SPI_tuptable->vals[i];
			TupleDesc desc = SPI_tuptable->tupdesc;
			bool isnull;
			if (total == cap)
			{
				cap *= 2;
				c = static_cast<Candidate *>(repalloc(c, sizeof(Candidate) * cap));
			}
			Candidate *k = &c[total++];
			k->relid = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
			k->relation = MemoryContextStrdup(mcxt, SPI_getvalue(tup, desc, 2));
			char *col = SPI_getvalue(tup, desc, 3);
			k->column = col != nullptr ? MemoryContextStrdup(mcxt, col) : nullptr;
			k->relkind = SPI_getvalue(tup, desc, 4)[0];
			k->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 5, &isnull));
			k->table = DatumGetObjectId(SPI_getbinval(tup, desc, 6, &isnull));
			k->typid = DatumGetObjectId(SPI_getbinval(tup, desc, 7, &isnull));
			k->generated = DatumGetBool(SPI_getbinval(tup, desc, 8, &isnull));
			Oid nsp = get_rel_namespace(k->table);
			k->other_temp =
				get_rel_persistence(k->table) == RELPERSISTENCE_TEMP && isOtherTempNamespace(nsp);
		}
	}
	*out = c;
	return total;
}

} // namespace

namespace vector_vault::admin
{

/* See rotation_scan.h. */
int
ScanKeyHolders(uint64 vault_id, Oid vault_owner, uint32 lo, uint32 hi, Oid caller,
			   bool with_indexes, KeyHolder **out)
{
	MemoryContext outer = CurrentMemoryContext;
	pg::PrivilegedScope scope;
	pg::EnterPrivileged(&scope);
	RowSecurityOff();
	/* The roles with a level on the vault, to tell its members' tables from outsiders'. */
	Oid gtypes[1] = {INT8OID};
	Datum gvalues[1] = {Int64GetDatum(static_cast<int64>(vault_id))};
	if (SPI_execute_with_args("SELECT g.grantee::pg_catalog.oid FROM vault._grants g WHERE "
							  "g.vault_id OPERATOR(pg_catalog.=) $1",
							  1, gtypes, gvalues, nullptr, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read vault._grants");
	int ngrantees = static_cast<int>(SPI_processed);
	Oid *grantees = static_cast<Oid *>(MemoryContextAlloc(outer, sizeof(Oid) * (ngrantees + 1)));
	for (int i = 0; i < ngrantees; i++)
	{
		bool isnull;
		grantees[i] = DatumGetObjectId(
			SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
	}
	Candidate *cands;
	int ncands = ListCandidates(with_indexes && lo == hi, outer, &cands);
	KeyHolder *holders =
		static_cast<KeyHolder *>(MemoryContextAllocZero(outer, sizeof(KeyHolder) * (ncands + 1)));
	int nholders = 0;
	for (int i = 0; i < ncands; i++)
	{
		const Candidate &c = cands[i];
		int64 remaining = -1;
		if (!c.other_temp && c.column != nullptr)
		{
			remaining = CountValues(c.relid, c.column, vault_id, lo, hi);
		}
		else if (!c.other_temp)
		{
			Relation index = index_open(c.relid, AccessShareLock);
			remaining = static_cast<int64>(index::CountLiveElements(index, vault_id, lo));
			index_close(index, AccessShareLock);
		}
		if (remaining == 0)
			continue;
		KeyHolder *h = &holders[nholders++];
		MemoryContext spi = MemoryContextSwitchTo(outer);
		h->relid = c.relid;
		h->relation = c.relation;
		h->column = c.column;
		h->owner = c.owner;
		h->owner_name = RoleName(c.owner);
		h->remaining = remaining;
		bool rights = vault::RoleHasRightsOf(c.owner, vault_owner);
		for (int g = 0; g < ngrantees && !rights; g++)
			rights = vault::RoleHasRightsOf(c.owner, grantees[g]);
		h->owner_has_rights = rights;
		h->scalar = c.column != nullptr && type::IsEncryptedScalarType(c.typid);
		MemoryContextSwitchTo(spi);
		if (c.column != nullptr)
		{
			char *why = c.generated
							? pstrdup("it is a generated column (an UPDATE of the columns it is "
									  "computed from recomputes it)")
							: NotRewritable(c.table, c.relkind, c.owner, c.other_temp, caller);
			h->not_rewritable = why != nullptr ? MemoryContextStrdup(outer, why) : nullptr;
		}
	}
	pg::LeavePrivileged(&scope);
	*out = holders;
	return nholders;
}

} // namespace vector_vault::admin

/* vault._sealed_count(value anyelement, vault_id bigint, lo int, hi int): values of the vault
 * under key versions lo..hi inside value (headers only). */
VV_FUNCTION(vault_sealed_count)
{
	Walk w = {};
	w.types = type::EncryptedTypesFor(fcinfo);
	w.vault_id = static_cast<uint64>(PG_GETARG_INT64(1));
	w.lo = static_cast<uint32>(Max(PG_GETARG_INT32(2), 0));
	w.hi = static_cast<uint32>(Max(PG_GETARG_INT32(3), 0));
	bool changed = false;
	(void) WalkDatum(&w, PG_GETARG_DATUM(0), ArgType(fcinfo), &changed, 0);
	PG_RETURN_INT32(static_cast<int32>(w.count));
}

/* vault._reseal_nested(value anyelement, vault_id bigint): value with every value of the vault
 * under an older key version sealed again under the current one (write level on the vault). */
VV_FUNCTION(vault_reseal_nested)
{
	const vault::VaultInfo *v = vault::LookupVault(static_cast<uint64>(PG_GETARG_INT64(1)));
	if (v == nullptr || v->dropped)
		ereport(ERROR, (errcode(pg::kSqlStateKeyUnavailable),
						errmsg("the vault does not exist or was dropped")));
	vault::RequireLevel(v, vault::Level::kWrite, "re-encrypt values");
	/* A copy: decrypting may reload the vault cache the pointer points into. */
	vault::VaultInfo copy = *v;
	Walk w = {};
	w.types = type::EncryptedTypesFor(fcinfo);
	w.vault = &copy;
	bool changed = false;
	PG_RETURN_DATUM(WalkDatum(&w, PG_GETARG_DATUM(0), ArgType(fcinfo), &changed, 0));
}

/* vault._vault_ids(value anyelement): the vault ids of every encrypted value inside value (for
 * the row-level security policies of vault.protect on array and composite columns). */
VV_FUNCTION(vault_vault_ids)
{
	Walk w = {};
	w.types = type::EncryptedTypesFor(fcinfo);
	w.maxids = 8;
	w.ids = static_cast<int64 *>(palloc(sizeof(int64) * w.maxids));
	bool changed = false;
	(void) WalkDatum(&w, PG_GETARG_DATUM(0), ArgType(fcinfo), &changed, 0);
	Datum *elems = static_cast<Datum *>(palloc(sizeof(Datum) * Max(w.nids, 1)));
	for (int i = 0; i < w.nids; i++)
		elems[i] = Int64GetDatum(w.ids[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, w.nids, INT8OID, 8, true, TYPALIGN_DOUBLE));
}

/* vault._key_version_holders(vault text, lo int, hi int): the relations holding values of the
 * vault under key versions lo..hi, their owners, counts, and whether the caller may rewrite
 * them (write level on the vault). */
VV_FUNCTION(vault_key_version_holders)
{
	char *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	const vault::VaultInfo *v = vault::RequireVault(name);
	vault::RequireLevel(v, vault::Level::kWrite, "re-encrypt values");
	uint64 id = v->id;
	Oid vault_owner = v->owner;
	Oid caller = GetUserId();
	ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
	InitMaterializedSRF(fcinfo, 0);
	admin::KeyHolder *holders;
	int n = admin::ScanKeyHolders(id, vault_owner, static_cast<uint32>(Max(PG_GETARG_INT32(1), 0)),
								  static_cast<uint32>(Max(PG_GETARG_INT32(2), 0)), caller, false,
								  &holders);
	for (int i = 0; i < n; i++)
	{
		const admin::KeyHolder &h = holders[i];
		Datum values[7] = {ObjectIdGetDatum(h.relid),
						   DirectFunctionCall1(namein, CStringGetDatum(h.column)),
						   ObjectIdGetDatum(h.owner),
						   Int64GetDatum(h.remaining),
						   BoolGetDatum(h.owner_has_rights),
						   h.not_rewritable != nullptr ? CStringGetTextDatum(h.not_rewritable)
													   : (Datum) 0,
						   BoolGetDatum(h.scalar)};
		bool nulls[7] = {false, false, false, h.remaining < 0, false, h.not_rewritable == nullptr,
						 false};
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* vault._not_rewritable(relation regclass): why the current role may not rewrite the relation
 * in place with vault.reencrypt (NULL when it may); reencrypt asks again under its lock before
 * every batch, so nothing added since the first check runs. */
VV_FUNCTION(vault_not_rewritable)
{
	Oid relid = PG_GETARG_OID(0);
	Oid caller = GetUserId();
	HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		PG_RETURN_TEXT_P(cstring_to_text("it no longer exists"));
	Form_pg_class form = reinterpret_cast<Form_pg_class>(GETSTRUCT(tup));
	char relkind = form->relkind;
	Oid owner = form->relowner;
	bool other_temp =
		form->relpersistence == RELPERSISTENCE_TEMP && isOtherTempNamespace(form->relnamespace);
	ReleaseSysCache(tup);
	if (relkind != RELKIND_RELATION && relkind != RELKIND_MATVIEW)
		PG_RETURN_TEXT_P(cstring_to_text("it is not a table"));
	MemoryContext outer = CurrentMemoryContext;
	pg::PrivilegedScope scope;
	pg::EnterPrivileged(&scope);
	char *why = NotRewritable(relid, relkind, owner, other_temp, caller);
	/* Copied out of the SPI context, which LeavePrivileged frees. */
	why = why != nullptr ? MemoryContextStrdup(outer, why) : nullptr;
	pg::LeavePrivileged(&scope);
	if (why == nullptr)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(why));
}

/* vault._remaining_values(relation regclass, column_name name, vault text, lo int, hi int): the
 * values of the vault under key versions lo..hi left in one column, counted as the extension
 * owner (write access to the vault); what vault.reencrypt reports after rewriting a column. */
VV_FUNCTION(vault_remaining_values)
{
	Oid relid = PG_GETARG_OID(0);
	char *column = NameStr(*PG_GETARG_NAME(1));
	char *name = text_to_cstring(PG_GETARG_TEXT_PP(2));
	const vault::VaultInfo *v = vault::RequireVault(name);
	vault::RequireLevel(v, vault::Level::kWrite, "re-encrypt values");
	uint64 id = v->id;
	char *relname = get_rel_name(relid);
	/* Only tables and materialized views: reading them runs no code (a view or a foreign table
	 * would run its owner's query or wrapper as the extension owner). */
	char relkind = get_rel_relkind(relid);
	if (relname == nullptr || (relkind != RELKIND_RELATION && relkind != RELKIND_MATVIEW) ||
		IsOtherSessionsTempRel(relid))
		PG_RETURN_NULL();
	int64 n = CountValues(relid, column, id, static_cast<uint32>(Max(PG_GETARG_INT32(3), 0)),
						  static_cast<uint32>(Max(PG_GETARG_INT32(4), 0)));
	PG_RETURN_INT64(n);
}
