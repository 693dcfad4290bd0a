/*
 * etext.cpp — encrypted text. The payload is the text's bytes in the server encoding; input,
 * receive and the cast from text seal them, output, send and the cast to text open them.
 */
#include "core/envelope.h"
#include "core/secure.h"

#include <cstring>

#include "auth/auth.h"
#include "pg/guard.h"
#include "pg/secret.h"
#include "type/codec.h"

extern "C"
{
#include "libpq/pqformat.h"
#include "mb/pg_wchar.h"
}

using namespace vector_vault;
using type::EnvelopeRef;

namespace
{

/* Decrypts an etext datum with a trailing NUL; *len excludes the NUL. With secret, the buffer is
 * from pg::AllocSecret (free it with pg::FreeSecret; zeroed if an error comes first); without,
 * it is plain palloc'd memory to be handed to Postgres as a result. */
char *
OpenText(Datum d, size_t *len, bool secret)
{
	EnvelopeRef ref;
	type::ReadEnvelope(d, ValueKind::kText, &ref);
	size_t n = ref.header.payload_len + 1;
	char *buf = static_cast<char *>(secret ? pg::AllocSecret(n) : palloc(n));
	type::OpenValue(ref, reinterpret_cast<uint8_t *>(buf));
	buf[ref.header.payload_len] = '\0';
	*len = ref.header.payload_len;
	return buf;
}

} // namespace

/* etext_in(cstring): seals the text. */
VV_FUNCTION(etext_in)
{
	char *s = PG_GETARG_CSTRING(0);
	if (type::CiphertextIo())
	{
		struct varlena *v = type::EnvelopeFromText(s, ValueKind::kText);
		if (v != nullptr)
			PG_RETURN_POINTER(v);
	}
	else
		type::RefuseCiphertextAsPlaintext(s, ValueKind::kText);
	PG_RETURN_POINTER(type::SealValue(ValueKind::kText, s, strlen(s)));
}

/* etext_out(etext): decrypts (read access required). */
VV_FUNCTION(etext_out)
{
	if (type::CiphertextIo())
		PG_RETURN_CSTRING(type::EnvelopeToText(PG_GETARG_DATUM(0), ValueKind::kText));
	size_t len;
	PG_RETURN_CSTRING(OpenText(PG_GETARG_DATUM(0), &len, false));
}

/* etext_recv(internal): reads text in the client encoding and seals it. */
VV_FUNCTION(etext_recv)
{
	StringInfo buf = reinterpret_cast<StringInfo>(PG_GETARG_POINTER(0));
	if (type::CiphertextIo())
		PG_RETURN_POINTER(type::EnvelopeFromBinary(buf, ValueKind::kText));
	auth::NotePlaintext(); /* encoding conversion errors quote bytes */
	int nbytes;
	char *raw = pq_getmsgtext(buf, buf->len - buf->cursor, &nbytes);
	/* Moved into a secret buffer before SealValue, which can raise (pg/secret.h). */
	char *s = static_cast<char *>(pg::AllocSecret(static_cast<size_t>(nbytes)));
	memcpy(s, raw, static_cast<size_t>(nbytes));
	SecureZero(raw, static_cast<size_t>(nbytes));
	pfree(raw);
	struct varlena *out = type::SealValue(ValueKind::kText, s, static_cast<size_t>(nbytes));
	pg::FreeSecret(s);
	PG_RETURN_POINTER(out);
}

/* etext_send(etext): decrypts and sends as text. */
VV_FUNCTION(etext_send)
{
	if (type::CiphertextIo())
		PG_RETURN_BYTEA_P(type::EnvelopeToBinary(PG_GETARG_DATUM(0), ValueKind::kText));
	size_t len;
	auth::NotePlaintext(); /* an unconvertible character is quoted by the conversion error */
	char *s = OpenText(PG_GETARG_DATUM(0), &len, true);
	StringInfoData buf;
	pq_begintypsend(&buf);
	pq_sendtext(&buf, s, static_cast<int>(len)); /* raises on an unconvertible character */
	pg::FreeSecret(s);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* etext(text): the cast from text. */
VV_FUNCTION(etext_from_text)
{
	text *t = PG_GETARG_TEXT_PP(0);
	PG_RETURN_POINTER(type::SealValue(ValueKind::kText, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)));
}

/* text(etext): the cast to text. */
VV_FUNCTION(etext_to_text)
{
	size_t len;
	char *s = OpenText(PG_GETARG_DATUM(0), &len, true);
	text *t = cstring_to_text_with_len(s, static_cast<int>(len));
	pg::FreeSecret(s);
	PG_RETURN_TEXT_P(t);
}
