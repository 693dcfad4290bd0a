/*
 * ejsonb.cpp — encrypted jsonb. Input is parsed and validated by jsonb_in, and the payload is
 * jsonb's binary body, so output, casts and the -> / ->> / @> operators rebuild a jsonb datum
 * after decryption and hand it to Postgres' own jsonb functions.
 */
#include "core/envelope.h"

#include "auth/auth.h"
#include "pg/guard.h"
#include "pg/secret.h"
#include "type/codec.h"

extern "C"
{
#include "libpq/pqformat.h"
#include "utils/jsonb.h"
}

using namespace vector_vault;
using type::EnvelopeRef;

namespace
{

/* Seals a jsonb datum's binary body. */
Datum
SealJsonb(Datum jsonb)
{
	struct varlena *j = PG_DETOAST_DATUM(jsonb);
	return PointerGetDatum(type::SealValue(ValueKind::kJson, VARDATA(j), VARSIZE(j) - VARHDRSZ));
}

/* Decrypts an ejsonb datum back into a jsonb: in secret memory (pg/secret.h, released with
 * FreeJsonb) unless it is to be returned to Postgres as a result (secret false: palloc'd). */
Jsonb *
OpenJsonb(Datum d, bool secret = true)
{
	EnvelopeRef ref;
	type::ReadEnvelope(d, ValueKind::kJson, &ref);
	size_t n = VARHDRSZ + ref.header.payload_len;
	Jsonb *j = static_cast<Jsonb *>(secret ? pg::AllocSecret(n) : palloc(n));
	SET_VARSIZE(j, VARHDRSZ + ref.header.payload_len);
	type::OpenValue(ref, reinterpret_cast<uint8_t *>(VARDATA(j)));
	return j;
}

/* Zeroes and frees a decrypted jsonb from OpenJsonb(d, true). */
void
FreeJsonb(Jsonb *j)
{
	pg::FreeSecret(j);
}

/* Calls jsonb's field operator (-> or ->>) on the decrypted document; the result is a fresh
 * datum, so the document is zeroed and freed before returning. */
Datum
FieldOfDecrypted(FunctionCallInfo fcinfo, PGFunction field)
{
	Jsonb *j = OpenJsonb(PG_GETARG_DATUM(0));
	LOCAL_FCINFO(inner, 2);
	InitFunctionCallInfoData(*inner, nullptr, 2, PG_GET_COLLATION(), nullptr, nullptr);
	inner->args[0].value = PointerGetDatum(j);
	inner->args[0].isnull = false;
	inner->args[1].value = PG_GETARG_DATUM(1);
	inner->args[1].isnull = false;
	Datum r = field(inner);
	bool isnull = inner->isnull;
	FreeJsonb(j);
	if (isnull)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(r);
}

} // namespace

/* ejsonb_in(cstring): parses JSON as jsonb does and seals it. */
VV_FUNCTION(ejsonb_in)
{
	if (type::CiphertextIo())
	{
		struct varlena *v = type::EnvelopeFromText(PG_GETARG_CSTRING(0), ValueKind::kJson);
		if (v != nullptr)
			PG_RETURN_POINTER(v);
	}
	auth::NotePlaintext(); /* jsonb's parse errors quote the input */
	Datum j = DirectFunctionCall1(jsonb_in, PG_GETARG_DATUM(0));
	PG_RETURN_DATUM(SealJsonb(j));
}

/* ejsonb_out(ejsonb): decrypts (read access required) and prints as jsonb does. */
VV_FUNCTION(ejsonb_out)
{
	if (type::CiphertextIo())
		PG_RETURN_CSTRING(type::EnvelopeToText(PG_GETARG_DATUM(0), ValueKind::kJson));
	Jsonb *j = OpenJsonb(PG_GETARG_DATUM(0));
	Datum out = DirectFunctionCall1(jsonb_out, PointerGetDatum(j));
	FreeJsonb(j);
	PG_RETURN_DATUM(out);
}

/* ejsonb_recv(internal): jsonb's binary input, sealed. */
VV_FUNCTION(ejsonb_recv)
{
	if (type::CiphertextIo())
		PG_RETURN_POINTER(type::EnvelopeFromBinary(
			reinterpret_cast<StringInfo>(PG_GETARG_POINTER(0)), ValueKind::kJson));
	auth::NotePlaintext();
	Datum j = DirectFunctionCall1(jsonb_recv, PG_GETARG_DATUM(0));
	PG_RETURN_DATUM(SealJsonb(j));
}

/* ejsonb_send(ejsonb): decrypts and sends jsonb's binary form. */
VV_FUNCTION(ejsonb_send)
{
	if (type::CiphertextIo())
		PG_RETURN_BYTEA_P(type::EnvelopeToBinary(PG_GETARG_DATUM(0), ValueKind::kJson));
	Jsonb *j = OpenJsonb(PG_GETARG_DATUM(0));
	Datum out = DirectFunctionCall1(jsonb_send, PointerGetDatum(j));
	FreeJsonb(j);
	PG_RETURN_DATUM(out);
}

/* ejsonb(jsonb): the cast from jsonb. */
VV_FUNCTION(ejsonb_from_jsonb)
{
	PG_RETURN_DATUM(SealJsonb(PG_GETARG_DATUM(0)));
}

/* jsonb(ejsonb): the cast to jsonb. */
VV_FUNCTION(ejsonb_to_jsonb)
{
	PG_RETURN_POINTER(OpenJsonb(PG_GETARG_DATUM(0), false));
}

/* ejsonb -> text: the field as jsonb (NULL when absent). */
VV_FUNCTION(ejsonb_object_field)
{
	return FieldOfDecrypted(fcinfo, jsonb_object_field);
}

/* ejsonb ->> text: the field as text (NULL when absent). */
VV_FUNCTION(ejsonb_object_field_text)
{
	return FieldOfDecrypted(fcinfo, jsonb_object_field_text);
}

/* ejsonb @> jsonb: containment on the decrypted document. */
VV_FUNCTION(ejsonb_contains)
{
	Jsonb *j = OpenJsonb(PG_GETARG_DATUM(0));
	bool r =
		DatumGetBool(DirectFunctionCall2(jsonb_contains, PointerGetDatum(j), PG_GETARG_DATUM(1)));
	FreeJsonb(j);
	PG_RETURN_BOOL(r);
}
