-- 43_round2_h4_derived_plaintext: security round 2, finding H4. A user function declared
-- IMMUTABLE that casts etext to text made a GENERATED ... STORED column or an expression index
-- store the writer's plaintext, readable by a table owner with no right on the vault. Now an
-- event trigger (src/type/ddl_guard.cpp) refuses, at the end of the DDL command, generated
-- columns, index expressions and partial-index predicates that read a column holding encrypted
-- values (through domains, arrays and composites too); vault.vault_of(col) and
-- vault.key_version_of(col) stay allowed. On c9ba3cb every CREATE below succeeded and the
-- owner read the plaintext.
SET client_min_messages = warning;
CREATE ROLE regress_h4_owner NOLOGIN;   -- owns the table, no vault right
CREATE ROLE regress_h4_writer NOLOGIN;  -- writes into vault h4_v
GRANT CREATE ON SCHEMA public TO regress_h4_owner;
RESET client_min_messages;
SELECT vault.create_vault('h4_v');
SELECT vault.grant('h4_v', 'regress_h4_writer', 'write');

SET ROLE regress_h4_owner;
-- The wrapper that launders a STABLE decryption as IMMUTABLE.
CREATE FUNCTION h4_peek(e etext) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT e::text $$;
CREATE FUNCTION h4_peek_plpgsql(e etext) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN RETURN e::text; END $$;
CREATE DOMAIN h4_secret AS etext;
CREATE TYPE h4_pair AS (a etext, b int);

-- 1. generated columns
CREATE TABLE h4_gen (id int, body etext, peek text GENERATED ALWAYS AS (h4_peek(body)) STORED);
CREATE TABLE h4_gen2 (id int, body etext, peek text GENERATED ALWAYS AS (h4_peek_plpgsql(body)) STORED);
CREATE TABLE h4_gen3 (id int, body h4_secret, peek text GENERATED ALWAYS AS (h4_peek(body)) STORED);
CREATE TABLE h4_gen4 (id int, tags etext[], peek text GENERATED ALWAYS AS (h4_peek(tags[1])) STORED);
CREATE TABLE h4_gen5 (id int, p h4_pair, peek text GENERATED ALWAYS AS (h4_peek((p).a)) STORED);
CREATE TABLE h4_t (id int, body etext, tags etext[], meta ejsonb, embedding evector(3));
ALTER TABLE h4_t ADD COLUMN peek text GENERATED ALWAYS AS (h4_peek(body)) STORED;
SELECT count(*) AS generated_columns_left FROM pg_attribute
WHERE attrelid = 'h4_t'::regclass AND attgenerated <> '';
-- allowed: metadata only
ALTER TABLE h4_t ADD COLUMN vid bigint GENERATED ALWAYS AS (vault.vault_of(body)) STORED;
ALTER TABLE h4_t ADD COLUMN ver int GENERATED ALWAYS AS (vault.key_version_of(body)) STORED;
ALTER TABLE h4_t ADD COLUMN plain_id text GENERATED ALWAYS AS (id::text) STORED;

-- 2. index expressions and predicates
CREATE INDEX h4_i1 ON h4_t (h4_peek(body));
CREATE INDEX h4_i2 ON h4_t ((h4_peek(tags[1])));
CREATE INDEX h4_i3 ON h4_t (id) WHERE h4_peek(body) LIKE 'A%';
CREATE INDEX h4_i4 ON h4_t ((h4_peek(body) || id::text));
CREATE INDEX h4_i5 ON h4_t ((h4_t::text));
-- allowed: metadata, plain columns, the encrypted column itself in vault_hnsw
CREATE INDEX h4_ok1 ON h4_t (vault.vault_of(body));
CREATE INDEX h4_ok2 ON h4_t (id) WHERE id > 0;
CREATE INDEX h4_ok3 ON h4_t USING vault_hnsw (embedding);
SELECT relname FROM pg_class WHERE relname LIKE 'h4\_%' AND relkind = 'i' ORDER BY 1;
GRANT INSERT ON h4_t TO regress_h4_writer;
RESET ROLE;

-- 3. the writer writes; nothing derived from the plaintext exists for the owner to read
SET ROLE regress_h4_writer;
SET vector_vault.vault = 'h4_v';
INSERT INTO h4_t (id, body, tags, meta, embedding)
VALUES (1, 'H4-SECRET-1', ARRAY['H4-SECRET-T']::etext[], '{"k": "H4-SECRET-M"}', '[1,2,3]');
RESET vector_vault.vault;
RESET ROLE;
SET ROLE regress_h4_owner;
-- what the owner can read: the id, the vault id, the key version; decrypting is refused
SELECT id, vid IS NOT NULL AS has_vault_id, ver, plain_id FROM h4_t;
SELECT regexp_replace(sqlstate_of('SELECT body::text FROM h4_t'), '\(.*$', '') AS owner_decrypts;
RESET ROLE;

SET client_min_messages = warning;
DROP TABLE h4_t;
DROP TYPE h4_pair;
DROP DOMAIN h4_secret;
DROP FUNCTION h4_peek(etext), h4_peek_plpgsql(etext);
SELECT vault.drop_vault('h4_v');
RESET client_min_messages;
