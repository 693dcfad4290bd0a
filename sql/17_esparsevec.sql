-- 17_esparsevec: the encrypted sparse vector (pgvector's sparsevec): text and binary forms,
-- zeros dropped and pairs sorted, input errors (never quoting the input), typmods (enforced by
-- decrypting, except under ciphertext I/O), casts to and from evector, ehalfvec and arrays,
-- distances equal to evector's on the dense form, l2_norm and l2_normalize, what the ciphertext
-- length shows, the heap holding only ciphertext, secret buffers zeroed, rotation, vault.protect
-- and DDL-guard coverage, and no vault_hnsw index.
SET vector_vault.vault = 'regress';

-- Text: pgvector's form. Whitespace anywhere, pairs in any order, zeros dropped, shortest
-- float text on output; no pairs at all is a zero vector.
SELECT '{1:1.5,3:3.5}/5'::esparsevec;
SELECT ' { 3 : 2 , 1:-0.25, 2:0 } / 4 '::esparsevec AS sorted_zero_dropped,
       '{1:2.,3:4.}/5'::esparsevec AS trailing_point, '{ }/3'::esparsevec AS empty;
SELECT '{1:1.5e38,2:-1.5e-38}/2'::esparsevec AS extremes, '{}/1000000000'::esparsevec AS max_dims;
-- Errors name the element by position, never its text (the literal is plaintext).
SELECT '{1:1,2:hello}/2'::esparsevec;
-- es_error(q): the SQLSTATE, message and detail of the error q raises ('ok' if none).
CREATE FUNCTION es_error(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    d text;
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
    RETURN SQLSTATE || ': ' || SQLERRM || coalesce(' (' || nullif(d, '') || ')', '');
END
$$;
SELECT es_error($$SELECT '{1:1,1:2}/3'::esparsevec$$);
SELECT es_error($$SELECT '{4:1}/3'::esparsevec$$);
SELECT es_error($$SELECT '{0:1}/1'::esparsevec$$);
SELECT es_error($$SELECT '{2147483648:1}/1'::esparsevec$$);
SELECT es_error($$SELECT '{1:NaN}/3'::esparsevec$$);
SELECT es_error($$SELECT '{1:-Infinity}/3'::esparsevec$$);
SELECT es_error($$SELECT '{1:4e38}/3'::esparsevec$$);
SELECT es_error($$SELECT '{1:1e-46}/3'::esparsevec$$);
SELECT es_error($$SELECT '{1:2}/0'::esparsevec$$);
SELECT es_error($$SELECT '{}/-1'::esparsevec$$);
SELECT es_error($$SELECT '{}/1000000001'::esparsevec$$);
SELECT es_error($$SELECT '{}'::esparsevec$$);
SELECT es_error($$SELECT '{}/1a'::esparsevec$$);
SELECT es_error($$SELECT '{1:}/1'::esparsevec$$);
SELECT es_error($$SELECT '{1:1,}/1'::esparsevec$$);
SELECT es_error($$SELECT ''::esparsevec$$);
SELECT es_error($$SELECT '[1,2]'::esparsevec$$);

-- Typmods: esparsevec(n) is the dimension count, checked on input, casts and assignment (by
-- decrypting: the count is inside the ciphertext).
SELECT '{}/3'::esparsevec(3);
SELECT sqlstate_of($$SELECT '{}/3'::esparsevec(2)$$);
SELECT sqlstate_of($$SELECT '{}/3'::esparsevec(3, 2)$$);
SELECT sqlstate_of($$SELECT '{}/3'::esparsevec(0)$$);
SELECT sqlstate_of($$SELECT '{}/3'::esparsevec(1000000001)$$);
CREATE TABLE es3 (id int PRIMARY KEY, v esparsevec(5));
INSERT INTO es3 VALUES (1, '{1:1,5:2}/5'), (2, '{2:-3}/5'), (3, '{}/5'),
                       (4, '{1:0.5,2:0.25,3:-4,4:8,5:1e-3}/5');
SELECT format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = 'es3'::regclass AND attname = 'v';
SELECT sqlstate_of($$INSERT INTO es3 VALUES (9, '{1:1}/4')$$);
SELECT sqlstate_of($$INSERT INTO es3 SELECT 9, '{1:1}/4'::esparsevec$$);
SELECT sqlstate_of($$UPDATE es3 SET v = '{1:1}/6'::esparsevec WHERE id = 1$$);

-- Binary form, as pgvector's sparsevec_send: int32 dims, nnz, 0, 0-based indices, values.
SELECT esparsevec_send('{2:1.5,7:-4}/9');
-- COPY (FORMAT binary) round trip through send and recv.
\getenv abs_builddir PG_ABS_BUILDDIR
\set esbin_file :abs_builddir '/results/17_esparsevec_esbin.bin'
COPY es3 TO :'esbin_file' (FORMAT binary);
CREATE TABLE es3b (id int PRIMARY KEY, v esparsevec(5));
COPY es3b FROM :'esbin_file' (FORMAT binary);
SELECT a.id, b.v, esparsevec_send(a.v) = esparsevec_send(b.v) AS same_binary
FROM es3 a JOIN es3b b USING (id) ORDER BY id;

-- Casts, as pgvector's: evector and ehalfvec -> esparsevec keep the non-zero elements;
-- esparsevec -> evector and ehalfvec write the dense form; arrays -> esparsevec (assignment).
SELECT '[0,1.5,0,-2]'::evector::esparsevec AS from_evector,
       '[0,1.5,0,-2]'::ehalfvec::esparsevec AS from_ehalfvec,
       '{2:1.5,4:-2}/4'::esparsevec::evector AS to_evector,
       '{2:1.5,4:-2}/4'::esparsevec::ehalfvec AS to_ehalfvec;
SELECT '[0,1.5,0]'::evector::esparsevec(3) AS typmod_ok,
       sqlstate_of($$SELECT '[0,1.5,0]'::evector::esparsevec(4)$$) AS typmod_bad,
       sqlstate_of($$SELECT '{2:1.5}/3'::esparsevec::evector(4)$$) AS dense_typmod_bad;
SELECT sqlstate_of($$SELECT '{1:1}/16001'::esparsevec::evector$$);
SELECT sqlstate_of($$SELECT '{1:1}/16001'::esparsevec::ehalfvec$$);
SELECT sqlstate_of($$SELECT '{1:65520}/1'::esparsevec::ehalfvec$$);
SELECT '{1,0,2,0,3,0}'::int[]::esparsevec AS from_int, '{1.5,0,0}'::numeric[]::esparsevec AS from_numeric,
       '{0,0,0.25}'::real[]::esparsevec(3) AS from_real, '{-4,0}'::float8[]::esparsevec AS from_float8;
SELECT sqlstate_of($$SELECT '{1,NULL}'::real[]::esparsevec$$);
SELECT sqlstate_of($$SELECT '{1,NaN}'::real[]::esparsevec$$);
SELECT sqlstate_of($$SELECT '{1e300}'::float8[]::esparsevec$$);
SELECT sqlstate_of($$SELECT '{}'::real[]::esparsevec$$);
SELECT sqlstate_of($$SELECT '{{1}}'::real[]::esparsevec$$);
SELECT sqlstate_of($$SELECT '{1,0}'::real[]::esparsevec(3)$$);
SELECT sqlstate_of($$SELECT array_agg(n)::esparsevec FROM generate_series(1, 16001) n$$);
SELECT vector_dims(array_agg(n)::esparsevec::evector) FROM generate_series(1, 16000) n;
INSERT INTO es3 VALUES (5, '{0,0,7,0,0}'::real[]), (6, '[0,0,0,0,-1]'::evector(5));
SELECT id, v FROM es3 WHERE id >= 5 ORDER BY id;

-- Distances equal evector's on the dense form (both in double precision), over every pair of
-- rows, the zero vector included (its cosine distance is NaN in both).
SELECT count(*) AS pairs,
       bool_and(a.v <-> b.v = a.v::evector <-> b.v::evector) AS l2,
       bool_and(a.v <#> b.v = a.v::evector <#> b.v::evector) AS neg_ip,
       bool_and(a.v <=> b.v IS NOT DISTINCT FROM a.v::evector <=> b.v::evector) AS cosine,
       bool_and(a.v <+> b.v = a.v::evector <+> b.v::evector) AS l1,
       bool_and(inner_product(a.v, b.v) = -(a.v <#> b.v)) AS ip,
       bool_and(l2_norm(a.v) = vector_norm(a.v::evector)) AS norm
FROM es3 a, es3 b;
SELECT l2_distance('{1:3}/2'::esparsevec, '{2:4}/2'), inner_product('{1:1,3:3,5:5}/5'::esparsevec, '{2:4,3:6,4:8}/5'),
       cosine_distance('{1:1,2:1}/2'::esparsevec, '{1:-1,2:-1}/2'), l1_distance('{1:1,3:3,5:5,7:7}/8'::esparsevec, '{2:2,4:4,6:6,8:8}/8');
SELECT '{}/2'::esparsevec <-> '{1:3,2:4}/2', '{1:1,2:2}/2'::esparsevec <#> '{1:3,2:4}/2',
       '{1:1,2:2}/2'::esparsevec <=> '{1:2,2:4}/2', '{}/2'::esparsevec <+> '{1:3,2:4}/2',
       cosine_distance('{}/1'::esparsevec, '{}/1');
SELECT '{1:1}/2'::esparsevec <-> '{1:1}/3'::esparsevec;

-- l2_norm, and l2_normalize: sealed under the session's vault, equal to evector's on the dense
-- form; elements that underflow to zero are dropped (as pgvector).
SELECT l2_norm('{1:3,2:4}/2'::esparsevec), l2_norm('{}/2'::esparsevec), l2_norm('{1:3e37,2:4e37}/2'::esparsevec)::real;
SELECT l2_normalize('{1:3,2:4}/2'::esparsevec), l2_normalize('{}/2'::esparsevec),
       l2_normalize('{1:3e38,2:1e-37}/2'::esparsevec);
SELECT bool_and(l2_normalize(v)::evector::text = l2_normalize(v::evector)::text) AS normalize_as_dense,
       bool_and(vault.vault_of(l2_normalize(v)) = vault.vault_of(v)) AS sealed_in_session_vault
FROM es3;

-- The ciphertext length shows the number of stored elements (8 bytes each after 60), not the
-- dimensions.
SELECT pg_column_size('{1:1}/5'::esparsevec) AS one_of_5, pg_column_size('{1:1}/100000'::esparsevec) AS one_of_100000,
       pg_column_size('{1:1,2:1}/5'::esparsevec) AS two_of_5;

-- The stored heap tuple holds the envelope (kind 5), not the plaintext payload. Positive
-- control: the same probe finds the payload's bytes in a plain bytea column of the same row.
-- The values' float4 bits 0x3f9e0419 and 0xc2f6e979 make an 8-byte pattern unlikely by chance.
CREATE EXTENSION pageinspect;
CREATE TABLE es_heap (id int, v esparsevec, plain bytea);
INSERT INTO es_heap VALUES (1, '{2:1.2345,7:-123.456}/9', '\x0900000002000000010000000600000019049e3f79e9f6c2');
SELECT get_byte(a.t_attrs[2], 1) AS format, get_byte(a.t_attrs[2], 2) AS kind,
       position('\x19049e3f79e9f6c2'::bytea IN a.t_attrs[2]) = 0 AS no_values_in_envelope,
       position('\x0100000006000000'::bytea IN a.t_attrs[2]) = 0 AS no_indices_in_envelope,
       position('\x19049e3f79e9f6c2'::bytea IN a.t_attrs[3]) > 0 AS control_finds_values
FROM heap_page_item_attrs(get_raw_page('es_heap', 0), 'es_heap'::regclass) a;
SELECT v FROM es_heap;
DROP TABLE es_heap;
DROP EXTENSION pageinspect;

-- Ciphertext I/O moves the envelope as it is: a role with no right on the vault restores
-- ciphertext text into an esparsevec(5) column (the typmod is not checked: that would decrypt),
-- and an evector envelope is refused as an esparsevec (the kind is authenticated).
-- (COPY, as a restore does: the input function gets the column's typmod. A cast of text in
-- INSERT ... SELECT would add the typmod coercion, which decrypts.)
\set esdump_file :abs_builddir '/results/17_esparsevec_dump.txt'
CREATE TABLE es_restore (id int, v esparsevec(5));
CREATE ROLE es_restorer;
GRANT INSERT ON es_restore TO es_restorer;
GRANT SELECT ON es3 TO es_restorer;
GRANT pg_read_server_files TO es_restorer;
SET vector_vault.ciphertext_io = on;
COPY (SELECT id, v FROM es3 WHERE id <= 2) TO :'esdump_file';
CREATE TEMP TABLE es_dump (id int, t text);
COPY es_dump FROM :'esdump_file';
SELECT count(*) AS rows, bool_and(t LIKE 'vve1:%') AS dumped_as_ciphertext FROM es_dump;
SET ROLE es_restorer;
SELECT sqlstate_of($$SELECT l2_norm(v) FROM es3$$) AS restorer_cannot_decrypt;
COPY es_restore FROM :'esdump_file';
RESET ROLE;
SELECT sqlstate_of(format('SELECT %L::esparsevec', '[1,2]'::evector::text));
RESET vector_vault.ciphertext_io;
SELECT r.id, r.v, r.v::text = e.v::text AS same FROM es_restore r JOIN es3 e USING (id) ORDER BY id;
DROP TABLE es_restore;
REVOKE SELECT ON es3 FROM es_restorer;
DROP ROLE es_restorer;

-- Secret buffers: the success paths release (zero) every plaintext buffer they allocate
-- themselves; on the error paths (a typmod mismatch after parsing, a bad array element, an
-- ehalfvec overflow) what is left is zeroed when the error resets its memory context; nothing
-- is left unzeroed.
CREATE TEMP TABLE es_wipes AS SELECT * FROM vault._secret_wipes();
SELECT count(l2_normalize(v)) + count(v::ehalfvec) + count(v::evector::esparsevec) AS ran,
       sum(length(esparsevec_send(v))) > 0 AS sent, count(v::text) AS printed FROM es3;
SELECT count('{1,0,2}'::real[]::esparsevec) + count(l2_distance(v, v)) AS ran FROM es3;
SELECT s.allocated - b.allocated > 0 AS allocated,
       s.freed - b.freed = s.allocated - b.allocated AS all_released_by_code,
       s.wiped_on_reset - b.wiped_on_reset AS wiped_on_reset
FROM vault._secret_wipes() s, es_wipes b;
SELECT sqlstate_of($$SELECT '{1:1}/3'::esparsevec(2)$$) LIKE '22000%' AS typmod_error,
       sqlstate_of($$SELECT '{1,2,1e300}'::float8[]::esparsevec$$) LIKE '22000%' AS element_error,
       sqlstate_of($$SELECT '{1:70000}/1'::esparsevec::ehalfvec$$) LIKE '22003%' AS overflow_error;
SELECT s.wiped_on_reset - b.wiped_on_reset > 0 AS wiped_on_error,
       s.allocated - s.freed - s.wiped_on_reset AS never_zeroed
FROM vault._secret_wipes() s, es_wipes b;

-- Key rotation knows the type: vault.reseal, key_version_of and vault_of work, _holds_encrypted
-- (what rotation, retirement, vault.protect and the DDL guard ask) says yes, and after
-- rotate_key, retire_key_version refuses while an esparsevec still uses the old version and
-- succeeds after reencrypt, the values reading back unchanged.
SELECT vault.key_version_of(v) >= 1 AS versioned, vault.vault_of(v) IS NOT NULL AS has_vault,
       vault.reseal(v)::text = v::text AS resealed_same
FROM es3 WHERE id = 1;
SELECT vault._holds_encrypted('esparsevec'), vault._holds_encrypted('esparsevec[]');
SELECT vault.create_vault('es_rot');
SET vector_vault.vault = 'es_rot';
CREATE TABLE es_rot (id int, v esparsevec(3));
INSERT INTO es_rot VALUES (1, '{1:0.5}/3'), (2, '{2:2049,3:-3}/3');
SELECT vault.rotate_key('es_rot');
SELECT sqlstate_of($$SELECT vault.retire_key_version('es_rot', 1)$$) LIKE '55000%' AS refused;
SET client_min_messages = warning;
CALL vault.reencrypt('es_rot');
RESET client_min_messages;
SELECT sqlstate_of($$SELECT vault.retire_key_version('es_rot', 1)$$);
SELECT id, v, vault.key_version_of(v) FROM es_rot ORDER BY id;
-- vault.protect accepts a table whose only encrypted column is an esparsevec.
SET client_min_messages = warning;
SELECT vault.protect('es_rot');
RESET client_min_messages;
SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'es_rot'::regclass;
DROP TABLE es_rot;
SELECT vault.drop_vault('es_rot');
SET vector_vault.vault = 'regress';

-- The DDL guard: a derived plaintext of an esparsevec column is refused in a stored generated
-- column and in an index expression, even through a function declared IMMUTABLE; the vault id
-- (metadata in the clear) may be indexed.
CREATE FUNCTION es_norm(esparsevec) RETURNS float8 LANGUAGE sql IMMUTABLE AS 'SELECT l2_norm($1)';
SELECT sqlstate_of($$ALTER TABLE es3 ADD COLUMN n float8 GENERATED ALWAYS AS (es_norm(v)) STORED$$);
SELECT sqlstate_of($$CREATE INDEX ON es3 ((es_norm(v)))$$);
SELECT sqlstate_of($$CREATE INDEX es3_vault ON es3 ((vault.vault_of(v)))$$);
DROP INDEX es3_vault;
DROP FUNCTION es_norm(esparsevec);

-- No index on esparsevec: vault_hnsw has no operator class for it (its graph and kernels are
-- dense), and no other access method has one either.
CREATE INDEX ON es3 USING vault_hnsw (v);
SELECT sqlstate_of($$CREATE INDEX ON es3 USING vault_hnsw (v evector_l2_ops)$$);
SELECT sqlstate_of($$CREATE INDEX ON es3 (v)$$);
SELECT sqlstate_of($$CREATE INDEX ON es3 USING hash (v)$$);
-- A search is an exact scan.
SELECT id, round((v <-> '{1:1,5:2}/5')::numeric, 4) AS d FROM es3 ORDER BY v <-> '{1:1,5:2}/5', id LIMIT 3;

-- Comparisons in pgvector's sparsevec order (the dense order over the shorter dimension count,
-- absent elements being 0, then fewer dimensions first); ORDER BY, DISTINCT and GROUP BY use the
-- btree operator class, while a btree index stays refused (above).
SELECT sparsevec_cmp('{1:1}/3', '{2:1}/3') AS gt, sparsevec_cmp('{}/3', '{2:-1}/3') AS absent_gt_negative,
       '{1:1}/2'::esparsevec < '{1:1}/3'::esparsevec AS fewer_dims_first,
       '{1:1,3:2}/3'::esparsevec = '{3:2,1:1}/3'::esparsevec AS equal_values,
       '{1:1}/3'::esparsevec <> '{1:1}/4'::esparsevec AS ne;
CREATE TABLE es4 (id int, v esparsevec);
INSERT INTO es4 VALUES (1, '{2:1}/3'), (2, '{1:1}/3'), (3, '{2:1}/3'), (4, '{}/3'), (5, NULL);
SELECT id, v::text AS val FROM es4 ORDER BY v, id;
SELECT v::text AS val, count(*) FROM es4 GROUP BY v ORDER BY v NULLS FIRST;
SELECT count(DISTINCT v) AS distinct_values FROM es4;
DROP TABLE es4;

DROP TABLE es3, es3b;
DROP FUNCTION es_error(text);
