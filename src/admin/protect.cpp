/*
 * protect.cpp — vault.protect(table): row-level security generated for a table that holds
 * encrypted columns, plus the functions its policies call.
 *
 * A row belongs to the vaults named in the headers of its encrypted values (read without
 * decrypting). The generated policies let a principal see rows of vaults it may read, and
 * insert, update or delete rows only in vaults it may write. RLS is enabled and forced, so the
 * table owner is bound too; a BYPASSRLS role skips the policies but still cannot decrypt another
 * vault's values (the decryption check), and the index searches only readable vaults.
 */
#include "core/envelope.h"

#include <cstring>

#include "auth/auth.h"
#include "type/encrypted_types.h"
#include "pg/guard.h"
#include "pg/privileged.h"
#include "type/codec.h"
#include "vault/vault.h"

extern "C"
{
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
}

using namespace vector_vault;

namespace
{

/* The vault id in an encrypted value's header (no decryption, no access check). */
Datum
VaultOf(Datum d)
{
	uint64 vault_id;
	uint32 key_version;
	type::PeekEnvelope(d, &vault_id, &key_version);
	return Int64GetDatum(static_cast<int64>(vault_id));
}

} // namespace

/* vault.vault_of(evector | etext | ejsonb): the id of the vault a value is sealed under. */
VV_FUNCTION(vault_vault_of)
{
	return VaultOf(PG_GETARG_DATUM(0));
}

/* vault.row_access(level text, VARIADIC vault_ids bigint[]): may the principal act on all of them?
 */
VV_FUNCTION(vault_row_access)
{
	vault::Level needed = vault::ParseGrantLevel(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	if (PG_ARGISNULL(1))
		PG_RETURN_BOOL(true);
	ArrayType *ids = PG_GETARG_ARRAYTYPE_P(1);
	Datum *elems;
	bool *nulls;
	int n;
	deconstruct_array(ids, INT8OID, 8, true, TYPALIGN_DOUBLE, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			continue;
		const vault::VaultInfo *v =
			vault::LookupVault(static_cast<uint64_t>(DatumGetInt64(elems[i])));
		if (v == nullptr || v->dropped || v->level < needed)
			PG_RETURN_BOOL(false);
	}
	PG_RETURN_BOOL(true);
}

/* vault.protect(table regclass): enables and forces RLS with vault policies on the table. */
VV_FUNCTION(vault_protect)
{
	Oid relid = PG_GETARG_OID(0);
	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(relid));
	/* As the caller, with search_path pinned and security-restricted (no planted name applies). */
	pg::PrivilegedScope scope;
	pg::EnterCallerScope(&scope);
	Oid types[1] = {OIDOID};
	Datum values[1] = {ObjectIdGetDatum(relid)};
	/* Every column that can hold encrypted values: the encrypted types, domains over them,
	 * arrays and composites containing them (the same test rotation uses). */
	if (SPI_execute_with_args("SELECT a.attname, a.atttypid FROM pg_catalog.pg_attribute a "
							  "WHERE a.attrelid OPERATOR(pg_catalog.=) $1 AND a.attnum "
							  "OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped AND "
							  "vault._holds_encrypted(a.atttypid) ORDER BY a.attnum",
							  1, types, values, nullptr, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the table's columns");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("table \"%s\" has no evector, etext or ejsonb column", get_rel_name(relid)),
				 errhint("vault.protect() derives each row's vault from its encrypted columns.")));
	/* Scalar columns (and domains over them) give one vault id each; array and composite
	 * columns give every vault id inside them, appended as an array. */
	StringInfoData scalars, nested;
	initStringInfo(&scalars);
	initStringInfo(&nested);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		const char *col =
			quote_identifier(SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
		bool isnull;
		Oid typid = DatumGetObjectId(
			SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
		if (type::IsEncryptedScalarType(typid))
			appendStringInfo(&scalars, "%svault.vault_of(%s)", scalars.len > 0 ? ", " : "", col);
		else
			appendStringInfo(&nested, " OPERATOR(pg_catalog.||) vault._vault_ids(%s)", col);
	}
	StringInfoData ids;
	initStringInfo(&ids);
	if (nested.len == 0)
		appendStringInfo(&ids, ", %s", scalars.data);
	else
		appendStringInfo(&ids, ", VARIADIC (ARRAY[%s]::pg_catalog.int8[]%s)", scalars.data,
						 nested.data);
	/* The table and every partition or inheritance child: a child read directly is not subject
	 * to its parent's policies (found by sql/44_round2_attack_pass, 3d). */
	List *members = find_all_inheritors(relid, AccessExclusiveLock, nullptr);
	ListCell *lc;
	foreach (lc, members)
	{
		Oid member = lfirst_oid(lc);
		if (member != relid && !pg_class_ownercheck(member, GetUserId()))
			aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(member));
		char *rel = quote_qualified_identifier(get_namespace_name(get_rel_namespace(member)),
											   get_rel_name(member));
		const char *stmts[] = {
			"ALTER TABLE %1$s ENABLE ROW LEVEL SECURITY",
			"ALTER TABLE %1$s FORCE ROW LEVEL SECURITY",
			"DROP POLICY IF EXISTS vault_read ON %1$s",
			"DROP POLICY IF EXISTS vault_insert ON %1$s",
			"DROP POLICY IF EXISTS vault_update ON %1$s",
			"DROP POLICY IF EXISTS vault_delete ON %1$s",
			"CREATE POLICY vault_read ON %1$s FOR SELECT USING (vault.row_access('read'%2$s))",
			"CREATE POLICY vault_insert ON %1$s FOR INSERT WITH CHECK "
			"(vault.row_access('write'%2$s))",
			"CREATE POLICY vault_update ON %1$s FOR UPDATE USING (vault.row_access('write'%2$s)) "
			"WITH "
			"CHECK "
			"(vault.row_access('write'%2$s))",
			"CREATE POLICY vault_delete ON %1$s FOR DELETE USING (vault.row_access('write'%2$s))",
		};
		for (const char *fmt : stmts)
		{
			char *sql = psprintf(fmt, rel, ids.data);
			if (SPI_execute(sql, false, 0) < 0)
				elog(ERROR, "vault.protect: \"%s\" failed", sql);
		}
	}
	pg::LeavePrivileged(&scope);
	PG_RETURN_VOID();
}
