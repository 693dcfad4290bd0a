# 020_revoke_live_session.pl — revocation reaches sessions that are already logged in.
#
# Session 1 logs in with an API key and reads a vault; session 2 (the vault owner) then
#   - revokes the key: session 1's very next statement fails with 42501 "no longer valid: it
#     was revoked", on the same connection (same backend pid), and the protected table shows
#     it no rows;
#   - revokes the grant of the key's owner role (an owner-right change), or the membership
#     the owner role had its grant through: session 1's next statement fails with 42501; a new
#     grant gives access back on the next statement;
#   - rotates the key with no overlap: next statement fails ("it was rotated"); with an overlap
#     the session keeps working during the overlap, and must stop when the overlap ends;
#   - revokes the key while session 1 is inside a transaction (READ COMMITTED, and REPEATABLE
#     READ whose snapshot predates the revocation): the next statement fails in both.
# And a transaction-scoped login on a connection reused the way a transaction pooler reuses it
# (two consecutive transactions, the second without its own login) reads nothing in the second.
#
# Two assertions guard bugs that are fixed (see 40_attack_7_holes): the end of a rotation
# overlap used not to reach a live session, and a REPEATABLE READ transaction kept a revoked key
# working until it ended.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;

my $db = 'postgres';
my $pw = 'live-password-0001';
my $node = VectorVault::new_node('live');
$node->start;

# The superuser (extension owner) gets the same key-management password as the roles, so keys
# can be made whether or not passwords are checked per role (40_attack_7_holes, H1).
$node->safe_psql($db, qq{
CREATE EXTENSION vector_vault;
SELECT vault.set_key_password('$pw');
CREATE ROLE live_owner;
CREATE ROLE live_keyowner;
CREATE ROLE live_group;
CREATE ROLE live_member IN ROLE live_group;
CREATE ROLE live_app NOINHERIT;
GRANT EXECUTE ON FUNCTION vault.create_vault(text) TO live_owner;
GRANT CREATE ON SCHEMA public TO live_owner;
SET ROLE live_owner;
SELECT vault.create_vault('live_a');
SELECT vault.set_key_password('$pw');
SELECT vault.grant('live_a', 'live_keyowner', 'read');
SELECT vault.grant('live_a', 'live_group', 'read');
SET vector_vault.vault = 'live_a';
CREATE TABLE plain_items (id int PRIMARY KEY, body etext);
INSERT INTO plain_items VALUES (1, 'LIVE-SECRET-1'), (2, 'LIVE-SECRET-2');
CREATE TABLE prot_items (id int PRIMARY KEY, body etext);
INSERT INTO prot_items VALUES (1, 'LIVE-SECRET-1'), (2, 'LIVE-SECRET-2');
SELECT vault.protect('prot_items');
GRANT SELECT ON plain_items, prot_items TO PUBLIC;
RESET ROLE;
SET ROLE live_keyowner;
SELECT vault.set_key_password('$pw');
RESET ROLE;
SET ROLE live_member;
SELECT vault.set_key_password('$pw');
});

my $read_plain = 'SELECT body::text FROM plain_items WHERE id = 1';
my $count_prot = 'SELECT count(*) FROM prot_items';

# A session of live_app logged in with $key; checks that it reads.
sub logged_in_session
{
	my ($key, $name) = @_;
	my $s = VectorVault::bg_session($node, $db, "SET ROLE live_app;\nSELECT vault.login('$key');");
	my ($out, $err) = VectorVault::bg_query($s, $read_plain);
	is($out, 'LIVE-SECRET-1', "$name: the logged-in session reads the vault");
	($out, $err) = VectorVault::bg_query($s, $count_prot);
	is($out, '2', "$name: the logged-in session sees the protected rows");
	return $s;
}

# Asserts that the session's next statement is refused with 42501 and $message.
sub refused
{
	my ($s, $message, $name) = @_;
	my ($out, $err) = VectorVault::bg_query($s, $read_plain);
	is(VectorVault::err_sqlstate($err), '42501', "$name: next statement refused with 42501");
	like($err, $message, "$name: the error says why");
	unlike($err . $out, qr/LIVE-SECRET/, "$name: no plaintext in the output or the error");
	return;
}

# --- revocation -----------------------------------------------------------------------------
my $key = VectorVault::create_api_key($node, $db, 'live_owner', $pw, '{"live_a": "read"}');
my $s1 = logged_in_session($key, 'revoke');
my ($pid_before) = VectorVault::bg_query($s1, 'SELECT pg_backend_pid()');
$node->safe_psql($db,
	"SET ROLE live_owner; SELECT vault.revoke_api_key('$pw', '" . VectorVault::key_id($key) . "')");
refused($s1, qr/API key [0-9a-f]{16} is no longer valid: it was revoked/, 'revoke');
my ($out, $err) = VectorVault::bg_query($s1, $count_prot);
is($out, '0', 'revoke: the protected table shows no rows');
($out, $err) = VectorVault::bg_query($s1, 'SELECT pg_backend_pid()');
is($out, $pid_before, 'revoke: same connection, no reconnect');
($out, $err) = VectorVault::bg_query($s1, "SELECT vault.login('$key')");
is(VectorVault::err_sqlstate($err), '28P01', 'revoke: logging in again with the key fails (28P01)');
$s1->quit;

# --- the key owner's grant is revoked (owner-right change) ----------------------------------
$key = VectorVault::create_api_key($node, $db, 'live_keyowner', $pw, '{"live_a": "read"}');
$s1 = logged_in_session($key, 'owner grant');
$node->safe_psql($db, "SET ROLE live_owner; SELECT vault.revoke('live_a', 'live_keyowner')");
refused($s1, qr/permission denied to decrypt values in vault "live_a"/, 'owner grant revoked');
($out, $err) = VectorVault::bg_query($s1, $count_prot);
is($out, '0', 'owner grant revoked: the protected table shows no rows');
$node->safe_psql($db, "SET ROLE live_owner; SELECT vault.grant('live_a', 'live_keyowner', 'read')");
($out, $err) = VectorVault::bg_query($s1, $read_plain);
is($out, 'LIVE-SECRET-1', 'owner grant given back: the next statement reads again');
$s1->quit;

# --- the key owner had its right through a group; the membership is revoked -----------------
$key = VectorVault::create_api_key($node, $db, 'live_member', $pw, '{"live_a": "read"}');
$s1 = logged_in_session($key, 'membership');
$node->safe_psql($db, 'REVOKE live_group FROM live_member');
refused($s1, qr/permission denied to decrypt values in vault "live_a"/, 'membership revoked');
$node->safe_psql($db, 'GRANT live_group TO live_member');
($out, $err) = VectorVault::bg_query($s1, $read_plain);
is($out, 'LIVE-SECRET-1', 'membership given back: the next statement reads again');
$s1->quit;

# --- rotation with no overlap ---------------------------------------------------------------
$key = VectorVault::create_api_key($node, $db, 'live_owner', $pw, '{"live_a": "read"}');
$s1 = logged_in_session($key, 'rotate');
my $new_key = $node->safe_psql($db,
	"SET ROLE live_owner; SELECT vault.rotate_api_key('$pw', '" . VectorVault::key_id($key) . "')");
refused($s1, qr/API key [0-9a-f]{16} is no longer valid: it was rotated/, 'rotate, no overlap');
my $s2 = logged_in_session($new_key, 'rotate, new secret');
$s2->quit;
$s1->quit;

# --- rotation with an overlap: works during it, stops when it ends --------------------------
$key = VectorVault::create_api_key($node, $db, 'live_owner', $pw, '{"live_a": "read"}');
$s1 = logged_in_session($key, 'overlap');
$node->safe_psql($db,
	"SET ROLE live_owner; SELECT vault.rotate_api_key('$pw', '" . VectorVault::key_id($key)
	  . "', '10 seconds')");
($out, $err) = VectorVault::bg_query($s1, $read_plain);
is($out, 'LIVE-SECRET-1', 'overlap: the old secret keeps working during the overlap');
my $until = $node->safe_psql($db,
	"SELECT old_valid_until FROM vault._api_keys WHERE key_id = '" . VectorVault::key_id($key) . "'");
$node->safe_psql($db, "SELECT pg_sleep_until('$until'::timestamptz + interval '200 milliseconds')");
# Regression (fixed): the session's cache used to be reloaded only when the shared epoch moved or
# the key's expiry passed; the end of a rotation overlap was neither, so the old secret kept
# working in live sessions (src/vault/catalog.cpp, EnsureLoaded).
refused($s1, qr/API key [0-9a-f]{16} is no longer valid: it was rotated/, 'overlap ended');
$s1->quit;
my ($state) = VectorVault::sql_error($node, $db, "SET ROLE live_app; SELECT vault.login('$key')");
is($state, '28P01', 'overlap ended: the old secret no longer logs in');

# --- revocation while the session is inside a transaction -----------------------------------
for my $iso ('READ COMMITTED', 'REPEATABLE READ')
{
	$key = VectorVault::create_api_key($node, $db, 'live_owner', $pw, '{"live_a": "read"}');
	$s1 = logged_in_session($key, "in a $iso transaction");
	($out, $err) = VectorVault::bg_query($s1, "BEGIN ISOLATION LEVEL $iso;\n$read_plain");
	is($out, 'LIVE-SECRET-1', "$iso: reads inside the transaction");
	$node->safe_psql($db,
		"SET ROLE live_owner; SELECT vault.revoke_api_key('$pw', '" . VectorVault::key_id($key) . "')");
	# Regression (fixed): the cache reload used to read vault._api_keys with the transaction's
	# snapshot, which predates the revocation (src/vault/catalog.cpp, Load).
	refused($s1, qr/no longer valid: it was revoked/, "$iso: revoked during the transaction");
	VectorVault::bg_query($s1, 'ROLLBACK');
	refused($s1, qr/no longer valid: it was revoked/, "$iso: and after it");
	$s1->quit;
}

# --- a transaction-scoped login on a pooled connection ----------------------------------------
$key = VectorVault::create_api_key($node, $db, 'live_owner', $pw, '{"live_a": "read"}');
my $pooled = VectorVault::bg_session($node, $db, 'SET ROLE live_app');
($out, $err) = VectorVault::bg_query($pooled,
	"BEGIN;\nSELECT vault.login('$key', true);\n$read_plain;\n$count_prot;\nCOMMIT;");
is($out, "live_a\nLIVE-SECRET-1\n2", 'pooled: the first transaction logs in and reads');
($out, $err) = VectorVault::bg_query($pooled,
	"BEGIN;\nSELECT vault.principal();\n$count_prot;\nSELECT current_setting('vector_vault.vault') = '';");
is($out, "role live_app\n0\nt",
	'pooled: the next transaction acts as the role, sees no rows, has no vault selected');
($out, $err) = VectorVault::bg_query($pooled, $read_plain);
is(VectorVault::err_sqlstate($err), '42501', 'pooled: decrypting is refused in it (42501)');
unlike($out . $err, qr/LIVE-SECRET/, 'pooled: no plaintext');
VectorVault::bg_query($pooled, 'ROLLBACK');
# The same after a transaction that failed.
($out, $err) = VectorVault::bg_query($pooled,
	"BEGIN;\nSELECT vault.login('$key', true);\nSELECT 1/0;\nROLLBACK;");
($out, $err) = VectorVault::bg_query($pooled, "$count_prot;\nSELECT vault.principal();");
is($out, "0\nrole live_app", 'pooled: after a failed transaction, the role again');
$pooled->quit;

$node->stop;
done_testing();
