-- 41_round2_h1_privileged: security round 2, finding H1 (critical). The vault-cache loader
-- (src/vault/catalog.cpp, Load) switched to the extension owner and ran SQL that named the type
-- "oid" (owner::oid) with the caller's search_path, outside a security-restricted operation: a
-- domain pg_temp.oid with a CHECK calling the caller's function ran that function as the
-- extension owner (a superuser), and any login role became superuser. Fixed: the loader runs no
-- SQL at all (heap scans of vault.* tables, src/pg/catalog_scan.cpp); the remaining privileged
-- statements pin search_path to pg_catalog, pg_temp and run security-restricted
-- (src/pg/privileged.cpp). test/t/022_shadowing.pl plants shadows of every identifier the
-- extension's internal SQL uses; this file keeps the review's exact reproduction.
SET client_min_messages = warning;
CREATE ROLE regress_h1_mallory LOGIN;
CREATE ROLE regress_h1_owner NOLOGIN;
GRANT EXECUTE ON FUNCTION vault.create_vault(text) TO regress_h1_owner;
-- Every planted function reports here; anyone may insert (the planted code runs as whoever
-- calls it, and must never run at all).
CREATE TABLE h1_canary (who text, what text);
GRANT INSERT, SELECT, DELETE ON h1_canary TO PUBLIC;
RESET client_min_messages;

SET ROLE regress_h1_owner;
SELECT vault.create_vault('h1_vault');
RESET ROLE;

-- The review's reproduction: an ordinary role with only the default TEMP right.
SET ROLE regress_h1_mallory;
CREATE FUNCTION pg_temp.pwn(x oid) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.h1_canary VALUES (current_user, 'oid domain check');
    BEGIN
        EXECUTE 'ALTER ROLE regress_h1_mallory SUPERUSER';
    EXCEPTION WHEN insufficient_privilege THEN NULL;
    END;
    RETURN true;
END $$;
CREATE DOMAIN pg_temp.oid AS pg_catalog.oid CHECK (pg_temp.pwn(VALUE));
-- Positive control: the planted domain does run the planted code for this session's own SQL
-- (as regress_h1_mallory, so its ALTER ROLE fails and is caught).
SELECT 1::oid AS control;
SELECT who, what FROM h1_canary;
DELETE FROM h1_canary;
-- The attack: every function that loads the vault cache.
SELECT vault.access_level('anything');
SELECT vault.access_level('h1_vault');
SELECT vault.vault_id('h1_vault');
SELECT count(*) >= 0 AS listed FROM vault.vaults;
RESET ROLE;
SELECT rolsuper AS mallory_is_superuser FROM pg_roles WHERE rolname = 'regress_h1_mallory';
SELECT count(*) AS planted_code_ran FROM h1_canary;

-- The same with other names the loader's SQL used to resolve: text, bigint, integer, regrole,
-- timestamptz, bytea, as domains in pg_temp, for a session logged in with an API key too.
SET ROLE regress_h1_owner;
SELECT vault.set_key_password('h1-password-0001');
CREATE TEMP TABLE h1_key AS SELECT vault.create_api_key('h1-password-0001', '{"h1_vault": "read"}') AS k;
GRANT SELECT ON h1_key TO regress_h1_mallory;
SELECT k AS h1_key FROM h1_key \gset
RESET ROLE;
SET ROLE regress_h1_mallory;
CREATE FUNCTION pg_temp.pwn_any(x anyelement) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.h1_canary VALUES (current_user, 'domain check ' || pg_typeof(x));
    RETURN true;
END $$;
CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (pg_temp.pwn_any(VALUE));
CREATE DOMAIN pg_temp.int8 AS pg_catalog.int8 CHECK (pg_temp.pwn_any(VALUE));
CREATE DOMAIN pg_temp.bigint AS pg_catalog.int8 CHECK (pg_temp.pwn_any(VALUE));
CREATE DOMAIN pg_temp.int4 AS pg_catalog.int4 CHECK (pg_temp.pwn_any(VALUE));
CREATE DOMAIN pg_temp.regrole AS pg_catalog.regrole CHECK (pg_temp.pwn_any(VALUE));
CREATE DOMAIN pg_temp.timestamptz AS pg_catalog.timestamptz CHECK (pg_temp.pwn_any(VALUE));
CREATE DOMAIN pg_temp.bytea AS pg_catalog.bytea CHECK (pg_temp.pwn_any(VALUE));
SELECT vault.login(:'h1_key') IS NULL AS logged_in;
SELECT vault.access_level('h1_vault');
SELECT vault.logout();
RESET ROLE;
SELECT rolsuper AS mallory_is_superuser FROM pg_roles WHERE rolname = 'regress_h1_mallory';
SELECT count(*) AS planted_code_ran FROM h1_canary;
SELECT who, what FROM h1_canary;

SET client_min_messages = warning;
SET ROLE regress_h1_owner;
SELECT vault.drop_vault('h1_vault');
RESET ROLE;
DISCARD TEMP;
DROP TABLE h1_canary;
DROP ROLE regress_h1_mallory;
RESET client_min_messages;
