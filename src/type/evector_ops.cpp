/*
 * evector_ops.cpp — pgvector 0.8's arithmetic, comparisons and aggregates on encrypted vectors.
 *
 * Rule: every result computed from encrypted inputs is sealed again or is a number (issue 11).
 *   + - * (element-wise), || (concatenation), l2_normalize, subvector: decrypt the inputs (read
 *     right on each value's vault), compute, and seal the result under the session's current
 *     vault (vector_vault.vault; write no plaintext anywhere). VOLATILE, as every sealing function.
 *   = <> < <= > >= and vector_cmp: a boolean or -1/0/1 from the decrypted values. The order is
 *     pgvector's: element by element, then the shorter vector first. Two seals of one vector are
 *     equal (the ciphertexts differ, the values do not). STABLE: the answer needs read rights.
 *   avg, sum: the transition state (count, double-precision sums) is plaintext in memory only, in
 *     the aggregate's memory context, zeroed when that context is reset or deleted. A parallel
 *     plan moves partial states between processes as bytea, and those bytes can reach disk (a
 *     Sort or a spilling hash aggregate above the Gather writes its input to temporary files), so
 *     the serial form is itself sealed under the session's vault (an envelope of kind text), and
 *     deserialisation opens it with the usual read check. Final results are sealed evectors.
 *   ANALYZE: with a btree opclass Postgres' standard statistics would sort and compare sample
 *     values (decrypting them as whoever runs ANALYZE, autovacuum included, which has no vault
 *     rights) and store most-common values and a histogram, in plaintext order, in pg_statistic.
 *     evector's typanalyze keeps the statistics of a type without ordering: null fraction and
 *     width only, from the headers, nothing decrypted.
 * The same bodies serve ehalfvec through entry points of its own (ehalfvec_add, ehalfvec_cmp,
 * ...): each entry point names the kind its SQL type holds, and every argument's authenticated
 * header must be of that kind (22V01 otherwise, as ReadEnvelope refuses any other kind), so an
 * evector-typed datum holding an ehalfvec envelope is refused by evector's operators and the other
 * way round. The kind cannot come from the call's expression: a btree support function is called
 * without one, so it comes from the C symbol. Halves are widened to floats for the arithmetic and
 * results are narrowed and sealed as the same kind (22003 when a result is beyond half range).
 * Each argument is detoasted and its header validated once (ReadArg); dimensions come from that
 * authenticated header before anything is decrypted, so a mismatch is refused without
 * decrypting, and the same EnvelopeRef is then opened. Plaintext buffers are zeroed before an
 * error leaves.
 */
#include "core/envelope.h"
#include "core/half.h"
#include "core/secure.h"

#include <cfloat>
#include <cmath>
#include <cstring>

#include "pg/guard.h"
#include "pg/secret.h"
#include "type/codec.h"

extern "C"
{
#include "commands/vacuum.h"
#include "fmgr.h"
#include "access/detoast.h"
#include "utils/memutils.h"
}

using namespace vector_vault;
using type::EnvelopeRef;

namespace
{

/* Argument i of fcinfo, detoasted and header-validated once: an evector or ehalfvec envelope
 * that must be of kind (the type the SQL function was declared for; 22V01 otherwise). */
EnvelopeRef
ReadArg(FunctionCallInfo fcinfo, int i, ValueKind kind)
{
	EnvelopeRef ref;
	type::ReadEnvelope(PG_GETARG_DATUM(i), kind, &ref);
	return ref;
}

/* Raises an error unless two vectors of kind have the same dimensions (from their headers). */
void
CheckSameDims(const EnvelopeRef &a, const EnvelopeRef &b, ValueKind kind)
{
	uint32 da = type::VectorDimsOf(a), db = type::VectorDimsOf(b);
	if (da != db)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("different %s dimensions %u and %u",
																type::KindTypeName(kind), da, db)));
}

/* Which element-wise operation. */
enum class Op
{
	kAdd,
	kSub,
	kMul
};

/* a op b element-wise for two values of kind, sealed as kind under the session's vault. */
Datum
ElementWise(FunctionCallInfo fcinfo, Op op, ValueKind kind)
{
	EnvelopeRef ra = ReadArg(fcinfo, 0, kind), rb = ReadArg(fcinfo, 1, kind);
	CheckSameDims(ra, rb, kind);
	type::PlainVector a = type::OpenVector(ra);
	type::PlainVector b = type::OpenVector(rb);
	float *r = type::AllocVector(a.dims);
	const char *problem = nullptr;
	for (uint32 i = 0; i < a.dims && problem == nullptr; i++)
	{
		switch (op)
		{
			case Op::kAdd:
				r[i] = a.v[i] + b.v[i];
				break;
			case Op::kSub:
				r[i] = a.v[i] - b.v[i];
				break;
			case Op::kMul:
				r[i] = a.v[i] * b.v[i];
				break;
		}
		uint16_t half;
		if (kind == ValueKind::kHalfVector) /* the result is a half: round as the seal will */
		{
			if (!FloatToHalf(r[i], &half))
				r[i] = HUGE_VALF;
			else
				r[i] = HalfToFloat(half);
		}
		if (op == Op::kMul && r[i] == 0 && a.v[i] != 0 && b.v[i] != 0)
			problem = "underflow";
		if (std::isinf(r[i]))
			problem = "overflow";
	}
	uint32 dims = a.dims;
	type::FreeVector(a);
	type::FreeVector(b);
	if (problem != nullptr)
	{
		pg::FreeSecret(r);
		ereport(ERROR, (errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						errmsg("value out of range: %s", problem)));
	}
	return type::SealVectorAndFree(r, dims, kind);
}

/* -1, 0 or 1 for two values of kind: pgvector's order (elements first, then the shorter vector
 * first). */
int
Compare(FunctionCallInfo fcinfo, ValueKind kind)
{
	EnvelopeRef ra = ReadArg(fcinfo, 0, kind), rb = ReadArg(fcinfo, 1, kind);
	type::PlainVector a = type::OpenVector(ra);
	type::PlainVector b = type::OpenVector(rb);
	uint32 n = Min(a.dims, b.dims);
	int c = 0;
	for (uint32 i = 0; i < n && c == 0; i++)
	{
		if (a.v[i] < b.v[i])
			c = -1;
		else if (a.v[i] > b.v[i])
			c = 1;
	}
	if (c == 0 && a.dims != b.dims)
		c = a.dims < b.dims ? -1 : 1;
	type::FreeVector(a);
	type::FreeVector(b);
	return c;
}

/* The avg/sum transition state: plaintext, in the aggregate's memory context only. */
struct AggState
{
	int64 n;
	uint32 dims;
	ValueKind kind; /* of the values summed: the result is sealed as the same type */
	double *sums;
	MemoryContextCallback zero;
};

/* Zeroes a state's sums when its memory context goes away. */
void
ZeroAggState(void *arg) noexcept
{
	AggState *s = static_cast<AggState *>(arg);
	if (s->sums != nullptr)
		SecureZero(s->sums, sizeof(double) * s->dims);
}

/* The aggregate's memory context (errors when called outside an aggregate). */
MemoryContext
AggContext(FunctionCallInfo fcinfo)
{
	MemoryContext ctx;
	if (!AggCheckCallContext(fcinfo, &ctx))
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("evector aggregate function called in a non-aggregate context")));
	return ctx;
}

/* A new, zeroed state for dims dimensions of kind in ctx, zeroed again when ctx is reset. */
AggState *
NewState(MemoryContext ctx, uint32 dims, ValueKind kind)
{
	AggState *s = static_cast<AggState *>(MemoryContextAllocZero(ctx, sizeof(AggState)));
	s->dims = dims;
	s->kind = kind;
	s->sums = static_cast<double *>(MemoryContextAllocZero(ctx, sizeof(double) * dims));
	s->zero.func = ZeroAggState;
	s->zero.arg = s;
	MemoryContextRegisterResetCallback(ctx, &s->zero);
	return s;
}

/* Raises an error for a dimension mismatch inside an aggregate. */
void
ThrowAggDims(uint32 expected, uint32 got)
{
	ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
					errmsg("expected %u dimensions, not %u", expected, got)));
}

/* Header of the sealed serial form of a state. */
struct SerialHeader
{
	int64 n;
	uint32 dims;
	uint32 kind; /* ValueKind of the values summed */
};

/* Seals a float result of the aggregate (sums / divisor) or raises 22003. */
Datum
FinishAgg(AggState *s, double divisor)
{
	float *r = type::AllocVector(s->dims);
	bool overflow = false;
	for (uint32 i = 0; i < s->dims; i++)
	{
		double x = s->sums[i] / divisor;
		uint16_t half;
		if (std::fabs(x) > static_cast<double>(FLT_MAX) ||
			(s->kind == ValueKind::kHalfVector && !FloatToHalf(static_cast<float>(x), &half)))
			overflow = true;
		r[i] = overflow ? 0 : static_cast<float>(x);
	}
	if (overflow)
	{
		pg::FreeSecret(r);
		ereport(ERROR, (errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						errmsg("value out of range: overflow")));
	}
	return type::SealVectorAndFree(r, s->dims, s->kind);
}

/* ANALYZE for evector: null fraction and average width only (nothing decrypted or ordered). */
void
ComputeEvectorStats(VacAttrStatsP stats, AnalyzeAttrFetchFunc fetch, int samplerows, double)
{
	int nulls = 0;
	double width = 0;
	for (int i = 0; i < samplerows; i++)
	{
		vacuum_delay_point();
		bool isnull;
		Datum d = fetch(stats, i, &isnull);
		if (isnull)
		{
			nulls++;
			continue;
		}
		width += static_cast<double>(toast_raw_datum_size(d));
	}
	int nonnull = samplerows - nulls;
	stats->stats_valid = true;
	stats->stanullfrac = samplerows > 0 ? static_cast<float4>(nulls) / samplerows : 0;
	stats->stawidth = nonnull > 0 ? static_cast<int32>(width / nonnull) : 0;
	stats->stadistinct = 0; /* unknown */
}

} // namespace

/* evector_typanalyze(internal): statistics without decryption (see the note at the top). */
VV_FUNCTION(evector_typanalyze)
{
	VacAttrStats *stats = reinterpret_cast<VacAttrStats *>(PG_GETARG_POINTER(0));
	if (stats->attr->attstattarget < 0)
		stats->attr->attstattarget = default_statistics_target;
	stats->compute_stats = ComputeEvectorStats;
	stats->minrows = 300 * stats->attr->attstattarget;
	PG_RETURN_BOOL(true);
}

namespace
{

/* a || b for two values of kind, sealed as kind. */
Datum
Concat(FunctionCallInfo fcinfo, ValueKind kind)
{
	EnvelopeRef ra = ReadArg(fcinfo, 0, kind), rb = ReadArg(fcinfo, 1, kind);
	uint32 da = type::VectorDimsOf(ra), db = type::VectorDimsOf(rb);
	if (static_cast<uint64>(da) + db > kMaxVectorDims)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("%s cannot have more than %u dimensions", type::KindTypeName(kind),
							   kMaxVectorDims)));
	type::PlainVector a = type::OpenVector(ra);
	type::PlainVector b = type::OpenVector(rb);
	float *r = type::AllocVector(da + db);
	memcpy(r, a.v, sizeof(float) * da);
	memcpy(r + da, b.v, sizeof(float) * db);
	type::FreeVector(a);
	type::FreeVector(b);
	return type::SealVectorAndFree(r, da + db, kind);
}

/* A value of kind divided by its norm (a zero vector stays zero), sealed as kind. */
Datum
L2Normalize(FunctionCallInfo fcinfo, ValueKind kind)
{
	type::PlainVector a = type::OpenVector(ReadArg(fcinfo, 0, kind));
	double norm = 0;
	for (uint32 i = 0; i < a.dims; i++)
		norm += static_cast<double>(a.v[i]) * a.v[i];
	norm = std::sqrt(norm);
	float *r = type::AllocVector(a.dims);
	memset(r, 0, sizeof(float) * a.dims);
	if (norm > 0)
		for (uint32 i = 0; i < a.dims; i++)
			r[i] = static_cast<float>(a.v[i] / norm);
	uint32 dims = a.dims;
	type::FreeVector(a);
	return type::SealVectorAndFree(r, dims, kind);
}

/* count elements from 1-based start (arguments 1 and 2) of a value of kind, as pgvector, sealed
 * as kind; the bounds are checked against the header's dimensions before decrypting. */
Datum
Subvector(FunctionCallInfo fcinfo, ValueKind kind)
{
	int32 start = PG_GETARG_INT32(1);
	int32 count = PG_GETARG_INT32(2);
	EnvelopeRef ref = ReadArg(fcinfo, 0, kind);
	int32 dims = static_cast<int32>(type::VectorDimsOf(ref));
	const char *name = type::KindTypeName(kind);
	if (count < 1)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("%s must have at least 1 dimension", name)));
	int32 end = start > dims - count ? dims + 1 : start + count;
	if (start < 1)
		start = 1;
	else if (start > dims)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("%s must have at least 1 dimension", name)));
	if (end - start < 1)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("%s must have at least 1 dimension", name)));
	uint32 n = static_cast<uint32>(end - start);
	type::PlainVector a = type::OpenVector(ref);
	float *r = type::AllocVector(n);
	memcpy(r, a.v + (start - 1), sizeof(float) * n);
	type::FreeVector(a);
	return type::SealVectorAndFree(r, n, kind);
}

/* Raises an error unless a state summed values of kind (states of evector and ehalfvec
 * aggregates must not meet: the result would be sealed as the other type). */
void
CheckStateKind(const AggState *s, ValueKind kind)
{
	if (s->kind != kind)
		ereport(ERROR, (errcode(pg::kSqlStateCorrupt),
						errmsg("aggregate state of %s values used for %s",
							   type::KindTypeName(s->kind), type::KindTypeName(kind))));
}

/* The transition function of avg and sum over values of kind: adds argument 1 to the state
 * (NULLs are skipped). */
Datum
Accum(FunctionCallInfo fcinfo, ValueKind kind)
{
	MemoryContext ctx = AggContext(fcinfo);
	AggState *s = PG_ARGISNULL(0) ? nullptr : reinterpret_cast<AggState *>(PG_GETARG_POINTER(0));
	if (PG_ARGISNULL(1))
	{
		if (s == nullptr)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(s);
	}
	EnvelopeRef ref = ReadArg(fcinfo, 1, kind);
	uint32 dims = type::VectorDimsOf(ref);
	if (s == nullptr)
		s = NewState(ctx, dims, kind);
	else
	{
		CheckStateKind(s, kind);
		if (s->dims != dims)
			ThrowAggDims(s->dims, dims);
	}
	type::PlainVector a = type::OpenVector(ref);
	for (uint32 i = 0; i < dims; i++)
		s->sums[i] += a.v[i];
	s->n++;
	type::FreeVector(a);
	PG_RETURN_POINTER(s);
}

/* The final function of avg (mean) or sum over values of kind, sealed as kind; NULL when there
 * were no rows. */
Datum
Final(FunctionCallInfo fcinfo, ValueKind kind, bool mean)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	AggState *s = reinterpret_cast<AggState *>(PG_GETARG_POINTER(0));
	if (s->n == 0)
		PG_RETURN_NULL();
	CheckStateKind(s, kind);
	PG_RETURN_DATUM(FinishAgg(s, mean ? static_cast<double>(s->n) : 1.0));
}

} // namespace

/* evector + evector: element-wise sum, sealed. */
VV_FUNCTION(evector_add)
{
	return ElementWise(fcinfo, Op::kAdd, ValueKind::kVector);
}

/* evector - evector: element-wise difference, sealed. */
VV_FUNCTION(evector_sub)
{
	return ElementWise(fcinfo, Op::kSub, ValueKind::kVector);
}

/* evector * evector: element-wise product, sealed. */
VV_FUNCTION(evector_mul)
{
	return ElementWise(fcinfo, Op::kMul, ValueKind::kVector);
}

/* evector || evector: concatenation, sealed. */
VV_FUNCTION(evector_concat)
{
	return Concat(fcinfo, ValueKind::kVector);
}

/* l2_normalize(evector): the vector divided by its norm (a zero vector stays zero), sealed. */
VV_FUNCTION(evector_l2_normalize)
{
	return L2Normalize(fcinfo, ValueKind::kVector);
}

/* subvector(evector, start, count): count elements from 1-based start (as pgvector), sealed. */
VV_FUNCTION(evector_subvector)
{
	return Subvector(fcinfo, ValueKind::kVector);
}

/* vector_cmp(evector, evector): -1, 0 or 1 (btree support function). */
VV_FUNCTION(evector_cmp)
{
	PG_RETURN_INT32(Compare(fcinfo, ValueKind::kVector));
}

/* evector < evector. */
VV_FUNCTION(evector_lt)
{
	PG_RETURN_BOOL(Compare(fcinfo, ValueKind::kVector) < 0);
}

/* evector <= evector. */
VV_FUNCTION(evector_le)
{
	PG_RETURN_BOOL(Compare(fcinfo, ValueKind::kVector) <= 0);
}

/* evector = evector (the values, not the ciphertexts). */
VV_FUNCTION(evector_eq)
{
	PG_RETURN_BOOL(Compare(fcinfo, ValueKind::kVector) == 0);
}

/* evector <> evector. */
VV_FUNCTION(evector_ne)
{
	PG_RETURN_BOOL(Compare(fcinfo, ValueKind::kVector) != 0);
}

/* evector >= evector. */
VV_FUNCTION(evector_ge)
{
	PG_RETURN_BOOL(Compare(fcinfo, ValueKind::kVector) >= 0);
}

/* evector > evector. */
VV_FUNCTION(evector_gt)
{
	PG_RETURN_BOOL(Compare(fcinfo, ValueKind::kVector) > 0);
}

/* ehalfvec + ehalfvec: element-wise sum, rounded to halves, sealed. */
VV_FUNCTION(ehalfvec_add)
{
	return ElementWise(fcinfo, Op::kAdd, ValueKind::kHalfVector);
}

/* ehalfvec - ehalfvec: element-wise difference, rounded to halves, sealed. */
VV_FUNCTION(ehalfvec_sub)
{
	return ElementWise(fcinfo, Op::kSub, ValueKind::kHalfVector);
}

/* ehalfvec * ehalfvec: element-wise product, rounded to halves, sealed. */
VV_FUNCTION(ehalfvec_mul)
{
	return ElementWise(fcinfo, Op::kMul, ValueKind::kHalfVector);
}

/* ehalfvec || ehalfvec: concatenation, sealed. */
VV_FUNCTION(ehalfvec_concat)
{
	return Concat(fcinfo, ValueKind::kHalfVector);
}

/* l2_normalize(ehalfvec): the vector divided by its norm, rounded to halves, sealed. */
VV_FUNCTION(ehalfvec_l2_normalize)
{
	return L2Normalize(fcinfo, ValueKind::kHalfVector);
}

/* subvector(ehalfvec, start, count): as evector's, sealed as an ehalfvec. */
VV_FUNCTION(ehalfvec_subvector)
{
	return Subvector(fcinfo, ValueKind::kHalfVector);
}

/* halfvec_cmp(ehalfvec, ehalfvec): -1, 0 or 1 (btree support function). */
VV_FUNCTION(ehalfvec_cmp)
{
	PG_RETURN_INT32(Compare(fcinfo, ValueKind::kHalfVector));
}

/* ehalfvec < ehalfvec. */
VV_FUNCTION(ehalfvec_lt)
{
	PG_RETURN_BOOL(Compare(fcinfo, ValueKind::kHalfVector) < 0);
}

/* ehalfvec <= ehalfvec. */
VV_FUNCTION(ehalfvec_le)
{
	PG_RETURN_BOOL(Compare(fcinfo, ValueKind::kHalfVector) <= 0);
}

/* ehalfvec = ehalfvec (the values, not the ciphertexts). */
VV_FUNCTION(ehalfvec_eq)
{
	PG_RETURN_BOOL(Compare(fcinfo, ValueKind::kHalfVector) == 0);
}

/* ehalfvec <> ehalfvec. */
VV_FUNCTION(ehalfvec_ne)
{
	PG_RETURN_BOOL(Compare(fcinfo, ValueKind::kHalfVector) != 0);
}

/* ehalfvec >= ehalfvec. */
VV_FUNCTION(ehalfvec_ge)
{
	PG_RETURN_BOOL(Compare(fcinfo, ValueKind::kHalfVector) >= 0);
}

/* ehalfvec > ehalfvec. */
VV_FUNCTION(ehalfvec_gt)
{
	PG_RETURN_BOOL(Compare(fcinfo, ValueKind::kHalfVector) > 0);
}

/* evector_accum(internal, evector): adds an evector to the avg/sum state (NULLs are skipped). */
VV_FUNCTION(evector_accum)
{
	return Accum(fcinfo, ValueKind::kVector);
}

/* halfvec_accum(internal, ehalfvec): adds an ehalfvec to the avg/sum state. */
VV_FUNCTION(ehalfvec_accum)
{
	return Accum(fcinfo, ValueKind::kHalfVector);
}

/* evector_combine(internal, internal): merges two partial states (parallel aggregation). */
VV_FUNCTION(evector_combine)
{
	MemoryContext ctx = AggContext(fcinfo);
	AggState *a = PG_ARGISNULL(0) ? nullptr : reinterpret_cast<AggState *>(PG_GETARG_POINTER(0));
	AggState *b = PG_ARGISNULL(1) ? nullptr : reinterpret_cast<AggState *>(PG_GETARG_POINTER(1));
	if (b == nullptr)
	{
		if (a == nullptr)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	if (a == nullptr)
	{
		/* The result must live in the aggregate's context: copy b there. */
		a = NewState(ctx, b->dims, b->kind);
	}
	else
	{
		CheckStateKind(a, b->kind);
		if (a->dims != b->dims)
			ThrowAggDims(a->dims, b->dims);
	}
	for (uint32 i = 0; i < a->dims; i++)
		a->sums[i] += b->sums[i];
	a->n += b->n;
	PG_RETURN_POINTER(a);
}

/* evector_agg_serialize(internal): the state sealed under the session's vault, as bytea. */
VV_FUNCTION(evector_agg_serialize)
{
	AggState *s = reinterpret_cast<AggState *>(PG_GETARG_POINTER(0));
	size_t len = sizeof(SerialHeader) + sizeof(double) * s->dims;
	uint8_t *pt = static_cast<uint8_t *>(pg::AllocSecret(len));
	SerialHeader h;
	h.n = s->n;
	h.dims = s->dims;
	h.kind = static_cast<uint32>(s->kind);
	memcpy(pt, &h, sizeof(h));
	memcpy(pt + sizeof(h), s->sums, sizeof(double) * s->dims);
	struct varlena *sealed = type::SealValue(ValueKind::kText, pt, len);
	pg::FreeSecret(pt);
	PG_RETURN_POINTER(sealed);
}

/* evector_agg_deserialize(bytea, internal): opens a sealed state (read check) into memory. */
VV_FUNCTION(evector_agg_deserialize)
{
	MemoryContext ctx = AggContext(fcinfo);
	EnvelopeRef ref;
	type::ReadEnvelope(PG_GETARG_DATUM(0), ValueKind::kText, &ref);
	size_t len = ref.header.payload_len;
	if (len < sizeof(SerialHeader) || (len - sizeof(SerialHeader)) % sizeof(double) != 0)
		ereport(ERROR, (errcode(pg::kSqlStateCorrupt),
						errmsg("invalid serialized evector aggregate state")));
	uint8_t *pt = static_cast<uint8_t *>(pg::AllocSecret(len));
	type::OpenValue(ref, pt);
	SerialHeader h;
	memcpy(&h, pt, sizeof(h));
	if (h.dims != (len - sizeof(SerialHeader)) / sizeof(double) ||
		(h.kind != static_cast<uint32>(ValueKind::kVector) &&
		 h.kind != static_cast<uint32>(ValueKind::kHalfVector)))
	{
		pg::FreeSecret(pt);
		ereport(ERROR, (errcode(pg::kSqlStateCorrupt),
						errmsg("invalid serialized evector aggregate state")));
	}
	AggState *s = NewState(ctx, h.dims, static_cast<ValueKind>(h.kind));
	s->n = h.n;
	memcpy(s->sums, pt + sizeof(h), sizeof(double) * h.dims);
	pg::FreeSecret(pt);
	PG_RETURN_POINTER(s);
}

/* evector_avg(internal): the element-wise mean, sealed; NULL when there were no rows. */
VV_FUNCTION(evector_avg)
{
	return Final(fcinfo, ValueKind::kVector, true);
}

/* evector_sum(internal): the element-wise sum, sealed; NULL when there were no rows. */
VV_FUNCTION(evector_sum)
{
	return Final(fcinfo, ValueKind::kVector, false);
}

/* halfvec_avg(internal): the element-wise mean of ehalfvecs, sealed as an ehalfvec. */
VV_FUNCTION(ehalfvec_avg)
{
	return Final(fcinfo, ValueKind::kHalfVector, true);
}

/* halfvec_sum(internal): the element-wise sum of ehalfvecs, sealed as an ehalfvec. */
VV_FUNCTION(ehalfvec_sum)
{
	return Final(fcinfo, ValueKind::kHalfVector, false);
}

/*
 * binary_quantize(evector): refused. pgvector returns a plaintext bit string, one bit per
 * element (x > 0); for an encrypted vector that string is its sign pattern in the clear (and
 * Hamming distances between such strings approximate angles between the vectors). No encrypted
 * bit type exists yet, so instead of a new plaintext path the function says what to use. The
 * argument is never decrypted.
 */
VV_FUNCTION(evector_binary_quantize)
{
	(void) fcinfo;
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("binary_quantize is not supported for evector"),
			 errdetail("A plaintext bit string of an encrypted vector reveals its sign pattern."),
			 errhint("Index the evector column itself with vault_hnsw: its sq8 cache already "
					 "searches one byte per dimension, and results stay sealed.")));
	PG_RETURN_NULL();
}
