"""vector_vault.psycopg2 — psycopg2 support for vector_vault.

    import psycopg2, vector_vault.psycopg2 as vv
    conn = psycopg2.connect(...)
    vv.register_types(conn)                 # evector -> numpy float32 array (or list), ejsonb -> dict
    with vv.transaction_login(conn, api_key) as cur:   # BEGIN; SELECT vault.login(key, true); ...
        cur.execute("INSERT INTO items (embedding) VALUES (%s)", (vv.Vector([1, 2, 3]),))
    # COMMIT (ROLLBACK on an exception): the login ends with the transaction
    vv.reset_session(conn)                  # before a pooled connection goes back to its pool

A session login (SELECT vault.login(key) committed outside these helpers) stays on the server
session: a pool would hand it to the next user of the connection. pooled() checks out, logs in for
one transaction, and always resets the session before the connection goes back.
"""
import contextlib
import json

import psycopg2
import psycopg2.extensions as _ext

from . import TYPES_SQL, VectorVaultError, type_oids
from ._codec import Vector, format_evector, parse_evector

try:
    import numpy as _np
except ImportError:  # pragma: no cover
    _np = None

__all__ = ["register_types", "transaction_login", "reset_session", "pooled", "Vector"]


def _adapt_vector(value):
    """Vector (or numpy array) -> the literal '[...]'::evector."""
    return _ext.AsIs(_ext.QuotedString(format_evector(value)).getquoted().decode() + "::evector")


_ext.register_adapter(Vector, _adapt_vector)


def register_types(conn_or_cursor, use_numpy=None, adapt_numpy=True, globally=False):
    """Registers parsers for evector, etext, ejsonb (and their arrays) on a connection.

    evector values come back as float32 numpy arrays (lists with use_numpy=False or without
    numpy), ejsonb as Python objects, etext as str. adapt_numpy also sends numpy arrays as
    evector literals (process-wide, like pgvector's register_vector). globally registers the
    parsers for every connection (the OIDs are this database's).
    """
    is_conn = hasattr(conn_or_cursor, "cursor")
    conn = conn_or_cursor if is_conn else conn_or_cursor.connection
    idle = conn.get_transaction_status() == _ext.TRANSACTION_STATUS_IDLE
    cur = conn_or_cursor.cursor() if is_conn else conn_or_cursor
    cur.execute(TYPES_SQL)
    oids = type_oids(cur.fetchall())
    if is_conn:
        cur.close()
    if idle and not conn.autocommit:
        conn.rollback()  # leave the connection as found
    scope = None if globally else conn_or_cursor

    def cast_evector(value, _cur):
        return parse_evector(value, use_numpy)

    def cast_ejsonb(value, _cur):
        return None if value is None else json.loads(value)

    def cast_etext(value, _cur):
        return value

    for name, caster in (("evector", cast_evector), ("ejsonb", cast_ejsonb), ("etext", cast_etext)):
        oid, array_oid = oids[name]
        t = _ext.new_type((oid,), name.upper(), caster)
        _ext.register_type(t, scope)
        _ext.register_type(_ext.new_array_type((array_oid,), name.upper() + "[]", t), scope)
    if adapt_numpy and _np is not None:
        _ext.register_adapter(_np.ndarray, _adapt_vector)
    return oids


@contextlib.contextmanager
def transaction_login(conn, api_key):
    """One transaction acting as an API key: yields a cursor; commits, or rolls back on error."""
    if conn.autocommit:
        raise VectorVaultError("25000", "transaction_login needs a connection with autocommit off",
                               "Set conn.autocommit = False (the login lasts one transaction).")
    if conn.get_transaction_status() != _ext.TRANSACTION_STATUS_IDLE:
        raise VectorVaultError("25001", "transaction_login must start a new transaction",
                               "Commit or roll back first: the login must be its first statement.")
    cur = conn.cursor()
    try:
        cur.execute("SELECT vault.login(%s, true)", (api_key,))
        cur.fetchone()
        yield cur
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        cur.close()


def reset_session(conn):
    """Ends any session login and vault selection left on a connection (before pooling it again)."""
    conn.rollback()
    autocommit = conn.autocommit
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT vault.logout()")
            cur.execute("RESET vector_vault.vault")
    finally:
        conn.autocommit = autocommit


@contextlib.contextmanager
def pooled(pool, api_key):
    """Checks a connection out of a psycopg2.pool pool, logs in for one transaction (yields a
    cursor), then resets the session and puts it back; a connection that fails to reset is closed."""
    conn = pool.getconn()
    broken = False
    try:
        with transaction_login(conn, api_key) as cur:
            yield cur
    finally:
        try:
            reset_session(conn)
        except psycopg2.Error:
            broken = True
        pool.putconn(conn, close=broken or conn.closed != 0)
