"""vector_vault.sqlalchemy — SQLAlchemy (1.4 and 2.0) column types and login helpers.

    from vector_vault.sqlalchemy import EVector, EText, EJsonb, install_login, install_pool_guard
    class Item(Base):
        __tablename__ = "items"
        id = Column(BigInteger, primary_key=True)
        body = Column(EText()); meta = Column(EJsonb()); embedding = Column(EVector(768))
    engine = create_engine(url)
    install_pool_guard(engine)             # every connection returned to the pool is logged out
    Session = sessionmaker(engine)
    install_login(Session)                 # each transaction of a session with info["vault_api_key"]
    with Session(info={"vault_api_key": key}) as s:    # starts with SELECT vault.login(key, true)
        s.scalars(select(Item).order_by(Item.embedding.l2_distance(q)).limit(5))

EVector also accepts values that a driver already parsed (vector_vault.psycopg2.register_types).
"""
import json

from sqlalchemy import Float, event, text
from sqlalchemy.types import UserDefinedType

from . import VectorVaultError
from ._codec import format_evector, parse_evector

__all__ = ["EVector", "EText", "EJsonb", "install_login", "install_pool_guard"]


class EVector(UserDefinedType):
    """evector(dim): bound as the '[x,y,...]' text form, read as a float32 numpy array or list."""

    cache_ok = True

    def __init__(self, dim=None, use_numpy=None):
        self.dim = dim
        self.use_numpy = use_numpy

    def get_col_spec(self, **kw):
        """The column type in DDL."""
        return "evector" if self.dim is None else f"evector({int(self.dim)})"

    def bind_processor(self, dialect):
        """Python sequence -> evector text."""
        return lambda value: None if value is None else format_evector(value)

    def literal_processor(self, dialect):
        """Python sequence -> quoted literal (for literal_binds)."""
        return lambda value: "'" + format_evector(value) + "'"

    def result_processor(self, dialect, coltype):
        """evector text (or an already parsed value) -> array or list."""
        use_numpy = self.use_numpy

        def process(value):
            if value is None or not isinstance(value, str):
                return value
            return parse_evector(value, use_numpy)
        return process

    class comparator_factory(UserDefinedType.Comparator):
        """Distance operators as pgvector's SQLAlchemy Vector names them."""

        def l2_distance(self, other):
            """<-> (L2 distance)."""
            return self.op("<->", return_type=Float)(other)

        def max_inner_product(self, other):
            """<#> (negative inner product)."""
            return self.op("<#>", return_type=Float)(other)

        def cosine_distance(self, other):
            """<=> (cosine distance)."""
            return self.op("<=>", return_type=Float)(other)

        def l1_distance(self, other):
            """<+> (L1 distance)."""
            return self.op("<+>", return_type=Float)(other)


class EText(UserDefinedType):
    """etext: str in, str out (the server encrypts)."""

    cache_ok = True

    def get_col_spec(self, **kw):
        """The column type in DDL."""
        return "etext"


class EJsonb(UserDefinedType):
    """ejsonb: JSON-serializable Python values in and out."""

    cache_ok = True

    def get_col_spec(self, **kw):
        """The column type in DDL."""
        return "ejsonb"

    def bind_processor(self, dialect):
        """Python value -> JSON text."""
        return lambda value: None if value is None else json.dumps(value)

    def result_processor(self, dialect, coltype):
        """JSON text (or an already parsed value) -> Python value."""
        return lambda value: json.loads(value) if isinstance(value, str) else value


def install_login(session_factory, info_key="vault_api_key"):
    """Starts every transaction of a Session whose info holds an API key with
    SELECT vault.login(key, true): the login ends with the transaction."""

    @event.listens_for(session_factory, "after_begin")
    def _login(session, transaction, connection):
        key = session.info.get(info_key)
        if key is None:
            return
        failure = None
        try:
            connection.execute(text("SELECT vault.login(:k, true)"), {"k": key}).scalar_one()
        except Exception as e:
            # SQLAlchemy's DBAPIError prints the bound parameters, the key among them: keep the
            # server's message and SQLSTATE only, and raise outside this block so that the
            # original is neither chained nor kept as the new error's context.
            orig = getattr(e, "orig", None)
            code = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None) or "XX000"
            message = (str(orig) if orig is not None else type(e).__name__).splitlines()[0]
            failure = (code, message.replace(key, "vv_…"))
        if failure is not None:
            raise VectorVaultError(failure[0], "vault.login failed: " + failure[1],
                                   "Check the key (revoked, expired, rotated or mistyped); "
                                   "the key itself is never part of this error.")
    return _login


def install_pool_guard(engine):
    """Logs every connection out (vault.logout(), RESET vector_vault.vault) when it returns to the
    pool, so a session login made by application code never reaches the next checkout; a
    connection that cannot be reset is discarded."""

    @event.listens_for(engine, "checkin")
    def _checkin(dbapi_connection, connection_record):
        if dbapi_connection is None:
            return
        try:
            dbapi_connection.rollback()
            cur = dbapi_connection.cursor()
            cur.execute("SELECT vault.logout()")
            cur.execute("RESET vector_vault.vault")
            cur.close()
            dbapi_connection.commit()
        except Exception:  # noqa: BLE001 - any failure: never reuse this session
            connection_record.invalidate()
    return _checkin
