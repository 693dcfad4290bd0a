#!/usr/bin/python3
"""vector_vault benchmark: Fashion-MNIST (ann-benchmarks set: 60k x 784, L2) through SQL on one
connection, next to hnswlib in-process and pgvector 0.8.6 (same server, same clients) on the same
data in the same run; plus cosine on L2-normalised vectors for vector_vault and pgvector.

Run through test/bench/run.sh, which builds everything and starts a throwaway server; this script
talks to that server (--dsn) and prints/writes the results. Figures are measurements of this
machine in this run; nothing here passes or fails on time.
"""
import argparse
import datetime
import gzip
import json
import os
import platform
import struct
import subprocess
import sys
import time

import numpy as np
import psycopg2

DATA = "/usr/share/datasets/fashion-mnist"


def load_idx(name):
    """Reads an idx3-ubyte.gz image file as float32 rows."""
    with gzip.open(os.path.join(DATA, name), "rb") as f:
        magic, n, rows, cols = struct.unpack(">IIII", f.read(16))
        assert magic == 2051, "not an idx3 image file"
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(n, rows * cols).astype(np.float32)


def exact_topk(base, queries, k):
    """Exact k nearest neighbours (L2) of each query, computed in float64."""
    base64 = base.astype(np.float64)
    norms = (base64 ** 2).sum(axis=1)
    out = np.empty((len(queries), k), dtype=np.int32)
    for s in range(0, len(queries), 100):
        q = queries[s:s + 100].astype(np.float64)
        d = norms[None, :] - 2.0 * q @ base64.T
        idx = np.argpartition(d, k, axis=1)[:, :k]
        part = np.take_along_axis(d, idx, axis=1)
        order = np.argsort(part, axis=1)
        out[s:s + 100] = np.take_along_axis(idx, order, axis=1)
    return out


def vec_text(v):
    """pgvector text form of a vector."""
    return "[" + ",".join("%g" % x for x in v) + "]"


def recall(found, truth):
    """recall@k of one query."""
    return len(set(found) & set(truth.tolist())) / len(truth)


def pin(pids, cpus):
    """Sets the CPU affinity of processes (0 = this one); needs root for the backend."""
    for p in pids:
        os.sched_setaffinity(p, cpus)


def timed_queries(cur, sql, qtexts, truth, warm=100, ids_map=None):
    """Runs sql once per query (warm-up first); returns (qps, mean recall)."""
    for q in qtexts[:warm]:
        cur.execute(sql, (q,))
        cur.fetchall()
    rec = 0.0
    t0 = time.perf_counter()
    for i, q in enumerate(qtexts):
        cur.execute(sql, (q,))
        rows = [r[0] for r in cur.fetchall()]
        if ids_map is not None:
            rows = [ids_map[r] for r in rows]
        rec += recall(rows, truth[i])
    secs = time.perf_counter() - t0
    return len(qtexts) / secs, rec / len(qtexts)


def prepare_data(cache, nqueries, k):
    """Loads Fashion-MNIST (train as base, the first nqueries test images as queries), computes
    the exact top k once (cached in cache/gt_<nqueries>.npy) and writes the binary files that
    hnswlib_bench and knn_client read (train.f32, queries.f32, gt.i32, shape.txt) into cache.
    Returns (train, test, truth): the queries are test[:nqueries]."""
    print("loading Fashion-MNIST ...", flush=True)
    train = load_idx("train-images-idx3-ubyte.gz")
    test = load_idx("t10k-images-idx3-ubyte.gz")
    queries = test[:nqueries]
    os.makedirs(cache, exist_ok=True)
    gt_path = os.path.join(cache, "gt_%d.npy" % nqueries)
    if os.path.exists(gt_path):
        truth = np.load(gt_path)
    else:
        print("computing exact ground truth ...", flush=True)
        truth = exact_topk(train, queries, k)
        np.save(gt_path, truth)
    train.tofile(os.path.join(cache, "train.f32"))
    queries.tofile(os.path.join(cache, "queries.f32"))
    truth.astype(np.int32).tofile(os.path.join(cache, "gt.i32"))
    with open(os.path.join(cache, "shape.txt"), "w") as f:
        f.write("%d %d %d %d\n" % (len(train), len(queries), train.shape[1], k))
    return train, test, truth


def run_hnswlib(binary, cache, m, ef_construction, threads, efs):
    """Runs hnswlib_bench on the files prepare_data wrote: build on threads threads, then one
    single-threaded pass per ef. Returns {"build_seconds", "search": [{ef, recall, qps}]}."""
    out = subprocess.run([binary, cache, str(m), str(ef_construction), str(threads)]
                         + [str(e) for e in efs], check=True, capture_output=True, text=True).stdout
    hn = [json.loads(line) for line in out.splitlines() if line.strip()]
    print("  build %.2f s" % hn[0]["seconds"], flush=True)
    for h in hn[1:]:
        print("  ef %4d recall %.4f qps %8.1f" % (h["ef"], h["recall"], h["qps"]), flush=True)
    return {"build_seconds": hn[0]["seconds"], "search": hn[1:]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--cache", required=True, help="directory for ground truth and binary data")
    ap.add_argument("--hnswlib", required=True, help="path of the hnswlib_bench binary (-march=native)")
    ap.add_argument("--hnswlib-portable", help="hnswlib_bench built for portable x86-64")
    ap.add_argument("--client", help="path of knn_client (libpq, binary parameters)")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--inserts", type=int, default=1000)
    ap.add_argument("--efs", default="10,20,40,80,120,200,400")
    ap.add_argument("--out", required=True, help="results directory")
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-pgvector", action="store_true",
                    help="skip pgvector (same-run L2 and cosine cases need CREATE EXTENSION vector)")
    ap.add_argument("--no-cosine", action="store_true", help="skip the cosine case")
    ap.add_argument("--no-half", action="store_true",
                    help="skip the half-precision case (ehalfvec / pgvector's halfvec, L2)")
    args = ap.parse_args()
    efs = [int(x) for x in args.efs.split(",")]
    k = 10
    results = {"date": datetime.date.today().isoformat(), "machine": machine_info(),
               "params": {"m": args.m, "ef_construction": args.ef_construction,
                          "threads": args.threads, "queries": args.queries}}

    train, test, truth = prepare_data(args.cache, args.queries, k)
    queries = test[:args.queries]

    # --- hnswlib in-process, same data, same parameters -------------------------------------
    for key, binary in (("hnswlib", args.hnswlib), ("hnswlib_portable", args.hnswlib_portable)):
        if binary:
            print("%s in-process ..." % key, flush=True)
            results[key] = run_hnswlib(binary, args.cache, args.m, args.ef_construction,
                                       args.threads, efs)

    # --- hnswlib's Python bindings (Debian's python3-hnswlib), one knn_query call per query ---
    # ann-benchmarks measures hnswlib this way; the figures the issue gives for this machine type
    # match it best. Optional: skipped when the module is missing.
    try:
        import hnswlib
    except ImportError:
        hnswlib = None
    if hnswlib is not None:
        print("hnswlib Python bindings ...", flush=True)
        p = hnswlib.Index(space="l2", dim=train.shape[1])
        p.init_index(max_elements=len(train), ef_construction=args.ef_construction, M=args.m,
                     random_seed=100)
        p.set_num_threads(args.threads)
        t0 = time.perf_counter()
        p.add_items(train, np.arange(len(train)))
        hp_build = time.perf_counter() - t0
        p.set_num_threads(1)
        hp_search = []
        for ef in efs:
            p.set_ef(ef)
            for q in queries[:100]:
                p.knn_query(q, k=k)
            rec = 0.0
            t0 = time.perf_counter()
            for i, q in enumerate(queries):
                labels, _ = p.knn_query(q, k=k)
                rec += recall(labels[0].tolist(), truth[i])
            secs = time.perf_counter() - t0
            hp_search.append({"ef": ef, "recall": rec / len(queries), "qps": len(queries) / secs})
            print("  ef %4d recall %.4f qps %8.1f" % (ef, hp_search[-1]["recall"], hp_search[-1]["qps"]),
                  flush=True)
        results["hnswlib_python"] = {"build_seconds": hp_build, "search": hp_search}
        print("  build %.2f s" % hp_build, flush=True)
        del p

    conn = psycopg2.connect(args.dsn)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SET client_min_messages = warning")
    # run.sh creates the extensions on its fresh server (under the install lock); IF NOT EXISTS
    # keeps this script usable against a server prepared by hand
    cur.execute("CREATE EXTENSION IF NOT EXISTS vector_vault")
    cur.execute("CREATE EXTENSION IF NOT EXISTS plain_l2")
    pgvector = not args.no_pgvector
    if pgvector:
        cur.execute("CREATE EXTENSION IF NOT EXISTS vector")
        cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        results["pgvector_version"] = cur.fetchone()[0]
    cur.execute("SELECT vault.create_vault('bench')")
    cur.execute("SET vector_vault.vault = 'bench'")
    cur.execute("CREATE TABLE items (id int PRIMARY KEY, embedding evector(%d))" % train.shape[1])

    # --- COPY -------------------------------------------------------------------------------
    print("COPY 60000 rows ...", flush=True)
    buf = "".join("%d\t%s\n" % (i, vec_text(v)) for i, v in enumerate(train))
    import io
    t0 = time.perf_counter()
    cur.copy_expert("COPY items (id, embedding) FROM STDIN", io.StringIO(buf))
    copy_s = time.perf_counter() - t0
    cur.execute("VACUUM ANALYZE items")
    print("  %.2f s" % copy_s, flush=True)

    # --- CREATE INDEX -----------------------------------------------------------------------
    print("CREATE INDEX ...", flush=True)
    t0 = time.perf_counter()
    cur.execute("CREATE INDEX items_idx ON items USING vault_hnsw (embedding evector_l2_ops) "
                "WITH (m = %d, ef_construction = %d)" % (args.m, args.ef_construction))
    build_s = time.perf_counter() - t0
    cur.execute("SELECT pg_relation_size('items_idx')")
    index_bytes = cur.fetchone()[0]
    print("  %.2f s, %.1f MiB" % (build_s, index_bytes / 2**20), flush=True)
    cur.execute("SELECT bool_and(ok) FROM vault.hnsw_verify('items_idx')")
    verify_ok = cur.fetchone()[0]
    results["vector_vault"] = {"copy_seconds": copy_s, "build_seconds": build_s,
                               "index_mib": index_bytes / 2**20, "verify_ok": verify_ok,
                               "search": []}

    # --- search through SQL, one connection, prepared statement with a bind parameter --------
    qtexts = [vec_text(q) for q in queries]
    cur.execute("PREPARE knn(evector) AS SELECT id FROM items ORDER BY embedding <-> $1 LIMIT 10")
    cur.execute("EXPLAIN EXECUTE knn('%s')" % qtexts[0])
    plan = "\n".join(r[0] for r in cur.fetchall())
    assert "items_idx" in plan, plan
    # Each ef is timed twice: as scheduled by the OS, and with this client and its backend pinned
    # to one CPU. On small VMs a wake-up across cores costs ~100 us per round trip, more than the
    # search itself; the pinned figure is the server's cost, the other what a client sees here.
    cur.execute("SELECT pg_backend_pid()")
    backend = cur.fetchone()[0]
    all_cpus = os.sched_getaffinity(0)
    for ef in efs:
        cur.execute("SET vector_vault.ef_search = %d" % ef)
        qps, rec = timed_queries(cur, "EXECUTE knn(%s)", qtexts, truth)
        pin([0, backend], {min(all_cpus)})
        qps_p, _ = timed_queries(cur, "EXECUTE knn(%s)", qtexts, truth)
        pin([0, backend], all_cpus)
        results["vector_vault"]["search"].append({"ef": ef, "recall": rec, "qps": qps,
                                                  "qps_pinned": qps_p})
        print("  ef %4d recall %.4f qps %8.1f (pinned to one CPU: %8.1f)" % (ef, rec, qps, qps_p),
              flush=True)

    # --- the same search through libpq with binary parameters (knn_client.c) -------------------
    if args.client:
        print("search through libpq, binary parameters ...", flush=True)
        out = subprocess.run([args.client, args.dsn, os.path.join(args.cache, "queries.f32"),
                              str(len(queries)), str(train.shape[1]), "100"] + [str(e) for e in efs],
                             check=True, capture_output=True, text=True).stdout
        lp = []
        for line in out.splitlines():
            j = json.loads(line)
            ids = np.array(j["ids"]).reshape(len(queries), k)
            rec = sum(recall(ids[i].tolist(), truth[i]) for i in range(len(queries))) / len(queries)
            lp.append({"ef": j["ef"], "recall": rec, "qps": j["qps"], "qps_pinned": j["qps_pinned"]})
            print("  ef %4d recall %.4f qps %8.1f (pinned to one CPU: %8.1f)" % (
                j["ef"], rec, j["qps"], j["qps_pinned"]), flush=True)
        results["vector_vault"]["search_libpq"] = lp

    # --- single-row inserts, one transaction each ---------------------------------------------
    extra = test[args.queries:args.queries + args.inserts]
    t0 = time.perf_counter()
    for i, v in enumerate(extra):
        cur.execute("INSERT INTO items (id, embedding) VALUES (%s, %s)", (100000 + i, vec_text(v)))
    ins_s = time.perf_counter() - t0
    results["vector_vault"]["inserts_per_second"] = len(extra) / ins_s
    print("  %d single-row inserts: %.1f rows/s" % (len(extra), len(extra) / ins_s), flush=True)

    # --- pgvector 0.8.6 in the same run: same data, same parameters, same clients -------------
    # hnsw with m and ef_construction as ours, its default build (Postgres' default
    # max_parallel_maintenance_workers = 2, so a leader and two workers) and hnsw.ef_search
    if pgvector:
        print("pgvector hnsw (L2) ...", flush=True)
        results["pgvector"] = sql_case(cur, args, "pgvector", "pg_items", "vector", "hnsw",
                                       "vector_l2_ops", "<->", "hnsw.ef_search", train, queries,
                                       truth, efs, os.path.join(args.cache, "queries.f32"))
        t0 = time.perf_counter()
        for i, v in enumerate(extra):
            cur.execute("INSERT INTO pg_items (id, embedding) VALUES (%s, %s)", (100000 + i, vec_text(v)))
        ins_s = time.perf_counter() - t0
        results["pgvector"]["inserts_per_second"] = len(extra) / ins_s
        print("  %d single-row inserts: %.1f rows/s" % (len(extra), len(extra) / ins_s), flush=True)

    # --- cosine on L2-normalised vectors, both extensions ----------------------------------------
    if not args.no_cosine:
        nbase = train / np.linalg.norm(train, axis=1, keepdims=True)
        nq = queries / np.linalg.norm(queries, axis=1, keepdims=True)
        nbase, nq = nbase.astype(np.float32), nq.astype(np.float32)
        gt_path = os.path.join(args.cache, "gt_cos_%d.npy" % args.queries)
        if os.path.exists(gt_path):
            ctruth = np.load(gt_path)
        else:
            print("computing exact cosine ground truth ...", flush=True)
            ctruth = exact_topk(nbase, nq, k)  # L2 order on unit vectors = cosine order
            np.save(gt_path, ctruth)
        qfile = os.path.join(args.cache, "queries_cos.f32")
        nq.tofile(qfile)
        results["cosine"] = {}
        print("vector_vault vault_hnsw (cosine, normalised) ...", flush=True)
        results["cosine"]["vector_vault"] = sql_case(
            cur, args, "vector_vault", "items_cos", "evector", "vault_hnsw", "evector_cosine_ops",
            "<=>", "vector_vault.ef_search", nbase, nq, ctruth, efs, qfile)
        if pgvector:
            print("pgvector hnsw (cosine, normalised) ...", flush=True)
            results["cosine"]["pgvector"] = sql_case(
                cur, args, "pgvector", "pg_items_cos", "vector", "hnsw", "vector_cosine_ops",
                "<=>", "hnsw.ef_search", nbase, nq, ctruth, efs, qfile)

    # --- half precision: ehalfvec (index and cache hold halves) and pgvector's halfvec, L2 -------
    # Fashion-MNIST's integers 0..255 are exact halves, so the ground truth is the L2 one. Through
    # psycopg2 only: knn_client sends float4 binary parameters.
    if not args.no_half:
        half_args = argparse.Namespace(**dict(vars(args), client=None))
        results["half"] = {}
        print("vector_vault vault_hnsw (ehalfvec, L2) ...", flush=True)
        results["half"]["vector_vault"] = sql_case(
            cur, half_args, "vector_vault", "items_half", "ehalfvec", "vault_hnsw", "ehalfvec_l2_ops",
            "<->", "vector_vault.ef_search", train, queries, truth, efs, None)
        cur.execute("SELECT vault.prewarm('items_half_idx')")
        cur.execute("SELECT representation, resident_bytes FROM vault.index_cache "
                    "WHERE index IN ('items_idx'::regclass, 'items_half_idx'::regclass) ORDER BY index")
        results["half"]["cache"] = [list(row) for row in cur.fetchall()]
        print("  cache: %s" % results["half"]["cache"], flush=True)
        if pgvector:
            print("pgvector hnsw (halfvec, L2) ...", flush=True)
            results["half"]["pgvector"] = sql_case(
                cur, half_args, "pgvector", "pg_items_half", "halfvec", "hnsw", "halfvec_l2_ops",
                "<->", "hnsw.ef_search", train, queries, truth, efs, None)

    # --- vault-scoped search: 20 vaults of 3,000 rows, a role that may read one ---------------
    print("vault-scoped scenario ...", flush=True)
    results["scoped"] = scoped(cur, train, queries, qtexts, k)

    conn.close()
    write_results(args.out, results)


def sql_case(cur, args, who, table, coltype, am, opclass, op, ef_setting, base, queries, truth,
             efs, qfile):
    """One index through SQL, as the vector_vault L2 case in main(): COPY the base rows into a new
    table, CREATE INDEX (timed), its size, then recall@10 and QPS per ef_search through psycopg2
    (as scheduled and pinned to one CPU) and through knn_client (libpq, binary parameter)."""
    import io
    k = 10
    dims = base.shape[1]
    cur.execute("CREATE TABLE %s (id int PRIMARY KEY, embedding %s(%d))" % (table, coltype, dims))
    buf = "".join("%d\t%s\n" % (i, vec_text(v)) for i, v in enumerate(base))
    t0 = time.perf_counter()
    cur.copy_expert("COPY %s (id, embedding) FROM STDIN" % table, io.StringIO(buf))
    copy_s = time.perf_counter() - t0
    cur.execute("VACUUM ANALYZE %s" % table)
    t0 = time.perf_counter()
    cur.execute("CREATE INDEX %s_idx ON %s USING %s (embedding %s) WITH (m = %d, ef_construction = %d)"
                % (table, table, am, opclass, args.m, args.ef_construction))
    build_s = time.perf_counter() - t0
    cur.execute("SELECT pg_relation_size('%s_idx')" % table)
    index_bytes = cur.fetchone()[0]
    print("  COPY %.2f s, CREATE INDEX %.2f s, %.1f MiB" % (copy_s, build_s, index_bytes / 2**20), flush=True)
    out = {"copy_seconds": copy_s, "build_seconds": build_s, "index_mib": index_bytes / 2**20,
           "search": []}
    qtexts = [vec_text(q) for q in queries]
    cur.execute("PREPARE knn_%s(%s) AS SELECT id FROM %s ORDER BY embedding %s $1 LIMIT 10"
                % (table, coltype, table, op))
    cur.execute("EXPLAIN EXECUTE knn_%s('%s')" % (table, qtexts[0]))
    plan = "\n".join(r[0] for r in cur.fetchall())
    assert "%s_idx" % table in plan, plan
    cur.execute("SELECT pg_backend_pid()")
    backend = cur.fetchone()[0]
    all_cpus = os.sched_getaffinity(0)
    for ef in efs:
        cur.execute("SET %s = %d" % (ef_setting, ef))
        qps, rec = timed_queries(cur, "EXECUTE knn_%s(%%s)" % table, qtexts, truth)
        pin([0, backend], {min(all_cpus)})
        qps_p, _ = timed_queries(cur, "EXECUTE knn_%s(%%s)" % table, qtexts, truth)
        pin([0, backend], all_cpus)
        out["search"].append({"ef": ef, "recall": rec, "qps": qps, "qps_pinned": qps_p})
        print("  ef %4d recall %.4f qps %8.1f (pinned to one CPU: %8.1f)" % (ef, rec, qps, qps_p),
              flush=True)
    cur.execute("RESET %s" % ef_setting)
    if args.client:
        env = dict(os.environ, KNN_TABLE=table, KNN_TYPE=coltype, KNN_OP=op, KNN_EF_SETTING=ef_setting)
        res = subprocess.run([args.client, args.dsn, qfile, str(len(queries)), str(dims), "100"]
                             + [str(e) for e in efs], check=True, capture_output=True, text=True,
                             env=env).stdout
        lp = []
        for line in res.splitlines():
            j = json.loads(line)
            ids = np.array(j["ids"]).reshape(len(queries), k)
            rec = sum(recall(ids[i].tolist(), truth[i]) for i in range(len(queries))) / len(queries)
            lp.append({"ef": j["ef"], "recall": rec, "qps": j["qps"], "qps_pinned": j["qps_pinned"]})
            print("  libpq ef %4d recall %.4f qps %8.1f (pinned to one CPU: %8.1f)" % (
                j["ef"], rec, j["qps"], j["qps_pinned"]), flush=True)
        out["search_libpq"] = lp
    return out


def scoped(cur, train, queries, qtexts, k):
    """20 vaults x 3,000 rows; compares our vault-scoped search with the two plans a pgvector
    user has today, both timed here: (a) btree on the vault column + exact sort of that vault's
    rows (plaintext real[] and a pgvector-equivalent L2 loop, see plain_l2/), and (b) one global
    HNSW index over all vaults with post-filtering by an iterative scan (our own index, searched
    by a role that may read every vault)."""
    nv, per = 20, 3000
    target = 7
    cur.execute("CREATE TABLE items_v (id int PRIMARY KEY, vault_no int, embedding evector(%d))"
                % train.shape[1])
    cur.execute("CREATE TABLE plain_v (id int PRIMARY KEY, vault_no int, embedding real[])")
    cur.execute("ALTER TABLE plain_v ALTER embedding SET STORAGE EXTERNAL")
    import io
    for v in range(nv):
        cur.execute("SELECT vault.create_vault('bench_v%d')" % v)
        cur.execute("SET vector_vault.vault = 'bench_v%d'" % v)
        rows = range(v * per, (v + 1) * per)
        buf = "".join("%d\t%d\t%s\n" % (i, v, vec_text(train[i])) for i in rows)
        cur.copy_expert("COPY items_v (id, vault_no, embedding) FROM STDIN", io.StringIO(buf))
        pbuf = "".join("%d\t%d\t{%s}\n" % (i, v, ",".join("%g" % x for x in train[i])) for i in rows)
        cur.copy_expert("COPY plain_v (id, vault_no, embedding) FROM STDIN", io.StringIO(pbuf))
    cur.execute("CREATE INDEX items_v_idx ON items_v USING vault_hnsw (embedding)")
    cur.execute("CREATE INDEX ON items_v (vault_no)")
    cur.execute("CREATE INDEX ON plain_v (vault_no)")
    cur.execute("VACUUM ANALYZE items_v")
    cur.execute("VACUUM ANALYZE plain_v")
    cur.execute("DROP ROLE IF EXISTS bench_reader")
    cur.execute("CREATE ROLE bench_reader")
    cur.execute("GRANT SELECT ON items_v, plain_v TO bench_reader")
    cur.execute("SELECT vault.grant('bench_v%d', 'bench_reader', 'read')" % target)
    # ground truth inside the target vault
    base = train[target * per:(target + 1) * per]
    truth = exact_topk(base, queries, k) + target * per
    out = {"vaults": nv, "rows_per_vault": per}
    cur.execute("RESET vector_vault.ef_search")

    # ours: the role that may read one vault
    cur.execute("SET ROLE bench_reader")
    cur.execute("SET vector_vault.vault = 'bench_v%d'" % target)
    cur.execute("PREPARE ours(evector) AS SELECT id FROM items_v ORDER BY embedding <-> $1 LIMIT 10")
    cur.execute("EXPLAIN EXECUTE ours('%s')" % qtexts[0])
    assert "items_v_idx" in "\n".join(r[0] for r in cur.fetchall())
    qps, rec = timed_queries(cur, "EXECUTE ours(%s)", qtexts, truth)
    cur.execute("SELECT count(*) FROM (SELECT id FROM items_v ORDER BY embedding <-> %s LIMIT 10) s",
                (qtexts[1],))
    full = cur.fetchone()[0] == 10
    out["vector_vault"] = {"qps": qps, "recall": rec, "full_limit": full}
    print("  vector_vault scoped       recall %.4f qps %8.1f (limit filled: %s)" % (rec, qps, full), flush=True)

    # (a) btree on the vault column + exact sort, plaintext (what pgvector does without an index)
    cur.execute("PREPARE plan_a(real[]) AS SELECT id FROM plain_v WHERE vault_no = %d "
                "ORDER BY embedding <<->> $1 LIMIT 10" % target)
    atexts = ["{" + ",".join("%g" % x for x in q) + "}" for q in queries]
    qps_a, rec_a = timed_queries(cur, "EXECUTE plan_a(%s)", atexts, truth, warm=20)
    out["btree_exact_plaintext"] = {"qps": qps_a, "recall": rec_a}
    print("  (a) btree + exact sort    recall %.4f qps %8.1f" % (rec_a, qps_a), flush=True)
    cur.execute("RESET ROLE")

    # (b) one global HNSW index, post-filtered by vault with an iterative scan
    cur.execute("SET vector_vault.vault = 'bench_v%d'" % target)
    cur.execute("PREPARE plan_b(evector) AS SELECT id FROM items_v WHERE vault_no = %d "
                "ORDER BY embedding <-> $1 LIMIT 10" % target)
    cur.execute("EXPLAIN EXECUTE plan_b('%s')" % qtexts[0])
    plan_b = "\n".join(r[0] for r in cur.fetchall())
    qps_b, rec_b = timed_queries(cur, "EXECUTE plan_b(%s)", qtexts, truth, warm=20)
    out["global_hnsw_postfilter"] = {"qps": qps_b, "recall": rec_b, "uses_hnsw": "items_v_idx" in plan_b}
    print("  (b) global HNSW + filter  recall %.4f qps %8.1f" % (rec_b, qps_b), flush=True)
    best = max(qps_a, qps_b)
    out["ratio_vs_best_baseline"] = qps / best
    print("  vault-scoped speed-up over the better baseline: %.1fx" % (qps / best), flush=True)
    return out


def pgvector_lines(r):
    """Markdown: vector_vault against pgvector from the same run (L2, then cosine), and fills
    r["summary"] with the ratios at recall >= 0.99."""
    pv = r.get("pgvector")
    if not pv:
        return []
    vv = r["vector_vault"]
    ver = r.get("pgvector_version", "")

    def best(pts, key="qps", target=0.99):
        return qps_at_recall([{"recall": p["recall"], "qps": p[key]} for p in pts or []], target)

    def ratio(a, b):
        return "%.2fx" % (a / b) if a and b else "n/a"

    def cmp_table(a, b, inserts):
        t = ["| measure | vector_vault (encrypted) | pgvector %s (plaintext) | ratio |" % ver,
             "|---|---|---|---|",
             "| COPY 60k rows | %.2f s | %.2f s | %.2fx |" % (a["copy_seconds"], b["copy_seconds"],
                                                          a["copy_seconds"] / b["copy_seconds"]),
             "| CREATE INDEX | %.2f s | %.2f s | %.2fx |" % (a["build_seconds"], b["build_seconds"],
                                                         a["build_seconds"] / b["build_seconds"]),
             "| index size | %.1f MiB | %.1f MiB | %.2fx |" % (a["index_mib"], b["index_mib"],
                                                           a["index_mib"] / b["index_mib"])]
        if inserts:
            t.append("| single-row inserts | %.0f rows/s | %.0f rows/s | %.2fx |" % (
                a["inserts_per_second"], b["inserts_per_second"],
                a["inserts_per_second"] / b["inserts_per_second"]))
        for p in a["search"]:
            q = next((x for x in b["search"] if x["ef"] == p["ef"]), None)
            if q:
                t.append("| ef_search %d, psycopg2 | recall %.4f, %.0f QPS (pinned %.0f) | recall %.4f, "
                         "%.0f QPS (pinned %.0f) | %.2fx (pinned %.2fx) |" % (
                             p["ef"], p["recall"], p["qps"], p["qps_pinned"], q["recall"], q["qps"],
                             q["qps_pinned"], p["qps"] / q["qps"], p["qps_pinned"] / q["qps_pinned"]))
        for p in a.get("search_libpq") or []:
            q = next((x for x in b.get("search_libpq") or [] if x["ef"] == p["ef"]), None)
            if q:
                t.append("| ef_search %d, libpq binary | recall %.4f, %.0f QPS (pinned %.0f) | recall %.4f, "
                         "%.0f QPS (pinned %.0f) | %.2fx (pinned %.2fx) |" % (
                             p["ef"], p["recall"], p["qps"], p["qps_pinned"], q["recall"], q["qps"],
                             q["qps_pinned"], p["qps"] / q["qps"], p["qps_pinned"] / q["qps_pinned"]))
        for target in (0.95, 0.99):
            for label, key, sk in (("psycopg2", "search", "qps"), ("psycopg2 pinned", "search", "qps_pinned"),
                                   ("libpq binary", "search_libpq", "qps"),
                                   ("libpq binary pinned", "search_libpq", "qps_pinned")):
                x, y = best(a.get(key), sk, target), best(b.get(key), sk, target)
                t.append("| best QPS at recall >= %.2f, %s | %s | %s | %s |" % (
                    target, label, "%.0f" % x if x else "not reached", "%.0f" % y if y else "not reached",
                    ratio(x, y)))
        return t

    lines = ["", "pgvector %s hnsw in the same run (same server, data, m, ef_construction, clients; "
             "its default build: Postgres' max_parallel_maintenance_workers = 2), L2:" % ver, ""]
    lines += cmp_table(vv, pv, True)
    r["summary"]["vs pgvector"] = {
        "build_ratio": vv["build_seconds"] / pv["build_seconds"],
        "index_size_ratio": vv["index_mib"] / pv["index_mib"],
        "insert_ratio": vv["inserts_per_second"] / pv["inserts_per_second"],
        "qps_at_0.99": {"vector_vault": best(vv["search"]), "pgvector": best(pv["search"]),
                        "vector_vault_libpq": best(vv.get("search_libpq")),
                        "pgvector_libpq": best(pv.get("search_libpq"))}}
    cos = r.get("cosine") or {}
    if cos.get("vector_vault") and cos.get("pgvector"):
        lines += ["", "Cosine (`<=>`, evector_cosine_ops / vector_cosine_ops) on L2-normalised vectors, same run:", ""]
        lines += cmp_table(cos["vector_vault"], cos["pgvector"], False)
        a, b = cos["vector_vault"], cos["pgvector"]
        r["summary"]["vs pgvector, cosine"] = {
            "build_ratio": a["build_seconds"] / b["build_seconds"],
            "index_size_ratio": a["index_mib"] / b["index_mib"],
            "qps_at_0.99": {"vector_vault": best(a["search"]), "pgvector": best(b["search"]),
                            "vector_vault_libpq": best(a.get("search_libpq")),
                            "pgvector_libpq": best(b.get("search_libpq"))}}
    half = r.get("half") or {}
    if half.get("vector_vault") and half.get("pgvector"):
        lines += ["", "Half precision (`<->`, ehalfvec_l2_ops / halfvec_l2_ops), same run; the "
                  "vector_vault cache entries (representation, bytes) of the evector and ehalfvec "
                  "indexes: %s:" % ", ".join("%s %.1f MiB" % (c[0], c[1] / 2**20) for c in half.get("cache", [])),
                  ""]
        lines += cmp_table(half["vector_vault"], half["pgvector"], False)
    return lines


def machine_info():
    """What this machine is, for the record."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version()}


def qps_at_recall(points, target):
    """Highest QPS among points with recall >= target (None if never reached)."""
    ok = [p["qps"] for p in points if p["recall"] >= target]
    return max(ok) if ok else None


def write_results(outdir, r):
    """Writes results-<date>.json, a markdown summary and the recall/QPS plot."""
    os.makedirs(outdir, exist_ok=True)
    date = r["date"]
    vv, hn = r["vector_vault"], r["hnswlib"]
    r["summary"] = {
        "qps_at_0.99_vector_vault": qps_at_recall(vv["search"], 0.99),
        "qps_at_0.99_hnswlib": qps_at_recall(hn["search"], 0.99),
        "build_ratio_vs_hnswlib": vv["build_seconds"] / hn["build_seconds"],
    }
    a, b = r["summary"]["qps_at_0.99_vector_vault"], r["summary"]["qps_at_0.99_hnswlib"]
    r["summary"]["qps_ratio_at_0.99"] = (a / b) if a and b else None
    pinned = [{"recall": p["recall"], "qps": p["qps_pinned"]} for p in vv["search"]]
    r["summary"]["qps_at_0.99_vector_vault_pinned"] = qps_at_recall(pinned, 0.99)
    hp = r.get("hnswlib_portable")
    if hp:
        c = qps_at_recall(hp["search"], 0.99)
        r["summary"]["qps_at_0.99_hnswlib_portable"] = c
        r["summary"]["qps_ratio_at_0.99_vs_portable"] = (a / c) if a and c else None
        r["summary"]["build_ratio_vs_hnswlib_portable"] = vv["build_seconds"] / hp["build_seconds"]
    lines = ["# vector_vault benchmark, %s" % date, "",
             "Machine: %s, %d cores. Fashion-MNIST 60,000 x 784 (L2), %d queries, m=%d, "
             "ef_construction=%d, build threads %d. One SQL connection (QPS as the OS schedules it, "
             "and with client and backend pinned to one CPU); hnswlib in-process in the same run." % (r["machine"]["cpu"], r["machine"]["cores"], r["params"]["queries"],
                               r["params"]["m"], r["params"]["ef_construction"], r["params"]["threads"]),
             "", "| measure | vector_vault (encrypted) | hnswlib in-process | ratio |",
             "|---|---|---|---|",
             "| build | %.2f s | %.2f s | %.2fx |" % (vv["build_seconds"], hn["build_seconds"],
                                                    vv["build_seconds"] / hn["build_seconds"]),
             "| index size | %.1f MiB | | |" % vv["index_mib"],
             "| COPY 60k rows | %.2f s | | |" % vv["copy_seconds"],
             "| single-row inserts | %.0f rows/s | | |" % vv["inserts_per_second"]]
    for p in vv["search"]:
        h = next((x for x in hn["search"] if x["ef"] == p["ef"]), None)
        lines.append("| ef_search %d | recall %.4f, %.0f QPS (pinned %.0f) | recall %.4f, %.0f QPS "
                     "| %.2fx (pinned %.2fx) |" % (
                         p["ef"], p["recall"], p["qps"], p["qps_pinned"], h["recall"], h["qps"],
                         p["qps"] / h["qps"], p["qps_pinned"] / h["qps"]))
    if r["summary"]["qps_ratio_at_0.99"]:
        lines.append("| best QPS at recall >= 0.99 | %.0f (pinned %.0f) | %.0f | %.2fx |" % (
            a, r["summary"]["qps_at_0.99_vector_vault_pinned"] or 0, b, a / b))
    if hp:
        c = r["summary"]["qps_at_0.99_hnswlib_portable"]
        lines += ["", "hnswlib built for portable x86-64 (no -march=native), same run:", "",
                  "| measure | vector_vault | hnswlib portable | ratio |", "|---|---|---|---|",
                  "| build | %.2f s | %.2f s | %.2fx |" % (vv["build_seconds"], hp["build_seconds"],
                                                         vv["build_seconds"] / hp["build_seconds"])]
        for p in vv["search"]:
            h = next((x for x in hp["search"] if x["ef"] == p["ef"]), None)
            if h:
                lines.append("| ef_search %d | recall %.4f, %.0f QPS | recall %.4f, %.0f QPS | %.2fx |" % (
                    p["ef"], p["recall"], p["qps"], h["recall"], h["qps"], p["qps"] / h["qps"]))
        if a and c:
            lines.append("| best QPS at recall >= 0.99 | %.0f | %.0f | %.2fx |" % (a, c, a / c))
    lp = vv.get("search_libpq")
    refs = [(name, r[key]) for name, key in (("hnswlib -march=native", "hnswlib"),
                                              ("hnswlib portable", "hnswlib_portable"),
                                              ("hnswlib Python bindings", "hnswlib_python"))
            if r.get(key)]
    if lp:
        lines += ["", "The same search through libpq (test/bench/knn_client.c: prepared statement, vector as "
                  "a binary parameter), same server, same run; ratios against hnswlib -march=native:", "",
                  "| ef_search | recall | QPS | pinned QPS | ratio (pinned) |", "|---|---|---|---|---|"]
        for p in lp:
            h = next((x for x in hn["search"] if x["ef"] == p["ef"]), None)
            lines.append("| %d | %.4f | %.0f | %.0f | %.2fx (%.2fx) |" % (
                p["ef"], p["recall"], p["qps"], p["qps_pinned"], p["qps"] / h["qps"], p["qps_pinned"] / h["qps"]))
    # Every reference against every client, at the operating point (recall >= 0.99).
    clients = [("psycopg2, text", vv["search"])] + ([("libpq, binary", lp)] if lp else [])
    best = {}
    for cname, pts in clients:
        best[cname] = (qps_at_recall(pts, 0.99),
                       qps_at_recall([{"recall": p["recall"], "qps": p["qps_pinned"]} for p in pts], 0.99))
    lines += ["", "At recall@10 >= 0.99 (best QPS over the ef_search values; ratio = vector_vault / reference):", "",
              "| reference | its build | its QPS | build ratio | " + " | ".join(
                  "%s: ratio (pinned)" % c for c, _ in clients) + " |",
              "|---|---|---|---|" + "---|" * len(clients)]
    for name, ref in refs:
        rq = qps_at_recall(ref["search"], 0.99)
        cells = []
        for cname, _ in clients:
            q, qp = best[cname]
            cells.append("%.2fx (%.2fx)" % (q / rq, qp / rq) if q and qp and rq else "n/a")
        lines.append("| %s | %.2f s | %.0f | %.2fx | %s |" % (
            name, ref["build_seconds"], rq or 0, vv["build_seconds"] / ref["build_seconds"], " | ".join(cells)))
        r["summary"]["vs " + name] = {"build_ratio": vv["build_seconds"] / ref["build_seconds"],
                                      "qps_at_0.99": rq,
                                      "ratios": {c: [best[c][0] / rq if best[c][0] and rq else None,
                                                     best[c][1] / rq if best[c][1] and rq else None]
                                                 for c, _ in clients}}
    lines += pgvector_lines(r)
    with open(os.path.join(outdir, "results-%s.json" % date), "w") as f:
        json.dump(r, f, indent=2)
    s = r["scoped"]
    lines += ["", "Vault-scoped search (20 vaults x 3,000 rows, a role that may read one):", "",
              "| plan | recall@10 | QPS |", "|---|---|---|",
              "| vector_vault, per-vault sub-graph | %.4f | %.0f |" % (s["vector_vault"]["recall"], s["vector_vault"]["qps"]),
              "| (a) btree on vault column + exact sort (plaintext) | %.4f | %.0f |" % (s["btree_exact_plaintext"]["recall"], s["btree_exact_plaintext"]["qps"]),
              "| (b) global HNSW + post-filter (iterative) | %.4f | %.0f |" % (s["global_hnsw_postfilter"]["recall"], s["global_hnsw_postfilter"]["qps"]),
              "", "Speed-up over the better baseline: %.1fx." % s["ratio_vs_best_baseline"], ""]
    with open(os.path.join(outdir, "results-%s.md" % date), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(7, 4.5))
        ax.plot([p["recall"] for p in vv["search"]], [p["qps"] for p in vv["search"]], "o-",
                label="vector_vault (encrypted, SQL, 1 connection)")
        ax.plot([p["recall"] for p in vv["search"]], [p["qps_pinned"] for p in vv["search"]], "o-.",
                label="vector_vault, client and backend pinned to one CPU")
        ax.plot([p["recall"] for p in hn["search"]], [p["qps"] for p in hn["search"]], "s--",
                label="hnswlib in-process, -march=native (same run)")
        if hp:
            ax.plot([p["recall"] for p in hp["search"]], [p["qps"] for p in hp["search"]], "^--",
                    label="hnswlib in-process, portable x86-64 (same run)")
        if lp:
            ax.plot([p["recall"] for p in lp], [p["qps"] for p in lp], "D-",
                    label="vector_vault through libpq, binary parameters")
        if r.get("hnswlib_python"):
            hy = r["hnswlib_python"]["search"]
            ax.plot([p["recall"] for p in hy], [p["qps"] for p in hy], "v--",
                    label="hnswlib Python bindings, one call per query (same run)")
        pv = r.get("pgvector")
        if pv:
            ax.plot([p["recall"] for p in pv["search"]], [p["qps"] for p in pv["search"]], "x-",
                    color="grey", label="pgvector %s hnsw (plaintext, SQL, same run)" % r.get("pgvector_version", ""))
            if pv.get("search_libpq"):
                ax.plot([p["recall"] for p in pv["search_libpq"]], [p["qps"] for p in pv["search_libpq"]],
                        "+-", color="black", label="pgvector through libpq, binary parameters (same run)")
        ax.set_xlabel("recall@10")
        ax.set_ylabel("queries per second")
        ax.set_yscale("log")
        ax.set_title("Fashion-MNIST 60k x 784, L2, m=16, ef_construction=64 (%s)" % date)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(outdir, "recall-qps-%s.png" % date), dpi=110)
        cos = r.get("cosine")
        if cos:
            fig, ax = plt.subplots(figsize=(7, 4.5))
            for who, style, label in (("vector_vault", "o", "vector_vault (encrypted)"),
                                      ("pgvector", "x", "pgvector %s (plaintext)" % r.get("pgvector_version", ""))):
                c = cos.get(who)
                if not c:
                    continue
                ax.plot([p["recall"] for p in c["search"]], [p["qps"] for p in c["search"]], style + "-",
                        label="%s, psycopg2" % label)
                if c.get("search_libpq"):
                    ax.plot([p["recall"] for p in c["search_libpq"]], [p["qps"] for p in c["search_libpq"]],
                            style + "--", label="%s, libpq binary" % label)
            ax.set_xlabel("recall@10")
            ax.set_ylabel("queries per second")
            ax.set_yscale("log")
            ax.set_title("Fashion-MNIST 60k x 784, L2-normalised, cosine, same run (%s)" % date)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
            fig.tight_layout()
            fig.savefig(os.path.join(outdir, "recall-qps-cosine-%s.png" % date), dpi=110)
    except Exception as e:  # the plot is a convenience; the numbers are the result
        print("plot failed: %s" % e)


if __name__ == "__main__":
    main()
