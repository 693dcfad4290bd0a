-- 22_tamper: a modified envelope is an error, never wrong data or a crash. A superuser can
-- reach the raw envelope bytes through binary-coercible casts to and from bytea; flipping any
-- byte (header, nonce, ciphertext, tag), truncating, extending, changing the kind or the vault
-- is detected: header bytes by strict header validation, everything else by the GCM tag, whose
-- associated data is the header (22V01). Raw bytes are never printed (nonces are random).
SET vector_vault.vault = 'regress';

CREATE CAST (evector AS bytea) WITHOUT FUNCTION;
CREATE CAST (bytea AS evector) WITHOUT FUNCTION;
CREATE CAST (etext AS bytea) WITHOUT FUNCTION;
CREATE CAST (bytea AS etext) WITHOUT FUNCTION;
CREATE CAST (ejsonb AS bytea) WITHOUT FUNCTION;
CREATE CAST (bytea AS ejsonb) WITHOUT FUNCTION;

CREATE TABLE sealed (id int, v evector(3), t etext, j ejsonb);
INSERT INTO sealed VALUES (1, '[1,2,3]', 'secret text', '{"a": 1}');
-- 'twelve bytes' has the payload length of a 3-dimensional vector.
INSERT INTO sealed VALUES (2, '[4,5,6]', 'twelve bytes', '[]');
CREATE TEMP TABLE raw AS SELECT id, v::bytea AS v, t::bytea AS t, j::bytea AS j FROM sealed;

-- The envelope layout (envelope.h): 20-byte header (format 1, kind 1/2/3, flags 0, reserved 0,
-- key version, vault id, payload length), 12-byte nonce, ciphertext, 16-byte tag.
SELECT id, length(v) AS v_len, get_byte(v, 0) AS format, get_byte(v, 1) AS kind,
       get_byte(v, 2) AS flags, get_byte(v, 3) AS reserved, get_byte(v, 4) AS key_version,
       get_byte(v, 16) AS payload_len, get_byte(t, 1) AS t_kind, length(t) AS t_len,
       get_byte(j, 1) AS j_kind
FROM raw ORDER BY id;
-- The header's vault id is the vault's; the plaintext does not appear in the envelope.
SELECT (SELECT vault_id FROM vault._vaults WHERE name = 'regress' AND state = 'active') =
       ('x' || encode(substr(t, 16, 1) || substr(t, 15, 1) || substr(t, 14, 1) ||
                      substr(t, 13, 1) || substr(t, 12, 1) || substr(t, 11, 1) ||
                      substr(t, 10, 1) || substr(t, 9, 1), 'hex'))::bit(64)::bigint AS vault_id_ok,
       position('secret'::bytea IN t) = 0 AS no_plaintext
FROM raw WHERE id = 1;
-- Every seal draws a fresh nonce: the same plaintext twice gives the same header but a
-- different nonce, ciphertext and tag.
SELECT substr(a, 1, 20) = substr(b, 1, 20) AS same_header,
       substr(a, 21, 12) <> substr(b, 21, 12) AS different_nonce,
       substr(a, 33) <> substr(b, 33) AS different_ciphertext_and_tag
FROM (SELECT '[1,2,3]'::evector::bytea AS a, '[1,2,3]'::evector::bytea AS b) s;
-- Unmodified bytes cast back decrypt normally.
SELECT id, v::evector, t::etext, j::ejsonb FROM raw ORDER BY id;

-- flip(b, pos): b with the byte at pos (0-based) XOR 0x02.
CREATE FUNCTION flip(b bytea, pos int) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT set_byte(b, pos, get_byte(b, pos) # 2)
$$;
-- try_open(q): sqlstate_of with vault ids (random) masked.
CREATE FUNCTION try_open(q text) RETURNS text LANGUAGE sql AS $$
    SELECT regexp_replace(sqlstate_of(q), '[0-9a-f]{16}', '<vault id>', 'g')
$$;

-- One flipped byte in each part of an evector envelope (60 bytes: 12 bytes of ciphertext).
SELECT pos, part,
       try_open(format('SELECT %L::bytea::evector::text', flip(v, pos))) AS result
FROM raw, (VALUES (0, 'format'), (1, 'kind'), (2, 'flags'), (3, 'reserved'),
                  (4, 'key version'), (7, 'key version'), (8, 'vault id'), (15, 'vault id'),
                  (16, 'payload length'), (19, 'payload length'), (20, 'nonce'), (31, 'nonce'),
                  (32, 'ciphertext'), (43, 'ciphertext'), (44, 'tag'), (59, 'tag')) AS p(pos, part)
WHERE id = 1 ORDER BY pos;
-- Every single byte, every way a value is opened: no position goes undetected.
SELECT how, count(*) AS positions, count(*) FILTER (WHERE r = 'ok') AS undetected
FROM raw, generate_series(0, 59) AS pos,
     LATERAL (VALUES
        ('output', try_open(format('SELECT %L::bytea::evector::text', flip(v, pos)))),
        ('distance', try_open(format('SELECT %L::bytea::evector <-> ''[1,2,3]''', flip(v, pos)))),
        ('real[]', try_open(format('SELECT %L::bytea::evector::real[]', flip(v, pos))))
     ) AS o(how, r)
WHERE id = 1 GROUP BY how ORDER BY how;
SELECT 'etext' AS type, count(*) AS positions,
       count(*) FILTER (WHERE try_open(format('SELECT %L::bytea::etext::text', flip(t, pos))) = 'ok')
           AS undetected
FROM raw, generate_series(0, length(t) - 1) AS pos WHERE id = 1
UNION ALL
SELECT 'ejsonb', count(*),
       count(*) FILTER (WHERE try_open(format('SELECT %L::bytea::ejsonb ->> ''a''', flip(j, pos))) = 'ok')
FROM raw, generate_series(0, length(j) - 1) AS pos WHERE id = 1;
-- The failure for a modified etext body byte, with its hint.
SELECT flip(t, 40)::etext FROM raw WHERE id = 1;

-- Truncated or extended envelopes.
SELECT label, try_open(format('SELECT %L::bytea::evector::text', b)) AS result
FROM raw, LATERAL (VALUES
    ('one byte short', substr(v, 1, length(v) - 1)),
    ('header only', substr(v, 1, 20)),
    ('ten bytes', substr(v, 1, 10)),
    ('empty', ''::bytea),
    ('one byte more', v || '\x00'::bytea),
    ('tag cut, length fixed', set_byte(substr(v, 1, length(v) - 4), 16, 8))
) AS c(label, b)
WHERE id = 1;

-- An etext envelope is not an evector: the kind byte is checked...
SELECT t::evector FROM raw WHERE id = 1;
SELECT try_open(format('SELECT %L::bytea::ejsonb::jsonb', t)) FROM raw WHERE id = 1;
SELECT try_open(format('SELECT vector_dims(%L::bytea::evector)', j)) FROM raw WHERE id = 1;
-- ...and rewriting the kind byte is caught by the tag: the header is associated data.
SELECT try_open(format('SELECT %L::bytea::evector::text', set_byte(t, 1, 1))) AS etext_as_evector,
       try_open(format('SELECT %L::bytea::etext::text', set_byte(v, 1, 2))) AS evector_as_etext
FROM raw WHERE id = 2;

-- Moving a value to another vault by rewriting the vault id: that vault's key does not
-- authenticate it.
SELECT vault.create_vault('tamper_other');
SET vector_vault.vault = 'tamper_other';
CREATE TEMP TABLE other_raw AS SELECT '[1,2,3]'::evector::bytea AS o;
SET vector_vault.vault = 'regress';
SELECT try_open(format('SELECT %L::bytea::evector::text', overlay(v PLACING substr(o, 9, 8) FROM 9)))
FROM raw, other_raw WHERE id = 1;
-- Splicing the other vault's ciphertext under this header fails the same way.
SELECT try_open(format('SELECT %L::bytea::evector::text', substr(v, 1, 20) || substr(o, 21)))
FROM raw, other_raw WHERE id = 1;

-- Tampered values stored in a table fail on read; untouched rows still read.
UPDATE sealed SET v = flip(v::bytea, 50)::evector WHERE id = 2;
SELECT id, try_open(format('SELECT v::text FROM sealed WHERE id = %s', id)) FROM sealed ORDER BY id;
SELECT sqlstate_of('SELECT id FROM sealed ORDER BY v <-> ''[0,0,0]''');

-- Clean up, casts included.
SELECT vault.drop_vault('tamper_other');
DROP TABLE sealed;
DROP FUNCTION flip(bytea, int), try_open(text);
DROP CAST (evector AS bytea);
DROP CAST (bytea AS evector);
DROP CAST (etext AS bytea);
DROP CAST (bytea AS etext);
DROP CAST (ejsonb AS bytea);
DROP CAST (bytea AS ejsonb);
SELECT count(*) AS casts_left FROM pg_cast
WHERE castsource IN ('evector'::regtype, 'etext'::regtype, 'ejsonb'::regtype)
  AND casttarget = 'bytea'::regtype;
