/*
 * rotation_scan.h — where the values of a key version live, and who may rewrite them.
 *
 * Key rotation has three enumerations that must agree: which columns can hold encrypted values
 * (vault._encrypted_columns), which of them hold values of a vault under given key versions
 * (re-encryption and retirement), and which the caller may rewrite without running code that
 * somebody else owns (re-encryption). See rotation_scan.cpp.
 */
#pragma once

#include "pg/pg.h"

namespace vector_vault::admin
{

/* A relation column that holds values of a vault under the key versions scanned. */
struct KeyHolder
{
	Oid relid;
	char *relation; /* qualified, quoted name */
	char *column;   /* column name (NULL for an index) */
	Oid owner;
	char *owner_name;
	int64 remaining;       /* values (index: live entries); -1 when it could not be read */
	bool owner_has_rights; /* the owner has a level on the vault (owner or a grant) */
	char *not_rewritable;  /* why the caller may not rewrite it in place; NULL when it may */
	bool scalar;           /* the column's type is an encrypted type or a domain over one */
};

/*
 * Counts, as the extension owner, the values of vault vault_id sealed under key versions
 * lo..hi in every encrypted column of the database (and, when with_indexes and lo == hi, the
 * live entries under that version in every vault_hnsw index), and judges each holder for
 * caller. Returns the holders with a non-zero count, or that could not be read, in *out.
 */
int ScanKeyHolders(uint64 vault_id, Oid vault_owner, uint32 lo, uint32 hi, Oid caller,
				   bool with_indexes, KeyHolder **out);

} // namespace vector_vault::admin
