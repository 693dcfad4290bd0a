-- 38_secret_wipes: buffers of plaintext and keys are zeroed on error paths too (issue 13).
-- vault._secret_wipes() counts, in this backend, the secret buffers handed out (pg/secret.h),
-- those their code released (zeroed), and those zeroed because an error reset their memory
-- context first. Each error path below raises between a decryption and its release.
SELECT vault.create_vault('sw_v');
SET vector_vault.vault = 'sw_v';
CREATE TABLE sw (id int, t etext, v evector(3));
INSERT INTO sw VALUES (1, 'plain ascii', '[1,2,3]'), (2, 'price 5 €', '[4,5,6]');
CREATE INDEX sw_i ON sw USING vault_hnsw (v);
CREATE TEMP TABLE base AS SELECT * FROM vault._secret_wipes();
-- happy paths release what they allocate: index inserts (vector, neighbour lists), the cast
-- to text and the binary send function
INSERT INTO sw VALUES (3, 'more', '[7,8,9]');
SELECT id, t::text FROM sw ORDER BY id;
SELECT length(etext_send(t)) > 0 AS sent FROM sw WHERE id = 1;
SELECT s.allocated - b.allocated >= 4 AS allocated,
       s.freed - b.freed = s.allocated - b.allocated AS all_released,
       s.wiped_on_reset - b.wiped_on_reset AS wiped_on_reset
FROM vault._secret_wipes() s, base b;
-- 1. etext_send raises in the middle: the client encoding cannot hold the euro sign. The
--    decrypted text was in a secret buffer: zeroed by the reset. The error does not quote the
--    character's bytes in the server log either (a plaintext statement, see redact.cpp).
SET client_encoding = 'LATIN1';
SELECT etext_send(t) FROM sw WHERE id = 2;
RESET client_encoding;
SELECT s.wiped_on_reset - b.wiped_on_reset AS wiped_after_send_error FROM vault._secret_wipes() s, base b;
-- 2. vault.rotate_master_key with the key in use: refused after the new key was read into
--    its locked page, which the reset zeroes and unmaps.
SELECT vault.rotate_master_key(new_key_file => current_setting('vector_vault.master_key_file'));
SELECT s.wiped_on_reset - b.wiped_on_reset AS wiped_after_rotation_error FROM vault._secret_wipes() s, base b;
-- 3. a cast from numeric[] raises at its third element, after two were converted into the
--    secret buffer (an element beyond float range)
SELECT ARRAY[1, 2, 1e400]::numeric[]::evector;
SELECT s.wiped_on_reset - b.wiped_on_reset AS wiped_after_array_error FROM vault._secret_wipes() s, base b;
-- 4. evector arithmetic opens both sides and its result in secret buffers and releases them
CREATE TEMP TABLE base4 AS SELECT * FROM vault._secret_wipes();
SELECT (v + v)::text AS doubled, (v * v)::text AS squared FROM sw WHERE id = 1;
SELECT s.allocated - b.allocated >= 6 AS allocated,
       s.freed - b.freed = s.allocated - b.allocated AS all_released
FROM vault._secret_wipes() s, base4 b;
-- every buffer this session was handed was zeroed: by its code or by its context
SELECT s.allocated - s.freed - s.wiped_on_reset AS never_zeroed FROM vault._secret_wipes() s;
-- the counters are for tests and operators: not for PUBLIC
CREATE ROLE sw_nobody;
SET ROLE sw_nobody;
SELECT * FROM vault._secret_wipes();
RESET ROLE;
DROP ROLE sw_nobody;
DROP TABLE sw;
SELECT vault.drop_vault('sw_v');
