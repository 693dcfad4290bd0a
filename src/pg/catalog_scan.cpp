/* catalog_scan.cpp — heap scans of the vault.* tables, no SQL (see catalog_scan.h). */
#include "pg/catalog_scan.h"

extern "C"
{
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
}

namespace vector_vault::pg
{

/* Opens vault.<table> and starts a scan with a fresh catalog-kind snapshot. */
void
BeginCatalogScan(CatalogScan *scan, const char *table)
{
	Oid nsp = get_namespace_oid("vault", true);
	Oid relid = OidIsValid(nsp) ? get_relname_relid(table, nsp) : InvalidOid;
	if (!OidIsValid(relid))
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
						errmsg("vector_vault catalog table vault.%s does not exist", table),
						errhint("Run CREATE EXTENSION vector_vault in this database.")));
	scan->rel = table_open(relid, AccessShareLock);
	/* Passing a non-catalog relid makes GetCatalogSnapshot take a new snapshot now. */
	scan->snapshot = RegisterSnapshot(GetCatalogSnapshot(relid));
	scan->scan = table_beginscan(scan->rel, scan->snapshot, 0, nullptr);
	scan->slot = table_slot_create(scan->rel, nullptr);
}

/* Next visible row. */
bool
NextCatalogRow(CatalogScan *scan)
{
	return table_scan_getnextslot(scan->scan, ForwardScanDirection, scan->slot);
}

/* Column number by name. */
AttrNumber
CatalogColumn(const CatalogScan *scan, const char *column)
{
	TupleDesc desc = RelationGetDescr(scan->rel);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		if (!att->attisdropped && strcmp(NameStr(att->attname), column) == 0)
			return att->attnum;
	}
	elog(ERROR, "vector_vault catalog table %s has no column %s",
		 RelationGetRelationName(scan->rel), column);
	return InvalidAttrNumber;
}

/* Value of a column in the current row. */
Datum
CatalogValue(CatalogScan *scan, AttrNumber attnum, bool *isnull)
{
	return slot_getattr(scan->slot, attnum, isnull);
}

/* Ends the scan. */
void
EndCatalogScan(CatalogScan *scan)
{
	ExecDropSingleTupleTableSlot(scan->slot);
	table_endscan(scan->scan);
	UnregisterSnapshot(scan->snapshot);
	table_close(scan->rel, AccessShareLock);
}

} // namespace vector_vault::pg
