-- 15_issue11_ops: pgvector 0.8's operators, comparisons, aggregates, l2_normalize and subvector
-- on evector (issue 11: each errored). Every result computed from encrypted inputs is sealed
-- under the session's vault (an evector) or is a number or boolean; comparisons and ordering use
-- the decrypted values; a btree index on an encrypted column is refused.
SET vector_vault.vault = 'regress';
SELECT vault.create_vault('ops_other');
-- vault_name(v): which vault a value is sealed under.
CREATE FUNCTION vault_name(v evector) RETURNS text LANGUAGE sql AS
    $$ SELECT name FROM vault._vaults WHERE vault_id = vault.vault_of(v) $$;

-- Element-wise arithmetic and concatenation, with pgvector's results.
SELECT '[1,2,3]'::evector + '[4,5,6]' AS add, '[1,2,3]'::evector - '[4,5,6]' AS sub,
       '[1,2,3]'::evector * '[4,5,6]' AS mul, '[1,2]'::evector || '[3]' AS concat;
SELECT pg_typeof('[1,2]'::evector + '[3,4]'), pg_typeof('[1,2]'::evector || '[3,4]');
-- Inputs from another vault: the result is sealed under the session's vault.
SET vector_vault.vault = 'ops_other';
CREATE TABLE ops_other_v AS SELECT '[10,20]'::evector AS v;
SET vector_vault.vault = 'regress';
SELECT vault_name(v) AS input_vault, vault_name(v + '[1,1]') AS sum_vault,
       vault_name(v || v) AS concat_vault, vault_name(l2_normalize(v)) AS normalized_vault,
       vault_name(subvector(v, 1, 1)) AS subvector_vault, (v + '[1,1]')::text AS sum
FROM ops_other_v;
-- With no vault selected, nothing can be sealed.
RESET vector_vault.vault;
SELECT sqlstate_of($$SELECT (v + v)::text FROM ops_other_v$$);
SET vector_vault.vault = 'regress';
-- Errors: dimensions (from the headers), overflow, underflow, too many dimensions.
SELECT sqlstate_of($$SELECT '[1,2]'::evector + '[1,2,3]'$$);
SELECT sqlstate_of($$SELECT '[1,2]'::evector - '[1]'$$);
SELECT sqlstate_of($$SELECT '[1,2]'::evector * '[1]'$$);
SELECT sqlstate_of($$SELECT '[3e38]'::evector + '[3e38]'$$);
SELECT sqlstate_of($$SELECT '[-3e38]'::evector - '[3e38]'$$);
SELECT sqlstate_of($$SELECT '[1e30]'::evector * '[1e30]'$$);
SELECT sqlstate_of($$SELECT '[1e-30]'::evector * '[1e-30]'$$);
SELECT sqlstate_of(format('SELECT %L::evector || %L::evector',
    '[' || array_to_string(array_fill(1, ARRAY[8000]), ',') || ']',
    '[' || array_to_string(array_fill(1, ARRAY[8001]), ',') || ']'));

-- l2_normalize and subvector (1-based start and a count, as pgvector).
SELECT l2_normalize('[3,4]'::evector), l2_normalize('[0,0]'::evector), l2_normalize('[0,-5,0]'::evector);
SELECT subvector('[1,2,3,4,5]'::evector, 2, 3) AS mid, subvector('[1,2,3,4,5]'::evector, 4, 10) AS tail,
       subvector('[1,2,3,4,5]'::evector, 0, 2) AS head, subvector('[1,2,3,4,5]'::evector, -1, 3) AS head2;
SELECT sqlstate_of($$SELECT subvector('[1,2,3]'::evector, 4, 1)$$);
SELECT sqlstate_of($$SELECT subvector('[1,2,3]'::evector, 1, 0)$$);
SELECT sqlstate_of($$SELECT subvector('[1,2,3]'::evector, -5, 2)$$);

-- Comparisons on the decrypted values: two seals of one vector differ as ciphertext, are equal.
CREATE TABLE ops_cmp AS SELECT '[1,2]'::evector AS a, '[1,2]'::evector AS b;
SET vector_vault.ciphertext_io = on;
SELECT a::text = b::text AS same_ciphertext FROM ops_cmp;
RESET vector_vault.ciphertext_io;
SELECT a = b AS eq, a <> b AS ne, a < b AS lt, a <= b AS le, a >= b AS ge, a > b AS gt FROM ops_cmp;
SELECT '[1,2]'::evector < '[1,3]' AS lt, '[1,2]'::evector < '[1,2,0]' AS shorter_first,
       '[2]'::evector > '[1,9,9]' AS elements_first, '[0]'::evector = '[-0]' AS zero,
       vector_cmp('[1,2]', '[1,1]') AS cmp;
SELECT sqlstate_of($$SELECT count(*) FROM ops_cmp WHERE a = '[1,2]'$$);
-- ORDER BY, DISTINCT and GROUP BY on the column (sorted through the btree opclass).
CREATE TABLE ops_items (id int, grp int, v evector(2));
INSERT INTO ops_items VALUES (1, 1, '[3,1]'), (2, 1, '[1,2]'), (3, 2, '[3,1]'), (4, 2, '[1,1]'),
                             (5, 1, '[1,2]'), (6, 2, NULL), (7, 1, '[-1,5]');
SELECT id, v FROM ops_items ORDER BY v, id;
SELECT id, v FROM ops_items ORDER BY v DESC NULLS LAST, id;
SELECT DISTINCT v FROM ops_items ORDER BY v;
SELECT v, count(*) FROM ops_items GROUP BY v ORDER BY v;
SELECT count(DISTINCT v) FROM ops_items;
SELECT min(id), max(id) FROM ops_items WHERE v = '[1,2]';
-- Another principal without read access to the values' vault cannot compare or sort them.
CREATE ROLE ops_outsider;
GRANT SELECT ON ops_items TO ops_outsider;
SET ROLE ops_outsider;
SELECT sqlstate_of($$SELECT id FROM ops_items ORDER BY v LIMIT 1$$);
SELECT sqlstate_of($$SELECT count(*) FROM ops_items WHERE v = v$$);
RESET ROLE;

-- A btree index on an encrypted column would order its pages by the plaintexts: refused, in
-- every form; vault_hnsw and btree on other columns stay allowed.
SELECT sqlstate_of($$CREATE INDEX ON ops_items (v)$$);
SELECT sqlstate_of($$CREATE INDEX ON ops_items USING btree (id, v)$$);
SELECT sqlstate_of($$ALTER TABLE ops_cmp ADD CONSTRAINT ops_a_unique UNIQUE (a)$$);
SELECT sqlstate_of($$CREATE TABLE ops_pk (v evector(2) PRIMARY KEY)$$);
SELECT sqlstate_of($$CREATE INDEX ON ops_items (id) INCLUDE (v)$$);
SELECT sqlstate_of($$CREATE INDEX ops_hnsw ON ops_items USING vault_hnsw (v evector_l2_ops)$$);
SELECT sqlstate_of($$CREATE TABLE ops_part (v evector(2)) PARTITION BY RANGE (v)$$);
SELECT sqlstate_of($$CREATE TABLE ops_part (v evector(2)) PARTITION BY LIST (v)$$);
SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'ops_items'::regclass ORDER BY 1;
CREATE INDEX ON ops_items (v);
-- ANALYZE decrypts nothing and keeps no values (the standard statistics would sort the values and
-- store a histogram and most-common values): it works for a table owner without vault rights,
-- as for autovacuum.
ALTER TABLE ops_items OWNER TO ops_outsider;
SET ROLE ops_outsider;
ANALYZE ops_items;
RESET ROLE;
ALTER TABLE ops_items OWNER TO CURRENT_USER;
SELECT round(null_frac::numeric, 3) AS null_frac, n_distinct, avg_width > 0 AS width,
       most_common_vals IS NULL AS no_mcv, histogram_bounds IS NULL AS no_histogram
FROM pg_stats WHERE tablename = 'ops_items' AND attname = 'v';

-- avg and sum: sealed under the session's vault; NULLs skipped; no rows gives NULL.
SELECT avg(v), sum(v), vault_name(avg(v)) AS avg_vault, vault_name(sum(v)) AS sum_vault FROM ops_items;
SELECT grp, avg(v), sum(v) FROM ops_items GROUP BY grp ORDER BY grp;
SELECT avg(v) IS NULL AS avg_null, sum(v) IS NULL AS sum_null FROM ops_items WHERE false;
SELECT avg(v) AS other_vault_input, vault_name(avg(v)) FROM ops_other_v;
SELECT sqlstate_of($$SELECT avg(x)::text FROM (VALUES ('[1,2]'::evector), ('[1,2,3]')) t(x)$$);
SELECT sqlstate_of($$SELECT sum(x)::text FROM (VALUES ('[3e38]'::evector), ('[3e38]')) t(x)$$);

-- Parallel aggregation: workers send their partial states sealed (each worker's serialized
-- state is one more seal under the vault), and the result equals the serial one.
CREATE TABLE ops_par AS
SELECT i AS id, format('[%s,%s,%s]', i % 17, (i * 7) % 23 - 11, i % 5)::evector(3) AS v
FROM generate_series(1, 3000) i;
ANALYZE ops_par;
CREATE TEMP TABLE ops_serial AS SELECT avg(v)::text AS avg, sum(v)::text AS sum FROM ops_par;
SELECT * FROM ops_serial;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT avg(v) FROM ops_par;
SELECT vault.seal_count('regress', 1) AS seals_before \gset
SELECT avg(v)::text = (SELECT avg FROM ops_serial) AS avg_same,
       sum(v)::text = (SELECT sum FROM ops_serial) AS sum_same FROM ops_par;
-- two results sealed, plus at least one sealed partial state per aggregate
SELECT vault.seal_count('regress', 1) - :seals_before >= 4 AS partial_states_sealed;
SELECT grp, avg(v)::text FROM (SELECT id % 3 AS grp, v FROM ops_par) s GROUP BY grp ORDER BY grp;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;
SELECT grp, avg(v)::text FROM (SELECT id % 3 AS grp, v FROM ops_par) s GROUP BY grp ORDER BY grp;

-- binary_quantize(evector) refuses (0A000) with a reason and a hint: pgvector's returns a
-- plaintext bit string, which for an encrypted vector is its sign pattern in the clear. NULL in,
-- NULL out (STRICT, as pgvector's).
SELECT binary_quantize('[1,-2,3]'::evector);
SELECT binary_quantize(NULL::evector) IS NULL AS null_in_null_out;
DO $$
BEGIN
    PERFORM binary_quantize(v) FROM ops_items LIMIT 1;
    RAISE NOTICE 'binary_quantize returned';
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'refused: %', SQLERRM;
END
$$;

DROP TABLE ops_items, ops_par, ops_cmp, ops_other_v;
DROP FUNCTION vault_name(evector);
DROP ROLE ops_outsider;
SELECT vault.drop_vault('ops_other');
