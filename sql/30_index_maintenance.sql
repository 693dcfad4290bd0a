-- 30_index_maintenance: a vault_hnsw index over time: inserts and updates after CREATE INDEX,
-- DELETE and VACUUM, REINDEX, DROP INDEX, TRUNCATE (also rolled back), vault.hnsw_verify (its
-- errors and who may run it), and a dropped vault's elements (crypto-shredded in place).
-- Element ids, vault ids and entry points are random and never printed.

-- Three vaults in one table and one index: m_a holds ids 1, 4, 7, ... (100 rows), m_b ids
-- 2, 5, 8, ... (100 rows); m_c is empty at first.
SELECT vault.create_vault('m_a'), vault.create_vault('m_b'), vault.create_vault('m_c');
CREATE TABLE m_items (id int PRIMARY KEY, vault_name text, embedding evector(3));
-- add_rows(v, ids): inserts the point of each id (a fixed function of the id) sealed under v,
-- which the caller selects first with a top-level SET (since security round 2, H5, a function
-- may not change vector_vault.vault; see 42_round2_h5_nested_login). Refuses another vault.
CREATE FUNCTION add_rows(v text, ids int[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('vector_vault.vault') IS DISTINCT FROM v THEN
        RAISE EXCEPTION 'add_rows(%): the selected vault is %', v, current_setting('vector_vault.vault');
    END IF;
    INSERT INTO m_items
    SELECT i, v, format('[%s,%s,%s]', (i * 37) % 101 / 10.0, (i * 53) % 103 / 10.0,
                        (i * 61) % 107 / 10.0)::evector
    FROM unnest(ids) i;
END
$$;
SET vector_vault.vault = 'm_a';
SELECT add_rows('m_a', ARRAY(SELECT i FROM generate_series(1, 300) i WHERE i % 3 = 1));
SET vector_vault.vault = 'm_b';
SELECT add_rows('m_b', ARRAY(SELECT i FROM generate_series(1, 300) i WHERE i % 3 = 2));
RESET vector_vault.vault;
CREATE INDEX m_l2 ON m_items USING vault_hnsw (embedding);
-- verify_summary(idx): the index's checks without random ids, entry points or link counts.
CREATE FUNCTION verify_summary(idx regclass) RETURNS TABLE ("check" text, ok boolean, detail text)
LANGUAGE sql AS $$
    SELECT "check", ok,
           CASE "check"
               WHEN 'metapage' THEN regexp_replace(detail, ', counter \d+$', '')
               WHEN 'links' THEN regexp_replace(detail, '^\d+ links checked, ', '')
               ELSE regexp_replace(regexp_replace(detail, 'vault [0-9a-f]{16}: ', ''),
                                   ' from entry -?\d+ \(level -?\d+\)', '')
           END
    FROM vault.hnsw_verify(idx) ORDER BY "check", 3
$$;
-- search(k): ids and vault names of the first k rows by distance from a fixed point (no two
-- rows at the same distance from it), sealed under m_a (the superuser running the tests owns
-- all three vaults). Planned on every call, so it follows enable_* settings. The point is
-- sealed once, here at the top level, and kept in m_query: a function may no longer select the
-- vault itself (security round 2, H5).
SET vector_vault.vault = 'm_a';
CREATE TABLE m_query AS SELECT '[5.21,4.89,5.07]'::evector(3) AS q;
RESET vector_vault.vault;
CREATE FUNCTION search(k int) RETURNS TABLE (id int, vault_name text) LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE 'SELECT i.id, i.vault_name FROM m_items i
                          ORDER BY i.embedding <-> $1 LIMIT $2'
        USING (SELECT q FROM m_query), k;
END
$$;
SET enable_seqscan = off;
SET vector_vault.ef_search = 400;
SELECT * FROM verify_summary('m_l2');
SELECT vault_name, count(*) FROM search(1000) GROUP BY 1 ORDER BY 1;

-- Rows inserted after CREATE INDEX are searchable at once: one exactly at the query point
-- comes first, and a first row of the so far empty vault m_c gives it a sub-graph.
SET vector_vault.vault = 'm_a';
SELECT add_rows('m_a', ARRAY(SELECT i FROM generate_series(301, 330) i));
INSERT INTO m_items VALUES (1000, 'm_a', '[5.21,4.89,5.07]');
SET vector_vault.vault = 'm_c';
INSERT INTO m_items VALUES (1001, 'm_c', '[5.21,4.89,5.08]');
RESET vector_vault.vault;
SELECT * FROM search(3);
SELECT vault_name, count(*) FROM search(1000) GROUP BY 1 ORDER BY 1;
SELECT * FROM verify_summary('m_l2');

-- UPDATE moves a row: it is found at its new place, never twice, and no longer near its old one
-- (the old version stays in the index until VACUUM; the heap hides it).
SET vector_vault.vault = 'm_c';
UPDATE m_items SET embedding = '[0,0,0]' WHERE id = 1001;
RESET vector_vault.vault;
SELECT * FROM search(2);
SELECT count(*) AS rows, count(DISTINCT id) AS distinct_ids FROM search(1000);
SELECT "check", ok FROM verify_summary('m_l2') WHERE "check" = 'elements';

-- DELETE: deleted rows are never returned, before VACUUM (the heap hides them) and after it
-- (VACUUM unlinks their elements and repairs their neighbours' lists). Every fourth row goes,
-- and every row of m_c, so m_c's entry point dies and its sub-graph becomes empty.
DELETE FROM m_items WHERE id % 4 = 0 OR vault_name = 'm_c';
SELECT count(*) AS rows, count(*) FILTER (WHERE id % 4 = 0 OR vault_name = 'm_c') AS deleted_returned
FROM search(1000);
VACUUM m_items;
SELECT count(*) AS rows, count(*) FILTER (WHERE id % 4 = 0 OR vault_name = 'm_c') AS deleted_returned,
       (SELECT count(*) FROM m_items) AS table_rows
FROM search(1000);
SELECT * FROM search(3);
SELECT * FROM verify_summary('m_l2');
SELECT bool_and(ok) AS verify_ok FROM vault.hnsw_verify('m_l2');
-- At the default ef_search too; and the first 10 rows (ef_search 400) are the sort's first 10.
RESET vector_vault.ef_search;
SELECT count(*) AS rows FROM search(1000);
SET enable_indexscan = off;
SET enable_seqscan = on;
CREATE TEMP TABLE sorted_10 AS SELECT array_agg(id) AS ids FROM search(10);
SET enable_seqscan = off;
RESET enable_indexscan;
SET vector_vault.ef_search = 400;
SELECT array_agg(id) = (SELECT ids FROM sorted_10) AS first_10_exact FROM search(10);
-- A VACUUM that finds nothing to delete changes nothing.
VACUUM m_items;
SELECT bool_and(ok) AS verify_ok FROM vault.hnsw_verify('m_l2');
-- The emptied vault takes new rows again.
SET vector_vault.vault = 'm_c';
INSERT INTO m_items VALUES (1002, 'm_c', '[5.21,4.89,5.09]');
RESET vector_vault.vault;
SELECT * FROM search(2);
SELECT * FROM verify_summary('m_l2') WHERE "check" IN ('elements', 'vault');

-- REINDEX builds a fresh graph from the live rows only: the same search results, every element
-- live, verify ok.
CREATE TEMP TABLE before_reindex AS SELECT array_agg(id) AS ids FROM search(50);
REINDEX INDEX m_l2;
SELECT array_agg(id) = (SELECT ids FROM before_reindex) AS same_results FROM search(50);
SELECT count(*) AS rows FROM search(1000);
SELECT * FROM verify_summary('m_l2');
-- REINDEX CONCURRENTLY too.
REINDEX INDEX CONCURRENTLY m_l2;
SELECT array_agg(id) = (SELECT ids FROM before_reindex) AS same_results FROM search(50);
SELECT bool_and(ok) AS verify_ok FROM vault.hnsw_verify('m_l2');

-- TRUNCATE empties the index; rows inserted afterwards are searchable. A TRUNCATE rolled back
-- (with rows inserted in between) leaves the old index and its results intact.
CREATE TEMP TABLE before_truncate AS SELECT array_agg(id) AS ids FROM search(1000);
BEGIN;
TRUNCATE m_items;
SELECT count(*) AS rows FROM search(1000);
SET LOCAL vector_vault.vault = 'm_b';
SELECT add_rows('m_b', ARRAY[2, 5, 8]);
SELECT * FROM search(10);
ROLLBACK;
SELECT array_agg(id) = (SELECT ids FROM before_truncate) AS same_results FROM search(1000);
SELECT bool_and(ok) AS verify_ok FROM vault.hnsw_verify('m_l2');
TRUNCATE m_items;
SELECT count(*) AS rows FROM search(1000);
SELECT * FROM verify_summary('m_l2');
SET vector_vault.vault = 'm_a';
SELECT add_rows('m_a', ARRAY(SELECT i FROM generate_series(1, 300) i WHERE i % 3 = 1));
SET vector_vault.vault = 'm_b';
SELECT add_rows('m_b', ARRAY(SELECT i FROM generate_series(1, 300) i WHERE i % 3 = 2));
RESET vector_vault.vault;
SELECT vault_name, count(*) FROM search(1000) GROUP BY 1 ORDER BY 1;
SELECT * FROM verify_summary('m_l2');

-- vault.hnsw_verify refuses anything but a vault_hnsw index (42809), and PUBLIC may not run it
-- (42501).
CREATE INDEX m_btree ON m_items (vault_name);
SELECT sqlstate_of($$SELECT * FROM vault.hnsw_verify('m_btree')$$);
SELECT sqlstate_of($$SELECT * FROM vault.hnsw_verify('m_items')$$);
SELECT sqlstate_of($$SELECT * FROM vault.hnsw_verify('no_such_index')$$);
SELECT vault.hnsw_verify(NULL) IS NULL AS strict;
DROP INDEX m_btree;
SELECT has_function_privilege('public', 'vault.hnsw_verify(regclass)', 'EXECUTE') AS public_can;
CREATE ROLE regress_mnt_user NOLOGIN;
GRANT SELECT ON m_items TO regress_mnt_user;
SET ROLE regress_mnt_user;
SELECT sqlstate_of($$SELECT * FROM vault.hnsw_verify('m_l2')$$);
RESET ROLE;
DROP OWNED BY regress_mnt_user;
DROP ROLE regress_mnt_user;

-- DROP INDEX: the same query falls back to a sort (sequential scans enabled again); verify no
-- longer finds it. Then the index is created again.
RESET enable_seqscan;
DROP INDEX m_l2;
SET vector_vault.vault = 'm_a';
EXPLAIN (COSTS OFF) SELECT id FROM m_items ORDER BY embedding <-> '[5.21,4.89,5.07]' LIMIT 3;
RESET vector_vault.vault;
SELECT sqlstate_of($$SELECT * FROM vault.hnsw_verify('m_l2')$$);
SELECT * FROM search(3);
CREATE INDEX m_l2 ON m_items USING vault_hnsw (embedding);
SET enable_seqscan = off;
SELECT * FROM search(3);

-- A dropped vault: its keys are shredded, its elements stay in the index, undecryptable.
-- hnsw_verify counts them as shredded (ok), searches by the other vaults still work, and the
-- dropped vault's rows never appear.
SELECT vault.drop_vault('m_b');
SELECT * FROM verify_summary('m_l2');
SELECT bool_and(ok) AS verify_ok FROM vault.hnsw_verify('m_l2');
SELECT vault_name, count(*) FROM search(1000) GROUP BY 1 ORDER BY 1;
SELECT * FROM search(3);
-- Inserts into the other vaults go on, and are searchable.
SET vector_vault.vault = 'm_c';
INSERT INTO m_items VALUES (1003, 'm_c', '[5.21,4.89,5.1]');
RESET vector_vault.vault;
SELECT vault_name, count(*) FROM search(1000) GROUP BY 1 ORDER BY 1;
SELECT * FROM search(2);
-- VACUUM after deleting rows of the live vaults works around the shredded elements.
DELETE FROM m_items WHERE vault_name = 'm_a' AND id % 5 = 0;
VACUUM m_items;
SELECT * FROM verify_summary('m_l2');
SELECT vault_name, count(*) FROM search(1000) GROUP BY 1 ORDER BY 1;
-- (Not tested here, reported as bugs: deleting the dropped vault's rows makes every later
-- VACUUM of the table fail with 22V02, since the index re-seals their elements under the
-- shredded key; and REINDEX fails with 22V02 while the dropped vault's rows are in the table.)

-- Clean up.
RESET enable_seqscan;
RESET vector_vault.ef_search;
DROP TABLE m_items, m_query;
DROP FUNCTION add_rows(text, int[]), verify_summary(regclass), search(int);
SELECT vault.drop_vault('m_a'), vault.drop_vault('m_c');
