#!/usr/bin/python3
"""Index-cache benchmark: vector_vault's vault_hnsw in each cache representation (float32, sq8, and
auto with a cache a quarter of the index, which picks sq4 when it fits, else pages) next to pgvector 0.8.6's
hnsw and hnswlib in-process, on Fashion-MNIST 60,000 x 784 (L2), in one run on one server.

Run through test/bench/cache.sh, which builds and installs both extensions and starts a throwaway
server; this script talks to that server (--dsn), restarts it with each setting (--pgdata), and
prints/writes test/bench/results/cache-<date>.{md,json,png}. Figures are measurements of this
machine in this run; nothing here passes or fails on time.

What one run does:
  1. loads the same vectors into ev (id int, embedding evector(784)), one vault, and
     pv (id int, embedding vector(784)); builds vault_hnsw and pgvector's hnsw, both m = 16,
     ef_construction = 64, two threads each (vector_vault.build_threads = 2; pgvector: leader + 1
     parallel maintenance worker); build time and pg_relation_size of each index;
  2. for each vector_vault phase (float32 in a 1 GB cache, sq8 in a 1 GB cache, auto with
     cache_size = --small-fraction of the index size: sq4 when it fits, else pages): ALTER SYSTEM, restart, the first query
     (which loads the index) timed on its own, pg_prewarm of all four relations, then recall@10 and
     QPS for each ef_search through test/bench/knn_run.c (libpq, binary parameter, WARM untimed
     queries, then PASSES timed passes, QPS = median pass), vault.index_cache read afterwards,
     and the private memory of --conns concurrent searching connections;
  3. pgvector through the same client in the same server (after the sq8 phase);
  4. hnswlib_bench (bench.py's in-process reference, native and portable builds) on the same data;
  5. the memory probe: per backend RssAnon (/proc/<pid>/status) after connecting and preparing,
     and again after every connection ran --conn-queries searches concurrently; sum and max of
     the growth, with a positive control (a session filling 64 MB of temp buffers);
  6. single-row inserts (each its own transaction) into ev with sq8 and into pv, and (extra) into
     ev with the small cache (auto).
The install lock: the server loads vector_vault.so from the system library directory at each
restart, where other engineers install their builds. Each restart holds --lock and, if the
installed vector_vault.so is not this run's, puts ours in place for the start and theirs back
after it (a running server keeps the library it loaded); the results note every such swap.
"""
import argparse
import datetime
import fcntl
import filecmp
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import psycopg2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import machine_info, prepare_data, recall, run_hnswlib, vec_text  # noqa: E402

K = 10
PG_CTL = "/usr/lib/postgresql/15/bin/pg_ctl"
VV_SQL = "SELECT id FROM ev ORDER BY embedding <-> $1 LIMIT 10"
PV_SQL = "SELECT id FROM pv ORDER BY embedding <-> $1 LIMIT 10"


def loadavg():
    """The 1/5/15-minute load averages, as a string."""
    return "%.2f %.2f %.2f" % os.getloadavg()


class Server:
    """The throwaway server: connections, settings and restarts under the install lock."""

    def __init__(self, args):
        self.dsn = args.dsn
        self.pgdata = args.pgdata
        self.log = args.log
        self.lock = args.lock
        self.work = os.path.dirname(os.path.abspath(args.pgdata))
        # (ours, installed, restore theirs after the start): only a preloaded library may be put
        # back, since the postmaster's children keep the copy it loaded.
        self.libs = [tuple(args.vv_so.split(":")) + (True,)]
        if args.pgv_so:
            self.libs.append(tuple(args.pgv_so.split(":")) + (False,))
        self.events = []

    def connect(self):
        """An autocommit connection (vault 'bench' selected when it exists)."""
        conn = psycopg2.connect(self.dsn)
        conn.autocommit = True
        return conn

    def as_user(self, user):
        """The same server, connecting as another role (for connections only, not restarts)."""
        other = Server.__new__(Server)
        other.__dict__.update(self.__dict__)
        other.dsn = re.sub(r"\buser=\S+", "user=" + user, self.dsn)
        return other

    def restart(self, settings):
        """ALTER SYSTEM SET each setting, then restart the server holding the install lock."""
        conn = self.connect()
        cur = conn.cursor()
        for name, value in settings.items():
            cur.execute("ALTER SYSTEM SET %s = %%s" % name, (str(value),))
        conn.close()
        swapped = []
        t0 = time.perf_counter()
        with open(self.lock, "a") as lf:
            fcntl.flock(lf, fcntl.LOCK_EX)
            waited = time.perf_counter() - t0
            for ours, installed, restore in self.libs:
                if not filecmp.cmp(ours, installed, shallow=False):
                    keep = os.path.join(self.work, os.path.basename(installed) + ".theirs")
                    shutil.copy2(installed, keep)
                    subprocess.run(["install", "-m", "755", ours, installed], check=True)
                    swapped.append((installed, keep, restore))
            subprocess.run(["runuser", "-u", "postgres", "--", PG_CTL, "-D", self.pgdata, "-l",
                            self.log, "-m", "fast", "-w", "restart"], check=True,
                           stdout=subprocess.DEVNULL)
            for installed, keep, restore in swapped:
                if restore:
                    subprocess.run(["install", "-m", "755", keep, installed], check=True)
        facts = {"settings": settings, "lock_wait_s": round(waited, 2),
                 "swapped": ["%s (%s)" % (s[0], "put back after start" if s[2] else "left ours")
                             for s in swapped], "load": loadavg()}
        self.events.append(facts)
        if swapped:
            print("  installed library was another build: %s" % facts["swapped"], flush=True)
        conn = self.connect()
        cur = conn.cursor()
        for name, value in settings.items():
            cur.execute("SHOW %s" % name)
            facts.setdefault("shown", {})[name] = cur.fetchone()[0]
        conn.close()
        return facts


def knn_series(args, srv, typ, setup, sql, efset, efs, truth):
    """recall@10, QPS (median of the passes) and latency per ef through knn_run."""
    out = subprocess.run([args.client, srv.dsn, os.path.join(args.cache, "queries.f32"),
                          str(len(truth)), str(args.dims), str(args.warm), str(args.passes), typ,
                          setup, sql, efset] + [str(e) for e in efs],
                         check=True, capture_output=True, text=True).stdout
    pts = []
    for line in out.splitlines():
        j = json.loads(line)
        ids = np.array(j["ids"]).reshape(len(truth), K)
        rec = sum(recall(ids[i].tolist(), truth[i]) for i in range(len(truth))) / len(truth)
        qps = sorted(j["qps"])[len(j["qps"]) // 2]
        pts.append({"ef": j["ef"], "recall": rec, "qps": qps, "qps_passes": j["qps"],
                    "p50_us": j["p50_us"], "p99_us": j["p99_us"]})
        print("  ef %4d recall %.4f qps %8.1f (passes %s) p50 %.0f us p99 %.0f us" % (
            j["ef"], rec, qps, "/".join("%.0f" % x for x in j["qps"]), j["p50_us"], j["p99_us"]),
            flush=True)
    return pts


def index_cache(cur):
    """vault.index_cache's row for ev_idx."""
    cur.execute("SELECT representation, resident_bytes, vectors, vaults, resident_vaults, loads, "
                "hits, evictions FROM vault.index_cache WHERE index = 'ev_idx'::regclass")
    row = cur.fetchone()
    keys = ("representation", "resident_bytes", "vectors", "vaults", "resident_vaults", "loads",
            "hits", "evictions")
    return dict(zip(keys, row)) if row else None


def prewarm(cur):
    """Reads both tables (and pgvector's TOAST), both indexes into shared buffers."""
    cur.execute("SELECT sum(pg_prewarm(c.oid)) FROM pg_class c WHERE c.relname IN "
                "('ev', 'pv', 'ev_idx', 'pv_idx') OR c.oid IN (SELECT reltoastrelid FROM pg_class "
                "WHERE relname IN ('ev', 'pv') AND reltoastrelid <> 0)")
    return cur.fetchone()[0]


def rss_anon_kb(pid):
    """RssAnon of a process, kB."""
    with open("/proc/%d/status" % pid) as f:
        m = re.search(r"^RssAnon:\s+(\d+)\s+kB", f.read(), re.M)
    return int(m.group(1))


def memory_probe(srv, qtexts, nconn, per_conn, ef):
    """nconn connections search concurrently; RssAnon growth of their backends from after
    connect + SET + PREPARE to after per_conn searches each (kB), plus a positive control."""
    sessions = []
    for _ in range(nconn):
        conn = srv.connect()
        cur = conn.cursor()
        cur.execute("SET vector_vault.vault = 'bench'")
        cur.execute("SET vector_vault.ef_search = %d" % ef)
        cur.execute("PREPARE knn(evector) AS " + VV_SQL)
        cur.execute("SELECT pg_backend_pid()")
        sessions.append((conn, cur, cur.fetchone()[0]))
    before = [rss_anon_kb(pid) for _, _, pid in sessions]
    errors = []

    def work(i, cur):
        try:
            for j in range(per_conn):
                cur.execute("EXECUTE knn(%s)", (qtexts[(i * 37 + j) % len(qtexts)],))
                if len(cur.fetchall()) != K:
                    errors.append("session %d: short result" % i)
        except psycopg2.Error as e:
            errors.append("session %d: %s" % (i, e))

    threads = [threading.Thread(target=work, args=(i, s[1])) for i, s in enumerate(sessions)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    after = [rss_anon_kb(pid) for _, _, pid in sessions]
    growth = [a - b for a, b in zip(after, before)]
    # Positive control: the same probe sees a session that really grows.
    conn, cur, pid = sessions[0]
    b = rss_anon_kb(pid)
    cur.execute("SET temp_buffers = '64MB'")
    cur.execute("CREATE TEMP TABLE ballast AS SELECT g, repeat('x', 900) AS pad "
                "FROM generate_series(1, 60000) g")
    control = rss_anon_kb(pid) - b
    for conn, _, _ in sessions:
        conn.close()
    out = {"connections": nconn, "searches_each": per_conn, "ef_search": ef,
           "sum_growth_kb": sum(growth), "max_growth_kb": max(growth),
           "mean_before_kb": sum(before) / len(before), "growth_kb": growth,
           "aggregate_qps": nconn * per_conn / wall, "control_growth_kb": control,
           "errors": errors[:5], "load": loadavg()}
    print("  %d connections x %d searches: RssAnon growth sum %.1f MiB, max %.1f MiB per backend "
          "(before: %.1f MiB each on average); %.0f QPS together; control +%.1f MiB%s" % (
              nconn, per_conn, out["sum_growth_kb"] / 1024, out["max_growth_kb"] / 1024,
              out["mean_before_kb"] / 1024, out["aggregate_qps"], control / 1024,
              "; ERRORS %s" % errors[:2] if errors else ""), flush=True)
    return out


def first_query(srv, qtexts):
    """Milliseconds of the first search after a restart (it loads the index) and of the next."""
    conn = srv.connect()
    cur = conn.cursor()
    cur.execute("SET vector_vault.vault = 'bench'")
    cur.execute("PREPARE knn(evector) AS " + VV_SQL)
    cur.execute("SELECT 1")
    times = []
    for q in qtexts[:2]:
        t0 = time.perf_counter()
        cur.execute("EXECUTE knn(%s)", (q,))
        cur.fetchall()
        times.append((time.perf_counter() - t0) * 1000)
    cache = index_cache(cur)
    conn.close()
    return {"first_ms": times[0], "second_ms": times[1], "cache_after_first": cache}


def vv_phase(args, srv, name, representation, cache_mb, efs, truth, qtexts):
    """One vector_vault phase: restart with the setting, first query, prewarm, the ef sweep,
    vault.index_cache, the memory probe."""
    print("\n== vector_vault %s (cache_representation = %s, cache_size = %d MB)" % (
        name, representation, cache_mb), flush=True)
    restart = srv.restart({"vector_vault.cache_representation": representation,
                           "vector_vault.cache_size": "%dMB" % cache_mb})
    fq = first_query(srv, qtexts)
    print("  first query after restart %.1f ms (loads the index), second %.1f ms; cache: %s" % (
        fq["first_ms"], fq["second_ms"], fq["cache_after_first"]), flush=True)
    conn = srv.connect()
    cur = conn.cursor()
    prewarm(cur)
    load_before = loadavg()
    pts = knn_series(args, srv, "evector", "SET vector_vault.vault = 'bench'", VV_SQL,
                     "SET vector_vault.ef_search = ", efs, truth)
    load_after = loadavg()
    cache = index_cache(cur)
    print("  vault.index_cache: %s" % cache, flush=True)
    conn.close()
    mem = memory_probe(srv, qtexts, args.conns, args.conn_queries, 40)
    return {"name": name, "configured": representation, "cache_size_mb": cache_mb,
            "restart": restart, "first_query": fq, "search": pts, "index_cache": cache,
            "memory": mem, "load_before": load_before, "load_after": load_after}


def verify(cur):
    """vault.hnsw_verify('ev_idx'): overall result and the failing checks."""
    cur.execute("SELECT \"check\", ok, detail FROM vault.hnsw_verify('ev_idx')")
    rows = cur.fetchall()
    return {"ok": all(ok for _, ok, _ in rows), "checks": len(rows),
            "failed": ["%s: %s" % (c, d) for c, ok, d in rows if not ok][:10]}


def insert_rate(srv, table, vectors, first_id, setup):
    """Single-row inserts, each its own transaction (autocommit), vector texts prepared before."""
    texts = [vec_text(v) for v in vectors]
    conn = srv.connect()
    cur = conn.cursor()
    if setup:
        cur.execute(setup)
    sql = "INSERT INTO %s (id, embedding) VALUES (%%s, %%s)" % table
    t0 = time.perf_counter()
    for i, t in enumerate(texts):
        cur.execute(sql, (first_id + i, t))
    secs = time.perf_counter() - t0
    conn.close()
    return len(texts) / secs


def qps_at(points, target):
    """QPS at recall >= target: the best measured point meeting it, and linear interpolation (in
    recall) between the points around the target along the ef sweep. None when never reached."""
    pts = sorted(points, key=lambda p: p["ef"])
    ok = [p for p in pts if p["recall"] >= target]
    if not ok:
        return None
    best = max(ok, key=lambda p: p["qps"])
    interp, exact = None, False
    for i, p in enumerate(pts):
        if p["recall"] >= target:
            if i == 0:
                interp, exact = p["qps"], True  # the lowest ef already meets it
            else:
                a = pts[i - 1]
                f = (target - a["recall"]) / (p["recall"] - a["recall"])
                interp = a["qps"] + f * (p["qps"] - a["qps"])
            break
    return {"best_qps": best["qps"], "best_ef": best["ef"], "best_recall": best["recall"],
            "interp_qps": interp, "interp_at_lowest_ef": exact}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--pgdata", required=True)
    ap.add_argument("--log", required=True, help="the server log")
    ap.add_argument("--lock", default="/tmp/vv-install.lock")
    ap.add_argument("--vv-so", required=True, help="ours:installed path of vector_vault.so")
    ap.add_argument("--pgv-so", help="ours:installed path of pgvector's vector.so")
    ap.add_argument("--cache", required=True, help="directory for ground truth and binary data")
    ap.add_argument("--hnswlib", required=True)
    ap.add_argument("--hnswlib-portable")
    ap.add_argument("--client", required=True, help="knn_run (libpq, binary parameter)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--commit", default="unknown")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--inserts", type=int, default=1000)
    ap.add_argument("--efs", default="10,20,40,80,120,200")
    ap.add_argument("--warm", type=int, help="untimed queries per ef (200; synthetic 20)")
    ap.add_argument("--passes", type=int, help="timed passes per ef, median QPS (3; synthetic 1)")
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--big-cache-mb", type=int, default=1024)
    ap.add_argument("--small-fraction", type=float, default=0.25)
    ap.add_argument("--conns", type=int, default=20)
    ap.add_argument("--conn-queries", type=int, default=100)
    ap.add_argument("--synthetic", action="store_true",
                    help="the synthetic mode (cache_synthetic.py) instead of Fashion-MNIST")
    ap.add_argument("--n", type=int, default=1000000, help="synthetic: rows")
    ap.add_argument("--synthetic-queries", type=int, default=300)
    ap.add_argument("--zipf-s", type=float, default=1.0, help="synthetic: vault sizes ~ 1/rank^s")
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    if args.warm is None:
        args.warm = 20 if args.synthetic else 200
    if args.passes is None:
        args.passes = 1 if args.synthetic else 3
    if args.synthetic:
        import cache_synthetic
        return cache_synthetic.run(args, Server(args))
    efs = [int(x) for x in args.efs.split(",")]
    started = time.time()
    srv = Server(args)
    r = {"date": datetime.datetime.utcnow().strftime("%Y-%m-%d"),
         "started_utc": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M:%S"),
         "commit": args.commit, "machine": machine_info(), "load_start": loadavg(),
         "params": {k: getattr(args, k) for k in ("queries", "inserts", "warm", "passes", "m",
                                                   "ef_construction", "threads", "big_cache_mb",
                                                   "small_fraction", "conns", "conn_queries")},
         "efs": efs}
    print("load average at start: %s" % r["load_start"], flush=True)

    train, test, truth = prepare_data(args.cache, args.queries, K)
    queries = test[:args.queries]
    args.dims = train.shape[1]
    qtexts = [vec_text(q) for q in queries]

    for key, binary in (("hnswlib", args.hnswlib), ("hnswlib_portable", args.hnswlib_portable)):
        if binary:
            print("%s in-process ..." % key, flush=True)
            r[key] = run_hnswlib(binary, args.cache, args.m, args.ef_construction, args.threads,
                                 efs)
            r[key]["load"] = loadavg()

    # --- load and build ---------------------------------------------------------------------
    conn = srv.connect()
    cur = conn.cursor()
    cur.execute("SET client_min_messages = warning")
    cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    r["pgvector_version"] = cur.fetchone()[0]
    cur.execute("SELECT vault.create_vault('bench')")
    cur.execute("SET vector_vault.vault = 'bench'")
    buf = "".join("%d\t%s\n" % (i, vec_text(v)) for i, v in enumerate(train))
    for key, table, typ, am, opclass, threads_sql in (
            ("vector_vault", "ev", "evector", "vault_hnsw", "evector_l2_ops",
             "SET vector_vault.build_threads = %d" % args.threads),
            ("pgvector", "pv", "vector", "hnsw", "vector_l2_ops",
             "SET max_parallel_maintenance_workers = %d" % (args.threads - 1))):
        print("\n== %s: COPY %d rows, CREATE INDEX" % (key, len(train)), flush=True)
        cur.execute("CREATE TABLE %s (id int PRIMARY KEY, embedding %s(%d))" % (
            table, typ, args.dims))
        t0 = time.perf_counter()
        cur.copy_expert("COPY %s (id, embedding) FROM STDIN" % table, io.StringIO(buf))
        copy_s = time.perf_counter() - t0
        cur.execute("VACUUM ANALYZE %s" % table)
        cur.execute("SELECT attstorage FROM pg_attribute WHERE attrelid = '%s'::regclass "
                    "AND attname = 'embedding'" % table)
        storage = {"p": "plain", "e": "external", "m": "main", "x": "extended"}.get(
            cur.fetchone()[0], "?")
        cur.execute(threads_sql)
        load = loadavg()
        t0 = time.perf_counter()
        cur.execute("CREATE INDEX %s_idx ON %s USING %s (embedding %s) WITH (m = %d, "
                    "ef_construction = %d)" % (table, table, am, opclass, args.m,
                                               args.ef_construction))
        build_s = time.perf_counter() - t0
        cur.execute("SELECT pg_relation_size('%s_idx'), pg_total_relation_size('%s')" % (
            table, table))
        index_bytes, table_bytes = cur.fetchone()
        r[key] = {"copy_seconds": copy_s, "build_seconds": build_s, "index_bytes": index_bytes,
                  "table_total_bytes": table_bytes, "storage": storage, "build_load": load}
        print("  COPY %.1f s, CREATE INDEX %.1f s, index %.1f MiB (load before build %s)" % (
            copy_s, build_s, index_bytes / 2**20, load), flush=True)
    cur.execute("SELECT bool_and(ok) FROM vault.hnsw_verify('ev_idx')")
    r["vector_vault"]["verify_ok"] = cur.fetchone()[0]
    for table in ("ev", "pv"):
        cur.execute("EXPLAIN SELECT id FROM %s ORDER BY embedding <-> '%s' LIMIT 10" % (
            table, qtexts[0]))
        plan = "\n".join(x[0] for x in cur.fetchall())
        assert "%s_idx" % table in plan, plan
    conn.close()

    # --- vector_vault phases ------------------------------------------------------------------
    small_mb = max(1, int(round(args.small_fraction * r["vector_vault"]["index_bytes"] / 2**20)))
    phases = []
    phases.append(vv_phase(args, srv, "float32", "float32", args.big_cache_mb, efs, truth, qtexts))
    phases.append(vv_phase(args, srv, "sq8", "sq8", args.big_cache_mb, efs, truth, qtexts))
    # pgvector in the same server, same client, right after the sq8 phase
    print("\n== pgvector %s hnsw (hnsw.ef_search)" % r["pgvector_version"], flush=True)
    conn = srv.connect()
    cur = conn.cursor()
    prewarm(cur)
    conn.close()
    r["pgvector"]["load_before"] = loadavg()
    r["pgvector"]["search"] = knn_series(args, srv, "vector", "", PV_SQL, "SET hnsw.ef_search = ",
                                         efs, truth)
    r["pgvector"]["load_after"] = loadavg()
    # the default representation (auto: float32, sq8, sq4, pages, the first that fits)
    phases.append(vv_phase(args, srv, "auto, cache %d%% of the index" % round(100 * args.small_fraction),
                           "auto", small_mb, efs, truth, qtexts))
    r["phases"] = phases

    # --- single-row inserts -------------------------------------------------------------------
    print("\n== single-row inserts (%d each, autocommit)" % args.inserts, flush=True)
    srv.restart({"vector_vault.cache_representation": "sq8",
                 "vector_vault.cache_size": "%dMB" % args.big_cache_mb})
    conn = srv.connect()
    cur = conn.cursor()
    cur.execute("SET vector_vault.vault = 'bench'")
    cur.execute("SELECT id FROM ev ORDER BY embedding <-> %s LIMIT 10", (qtexts[0],))
    prewarm(cur)
    ins = {"load": loadavg()}
    extra = test[args.queries:args.queries + args.inserts]
    ins["vector_vault_sq8"] = insert_rate(srv, "ev", extra, 100000, "SET vector_vault.vault = 'bench'")
    ins["cache_after_sq8"] = index_cache(cur)
    ins["pgvector"] = insert_rate(srv, "pv", extra, 100000, None)
    ins["verify_after_sq8"] = verify(cur)
    print("  vector_vault (sq8) %.0f rows/s, pgvector %.0f rows/s; cache %s; hnsw_verify %s" % (
        ins["vector_vault_sq8"], ins["pgvector"], ins["cache_after_sq8"],
        ins["verify_after_sq8"]), flush=True)
    conn.close()
    srv.restart({"vector_vault.cache_representation": "auto",
                 "vector_vault.cache_size": "%dMB" % small_mb})
    conn = srv.connect()
    cur = conn.cursor()
    cur.execute("SET vector_vault.vault = 'bench'")
    cur.execute("SELECT id FROM ev ORDER BY embedding <-> %s LIMIT 10", (qtexts[0],))
    prewarm(cur)
    extra2 = test[args.queries + args.inserts:args.queries + 2 * args.inserts]
    ins["vector_vault_small"] = insert_rate(srv, "ev", extra2, 200000, "SET vector_vault.vault = 'bench'")
    ins["cache_after_small"] = index_cache(cur)
    ins["verify_after_small"] = verify(cur)
    ins["load_after"] = loadavg()
    print("  vector_vault (small cache) %.0f rows/s; cache %s; hnsw_verify %s" % (
        ins["vector_vault_small"], ins["cache_after_small"], ins["verify_after_small"]),
        flush=True)
    conn.close()
    if not ins["verify_after_small"]["ok"]:
        # Is the index damaged, or does verify misjudge it under the pages representation?
        # Again with the big cache (sq8), then after VACUUM, which relinks unreachable elements.
        srv.restart({"vector_vault.cache_representation": "sq8",
                     "vector_vault.cache_size": "%dMB" % args.big_cache_mb})
        conn = srv.connect()
        cur = conn.cursor()
        ins["verify_after_small_big_cache"] = verify(cur)
        cur.execute("VACUUM (INDEX_CLEANUP ON) ev")
        ins["verify_after_vacuum"] = verify(cur)
        print("  hnsw_verify with the big cache: %s; after VACUUM: %s" % (
            ins["verify_after_small_big_cache"], ins["verify_after_vacuum"]), flush=True)
        conn.close()
    r["inserts"] = ins
    r["restarts"] = srv.events
    r["load_end"] = loadavg()
    r["wall_seconds"] = time.time() - started
    r["server_log"] = log_findings(args.log)
    write_results(args.out, r)


def log_findings(path):
    """WARNING/ERROR/FATAL/PANIC lines of the server log (counts and the first few)."""
    counts, first = {}, []
    try:
        with open(path, errors="replace") as f:
            for line in f:
                m = re.search(r"\b(WARNING|ERROR|FATAL|PANIC):", line)
                if m and "canceling autovacuum task" in line:
                    # Postgres cancels autovacuum when DDL or VACUUM wants the table: normal.
                    counts["autovacuum cancelled (normal)"] = counts.get(
                        "autovacuum cancelled (normal)", 0) + 1
                elif m:
                    counts[m.group(1)] = counts.get(m.group(1), 0) + 1
                    if len(first) < 12:
                        first.append(line.rstrip()[:300])
    except OSError as e:
        return {"error": str(e)}
    return {"counts": counts, "first": first}


def mib(b):
    return b / 2**20


def fmt_qps_at(q):
    """A cell for qps_at()."""
    if q is None:
        return "not reached"
    s = "%s (ef %d)" % (format(round(q["best_qps"]), ","), q["best_ef"])
    if q["interp_at_lowest_ef"]:
        s += "; lowest ef already"
    else:
        s += "; interp. %s" % format(round(q["interp_qps"]), ",")
    return s


def out_name(outdir, date, ext, prefix="cache"):
    """<prefix>-<date>, or <prefix>-<date>-runN when an earlier run of the day wrote its .md."""
    base = "%s-%s" % (prefix, date)
    if not os.path.exists(os.path.join(outdir, base + ".md")):
        return base
    n = 2
    while os.path.exists(os.path.join(outdir, "%s-run%d.md" % (base, n))):
        n += 1
    return "%s-run%d" % (base, n)


def write_results(outdir, r):
    """cache-<date>[-runN].{json,md,png}."""
    os.makedirs(outdir, exist_ok=True)
    base = out_name(outdir, r["date"], "md")
    efs = r["efs"]
    vv, pv = r["vector_vault"], r["pgvector"]
    f32 = next(p for p in r["phases"] if p["name"] == "float32")
    f32_bytes = f32["index_cache"]["resident_bytes"]
    series = []
    for p in r["phases"]:
        c = p["index_cache"]
        series.append({"label": "vector_vault, %s" % p["name"],
                       "repr": "%s (cache_size %d MB)" % (c["representation"], p["cache_size_mb"]),
                       "resident": "%s (%.2fx)" % (format(c["resident_bytes"], ","),
                                                   c["resident_bytes"] / f32_bytes),
                       "search": p["search"], "build": vv["build_seconds"],
                       "size": vv["index_bytes"],
                       "inserts": (r["inserts"]["vector_vault_sq8"] if p["name"] == "sq8" else
                                   r["inserts"]["vector_vault_small"] if "cache" in p["name"]
                                   else None)})
    series.append({"label": "pgvector %s hnsw" % r["pgvector_version"], "repr": "shared buffers",
                   "resident": "", "search": pv["search"], "build": pv["build_seconds"],
                   "size": pv["index_bytes"], "inserts": r["inserts"]["pgvector"]})
    for key, label in (("hnswlib", "hnswlib in-process, -march=native"),
                       ("hnswlib_portable", "hnswlib in-process, portable x86-64")):
        if r.get(key):
            series.append({"label": label, "repr": "process memory", "resident": "",
                           "search": r[key]["search"], "build": r[key]["build_seconds"],
                           "size": None, "inserts": None})
    for s in series:
        s["at95"] = qps_at(s["search"], 0.95)
        s["at99"] = qps_at(s["search"], 0.99)
    m = r["machine"]
    L = ["# Index cache benchmark, %s" % r["date"], "",
         "`test/bench/cache.sh` at %s, started %s UTC, %.0f s wall (%.0f s of it waiting for the "
         "install lock at restarts). Machine: %s, %d cores; "
         "load average (1/5/15 min) %s at start, %s at the end (another engineer's tests shared "
         "the machine). Fashion-MNIST 60,000 x 784 (L2), %d queries (test images), recall@10 "
         "against exact numpy ground truth; m = %d, ef_construction = %d, %d build threads for "
         "each (vector_vault.build_threads; pgvector's leader + %d parallel maintenance worker; "
         "hnswlib threads)." % (
             r["commit"], r["started_utc"], r["wall_seconds"],
             sum(e["lock_wait_s"] for e in r["restarts"]), m["cpu"], m["cores"],
             r["load_start"], r["load_end"], r["params"]["queries"], r["params"]["m"],
             r["params"]["ef_construction"], r["params"]["threads"], r["params"]["threads"] - 1),
         "",
         "Searches: one connection, `test/bench/knn_run.c` (libpq, prepared `SELECT id ... ORDER BY "
         "embedding <-> $1 LIMIT 10`, vector as a binary parameter) for both extensions; per "
         "ef_search %d warm-up queries, then %d timed passes over the %d queries; QPS is the median "
         "pass, not pinned to a CPU. Each vector_vault row is a server restart with that setting "
         "(ALTER SYSTEM), the first query (which loads the index) timed alone, then pg_prewarm of "
         "all four relations. Cells are recall@10 / QPS. \"QPS at recall >= x\": the best measured "
         "point meeting x (its ef_search), then linear interpolation in recall between the two "
         "points of the sweep around x (\"lowest ef already\" when the smallest ef_search meets "
         "it). Resident bytes from `vault.index_cache` after the sweep, ratio to float32's." % (
             r["params"]["warm"], r["params"]["passes"], r["params"]["queries"]),
         "",
         "| series | representation | resident bytes (x float32) | " +
         " | ".join("ef %d" % e for e in efs) +
         " | QPS at recall >= 0.95 | QPS at recall >= 0.99 | build | index size | inserts/s |",
         "|---|---|---|" + "---|" * len(efs) + "---|---|---|---|---|"]
    for s in series:
        cells = []
        for e in efs:
            p = next((x for x in s["search"] if x["ef"] == e), None)
            cells.append("%.4f / %s" % (p["recall"], format(round(p["qps"]), ",")) if p else "")
        L.append("| %s | %s | %s | %s | %s | %s | %.1f s | %s | %s |" % (
            s["label"], s["repr"], s["resident"], " | ".join(cells), fmt_qps_at(s["at95"]),
            fmt_qps_at(s["at99"]), s["build"],
            "%.1f MiB" % mib(s["size"]) if s["size"] else "",
            "%.0f" % s["inserts"] if s["inserts"] else ""))
    # ratios at recall >= 0.99 (best measured points)
    refs = [s for s in series if not s["label"].startswith("vector_vault")]
    L += ["", "Ratios at recall@10 >= 0.99 (best measured points; vector_vault / reference; "
          "build: reference time / vector_vault time, > 1 means vector_vault builds faster):", "",
          "| vector_vault | " + " | ".join(s["label"] for s in refs) + " | vs float32 cache |",
          "|---|" + "---|" * len(refs) + "---|"]
    f32s = series[0]
    for s in series[:len(r["phases"])]:
        cells = []
        for ref in refs:
            a, b = s["at99"], ref["at99"]
            cells.append("%.2fx" % (a["best_qps"] / b["best_qps"]) if a and b else "n/a")
        a, b = s["at99"], f32s["at99"]
        L.append("| %s | %s | %s |" % (s["label"], " | ".join(cells),
                                       "%.2fx" % (a["best_qps"] / b["best_qps"]) if a and b else "n/a"))
    L.append("| build time | " + " | ".join("%.2fx" % (ref["build"] / vv["build_seconds"])
                                            for ref in refs) + " | |")
    # latency, first query, loads
    L += ["", "Per phase: first query after the restart (loads the index into the cache), the "
          "next query, latency at ef_search 40, and the load average around the sweep:", "",
          "| series | first query | second query | p50 / p99 at ef 40 | cache after first query | "
          "load before / after sweep |", "|---|---|---|---|---|---|"]
    for p in r["phases"]:
        q = next((x for x in p["search"] if x["ef"] == 40), None)
        c = p["first_query"]["cache_after_first"] or {}
        L.append("| vector_vault, %s | %.1f ms | %.1f ms | %s | %s, %s bytes | %s / %s |" % (
            p["name"], p["first_query"]["first_ms"], p["first_query"]["second_ms"],
            "%.0f / %.0f us" % (q["p50_us"], q["p99_us"]) if q else "",
            c.get("representation"), format(c.get("resident_bytes") or 0, ","),
            p["load_before"], p["load_after"]))
    q = next((x for x in pv["search"] if x["ef"] == 40), None)
    L.append("| pgvector | | | %s | | %s / %s |" % (
        "%.0f / %.0f us" % (q["p50_us"], q["p99_us"]) if q else "", pv["load_before"],
        pv["load_after"]))
    # memory
    L += ["", "Private memory: %d connections, each connected, `SET`, `PREPARE`d, then %d "
          "searches each (ef_search 40) all at once; growth of each backend's RssAnon "
          "(/proc/<pid>/status) from before its first search to after the last. Positive control: "
          "the first of those sessions then fills 64 MB of temp buffers." % (
              r["params"]["conns"], r["params"]["conn_queries"]), "",
          "| series | resident in cache | sum of growth | max per backend | RssAnon before (mean) | "
          "QPS of all connections | control | errors | load |",
          "|---|---|---|---|---|---|---|---|---|"]
    for p in r["phases"]:
        mm = p["memory"]
        L.append("| vector_vault, %s | %s | %.1f MiB | %.2f MiB | %.1f MiB | %.0f | +%.1f MiB | %s | %s |" % (
            p["name"], p["index_cache"]["representation"], mm["sum_growth_kb"] / 1024,
            mm["max_growth_kb"] / 1024, mm["mean_before_kb"] / 1024, mm["aggregate_qps"],
            mm["control_growth_kb"] / 1024, len(mm["errors"]) or "none", mm["load"]))
    ins = r["inserts"]

    def vtext(v):
        return "ok" if v["ok"] else "FAILED (%s)" % "; ".join(v["failed"])

    L += ["", "Single-row inserts, %d each, one transaction each (psycopg2, vector as text, "
          "prepared before timing): vector_vault with sq8 in a %d MB cache %.0f rows/s "
          "(cache after: %s), pgvector %.0f rows/s; `vault.hnsw_verify` then: %s. Then %d more "
          "into vector_vault with the %d MB cache %.0f rows/s (cache after: %s); "
          "`vault.hnsw_verify` then: %s. Load %s before, %s after." % (
              r["params"]["inserts"], r["params"]["big_cache_mb"], ins["vector_vault_sq8"],
              ins["cache_after_sq8"]["representation"], ins["pgvector"],
              vtext(ins["verify_after_sq8"]), r["params"]["inserts"],
              r["phases"][-1]["cache_size_mb"], ins["vector_vault_small"],
              ins["cache_after_small"]["representation"], vtext(ins["verify_after_small"]),
              ins["load"], ins["load_after"])]
    if "verify_after_small_big_cache" in ins:
        L += ["", "Because that failed: restarted with sq8 in the %d MB cache, `hnsw_verify`: %s; "
              "after `VACUUM (INDEX_CLEANUP ON) ev`: %s." % (
                  r["params"]["big_cache_mb"], vtext(ins["verify_after_small_big_cache"]),
                  vtext(ins["verify_after_vacuum"]))]
    L += [
          "", "Build: vector_vault COPY %.1f s, CREATE INDEX %.1f s (load %s), hnsw_verify %s; "
          "pgvector COPY %.1f s, CREATE INDEX %.1f s (load %s); column storage: evector `%s`, "
          "vector `%s` (pgvector's default; its rows are TOASTed out of line)." % (
              vv["copy_seconds"], vv["build_seconds"], vv["build_load"], vv["verify_ok"],
              pv["copy_seconds"], pv["build_seconds"], pv["build_load"], vv["storage"],
              pv["storage"])]
    swaps = [e for e in r["restarts"] if e["swapped"]]
    L += ["", "Restarts: %d, each under the install lock (longest wait %.1f s); %s." % (
        len(r["restarts"]), max(e["lock_wait_s"] for e in r["restarts"]),
        "the installed vector_vault.so was not byte-identical to this run's build (another "
        "engineer's install) at %d of them: ours was put in place for the start, theirs back after" % len(swaps) if swaps else
        "the installed libraries were this run's at every restart")]
    finish_report(outdir, base, L, r, series)


def finish_report(outdir, base, L, r, series, title=None):
    """Ends a report's lines L with the server log's findings and the file names, and writes
    <base>.json (r), <base>.md and the plot <base>.png."""
    lg = r["server_log"]
    if lg.get("counts"):
        L += ["", "Server log: %s.%s" % (", ".join(
            "%d %s" % (v, k) for k, v in sorted(lg["counts"].items())),
            " First lines:" if lg["first"] else "")]
        if lg["first"]:
            L += ["", "```"] + lg["first"] + ["```"]
    else:
        L += ["", "Server log: no WARNING, ERROR, FATAL or PANIC lines."]
    L += ["", "Plot: `%s.png`; all figures: `%s.json`." % (base, base), ""]
    text = "\n".join(L)
    with open(os.path.join(outdir, base + ".json"), "w") as f:
        json.dump(r, f, indent=1, default=str)
    with open(os.path.join(outdir, base + ".md"), "w") as f:
        f.write(text)
    print("\n" + text)
    plot(os.path.join(outdir, base + ".png"), series, r, title=title)


def plot(path, series, r, title=None):
    """recall vs QPS, every series."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        print("no plot: %s" % e)
        return
    fig, ax = plt.subplots(figsize=(8, 5))
    marks = ["o-", "s-", "D-", "^--", "v:", "x:"]
    for s, mk in zip(series, marks):
        pts = sorted(s["search"], key=lambda p: p["ef"])
        ax.plot([p["recall"] for p in pts], [p["qps"] for p in pts], mk,
                label="%s [%s]" % (s["label"], s["repr"]))
    ax.set_xlabel("recall@10")
    ax.set_ylabel("queries per second (one connection / one thread)")
    ax.set_yscale("log")
    ax.set_title(title or "Fashion-MNIST 60k x 784, L2, m=16, ef_construction=64, ef_search %s (%s)" % (
        ",".join(str(e) for e in r["efs"]), r["date"]), fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print("plot: %s" % path)


if __name__ == "__main__":
    main()
