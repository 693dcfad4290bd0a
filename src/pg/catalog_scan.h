/*
 * catalog_scan.h — reading vector_vault's own tables without SQL.
 *
 * Code that decides who may decrypt must not let the caller choose what runs. SQL run by the
 * extension resolves type, function and operator names through search_path at parse time, and
 * any name resolved to a caller's object (a domain in pg_temp, a function in public) runs the
 * caller's code with the extension's rights. The access checks on the hot path (the vault cache,
 * loaded on every access-epoch change, also in parallel workers) therefore read vault._vaults,
 * vault._grants and the API-key tables with plain heap scans: no parser, no name resolution, no
 * expression evaluation, no identity switch. Tables are found by name in the extension's own
 * schema (created by CREATE EXTENSION; ordinary roles cannot create objects in it) and columns
 * by attribute name, so a later version that adds columns keeps working.
 *
 * Rows are read with a fresh MVCC snapshot of the catalog kind, which parallel workers may take
 * too (GetLatestSnapshot() is refused in parallel mode): rights are read as of now, so a
 * revocation reaches a REPEATABLE READ transaction on its next statement.
 */
#pragma once

#include "pg/pg.h"

extern "C"
{
#include "access/relscan.h"
#include "executor/tuptable.h"
#include "utils/rel.h"
#include "utils/snapshot.h"
}

namespace vector_vault::pg
{

/* An open scan of one table of schema "vault" (plain data: Postgres owns every pointer). */
struct CatalogScan
{
	Relation rel;
	Snapshot snapshot;
	TableScanDesc scan;
	TupleTableSlot *slot;
};

/* Opens vault.<table> (AccessShareLock) and starts a scan with a fresh snapshot. */
void BeginCatalogScan(CatalogScan *scan, const char *table);

/* Advances to the next visible row; false at the end. */
bool NextCatalogRow(CatalogScan *scan);

/* Attribute number of a column of the scanned table (errors when it has no such column). */
AttrNumber CatalogColumn(const CatalogScan *scan, const char *column);

/* The current row's value of a column (by CatalogColumn's number). */
Datum CatalogValue(CatalogScan *scan, AttrNumber attnum, bool *isnull);

/* Ends the scan and closes the table. */
void EndCatalogScan(CatalogScan *scan);

} // namespace vector_vault::pg
