-- 14_issue11_pgvector: from pgvector's vector to evector and back (issue 11), when pgvector is
-- installed on this server (expected/14_issue11_pgvector_1.out is the run without it).
-- vector_vault was created before pgvector here, so the casts come from the event trigger; a
-- second database installs them the other way round. The casts belong to neither extension:
-- DROP EXTENSION vector CASCADE drops them and leaves vector_vault alone.
SELECT count(*) > 0 AS has_pgvector FROM pg_available_extensions WHERE name = 'vector' \gset
\if :has_pgvector
\else
\echo pgvector is not installed: skipped
\quit
\endif
SET vector_vault.vault = 'regress';
-- No casts before pgvector exists.
SELECT vault.create_pgvector_casts();
CREATE EXTENSION vector;
-- casts(): the casts between vector and evector, and whether an extension owns them.
CREATE FUNCTION pv_casts() RETURNS TABLE (source regtype, target regtype, context "char", member boolean)
LANGUAGE sql AS $$
    SELECT castsource::regtype, casttarget::regtype, castcontext,
           EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_cast'::regclass
                   AND d.objid = c.oid AND d.deptype = 'e')
    FROM pg_cast c
    WHERE (castsource::regtype::text, casttarget::regtype::text) IN (('vector', 'evector'), ('evector', 'vector'))
    ORDER BY castsource::regtype::text
$$;
SELECT * FROM pv_casts();
SELECT vault.create_pgvector_casts();
CREATE TABLE pv_items (id int, embedding vector(3));
INSERT INTO pv_items VALUES (1, '[1,2,3]'), (2, '[-0.5,0.25,1e-7]');
-- vector -> evector: the function, the explicit cast and the assignment cast.
SELECT id, vault.from_pgvector(embedding) FROM pv_items ORDER BY id;
SELECT id, embedding::evector FROM pv_items ORDER BY id;
CREATE TABLE ev_items (id int, embedding evector(3));
INSERT INTO ev_items SELECT id, embedding FROM pv_items;
SELECT id, embedding FROM ev_items ORDER BY id;
-- What is stored is ciphertext under the session's vault.
SELECT count(*) FROM ev_items
WHERE vault.vault_of(embedding) = (SELECT vault_id FROM vault._vaults WHERE name = 'regress');
-- evector -> vector only explicitly (it writes plaintext out of the vault).
INSERT INTO pv_items SELECT id + 10, embedding FROM ev_items;
INSERT INTO pv_items SELECT id + 10, embedding::vector FROM ev_items;
SELECT id, embedding FROM pv_items ORDER BY id;
-- The column's dimensions still apply.
CREATE TABLE ev2 (embedding evector(2));
INSERT INTO ev2 SELECT embedding FROM pv_items LIMIT 1;
DROP TABLE pv_items, ev2;
-- Dropping pgvector drops the casts, not vector_vault.
DROP EXTENSION vector CASCADE;
SELECT * FROM pv_casts();
SELECT count(*) AS evector_rows FROM ev_items;
-- The other order: pgvector first, then vector_vault (the casts are created by its script).
CREATE DATABASE pv_order;
\c pv_order
CREATE EXTENSION vector;
CREATE EXTENSION vector_vault;
SELECT castsource::regtype, casttarget::regtype, castcontext,
       EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_cast'::regclass
               AND d.objid = c.oid AND d.deptype = 'e') AS member
FROM pg_cast c WHERE (castsource, casttarget) IN (('evector'::regtype, 'vector'::regtype),
                                                   ('vector'::regtype, 'evector'::regtype))
ORDER BY castsource::regtype::text;
DROP EXTENSION vector_vault;
DROP EXTENSION vector_vault CASCADE;
SELECT extname FROM pg_extension WHERE extname LIKE 'vector%' ORDER BY 1;
\c contrib_regression
DROP DATABASE pv_order;
DROP TABLE ev_items;
DROP FUNCTION pv_casts();
