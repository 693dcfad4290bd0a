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

-- Each type's operators take only its own envelopes: the kind in a value's authenticated header
-- must be the declared type's, so an evector-typed datum that holds an ehalfvec envelope is
-- refused (22V01) by evector's arithmetic, comparisons, btree order and aggregates, and an
-- ehalfvec-typed datum holding an evector envelope by ehalfvec's. (Before, the shared C functions
-- took the kind from the header and served either.) Only a superuser can forge such a datum:
-- here, as in 22_tamper, through binary-coercible casts to and from bytea.
CREATE CAST (evector AS bytea) WITHOUT FUNCTION;
CREATE CAST (bytea AS evector) WITHOUT FUNCTION;
CREATE CAST (ehalfvec AS bytea) WITHOUT FUNCTION;
CREATE CAST (bytea AS ehalfvec) WITHOUT FUNCTION;
CREATE TABLE forged AS
SELECT '[1,2,3]'::ehalfvec::bytea::evector AS h_as_e, '[1,2,3]'::evector::bytea::ehalfvec AS e_as_h,
       '[1,2,3]'::evector AS e, '[1,2,3]'::ehalfvec AS h;
SELECT label, sqlstate_of(format('SELECT (%s)::text FROM forged', q)) AS result
FROM (VALUES
    ('evector +', 'h_as_e + e'), ('evector - (right)', 'e - h_as_e'), ('evector *', 'h_as_e * h_as_e'),
    ('evector ||', 'e || h_as_e'), ('evector l2_normalize', 'l2_normalize(h_as_e)'),
    ('evector subvector', 'subvector(h_as_e, 1, 2)'), ('evector =', 'h_as_e = e'),
    ('evector <', 'e < h_as_e'), ('evector vector_cmp', 'vector_cmp(h_as_e, e)'),
    ('evector <->', 'h_as_e <-> e'),
    ('ehalfvec +', 'e_as_h + h'), ('ehalfvec - (right)', 'h - e_as_h'), ('ehalfvec *', 'e_as_h * e_as_h'),
    ('ehalfvec ||', 'h || e_as_h'), ('ehalfvec l2_normalize', 'l2_normalize(e_as_h)'),
    ('ehalfvec subvector', 'subvector(e_as_h, 1, 2)'), ('ehalfvec =', 'e_as_h = h'),
    ('ehalfvec <', 'h < e_as_h'), ('ehalfvec halfvec_cmp', 'halfvec_cmp(e_as_h, h)'),
    ('ehalfvec <->', 'e_as_h <-> h')) AS t(label, q);
-- aggregates and the btree order (the support function is called without an expression: the
-- kind comes from its C symbol)
SELECT sqlstate_of('SELECT avg(h_as_e)::text FROM forged') AS evector_avg,
       sqlstate_of('SELECT sum(e_as_h)::text FROM forged') AS ehalfvec_sum;
SELECT sqlstate_of('SELECT x::text FROM (SELECT h_as_e FROM forged UNION ALL SELECT e FROM forged) s(x) ORDER BY x') AS evector_order,
       sqlstate_of('SELECT x::text FROM (SELECT e_as_h FROM forged UNION ALL SELECT h FROM forged) s(x) ORDER BY x') AS ehalfvec_order;
-- Positive controls: the same expressions on values of the right kind work, the forged bytes
-- themselves included once cast back to the type their header names.
SELECT (e + e)::text AS e_add, (h + h)::text AS h_add, vector_cmp(e, e) AS e_cmp, halfvec_cmp(h, h) AS h_cmp,
       (h_as_e::bytea::ehalfvec + h)::text AS h_again, (e_as_h::bytea::evector * e)::text AS e_again,
       (SELECT avg(e)::text FROM forged) AS e_avg, (SELECT sum(h)::text FROM forged) AS h_sum
FROM forged;
DROP TABLE forged;
DROP CAST (evector AS bytea);
DROP CAST (bytea AS evector);
DROP CAST (ehalfvec AS bytea);
DROP CAST (bytea AS ehalfvec);
