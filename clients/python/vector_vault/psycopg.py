"""vector_vault.psycopg — psycopg 3 support for vector_vault.

    import psycopg, vector_vault.psycopg as vv
    conn = psycopg.connect(...)
    vv.register_types(conn)            # loaders for evector/etext/ejsonb, dumpers for Vector/numpy
    with vv.transaction_login(conn, api_key):          # a transaction acting as the key
        conn.execute("INSERT INTO items (embedding) VALUES (%s)", (vv.Vector([1, 2, 3]),))
    vv.reset_session(conn)             # or psycopg_pool.ConnectionPool(..., reset=vv.reset_session)

psycopg 3 binds parameters on the server, so an API key is never part of the query text.
"""
import contextlib
import json
import struct

import psycopg
from psycopg.adapt import Dumper, Loader
from psycopg.pq import Format

from . import TYPES_SQL, VectorVaultError, type_oids
from ._codec import Vector, format_evector, parse_evector

try:
    import numpy as _np
except ImportError:  # pragma: no cover
    _np = None

__all__ = ["register_types", "transaction_login", "reset_session", "Vector"]


def vector_vault_error(code, message):
    """A VectorVaultError without a hint (malformed data from the server)."""
    return VectorVaultError(code, message)


def register_types(conn, use_numpy=None):
    """Registers evector/etext/ejsonb loaders and Vector (and numpy array) dumpers on conn."""
    idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    rows = conn.execute(TYPES_SQL, prepare=False).fetchall()
    if idle and not conn.autocommit:
        conn.rollback()  # leave the connection as found (psycopg_pool's configure checks it)
    oids = type_oids(rows)
    evector_oid = oids["evector"][0]

    class EVectorLoader(Loader):
        """evector text -> numpy float32 array or list."""

        def load(self, data):
            return parse_evector(bytes(data).decode(), use_numpy)

    class EVectorBinaryLoader(Loader):
        """evector binary (pgvector's: int16 dims, int16 unused, big-endian float4s) -> array or list."""

        format = Format.BINARY

        def load(self, data):
            data = bytes(data)
            dims = struct.unpack_from(">H", data, 0)[0]
            if len(data) != 4 + 4 * dims:
                raise vector_vault_error("22P03", "malformed evector binary value")
            if (use_numpy is None or use_numpy) and _np is not None:
                return _np.frombuffer(data, dtype=">f4", count=dims, offset=4).astype(_np.float32)
            return list(struct.unpack_from(f">{dims}f", data, 4))

    class EJsonbLoader(Loader):
        """ejsonb text -> Python object."""

        def load(self, data):
            return json.loads(bytes(data).decode())

    class ETextLoader(Loader):
        """etext text -> str."""

        def load(self, data):
            return bytes(data).decode()

    class EVectorDumper(Dumper):
        """Vector / numpy array -> evector parameter (typed, text format)."""

        oid = evector_oid

        def dump(self, obj):
            return format_evector(obj).encode()

    conn.adapters.register_loader(evector_oid, EVectorLoader)
    conn.adapters.register_loader(evector_oid, EVectorBinaryLoader)
    conn.adapters.register_loader(oids["ejsonb"][0], EJsonbLoader)
    conn.adapters.register_loader(oids["etext"][0], ETextLoader)
    conn.adapters.register_dumper(Vector, EVectorDumper)
    if _np is not None:
        conn.adapters.register_dumper(_np.ndarray, EVectorDumper)
    return oids


@contextlib.contextmanager
def transaction_login(conn, api_key):
    """A transaction (conn.transaction()) whose first statement is SELECT vault.login(key, true)."""
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise VectorVaultError("25001", "transaction_login must start a new transaction",
                               "Commit or roll back first: the login must be its first statement.")
    with conn.transaction():
        # Never a named prepared statement: vault.login must be a plain top-level statement.
        conn.execute("SELECT vault.login(%s, true)", (api_key,), prepare=False)
        yield conn


def reset_session(conn):
    """Ends any session login and vault selection left on a connection (pool reset callback)."""
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.rollback()
    autocommit = conn.autocommit
    conn.autocommit = True
    try:
        conn.execute("SELECT vault.logout()", prepare=False)
        conn.execute("RESET vector_vault.vault", prepare=False)
    finally:
        conn.autocommit = autocommit
