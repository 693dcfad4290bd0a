# 003_master_key_errors.pl — every way the master key or keyring can be wrong gives a clear,
# specific error and never puts key material into the server log or an error message.
#
# Each case rewrites an included configuration file (and/or the key files), restarts the node and
# checks: the postmaster logged a WARNING naming the problem (the server still starts); creating
# a vault, reading and writing encrypted values fail with SQLSTATE 22V03 and the same reason plus
# a hint. Cases: (a) no master key configured; (b) key file missing; (c) 63 hex characters;
# (d) a non-hex character; (e) key file mode 0644; (f) a valid key that is not the one the
# keyring's master.check was made with (every hint says that a fix needs a restart; issue 11:
# a key file fixed with chmod 600 kept failing until a restart, and nothing said so); (g) both master_key_file and master_key_command set;
# (h) master_key_command printing the key works, one exiting 1 fails with its status;
# (i) keyring_dir inside the data directory (directly, through a symlink) and a relative
# keyring_dir are refused; (j) a keyring entry with a flipped byte (in the wrapped key, in the
# authenticated header) is "unusable" (22V01) on first use after restart, a deleted entry is
# "not in the keyring" (22V02), and the restored entry works again.
# After every case the whole server log and the client's error output are searched for the
# key texts involved (whole and in part); at the end a positive control writes the real key
# into the log (a logged statement) and the same search finds it.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;

my $db = 'postgres';
my $node = VectorVault::new_node('keys');
my $base = $node->basedir;
my $pgdata = $node->data_dir;
my $keyfile = $node->{vv_keyfile};
my $case_conf = "$base/vv_case.conf";
VectorVault::write_bytes($case_conf, '');
$node->append_conf('postgresql.conf', "include_if_exists = '$case_conf'\n");

my $good_hex = VectorVault::read_bytes($keyfile) =~ s/\s+//gr;
ok($good_hex =~ /^[0-9a-f]{64}$/, 'the node has a 64-hex-digit master key');

# Key texts that must never be logged: [name, text]. Extended by the cases that write key files.
my @secrets = ([ 'the master key', $good_hex ]);

# Finds the secret texts (whole, upper-cased, first and last 16 characters) in $text.
sub secrets_in
{
	my ($text) = @_;
	my @found;
	for my $s (@secrets)
	{
		my ($name, $hex) = @$s;
		for my $piece ($hex, uc($hex), substr($hex, 0, 16), substr($hex, -16))
		{
			if (index($text, $piece) >= 0)
			{
				push @found, $name;
				last;
			}
		}
	}
	return @found;
}

# Asserts that neither the server log (all of it) nor $client_text holds any key text.
sub no_key_material
{
	my ($case, $client_text) = @_;
	my @in_log = secrets_in(PostgreSQL::Test::Utils::slurp_file($node->logfile));
	ok(!@in_log, "$case: the server log holds no key material") or diag(join(', ', @in_log));
	my @in_client = secrets_in($client_text // '');
	ok(!@in_client, "$case: the client saw no key material") or diag(join(', ', @in_client));
	return;
}

# Replaces the case configuration, restarts, and returns what the server logged meanwhile.
sub restart_with
{
	my ($conf) = @_;
	VectorVault::write_bytes($case_conf, $conf);
	my $offset = -s $node->logfile;
	$node->restart;
	return VectorVault::log_since($node, $offset);
}

# Runs one failing case: restart with $conf, then check the log and the errors.
sub refused
{
	my ($case, $conf, $reason) = @_;
	my $log = restart_with($conf);
	like($log,
		qr/WARNING:\s+vector_vault: $reason; vault operations will fail until this is fixed\n[^\n]*HINT:\s+\S/,
		"$case: the server log has a WARNING with the reason and a hint");
	unlike($log, qr/master key loaded/, "$case: the server does not claim the key was loaded");
	my $client = '';
	my ($state, $msg, $err) = VectorVault::sql_error($node, $db, "SELECT vault.create_vault('k_new')");
	$client .= $err;
	is($state, '22V03', "$case: vault.create_vault fails with SQLSTATE 22V03");
	like($msg, qr/vector_vault master key is not available: $reason/, "$case: ... naming the reason");
	like($err, qr/HINT:\s+\S/, "$case: ... with a hint");
	like($err, qr/HINT:[^\n]*restart/, "$case: ... that says a fix needs a restart");
	($state, $msg, $err) = VectorVault::sql_error($node, $db, 'SELECT body::text FROM secrets');
	$client .= $err;
	is($state, '22V03', "$case: reading encrypted values fails with SQLSTATE 22V03");
	($state, $msg, $err) = VectorVault::sql_error($node, $db,
		"SET vector_vault.vault = 'k1'; INSERT INTO secrets VALUES (99, 'new')");
	$client .= $err;
	is($state, '22V03', "$case: writing encrypted values fails with SQLSTATE 22V03");
	no_key_material($case, $client);
	return;
}

# Asserts that the secrets table reads back as written.
sub readable
{
	my ($case) = @_;
	my ($state, $msg, $err, $out) = VectorVault::sql_error($node, $db,
		'SELECT id, body::text, meta->>\'k\', embedding FROM secrets ORDER BY id');
	is($state, '', "$case: reading encrypted values works") or diag($err);
	is($out, "1|one|v1|[1,2]\n2|two|v2|[3,4]", "$case: values decrypt to what was written");
	return;
}

# --- the good configuration --------------------------------------------------------------------

my $offset = -s $node->logfile // 0;
$node->start;
like(VectorVault::log_since($node, $offset), qr/vector_vault: master key loaded, keyring at/,
	'good configuration: the server logs that the key was loaded');
$node->safe_psql($db, q{
CREATE EXTENSION vector_vault;
SELECT vault.create_vault('k1');
SET vector_vault.vault = 'k1';
CREATE TABLE secrets (id int PRIMARY KEY, body etext, meta ejsonb, embedding evector(2));
INSERT INTO secrets VALUES (1, 'one', '{"k": "v1"}', '[1,2]'), (2, 'two', '{"k": "v2"}', '[3,4]');
});
readable('good configuration');
my $k1 = $node->safe_psql($db, "SELECT vault_id FROM vault._vaults WHERE name = 'k1'");
my $k1_file = "$node->{vv_keyring}/" . VectorVault::key_file_name($k1);
ok(-f $k1_file && -f "$node->{vv_keyring}/master.check",
	'the keyring holds master.check and vault k1\'s entry');

# --- (a) .. (g): the key itself ----------------------------------------------------------------------

refused('(a) no master key', "vector_vault.master_key_file = ''\n", 'no master key is configured');

refused('(b) key file missing', "vector_vault.master_key_file = '$base/missing.key'\n",
	qr/could not open master key file "\Q$base\E\/missing.key": No such file or directory/);

# Bad key files hold a different random key, so a leak of them is told apart from the real one.
my $bad_hex = VectorVault::write_key("$base/bad-source.key");
unlink("$base/bad-source.key");
my $short = substr($bad_hex, 0, 63);
push @secrets, [ 'the 63-character key', $short ];
VectorVault::write_bytes("$base/short.key", "$short\n");
refused('(c) 63 hex characters', "vector_vault.master_key_file = '$base/short.key'\n",
	qr/master key must be exactly 64 hexadecimal characters, got 63 characters/);

my $nonhex = substr($bad_hex, 0, 31) . 'g' . substr($bad_hex, 32);
push @secrets, [ 'the key with a non-hex character', $nonhex ];
VectorVault::write_bytes("$base/nonhex.key", "$nonhex\n");
refused('(d) non-hex character', "vector_vault.master_key_file = '$base/nonhex.key'\n",
	qr/master key contains a character that is not hexadecimal/);

chmod(0644, $keyfile) or die "chmod: $!";
refused('(e) key file mode 0644', '',
	qr/master key file "\Q$keyfile\E" is accessible by group or others \(mode 0644\)/);
chmod(0600, $keyfile) or die "chmod: $!";
{
	# Fixed without a restart: still refused (the key is read only at start), and the hint says
	# so; after a restart the key loads.
	my ($st, $m, $e) = VectorVault::sql_error($node, $db, "SELECT vault.create_vault('k_new')");
	is($st, '22V03', '(e) mode fixed to 0600, no restart: still SQLSTATE 22V03');
	like($e, qr/HINT:[^\n]*restart the server after the fix/,
		'(e) mode fixed to 0600, no restart: the hint says to restart the server');
	like(restart_with(''), qr/vector_vault: master key loaded/,
		'(e) mode fixed to 0600, after a restart: the key is loaded');
	readable('(e) mode fixed to 0600, after a restart');
}

my $other_hex = VectorVault::write_key("$base/other.key");
push @secrets, [ 'the other valid key', $other_hex ];
refused('(f) a different valid key', "vector_vault.master_key_file = '$base/other.key'\n",
	qr/the master key does not match the keyring in "\Q$node->{vv_keyring}\E"/);

refused('(g) both file and command', "vector_vault.master_key_command = 'cat $keyfile'\n",
	'both vector_vault.master_key_command and vector_vault.master_key_file are set');

# --- (h) master_key_command --------------------------------------------------------------------------

my $log =
  restart_with("vector_vault.master_key_file = ''\nvector_vault.master_key_command = 'cat $keyfile'\n");
like($log, qr/vector_vault: master key loaded/, '(h) command printing the key: the key is loaded');
unlike($log, qr/WARNING:\s+vector_vault/, '(h) command printing the key: no warning');
readable('(h) command printing the key');
my ($state, $msg, $err) = VectorVault::sql_error($node, $db, "SELECT vault.create_vault('via_command')");
is($state, '', '(h) command printing the key: vault.create_vault works') or diag($err);
no_key_material('(h) command printing the key', $err);

refused('(h) command exiting 1',
	"vector_vault.master_key_file = ''\nvector_vault.master_key_command = 'exit 1'\n",
	'master key command exited with status 1');

# --- (i) where the keyring may live --------------------------------------------------------------------

refused('(i) keyring_dir inside the data directory', "vector_vault.keyring_dir = '$pgdata/vv_keyring'\n",
	'vector_vault.keyring_dir must be outside the data directory');
mkdir("$pgdata/vv_keyring_target", 0700) or die "mkdir: $!";
symlink("$pgdata/vv_keyring_target", "$base/keyring_link") or die "symlink: $!";
refused('(i) keyring_dir a symlink into the data directory',
	"vector_vault.keyring_dir = '$base/keyring_link'\n",
	'vector_vault.keyring_dir must be outside the data directory');
refused('(i) relative keyring_dir', "vector_vault.keyring_dir = 'keyring'\n",
	'vector_vault.keyring_dir is not set to an absolute path');
unlink("$base/keyring_link");
rmdir("$pgdata/vv_keyring_target");
rmdir("$pgdata/vv_keyring");

# --- (j) damaged and missing keyring entries -------------------------------------------------------------

$log = restart_with('');
like($log, qr/vector_vault: master key loaded/, 'good configuration again: the key is loaded');
readable('good configuration again');

my $entry = VectorVault::read_bytes($k1_file);
is(length($entry), 88, 'vault k1\'s keyring entry is 88 bytes');
# Flips one byte of k1's entry, restarts, and expects 22V01 on first use.
for my $flip ([ 50, 'wrapped key' ], [ 8, 'authenticated header (vault id)' ], [ 80, 'GCM tag' ])
{
	my ($pos, $where) = @$flip;
	my $bad = $entry;
	substr($bad, $pos, 1) = chr(ord(substr($bad, $pos, 1)) ^ 0x01);
	VectorVault::write_bytes($k1_file, $bad);
	restart_with('');
	($state, $msg, $err) = VectorVault::sql_error($node, $db, 'SELECT body::text FROM secrets');
	is($state, '22V01', "(j) flipped byte in the $where: first use fails with SQLSTATE 22V01");
	like($msg, qr/keyring entry "\Q@{[ VectorVault::key_file_name($k1) ]}\E" is unusable/,
		"(j) flipped byte in the $where: the entry is named unusable");
	like($err, qr/HINT:\s+\S/, "(j) flipped byte in the $where: with a hint");
	no_key_material("(j) flipped byte in the $where", $err);
}

unlink($k1_file) or die "unlink: $!";
restart_with('');
($state, $msg, $err) = VectorVault::sql_error($node, $db, 'SELECT body::text FROM secrets');
is($state, '22V02', '(j) deleted entry: first use fails with SQLSTATE 22V02');
like($msg, qr/key version 1 of vault .* is not in the keyring/,
	'(j) deleted entry: says it is not in the keyring');
no_key_material('(j) deleted entry', $err);

VectorVault::write_bytes($k1_file, $entry);
restart_with('');
readable('(j) entry restored');

# --- (k) without shared_preload_libraries ------------------------------------------------------------

restart_with("shared_preload_libraries = ''\n");
$offset = -s $node->logfile;
$node->safe_psql($db, 'CREATE DATABASE nopreload');
my ($rc, $out, $k_err) = $node->psql(
	$db, q{\set VERBOSITY verbose
LOAD 'vector_vault';
SELECT 'alive after LOAD';
LOAD 'vector_vault';
SELECT 'alive after a second LOAD';
SELECT vector_dims('[1,2]'::evector);
SELECT 'alive after a function call';
\c nopreload
CREATE EXTENSION vector_vault;
SELECT 'alive after CREATE EXTENSION', count(*) FROM pg_extension WHERE extname = 'vector_vault';
}, on_error_stop => 0);
is( $out, "alive after LOAD\nalive after a second LOAD\nalive after a function call\n"
	  . "alive after CREATE EXTENSION|0",
	'(k) no preload: the session survives LOAD (twice), a function call and CREATE EXTENSION');
my @k_errors = $k_err =~ /ERROR:\s+22V03:\s+vector_vault is not loaded through shared_preload_libraries\n(?:(?!ERROR)[^\n]*\n)*?HINT:\s+Add vector_vault to shared_preload_libraries/g;
is(scalar(@k_errors), 4, '(k) no preload: each attempt is an ERROR 22V03 with the hint')
  or diag($k_err);
my $k_log = VectorVault::log_since($node, $offset);
unlike($k_err . $k_log, qr/FATAL|PGC_POSTMASTER/, '(k) no preload: nothing FATAL, client or log');
no_key_material('(k) no preload', $k_err);
like(restart_with(''), qr/vector_vault: master key loaded/, '(k) preloaded again: the key is loaded');
readable('(k) preloaded again');

# --- positive control: the log search finds a key that is in the log -------------------------------------

# (A plain SELECT of the literal under log_statement = all: the redaction masks values in messages
# of statements that could hand them on, a DO block's RAISE included, but not this.)
$node->safe_psql($db, "SET log_statement = 'all'; SELECT '$good_hex' AS control;");
my @found = secrets_in(PostgreSQL::Test::Utils::slurp_file($node->logfile));
ok((grep { $_ eq 'the master key' } @found),
	'positive control: the key written into the log by a logged statement is found by the same search');

$node->stop;
done_testing();
