/*
 * hnsw_verify.cpp — vault.hnsw_verify(index): an independent check of a vault_hnsw index.
 *
 * Reads the pages directly (not the cache) and reports one row per check:
 *   metapage      magic, version, parameters, counters
 *   directory     each vault's entry point exists, is live, belongs to it, has its level
 *   elements      every record decrypts and authenticates (links and vector), ids are unique
 *                 and below next_element_id, lists fit their capacity; with a vault locator
 *                 (hnsw.h), every element on a graph page before build_tail lies in its vault's
 *                 build range (the detail names the count only when some do not)
 *   links         every neighbour of a live element exists, is live, is in the same vault, and
 *                 has the layer the link is on
 *   reachability  every live element of a vault is reachable from its entry point
 * Elements of vaults whose keys were shredded are counted as "shredded", not as errors.
 *
 * An insert writes its element before the neighbours' lists that link to it, so an insert that
 * failed or was cut off by a crash between those WAL records leaves an element nothing links to.
 * Its transaction never committed, so its heap row is dead and searches could not return it
 * anyway; VACUUM removes it. Verify therefore looks up the heap row of every unreachable element
 * (dirty snapshot: committed or in progress counts as alive) and fails only for rows that some
 * transaction can still see; the others are reported as awaiting VACUUM.
 *
 * Consistency without a long lock (issue 14): verify reads the metapage's change counter under
 * the writers' lock, releases it, runs every check, and takes the lock again only to read the
 * counter once more. Every insert and VACUUM bumps the counter before it releases the writers'
 * lock, so equal counters mean no writer changed the pages in between and the report describes
 * one consistent graph. Otherwise the run is repeated (up to kOptimisticRuns times); a run that
 * keeps being overtaken, or one that found a problem (confirmed so that a concurrent failed
 * insert is not reported as damage), is done once more holding the lock throughout. Optimistic
 * runs run in a subtransaction: a page that fails authentication because a VACUUM rewrote it
 * between two reads ends the run instead of the function.
 *
 * Privileges: the report shows vault ids and per-vault counts of the table's rows, so the caller
 * needs SELECT on the table (or owns it), as for reading the rows themselves.
 */
#include "core/secure.h"

#include <algorithm>
#include <cinttypes>
#include <cstring>

#include "index/hnsw.h"
#include "keys/keys.h"
#include "pg/guard.h"
#include "pg/secret.h"

extern "C"
{
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "catalog/pg_am.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "access/xact.h"
#include "utils/acl.h"
#include "utils/resowner.h"
#include "funcapi.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"
}

using namespace vector_vault;
using namespace vector_vault::index;

namespace
{

/* What verify knows about one element. */
struct Info
{
	bool present;
	bool live;
	bool shredded;
	uint8 level;
	uint64 vault_id;
	ItemPointerData heap_tid;
	uint32 *links;
};

/* Whether some transaction (committed or still running) can see the heap row at tid; the table
 * has heap_blocks blocks. */
bool
HeapRowAlive(Relation heap, BlockNumber heap_blocks, ItemPointerData tid)
{
	/* A TID past the table's end (VACUUM truncated it away) names no row. */
	if (ItemPointerGetBlockNumberNoCheck(&tid) >= heap_blocks)
		return false;
	SnapshotData dirty;
	InitDirtySnapshot(dirty);
	bool all_dead = false;
	return table_index_fetch_tuple_check(heap, &tid, &dirty, &all_dead);
}

constexpr int kOptimisticRuns = 3;

/* One report row. */
struct ResultRow
{
	const char *check;
	bool ok;
	char *detail;
};

/* The rows of one run, kept until the run is known to be consistent. */
struct Results
{
	MemoryContext context;
	ResultRow *rows;
	int count;
	int cap;
	bool all_ok;
};

/* Appends one result row. */
void
Emit(Results *out, const char *check, bool ok, const char *detail)
{
	if (out->count == out->cap)
	{
		out->cap = out->cap == 0 ? 16 : out->cap * 2;
		ResultRow *grown = static_cast<ResultRow *>(
			MemoryContextAlloc(out->context, sizeof(ResultRow) * out->cap));
		if (out->count > 0)
			memcpy(grown, out->rows, sizeof(ResultRow) * out->count);
		out->rows = grown;
	}
	out->rows[out->count++] = {check, ok, MemoryContextStrdup(out->context, detail)};
	out->all_ok &= ok;
}

/* Writes the rows of a run into the function's result. */
void
FlushResults(const Results &in, Tuplestorestate *ts, TupleDesc desc)
{
	for (int i = 0; i < in.count; i++)
	{
		Datum values[3] = {CStringGetTextDatum(in.rows[i].check), BoolGetDatum(in.rows[i].ok),
						   CStringGetTextDatum(in.rows[i].detail)};
		bool nulls[3] = {false, false, false};
		tuplestore_putvalues(ts, desc, values, nulls);
	}
}

/* The metapage's change counter, read under the writers' lock (held only for the read). */
uint64
ChangeCounterLocked(Relation index)
{
	LockIndexForWrite(index);
	uint64 counter = ReadMeta(index).change_counter;
	UnlockIndexForWrite(index);
	return counter;
}

/* One run's state, shared by its checks (allocated in the run's context). */
struct VerifyRun
{
	Relation heap;
	Relation index;
	Results *out;
	MetaData meta;
	int m;
	uint32 n;   /* element ids below the metapage's next id */
	Info *info; /* per element id */
	char buf[384];
};

/* Check 1: the metapage's fields are in range and its counts agree. */
void
CheckMetapage(VerifyRun *r)
{
	const MetaData &meta = r->meta;
	bool meta_ok = meta.dims >= 1 && meta.m >= kMinM && meta.m <= kMaxM &&
				   IsKnownMetric(meta.metric) && meta.element_count == meta.next_element_id &&
				   (meta.element_width == 0 || meta.element_width == 2 || meta.element_width == 4);
	snprintf(r->buf, sizeof(r->buf),
			 "dims %u, m %u, ef_construction %u, metric %u, elements %u, counter %" PRIu64 "%s",
			 meta.dims, meta.m, meta.ef_construction, meta.metric, meta.next_element_id,
			 meta.change_counter,
			 meta.element_width == 4 || meta.element_width == 0 ? ""
			 : meta.element_width == 2                          ? ", half vectors"
																: ", unknown vector width");
	Emit(r->out, "metapage", meta_ok, r->buf);
}

/* Whether an element on graph page b of vault vault_id is where the vault locator says: pages
 * from build_tail on hold anything; before it, only the vault's build range (when recorded).
 * dir is sorted by vault id. */
bool
WhereLocatorSays(const MetaData &meta, const DirEntry *dir, int ndir, uint64 vault_id,
				 BlockNumber b)
{
	if (meta.build_tail == 0 || b >= meta.build_tail)
		return true;
	int lo = 0, hi = ndir;
	while (lo < hi)
	{
		int mid = (lo + hi) / 2;
		if (dir[mid].vault_id < vault_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == ndir || dir[lo].vault_id != vault_id)
		return false; /* the cache would fall back to reading every page: not wrong, but odd */
	const DirEntry &d = dir[lo];
	if (d.build_first != 0 && d.build_blocks == 0)
		return true; /* range too long to record: every page is read for it */
	return d.build_first != 0 && b >= d.build_first && b < d.build_first + d.build_blocks;
}

/* Check 2: every element record on the graph pages opens (and a live one's vector
 * authenticates) and lies where the vault locator says; fills r->info, counting duplicates and
 * ids beyond the metapage. */
void
CheckElements(VerifyRun *r)
{
	const int m = r->m;
	const uint32 n = r->n;
	uint64 decrypted = 0, shredded = 0, duplicates = 0, bad_ids = 0, misplaced = 0;
	int ndir;
	DirEntry *dir = ReadDirectory(r->index, r->meta, &ndir);
	std::sort(dir, dir + ndir,
			  [](const DirEntry &a, const DirEntry &b) { return a.vault_id < b.vault_id; });
	float *vec = static_cast<float *>(pg::AllocSecret(sizeof(float) * r->meta.dims));
	BlockNumber nblocks = RelationGetNumberOfBlocks(r->index);
	MemoryContext tmp =
		AllocSetContextCreate(CurrentMemoryContext, "hnsw_verify", ALLOCSET_DEFAULT_SIZES);
	PGAlignedBlock copy;
	MemoryContext outer = CurrentMemoryContext;
	for (BlockNumber b = 1; b < nblocks; b++)
	{
		MemoryContext old = MemoryContextSwitchTo(tmp);
		Buffer bufr = ReadBuffer(r->index, b);
		LockBuffer(bufr, BUFFER_LOCK_SHARE);
		memcpy(copy.data, BufferGetPage(bufr), BLCKSZ);
		UnlockReleaseBuffer(bufr);
		Page page = copy.data;
		if (PageIsNew(page) || GetOpaque(page)->kind != kGraphPage)
		{
			MemoryContextSwitchTo(old);
			continue;
		}
		OffsetNumber max = PageGetMaxOffsetNumber(page);
		for (OffsetNumber off = FirstOffsetNumber; off <= max; off++)
		{
			ItemId iid = PageGetItemId(page, off);
			if (!ItemIdIsUsed(iid))
				continue;
			DecodedElement d;
			bool have = OpenElement(static_cast<char *>(PageGetItem(page, iid)),
									ItemIdGetLength(iid), m, &d, true);
			const ElementHeader &h = d.header;
			if (!WhereLocatorSays(r->meta, dir, ndir, h.vault_id, b))
				misplaced++;
			if (h.element_id >= n)
			{
				bad_ids++;
				continue;
			}
			Info &in = r->info[h.element_id];
			if (in.present)
			{
				duplicates++;
				continue;
			}
			in.present = true;
			in.level = h.level;
			in.vault_id = h.vault_id;
			in.live = !(h.flags & kElementDeleted);
			in.heap_tid = h.heap_tid;
			in.shredded = !have;
			if (!have)
			{
				shredded++;
				continue;
			}
			in.links = static_cast<uint32 *>(MemoryContextAlloc(outer, LinksBytes(m, h.level)));
			memcpy(in.links, d.links, LinksBytes(m, h.level));
			SecureZero(d.links, LinksBytes(m, h.level));
			pfree(d.links);
			if (in.live)
			{
				/* the vector must authenticate too */
				ReadVector(r->index, h.vec_block, h.vec_offset, h.element_id, h.vault_id,
						   h.key_version, r->meta.dims, WidthOf(r->meta), vec);
				SecureZero(vec, sizeof(float) * r->meta.dims);
			}
			decrypted++;
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(tmp);
	}
	MemoryContextDelete(tmp);
	pfree(dir);
	int len = snprintf(r->buf, sizeof(r->buf),
					   "%" PRIu64 " decrypted, %" PRIu64 " of shredded vaults, %" PRIu64
					   " duplicate ids, %" PRIu64 " ids beyond the metapage",
					   decrypted, shredded, duplicates, bad_ids);
	if (misplaced > 0 && len > 0 && static_cast<size_t>(len) < sizeof(r->buf))
		snprintf(r->buf + len, sizeof(r->buf) - len,
				 ", %" PRIu64 " outside their vault's build range (vault locator)", misplaced);
	Emit(r->out, "elements", duplicates == 0 && bad_ids == 0 && misplaced == 0, r->buf);
}

/* Check 3: every link of a live element points at a live element of the same vault that
 * exists on that layer. */
void
CheckLinks(VerifyRun *r)
{
	const int m = r->m;
	uint64 bad_links = 0, checked = 0;
	for (uint32 id = 0; id < r->n; id++)
	{
		const Info &in = r->info[id];
		if (!in.present || !in.live || in.shredded)
			continue;
		for (int l = 0; l <= in.level; l++)
		{
			const uint32 *list = l == 0 ? in.links : in.links + (1 + 2 * m) + (l - 1) * (1 + m);
			for (uint32 k = 0; k < list[0]; k++)
			{
				uint32 nb = list[1 + k];
				checked++;
				if (nb >= r->n || !r->info[nb].present || !r->info[nb].live ||
					r->info[nb].vault_id != in.vault_id || r->info[nb].level < l)
					bad_links++;
			}
		}
	}
	snprintf(r->buf, sizeof(r->buf), "%" PRIu64 " links checked, %" PRIu64 " invalid", checked,
			 bad_links);
	Emit(r->out, "links", bad_links == 0, r->buf);
}

/* Elements reachable on layer 0 from the entry point (marked in seen; stack: n slots). */
uint32
ReachableFrom(const VerifyRun &r, uint32 entry, uint8 *seen, uint32 *stack)
{
	memset(seen, 0, r.n);
	uint32 reached = 0;
	int sp = 0;
	stack[sp++] = entry;
	seen[entry] = 1;
	while (sp > 0)
	{
		uint32 id = stack[--sp];
		reached++;
		/* Layer 0 only: searches explore layer 0, so that is where every live element must be
		 * reachable from the entry point. */
		const uint32 *list = r.info[id].links;
		for (uint32 k = 0; k < list[0]; k++)
		{
			uint32 nb = list[1 + k];
			if (nb < r.n && !seen[nb] && r.info[nb].present && r.info[nb].live)
			{
				seen[nb] = 1;
				stack[sp++] = nb;
			}
		}
	}
	return reached;
}

/* Check 4, per vault of the directory: a valid entry point, every live element reachable
 * from it (or an orphan of a row no transaction sees). */
void
CheckVault(VerifyRun *r, const DirEntry &d, uint8 *seen, uint32 *stack)
{
	const uint32 n = r->n;
	const Info *info = r->info;
	uint32 live = 0;
	bool shred = false;
	for (uint32 id = 0; id < n; id++)
	{
		/* Deleted elements may stay sealed under a retired key version: only live ones that
		 * cannot be opened mean the vault's keys are gone. */
		if (info[id].present && info[id].vault_id == d.vault_id && info[id].live)
		{
			shred |= info[id].shredded;
			live++;
		}
	}
	if (shred)
	{
		snprintf(r->buf, sizeof(r->buf),
				 "vault %016" PRIx64 ": keys shredded, %u elements not checked", d.vault_id, live);
		Emit(r->out, "vault", true, r->buf);
		return;
	}
	bool entry_ok =
		live == 0 ? d.entry == kNoElement
				  : (d.entry < n && info[d.entry].present && info[d.entry].live &&
					 info[d.entry].vault_id == d.vault_id && info[d.entry].level == d.entry_level);
	uint32 reached = entry_ok && live > 0 ? ReachableFrom(*r, d.entry, seen, stack) : 0;
	/* Unreachable elements whose rows no transaction sees: failed or crashed inserts. */
	uint32 orphans = 0;
	if (entry_ok && reached < live)
	{
		BlockNumber heap_blocks = RelationGetNumberOfBlocks(r->heap);
		for (uint32 id = 0; id < n; id++)
			if (info[id].present && info[id].live && info[id].vault_id == d.vault_id && !seen[id] &&
				!HeapRowAlive(r->heap, heap_blocks, info[id].heap_tid))
				orphans++;
	}
	char orphan_note[128] = "";
	if (orphans > 0)
		snprintf(orphan_note, sizeof(orphan_note),
				 "; %u unreachable of rows no transaction sees (interrupted inserts; VACUUM "
				 "removes them)",
				 orphans);
	snprintf(r->buf, sizeof(r->buf),
			 "vault %016" PRIx64
			 ": %u live, %u reachable from entry %d (level %d), directory count %u%s%s",
			 d.vault_id, live, reached, d.entry == kNoElement ? -1 : static_cast<int>(d.entry),
			 d.entry_level, d.count,
			 d.count == live ? "" : " (stale after a crash; the next VACUUM refreshes it)",
			 orphan_note);
	/* The count is a statistic: searches do not depend on it, so it does not fail the check. */
	Emit(r->out, "vault", entry_ok && reached + orphans == live, r->buf);
}

void RunChecks(Relation heap, Relation index, Results *out);

/* One run of every check over the index's pages; rows go to *out. */
void
RunChecks(Relation heap, Relation index, Results *out)
{
	/* Everything a run allocates lives in the run's context, reset before the next run. */
	MemoryContext caller = MemoryContextSwitchTo(out->context);
	VerifyRun *r = static_cast<VerifyRun *>(palloc0(sizeof(VerifyRun)));
	r->heap = heap;
	r->index = index;
	r->out = out;
	r->meta = ReadMeta(index);
	r->m = r->meta.m;
	r->n = r->meta.next_element_id;
	r->info = static_cast<Info *>(palloc0(sizeof(Info) * Max(r->n, 1u)));
	CheckMetapage(r);
	CheckElements(r);
	CheckLinks(r);
	int ndir;
	DirEntry *dir = ReadDirectory(index, r->meta, &ndir);
	uint8 *seen = static_cast<uint8 *>(palloc0(Max(r->n, 1u)));
	uint32 *stack = static_cast<uint32 *>(palloc(sizeof(uint32) * Max(r->n, 1u)));
	for (int v = 0; v < ndir; v++)
		CheckVault(r, dir[v], seen, stack);
	MemoryContextSwitchTo(caller);
}

/* Whether an error may come from reading pages a concurrent writer was changing. */
bool
MayBeTornRead(int sqlerrcode)
{
	return sqlerrcode == ERRCODE_INDEX_CORRUPTED || sqlerrcode == ERRCODE_DATA_CORRUPTED ||
		   sqlerrcode == pg::kSqlStateCorrupt || sqlerrcode == pg::kSqlStateKeyUnavailable;
}

/*
 * An optimistic run, in a subtransaction: a page a concurrent VACUUM rewrote between two reads
 * (a vector overwritten after its element was read as live) fails authentication, which is no
 * finding. Such errors end the run (false: run again); every other error is raised.
 */
bool
TryRunChecks(Relation heap, Relation index, Results *out)
{
	MemoryContext context = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool done = false;
	BeginInternalSubTransaction(nullptr);
	MemoryContextSwitchTo(context);
	PG_TRY();
	{
		RunChecks(heap, index, out);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(context);
		CurrentResourceOwner = owner;
		done = true;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(context);
		ErrorData *edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(context);
		CurrentResourceOwner = owner;
		if (!MayBeTornRead(edata->sqlerrcode))
			ReThrowError(edata);
		FreeErrorData(edata);
	}
	PG_END_TRY();
	return done;
}

} // namespace

/* vault.hnsw_verify(index regclass) RETURNS TABLE (check text, ok boolean, detail text). */
VV_FUNCTION(vault_hnsw_verify)
{
	Oid indexoid = PG_GETARG_OID(0);
	ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
	InitMaterializedSRF(fcinfo, 0);
	Tuplestorestate *ts = rsinfo->setResult;
	TupleDesc desc = rsinfo->setDesc;

	/* The report shows vault ids and row counts: SELECT on the table, or ownership. */
	Relation heap;
	Relation index = OpenIndexForCaller(indexoid, "vault.hnsw_verify", &heap);
	/* Optimistic runs without the writers' lock, then one holding it if they do not settle. */
	MemoryContext run_context =
		AllocSetContextCreate(CurrentMemoryContext, "hnsw_verify run", ALLOCSET_DEFAULT_SIZES);
	Results res = {run_context, nullptr, 0, 0, true};
	bool settled = false;
	for (int run = 0; run < kOptimisticRuns && !settled; run++)
	{
		MemoryContextReset(run_context);
		res = {run_context, nullptr, 0, 0, true};
		uint64 before = ChangeCounterLocked(index);
		if (!TryRunChecks(heap, index, &res))
			continue; /* a torn read: run again (the locked run raises a real error) */
		bool unchanged = ChangeCounterLocked(index) == before;
		if (unchanged && !res.all_ok)
			break; /* confirm a failure under the lock */
		settled = unchanged;
	}
	if (!settled)
	{
		MemoryContextReset(run_context);
		res = {run_context, nullptr, 0, 0, true};
		LockIndexForWrite(index);
		RunChecks(heap, index, &res);
		UnlockIndexForWrite(index);
	}
	FlushResults(res, ts, desc);
	MemoryContextDelete(run_context);
	index_close(index, AccessShareLock);
	table_close(heap, AccessShareLock);
	return (Datum) 0;
}
