-- 39_l1_index: evector_l1_ops, vault_hnsw ordered by L1 (<+>) as pgvector's vector_l1_ops.
-- On 400 points whose coordinates are sines (no two L1 distances tie), at an ef_search that
-- covers the table, an index scan returns exactly the rows and order of an exact sort, the plan
-- uses the index, rows inserted after CREATE INDEX are found, and hnsw_verify passes. Positive
-- control: the same comparison against the L2 order differs (so "same as sort" can fail).
SET vector_vault.vault = 'regress';
CREATE TABLE l1_items (id int PRIMARY KEY, embedding evector(8));
INSERT INTO l1_items
SELECT i, format('[%s]', (SELECT string_agg((10 * sin(i * 1.37 + d * 0.71 + d * d))::real::text, ',')
                          FROM generate_series(1, 8) d))::evector
FROM generate_series(1, 400) i;
CREATE TABLE l1_queries (qid int PRIMARY KEY, q evector(8));
INSERT INTO l1_queries
SELECT k, format('[%s]', (SELECT string_agg((9 * cos(k * 2.11 + d * 1.3))::real::text, ',')
                          FROM generate_series(1, 8) d))::evector
FROM generate_series(1, 5) k;
CREATE INDEX l1_idx ON l1_items USING vault_hnsw (embedding evector_l1_ops);
ANALYZE l1_items;

-- The plan orders by <+> through the index (and not for <->: the opclass is L1's alone).
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM l1_items ORDER BY embedding <+> '[1,2,3,4,5,6,7,8]' LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM l1_items ORDER BY embedding <-> '[1,2,3,4,5,6,7,8]' LIMIT 5;

-- l1_knn(q, k, op): the first k ids by "embedding op q".
CREATE FUNCTION l1_knn(q evector, k int, op text DEFAULT '<+>') RETURNS int[] LANGUAGE plpgsql AS $$
DECLARE
    r int[];
BEGIN
    EXECUTE format('SELECT array_agg(id ORDER BY n) FROM (SELECT id, row_number() OVER () AS n '
                   'FROM (SELECT id FROM l1_items ORDER BY embedding %s $1 LIMIT $2) s) s2', op)
        INTO r USING q, k;
    RETURN coalesce(r, '{}');
END
$$;
SET vector_vault.ef_search = 400;
CREATE TEMP TABLE l1_via_index AS SELECT qid, l1_knn(q, 20) AS ids FROM l1_queries;
RESET enable_seqscan;
SET enable_indexscan = off;
CREATE TEMP TABLE l1_via_sort AS SELECT qid, l1_knn(q, 20) AS ids FROM l1_queries;
CREATE TEMP TABLE l2_via_sort AS SELECT qid, l1_knn(q, 20, '<->') AS ids FROM l1_queries;
RESET enable_indexscan;
-- Exact rows and order; the L2 order is a different answer on this data (positive control).
SELECT i.qid, cardinality(i.ids) AS k, i.ids = s.ids AS same_as_sort, i.ids = l2.ids AS same_as_l2
FROM l1_via_index i JOIN l1_via_sort s USING (qid) JOIN l2_via_sort l2 USING (qid) ORDER BY qid;
-- No two of the first 21 exact L1 distances of any query tie (so one order is correct).
SELECT bool_and(n = 21) AS distinct_distances FROM (
    SELECT qid, count(DISTINCT d) AS n FROM (
        SELECT qid, (SELECT array_agg(embedding <+> q ORDER BY embedding <+> q)
                     FROM (SELECT embedding FROM l1_items ORDER BY embedding <+> q LIMIT 21) t) AS ds
        FROM l1_queries) x, unnest(ds) d GROUP BY qid) y;

SET enable_seqscan = off;
-- At the default ef_search, recall@10 against the exact order stays at least 0.9.
RESET vector_vault.ef_search;
SELECT min(cardinality(ARRAY(SELECT unnest(l1_knn(q, 10)) INTERSECT SELECT unnest(s.ids[1:10])))) >= 9
       AS recall_at_least_0_9
FROM l1_queries JOIN l1_via_sort s USING (qid);
SET vector_vault.ef_search = 400;

-- Rows inserted after CREATE INDEX: each new row is its own nearest neighbour through the index.
INSERT INTO l1_items
SELECT 1000 + k, format('[%s]', (SELECT string_agg((11 * sin(k * 3.3 + d * 0.37))::real::text, ',')
                                 FROM generate_series(1, 8) d))::evector
FROM generate_series(1, 20) k;
SET enable_seqscan = off;
SELECT count(*) FILTER (WHERE (l1_knn(embedding, 1))[1] = id) AS found_itself, count(*) AS inserted
FROM l1_items WHERE id >= 1000;
RESET enable_seqscan;
RESET vector_vault.ef_search;

SELECT "check", ok FROM vault.hnsw_verify('l1_idx') ORDER BY "check";
DROP TABLE l1_items, l1_queries;
DROP FUNCTION l1_knn(evector, int, text);
