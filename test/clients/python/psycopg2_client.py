"""psycopg2_client.py — a Python application of vector_vault written with psycopg2 and numpy.

Like pgvector-python's register_vector: numpy arrays are adapted to the vector text form and the
evector type is cast back to float32 arrays; ejsonb is registered as JSON with psycopg2's
register_json. The API key goes to vault.login(%s) as a parameter. (psycopg2 interpolates
parameters on the client, so the server receives them as quoted literals; vector_vault redacts
statements calling vault.login from the server log.)

Input (environment): VV_HOST, VV_PORT, VV_DBNAME, VV_USER, VV_PASSWORD, VV_API_KEY,
VV_ROWS (JSON list of {body, meta, embedding}), VV_QUERY (JSON list: the query vector).
Output (stdout): one JSON object; the TAP driver (../02_psycopg2.pl) checks it.
Run with Debian's /usr/bin/python3 (python3-psycopg2, python3-numpy).
"""
import json
import os
import sys

import numpy as np
import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.extras


def env(name):
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"environment variable {name} is not set")
    return value


def adapt_vector(array):
    """numpy array -> the evector text form '[x,y,z]' as a quoted SQL literal."""
    text = "[" + ",".join(repr(float(x)) for x in array.astype(np.float32).tolist()) + "]"
    return psycopg2.extensions.QuotedString(text)


def register_evector(conn):
    """Casts evector values to float32 numpy arrays on this connection."""
    with conn.cursor() as cur:
        cur.execute("SELECT 'evector'::regtype::oid")
        oid = cur.fetchone()[0]

    def cast(value, cur):
        if value is None:
            return None
        return np.array([float(x) for x in value[1:-1].split(",")], dtype=np.float32)

    psycopg2.extensions.register_type(psycopg2.extensions.new_type((oid,), "EVECTOR", cast), conn)


def as_json_row(row):
    rid, body, meta, embedding, *rest = row
    out = {"id": rid, "body": body, "meta": meta, "embedding": [float(x) for x in embedding]}
    if rest:
        out["distance"] = float(rest[0])
    return out


def main():
    rows = json.loads(env("VV_ROWS"))
    query = np.array(json.loads(env("VV_QUERY")), dtype=np.float32)
    psycopg2.extensions.register_adapter(np.ndarray, adapt_vector)
    conn = psycopg2.connect(host=env("VV_HOST"), port=env("VV_PORT"), dbname=env("VV_DBNAME"),
                            user=env("VV_USER"), password=env("VV_PASSWORD"),
                            application_name="vv-psycopg2-client")
    register_evector(conn)
    psycopg2.extras.register_json(conn, name="ejsonb", loads=json.loads)
    out = {"psycopg2": psycopg2.__version__.split()[0], "numpy": np.__version__}
    cur = conn.cursor()
    cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    out["ssl"] = cur.fetchone()[0]
    cur.execute("SELECT count(*) FROM items")
    out["visible_before_login"] = cur.fetchone()[0]
    conn.commit()

    # A mistyped key is refused (28P01) and the error does not echo it.
    bad = env("VV_API_KEY")
    bad = bad[:-1] + ("0" if bad[-1] != "0" else "1")
    try:
        cur.execute("SELECT vault.login(%s)", (bad,))
        out["bad_key"] = "accepted"
    except psycopg2.Error as e:
        out["bad_key"] = e.pgcode
        out["bad_key_echoed"] = bad in str(e) or env("VV_API_KEY") in str(e)
    conn.rollback()

    cur.execute("SELECT vault.login(%s)", (env("VV_API_KEY"),))
    out["login"] = cur.fetchone()[0]
    cur.execute("SELECT vault.principal()")
    out["principal"] = cur.fetchone()[0]
    conn.commit()  # a session login made in a committed transaction lasts for the session

    out["inserted"] = []
    for r in rows:
        cur.execute("INSERT INTO items (body, meta, embedding) VALUES (%s, %s, %s) RETURNING id",
                    (r["body"], psycopg2.extras.Json(r["meta"]),
                     np.array(r["embedding"], dtype=np.float32)))
        out["inserted"].append(cur.fetchone()[0])
    conn.commit()

    search = ("SELECT id, body, meta, embedding, embedding <-> %(q)s AS distance "
              "FROM items ORDER BY embedding <-> %(q)s LIMIT 3")
    cur.execute(search, {"q": query})
    result = cur.fetchall()
    out["neighbours"] = [as_json_row(r) for r in result]
    out["embedding_types"] = sorted({f"{type(r[3]).__name__}/{r[3].dtype}" for r in result})
    cur.execute("SET LOCAL enable_seqscan = off")
    cur.execute("EXPLAIN (COSTS OFF) " + search, {"q": query})
    out["index_plan"] = "\n".join(r[0] for r in cur.fetchall())
    cur.execute(search, {"q": query})
    out["index_neighbours"] = [as_json_row(r) for r in cur.fetchall()]
    conn.commit()

    # Everything back through a server-side cursor (DECLARE/FETCH), two rows per round trip.
    named = conn.cursor(name="all_items")
    named.itersize = 2
    named.execute("SELECT id, body, meta, embedding FROM items ORDER BY id")
    out["all"] = [as_json_row(r) for r in named]
    named.close()
    conn.commit()

    cur.execute("SELECT vault.logout()")
    cur.execute("SELECT count(*) FROM items")
    out["visible_after_logout"] = cur.fetchone()[0]
    conn.commit()
    conn.close()
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    try:
        main()
    except psycopg2.Error as e:
        sys.stderr.write(f"client error: {e.pgcode} {e}\n")
        sys.exit(1)
