-- 33_iterative_scan: bounded filtered search (issue 11). vector_vault.iterative_scan = off |
-- relaxed_order | strict_order and vector_vault.max_scan_tuples, with pgvector 0.8's meanings.
-- vault.last_hnsw_scan() counts the rounds, candidates and rows of the last scan, so each
-- bound below is checked on the work done, not only on the rows a query shows.
SET vector_vault.vault = 'regress';
-- One build thread: hnswlib's level generator is seeded, so the graph is the same every run.
SET vector_vault.build_threads = 1;

-- 3000 points in 16 dimensions spread by modular arithmetic; grp = id % 100 (30 rows each).
CREATE TABLE it_items (id int PRIMARY KEY, grp int, embedding evector(16));
INSERT INTO it_items
SELECT i, i % 100,
       (SELECT format('[%s]', string_agg((((i * (7 + 2 * d) + d * d * 13) % (97 + d)) / 10.0)::text, ','))
        FROM generate_series(0, 15) d)::evector
FROM generate_series(1, 3000) i;
CREATE INDEX it_l2 ON it_items USING vault_hnsw (embedding evector_l2_ops);
ANALYZE it_items;
SET enable_seqscan = off;

-- The defaults: relaxed_order (as vector_vault did before the setting existed), and pgvector's
-- bound of 20000 candidates.
SELECT name, setting FROM pg_settings
WHERE name IN ('vector_vault.iterative_scan', 'vector_vault.max_scan_tuples') ORDER BY name;
SET vector_vault.iterative_scan = 'no_such_mode';
SET vector_vault.max_scan_tuples = 0;

-- knn(filter, q, k): distances of the first k rows passing filter, in the order returned.
CREATE FUNCTION it_knn(filter text, q int, k int) RETURNS float8[] LANGUAGE plpgsql AS $$
DECLARE
    d float8[];
BEGIN
    EXECUTE format('SELECT array_agg(dist ORDER BY n) FROM (SELECT row_number() OVER () AS n, dist '
                   'FROM (SELECT embedding <-> $1 AS dist FROM it_items WHERE %s '
                   'ORDER BY embedding <-> $1 LIMIT %s) s) s2', filter, k)
        INTO d USING (SELECT embedding FROM it_items WHERE id = q);
    RETURN coalesce(d, '{}');
END
$$;
-- inversions(d): how often a distance is smaller than the one before it (beyond float4 rounding).
CREATE FUNCTION it_inversions(d float8[]) RETURNS int LANGUAGE sql AS $$
    SELECT count(*)::int FROM generate_subscripts(d, 1) i
    WHERE i > 1 AND d[i] < d[i - 1] - 1e-5 * d[i - 1]
$$;

-- A filter that matches nothing. off: one round of ef_search candidates, then the end.
SET vector_vault.iterative_scan = off;
SELECT cardinality(it_knn('grp = -1', 1, 10)) AS rows;
SELECT rounds, candidates, returned, ended FROM vault.last_hnsw_scan();
-- relaxed_order with the default bound on 3000 rows: rounds double ef until the graph has
-- nothing more (this is what every filtered query did before: the whole index).
SET vector_vault.iterative_scan = relaxed_order;
SELECT cardinality(it_knn('grp = -1', 1, 10)) AS rows;
SELECT rounds, candidates, returned, ended FROM vault.last_hnsw_scan();
-- With max_scan_tuples = 1000 it stops after the round that crosses the bound (40 + 80 + 160 +
-- 320 + 640 candidates), long before the 3000 rows: bounded work for a filter that matches nothing.
SET vector_vault.max_scan_tuples = 1000;
SELECT cardinality(it_knn('grp = -1', 1, 10)) AS rows;
SELECT rounds, candidates, returned, ended, candidates < 3 * 1000 AS within_bound,
       returned < 3000 AS not_whole_index
FROM vault.last_hnsw_scan();
-- The executor sees the same: rows removed by the filter = rows the index returned.
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT id FROM it_items WHERE grp = -1 ORDER BY embedding <-> (SELECT embedding FROM it_items WHERE id = 1) LIMIT 10;
-- strict_order is bounded the same way.
SET vector_vault.iterative_scan = strict_order;
SELECT cardinality(it_knn('grp = -1', 1, 10)) AS rows;
SELECT rounds, candidates <= 3 * 1000 AS within_bound, ended FROM vault.last_hnsw_scan();
-- The bound never shortens the first round (as pgvector's).
SET vector_vault.max_scan_tuples = 1;
SET vector_vault.iterative_scan = relaxed_order;
SELECT cardinality(it_knn('grp = -1', 1, 10)) AS rows;
SELECT rounds, candidates, returned, ended FROM vault.last_hnsw_scan();
RESET vector_vault.max_scan_tuples;

-- A selective filter (1% of rows): off returns what one round happened to hold; relaxed_order
-- returns the full LIMIT, and the rows are the true nearest (same as a sort).
SET vector_vault.ef_search = 10;
SET vector_vault.iterative_scan = off;
SELECT q, cardinality(it_knn('grp = 7', q, 30)) < 30 AS off_short FROM generate_series(1, 3) q;
SET vector_vault.iterative_scan = relaxed_order;
SELECT q, cardinality(it_knn('grp = 7', q, 30)) AS relaxed_rows FROM generate_series(1, 3) q;
SELECT q, (SELECT array_agg(id ORDER BY n) FROM (
           SELECT id, row_number() OVER () AS n FROM (
               SELECT id FROM it_items WHERE grp = 7
               ORDER BY embedding <-> (SELECT embedding FROM it_items WHERE id = q) LIMIT 30) s) s2)
       = (SELECT array_agg(id ORDER BY embedding <-> (SELECT embedding FROM it_items WHERE id = q), id)
          FROM (SELECT id, embedding FROM it_items WHERE grp = 7) t) AS same_as_sort
FROM generate_series(1, 3) q;

-- Order. With ef_search = 10 and 200 rows of a 20% filter, later rounds find rows closer than
-- ones an earlier round returned: relaxed_order returns them late (out of order), strict_order
-- drops them (dropped > 0) and its distances never decrease.
CREATE TABLE it_order (mode text, q int, inversions int, dropped bigint);
DO $$
DECLARE
    m text;
BEGIN
    FOREACH m IN ARRAY ARRAY['relaxed_order', 'strict_order'] LOOP
        EXECUTE format('SET vector_vault.iterative_scan = %s', m);
        FOR q IN 1 .. 12 LOOP
            INSERT INTO it_order
            SELECT m, q, it_inversions(it_knn('grp < 20', q, 200)), (SELECT dropped FROM vault.last_hnsw_scan());
        END LOOP;
    END LOOP;
END
$$;
SELECT mode, sum(inversions) > 0 AS out_of_order, sum(dropped) > 0 AS dropped_some
FROM it_order GROUP BY mode ORDER BY mode;
SELECT mode, sum(inversions) AS inversions FROM it_order WHERE mode = 'strict_order' GROUP BY mode;

RESET vector_vault.ef_search;
RESET vector_vault.iterative_scan;
RESET enable_seqscan;
RESET vector_vault.build_threads;
DROP TABLE it_items, it_order;
DROP FUNCTION it_knn(text, int, int), it_inversions(float8[]);
