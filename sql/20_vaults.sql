-- 20_vaults: managing vaults: vault.create_vault / drop_vault / grant / revoke / access_level,
-- the vault.vaults and vault.grants views, their errors, crypto-shredding on drop, and how
-- all of it behaves in transactions and savepoints. Vault ids are random and never printed.

-- Helpers that look into the keyring directory (superuser only): how many data-key files it
-- holds, and whether a vault's version-1 key file exists.
CREATE FUNCTION keyring_key_files() RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM pg_ls_dir(current_setting('vector_vault.keyring_dir')) AS f
    WHERE f ~ '^vault-[0-9a-f]{16}-v[0-9]+\.key$'
$$;
CREATE FUNCTION key_file_exists(vault_name text) RETURNS boolean LANGUAGE sql AS $$
    SELECT EXISTS (SELECT 1 FROM pg_ls_dir(current_setting('vector_vault.keyring_dir')) AS f
                   WHERE f = format('vault-%s-v1.key', lpad(to_hex(v.vault_id), 16, '0')))
    FROM vault._vaults v WHERE v.name = vault_name ORDER BY v.created_at DESC LIMIT 1
$$;
-- Every active vault has its key file; nothing else is in the keyring.
CREATE VIEW keyring_consistent AS
    SELECT keyring_key_files() = (SELECT count(*) FROM vault._vaults WHERE state = 'active')
        AS consistent;

-- Creating vaults: the creator owns them; vault.vaults lists what the current role can use.
SELECT vault.create_vault('v_alpha');
SELECT vault.create_vault('v_beta');
SELECT name, owner = current_user::regrole AS mine, access, key_version
FROM vault.vaults ORDER BY name COLLATE "C";
SELECT vault.access_level('v_alpha'), vault.access_level('no_such_vault') IS NULL AS unknown_null;
SELECT key_file_exists('v_alpha'), key_file_exists('v_beta');
SELECT * FROM keyring_consistent;

-- Names: 1 to 63 of letters, digits, '_', '.', '-', starting with a letter or '_'; case matters.
SELECT n, sqlstate_of(format('SELECT vault.create_vault(%L)', n)) FROM unnest(ARRAY[
    'a', '_under', 'Mixed.Case-name_9', 'V_ALPHA', repeat('n', 63),
    '', '9lives', '-dash', '.dot', 'has space', 'semi;colon', 'quote''s',
    repeat('n', 64)
]) AS n;
-- Only ASCII letters count as letters.
SELECT split_part(sqlstate_of($$SELECT vault.create_vault('ünïcode')$$), ':', 1) AS non_ascii;
SELECT name FROM vault.vaults ORDER BY name COLLATE "C";
-- The error carries a hint.
SELECT vault.create_vault('bad name');
-- A duplicate name is refused (42710); NULL is a no-op (the functions are strict).
SELECT vault.create_vault('v_alpha');
SELECT vault.create_vault(NULL) IS NULL AS strict;

-- Unknown vaults (42704), everywhere a vault is named.
SELECT sqlstate_of($$SELECT vault.drop_vault('nope')$$);
SELECT sqlstate_of($$SELECT vault.grant('nope', current_user::regrole, 'read')$$);
SELECT sqlstate_of($$SELECT vault.revoke('nope', current_user::regrole)$$);
SELECT sqlstate_of($$SELECT vault.rotate_key('nope')$$);
SELECT sqlstate_of($$SELECT vault.retire_key_version('nope', 1)$$);
SELECT sqlstate_of($$SELECT vault.seal_count('nope', 1)$$);
SET vector_vault.vault = 'nope';
SELECT '[1,2]'::evector;

-- No vault selected: sealing needs vector_vault.vault (55000, with a hint), also for a query
-- vector typed as a literal.
CREATE TABLE vt (id int, v evector(2), t etext);
SET vector_vault.vault = '';
INSERT INTO vt VALUES (1, '[1,2]', 'one');
RESET vector_vault.vault;
SELECT sqlstate_of($$SELECT 'x'::etext$$);
SELECT sqlstate_of($$SELECT '{}'::ejsonb$$);
SELECT sqlstate_of($$SELECT '{1,2}'::real[]::evector$$);
SELECT sqlstate_of($$SELECT 'x'::text::etext$$);

-- Grants: roles get read, write or admin; vault.grants lists them for admins and the owner.
CREATE ROLE regress_vv_a NOLOGIN;
CREATE ROLE regress_vv_b NOLOGIN;
CREATE ROLE regress_vv_c NOLOGIN;
SELECT vault.grant('v_alpha', 'regress_vv_a', 'read');
SELECT vault.grant('v_alpha', 'regress_vv_b', 'write');
SELECT vault.grant('v_alpha', 'regress_vv_c', 'admin');
SELECT vault.grant('v_beta', 'regress_vv_a', 'write');
SELECT vault, grantee, level, granted_by = current_user::regrole AS by_me
FROM vault.grants ORDER BY vault, grantee::text COLLATE "C";
-- Granting again changes the level.
SELECT vault.grant('v_alpha', 'regress_vv_a', 'admin');
SELECT vault.grant('v_alpha', 'regress_vv_a', 'read');
SELECT grantee, level FROM vault.grants WHERE vault = 'v_alpha' ORDER BY grantee::text COLLATE "C";
-- Levels are 'read', 'write' or 'admin', exactly (22023); ownership cannot be granted.
SELECT l, sqlstate_of(format('SELECT vault.grant(%L, %L, %L)', 'v_alpha', 'regress_vv_b', l))
FROM unnest(ARRAY['owner', 'READ', 'Write', ' read', '', 'superuser']) AS l;
SELECT vault.grant('v_alpha', 'regress_vv_b', 'owner');
-- The owner already has every right: granting to it is refused (0LP01).
SELECT replace(sqlstate_of($$SELECT vault.grant('v_alpha', current_user::regrole, 'read')$$),
               current_user, '<superuser>');
-- Unknown roles are refused by regrole itself (42704).
SELECT vault.grant('v_alpha', 'regress_vv_nobody', 'read');

-- What each role sees: its own level, only its vaults, and grants only where it is admin.
SET ROLE regress_vv_a;
SELECT vault.access_level('v_alpha') AS alpha, vault.access_level('v_beta') AS beta;
SELECT name, access FROM vault.vaults ORDER BY name COLLATE "C";
SELECT count(*) AS grants_visible FROM vault.grants;
SET ROLE regress_vv_c;
SELECT vault.access_level('v_alpha') AS alpha, vault.access_level('v_beta') AS beta;
SELECT vault, grantee, level FROM vault.grants ORDER BY vault, grantee::text COLLATE "C";
-- Roles cannot read or change the catalog tables behind the views.
SELECT sqlstate_of('SELECT count(*) FROM vault._vaults');
SELECT sqlstate_of('DELETE FROM vault._grants');
RESET ROLE;

-- Revoking: the grant goes; revoking a role with no grant is a NOTICE; the owner cannot be
-- revoked.
SELECT vault.revoke('v_alpha', 'regress_vv_b');
SELECT vault.revoke('v_alpha', 'regress_vv_b');
SELECT vault.revoke('v_alpha', current_user::regrole);
SELECT grantee, level FROM vault.grants WHERE vault = 'v_alpha' ORDER BY grantee::text COLLATE "C";
SET ROLE regress_vv_b;
SELECT vault.access_level('v_alpha');
RESET ROLE;

-- Creating vaults needs EXECUTE on vault.create_vault, which PUBLIC does not have.
SELECT has_function_privilege('public', 'vault.create_vault(text)', 'EXECUTE') AS public_can,
       has_function_privilege('public', 'vault.grant(text,regrole,text)', 'EXECUTE') AS grant_fn;
SET ROLE regress_vv_a;
SELECT vault.create_vault('v_by_a');
RESET ROLE;
GRANT EXECUTE ON FUNCTION vault.create_vault(text) TO regress_vv_a;
SET ROLE regress_vv_a;
SELECT vault.create_vault('v_by_a');
SELECT name, owner, access FROM vault.vaults WHERE name = 'v_by_a';
RESET ROLE;
REVOKE EXECUTE ON FUNCTION vault.create_vault(text) FROM regress_vv_a;

-- Dropping is for the owner only: an admin cannot, and neither can a superuser that is not
-- the owner (superusers get no implicit vault rights).
SET ROLE regress_vv_c;
SELECT sqlstate_of($$SELECT vault.drop_vault('v_alpha')$$);
RESET ROLE;
SELECT sqlstate_of($$SELECT vault.drop_vault('v_by_a')$$);
SELECT vault.access_level('v_by_a') IS NULL AS superuser_has_no_level;
SET ROLE regress_vv_a;
SELECT vault.drop_vault('v_by_a');
SELECT count(*) FROM vault.vaults WHERE name = 'v_by_a';
RESET ROLE;

-- A dropped vault: its values can no longer be decrypted (22V02), its key file is gone,
-- its grants are gone, and its name is free. vector_dims still works (it needs no key).
SET vector_vault.vault = 'v_beta';
INSERT INTO vt VALUES (1, '[1,2]', 'one'), (2, '[3,4]', 'two');
SELECT id, v, t FROM vt ORDER BY id;
SELECT vault.drop_vault('v_beta');
SELECT key_file_exists('v_beta') AS key_file_after_drop;
SELECT * FROM keyring_consistent;
SELECT v FROM vt WHERE id = 1;
SELECT q, sqlstate_of(q) FROM unnest(ARRAY[
    'SELECT v::text FROM vt', 'SELECT t::text FROM vt', 'SELECT v <-> v FROM vt',
    'SELECT v::real[] FROM vt'
]) AS q;
SELECT id, vector_dims(v) FROM vt ORDER BY id;
SELECT count(*) AS listed FROM vault.vaults WHERE name = 'v_beta';
SELECT vault.access_level('v_beta') IS NULL AS no_level;
SELECT count(*) AS grants_left FROM vault._grants g JOIN vault._vaults v USING (vault_id)
WHERE v.name = 'v_beta';
-- The vault setting still names it, but it is gone (42704).
INSERT INTO vt VALUES (3, '[5,6]', 'three');
-- Dropping it again: it does not exist.
SELECT vault.drop_vault('v_beta');
-- A new vault with the same name is a different vault with a different key: the old values
-- stay unreadable, new values work.
SELECT vault.create_vault('v_beta');
SELECT sqlstate_of('SELECT v::text FROM vt WHERE id = 1');
INSERT INTO vt VALUES (3, '[5,6]', 'three');
SELECT id, v, t FROM vt WHERE id = 3;
SELECT count(*) FROM vault._vaults WHERE name = 'v_beta' AND state = 'dropped';
DELETE FROM vt;

-- Transactions: a vault created in a rolled-back transaction does not exist, and neither does
-- its key file.
BEGIN;
SELECT vault.create_vault('v_tx');
SELECT name, access FROM vault.vaults WHERE name = 'v_tx';
SET LOCAL vector_vault.vault = 'v_tx';
SELECT '[1,2]'::evector AS usable_inside;
ROLLBACK;
SELECT count(*) FROM vault.vaults WHERE name = 'v_tx';
SELECT count(*) FROM vault._vaults WHERE name = 'v_tx';
SELECT * FROM keyring_consistent;
-- Savepoints: ROLLBACK TO undoes a create; the name can be used again in the same transaction.
BEGIN;
SAVEPOINT s1;
SELECT vault.create_vault('v_sp');
ROLLBACK TO SAVEPOINT s1;
SELECT count(*) FROM vault.vaults WHERE name = 'v_sp';
SELECT vault.create_vault('v_sp');
RELEASE SAVEPOINT s1;
COMMIT;
SELECT name, access FROM vault.vaults WHERE name = 'v_sp';
SELECT * FROM keyring_consistent;
-- ROLLBACK TO undoes a drop: the vault, its key and its values survive the commit.
SET vector_vault.vault = 'v_sp';
INSERT INTO vt VALUES (10, '[1,1]', 'kept');
BEGIN;
SAVEPOINT s1;
SELECT vault.drop_vault('v_sp');
SELECT vault.access_level('v_sp') IS NULL AS gone_inside;
ROLLBACK TO SAVEPOINT s1;
SELECT vault.access_level('v_sp') AS back;
COMMIT;
SELECT key_file_exists('v_sp'), v, t FROM vt WHERE id = 10;
-- A plain ROLLBACK undoes a drop too.
BEGIN;
SELECT vault.drop_vault('v_sp');
ROLLBACK;
SELECT key_file_exists('v_sp'), v, t FROM vt WHERE id = 10;
-- A drop committed after a savepoint that did something else still shreds.
BEGIN;
SAVEPOINT s1;
SELECT vault.create_vault('v_other');
ROLLBACK TO SAVEPOINT s1;
SELECT vault.drop_vault('v_sp');
COMMIT;
SELECT key_file_exists('v_sp') AS key_file_after_drop;
SELECT sqlstate_of('SELECT v::text FROM vt WHERE id = 10');
SELECT * FROM keyring_consistent;
-- Create and drop in one transaction: nothing is left.
BEGIN;
SELECT vault.create_vault('v_brief');
SELECT vault.drop_vault('v_brief');
COMMIT;
SELECT count(*) FROM vault.vaults WHERE name = 'v_brief';
SELECT * FROM keyring_consistent;
-- A failed statement after a create aborts the whole transaction, create included.
BEGIN;
SELECT vault.create_vault('v_fail');
SELECT 1 / 0;
COMMIT;
SELECT count(*) FROM vault._vaults WHERE name = 'v_fail';
SELECT * FROM keyring_consistent;
-- Two-phase commit cannot carry a vault creation or drop (its key work is not prepared).
BEGIN;
SELECT vault.create_vault('v_2pc');
PREPARE TRANSACTION 'vv_regress_2pc';
SELECT count(*) FROM vault._vaults WHERE name = 'v_2pc';
SELECT count(*) FROM pg_prepared_xacts WHERE gid = 'vv_regress_2pc';
SELECT * FROM keyring_consistent;

-- Clean up: roles, helper objects, the remaining vaults of this file.
DROP TABLE vt;
SELECT vault.drop_vault(name) FROM vault.vaults
WHERE name IN ('v_alpha', 'v_beta', 'a', '_under', 'Mixed.Case-name_9', 'V_ALPHA', repeat('n', 63))
ORDER BY name COLLATE "C";
SELECT name FROM vault.vaults ORDER BY name COLLATE "C";
SELECT * FROM keyring_consistent;
DROP ROLE regress_vv_a, regress_vv_b, regress_vv_c;
DROP VIEW keyring_consistent;
DROP FUNCTION keyring_key_files(), key_file_exists(text);
