-- 36_index_cost: the planner's cost of a vault_hnsw search uses the index's own m (issue 13):
-- the startup cost (the search itself) is proportional to m, so an index with m = 48 costs 12
-- times one with m = 4 on the same table. (Before, every index was costed as m = 16: ratio 1.)
SELECT vault.create_vault('cost_v');
SET vector_vault.vault = 'cost_v';
SET enable_seqscan = off;
CREATE TABLE cost_t (id int, e evector(2));
INSERT INTO cost_t SELECT i, format('[%s,%s]', i, i)::evector FROM generate_series(1, 200) i;
ANALYZE cost_t;
CREATE FUNCTION pg_temp.search_cost() RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
    j json;
BEGIN
    EXECUTE 'EXPLAIN (FORMAT JSON) SELECT id FROM cost_t ORDER BY e <-> ''[1,1]'' LIMIT 5' INTO j;
    RETURN (j->0->'Plan'->'Plans'->0->>'Startup Cost')::float8;
END
$$;
CREATE INDEX cost_idx ON cost_t USING vault_hnsw (e) WITH (m = 4);
SELECT pg_temp.search_cost() AS cost_m4 \gset
DROP INDEX cost_idx;
CREATE INDEX cost_idx ON cost_t USING vault_hnsw (e) WITH (m = 48, ef_construction = 128);
SELECT pg_temp.search_cost() AS cost_m48 \gset
SELECT :cost_m4 > 0 AS costed, round((:cost_m48 / :cost_m4)::numeric, 3) AS ratio_m48_to_m4;
DROP TABLE cost_t;
SELECT vault.drop_vault('cost_v');
