-- 21_access: who may decrypt. Table privileges decide who may read the rows; the vault grant
-- decides who may see the plaintext. Without at least 'read' on the value's vault, everything
-- that decrypts (output, casts, distances, ->, ->>, @>, ORDER BY a distance) fails with 42501,
-- whatever else the role has: BYPASSRLS, table ownership, or superuser. vector_dims reads
-- only the authenticated header and works for anyone who can read the row.

-- The owner of vault "acc" is the superuser running the tests.
SELECT vault.create_vault('acc');
SET vector_vault.vault = 'acc';
CREATE TABLE acc_items (id int PRIMARY KEY, embedding evector(2), body etext, meta ejsonb);
INSERT INTO acc_items VALUES
    (1, '[1,0]', 'first', '{"k": "a"}'),
    (2, '[0,1]', 'second', '{"k": "b"}'),
    (3, '[1,1]', 'third', '{"k": "c"}');
-- A query vector sealed by the owner, so roles without access can run searches with it.
CREATE TABLE acc_query (q evector(2));
INSERT INTO acc_query VALUES ('[0.9,0.1]');

CREATE ROLE regress_acc_none NOLOGIN;
CREATE ROLE regress_acc_reader NOLOGIN;
CREATE ROLE regress_acc_writer NOLOGIN;
CREATE ROLE regress_acc_admin NOLOGIN;
CREATE ROLE regress_acc_group NOLOGIN;
CREATE ROLE regress_acc_member NOLOGIN IN ROLE regress_acc_group;
CREATE ROLE regress_acc_noinherit NOLOGIN NOINHERIT IN ROLE regress_acc_group;
CREATE ROLE regress_acc_bypass NOLOGIN BYPASSRLS;
CREATE ROLE regress_acc_tblowner NOLOGIN;
CREATE ROLE regress_acc_vowner NOLOGIN;
GRANT SELECT ON acc_items, acc_query TO PUBLIC;
SELECT vault.grant('acc', 'regress_acc_reader', 'read');
SELECT vault.grant('acc', 'regress_acc_writer', 'write');
SELECT vault.grant('acc', 'regress_acc_admin', 'admin');
SELECT vault.grant('acc', 'regress_acc_group', 'read');

-- Everything that decrypts, as one list of queries. (sqlstate_of runs them with EXECUTE, so
-- each query decrypts in an expression.)
CREATE TEMP TABLE decrypting (q text);
INSERT INTO decrypting VALUES
    ('SELECT embedding::text FROM acc_items'),
    ('SELECT body::text FROM acc_items'),
    ('SELECT meta::jsonb FROM acc_items'),
    ('SELECT embedding::real[] FROM acc_items'),
    ('SELECT vector_norm(embedding) FROM acc_items'),
    ('SELECT embedding <-> q FROM acc_items, acc_query'),
    ('SELECT l2_distance(embedding, q) FROM acc_items, acc_query'),
    ('SELECT embedding <#> q FROM acc_items, acc_query'),
    ('SELECT cosine_distance(q, embedding) FROM acc_items, acc_query'),
    ('SELECT embedding <+> q FROM acc_items, acc_query'),
    ('SELECT id FROM acc_items, acc_query ORDER BY embedding <-> q LIMIT 1'),
    ('SELECT meta ->> ''k'' FROM acc_items'),
    ('SELECT meta -> ''k'' FROM acc_items'),
    ('SELECT id FROM acc_items WHERE meta @> ''{"k": "a"}'''),
    ('SELECT evector_send(embedding) FROM acc_items'),
    ('SELECT etext_send(body) FROM acc_items'),
    ('SELECT ejsonb_send(meta) FROM acc_items');
GRANT SELECT ON decrypting TO PUBLIC;
-- One line per distinct outcome for the current role.
CREATE FUNCTION decrypt_outcomes() RETURNS TABLE (outcome text, queries bigint)
LANGUAGE sql AS $$
    SELECT o, count(*) FROM (SELECT sqlstate_of(q) AS o FROM decrypting) s
    GROUP BY o ORDER BY o COLLATE "C"
$$;

-- The owner decrypts everything.
SELECT * FROM decrypt_outcomes();
SELECT id, embedding, body, meta FROM acc_items ORDER BY id;

-- A role with table privileges but no vault grant: every decryption is refused (42501), with
-- a detail and a hint; the plaintext never reaches it.
SET ROLE regress_acc_none;
SELECT embedding FROM acc_items;
SELECT body FROM acc_items;
SELECT * FROM decrypt_outcomes();
-- It can still count rows and read dimensions: they are not secret (see README threat model).
SELECT id, vector_dims(embedding) FROM acc_items ORDER BY id;
SELECT count(*) FROM acc_items WHERE body IS NOT NULL;
-- Nor can it seal values under the vault (a query literal is sealed too).
SELECT sqlstate_of($$SELECT '[1,1]'::evector$$);
SELECT sqlstate_of($$SELECT id FROM acc_items ORDER BY embedding <-> '[1,1]' LIMIT 1$$);
-- Its view of the vault catalog is empty.
SELECT vault.access_level('acc') IS NULL AS no_level, (SELECT count(*) FROM vault.vaults) AS vaults;
RESET ROLE;

-- With 'read' everything decrypts, including a search with its own query vector.
SET ROLE regress_acc_reader;
SELECT * FROM decrypt_outcomes();
SELECT id, embedding, body, meta ->> 'k' AS k FROM acc_items
ORDER BY embedding <-> '[0.1,0.9]' LIMIT 2;
PREPARE acc_knn(evector) AS SELECT id FROM acc_items ORDER BY embedding <=> $1 LIMIT 1;
EXECUTE acc_knn('[1,0.1]');
DEALLOCATE acc_knn;
RESET ROLE;
SET ROLE regress_acc_writer;
SELECT * FROM decrypt_outcomes();
RESET ROLE;

-- Access through a granted group role: a member that inherits gets it; a NOINHERIT member gets
-- it only after SET ROLE to the group.
SET ROLE regress_acc_member;
SELECT vault.access_level('acc');
SELECT * FROM decrypt_outcomes();
RESET ROLE;
SET ROLE regress_acc_noinherit;
SELECT vault.access_level('acc') IS NULL AS no_level;
SELECT * FROM decrypt_outcomes();
SET ROLE regress_acc_group;
SELECT vault.access_level('acc');
SELECT body FROM acc_items WHERE id = 1;
RESET ROLE;
-- Membership changes take effect at once: revoking the membership revokes the access.
REVOKE regress_acc_group FROM regress_acc_member;
SET ROLE regress_acc_member;
SELECT sqlstate_of('SELECT body::text FROM acc_items');
RESET ROLE;
GRANT regress_acc_group TO regress_acc_member;

-- BYPASSRLS is not a vault right.
SET ROLE regress_acc_bypass;
SELECT * FROM decrypt_outcomes();
RESET ROLE;
-- Owning the table is not a vault right either.
ALTER TABLE acc_items OWNER TO regress_acc_tblowner;
SET ROLE regress_acc_tblowner;
SELECT * FROM decrypt_outcomes();
SELECT sqlstate_of($$UPDATE acc_items SET body = body::text || '!'$$);
RESET ROLE;
ALTER TABLE acc_items OWNER TO CURRENT_USER;

-- Grants and revokes take effect immediately in the same session.
SET ROLE regress_acc_none;
SELECT sqlstate_of('SELECT body::text FROM acc_items');
RESET ROLE;
SELECT vault.grant('acc', 'regress_acc_none', 'read');
SET ROLE regress_acc_none;
SELECT sqlstate_of('SELECT body::text FROM acc_items');
RESET ROLE;
SELECT vault.revoke('acc', 'regress_acc_none');
SET ROLE regress_acc_none;
SELECT sqlstate_of('SELECT body::text FROM acc_items');
RESET ROLE;
-- Also inside a transaction, and a rolled-back grant gives nothing.
BEGIN;
SELECT vault.grant('acc', 'regress_acc_none', 'read');
SET LOCAL ROLE regress_acc_none;
SELECT body FROM acc_items WHERE id = 2;
ROLLBACK;
SET ROLE regress_acc_none;
SELECT sqlstate_of('SELECT body::text FROM acc_items');
RESET ROLE;

-- Managing grants needs admin: read and write members cannot grant or revoke (42501).
SET ROLE regress_acc_reader;
SELECT vault.grant('acc', 'regress_acc_none', 'read');
SELECT sqlstate_of($$SELECT vault.revoke('acc', 'regress_acc_writer')$$);
SELECT count(*) AS grants_visible FROM vault.grants;
SET ROLE regress_acc_writer;
SELECT sqlstate_of($$SELECT vault.grant('acc', 'regress_acc_none', 'read')$$);
RESET ROLE;
-- An admin can grant read, write and admin, and revoke non-admins; it cannot grant ownership,
-- change or revoke another admin's grant, or drop the vault.
SET ROLE regress_acc_admin;
SELECT vault.grant('acc', 'regress_acc_none', 'read');
SELECT vault.grant('acc', 'regress_acc_none', 'write');
SELECT vault.grant('acc', 'regress_acc_bypass', 'admin');
SELECT grantee, level FROM vault.grants WHERE vault = 'acc' ORDER BY grantee::text COLLATE "C";
SELECT sqlstate_of($$SELECT vault.grant('acc', 'regress_acc_none', 'owner')$$);
SELECT vault.grant('acc', 'regress_acc_bypass', 'read');
SELECT sqlstate_of($$SELECT vault.revoke('acc', 'regress_acc_bypass')$$);
SELECT vault.revoke('acc', 'regress_acc_none');
SELECT sqlstate_of($$SELECT vault.drop_vault('acc')$$);
RESET ROLE;
-- The owner can change and revoke an admin's grant.
SELECT vault.grant('acc', 'regress_acc_bypass', 'read');
SELECT vault.revoke('acc', 'regress_acc_bypass');
SELECT grantee, level FROM vault.grants WHERE vault = 'acc' ORDER BY grantee::text COLLATE "C";

-- A superuser has no implicit rights on a vault another role created: it cannot decrypt its
-- values, grant itself access, or drop it; vault.vaults does not list it.
GRANT EXECUTE ON FUNCTION vault.create_vault(text) TO regress_acc_vowner;
GRANT CREATE ON SCHEMA public TO regress_acc_vowner;
SET ROLE regress_acc_vowner;
SELECT vault.create_vault('acc_private');
SET vector_vault.vault = 'acc_private';
CREATE TABLE acc_private_items (id int, embedding evector(2), body etext);
INSERT INTO acc_private_items VALUES (1, '[2,3]', 'private');
SELECT id, embedding, body FROM acc_private_items;
RESET ROLE;
SELECT vault.access_level('acc_private') IS NULL AS superuser_no_level,
       (SELECT count(*) FROM vault.vaults WHERE name = 'acc_private') AS listed;
SELECT body FROM acc_private_items;
SELECT q, sqlstate_of(q) FROM unnest(ARRAY[
    'SELECT embedding::text FROM acc_private_items',
    'SELECT embedding <-> embedding FROM acc_private_items',
    $$SELECT vault.grant('acc_private', current_user::regrole, 'read')$$,
    $$SELECT vault.drop_vault('acc_private')$$,
    $$INSERT INTO acc_private_items VALUES (2, '[1,1]', 'sealed by superuser')$$
]) AS q;
SELECT id, vector_dims(embedding) FROM acc_private_items;
-- The superuser's own vault is just as closed to that role.
SET ROLE regress_acc_vowner;
SELECT sqlstate_of('SELECT body::text FROM acc_items');
SELECT vault.drop_vault('acc_private');
RESET ROLE;

-- Clean up.
SET vector_vault.vault = 'acc';
DROP TABLE acc_private_items, acc_items, acc_query, decrypting;
DROP FUNCTION decrypt_outcomes();
SELECT vault.drop_vault('acc');
REVOKE EXECUTE ON FUNCTION vault.create_vault(text) FROM regress_acc_vowner;
REVOKE CREATE ON SCHEMA public FROM regress_acc_vowner;
DROP ROLE regress_acc_none, regress_acc_reader, regress_acc_writer, regress_acc_admin,
    regress_acc_member, regress_acc_noinherit, regress_acc_group, regress_acc_bypass,
    regress_acc_tblowner, regress_acc_vowner;
