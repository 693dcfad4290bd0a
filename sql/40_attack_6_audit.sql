-- 40_attack_6_audit: the access log of the attacks in 40_attack_1..5, the owners' view of it,
-- DROP ROLE of roles the vaults still refer to (2BP01), and cleaning up.
--
-- Events reach vault._access_log through a background writer; denials and failed logins are
-- queued at once, so they are there even though every one of them rolled back its transaction
-- (or subtransaction); key changes are queued at commit.

\set pw 'atk-password-0001'

-- One more denial and one more failed login, each in a transaction that rolls back.
CREATE ROLE regress_atk_auditee NOLOGIN;
GRANT SELECT ON atk_query TO regress_atk_auditee;
BEGIN;
SET LOCAL ROLE regress_atk_auditee;
SELECT q::text FROM atk_query;
ROLLBACK;
BEGIN;
SET LOCAL ROLE regress_atk_auditee;
SELECT vault.login('vv_not_a_key');
ROLLBACK;

-- Waits (at most ~10 s) until the writer has stored every event of the attack roles.
CREATE FUNCTION atk_wait_for_log(want bigint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    FOR i IN 1 .. 100 LOOP
        SELECT count(*) INTO n FROM vault._access_log WHERE role LIKE 'regress_atk%';
        EXIT WHEN n >= want;
        PERFORM pg_sleep(0.1);
    END LOOP;
    RETURN n;
END
$$;
SELECT atk_wait_for_log(296) AS events;

-- The rolled-back denial and failed login are there.
SELECT role, key_id IS NOT NULL AS has_key_id, vault, action, result, client_addr, detail
FROM vault._access_log WHERE role = 'regress_atk_auditee' ORDER BY at;

-- Every event of the attack, grouped. Denials name the vault and what was refused; failed and
-- blocked logins are there; key changes are there once each (the rotation of a revoked key
-- and the password change that was blocked are not: they did not happen).
SELECT role, action, result, vault, regexp_replace(detail, '[0-9a-f]{16}', '<id>') AS detail,
       count(*) AS n, bool_and(client_addr = 'local') AS local
FROM vault._access_log WHERE role LIKE 'regress_atk%'
GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4 NULLS FIRST, 5 NULLS FIRST;
-- Key sessions' events carry the key id (never the secret).
SELECT action, result, count(*) FILTER (WHERE key_id IS NOT NULL) AS with_key_id, count(*) AS n
FROM vault._access_log WHERE role = 'regress_atk_app' GROUP BY action, result ORDER BY action, result;
SELECT count(*) AS entries_holding_a_secret FROM vault._access_log l, atk_keys a
WHERE row_to_json(l)::text LIKE '%' || split_part(a.key, '_', 3) || '%';
SELECT count(*) AS entries_holding_a_password FROM vault._access_log l
WHERE row_to_json(l)::text LIKE '%atk-password%';
SELECT count(*) AS entries_holding_plaintext FROM vault._access_log l
WHERE row_to_json(l)::text LIKE '%SECRET%';

-- vault.access_log: the owner of atk_a and atk_b sees their entries (and its keys' logins),
-- nothing of other vaults; a grantee sees only its own key's logins; others see nothing.
SET ROLE regress_atk_admin;
SELECT DISTINCT vault FROM vault.access_log ORDER BY vault NULLS FIRST;
SELECT count(*) FILTER (WHERE vault IN ('atk_a', 'atk_b')) > 0 AS sees_its_vaults,
       count(*) FILTER (WHERE action = 'login' AND result = 'ok') > 0 AS sees_its_keys_logins
FROM vault.access_log;
RESET ROLE;
SET ROLE regress_atk_keyowner;
SELECT DISTINCT vault, action, result FROM vault.access_log ORDER BY 1, 2, 3;
RESET ROLE;
SET ROLE regress_atk_nobody;
SELECT count(*) AS entries FROM vault.access_log;
RESET ROLE;
SET ROLE regress_atk_bypass;
SELECT count(*) AS entries FROM vault.access_log;
RESET ROLE;
SELECT key AS key_a_admin FROM atk_keys WHERE name = 'a_admin' \gset
SET ROLE regress_atk_app;
SELECT vault.login(:'key_a_admin');
SELECT count(*) AS entries_for_an_admin_key FROM vault.access_log;
SELECT vault.logout();
RESET vector_vault.vault;
RESET ROLE;
SET ROLE regress_atk_breader;
SELECT count(*) AS entries FROM vault.access_log;
RESET ROLE;

-- DROP ROLE is refused while a role owns a vault, holds a grant or owns a live key (2BP01).
SELECT atk_try('DROP ROLE regress_atk_admin') AS owns_vaults;
SELECT atk_try('DROP ROLE regress_atk_breader') AS holds_a_grant;
SELECT atk_try('DROP ROLE regress_atk_admin, regress_atk_nobody') AS in_a_list;
SET ROLE regress_atk_admin;
SELECT vault.revoke('atk_a', 'regress_atk_keyowner');
SELECT vault.revoke('atk_b', 'regress_atk_keyowner');
RESET ROLE;
SELECT atk_try('DROP ROLE regress_atk_keyowner') AS owns_a_key;
SELECT rolname FROM pg_roles WHERE rolname IN ('regress_atk_admin', 'regress_atk_breader', 'regress_atk_nobody', 'regress_atk_keyowner') ORDER BY 1;

-- Clean up: revoke the keys, drop the vaults (their keys are shredded), drop the roles.
DROP TABLE atk_items, atk_query, atk_keys, atk_read_queries, atk_ct, atk_ct_text, atk_mgmt_queries;
SET ROLE regress_atk_keyowner;
SELECT count(vault.revoke_api_key(:'pw', key_id)) AS revoked FROM vault.api_keys WHERE revoked_at IS NULL;
RESET ROLE;
SET ROLE regress_atk_admin;
SELECT count(vault.revoke_api_key(:'pw', key_id)) AS revoked FROM vault.api_keys WHERE revoked_at IS NULL;
SELECT vault.drop_vault('atk_a');
SELECT vault.drop_vault('atk_b');
RESET ROLE;
REVOKE EXECUTE ON FUNCTION vault.create_vault(text) FROM regress_atk_admin;
REVOKE CREATE ON SCHEMA public FROM regress_atk_tblowner, regress_atk_admin;
DROP ROLE regress_atk_admin, regress_atk_keyowner, regress_atk_app, regress_atk_tblowner,
    regress_atk_bypass, regress_atk_nobody, regress_atk_breader, regress_atk_pwlimit,
    regress_atk_auditee;
-- The key-management passwords of the dropped roles and of the superuser (set in
-- 40_attack_1_setup) are removed by hand: nothing else removes them.
DELETE FROM vault._key_passwords
WHERE role::oid NOT IN (SELECT oid FROM pg_roles) OR role = current_user::regrole;
DROP FUNCTION atk_try(text), atk_error(text, text), atk_read(text, text), atk_dml(text),
    atk_principal(), atk_crc32(text), atk_forge(text, text), atk_reads(text[]), atk_fingerprint(),
    atk_writes(), atk_mgmt(text[]), atk_state(), atk_wait_for_log(bigint);
SELECT count(*) AS atk_vaults_left FROM vault._vaults WHERE name LIKE 'atk%' AND state = 'active';
