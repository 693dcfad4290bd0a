-- 37_ddl_guard_bypass: the three ways around "only vault_hnsw indexes encrypted values" a
-- security review found (2026-12-05), each refused, with positive controls:
--   an expression whose value is encrypted (COALESCE(v, v), ARRAY[v]) under btree, UNIQUE or an
--   exclusion constraint; CREATE INDEX CONCURRENTLY (its index outlived the guard's ERROR, ready
--   for writes, and REINDEX made it valid); a range type over evector (not seen as encrypted).
SELECT vault.create_vault('gb_v');
SET vector_vault.vault = 'gb_v';
CREATE TABLE gb (id int, v evector(2), note text);
INSERT INTO gb SELECT i, format('[%s,0]', i)::evector, 'n' || i FROM generate_series(1, 10) i;
-- expressions with an encrypted value
CREATE INDEX gb_e1 ON gb ((COALESCE(v, v)));
CREATE INDEX gb_e2 ON gb ((ARRAY[v]));
CREATE UNIQUE INDEX gb_e3 ON gb ((COALESCE(v, v)));
ALTER TABLE gb ADD CONSTRAINT gb_x EXCLUDE USING btree ((COALESCE(v, v)) WITH =);
-- concurrently: refused before anything is built
CREATE INDEX CONCURRENTLY gb_c1 ON gb (v);
CREATE INDEX CONCURRENTLY gb_c2 ON gb ((COALESCE(v, v)));
CREATE INDEX CONCURRENTLY gb_c3 ON gb (note) WHERE v IS NOT NULL;
SELECT count(*) AS indexes_left_behind FROM pg_index WHERE indrelid = 'gb'::regclass;
-- positive controls: plaintext columns index as usual, concurrently too, and reindex
CREATE INDEX CONCURRENTLY gb_note ON gb (note);
CREATE INDEX gb_note_x ON gb ((note || 'x'));
REINDEX INDEX gb_note;
REINDEX TABLE gb;
SELECT count(*) AS indexes_now FROM pg_index WHERE indrelid = 'gb'::regclass;
-- a range over evector holds encrypted values: no btree on it, no partitioning by it
CREATE TYPE gb_range AS RANGE (subtype = evector);
SELECT vault._holds_encrypted('gb_range'::regtype) AS range_holds_encrypted,
       vault._holds_encrypted('int4range'::regtype) AS int4range_holds_encrypted;
CREATE TABLE gbr (id int, r gb_range);
CREATE INDEX gbr_r ON gbr (r);
CREATE TABLE gbp (id int, r gb_range) PARTITION BY RANGE (r);
DROP TABLE gbr;
DROP TYPE gb_range;
DROP TABLE gb;
SELECT vault.drop_vault('gb_v');
