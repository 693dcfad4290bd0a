/*
 * hnsw_build.cpp — CREATE INDEX for vault_hnsw.
 *
 * In-memory build (the normal case):
 *   1. loading tuples   the heap is scanned; each evector is decrypted (system path: the index
 *                       stores only ciphertext and returns nothing to the caller) and appended
 *                       to its vault's batch;
 *   2. building graph   each vault's batch becomes its own HNSW sub-graph, built by hnswlib on
 *                       vector_vault.build_threads threads that never call Postgres; this thread
 *                       polls for query cancel and reports progress meanwhile;
 *   3. writing pages    vectors are sealed into the vector stream, elements with their sealed
 *                       neighbour lists into graph pages, one vault after another, then the
 *                       vault directory (with each vault's graph block range: the cache's
 *                       vault locator, see hnsw.h) and the metapage. Pages are written
 *                       without WAL and logged at the end in one pass (log_newpage_range), as
 *                       the build is atomic with its transaction.
 * When the vectors and the graph would exceed maintenance_work_mem, what was collected so far is
 * built and written as above, and every remaining tuple is inserted one by one through the
 * normal insert path (slower, same result), with a NOTICE saying so.
 *
 * Plaintext vectors live in this backend's memory only while the build runs, in a memory
 * context whose reset callback zeroes them; C++ graph objects are owned through the same
 * mechanism, so an error or cancel frees everything without a destructor crossing a longjmp.
 */
#include "core/graph_build.h"
#include "core/secure.h"

#include <atomic>
#include <cstring>

#include "index/hnsw.h"
#include "pg/guard.h"

extern "C"
{
#include "access/generic_xlog.h"
#include "access/tableam.h"
#include "access/xloginsert.h"
#include "commands/progress.h"
#include "common/pg_prng.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "portability/instr_time.h"
#include "storage/bufmgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"
}

namespace vector_vault::index
{

namespace
{

/* One vault's collected vectors. */
struct VaultBatch
{
	uint64 vault_id;
	uint32 n;
	uint32 cap;
	float *vecs;
	ItemPointerData *tids;
	uint32 *key_versions;
	hnsw::BuiltGraph *graph;
};

/* State of one build. */
struct BuildState
{
	Relation heap;
	Relation index;
	IndexParams params;
	MemoryContext ctx;
	VaultBatch *batches;
	int nbatches;
	int cap_batches;
	uint64 collected;
	Size budget;
	bool overflow;
	double heap_tuples;
	double index_tuples;
	int64 progress_base; /* elements of earlier vaults, for graph progress */
	float *scratch;
	MemoryContextCallback cleanup;
};

/* Zeroes plaintext vectors and frees C++ graphs when the build context goes away. */
void
CleanupBuild(void *arg) noexcept
{
	BuildState *s = static_cast<BuildState *>(arg);
	for (int i = 0; i < s->nbatches; i++)
	{
		VaultBatch &b = s->batches[i];
		if (b.vecs != nullptr)
			SecureZero(b.vecs, sizeof(float) * static_cast<Size>(b.cap) * s->params.dims);
		if (b.graph != nullptr)
			hnsw::DeleteBuiltGraph(b.graph);
		b.graph = nullptr;
	}
	if (s->scratch)
		SecureZero(s->scratch, sizeof(float) * s->params.dims);
}

/* Initialises the metapage contents. */
void
InitMeta(Page page, const IndexParams &p)
{
	InitPage(page, kMetaPage);
	MetaData *m = MetaOf(page);
	memset(m, 0, sizeof(MetaData));
	m->magic = kMetaMagic;
	m->version = kFormatVersion;
	m->dims = p.dims;
	m->m = static_cast<uint16>(p.m);
	m->ef_construction = static_cast<uint16>(p.ef_construction);
	m->metric = static_cast<uint8>(p.metric);
	m->element_width = static_cast<uint8>(p.width);
	m->change_counter = 1;
	m->first_dir_block = InvalidBlockNumber;
	m->last_dir_block = InvalidBlockNumber;
	m->graph_tail = InvalidBlockNumber;
	m->vector_tail = InvalidBlockNumber;
	reinterpret_cast<PageHeader>(page)->pd_lower = static_cast<LocationIndex>(
		reinterpret_cast<char *>(m + 1) - reinterpret_cast<char *>(page));
}

/* A freshly extended, exclusively locked, initialised page (build: no WAL yet). */
Buffer
NewPage(Relation index, PageKind kind)
{
	Buffer buf = ReadBufferExtended(index, MAIN_FORKNUM, P_NEW, RBM_NORMAL, nullptr);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	InitPage(BufferGetPage(buf), kind);
	return buf;
}

/* Marks dirty and releases a build page. */
void
FinishPage(Buffer buf)
{
	MarkBufferDirty(buf);
	UnlockReleaseBuffer(buf);
}

/* The batch of a vault, created on first use. */
VaultBatch *
BatchFor(BuildState *s, uint64 vault_id)
{
	for (int i = 0; i < s->nbatches; i++)
		if (s->batches[i].vault_id == vault_id)
			return &s->batches[i];
	if (s->nbatches == s->cap_batches)
	{
		s->cap_batches *= 2;
		s->batches =
			static_cast<VaultBatch *>(repalloc(s->batches, sizeof(VaultBatch) * s->cap_batches));
	}
	VaultBatch *b = &s->batches[s->nbatches++];
	memset(b, 0, sizeof(*b));
	b->vault_id = vault_id;
	return b;
}

/* Appends a vector to its vault's batch. */
void
Append(BuildState *s, VaultBatch *b, const float *v, ItemPointer tid, uint32 key_version)
{
	if (b->n == b->cap)
	{
		uint32 cap = b->cap == 0 ? 1024 : b->cap * 2;
		Size vbytes = sizeof(float) * static_cast<Size>(cap) * s->params.dims;
		MemoryContext old = MemoryContextSwitchTo(s->ctx);
		float *vecs = static_cast<float *>(MemoryContextAllocHuge(s->ctx, vbytes));
		if (b->vecs != nullptr)
		{
			memcpy(vecs, b->vecs, sizeof(float) * static_cast<Size>(b->n) * s->params.dims);
			SecureZero(b->vecs, sizeof(float) * static_cast<Size>(b->cap) * s->params.dims);
			pfree(b->vecs);
		}
		b->vecs = vecs;
		b->tids = static_cast<ItemPointerData *>(
			b->tids ? repalloc_huge(b->tids, sizeof(ItemPointerData) * cap)
					: MemoryContextAllocHuge(s->ctx, sizeof(ItemPointerData) * cap));
		b->key_versions = static_cast<uint32 *>(
			b->key_versions ? repalloc_huge(b->key_versions, sizeof(uint32) * cap)
							: MemoryContextAllocHuge(s->ctx, sizeof(uint32) * cap));
		b->cap = cap;
		MemoryContextSwitchTo(old);
	}
	memcpy(b->vecs + static_cast<Size>(b->n) * s->params.dims, v, sizeof(float) * s->params.dims);
	b->tids[b->n] = *tid;
	b->key_versions[b->n] = key_version;
	b->n++;
	s->collected++;
}

/* Reads the interrupt flag and reports graph progress for the build threads' poller. Never
 * raises: it runs inside the core's C++ frames (core/graph_build.h), so it only reads flags and
 * calls pgstat_progress_update_param, which writes shared memory and cannot fail. */
bool
PollBuild(void *arg, uint32_t done) noexcept
{
	BuildState *s = static_cast<BuildState *>(arg);
	pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, s->progress_base + done);
	/* Only the interrupts that will raise an error stop the build (InterruptPending is also set
	 * for harmless ones, such as a shared-invalidation catch-up). */
	return QueryCancelPending || ProcDiePending;
}

/* Builds every batch's sub-graph with hnswlib. */
void
BuildGraphs(BuildState *s)
{
	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, kPhaseBuildGraph);
	pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_TOTAL, static_cast<int64>(s->collected));
	int64 done_before = 0;
	for (int i = 0; i < s->nbatches; i++)
	{
		VaultBatch &b = s->batches[i];
		uint8 *levels = static_cast<uint8 *>(palloc(Max(b.n, 1u)));
		for (uint32 k = 0; k < b.n; k++)
			levels[k] = static_cast<uint8>(RandomLevel(s->params.m));
		b.graph = hnsw::NewBuiltGraph();
		if (b.graph == nullptr)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory building the graph")));
		hnsw::BuildRequest req;
		req.vectors = b.vecs;
		req.n = b.n;
		req.dims = s->params.dims;
		req.m = s->params.m;
		req.ef_construction = s->params.ef_construction;
		req.kernel = KernelFor(s->params.metric);
		req.levels = levels;
		req.threads = g_build_threads;
		req.poll = PollBuild;
		s->progress_base = done_before;
		req.poll_arg = s;
		Status st = hnsw::BuildGraph(req, b.graph);
		CHECK_FOR_INTERRUPTS();
		if (!st.ok())
			pg::ThrowStatus(st, "could not build the vault_hnsw graph", nullptr);
		uint32 repaired = 0;
		st = hnsw::RepairReachability(req, b.graph, &repaired);
		if (!st.ok())
			pg::ThrowStatus(st, "could not build the vault_hnsw graph", nullptr);
		if (repaired > 0)
			ereport(DEBUG1, (errmsg("vault_hnsw build linked %u unreachable elements", repaired)));
		done_before += b.n;
		pfree(levels);
	}
}

/* Appends a sealed vector record to the vector stream; returns its locator. */
void
AppendVector(Relation index, Buffer *vbuf, uint32 *voff, const char *rec, size_t len,
			 BlockNumber *block, uint32 *offset)
{
	size_t cap = VectorPageCapacity();
	if (*vbuf == InvalidBuffer || *voff >= cap)
	{
		Buffer next = NewPage(index, kVectorPage);
		if (*vbuf != InvalidBuffer)
		{
			GetOpaque(BufferGetPage(*vbuf))->next = BufferGetBlockNumber(next);
			FinishPage(*vbuf);
		}
		*vbuf = next;
		*voff = 0;
	}
	*block = BufferGetBlockNumber(*vbuf);
	*offset = *voff;
	size_t done = 0;
	while (done < len)
	{
		Page page = BufferGetPage(*vbuf);
		size_t take = Min(len - done, cap - *voff);
		memcpy(PageGetContents(page) + *voff, rec + done, take);
		*voff += static_cast<uint32>(take);
		reinterpret_cast<PageHeader>(page)->pd_lower =
			static_cast<LocationIndex>(MAXALIGN(SizeOfPageHeaderData) + *voff);
		done += take;
		if (done < len)
		{
			Buffer next = NewPage(index, kVectorPage);
			GetOpaque(page)->next = BufferGetBlockNumber(next);
			FinishPage(*vbuf);
			*vbuf = next;
			*voff = 0;
		}
	}
}

/* Writes every batch's vectors, elements and directory entries, then the metapage. */
void
WritePages(BuildState *s)
{
	Relation index = s->index;
	const IndexParams &p = s->params;
	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, kPhaseWrite);
	uint32 total = static_cast<uint32>(s->collected);
	BlockNumber *vblocks = static_cast<BlockNumber *>(palloc(sizeof(BlockNumber) * Max(total, 1u)));
	uint32 *voffs = static_cast<uint32 *>(palloc(sizeof(uint32) * Max(total, 1u)));
	char *rec = static_cast<char *>(
		palloc(Max(VectorRecordBytes(p.dims, p.width), ElementRecordBytes(p.m, hnsw::kMaxLevel))));

	/* Vectors first: one stream across vector pages. */
	Buffer vbuf = InvalidBuffer;
	uint32 voff = 0;
	ElementId id = 0;
	for (int i = 0; i < s->nbatches; i++)
	{
		VaultBatch &b = s->batches[i];
		for (uint32 k = 0; k < b.n; k++, id++)
		{
			SealVector(id, b.vault_id, b.key_versions[k], b.vecs + static_cast<Size>(k) * p.dims,
					   p.dims, p.width, rec);
			AppendVector(index, &vbuf, &voff, rec, VectorRecordBytes(p.dims, p.width), &vblocks[id],
						 &voffs[id]);
			if ((id & 1023) == 0)
				CHECK_FOR_INTERRUPTS();
		}
	}
	BlockNumber vector_tail = InvalidBlockNumber;
	if (vbuf != InvalidBuffer)
	{
		vector_tail = BufferGetBlockNumber(vbuf);
		FinishPage(vbuf);
	}

	/* Then the elements with their sealed neighbour lists. */
	Buffer gbuf = InvalidBuffer;
	uint32 *links = static_cast<uint32 *>(palloc(LinksBytes(p.m, hnsw::kMaxLevel)));
	DirEntry *dir = static_cast<DirEntry *>(palloc0(sizeof(DirEntry) * Max(s->nbatches, 1)));
	id = 0;
	for (int i = 0; i < s->nbatches; i++)
	{
		VaultBatch &b = s->batches[i];
		ElementId base = id;
		const hnsw::BuiltGraph &g = *b.graph;
		BlockNumber first = InvalidBlockNumber;
		for (uint32 k = 0; k < b.n; k++, id++)
		{
			ElementHeader h;
			memset(&h, 0, sizeof(h));
			h.element_id = id;
			h.level = g.levels[k];
			h.heap_tid = b.tids[k];
			h.vault_id = b.vault_id;
			h.key_version = b.key_versions[k];
			h.vec_block = vblocks[id];
			h.vec_offset = voffs[id];
			memset(links, 0, LinksBytes(p.m, h.level));
			for (int l = 0; l <= h.level; l++)
			{
				const uint32 *ids;
				int c = g.Links(k, l, &ids);
				uint32 *dst = l == 0 ? links : links + (1 + 2 * p.m) + (l - 1) * (1 + p.m);
				dst[0] = static_cast<uint32>(c);
				for (int j = 0; j < c; j++)
					dst[1 + j] = base + ids[j];
			}
			size_t len = ElementRecordBytes(p.m, h.level);
			SealElement(h, p.m, links, rec);
			if (gbuf == InvalidBuffer || PageGetFreeSpace(BufferGetPage(gbuf)) < MAXALIGN(len))
			{
				if (gbuf != InvalidBuffer)
					FinishPage(gbuf);
				gbuf = NewPage(index, kGraphPage);
			}
			if (PageAddItem(BufferGetPage(gbuf), reinterpret_cast<Item>(rec), len,
							InvalidOffsetNumber, false, false) == InvalidOffsetNumber)
				elog(ERROR, "could not add an element to a vault_hnsw page");
			if (first == InvalidBlockNumber)
				first = BufferGetBlockNumber(gbuf);
			if ((id & 1023) == 0)
				CHECK_FOR_INTERRUPTS();
		}
		dir[i].vault_id = b.vault_id;
		dir[i].entry = b.n > 0 ? base + g.entry : kNoElement;
		dir[i].entry_level = static_cast<int16>(b.n > 0 ? g.entry_level : -1);
		dir[i].count = b.n;
		/* The vault locator: this vault's elements lie on the consecutive pages first..now. */
		if (first != InvalidBlockNumber)
		{
			BlockNumber blocks = BufferGetBlockNumber(gbuf) - first + 1;
			dir[i].build_first = first;
			dir[i].build_blocks = blocks <= PG_UINT16_MAX ? static_cast<uint16>(blocks) : 0;
		}
	}
	BlockNumber graph_tail = InvalidBlockNumber;
	if (gbuf != InvalidBuffer)
	{
		graph_tail = BufferGetBlockNumber(gbuf);
		FinishPage(gbuf);
	}
	SecureZero(links, LinksBytes(p.m, hnsw::kMaxLevel));

	/* The vault directory. */
	BlockNumber first_dir = InvalidBlockNumber, last_dir = InvalidBlockNumber;
	Buffer dbuf = InvalidBuffer;
	for (int i = 0; i < s->nbatches; i++)
	{
		if (dbuf == InvalidBuffer || PageGetExactFreeSpace(BufferGetPage(dbuf)) < sizeof(DirEntry))
		{
			Buffer next = NewPage(index, kDirPage);
			if (dbuf != InvalidBuffer)
			{
				GetOpaque(BufferGetPage(dbuf))->next = BufferGetBlockNumber(next);
				FinishPage(dbuf);
			}
			else
				first_dir = BufferGetBlockNumber(next);
			dbuf = next;
		}
		Page page = BufferGetPage(dbuf);
		PageHeader ph = reinterpret_cast<PageHeader>(page);
		memcpy(reinterpret_cast<char *>(page) + ph->pd_lower, &dir[i], sizeof(DirEntry));
		ph->pd_lower += sizeof(DirEntry);
	}
	if (dbuf != InvalidBuffer)
	{
		last_dir = BufferGetBlockNumber(dbuf);
		FinishPage(dbuf);
	}

	/* Later elements go to the last graph page and after it (or after everything written). */
	BlockNumber build_tail =
		graph_tail != InvalidBlockNumber ? graph_tail : RelationGetNumberOfBlocks(index);

	/* Finally the metapage. */
	Buffer mbuf = ReadBuffer(index, kMetaBlock);
	LockBuffer(mbuf, BUFFER_LOCK_EXCLUSIVE);
	MetaData *m = MetaOf(BufferGetPage(mbuf));
	m->next_element_id = total;
	m->element_count = total;
	m->first_dir_block = first_dir;
	m->last_dir_block = last_dir;
	m->graph_tail = graph_tail;
	m->vector_tail = vector_tail;
	m->vector_tail_offset = voff;
	m->build_tail = build_tail;
	m->change_counter += 1;
	FinishPage(mbuf);
	pfree(vblocks);
	pfree(voffs);
	pfree(rec);
	pfree(dir);
}

/* Builds and writes what was collected, then WAL-logs every page written so far. */
void
FlushInMemory(BuildState *s)
{
	instr_time t0, t1, t2, t3;
	INSTR_TIME_SET_CURRENT(t0);
	BuildGraphs(s);
	INSTR_TIME_SET_CURRENT(t1);
	WritePages(s);
	INSTR_TIME_SET_CURRENT(t2);
	if (RelationNeedsWAL(s->index))
		log_newpage_range(s->index, MAIN_FORKNUM, 0, RelationGetNumberOfBlocks(s->index), true);
	INSTR_TIME_SET_CURRENT(t3);
	INSTR_TIME_SUBTRACT(t3, t2);
	INSTR_TIME_SUBTRACT(t2, t1);
	INSTR_TIME_SUBTRACT(t1, t0);
	ereport(DEBUG1,
			(errmsg("vault_hnsw build of %llu vectors: graph %.2f s, pages %.2f s, WAL %.2f s",
					static_cast<unsigned long long>(s->collected), INSTR_TIME_GET_DOUBLE(t1),
					INSTR_TIME_GET_DOUBLE(t2), INSTR_TIME_GET_DOUBLE(t3))));
	/* the plaintext can go now */
	CleanupBuild(s);
	for (int i = 0; i < s->nbatches; i++)
		s->batches[i].n = 0;
}

/* table_index_build_scan callback: decrypts and collects (or inserts) one heap tuple. */
void
BuildCallback(Relation index, ItemPointer tid, Datum *values, bool *isnull, bool, void *state)
{
	BuildState *s = static_cast<BuildState *>(state);
	s->heap_tuples += 1;
	if (isnull[0])
		return;
	uint64 vault_id;
	uint32 key_version;
	if (!OpenVectorForIndex(values[0], s->params.dims, s->params.metric, s->scratch, &vault_id,
							&key_version))
		return;
	if (s->overflow)
	{
		/* one insert's allocations (plan, scratch, records) die with it */
		MemoryContext ctx = AllocSetContextCreate(CurrentMemoryContext, "vault_hnsw build insert",
												  ALLOCSET_DEFAULT_SIZES);
		MemoryContext old = MemoryContextSwitchTo(ctx);
		InsertVector(index, s->scratch, vault_id, key_version, tid);
		MemoryContextSwitchTo(old);
		MemoryContextDelete(ctx);
	}
	else
	{
		Append(s, BatchFor(s, vault_id), s->scratch, tid, key_version);
		if (hnsw::EstimateBuildBytes(s->collected + 1, s->params.dims, s->params.m) > s->budget)
		{
			ereport(
				NOTICE,
				(errmsg("vault_hnsw graph no longer fits in maintenance_work_mem after %llu tuples",
						static_cast<unsigned long long>(s->collected)),
				 errdetail("The remaining tuples are inserted one by one, which is slower."),
				 errhint("Increase maintenance_work_mem to speed up builds.")));
			FlushInMemory(s);
			s->overflow = true;
		}
	}
	s->index_tuples += 1;
	if ((static_cast<uint64>(s->index_tuples) & 255) == 0)
		pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE,
									 static_cast<int64>(s->index_tuples));
	SecureZero(s->scratch, sizeof(float) * s->params.dims);
}

/* Fills the build parameters from reloptions, the opclass and the column. */
IndexParams
ParamsOf(Relation index)
{
	IndexParams p;
	p.dims = GetDims(index);
	GetOptions(index, &p.m, &p.ef_construction);
	p.metric = GetMetric(index);
	p.width = GetWidth(index, p.metric);
	if (p.ef_construction < 2 * p.m)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("ef_construction must be greater than or equal to 2 * m"),
						errhint("Raise ef_construction or lower m.")));
	return p;
}

} // namespace

/* Draws a random HNSW level. */
int
RandomLevel(int m)
{
	return hnsw::LevelFromUniform(1.0 - pg_prng_double(&pg_global_prng_state), m);
}

/* ambuild: builds the index from the heap. */
IndexBuildResult *
hnsw_build(Relation heap, Relation index, IndexInfo *info) noexcept
{
	if (RelationGetNumberOfBlocks(index) != 0)
		elog(ERROR, "index \"%s\" already contains data", RelationGetRelationName(index));
	BuildState *s = static_cast<BuildState *>(palloc0(sizeof(BuildState)));
	s->heap = heap;
	s->index = index;
	s->params = ParamsOf(index);
	s->ctx =
		AllocSetContextCreate(CurrentMemoryContext, "vault_hnsw build", ALLOCSET_DEFAULT_SIZES);
	s->cap_batches = 8;
	s->batches = static_cast<VaultBatch *>(
		MemoryContextAllocZero(s->ctx, sizeof(VaultBatch) * s->cap_batches));
	s->budget = static_cast<Size>(maintenance_work_mem) * 1024;
	s->scratch = static_cast<float *>(MemoryContextAlloc(s->ctx, sizeof(float) * s->params.dims));
	s->cleanup.func = CleanupBuild;
	s->cleanup.arg = s;
	MemoryContextRegisterResetCallback(s->ctx, &s->cleanup);

	/* The metapage exists before anything else, so the insert fallback can find it. */
	Buffer mbuf = NewPage(index, kMetaPage);
	InitMeta(BufferGetPage(mbuf), s->params);
	FinishPage(mbuf);

	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, kPhaseLoad);
	s->heap_tuples =
		table_index_build_scan(heap, index, info, true, true, BuildCallback, s, nullptr);
	if (!s->overflow)
		FlushInMemory(s);
	InvalidateCache(index);

	IndexBuildResult *r = static_cast<IndexBuildResult *>(palloc(sizeof(IndexBuildResult)));
	r->heap_tuples = s->heap_tuples;
	r->index_tuples = s->index_tuples;
	MemoryContextDelete(s->ctx);
	return r;
}

/* ambuildempty: the init fork of an unlogged index holds just the metapage. */
void
hnsw_buildempty(Relation index) noexcept
{
	IndexParams p = ParamsOf(index);
	Buffer buf = ReadBufferExtended(index, INIT_FORKNUM, P_NEW, RBM_NORMAL, nullptr);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	START_CRIT_SECTION();
	InitMeta(BufferGetPage(buf), p);
	MarkBufferDirty(buf);
	log_newpage_buffer(buf, true);
	END_CRIT_SECTION();
	UnlockReleaseBuffer(buf);
}

} // namespace vector_vault::index
