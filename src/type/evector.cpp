/*
 * evector.cpp — the encrypted float4 vector type.
 *
 * Text and binary forms are pgvector's, so pgvector client libraries work unchanged. The stored
 * form is an envelope (core/envelope.h) whose plaintext is dims float4s in host order. The
 * dimension count is in the authenticated header, so typmod checks and vector_dims() need no
 * decryption; everything that needs the numbers goes through type/codec.h and its access check.
 *
 * Distance functions are called once per row with one side usually constant (the query vector,
 * itself an evector sealed under the current vault). The decrypted constant is cached in
 * fn_extra, keyed by the complete envelope bytes (a forged value with a reused nonce cannot hit
 * the cache), and zeroed when the query's memory context goes away.
 */
#include "core/distance.h"
#include "core/envelope.h"
#include "core/half.h"
#include "core/secure.h"
#include "core/vector_format.h"

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
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "access/htup_details.h"
}

#include <cfloat>

using namespace vector_vault;
using type::EnvelopeRef;

namespace
{

/* Floats to allocate for parsing a binary vector: the dimensions its header declares when the
 * length matches them, else kMaxVectorDims (the parser then raises its own error, in the same
 * order as for any input). */
uint32
BinaryCapacity(const uint8_t *data, size_t len)
{
	if (len >= 4)
	{
		int d = static_cast<int16>(data[0] << 8 | data[1]);
		if (d >= 1 && d <= static_cast<int>(kMaxVectorDims) &&
			len == VectorBinarySize(static_cast<size_t>(d)))
			return static_cast<uint32>(d);
	}
	return kMaxVectorDims;
}

/* vector_dims of an evector or ehalfvec (kind): from the authenticated header. */
Datum
DimsOf(FunctionCallInfo fcinfo, ValueKind kind)
{
	EnvelopeRef ref;
	type::ReadEnvelope(PG_GETARG_DATUM(0), kind, &ref);
	PG_RETURN_INT32(static_cast<int32>(type::VectorDimsOf(ref)));
}

/* Euclidean norm of an evector or ehalfvec (kind), in double precision (decrypts). */
Datum
NormOf(FunctionCallInfo fcinfo, ValueKind kind)
{
	type::PlainVector p = type::OpenVector(PG_GETARG_DATUM(0), kind);
	double n = ExactNorm(p.v, p.dims);
	type::FreeVector(p);
	PG_RETURN_FLOAT8(n);
}

/* An evector or ehalfvec (kind) decrypted into a float4 array; the Datum copies are zeroed. */
Datum
ToRealArray(FunctionCallInfo fcinfo, ValueKind kind)
{
	type::PlainVector p = type::OpenVector(PG_GETARG_DATUM(0), kind);
	Datum *elems = static_cast<Datum *>(palloc(sizeof(Datum) * p.dims));
	for (uint32 i = 0; i < p.dims; i++)
		elems[i] = Float4GetDatum(p.v[i]);
	ArrayType *result = construct_array(elems, static_cast<int>(p.dims), FLOAT4OID, sizeof(float4),
										true, TYPALIGN_INT);
	SecureZero(elems, sizeof(Datum) * p.dims);
	pfree(elems);
	type::FreeVector(p);
	PG_RETURN_POINTER(result);
}

/* Seals dims floats as an evector datum. */
Datum
SealVector(const float *v, size_t dims)
{
	return PointerGetDatum(type::SealValue(ValueKind::kVector, v, dims * sizeof(float)));
}

/* The decrypted query vector kept across calls of one distance function. */
struct QueryCache
{
	uint8_t *envelope;
	size_t envelope_size;
	const void *envelope_ptr; /* where the cached envelope was last seen */
	float *v;
	uint32 dims;
	float *row; /* the other argument's plaintext, reused row after row */
	uint32 row_dims;
};

/* dims floats of secret memory in mcxt (pg/secret.h: zeroed when released or when mcxt goes). */
float *
AllocSecretIn(MemoryContext mcxt, uint32 dims)
{
	MemoryContext old = MemoryContextSwitchTo(mcxt);
	float *v = type::AllocVector(dims);
	MemoryContextSwitchTo(old);
	return v;
}

/* Returns the cached plaintext if d is the cached envelope, else nullptr. */
const float *
CachedQuery(FunctionCallInfo fcinfo, Datum d, uint32 *dims)
{
	QueryCache *c = static_cast<QueryCache *>(fcinfo->flinfo->fn_extra);
	if (c == nullptr || c->v == nullptr)
		return nullptr;
	struct varlena *v = PG_DETOAST_DATUM_PACKED(d);
	size_t size = VARSIZE_ANY_EXHDR(v);
	const uint8_t *bytes = reinterpret_cast<const uint8_t *>(VARDATA_ANY(v));
	if (size != c->envelope_size || size < kEnvelopeOverhead)
		return nullptr;
	/*
	 * Header, nonce and tag name a seal. Seen at the same address as last time (a bound
	 * parameter or a constant: the executor hands over the same datum row after row), they are
	 * the cached envelope; anywhere else the whole envelope is compared. Either way the cached
	 * plaintext was decrypted, with the caller's rights, from these bytes at this call site.
	 */
	bool same_place = VARDATA_ANY(v) == c->envelope_ptr;
	if (same_place)
		same_place =
			memcmp(bytes, c->envelope, kEnvelopeHeaderBytes + kNonceBytes) == 0 &&
			memcmp(bytes + size - kTagBytes, c->envelope + size - kTagBytes, kTagBytes) == 0;
	if (!same_place)
	{
		if (memcmp(bytes, c->envelope, size) != 0)
			return nullptr;
		c->envelope_ptr = VARDATA_ANY(v);
	}
	*dims = c->dims;
	return c->v;
}

/* Decrypts d (an evector, or an ehalfvec widened to floats: kind) and remembers it as this
 * call site's query vector. */
const float *
CacheQuery(FunctionCallInfo fcinfo, Datum d, uint32 *dims, ValueKind kind)
{
	MemoryContext mcxt = fcinfo->flinfo->fn_mcxt;
	QueryCache *c = static_cast<QueryCache *>(fcinfo->flinfo->fn_extra);
	if (c == nullptr)
	{
		c = static_cast<QueryCache *>(MemoryContextAllocZero(mcxt, sizeof(QueryCache)));
		fcinfo->flinfo->fn_extra = c;
	}
	else if (c->v != nullptr)
	{
		pg::FreeSecret(c->v);
		pfree(c->envelope);
		c->v = nullptr;
	}
	EnvelopeRef ref;
	type::ReadEnvelope(d, kind, &ref);
	uint32 n = type::VectorDimsOf(ref);
	float *v = AllocSecretIn(mcxt, n);
	type::OpenVectorFloats(ref, v);
	c->envelope = static_cast<uint8_t *>(MemoryContextAlloc(mcxt, ref.size));
	memcpy(c->envelope, ref.data, ref.size);
	c->envelope_size = ref.size;
	c->envelope_ptr = ref.data;
	c->dims = n;
	c->v = v;
	*dims = n;
	return v;
}

/* Decrypts a row's vector (of kind, as floats) into the call site's reusable buffer (zeroed
 * when the context goes). */
const float *
OpenRow(FunctionCallInfo fcinfo, Datum d, uint32 *dims, ValueKind kind)
{
	QueryCache *c = static_cast<QueryCache *>(fcinfo->flinfo->fn_extra);
	EnvelopeRef ref;
	type::ReadEnvelope(d, kind, &ref);
	uint32 n = type::VectorDimsOf(ref);
	if (c->row == nullptr || c->row_dims < n)
	{
		pg::FreeSecret(c->row);
		c->row = AllocSecretIn(fcinfo->flinfo->fn_mcxt, n);
		c->row_dims = n;
	}
	type::OpenVectorFloats(ref, c->row);
	*dims = n;
	return c->row;
}

/* Decrypts both arguments (evectors, or ehalfvecs: kind; the constant side from cache) and
 * computes the metric in double precision over floats. */
Datum
Distance(FunctionCallInfo fcinfo, type::SqlDistance metric, ValueKind kind = ValueKind::kVector)
{
	Datum a = PG_GETARG_DATUM(0);
	Datum b = PG_GETARG_DATUM(1);
	uint32 da = 0, db = 0;
	/* The query is usually the second argument; the cache also serves "$1 <-> col". */
	const float *va = CachedQuery(fcinfo, a, &da);
	const float *vb = nullptr;
	if (va != nullptr)
		vb = OpenRow(fcinfo, b, &db, kind);
	else
	{
		vb = CachedQuery(fcinfo, b, &db);
		if (vb == nullptr)
			vb = CacheQuery(fcinfo, b, &db, kind);
		va = OpenRow(fcinfo, a, &da, kind);
	}
	if (da != db)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("different %s dimensions %u and %u",
																type::KindTypeName(kind), da, db)));
	double r = 0;
	switch (metric)
	{
		case type::SqlDistance::kL2:
			r = ExactL2(va, vb, da);
			break;
		case type::SqlDistance::kInnerProduct:
			r = ExactInnerProduct(va, vb, da);
			break;
		case type::SqlDistance::kNegInnerProduct:
			r = -ExactInnerProduct(va, vb, da);
			break;
		case type::SqlDistance::kCosine:
			r = ExactCosineDistance(va, vb, da);
			break;
		case type::SqlDistance::kL1:
			r = ExactL1(va, vb, da);
			break;
	}
	PG_RETURN_FLOAT8(r);
}

} // namespace

/* evector_in(cstring, oid, integer): parses pgvector text and seals it. */
VV_FUNCTION(evector_in)
{
	PG_RETURN_POINTER(
		type::DenseVectorIn(PG_GETARG_CSTRING(0), PG_GETARG_INT32(2), ValueKind::kVector));
}

/* evector_out(evector): decrypts (read access required) and prints pgvector text. */
VV_FUNCTION(evector_out)
{
	if (type::CiphertextIo())
		PG_RETURN_CSTRING(type::EnvelopeToText(PG_GETARG_DATUM(0), ValueKind::kVector));
	type::PlainVector p = type::OpenVector(PG_GETARG_DATUM(0));
	char *out = type::VectorOutText(p, "evector");
	type::FreeVector(p);
	PG_RETURN_CSTRING(out);
}

/* evector_typmod_in(cstring[]): validates evector(n). */
VV_FUNCTION(evector_typmod_in)
{
	PG_RETURN_INT32(type::DimsTypmodIn(PG_GETARG_ARRAYTYPE_P(0), "evector"));
}

/* evector_typmod_out(integer): prints "(n)". */
VV_FUNCTION(evector_typmod_out)
{
	int32 typmod = PG_GETARG_INT32(0);
	PG_RETURN_CSTRING(typmod < 0 ? pstrdup("") : psprintf("(%d)", typmod));
}

/* evector_recv(internal, oid, integer): reads pgvector's binary form and seals it. */
VV_FUNCTION(evector_recv)
{
	StringInfo buf = reinterpret_cast<StringInfo>(PG_GETARG_POINTER(0));
	int32 typmod = PG_GETARG_INT32(2);
	if (type::CiphertextIo())
	{
		struct varlena *v = type::EnvelopeFromBinary(buf, ValueKind::kVector);
		type::CheckDimsTypmod(
			static_cast<int>((VARSIZE(v) - VARHDRSZ - kEnvelopeOverhead) / sizeof(float)), typmod);
		PG_RETURN_POINTER(v);
	}
	size_t len = static_cast<size_t>(buf->len - buf->cursor);
	const uint8_t *data = reinterpret_cast<const uint8_t *>(buf->data + buf->cursor);
	uint32 cap = BinaryCapacity(data, len);
	float *v = type::AllocVector(cap);
	size_t dims = 0;
	Status s = ParseVectorBinary(data, len, v, cap, &dims);
	if (!s.ok())
	{
		pg::FreeSecret(v);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid binary input for type evector"), errdetail("%s.", s.message())));
	}
	buf->cursor = buf->len;
	if (typmod != -1 && static_cast<int>(dims) != typmod)
		pg::FreeSecret(v); /* zeroed before the error below */
	type::CheckDimsTypmod(static_cast<int>(dims), typmod);
	Datum d = SealVector(v, dims);
	pg::FreeSecret(v);
	PG_RETURN_DATUM(d);
}

/* evector_send(evector): decrypts and writes pgvector's binary form. */
VV_FUNCTION(evector_send)
{
	if (type::CiphertextIo())
		PG_RETURN_BYTEA_P(type::EnvelopeToBinary(PG_GETARG_DATUM(0), ValueKind::kVector));
	type::PlainVector p = type::OpenVector(PG_GETARG_DATUM(0));
	size_t n = VectorBinarySize(p.dims);
	bytea *out = static_cast<bytea *>(palloc(VARHDRSZ + n));
	SET_VARSIZE(out, VARHDRSZ + n);
	FormatVectorBinary(p.v, p.dims, reinterpret_cast<uint8_t *>(VARDATA(out)));
	type::FreeVector(p);
	PG_RETURN_BYTEA_P(out);
}

/* evector(evector, integer, boolean): enforces a column's dimensions without decrypting. */
VV_FUNCTION(evector_coerce)
{
	Datum d = PG_GETARG_DATUM(0);
	int32 typmod = PG_GETARG_INT32(1);
	EnvelopeRef ref;
	type::ReadEnvelope(d, ValueKind::kVector, &ref);
	type::CheckDimsTypmod(static_cast<int>(ref.header.payload_len / sizeof(float)), typmod);
	PG_RETURN_DATUM(d);
}

/* l2_distance(evector, evector) and <->. */
VV_FUNCTION(evector_l2_distance)
{
	return Distance(fcinfo, type::SqlDistance::kL2);
}

/* inner_product(evector, evector). */
VV_FUNCTION(evector_inner_product)
{
	return Distance(fcinfo, type::SqlDistance::kInnerProduct);
}

/* <#>: the negative inner product, so smaller is closer. */
VV_FUNCTION(evector_negative_inner_product)
{
	return Distance(fcinfo, type::SqlDistance::kNegInnerProduct);
}

/* cosine_distance(evector, evector) and <=>. */
VV_FUNCTION(evector_cosine_distance)
{
	return Distance(fcinfo, type::SqlDistance::kCosine);
}

/* l1_distance(evector, evector) and <+>. */
VV_FUNCTION(evector_l1_distance)
{
	return Distance(fcinfo, type::SqlDistance::kL1);
}

/* vector_dims(evector): from the authenticated header, no decryption. */
VV_FUNCTION(evector_dims)
{
	return DimsOf(fcinfo, ValueKind::kVector);
}

/* vector_dims(ehalfvec): the same for ehalfvec. */
VV_FUNCTION(ehalfvec_dims)
{
	return DimsOf(fcinfo, ValueKind::kHalfVector);
}

/* vector_norm(evector): Euclidean norm (decrypts). */
VV_FUNCTION(evector_norm)
{
	return NormOf(fcinfo, ValueKind::kVector);
}

/* l2_norm(ehalfvec): the same over the halves widened to floats. */
VV_FUNCTION(ehalfvec_norm)
{
	return NormOf(fcinfo, ValueKind::kHalfVector);
}

namespace
{

/* Seals an array of real, double precision, integer or numeric as kind (evector or ehalfvec). */
Datum
FromArray(FunctionCallInfo fcinfo, ValueKind kind)
{
	ArrayType *a = PG_GETARG_ARRAYTYPE_P(0);
	int32 typmod = PG_GETARG_INT32(1);
	if (ARR_NDIM(a) != 1)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("array must be 1-D")));
	if (ARR_HASNULL(a) && array_contains_nulls(a))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("array must not contain nulls")));
	Oid elemtype = ARR_ELEMTYPE(a);
	int dims = ARR_DIMS(a)[0];
	if (dims < 1)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("%s must have at least 1 dimension", type::KindTypeName(kind))));
	if (dims > static_cast<int>(kMaxVectorDims))
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("%s cannot have more than %u dimensions", type::KindTypeName(kind),
							   kMaxVectorDims)));
	type::CheckDimsTypmod(dims, typmod);
	if (elemtype == FLOAT4OID)
	{
		const float *v = reinterpret_cast<const float *>(ARR_DATA_PTR(a));
		Status s = CheckVectorFinite(v, static_cast<size_t>(dims));
		if (!s.ok())
			ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("%s", s.message())));
		if (kind == ValueKind::kVector)
			PG_RETURN_DATUM(SealVector(v, static_cast<size_t>(dims)));
		float *copy = type::AllocVector(static_cast<uint32>(dims));
		memcpy(copy, v, sizeof(float) * dims);
		PG_RETURN_DATUM(type::SealVectorAndFree(copy, static_cast<uint32>(dims), kind));
	}
	int16 typlen;
	bool typbyval;
	char typalign;
	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	Datum *elems;
	int n;
	deconstruct_array(a, elemtype, typlen, typbyval, typalign, &elems, nullptr, &n);
	/* secret: an element that fails to convert raises with the others already here */
	float *v = type::AllocVector(static_cast<uint32>(n));
	for (int i = 0; i < n; i++)
		v[i] = type::ArrayElementToFloat(elems[i], elemtype, i, type::KindTypeName(kind));
	if (typbyval && kind == ValueKind::kHalfVector)
		SecureZero(elems, sizeof(Datum) * n); /* before SealAsHalves can raise */
	Datum d =
		kind == ValueKind::kVector
			? SealVector(v, static_cast<size_t>(n))
			: PointerGetDatum(type::SealAsHalves(v, static_cast<size_t>(n), sizeof(float) * n));
	pg::FreeSecret(v);
	if (typbyval)
		SecureZero(elems, sizeof(Datum) * n);
	pfree(elems);
	PG_RETURN_DATUM(d);
}

} // namespace

/* evector(real[] | double precision[] | integer[] | numeric[], integer, boolean): seals an array
 * (the casts from arrays; psycopg2 sends Python lists as numeric[]). */
VV_FUNCTION(evector_from_array)
{
	return FromArray(fcinfo, ValueKind::kVector);
}

/* ehalfvec(real[] | double precision[] | integer[] | numeric[], integer, boolean): the same casts
 * for ehalfvec; an element beyond half range (|x| >= 65520 after rounding) is 22003. */
VV_FUNCTION(ehalfvec_from_array)
{
	return FromArray(fcinfo, ValueKind::kHalfVector);
}

/* evector_from_real_array: the 0.1.0 name of evector_from_array. The released 0.1.0 install script
 * (sql/released/vector_vault--0.1.0.sql, never edited) names it, and CREATE FUNCTION ... LANGUAGE C
 * looks the symbol up, so the library exports it for as long as 0.1.0 can be installed; the
 * 0.1.0--0.2.0 update repoints the function to evector_from_array. */
VV_FUNCTION(evector_from_real_array)
{
	return evector_from_array_body(fcinfo);
}

/* vault.from_pgvector(anyelement): seals a value of pgvector's type vector, or halfvec (widened
 * exactly), as an evector. pgvector's types are found at run time (codec.h: by name and send
 * function; vector_send's binary form is the one evector_recv reads), so vector_vault neither
 * needs pgvector installed nor links against it. */
VV_FUNCTION(evector_from_pgvector)
{
	bytea *bin = type::PgvectorArgBinary(fcinfo, 0, "vector");
	if (bin == nullptr)
	{
		bytea *half = type::PgvectorArgBinary(fcinfo, 0, "halfvec");
		if (half == nullptr)
			type::ThrowNotPgvector(fcinfo, 0, "vault.from_pgvector", "vector or halfvec",
								   "For arrays use a cast, e.g. '{1,2,3}'::real[]::evector.");
		uint32 dims = 0;
		uint16_t *h = type::ParsePgHalfvec(half, &dims);
		float *v = type::AllocVector(dims);
		HalvesToFloats(h, dims, v);
		pg::FreeSecret(h);
		PG_RETURN_DATUM(type::SealVectorAndFree(v, dims, ValueKind::kVector));
	}
	size_t len = VARSIZE(bin) - VARHDRSZ;
	const uint8_t *data = reinterpret_cast<const uint8_t *>(VARDATA(bin));
	uint32 cap = BinaryCapacity(data, len);
	float *v = type::AllocVector(cap);
	size_t dims = 0;
	Status s = ParseVectorBinary(data, len, v, cap, &dims);
	type::FreePgvectorBinary(bin);
	if (!s.ok())
	{
		pg::FreeSecret(v);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("could not read the pgvector value"), errdetail("%s.", s.message())));
	}
	Datum d = SealVector(v, dims);
	pg::FreeSecret(v);
	PG_RETURN_DATUM(d);
}

/* real[](evector): decrypts into a float4 array (explicit plaintext out). */
VV_FUNCTION(evector_to_real_array)
{
	return ToRealArray(fcinfo, ValueKind::kVector);
}

/* real[](ehalfvec): the same for ehalfvec. */
VV_FUNCTION(ehalfvec_to_real_array)
{
	return ToRealArray(fcinfo, ValueKind::kHalfVector);
}

/* l2_distance(ehalfvec, ehalfvec) and <->: over the halves widened to floats. */
VV_FUNCTION(ehalfvec_l2_distance)
{
	return Distance(fcinfo, type::SqlDistance::kL2, ValueKind::kHalfVector);
}

/* inner_product(ehalfvec, ehalfvec). */
VV_FUNCTION(ehalfvec_inner_product)
{
	return Distance(fcinfo, type::SqlDistance::kInnerProduct, ValueKind::kHalfVector);
}

/* <#> on ehalfvec: the negative inner product. */
VV_FUNCTION(ehalfvec_negative_inner_product)
{
	return Distance(fcinfo, type::SqlDistance::kNegInnerProduct, ValueKind::kHalfVector);
}

/* cosine_distance(ehalfvec, ehalfvec) and <=>. */
VV_FUNCTION(ehalfvec_cosine_distance)
{
	return Distance(fcinfo, type::SqlDistance::kCosine, ValueKind::kHalfVector);
}

/* l1_distance(ehalfvec, ehalfvec) and <+>. */
VV_FUNCTION(ehalfvec_l1_distance)
{
	return Distance(fcinfo, type::SqlDistance::kL1, ValueKind::kHalfVector);
}
