/*
 * ehalfvec.cpp — the encrypted half-precision vector type (issue 11; pgvector's halfvec).
 *
 * The stored form is an envelope of kind 4 (core/envelope.h) whose plaintext is dims IEEE
 * binary16 values (core/half.h): half evector's payload, so a 768-dimension value is 1,584 bytes
 * instead of 3,120 and a 3072-dimension one 6,192. Text and binary forms are pgvector's halfvec
 * ('[1,2.5]'; int16 dims, int16 zero, big-endian halves), so pgvector clients work unchanged.
 * Input rounds each element to the nearest half (ties to even) and refuses, by position, one
 * that would overflow (|x| >= 65520), as pgvector does.
 *
 * Plaintext halves exist only in memory, as evector's floats do: every function that needs the
 * numbers decrypts through type/codec.h (read right checked), widens to float (exact), and zeroes
 * both buffers. Distances (evector.cpp) run on the widened floats with the same double-precision
 * kernels as evector, so an ehalfvec and the evector of the same half values give equal
 * distances. Casts between evector and ehalfvec decrypt and seal again under the session's
 * vault (VOLATILE). vault_hnsw indexes ehalfvec columns: the index decrypts each value, widens it
 * and from there on treats it as evector's floats (hnsw_am.cpp, OpenVectorForIndex).
 */
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
}

using namespace vector_vault;
using type::EnvelopeRef;

namespace
{

/* Decrypts argument 0 (of kind from), checks typmod argument 1 and seals it as kind to. */
Datum
ConvertDense(FunctionCallInfo fcinfo, ValueKind from, ValueKind to)
{
	EnvelopeRef ref;
	type::ReadEnvelope(PG_GETARG_DATUM(0), from, &ref);
	uint32 dims = type::VectorDimsOf(ref);
	type::CheckDimsTypmod(dims, PG_GETARG_INT32(1));
	float *v = type::AllocVector(dims);
	type::OpenVectorFloats(ref, v);
	return type::SealVectorAndFree(v, dims, to);
}

} // namespace

/* ehalfvec_in(cstring, oid, integer): parses pgvector text, rounds to halves and seals. */
VV_FUNCTION(ehalfvec_in)
{
	PG_RETURN_POINTER(
		type::DenseVectorIn(PG_GETARG_CSTRING(0), PG_GETARG_INT32(2), ValueKind::kHalfVector));
}

/* ehalfvec_out(ehalfvec): decrypts (read access required) and prints pgvector text. */
VV_FUNCTION(ehalfvec_out)
{
	if (type::CiphertextIo())
		PG_RETURN_CSTRING(type::EnvelopeToText(PG_GETARG_DATUM(0), ValueKind::kHalfVector));
	type::PlainVector p = type::OpenVector(PG_GETARG_DATUM(0), ValueKind::kHalfVector);
	char *out = type::VectorOutText(p, "ehalfvec");
	type::FreeVector(p);
	PG_RETURN_CSTRING(out);
}

/* ehalfvec_typmod_in(cstring[]): validates ehalfvec(n). */
VV_FUNCTION(ehalfvec_typmod_in)
{
	PG_RETURN_INT32(type::DimsTypmodIn(PG_GETARG_ARRAYTYPE_P(0), "ehalfvec"));
}

/* ehalfvec_recv(internal, oid, integer): reads pgvector's halfvec binary form and seals it. */
VV_FUNCTION(ehalfvec_recv)
{
	StringInfo buf = reinterpret_cast<StringInfo>(PG_GETARG_POINTER(0));
	int32 typmod = PG_GETARG_INT32(2);
	if (type::CiphertextIo())
	{
		struct varlena *v = type::EnvelopeFromBinary(buf, ValueKind::kHalfVector);
		type::CheckDimsTypmod(
			static_cast<int>((VARSIZE(v) - VARHDRSZ - kEnvelopeOverhead) / sizeof(uint16_t)),
			typmod);
		PG_RETURN_POINTER(v);
	}
	size_t len = static_cast<size_t>(buf->len - buf->cursor);
	const uint8_t *data = reinterpret_cast<const uint8_t *>(buf->data + buf->cursor);
	uint16_t *h = static_cast<uint16_t *>(pg::AllocSecret(kMaxVectorDims * sizeof(uint16_t)));
	size_t dims = 0;
	Status s = ParseHalfVectorBinary(data, len, h, kMaxVectorDims, &dims);
	if (!s.ok())
	{
		pg::FreeSecret(h);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid binary input for type ehalfvec"), errdetail("%s.", s.message())));
	}
	buf->cursor = buf->len;
	if (typmod != -1 && static_cast<int>(dims) != typmod)
		pg::FreeSecret(h); /* zeroed before the error below */
	type::CheckDimsTypmod(static_cast<int>(dims), typmod);
	struct varlena *out = type::SealValue(ValueKind::kHalfVector, h, dims * sizeof(uint16_t));
	pg::FreeSecret(h);
	PG_RETURN_POINTER(out);
}

/* ehalfvec_send(ehalfvec): decrypts and writes pgvector's halfvec binary form. */
VV_FUNCTION(ehalfvec_send)
{
	if (type::CiphertextIo())
		PG_RETURN_BYTEA_P(type::EnvelopeToBinary(PG_GETARG_DATUM(0), ValueKind::kHalfVector));
	EnvelopeRef ref;
	type::ReadEnvelope(PG_GETARG_DATUM(0), ValueKind::kHalfVector, &ref);
	uint32 dims = type::VectorDimsOf(ref);
	uint16_t *h = static_cast<uint16_t *>(pg::AllocSecret(ref.header.payload_len));
	type::OpenValue(ref, reinterpret_cast<uint8_t *>(h));
	size_t n = HalfVectorBinarySize(dims);
	bytea *out = static_cast<bytea *>(palloc(VARHDRSZ + n));
	SET_VARSIZE(out, VARHDRSZ + n);
	FormatHalfVectorBinary(h, dims, reinterpret_cast<uint8_t *>(VARDATA(out)));
	pg::FreeSecret(h);
	PG_RETURN_BYTEA_P(out);
}

/* ehalfvec(ehalfvec, integer, boolean): enforces a column's dimensions without decrypting. */
VV_FUNCTION(ehalfvec_coerce)
{
	Datum d = PG_GETARG_DATUM(0);
	EnvelopeRef ref;
	type::ReadEnvelope(d, ValueKind::kHalfVector, &ref);
	type::CheckDimsTypmod(static_cast<int>(type::VectorDimsOf(ref)), PG_GETARG_INT32(1));
	PG_RETURN_DATUM(d);
}

/* ehalfvec(evector, integer, boolean): decrypts, rounds to halves, seals under the session's
 * vault (22003 for an element beyond half range). */
VV_FUNCTION(ehalfvec_from_evector)
{
	return ConvertDense(fcinfo, ValueKind::kVector, ValueKind::kHalfVector);
}

/* evector(ehalfvec, integer, boolean): decrypts, widens (exact), seals as an evector. */
VV_FUNCTION(evector_from_ehalfvec)
{
	return ConvertDense(fcinfo, ValueKind::kHalfVector, ValueKind::kVector);
}

/* See codec.h. */
struct varlena *
type::SealPgHalfvec(FunctionCallInfo fcinfo, int argno, const vault::VaultInfo *v, const char *fn)
{
	bytea *bin = type::PgvectorArgBinary(fcinfo, argno, "halfvec");
	if (bin == nullptr)
		type::ThrowNotPgvector(fcinfo, argno, fn, "halfvec",
							   "For pgvector's vector use vault.from_pgvector; for arrays a cast, "
							   "e.g. '{1,2,3}'::real[]::ehalfvec.");
	uint32 dims = 0;
	uint16_t *h = type::ParsePgHalfvec(bin, &dims);
	size_t len = sizeof(uint16_t) * dims;
	struct varlena *out = v == nullptr ? type::SealValue(ValueKind::kHalfVector, h, len)
									   : type::SealValueInVault(ValueKind::kHalfVector, v, h, len);
	pg::FreeSecret(h);
	return out;
}

/* vault.from_pghalfvec(anyelement): seals a value of pgvector's type halfvec as an ehalfvec under
 * the session's vault (the halves as they are; the cast halfvec -> ehalfvec). */
VV_FUNCTION(ehalfvec_from_pgvector)
{
	PG_RETURN_POINTER(type::SealPgHalfvec(fcinfo, 0, nullptr, "vault.from_pghalfvec"));
}
