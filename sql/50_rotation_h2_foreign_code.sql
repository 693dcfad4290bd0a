-- 50_rotation_h2_foreign_code: CALL vault.reencrypt never runs code that another role owns
-- (security round 2, H2; issue 8).
--
-- Until this fix vault.reencrypt UPDATEd every table of the database that had an encrypted
-- column, as the caller, zero-row UPDATEs included: the statement-level trigger of any table
-- open to PUBLIC ran with the vault owner's rights (the review granted itself admin on the
-- vault from it). Now reencrypt rewrites only the columns that hold values of the vault under
-- an older key version, selects those rows first (no statement fires for nothing), and only in
-- tables the caller owns where the UPDATE runs no code owned by anybody else; the rest is
-- reported and left alone. Each trap below records when it runs (rot_trap_log, a NOTICE) and
-- tries to give mallory admin on the vault; none of them may run.
--
--   trap          mallory's table, open to PUBLIC, holding a value of the vault: row and
--                 statement UPDATE triggers
--   trap_empty    mallory's table, open to PUBLIC, no value of the vault: a statement trigger
--                 (fired by the old zero-row UPDATE)
--   docs_trigger  the owner's table; mallory holds TRIGGER on it and planted a trigger
--   docs_check    the owner's table with a CHECK constraint calling mallory's function
--   docs_index    the owner's table with an index expression over mallory's function
--   docs_policy   the owner's table (forced RLS) with a policy calling mallory's function
--   docs_domain   the owner's table whose column is mallory's domain with a CHECK
--   docs_generated the owner's table with a generated column over mallory's function
--   docs_when     the owner's table with its own trigger whose WHEN calls mallory's function
--   docs_rule     the owner's table with an ON UPDATE rule

CREATE ROLE regress_rot_owner NOLOGIN;
CREATE ROLE regress_rot_mallory NOLOGIN;
GRANT EXECUTE ON FUNCTION vault.create_vault(text) TO regress_rot_owner;
GRANT CREATE ON SCHEMA public TO regress_rot_owner, regress_rot_mallory;

-- mallory's traps: every function records that it ran, as whom, and tries to escalate.
SET ROLE regress_rot_mallory;
CREATE TABLE rot_trap_log (who text, what text);
GRANT SELECT, INSERT ON rot_trap_log TO PUBLIC;
CREATE FUNCTION rot_escalate(what text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    -- Armed only for the rotation (the owner's own inserts below run it too: that is the
    -- owner's choice of table, not something reencrypt may do on its behalf).
    IF current_setting('regress_rot.armed', true) IS DISTINCT FROM 'on' THEN
        RETURN true;
    END IF;
    RAISE NOTICE 'TRAP % ran as %', what, current_user;
    INSERT INTO rot_trap_log VALUES (current_user, what);
    BEGIN
        PERFORM vault.grant('rot_h2', 'regress_rot_mallory', 'admin');
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    RETURN true;
END $$;
-- For index expressions (declared immutable, so it cannot write: a NOTICE proves it ran).
CREATE FUNCTION rot_imm(x int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF current_setting('regress_rot.armed', true) = 'on' THEN
        RAISE NOTICE 'TRAP index expression ran as %', current_user;
    END IF;
    RETURN x;
END $$;
CREATE FUNCTION rot_trap_fire() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM rot_escalate(TG_TABLE_NAME || ' ' || TG_LEVEL);
    RETURN NULL;
END $$;
CREATE DOMAIN rot_checked_text AS etext CHECK (rot_escalate('domain check'));
CREATE TABLE rot_trap (id int, body etext);
CREATE TABLE rot_trap_empty (id int, body etext);
GRANT ALL ON rot_trap, rot_trap_empty TO PUBLIC;
CREATE TRIGGER trap_stmt AFTER UPDATE ON rot_trap FOR EACH STATEMENT EXECUTE FUNCTION rot_trap_fire();
CREATE TRIGGER trap_row BEFORE UPDATE ON rot_trap FOR EACH ROW EXECUTE FUNCTION rot_trap_fire();
CREATE TRIGGER trap_stmt AFTER UPDATE ON rot_trap_empty FOR EACH STATEMENT EXECUTE FUNCTION rot_trap_fire();
RESET ROLE;

-- The vault owner's vault and tables (the owner uses mallory's functions and domain, and gives
-- mallory TRIGGER on one table: mistakes, but its own code must still never run mallory's).
SET ROLE regress_rot_owner;
SELECT vault.create_vault('rot_h2');
CREATE TABLE rot_docs (id int PRIMARY KEY, body etext);
CREATE TABLE rot_docs_trigger (id int, body etext);
GRANT TRIGGER ON rot_docs_trigger TO regress_rot_mallory;
CREATE TABLE rot_docs_check (id int CHECK (rot_escalate('check constraint')), body etext);
CREATE TABLE rot_docs_index (id int, body etext);
CREATE INDEX ON rot_docs_index (rot_imm(id));
CREATE TABLE rot_docs_policy (id int, body etext);
ALTER TABLE rot_docs_policy ENABLE ROW LEVEL SECURITY;
ALTER TABLE rot_docs_policy FORCE ROW LEVEL SECURITY;
CREATE POLICY p_read ON rot_docs_policy FOR SELECT USING (true);
CREATE POLICY p_update ON rot_docs_policy FOR UPDATE USING (rot_escalate('policy'));
CREATE POLICY p_insert ON rot_docs_policy FOR INSERT WITH CHECK (true);
CREATE TABLE rot_docs_domain (id int, body rot_checked_text);
CREATE TABLE rot_docs_generated (id int, body etext, g int GENERATED ALWAYS AS (rot_imm(id)) STORED);
CREATE FUNCTION rot_owner_fire() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TABLE rot_docs_when (id int, body etext);
CREATE TRIGGER owner_when BEFORE UPDATE ON rot_docs_when FOR EACH ROW
    WHEN (rot_escalate('trigger when')) EXECUTE FUNCTION rot_owner_fire();
CREATE TABLE rot_docs_rule (id int, body etext);
CREATE RULE notify_update AS ON UPDATE TO rot_docs_rule DO ALSO NOTIFY rot_docs_rule;
RESET ROLE;
SET ROLE regress_rot_mallory;
CREATE TRIGGER planted BEFORE UPDATE ON rot_docs_trigger FOR EACH ROW EXECUTE FUNCTION rot_trap_fire();
RESET ROLE;

-- Values of the vault under key version 1 everywhere but in trap_empty.
SET ROLE regress_rot_owner;
SET vector_vault.vault = 'rot_h2';
SET client_min_messages = warning;
INSERT INTO rot_docs VALUES (1, 'doc-1'), (2, 'doc-2');
INSERT INTO rot_trap VALUES (1, 'in-the-trap');
INSERT INTO rot_docs_trigger VALUES (1, 'doc-trigger');
INSERT INTO rot_docs_check VALUES (1, 'doc-check');
INSERT INTO rot_docs_index VALUES (1, 'doc-index');
INSERT INTO rot_docs_policy VALUES (1, 'doc-policy');
INSERT INTO rot_docs_domain VALUES (1, 'doc-domain');
INSERT INTO rot_docs_generated (id, body) VALUES (1, 'doc-generated');
INSERT INTO rot_docs_when VALUES (1, 'doc-when');
INSERT INTO rot_docs_rule VALUES (1, 'doc-rule');
RESET client_min_messages;
RESET ROLE;
SET regress_rot.armed = 'on';

-- Rotation by the owner: only rot_docs is rewritten; every trap is reported, none runs.
SET ROLE regress_rot_owner;
SELECT vault.rotate_key('rot_h2');
CALL vault.reencrypt('rot_h2');
RESET ROLE;
SELECT count(*) AS trap_runs FROM rot_trap_log;
SET ROLE regress_rot_mallory;
SELECT vault.access_level('rot_h2') AS mallory_level;
RESET ROLE;

-- What was rewritten and what was left (key versions, read as the owner).
SET ROLE regress_rot_owner;
SELECT 'rot_docs' AS t, id, vault.key_version_of(body), body::text FROM rot_docs
UNION ALL SELECT 'rot_trap', id, vault.key_version_of(body), body::text FROM rot_trap
UNION ALL SELECT 'rot_docs_trigger', id, vault.key_version_of(body), body::text FROM rot_docs_trigger
UNION ALL SELECT 'rot_docs_check', id, vault.key_version_of(body), body::text FROM rot_docs_check
UNION ALL SELECT 'rot_docs_index', id, vault.key_version_of(body), body::text FROM rot_docs_index
UNION ALL SELECT 'rot_docs_policy', id, vault.key_version_of(body), body::text FROM rot_docs_policy
UNION ALL SELECT 'rot_docs_domain', id, vault.key_version_of(body), body::text FROM rot_docs_domain
UNION ALL SELECT 'rot_docs_generated', id, vault.key_version_of(body), body::text FROM rot_docs_generated
UNION ALL SELECT 'rot_docs_when', id, vault.key_version_of(body), body::text FROM rot_docs_when
UNION ALL SELECT 'rot_docs_rule', id, vault.key_version_of(body), body::text FROM rot_docs_rule
ORDER BY 1, 2;
-- Retiring version 1 is refused while the owner's own tables still hold it.
SELECT sqlstate_of($$SELECT vault.retire_key_version('rot_h2', 1)$$);
-- The owner removes the foreign code from its own tables; the next call rewrites them, and
-- only mallory's table is left (its copy is shredded with the version: 50_rotation_h7_veto).
DROP TRIGGER planted ON rot_docs_trigger;
ALTER TABLE rot_docs_check DROP CONSTRAINT rot_docs_check_check;
DROP INDEX rot_docs_index_rot_imm_idx;
DROP POLICY p_update ON rot_docs_policy;
CREATE POLICY p_update ON rot_docs_policy FOR UPDATE USING (true);
ALTER TABLE rot_docs_domain ALTER COLUMN body TYPE etext;
ALTER TABLE rot_docs_generated DROP COLUMN g;
DROP TRIGGER owner_when ON rot_docs_when;
DROP RULE notify_update ON rot_docs_rule;
CALL vault.reencrypt('rot_h2');
SELECT sqlstate_of($$SELECT vault.retire_key_version('rot_h2', 1)$$);
SELECT sqlstate_of($$SELECT vault.retire_key_version('rot_h2', 1, force => true)$$);
SELECT body::text FROM rot_docs_domain UNION ALL SELECT body::text FROM rot_docs_check ORDER BY 1;
SELECT regexp_replace(sqlstate_of('SELECT body::text FROM rot_trap'), '[0-9a-f]{16}', '<id>') AS rot_trap_body;
-- The helpers reencrypt uses to count values run as the extension owner; they read only tables
-- and materialized views, never a view (whose query would run the trap as that owner).
CREATE VIEW rot_docs_view AS SELECT body FROM rot_docs WHERE rot_escalate('view');
SELECT vault._remaining_values('rot_docs_view', 'body', 'rot_h2', 1, 1) AS view_counted,
       vault._remaining_values('rot_docs', 'body', 'rot_h2', 2, 2) AS docs_at_v2;
RESET ROLE;
SELECT count(*) AS trap_runs_at_the_end FROM rot_trap_log;
RESET regress_rot.armed;
