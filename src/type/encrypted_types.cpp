/*
 * encrypted_types.cpp — the one test of whether a type can carry an encrypted value.
 *
 * The types are looked up by name in the extension's own schema (never through search_path, so
 * a caller's type named evector in another schema is not mistaken for ours, and ours is never
 * missed). Domains are resolved to their base type; arrays, ranges, multiranges and composite
 * types are walked to kMaxTypeDepth. Ranges and multiranges count by their subtype: evector has a
 * btree operator class, so a range over it can exist.
 */
#include "type/encrypted_types.h"

extern "C"
{
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/typcache.h"
}

#include "pg/guard.h"

using namespace vector_vault;

namespace
{

/* The schema of the extension (pg_extension.extnamespace; PG 15 does not export a lookup). */
Oid
ExtensionSchema(Oid ext)
{
	Relation rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyData key;
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(ext));
	SysScanDesc scan = systable_beginscan(rel, ExtensionOidIndexId, true, nullptr, 1, &key);
	HeapTuple tup = systable_getnext(scan);
	Oid nsp = HeapTupleIsValid(tup)
				  ? reinterpret_cast<Form_pg_extension>(GETSTRUCT(tup))->extnamespace
				  : InvalidOid;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return nsp;
}

} // namespace

namespace vector_vault::type
{

/* Looks the encrypted types up in the extension's schema. */
void
LoadEncryptedTypes(EncryptedTypes *t)
{
	static const char *const names[5] = {"evector", "etext", "ejsonb", "ehalfvec", "esparsevec"};
	static const ValueKind kinds[5] = {ValueKind::kVector, ValueKind::kText, ValueKind::kJson,
									   ValueKind::kHalfVector, ValueKind::kSparseVector};
	Oid ext = get_extension_oid("vector_vault", false);
	Oid nsp = ExtensionSchema(ext);
	for (int i = 0; i < 5; i++)
	{
		t->oids[i] = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum(names[i]),
									 ObjectIdGetDatum(nsp));
		t->kinds[i] = kinds[i];
	}
}

/* 0 when typid (after domains) is not an encrypted type, else its ValueKind. */
int
EncryptedKindOf(const EncryptedTypes &t, Oid typid)
{
	Oid base = getBaseType(typid);
	for (int i = 0; i < 5; i++)
		if (OidIsValid(t.oids[i]) && base == t.oids[i])
			return static_cast<int>(t.kinds[i]);
	return 0;
}

/* True when a value of typid can contain an encrypted value (see encrypted_types.h). */
bool
HoldsEncrypted(const EncryptedTypes &t, Oid typid, int depth)
{
	if (depth > kMaxTypeDepth)
		ereport(ERROR, (errcode(ERRCODE_STATEMENT_TOO_COMPLEX),
						errmsg("type nesting is too deep to look for encrypted values")));
	check_stack_depth();
	if (EncryptedKindOf(t, typid) != 0)
		return true;
	Oid base = getBaseType(typid);
	Oid elem = get_element_type(base);
	if (OidIsValid(elem))
		return HoldsEncrypted(t, elem, depth + 1);
	char typtype = get_typtype(base);
	if (typtype == TYPTYPE_RANGE)
		return HoldsEncrypted(t, get_range_subtype(base), depth + 1);
	if (typtype == TYPTYPE_MULTIRANGE)
		return HoldsEncrypted(t, get_multirange_range(base), depth + 1);
	if (typtype != TYPTYPE_COMPOSITE)
		return false;
	TupleDesc desc = lookup_rowtype_tupdesc(base, -1);
	bool holds = false;
	for (int i = 0; i < desc->natts && !holds; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		if (!att->attisdropped)
			holds = HoldsEncrypted(t, att->atttypid, depth + 1);
	}
	ReleaseTupleDesc(desc);
	return holds;
}

/* The encrypted types, cached per call site. */
const EncryptedTypes *
EncryptedTypesFor(FunctionCallInfo fcinfo)
{
	if (fcinfo->flinfo->fn_extra == nullptr)
	{
		EncryptedTypes *t = static_cast<EncryptedTypes *>(
			MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(EncryptedTypes)));
		LoadEncryptedTypes(t);
		fcinfo->flinfo->fn_extra = t;
	}
	return static_cast<const EncryptedTypes *>(fcinfo->flinfo->fn_extra);
}

/* True when values of typid can hold an encrypted value. */
bool
TypeHoldsEncrypted(Oid typid)
{
	EncryptedTypes t;
	LoadEncryptedTypes(&t);
	return HoldsEncrypted(t, typid, 0);
}

/* True when typid is an encrypted type or a domain over one. */
bool
IsEncryptedScalarType(Oid typid)
{
	EncryptedTypes t;
	LoadEncryptedTypes(&t);
	return EncryptedKindOf(t, typid) != 0;
}

} // namespace vector_vault::type

/* vault._holds_encrypted(regtype): can values of the type hold encrypted values? */
VV_FUNCTION(vault_holds_encrypted)
{
	PG_RETURN_BOOL(type::HoldsEncrypted(*type::EncryptedTypesFor(fcinfo), PG_GETARG_OID(0), 0));
}
