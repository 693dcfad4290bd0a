/*
 * esparsevec.cpp — the encrypted sparse vector type (issue 11; pgvector's sparsevec).
 *
 * The stored form is an envelope of kind 5 whose plaintext is dims, nnz, the 0-based indices and
 * the values (core/sparse_format.h). Text and binary forms are pgvector's sparsevec
 * ('{1:0.5,3:2}/5'; int32 dims, nnz, 0, indices, values), so pgvector clients work unchanged.
 * The envelope header holds only the payload length, so nnz shows (as a length) and dims does
 * not: a column's esparsevec(n) is enforced by decrypting, so assigning a value needs the read
 * right on its vault (inserting one sealed in the session's vault always has it). Under
 * ciphertext I/O (dumps and restores) input and receive take the envelope as it is and do not
 * check the typmod: that would decrypt, which ciphertext I/O never does and which the restoring
 * role usually may not (the value is authenticated and was checked when it was first stored).
 *
 * Casts as pgvector's sparsevec has them: from arrays (assignment), evector and ehalfvec ->
 * esparsevec (implicit), esparsevec -> evector / ehalfvec (assignment); every one decrypts (if
 * its input is encrypted) and seals the result under the session's vault.
 *
 * Plaintext pairs exist only in memory, in secret buffers (pg/secret.h) zeroed on every path.
 * Distances merge the two sorted pair lists in double precision and equal evector's on the dense
 * form. Not indexable by vault_hnsw (the graph and its kernels are dense: see docs/design.md).
 */
#include "core/envelope.h"
#include "core/secure.h"
#include "core/sparse_format.h"
#include "core/vector_format.h"

#include <cfloat>
#include <cmath>
#include <cstring>

#include "pg/guard.h"
#include "pg/secret.h"
#include "type/codec.h"

extern "C"
{
#include "catalog/pg_type.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"
}

using namespace vector_vault;
using type::EnvelopeRef;

namespace
{

/* Raises an error unless dims matches a column's declared dimensions. */
void
CheckSparseTypmod(uint32 dims, int32 typmod)
{
	if (typmod != -1 && static_cast<int64>(dims) != typmod)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("expected %d dimensions, not %u", typmod, dims),
				 errhint("A value of esparsevec(n) has n dimensions (the number after \"/\").")));
}

/* A decrypted esparsevec: the view points into buf (a secret buffer). */
struct Plain
{
	SparseView v;
	void *buf;
};

/* Validates, checks access and decrypts an esparsevec datum. */
Plain
OpenSparse(Datum d)
{
	EnvelopeRef ref;
	type::ReadEnvelope(d, ValueKind::kSparseVector, &ref);
	Plain p;
	p.buf = pg::AllocSecret(ref.header.payload_len);
	type::OpenValue(ref, static_cast<uint8_t *>(p.buf));
	Status s = UnpackSparse(static_cast<const uint8_t *>(p.buf), ref.header.payload_len, &p.v);
	if (!s.ok())
	{
		pg::FreeSecret(p.buf);
		pg::ThrowStatus(s, "invalid esparsevec value",
						"The stored value is damaged or was not written by vector_vault.");
	}
	return p;
}

/* Seals a sparse vector under the current vault. */
struct varlena *
SealSparse(const SparseView &v)
{
	size_t len = SparsePayloadSize(v.nnz);
	uint8_t *payload = static_cast<uint8_t *>(pg::AllocSecret(len));
	PackSparse(v, payload);
	struct varlena *out = type::SealValue(ValueKind::kSparseVector, payload, len);
	pg::FreeSecret(payload);
	return out;
}

/* Checks a sealed value's dimensions against a typmod (decrypts: dims is in the payload). */
void
EnforceTypmod(Datum d, int32 typmod)
{
	if (typmod == -1)
		return;
	Plain p = OpenSparse(d);
	uint32 dims = p.v.dims;
	pg::FreeSecret(p.buf);
	CheckSparseTypmod(dims, typmod);
}

/* Buffers for up to cap pairs (secret: values are plaintext). */
struct Pairs
{
	uint32_t *idx;
	float *val;
};

/* Allocates pair buffers for cap pairs (at least one, kMaxSparseNnz for parsers). */
Pairs
NewPairs(size_t cap = kMaxSparseNnz)
{
	if (cap == 0)
		cap = 1;
	Pairs p;
	p.idx = static_cast<uint32_t *>(pg::AllocSecret(sizeof(uint32_t) * cap));
	p.val = static_cast<float *>(pg::AllocSecret(sizeof(float) * cap));
	return p;
}

/* Frees parse buffers (zeroed). */
void
FreePairs(Pairs p)
{
	pg::FreeSecret(p.idx);
	pg::FreeSecret(p.val);
}

/* Decrypts both arguments and compares them in pgvector's sparsevec order (CompareSparse). */
int
SparseCompare(FunctionCallInfo fcinfo)
{
	Plain a = OpenSparse(PG_GETARG_DATUM(0));
	Plain b = OpenSparse(PG_GETARG_DATUM(1));
	int c = CompareSparse(a.v, b.v);
	pg::FreeSecret(a.buf);
	pg::FreeSecret(b.buf);
	return c;
}

/* Decrypts both arguments and computes the metric. */
Datum
SparseDistance(FunctionCallInfo fcinfo, type::SqlDistance m)
{
	Plain a = OpenSparse(PG_GETARG_DATUM(0));
	Plain b = OpenSparse(PG_GETARG_DATUM(1));
	if (a.v.dims != b.v.dims)
	{
		uint32 da = a.v.dims, db = b.v.dims;
		pg::FreeSecret(a.buf);
		pg::FreeSecret(b.buf);
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("different esparsevec dimensions %u and %u", da, db),
						errhint("Compare sparse vectors of the same dimension count.")));
	}
	double r = 0;
	switch (m)
	{
		case type::SqlDistance::kL2:
			r = SparseL2(a.v, b.v);
			break;
		case type::SqlDistance::kInnerProduct:
			r = SparseInnerProduct(a.v, b.v);
			break;
		case type::SqlDistance::kNegInnerProduct:
			r = -SparseInnerProduct(a.v, b.v);
			break;
		case type::SqlDistance::kCosine:
			r = SparseCosineDistance(a.v, b.v);
			break;
		case type::SqlDistance::kL1:
			r = SparseL1(a.v, b.v);
			break;
	}
	pg::FreeSecret(a.buf);
	pg::FreeSecret(b.buf);
	PG_RETURN_FLOAT8(r);
}

/* Seals the non-zero elements of an evector or ehalfvec (kind) argument as an esparsevec. */
Datum
FromDense(FunctionCallInfo fcinfo, ValueKind kind)
{
	EnvelopeRef ref;
	type::ReadEnvelope(PG_GETARG_DATUM(0), kind, &ref);
	uint32 dims = type::VectorDimsOf(ref);
	CheckSparseTypmod(dims, PG_GETARG_INT32(1));
	float *v = type::AllocVector(dims);
	type::OpenVectorFloats(ref, v);
	Pairs p = NewPairs(dims); /* dims <= 16,000 = kMaxSparseNnz */
	uint32_t nnz = 0;
	for (uint32 i = 0; i < dims; i++)
		if (v[i] != 0.0f)
		{
			p.idx[nnz] = i;
			p.val[nnz] = v[i];
			nnz++;
		}
	pg::FreeSecret(v);
	struct varlena *out = SealSparse(SparseView{dims, nnz, p.idx, p.val});
	FreePairs(p);
	PG_RETURN_POINTER(out);
}

/* Seals the dense form of an esparsevec argument as an evector or ehalfvec (kind). */
Datum
ToDense(FunctionCallInfo fcinfo, ValueKind kind)
{
	Plain p = OpenSparse(PG_GETARG_DATUM(0));
	uint32 dims = p.v.dims;
	int32 typmod = PG_GETARG_INT32(1);
	if (dims > kMaxVectorDims || (typmod != -1 && static_cast<int64>(dims) != typmod))
	{
		pg::FreeSecret(p.buf);
		if (dims > kMaxVectorDims)
			ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							errmsg("%s cannot have more than %u dimensions",
								   type::KindTypeName(kind), kMaxVectorDims),
							errhint("Keep vectors of more dimensions as esparsevec.")));
		CheckSparseTypmod(dims, typmod);
	}
	float *v = type::AllocVector(dims);
	memset(v, 0, sizeof(float) * dims);
	for (uint32 i = 0; i < p.v.nnz; i++)
		v[p.v.indices[i]] = p.v.values[i];
	pg::FreeSecret(p.buf);
	PG_RETURN_DATUM(type::SealVectorAndFree(v, dims, kind));
}

} // namespace

/* esparsevec_in(cstring, oid, integer): parses pgvector sparsevec text and seals it. */
VV_FUNCTION(esparsevec_in)
{
	char *text = PG_GETARG_CSTRING(0);
	int32 typmod = PG_GETARG_INT32(2);
	if (type::CiphertextIo())
	{
		/* the envelope as it is: no typmod check, which would decrypt (see the header) */
		struct varlena *v = type::EnvelopeFromText(text, ValueKind::kSparseVector);
		if (v != nullptr)
			PG_RETURN_POINTER(v);
	}
	Pairs p = NewPairs();
	uint32_t dims = 0, nnz = 0;
	Status s = ParseSparseText(text, p.idx, p.val, kMaxSparseNnz, &dims, &nnz);
	if (!s.ok())
	{
		FreePairs(p);
		type::ThrowVectorParseError(s, "esparsevec",
									"Write sparse vectors as '{1:0.5,3:2}/5': 1-based index:value "
									"pairs, then the dimensions.");
	}
	if (typmod != -1 && static_cast<int64>(dims) != typmod)
		FreePairs(p); /* zeroed before the error below */
	CheckSparseTypmod(dims, typmod);
	struct varlena *out = SealSparse(SparseView{dims, nnz, p.idx, p.val});
	FreePairs(p);
	PG_RETURN_POINTER(out);
}

/* esparsevec_out(esparsevec): decrypts (read access required) and prints pgvector text. */
VV_FUNCTION(esparsevec_out)
{
	if (type::CiphertextIo())
		PG_RETURN_CSTRING(type::EnvelopeToText(PG_GETARG_DATUM(0), ValueKind::kSparseVector));
	Plain p = OpenSparse(PG_GETARG_DATUM(0));
	size_t cap = SparseTextCapacity(p.v.nnz);
	char *out = static_cast<char *>(palloc(cap));
	size_t n = FormatSparseTextBuf(p.v, out, cap);
	pg::FreeSecret(p.buf);
	if (n == 0)
		elog(ERROR, "could not format esparsevec");
	PG_RETURN_CSTRING(out);
}

/* esparsevec_typmod_in(cstring[]): validates esparsevec(n). */
VV_FUNCTION(esparsevec_typmod_in)
{
	PG_RETURN_INT32(type::DimsTypmodIn(PG_GETARG_ARRAYTYPE_P(0), "esparsevec", kMaxSparseDims));
}

/* esparsevec_recv(internal, oid, integer): reads pgvector's sparsevec binary form and seals it. */
VV_FUNCTION(esparsevec_recv)
{
	StringInfo buf = reinterpret_cast<StringInfo>(PG_GETARG_POINTER(0));
	int32 typmod = PG_GETARG_INT32(2);
	if (type::CiphertextIo()) /* the envelope as it is, as in esparsevec_in */
		PG_RETURN_POINTER(type::EnvelopeFromBinary(buf, ValueKind::kSparseVector));
	size_t len = static_cast<size_t>(buf->len - buf->cursor);
	const uint8_t *data = reinterpret_cast<const uint8_t *>(buf->data + buf->cursor);
	Pairs p = NewPairs();
	uint32_t dims = 0, nnz = 0;
	Status s = ParseSparseBinary(data, len, p.idx, p.val, kMaxSparseNnz, &dims, &nnz);
	if (!s.ok())
	{
		FreePairs(p);
		ereport(ERROR, (errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
						errmsg("invalid binary input for type esparsevec"),
						errdetail("%s.", s.message())));
	}
	buf->cursor = buf->len;
	if (typmod != -1 && static_cast<int64>(dims) != typmod)
		FreePairs(p); /* zeroed before the error below */
	CheckSparseTypmod(dims, typmod);
	struct varlena *out = SealSparse(SparseView{dims, nnz, p.idx, p.val});
	FreePairs(p);
	PG_RETURN_POINTER(out);
}

/* esparsevec_send(esparsevec): decrypts and writes pgvector's sparsevec binary form. */
VV_FUNCTION(esparsevec_send)
{
	if (type::CiphertextIo())
		PG_RETURN_BYTEA_P(type::EnvelopeToBinary(PG_GETARG_DATUM(0), ValueKind::kSparseVector));
	Plain p = OpenSparse(PG_GETARG_DATUM(0));
	size_t n = SparseBinarySize(p.v.nnz);
	bytea *out = static_cast<bytea *>(palloc(VARHDRSZ + n));
	SET_VARSIZE(out, VARHDRSZ + n);
	FormatSparseBinary(p.v, reinterpret_cast<uint8_t *>(VARDATA(out)));
	pg::FreeSecret(p.buf);
	PG_RETURN_BYTEA_P(out);
}

/* esparsevec(esparsevec, integer, boolean): enforces a column's dimensions; dims is inside the
 * ciphertext, so this decrypts (read right on the value's vault). */
VV_FUNCTION(esparsevec_coerce)
{
	Datum d = PG_GETARG_DATUM(0);
	EnforceTypmod(d, PG_GETARG_INT32(1));
	PG_RETURN_DATUM(d);
}

/* l2_distance(esparsevec, esparsevec) and <->. */
VV_FUNCTION(esparsevec_l2_distance)
{
	return SparseDistance(fcinfo, type::SqlDistance::kL2);
}

/* inner_product(esparsevec, esparsevec). */
VV_FUNCTION(esparsevec_inner_product)
{
	return SparseDistance(fcinfo, type::SqlDistance::kInnerProduct);
}

/* <#> on esparsevec: the negative inner product. */
VV_FUNCTION(esparsevec_negative_inner_product)
{
	return SparseDistance(fcinfo, type::SqlDistance::kNegInnerProduct);
}

/* cosine_distance(esparsevec, esparsevec) and <=>. */
VV_FUNCTION(esparsevec_cosine_distance)
{
	return SparseDistance(fcinfo, type::SqlDistance::kCosine);
}

/* l1_distance(esparsevec, esparsevec) and <+>. */
VV_FUNCTION(esparsevec_l1_distance)
{
	return SparseDistance(fcinfo, type::SqlDistance::kL1);
}

/* sparsevec_cmp(esparsevec, esparsevec): -1, 0 or 1 (btree support function). */
VV_FUNCTION(esparsevec_cmp)
{
	PG_RETURN_INT32(SparseCompare(fcinfo));
}

/* esparsevec < esparsevec. */
VV_FUNCTION(esparsevec_lt)
{
	PG_RETURN_BOOL(SparseCompare(fcinfo) < 0);
}

/* esparsevec <= esparsevec. */
VV_FUNCTION(esparsevec_le)
{
	PG_RETURN_BOOL(SparseCompare(fcinfo) <= 0);
}

/* esparsevec = esparsevec (the values, not the ciphertexts). */
VV_FUNCTION(esparsevec_eq)
{
	PG_RETURN_BOOL(SparseCompare(fcinfo) == 0);
}

/* esparsevec <> esparsevec. */
VV_FUNCTION(esparsevec_ne)
{
	PG_RETURN_BOOL(SparseCompare(fcinfo) != 0);
}

/* esparsevec >= esparsevec. */
VV_FUNCTION(esparsevec_ge)
{
	PG_RETURN_BOOL(SparseCompare(fcinfo) >= 0);
}

/* esparsevec > esparsevec. */
VV_FUNCTION(esparsevec_gt)
{
	PG_RETURN_BOOL(SparseCompare(fcinfo) > 0);
}

/* l2_norm(esparsevec). */
VV_FUNCTION(esparsevec_norm)
{
	Plain p = OpenSparse(PG_GETARG_DATUM(0));
	double r = SparseNorm(p.v);
	pg::FreeSecret(p.buf);
	PG_RETURN_FLOAT8(r);
}

/* esparsevec(evector, integer, boolean): decrypts, keeps the non-zero elements, seals under the
 * session's vault. */
VV_FUNCTION(esparsevec_from_evector)
{
	return FromDense(fcinfo, ValueKind::kVector);
}

/* esparsevec(ehalfvec, integer, boolean): the same from an ehalfvec (widened exactly). */
VV_FUNCTION(esparsevec_from_ehalfvec)
{
	return FromDense(fcinfo, ValueKind::kHalfVector);
}

/* esparsevec(real[] | double precision[] | integer[] | numeric[], integer, boolean): keeps the
 * non-zero elements and seals them (the casts from arrays, as pgvector's array_to_sparsevec). */
VV_FUNCTION(esparsevec_from_array)
{
	ArrayType *a = PG_GETARG_ARRAYTYPE_P(0);
	int32 typmod = PG_GETARG_INT32(1);
	if (ARR_NDIM(a) > 1)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("array must be 1-D"),
						errhint("Cast a one-dimensional array to esparsevec.")));
	if (ARR_HASNULL(a) && array_contains_nulls(a))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("array must not contain nulls"),
				 errhint("Use 0 for an absent element.")));
	Oid elemtype = ARR_ELEMTYPE(a);
	if (elemtype != FLOAT4OID && elemtype != FLOAT8OID && elemtype != INT4OID &&
		elemtype != NUMERICOID)
		ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
						errmsg("cannot convert an array of type %s to esparsevec",
							   format_type_be(elemtype)),
						errhint("Use an array of real, double precision, integer or numeric.")));
	int n = ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
	if (n < 1)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("esparsevec must have at least 1 dimension"),
						errhint("Cast an array with at least one element.")));
	if (static_cast<uint32>(n) > kMaxSparseDims)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("esparsevec cannot have more than %u dimensions", kMaxSparseDims)));
	CheckSparseTypmod(static_cast<uint32>(n), typmod);
	/* Pairs are secret buffers: an error below (a bad element) leaves them to be wiped with
	 * the memory context. */
	Pairs p = NewPairs();
	uint32_t nnz = 0;
	ArrayIterator it = array_create_iterator(a, 0, nullptr);
	Datum d;
	bool isnull;
	for (int i = 0; array_iterate(it, &d, &isnull); i++)
	{
		float f = type::ArrayElementToFloat(d, elemtype, i, "esparsevec");
		if (f == 0.0f)
			continue;
		if (nnz == kMaxSparseNnz)
		{
			FreePairs(p);
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("esparsevec cannot have more than %u non-zero elements", kMaxSparseNnz),
					 errhint("Store vectors with more non-zero elements as evector.")));
		}
		p.idx[nnz] = static_cast<uint32_t>(i);
		p.val[nnz] = f;
		nnz++;
	}
	array_free_iterator(it);
	struct varlena *out = SealSparse(SparseView{static_cast<uint32_t>(n), nnz, p.idx, p.val});
	FreePairs(p);
	PG_RETURN_POINTER(out);
}

/* l2_normalize(esparsevec): the vector divided by its norm, sealed under the session's vault (a
 * zero vector stays zero; elements that underflow to zero are dropped, as pgvector). */
VV_FUNCTION(esparsevec_l2_normalize)
{
	Plain p = OpenSparse(PG_GETARG_DATUM(0));
	Pairs r = NewPairs(p.v.nnz);
	uint32_t n = SparseNormalize(p.v, r.idx, r.val);
	uint32_t dims = p.v.dims;
	pg::FreeSecret(p.buf);
	struct varlena *out = SealSparse(SparseView{dims, n, r.idx, r.val});
	FreePairs(r);
	PG_RETURN_POINTER(out);
}

/* evector(esparsevec, integer, boolean): decrypts, writes the dense form, seals it as an
 * evector (at most 16,000 dimensions, evector's limit). */
VV_FUNCTION(evector_from_esparsevec)
{
	return ToDense(fcinfo, ValueKind::kVector);
}

/* ehalfvec(esparsevec, integer, boolean): the same as an ehalfvec (rounded to halves; 22003 for
 * an element beyond half range). */
VV_FUNCTION(ehalfvec_from_esparsevec)
{
	return ToDense(fcinfo, ValueKind::kHalfVector);
}

/* See codec.h. */
struct varlena *
type::SealPgSparsevec(FunctionCallInfo fcinfo, int argno, const vault::VaultInfo *v, const char *fn)
{
	bytea *bin = type::PgvectorArgBinary(fcinfo, argno, "sparsevec");
	if (bin == nullptr)
		type::ThrowNotPgvector(fcinfo, argno, fn, "sparsevec",
							   "For arrays use a cast, e.g. '{1,0,3}'::real[]::esparsevec.");
	size_t len = VARSIZE(bin) - VARHDRSZ;
	const uint8_t *data = reinterpret_cast<const uint8_t *>(VARDATA(bin));
	Pairs p = NewPairs();
	uint32_t dims = 0, nnz = 0;
	Status s = ParseSparseBinary(data, len, p.idx, p.val, kMaxSparseNnz, &dims, &nnz);
	type::FreePgvectorBinary(bin);
	if (!s.ok())
	{
		FreePairs(p);
		ereport(ERROR, (errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
						errmsg("could not read the pgvector sparsevec value"),
						errdetail("%s.", s.message())));
	}
	SparseView view{dims, nnz, p.idx, p.val};
	size_t plen = SparsePayloadSize(nnz);
	uint8_t *payload = static_cast<uint8_t *>(pg::AllocSecret(plen));
	PackSparse(view, payload);
	FreePairs(p);
	struct varlena *out = v == nullptr
							  ? type::SealValue(ValueKind::kSparseVector, payload, plen)
							  : type::SealValueInVault(ValueKind::kSparseVector, v, payload, plen);
	pg::FreeSecret(payload);
	return out;
}

/* vault.from_pgsparsevec(anyelement): seals a value of pgvector's type sparsevec as an
 * esparsevec under the session's vault (the cast sparsevec -> esparsevec). */
VV_FUNCTION(esparsevec_from_pgvector)
{
	PG_RETURN_POINTER(type::SealPgSparsevec(fcinfo, 0, nullptr, "vault.from_pgsparsevec"));
}
