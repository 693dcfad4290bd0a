/*
 * codec.h — where a value is encrypted and decrypted.
 *
 * Every encrypted SQL type (evector, etext, ejsonb) goes through these two doors:
 *   SealValue()  — input, receive and casts into the type: plaintext bytes are sealed under the
 *                  current vault's current data key before any tuple holding them exists.
 *   OpenValue()  — output, send, casts out of the type and distance functions: the envelope is
 *                  validated, the principal's read right on the value's own vault is checked,
 *                  and only then is it decrypted.
 * The envelope format is core/envelope.h; the key comes from keys/keys.h.
 */
#pragma once

#include "core/envelope.h"

#include "pg/pg.h"
#include "vault/vault.h"

extern "C"
{
#include "lib/stringinfo.h"
#include "utils/array.h"
}

namespace vector_vault::type
{

/* A detoasted, header-validated envelope datum. */
struct EnvelopeRef
{
	const uint8_t *data; /* envelope bytes (after the varlena header) */
	size_t size;
	EnvelopeHeader header;
};

/* Seals pt (len bytes) under the current vault as a palloc'd varlena envelope. */
struct varlena *SealValue(ValueKind kind, const void *pt, size_t len);

/* Seals pt under a given vault's current key version (re-encryption; caller checked rights). */
struct varlena *SealValueInVault(ValueKind kind, const vault::VaultInfo *v, const void *pt,
								 size_t len);

/* Detoasts and validates an envelope of the expected kind (no decryption, no access check). */
void ReadEnvelope(Datum d, ValueKind kind, EnvelopeRef *out, bool any_vector = false);

/* Detoasts and validates an envelope that must be an evector or an ehalfvec (either). */
void ReadVectorEnvelope(Datum d, EnvelopeRef *out);

/* Dimensions of an evector or ehalfvec envelope, from its authenticated header. */
uint32 VectorDimsOf(const EnvelopeRef &ref);

/* Checks read access and decrypts an evector or ehalfvec into VectorDimsOf(ref) floats (an
 * ehalfvec's halves are widened exactly; their plaintext is zeroed before return). */
void OpenVectorFloats(const EnvelopeRef &ref, float *out);

/* Narrows dims floats to halves and seals them as an ehalfvec under the current vault; a value
 * outside half range zeroes v (zero_len bytes) and raises 22003. */
struct varlena *SealAsHalves(float *v, size_t dims, size_t zero_len);

/* OpenVectorFloats without a principal check, for the index only (see OpenValueForIndex). */
void OpenVectorFloatsForIndex(const EnvelopeRef &ref, float *out);

/* The vault id and key version in an encrypted value's header, read from its first bytes only
 * (no full detoast, no decryption, no access check); 22V01 when truncated or of another format. */
void PeekEnvelope(Datum d, uint64 *vault_id, uint32 *key_version);

/* Checks read access to the value's vault and decrypts into pt (header.payload_len bytes). */
void OpenValue(const EnvelopeRef &ref, uint8_t *pt);

/*
 * Decrypts without a principal check. Only the index uses this, to build and maintain its
 * ciphertext-only pages from heap values; nothing it decrypts is returned to the caller.
 */
void OpenValueForIndex(const EnvelopeRef &ref, uint8_t *pt);

/*
 * Ciphertext I/O (vector_vault.ciphertext_io = on): output and send emit the envelope itself
 * ("vve1:" + base64 in text, raw bytes in binary) and input and receive accept it back, so
 * pg_dump / restore and logical copies move ciphertext without ever decrypting it.
 */
bool CiphertextIo();

/* The envelope of d as "vve1:<base64>" (ciphertext I/O). */
char *EnvelopeToText(Datum d, ValueKind kind);

/* Parses "vve1:<base64>" into a validated envelope datum; nullptr when text lacks the prefix. */
struct varlena *EnvelopeFromText(const char *text, ValueKind kind);

/* Raises 22P02 when text input outside ciphertext I/O is itself a sealed value ("vve1:" and a
 * whole envelope in base64): a dump restored without vector_vault.ciphertext_io would otherwise
 * seal the ciphertext as if it were the plaintext. */
void RefuseCiphertextAsPlaintext(const char *text, ValueKind kind);

/* The raw envelope of d as bytea (ciphertext I/O send). */
bytea *EnvelopeToBinary(Datum d, ValueKind kind);

/* Reads a raw envelope from a receive buffer (ciphertext I/O receive). */
struct varlena *EnvelopeFromBinary(StringInfo buf, ValueKind kind);

/* Defines vector_vault.ciphertext_io. */
void DefineGucs();

/* Installs the DDL guard's CREATE INDEX CONCURRENTLY / REINDEX prechecks (ddl_guard.cpp). */
void RegisterDdlHook();

/* Name of an encrypted type, for messages. */
const char *KindTypeName(ValueKind kind);

/* Which distance a SQL distance function or operator computes (for the index's metrics see
 * core/metric.h). */
enum class SqlDistance
{
	kL2,
	kInnerProduct,
	kNegInnerProduct,
	kCosine,
	kL1
};

/* A decrypted evector or ehalfvec as floats, in a secret buffer (pg/secret.h). */
struct PlainVector
{
	float *v;
	uint32 dims;
};

/* Validates d (of kind), checks the read right, decrypts (halves widened) into secret memory. */
PlainVector OpenVector(Datum d, ValueKind kind = ValueKind::kVector);

/* The same from an envelope already read (ReadEnvelope with the kind the caller expects), so a
 * caller that needs the header first (dimensions) detoasts the value once. */
PlainVector OpenVector(const EnvelopeRef &ref);

/* Zeroes and releases an OpenVector result. */
void FreeVector(PlainVector p);

/* dims floats of secret memory for a result that SealVectorAndFree will seal. */
float *AllocVector(uint32 dims);

/* Seals dims floats (from AllocVector or OpenVector) as kind under the session's vault — an
 * evector, or an ehalfvec rounded to halves (22003 beyond half range) — then zeroes and releases
 * them. */
Datum SealVectorAndFree(float *v, uint32 dims, ValueKind kind = ValueKind::kVector);

/* One element of an array of real, double precision, integer or numeric as a finite float4 (the
 * casts from arrays to type_name); errors name the element's position, never its value. */
float ArrayElementToFloat(Datum d, Oid elemtype, int i, const char *type_name);

/* Floats a text vector can hold: one more than its commas, at most kMaxVectorDims (parse
 * buffers are sized by the input, not by the type's limit). */
uint32 TextVectorCapacity(const char *text);

/* Raises 22000 unless dims matches a column's declared dimensions (typmod -1: any). */
void CheckDimsTypmod(int64 dims, int32 typmod);

/* The text input of a dense vector type (kind evector or ehalfvec): pgvector's text, parsed into
 * a secret buffer, checked against typmod and sealed as kind; with ciphertext I/O an envelope
 * printed by the output function is taken as it is. */
struct varlena *DenseVectorIn(const char *text, int32 typmod, ValueKind kind);

/* pgvector's text form of an opened vector (palloc'd; type_name for the error). */
char *VectorOutText(const PlainVector &p, const char *type_name);

/* The typmod of type_name(n) from its cstring[] (1 to max_dims dimensions). */
int32 DimsTypmodIn(ArrayType *typmods, const char *type_name, uint32 max_dims = kMaxVectorDims);

/*
 * pgvector interoperation without linking against pgvector (or needing it installed): its types
 * are recognised at run time by name and by their send functions (<name>_send), and values are
 * read through that binary form, which is the one our own receive functions parse.
 */

/* Argument argno's binary form when its type is pgvector's type_name ("vector", "halfvec",
 * "sparsevec"), else nullptr. The bytes are plaintext: FreePgvectorBinary zeroes them. */
bytea *PgvectorArgBinary(FunctionCallInfo fcinfo, int argno, const char *type_name);

/* Zeroes and frees a PgvectorArgBinary result. */
void FreePgvectorBinary(bytea *bin);

/* Raises 42804: fn expects a value of pgvector's type expected, not argument argno's type. */
[[noreturn]] void ThrowNotPgvector(FunctionCallInfo fcinfo, int argno, const char *fn,
								   const char *expected, const char *hint);

/* Parses pgvector's halfvec binary form into dims halves of secret memory; frees bin (zeroed)
 * either way and raises 22P03 for malformed bytes. */
uint16_t *ParsePgHalfvec(bytea *bin, uint32 *dims);

/* Seals argument argno, a pgvector halfvec, as an ehalfvec under v (nullptr: the session's vault,
 * with its usual checks); 42804 naming fn for another type (ehalfvec.cpp). */
struct varlena *SealPgHalfvec(FunctionCallInfo fcinfo, int argno, const vault::VaultInfo *v,
							  const char *fn);

/* Seals argument argno, a pgvector sparsevec, as an esparsevec under v (nullptr: the session's
 * vault); 42804 naming fn for another type (esparsevec.cpp). */
struct varlena *SealPgSparsevec(FunctionCallInfo fcinfo, int argno, const vault::VaultInfo *v,
								const char *fn);

/* Raises the error for text input that did not parse: 22P02, 22003 for a value out of range,
 * 54000 for a size limit ("cannot have more than"); the hint says how to write type_name. */
void ThrowVectorParseError(const Status &s, const char *type_name, const char *hint);

} // namespace vector_vault::type
