-- 40_attack_5_login: logging in with API keys. Malformed keys are refused (28P01) before any
-- lookup; unknown, forged, revoked, expired and rotated-out keys are refused (28P01);
-- vault.login selects a key's single vault; vault.principal() and vault.logout(); logins
-- scoped to a transaction end at COMMIT and at ROLLBACK, and a session login made in a
-- transaction that rolls back is undone; a session key that expires stops working on the next
-- statement; rotation with an overlap keeps both secrets working, with no overlap only the new
-- one; vault.api_keys shows no secret and only SHA-256 digests are stored; wrong passwords are
-- refused (28P01); five failed logins for a key id block it (28000), also for the right key.
--
-- Failed logins also count per client address (here every client is "local"): five in a row
-- would block every login for a minute. After every few failures the file logs in and out with
-- a key of its own (key_clear, "atk_clear"), which resets the address's counter (not the other
-- keys' counters).
--
-- Since security round 2 (H5) vault.login and vault.logout must be the client's own top-level
-- statements: each login is sent directly, and a failed one is shown by atk_error() right
-- after it (SQLSTATE and message, "LEAK!" as atk_try did; psql prints its detail and hint).

\set pw 'atk-password-0001'
SELECT key AS key_a_read FROM atk_keys WHERE name = 'a_read' \gset
SELECT key AS key_ab_read FROM atk_keys WHERE name = 'ab_read' \gset
SELECT key AS key_c_write FROM atk_keys WHERE name = 'c_write' \gset
SELECT key AS key_revoked FROM atk_keys WHERE name = 'revoked' \gset
SELECT key AS key_expired FROM atk_keys WHERE name = 'expired' \gset
SELECT key AS key_rotate FROM atk_keys WHERE name = 'rotate' \gset
SELECT key AS key_rate FROM atk_keys WHERE name = 'rate' \gset
SELECT key AS key_clear FROM atk_keys WHERE name = 'clear' \gset
SELECT split_part(key, '_', 2) AS rotate_id FROM atk_keys WHERE name = 'rotate' \gset
SELECT split_part(key, '_', 2) AS rate_id FROM atk_keys WHERE name = 'rate' \gset

SET ROLE regress_atk_app;

-- Malformed keys: 28P01 "malformed API key" (the detail says why; the key is never echoed).
SELECT vault.login(left(:'key_a_read', -1));
SELECT atk_error(:'SQLSTATE', :'LAST_ERROR_MESSAGE') AS too_short;
SELECT vault.login(:'key_a_read' || '0');
SELECT atk_error(:'SQLSTATE', :'LAST_ERROR_MESSAGE') AS too_long;
SELECT vault.login(left(:'key_a_read', -1)
    || CASE WHEN right(:'key_a_read', 1) = '0' THEN '1' ELSE '0' END);
SELECT atk_error(:'SQLSTATE', :'LAST_ERROR_MESSAGE') AS bad_checksum;
SELECT vault.login(:'key_clear') AS atk_clear;
SELECT vault.logout();
SELECT vault.login('xx' || substr(:'key_a_read', 3));
SELECT atk_error(:'SQLSTATE', :'LAST_ERROR_MESSAGE') AS bad_prefix;
SELECT vault.login(upper(:'key_a_read'));
SELECT atk_error(:'SQLSTATE', :'LAST_ERROR_MESSAGE') AS upper_case;
SELECT vault.login('');
SELECT atk_error(:'SQLSTATE', :'LAST_ERROR_MESSAGE') AS empty;
SELECT vault.login(:'key_clear') AS atk_clear;
SELECT vault.logout();
SELECT vault.login(:'pw');
SELECT atk_error(:'SQLSTATE', :'LAST_ERROR_MESSAGE') AS a_password;
SELECT vault.login(NULL);
SELECT atk_error(:'SQLSTATE', :'LAST_ERROR_MESSAGE') AS null_key;
-- Well-formed but wrong: an unknown key id, and a known id with a forged secret.
SELECT vault.login(atk_forge(repeat('0', 16), repeat('0', 40)));
SELECT atk_error(:'SQLSTATE', :'LAST_ERROR_MESSAGE') AS unknown_id;
SELECT vault.login(:'key_clear') AS atk_clear;
SELECT vault.logout();
SELECT vault.login(atk_forge(split_part(:'key_a_read', '_', 2), repeat('ab', 20)));
SELECT atk_error(:'SQLSTATE', :'LAST_ERROR_MESSAGE') AS forged_secret;
-- Revoked and expired keys.
SELECT vault.login(:'key_revoked');
SELECT atk_error(:'SQLSTATE', :'LAST_ERROR_MESSAGE') AS revoked;
SELECT vault.login(:'key_expired');
SELECT atk_error(:'SQLSTATE', :'LAST_ERROR_MESSAGE') AS expired;
SELECT vault.login(:'key_clear') AS atk_clear;
SELECT vault.logout();
SELECT atk_principal();

-- A key with one vault selects it; vault.principal() names the key (never the secret).
SELECT vault.login(:'key_a_read');
SELECT atk_principal(), current_setting('vector_vault.vault') AS vault,
       position(split_part(:'key_a_read', '_', 3) IN vault.principal()) = 0 AS no_secret_shown;
SELECT atk_read('SELECT body::text FROM atk_items ORDER BY id') AS reads;
SELECT vault.logout();
SELECT atk_principal(), atk_read('SELECT body::text FROM atk_items ORDER BY id') AS reads;
-- Logging out twice is harmless.
SELECT vault.logout();
RESET vector_vault.vault;
-- A key with two vaults selects none; a key whose only vault was dropped logs in, selects none.
SELECT vault.login(:'key_ab_read') IS NULL AS none_selected, current_setting('vector_vault.vault') AS vault;
SELECT atk_read('SELECT id FROM atk_items ORDER BY id') AS reads;
SELECT vault.login(:'key_c_write') IS NULL AS none_selected, current_setting('vector_vault.vault') AS vault;
SELECT atk_read('SELECT id FROM atk_items ORDER BY id') AS reads;
SELECT vault.logout();

-- A transaction-scoped login ends at COMMIT: the next transaction (pooled, without its own
-- login) acts as the role and reads nothing; the vault it selected is reset too.
BEGIN;
SELECT vault.login(:'key_a_read', true);
SELECT atk_principal(), current_setting('vector_vault.vault') AS vault;
SELECT atk_read('SELECT body::text FROM atk_items ORDER BY id') AS reads;
COMMIT;
BEGIN;
SELECT atk_principal(), current_setting('vector_vault.vault') AS vault;
SELECT atk_read('SELECT body::text FROM atk_items ORDER BY id') AS reads;
COMMIT;
-- ... and at ROLLBACK.
BEGIN;
SELECT vault.login(:'key_a_read', true);
SELECT atk_read('SELECT count(*) FROM atk_items') AS rows;
ROLLBACK;
SELECT atk_principal(), atk_read('SELECT count(*) FROM atk_items') AS rows;
-- Outside a transaction block it lasts one statement.
SELECT vault.login(:'key_a_read', true);
SELECT atk_principal(), atk_read('SELECT count(*) FROM atk_items') AS rows;
-- A session login made in a transaction that rolls back is undone, vault selection included.
BEGIN;
SELECT vault.login(:'key_a_read');
ROLLBACK;
SELECT atk_principal(), current_setting('vector_vault.vault') AS vault;
-- So is a logout: the session key is back after the rollback.
SELECT vault.login(:'key_a_read');
BEGIN;
SELECT vault.logout();
SELECT atk_principal();
ROLLBACK;
SELECT atk_principal();
-- A failed login leaves the session key in place.
SELECT vault.login(:'key_revoked');
SELECT atk_error(:'SQLSTATE', :'LAST_ERROR_MESSAGE') AS revoked;
SELECT atk_principal();
SELECT vault.logout();
RESET vector_vault.vault;
SELECT vault.login(:'key_clear') AS atk_clear;
SELECT vault.logout();
RESET ROLE;

-- A session key that expires stops working on the session's next statement (42501, "no
-- longer valid: it expired"), and cannot log in again (28P01).
SET ROLE regress_atk_admin;
SELECT vault.create_api_key(:'pw', '{"atk_a": "read"}', 'expiring', now() + interval '3 seconds') AS key_expiring \gset
SELECT expires_at AS expiring_at FROM vault.api_keys WHERE label = 'expiring' \gset
RESET ROLE;
SET ROLE regress_atk_app;
SELECT vault.login(:'key_expiring');
SELECT atk_read('SELECT count(*) FROM atk_items') AS before_expiry;
SELECT pg_sleep_until(:'expiring_at'::timestamptz + interval '100 milliseconds');
-- The policy now hides every row; anything that still decrypts says why.
SELECT atk_read('SELECT count(*) FROM atk_items') AS rows_after_expiry;
SELECT atk_read($$SELECT q::text FROM atk_query WHERE vault = 'atk_a'$$) AS decrypt_after_expiry;
SELECT atk_read('SELECT id FROM atk_items ORDER BY embedding <-> (SELECT q FROM atk_query WHERE vault = ''atk_a'') LIMIT 3', 'index') AS search_after_expiry;
SELECT vault.logout();
SELECT vault.login(:'key_expiring');
SELECT atk_error(:'SQLSTATE', :'LAST_ERROR_MESSAGE') AS login_again;
SELECT vault.login(:'key_clear') AS atk_clear;
SELECT vault.logout();
RESET vector_vault.vault;
RESET ROLE;

-- Rotation with an overlap: the old and the new secret both log in until the overlap ends.
SET ROLE regress_atk_admin;
SELECT vault.rotate_api_key(:'pw', :'rotate_id', '1 hour') AS key_rotate2 \gset
SELECT label, previous_secret_valid_until > now() + interval '59 minutes' AS overlap_set
FROM vault.api_keys WHERE label = 'to rotate';
RESET ROLE;
SELECT split_part(:'key_rotate2', '_', 2) = :'rotate_id' AS same_id, :'key_rotate2' <> :'key_rotate' AS new_secret;
SET ROLE regress_atk_app;
SELECT vault.login(:'key_rotate') AS old_secret;
SELECT vault.login(:'key_rotate2') AS new_secret;
SELECT vault.logout();
RESET ROLE;
-- Rotation with no overlap: only the newest secret works.
SET ROLE regress_atk_admin;
SELECT vault.rotate_api_key(:'pw', :'rotate_id') AS key_rotate3 \gset
RESET ROLE;
SET ROLE regress_atk_app;
SELECT vault.login(:'key_rotate');
SELECT atk_error(:'SQLSTATE', :'LAST_ERROR_MESSAGE') AS first_secret;
SELECT vault.login(:'key_rotate2');
SELECT atk_error(:'SQLSTATE', :'LAST_ERROR_MESSAGE') AS second_secret;
SELECT vault.login(:'key_rotate3') AS third_secret;
SELECT vault.logout();
RESET vector_vault.vault;
RESET ROLE;
-- A revoked key cannot be rotated back to life.
SELECT split_part(key, '_', 2) AS revoked_id FROM atk_keys WHERE name = 'revoked' \gset
SET ROLE regress_atk_admin;
SELECT atk_try(format('SELECT vault.rotate_api_key(%L, %L)', :'pw', :'revoked_id')) AS rotate_revoked;
RESET ROLE;

-- Wrong key-management passwords: 28P01 for every key-management function.
SET ROLE regress_atk_admin;
SELECT atk_try(format($$SELECT vault.create_api_key(%L, '{"atk_a": "read"}')$$, 'atk-password-9999')) AS create_key;
SELECT atk_try(format('SELECT vault.rotate_api_key(%L, %L)', 'atk-password-9999', :'rotate_id')) AS rotate_key;
SELECT vault.login(:'key_clear') AS atk_clear;
SELECT vault.logout();
SELECT atk_try(format('SELECT vault.revoke_api_key(%L, %L)', 'atk-password-9999', :'rotate_id')) AS revoke_key;
SELECT atk_try(format('SELECT vault.set_key_password(%L, %L)', 'atk-password-0002', 'atk-password-9999')) AS change_password;
SELECT vault.login(:'key_clear') AS atk_clear;
SELECT vault.logout();
-- Too short a new password is refused (22023).
SELECT atk_try(format('SELECT vault.set_key_password(%L, %L)', 'short', :'pw')) AS short_password;
RESET ROLE;

-- vault.api_keys shows ids, labels, vaults and dates, never a secret; the catalog keeps only
-- the SHA-256 of each secret (of the newest one for a rotated key), and no password.
SELECT string_agg(column_name, ', ' ORDER BY ordinal_position) AS api_keys_columns
FROM information_schema.columns WHERE table_schema = 'vault' AND table_name = 'api_keys';
SELECT count(*) AS views_showing_a_secret FROM vault.api_keys k, atk_keys a
WHERE row_to_json(k)::text LIKE '%' || split_part(a.key, '_', 3) || '%';
SELECT count(*) AS catalog_rows_holding_a_secret FROM vault._api_keys k, atk_keys a
WHERE row_to_json(k)::text LIKE '%' || split_part(a.key, '_', 3) || '%'
   OR encode(k.secret_hash, 'hex') LIKE '%' || split_part(a.key, '_', 3) || '%';
SELECT a.name, k.secret_hash = sha256(decode(split_part(a.key, '_', 3), 'hex')) AS digest_matches
FROM atk_keys a JOIN vault._api_keys k ON k.key_id = split_part(a.key, '_', 2) ORDER BY a.name;
SELECT sha256(decode(split_part(:'key_rotate3', '_', 3), 'hex')) = secret_hash AS rotated_digest_matches
FROM vault._api_keys WHERE key_id = :'rotate_id';
SELECT count(*) AS password_rows_holding_it FROM vault._key_passwords kp
WHERE row_to_json(kp)::text LIKE '%' || :'pw' || '%'
   OR position(convert_to(:'pw', 'UTF8') IN kp.hash) > 0 OR kp.hash = sha256(convert_to(:'pw', 'UTF8'));
-- A key session sees no keys at all.
SET ROLE regress_atk_app;
SELECT vault.login(:'key_a_read');
SELECT count(*) AS keys_visible FROM vault.api_keys;
SELECT vault.logout();
RESET vector_vault.vault;
RESET ROLE;

-- Rate limiting: five failed logins for one key id, then the right key is refused too (28000).
-- Malformed keys never reach the lookup, so they do not count against the key id: two of them
-- first, then four forged secrets, and the right key still works (which resets the counter).
SET ROLE regress_atk_app;
SELECT vault.login(left(:'key_rate', -1) || 'x');
SELECT atk_error(:'SQLSTATE', :'LAST_ERROR_MESSAGE') AS malformed_1;
SELECT vault.login(left(:'key_rate', -2));
SELECT atk_error(:'SQLSTATE', :'LAST_ERROR_MESSAGE') AS malformed_2;
SELECT vault.login(:'key_clear') AS atk_clear;
SELECT vault.logout();
SELECT vault.login(atk_forge(:'rate_id', repeat('1', 40)));
SELECT atk_error(:'SQLSTATE', :'LAST_ERROR_MESSAGE') AS forged_1;
SELECT vault.login(atk_forge(:'rate_id', repeat('2', 40)));
SELECT atk_error(:'SQLSTATE', :'LAST_ERROR_MESSAGE') AS forged_2;
SELECT vault.login(:'key_clear') AS atk_clear;
SELECT vault.logout();
SELECT vault.login(atk_forge(:'rate_id', repeat('3', 40)));
SELECT atk_error(:'SQLSTATE', :'LAST_ERROR_MESSAGE') AS forged_3;
SELECT vault.login(atk_forge(:'rate_id', repeat('4', 40)));
SELECT atk_error(:'SQLSTATE', :'LAST_ERROR_MESSAGE') AS forged_4;
SELECT vault.login(:'key_clear') AS atk_clear;
SELECT vault.logout();
SELECT vault.login(:'key_rate') AS right_key_after_four;
SELECT vault.logout();
-- Now five forged secrets (the address counter reset in between), then the right key: blocked.
SELECT vault.login(atk_forge(:'rate_id', repeat('5', 40)));
SELECT atk_error(:'SQLSTATE', :'LAST_ERROR_MESSAGE') AS forged_5;
SELECT vault.login(atk_forge(:'rate_id', repeat('6', 40)));
SELECT atk_error(:'SQLSTATE', :'LAST_ERROR_MESSAGE') AS forged_6;
SELECT vault.login(:'key_clear') AS atk_clear;
SELECT vault.logout();
SELECT vault.login(atk_forge(:'rate_id', repeat('7', 40)));
SELECT atk_error(:'SQLSTATE', :'LAST_ERROR_MESSAGE') AS forged_7;
SELECT vault.login(atk_forge(:'rate_id', repeat('8', 40)));
SELECT atk_error(:'SQLSTATE', :'LAST_ERROR_MESSAGE') AS forged_8;
SELECT vault.login(:'key_clear') AS atk_clear;
SELECT vault.logout();
SELECT vault.login(atk_forge(:'rate_id', repeat('9', 40)));
SELECT atk_error(:'SQLSTATE', :'LAST_ERROR_MESSAGE') AS forged_9;
SELECT vault.login(:'key_rate');
SELECT atk_error(:'SQLSTATE', :'LAST_ERROR_MESSAGE') AS right_key_after_five;
SELECT atk_principal();
-- Other keys are not affected.
SELECT vault.login(:'key_clear') AS atk_clear;
SELECT vault.logout();
RESET vector_vault.vault;
RESET ROLE;

-- The same for key-management passwords, per role: five wrong ones, then the right one is
-- refused (28000) and the password is not changed.
CREATE ROLE regress_atk_pwlimit NOLOGIN;
SET ROLE regress_atk_pwlimit;
SELECT vault.set_key_password(:'pw');
RESET ROLE;
SELECT set_at AS pwlimit_set_at FROM vault._key_passwords WHERE role = 'regress_atk_pwlimit'::regrole \gset
SET ROLE regress_atk_pwlimit;
SELECT atk_try(format('SELECT vault.set_key_password(%L, %L)', 'atk-password-0002', 'atk-password-9991')) AS wrong_1;
SELECT atk_try(format('SELECT vault.set_key_password(%L, %L)', 'atk-password-0002', 'atk-password-9992')) AS wrong_2;
SELECT vault.login(:'key_clear') AS atk_clear;
SELECT vault.logout();
SELECT atk_try(format('SELECT vault.set_key_password(%L, %L)', 'atk-password-0002', 'atk-password-9993')) AS wrong_3;
SELECT atk_try(format('SELECT vault.set_key_password(%L, %L)', 'atk-password-0002', 'atk-password-9994')) AS wrong_4;
SELECT vault.login(:'key_clear') AS atk_clear;
SELECT vault.logout();
SELECT atk_try(format('SELECT vault.set_key_password(%L, %L)', 'atk-password-0002', 'atk-password-9995')) AS wrong_5;
SELECT atk_try(format('SELECT vault.set_key_password(%L, %L)', 'atk-password-0002', :'pw')) AS right_one;
SELECT vault.login(:'key_clear') AS atk_clear;
SELECT vault.logout();
RESET vector_vault.vault;
RESET ROLE;
SELECT set_at = :'pwlimit_set_at' AS password_unchanged FROM vault._key_passwords
WHERE role = 'regress_atk_pwlimit'::regrole;
