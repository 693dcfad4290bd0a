"""helpers_client.py — the vector_vault Python helpers (clients/python) against a real server.

Three application flows, each with its own API key and vault, written with the helpers only:
psycopg2 (register_types, transaction_login, Vector), psycopg 3 (the same) and SQLAlchemy
(EVector/EText/EJsonb, install_login, install_pool_guard). Each records what the shared checks of
ClientSetup::check_flow read. Then the pool leaks: a session login left on a pooled connection
is seen by the next checkout with a plain psycopg2 pool and a plain SQLAlchemy engine (the
controls), and not with vector_vault.psycopg2.pooled / install_pool_guard.

Input (environment): VV_HOST, VV_PORT, VV_DBNAME, VV_USER, VV_PASSWORD, VV_KEYS (JSON:
{"pg2": key, "pg3": key, "sa": key}), VV_ROWS, VV_QUERY. PYTHONPATH holds clients/python.
Output (stdout): one JSON object; the TAP driver (../05_python_helpers.pl) checks it.
"""
import json
import os
import sys

import numpy as np
import psycopg
import psycopg2
import psycopg2.pool
import sqlalchemy
from sqlalchemy import BigInteger, Column, create_engine, func, select, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import declarative_base, sessionmaker

import vector_vault
import vector_vault.psycopg as vv3
import vector_vault.psycopg2 as vv2
from vector_vault.sqlalchemy import EJsonb, EText, EVector, install_login, install_pool_guard


def env(name):
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"environment variable {name} is not set")
    return value


def dsn():
    return dict(host=env("VV_HOST"), port=env("VV_PORT"), dbname=env("VV_DBNAME"),
                user=env("VV_USER"), password=env("VV_PASSWORD"))


def row_json(row):
    rid, body, meta, embedding, *rest = row
    out = {"id": rid, "body": body, "meta": meta, "embedding": [float(x) for x in embedding]}
    if rest:
        out["distance"] = float(rest[0])
    return out


SEARCH = ("SELECT id, body, meta, embedding, embedding <-> %(q)s AS distance "
          "FROM items ORDER BY embedding <-> %(q)s LIMIT 3")
WHO = "SELECT current_setting('vector_vault.vault', true), vault.principal()"


def flow_psycopg2(key, rows, query):
    """psycopg2 + vector_vault.psycopg2: one transaction-scoped login per transaction."""
    conn = psycopg2.connect(application_name="vv-helpers-pg2", **dsn())
    vv2.register_types(conn)
    out = {}
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM items")
    out["visible_before_login"] = cur.fetchone()[0]
    conn.commit()
    with vv2.transaction_login(conn, key) as cur:
        cur.execute(WHO)
        out["login"], out["principal"] = cur.fetchone()
        out["inserted"] = []
        for r in rows:
            cur.execute("INSERT INTO items (body, meta, embedding) VALUES (%s, %s, %s) RETURNING id",
                        (r["body"], json.dumps(r["meta"]), vv2.Vector(r["embedding"])))
            out["inserted"].append(cur.fetchone()[0])
    q = np.array(query, dtype=np.float32)  # numpy arrays are adapted too
    with vv2.transaction_login(conn, key) as cur:
        cur.execute(SEARCH, {"q": q})
        res = cur.fetchall()
        out["neighbours"] = [row_json(r) for r in res]
        out["embedding_types"] = sorted({f"{type(r[3]).__name__}/{r[3].dtype}" for r in res})
        out["meta_types"] = sorted({type(r[2]).__name__ for r in res})
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("EXPLAIN (COSTS OFF) " + SEARCH, {"q": q})
        out["index_plan"] = "\n".join(r[0] for r in cur.fetchall())
        cur.execute(SEARCH, {"q": q})
        out["index_neighbours"] = [row_json(r) for r in cur.fetchall()]
        cur.execute("SELECT id, body, meta, embedding FROM items ORDER BY id")
        out["all"] = [row_json(r) for r in cur.fetchall()]
        cur.execute("SELECT array_agg(embedding ORDER BY id) FROM items")
        arr = cur.fetchone()[0]
        out["array_of_evector"] = f"{type(arr).__name__}/{len(arr)}/{type(arr[0]).__name__}"
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM items")
    out["visible_after_logout"] = cur.fetchone()[0]
    cur.execute("SELECT vault.principal()")
    out["principal_after"] = cur.fetchone()[0]
    conn.commit()
    # A failing transaction rolls back and ends the login too.
    try:
        with vv2.transaction_login(conn, key) as cur:
            cur.execute("SELECT 1/0")
    except psycopg2.Error as e:
        out["error_code"] = e.pgcode
    cur = conn.cursor()
    cur.execute("SELECT vault.principal()")
    out["principal_after_error"] = cur.fetchone()[0]
    conn.commit()
    conn.close()
    return out


def flow_psycopg3(key, rows, query):
    """psycopg 3 + vector_vault.psycopg (server-side binding)."""
    conn = psycopg.connect(application_name="vv-helpers-pg3", **dsn())
    vv3.register_types(conn)
    out = {}
    out["visible_before_login"] = conn.execute("SELECT count(*) FROM items").fetchone()[0]
    conn.commit()
    with vv3.transaction_login(conn, key):
        out["login"], out["principal"] = conn.execute(WHO).fetchone()
        out["inserted"] = []
        for r in rows:
            out["inserted"].append(conn.execute(
                "INSERT INTO items (body, meta, embedding) VALUES (%s, %s, %s) RETURNING id",
                (r["body"], json.dumps(r["meta"]), vector_vault.Vector(r["embedding"]))).fetchone()[0])
    q = np.array(query, dtype=np.float32)
    with vv3.transaction_login(conn, key):
        res = conn.execute(SEARCH, {"q": q}).fetchall()
        out["neighbours"] = [row_json(r) for r in res]
        out["embedding_types"] = sorted({f"{type(r[3]).__name__}/{r[3].dtype}" for r in res})
        out["meta_types"] = sorted({type(r[2]).__name__ for r in res})
        conn.execute("SET LOCAL enable_seqscan = off")
        out["index_plan"] = "\n".join(r[0] for r in conn.execute("EXPLAIN (COSTS OFF) " + SEARCH, {"q": q}))
        out["index_neighbours"] = [row_json(r) for r in conn.execute(SEARCH, {"q": q}).fetchall()]
        # The same search six times: psycopg 3 prepares statements after five executions.
        for _ in range(6):
            conn.execute(SEARCH, {"q": q}).fetchall()
        out["all"] = [row_json(r) for r in
                      conn.execute("SELECT id, body, meta, embedding FROM items ORDER BY id").fetchall()]
        # Binary results: evector's binary form is pgvector's.
        with conn.cursor(binary=True) as bc:
            bc.execute("SELECT embedding FROM items ORDER BY id")
            out["binary_embeddings"] = [[float(x) for x in r[0]] for r in bc.fetchall()]
    # Six more transactions: the login statement itself is never prepared.
    for _ in range(6):
        with vv3.transaction_login(conn, key):
            conn.execute("SELECT 1").fetchone()
    out["visible_after_logout"] = conn.execute("SELECT count(*) FROM items").fetchone()[0]
    out["principal_after"] = conn.execute("SELECT vault.principal()").fetchone()[0]
    conn.commit()
    # reset_session ends a session login.
    conn.execute("SELECT vault.login(%s)", (key,), prepare=False)
    conn.commit()
    out["session_principal"] = conn.execute("SELECT vault.principal()").fetchone()[0]
    conn.commit()
    vv3.reset_session(conn)
    out["principal_after_reset"] = conn.execute("SELECT vault.principal()").fetchone()[0]
    conn.close()
    return out


Base = declarative_base()


class Item(Base):
    __tablename__ = "items"
    id = Column(BigInteger, primary_key=True)
    body = Column(EText())
    meta = Column(EJsonb())
    embedding = Column(EVector(3))


def engine_for(pool_guard):
    url = URL.create("postgresql+psycopg2", username=env("VV_USER"), password=env("VV_PASSWORD"),
                     host=env("VV_HOST"), port=int(env("VV_PORT")), database=env("VV_DBNAME"))
    engine = create_engine(url, future=True, pool_size=1, max_overflow=0)
    if pool_guard:
        install_pool_guard(engine)
    return engine


def flow_sqlalchemy(key, rows, query):
    """SQLAlchemy ORM with the package's types, install_login and install_pool_guard."""
    engine = engine_for(True)
    Session = sessionmaker(bind=engine, future=True)
    install_login(Session)
    out = {}
    with engine.connect() as c:
        out["visible_before_login"] = c.execute(select(func.count()).select_from(Item)).scalar_one()
    with Session(info={"vault_api_key": key}) as s:
        out["login"], out["principal"] = s.execute(text(WHO)).one()
        items = [Item(body=r["body"], meta=r["meta"], embedding=r["embedding"]) for r in rows]
        s.add_all(items)
        s.flush()
        out["inserted"] = [i.id for i in items]
        s.commit()
    with Session(info={"vault_api_key": key}) as s:
        d = Item.embedding.l2_distance(query)
        stmt = select(Item, d.label("distance")).order_by(d).limit(3)
        as_json = lambda i, dist=None: {**{"id": i.id, "body": i.body, "meta": i.meta,
                                           "embedding": [float(x) for x in i.embedding]},
                                        **({"distance": float(dist)} if dist is not None else {})}
        res = s.execute(stmt).all()
        out["neighbours"] = [as_json(i, dist) for i, dist in res]
        out["embedding_types"] = sorted({f"{type(i.embedding).__name__}/{i.embedding.dtype}" for i, _ in res})
        s.execute(text("SET LOCAL enable_seqscan = off"))
        compiled = stmt.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
        out["index_plan"] = "\n".join(r[0] for r in s.execute(text("EXPLAIN (COSTS OFF) " + str(compiled).replace(":", r"\:"))))
        s.expunge_all()
        out["index_neighbours"] = [as_json(i, dist) for i, dist in s.execute(stmt).all()]
        s.expunge_all()
        out["all"] = [as_json(i) for i in s.scalars(select(Item).order_by(Item.id)).all()]
        s.commit()
    with engine.connect() as c:
        out["visible_after_logout"] = c.execute(select(func.count()).select_from(Item)).scalar_one()
    engine.dispose()
    return out


def leaks(key):
    """A session login left on a pooled connection: seen by the next checkout without the helpers."""
    out = {}
    # psycopg2.pool, plain: the login survives putconn.
    pool = psycopg2.pool.SimpleConnectionPool(1, 1, **dsn())
    conn = pool.getconn()
    cur = conn.cursor()
    cur.execute("SELECT pg_backend_pid()")
    pid = cur.fetchone()[0]
    cur.execute("SELECT vault.login(%s)", (key,))
    conn.commit()
    pool.putconn(conn)
    conn = pool.getconn()
    cur = conn.cursor()
    cur.execute("SELECT pg_backend_pid(), vault.principal(), (SELECT count(*) FROM items)")
    p2, principal, visible = cur.fetchone()
    conn.commit()
    out["pg2_plain"] = {"same_backend": p2 == pid, "principal": principal, "visible": visible}
    vv2.reset_session(conn)
    pool.putconn(conn)
    # The same mistake inside vector_vault.psycopg2.pooled: the session is reset on the way back.
    with vv2.pooled(pool, key) as cur:
        cur.execute("SELECT count(*) FROM items")
        inside = cur.fetchone()[0]
        cur.connection.commit()
        cur.execute("SELECT vault.login(%s)", (key,))  # a session login by application code
    conn = pool.getconn()
    cur = conn.cursor()
    cur.execute("SELECT pg_backend_pid(), vault.principal(), (SELECT count(*) FROM items)")
    p3, principal, visible = cur.fetchone()
    conn.commit()
    out["pg2_pooled"] = {"same_backend": p3 == pid, "principal": principal, "visible": visible,
                         "visible_inside": inside}
    pool.putconn(conn)
    pool.closeall()

    # SQLAlchemy engines: plain (control) and with install_pool_guard.
    for name, guard in (("sa_plain", False), ("sa_guard", True)):
        engine = engine_for(guard)
        with engine.connect() as c:
            pid = c.execute(text("SELECT pg_backend_pid()")).scalar_one()
            c.execute(text("SELECT vault.login(:k)"), {"k": key})
            c.commit()
        with engine.connect() as c:
            p2, principal, visible = c.execute(
                text("SELECT pg_backend_pid(), vault.principal(), (SELECT count(*) FROM items)")).one()
        out[name] = {"same_backend": p2 == pid, "principal": principal, "visible": visible}
        engine.dispose()
    return out


def main():
    keys = json.loads(env("VV_KEYS"))
    rows = json.loads(env("VV_ROWS"))
    query = json.loads(env("VV_QUERY"))
    out = {"versions": {"psycopg2": psycopg2.__version__.split()[0], "psycopg": psycopg.__version__,
                        "sqlalchemy": sqlalchemy.__version__, "vector_vault": vector_vault.__version__}}
    out["pg2"] = flow_psycopg2(keys["pg2"], rows, query)
    out["pg3"] = flow_psycopg3(keys["pg3"], rows, query)
    out["sa"] = flow_sqlalchemy(keys["sa"], rows, query)
    out["leaks"] = leaks(keys["pg2"])
    # Helper errors name what to do and never echo the key.
    try:
        c = psycopg2.connect(**dsn())
        c.autocommit = True
        with vv2.transaction_login(c, keys["pg2"]):
            pass
    except vector_vault.VectorVaultError as e:
        out["autocommit_error"] = {"code": e.code, "has_hint": bool(e.hint), "echoes_key": keys["pg2"] in str(e)}
    # A failed login through install_login: SQLAlchemy would print the bound key; the helper's
    # error carries the server's SQLSTATE and never the key (a revoked-looking, wrong key here).
    bad = keys["sa"][:-4] + ("0000" if not keys["sa"].endswith("0000") else "1111")
    try:
        BadSession = sessionmaker(bind=engine_for(True), future=True)
        install_login(BadSession)
        with BadSession(info={"vault_api_key": bad}) as s:
            s.execute(text("SELECT 1"))
        out["sa_bad_login"] = {"raised": False}
    except vector_vault.VectorVaultError as e:
        out["sa_bad_login"] = {"raised": True, "code": e.code, "echoes_key": bad in str(e)
                               or bad in repr(e.__cause__) or bad in repr(e.__context__)}
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
