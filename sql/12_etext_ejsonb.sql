-- 12_etext_ejsonb: encrypted text and jsonb: input and output, casts, the ->, ->> and @>
-- operators, NULL handling, invalid JSON, and large values.
SET vector_vault.vault = 'regress';

-- etext: input and output are plain text; any content survives, including quotes, backslashes,
-- newlines, multibyte characters and the empty string.
CREATE TABLE docs (id int PRIMARY KEY, body etext, meta ejsonb);
INSERT INTO docs VALUES
    (1, 'hello, vault', '{"lang": "en", "tags": ["a", "b"], "n": 1}'),
    (2, E'line one\nline two \\ "quoted" ''single''', '{"lang": "de", "nested": {"k": [1, 2, {"x": null}]}}'),
    (3, 'grüße, 日本語, emoji 🙂', '[1, "two", 3.5, true, null]'),
    (4, '', '{}'),
    (5, NULL, NULL);
SELECT id, body, meta FROM docs WHERE id <> 3 ORDER BY id;
-- (Row 3 is compared, not printed, so the output does not depend on the client's encoding.)
SELECT body::text = 'grüße, 日本語, emoji 🙂' AS same_text, octet_length(body::text) AS bytes,
       meta FROM docs WHERE id = 3;
SELECT id, octet_length(body::text) AS bytes, body IS NULL AS body_null,
       meta IS NULL AS meta_null FROM docs ORDER BY id;

-- Casts: text <-> etext and jsonb <-> ejsonb; text and jsonb assign into the encrypted columns.
SELECT 'abc'::text::etext::text AS etext_round_trip,
       '{"b": 2, "a": 1}'::jsonb::ejsonb::jsonb AS ejsonb_round_trip;
INSERT INTO docs SELECT 6, 'from ' || 'text', jsonb_build_object('lang', 'fr', 'n', 6);
SELECT body, meta FROM docs WHERE id = 6;
SELECT body::text || '!' AS concatenated, (meta::jsonb)->>'lang' AS via_jsonb FROM docs WHERE id = 6;
-- ejsonb output is jsonb's normalised form (keys sorted by length then bytes, duplicates
-- resolved, whitespace canonical).
SELECT '{"b": 1, "a": 2, "a": 3, "long_key": {"z":   1}}'::ejsonb;
-- etext keeps trailing spaces and case exactly as typed.
SELECT '  MiXeD  '::etext::text = '  MiXeD  ' AS exact;

-- Operators: -> (field as jsonb), ->> (field as text), @> (containment).
SELECT id, meta -> 'lang' AS arrow, meta ->> 'lang' AS arrow_text, meta -> 'missing' AS absent
FROM docs WHERE id IN (1, 2, 4) ORDER BY id;
SELECT meta -> 'nested' -> 'k' AS nested_k FROM docs WHERE id = 2;
SELECT id FROM docs WHERE meta ->> 'lang' = 'de';
SELECT id, meta @> '{"lang": "en"}' AS is_en, meta @> '{"tags": ["b"]}' AS tag_b,
       meta @> '{}' AS contains_empty
FROM docs WHERE id <= 4 ORDER BY id;
-- Field access on a JSON array gives NULL, as for jsonb.
SELECT meta -> 'lang' IS NULL AS arrow_on_array, meta ->> 'lang' IS NULL AS arrow_text_on_array
FROM docs WHERE id = 3;
-- Operators on NULL values are NULL (strict).
SELECT meta -> 'lang' IS NULL AS arrow, meta ->> 'lang' IS NULL AS arrow_text,
       meta @> '{}' IS NULL AS contains FROM docs WHERE id = 5;
-- NULL in, NULL out for the casts.
SELECT NULL::text::etext IS NULL AS t, NULL::etext::text IS NULL AS t2,
       NULL::jsonb::ejsonb IS NULL AS j, NULL::ejsonb::jsonb IS NULL AS j2;

-- Invalid JSON is refused as jsonb refuses it (22P02), and nothing is stored.
SELECT '{"a": }'::ejsonb;
SELECT sqlstate_of($$INSERT INTO docs VALUES (7, 'x', '{not json}')$$);
SELECT sqlstate_of($$SELECT '[1, 2'::ejsonb$$);
SELECT sqlstate_of($$SELECT ''::ejsonb$$);
SELECT count(*) FROM docs WHERE id = 7;
-- JSON scalars are valid documents.
SELECT '"just a string"'::ejsonb, '42'::ejsonb, 'null'::ejsonb;

-- Large values: 100000 characters of text, and a jsonb document of about 1 MB, are stored
-- (out of line, uncompressed ciphertext) and read back intact.
INSERT INTO docs VALUES (10, repeat('x', 100000), NULL),
    (11, repeat('abc', 50000) || 'END',
     (SELECT jsonb_object_agg('k' || i, repeat('v', 100)) FROM generate_series(1, 10000) i));
SELECT id, length(body::text), md5(body::text) = md5(CASE id WHEN 10 THEN repeat('x', 100000)
       ELSE repeat('abc', 50000) || 'END' END) AS same_md5, right(body::text, 3) AS tail
FROM docs WHERE id IN (10, 11) ORDER BY id;
SELECT (SELECT count(*) FROM jsonb_object_keys(meta::jsonb)) AS keys,
       meta ->> 'k9999' = repeat('v', 100) AS field_ok,
       meta @> '{"k1": "vvvvvvvvvv"}' AS wrong_value
FROM docs WHERE id = 11;
-- Encrypted values do not compress, so the stored size is at least the plaintext size.
SELECT pg_column_size(body) >= 100000 AS not_compressed FROM docs WHERE id = 10;
-- The large values can be updated and deleted like any other.
UPDATE docs SET body = body::text || '+' WHERE id = 10;
SELECT length(body::text), right(body::text, 2) FROM docs WHERE id = 10;
DELETE FROM docs WHERE id >= 10;

-- Binary send: etext sends its text, ejsonb sends jsonb's binary form (version 1 + text).
SELECT etext_send('héllo'), ejsonb_send('{"a": 1}');
-- COPY in text format round-trips through output and input (re-encrypting).
\getenv abs_builddir PG_ABS_BUILDDIR
\set docs_file :abs_builddir '/results/12_etext_ejsonb_docs.txt'
COPY docs TO :'docs_file';
CREATE TABLE docs2 (LIKE docs);
COPY docs2 FROM :'docs_file';
SELECT a.id, a.body::text IS NOT DISTINCT FROM b.body::text AS body_same,
       a.meta::jsonb IS NOT DISTINCT FROM b.meta::jsonb AS meta_same
FROM docs a JOIN docs2 b USING (id) ORDER BY id;
-- And in binary format, through send and recv.
\set docs_bin :abs_builddir '/results/12_etext_ejsonb_docs.bin'
COPY docs TO :'docs_bin' (FORMAT binary);
TRUNCATE docs2;
COPY docs2 FROM :'docs_bin' (FORMAT binary);
SELECT a.id, a.body::text IS NOT DISTINCT FROM b.body::text AS body_same,
       a.meta::jsonb IS NOT DISTINCT FROM b.meta::jsonb AS meta_same
FROM docs a JOIN docs2 b USING (id) ORDER BY id;

-- Ciphertext text (as a ciphertext_io dump holds it) is refused as plaintext input (22P02), so
-- a dump restored without ciphertext_io cannot seal the ciphertext as if it were the text.
SET vector_vault.ciphertext_io = on;
SELECT body AS ct FROM docs WHERE body IS NOT NULL ORDER BY id LIMIT 1 \gset
RESET vector_vault.ciphertext_io;
SELECT left(:'ct', 5) AS prefix;
\set VERBOSITY terse
INSERT INTO docs2 (id, body) VALUES (100, :'ct');
\set VERBOSITY default
-- Text that only starts like it is ordinary text; a cast from text takes anything.
SELECT 'vve1:hello'::etext::text AS short, (:'ct'::text::etext)::text = :'ct' AS via_cast;

DROP TABLE docs, docs2;
