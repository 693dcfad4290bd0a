-- 40_attack_1_setup: the cast of the attack suite (40_attack_*). Two vaults, atk_a and atk_b,
-- owned by an admin role; one table protected with vault.protect holding rows of both, with a
-- vault_hnsw index; API keys of every kind; and roles that attack them: another vault's key, a
-- read-only key, a revoked key, an expired key, a key of a dropped vault, the table owner (no
-- vault rights), a BYPASSRLS role, a role with no grants.
--
-- Vault ids, key ids and key secrets are random: they are never printed. Keys are kept in the
-- table atk_keys (superuser only) and fetched with \gset in each file; every failure is shown
-- through atk_try(), which prints the SQLSTATE and the message with ids masked, and prefixes
-- "LEAK!" when the message, detail or hint contains plaintext (every plaintext value of the
-- suite contains "SECRET"), a key-management password or an API key.

-- Every key-management password of the suite. The superuser that runs the tests (the
-- extension owner) uses the same one: until d689fcf key-management passwords were checked
-- against the extension owner's hash, whatever the calling role (40_attack_7_holes, H1);
-- with one password for all roles these files pass with and without that bug.
\set pw 'atk-password-0001'

-- atk_try(q): 'ok' or "SQLSTATE: message" (16-hex ids masked as <id>); "LEAK! " in front
-- when the error text reveals a plaintext, a password or a key.
CREATE FUNCTION atk_try(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text; det text; hin text;
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
        det = PG_EXCEPTION_DETAIL, hin = PG_EXCEPTION_HINT;
    RETURN CASE WHEN concat_ws(' ', msg, det, hin) ~ '(SECRET|atk-password|vv_[0-9a-f]{16}_[0-9a-f]{8})'
                THEN 'LEAK! ' ELSE '' END
        || st || ': ' || regexp_replace(msg, '[0-9a-f]{16}', '<id>', 'g');
END
$$;

-- atk_error(st, msg): atk_try's report of the statement psql ran last, for statements that must
-- be the client's own top-level statement (vault.login and vault.logout since security round 2,
-- H5: atk_try's EXECUTE is nested code, refused with 42501). Called right after it as
-- "SELECT atk_error(:'SQLSTATE', :'LAST_ERROR_MESSAGE')": 'ok' when it succeeded, else
-- "SQLSTATE: message" as atk_try shows it, "LEAK! " included. psql prints the failed
-- statement's message, detail and hint above it, so they are compared with the expected output.
-- (Its search_path is pinned: 40_attack_4_escalate calls it under an attacker's "=" operator.)
CREATE FUNCTION atk_error(st text, msg text) RETURNS text LANGUAGE sql
SET search_path = pg_catalog AS $$
    SELECT CASE WHEN st = '00000' THEN 'ok'
                ELSE CASE WHEN msg ~ '(SECRET|atk-password|vv_[0-9a-f]{16}_[0-9a-f]{8})'
                          THEN 'LEAK! ' ELSE '' END
                     || st || ': ' || regexp_replace(msg, '[0-9a-f]{16}', '<id>', 'g')
           END
$$;

-- atk_read(q, plan): runs a one-column query and returns 'ok: v1 | v2 | ...' (its values as
-- text, in order; '(no rows)' when there are none) or the error as atk_try shows it. plan
-- 'index' disables sequential scans, 'seq' disables index scans, for this statement only.
CREATE FUNCTION atk_read(q text, plan text DEFAULT NULL) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r text; st text; msg text; det text; hin text;
BEGIN
    PERFORM set_config('enable_seqscan', CASE WHEN plan = 'index' THEN 'off' ELSE 'on' END, true);
    PERFORM set_config('enable_indexscan', CASE WHEN plan = 'seq' THEN 'off' ELSE 'on' END, true);
    PERFORM set_config('enable_bitmapscan', CASE WHEN plan = 'seq' THEN 'off' ELSE 'on' END, true);
    EXECUTE format('SELECT string_agg(x::text, '' | '') FROM (%s) s(x)', q) INTO r;
    PERFORM set_config('enable_seqscan', 'on', true);
    PERFORM set_config('enable_indexscan', 'on', true);
    PERFORM set_config('enable_bitmapscan', 'on', true);
    RETURN 'ok: ' || coalesce(r, '(no rows)');
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
        det = PG_EXCEPTION_DETAIL, hin = PG_EXCEPTION_HINT;
    RETURN CASE WHEN concat_ws(' ', msg, det, hin) ~ '(SECRET|atk-password|vv_[0-9a-f]{16}_[0-9a-f]{8})'
                THEN 'LEAK! ' ELSE '' END
        || st || ': ' || regexp_replace(msg, '[0-9a-f]{16}', '<id>', 'g');
END
$$;

-- atk_dml(q): 'ok: N rows' (rows inserted, updated or deleted) or the error as atk_try shows it.
CREATE FUNCTION atk_dml(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    n bigint; st text; msg text; det text; hin text;
BEGIN
    EXECUTE q;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN format('ok: %s rows', n);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
        det = PG_EXCEPTION_DETAIL, hin = PG_EXCEPTION_HINT;
    RETURN CASE WHEN concat_ws(' ', msg, det, hin) ~ '(SECRET|atk-password|vv_[0-9a-f]{16}_[0-9a-f]{8})'
                THEN 'LEAK! ' ELSE '' END
        || st || ': ' || regexp_replace(msg, '[0-9a-f]{16}', '<id>', 'g');
END
$$;

-- atk_principal(): vault.principal() with the key id masked.
CREATE FUNCTION atk_principal() RETURNS text LANGUAGE sql AS $$
    SELECT regexp_replace(vault.principal(), '[0-9a-f]{16}', '<id>', 'g')
$$;

-- atk_crc32 / atk_forge(key_id, secret_hex): a well-formed key (valid checksum) for any id and
-- secret. The checksum only catches typos; an attacker can compute it, so forged keys reach the
-- lookup and must fail there.
CREATE FUNCTION atk_crc32(t text) RETURNS bigint LANGUAGE plpgsql IMMUTABLE AS $$
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
CREATE FUNCTION atk_forge(key_id text, secret_hex text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT format('vv_%s_%s_%s', key_id, secret_hex,
                  lpad(to_hex(atk_crc32(format('vv_%s_%s', key_id, secret_hex))), 8, '0'))
$$;

-- Keys, by name; superuser only.
CREATE TABLE atk_keys (name text PRIMARY KEY, key text NOT NULL);
REVOKE ALL ON atk_keys FROM PUBLIC;

-- Roles. The admin owns the vaults and the keys; the key owner is a grantee with keys of its
-- own; the app role is what applications connect as (no vault grants, NOINHERIT).
CREATE ROLE regress_atk_admin NOLOGIN;
CREATE ROLE regress_atk_keyowner NOLOGIN;
CREATE ROLE regress_atk_app NOLOGIN NOINHERIT;
CREATE ROLE regress_atk_tblowner NOLOGIN;
CREATE ROLE regress_atk_bypass NOLOGIN BYPASSRLS;
CREATE ROLE regress_atk_nobody NOLOGIN;
CREATE ROLE regress_atk_breader NOLOGIN;
GRANT EXECUTE ON FUNCTION vault.create_vault(text) TO regress_atk_admin;
GRANT CREATE ON SCHEMA public TO regress_atk_tblowner, regress_atk_admin;
-- Only the roles that create keys may store them.
GRANT INSERT ON atk_keys TO regress_atk_admin, regress_atk_keyowner;

-- The superuser's key-management password (see above).
SELECT vault.set_key_password(:'pw');

-- Vaults atk_a and atk_b (and atk_c, dropped below after a key was made for it).
SET ROLE regress_atk_admin;
SELECT vault.create_vault('atk_a');
SELECT vault.create_vault('atk_b');
SELECT vault.create_vault('atk_c');
SELECT vault.set_key_password(:'pw');
SELECT vault.grant('atk_a', 'regress_atk_keyowner', 'write');
SELECT vault.grant('atk_b', 'regress_atk_keyowner', 'read');
SELECT vault.grant('atk_b', 'regress_atk_breader', 'read');
SELECT name, access FROM vault.vaults WHERE name LIKE 'atk%' ORDER BY name;
RESET ROLE;

-- The table, owned by a role with no vault rights, protected (forced RLS by vault).
SET ROLE regress_atk_tblowner;
CREATE TABLE atk_items (id int PRIMARY KEY, body etext, meta ejsonb, embedding evector(3));
SET client_min_messages = warning;
SELECT vault.protect('atk_items');
RESET client_min_messages;
GRANT SELECT, INSERT, UPDATE, DELETE ON atk_items TO PUBLIC;
RESET ROLE;
SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = 'atk_items';
SELECT polname, polcmd FROM pg_policy WHERE polrelid = 'atk_items'::regclass ORDER BY polname;

-- Rows: ids 1-3 in atk_a, 11-13 in atk_b, 21 in atk_c; every plaintext contains "SECRET".
SET ROLE regress_atk_admin;
SET vector_vault.vault = 'atk_a';
INSERT INTO atk_items VALUES
    (1, 'A-SECRET-1', '{"v": "A-SECRET-m1", "n": 1}', '[1,0,0]'),
    (2, 'A-SECRET-2', '{"v": "A-SECRET-m2", "n": 2}', '[2,0,0]'),
    (3, 'A-SECRET-3', '{"v": "A-SECRET-m3", "n": 3}', '[3,0,0]');
SET vector_vault.vault = 'atk_b';
INSERT INTO atk_items VALUES
    (11, 'B-SECRET-11', '{"v": "B-SECRET-m11", "n": 11}', '[0,0,1]'),
    (12, 'B-SECRET-12', '{"v": "B-SECRET-m12", "n": 12}', '[0,0,2]'),
    (13, 'B-SECRET-13', '{"v": "B-SECRET-m13", "n": 13}', '[0,0,3]');
SET vector_vault.vault = 'atk_c';
INSERT INTO atk_items VALUES (21, 'C-SECRET-21', '{"v": "C-SECRET-m21"}', '[5,5,5]');
-- Query vectors sealed by the owner, one per vault, for roles that cannot seal their own.
CREATE TABLE atk_query (vault text, q evector(3));
SET vector_vault.vault = 'atk_a';
INSERT INTO atk_query VALUES ('atk_a', '[1.1,0,0]');
SET vector_vault.vault = 'atk_b';
INSERT INTO atk_query VALUES ('atk_b', '[0,0,1.1]');
GRANT SELECT ON atk_query TO PUBLIC;
SELECT id, body, meta ->> 'v' AS v, embedding FROM atk_items ORDER BY id;
RESET vector_vault.vault;
RESET ROLE;

-- Every way to read, decrypt or infer, as (label, query, plan); atk_reads() runs them all as the
-- current principal (or only the labels given). Queries that name a vault's query vector use
-- the owner-sealed ones.
CREATE TABLE atk_read_queries (ord int PRIMARY KEY, label text, q text, plan text);
INSERT INTO atk_read_queries VALUES
    (1, 'count(*)', 'SELECT count(*) FROM atk_items', NULL),
    (2, 'visible ids', 'SELECT id FROM atk_items ORDER BY id', NULL),
    (3, 'vault_of (header only)', 'SELECT count(DISTINCT vault.vault_of(body)) FROM atk_items', NULL),
    (4, 'vector_dims (header only)', 'SELECT vector_dims(embedding) FROM atk_items ORDER BY id', NULL),
    (5, 'body::text', 'SELECT body::text FROM atk_items ORDER BY id', NULL),
    (6, 'etext_send', 'SELECT convert_from(etext_send(body), ''UTF8'') FROM atk_items ORDER BY id', NULL),
    (7, 'meta::jsonb', 'SELECT meta::jsonb FROM atk_items ORDER BY id', NULL),
    (8, 'meta ->> ''v''', 'SELECT meta ->> ''v'' FROM atk_items ORDER BY id', NULL),
    (9, 'meta -> ''v''', 'SELECT meta -> ''v'' FROM atk_items ORDER BY id', NULL),
    (10, 'meta @> filter', 'SELECT id FROM atk_items WHERE meta @> ''{"n": 1}'' ORDER BY id', NULL),
    (11, 'ejsonb_send', 'SELECT length(ejsonb_send(meta)) FROM atk_items ORDER BY id', NULL),
    (12, 'embedding::real[]', 'SELECT embedding::real[] FROM atk_items ORDER BY id', NULL),
    (13, 'embedding::text', 'SELECT embedding::text FROM atk_items ORDER BY id', NULL),
    (14, 'evector_send', 'SELECT length(evector_send(embedding)) FROM atk_items ORDER BY id', NULL),
    (15, 'vector_norm', 'SELECT vector_norm(embedding) FROM atk_items ORDER BY id', NULL),
    (16, 'l2_distance to A''s query', 'SELECT l2_distance(embedding, q) FROM atk_items, atk_query WHERE atk_query.vault = ''atk_a'' ORDER BY id', NULL),
    (17, 'inner_product self', 'SELECT inner_product(embedding, embedding) FROM atk_items ORDER BY id', NULL),
    (18, 'cosine_distance self', 'SELECT cosine_distance(embedding, embedding) FROM atk_items ORDER BY id', NULL),
    (19, '<+> self', 'SELECT embedding <+> embedding FROM atk_items ORDER BY id', NULL),
    (20, 'knn A''s query, index', 'SELECT id FROM atk_items ORDER BY embedding <-> (SELECT q FROM atk_query WHERE vault = ''atk_a'') LIMIT 10', 'index'),
    (21, 'knn A''s query, seq scan', 'SELECT id FROM atk_items ORDER BY embedding <-> (SELECT q FROM atk_query WHERE vault = ''atk_a'') LIMIT 10', 'seq'),
    (22, 'knn B''s query, index', 'SELECT id FROM atk_items ORDER BY embedding <-> (SELECT q FROM atk_query WHERE vault = ''atk_b'') LIMIT 10', 'index'),
    (23, 'knn B''s query, seq scan', 'SELECT id FROM atk_items ORDER BY embedding <-> (SELECT q FROM atk_query WHERE vault = ''atk_b'') LIMIT 10', 'seq'),
    (24, 'knn literal, index', 'SELECT id FROM atk_items ORDER BY embedding <-> ''[1,0,1]'' LIMIT 10', 'index'),
    (25, 'knn literal, seq scan', 'SELECT id FROM atk_items ORDER BY embedding <-> ''[1,0,1]'' LIMIT 10', 'seq');
GRANT SELECT ON atk_read_queries TO PUBLIC;
CREATE FUNCTION atk_reads(only_these text[] DEFAULT NULL) RETURNS TABLE (query text, outcome text)
LANGUAGE sql AS $$
    SELECT label, atk_read(q, plan) FROM atk_read_queries
    WHERE only_these IS NULL OR label = ANY (only_these) ORDER BY ord
$$;

-- The index, built by the table owner (the build needs no vault rights: it stores ciphertext).
SET ROLE regress_atk_tblowner;
CREATE INDEX atk_items_hnsw ON atk_items USING vault_hnsw (embedding evector_l2_ops);
RESET ROLE;

-- API keys, all owned by the admin except keyowner_a_write (owned by a grantee).
SET ROLE regress_atk_admin;
INSERT INTO atk_keys VALUES
    ('a_read',   vault.create_api_key(:'pw', '{"atk_a": "read"}', 'a read')),
    ('a_write',  vault.create_api_key(:'pw', '{"atk_a": "write"}', 'a write')),
    ('a_admin',  vault.create_api_key(:'pw', '{"atk_a": "admin"}', 'a admin')),
    ('b_write',  vault.create_api_key(:'pw', '{"atk_b": "write"}', 'b write')),
    ('ab_read',  vault.create_api_key(:'pw', '{"atk_a": "read", "atk_b": "read"}', 'a+b read')),
    ('revoked',  vault.create_api_key(:'pw', '{"atk_a": "write"}', 'to revoke')),
    ('expired',  vault.create_api_key(:'pw', '{"atk_a": "write"}', 'expired', now() + interval '1 hour')),
    ('c_write',  vault.create_api_key(:'pw', '{"atk_c": "write"}', 'dropped vault')),
    ('rotate',   vault.create_api_key(:'pw', '{"atk_a": "read"}', 'to rotate')),
    ('rate',     vault.create_api_key(:'pw', '{"atk_b": "read"}', 'rate limited')),
    ('clear',    vault.create_api_key(:'pw', '{"atk_b": "read"}', 'clears the address counter'));
-- A key cannot be created already expired (22023).
SELECT atk_try(format('SELECT vault.create_api_key(%L, %L, %L, %L)', :'pw', '{"atk_a": "read"}',
                      'dead on arrival', now() - interval '1 minute'));
RESET ROLE;
-- Time passes for the 'expired' key (the superuser moves its expiry into the past).
UPDATE vault._api_keys SET expires_at = now() - interval '1 minute'
 WHERE label OPERATOR(pg_catalog.=) 'expired';
SET ROLE regress_atk_admin;
SELECT label, expires_at < now() AS expired FROM vault.api_keys WHERE label = 'expired';
RESET ROLE;
SET ROLE regress_atk_keyowner;
SELECT vault.set_key_password(:'pw');
INSERT INTO atk_keys VALUES
    ('keyowner_a_write', vault.create_api_key(:'pw', '{"atk_a": "write"}', 'keyowner a write'));
-- A key never exceeds its owner's rights: keyowner has only read on atk_b.
SELECT atk_try(format('SELECT vault.create_api_key(%L, %L)', :'pw', '{"atk_b": "write"}'));
RESET ROLE;

-- Every key is well formed and distinct.
SELECT count(*) AS keys, count(DISTINCT key) AS distinct_keys,
       bool_and(key ~ '^vv_[0-9a-f]{16}_[0-9a-f]{40}_[0-9a-f]{8}$') AS well_formed,
       bool_and(atk_forge(split_part(key, '_', 2), split_part(key, '_', 3)) = key) AS forge_matches
FROM atk_keys;

-- The revoked key is revoked, the vault atk_c dropped (its key stays, pointing at a tombstone).
SELECT split_part(key, '_', 2) AS revoked_id FROM atk_keys WHERE name = 'revoked' \gset
SET ROLE regress_atk_admin;
SELECT vault.revoke_api_key(:'pw', :'revoked_id');
SELECT vault.drop_vault('atk_c');
SELECT label, vaults, revoked_at IS NOT NULL AS revoked FROM vault.api_keys ORDER BY label;
RESET ROLE;
