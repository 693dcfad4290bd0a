#!/usr/bin/python3
"""citus_bench.py — one node against coordinator + 2 workers, same data (test/bench/citus.sh).

The same Fashion-MNIST rows (784 dims, spread over --vaults vaults) go into two tables reached
through the coordinator: `single`, a plain table on the coordinator (one node: the workers idle),
and `dist`, distributed by vault over the two workers (--shards shards, a vault_hnsw index on
each). For each table it measures:
  * ingest: COPY through the coordinator without an index (rows/s), CREATE INDEX (s), and COPY of
    --extra rows into the indexed table (rows/s, every row also inserted into the graph);
  * queries: a global KNN over every vault (ORDER BY embedding <-> q LIMIT 10) and a vault-scoped
    one (WHERE tenant = ...), each from 1 client (QPS, p50/p95 latency) and from --clients
    clients at once (QPS); recall@10 against the exact answer (numpy, distance ties counted).
Everything runs on one machine: the three servers and the client share its cores, so the
figures are the cost of distribution (per-query overhead, merge, 2PC), not its gain. Prints
figures; never passes or fails on time.
"""
import argparse
import datetime
import gzip
import io
import json
import os
import platform
import statistics
import threading
import time

import numpy as np
import psycopg2

FMNIST = '/usr/share/datasets/fashion-mnist'


def load_images(name, start, n):
    """Rows start..start+n of a Fashion-MNIST idx3 file as uint8 (n, 784)."""
    with gzip.open(os.path.join(FMNIST, f'{name}-images-idx3-ubyte.gz'), 'rb') as f:
        data = f.read()
    count = int.from_bytes(data[4:8], 'big')
    assert start + n <= count, f'{name}: {start + n} rows requested, {count} in the file'
    arr = np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, 784)
    return arr[start:start + n]


def vec_text(v):
    """pgvector's text form."""
    return '[' + ','.join(str(int(x)) for x in v) + ']'


def copy_rows(cur, table, rows, ids, vault_of, nvaults):
    """COPY rows into table, one COPY per vault with the session's vault selected."""
    for v in range(nvaults):
        sel = [i for i in range(len(ids)) if vault_of[i] == v]
        if not sel:
            continue
        name = f'v{v:02d}'
        buf = io.StringIO(''.join(f'{name}\t{ids[i]}\t{vec_text(rows[i])}\n' for i in sel))
        cur.execute(f"SET vector_vault.vault = '{name}'")
        cur.copy_expert(f'COPY {table} (tenant, id, embedding) FROM STDIN', buf)


def exact_topk(data, queries, k, mask=None):
    """Indices of the exact top-k (squared L2) and the k-th distance, per query."""
    x = data.astype(np.float32)
    xn = (x * x).sum(1)
    out, kth = [], []
    for qi, q in enumerate(queries.astype(np.float32)):
        d = xn - 2 * x.dot(q) + (q * q).sum()
        if mask is not None:
            d = np.where(mask[qi], d, np.inf)
        idx = np.argpartition(d, k)[:k]
        idx = idx[np.argsort(d[idx])]
        out.append(idx)
        kth.append(d[idx[-1]])
    return out, kth


def recall(answers, data, queries, kth, id_to_row, k):
    """Mean recall@k: answers within the exact k-th distance count (ties are not misses)."""
    total = 0.0
    for ans, q, t in zip(answers, queries.astype(np.float32), kth):
        rows = [id_to_row[i] for i in ans]
        d = ((data[rows].astype(np.float32) - q) ** 2).sum(1) if rows else np.array([])
        total += min(k, int((d <= t + 1e-3).sum())) / k
    return total / len(answers)


def run_queries(dsn, sql, params, warm):
    """Runs the prepared query once per parameter tuple; returns (ids per query, latencies)."""
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SET vector_vault.vault = 'v00'")
    cur.execute(f'PREPARE q AS {sql}')
    for p in params[:warm]:
        cur.execute('EXECUTE q (' + ','.join(['%s'] * len(p)) + ')', p)
        cur.fetchall()
    ids, lat = [], []
    for p in params:
        t0 = time.perf_counter()
        cur.execute('EXECUTE q (' + ','.join(['%s'] * len(p)) + ')', p)
        r = cur.fetchall()
        lat.append(time.perf_counter() - t0)
        ids.append([row[0] for row in r])
    conn.close()
    return ids, lat


def concurrent_qps(dsn, sql, params, clients, warm):
    """QPS with `clients` connections each running every query once (psycopg2 drops the GIL)."""
    results = [None] * clients
    barrier = threading.Barrier(clients + 1)

    def worker(c):
        conn = psycopg2.connect(dsn)
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("SET vector_vault.vault = 'v00'")
        cur.execute(f'PREPARE q AS {sql}')
        for p in params[:warm]:
            cur.execute('EXECUTE q (' + ','.join(['%s'] * len(p)) + ')', p)
            cur.fetchall()
        barrier.wait()
        for p in params:
            cur.execute('EXECUTE q (' + ','.join(['%s'] * len(p)) + ')', p)
            cur.fetchall()
        conn.close()
        results[c] = True

    threads = [threading.Thread(target=worker, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    return clients * len(params) / elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--dsn', required=True)
    ap.add_argument('--work', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--rows', type=int, default=60000)
    ap.add_argument('--extra', type=int, default=2000)
    ap.add_argument('--vaults', type=int, default=20)
    ap.add_argument('--shards', type=int, default=4)
    ap.add_argument('--queries', type=int, default=200)
    ap.add_argument('--clients', type=int, default=4)
    ap.add_argument('--warm', type=int, default=20)
    ap.add_argument('--k', type=int, default=10)
    ap.add_argument('--tag', default='')
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    started = time.time()

    base = load_images('train', 0, a.rows + a.extra)
    queries = load_images('t10k', 0, a.queries)
    ids = np.arange(1, a.rows + a.extra + 1)
    vault_of = (ids - 1) % a.vaults
    id_to_row = {int(i): int(i - 1) for i in ids}

    conn = psycopg2.connect(a.dsn)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute('SELECT version(), (SELECT extversion FROM pg_extension WHERE extname = %s)', ('citus',))
    pg_version, citus_version = cur.fetchone()
    for v in range(a.vaults):
        cur.execute('SELECT vault.create_vault(%s)', (f'v{v:02d}',))
    cur.execute(f'''
        CREATE TABLE single (tenant text NOT NULL, id int NOT NULL, embedding evector(784),
                             PRIMARY KEY (tenant, id));
        ALTER TABLE single ALTER COLUMN embedding SET STORAGE PLAIN;
        CREATE TABLE dist (tenant text NOT NULL, id int NOT NULL, embedding evector(784),
                           PRIMARY KEY (tenant, id));
        ALTER TABLE dist ALTER COLUMN embedding SET STORAGE PLAIN;
        SELECT create_distributed_table('dist', 'tenant', shard_count => {a.shards});''')

    res = {'date': datetime.date.today().isoformat(), 'tag': a.tag, 'rows': a.rows,
           'extra': a.extra, 'vaults': a.vaults, 'shards': a.shards, 'queries': a.queries,
           'clients': a.clients, 'k': a.k, 'cpus': os.cpu_count(), 'machine': platform.machine(),
           'postgres': pg_version, 'citus': citus_version, 'tables': {}}
    main_rows = base[:a.rows]
    extra_rows = base[a.rows:]
    qparams_global = [(vec_text(q),) for q in queries]
    # vault-scoped: query i searches vault i % vaults
    qparams_vault = [(f'v{i % a.vaults:02d}', vec_text(q)) for i, q in enumerate(queries)]
    all_rows = base
    truth_g, kth_g = exact_topk(all_rows, queries, a.k)
    mask = np.array([vault_of == (i % a.vaults) for i in range(a.queries)])
    truth_v, kth_v = exact_topk(all_rows, queries, a.k, mask)

    for table in ('single', 'dist'):
        r = {}
        t0 = time.perf_counter()
        copy_rows(cur, table, main_rows, ids[:a.rows], vault_of[:a.rows], a.vaults)
        r['copy_rows_per_s'] = a.rows / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        cur.execute(f'CREATE INDEX {table}_idx ON {table} USING vault_hnsw (embedding evector_l2_ops) '
                    'WITH (m = 16, ef_construction = 64)')
        r['index_build_s'] = time.perf_counter() - t0
        t0 = time.perf_counter()
        copy_rows(cur, table, extra_rows, ids[a.rows:], vault_of[a.rows:], a.vaults)
        r['copy_indexed_rows_per_s'] = a.extra / (time.perf_counter() - t0)
        cur.execute(f'ANALYZE {table}')
        cur.execute(f'SELECT count(*) FROM {table}')
        r['count'] = cur.fetchone()[0]

        sql_g = f'SELECT id FROM {table} ORDER BY embedding <-> $1::evector LIMIT {a.k}'
        sql_v = (f'SELECT id FROM {table} WHERE tenant = $1 '
                 f'ORDER BY embedding <-> $2::evector LIMIT {a.k}')
        for kind, sql, params, kth in (('global', sql_g, qparams_global, kth_g),
                                       ('vault', sql_v, qparams_vault, kth_v)):
            got, lat = run_queries(a.dsn, sql, params, a.warm)
            lat_ms = sorted(x * 1000 for x in lat)
            r[kind] = {
                'qps_1': len(lat) / sum(lat),
                'p50_ms': statistics.median(lat_ms),
                'p95_ms': lat_ms[int(0.95 * (len(lat_ms) - 1))],
                'recall': recall(got, all_rows, queries, kth, id_to_row, a.k),
                f'qps_{a.clients}': concurrent_qps(a.dsn, sql, params, a.clients, a.warm),
            }
        res['tables'][table] = r
        print(table, json.dumps(r, indent=1), flush=True)

    # vector_vault's catch-up lookup (CatchUpWorkers, before a distributed statement after a
    # pg_dist_node change or every 10 s): the same query, timed against an empty statement.
    check = ("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_node n LEFT JOIN vault._citus_nodes s "
             "ON s.nodeid OPERATOR(pg_catalog.=) n.nodeid WHERE n.isactive AND n.noderole "
             "OPERATOR(pg_catalog.=) 'primary' AND n.groupid OPERATOR(pg_catalog.<>) 0 AND "
             "n.hasmetadata AND (s.generation IS NULL OR s.generation OPERATOR(pg_catalog.<) "
             "(SELECT pg_catalog.max(generation) FROM vault._citus_nodes)))")
    timings = {}
    for name, sql in (('empty', 'SELECT 1'), ('check', check)):
        for _ in range(100):
            cur.execute(sql)
            cur.fetchall()
        t0 = time.perf_counter()
        for _ in range(2000):
            cur.execute(sql)
            cur.fetchall()
        timings[name] = (time.perf_counter() - t0) / 2000
    res['catchup_check_us'] = (timings['check'] - timings['empty']) * 1e6
    cur.execute("SELECT count(*) FROM citus_shards WHERE table_name = 'dist'::regclass")
    res['dist_placements'] = cur.fetchone()[0]
    res['wall_s'] = time.time() - started
    res['loadavg_end'] = os.getloadavg()
    stem = f"citus-{res['date']}" + (f'-{a.tag}' if a.tag else '')
    with open(os.path.join(a.out, stem + '.json'), 'w') as f:
        json.dump(res, f, indent=1)
    s, d = res['tables']['single'], res['tables']['dist']
    c = a.clients

    def row(label, key, sub=None, fmt='{:.1f}'):
        sv = s[sub][key] if sub else s[key]
        dv = d[sub][key] if sub else d[key]
        return f'| {label} | {fmt.format(sv)} | {fmt.format(dv)} | {dv / sv:.2f} |'

    md = [f"# Citus: one node against coordinator + 2 workers ({res['date']})", '',
          f"Fashion-MNIST, {a.rows:,} + {a.extra:,} rows x 784 dims in {a.vaults} vaults, "
          f"{a.queries} queries (t10k), k = {a.k}, vault_hnsw m = 16, ef_construction = 64, "
          f"default ef_search. `dist`: {a.shards} shards on 2 workers. One machine, "
          f"{res['cpus']} CPUs shared by the three servers and the client "
          f"(test/bench/citus.sh; {res['citus']}; wall time {res['wall_s']:.0f} s; load average "
          f"at the end {res['loadavg_end'][0]:.1f} / {res['loadavg_end'][1]:.1f} / "
          f"{res['loadavg_end'][2]:.1f}: other sessions share the machine).", '',
          '| | one node | coordinator + 2 workers | ratio |', '|---|---:|---:|---:|',
          row('COPY, no index (rows/s)', 'copy_rows_per_s', fmt='{:.0f}'),
          row('CREATE INDEX (s)', 'index_build_s'),
          row('COPY into the indexed table (rows/s)', 'copy_indexed_rows_per_s', fmt='{:.0f}'),
          row('global KNN, 1 client (QPS)', 'qps_1', 'global'),
          row('global KNN p50 (ms)', 'p50_ms', 'global', '{:.2f}'),
          row('global KNN p95 (ms)', 'p95_ms', 'global', '{:.2f}'),
          row(f'global KNN, {c} clients (QPS)', f'qps_{c}', 'global'),
          row('global recall@10', 'recall', 'global', '{:.4f}'),
          row('vault-scoped KNN, 1 client (QPS)', 'qps_1', 'vault'),
          row('vault-scoped KNN p50 (ms)', 'p50_ms', 'vault', '{:.2f}'),
          row('vault-scoped KNN p95 (ms)', 'p95_ms', 'vault', '{:.2f}'),
          row(f'vault-scoped KNN, {c} clients (QPS)', f'qps_{c}', 'vault'),
          row('vault-scoped recall@10', 'recall', 'vault', '{:.4f}'), '',
          f"vector_vault's catch-up lookup (run by a session before a distributed statement "
          f"after pg_dist_node changed, or every 10 s), measured as a client statement (parse, "
          f"plan, run) minus an empty one: {res['catchup_check_us']:.0f} µs.", '']
    with open(os.path.join(a.out, stem + '.md'), 'w') as f:
        f.write('\n'.join(md))
    print('\n'.join(md))


if __name__ == '__main__':
    main()
