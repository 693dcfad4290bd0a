"""sqlalchemy_client.py — a SQLAlchemy (1.4, 2.0-style) application of vector_vault.

A declarative model over the protected items table, with user-defined types for the encrypted
columns (EVector renders and parses the '[1,2,3]' text form and has an l2_distance comparator,
like pgvector-python's SQLAlchemy Vector; EText and EJsonb pass text and JSON). The ORM session
logs in per transaction from an "after_begin" listener with text("SELECT vault.login(:k, true)"),
the pattern for pooled connections; the Core part logs in for the session with
text("SELECT vault.login(:k)") and out again.

Input (environment): VV_HOST, VV_PORT, VV_DBNAME, VV_USER, VV_PASSWORD, VV_API_KEY,
VV_ROWS (JSON list of {body, meta, embedding}), VV_QUERY (JSON list: the query vector).
Output (stdout): one JSON object; the TAP driver (../03_sqlalchemy.pl) checks it.
Run with Debian's /usr/bin/python3 (python3-sqlalchemy, python3-psycopg2).
"""
import json
import os
import sys

import sqlalchemy
from sqlalchemy import BigInteger, Column, Float, create_engine, event, func, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, declarative_base, sessionmaker
from sqlalchemy.schema import CreateTable
from sqlalchemy.types import UserDefinedType


def env(name):
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"environment variable {name} is not set")
    return value


def vector_text(value):
    return "[" + ",".join(repr(float(x)) for x in value) + "]"


class EVector(UserDefinedType):
    """evector(n): sent and received in pgvector's text form."""

    cache_ok = True

    def __init__(self, dim=None):
        self.dim = dim

    def get_col_spec(self, **kw):
        return "evector" if self.dim is None else f"evector({self.dim})"

    def bind_processor(self, dialect):
        return lambda value: None if value is None else vector_text(value)

    def literal_processor(self, dialect):
        return lambda value: "'" + vector_text(value) + "'"

    def result_processor(self, dialect, coltype):
        return lambda value: None if value is None else [float(x) for x in value[1:-1].split(",")]

    class comparator_factory(UserDefinedType.Comparator):
        def l2_distance(self, other):
            return self.op("<->", return_type=Float)(other)


class EText(UserDefinedType):
    cache_ok = True

    def get_col_spec(self, **kw):
        return "etext"

    def bind_processor(self, dialect):
        return None

    def result_processor(self, dialect, coltype):
        return None


class EJsonb(UserDefinedType):
    cache_ok = True

    def get_col_spec(self, **kw):
        return "ejsonb"

    def bind_processor(self, dialect):
        return lambda value: None if value is None else json.dumps(value)

    def result_processor(self, dialect, coltype):
        return lambda value: None if value is None else json.loads(value)


Base = declarative_base()


class Item(Base):
    __tablename__ = "items"
    id = Column(BigInteger, primary_key=True)
    body = Column(EText())
    meta = Column(EJsonb())
    embedding = Column(EVector(3))


def item_json(item, distance=None):
    out = {"id": item.id, "body": item.body, "meta": item.meta, "embedding": item.embedding}
    if distance is not None:
        out["distance"] = float(distance)
    return out


def main():
    key = env("VV_API_KEY")
    rows = json.loads(env("VV_ROWS"))
    query = json.loads(env("VV_QUERY"))
    url = URL.create("postgresql+psycopg2", username=env("VV_USER"), password=env("VV_PASSWORD"),
                     host=env("VV_HOST"), port=int(env("VV_PORT")), database=env("VV_DBNAME"))
    # One pooled connection, so every transaction below reuses the same server session.
    engine = create_engine(url, future=True, pool_size=1, max_overflow=0)
    out = {"sqlalchemy": sqlalchemy.__version__,
           "ddl": str(CreateTable(Item.__table__).compile(dialect=postgresql.dialect())).strip()}

    with engine.connect() as conn:
        out["visible_before_login"] = conn.execute(select(func.count()).select_from(Item)).scalar_one()
        out["backend"] = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()

    logins = []
    SessionLocal = sessionmaker(bind=engine, future=True)

    @event.listens_for(SessionLocal, "after_begin")
    def login(session, transaction, connection):
        logins.append(connection.execute(text("SELECT vault.login(:k, true)"), {"k": key}).scalar_one())

    with SessionLocal() as session:
        out["principal"] = session.execute(text("SELECT vault.principal()")).scalar_one()
        items = [Item(body=r["body"], meta=r["meta"], embedding=r["embedding"]) for r in rows]
        session.add_all(items)
        session.flush()
        out["inserted"] = [i.id for i in items]
        session.commit()

    with SessionLocal() as session:
        distance = Item.embedding.l2_distance(query)
        stmt = select(Item, distance.label("distance")).order_by(distance).limit(3)
        out["neighbours"] = [item_json(i, d) for i, d in session.execute(stmt).all()]
        session.execute(text("SET LOCAL enable_seqscan = off"))
        compiled = stmt.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
        plan = session.execute(text("EXPLAIN (COSTS OFF) " + str(compiled).replace(":", r"\:")))
        out["index_plan"] = "\n".join(r[0] for r in plan)
        session.expunge_all()
        out["index_neighbours"] = [item_json(i, d) for i, d in session.execute(stmt).all()]
        session.commit()

    with SessionLocal() as session:
        session.expunge_all()
        out["all"] = [item_json(i) for i in session.scalars(select(Item).order_by(Item.id)).all()]
        session.commit()

    # The same pooled connection after those transactions: the transaction-scoped logins ended.
    with engine.connect() as conn:
        out["same_backend"] = conn.execute(text("SELECT pg_backend_pid()")).scalar_one() == out["backend"]
        out["principal_after_commit"] = conn.execute(text("SELECT vault.principal()")).scalar_one()
        out["visible_after_commit"] = conn.execute(select(func.count()).select_from(Item)).scalar_one()

    with SessionLocal() as session:
        session.execute(text("SELECT vault.logout()"))
        out["visible_after_logout"] = session.execute(select(func.count()).select_from(Item)).scalar_one()
        session.commit()

    out["login"] = logins[0] if logins and all(v == logins[0] for v in logins) else logins
    out["logins"] = len(logins)

    with engine.connect() as conn:
        # Core, session-scoped: login, read, logout.
        conn.execute(text("SELECT vault.login(:k)"), {"k": key})
        conn.commit()
        out["core_visible"] = conn.execute(select(func.count()).select_from(Item)).scalar_one()
        conn.execute(text("SELECT vault.logout()"))
        conn.commit()
        out["core_visible_after_logout"] = conn.execute(select(func.count()).select_from(Item)).scalar_one()
    engine.dispose()
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    try:
        main()
    except sqlalchemy.exc.SQLAlchemyError as e:
        sys.stderr.write(f"client error: {e}\n")
        sys.exit(1)
