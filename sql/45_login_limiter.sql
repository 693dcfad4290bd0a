-- 45_login_limiter: failed vault.login attempts are limited per client, not per key id alone.
-- The clients here are Unix-socket sessions, which the limiter tells apart by their login role
-- (SET SESSION AUTHORIZATION changes it); every vault.login is a top-level statement.
--
-- Security round 3 (issue 14), "forged logins lock out a real key": on c9ba3cb five wrong
-- secrets for a known key id (valid checksum) from one client blocked that key for every
-- client for a minute. Now they block it for that client only; another client logs in.
-- Issue 14, "malformed logins are not rate-limited on Unix sockets": on c9ba3cb
-- vault.login('x') was never limited on a Unix socket; now five malformed keys block the client.
-- Unknown key ids count against the client too (not against any key): on c9ba3cb each made-up
-- id had a counter of its own, so a client could try any number of them.
-- The flood part of security round 2 H6 (10,000 failures) is test/t/061_login_limiter.pl.

\set VERBOSITY terse
\set pw 'atk-password-0001'
CREATE ROLE regress_lim_owner NOLOGIN;
CREATE ROLE regress_lim_app NOLOGIN;
CREATE ROLE regress_lim_mallory NOLOGIN;
CREATE ROLE regress_lim_other NOLOGIN;
GRANT EXECUTE ON FUNCTION vault.create_vault(text) TO regress_lim_owner;
SET ROLE regress_lim_owner;
SELECT vault.create_vault('lim_v');
SELECT vault.set_key_password(:'pw');
SELECT vault.create_api_key(:'pw', '{"lim_v": "read"}', 'limiter') AS lim_key \gset
RESET ROLE;
SELECT split_part(:'lim_key', '_', 2) AS lim_id \gset

-- lim_forge(key_id, secret_hex): a well-formed key (valid CRC-32 checksum) for any id and secret.
CREATE FUNCTION lim_crc32(t text) RETURNS bigint LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    crc bigint := 4294967295;
    b bytea := convert_to(t, 'UTF8');
BEGIN
    FOR i IN 0 .. length(b) - 1 LOOP
        crc := crc # get_byte(b, i);
        FOR k IN 1 .. 8 LOOP
            IF crc & 1 = 1 THEN crc := (crc >> 1) # 3988292384; ELSE crc := crc >> 1; END IF;
        END LOOP;
    END LOOP;
    RETURN crc # 4294967295;
END
$$;
CREATE FUNCTION lim_forge(key_id text, secret_hex text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT format('vv_%s_%s_%s', key_id, secret_hex,
                  lpad(to_hex(lim_crc32(format('vv_%s_%s', key_id, secret_hex))), 8, '0'))
$$;
GRANT EXECUTE ON FUNCTION lim_crc32(text), lim_forge(text, text) TO PUBLIC;

-- Issue 14, forged logins. Mallory (one client) tries five forged secrets for the real key id
-- (28P01 each) ...
SET SESSION AUTHORIZATION regress_lim_mallory;
SELECT vault.login(lim_forge(:'lim_id', repeat('1', 40)));
SELECT vault.login(lim_forge(:'lim_id', repeat('2', 40)));
SELECT vault.login(lim_forge(:'lim_id', repeat('3', 40)));
SELECT vault.login(lim_forge(:'lim_id', repeat('4', 40)));
SELECT vault.login(lim_forge(:'lim_id', repeat('5', 40)));
-- ... and is then refused that key without a check, even with the right secret (28000).
SELECT vault.login(:'lim_key');
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
RESET SESSION AUTHORIZATION;
-- Another client is not locked out: the real key logs in (on c9ba3cb: 28000, blocked).
SET SESSION AUTHORIZATION regress_lim_app;
SELECT vault.login(:'lim_key') AS app_logs_in;
SELECT vault.logout();
RESET vector_vault.vault;
RESET SESSION AUTHORIZATION;

-- Issue 14, malformed logins on a Unix socket: five, then the client is refused (28000) ...
SET SESSION AUTHORIZATION regress_lim_mallory;
SELECT vault.login('x');
SELECT vault.login('x');
SELECT vault.login('x');
SELECT vault.login('x');
SELECT vault.login('x');
SELECT vault.login('x');
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
RESET SESSION AUTHORIZATION;
-- ... which blocks only that client: another local client's malformed key is just malformed,
-- and the real key still logs in for the app.
SET SESSION AUTHORIZATION regress_lim_other;
SELECT vault.login('x');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_lim_app;
SELECT vault.login(:'lim_key') AS app_logs_in;
SELECT vault.logout();
RESET vector_vault.vault;
RESET SESSION AUTHORIZATION;

-- Unknown key ids count against the client: four made-up ids after the malformed key above,
-- then this client is refused every login, the right key included (28000) ...
SET SESSION AUTHORIZATION regress_lim_other;
SELECT vault.login(lim_forge('00000000000000a1', repeat('0', 40)));
SELECT vault.login(lim_forge('00000000000000a2', repeat('0', 40)));
SELECT vault.login(lim_forge('00000000000000a3', repeat('0', 40)));
SELECT vault.login(lim_forge('00000000000000a4', repeat('0', 40)));
SELECT vault.login(:'lim_key');
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
RESET SESSION AUTHORIZATION;
-- ... while the key itself was not charged: the app still logs in.
SET SESSION AUTHORIZATION regress_lim_app;
SELECT vault.login(:'lim_key') AS app_logs_in;
SELECT vault.logout();
RESET vector_vault.vault;
RESET SESSION AUTHORIZATION;
