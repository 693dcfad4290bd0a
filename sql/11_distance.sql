-- 11_distance: the distance operators and functions on known values, their errors, and exact
-- nearest-neighbour search with ORDER BY ... LIMIT and a bind parameter.
SET vector_vault.vault = 'regress';

-- a = [1,2,3], b = [4,5,6]: L2 = sqrt(27) = 5.196152, inner product 32, L1 9,
-- cosine distance 1 - 32 / sqrt(14 * 77) = 0.025368.
CREATE TEMP TABLE ab (a evector(3), b evector(3));
INSERT INTO ab VALUES ('[1,2,3]', '[4,5,6]');
SELECT round((a <-> b)::numeric, 6) AS l2_op, round(l2_distance(a, b)::numeric, 6) AS l2,
       a <#> b AS neg_ip_op, vector_negative_inner_product(a, b) AS neg_ip,
       inner_product(a, b) AS ip,
       round((a <=> b)::numeric, 6) AS cos_op, round(cosine_distance(a, b)::numeric, 6) AS cos,
       a <+> b AS l1_op, l1_distance(a, b) AS l1
FROM ab;
-- Every operator is symmetric (and declared its own commutator).
SELECT a <-> b = b <-> a AS l2, a <#> b = b <#> a AS ip, a <=> b = b <=> a AS cos,
       a <+> b = b <+> a AS l1 FROM ab;
SELECT oprname, oprcom::regoperator FROM pg_operator
WHERE oprleft = 'evector'::regtype ORDER BY oprname;
-- A vector's distance to itself; negative elements; orthogonal and opposite vectors.
SELECT a <-> a AS l2_self, a <+> a AS l1_self, round((a <=> a)::numeric, 12) AS cos_self FROM ab;
SELECT '[1,-2]'::evector <-> '[-2,2]'::evector AS l2,
       '[1,-2]'::evector <+> '[-2,2]'::evector AS l1,
       '[1,-2]'::evector <#> '[-2,2]'::evector AS neg_ip;
SELECT '[1,0]'::evector <=> '[0,1]'::evector AS orthogonal,
       '[1,1]'::evector <=> '[-2,-2]'::evector AS opposite,
       '[1,1]'::evector <=> '[3,3]'::evector AS parallel;
-- Cosine distance with a zero vector is NaN (as pgvector), on either side.
SELECT '[0,0]'::evector <=> '[1,2]'::evector AS zero_left,
       cosine_distance('[1,2]'::evector, '[0,0]') AS zero_right,
       '[0,0]'::evector <-> '[3,4]'::evector AS l2_zero;
-- Double-precision accumulation: no float4 overflow for large elements.
SELECT '[3e38, 3e38]'::evector <-> '[-3e38, -3e38]'::evector > 8e38 AS no_overflow;
-- NULL in, NULL out (the functions are strict).
SELECT NULL::evector <-> '[1]' IS NULL AS l2, l1_distance(NULL::evector, '[1]') IS NULL AS l1;
-- Two untyped literals name no type: since ehalfvec exists the call is ambiguous (42725), as
-- pgvector's functions shared by vector, halfvec and sparsevec are.
SELECT sqlstate_of($$SELECT l1_distance('[1]', '[2]')$$);

-- Different dimensions are an error (22000), whichever side is the constant.
SELECT '[1,2]'::evector <-> '[1,2,3]'::evector;
SELECT sqlstate_of($$SELECT a <#> '[1,2]' FROM ab$$);
SELECT sqlstate_of($$SELECT '[1,2]' <=> b FROM ab$$);
SELECT sqlstate_of($$SELECT inner_product(a, '[1]') FROM ab$$);

-- Exact search: every row is decrypted and compared; ORDER BY distance LIMIT k returns the k
-- nearest in order. Points on a line make the expected order obvious.
CREATE TABLE items (id int PRIMARY KEY, embedding evector(2));
INSERT INTO items SELECT i, format('[%s,%s]', i, i * 2)::evector FROM generate_series(1, 20) i;
SELECT id, round((embedding <-> '[10.2,20.4]')::numeric, 4) AS dist
FROM items ORDER BY embedding <-> '[10.2,20.4]' LIMIT 5;
-- The same through PREPARE / EXECUTE with the query vector as a bind parameter.
PREPARE knn(evector, int) AS
    SELECT id FROM items ORDER BY embedding <-> $1 LIMIT $2;
EXECUTE knn('[3.1,6.2]', 3);
EXECUTE knn('[19.9,39.8]', 4);
EXECUTE knn('[-100,-100]', 2);
-- A parameter of the wrong dimension is an error, not an empty result.
EXECUTE knn('[1,2,3]', 3);
-- The parameter on the left of the operator gives the same order.
PREPARE knn_left(evector) AS
    SELECT id FROM items ORDER BY $1 <-> embedding LIMIT 3;
EXECUTE knn_left('[3.1,6.2]');
-- Other metrics: L1, inner product (<#> is negative so ascending order is most similar first),
-- cosine (every item is on the same ray, so all distances are ~0 and id breaks ties).
PREPARE knn_all(evector) AS
    SELECT 'l1' AS metric, array_agg(id) AS ids FROM
        (SELECT id FROM items ORDER BY embedding <+> $1, id LIMIT 3) s
    UNION ALL
    SELECT 'ip', array_agg(id) FROM
        (SELECT id FROM items ORDER BY embedding <#> $1, id LIMIT 3) s
    UNION ALL
    SELECT 'cosine', array_agg(id) FROM
        (SELECT id FROM items ORDER BY round((embedding <=> $1)::numeric, 6), id LIMIT 3) s;
EXECUTE knn_all('[5,10]');
-- A plan with a generic parameter (plan_cache_mode) behaves the same.
SET plan_cache_mode = force_generic_plan;
EXECUTE knn('[7.4,14.8]', 3);
EXECUTE knn_left('[7.4,14.8]');
RESET plan_cache_mode;
-- Distances in WHERE and in a join between two encrypted columns.
SELECT count(*) FROM items WHERE embedding <-> '[10,20]' < 5;
SELECT a.id, b.id FROM items a JOIN items b ON a.id < b.id AND a.embedding <+> b.embedding = 3
ORDER BY 1, 2 LIMIT 3;
DEALLOCATE knn;
DEALLOCATE knn_left;
DEALLOCATE knn_all;
DROP TABLE items;
