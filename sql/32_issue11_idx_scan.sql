-- 32_issue11_idx_scan: a vault_hnsw index scan is counted in pg_stat_user_indexes.idx_scan
-- (issue 11: it stayed 0, so "unused index" advice said to drop vault_hnsw indexes). Counted once
-- per scan, not per iterative round; a btree on the same table is the positive control for the
-- way the counters are read (statistics reach the view when the backend flushes them).
SET vector_vault.vault = 'regress';
CREATE TABLE c_items (id int PRIMARY KEY, embedding evector(2));
INSERT INTO c_items SELECT i, format('[%s,%s]', i, i % 7)::evector FROM generate_series(1, 50) i;
CREATE INDEX c_hnsw ON c_items USING vault_hnsw (embedding evector_l2_ops);
ANALYZE c_items;
SET enable_seqscan = off;
-- Both queries below are index scans.
EXPLAIN (COSTS OFF) SELECT id FROM c_items ORDER BY embedding <-> '[3,3]' LIMIT 3;
EXPLAIN (COSTS OFF) SELECT id FROM c_items WHERE id = 5;
SELECT pg_stat_force_next_flush();
SELECT indexrelname, idx_scan FROM pg_stat_user_indexes WHERE relname = 'c_items' ORDER BY 1;
SELECT id FROM c_items ORDER BY embedding <-> '[3,3]' LIMIT 3;
SELECT id FROM c_items ORDER BY embedding <-> '[10,1]' LIMIT 3;
-- A LIMIT past the first round's rows: the iterative rounds are one scan.
SELECT count(*) FROM (SELECT id FROM c_items ORDER BY embedding <-> '[10,1]' LIMIT 50) s;
SELECT id FROM c_items WHERE id = 5;
SELECT pg_stat_force_next_flush();
SELECT indexrelname, idx_scan FROM pg_stat_user_indexes WHERE relname = 'c_items' ORDER BY 1;
RESET enable_seqscan;
DROP TABLE c_items;
