-- 42_round2_h5_nested_login: security round 2, finding H5. A function that an attacker's table
-- runs on the reader's behalf (an RLS policy, a trigger, a view, a column default, a domain
-- check) called vault.login(attacker_key): the reader's session then acted as the attacker's
-- key and vault, and the reader's next insert into a trusted table was sealed under the
-- attacker's vault. Fixed (src/auth/session_guard.cpp): vault.login and vault.logout must be
-- called directly in the client's own top-level SELECT without FROM, and vector_vault.vault may
-- change only by a top-level SET/RESET, a top-level "SELECT set_config(...)" without FROM,
-- vault.login itself, or configuration. Everything else is refused with 42501.
--
-- Each attack below is made while the victim (regress_h5_victim, logged in with a key of the
-- trusted vault h5_trusted) uses an object of the attacker (regress_h5_mallory, who owns the
-- vault h5_evil and a key of it); each asserts the refusal, and that the victim's principal
-- (vault.principal(), compared with the one recorded after its login: both keys print as
-- "api key <id>") and selected vault did not change. Key ids and secrets are random and never
-- printed.
SET client_min_messages = warning;
CREATE ROLE regress_h5_owner NOLOGIN;
CREATE ROLE regress_h5_victim NOLOGIN NOINHERIT;
CREATE ROLE regress_h5_mallory NOLOGIN;
GRANT EXECUTE ON FUNCTION vault.create_vault(text) TO regress_h5_owner, regress_h5_mallory;
GRANT CREATE ON SCHEMA public TO regress_h5_owner;
CREATE SCHEMA h5m AUTHORIZATION regress_h5_mallory;
GRANT USAGE ON SCHEMA h5m TO PUBLIC;
-- Keys, by name; superuser only.
CREATE TABLE h5_keys (name text PRIMARY KEY, key text NOT NULL);
REVOKE ALL ON h5_keys FROM PUBLIC;
GRANT INSERT ON h5_keys TO regress_h5_owner, regress_h5_mallory;
RESET client_min_messages;
\set pw 'h5-password-0001'

-- The trusted vault, a table of it the victim writes to, and the victim's key.
SET ROLE regress_h5_owner;
SELECT vault.create_vault('h5_trusted');
SELECT vault.set_key_password(:'pw');
INSERT INTO h5_keys VALUES ('victim', vault.create_api_key(:'pw', '{"h5_trusted": "write"}', 'victim'));
CREATE TABLE h5_notes (id int, body etext);
GRANT SELECT, INSERT ON h5_notes TO regress_h5_victim, regress_h5_mallory;
RESET ROLE;

-- The attacker's vault and key. The key is kept in a table of the attacker's that its code
-- reads (it could as well be written into the code).
SET ROLE regress_h5_mallory;
SELECT vault.create_vault('h5_evil');
SELECT vault.set_key_password(:'pw');
INSERT INTO h5_keys VALUES ('mallory', vault.create_api_key(:'pw', '{"h5_evil": "write"}', 'mallory'));
CREATE TABLE h5m.key (k text);
INSERT INTO h5m.key SELECT vault.create_api_key(:'pw', '{"h5_evil": "write"}', 'mallory 2');
GRANT SELECT ON h5m.key TO PUBLIC;
-- attack(how): what the attacker's code tries on the session that runs it.
CREATE FUNCTION h5m.attack(how text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE k text := (SELECT k FROM h5m.key);
BEGIN
    CASE how
    WHEN 'login' THEN PERFORM vault.login(k);
    WHEN 'logout' THEN PERFORM vault.logout();
    WHEN 'set_config' THEN PERFORM set_config('vector_vault.vault', 'h5_evil', false);
    WHEN 'set_local' THEN PERFORM set_config('vector_vault.vault', 'h5_evil', true);
    WHEN 'set' THEN EXECUTE 'SET vector_vault.vault = h5_evil';
    END CASE;
    RETURN true;
END
$$;
-- A function with a SET clause that selects the attacker's vault while it runs (a value sealed
-- inside it would be sealed under h5_evil). CREATE FUNCTION applies the SET clause to check the
-- body, so it is refused there already (42501); without that check (as pg_dump restores
-- functions) it is created, and refused when it runs (below).
CREATE FUNCTION h5m.in_evil_vault() RETURNS text LANGUAGE sql
SET vector_vault.vault = 'h5_evil' AS $$ SELECT current_setting('vector_vault.vault') $$;
SET check_function_bodies = off;
CREATE FUNCTION h5m.in_evil_vault() RETURNS text LANGUAGE sql
SET vector_vault.vault = 'h5_evil' AS $$ SELECT current_setting('vector_vault.vault') $$;
RESET check_function_bodies;
-- The stealthy variant: the attacker's code swallows any error, so the reader's query goes on;
-- what happened is recorded in h5m.outcome.
CREATE TABLE h5m.outcome (how text, outcome text);
GRANT INSERT ON h5m.outcome TO PUBLIC;
CREATE FUNCTION h5m.quiet_attack(how text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        PERFORM h5m.attack(how);
        INSERT INTO h5m.outcome VALUES (how, 'ok');
    EXCEPTION WHEN OTHERS THEN
        INSERT INTO h5m.outcome VALUES (how, SQLSTATE || ': ' || SQLERRM);
    END;
    RETURN true;
END
$$;
-- Tables with an RLS policy whose USING expression runs the attack, one per attack.
CREATE TABLE h5m.pol_login (id int);
CREATE TABLE h5m.pol_logout (id int);
CREATE TABLE h5m.pol_set_config (id int);
CREATE TABLE h5m.pol_set_local (id int);
CREATE TABLE h5m.pol_set (id int);
CREATE TABLE h5m.pol_set_clause (id int);
CREATE TABLE h5m.pol_quiet (id int);
CREATE POLICY p ON h5m.pol_login USING (h5m.attack('login'));
CREATE POLICY p ON h5m.pol_logout USING (h5m.attack('logout'));
CREATE POLICY p ON h5m.pol_set_config USING (h5m.attack('set_config'));
CREATE POLICY p ON h5m.pol_set_local USING (h5m.attack('set_local'));
CREATE POLICY p ON h5m.pol_set USING (h5m.attack('set'));
CREATE POLICY p ON h5m.pol_set_clause USING (h5m.in_evil_vault() IS NOT NULL);
CREATE POLICY p ON h5m.pol_quiet USING (h5m.quiet_attack('login') AND h5m.quiet_attack('logout')
                                        AND h5m.quiet_attack('set_config'));
ALTER TABLE h5m.pol_login ENABLE ROW LEVEL SECURITY;
ALTER TABLE h5m.pol_logout ENABLE ROW LEVEL SECURITY;
ALTER TABLE h5m.pol_set_config ENABLE ROW LEVEL SECURITY;
ALTER TABLE h5m.pol_set_local ENABLE ROW LEVEL SECURITY;
ALTER TABLE h5m.pol_set ENABLE ROW LEVEL SECURITY;
ALTER TABLE h5m.pol_set_clause ENABLE ROW LEVEL SECURITY;
ALTER TABLE h5m.pol_quiet ENABLE ROW LEVEL SECURITY;
INSERT INTO h5m.pol_login VALUES (1);
INSERT INTO h5m.pol_logout VALUES (1);
INSERT INTO h5m.pol_set_config VALUES (1);
INSERT INTO h5m.pol_set_local VALUES (1);
INSERT INTO h5m.pol_set VALUES (1);
INSERT INTO h5m.pol_set_clause VALUES (1);
INSERT INTO h5m.pol_quiet VALUES (1);
GRANT SELECT ON h5m.pol_login, h5m.pol_logout, h5m.pol_set_config, h5m.pol_set_local,
    h5m.pol_set, h5m.pol_set_clause, h5m.pol_quiet TO PUBLIC;
-- A trigger.
CREATE TABLE h5m.inbox (id int);
CREATE FUNCTION h5m.on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE done boolean;
BEGIN
    done := h5m.attack(TG_ARGV[0]);
    RETURN NEW;
END
$$;
CREATE TRIGGER t BEFORE INSERT ON h5m.inbox FOR EACH ROW EXECUTE FUNCTION h5m.on_insert('login');
GRANT INSERT ON h5m.inbox TO PUBLIC;
-- A view over a function.
CREATE FUNCTION h5m.rows() RETURNS SETOF int LANGUAGE plpgsql AS $$
DECLARE done boolean;
BEGIN
    done := h5m.attack('login');
    RETURN NEXT 1;
END
$$;
CREATE VIEW h5m.v AS SELECT * FROM h5m.rows() r;
GRANT SELECT ON h5m.v TO PUBLIC;
-- A column default.
CREATE TABLE h5m.defaults (id int, x boolean DEFAULT h5m.attack('login'));
GRANT INSERT ON h5m.defaults TO PUBLIC;
-- Domains: one whose CHECK calls the attack function, one whose CHECK calls vault.login itself
-- (the attacker's key written into it), so the call is made by the reader's own top-level
-- SELECT without FROM, not by nested SQL.
CREATE DOMAIN h5m.checked AS int CHECK (h5m.attack('login'));
DO $$
BEGIN
    EXECUTE format('CREATE DOMAIN h5m.checked_direct AS int CHECK (vault.login(%L) IS NOT NULL)',
                   (SELECT k FROM h5m.key));
    -- A SQL function wrapper that the planner inlines: the same direct call, under another name.
    EXECUTE format('CREATE FUNCTION h5m.wrapper() RETURNS text LANGUAGE sql AS %L',
                   format('SELECT vault.login(%L)', (SELECT k FROM h5m.key)));
    EXECUTE 'CREATE FUNCTION h5m.logout_wrapper() RETURNS void LANGUAGE sql AS ''SELECT vault.logout()''';
END
$$;
RESET ROLE;
CREATE FUNCTION pg_temp.explain_lines(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || q;
END
$$;
-- h5m.logout_wrapper and h5m.wrapper are inlined: their plans call vault.logout and vault.login
-- directly, with no nested executor (the attacker's key in the second plan is masked).
EXPLAIN (VERBOSE, COSTS OFF) SELECT h5m.logout_wrapper();
SELECT regexp_replace(string_agg(l, ' '), 'vv_[0-9a-f_]+', 'vv_<key>', 'g') AS wrapper_plan
FROM (SELECT * FROM pg_temp.explain_lines('SELECT h5m.wrapper()')) s(l);

SELECT key AS victim_key FROM h5_keys WHERE name = 'victim' \gset
SELECT key AS mallory_key FROM h5_keys WHERE name = 'mallory' \gset

-- Positive controls: the client's own top-level statements do change the principal and the
-- vault: a login (which selects the key's vault), SET, RESET, and SELECT set_config(...).
SET ROLE regress_h5_victim;
SELECT vault.login(:'victim_key');
SELECT regexp_replace(vault.principal(), '[0-9a-f]{16}', '<id>') AS principal,
       current_setting('vector_vault.vault') AS vault;
SET vector_vault.vault = 'h5_evil';
SELECT current_setting('vector_vault.vault') AS after_set;
SELECT set_config('vector_vault.vault', 'x', false);
SELECT current_setting('vector_vault.vault') AS after_set_config;
RESET vector_vault.vault;
SELECT current_setting('vector_vault.vault') AS after_reset;
SELECT set_config('vector_vault.vault', 'h5_trusted', false);
SELECT vault.principal() AS p0, current_setting('vector_vault.vault') AS v0 \gset
-- h5_state(): did the principal or the selected vault change since the victim's login?
CREATE FUNCTION pg_temp.h5_state(p0 text) RETURNS TABLE (same_principal boolean, vault text)
LANGUAGE sql AS $$ SELECT vault.principal() = p0, current_setting('vector_vault.vault') $$;
SELECT * FROM pg_temp.h5_state(:'p0');

-- An RLS policy of the attacker's table logs in with the attacker's key: refused.
SELECT count(*) FROM h5m.pol_login;
SELECT * FROM pg_temp.h5_state(:'p0');
-- ... logs out: refused.
SELECT count(*) FROM h5m.pol_logout;
SELECT * FROM pg_temp.h5_state(:'p0');
-- ... selects the attacker's vault with set_config(..., false), with set_config(..., true), or
-- with SET through EXECUTE: refused.
SELECT count(*) FROM h5m.pol_set_config;
SELECT * FROM pg_temp.h5_state(:'p0');
SELECT count(*) FROM h5m.pol_set_local;
SELECT * FROM pg_temp.h5_state(:'p0');
SELECT count(*) FROM h5m.pol_set;
SELECT * FROM pg_temp.h5_state(:'p0');
-- ... calls a function whose SET clause selects the attacker's vault: refused.
SELECT count(*) FROM h5m.pol_set_clause;
SELECT * FROM pg_temp.h5_state(:'p0');
-- The same attacks, swallowing the error: the reader's query goes on, and every attempt was
-- refused.
SELECT count(*) FROM h5m.pol_quiet;
SELECT * FROM pg_temp.h5_state(:'p0');
-- A trigger: refused.
INSERT INTO h5m.inbox VALUES (1);
SELECT * FROM pg_temp.h5_state(:'p0');
-- A view over a function: refused.
SELECT * FROM h5m.v;
SELECT * FROM pg_temp.h5_state(:'p0');
-- A column default: refused.
INSERT INTO h5m.defaults (id) VALUES (1);
SELECT * FROM pg_temp.h5_state(:'p0');
-- A domain CHECK, through the attack function and calling vault.login directly (in the
-- reader's own top-level SELECT without FROM): refused.
SELECT 1::h5m.checked;
SELECT * FROM pg_temp.h5_state(:'p0');
SELECT 1::h5m.checked_direct;
SELECT * FROM pg_temp.h5_state(:'p0');
-- An inlined SQL function wrapper, called by the reader's own top-level SELECT without FROM:
-- refused (the statement the client sent does not call vault.login / vault.logout).
SELECT h5m.wrapper();
SELECT * FROM pg_temp.h5_state(:'p0');
SELECT h5m.logout_wrapper();
SELECT * FROM pg_temp.h5_state(:'p0');
-- The attacker's function called directly, and its SET clause: refused.
SELECT h5m.attack('login');
SELECT * FROM pg_temp.h5_state(:'p0');
SELECT h5m.attack('set_config');
SELECT * FROM pg_temp.h5_state(:'p0');
SELECT h5m.in_evil_vault();
SELECT * FROM pg_temp.h5_state(:'p0');
-- The victim's next insert into its trusted table is sealed under h5_trusted.
INSERT INTO h5_notes VALUES (1, 'H5-SECRET-1');
SELECT vault.logout();
RESET vector_vault.vault;
RESET ROLE;
SELECT how, outcome FROM h5m.outcome ORDER BY how;
SELECT count(*) AS notes,
       bool_and(vault.vault_of(body) = (SELECT vault_id FROM vault._vaults
                                        WHERE name = 'h5_trusted' AND state = 'active')) AS sealed_under_trusted
FROM h5_notes;
-- And the attacker's key cannot read it (42501).
SET ROLE regress_h5_mallory;
SELECT vault.login(:'mallory_key');
SELECT body::text FROM h5_notes;
SELECT vault.logout();
RESET vector_vault.vault;
RESET ROLE;

-- Holes the first version of the guard had (src/auth/session_guard.cpp at 1d3ecbf), found while
-- writing this file and fixed since: each probe's "hijacked" line was t and is now f.
-- HOLE 1 (fixed: the running plan must be the active portal's, from the client's text): code the planner runs. An IMMUTABLE function in a policy is folded to a constant
-- while the reader's statement is planned, outside the executor hooks (nesting level 0): its
-- own SPI query "SELECT vault.login(k)" then counts as the client's top-level statement.
SET ROLE regress_h5_mallory;
CREATE FUNCTION h5m.imm_attack(how text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE done boolean;
BEGIN
    done := h5m.attack(how);
    RETURN true;
END
$$;
CREATE TABLE h5m.pol_imm_login (id int);
CREATE TABLE h5m.pol_imm_set (id int);
CREATE POLICY p ON h5m.pol_imm_login USING (h5m.imm_attack('login'));
CREATE POLICY p ON h5m.pol_imm_set USING (h5m.imm_attack('set_config'));
ALTER TABLE h5m.pol_imm_login ENABLE ROW LEVEL SECURITY;
ALTER TABLE h5m.pol_imm_set ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON h5m.pol_imm_login, h5m.pol_imm_set TO PUBLIC;
-- HOLE 1b: the same for a STABLE function that the planner evaluates to estimate selectivity.
CREATE FUNCTION h5m.stable_attack() RETURNS int LANGUAGE plpgsql STABLE AS $$
DECLARE done boolean;
BEGIN
    done := h5m.attack('login');
    RETURN 1;
END
$$;
CREATE TABLE h5m.pol_stable (id int);
CREATE POLICY p ON h5m.pol_stable USING (id = h5m.stable_attack());
ALTER TABLE h5m.pol_stable ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON h5m.pol_stable TO PUBLIC;
-- HOLE 2 (fixed, as HOLE 1): a deferred constraint trigger fires at the COMMIT of an autocommit statement, outside
-- the executor and utility hooks (nesting level 0).
CREATE TABLE h5m.deferred_inbox (id int);
CREATE CONSTRAINT TRIGGER t AFTER INSERT ON h5m.deferred_inbox DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION h5m.on_insert('login');
GRANT INSERT ON h5m.deferred_inbox TO PUBLIC;
-- HOLE 3 (fixed: the plan must call the function exactly as often as the client's text does): the
-- client-text check matched the name only: a top-level SELECT in which the client
-- does call vault.login (or set_config) also lets an inlined SQL function of the attacker's in
-- the same statement call it.
CREATE FUNCTION h5m.sql_set() RETURNS text LANGUAGE sql
AS $$ SELECT set_config('vector_vault.vault', 'h5_evil', false) $$;
RESET ROLE;
SET ROLE regress_h5_victim;
SELECT vault.login(:'victim_key');
SELECT count(*) FROM h5m.pol_imm_login;
SELECT NOT same_principal AS hijacked, vault FROM pg_temp.h5_state(:'p0');
SELECT vault.logout();
SELECT vault.login(:'victim_key');
SELECT count(*) FROM h5m.pol_imm_set;
SELECT NOT same_principal OR vault IS DISTINCT FROM :'v0' AS hijacked, vault FROM pg_temp.h5_state(:'p0');
SELECT vault.logout();
SELECT vault.login(:'victim_key');
SELECT count(*) FROM h5m.pol_stable;
SELECT NOT same_principal AS hijacked, vault FROM pg_temp.h5_state(:'p0');
SELECT vault.logout();
SELECT vault.login(:'victim_key');
INSERT INTO h5m.deferred_inbox VALUES (1);
SELECT NOT same_principal AS hijacked, vault FROM pg_temp.h5_state(:'p0');
-- (still logged in with the victim's key: the combined statement is refused as a whole, so the
-- session stays the victim's)
SELECT vault.login(:'victim_key') AS mine, h5m.wrapper() AS theirs;
SELECT NOT same_principal AS hijacked, vault FROM pg_temp.h5_state(:'p0');
SELECT vault.logout();
SELECT vault.login(:'victim_key');
SELECT set_config('vector_vault.vault', 'h5_trusted', false) AS mine, h5m.sql_set() AS theirs;
SELECT NOT same_principal OR vault IS DISTINCT FROM :'v0' AS hijacked, vault FROM pg_temp.h5_state(:'p0');
SELECT vault.logout();
RESET vector_vault.vault;
RESET ROLE;

-- Clean up.
DROP FUNCTION pg_temp.h5_state(text), pg_temp.explain_lines(text);
SET client_min_messages = warning;
DROP SCHEMA h5m CASCADE;
RESET client_min_messages;
DROP TABLE h5_notes, h5_keys;
UPDATE vault._api_keys SET revoked_at = now() WHERE revoked_at IS NULL
    AND owner IN ('regress_h5_owner'::regrole, 'regress_h5_mallory'::regrole);
SET ROLE regress_h5_owner;
SELECT vault.drop_vault('h5_trusted');
RESET ROLE;
SET ROLE regress_h5_mallory;
SELECT vault.drop_vault('h5_evil');
RESET ROLE;
REVOKE EXECUTE ON FUNCTION vault.create_vault(text) FROM regress_h5_owner, regress_h5_mallory;
REVOKE CREATE ON SCHEMA public FROM regress_h5_owner;
DROP ROLE regress_h5_owner, regress_h5_victim, regress_h5_mallory;
DELETE FROM vault._key_passwords WHERE role::oid NOT IN (SELECT oid FROM pg_roles);
