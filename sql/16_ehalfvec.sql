-- 16_ehalfvec: the encrypted half-precision vector (pgvector's halfvec): text and binary forms,
-- rounding to nearest even and overflow errors, typmods, casts to and from evector and arrays,
-- distances equal to evector's over the same half values, header-only dimensions, the stored
-- size (half evector's payload), rotation and DDL-guard coverage, and vault_hnsw indexes with
-- all four opclasses (index order equals a sort, EXPLAIN uses the index).
SET vector_vault.vault = 'regress';

-- Text: pgvector's form; each element rounds to the nearest half. 0.1 prints as the half
-- nearest to it, 65504 is the largest half, 1e-8 underflows to 0, -0 keeps its sign.
SELECT '[1,2,3]'::ehalfvec;
SELECT '[0.1, 65504, -65504, 1e-8, -0, 0.333333]'::ehalfvec;
-- Ties go to even: 2049 lies half way between the halves 2048 and 2050 (2048 is even), 2051
-- between 2050 and 2052 (2052 is even); 65519 rounds down to 65504.
SELECT '[2049, 2051, 65519]'::ehalfvec;
-- Overflow is an error naming the element, never an infinity (as pgvector's halfvec).
SELECT '[1, 65520]'::ehalfvec;
SELECT sqlstate_of($$SELECT '[1e5]'::ehalfvec$$);
SELECT sqlstate_of($$SELECT '[NaN]'::ehalfvec$$);
SELECT sqlstate_of($$SELECT '[1,2'::ehalfvec$$);
SELECT sqlstate_of($$SELECT '[]'::ehalfvec$$);

-- Typmods.
CREATE TABLE eh3 (id int PRIMARY KEY, v ehalfvec(3));
INSERT INTO eh3 VALUES (1, '[1,2,3]'), (2, '[0.5,-1,4]');
SELECT format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = 'eh3'::regclass AND attname = 'v';
SELECT sqlstate_of($$INSERT INTO eh3 VALUES (3, '[1,2]')$$);
SELECT sqlstate_of($$INSERT INTO eh3 SELECT 3, '[1,2]'::ehalfvec$$);
SELECT sqlstate_of($$SELECT '[1]'::ehalfvec(0)$$);
SELECT id, vector_dims(v), l2_norm(v) FROM eh3 ORDER BY id;

-- Binary form (send): int16 dims, int16 0, big-endian binary16, as pgvector's halfvec_send.
SELECT ehalfvec_send('[1,-2,65504]');
-- COPY (FORMAT binary) round trip through send and recv.
\getenv abs_builddir PG_ABS_BUILDDIR
\set ehbin_file :abs_builddir '/results/16_ehalfvec_ehbin.bin'
COPY eh3 TO :'ehbin_file' (FORMAT binary);
CREATE TABLE eh3b (id int PRIMARY KEY, v ehalfvec(3));
COPY eh3b FROM :'ehbin_file' (FORMAT binary);
SELECT a.id, b.v, ehalfvec_send(a.v) = ehalfvec_send(b.v) AS same_binary
FROM eh3 a JOIN eh3b b USING (id) ORDER BY id;

-- Casts: arrays in (assignment), evector <-> ehalfvec, real[] out. evector -> ehalfvec rounds
-- and refuses overflow; ehalfvec -> evector is exact.
SELECT '{1.5,2,3}'::real[]::ehalfvec, '{1,2}'::int[]::ehalfvec, '{0.1}'::numeric[]::ehalfvec,
       '{4.25}'::float8[]::ehalfvec;
SELECT sqlstate_of($$SELECT '{1,70000}'::real[]::ehalfvec$$);
SELECT sqlstate_of($$SELECT '{1,NULL}'::real[]::ehalfvec$$);
SELECT '[0.1, 2049]'::evector::ehalfvec AS narrowed, '[0.1, 2049]'::ehalfvec::evector AS widened;
SELECT sqlstate_of($$SELECT '[1e6]'::evector::ehalfvec$$);
SELECT v::real[] FROM eh3 ORDER BY id;
INSERT INTO eh3 VALUES (3, '{7,8,9}'::real[]), (4, '[9,9,9]'::evector(3));
SELECT id, v FROM eh3 WHERE id >= 3 ORDER BY id;

-- Distances over the half values equal evector's over the same values (exactly: both run the
-- same double-precision kernels on the widened floats).
SELECT bool_and(a.v <-> b.v = a.v::evector <-> b.v::evector) AS l2,
       bool_and(a.v <#> b.v = a.v::evector <#> b.v::evector) AS neg_ip,
       bool_and(a.v <=> b.v = a.v::evector <=> b.v::evector) AS cosine,
       bool_and(a.v <+> b.v = a.v::evector <+> b.v::evector) AS l1,
       bool_and(inner_product(a.v, b.v) = -(a.v <#> b.v)) AS ip
FROM eh3 a, eh3 b;
SELECT l2_distance('[0,0]'::ehalfvec, '[3,4]'::ehalfvec), l1_distance('[0,0]'::ehalfvec, '[3,4]'),
       cosine_distance('[1,0]'::ehalfvec, '[0,1]'), inner_product('[1,2]'::ehalfvec, '[3,4]');
SELECT sqlstate_of($$SELECT '[1,2]'::ehalfvec <-> '[1,2,3]'::ehalfvec$$);

-- Stored size: varlena header and envelope take 52 bytes, then 2 bytes per dimension for
-- ehalfvec and 4 for evector.
SELECT pg_column_size('[1,2,3,4,5,6,7,8]'::ehalfvec) AS ehalfvec_8,
       pg_column_size('[1,2,3,4,5,6,7,8]'::evector) AS evector_8;
-- An evector envelope is not an ehalfvec (the kind is authenticated): ciphertext I/O cannot
-- move one into the other.
SET vector_vault.ciphertext_io = on;
SELECT sqlstate_of(format('SELECT %L::ehalfvec', '[1,2]'::evector::text));
RESET vector_vault.ciphertext_io;

-- Key rotation knows the type: vault.reseal, key_version_of and vault_of work, _holds_encrypted
-- (what rotation, retirement and the DDL guard ask) says yes, and after rotate_key,
-- retire_key_version refuses while an ehalfvec still uses the old version and succeeds after
-- reencrypt, the values reading back unchanged. (Postgres refuses an index on the decrypted
-- form first: the cast is not IMMUTABLE.)
SELECT vault.key_version_of(v) >= 1 AS versioned, vault.vault_of(v) IS NOT NULL AS has_vault,
       vault.reseal(v)::text = v::text AS resealed_same
FROM eh3 WHERE id = 1;
SELECT vault._holds_encrypted('ehalfvec'), vault._holds_encrypted('ehalfvec[]');
SELECT sqlstate_of($$CREATE INDEX ON eh3 ((v::real[]))$$);
SELECT vault.create_vault('eh_rot');
SET vector_vault.vault = 'eh_rot';
CREATE TABLE eh_rot (id int, v ehalfvec(2));
INSERT INTO eh_rot VALUES (1, '[0.5,1]'), (2, '[2049,-3]');
SELECT vault.rotate_key('eh_rot');
SELECT sqlstate_of($$SELECT vault.retire_key_version('eh_rot', 1)$$) LIKE '55000%' AS refused;
SET client_min_messages = warning;
CALL vault.reencrypt('eh_rot');
RESET client_min_messages;
SELECT sqlstate_of($$SELECT vault.retire_key_version('eh_rot', 1)$$);
SELECT id, v, vault.key_version_of(v) FROM eh_rot ORDER BY id;
DROP TABLE eh_rot;
SELECT vault.drop_vault('eh_rot');
SET vector_vault.vault = 'regress';

-- vault_hnsw on ehalfvec: each opclass, index order equals the sort at an ef_search that
-- covers the table, and the plan uses the index.
CREATE TABLE eh_items (id int PRIMARY KEY, embedding ehalfvec(8));
INSERT INTO eh_items
SELECT i, format('[%s]', (SELECT string_agg((10 * sin(i * 1.37 + d * 0.71 + d * d))::real::text, ',')
                          FROM generate_series(1, 8) d))::ehalfvec
FROM generate_series(1, 300) i;
CREATE INDEX eh_l2 ON eh_items USING vault_hnsw (embedding ehalfvec_l2_ops);
CREATE INDEX eh_ip ON eh_items USING vault_hnsw (embedding ehalfvec_ip_ops);
CREATE INDEX eh_cos ON eh_items USING vault_hnsw (embedding ehalfvec_cosine_ops);
CREATE INDEX eh_l1 ON eh_items USING vault_hnsw (embedding ehalfvec_l1_ops);
ANALYZE eh_items;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM eh_items ORDER BY embedding <+> '[1,2,3,4,5,6,7,8]' LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM eh_items ORDER BY embedding <-> '[1,2,3,4,5,6,7,8]' LIMIT 5;
-- eh_knn(op, q): the first 10 ids by "embedding op q".
CREATE FUNCTION eh_knn(op text, q ehalfvec) RETURNS int[] LANGUAGE plpgsql AS $$
DECLARE
    r int[];
BEGIN
    EXECUTE format('SELECT array_agg(id ORDER BY n) FROM (SELECT id, row_number() OVER () AS n '
                   'FROM (SELECT id FROM eh_items ORDER BY embedding %s $1 LIMIT 10) s) s2', op)
        INTO r USING q;
    RETURN r;
END
$$;
-- eh_knnd(op, q): the distances of those rows, in order (half values make ties likely, above
-- all in L1, and a tie may be broken either way: distances are what must agree).
CREATE FUNCTION eh_knnd(op text, q ehalfvec) RETURNS float8[] LANGUAGE plpgsql AS $$
DECLARE
    r float8[];
BEGIN
    EXECUTE format('SELECT array_agg(d ORDER BY n) FROM (SELECT d, row_number() OVER () AS n '
                   'FROM (SELECT embedding %s $1 AS d FROM eh_items ORDER BY embedding %s $1 LIMIT 10) s) s2',
                   op, op)
        INTO r USING q;
    RETURN r;
END
$$;
CREATE TEMP TABLE eh_q AS SELECT k AS qid, format('[%s]', (SELECT string_agg((9 * cos(k * 2.11 + d * 1.3))::real::text, ',')
    FROM generate_series(1, 8) d))::ehalfvec(8) AS q FROM generate_series(1, 4) k;
CREATE TEMP TABLE eh_ops (op text);
INSERT INTO eh_ops VALUES ('<->'), ('<=>'), ('<+>');
SET vector_vault.ef_search = 400;
CREATE TEMP TABLE eh_via_index AS SELECT op, qid, eh_knnd(op, q) AS ds FROM eh_ops, eh_q;
RESET enable_seqscan;
SET enable_indexscan = off;
CREATE TEMP TABLE eh_via_sort AS SELECT op, qid, eh_knnd(op, q) AS ds FROM eh_ops, eh_q;
RESET enable_indexscan;
RESET vector_vault.ef_search;
SELECT i.op, count(*) AS queries, bool_and(i.ds = s.ds) AS same_as_sort
FROM eh_via_index i JOIN eh_via_sort s USING (op, qid) GROUP BY i.op ORDER BY i.op;
-- Inner product: the index returns 10 distinct rows (its graph is not compared with the sort,
-- as in 30_index_search).
SET enable_seqscan = off;
SELECT qid, (SELECT count(DISTINCT x) FROM unnest(eh_knn('<#>', q)) x) AS distinct_ids
FROM eh_q ORDER BY qid;
RESET enable_seqscan;
SELECT "check", ok FROM vault.hnsw_verify('eh_l1') ORDER BY "check";

DROP TABLE eh3, eh3b, eh_items;
DROP FUNCTION eh_knn(text, ehalfvec);
DROP FUNCTION eh_knnd(text, ehalfvec);
