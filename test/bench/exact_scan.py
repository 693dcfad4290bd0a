#!/usr/bin/python3
"""Exact-scan benchmark: vector_vault's encrypted evector against pgvector 0.8.6's vector, same
server, same run, same data (Fashion-MNIST 60,000 x 784, L2), no index on either table.

Run through test/bench/exact.sh, which builds and installs both extensions and starts a throwaway
server; this script talks to that server (--dsn), prints the figures and appends them to
test/bench/results/exact-scan-<date>.md. Issue 8 (finding B1) sets the target: vector_vault's exact
scan at >= 0.5x pgvector's QPS with default planner settings and correct results. Figures are
measurements of this machine in this run; nothing here passes or fails on time.

What is measured. Both tables store their vectors in the heap row (SET STORAGE PLAIN, pgvector's
own advice for sequential scans), are VACUUM ANALYZEd, and get the same queries,
    SELECT id FROM t ORDER BY embedding <-> $1 LIMIT 10,
as a prepared statement with the vector as a bind parameter (libpq's PQexecPrepared through
ctypes, text format: the vector never appears in the statement text). Rows: default planner
settings (the server's max_parallel_workers_per_gather = 2, so parallel plans where the planner
picks them), serial (max_parallel_workers_per_gather = 0), and parallel made cheap
(parallel_setup_cost = parallel_tuple_cost = 0, which gives pgvector a parallel plan too). Each
measurement runs --reps times, the configurations interleaved, and min/median/max are printed
with the load average at each repetition: the machine is shared.
Correctness: every returned id list is compared with the exact top 10 computed in numpy (float64,
exact for these integer pixel values), ties allowed.
"""
import argparse
import ctypes
import ctypes.util
import datetime
import io
import os
import re
import signal
import statistics
import subprocess
import sys
import time

import numpy as np
import psycopg2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import load_idx, machine_info, vec_text  # noqa: E402  (the existing bench's loader)

K = 10
TABLES = (("pgvector", "pv", "vector"), ("vector_vault", "ev", "evector"))
# (name, label, SET statements; RESET of them all comes first)
MODES = (("default", "default", []),
         ("serial", "serial (max_parallel_workers_per_gather = 0)",
          ["SET max_parallel_workers_per_gather = 0"]),
         ("parallel", "parallel made cheap (parallel_setup_cost = 0, parallel_tuple_cost = 0)",
          ["SET parallel_setup_cost = 0", "SET parallel_tuple_cost = 0"]))


class Libpq:
    """The few libpq calls the timed loop needs (ctypes; Debian's psycopg2 links the same libpq)."""

    OK = (1, 2)  # PGRES_COMMAND_OK, PGRES_TUPLES_OK

    def __init__(self, dsn):
        lib = ctypes.CDLL(ctypes.util.find_library("pq") or "libpq.so.5")
        vp, cp, ci = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
        for name, res, args in (
                ("PQconnectdb", vp, [cp]), ("PQstatus", ci, [vp]), ("PQerrorMessage", cp, [vp]),
                ("PQfinish", None, [vp]), ("PQexec", vp, [vp, cp]), ("PQclear", None, [vp]),
                ("PQprepare", vp, [vp, cp, cp, ci, vp]), ("PQresultStatus", ci, [vp]),
                ("PQexecPrepared", vp, [vp, cp, ci, ctypes.POINTER(cp), vp, vp, ci]),
                ("PQntuples", ci, [vp]), ("PQgetvalue", cp, [vp, ci, ci]),
                ("PQresultErrorMessage", cp, [vp]), ("PQbackendPID", ci, [vp])):
            f = getattr(lib, name)
            f.restype, f.argtypes = res, args
        self.lib = lib
        self.conn = lib.PQconnectdb(dsn.encode())
        if lib.PQstatus(self.conn) != 0:
            raise RuntimeError(lib.PQerrorMessage(self.conn).decode())

    def _result(self, r, what):
        """Rows of r as lists of str; raises RuntimeError with the server's message on failure."""
        try:
            if self.lib.PQresultStatus(r) not in self.OK:
                msg = self.lib.PQresultErrorMessage(r) or self.lib.PQerrorMessage(self.conn)
                raise RuntimeError("%s: %s" % (what, msg.decode().strip()))
            n = self.lib.PQntuples(r)
            return [self.lib.PQgetvalue(r, i, 0).decode() for i in range(n)]
        finally:
            self.lib.PQclear(r)

    def execute(self, sql):
        """Runs a statement without parameters; returns the first column of its rows."""
        return self._result(self.lib.PQexec(self.conn, sql.encode()), sql)

    def prepare(self, name, sql):
        """Prepares sql (one parameter, type inferred by the server) as name."""
        self._result(self.lib.PQprepare(self.conn, name.encode(), sql.encode(), 1, None), sql)

    def run(self, name, value):
        """Executes the prepared statement with one text-format parameter; returns column 1."""
        arr = (ctypes.c_char_p * 1)(value)
        return self._result(self.lib.PQexecPrepared(self.conn, name.encode(), 1, arr, None, None, 0),
                            name)

    def pid(self):
        """The backend's process id."""
        return self.lib.PQbackendPID(self.conn)

    def close(self):
        """Closes the connection."""
        self.lib.PQfinish(self.conn)


def exact_distances(base, queries):
    """Squared L2 distances of every query to every base row, float64 (exact: integer pixels)."""
    b = base.astype(np.float64)
    q = queries.astype(np.float64)
    return (b * b).sum(1)[None, :] - 2.0 * q @ b.T + (q * q).sum(1)[:, None]


def check(ids, dist_row):
    """'exact' if ids are k distinct rows whose distances are the k smallest (ties allowed) in
    order, 'float32' if they are so only within float32 rounding of the distance, else 'wrong'."""
    if len(ids) != K or len(set(ids)) != K or any(i < 0 or i >= len(dist_row) for i in ids):
        return "wrong"
    kth = np.partition(dist_row, K - 1)[:K]
    got = dist_row[ids]
    if np.array_equal(np.sort(got), np.sort(kth)) and np.all(np.diff(got) >= 0):
        return "exact"
    # pgvector and vector_vault sum in float32: rows whose distances differ by less than the
    # rounding of a ~1e7-sized float32 sum may come in either order.
    tol = 1e-5 * float(kth.max())
    if np.all(got <= kth.max() + tol) and np.all(np.diff(got) >= -tol):
        return "float32"
    return "wrong"


def explain(pq, stmt, qtext):
    """The plan the prepared statement runs (EXPLAIN EXECUTE, then once with ANALYZE): workers
    planned, workers launched (or the error the run raised), JIT and execution time. EXECUTE
    inside EXPLAIN takes no bind parameter: the query vector (a test image) is a literal here."""
    lit = "'%s'" % qtext.decode()
    lines = pq.execute("EXPLAIN EXECUTE %s(%s)" % (stmt, lit))
    out = {"workers": 0, "launched": "0 (serial plan)", "jit": "off", "time": "", "text": lines}
    for line in lines:
        if "Workers Planned:" in line:
            out["workers"] = int(line.split(":")[1])
    try:
        lines = pq.execute("EXPLAIN (ANALYZE, COSTS OFF) EXECUTE %s(%s)" % (stmt, lit))
    except RuntimeError as e:
        out["launched"] = "error: " + str(e).split(": ", 1)[1].splitlines()[0]
        return out
    for line in lines:
        if "Workers Launched:" in line:
            out["launched"] = line.strip().split(":")[1].strip()
        if line.strip().startswith("JIT:"):
            out["jit"] = "on"
        if line.strip().startswith("Timing:") and "Total" in line:
            out["jit"] = "on (%s)" % line.split("Total", 1)[1].strip().rstrip(",")
        if line.startswith("Execution Time:"):
            out["time"] = line.split(":", 1)[1].strip()
    return out


def set_mode(pq, sets):
    """Default planner settings (RESET), then the mode's SET statements."""
    for name in ("max_parallel_workers_per_gather", "parallel_setup_cost", "parallel_tuple_cost"):
        pq.execute("RESET " + name)
    for stmt in sets:
        pq.execute(stmt)


def timed(pq, stmt, qtexts, dist):
    """Runs every query once; (qps, tally of check() results)."""
    tally = {"exact": 0, "float32": 0, "wrong": 0}
    t0 = time.perf_counter()
    results = [pq.run(stmt, q) for q in qtexts]
    secs = time.perf_counter() - t0
    for i, ids in enumerate(results):
        tally[check([int(x) for x in ids], dist[i])] += 1
    return len(qtexts) / secs, tally


def load(cur, train):
    """Creates and fills pv and ev (STORAGE PLAIN), VACUUM ANALYZE; returns load facts."""
    dims = train.shape[1]
    cur.execute("DROP TABLE IF EXISTS pv, ev")
    try:
        cur.execute("SELECT vault.create_vault('exact')")
    except psycopg2.Error:  # left by an earlier run on this server (--skip-load reuses it)
        pass
    cur.execute("SET vector_vault.vault = 'exact'")
    buf = "".join("%d\t%s\n" % (i, vec_text(v)) for i, v in enumerate(train))
    facts = {}
    for name, table, typ in TABLES:
        cur.execute("CREATE TABLE %s (id int, embedding %s(%d))" % (table, typ, dims))
        # pgvector's advice for sequential scans: vectors in the heap row, not in TOAST.
        cur.execute("ALTER TABLE %s ALTER COLUMN embedding SET STORAGE PLAIN" % table)
        t0 = time.perf_counter()
        cur.copy_expert("COPY %s (id, embedding) FROM STDIN" % table, io.StringIO(buf))
        copy_s = time.perf_counter() - t0
        cur.execute("VACUUM ANALYZE %s" % table)
        facts[name] = {"copy_seconds": copy_s}
        print("  %-12s COPY %d rows %.1f s" % (name, len(train), copy_s), flush=True)
    return facts


def table_facts(cur, facts):
    """Adds size, pages and whether anything is toasted to facts."""
    for name, table, _ in TABLES:
        cur.execute("SELECT pg_relation_size(%s), relpages, reltuples, "
                    "pg_relation_size(NULLIF(reltoastrelid, 0)) FROM pg_class WHERE relname = %s",
                    (table, table))
        size, pages, tuples, toast = cur.fetchone()
        cur.execute("SELECT avg(pg_column_size(embedding))::int FROM (SELECT embedding FROM %s "
                    "LIMIT 1000) s" % table)
        facts.setdefault(name, {}).update({"mib": size / 2**20, "pages": pages, "rows": int(tuples),
                                           "toast_bytes": toast or 0, "value_bytes": cur.fetchone()[0]})


_SYMS = {}


def _symbols(path):
    """(start, end, name) of the functions nm finds in path (its symbol table, else its dynamic
    one: Debian's postgres and libcrypto are stripped)."""
    if path not in _SYMS:
        rows = []
        for extra in ([], ["-D"]):
            out = subprocess.run(["nm", "-C", "-S", "--defined-only"] + extra + [path],
                                 capture_output=True, text=True).stdout
            for line in out.splitlines():
                f = line.split(" ", 3)
                if len(f) == 4 and f[2] in "tTwWi" and len(f[0]) == 16:
                    start = int(f[0], 16)
                    rows.append((start, start + int(f[1], 16), f[3]))
            if rows:
                break
        _SYMS[path] = rows
    return _SYMS[path]


def symbolize(path, addr):
    """Name of the function at addr (DSO-relative) in path; for a stripped object, what its
    instructions are (AES-NI, carry-less multiply: the AES-GCM assembly of libcrypto)."""
    for start, end, name in _symbols(path):
        if start <= addr < end:
            return name
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "--start-address=%d" % (addr - 64),
                          "--stop-address=%d" % (addr + 64), path], capture_output=True, text=True).stdout
    aes, clmul = "aesenc" in out or "aesdec" in out, "pclmul" in out
    what = ("AES-NI and carry-less multiply: stitched AES-CTR+GHASH" if aes and clmul else
            "AES-NI rounds" if aes else "carry-less multiply: GHASH" if clmul else "unknown")
    return "[stripped code; its instructions: %s]" % what


def resolve(lines, so):
    """perf report lines 'pct dso [.] sym' with unresolved addresses named (vector_vault.so as
    built, since the installed copy may have been replaced; system objects from their files),
    summed per (dso, name); {(dso, name): pct}."""
    paths = {"vector_vault.so": so, "libcrypto.so.3": "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
             "postgres": "/usr/lib/postgresql/15/bin/postgres", "libc.so.6": "/lib/x86_64-linux-gnu/libc.so.6"}
    total = {}
    for line in lines:
        m = re.match(r"\s*([0-9.]+)%\s+(\S+)(?: \(deleted\))?\s+\[(.)\]\s+(.*?)\s*(?:-\s+-\s*)?$", line)
        if not m:
            continue
        pct, dso, kind, sym = float(m.group(1)), m.group(2), m.group(3), m.group(4).strip()
        if re.fullmatch(r"0x[0-9a-f]+", sym) and paths.get(dso):
            sym = symbolize(paths[dso], int(sym, 16))
        key = (dso, "[%s] %s" % (kind, sym))
        total[key] = total.get(key, 0.0) + pct
    return total


def profile(pq, stmt, qtexts, sets, postmaster, so, out_prefix):
    """perf record of the backend and the postmaster (whose children, the parallel workers,
    inherit the events) while the queries run; (qps, per-object lines, per-symbol lines)."""
    set_mode(pq, sets)
    if so:  # the installed vector_vault.so may have been replaced since: perf finds it by build id
        subprocess.run(["perf", "buildid-cache", "-a", so], capture_output=True)
    data = out_prefix + ".perf.data"
    perf = subprocess.Popen(["perf", "record", "-F", "997", "-g", "--buildid-mmap", "-o", data,
                             "-p", "%d,%d" % (pq.pid(), postmaster)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)
    t0 = time.perf_counter()
    for q in qtexts:
        pq.run(stmt, q)
    secs = time.perf_counter() - t0
    perf.send_signal(signal.SIGINT)
    perf.wait()
    if perf.returncode not in (0, -signal.SIGINT):
        print("perf record: %s" % perf.stderr.read().decode().strip(), flush=True)

    def report(sort, limit):
        out = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "-g", "none",
                              "--percent-limit", limit, "--sort", sort],
                             capture_output=True, text=True).stdout
        return [l.rstrip() for l in out.splitlines() if l.strip() and not l.startswith("#")]

    by_dso = report("comm,dso", "1")
    total = resolve(report("dso,symbol", "0"), so)
    by_symbol = ["%6.2f%%  %-18s %s" % (v, d, n) for (d, n), v in sorted(total.items(), key=lambda x: -x[1])
                 if v >= 0.5][:30]
    # libcrypto: the cipher itself (code with AES-NI / carry-less multiply) against the rest
    # (context set-up, parameter and provider look-ups, cleansing).
    crypto = {n: v for (d, n), v in total.items() if d.startswith("libcrypto")}
    cipher = sum(v for n, v in crypto.items() if "AES-NI" in n or "carry-less" in n)
    by_dso.append("libcrypto.so.3 split: %.1f%% in code with AES-NI / carry-less-multiply instructions "
                  "(the cipher), %.1f%% elsewhere in %d functions" % (
                      cipher, sum(crypto.values()) - cipher,
                      len([n for n in crypto if not ("AES-NI" in n or "carry-less" in n)])))
    # Leader (this backend) against parallel workers (other processes).
    leader = worker = 0.0
    for line in report("pid", "0"):
        m = re.match(r"\s*([0-9.]+)%\s+(\d+):", line)
        if m:
            if int(m.group(2)) == pq.pid():
                leader += float(m.group(1))
            else:
                worker += float(m.group(1))
    by_dso.append("by process: leader backend %.1f%%, other processes (parallel workers) %.1f%%" % (
        leader, worker))
    os.unlink(data)
    return len(qtexts) / secs, by_dso, by_symbol


def callers(pq, stmt, qtexts, so, out_prefix):
    """perf record with DWARF call chains (Debian's postgres and libcrypto have no frame
    pointers) of the serial scan; the callers of every symbol with >= 2% self time."""
    set_mode(pq, MODES[1][2])
    if so:
        subprocess.run(["perf", "buildid-cache", "-a", so], capture_output=True)
    data = out_prefix + ".dwarf.perf.data"
    perf = subprocess.Popen(["perf", "record", "-F", "499", "--call-graph", "dwarf,16384", "--buildid-mmap",
                             "-o", data, "-p", str(pq.pid())],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)
    for q in qtexts:
        pq.run(stmt, q)
    perf.send_signal(signal.SIGINT)
    perf.wait()
    out = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "dso,symbol",
                          "-g", "caller,0.5,callee,function,percent", "--percent-limit", "2",
                          "--max-stack", "6"], capture_output=True, text=True).stdout
    os.unlink(data)
    lines = [l.rstrip() for l in out.splitlines() if l.strip() and not l.startswith("#")]
    return [l for l in lines if l.strip() != "|"][:150]


def profile_only(args, pq, qtexts, datadir, versions, started, load_before):
    """--profile-only: perf profiles of vector_vault's serial and parallel scan and DWARF call
    chains of the serial one, appended to the results file without timed runs."""
    prefix = os.path.join("/tmp", "vv-exact-%d" % os.getpid())
    with open(os.path.join(datadir, "postmaster.pid")) as f:
        postmaster = int(f.readline())
    print("profiling (perf) ...", flush=True)
    prof = {"serial": profile(pq, "knn_ev_serial", qtexts[:20], MODES[1][2], postmaster, args.so,
                              prefix + "-serial"),
            "default": profile(pq, "knn_ev_default", qtexts[:20], [], postmaster, args.so,
                               prefix + "-parallel")}
    chains = callers(pq, "knn_ev_serial", qtexts[:6], args.so, prefix)
    pq.close()
    m = machine_info()
    lines = ["## Profile only, vector_vault's exact scan — %s" % started.strftime("%Y-%m-%d %H:%M UTC"), "",
             "Machine: %d CPUs (nproc), %s. Load average (1/5/15 min) at start %.2f/%.2f/%.2f, at end "
             "%.2f/%.2f/%.2f. vector_vault %s (commit %s). No timed runs (test/bench/exact.sh "
             "--profile-only); same tables, query and settings as the runs above." % (
                 m["cores"], m["cpu"], *load_before, *os.getloadavg(), versions.get("vector_vault", "?"),
                 args.commit)]
    lines += profile_lines(prof)
    lines += ["", "Callers of every symbol with >= 2% self time in the serial scan (perf record "
              "--call-graph dwarf, 6 queries; callee first, then its callers):", "", "```"] + chains + ["```", ""]
    write_out(args, started, "\n".join(lines))


def profile_lines(prof):
    """The results file's lines for the perf profiles."""
    lines = []
    for mode, (qps, by_dso, by_symbol) in prof.items():
        lines += ["", "Profile of vector_vault's %s exact scan (perf record -F 997 -g -p <backend>,<postmaster>: "
                  "the backend and the parallel workers the postmaster forks; 20 queries, "
                  "%.2f QPS while recorded). Self time by process and shared object (>= 1%%):" % (mode, qps),
                  "", "```"] + by_dso + ["```", "", "Self time by shared object and symbol (>= 0.7%):", "", "```"] + \
            by_symbol + ["```"]
    return lines


def write_out(args, started, text):
    """Prints text and appends it to the dated results file."""
    print()
    print(text)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "exact-scan-%s.md" % started.strftime("%Y-%m-%d"))
    new = not os.path.exists(path)
    with open(path, "a") as f:
        if new:
            f.write("# Exact-scan benchmark (test/bench/exact.sh), %s\n\n" % started.strftime("%Y-%m-%d"))
        f.write(text + "\n")
    print("appended to %s" % path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--queries", type=int, default=50, help="test-set queries per measurement")
    ap.add_argument("--reps", type=int, default=3, help="repetitions of every measurement")
    ap.add_argument("--warm", type=int, default=3, help="untimed queries per configuration")
    ap.add_argument("--skip-load", action="store_true", help="reuse pv and ev from an earlier run")
    ap.add_argument("--profile", action="store_true", help="perf profile of vector_vault's scan")
    ap.add_argument("--profile-only", action="store_true",
                    help="no timed runs: only the perf profiles, with DWARF call chains")
    ap.add_argument("--out", required=True, help="results directory")
    ap.add_argument("--commit", default="?", help="vector_vault commit being measured")
    ap.add_argument("--note", default="", help="free text for the results file")
    ap.add_argument("--so", help="the vector_vault.so the server loaded (for perf's symbols)")
    args = ap.parse_args()
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg()

    print("loading Fashion-MNIST ...", flush=True)
    train = load_idx("train-images-idx3-ubyte.gz")
    queries = load_idx("t10k-images-idx3-ubyte.gz")[:args.queries]
    dist = exact_distances(train, queries)
    qtexts = [vec_text(q).encode() for q in queries]

    conn = psycopg2.connect(args.dsn)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SET client_min_messages = warning")
    cur.execute("CREATE EXTENSION IF NOT EXISTS vector")
    cur.execute("CREATE EXTENSION IF NOT EXISTS vector_vault")
    cur.execute("SELECT extname, extversion FROM pg_extension WHERE extname IN ('vector', 'vector_vault')")
    versions = dict(cur.fetchall())
    facts = {} if args.skip_load else (print("loading tables ...", flush=True) or load(cur, train))
    table_facts(cur, facts)
    cur.execute("SELECT name, current_setting(name) FROM pg_settings WHERE name IN ('max_parallel_workers_per_gather',"
                "'max_parallel_workers', 'max_worker_processes', 'shared_buffers', 'work_mem', 'jit', "
                "'parallel_setup_cost', 'parallel_tuple_cost', 'min_parallel_table_scan_size', "
                "'parallel_leader_participation', 'force_parallel_mode') ORDER BY name")
    settings = ["%s = %s" % r for r in cur.fetchall()]
    cur.execute("SELECT current_setting('data_directory')")
    datadir = cur.fetchone()[0]
    cur.execute("SELECT version()")
    server = cur.fetchone()[0]
    conn.close()

    pq = Libpq(args.dsn)
    pq.execute("SET vector_vault.vault = 'exact'")
    # One prepared statement per table and planner mode: a cached plan is not re-planned when a
    # planner setting changes, so each statement is planned only under its own mode's settings.
    for mname, _, _ in MODES:
        for _, table, _ in TABLES:
            pq.prepare("knn_%s_%s" % (table, mname),
                       "SELECT id FROM %s ORDER BY embedding <-> $1 LIMIT 10" % table)

    # Interleaved: each repetition runs every configuration once, so drift in the machine's load
    # spreads over all of them instead of landing on one.
    runs = {(m, n): [] for m, _, _ in MODES for n, _, _ in TABLES}
    errors, tallies = {}, {}
    loads = []
    if args.profile_only:
        for stmt in ("knn_ev_serial", "knn_ev_default"):
            set_mode(pq, MODES[1][2] if stmt.endswith("serial") else [])
            for q in qtexts[:args.warm]:
                pq.run(stmt, q)
        profile_only(args, pq, qtexts, datadir, versions, started, load_before)
        return
    for rep in range(args.reps):
        loads.append(os.getloadavg()[0])
        for mname, _, mval in MODES:
            set_mode(pq, mval)
            for name, table, _ in TABLES:
                key = (mname, name)
                if key in errors:
                    continue
                stmt = "knn_%s_%s" % (table, mname)
                try:
                    if rep == 0:
                        for q in qtexts[:args.warm]:
                            pq.run(stmt, q)
                    qps, tally = timed(pq, stmt, qtexts, dist)
                except RuntimeError as e:
                    errors[key] = str(e).split(": ", 1)[1].splitlines()[0]
                    print("rep %d %-8s %-12s ERROR %s" % (rep + 1, mname, name, errors[key]), flush=True)
                    continue
                runs[key].append(qps)
                for t, c in tally.items():
                    tallies.setdefault(key, {}).setdefault(t, 0)
                    tallies[key][t] += c
                print("rep %d %-8s %-12s %7.2f QPS  results %s" % (rep + 1, mname, name, qps, tally),
                      flush=True)

    # The plans the timed statements ran (after them: a prepared statement may switch to its
    # generic plan after five executions).
    plans = {}
    for mname, _, mval in MODES:
        set_mode(pq, mval)
        for name, table, _ in TABLES:
            p = plans[(mname, name)] = explain(pq, "knn_%s_%s" % (table, mname), qtexts[0])
            print("plan %-8s %-12s workers planned %d, launched %s; JIT %s; execution %s" % (
                mname, name, p["workers"], p["launched"], p["jit"], p["time"]), flush=True)

    prof = None
    if args.profile:
        print("profiling vector_vault's serial scan (perf) ...", flush=True)
        prefix = os.path.join("/tmp", "vv-exact-%d" % os.getpid())
        with open(os.path.join(datadir, "postmaster.pid")) as f:
            postmaster = int(f.readline())
        prof = {"serial": profile(pq, "knn_ev_serial", qtexts[:20], MODES[1][2], postmaster, args.so,
                                  prefix + "-serial")}
        if ("default", "vector_vault") not in errors and plans[("default", "vector_vault")]["workers"]:
            print("profiling vector_vault's parallel scan (perf) ...", flush=True)
            prof["default"] = profile(pq, "knn_ev_default", qtexts[:20], [], postmaster, args.so,
                                      prefix + "-parallel")
    pq.close()
    load_after = os.getloadavg()

    # --- report ------------------------------------------------------------------------------
    def stats(v):
        return (min(v), statistics.median(v), max(v)) if v else None

    m = machine_info()
    lines = ["## Exact scan, vector_vault vs pgvector — %s" % started.strftime("%Y-%m-%d %H:%M UTC"), "",
             "Machine: %d CPUs (nproc), %s, kernel %s. Load average (1/5/15 min) at start %.2f/%.2f/%.2f, "
             "at end %.2f/%.2f/%.2f (other engineers' test runs share these CPUs)." % (
                 m["cores"], m["cpu"], m["kernel"], *load_before, *load_after),
             "vector_vault %s (commit %s), pgvector %s; %s." % (
                 versions.get("vector_vault", "?"), args.commit, versions.get("vector", "?"),
                 server.split(" on ")[0]),
             "Data: Fashion-MNIST train, %d x %d, L2; %d test-set queries per measurement, %d repetitions "
             "(interleaved), %d untimed warm-up queries per configuration." % (
                 len(train), train.shape[1], len(qtexts), args.reps, args.warm),
             "Query: `SELECT id FROM t ORDER BY embedding <-> $1 LIMIT 10`, prepared, the vector a text "
             "bind parameter (libpq PQexecPrepared), one connection, no index on either table.",
             "Storage: both columns `SET STORAGE PLAIN` before loading (pgvector's own advice for "
             "sequential scans: vectors in the heap row, out of TOAST), then VACUUM ANALYZE.", ""]
    lines += ["| table | rows | heap | pages | bytes per value | TOAST | COPY |", "|---|---|---|---|---|---|---|"]
    for name, _, _ in TABLES:
        f = facts[name]
        lines.append("| %s | %d | %.0f MiB | %d | %d | %d bytes | %s |" % (
            name, f["rows"], f["mib"], f["pages"], f["value_bytes"], f["toast_bytes"],
            ("%.1f s" % f["copy_seconds"]) if "copy_seconds" in f else "reused"))
    lines += ["", "Server settings (the planner's are Postgres' defaults): " + "; ".join(settings) + ".", ""]
    lines += ["| planner settings | table | plan | QPS min / median / max | results (exact, float32 tie, wrong) "
              "| one EXPLAIN ANALYZE: JIT, time |", "|---|---|---|---|---|---|"]
    for mname, label, _ in MODES:
        for name, _, _ in TABLES:
            key = (mname, name)
            p = plans[key]
            plan = ("parallel, %d workers planned, %s launched" % (p["workers"], p["launched"])
                    if p["workers"] else "serial")
            if p["launched"].startswith("error"):
                plan = ("parallel, %d workers planned (%s)" % (p["workers"], p["launched"])
                        if p["workers"] else "serial (%s)" % p["launched"])
            s = stats(runs[key])
            q = ("%.2f / %.2f / %.2f" % s) if s else "ERROR: %s" % errors.get(key, "no run")
            t = tallies.get(key)
            res = ("%d, %d, %d of %d" % (t["exact"], t["float32"], t["wrong"], sum(t.values()))) if t else "-"
            lines.append("| %s | %s | %s | %s | %s | JIT %s, %s |" % (label, name, plan, q, res, p["jit"], p["time"]))
    lines.append("")
    lines.append("Load average (1 min) at the start of each repetition: %s." % ", ".join(
        "%.2f" % x for x in loads))
    for mname, label, _ in MODES:
        a, b = stats(runs[(mname, "vector_vault")]), stats(runs[(mname, "pgvector")])
        if a and b:
            lines.append("Ratio vector_vault / pgvector, %s: %.2fx (median / median; "
                         "worst pairing %.2fx, best %.2fx)." % (label, a[1] / b[1], a[0] / b[2], a[2] / b[0]))
        else:
            lines.append("Ratio vector_vault / pgvector, %s: n/a (%s)." % (
                label, errors.get((mname, "vector_vault")) or errors.get((mname, "pgvector"))))
    a, b = stats(runs[("default", "vector_vault")]), stats(runs[("default", "pgvector")])
    lines.append("Issue 8's target (>= 0.5x with default planner settings, correct results): %s." % (
        ("%.2fx measured" % (a[1] / b[1])) if a and b else "not measurable in this run"))
    lines.append("Results are checked against numpy's exact top 10 (float64, exact for integer pixels): "
                 "\"exact\" = the 10 smallest distances in order, ties in any order; \"float32 tie\" = the "
                 "same within float32 rounding (1e-5 of the 10th distance).")
    if args.note:
        lines += ["", args.note]
    if prof:
        lines += profile_lines(prof)
    lines.append("")
    write_out(args, started, "\n".join(lines))


if __name__ == "__main__":
    main()
