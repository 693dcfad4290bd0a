"""pgbouncer_client.py — API keys through PgBouncer in transaction mode (psycopg2 clients).

PgBouncer runs with pool_mode = transaction and one server connection, so every transaction of
every client below runs in the same server session, one after the other. Each client that uses
a key does BEGIN; SELECT vault.login(key, true); ...; COMMIT. The program records what each
transaction saw; the TAP driver (../04_pgbouncer.pl) checks that no key, vault selection or row
leaks from one client's transaction into another's.

Input (environment): VV_HOST, VV_PORT (PgBouncer), VV_DBNAME, VV_USER, VV_PASSWORD,
VV_API_KEY_A, VV_API_KEY_B, VV_ROUNDS (transactions per thread in the concurrent phase).
Output (stdout): one JSON object.
"""
import json
import os
import sys
import threading

import psycopg2


def env(name):
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"environment variable {name} is not set")
    return value


def connect(name):
    conn = psycopg2.connect(host=env("VV_HOST"), port=env("VV_PORT"), dbname=env("VV_DBNAME"),
                            user=env("VV_USER"), password=env("VV_PASSWORD"),
                            application_name=name)
    conn.autocommit = True  # the transactions below send BEGIN and COMMIT themselves
    return conn


def transaction(conn, key=None, insert=None, try_insert=False):
    """One transaction: optional transaction-scoped login, what it sees, optional insert."""
    seen = {}
    cur = conn.cursor()
    cur.execute("BEGIN")
    try:
        if key is not None:
            cur.execute("SELECT vault.login(%s, true)", (key,))
            seen["login"] = cur.fetchone()[0]
        cur.execute("SELECT pg_backend_pid(), vault.principal(), "
                    "coalesce(current_setting('vector_vault.vault', true), ''), "
                    "vault.access_level('vault_a'), vault.access_level('vault_b'), "
                    "pg_current_xact_id()::text::bigint")
        pid, principal, vault, level_a, level_b, xid = cur.fetchone()
        seen.update(pid=pid, principal=principal, vault=vault, level_a=level_a, level_b=level_b,
                    xid=xid)
        if insert is not None:
            cur.execute("INSERT INTO items (body, meta, embedding) VALUES (%s, %s, %s)",
                        (insert, json.dumps({"by": insert}), "[5,5,5]"))
        cur.execute("SELECT body, meta, embedding FROM items ORDER BY id")
        seen["bodies"] = [r[0] for r in cur.fetchall()]
        # The vault_hnsw search path as well: only readable vaults' rows come back. Without a
        # login no vault is selected, so the query vector itself cannot be sealed (55000).
        cur.execute("SAVEPOINT q")
        try:
            cur.execute("SET LOCAL enable_seqscan = off")
            cur.execute("SELECT body FROM items ORDER BY embedding <-> %s LIMIT 10", ("[0,0,0]",))
            seen["searched"] = sorted(r[0] for r in cur.fetchall())
        except psycopg2.Error as e:
            seen["search_error"] = e.pgcode
            cur.execute("ROLLBACK TO SAVEPOINT q")
        if try_insert:
            cur.execute("SAVEPOINT s")
            try:
                cur.execute("INSERT INTO items (body) VALUES ('written without a key')")
                seen["insert_without_key"] = "accepted"
            except psycopg2.Error as e:
                seen["insert_without_key"] = e.pgcode
                cur.execute("ROLLBACK TO SAVEPOINT s")
        cur.execute("COMMIT")
    except psycopg2.Error as e:
        seen["error"] = f"{e.pgcode} {e}"
        cur.execute("ROLLBACK")
    return seen


def main():
    key_a, key_b = env("VV_API_KEY_A"), env("VV_API_KEY_B")
    rounds = int(os.environ.get("VV_ROUNDS", "25"))
    client_a, client_b, client_none = connect("client_a"), connect("client_b"), connect("client_none")
    steps = [
        ("a1", client_a, dict(key=key_a)),
        ("b1", client_b, dict(key=key_b)),
        ("none1", client_none, dict(try_insert=True)),
        ("a2", client_a, dict(key=key_a, insert="A-new")),
        ("b2", client_b, dict(key=key_b, insert="B-new")),
        ("a_nokey", client_a, dict()),          # the same client, a later transaction, no login
        ("none2", client_none, dict(try_insert=True)),
        ("b3", client_b, dict(key=key_b)),
        ("b_nokey", client_b, dict()),
        ("a3", client_a, dict(key=key_a)),
    ]
    out = {"steps": {}}
    for name, conn, kwargs in steps:
        out["steps"][name] = transaction(conn, **kwargs)
        out["steps"][name]["order"] = len(out["steps"])
    for c in (client_a, client_b, client_none):
        c.close()

    # Concurrent phase: three threads hammer the single pooled server connection.
    results = {"a": [], "b": [], "none": []}

    def worker(tag, key):
        conn = connect(f"worker_{tag}")
        for _ in range(rounds):
            results[tag].append(transaction(conn, key=key))
        conn.close()

    threads = [threading.Thread(target=worker, args=(t, k))
               for t, k in (("a", key_a), ("b", key_b), ("none", None))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out["concurrent"] = {
        tag: {
            "transactions": len(res),
            "errors": [r["error"] for r in res if "error" in r],
            "pids": sorted({r.get("pid") for r in res if "pid" in r}),
            "bodies": sorted({b for r in res for b in r.get("bodies", [])}),
            "searched": sorted({b for r in res for b in r.get("searched", [])}),
            "principals": sorted({" ".join(r.get("principal", "").split()[:2]) for r in res}),
            "search_errors": sorted({r["search_error"] for r in res if "search_error" in r}),
        }
        for tag, res in results.items()
    }
    # How often the server session passed from one client's transaction to another's.
    order = sorted((r["xid"], tag) for tag, res in results.items() for r in res if "xid" in r)
    out["concurrent_switches"] = sum(1 for x, y in zip(order, order[1:]) if x[1] != y[1])
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
