"""vector_vault — Python helpers for the vector_vault PostgreSQL extension.

Encrypted columns (evector, etext, ejsonb) read and written like their plaintext counterparts,
and API-key logins that never outlive a transaction on a pooled connection:

    vector_vault.psycopg2     register_types(conn), transaction_login(conn, key), reset_session(conn)
    vector_vault.psycopg      the same for psycopg 3
    vector_vault.sqlalchemy   EVector / EText / EJsonb column types, install_login(sessionmaker),
                              install_pool_guard(engine)

Only the submodule of the driver you use is imported; each imports its driver lazily.
"""
from ._codec import EVectorParseError, Vector, format_evector, parse_evector

__version__ = "0.2.0"
__all__ = ["Vector", "parse_evector", "format_evector", "EVectorParseError", "VectorVaultError"]


class VectorVaultError(Exception):
    """A helper-side error: an SQLSTATE-like code, a message and a hint saying what to do."""

    def __init__(self, code, message, hint=None):
        super().__init__(f"{message} (hint: {hint})" if hint else message)
        self.code = code
        self.hint = hint


# Finds the OIDs of vector_vault's types by extension membership (not by search_path).
TYPES_SQL = (
    "SELECT t.typname, t.oid::int, t.typarray::int FROM pg_catalog.pg_type t "
    "JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass "
    "AND d.objid = t.oid AND d.deptype = 'e' "
    "JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'vector_vault' "
    "WHERE t.typname IN ('evector', 'etext', 'ejsonb')"
)


def type_oids(rows):
    """{'evector': (oid, array_oid), ...} from TYPES_SQL rows; raises when the extension is absent."""
    found = {name: (oid, array_oid) for name, oid, array_oid in rows}
    if set(found) != {"evector", "etext", "ejsonb"}:
        raise VectorVaultError(
            "42704", "the vector_vault types were not found in this database",
            "Run CREATE EXTENSION vector_vault (as a superuser) in the database you connect to.")
    return found
