-- 34_migrate: vault.migrate_column converts a plaintext column in place (issue 11): a
-- multi-tenant table whose rows end up sealed under their tenant's vault, text and jsonb under
-- one vault, failures mid-way (a bad row in a later batch, a view in the way of the swap) that
-- leave every source value as it was and resume when called again, and the refusals (not the
-- owner, wrong types, wrong arguments). sql/35_migrate_pgvector.sql does pgvector's vector.
SET vector_vault.vault = 'regress';
SELECT vault.create_vault('regress_mig_a');
SELECT vault.create_vault('regress_mig_b');

-- 1000 rows of two tenants; mig_copy keeps the plaintext to compare with.
CREATE TABLE mig (id int PRIMARY KEY, tenant text, emb real[] NOT NULL, body text, meta jsonb);
INSERT INTO mig
SELECT i, CASE WHEN i % 3 = 0 THEN 'regress_mig_a' ELSE 'regress_mig_b' END,
       ARRAY[i, i * 0.5, -i]::real[], 'document ' || i, jsonb_build_object('n', i, 'tag', i % 7)
FROM generate_series(1, 1000) i;
CREATE TABLE mig_copy AS SELECT * FROM mig;

-- Multi-tenant: each row sealed under the vault its tenant column names, in batches of 300.
CALL vault.migrate_column('mig', 'emb', vault_column => 'tenant', batch_size => 300);
SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute
WHERE attrelid = 'mig'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attname;
SELECT count(*) FILTER (WHERE vault.vault_of(m.emb) = vault.vault_id(m.tenant)) AS under_own_tenant,
       count(*) FILTER (WHERE m.emb::real[] = c.emb) AS same_values, count(*) AS rows
FROM mig m JOIN mig_copy c USING (id);
SELECT m.tenant, count(*) FROM mig m
WHERE vault.vault_of(m.emb) = vault.vault_id('regress_mig_a') GROUP BY 1 ORDER BY 1;
-- No trigger or shadow column is left behind.
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'mig'::regclass;
-- text to etext under one named vault; jsonb to ejsonb under the session's vault.
CALL vault.migrate_column('mig', 'body', vault => 'regress_mig_a');
CALL vault.migrate_column('mig', 'meta');
SELECT count(*) FILTER (WHERE m.body::text = c.body AND vault.vault_of(m.body) = vault.vault_id('regress_mig_a')) AS body_ok,
       count(*) FILTER (WHERE m.meta::jsonb = c.meta AND vault.vault_of(m.meta) = vault.vault_id('regress')) AS meta_ok
FROM mig m JOIN mig_copy c USING (id);
-- Called again: nothing to do.
CALL vault.migrate_column('mig', 'emb', vault_column => 'tenant');

-- Refusals, before anything is written.
CALL vault.migrate_column('mig', 'id');
CALL vault.migrate_column('mig', 'no_such_column');
CALL vault.migrate_column('mig_copy', 'emb', vault_column => 'tenant', vault => 'regress');
CALL vault.migrate_column('mig_copy', 'emb', vault_column => 'no_such_column');
CALL vault.migrate_column('mig_copy', 'emb', batch_size => 0);
CALL vault.migrate_column('mig_copy', 'emb', vault => 'no_such_vault');
CREATE VIEW mig_view AS SELECT id FROM mig_copy;
CALL vault.migrate_column('mig_view', 'id');
DROP VIEW mig_view;
-- Not the owner: refused although the role may read and write the table.
CREATE ROLE regress_mig_other NOLOGIN;
GRANT ALL ON mig_copy TO regress_mig_other;
SET ROLE regress_mig_other;
CALL vault.migrate_column('mig_copy', 'body', vault => 'regress');
RESET ROLE;
SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'mig_copy'::regclass AND attname = 'body';

-- Failure mid-way. Row 500 names a vault that does not exist: the batches before it commit,
-- its batch fails, and the source column is untouched.
CREATE TABLE mig_fail AS SELECT id, tenant, emb FROM mig_copy;
UPDATE mig_fail SET tenant = 'regress_no_such_vault' WHERE id = 500;
-- A row without a vault is refused before anything starts.
UPDATE mig_fail SET tenant = NULL WHERE id = 10;
CALL vault.migrate_column('mig_fail', 'emb', vault_column => 'tenant', batch_size => 100);
UPDATE mig_fail SET tenant = 'regress_mig_b' WHERE id = 10;
CALL vault.migrate_column('mig_fail', 'emb', vault_column => 'tenant', batch_size => 100);
SELECT format_type(atttypid, atttypmod) AS source_type FROM pg_attribute
WHERE attrelid = 'mig_fail'::regclass AND attname = 'emb';
SELECT count(*) FILTER (WHERE f.emb = c.emb) AS source_intact,
       count(f.vv_migrating_emb) > 0 AND count(f.vv_migrating_emb) < 1000 AS some_batches_committed
FROM mig_fail f JOIN mig_copy c USING (id);
-- Meanwhile a converted row is updated (the trigger clears its sealed copy) and a row inserted.
UPDATE mig_fail SET emb = '{9,9,9}' WHERE id = 1;
SELECT vv_migrating_emb IS NULL AS cleared FROM mig_fail WHERE id = 1;
INSERT INTO mig_fail VALUES (1001, 'regress_mig_a', '{1,2,3}');
-- A view on the column stops the swap (the last transaction): still nothing lost.
CREATE VIEW mig_fail_view AS SELECT emb FROM mig_fail;
UPDATE mig_fail SET tenant = 'regress_mig_a' WHERE id = 500;
CALL vault.migrate_column('mig_fail', 'emb', vault_column => 'tenant', batch_size => 100);
SELECT format_type(atttypid, atttypmod) AS source_type FROM pg_attribute
WHERE attrelid = 'mig_fail'::regclass AND attname = 'emb';
SELECT count(*) AS rows, count(vv_migrating_emb) AS converted FROM mig_fail;
DROP VIEW mig_fail_view;
-- Resumed: everything converted, each row under its tenant, the update and the insert kept.
CALL vault.migrate_column('mig_fail', 'emb', vault_column => 'tenant', batch_size => 100);
SELECT count(*) FILTER (WHERE vault.vault_of(f.emb) = vault.vault_id(f.tenant)) AS under_own_tenant,
       count(*) FILTER (WHERE f.emb::real[] = coalesce(c.emb, '{1,2,3}') OR f.id = 1) AS same_values,
       count(*) AS rows
FROM mig_fail f LEFT JOIN mig_copy c USING (id);
SELECT id, emb FROM mig_fail WHERE id IN (1, 1001) ORDER BY id;

DROP TABLE mig, mig_copy, mig_fail;
DROP ROLE regress_mig_other;
SELECT vault.drop_vault('regress_mig_a');
SELECT vault.drop_vault('regress_mig_b');
