-- 40_attack_3_write: inserting, updating and deleting in another vault. The vault policies let a
-- principal write only rows of vaults it may write: inserts and updates into atk_a fail with
-- 42501 (row-level security), updates and deletes of rows it may not write touch nothing.
-- Ciphertext copied from atk_a (as a datum, or as ciphertext_io text) is refused too: the
-- policy reads the vault from the value's header.
--
-- Each principal attacks inside a transaction that is rolled back (its login is transaction
-- scoped), after which the superuser checks atk_a's rows with a fingerprint of their envelopes
-- (ciphertext_io output: no decryption, so no vault right is needed).

SELECT key AS key_a_read FROM atk_keys WHERE name = 'a_read' \gset
SELECT key AS key_b_write FROM atk_keys WHERE name = 'b_write' \gset
SELECT key AS key_c_write FROM atk_keys WHERE name = 'c_write' \gset
SELECT key AS key_keyowner FROM atk_keys WHERE name = 'keyowner_a_write' \gset

-- Envelope fingerprint of the rows that hold a value of atk_a (superuser: no RLS;
-- ciphertext_io: no decryption); NULL when there are none.
CREATE FUNCTION atk_fingerprint() RETURNS text LANGUAGE plpgsql AS $$
DECLARE fp text;
    a bigint := (SELECT vault_id FROM vault._vaults WHERE name = 'atk_a' AND state = 'active');
BEGIN
    PERFORM set_config('vector_vault.ciphertext_io', 'on', true);
    SELECT md5(string_agg(format('%s|%s|%s|%s', id, etext_out(body), ejsonb_out(meta),
                                 evector_out(embedding)), ',' ORDER BY id))
    INTO fp FROM atk_items
    WHERE a IN (vault.vault_of(body), vault.vault_of(meta), vault.vault_of(embedding));
    PERFORM set_config('vector_vault.ciphertext_io', 'off', true);
    RETURN fp;
END
$$;
SELECT atk_fingerprint() AS fp \gset

-- Ciphertext of atk_a's row 1, as a copied datum and as ciphertext_io text.
CREATE TABLE atk_ct AS SELECT body, meta, embedding FROM atk_items WHERE id = 1;
SET vector_vault.ciphertext_io = on;
CREATE TABLE atk_ct_text AS SELECT etext_out(body)::text AS body_ct FROM atk_items WHERE id = 1;
RESET vector_vault.ciphertext_io;
SELECT body_ct LIKE 'vve1:%' AS is_envelope_text FROM atk_ct_text;
GRANT SELECT ON atk_ct, atk_ct_text TO PUBLIC;

-- The attempts, all aimed at atk_a. The caller selects atk_a first with a top-level
-- "SET LOCAL vector_vault.vault = 'atk_a'" (since security round 2, H5, a function may not
-- change vector_vault.vault; see 42_round2_h5_nested_login); atk_writes refuses to run without.
CREATE FUNCTION atk_writes() RETURNS TABLE (attempt text, outcome text) LANGUAGE plpgsql AS $$
DECLARE ct text := (SELECT body_ct FROM atk_ct_text);
BEGIN
    IF current_setting('vector_vault.vault') IS DISTINCT FROM 'atk_a' THEN
        RAISE EXCEPTION 'atk_writes: atk_a is not selected';
    END IF;
    attempt := 'insert sealed under atk_a';
    outcome := atk_dml($q$INSERT INTO atk_items VALUES (100, 'X-SECRET-new', '{"n": 100}', '[9,9,9]')$q$);
    RETURN NEXT;
    attempt := 'insert a copy of an atk_a row';
    outcome := atk_dml('INSERT INTO atk_items SELECT id + 100, body, meta, embedding FROM atk_items WHERE id = 1');
    RETURN NEXT;
    attempt := 'insert atk_a ciphertext (datum)';
    outcome := atk_dml('INSERT INTO atk_items SELECT 102, body, meta, embedding FROM atk_ct');
    RETURN NEXT;
    PERFORM set_config('vector_vault.ciphertext_io', 'on', true);
    attempt := 'insert atk_a ciphertext (text)';
    outcome := atk_dml(format('INSERT INTO atk_items (id, body) VALUES (103, %L)', ct));
    RETURN NEXT;
    PERFORM set_config('vector_vault.ciphertext_io', 'off', true);
    attempt := 'update atk_a rows (no new value)';
    outcome := atk_dml('UPDATE atk_items SET id = id WHERE id < 10');
    RETURN NEXT;
    attempt := 'update atk_a rows (new value)';
    outcome := atk_dml($q$UPDATE atk_items SET body = 'X-SECRET-upd' WHERE id < 10$q$);
    RETURN NEXT;
    attempt := 'move own rows into atk_a';
    outcome := atk_dml('UPDATE atk_items SET body = (SELECT body FROM atk_ct) WHERE id > 10');
    RETURN NEXT;
    attempt := 'delete atk_a rows';
    outcome := atk_dml('DELETE FROM atk_items WHERE id < 10');
    RETURN NEXT;
    attempt := 'delete all visible rows';
    outcome := atk_dml('DELETE FROM atk_items');
    RETURN NEXT;
END
$$;

-- Positive control: a write key of atk_a (owned by a grantee with write) does all of it.
BEGIN;
SET LOCAL ROLE regress_atk_app;
SELECT vault.login(:'key_keyowner', true);
SET LOCAL vector_vault.vault = 'atk_a';
SELECT * FROM atk_writes();
RESET ROLE;
SELECT atk_fingerprint() IS NOT DISTINCT FROM :'fp' AS atk_a_unchanged;
ROLLBACK;

-- A read key of atk_a: sees the rows, may not write them.
BEGIN;
SET LOCAL ROLE regress_atk_app;
SELECT vault.login(:'key_a_read', true);
SET LOCAL vector_vault.vault = 'atk_a';
SELECT * FROM atk_writes();
RESET ROLE;
SELECT atk_fingerprint() IS NOT DISTINCT FROM :'fp' AS atk_a_unchanged;
ROLLBACK;

-- Another vault's key (write on atk_b): its own rows cannot be moved into atk_a, and deleting
-- "all" rows deletes only atk_b's (4 rows are left: atk_a's and atk_c's).
BEGIN;
SET LOCAL ROLE regress_atk_app;
SELECT vault.login(:'key_b_write', true);
SET LOCAL vector_vault.vault = 'atk_a';
SELECT * FROM atk_writes();
RESET ROLE;
SELECT atk_fingerprint() IS NOT DISTINCT FROM :'fp' AS atk_a_unchanged;
SELECT count(*) AS rows_left FROM atk_items;
ROLLBACK;

-- The key of a dropped vault.
BEGIN;
SET LOCAL ROLE regress_atk_app;
SELECT vault.login(:'key_c_write', true) IS NULL AS no_vault;
SET LOCAL vector_vault.vault = 'atk_a';
SELECT * FROM atk_writes();
RESET ROLE;
SELECT atk_fingerprint() IS NOT DISTINCT FROM :'fp' AS atk_a_unchanged;
ROLLBACK;

-- A role with no grants.
BEGIN;
SET LOCAL ROLE regress_atk_nobody;
SET LOCAL vector_vault.vault = 'atk_a';
SELECT * FROM atk_writes();
RESET ROLE;
SELECT atk_fingerprint() IS NOT DISTINCT FROM :'fp' AS atk_a_unchanged;
ROLLBACK;

-- The table owner (forced RLS).
BEGIN;
SET LOCAL ROLE regress_atk_tblowner;
SET LOCAL vector_vault.vault = 'atk_a';
SELECT * FROM atk_writes();
RESET ROLE;
SELECT atk_fingerprint() IS NOT DISTINCT FROM :'fp' AS atk_a_unchanged;
ROLLBACK;

-- BYPASSRLS skips the policies, so it can copy atk_a's ciphertext into new rows and delete
-- atk_a's rows (table privileges decide that, see README: the vaults protect confidentiality),
-- but it cannot seal or rewrite a value under atk_a, and the copies stay unreadable to it.
BEGIN;
SET LOCAL ROLE regress_atk_bypass;
SET LOCAL vector_vault.vault = 'atk_a';
SELECT * FROM atk_writes();
RESET ROLE;
SELECT atk_fingerprint() IS NOT DISTINCT FROM :'fp' AS atk_a_unchanged;
ROLLBACK;
BEGIN;
SET LOCAL ROLE regress_atk_bypass;
SELECT atk_dml('INSERT INTO atk_items SELECT id + 100, body, meta, embedding FROM atk_items WHERE id < 10') AS copy;
SELECT atk_read('SELECT body::text FROM atk_items WHERE id > 100 ORDER BY id') AS read_copies;
ROLLBACK;

-- Nothing was left behind.
SELECT atk_fingerprint() IS NOT DISTINCT FROM :'fp' AS atk_a_unchanged, count(*) AS rows FROM atk_items;
