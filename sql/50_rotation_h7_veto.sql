-- 50_rotation_h7_veto: nobody outside a vault can block or veto its rotation (security round 2,
-- H7, issue 8; security round 3, "Rotation that an outsider cannot veto", issue 14).
--
-- Until this fix:
--   * vault.reencrypt UPDATEd every table with an encrypted column as the caller: one table the
--     vault owner could not UPDATE (another vault's table, anybody's temporary table) made it
--     fail with "permission denied" for every vault of the database, although that table held
--     no value of the vault;
--   * vault.retire_key_version refused while any table held a value under the version, so a
--     role without any right on the vault that once copied envelopes (SELECT on an unprotected
--     table) into its own table, or indexed them, blocked the retirement forever.
-- Now reencrypt touches only the tables holding values of the vault and reports (WARNING) the
-- ones it may not rewrite; retire_key_version names the relation, its owner and what to do,
-- and force => true shreds the version although roles WITHOUT access to the vault still hold
-- copies (reported). Values in tables of roles WITH access always block (revoke them first).

CREATE ROLE regress_rot7_owner NOLOGIN;
CREATE ROLE regress_rot7_other NOLOGIN;
CREATE ROLE regress_rot7_mallory NOLOGIN;
CREATE ROLE regress_rot7_reader NOLOGIN;
GRANT EXECUTE ON FUNCTION vault.create_vault(text) TO regress_rot7_owner, regress_rot7_other;
GRANT CREATE ON SCHEMA public TO regress_rot7_owner, regress_rot7_other, regress_rot7_mallory,
    regress_rot7_reader;

-- rot7_err(q): 'ok', or the error's SQLSTATE, message, detail and hint (ids masked).
CREATE FUNCTION rot7_err(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; msg text; det text; hin text;
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
        det = PG_EXCEPTION_DETAIL, hin = PG_EXCEPTION_HINT;
    RETURN regexp_replace(concat_ws(E'\n', st || ': ' || msg, 'DETAIL: ' || det, 'HINT: ' || hin),
                          '[0-9a-f]{16}', '<id>', 'g');
END $$;

-- The owner's vault and its unprotected table, readable by everybody (a mistake that hands out
-- ciphertext, not plaintext), with a vault_hnsw index.
SET ROLE regress_rot7_owner;
SELECT vault.create_vault('rot_v');
SELECT vault.grant('rot_v', 'regress_rot7_reader', 'read');
CREATE TABLE rot7_items (id int PRIMARY KEY, body etext, emb evector(2));
GRANT SELECT ON rot7_items TO PUBLIC;
SET vector_vault.vault = 'rot_v';
INSERT INTO rot7_items VALUES (1, 'v-secret-1', '[1,0]'), (2, 'v-secret-2', '[2,0]');
CREATE INDEX rot7_items_emb ON rot7_items USING vault_hnsw (emb);
RESET vector_vault.vault;
RESET ROLE;

-- Another vault's table the owner cannot touch, and a temporary table of another role.
SET ROLE regress_rot7_other;
SELECT vault.create_vault('rot_w');
CREATE TABLE rot7_w_items (id int, body etext);
SET vector_vault.vault = 'rot_w';
INSERT INTO rot7_w_items VALUES (1, 'w-secret-1');
CREATE TEMP TABLE rot7_w_temp (body etext);
INSERT INTO rot7_w_temp VALUES ('w-secret-temp');
RESET vector_vault.vault;
RESET ROLE;

-- mallory (no right on rot_v) copies envelopes and indexes them; the reader keeps a copy too.
SET ROLE regress_rot7_mallory;
CREATE TABLE rot7_copies AS SELECT id, body, emb FROM rot7_items;
CREATE INDEX rot7_copies_emb ON rot7_copies USING vault_hnsw (emb);
RESET ROLE;
SET ROLE regress_rot7_reader;
CREATE TABLE rot7_reader_copy AS SELECT id, body FROM rot7_items;
RESET ROLE;

-- The owner's protected table where one row also holds a value of rot_w (copied in by the
-- superuser): row-level security hides that row from the owner.
SET ROLE regress_rot7_owner;
CREATE TABLE rot7_mixed (id int, a etext, b etext);
SET client_min_messages = warning;
SELECT vault.protect('rot7_mixed');
RESET client_min_messages;
SET vector_vault.vault = 'rot_v';
INSERT INTO rot7_mixed VALUES (2, 'v-mixed-2', NULL);
RESET vector_vault.vault;
RESET ROLE;
INSERT INTO rot7_mixed SELECT 1, i.body, w.body FROM rot7_items i, rot7_w_items w WHERE i.id = 1;

-- Rotation of rot_v: reencrypt rewrites the owner's tables, reports the copies and the hidden
-- row, and does not fail on the tables it cannot touch.
SET ROLE regress_rot7_owner;
SELECT vault.rotate_key('rot_v');
CALL vault.reencrypt('rot_v');
-- As the warning says: without forced row-level security the owner rewrites the hidden row.
ALTER TABLE rot7_mixed NO FORCE ROW LEVEL SECURITY;
SET client_min_messages = error;
CALL vault.reencrypt('rot_v');
RESET client_min_messages;
ALTER TABLE rot7_mixed FORCE ROW LEVEL SECURITY;
RESET ROLE;
SELECT id, vault.key_version_of(a) AS a_version, vault.key_version_of(b) AS b_version
  FROM rot7_mixed ORDER BY id;
-- (rot_w's value is gone again, or it would hold up rot_w's rotation below as an outsider's copy.)
DELETE FROM rot7_mixed WHERE id = 1;
SET ROLE regress_rot7_owner;
SELECT id, vault.key_version_of(body), vault.key_version_of(emb), body::text FROM rot7_items ORDER BY id;
-- What still holds version 1, as the owner sees it.
SELECT relation, column_name, owner, remaining, owner_has_rights, not_rewritable IS NOT NULL AS reported
  FROM vault._key_version_holders('rot_v', 1, 1) ORDER BY relation::text, column_name;
RESET ROLE;
VACUUM rot7_items;

-- Retiring version 1: the reader's copy (a member of the vault) blocks, even with force.
SET ROLE regress_rot7_owner;
SELECT rot7_err($$SELECT vault.retire_key_version('rot_v', 1)$$);
SELECT rot7_err($$SELECT vault.retire_key_version('rot_v', 1, force => true)$$);
-- The owner revokes the reader: now only copies of roles without access are left; without
-- force they are named (relation, owner, what to do), with force they are reported and shredded.
SELECT vault.revoke('rot_v', 'regress_rot7_reader');
SELECT rot7_err($$SELECT vault.retire_key_version('rot_v', 1)$$);
SELECT vault.retire_key_version('rot_v', 1, force => true);
-- The vault's own values read back; every copy under version 1 is gone for good, for the
-- owner too (the superuser lets the owner read the copies to show it).
SELECT id, body::text, emb::text FROM rot7_items ORDER BY id;
RESET ROLE;
GRANT SELECT ON rot7_copies, rot7_reader_copy TO regress_rot7_owner;
SET ROLE regress_rot7_owner;
SELECT regexp_replace(sqlstate_of('SELECT body::text FROM rot7_copies'), '[0-9a-f]{16}', '<id>', 'g') AS shredded;
SELECT regexp_replace(sqlstate_of('SELECT emb::text FROM rot7_copies'), '[0-9a-f]{16}', '<id>', 'g') AS shredded;
SELECT regexp_replace(sqlstate_of('SELECT body::text FROM rot7_reader_copy'), '[0-9a-f]{16}', '<id>', 'g') AS shredded;
RESET ROLE;

-- rot_w's rotation is not blocked by rot_v's tables or mallory's, nor by its own temporary
-- table (which its owner rewrites).
SET ROLE regress_rot7_other;
SELECT vault.rotate_key('rot_w');
CALL vault.reencrypt('rot_w');
SELECT rot7_err($$SELECT vault.retire_key_version('rot_w', 1)$$);
SET vector_vault.vault = 'rot_w';
SELECT body::text FROM rot7_w_items UNION ALL SELECT body::text FROM rot7_w_temp ORDER BY 1;
RESET vector_vault.vault;
RESET ROLE;

-- A role without write access cannot list where a vault's values are.
SET ROLE regress_rot7_mallory;
SELECT rot7_err($$SELECT * FROM vault._key_version_holders('rot_v', 1, 1)$$);
RESET ROLE;
