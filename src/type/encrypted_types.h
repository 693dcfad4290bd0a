/*
 * encrypted_types.h — which SQL types can carry an encrypted value.
 *
 * One test, used by every part of the extension that must find encrypted values wherever they
 * hide: rotation and retirement (admin/rotation_scan.cpp), the DDL guard (type/ddl_guard.cpp)
 * and vault.protect (admin/protect.cpp). A type holds encrypted values when it is evector,
 * ehalfvec, esparsevec, etext or ejsonb, a domain over one, an array of one, a range or multirange
 * over one, or a composite type with such a field at any depth. See encrypted_types.cpp.
 */
#pragma once

#include "core/envelope.h"

#include "pg/pg.h"

namespace vector_vault::type
{

/* Nesting depth beyond which a type is refused rather than walked (stack safety). */
constexpr int kMaxTypeDepth = 32;

/* The encrypted types of the installed extension, looked up in its schema. */
struct EncryptedTypes
{
	Oid oids[5];
	ValueKind kinds[5];
};

/* Looks the encrypted types up in the extension's schema. */
void LoadEncryptedTypes(EncryptedTypes *t);

/* 0 when typid (after domains) is not an encrypted type, else its ValueKind. */
int EncryptedKindOf(const EncryptedTypes &t, Oid typid);

/* True when a value of typid can contain an encrypted value; depth counts nesting so far. */
bool HoldsEncrypted(const EncryptedTypes &t, Oid typid, int depth);

/* The encrypted types, cached per call site in fcinfo->flinfo->fn_extra. */
const EncryptedTypes *EncryptedTypesFor(FunctionCallInfo fcinfo);

/* True when values of type typid can hold an encrypted value (see the header comment). */
bool TypeHoldsEncrypted(Oid typid);

/* True when typid is one of the encrypted types, or a domain over one of them. */
bool IsEncryptedScalarType(Oid typid);

} // namespace vector_vault::type
