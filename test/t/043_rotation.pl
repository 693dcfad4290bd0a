# 043_rotation.pl — master key rotation, vault data key rotation across restarts, and a data key
# rotation running while pg_basebackup copies the cluster.
#
# Master key: vault.rotate_master_key(new_key_file => ...) is refused inside a transaction block
# (25001) and for a non-superuser (42501); it returns the number of entries re-wrapped, leaves no
# ".next" file or commit marker, rewrites every entry file, and hints to update the config. A
# session opened before it keeps reading and searching, unwraps a key it had not used yet (vault
# r0, so the shared key really switched), and creates a vault (r2) whose entry is readable after
# the restart with the new key. Restarting with the config still pointing at the OLD key gives
# a clear 22V03 "does not match the keyring" (WARNING at start, error on use); pointing it at the
# new key makes everything readable again.
# Data key: rotate_key -> 2, restart, new rows use version 2 (key_version_of), old ones 1;
# reencrypt turns every value into version 2 with the same plaintext; retire_key_version(1) is
# refused (55000) while the index still holds the pre-VACUUM elements; after restart + VACUUM it
# works, the v1 key file is gone, and after another restart every row reads back unchanged and
# index searches equal exact (sequential) searches.
# During a base backup (pg_basebackup --max-rate, started in the background, seen streaming
# files, then held with SIGSTOP until the rotation is done, so machine speed does not matter):
# rotate_key -> 3, inserts, reencrypt, VACUUM, retire_key_version(2) all complete before
# the backup ends; the backup restored with the CURRENT keyring and key holds only version 3
# values and gives the primary's contents and search results.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use VectorVault;

my $db = 'postgres';
my $dim = 16;
my $node = VectorVault::new_node('rot', init_opts => { allows_streaming => 1 });
$node->append_conf('postgresql.conf', "max_connections = 20\n");
my $case_conf = $node->basedir . '/key_case.conf';
VectorVault::write_bytes($case_conf, '');
$node->append_conf('postgresql.conf', "include_if_exists = '$case_conf'\n");
$node->start;

my $vecs = VectorVault::int_vectors(400, $dim, 4343);
my $queries = VectorVault::int_vectors(12, $dim, 4444);
my %vec_of = map { ($_ + 1) => $vecs->[$_] } 0 .. 399;
$node->safe_psql($db, q{
CREATE EXTENSION vector_vault;
SELECT vault.create_vault('r0');
SELECT vault.create_vault('r1');
CREATE ROLE plain_role LOGIN;
CREATE TABLE items (id int PRIMARY KEY, body etext, embedding evector(16));
CREATE TABLE r0_items (id int PRIMARY KEY, body etext);
SET vector_vault.vault = 'r0';
INSERT INTO r0_items VALUES (1, 'r0 secret');
});
sub insert_rows
{
	my ($vault, @ids) = @_;
	$node->safe_psql($db, "SET vector_vault.vault = '$vault';\n" . VectorVault::insert_sql('items', \%vec_of, \@ids, 'row'));
	return;
}
insert_rows('r1', 1 .. 300);
$node->safe_psql($db,
	'CREATE INDEX items_embedding_idx ON items USING vault_hnsw (embedding evector_l2_ops) WITH (m = 16, ef_construction = 64)');

my $md5_sql = "SET vector_vault.vault = 'r1';\n"
  . "SELECT count(*) || ' ' || md5(string_agg(id || '|' || body::text || '|' || embedding::text, ';' ORDER BY id)) FROM items";
# The rows as written: "id|row id|[v,...]" joined by ';', counted and hashed in Perl.
sub expected_rows
{
	my (@ids) = @_;
	my $s = join(';', map { "$_|row $_|" . VectorVault::vector_text($vec_of{$_}) } sort { $a <=> $b } @ids);
	require Digest::MD5;
	return scalar(@ids) . ' ' . Digest::MD5::md5_hex($s);
}
# Index searches (ef_search 300, more than the rows) must equal exact searches.
sub searches_exact
{
	my ($n, $what) = @_;
	my $idx = VectorVault::search_lists($n, $db, $queries, vault => 'r1', ef => 300);
	my $exact = VectorVault::exact_lists($n, $db, $queries, vault => 'r1');
	is(scalar(grep { scalar(split /,/) == 10 } @$idx), 12, "$what: every index search returns 10 rows");
	is_deeply($idx, $exact, "$what: index searches equal exact searches") or diag(explain($idx), explain($exact));
	return $idx;
}
sub readable
{
	my ($what, @ids) = @_;
	is($node->safe_psql($db, $md5_sql), expected_rows(@ids), "$what: every row decrypts to what was written");
	return;
}
readable('start', 1 .. 300);
searches_exact($node, 'start');

# --- master key rotation ----------------------------------------------------------------------------

my $keyring = $node->{vv_keyring};
# The entries a master-key rotation re-wraps: master.check and the vaults' *.key files (not the
# key-use counters, *.count).
sub entries
{
	return { map { $_ => VectorVault::read_bytes("$keyring/$_") }
		  grep { $_ eq 'master.check' || /\.key$/ } VectorVault::keyring_files($node) };
}
my %entry_before = %{ entries() };
my $new_key = $node->basedir . '/master.key.2';
VectorVault::write_key($new_key);

my $session = $node->background_psql($db, on_error_stop => 0);
$session->query_safe("SET vector_vault.vault = 'r1'");
my $sess_md5 = $md5_sql =~ s/^SET[^\n]*\n//r;
is($session->query_safe($sess_md5), expected_rows(1 .. 300), 'an open session reads before the rotation');

my ($state, $msg, $err) = VectorVault::sql_error($node, $db,
	"BEGIN; SELECT vault.rotate_master_key(new_key_file => '$new_key'); COMMIT;");
is($state, '25001', 'rotate_master_key inside a transaction block is refused (25001)');
($state, $msg) = VectorVault::sql_error($node, $db,
	"SET ROLE plain_role; SELECT vault.rotate_master_key(new_key_file => '$new_key')");
is($state, '42501', 'rotate_master_key by a non-superuser is refused (42501)');
is_deeply(entries(), \%entry_before,
	'the refused attempts left the keyring unchanged');

my ($rc, $out);
($rc, $out, $err) = $node->psql($db, "SELECT vault.rotate_master_key(new_key_file => '$new_key')");
is($rc, 0, 'rotate_master_key(new_key_file) succeeds') or diag($err);
is($out, scalar(keys %entry_before), "it re-wrapped every keyring entry (" . scalar(keys %entry_before) . ')');
like($err, qr/HINT:.*set vector_vault\.master_key_file = '\Q$new_key\E'/, 'its notice says to point the config at the new key');
my %entry_after = %{ entries() };
is_deeply([ sort keys %entry_after ], [ sort keys %entry_before ], 'the keyring has the same entries');
is(scalar(grep { /\.next$|^rotation\.commit$/ } VectorVault::keyring_files($node)), 0, 'no .next file and no commit marker is left');
is(scalar(grep { $entry_after{$_} ne $entry_before{$_} && length($entry_after{$_}) == 88 } keys %entry_before),
	scalar(keys %entry_before), 'every entry file was rewritten');

is($session->query_safe($sess_md5), expected_rows(1 .. 300), 'the session opened before the rotation still reads');
is($session->query_safe("SET enable_seqscan = off; SET vector_vault.ef_search = 300;
SELECT string_agg(id::text, ',') FROM (SELECT id FROM items ORDER BY embedding <-> '" . VectorVault::vector_text($queries->[0]) . "' LIMIT 10) s"),
	VectorVault::exact_lists($node, $db, [ $queries->[0] ], vault => 'r1')->[0], '... and still searches');
is($session->query_safe('SELECT body::text FROM r0_items'), 'r0 secret',
	'... and unwraps a key it had not used before (vault r0) with the new master key');
$session->query_safe("SELECT vault.create_vault('r2'); SET vector_vault.vault = 'r2'; CREATE TABLE r2_items (id int, body etext);
INSERT INTO r2_items VALUES (1, 'r2 secret')");
is($session->query_safe('SELECT body::text FROM r2_items'), 'r2 secret', '... and creates a vault and writes to it');
$session->quit;
($state, $msg, $err) = VectorVault::sql_error($node, $db, "SELECT vault.create_vault('r3')");
is($state, '', 'a new session creates a vault after the rotation') or diag($err);

# Restart with the config still naming the old key.
my $offset = -s $node->logfile;
$node->restart;
like(VectorVault::log_since($node, $offset), qr/WARNING:\s+vector_vault: the master key does not match the keyring/,
	'restart with the old key: the server warns that the key does not match the keyring');
($state, $msg, $err) = VectorVault::sql_error($node, $db, "SET vector_vault.vault = 'r1'; SELECT body::text FROM items LIMIT 1");
is($state, '22V03', 'restart with the old key: reading fails with 22V03');
like($msg, qr/does not match the keyring/, '... saying the master key does not match the keyring');
like($err, qr/HINT:\s+\S/, '... with a hint');

VectorVault::write_bytes($case_conf, "vector_vault.master_key_file = '$new_key'\n");
$offset = -s $node->logfile;
$node->restart;
like(VectorVault::log_since($node, $offset), qr/vector_vault: master key loaded/, 'config fixed: the new key is loaded');
readable('config fixed', 1 .. 300);
is($node->safe_psql($db, 'SELECT body::text FROM r2_items'), 'r2 secret', 'config fixed: the vault made by the old session reads');
is($node->safe_psql($db, 'SELECT body::text FROM r0_items'), 'r0 secret', 'config fixed: vault r0 reads');
searches_exact($node, 'config fixed');

# --- vault data key rotation across restarts --------------------------------------------------------

my $r1_id = $node->safe_psql($db, "SELECT vault_id FROM vault._vaults WHERE name = 'r1'");
my $kf = sub { "$keyring/" . VectorVault::key_file_name($r1_id, $_[0]) };
is($node->safe_psql($db, "SELECT vault.rotate_key('r1')"), '2', 'rotate_key(r1) returns version 2');
ok(-f $kf->(1) && -f $kf->(2), 'the keyring holds versions 1 and 2');
$node->restart;
insert_rows('r1', 301 .. 350);
my $versions_sql = q{SELECT string_agg(v || ':' || n, ',' ORDER BY v) FROM (SELECT vault.key_version_of(body) || '/' || vault.key_version_of(embedding) AS v, count(*) AS n FROM items GROUP BY 1) s};
is($node->safe_psql($db, $versions_sql), '1/1:300,2/2:50', 'after restart: new rows use version 2, old ones version 1');
readable('mixed versions', 1 .. 350);
searches_exact($node, 'mixed versions');

($rc, $out, $err) = $node->psql($db, "CALL vault.reencrypt('r1', 70)");
is($rc, 0, 'CALL vault.reencrypt(r1) succeeds') or diag($err);
like($err, qr/600 values re-encrypted under key version 2/, 'it re-encrypted the 300 rows\' two values');
is($node->safe_psql($db, $versions_sql), '2/2:350', 'every value now uses version 2');
($state, $msg) = VectorVault::sql_error($node, $db, "SELECT vault.retire_key_version('r1', 1)");
is($state, '55000', 'retire_key_version(1) before VACUUM is refused (55000)');
like($msg, qr/index "items_embedding_idx" still holds \d+ live entries under key version 1/, '... because the index still holds version 1 entries');
($state, $msg) = VectorVault::sql_error($node, $db, "SELECT vault.retire_key_version('r1', 2)");
is($state, '22023', 'retiring the current version is refused (22023)');
$node->restart;
$node->safe_psql($db, 'VACUUM items');
($state, $msg, $err) = VectorVault::sql_error($node, $db, "SELECT vault.retire_key_version('r1', 1)");
is($state, '', 'after restart + VACUUM retire_key_version(r1, 1) succeeds') or diag($err);
ok(!-f $kf->(1) && -f $kf->(2), 'the v1 key file is gone, v2 remains');
$node->restart;
readable('after retire + restart', 1 .. 350);
searches_exact($node, 'after retire + restart');
my ($ok, $report) = VectorVault::hnsw_verify($node, $db, 'items_embedding_idx');
ok($ok, 'after retire + restart: hnsw_verify reports every check ok') or diag($report);
# Regression (fixed in src/index/hnsw_verify.cpp): the elements VACUUM marked deleted are still
# sealed under the retired version and cannot be opened; they used to make verify treat the
# whole vault as shredded, so after a key retirement the live vault's graph was not checked.
like($report, qr/vault \Q@{[ sprintf('%016x', $r1_id) ]}\E: 350 live, 350 reachable/,
	'after retire + restart: hnsw_verify still checks vault r1\'s 350 live elements (regression: not "keys shredded")')
  or diag($report);

# --- data key rotation during a base backup ------------------------------------------------------------

my $size = $node->safe_psql($db, 'SELECT sum(pg_database_size(oid)) FROM pg_database');
my $rate_kb = int($size / 1024 / 10);    # about 10 s for the whole copy, once resumed
$rate_kb = 32 if $rate_kb < 32;
my $backup_dir = $node->backup_dir . '/during_rotation';
my ($bb_out, $bb_err) = ('', '');
my $bb_pidfile = $node->basedir . '/basebackup.pid';
my $bb = IPC::Run::start(
	[ 'sh', '-c', 'echo $$ > "$0"; exec "$@"', $bb_pidfile,
		'pg_basebackup', '-D', $backup_dir, '-h', $node->host, '-p', $node->port, '-X', 'stream',
		'--checkpoint', 'fast', '--no-sync', "--max-rate=${rate_kb}k" ],
	'>', \$bb_out, '2>', \$bb_err);
ok($node->poll_query_until($db, "SELECT count(*) > 0 FROM pg_stat_progress_basebackup WHERE phase = 'streaming database files'"),
	'pg_basebackup is streaming database files');
# Hold the copy where it is (SIGSTOP to pg_basebackup's main process; its WAL-streaming child goes
# on), so that the whole rotation happens during the backup however slow this machine is.
chomp(my $bb_pid = VectorVault::read_bytes($bb_pidfile));
ok(kill('STOP', $bb_pid), 'pg_basebackup paused mid-copy');
is($node->safe_psql($db, "SELECT vault.rotate_key('r1')"), '3', 'during the backup: rotate_key(r1) returns version 3');
insert_rows('r1', 351 .. 400);
($rc, $out, $err) = $node->psql($db, "CALL vault.reencrypt('r1', 100)");
is($rc, 0, 'during the backup: reencrypt succeeds') or diag($err);
$node->safe_psql($db, 'VACUUM items');
($state, $msg, $err) = VectorVault::sql_error($node, $db, "SELECT vault.retire_key_version('r1', 2)");
is($state, '', 'during the backup: retire_key_version(r1, 2) succeeds') or diag($err);
is($node->safe_psql($db, 'SELECT count(*) FROM pg_stat_progress_basebackup'), '1',
	'the backup was still running when the rotation finished');
kill('CONT', $bb_pid);
ok($bb->finish, 'pg_basebackup finished successfully') or diag($bb_err);
is($node->safe_psql($db, $versions_sql), '3/3:400', 'primary: every value uses version 3');
my $primary_md5 = $node->safe_psql($db, $md5_sql);
is($primary_md5, expected_rows(1 .. 400), 'primary: every row decrypts to what was written');
my $primary_search = searches_exact($node, 'primary after the rotation during the backup');

my $keyring_now = $node->basedir . '/keyring_now';
VectorVault::copy_dir($keyring, $keyring_now);
my $restored = VectorVault::restored_node('restored', $node, 'during_rotation', restore => 0,
	keyring => $keyring_now, keyfile => $new_key);
$restored->start;
is($restored->safe_psql($db, $versions_sql), '3/3:400', 'restored backup: every value uses version 3');
is($restored->safe_psql($db, $md5_sql), $primary_md5, 'restored backup: contents equal the primary\'s');
is_deeply(VectorVault::search_lists($restored, $db, $queries, vault => 'r1', ef => 300), $primary_search,
	'restored backup: index searches equal the primary\'s');
($ok, $report) = VectorVault::hnsw_verify($restored, $db, 'items_embedding_idx');
ok($ok, 'restored backup: hnsw_verify reports every check ok') or diag($report);
$restored->stop;

$node->stop;
done_testing();
