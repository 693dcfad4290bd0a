/*
 * hnsw_am.cpp — the vault_hnsw handler: callbacks, reloptions, GUCs, cost estimate.
 *
 * Planner contract: the index is only useful for "ORDER BY col <op> value [LIMIT k]" where <op>
 * is the opclass's distance operator. Without an ORDER BY the cost is infinite so the planner
 * never picks it; with one, the startup cost is the in-memory search (ef_search candidates,
 * about 2M distance computations each, per level) and the per-tuple cost is the heap fetch, so a
 * LIMIT makes the index win and a full ordering of a large table does not.
 */
#include "core/distance.h"

#include <cmath>

#include "index/hnsw.h"
#include "keys/keys.h"
#include "pg/guard.h"
#include "type/codec.h"

extern "C"
{
#include "access/genam.h"
#include "access/reloptions.h"
#include "access/table.h"
#include "catalog/index.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "commands/progress.h"
#include "commands/vacuum.h"
#include "nodes/pathnodes.h"
#include "optimizer/optimizer.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/rel.h"
#include "utils/selfuncs.h"
#include "utils/syscache.h"
#include "catalog/pg_type.h"
#include "access/htup_details.h"
}

namespace vector_vault::index
{

int g_ef_search = kDefaultEfSearch;
int g_cache_size_mb = 256;
int g_cache_indexes = 1024;
int g_cache_representation = kReprAuto;
int g_build_threads = 2;

namespace
{

relopt_kind g_relopt_kind;

/* Parses and validates reloptions. */
bytea *
hnsw_options(Datum reloptions, bool validate) noexcept
{
	static const relopt_parse_elt tab[] = {
		{"m", RELOPT_TYPE_INT, offsetof(HnswOptions, m)},
		{"ef_construction", RELOPT_TYPE_INT, offsetof(HnswOptions, ef_construction)},
	};
	return static_cast<bytea *>(build_reloptions(reloptions, validate, g_relopt_kind,
												 sizeof(HnswOptions), tab, lengthof(tab)));
}

/* Costs an index path (see the file comment). */
void
hnsw_costestimate(PlannerInfo *root, IndexPath *path, double loop_count, Cost *startup, Cost *total,
				  Selectivity *selectivity, double *correlation, double *pages) noexcept
{
	if (path->indexorderbys == NIL)
	{
		*startup = get_float8_infinity();
		*total = get_float8_infinity();
		*selectivity = 0;
		*correlation = 0;
		*pages = 0;
		return;
	}
	GenericCosts costs;
	memset(&costs, 0, sizeof(costs));
	double tuples = Max(path->indexinfo->tuples, 1.0);
	/* The index's own m (the planner holds a lock on it already). */
	int m, ef_construction;
	Relation index = index_open(path->indexinfo->indexoid, NoLock);
	GetOptions(index, &m, &ef_construction);
	index_close(index, NoLock);
	/* Each visited candidate costs about 2M distance computations in memory. */
	double visited = Min(tuples, g_ef_search * std::log2(tuples + 2.0));
	costs.numIndexTuples = tuples;
	genericcostestimate(root, path, loop_count, &costs);
	double search = visited * 2 * m * cpu_operator_cost;
	*startup = search;
	/*
	 * No index page I/O on the hot path: the graph is served from the decrypted cache. Rows past
	 * the first ef_search come from repeated searches with a doubled candidate list, so each row
	 * costs about a search step (2m distances per level); a full ordering of a big table is then
	 * dearer than a sort, while a LIMIT pays only for the rows it takes.
	 */
	*total = search +
			 tuples * (cpu_index_tuple_cost + 2 * m * std::log2(tuples + 2.0) * cpu_operator_cost);
	*selectivity = 1.0;
	*correlation = 0;
	*pages = Min(costs.numIndexPages, 1.0);
}

/* No validation beyond what CREATE OPERATOR CLASS already checked. */
bool
hnsw_validate(Oid) noexcept
{
	return true;
}

/* Build phase names for pg_stat_progress_create_index. */
char *
PhaseName(int64 phase)
{
	switch (phase)
	{
		case PROGRESS_CREATEIDX_SUBPHASE_INITIALIZE:
			return const_cast<char *>("initializing");
		case kPhaseLoad:
			return const_cast<char *>("loading tuples");
		case kPhaseBuildGraph:
			return const_cast<char *>("building graph");
		case kPhaseWrite:
			return const_cast<char *>("writing encrypted pages");
		default:
			return nullptr;
	}
}

} // namespace

/* Build phase names (exported for the handler). */
char *
hnsw_buildphasename(int64 phase) noexcept
{
	return PhaseName(phase);
}

/* Defines GUCs and reloptions and registers the cache. */
void
DefineGucs()
{
	g_relopt_kind = add_reloption_kind();
	add_int_reloption(g_relopt_kind, "m", "Max number of neighbours per layer (layer 0 keeps 2m)",
					  kDefaultM, kMinM, kMaxM, AccessExclusiveLock);
	add_int_reloption(g_relopt_kind, "ef_construction",
					  "Size of the dynamic candidate list while building the graph",
					  kDefaultEfConstruction, kMinEfConstruction, kMaxEfConstruction,
					  AccessExclusiveLock);
	DefineCustomIntVariable(
		"vector_vault.ef_search", "Size of the dynamic candidate list for vault_hnsw searches.",
		"Larger values give higher recall and slower searches.", &g_ef_search, kDefaultEfSearch,
		kMinEfSearch, kMaxEfSearch, PGC_USERSET, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable(
		"vector_vault.cache_size", "Shared memory for decrypted vault_hnsw indexes.",
		"vault.index_cache shows what is resident; an index that does not fit is searched "
		"from its pages (slower, same results). 0 disables the shared cache.",
		&g_cache_size_mb, 256, 0, INT_MAX / 2, PGC_POSTMASTER, GUC_UNIT_MB, nullptr, nullptr,
		nullptr);
	DefineCustomIntVariable("vector_vault.cache_indexes",
							"How many vault_hnsw indexes the shared cache can hold at once.",
							"Beyond it the least recently used index is evicted.", &g_cache_indexes,
							1024, 1, 1000000, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
	static const struct config_enum_entry representations[] = {
		{"auto", kReprAuto, false},
		{"sq8", static_cast<int>(Representation::kSq8), false},
		{"sq4", static_cast<int>(Representation::kSq4), false},
		{"float32", static_cast<int>(Representation::kFloat32), false},
		{"pages", static_cast<int>(Representation::kPages), false},
		{nullptr, 0, false}};
	DefineCustomEnumVariable(
		"vector_vault.cache_representation",
		"How the shared cache holds vault_hnsw vectors: auto (float32 when it fits, else sq8, "
		"else sq4), sq8 (8-bit codes, re-ranked), sq4 (4-bit codes, re-ranked), float32 (halves "
		"for an index on ehalfvec), or pages (nothing decrypted is kept).",
		"Applies to indexes loaded after the change.", &g_cache_representation, kReprAuto,
		representations, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("vector_vault.build_threads",
							"Threads that build a vault_hnsw graph in memory during CREATE INDEX.",
							nullptr, &g_build_threads, 2, 1, 64, PGC_USERSET, 0, nullptr, nullptr,
							nullptr);
	RegisterCacheShmem();
}

/* Reloption values or defaults. */
void
GetOptions(Relation index, int *m, int *ef_construction)
{
	HnswOptions *o = reinterpret_cast<HnswOptions *>(index->rd_options);
	*m = o ? o->m : kDefaultM;
	*ef_construction = o ? o->ef_construction : kDefaultEfConstruction;
}

/* The opclass metric, from support function 1. */
Metric
GetMetric(Relation index)
{
	FmgrInfo *proc = index_getprocinfo(index, 1, 1);
	int32 v = DatumGetInt32(FunctionCall1(proc, PointerGetDatum(nullptr)));
	if (!IsKnownMetric(v))
		elog(ERROR, "vault_hnsw support function returned unknown metric %d", v);
	return static_cast<Metric>(v);
}

/* The declared dimensions of the indexed column. */
uint32
GetDims(Relation index)
{
	int32 typmod = TupleDescAttr(index->rd_att, 0)->atttypmod;
	if (typmod < 1)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("column does not have dimensions"),
						errhint("Declare the column as evector(n) to index it.")));
	if (typmod > kMaxIndexDims)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("column cannot have more than %d dimensions for vault_hnsw index",
							   kMaxIndexDims)));
	return static_cast<uint32>(typmod);
}

/* The vector stream width for a new index on this column type and metric. */
ElementWidth
GetWidth(Relation index, Metric metric)
{
	/* Cosine indexes store unit vectors, which are not halves: rounding them would move near
	 * ties out of the exact order, so they keep float32 (docs/design.md, "ehalfvec"). */
	if (metric == Metric::kCosine)
		return ElementWidth::kFloat32;
	/* The opclass's input type: ours, since only a superuser creates vault_hnsw opclasses. */
	HeapTuple tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(index->rd_opcintype[0]));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for type %u", index->rd_opcintype[0]);
	bool half =
		strcmp(NameStr(reinterpret_cast<Form_pg_type>(GETSTRUCT(tup))->typname), "ehalfvec") == 0;
	ReleaseSysCache(tup);
	return half ? ElementWidth::kHalf : ElementWidth::kFloat32;
}

/* Decrypts an evector for the index and normalises it for cosine (false: not indexed). */
bool
OpenVectorForIndex(Datum d, uint32 dims, Metric metric, float *out, uint64 *vault_id,
				   uint32 *key_version)
{
	type::EnvelopeRef ref;
	type::ReadVectorEnvelope(d, &ref); /* evector or ehalfvec, opened as floats */
	uint32 n = type::VectorDimsOf(ref);
	if (n != dims)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("expected %u dimensions, not %u", dims, n)));
	if (!keys::DataKeyExists(ref.header.vault_id, ref.header.key_version))
		return false;
	type::OpenVectorFloatsForIndex(ref, out);
	if (!PrepareForMetric(metric, out, dims))
		return false;
	*vault_id = ref.header.vault_id;
	*key_version = ref.header.key_version;
	return true;
}

/* Opens a vault_hnsw index (and its table) for a SQL function acting on the caller's behalf. */
Relation
OpenIndexForCaller(Oid indexoid, const char *function, Relation *heap_out)
{
	/* checked before any lock is taken */
	Oid heapoid = IndexGetRelation(indexoid, true);
	if (OidIsValid(heapoid) && pg_class_aclcheck(heapoid, GetUserId(), ACL_SELECT) != ACLCHECK_OK &&
		!pg_class_ownercheck(heapoid, GetUserId()))
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, get_rel_name(heapoid));
	/* The table first, then the index, in the order the rest of Postgres locks them. */
	Relation heap = OidIsValid(heapoid) ? table_open(heapoid, AccessShareLock) : nullptr;
	Relation index = index_open(indexoid, AccessShareLock);
	char *amname = get_am_name(index->rd_rel->relam);
	if (heap == nullptr || amname == nullptr || strcmp(amname, "vault_hnsw") != 0)
	{
		index_close(index, AccessShareLock);
		if (heap != nullptr)
			table_close(heap, AccessShareLock);
		ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
						errmsg("\"%s\" is not a vault_hnsw index", get_rel_name(indexoid)),
						errhint("%s works on vault_hnsw indexes only.", function)));
	}
	*heap_out = heap;
	return index;
}

} // namespace vector_vault::index

using namespace vector_vault::index;

/* The access method handler: what vault_hnsw can do and where its callbacks are. */
VV_FUNCTION(vault_hnsw_handler)
{
	(void) fcinfo;
	IndexAmRoutine *am = makeNode(IndexAmRoutine);
	am->amstrategies = 0;
	am->amsupport = 1;
	am->amoptsprocnum = 0;
	am->amcanorder = false;
	am->amcanorderbyop = true;
	am->amcanbackward = false;
	am->amcanunique = false;
	am->amcanmulticol = false;
	am->amoptionalkey = true;
	am->amsearcharray = false;
	am->amsearchnulls = false;
	am->amstorage = false;
	am->amclusterable = false;
	am->ampredlocks = false;
	am->amcanparallel = false;
	am->amcaninclude = false;
	am->amusemaintenanceworkmem = true;
	am->amparallelvacuumoptions = VACUUM_OPTION_PARALLEL_BULKDEL;
	am->amkeytype = InvalidOid;
	am->ambuild = hnsw_build;
	am->ambuildempty = hnsw_buildempty;
	am->aminsert = hnsw_insert;
	am->ambulkdelete = hnsw_bulkdelete;
	am->amvacuumcleanup = hnsw_vacuumcleanup;
	am->amcanreturn = nullptr;
	am->amcostestimate = hnsw_costestimate;
	am->amoptions = hnsw_options;
	am->amproperty = nullptr;
	am->ambuildphasename = hnsw_buildphasename;
	am->amvalidate = hnsw_validate;
	am->amadjustmembers = nullptr;
	am->ambeginscan = hnsw_beginscan;
	am->amrescan = hnsw_rescan;
	am->amgettuple = hnsw_gettuple;
	am->amgetbitmap = nullptr;
	am->amendscan = hnsw_endscan;
	am->ammarkpos = nullptr;
	am->amrestrpos = nullptr;
	am->amestimateparallelscan = nullptr;
	am->aminitparallelscan = nullptr;
	am->amparallelrescan = nullptr;
	PG_RETURN_POINTER(am);
}

/* Support function 1 of evector_l2_ops: the metric id. */
VV_FUNCTION(vault_hnsw_metric_l2)
{
	(void) fcinfo;
	PG_RETURN_INT32(static_cast<int32>(vector_vault::Metric::kL2));
}

/* Support function 1 of evector_ip_ops. */
VV_FUNCTION(vault_hnsw_metric_ip)
{
	(void) fcinfo;
	PG_RETURN_INT32(static_cast<int32>(vector_vault::Metric::kInnerProduct));
}

/* Support function 1 of evector_cosine_ops. */
VV_FUNCTION(vault_hnsw_metric_cosine)
{
	(void) fcinfo;
	PG_RETURN_INT32(static_cast<int32>(vector_vault::Metric::kCosine));
}

/* Support function 1 of evector_l1_ops. */
VV_FUNCTION(vault_hnsw_metric_l1)
{
	(void) fcinfo;
	PG_RETURN_INT32(static_cast<int32>(vector_vault::Metric::kL1));
}
