-- 40_attack_2_read: every way to read, decrypt or infer another vault's data (atk_reads(): row
-- counts under RLS, casts, ->, ->>, @>, send functions, distances, k-NN through the vault_hnsw
-- index and through a sequential scan, literal query vectors), tried by every principal of
-- 40_attack_1_setup. Each attempt returns only rows of vaults the principal may read, or fails
-- with 42501 (22V02 for the dropped vault), and no error text carries plaintext ("LEAK!").

SELECT key AS key_b_write FROM atk_keys WHERE name = 'b_write' \gset
SELECT key AS key_c_write FROM atk_keys WHERE name = 'c_write' \gset
SELECT key AS key_revoked FROM atk_keys WHERE name = 'revoked' \gset
SELECT key AS key_expired FROM atk_keys WHERE name = 'expired' \gset
SELECT key AS key_a_read FROM atk_keys WHERE name = 'a_read' \gset

-- The plans: the k-NN queries of atk_reads() use the index (plan 'index') or a sequential scan
-- and a sort (plan 'seq'), with the vault policy as a filter, for an RLS-bound principal.
SET ROLE regress_atk_app;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM atk_items
ORDER BY embedding <-> (SELECT q FROM atk_query WHERE vault = 'atk_a') LIMIT 10;
RESET enable_seqscan;
SET enable_indexscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM atk_items
ORDER BY embedding <-> (SELECT q FROM atk_query WHERE vault = 'atk_a') LIMIT 10;
RESET enable_indexscan;
RESET enable_bitmapscan;
RESET ROLE;

-- Positive control: a read key of atk_a reads atk_a, and only atk_a (it cannot seal under
-- atk_b either: the B query vector cannot be opened, 42501).
SET ROLE regress_atk_app;
SELECT vault.login(:'key_a_read');
SELECT atk_principal(), current_setting('vector_vault.vault') AS vault;
SELECT * FROM atk_reads();
SELECT vault.logout();
RESET ROLE;

-- Another vault's key (write on atk_b): sees only atk_b's rows; atk_a's query vector cannot be
-- opened; a literal query vector is sealed under atk_b (selected by the login).
SET ROLE regress_atk_app;
SELECT vault.login(:'key_b_write');
SELECT atk_principal(), current_setting('vector_vault.vault') AS vault;
SELECT * FROM atk_reads();
-- Selecting atk_a does not help: sealing a query vector under it needs read access there.
SET vector_vault.vault = 'atk_a';
SELECT * FROM atk_reads(ARRAY['knn literal, index', 'knn literal, seq scan']);
RESET vector_vault.vault;
SELECT vault.logout();
RESET ROLE;

-- A revoked key and an expired key do not log in (28P01); the session stays its role, which
-- has no vault grants: no rows. (The logins are the client's own statements, shown through
-- atk_error: since security round 2, H5, atk_try's nested login is refused.)
SET ROLE regress_atk_app;
SELECT vault.login(:'key_revoked');
SELECT atk_error(:'SQLSTATE', :'LAST_ERROR_MESSAGE') AS revoked_key;
SELECT vault.login(:'key_expired');
SELECT atk_error(:'SQLSTATE', :'LAST_ERROR_MESSAGE') AS expired_key;
SELECT atk_principal();
SELECT * FROM atk_reads(ARRAY['count(*)', 'body::text', 'knn A''s query, index']);
RESET ROLE;

-- The key of a dropped vault logs in but selects no vault and reads nothing; the dropped
-- vault's row is hidden by the policy.
SET ROLE regress_atk_app;
SELECT vault.login(:'key_c_write') IS NULL AS no_vault_selected;
SELECT atk_principal();
SELECT * FROM atk_reads();
SELECT vault.logout();
RESET ROLE;

-- A role with table privileges and no vault grants: RLS hides every row; it cannot seal.
SET ROLE regress_atk_nobody;
SET vector_vault.vault = 'atk_a';
SELECT * FROM atk_reads();
RESET vector_vault.vault;
RESET ROLE;

-- The table owner, not granted on the vaults: forced RLS binds it too.
SET ROLE regress_atk_tblowner;
SET vector_vault.vault = 'atk_a';
SELECT * FROM atk_reads();
-- Owning the table, it can lift the policies: then it counts and sees every row (counts and
-- headers are not secret, see README), but still decrypts nothing (42501; 22V02 for the
-- dropped vault's row).
ALTER TABLE atk_items NO FORCE ROW LEVEL SECURITY;
SELECT * FROM atk_reads();
SELECT atk_read('SELECT body::text FROM atk_items WHERE id = 21') AS dropped_vault_row;
ALTER TABLE atk_items FORCE ROW LEVEL SECURITY;
RESET vector_vault.vault;
RESET ROLE;

-- A BYPASSRLS role: sees every row, decrypts none.
SET ROLE regress_atk_bypass;
SET vector_vault.vault = 'atk_a';
SELECT * FROM atk_reads();
RESET vector_vault.vault;
RESET ROLE;

-- A reader of atk_b: only atk_b's rows.
SET ROLE regress_atk_breader;
SET vector_vault.vault = 'atk_b';
SELECT * FROM atk_reads();
RESET vector_vault.vault;
RESET ROLE;

-- A BYPASSRLS role that may read atk_b: without RLS, the index still searches only atk_b (the
-- third layer), and anything that decrypts an atk_a value fails (the second layer): the
-- sequential k-NN computes a distance to atk_a's rows and is refused.
SET ROLE regress_atk_admin;
SELECT vault.grant('atk_b', 'regress_atk_bypass', 'read');
RESET ROLE;
SET ROLE regress_atk_bypass;
SET vector_vault.vault = 'atk_b';
SELECT * FROM atk_reads();
RESET vector_vault.vault;
RESET ROLE;
SET ROLE regress_atk_admin;
SELECT vault.revoke('atk_b', 'regress_atk_bypass');
RESET ROLE;

-- The superuser has no vault rights either: it bypasses RLS and decrypts nothing.
SET vector_vault.vault = 'atk_a';
SELECT * FROM atk_reads();
RESET vector_vault.vault;
