-- 18_ehalfvec_ops: pgvector's halfvec arithmetic, comparisons and aggregates on ehalfvec. Results
-- are ehalfvecs sealed under the session's vault (rounded to halves as pgvector rounds them; a
-- result beyond half range is 22003 "overflow", a product that rounds to zero "underflow");
-- comparisons are booleans; ORDER BY, DISTINCT and GROUP BY work through the btree operator class
-- while a btree index on the column is refused.
SET vector_vault.vault = 'regress';
SELECT ('[1,2,3]'::ehalfvec + '[4,5,6]'::ehalfvec)::text AS add,
       ('[1,2,3]'::ehalfvec - '[4,5,6]'::ehalfvec)::text AS sub,
       ('[1,2,3]'::ehalfvec * '[4,5,6]'::ehalfvec)::text AS mul,
       ('[1,2]'::ehalfvec || '[3]'::ehalfvec)::text AS cat;
-- the results are ehalfvecs, sealed (their envelope names the session's vault)
SELECT pg_typeof('[1,2,3]'::ehalfvec + '[4,5,6]'::ehalfvec),
       vault.vault_of('[1,2,3]'::ehalfvec + '[4,5,6]'::ehalfvec) = vault.vault_id('regress') AS sealed_here;
-- sums round to halves: 0.1 + 0.2 is the half nearest to 0.3 (as pgvector prints it)
SELECT ('[0.1]'::ehalfvec + '[0.2]'::ehalfvec)::text AS rounded;
-- out of half range, and products that round to zero
SELECT '[65504]'::ehalfvec + '[65504]'::ehalfvec;
SELECT '[1e-4]'::ehalfvec * '[1e-4]'::ehalfvec;
SELECT '[1,2]'::ehalfvec + '[1,2,3]'::ehalfvec;
SELECT l2_normalize('[3,4]'::ehalfvec)::text AS unit, l2_normalize('[0,0]'::ehalfvec)::text AS zero,
       subvector('[1,2,3,4,5]'::ehalfvec, 2, 3)::text AS sub;
SELECT subvector('[1,2,3]'::ehalfvec, 4, 1);
SELECT halfvec_cmp('[1,2]'::ehalfvec, '[1,3]'::ehalfvec) AS cmp,
       '[1,2]'::ehalfvec < '[1,2,3]'::ehalfvec AS shorter_first,
       '[1,2]'::ehalfvec = '[1.0001,2]'::ehalfvec AS equal_as_halves,
       '[1,2]'::ehalfvec <> '[1,2.01]'::ehalfvec AS ne;
CREATE TABLE hv_ops (id int, v ehalfvec(3));
INSERT INTO hv_ops VALUES (1, '[1,2,3]'), (2, '[3,4,5]'), (3, '[1,2,3]'), (4, NULL);
-- the order is by value: as text '[10,0,0]' would sort before '[9,0,0]'
INSERT INTO hv_ops VALUES (5, '[10,0,0]'), (6, '[9,0,0]');
SELECT avg(v)::text AS avg, sum(v)::text AS sum, pg_typeof(avg(v)) FROM hv_ops WHERE id <= 4;
SELECT id, v::text AS val FROM hv_ops ORDER BY v DESC NULLS LAST, id;
SELECT count(DISTINCT v) AS distinct_values FROM hv_ops;
SELECT v::text AS val, count(*) FROM hv_ops WHERE v IS NOT NULL GROUP BY v ORDER BY v;
SELECT sum(x) FROM (VALUES ('[60000]'::ehalfvec), ('[60000]'::ehalfvec)) t(x);
SELECT avg(x)::text FROM (VALUES ('[60000]'::ehalfvec), ('[60000]'::ehalfvec)) t(x);
-- a btree index would store the plaintext order: refused as for evector
CREATE INDEX ON hv_ops USING btree (v);
DROP TABLE hv_ops;
