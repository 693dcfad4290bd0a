# 090_vault_identity.pl — one vault identity per keyring (issue 14, "One vault identity per
# keyring"): two databases of one cluster never share a live vault's keys by accident, a drop in
# one never destroys another's data, and every vault always has someone who can shred it.
#
# Database orig: vault v (owner alice, an API key and a key-management password), table t with
# a row sealed in v. Then:
#   - CREATE DATABASE tcopy TEMPLATE orig: reading v's row in tcopy is refused (22V02, naming
#     database orig; on c9ba3cb the copy decrypted with the shared entry), granting in the copy is
#     refused (the copy's catalog cannot hand out the original's data), and drop_vault in tcopy
#     succeeds with a NOTICE but leaves orig's keyring entry and data alone (on c9ba3cb it
#     shredded orig's vault);
#   - ciphertext pg_dump -Fc of orig, pg_restore into a fresh database rest of the same cluster:
#     the restore succeeds and imports the API key (positive control for the guard below), the
#     restored catalog's roles get their pg_shdepend dependency at once, reads are refused, drop_vault in rest leaves orig readable (the README step-7 data loss);
#   - adoption: a non-superuser is refused; a superuser's vault.adopt_copied_vaults() in another
#     TEMPLATE copy re-wraps the key under a new keyring id (with a claim) and alice reads the row
#     there; drop_vault in the adopted copy shreds only the copy's entry (orig still reads);
#     a third adopted copy keeps reading after v is dropped in orig (orig's entry is gone);
#   - pg_restore of the dump into a database that already has a vault named v: the catalog COPYs
#     are refused ("already has vaults") and neither the API key nor the key-management password
#     hash is imported (on c9ba3cb both were);
#   - DROP ROLE of a vault owner run from another database (postgres, no extension) is refused by
#     Postgres' shared-dependency check (2BP01; on c9ba3cb it succeeded and orphaned the vault);
#     a vault orphaned anyway (its pg_shdepend rows deleted by hand, as before the fix) can be
#     dropped, and its keys shredded, by a superuser (on c9ba3cb nobody could).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use VectorVault;

my $node = VectorVault::new_node('identity');
$node->start;
my $tmp = PostgreSQL::Test::Utils::tempdir;

$node->safe_psql('postgres', q{
CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN; CREATE ROLE carol LOGIN;
CREATE DATABASE orig;
});
$node->safe_psql('orig', q{
CREATE EXTENSION vector_vault;
GRANT EXECUTE ON FUNCTION vault.create_vault(text) TO alice;
CREATE TABLE t (id int PRIMARY KEY, body etext);
GRANT SELECT, INSERT ON t TO alice, bob;
SET ROLE alice;
SELECT vault.create_vault('v');
SET vector_vault.vault = 'v';
INSERT INTO t VALUES (1, 'secret row');
SELECT vault.set_key_password('alice-pw-1234567');
});
my $apikey = VectorVault::create_api_key($node, 'orig', 'alice', 'alice-pw-1234567', '{"v": "read"}');
ok($apikey, 'alice has an API key for v in orig');
my $vid = $node->safe_psql('orig', q{SELECT vault_id FROM vault._vaults WHERE name = 'v'});
my $keyfile = VectorVault::key_file_name($vid, 1);
my $read = q{SET ROLE alice; SET vector_vault.vault = 'v'; SELECT body::text FROM t WHERE id = 1};
is($node->safe_psql('orig', $read), 'secret row', 'orig: alice reads her row');
ok(-f "$node->{vv_keyring}/$keyfile", 'the keyring holds v\'s entry');

# Runs a client program against the node; returns (ok, stderr).
sub run_client
{
	my ($pgoptions, @cmd) = @_;
	local $ENV{PGOPTIONS} = $pgoptions if defined $pgoptions;
	local $ENV{PGHOST} = $node->host;
	local $ENV{PGPORT} = $node->port;
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run(\@cmd, '>', \$out, '2>', \$err);
	return ($ok, $err);
}
my $ct = '-c vector_vault.ciphertext_io=on';

# Runs $sql; its output, or "ERROR: <stderr>" when it failed (assertions must not die on c9ba3cb,
# where several of these statements fail, so every later check still runs and reports).
sub try_sql
{
	my ($dbname, $sql) = @_;
	my ($rc, $out, $err) = $node->psql($dbname, $sql);
	return $rc == 0 ? $out : "ERROR: $err";
}
my ($ok, $err) = run_client($ct, 'pg_dump', '-Fc', '-f', "$tmp/orig.dump", 'orig');
ok($ok, 'ciphertext pg_dump -Fc of orig') or diag($err);

# --- TEMPLATE copy --------------------------------------------------------------------------------

$node->safe_psql('postgres', 'CREATE DATABASE tcopy TEMPLATE orig');
my ($state, $msg) = VectorVault::sql_error($node, 'tcopy', $read);
is($state, '22V02', 'tcopy: reading v\'s row is refused (22V02)');
like($msg, qr/belong to database "orig"/, '... naming the database that owns the keys');
($state) = VectorVault::sql_error($node, 'tcopy', q{SET ROLE alice; SELECT vault.grant('v', 'bob', 'read')});
is($state, '22V02', 'tcopy: the copy\'s catalog cannot grant access to the original\'s vault');
my ($rc, $out, $stderr) = $node->psql('tcopy', q{SET ROLE alice; SELECT vault.drop_vault('v')});
is($rc, 0, 'tcopy: alice drops the copy of v');
like($stderr, qr/were not shredded: they belong to database "orig"/, '... with a NOTICE that the keys stay');
ok(-f "$node->{vv_keyring}/$keyfile", 'after the drop in tcopy, v\'s entry is still in the keyring');
is(try_sql('orig', $read), 'secret row', 'after the drop in tcopy, orig still reads its row');

# --- dump restored into a second database ---------------------------------------------------------

$node->safe_psql('postgres', 'CREATE DATABASE rest');
($ok, $err) = run_client($ct, 'pg_restore', '-d', 'rest', "$tmp/orig.dump");
ok($ok, 'pg_restore into the fresh database rest succeeds') or diag($err);
is(try_sql('rest', 'SELECT count(*) FROM vault._api_keys'), '1',
	'rest: the fresh restore carries the API key (the catalog restores as a whole)');
is(try_sql('rest', q{SELECT count(*) FROM pg_shdepend WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'rest')
	AND objid = 'vault._roles_in_use'::regclass AND refobjid = 'alice'::regrole AND deptype = 'a'}), '1',
	'rest: the restored catalog\'s roles got their shared dependency (trigger on the catalog COPY)');
($state, $msg) = VectorVault::sql_error($node, 'rest', $read);
is($state, '22V02', 'rest: reading the restored row is refused until adoption');
try_sql('rest', q{SET ROLE alice; SELECT vault.drop_vault('v')});
ok(-f "$node->{vv_keyring}/$keyfile", 'after the drop in rest, v\'s entry is still in the keyring');
is(try_sql('orig', $read), 'secret row', 'after the drop in rest, orig still reads its row');

# --- adoption --------------------------------------------------------------------------------------

$node->safe_psql('postgres', 'CREATE DATABASE acopy TEMPLATE orig; CREATE DATABASE bcopy TEMPLATE orig');
($state) = VectorVault::sql_error($node, 'acopy', q{SET ROLE alice; SELECT * FROM vault.adopt_copied_vaults()});
is($state, '42501', 'acopy: a non-superuser cannot adopt');
my $adopt = try_sql('acopy', 'SELECT vault, action FROM vault.adopt_copied_vaults()');
like($adopt, qr/^v\|re-wrapped 1 key versions/, 'acopy: the superuser adopts v (one key version re-wrapped)');
my $akid = try_sql('acopy', q{SELECT keyring_id FROM vault._vaults WHERE name = 'v'});
ok($akid =~ /^\d+$/ && $akid ne $vid, 'acopy: v has a keyring id of its own');
my $akeyfile = VectorVault::key_file_name($akid =~ /^\d+$/ ? $akid : 0, 1);
ok(-f "$node->{vv_keyring}/$akeyfile", '... with its own keyring entry');
ok(-f "$node->{vv_keyring}/" . sprintf('claim-%016x.db', $akid =~ /^\d+$/ ? $akid : 0), '... and its own claim');
is(try_sql('acopy', $read), 'secret row', 'acopy: alice reads the copied row after adoption');
like(try_sql('acopy', 'SELECT action FROM vault.adopt_copied_vaults()'), qr/already this database's/,
	'acopy: adopting again changes nothing');
try_sql('acopy', q{SET ROLE alice; SELECT vault.drop_vault('v')});
ok(!-f "$node->{vv_keyring}/$akeyfile", 'the drop in acopy shreds acopy\'s own entry');
ok(-f "$node->{vv_keyring}/$keyfile", '... and not orig\'s');
is(try_sql('orig', $read), 'secret row', 'after the drop in acopy, orig still reads its row');
like(try_sql('bcopy', 'SELECT action FROM vault.adopt_copied_vaults()'), qr/^re-wrapped/, 'bcopy: adopted');

# --- restore into a database that already has a vault of that name ---------------------------------

$node->safe_psql('postgres', 'CREATE DATABASE busy');
$node->safe_psql('busy', q{
CREATE EXTENSION vector_vault;
GRANT EXECUTE ON FUNCTION vault.create_vault(text) TO alice;
SET ROLE alice;
SELECT vault.create_vault('v');
});
($ok, $err) = run_client($ct, 'pg_restore', '-d', 'busy', "$tmp/orig.dump");
ok(!$ok, 'pg_restore into busy reports errors');
like($err, qr/already has vaults/, '... because the catalog COPYs are refused');
is(try_sql('busy', 'SELECT count(*) FROM vault._api_keys'), '0', 'busy: no API key was imported');
is(try_sql('busy', 'SELECT count(*) FROM vault._key_passwords'), '0',
	'busy: no key-management password hash was imported');
is(try_sql('busy', q{SELECT count(*) FROM vault._vaults}), '1', 'busy: keeps exactly its own vault');

# --- DROP ROLE from another database; a superuser can drop an orphaned vault ---------------------------

$node->safe_psql('orig', q{
GRANT EXECUTE ON FUNCTION vault.create_vault(text) TO carol;
SET ROLE carol;
SELECT vault.create_vault('cv');
RESET ROLE;
REVOKE EXECUTE ON FUNCTION vault.create_vault(text) FROM carol;
});
my $cvid = try_sql('orig', q{SELECT vault_id FROM vault._vaults WHERE name = 'cv'});
($state, $msg, $stderr) = VectorVault::sql_error($node, 'postgres', 'DROP ROLE carol');
is($state, '2BP01', 'DROP ROLE of a vault owner from another database is refused (2BP01)');
like($stderr, qr/database orig/, '... naming the database whose vault catalog uses the role');
# An orphan as c9ba3cb could make one: forget the dependency, then drop the role elsewhere.
try_sql('orig', q{DELETE FROM pg_shdepend WHERE refobjid = 'carol'::regrole});
try_sql('postgres', 'DROP ROLE IF EXISTS carol');
($state, $msg) = VectorVault::sql_error($node, 'orig', q{SELECT vault.drop_vault('cv')});
is($state, '', 'a superuser drops the vault whose owner role is gone') or diag($msg);
ok(!-f "$node->{vv_keyring}/" . VectorVault::key_file_name($cvid, 1), '... and its keys are shredded');
($state) = VectorVault::sql_error($node, 'orig', q{SET ROLE bob; SELECT vault.drop_vault('v')});
is($state, '42501', 'a non-owner still cannot drop a vault whose owner exists');

# --- drop in the original leaves the adopted copy's data ----------------------------------------------

try_sql('orig', q{SET ROLE alice; SELECT vault.drop_vault('v')});
ok(!-f "$node->{vv_keyring}/$keyfile", 'the drop in orig shreds orig\'s entry');
($state) = VectorVault::sql_error($node, 'orig', q{SELECT body::text FROM t});
is($state, '22V02', 'orig: the row is unreadable after the drop');
is(try_sql('bcopy', $read), 'secret row', 'bcopy (adopted) still reads its copy of the row');

$node->stop;
done_testing();
