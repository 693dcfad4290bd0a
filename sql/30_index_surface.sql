-- 30_index_surface: the vault_hnsw access method as SQL sees it: the AM and its opclasses,
-- CREATE INDEX options (m, ef_construction) and their limits, the vector_vault.ef_search GUC,
-- columns it refuses, NULLs, empty and UNLOGGED tables, and which plans use the index.
-- Element ids, vault ids and entry points are random and never printed.
SET vector_vault.vault = 'regress';

-- The access method and its three opclasses; evector_l2_ops is the default for evector.
SELECT amname, amtype FROM pg_am WHERE amname = 'vault_hnsw';
SELECT c.opcname, c.opcdefault, c.opcintype::regtype, o.amopopr::regoperator AS order_by_op,
       o.amoppurpose, o.amopsortfamily IS NOT NULL AS has_sort_family
FROM pg_opclass c
JOIN pg_am a ON a.oid = c.opcmethod
JOIN pg_amop o ON o.amopfamily = c.opcfamily
WHERE a.amname = 'vault_hnsw' ORDER BY c.opcname;
-- What the AM says it can do: it orders by operator only (no btree-style ordering) and has no
-- unique, multi-column or INCLUDE indexes.
SELECT p.name, pg_indexam_has_property(a.oid, p.name) AS has
FROM pg_am a, unnest(ARRAY['can_order', 'can_unique', 'can_multi_col', 'can_include']) AS p(name)
WHERE a.amname = 'vault_hnsw';

-- A small table: 60 distinct 3-dimensional points and 4 NULLs.
CREATE TABLE surf (id int PRIMARY KEY, embedding evector(3));
INSERT INTO surf SELECT i, format('[%s,%s,%s]', i % 7, i % 11, i % 13)::evector
FROM generate_series(1, 60) i;
INSERT INTO surf SELECT i, NULL FROM generate_series(61, 64) i;

-- Defaults: no reloptions stored, the metapage records m = 16 and ef_construction = 64.
CREATE INDEX surf_default ON surf USING vault_hnsw (embedding);
SELECT c.reloptions, a.amname, pg_get_indexdef(c.oid) AS def
FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE c.relname = 'surf_default';
SELECT "check", ok, regexp_replace(detail, ', counter [0-9]+$', '') AS detail
FROM vault.hnsw_verify('surf_default') WHERE "check" = 'metapage';
-- NULLs are not indexed: 60 elements for 60 non-NULL rows of 64.
SELECT "check", ok, detail FROM vault.hnsw_verify('surf_default') WHERE "check" = 'elements';
SELECT count(*) AS rows, count(embedding) AS non_null FROM surf;

-- Valid options at the limits are stored and used: m 2..100, ef_construction 4..1000;
-- ef_construction may equal 2 * m. (verify_ok is not shown for m = 2, ef_construction = 4:
-- hnswlib's graph with these minimums often leaves elements unreachable, which verify reports.)
CREATE INDEX surf_small ON surf USING vault_hnsw (embedding evector_l2_ops)
    WITH (m = 2, ef_construction = 4);
CREATE INDEX surf_large ON surf USING vault_hnsw (embedding evector_l2_ops)
    WITH (m = 100, ef_construction = 1000);
CREATE INDEX surf_equal ON surf USING vault_hnsw (embedding) WITH (m = 24, ef_construction = 48);
SELECT c.relname, c.reloptions,
       (SELECT regexp_replace(detail, ', metric.*$', '') FROM vault.hnsw_verify(c.oid::regclass)
        WHERE "check" = 'metapage') AS metapage,
       CASE WHEN c.relname <> 'surf_small' THEN
           (SELECT bool_and(ok) FROM vault.hnsw_verify(c.oid::regclass)) END AS verify_ok
FROM pg_class c WHERE c.relname IN ('surf_small', 'surf_large', 'surf_equal') ORDER BY c.relname;
DROP INDEX surf_small, surf_large, surf_equal;
-- A fractional value is rounded, as for any integer reloption.
CREATE INDEX surf_frac ON surf USING vault_hnsw (embedding) WITH (m = 7.6);
SELECT c.reloptions, (SELECT regexp_replace(detail, ', ef_construction.*$', '')
       FROM vault.hnsw_verify('surf_frac') WHERE "check" = 'metapage') AS metapage
FROM pg_class c WHERE c.relname = 'surf_frac';
DROP INDEX surf_frac;

-- Out-of-range options are refused before anything is built (22023), with the valid range.
CREATE INDEX ON surf USING vault_hnsw (embedding) WITH (m = 1);
CREATE INDEX ON surf USING vault_hnsw (embedding) WITH (m = 101);
CREATE INDEX ON surf USING vault_hnsw (embedding) WITH (ef_construction = 3);
CREATE INDEX ON surf USING vault_hnsw (embedding) WITH (ef_construction = 1001);
-- ef_construction below 2 * m is refused with a hint, also when it is the default (64 < 2 * 40).
CREATE INDEX ON surf USING vault_hnsw (embedding) WITH (m = 16, ef_construction = 31);
CREATE INDEX ON surf USING vault_hnsw (embedding) WITH (m = 40);
-- The same as SQLSTATEs; unknown options and non-integers too.
SELECT o, sqlstate_of(format('CREATE INDEX ON surf USING vault_hnsw (embedding) WITH (%s)', o))
FROM unnest(ARRAY['m = 1', 'm = 0', 'm = -1', 'm = 101', 'ef_construction = 3',
                  'ef_construction = 1001', 'm = 16, ef_construction = 31', 'm = 40',
                  'm = 100, ef_construction = 199', 'm = ''x''', 'foo = 1']) AS o;
-- None of the refused indexes was created.
SELECT count(*) AS indexes FROM pg_index WHERE indrelid = 'surf'::regclass;
-- ALTER INDEX validates the ranges too (the metapage keeps the build's values).
ALTER INDEX surf_default SET (m = 1);
ALTER INDEX surf_default SET (ef_construction = 1001);

-- vector_vault.ef_search: default 40, range 1..1000, settable by anyone (22023 outside).
SELECT name, setting, min_val, max_val, context, vartype FROM pg_settings
WHERE name = 'vector_vault.ef_search';
SET vector_vault.ef_search = 0;
SET vector_vault.ef_search = 1001;
SELECT v, sqlstate_of(format('SET vector_vault.ef_search = %s', v))
FROM unnest(ARRAY['1', '1000', '0', '1001', '-5', '''many''', '40.5']) AS v;
SET vector_vault.ef_search = 1;
SHOW vector_vault.ef_search;
RESET vector_vault.ef_search;
SHOW vector_vault.ef_search;

-- Columns it refuses: evector without dimensions (22023, with a hint), also when empty;
-- a type without a vault_hnsw opclass (42704); more than one column, UNIQUE, INCLUDE (0A000).
CREATE TABLE surf_nodims (id int, embedding evector, other evector(3), n real[]);
CREATE INDEX ON surf_nodims USING vault_hnsw (embedding);
INSERT INTO surf_nodims VALUES (1, '[1,2]', '[1,2,3]', '{1,2,3}');
CREATE INDEX ON surf_nodims USING vault_hnsw (embedding);
SELECT sqlstate_of('CREATE INDEX ON surf_nodims USING vault_hnsw (n)');
SELECT sqlstate_of('CREATE INDEX ON surf_nodims USING vault_hnsw (other, embedding)');
SELECT sqlstate_of('CREATE INDEX ON surf_nodims USING vault_hnsw (id)');
SELECT sqlstate_of('CREATE UNIQUE INDEX ON surf_nodims USING vault_hnsw (other)');
SELECT sqlstate_of('CREATE INDEX ON surf_nodims USING vault_hnsw (other) INCLUDE (id)');
-- A typmod cast in an expression index gives the dimensions the column lacks.
CREATE INDEX surf_nodims_expr ON surf_nodims USING vault_hnsw ((embedding::evector(2)));
SELECT bool_and(ok) AS verify_ok FROM vault.hnsw_verify('surf_nodims_expr');
DROP TABLE surf_nodims;

-- An empty table: the index has no vaults yet, a search returns nothing, and the first insert
-- creates the vault's sub-graph.
SET enable_seqscan = off;
CREATE TABLE surf_empty (id int, embedding evector(2));
CREATE INDEX surf_empty_idx ON surf_empty USING vault_hnsw (embedding);
SELECT "check", ok FROM vault.hnsw_verify('surf_empty_idx');
EXPLAIN (COSTS OFF) SELECT id FROM surf_empty ORDER BY embedding <-> '[0,0]' LIMIT 3;
SELECT id FROM surf_empty ORDER BY embedding <-> '[0,0]' LIMIT 3;
INSERT INTO surf_empty VALUES (1, '[1,1]'), (2, '[2,2]'), (3, NULL);
SELECT id FROM surf_empty ORDER BY embedding <-> '[0,0]' LIMIT 3;
SELECT "check", ok, regexp_replace(detail, 'vault [0-9a-f]{16}: (\d+ live, \d+ reachable).*$',
                                   '\1') AS detail
FROM vault.hnsw_verify('surf_empty_idx') WHERE "check" IN ('elements', 'vault');
-- An index scan returns as many rows as there are non-NULL embeddings, never the NULLs.
SELECT count(*) AS from_index FROM (SELECT id FROM surf ORDER BY embedding <-> '[0,0,0]') s;
SELECT count(*) AS from_index FROM (SELECT id FROM surf ORDER BY embedding <-> '[0,0,0]' LIMIT 100) s;
SELECT count(*) FILTER (WHERE embedding IS NULL) AS nulls_returned
FROM (SELECT embedding FROM surf ORDER BY embedding <-> '[0,0,0]' LIMIT 100) s;
-- Without the index (a sort), NULL embeddings come last and are returned.
SET enable_indexscan = off;
SELECT count(*) AS from_sort FROM (SELECT id FROM surf ORDER BY embedding <-> '[0,0,0]' LIMIT 100) s;
RESET enable_indexscan;
-- A NULL query vector as a bind parameter (generic plan, so the index is used) returns rows,
-- in no particular order, as a sort does (every distance is NULL).
-- (A NULL literal is folded to a constant ORDER BY and never reaches the index.)
SET plan_cache_mode = force_generic_plan;
PREPARE null_knn(evector) AS
    SELECT count(*) AS rows FROM (SELECT id FROM surf ORDER BY embedding <-> $1 LIMIT 5) s;
EXPLAIN (COSTS OFF) EXECUTE null_knn(NULL);
EXECUTE null_knn(NULL);
DEALLOCATE null_knn;
SET enable_indexscan = off;
SET enable_seqscan = on;
PREPARE null_knn(evector) AS
    SELECT count(*) AS rows FROM (SELECT id FROM surf ORDER BY embedding <-> $1 LIMIT 5) s;
EXPLAIN (COSTS OFF) EXECUTE null_knn(NULL);
EXECUTE null_knn(NULL);
DEALLOCATE null_knn;
RESET enable_indexscan;
SET enable_seqscan = off;
RESET plan_cache_mode;
DROP TABLE surf_empty;

-- An UNLOGGED table and its index (the index gets an init fork): build, insert, search, verify.
CREATE UNLOGGED TABLE surf_unlogged (id int, embedding evector(2));
INSERT INTO surf_unlogged SELECT i, format('[%s,%s]', i, 100 - i)::evector FROM generate_series(1, 40) i;
CREATE INDEX surf_unlogged_idx ON surf_unlogged USING vault_hnsw (embedding);
SELECT c.relpersistence,
       pg_stat_file(pg_relation_filepath(c.oid) || '_init', true) IS NOT NULL AS has_init_fork
FROM pg_class c WHERE c.relname = 'surf_unlogged_idx';
INSERT INTO surf_unlogged VALUES (41, '[10.4,89.6]');
SELECT id FROM surf_unlogged ORDER BY embedding <-> '[10.3,89.7]' LIMIT 3;
SELECT bool_and(ok) AS verify_ok FROM vault.hnsw_verify('surf_unlogged_idx');
DROP TABLE surf_unlogged;
RESET enable_seqscan;

-- Planner. The index serves "ORDER BY column <op> value LIMIT k" where <op> is the index's
-- opclass operator; its cost model favours it once the table is large enough (3000 rows here).
CREATE TABLE plan_items (id int PRIMARY KEY, grp int, embedding evector(4));
INSERT INTO plan_items
SELECT i, i % 10, format('[%s,%s,%s,%s]', i % 17, i % 19, i % 23, i % 29)::evector
FROM generate_series(1, 3000) i;
CREATE INDEX plan_l2 ON plan_items USING vault_hnsw (embedding evector_l2_ops);
CREATE INDEX plan_ip ON plan_items USING vault_hnsw (embedding evector_ip_ops);
CREATE INDEX plan_cos ON plan_items USING vault_hnsw (embedding evector_cosine_ops);
ANALYZE plan_items;
EXPLAIN (COSTS OFF) SELECT id FROM plan_items ORDER BY embedding <-> '[1,2,3,4]' LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM plan_items ORDER BY embedding <#> '[1,2,3,4]' LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM plan_items ORDER BY embedding <=> '[1,2,3,4]' LIMIT 5;
-- With a bind parameter, custom and generic plans.
PREPARE plan_knn(evector, int) AS
    SELECT id FROM plan_items ORDER BY embedding <-> $1 LIMIT $2;
EXPLAIN (COSTS OFF) EXECUTE plan_knn('[1,2,3,4]', 5);
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE plan_knn('[1,2,3,4]', 5);
RESET plan_cache_mode;
DEALLOCATE plan_knn;
-- Not used: no ORDER BY (the cost is infinite, even with sequential scans disabled) ...
EXPLAIN (COSTS OFF) SELECT id FROM plan_items WHERE grp = 3;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM plan_items WHERE grp = 3;
RESET enable_bitmapscan;
RESET enable_seqscan;
-- ... an operator no vault_hnsw opclass orders by (<+>, L1) ...
EXPLAIN (COSTS OFF) SELECT id FROM plan_items ORDER BY embedding <+> '[1,2,3,4]' LIMIT 5;
-- ... a distance that is not the ORDER BY key, or an ORDER BY of an expression over it.
EXPLAIN (COSTS OFF) SELECT id FROM plan_items ORDER BY (embedding <-> '[1,2,3,4]') * 2 LIMIT 5;
-- An operator of another opclass uses that opclass's index: drop the ip and cosine indexes and
-- <#> / <=> fall back to a sort, while <-> keeps its index.
DROP INDEX plan_ip, plan_cos;
EXPLAIN (COSTS OFF) SELECT id FROM plan_items ORDER BY embedding <#> '[1,2,3,4]' LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM plan_items ORDER BY embedding <=> '[1,2,3,4]' LIMIT 5;
-- Recorded behaviour: the operator is its own commutator, so "ORDER BY value <-> column"
-- is matched to the index too (Postgres commutes it).
EXPLAIN (COSTS OFF) SELECT id FROM plan_items ORDER BY '[1,2,3,4]' <-> embedding LIMIT 5;
-- ORDER BY without LIMIT: every row comes back, in non-decreasing distance. (The plan is not
-- pinned here: hnsw_am.cpp says a full ordering of a large table should not use the index, but
-- its cost estimate makes the planner choose the index on this table -- reported as a bug.)
SELECT count(*) AS rows, count(*) FILTER (WHERE d < prev) AS out_of_order
FROM (SELECT d, lag(d) OVER (ORDER BY ord) AS prev
      FROM (SELECT embedding <-> '[1,2,3,4]' AS d, row_number() OVER () AS ord
            FROM (SELECT embedding FROM plan_items ORDER BY embedding <-> '[1,2,3,4]') s) s2) s3;
-- A WHERE clause on another column keeps the index; the filter runs on its output.
EXPLAIN (COSTS OFF) SELECT id FROM plan_items WHERE grp = 3 ORDER BY embedding <-> '[1,2,3,4]' LIMIT 5;
-- Even on a small table (60 rows) the planner takes the index for ORDER BY ... LIMIT: every
-- distance in a sort decrypts a row (the distance functions cost 50), the index search does not.
ANALYZE surf;
EXPLAIN (COSTS OFF) SELECT id FROM surf ORDER BY embedding <-> '[1,2,3]' LIMIT 5;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM surf ORDER BY embedding <-> '[1,2,3]' LIMIT 5;
RESET enable_seqscan;

DROP TABLE plan_items, surf;
