-- 31_index_cache: the shared index cache as SQL sees it: the representation settings,
-- vault.prewarm, the vault.index_cache view and who may use them, and README's sizing query.
-- Byte counts depend on the build's layout and are not printed; the representation, element and
-- vault counts are.
SET vector_vault.vault = 'regress';
SHOW vector_vault.cache_representation;
SHOW vector_vault.cache_indexes;
-- A reload setting: a session cannot change it.
SET vector_vault.cache_representation = 'float32';

CREATE TABLE cache_items (id int, embedding evector(4));
INSERT INTO cache_items SELECT g, ('[' || g || ',' || g % 7 || ',' || g % 3 || ',1]')::evector(4)
FROM generate_series(1, 200) g;
CREATE INDEX cache_items_idx ON cache_items USING vault_hnsw (embedding);
CREATE INDEX cache_items_btree ON cache_items (id);
SELECT vault.prewarm('cache_items_idx');
SELECT representation, vectors, vaults, loads >= 1 AS loaded, resident_bytes > 0 AS resident,
       evictions
FROM vault.index_cache WHERE index = 'cache_items_idx'::regclass;
-- Searches answer from the entry in exact order (auto loads this small index as float32).
SET enable_seqscan = off;
SELECT id, round((embedding <-> '[50,1,2,1]')::numeric, 4) AS d
FROM cache_items ORDER BY embedding <-> '[50,1,2,1]' LIMIT 5;
RESET enable_seqscan;
SELECT hits > 0 AS used FROM vault.index_cache WHERE index = 'cache_items_idx'::regclass;

-- prewarm refuses what is not a vault_hnsw index.
SELECT vault.prewarm('cache_items_btree');
SELECT vault.prewarm('cache_items');

-- Who may look: pg_monitor reads the view; others may not, and prewarm needs SELECT on the table.
CREATE ROLE regress_cache_nobody NOLOGIN;
CREATE ROLE regress_cache_monitor NOLOGIN IN ROLE pg_monitor;
GRANT EXECUTE ON FUNCTION vault.prewarm(regclass) TO regress_cache_nobody;
SET ROLE regress_cache_nobody;
SELECT count(*) FROM vault.index_cache;
SELECT vault.prewarm('cache_items_idx');
RESET ROLE;
SET ROLE regress_cache_monitor;
SELECT representation FROM vault.index_cache WHERE index = 'cache_items_idx'::regclass;
RESET ROLE;

-- README's sizing query runs and estimates this index (200 rows after ANALYZE).
ANALYZE cache_items;
SELECT index, rows, sq8 IS NOT NULL AS has_sq8, sq4 IS NOT NULL AS has_sq4,
       float32_or_half IS NOT NULL AS has_float32,
       pages IS NOT NULL AS has_pages
FROM (
SELECT i.indexrelid::regclass AS index, c.reltuples::bigint AS rows,
       pg_size_pretty((1.25 * greatest(c.reltuples, 0) * (64 * ceil((48 + 4 * (1 + 2 * o.m)) / 64.0)
                       + 64 * ceil(a.atttypmod / 64.0)))::bigint) AS sq8,
       pg_size_pretty((1.25 * greatest(c.reltuples, 0) * 64 * ceil((48 + 4 * (1 + 2 * o.m)
                       + ceil(a.atttypmod / 2.0)) / 64.0))::bigint) AS sq4,
       pg_size_pretty((1.25 * greatest(c.reltuples, 0) * (64 * ceil((48 + 4 * (1 + 2 * o.m)) / 64.0)
                       + 64 * ceil(o.width * a.atttypmod / 64.0)))::bigint) AS float32_or_half,
       pg_size_pretty((1.25 * greatest(c.reltuples, 0) * 48)::bigint) AS pages
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_am am ON am.oid = ic.relam AND am.amname = 'vault_hnsw'
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
CROSS JOIN LATERAL (SELECT coalesce((SELECT option_value::int FROM pg_options_to_table(ic.reloptions)
                                     WHERE option_name = 'm'), 16) AS m,
                           CASE format_type(a.atttypid, NULL) WHEN 'ehalfvec' THEN 2 ELSE 4 END AS width) o
) s WHERE index = 'cache_items_idx'::regclass;

-- Dropping the index frees its entry at once (its plaintext zeroed), not at the next eviction.
SELECT oid AS dropped_index FROM pg_class WHERE relname = 'cache_items_idx' \gset
SELECT count(*) AS entries_before FROM vault.index_cache
WHERE index = :dropped_index::oid AND representation <> 'none';
DROP TABLE cache_items;
SELECT count(*) AS entries_left FROM vault.index_cache
WHERE index = :dropped_index::oid AND representation <> 'none';
REVOKE EXECUTE ON FUNCTION vault.prewarm(regclass) FROM regress_cache_nobody;
DROP ROLE regress_cache_nobody, regress_cache_monitor;
