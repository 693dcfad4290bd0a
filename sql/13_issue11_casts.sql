-- 13_issue11_casts: casts into evector from integer[], numeric[] (psycopg2 sends Python lists as
-- numeric[]) and double precision[], as pgvector has them (issue 11: each errored). They seal
-- under the session's vault like the real[] cast; the result decrypts to the same vector.
SET vector_vault.vault = 'regress';
SELECT ARRAY[1,2,3]::integer[]::evector;
SELECT ARRAY[1.5,-2.25,3]::numeric[]::evector;
SELECT ARRAY[1.5,-2.25,3]::double precision[]::evector;
SELECT ARRAY[1.5,-2.25,3]::real[]::evector;
-- Assignment casts: INSERT of an array into an evector column (what a driver's bound list does).
CREATE TABLE ca_items (id int, embedding evector(3));
INSERT INTO ca_items VALUES (1, ARRAY[1,2,3]), (2, ARRAY[0.5,0.25,0.125]::numeric[]),
                            (3, ARRAY[1e-3,2e3,-3]::float8[]);
SELECT id, embedding, vault.vault_of(embedding) = (SELECT vault_id FROM vault._vaults WHERE name = 'regress') AS sealed_in_regress
FROM ca_items ORDER BY id;
-- The column's dimensions are enforced.
INSERT INTO ca_items VALUES (4, ARRAY[1,2]);
-- Refused elements, and no value quoted in the error.
SELECT sqlstate_of($$SELECT ARRAY[1e300,2]::numeric[]::evector$$);
SELECT sqlstate_of($$SELECT ARRAY[1e300,2]::float8[]::evector$$);
SELECT sqlstate_of($$SELECT ARRAY['NaN',2]::numeric[]::evector$$);
SELECT sqlstate_of($$SELECT ARRAY['Infinity',2]::float8[]::evector$$);
SELECT sqlstate_of($$SELECT ARRAY[1,NULL]::integer[]::evector$$);
SELECT sqlstate_of($$SELECT ARRAY[[1,2],[3,4]]::integer[]::evector$$);
SELECT sqlstate_of($$SELECT '{}'::integer[]::evector$$);
-- Without a vault selected nothing is sealed.
RESET vector_vault.vault;
SELECT sqlstate_of($$SELECT ARRAY[1,2]::numeric[]::evector$$);
SET vector_vault.vault = 'regress';
-- vault.from_pgvector refuses anything that is not pgvector's vector.
SELECT sqlstate_of($$SELECT vault.from_pgvector(ARRAY[1,2]::real[])$$);
SELECT sqlstate_of($$SELECT vault.from_pgvector('[1,2]'::text)$$);
DROP TABLE ca_items;
