-- 35_migrate_pgvector: vault.migrate_column on pgvector's vector column with an hnsw index
-- (issue 11), and on halfvec and sparsevec columns, when pgvector is installed on this server
-- (expected/35_migrate_pgvector_1.out is the run without it). The index is dropped with the
-- column and, when asked, recreated as vault_hnsw with the matching operator class and the same
-- m and ef_construction; otherwise a NOTICE gives the statement to run.
SELECT count(*) > 0 AS has_pgvector FROM pg_available_extensions WHERE name = 'vector' \gset
\if :has_pgvector
\else
\echo pgvector is not installed: skipped
\quit
\endif
SET vector_vault.vault = 'regress';
CREATE EXTENSION vector;
SELECT vault.create_vault('regress_pgv_a');
SELECT vault.create_vault('regress_pgv_b');
CREATE TABLE pgv (id int PRIMARY KEY, tenant text, embedding vector(3));
INSERT INTO pgv
SELECT i, CASE WHEN i % 2 = 0 THEN 'regress_pgv_a' ELSE 'regress_pgv_b' END,
       format('[%s,%s,%s]', i % 17, (i * 7) % 23, (i * 11) % 29)::vector
FROM generate_series(1, 500) i;
CREATE INDEX pgv_embedding ON pgv USING hnsw (embedding vector_cosine_ops) WITH (m = 8, ef_construction = 32);
CREATE INDEX pgv_l2 ON pgv USING hnsw (embedding vector_l2_ops);
CREATE TABLE pgv_copy AS SELECT id, embedding::real[] AS emb FROM pgv;
-- What pgvector answers, to compare with afterwards.
CREATE TABLE pgv_knn AS
SELECT array_agg(id ORDER BY embedding <=> '[3,5,7]', id) AS ids FROM pgv;

CALL vault.migrate_column('pgv', 'embedding', vault_column => 'tenant', rebuild_index => true);
SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'pgv'::regclass AND attname = 'embedding';
SELECT c.relname, am.amname, op.opcname, c.reloptions
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
JOIN pg_opclass op ON op.oid = i.indclass[0]
WHERE i.indrelid = 'pgv'::regclass ORDER BY 1;
SELECT count(*) FILTER (WHERE vault.vault_of(p.embedding) = vault.vault_id(p.tenant)) AS under_own_tenant,
       count(*) FILTER (WHERE p.embedding::real[] = c.emb) AS same_values
FROM pgv p JOIN pgv_copy c USING (id);
-- The rebuilt index serves the same query (cosine distances: exact for 500 rows at ef 100).
SET vector_vault.ef_search = 100;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM pgv ORDER BY embedding <=> '[3,5,7]' LIMIT 10;
SELECT (SELECT array_agg(id) FROM (SELECT id FROM pgv ORDER BY embedding <=> '[3,5,7]' LIMIT 10) s)
       = (SELECT ids[1:10] FROM pgv_knn) AS same_as_pgvector;
RESET enable_seqscan;
RESET vector_vault.ef_search;

-- Without rebuild_index: the index is dropped and the NOTICE says how to recreate it.
CREATE TABLE pgv2 (id int, embedding vector(3));
INSERT INTO pgv2 VALUES (1, '[1,2,3]'), (2, '[4,5,6]');
CREATE INDEX pgv2_embedding ON pgv2 USING hnsw (embedding vector_ip_ops);
CALL vault.migrate_column('pgv2', 'embedding');
SELECT count(*) AS indexes FROM pg_index WHERE indrelid = 'pgv2'::regclass;
SELECT id, embedding FROM pgv2 ORDER BY id;

-- drop_indexes_first: the index goes before the batches (each batch UPDATE would otherwise
-- insert every row into it again) and, with rebuild_index, comes back as vault_hnsw at the end.
CREATE TABLE pgv3 (id int, embedding vector(3));
INSERT INTO pgv3 SELECT i, format('[%s,1,2]', i)::vector FROM generate_series(1, 50) i;
CREATE INDEX pgv3_embedding ON pgv3 USING hnsw (embedding vector_l2_ops) WITH (m = 4);
CALL vault.migrate_column('pgv3', 'embedding', drop_indexes_first => true, rebuild_index => true);
SELECT c.relname, am.amname, c.reloptions FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_am am ON am.oid = c.relam WHERE i.indrelid = 'pgv3'::regclass;
SELECT count(*) FROM pgv3 WHERE vault.vault_of(embedding) = vault.vault_id('regress');

-- halfvec -> ehalfvec and sparsevec -> esparsevec, multi-tenant, in batches: each row sealed under
-- its tenant's vault, the halves and pairs exactly as they were (no rounding: the binary form is
-- sealed as it is), NULLs left NULL, the columns' dimensions kept. The hnsw index on halfvec
-- comes back as vault_hnsw ehalfvec_cosine_ops; esparsevec has no vault_hnsw operator class, so
-- the sparsevec hnsw index is dropped with its column (the NOTICE says so).
CREATE TABLE pgh (id int PRIMARY KEY, tenant text, h halfvec(3), s sparsevec(1000));
INSERT INTO pgh
SELECT i, CASE WHEN i % 2 = 0 THEN 'regress_pgv_a' ELSE 'regress_pgv_b' END,
       CASE WHEN i % 10 = 0 THEN NULL ELSE format('[%s,%s,%s]', i % 17, (i * 7) % 23 + 0.1, -((i * 11) % 29))::halfvec END,
       CASE WHEN i % 7 = 0 THEN NULL ELSE format('{%s:%s,%s:-1.5}/1000', i, i * 0.25, 1000 - i % 3)::sparsevec END
FROM generate_series(1, 300) i;
CREATE INDEX pgh_h ON pgh USING hnsw (h halfvec_cosine_ops) WITH (m = 8);
CREATE INDEX pgh_s ON pgh USING hnsw (s sparsevec_l2_ops);
CREATE TABLE pgh_copy AS SELECT id, h::text AS h, s::text AS s FROM pgh;
CALL vault.migrate_column('pgh', 'h', vault_column => 'tenant', batch_size => 100, rebuild_index => true);
CALL vault.migrate_column('pgh', 's', vault_column => 'tenant', batch_size => 100);
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = 'pgh'::regclass AND attname IN ('h', 's') ORDER BY 1;
SELECT c.relname, am.amname, op.opcname, c.reloptions
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
JOIN pg_opclass op ON op.oid = i.indclass[0]
WHERE i.indrelid = 'pgh'::regclass ORDER BY 1;
SELECT count(*) FILTER (WHERE vault.vault_of(p.h) = vault.vault_id(p.tenant)) AS h_under_own_tenant,
       count(*) FILTER (WHERE vault.vault_of(p.s) = vault.vault_id(p.tenant)) AS s_under_own_tenant,
       count(*) FILTER (WHERE p.h::text = c.h) AS h_same, count(*) FILTER (WHERE p.s::text = c.s) AS s_same,
       count(*) FILTER (WHERE p.h IS NULL AND c.h IS NULL) AS h_nulls,
       count(*) FILTER (WHERE p.s IS NULL AND c.s IS NULL) AS s_nulls, count(*) AS rows
FROM pgh p JOIN pgh_copy c USING (id);
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'pgh'::regclass;
-- The vault_hnsw index on the ehalfvec column serves a query.
SET enable_seqscan = off;
SELECT count(*) AS found FROM (SELECT id FROM pgh ORDER BY h <=> '[3,5,-7]' LIMIT 5) s;
RESET enable_seqscan;
-- vault.seal_in_ehalfvec / seal_in_esparsevec take only pgvector's halfvec / sparsevec.
SELECT vault.seal_in_ehalfvec('[1,2]'::vector, 'regress');
SELECT vault.seal_in_esparsevec('[1,2]'::halfvec, 'regress');
SELECT vault.seal_in_ehalfvec('[1,2]'::halfvec, 'regress')::text AS h,
       vault.seal_in_esparsevec('{2:5}/3'::sparsevec, 'regress')::text AS s;

DROP TABLE pgh, pgh_copy;
DROP TABLE pgv, pgv2, pgv3, pgv_copy, pgv_knn;
DROP EXTENSION vector CASCADE;
SELECT vault.drop_vault('regress_pgv_a');
SELECT vault.drop_vault('regress_pgv_b');
