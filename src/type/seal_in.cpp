/*
 * seal_in.cpp — vault.seal_in(value, vault): plaintext sealed under a vault named per call.
 *
 * Every other way into an encrypted type seals under the session's vault (vector_vault.vault),
 * and that setting may change only through the client's own top-level statement (auth/
 * session_guard.cpp). A migration of a multi-tenant table (vault.migrate_column, issue 11) must
 * seal each row under the vault its tenant column names, inside one UPDATE run by a procedure:
 * this function is how. It gives no right the caller lacks: sealing under a vault needs the write
 * level on it here (stricter than the session vault's read level, because the value becomes
 * that vault's data), and a caller with that level could SET vector_vault.vault to it anyway.
 *
 * One C symbol serves three SQL overloads, chosen by the argument's type: real[] -> evector
 * (1-D, no NULLs, finite elements; the error names a position, never a value), text -> etext,
 * jsonb -> ejsonb. The plaintext is the caller's argument, which Postgres already holds; nothing
 * is copied except the float array of a non-contiguous input, which is zeroed after sealing.
 */
#include "core/vector_format.h"

#include "auth/auth.h"
#include "pg/guard.h"
#include "type/codec.h"
#include "vault/vault.h"

extern "C"
{
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
}

using namespace vector_vault;

namespace
{

/* The named vault, checked for the write level (raises 42704 / 42501 with a hint). */
const vault::VaultInfo *
TargetVault(text *name)
{
	char *n = text_to_cstring(name);
	const vault::VaultInfo *v = vault::RequireVault(n);
	pfree(n);
	vault::RequireLevel(v, vault::Level::kWrite, "seal values in it");
	return v;
}

/* Seals a real[] as an evector under v. */
Datum
SealArray(ArrayType *a, const vault::VaultInfo *v)
{
	if (ARR_NDIM(a) != 1)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("array must be 1-D"),
						errhint("An evector is sealed from a one-dimensional real[].")));
	if (ARR_HASNULL(a) && array_contains_nulls(a))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("array must not contain nulls"),
				 errhint("Replace or delete the rows whose vectors hold NULL elements.")));
	int dims = ARR_DIMS(a)[0];
	if (dims < 1 || dims > static_cast<int>(kMaxVectorDims))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("evector must have 1 to %u dimensions, not %d", kMaxVectorDims, dims),
				 errhint("Check the source column's vectors.")));
	const float *f = reinterpret_cast<const float *>(ARR_DATA_PTR(a));
	Status s = CheckVectorFinite(f, static_cast<size_t>(dims));
	if (!s.ok())
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("%s", s.message()),
						errhint("evector elements must be finite and within the range of real.")));
	return PointerGetDatum(type::SealValueInVault(ValueKind::kVector, v, f, sizeof(float) * dims));
}

} // namespace

/* vault.seal_in(real[] | text | jsonb, vault text): the value sealed under the named vault. */
VV_FUNCTION(vault_seal_in)
{
	Oid argtype = get_fn_expr_argtype(fcinfo->flinfo, 0);
	auth::RequireSecureConnection("encrypting a value");
	const vault::VaultInfo *v = TargetVault(PG_GETARG_TEXT_PP(1));
	switch (argtype)
	{
		case FLOAT4ARRAYOID:
			PG_RETURN_DATUM(SealArray(PG_GETARG_ARRAYTYPE_P(0), v));
		case TEXTOID:
		{
			text *t = PG_GETARG_TEXT_PP(0);
			PG_RETURN_POINTER(
				type::SealValueInVault(ValueKind::kText, v, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)));
		}
		case JSONBOID:
		{
			struct varlena *j = PG_DETOAST_DATUM(PG_GETARG_DATUM(0));
			PG_RETURN_POINTER(
				type::SealValueInVault(ValueKind::kJson, v, VARDATA(j), VARSIZE(j) - VARHDRSZ));
		}
		default:
			ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
							errmsg("vault.seal_in cannot seal a value of type %s",
								   format_type_be(argtype)),
							errhint("Pass real[], text or jsonb.")));
	}
	PG_RETURN_NULL();
}

/* vault.seal_in_ehalfvec(anyelement, vault text): a pgvector halfvec sealed as an ehalfvec under
 * the named vault (vault.migrate_column's halfvec columns). */
VV_FUNCTION(vault_seal_in_ehalfvec)
{
	auth::RequireSecureConnection("encrypting a value");
	const vault::VaultInfo *v = TargetVault(PG_GETARG_TEXT_PP(1));
	PG_RETURN_POINTER(type::SealPgHalfvec(fcinfo, 0, v, "vault.seal_in_ehalfvec"));
}

/* vault.seal_in_esparsevec(anyelement, vault text): a pgvector sparsevec sealed as an esparsevec
 * under the named vault (vault.migrate_column's sparsevec columns). */
VV_FUNCTION(vault_seal_in_esparsevec)
{
	auth::RequireSecureConnection("encrypting a value");
	const vault::VaultInfo *v = TargetVault(PG_GETARG_TEXT_PP(1));
	PG_RETURN_POINTER(type::SealPgSparsevec(fcinfo, 0, v, "vault.seal_in_esparsevec"));
}
