/* codec.cpp — sealing and opening envelopes with access checks (see codec.h). */
#include "type/codec.h"

#include "core/half.h"
#include "core/secure.h"
#include "core/vector_format.h"

#include <cfloat>
#include <cinttypes>
#include <cmath>
#include <cstring>

#include "auth/auth.h"
#include "keys/keys.h"
#include "pg/guard.h"
#include "pg/secret.h"
#include "vault/vault.h"

extern "C"
{
#include "catalog/pg_type.h"
#include "access/htup_details.h"
#include "common/base64.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
}

namespace vector_vault::type
{

namespace
{
bool g_ciphertext_io = false;
constexpr const char kPrefix[] = "vve1:";
constexpr size_t kPrefixLen = sizeof(kPrefix) - 1;

/* Copies validated envelope bytes into a fresh varlena. */
struct varlena *
EnvelopeDatum(const uint8_t *data, size_t size, ValueKind kind)
{
	EnvelopeHeader h;
	Status s = DecodeEnvelopeHeader(data, size, &h);
	if (!s.ok())
		pg::ThrowStatus(s, "invalid ciphertext input",
						"Ciphertext input must be an envelope written by vector_vault.");
	if (h.kind != kind)
		ereport(ERROR,
				(errcode(pg::kSqlStateCorrupt), errmsg("encrypted value is of type %s, not %s",
													   KindTypeName(h.kind), KindTypeName(kind))));
	struct varlena *out = static_cast<struct varlena *>(palloc(VARHDRSZ + size));
	SET_VARSIZE(out, VARHDRSZ + size);
	memcpy(VARDATA(out), data, size);
	return out;
}
} // namespace

/* Defines vector_vault.ciphertext_io. */
void
DefineGucs()
{
	DefineCustomBoolVariable(
		"vector_vault.ciphertext_io",
		"Encrypted types read and write their ciphertext envelopes instead of plaintext.",
		"For pg_dump and restore: dumps then hold only ciphertext; restore needs the same keyring.",
		&g_ciphertext_io, false, PGC_USERSET, 0, nullptr, nullptr, nullptr);
}

/* True in ciphertext I/O mode. */
bool
CiphertextIo()
{
	return g_ciphertext_io;
}

/* "vve1:" + base64 of the envelope. */
char *
EnvelopeToText(Datum d, ValueKind kind)
{
	EnvelopeRef ref;
	ReadEnvelope(d, kind, &ref);
	int len = pg_b64_enc_len(static_cast<int>(ref.size));
	char *out = static_cast<char *>(palloc(kPrefixLen + len + 1));
	memcpy(out, kPrefix, kPrefixLen);
	int n = pg_b64_encode(reinterpret_cast<const char *>(ref.data), static_cast<int>(ref.size),
						  out + kPrefixLen, len);
	if (n < 0)
		elog(ERROR, "could not encode ciphertext");
	out[kPrefixLen + n] = '\0';
	return out;
}

/* Decodes the base64 after "vve1:" into *raw (palloc'd): the byte count, -1 when it is not
 * base64, -2 (and *raw nullptr) when text lacks the prefix. */
static int
DecodeCiphertextText(const char *text, char **raw)
{
	*raw = nullptr;
	if (strncmp(text, kPrefix, kPrefixLen) != 0)
		return -2;
	const char *b64 = text + kPrefixLen;
	int inlen = static_cast<int>(strlen(b64));
	int cap = pg_b64_dec_len(inlen);
	*raw = static_cast<char *>(palloc(cap + 1));
	return pg_b64_decode(b64, inlen, *raw, cap);
}

/* Parses "vve1:" + base64. */
struct varlena *
EnvelopeFromText(const char *text, ValueKind kind)
{
	char *raw;
	int n = DecodeCiphertextText(text, &raw);
	if (n == -2)
		return nullptr;
	if (n < 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
						errmsg("invalid ciphertext input for type %s", KindTypeName(kind)),
						errdetail("The text after \"vve1:\" is not valid base64.")));
	struct varlena *out =
		EnvelopeDatum(reinterpret_cast<uint8_t *>(raw), static_cast<size_t>(n), kind);
	pfree(raw);
	return out;
}

/* Refuses "vve1:<base64 envelope>" as plaintext input. */
void
RefuseCiphertextAsPlaintext(const char *text, ValueKind kind)
{
	if (strncmp(text, kPrefix, kPrefixLen) != 0)
		return;
	size_t inlen = strlen(text + kPrefixLen);
	if (inlen < 4 || inlen % 4 != 0)
		return;
	char *raw;
	int n = DecodeCiphertextText(text, &raw);
	pfree(raw);
	if (n < static_cast<int>(kEnvelopeOverhead))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("input for type %s is vector_vault ciphertext", KindTypeName(kind)),
			 errdetail("Text input that starts with \"vve1:\" followed by a sealed value is "
					   "accepted only with vector_vault.ciphertext_io = on."),
			 errhint("To restore a dump taken with ciphertext I/O, restore with "
					 "PGOPTIONS='-c vector_vault.ciphertext_io=on'. To store this text itself, "
					 "cast it: '...'::text::etext.")));
}

/* The raw envelope as bytea. */
bytea *
EnvelopeToBinary(Datum d, ValueKind kind)
{
	EnvelopeRef ref;
	ReadEnvelope(d, kind, &ref);
	bytea *out = static_cast<bytea *>(palloc(VARHDRSZ + ref.size));
	SET_VARSIZE(out, VARHDRSZ + ref.size);
	memcpy(VARDATA(out), ref.data, ref.size);
	return out;
}

/* Reads a raw envelope from a receive buffer. */
struct varlena *
EnvelopeFromBinary(StringInfo buf, ValueKind kind)
{
	size_t n = static_cast<size_t>(buf->len - buf->cursor);
	const uint8_t *data =
		reinterpret_cast<const uint8_t *>(pq_getmsgbytes(buf, static_cast<int>(n)));
	return EnvelopeDatum(data, n, kind);
}

/* Name of an encrypted type. */
const char *
KindTypeName(ValueKind kind)
{
	switch (kind)
	{
		case ValueKind::kVector:
			return "evector";
		case ValueKind::kText:
			return "etext";
		case ValueKind::kJson:
			return "ejsonb";
		case ValueKind::kHalfVector:
			return "ehalfvec";
		case ValueKind::kSparseVector:
			return "esparsevec";
	}
	return "encrypted value";
}

/* Seals plaintext under the current vault. */
struct varlena *
SealValue(ValueKind kind, const void *pt, size_t len)
{
	auth::RequireSecureConnection("encrypting a value");
	const vault::VaultInfo *v = vault::CurrentVault();
	vault::RequireLevel(v, vault::Level::kRead, "encrypt values");
	return SealValueInVault(kind, v, pt, len);
}

/* Seals plaintext under a vault's current key version. */
struct varlena *
SealValueInVault(ValueKind kind, const vault::VaultInfo *v, const void *pt, size_t len)
{
	auth::NotePlaintext();
	if (len > kMaxEnvelopePayload)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("%s value is too large (%zu bytes)", KindTypeName(kind), len)));
	EnvelopeHeader h;
	h.kind = kind;
	h.vault_id = v->id;
	h.key_version = v->key_version;
	h.payload_len = static_cast<uint32_t>(len);
	keys::NoteSeal(v->id, v->key_version);
	const uint8_t *key = keys::DataKey(v->id, v->key_version);
	size_t total = VARHDRSZ + EnvelopeSize(len);
	struct varlena *out = static_cast<struct varlena *>(palloc(total));
	SET_VARSIZE(out, total);
	Status s = SealEnvelope(h, key, static_cast<const uint8_t *>(pt),
							reinterpret_cast<uint8_t *>(VARDATA(out)));
	if (!s.ok())
		pg::ThrowStatus(s, "could not encrypt value", nullptr);
	return out;
}

/* Detoasts and validates an envelope (any_vector: evector or ehalfvec both accepted). */
void
ReadEnvelope(Datum d, ValueKind kind, EnvelopeRef *out, bool any_vector)
{
	struct varlena *v = PG_DETOAST_DATUM_PACKED(d);
	out->data = reinterpret_cast<const uint8_t *>(VARDATA_ANY(v));
	out->size = VARSIZE_ANY_EXHDR(v);
	Status s = DecodeEnvelopeHeader(out->data, out->size, &out->header);
	if (!s.ok())
		pg::ThrowStatus(s, "invalid encrypted value",
						"The stored value is damaged or was not written by vector_vault.");
	if (any_vector &&
		(out->header.kind == ValueKind::kVector || out->header.kind == ValueKind::kHalfVector))
		return;
	if (out->header.kind != kind)
		ereport(ERROR, (errcode(pg::kSqlStateCorrupt),
						errmsg("encrypted value is of type %s, not %s",
							   KindTypeName(out->header.kind), KindTypeName(kind))));
}

/* Access check, then decryption. */
void
OpenValue(const EnvelopeRef &ref, uint8_t *pt)
{
	auth::NotePlaintext();
	const vault::VaultInfo *v = vault::LookupVault(ref.header.vault_id);
	if (v == nullptr)
		ereport(ERROR, (errcode(pg::kSqlStateKeyUnavailable),
						errmsg("value belongs to vault %016" PRIx64
							   ", which does not exist in this database",
							   ref.header.vault_id),
						errhint("The value was copied from another database or its vault's "
								"catalog row was removed.")));
	if (v->dropped)
		ereport(ERROR,
				(errcode(pg::kSqlStateKeyUnavailable),
				 errmsg("vault \"%s\" has been dropped; its values can no longer be decrypted",
						NameStr(v->name)),
				 errhint("Delete the rows that still hold its ciphertext.")));
	vault::RequireLevel(v, vault::Level::kRead, "decrypt values");
	auth::RequireSecureConnection("decrypting a value");
	const uint8_t *key = keys::DataKey(v->id, ref.header.key_version);
	Status s = OpenEnvelope(ref.data, ref.size, key, pt);
	if (!s.ok())
		pg::ThrowStatus(s, nullptr,
						"The stored value was modified or damaged; restore it from a backup.");
}

/* Decryption for index maintenance: key lookup and authentication, no principal check. */
void
OpenValueForIndex(const EnvelopeRef &ref, uint8_t *pt)
{
	auth::NotePlaintext();
	const uint8_t *key = keys::DataKey(ref.header.vault_id, ref.header.key_version);
	Status s = OpenEnvelope(ref.data, ref.size, key, pt);
	if (!s.ok())
		pg::ThrowStatus(s, nullptr,
						"The stored value was modified or damaged; restore it from a backup.");
}

/* See codec.h. */
void
PeekEnvelope(Datum d, uint64 *vault_id, uint32 *key_version)
{
	struct varlena *v = PG_DETOAST_DATUM_SLICE(d, 0, static_cast<int32>(kEnvelopeHeaderBytes));
	if (VARSIZE_ANY_EXHDR(v) < kEnvelopeHeaderBytes)
		ereport(ERROR, (errcode(pg::kSqlStateCorrupt), errmsg("encrypted value is truncated")));
	const uint8_t *h = reinterpret_cast<const uint8_t *>(VARDATA_ANY(v));
	if (h[0] != kEnvelopeFormat)
		ereport(ERROR, (errcode(pg::kSqlStateCorrupt),
						errmsg("unsupported encrypted value format %u", h[0])));
	*key_version = GetU32(h + 4);
	*vault_id = GetU64(h + 8);
}

/* Dimensions of an evector (4 bytes each) or ehalfvec (2 bytes each) from its header. */
uint32
VectorDimsOf(const EnvelopeRef &ref)
{
	return ref.header.payload_len /
		   (ref.header.kind == ValueKind::kHalfVector ? sizeof(uint16_t) : sizeof(float));
}

/* Detoasts and validates an envelope that must be an evector or an ehalfvec. */
void
ReadVectorEnvelope(Datum d, EnvelopeRef *out)
{
	ReadEnvelope(d, ValueKind::kVector, out, true);
}

/* Decrypts an evector or ehalfvec into floats; halves are widened (exactly) and their plaintext
 * zeroed, so only the float copy the caller owns remains. */
static void
OpenFloats(const EnvelopeRef &ref, float *out, bool for_index)
{
	if (ref.header.kind != ValueKind::kHalfVector)
	{
		if (for_index)
			OpenValueForIndex(ref, reinterpret_cast<uint8_t *>(out));
		else
			OpenValue(ref, reinterpret_cast<uint8_t *>(out));
		return;
	}
	uint32 n = VectorDimsOf(ref);
	uint16_t *h = static_cast<uint16_t *>(pg::AllocSecret(ref.header.payload_len));
	if (for_index)
		OpenValueForIndex(ref, reinterpret_cast<uint8_t *>(h));
	else
		OpenValue(ref, reinterpret_cast<uint8_t *>(h));
	HalvesToFloats(h, n, out);
	pg::FreeSecret(h);
}

/* Access check, decryption, widening. */
void
OpenVectorFloats(const EnvelopeRef &ref, float *out)
{
	OpenFloats(ref, out, false);
}

/* Decryption and widening for index maintenance (no principal check, as OpenValueForIndex). */
void
OpenVectorFloatsForIndex(const EnvelopeRef &ref, float *out)
{
	OpenFloats(ref, out, true);
}

/* Narrows floats to halves and seals them as an ehalfvec; on an element out of half range,
 * zeroes v (zero_len bytes, the caller's plaintext) and the halves, then raises 22003. */
struct varlena *
SealAsHalves(float *v, size_t dims, size_t zero_len)
{
	uint16_t *h = static_cast<uint16_t *>(pg::AllocSecret(sizeof(uint16_t) * dims));
	Status s = FloatsToHalves(v, dims, h);
	if (!s.ok())
	{
		SecureZero(v, zero_len);
		pg::FreeSecret(h);
		ereport(ERROR, (errcode(s.code() == Code::kOutOfRange ? ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE
															  : ERRCODE_DATA_EXCEPTION),
						errmsg("%s", s.message()),
						errhint("ehalfvec elements must be finite and at most 65504 in magnitude; "
								"use evector for a wider range.")));
	}
	struct varlena *out = SealValue(ValueKind::kHalfVector, h, sizeof(uint16_t) * dims);
	pg::FreeSecret(h);
	return out;
}

/* See codec.h. */
PlainVector
OpenVector(Datum d, ValueKind kind)
{
	EnvelopeRef ref;
	ReadEnvelope(d, kind, &ref);
	return OpenVector(ref);
}

/* See codec.h. */
PlainVector
OpenVector(const EnvelopeRef &ref)
{
	PlainVector p;
	p.dims = VectorDimsOf(ref);
	p.v = AllocVector(p.dims);
	OpenVectorFloats(ref, p.v);
	return p;
}

/* See codec.h. */
void
FreeVector(PlainVector p)
{
	pg::FreeSecret(p.v);
}

/* See codec.h. */
float *
AllocVector(uint32 dims)
{
	return static_cast<float *>(pg::AllocSecret(sizeof(float) * (dims > 0 ? dims : 1)));
}

/* See codec.h. */
Datum
SealVectorAndFree(float *v, uint32 dims, ValueKind kind)
{
	struct varlena *out = kind == ValueKind::kHalfVector
							  ? SealAsHalves(v, dims, sizeof(float) * dims)
							  : SealValue(ValueKind::kVector, v, sizeof(float) * dims);
	pg::FreeSecret(v);
	return PointerGetDatum(out);
}

/* See codec.h. */
float
ArrayElementToFloat(Datum d, Oid elemtype, int i, const char *type_name)
{
	double x = 0;
	switch (elemtype)
	{
		case FLOAT4OID:
			x = DatumGetFloat4(d);
			break;
		case FLOAT8OID:
			x = DatumGetFloat8(d);
			break;
		case INT4OID:
			x = DatumGetInt32(d);
			break;
		case NUMERICOID:
			/* No overflow error (Postgres' own would quote the value): out of range is +-inf. */
			x = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow, d));
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("cannot convert an array of type %s to %s", format_type_be(elemtype),
							type_name),
					 errhint("Use an array of real, double precision, integer or numeric.")));
	}
	if (!std::isfinite(x) || std::fabs(x) > static_cast<double>(FLT_MAX))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("element %d of the array is not a finite real number", i + 1),
				 errhint("%s elements must be finite and within the range of real.", type_name)));
	return static_cast<float>(x);
}

/* See codec.h. */
char *
VectorOutText(const PlainVector &p, const char *type_name)
{
	size_t cap = VectorTextCapacity(p.dims);
	char *out = static_cast<char *>(palloc(cap));
	if (FormatVectorTextBuf(p.v, p.dims, out, cap) == 0)
		elog(ERROR, "could not format %s", type_name);
	return out;
}

/* See codec.h. */
int32
DimsTypmodIn(ArrayType *typmods, const char *type_name, uint32 max_dims)
{
	int n;
	int32 *tl = ArrayGetIntegerTypmods(typmods, &n);
	if (n != 1)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid type modifier"),
						errhint("Declare %s(n) with one dimension count.", type_name)));
	if (tl[0] < 1)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("dimensions for type %s must be at least 1", type_name)));
	if (static_cast<uint32>(tl[0]) > max_dims)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("dimensions for type %s cannot exceed %u", type_name, max_dims)));
	return tl[0];
}

/* See codec.h. */
void
ThrowVectorParseError(const Status &s, const char *type_name, const char *hint)
{
	int code = s.code() == Code::kOutOfRange ? ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE
											 : ERRCODE_INVALID_TEXT_REPRESENTATION;
	if (s.code() == Code::kOutOfRange && strstr(s.message(), "cannot have more than") != nullptr)
		code = ERRCODE_PROGRAM_LIMIT_EXCEEDED;
	ereport(ERROR, (errcode(code), errmsg("invalid input for type %s", type_name),
					errdetail("%s.", s.message()), errhint("%s", hint)));
}

/* See codec.h. */
uint32
TextVectorCapacity(const char *text)
{
	uint32 commas = 0;
	for (const char *c = text; *c != '\0' && commas < kMaxVectorDims; c++)
		commas += *c == ',';
	return Min(commas + 1, static_cast<uint32>(kMaxVectorDims));
}

/* See codec.h. */
void
CheckDimsTypmod(int64 dims, int32 typmod)
{
	if (typmod != -1 && dims != typmod)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("expected %d dimensions, not %" PRId64, typmod, dims)));
}

/* See codec.h. */
struct varlena *
DenseVectorIn(const char *text, int32 typmod, ValueKind kind)
{
	const size_t width = kind == ValueKind::kHalfVector ? sizeof(uint16_t) : sizeof(float);
	if (CiphertextIo())
	{
		struct varlena *v = EnvelopeFromText(text, kind);
		if (v != nullptr)
		{
			CheckDimsTypmod(static_cast<int64>((VARSIZE(v) - VARHDRSZ - kEnvelopeOverhead) / width),
							typmod);
			return v;
		}
	}
	uint32 cap = TextVectorCapacity(text);
	float *buf = AllocVector(cap);
	size_t dims = 0;
	Status s = ParseVectorText(text, buf, cap, &dims);
	if (!s.ok())
	{
		pg::FreeSecret(buf);
		ThrowVectorParseError(
			s, KindTypeName(kind),
			psprintf("Write vectors as '[1,2,3]': finite numbers%s, 1 to %u dimensions.",
					 kind == ValueKind::kHalfVector ? " up to 65504 in magnitude" : "",
					 kMaxVectorDims));
	}
	if (typmod != -1 && static_cast<int64>(dims) != typmod)
		pg::FreeSecret(buf); /* zeroed before the error below */
	CheckDimsTypmod(static_cast<int64>(dims), typmod);
	struct varlena *out = kind == ValueKind::kHalfVector
							  ? SealAsHalves(buf, dims, cap * sizeof(float))
							  : SealValue(ValueKind::kVector, buf, dims * sizeof(float));
	pg::FreeSecret(buf);
	return out;
}

/* True when type t exists and its (unqualified) name is name. */
static bool
TypeNamed(Oid t, const char *name)
{
	if (!OidIsValid(t))
		return false;
	HeapTuple tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(t));
	if (!HeapTupleIsValid(tup))
		return false;
	bool same = strcmp(NameStr(reinterpret_cast<Form_pg_type>(GETSTRUCT(tup))->typname), name) == 0;
	ReleaseSysCache(tup);
	return same;
}

/* See codec.h. */
bytea *
PgvectorArgBinary(FunctionCallInfo fcinfo, int argno, const char *type_name)
{
	Oid argtype = get_fn_expr_argtype(fcinfo->flinfo, argno);
	if (!TypeNamed(argtype, type_name))
		return nullptr;
	Oid sendfn = InvalidOid;
	bool varlena = false;
	getTypeBinaryOutputInfo(argtype, &sendfn, &varlena);
	const char *sendname = OidIsValid(sendfn) ? get_func_name(sendfn) : nullptr;
	if (sendname == nullptr || strcmp(sendname, psprintf("%s_send", type_name)) != 0)
		return nullptr;
	return OidSendFunctionCall(sendfn, PG_GETARG_DATUM(argno));
}

/* See codec.h. */
void
FreePgvectorBinary(bytea *bin)
{
	SecureZero(VARDATA(bin), VARSIZE(bin) - VARHDRSZ);
	pfree(bin);
}

/* See codec.h. */
void
ThrowNotPgvector(FunctionCallInfo fcinfo, int argno, const char *fn, const char *expected,
				 const char *hint)
{
	Oid argtype = get_fn_expr_argtype(fcinfo->flinfo, argno);
	ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
					errmsg("%s expects a value of pgvector's type %s, not %s", fn, expected,
						   OidIsValid(argtype) ? format_type_be(argtype) : "an unknown type"),
					errhint("%s", hint)));
}

/* See codec.h. */
uint16_t *
ParsePgHalfvec(bytea *bin, uint32 *dims)
{
	size_t len = VARSIZE(bin) - VARHDRSZ;
	const uint8_t *data = reinterpret_cast<const uint8_t *>(VARDATA(bin));
	/* int16 dimensions: the header bounds the buffer only when the length agrees with it */
	size_t cap = kMaxVectorDims;
	if (len >= 4)
	{
		size_t d = (static_cast<size_t>(data[0]) << 8) | data[1];
		if (d >= 1 && d <= kMaxVectorDims && len == HalfVectorBinarySize(d))
			cap = d;
	}
	uint16_t *h = static_cast<uint16_t *>(pg::AllocSecret(sizeof(uint16_t) * cap));
	size_t n = 0;
	Status s = ParseHalfVectorBinary(data, len, h, cap, &n);
	FreePgvectorBinary(bin);
	if (!s.ok())
	{
		pg::FreeSecret(h);
		ereport(ERROR, (errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
						errmsg("could not read the pgvector halfvec value"),
						errdetail("%s.", s.message())));
	}
	*dims = static_cast<uint32>(n);
	return h;
}

} // namespace vector_vault::type
