-- 40_attack_4_escalate: trying to gain rights instead of using them: vault.grant, vault.revoke,
-- vault.drop_vault, vault.create_vault, key management, the catalog tables, a SECURITY DEFINER
-- function the attacker writes, and search_path tricks (a schema of functions and operators
-- named like the extension's, searched first). Every attempt fails with 42501 (28P01 for bad
-- passwords, 42704 for someone else's key) or changes nothing.

\set pw 'atk-password-0001'
SELECT key AS key_a_read FROM atk_keys WHERE name = 'a_read' \gset
SELECT key AS key_a_admin FROM atk_keys WHERE name = 'a_admin' \gset
SELECT key AS key_b_write FROM atk_keys WHERE name = 'b_write' \gset
SELECT key AS key_revoked FROM atk_keys WHERE name = 'revoked' \gset
SELECT split_part(key, '_', 2) AS a_read_id FROM atk_keys WHERE name = 'a_read' \gset

-- The attackers without keys get a key-management password of their own, so that key
-- management fails on rights, not on the password.
SET ROLE regress_atk_nobody;
SELECT vault.set_key_password(:'pw');
SET ROLE regress_atk_tblowner;
SELECT vault.set_key_password(:'pw');
SET ROLE regress_atk_bypass;
SELECT vault.set_key_password(:'pw');
RESET ROLE;

-- The management attempts, as (attempt, outcome) for the current principal.
CREATE TABLE atk_mgmt_queries (ord int PRIMARY KEY, label text, q text);
GRANT SELECT ON atk_mgmt_queries TO PUBLIC;
INSERT INTO atk_mgmt_queries VALUES
    (1, 'grant itself read on atk_a', $$SELECT vault.grant('atk_a', current_user::regrole, 'read')$$),
    (2, 'grant itself admin on atk_b', $$SELECT vault.grant('atk_b', current_user::regrole, 'admin')$$),
    (3, 'grant another role owner', $$SELECT vault.grant('atk_a', 'regress_atk_nobody', 'owner')$$),
    (4, 'revoke the key owner''s grant', $$SELECT vault.revoke('atk_a', 'regress_atk_keyowner')$$),
    (5, 'revoke the owner', $$SELECT vault.revoke('atk_a', 'regress_atk_admin')$$),
    (6, 'drop_vault atk_a', $$SELECT vault.drop_vault('atk_a')$$),
    (7, 'create_vault', $$SELECT vault.create_vault('atk_mine')$$),
    (8, 'create_api_key, admin on atk_b', format($$SELECT vault.create_api_key(%L, '{"atk_b": "admin"}')$$, :'pw')),
    (9, 'rotate someone else''s key', format($$SELECT vault.rotate_api_key(%L, %L)$$, :'pw', :'a_read_id')),
    (10, 'revoke someone else''s key', format($$SELECT vault.revoke_api_key(%L, %L)$$, :'pw', :'a_read_id')),
    (11, 'set_key_password without the old one', $$SELECT vault.set_key_password('atk-password-0002')$$),
    (12, 'reconcile_keyring', $$SELECT vault.reconcile_keyring()$$),
    (13, 'hnsw_verify', $$SELECT * FROM vault.hnsw_verify('atk_items_hnsw')$$),
    (14, 'read vault._api_keys', $$SELECT * FROM vault._api_keys$$),
    (15, 'read vault._key_passwords', $$SELECT * FROM vault._key_passwords$$),
    (16, 'write vault._grants', $$INSERT INTO vault._grants SELECT vault_id, current_user::regrole, 'admin', current_user::regrole FROM vault._vaults$$),
    (17, 'un-revoke a key', $$UPDATE vault._api_keys SET revoked_at = NULL$$),
    (18, 'write vault._access_log', $$DELETE FROM vault._access_log$$);
CREATE FUNCTION atk_mgmt(except_these text[] DEFAULT '{}') RETURNS TABLE (attempt text, outcome text)
LANGUAGE sql AS $$
    SELECT label, atk_try(q) FROM atk_mgmt_queries WHERE label <> ALL (except_these) ORDER BY ord
$$;
-- What changed: the grants on the atk vaults and the live keys, compared before and after.
CREATE FUNCTION atk_state() RETURNS text LANGUAGE sql AS $$
    SELECT md5(concat_ws('/',
        (SELECT string_agg(format('%s:%s:%s', v.name, g.grantee, g.level), ',' ORDER BY v.name, g.grantee::text)
           FROM vault._grants g JOIN vault._vaults v USING (vault_id)),
        (SELECT string_agg(format('%s:%s:%s', name, state, key_version), ',' ORDER BY name, vault_id)
           FROM vault._vaults),
        (SELECT string_agg(format('%s:%s:%s', key_id, md5(secret_hash::text), revoked_at IS NULL), ',' ORDER BY key_id)
           FROM vault._api_keys),
        (SELECT string_agg(format('%s:%s', role, md5(hash::text)), ',' ORDER BY role::text)
           FROM vault._key_passwords)))
$$;
SELECT atk_state() AS state \gset

-- A role with no grants, the table owner and a BYPASSRLS role.
SET ROLE regress_atk_nobody;
SELECT * FROM atk_mgmt();
SET ROLE regress_atk_tblowner;
SELECT * FROM atk_mgmt();
SET ROLE regress_atk_bypass;
SELECT * FROM atk_mgmt();
-- A role with write on atk_a (and read on atk_b): writing is not administering.
SET ROLE regress_atk_keyowner;
SELECT * FROM atk_mgmt();
RESET ROLE;
SELECT atk_state() = :'state' AS nothing_changed;

-- Key sessions: keys do not manage keys (42501 before any password check), a read key cannot
-- grant, and even an admin key of atk_a cannot drop it (owner only) or reach atk_b.
SET ROLE regress_atk_app;
SELECT vault.login(:'key_a_read');
SELECT * FROM atk_mgmt();
SELECT vault.logout();
SELECT vault.login(:'key_b_write');
SELECT * FROM atk_mgmt();
SELECT vault.logout();
SELECT vault.login(:'key_a_admin');
-- (its two legitimate powers, granting read and revoking a writer, are left out here)
SELECT * FROM atk_mgmt(ARRAY['grant itself read on atk_a', 'revoke the key owner''s grant']);
SELECT vault.logout();
RESET ROLE;
SELECT atk_state() = :'state' AS nothing_changed;
-- An admin key does administer: it can grant read on atk_a, also to the role the application
-- connects as, and such a grant outlives the key session (admins manage grants; a grant is not
-- tied to the key that made it). Undone at once.
SET ROLE regress_atk_app;
SELECT vault.login(:'key_a_admin');
SELECT vault.grant('atk_a', 'regress_atk_app', 'read');
SELECT vault.logout();
SELECT vault.access_level('atk_a') AS app_level_after_logout;
RESET ROLE;
SELECT grantee, level, granted_by FROM vault._grants WHERE grantee = 'regress_atk_app'::regrole;
SET ROLE regress_atk_admin;
SELECT vault.revoke('atk_a', 'regress_atk_app');
RESET ROLE;
SELECT atk_state() = :'state' AS nothing_changed;

-- A SECURITY DEFINER function the attacker writes runs with the attacker's rights, whoever
-- calls it: called by the vault owner, it still sees no rows and grants nothing.
CREATE SCHEMA atk_evil AUTHORIZATION regress_atk_nobody;
SET ROLE regress_atk_nobody;
CREATE FUNCTION atk_evil.steal() RETURNS text LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    RETURN format('%s rows: %s; grant: %s', (SELECT count(*) FROM public.atk_items),
                  (SELECT string_agg(body::text, ',') FROM public.atk_items),
                  public.atk_try($q$SELECT vault.grant('atk_a', 'regress_atk_nobody', 'read')$q$));
END
$$;
GRANT USAGE ON SCHEMA atk_evil TO PUBLIC;
SELECT atk_evil.steal() AS called_by_attacker;
RESET ROLE;
SET ROLE regress_atk_admin;
SELECT atk_evil.steal() AS called_by_owner;
RESET ROLE;
-- In a key session it runs with the key's rights (the key's vault only), not more.
SET ROLE regress_atk_app;
SELECT vault.login(:'key_b_write');
SELECT atk_evil.steal() AS called_in_key_session;
SELECT vault.logout();
RESET ROLE;
-- For comparison, a SECURITY DEFINER function the vault owner writes decrypts with the owner's
-- rights, like a view (README): only vault owners should write such functions. A key session
-- calling it keeps the key's rights.
SET ROLE regress_atk_admin;
CREATE FUNCTION atk_owner_fn() RETURNS text LANGUAGE sql SECURITY DEFINER AS $$
    SELECT string_agg(body::text, ',' ORDER BY id) FROM public.atk_items WHERE id < 10
$$;
RESET ROLE;
SET ROLE regress_atk_nobody;
SELECT atk_owner_fn() AS nobody_calls_owner_fn;
RESET ROLE;
SET ROLE regress_atk_app;
SELECT vault.login(:'key_b_write');
SELECT atk_owner_fn() IS NULL AS key_session_sees_no_atk_a_rows;
SELECT vault.logout();
RESET ROLE;
DROP FUNCTION atk_owner_fn();
SELECT atk_state() = :'state' AS nothing_changed;

-- search_path tricks: the attacker's schema holds functions and operators named like the
-- extension's (vault_of, row_access, access_level, principal, login, grant) and = and <->
-- that always say yes, and is searched before pg_catalog. The policies and views were bound
-- when they were created, and every internal query is schema-qualified: nothing is fooled.
SET ROLE regress_atk_nobody;
CREATE FUNCTION atk_evil.vault_of(etext) RETURNS bigint LANGUAGE sql AS 'SELECT 0::bigint';
CREATE FUNCTION atk_evil.row_access(text, VARIADIC bigint[]) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION atk_evil.access_level(text) RETURNS text LANGUAGE sql AS $$SELECT 'owner'$$;
CREATE FUNCTION atk_evil.principal() RETURNS text LANGUAGE sql AS $$SELECT 'role postgres'$$;
CREATE FUNCTION atk_evil.login(text, boolean DEFAULT false) RETURNS text LANGUAGE sql AS $$SELECT 'atk_a'$$;
CREATE FUNCTION atk_evil.grant(text, regrole, text) RETURNS void LANGUAGE sql AS '';
CREATE FUNCTION atk_evil.yes(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION atk_evil.yes(bigint, bigint) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION atk_evil.yes(oid, oid) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION atk_evil.yes(bytea, bytea) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR atk_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = atk_evil.yes);
CREATE OPERATOR atk_evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = atk_evil.yes);
CREATE OPERATOR atk_evil.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = atk_evil.yes);
CREATE OPERATOR atk_evil.= (LEFTARG = bytea, RIGHTARG = bytea, FUNCTION = atk_evil.yes);
CREATE FUNCTION atk_evil.zero(evector, evector) RETURNS float8 LANGUAGE sql AS 'SELECT 0::float8';
CREATE OPERATOR atk_evil.<-> (LEFTARG = evector, RIGHTARG = evector, FUNCTION = atk_evil.zero);
SET search_path = atk_evil, pg_catalog, public;
SELECT 'a' = 'b' AS evil_eq_is_active, access_level('atk_a') AS evil_access_level;
-- The policies still hide every row, the views list nothing, the real functions refuse.
SELECT count(*) AS rows_visible FROM atk_items;
SELECT id FROM atk_items ORDER BY embedding <-> (SELECT q FROM atk_query LIMIT 1) LIMIT 10;
SELECT vault.access_level('atk_a') IS NULL AS no_level,
       (SELECT count(*) FROM vault.vaults) AS vaults, (SELECT count(*) FROM vault.grants) AS grants,
       (SELECT count(*) FROM vault.api_keys) AS keys, (SELECT count(*) FROM vault.access_log) AS log;
SELECT public.atk_try($$SELECT vault.grant('atk_a', 'regress_atk_nobody', 'read')$$) AS grant_itself;
SELECT public.atk_try(format($$SELECT vault.create_api_key(%L, '{"atk_a": "read"}')$$, :'pw')) AS create_key;
SELECT public.atk_try($$SELECT vault.drop_vault('atk_a')$$) AS drop_vault;
-- The same in a key session: a revoked key, a forged secret and a wrong key id still fail to
-- log in; the session key reads only its vault. (The logins are the client's own statements,
-- shown through atk_error: since security round 2, H5, atk_try's nested login is refused.)
SELECT vault.login(:'key_revoked');
SELECT public.atk_error(:'SQLSTATE', :'LAST_ERROR_MESSAGE') AS revoked_key;
SELECT vault.login(public.atk_forge(split_part(:'key_a_read', '_', 2), repeat('0', 40)));
SELECT public.atk_error(:'SQLSTATE', :'LAST_ERROR_MESSAGE') AS forged_secret;
SELECT vault.login(:'key_b_write');
SELECT count(*) AS rows_visible, count(*) FILTER (WHERE id < 10) AS atk_a_rows FROM atk_items;
SELECT public.atk_read('SELECT body::text FROM atk_items ORDER BY id') AS read_all;
SELECT public.atk_try($$SELECT vault.grant('atk_a', 'regress_atk_nobody', 'read')$$) AS grant_itself;
SELECT vault.logout();
RESET search_path;
RESET ROLE;
SELECT atk_state() = :'state' AS nothing_changed;
-- The policies, as stored, call the extension's functions.
SET search_path = atk_evil, pg_catalog, public;
SELECT polname, pg_get_expr(polqual, polrelid) AS using_expr FROM pg_policy
WHERE polrelid = 'public.atk_items'::regclass AND polname = 'vault_read';
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA atk_evil CASCADE;
RESET client_min_messages;
