#!/usr/bin/python3
"""The synthetic mode of the index-cache benchmark (test/bench/cache.sh --synthetic [--n N]):
N x 128 Gaussian-mixture vectors (fixed seed; power-law variance spectrum) spread over 1,000 vaults with Zipf-distributed
sizes, in vector_vault (evector, one vault per row's vault, sealed per COPY batch under
SET vector_vault.vault) and pgvector (vector, the vault as a plain int column), and hnswlib
in-process on the same vectors. Reports build times (two threads each), recall@10 and QPS over
ef_search for a principal that may read every vault (vector_vault walks every vault's sub-graph
and merges; pgvector and hnswlib search one global graph), QPS at recall 0.95/0.99, and the
first query after a restart by a role that may read only one ~1,000-row vault (only that vault's
sub-graph is loaded, see vault.index_cache), and single-row insert rates into both. Called by cache_bench.py; writes
test/bench/results/cache-synthetic-<N as 200k, 1m>-<date>[-runN].{md,json,png}.
"""
import datetime
import io
import json
import os
import struct
import time

import numpy as np

from bench import exact_topk, machine_info, recall, run_hnswlib  # noqa: E402
import cache_bench as cb  # noqa: E402

DIMS = 128
CLUSTERS = 100
VAULTS = 1000


def generate(n, nq, seed, extra=0):
    """(base, queries): a mixture of CLUSTERS Gaussians in 128 dimensions with a power-law
    variance spectrum, as real embeddings have (dimension i, from 1, has standard deviation
    SPECTRUM(i) = i^-0.75 within a cluster, and centres are drawn N(0, (3 SPECTRUM(i))^2)), float32;
    the queries (and `extra` rows for the insert phase, drawn last so base and queries do not
    depend on it) are drawn from the same mixture. (Isotropic clusters, tried first, have no
    low-dimensional structure: no graph index reaches recall 0.99 on them at m = 16.)"""
    rng = np.random.default_rng(seed)
    scale = (np.arange(1, DIMS + 1) ** -0.75).astype(np.float32)
    centres = (rng.normal(0.0, 3.0, (CLUSTERS, DIMS)) * scale).astype(np.float32)

    def draw(count):
        out = np.empty((count, DIMS), dtype=np.float32)
        for s in range(0, count, 100000):
            e = min(count, s + 100000)
            lab = rng.integers(0, CLUSTERS, e - s)
            out[s:e] = centres[lab] + rng.standard_normal((e - s, DIMS), dtype=np.float32) * scale
        return out

    return draw(n), draw(nq), draw(extra)


def zipf_sizes(n, vaults, s, seed):
    """Vault sizes proportional to 1/rank^s summing to n (each at least 1), and each row's
    vault (a random assignment, so vault membership is independent of the clusters)."""
    w = 1.0 / np.arange(1, vaults + 1) ** s
    sizes = np.maximum(1, np.floor(n * w / w.sum())).astype(np.int64)
    sizes[0] += n - sizes.sum()
    rng = np.random.default_rng(seed + 1)
    vault_of = np.repeat(np.arange(vaults), sizes)[rng.permutation(n)]
    return sizes, vault_of


def copy_binary(ids, vault_nos, vecs):
    """A COPY ... (FORMAT binary) stream of (id int, vault_no int, embedding) rows, the vector
    in pgvector's binary form (int16 dims, int16 unused, float4s), which evector_recv reads too."""
    d = vecs.shape[1]
    dt = np.dtype([("nf", ">i2"), ("l1", ">i4"), ("id", ">i4"), ("l2", ">i4"), ("vno", ">i4"),
                   ("l3", ">i4"), ("dim", ">i2"), ("unused", ">i2"), ("v", ">f4", (d,))])
    rows = np.empty(len(ids), dtype=dt)
    rows["nf"], rows["l1"], rows["l2"], rows["l3"] = 3, 4, 4, 4 + 4 * d
    rows["id"], rows["vno"], rows["dim"], rows["unused"] = ids, vault_nos, d, 0
    rows["v"] = vecs
    return io.BytesIO(b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0) + rows.tobytes()
                      + struct.pack(">h", -1))


def run(args, srv):
    """The synthetic benchmark (args from cache_bench.main)."""
    started = time.time()
    n, nq = args.n, args.synthetic_queries
    efs = [int(x) for x in args.efs.split(",")]
    date = datetime.datetime.utcnow().strftime("%Y-%m-%d")
    r = {"date": date, "started_utc": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M:%S"),
         "commit": args.commit, "machine": machine_info(), "load_start": cb.loadavg(),
         "params": {"n": n, "dims": DIMS, "clusters": CLUSTERS, "vaults": VAULTS,
                    "zipf_s": args.zipf_s, "seed": args.seed, "queries": nq, "m": args.m,
                    "ef_construction": args.ef_construction, "threads": args.threads,
                    "cache_mb": args.big_cache_mb, "warm": args.warm, "passes": args.passes},
         "efs": efs}
    print("load average at start: %s" % r["load_start"], flush=True)
    cache = os.path.join(args.cache, "synthetic-powerlaw-%d-%d" % (n, args.seed))
    os.makedirs(cache, exist_ok=True)
    t0 = time.perf_counter()
    base, queries, fresh = generate(n, nq, args.seed, args.inserts)
    sizes, vault_of = zipf_sizes(n, VAULTS, args.zipf_s, args.seed)
    print("generated %d x %d (%.1f s); vault sizes %d (largest) .. %d (smallest), median %d" % (
        n, DIMS, time.perf_counter() - t0, sizes.max(), sizes.min(), int(np.median(sizes))),
        flush=True)
    gt_path = os.path.join(cache, "gt_%d.npy" % nq)
    if os.path.exists(gt_path):
        truth = np.load(gt_path)
    else:
        print("computing exact ground truth ...", flush=True)
        truth = exact_topk(base, queries, 10)
        np.save(gt_path, truth)
    base.tofile(os.path.join(cache, "train.f32"))
    queries.tofile(os.path.join(cache, "queries.f32"))
    truth.astype(np.int32).tofile(os.path.join(cache, "gt.i32"))
    with open(os.path.join(cache, "shape.txt"), "w") as f:
        f.write("%d %d %d %d\n" % (n, nq, DIMS, 10))
    args.cache, args.dims = cache, DIMS  # knn_run reads the queries from here
    # the ~1,000-row vault and its own ground truth
    small = int(np.argmin(np.abs(sizes - 1000)))
    small_rows = np.flatnonzero(vault_of == small)
    small_truth = small_rows[exact_topk(base[small_rows], queries, 10)]
    r["small_vault"] = {"vault": "syn_%04d" % small, "rows": int(len(small_rows))}
    r["vault_sizes"] = {"largest": int(sizes.max()), "smallest": int(sizes.min()),
                        "median": int(np.median(sizes)),
                        "top10": [int(x) for x in sizes[:10]]}

    print("hnswlib in-process (%d threads) ..." % args.threads, flush=True)
    r["hnswlib"] = run_hnswlib(args.hnswlib, cache, args.m, args.ef_construction, args.threads, efs)
    r["hnswlib"]["load"] = cb.loadavg()

    conn = srv.connect()
    cur = conn.cursor()
    cur.execute("SET client_min_messages = warning")
    cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    r["pgvector_version"] = cur.fetchone()[0]
    for table, typ in (("ev", "evector"), ("pv", "vector")):
        cur.execute("CREATE TABLE %s (id int PRIMARY KEY, vault_no int, embedding %s(%d))" % (
            table, typ, DIMS))
    print("creating %d vaults, COPY per vault into ev ..." % VAULTS, flush=True)
    t0 = time.perf_counter()
    for v in range(VAULTS):
        cur.execute("SELECT vault.create_vault('syn_%04d')" % v)
    r["create_vaults_seconds"] = time.perf_counter() - t0
    ids = np.arange(n, dtype=np.int64)
    t0 = time.perf_counter()
    for v in range(VAULTS):
        rows = np.flatnonzero(vault_of == v)
        cur.execute("SET vector_vault.vault = 'syn_%04d'" % v)
        cur.copy_expert("COPY ev (id, vault_no, embedding) FROM STDIN (FORMAT binary)",
                        copy_binary(ids[rows], vault_of[rows], base[rows]))
    r["ev_copy_seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for s in range(0, n, 100000):
        e = min(n, s + 100000)
        cur.copy_expert("COPY pv (id, vault_no, embedding) FROM STDIN (FORMAT binary)",
                        copy_binary(ids[s:e], vault_of[s:e], base[s:e]))
    r["pv_copy_seconds"] = time.perf_counter() - t0
    print("  %d vaults %.1f s; COPY ev %.1f s (1,000 batches), pv %.1f s" % (
        VAULTS, r["create_vaults_seconds"], r["ev_copy_seconds"], r["pv_copy_seconds"]), flush=True)
    for key, table, am, opclass, threads_sql in (
            ("vector_vault", "ev", "vault_hnsw", "evector_l2_ops",
             "SET vector_vault.build_threads = %d" % args.threads),
            ("pgvector", "pv", "hnsw", "vector_l2_ops",
             "SET max_parallel_maintenance_workers = %d" % (args.threads - 1))):
        cur.execute("VACUUM ANALYZE %s" % table)
        cur.execute(threads_sql)
        load = cb.loadavg()
        print("CREATE INDEX %s ..." % key, flush=True)
        t0 = time.perf_counter()
        cur.execute("CREATE INDEX %s_idx ON %s USING %s (embedding %s) WITH (m = %d, "
                    "ef_construction = %d)" % (table, table, am, opclass, args.m,
                                               args.ef_construction))
        build_s = time.perf_counter() - t0
        cur.execute("SELECT pg_relation_size('%s_idx')" % table)
        r[key] = {"build_seconds": build_s, "index_bytes": cur.fetchone()[0], "build_load": load}
        print("  %.1f s, %.1f MiB (load before %s)" % (build_s, r[key]["index_bytes"] / 2**20, load),
              flush=True)
    cur.execute("DROP ROLE IF EXISTS syn_reader")
    cur.execute("CREATE ROLE syn_reader LOGIN")
    cur.execute("GRANT SELECT ON ev TO syn_reader")
    cur.execute("SELECT vault.grant('syn_%04d', 'syn_reader', 'read')" % small)
    conn.close()

    # --- first query after restart: a role that may read one ~1,000-row vault ----------------
    restart = srv.restart({"vector_vault.cache_representation": "sq8",
                           "vector_vault.cache_size": "%dMB" % args.big_cache_mb})
    reader = srv.as_user("syn_reader")
    conn = reader.connect()
    cur = conn.cursor()
    cur.execute("SET vector_vault.vault = 'syn_%04d'" % small)
    cur.execute("PREPARE knn(evector) AS " + cb.VV_SQL)
    cur.execute("SELECT 1")
    qt = ["[" + ",".join("%r" % float(x) for x in q) + "]" for q in queries[:2]]
    times = []
    for q in qt:
        t0 = time.perf_counter()
        cur.execute("EXECUTE knn(%s)", (q,))
        cur.fetchall()
        times.append((time.perf_counter() - t0) * 1000)
    conn.close()
    conn = srv.connect()
    admin = conn.cursor()
    r["first_query"] = {"first_ms": times[0], "second_ms": times[1],
                        "cache_after_first": cb.index_cache(admin), "restart": restart}
    print("first query by a reader of %s (%d rows) after restart: %.1f ms, second %.1f ms; "
          "cache %s" % (r["small_vault"]["vault"], len(small_rows), times[0], times[1],
                        r["first_query"]["cache_after_first"]), flush=True)
    admin.execute("SELECT sum(pg_prewarm(c.oid)) FROM pg_class c WHERE c.relname IN "
                  "('ev', 'pv', 'ev_idx', 'pv_idx')")
    conn.close()
    # the one-vault reader's searches (recall against that vault's exact top 10)
    print("one-vault reader (%s):" % r["small_vault"]["vault"], flush=True)
    r["small_vault"]["search"] = cb.knn_series(
        args, reader, "evector", "SET vector_vault.vault = 'syn_%04d'" % small, cb.VV_SQL,
        "SET vector_vault.ef_search = ", [10, 40], small_truth)
    # the same tenant in pgvector: its vault as a filter on the one graph (iterative scan, as
    # pgvector 0.8 recommends for filtered queries), recall against the same exact top 10
    print("pgvector, vault_no = %d as a filter (hnsw.iterative_scan = relaxed_order):" % small,
          flush=True)
    r["small_vault"]["pgvector_search"] = cb.knn_series(
        args, srv, "vector", "SET hnsw.iterative_scan = relaxed_order",
        "SELECT id FROM pv WHERE vault_no = %d ORDER BY embedding <-> $1 LIMIT 10" % small,
        "SET hnsw.ef_search = ", [10, 40], small_truth)
    # --- the principal that reads every vault, and pgvector ----------------------------------
    print("vector_vault, a principal reading all %d vaults:" % VAULTS, flush=True)
    r["vector_vault"]["load_before"] = cb.loadavg()
    r["vector_vault"]["search"] = cb.knn_series(
        args, srv, "evector", "SET vector_vault.vault = 'syn_0000'", cb.VV_SQL,
        "SET vector_vault.ef_search = ", efs, truth)
    r["vector_vault"]["load_after"] = cb.loadavg()
    conn = srv.connect()
    r["vector_vault"]["index_cache"] = cb.index_cache(conn.cursor())
    conn.close()
    print("pgvector:", flush=True)
    r["pgvector"]["load_before"] = cb.loadavg()
    r["pgvector"]["search"] = cb.knn_series(args, srv, "vector", "", cb.PV_SQL,
                                            "SET hnsw.ef_search = ", efs, truth)
    r["pgvector"]["load_after"] = cb.loadavg()
    r["inserts"] = insert_rates(srv, n, fresh)
    r["restarts"] = srv.events
    r["load_end"] = cb.loadavg()
    r["wall_seconds"] = time.time() - started
    r["server_log"] = cb.log_findings(args.log)
    write(args.out, r)


def insert_rates(srv, n, fresh):
    """Single-row inserts (cache_bench.insert_rate) into vector_vault's largest vault (its
    biggest sub-graph, the slowest case) and into pgvector's one graph: rows per second."""
    out = {"rows": len(fresh), "load_before": cb.loadavg()}
    if len(fresh):
        out["vector_vault"] = cb.insert_rate(srv, "ev", fresh, n,
                                             "SET vector_vault.vault = 'syn_0000'")
        out["pgvector"] = cb.insert_rate(srv, "pv", fresh, n, None)
        print("  %d single-row inserts: vector_vault %.0f rows/s, pgvector %.0f rows/s" % (
            len(fresh), out["vector_vault"], out["pgvector"]), flush=True)
    return out


def write(outdir, r):
    """cache-synthetic-<size>-<date>[-runN].{md,json,png}."""
    os.makedirs(outdir, exist_ok=True)
    p = r["params"]
    n = p["n"]
    size = "%dm" % (n // 1000000) if n % 1000000 == 0 else "%dk" % (n // 1000) if n % 1000 == 0 else str(n)
    base = cb.out_name(outdir, r["date"], "md", prefix="cache-synthetic-" + size)
    p = r["params"]
    vv, pv, hn = r["vector_vault"], r["pgvector"], r["hnswlib"]
    series = [{"label": "vector_vault, principal reading all %d vaults" % p["vaults"],
               "repr": vv["index_cache"]["representation"], "search": vv["search"],
               "build": vv["build_seconds"], "size": vv["index_bytes"]},
              {"label": "pgvector %s hnsw (one graph)" % r["pgvector_version"],
               "repr": "shared buffers", "search": pv["search"], "build": pv["build_seconds"],
               "size": pv["index_bytes"]},
              {"label": "hnswlib in-process, -march=native (one graph)", "repr": "process memory",
               "search": hn["search"], "build": hn["build_seconds"], "size": None}]
    m = r["machine"]
    L = ["# Index cache benchmark, synthetic, %s" % r["date"], "",
         "`test/bench/cache.sh --synthetic --n %d` at %s, started %s UTC, %.0f s wall (%.0f s of it "
         "waiting for the install lock at the restart). Machine: %s, "
         "%d cores; load average %s at start, %s at the end (shared machine). %d x %d vectors, a "
         "mixture of %d Gaussians with a power-law variance spectrum (std i^-0.75 in dimension i; seed %d), spread over %d vaults with Zipf sizes (s = %.2f: "
         "largest %d rows, median %d, smallest %d); %d queries from the same mixture; recall@10 "
         "against the exact top 10 over all rows; m = %d, ef_construction = %d, %d build threads "
         "each. vector_vault: sq8 in a %d MB cache; one COPY (binary) per vault under "
         "`SET vector_vault.vault`. Searches through `knn_run` (libpq, binary parameter), %d "
         "warm-up queries and %d timed pass(es) per ef_search." % (
             p["n"], r["commit"], r["started_utc"], r["wall_seconds"],
             sum(e["lock_wait_s"] for e in r["restarts"]), m["cpu"], m["cores"],
             r["load_start"], r["load_end"], p["n"], p["dims"], p["clusters"], p["seed"],
             p["vaults"], p["zipf_s"], r["vault_sizes"]["largest"], r["vault_sizes"]["median"],
             r["vault_sizes"]["smallest"], p["queries"], p["m"], p["ef_construction"],
             p["threads"], p["cache_mb"], p["warm"], p["passes"]),
         "", "| series | " + " | ".join("ef %d" % e for e in r["efs"]) +
         " | QPS at recall >= 0.95 | QPS at recall >= 0.99 | build | index size |",
         "|---|" + "---|" * len(r["efs"]) + "---|---|---|---|"]
    for s in series:
        cells = []
        for e in r["efs"]:
            q = next((x for x in s["search"] if x["ef"] == e), None)
            cells.append("%.4f / %s" % (q["recall"], format(round(q["qps"]), ",")) if q else "")
        L.append("| %s | %s | %s | %s | %.1f s | %s |" % (
            s["label"], " | ".join(cells), cb.fmt_qps_at(cb.qps_at(s["search"], 0.95)),
            cb.fmt_qps_at(cb.qps_at(s["search"], 0.99)), s["build"],
            "%.1f MiB" % (s["size"] / 2**20) if s["size"] else ""))
    fq = r["first_query"]
    sv = r["small_vault"]
    L += ["", "Build: vector_vault %.1f s, pgvector %.1f s (%.2fx vector_vault's), hnswlib %.1f s "
          "(%.2fx). Loading: %d `vault.create_vault` calls %.1f s; COPY into ev %.1f s (%d "
          "batches, one per vault), into pv %.1f s." % (
              vv["build_seconds"], pv["build_seconds"], pv["build_seconds"] / vv["build_seconds"],
              hn["build_seconds"], hn["build_seconds"] / vv["build_seconds"], p["vaults"],
              r["create_vaults_seconds"], r["ev_copy_seconds"], p["vaults"], r["pv_copy_seconds"]),
          "", "First query after a restart by a role that may read only `%s` (%d rows): %.1f ms "
          "(vault.index_cache after it: %s, %s resident bytes, %s of %s vaults resident), the "
          "next query %.1f ms. That role's searches (recall against its vault's exact top 10): "
          "%s." % (
              sv["vault"], sv["rows"], fq["first_ms"],
              (fq["cache_after_first"] or {}).get("representation"),
              format((fq["cache_after_first"] or {}).get("resident_bytes") or 0, ","),
              (fq["cache_after_first"] or {}).get("resident_vaults"),
              (fq["cache_after_first"] or {}).get("vaults"),
              fq["second_ms"], "; ".join("ef %d recall %.4f, %s QPS" % (
                  q["ef"], q["recall"], format(round(q["qps"]), ",")) for q in sv["search"])),
          ]
    if sv.get("pgvector_search"):
        L += ["", "The same tenant in pgvector (`WHERE vault_no = %s` on the one graph, "
              "`hnsw.iterative_scan = relaxed_order`): %s." % (
                  sv["vault"][4:].lstrip("0") or "0", "; ".join(
                      "ef %d recall %.4f, %s QPS" % (q["ef"], q["recall"],
                                                     format(round(q["qps"]), ","))
                      for q in sv["pgvector_search"]))]
    ins = r.get("inserts", {})
    if ins.get("vector_vault"):
        L += ["", "Single-row inserts (%d each, one transaction per row, prepared, text vector): "
              "vector_vault into its largest vault %s rows/s, pgvector %s rows/s (%.2fx "
              "vector_vault's)." % (
                  ins["rows"], format(round(ins["vector_vault"]), ","),
                  format(round(ins["pgvector"]), ","), ins["pgvector"] / ins["vector_vault"])]
    L += ["", "Load average: vector_vault sweep %s / %s, pgvector sweep %s / %s, hnswlib after %s." % (
              vv["load_before"], vv["load_after"], pv["load_before"], pv["load_after"], hn["load"])]
    cb.finish_report(outdir, base, L, r, series,
                     title="synthetic %d x %d, %d vaults (Zipf), L2, m=%d, ef_construction=%d (%s)" % (
                         p["n"], p["dims"], p["vaults"], p["m"], p["ef_construction"], r["date"]))
