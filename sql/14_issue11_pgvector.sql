-- 14_issue11_pgvector: from pgvector's vector, halfvec and sparsevec to evector, ehalfvec and
-- esparsevec and back (issue 11), when pgvector is installed on this server
-- (expected/14_issue11_pgvector_1.out is the run without it).
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
-- casts(): the casts between pgvector's types (vector, halfvec, sparsevec) and the encrypted
-- ones, and whether an extension owns them.
CREATE FUNCTION pv_casts() RETURNS TABLE (source regtype, target regtype, context "char", member boolean)
LANGUAGE sql AS $$
    SELECT castsource::regtype, casttarget::regtype, castcontext,
           EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_cast'::regclass
                   AND d.objid = c.oid AND d.deptype = 'e')
    FROM pg_cast c
    WHERE (castsource::regtype::text IN ('vector', 'halfvec', 'sparsevec')
           AND casttarget::regtype::text IN ('evector', 'ehalfvec', 'esparsevec'))
       OR (castsource::regtype::text IN ('evector', 'ehalfvec', 'esparsevec')
           AND casttarget::regtype::text IN ('vector', 'halfvec', 'sparsevec'))
    ORDER BY castsource::regtype::text, casttarget::regtype::text
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

-- pgvector's halfvec and sparsevec: halfvec -> ehalfvec (the halves as they are), halfvec ->
-- evector (widened exactly) and sparsevec -> esparsevec, by function, explicit cast or assignment,
-- sealed under the session's vault; back to pgvector only explicitly. Values round-trip exactly
-- (0.1 is stored as the half nearest to it, as pgvector stores it), NULLs stay NULL, the
-- columns' dimensions apply.
CREATE TABLE pv_half (id int, h halfvec(3), s sparsevec(5));
INSERT INTO pv_half VALUES (1, '[1,2.5,-3]', '{1:0.5,4:-2}/5'), (2, '[0.1,65504,-6e-5]', '{5:1e-7}/5'),
    (3, NULL, NULL);
SELECT id, vault.from_pghalfvec(h)::text AS eh, vault.from_pgsparsevec(s)::text AS es,
       vault.from_pgvector(h)::text AS ev, h::ehalfvec::text AS cast_eh, s::esparsevec::text AS cast_es
FROM pv_half ORDER BY id;
CREATE TABLE eh_items (id int, h ehalfvec(3), s esparsevec(5), v evector(3));
INSERT INTO eh_items SELECT id, h, s, h FROM pv_half;
SELECT e.id, e.h::text = p.h::text AS h_text_same, e.s::text = p.s::text AS s_text_same,
       e.v::text = p.h::text AS v_text_same, e.h::halfvec = p.h AS h_back_same,
       e.s::sparsevec = p.s AS s_back_same, e.h::halfvec IS NULL AS h_null, e.s::sparsevec IS NULL AS s_null,
       vault.vault_of(e.h) = vault.vault_id('regress') AS h_sealed_here,
       vault.vault_of(e.s) = vault.vault_id('regress') AS s_sealed_here
FROM eh_items e JOIN pv_half p USING (id) ORDER BY e.id;
-- ehalfvec -> halfvec and esparsevec -> sparsevec only explicitly (plaintext out of the vault).
INSERT INTO pv_half (id, h) SELECT id + 10, h FROM eh_items;
INSERT INTO pv_half (id, s) SELECT id + 10, s FROM eh_items;
-- The columns' dimensions apply, on both sides.
CREATE TABLE eh2 (h ehalfvec(2), s esparsevec(4));
INSERT INTO eh2 (h) SELECT h FROM pv_half WHERE id = 1;
INSERT INTO eh2 (s) SELECT s FROM pv_half WHERE id = 1;
SELECT '[1,2]'::halfvec::ehalfvec(3);
SELECT '[1,2]'::ehalfvec::halfvec(3);
SELECT '{1:1}/3'::esparsevec::sparsevec(2);
-- Each function takes only its own pgvector type.
SELECT vault.from_pghalfvec('[1,2]'::vector);
SELECT vault.from_pgsparsevec('[1,2]'::halfvec);
SELECT vault.from_pgvector('{1:1}/2'::sparsevec);
DROP TABLE pv_half, eh_items, eh2;

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
                                                   ('vector'::regtype, 'evector'::regtype),
                                                   ('ehalfvec'::regtype, 'halfvec'::regtype),
                                                   ('halfvec'::regtype, 'ehalfvec'::regtype),
                                                   ('halfvec'::regtype, 'evector'::regtype),
                                                   ('esparsevec'::regtype, 'sparsevec'::regtype),
                                                   ('sparsevec'::regtype, 'esparsevec'::regtype))
ORDER BY castsource::regtype::text, casttarget::regtype::text;
DROP EXTENSION vector_vault;
DROP EXTENSION vector_vault CASCADE;
SELECT extname FROM pg_extension WHERE extname LIKE 'vector%' ORDER BY 1;
\c contrib_regression
DROP DATABASE pv_order;
DROP TABLE ev_items;
DROP FUNCTION pv_casts();
