-- 10_evector: the evector type: text forms, typmods, input errors, binary send/recv, casts to
-- and from real[], vector_dims and vector_norm.
SET vector_vault.vault = 'regress';

-- Text input accepts pgvector's form with whitespace around elements and brackets, signs,
-- exponents and bare leading or trailing decimal points.
SELECT '[1,2,3]'::evector;
SELECT E'  [ 1 ,\t2.5 ,\n-3 ]  '::evector;
SELECT '[1e3, -2.5E-2, +4e+1, .5, 5.]'::evector;

-- Output is the shortest text that reads back to the same float4: 1/3 prints 8 digits, 0.1
-- prints as 0.1, 16777217 is not a float4 and prints as its neighbour, -0 keeps its sign,
-- the smallest denormal and the largest float4 survive.
SELECT '[0.1, 0.333333333333, 16777217, -0, 1e-45, 3.4028235e38, -1.17549435e-38]'::evector;
-- Printing is a fixed point: text -> evector -> text -> evector -> text changes nothing.
SELECT v::text = v::text::evector::text AS fixed_point
FROM (SELECT '[0.1, 1e-7, 123456.79, -42]'::evector AS v) s;

-- Typmods: evector(n) checks the dimension count on input, on assignment and in casts.
CREATE TABLE ev3 (id int PRIMARY KEY, v evector(3));
INSERT INTO ev3 VALUES (1, '[1,2,3]');
SELECT format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = 'ev3'::regclass AND attname = 'v';
INSERT INTO ev3 VALUES (2, '[1,2]');
SELECT sqlstate_of($$INSERT INTO ev3 VALUES (2, '[1,2,3,4]')$$);
SELECT '[4,5,6]'::evector(3);
SELECT sqlstate_of($$SELECT '[1,2]'::evector(3)$$);
-- A value typed without a typmod is checked (header only, no decryption) when assigned.
SELECT sqlstate_of($$INSERT INTO ev3 SELECT 3, '[1,2]'::evector$$);
SELECT sqlstate_of($$UPDATE ev3 SET v = '[9,9]'::evector WHERE id = 1$$);
SELECT id, v FROM ev3 ORDER BY id;
-- Typmods outside 1..16000, or more than one, are refused (22023).
SELECT sqlstate_of('CREATE TABLE bad_typmod (v evector(0))');
SELECT sqlstate_of('CREATE TABLE bad_typmod (v evector(16001))');
SELECT sqlstate_of('CREATE TABLE bad_typmod (v evector(3, 4))');
CREATE TABLE bad_typmod (v evector(-1));
CREATE TABLE ev_max (v evector(16000));
SELECT format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = 'ev_max'::regclass AND attname = 'v';

-- Input errors, with message, detail and hint (22P02 syntax, 22003 range, 54000 too many).
SELECT '[]'::evector;
SELECT '[1,2'::evector;
SELECT '[NaN]'::evector;
SELECT '[1e39]'::evector;
SELECT ('[' || array_to_string(array_fill(1, ARRAY[16001]), ',') || ']')::evector;
-- The same and more, as SQLSTATE and detail (the message is always the one above).
CREATE FUNCTION input_error(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    detail text;
BEGIN
    PERFORM q::evector;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RETURN SQLSTATE || ': ' || detail;
END
$$;
SELECT q, input_error(q)
FROM unnest(ARRAY[
    '[]', '[ ]', '', '1,2,3', '[1,2,3', '[1,,2]', '[,1]', '[1,]', '[1 2]', '[1,2]x', '[a]',
    '[1;2]', '[[1]]', '[NaN]', '[1,nan]', '[Infinity]', '[-inf]', '[1e39]', '[-3.5e38]',
    '[1e-50]', '[1e400]'
]) AS q;
-- The element text never appears in an error: vectors are plaintext and errors reach the log.
SELECT input_error('[0.123456789, 987654321e99]');
-- Exactly 16000 dimensions are accepted, 16001 are not.
SELECT vector_dims(('[' || array_to_string(array_fill(0.5, ARRAY[16000]), ',') || ']')::evector);
INSERT INTO ev_max SELECT ('[' || array_to_string(array_fill(0.5, ARRAY[16000]), ',') || ']')::evector;
SELECT vector_dims(v), round(vector_norm(v)::numeric, 3) FROM ev_max;
SELECT input_error('[' || array_to_string(array_fill(1, ARRAY[16001]), ',') || ']');
DROP FUNCTION input_error(text);

-- Binary form (send): pgvector's int16 dims, int16 0, big-endian float4s.
SELECT evector_send('[1,2,3]');
SELECT evector_send('[-0.5, 1e-45]');

-- Binary round trip through COPY (FORMAT binary), which uses send and recv; run as superuser.
\getenv abs_builddir PG_ABS_BUILDDIR
\set evbin_file :abs_builddir '/results/10_evector_evbin.bin'
CREATE TABLE evbin (id int, v evector(3));
INSERT INTO evbin VALUES (1, '[1,2,3]'), (2, '[-0.5, 1e-45, 3.4028235e38]'), (3, NULL);
COPY evbin TO :'evbin_file' (FORMAT binary);
CREATE TABLE evbin2 (id int, v evector(3));
COPY evbin2 FROM :'evbin_file' (FORMAT binary);
SELECT a.id, b.v, a.v::text IS NOT DISTINCT FROM b.v::text AS same_vector,
       evector_send(a.v) IS NOT DISTINCT FROM evector_send(b.v) AS same_binary
FROM evbin a JOIN evbin2 b USING (id) ORDER BY id;
-- recv rejects malformed binary input (22P03). recv_evector writes one bytea field to a binary
-- COPY file and reads it back into an evector column, so evector_recv sees exactly those bytes.
CREATE TEMP TABLE recv_any (v evector);
CREATE TEMP TABLE recv_3 (v evector(3));
CREATE FUNCTION recv_evector(field bytea, path text, target regclass) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    out text;
    detail text;
BEGIN
    EXECUTE format('COPY (SELECT %L::bytea) TO %L (FORMAT binary)', field, path);
    EXECUTE format('TRUNCATE %s', target);
    EXECUTE format('COPY %s FROM %L (FORMAT binary)', target, path);
    EXECUTE format('SELECT v::text FROM %s', target) INTO out;
    RETURN 'ok: ' || out;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RETURN SQLSTATE || ': ' || SQLERRM || coalesce(' (' || nullif(detail, '') || ')', '');
END
$$;
SELECT label, recv_evector(field, :'evbin_file', 'recv_any')
FROM (VALUES
    ('valid 2 dims',       '\x000200003f80000040000000'::bytea),
    ('truncated',          '\x000200003f800000'),
    ('too long',           '\x000100003f80000040000000'),
    ('header only',        '\x0001'),
    ('unused not zero',    '\x000100013f800000'),
    ('zero dims',          '\x00000000'),
    ('negative dims',      '\xffff0000'),
    ('16001 dims',         '\x3e810000'),
    ('NaN element',        '\x000100007fc00000'),
    ('infinite element',   '\x00010000ff800000')
) AS t(label, field);
-- recv also checks the column typmod.
SELECT recv_evector('\x000200003f80000040000000', :'evbin_file', 'recv_3');
SELECT recv_evector('\x000300003f8000004000000040400000', :'evbin_file', 'recv_3');
DROP FUNCTION recv_evector(bytea, text, regclass);

-- Casts to and from real[].
SELECT '{1,2,3}'::real[]::evector;
SELECT ARRAY[1.5, -2.5]::real[]::evector(2);
SELECT '[1,2,3]'::evector::real[];
SELECT '[0.1, -0]'::evector::real[];
SELECT ('[0:2]={7,8,9}'::real[])::evector;
INSERT INTO ev3 VALUES (4, ARRAY[4, 5, 6]::real[]);
SELECT v FROM ev3 WHERE id = 4;
SELECT q, sqlstate_of(q) FROM unnest(ARRAY[
    $$SELECT '{1,NULL,3}'::real[]::evector$$,
    $$SELECT '{{1,2},{3,4}}'::real[]::evector$$,
    $$SELECT '{}'::real[]::evector$$,
    $$SELECT '{1,2}'::real[]::evector(3)$$,
    $$SELECT '{NaN}'::real[]::evector$$,
    $$SELECT '{1,-Infinity}'::real[]::evector$$,
    $$SELECT array_fill(1::real, ARRAY[16001])::evector$$,
    $$INSERT INTO ev3 VALUES (5, ARRAY[1, 2]::real[])$$
]) AS q;
-- NULL in, NULL out.
SELECT NULL::real[]::evector IS NULL AS null_in, NULL::evector::real[] IS NULL AS null_out;

-- vector_dims (from the authenticated header) and vector_norm (decrypts).
SELECT vector_dims('[1,2,3]'::evector), vector_norm('[3,4]'::evector),
       vector_norm('[0,0]'::evector), round(vector_norm('[1,1,1,1]'::evector)::numeric, 6);
SELECT id, vector_dims(v), round(vector_norm(v)::numeric, 4) FROM ev3 ORDER BY id;

DROP TABLE ev3, ev_max, evbin, evbin2;
