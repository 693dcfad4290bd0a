-- 50_rotation_h3_nested: rotation sees encrypted values wherever a column keeps them (security
-- round 2, H3; issue 8).
--
-- Until this fix vault._encrypted_columns (and vault.protect) listed only columns whose type
-- was evector, etext or ejsonb itself: a domain over etext, an etext[] array, a composite type
-- with an etext field, an array of such composites and a materialized view were invisible.
-- rotate_key + reencrypt + retire_key_version then succeeded and shredded the key those values
-- still used (22V02 forever), and vault.protect left such columns out of its policies. Now one
-- test (vault._holds_encrypted) sees through domains, arrays and composites at any depth,
-- reencrypt rewrites the values inside them, retire_key_version counts them (materialized
-- views included, which REFRESH rewrites) and vault.protect derives row vaults from them.

CREATE ROLE regress_rot3_owner NOLOGIN;
CREATE ROLE regress_rot3_other NOLOGIN;
GRANT EXECUTE ON FUNCTION vault.create_vault(text) TO regress_rot3_owner, regress_rot3_other;
GRANT CREATE ON SCHEMA public TO regress_rot3_owner;

SET ROLE regress_rot3_other;
SELECT vault.create_vault('rot_h3_other');
RESET ROLE;
SET ROLE regress_rot3_owner;
SELECT vault.create_vault('rot_h3');
CREATE DOMAIN rot3_secret AS etext;
CREATE TYPE rot3_pair AS (label text, secret etext, tags rot3_secret[]);
CREATE TABLE rot3_notes (id int PRIMARY KEY, note rot3_secret, tags etext[], pair rot3_pair,
                         pairs rot3_pair[], meta ejsonb);
CREATE TABLE rot3_parted (id int, body rot3_secret) PARTITION BY RANGE (id);
CREATE TABLE rot3_parted_1 PARTITION OF rot3_parted FOR VALUES FROM (0) TO (100);
SET vector_vault.vault = 'rot_h3';
INSERT INTO rot3_notes VALUES
    (1, 'note-1', ARRAY['tag-1a', 'tag-1b']::etext[],
     ROW('p1', 'pair-secret-1', ARRAY['pair-tag-1']::rot3_secret[])::rot3_pair,
     ARRAY[ROW('q1', 'pairs-secret-1', NULL)::rot3_pair, NULL], '{"m": 1}'),
    (2, NULL, '[0:1]={tag-2a,NULL}'::etext[], NULL, NULL, NULL);
INSERT INTO rot3_parted VALUES (1, 'parted-1');
CREATE MATERIALIZED VIEW rot3_mv AS SELECT id, note, tags FROM rot3_notes;
RESET ROLE;

-- The finding itself: values only in a domain column and an array column; key version 1 is
-- retired right after the rotation. Before the fix nothing counted them: the retirement
-- succeeded and both values were undecryptable for good (22V02). Now it is refused, naming
-- the column; after reencrypt it succeeds and both values read back.
SET ROLE regress_rot3_owner;
SELECT vault.create_vault('rot_h3_loss');
CREATE TABLE rot3_loss (id int, note rot3_secret, tags etext[]);
SET vector_vault.vault = 'rot_h3_loss';
INSERT INTO rot3_loss VALUES (1, 'loss-note', ARRAY['loss-tag']::etext[]);
SELECT vault.rotate_key('rot_h3_loss');
SELECT sqlstate_of($$SELECT vault.retire_key_version('rot_h3_loss', 1)$$);
SELECT regexp_replace(sqlstate_of('SELECT note::text FROM rot3_loss'), '[0-9a-f]{16}', '<id>') AS note,
       regexp_replace(sqlstate_of('SELECT tags::text[] FROM rot3_loss'), '[0-9a-f]{16}', '<id>') AS tags;
SET client_min_messages = warning;
CALL vault.reencrypt('rot_h3_loss');
RESET client_min_messages;
SELECT sqlstate_of($$SELECT vault.retire_key_version('rot_h3_loss', 1)$$);
SELECT id, note::text, tags::text[], vault.key_version_of(note) FROM rot3_loss;
RESET vector_vault.vault;
RESET ROLE;

-- Every such column is listed, each table on its own (the partition, not its parent).
SELECT relid, column_name FROM vault._encrypted_columns()
 WHERE relid::text LIKE 'rot3%' ORDER BY relid::text, column_name;
SELECT t::regtype, vault._holds_encrypted(t::regtype)
  FROM unnest(ARRAY['etext', 'rot3_secret', 'rot3_secret[]', 'etext[]', 'rot3_pair',
                    'rot3_pair[]', 'text', 'text[]', 'rot3_notes']) t;

-- vault.protect derives each row's vault from every one of them (before: the domain column
-- was left out; a table with only a domain column could not be protected at all).
SET ROLE regress_rot3_owner;
CREATE TABLE rot3_domain_only (id int, note rot3_secret);
SELECT vault.protect('rot3_domain_only');
SELECT vault.protect('rot3_notes');
SELECT polname, pg_get_expr(polqual, polrelid) AS using_expr
  FROM pg_policy WHERE polrelid IN ('rot3_notes'::regclass, 'rot3_domain_only'::regclass)
   AND polname = 'vault_read' ORDER BY polrelid::regclass::text;
-- A row whose array holds a value of another vault is not the owner's to read.
RESET ROLE;
SET ROLE regress_rot3_other;
SET vector_vault.vault = 'rot_h3_other';
CREATE TEMP TABLE rot3_other_value AS SELECT 'other-secret'::etext AS v;
RESET ROLE;
UPDATE rot3_notes SET tags = tags || (SELECT v FROM rot3_other_value) WHERE id = 2;
SET ROLE regress_rot3_owner;
SELECT id FROM rot3_notes ORDER BY id;
RESET ROLE;
UPDATE rot3_notes SET tags = tags[0:0] WHERE id = 2;

-- Rotation: before reencrypt, retire_key_version refuses, naming a nested column.
SET ROLE regress_rot3_owner;
SELECT vault.rotate_key('rot_h3');
SELECT sqlstate_of($$SELECT vault.retire_key_version('rot_h3', 1)$$);
CALL vault.reencrypt('rot_h3');
-- Every value inside the table and the partition is now under version 2; the materialized view
-- still holds version 1 and keeps the version from being retired until it is refreshed.
SELECT 'rot3_notes' AS t, count(*) AS rows,
       sum(vault._sealed_count(note, vault.vault_id('rot_h3'), 1, 1)
         + vault._sealed_count(tags, vault.vault_id('rot_h3'), 1, 1)
         + coalesce(vault._sealed_count(pair, vault.vault_id('rot_h3'), 1, 1), 0)
         + coalesce(vault._sealed_count(pairs, vault.vault_id('rot_h3'), 1, 1), 0)
         + coalesce(vault._sealed_count(meta, vault.vault_id('rot_h3'), 1, 1), 0)) AS v1_values
  FROM rot3_notes
UNION ALL
SELECT 'rot3_parted', count(*), sum(vault._sealed_count(body, vault.vault_id('rot_h3'), 1, 1))
  FROM rot3_parted;
SELECT sqlstate_of($$SELECT vault.retire_key_version('rot_h3', 1)$$);
REFRESH MATERIALIZED VIEW rot3_mv;
SELECT sqlstate_of($$SELECT vault.retire_key_version('rot_h3', 1)$$);
-- After the shred every value still reads back.
SELECT id, note::text, tags::text[], (pair).secret::text AS pair_secret,
       (pair).tags::text[] AS pair_tags, pairs[1].secret::text AS pairs_secret, meta::jsonb
  FROM rot3_notes ORDER BY id;
SELECT id, body::text FROM rot3_parted;
SELECT id, note::text, tags::text[] FROM rot3_mv ORDER BY id;
RESET ROLE;
