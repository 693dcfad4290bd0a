# 080_key_crash_restart.pl — issue 14, "Key lifecycle under faults": the master key across crash
# restarts, and a master_key_command that hangs.
#
# A crash restart is a backend crash after which the postmaster stays up, ends every process and
# re-creates shared memory (restart_after_crash = on). Before the fix it read the configured key
# source again: after vault.rotate_master_key(new_key_file => ...) that is the OLD key, so every
# vault operation failed with 22V03 until a full restart; and a hanging master_key_command kept
# the server from accepting connections (at start and at every crash restart).
#
# (a) rotate_master_key(new_key_file), then a backend is SIGKILLed: the server comes back by
#     itself, logs that it kept the key in use, and every vault reads and accepts writes; a new
#     vault can be created.
# (b) a rotation stopped (gdb) after its commit marker, before any entry is renamed, and its
#     backend SIGKILLed: the crash restart completes the rotation (logged) and serves with the
#     rotation's new key, which it had never been configured with.
# (c) master_key_command configured (a script printing the current key); the script is then made
#     to hang (sleep) and a backend crashes: the server is back within seconds (the command is
#     not run again) and reads everything.
# (d) full restarts with vector_vault.master_key_command_timeout = 2: a command that hangs is
#     killed after 2 s (the server starts; vault operations fail with 22V03 naming the timeout);
#     a command that prints the key and leaves a child holding its standard output loads the key
#     at once, and that child is killed.
# (e) the documented limit: a full restart reads the configured source, so with the config still
#     naming the old key the server refuses with 22V03; configured with the current key it reads.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use VectorVault;

my $db = 'postgres';
my $node = VectorVault::new_node('crashkey');
my $base = $node->basedir;
my $keyring = $node->{vv_keyring};
my $case_conf = "$base/case.conf";
VectorVault::write_bytes($case_conf, '');
$node->append_conf('postgresql.conf', "restart_after_crash = on\ninclude_if_exists = '$case_conf'\n");
$node->start;
$node->safe_psql($db, q{
CREATE EXTENSION vector_vault;
SELECT vault.create_vault('c1');
SELECT vault.create_vault('c2');
CREATE TABLE docs (id int PRIMARY KEY, body etext);
SET vector_vault.vault = 'c1';
INSERT INTO docs VALUES (1, 'one');
SET vector_vault.vault = 'c2';
INSERT INTO docs VALUES (2, 'two');
});

my $read_sql = "SELECT string_agg(id || ':' || body::text, ',' ORDER BY id) FROM docs";
my $next_id = 10;

# Asserts that every row reads back and that both vaults take a new row.
sub serves
{
	my ($what, $expected) = @_;
	my ($state, $msg, $err, $out) = VectorVault::sql_error($node, $db, $read_sql);
	is($state, '', "$what: reading encrypted values works") or diag($err);
	is($out, $expected, "$what: every row decrypts to what was written");
	for my $v ('c1', 'c2')
	{
		my $id = $next_id++;
		($state, $msg, $err) = VectorVault::sql_error($node, $db,
			"SET vector_vault.vault = '$v'; INSERT INTO docs VALUES ($id, 'new $id')");
		is($state, '', "$what: vault $v takes a new row") or diag($err);
	}
	($state, $msg, $err, $out) = VectorVault::sql_error($node, $db, $read_sql);
	return $out;
}

# SIGKILLs a fresh backend and waits until the server accepts queries again; returns the log.
sub crash_backend
{
	my ($what) = @_;
	my $offset = -s $node->logfile;
	my $s = $node->background_psql($db, on_error_stop => 0);
	my $pid = $s->query_safe('SELECT pg_backend_pid()');
	ok(kill('KILL', $pid), "$what: backend $pid killed");
	eval { $s->quit };
	my $t0 = time();
	ok($node->poll_query_until($db, 'SELECT 1', '1'), "$what: the server accepts queries again");
	my $log = VectorVault::log_since($node, $offset);
	like($log, qr/all server processes terminated; reinitializing/, "$what: it was a crash restart");
	return ($log, time() - $t0);
}

my $expected = serves('start', '1:one,2:two');

# --- (a) rotate_master_key, then a crash ------------------------------------------------------------

my $key2 = "$base/master.key.2";
VectorVault::write_key($key2);
my ($rc, $out, $err) = $node->psql($db, "SELECT vault.rotate_master_key(new_key_file => '$key2')");
is($rc, 0, '(a) rotate_master_key succeeds') or diag($err);
$expected = serves('(a) after the rotation', $expected);
my ($log) = crash_backend('(a) crash after the rotation');
like($log, qr/vector_vault: kept the master key in use across the crash restart/,
	'(a) the crash restart kept the key in use (logged)');
unlike($log, qr/WARNING:\s+vector_vault: the master key does not match/,
	'(a) ... and did not fall back to the old configured key');
$expected = serves('(a) after the crash restart', $expected);
my ($state, $msg);
($state, $msg, $err) = VectorVault::sql_error($node, $db, "SELECT vault.create_vault('c3')");
is($state, '', '(a) after the crash restart a vault can be created') or diag($err);

# --- (b) a rotation interrupted after its commit marker by a backend crash -------------------------

my $key3 = "$base/master.key.3";
VectorVault::write_key($key3);
{
	my $offset = -s $node->logfile;
	my $s = $node->background_psql($db, on_error_stop => 0);
	my $pid = $s->query_safe('SELECT pg_backend_pid()');
	my $dir = "$base/gdb_b";
	mkdir $dir;
	my $g = VectorVault::gdb_pause($pid, $dir, ['vector_vault::RenameDurably']);
	ok($g->{attached}, '(b) gdb attached to the rotating backend') or diag(${ $g->{err} });
	$s->{stdin} .= "SELECT vault.rotate_master_key(new_key_file => '$key3');\n";
	$s->{run}->pump_nb;
	my $stopped = VectorVault::gdb_stopped($g, 60);
	ok($stopped, '(b) the rotation stopped at its first rename') or diag(${ $g->{out} } . ${ $g->{err} });
	ok(-f "$keyring/rotation.commit" && (grep { /\.next$/ } VectorVault::keyring_files($node)),
		'(b) at the stop the commit marker and the .next files are written');
	VectorVault::gdb_release($g, 'kill');
	eval { $s->quit };
	ok($node->poll_query_until($db, 'SELECT 1', '1'), '(b) the server accepts queries again');
	$log = VectorVault::log_since($node, $offset);
	like($log, qr/finished a master key rotation interrupted by a crash/,
		'(b) the crash restart completed the rotation (logged)');
	like($log, qr/kept the master key in use across the crash restart, the one an interrupted rotation switched to/,
		'(b) ... and serves with the rotation\'s new key (logged)');
	is(scalar(grep { /\.next$|^rotation\.commit$/ } VectorVault::keyring_files($node)), 0,
		'(b) no .next file or commit marker is left');
}
$expected = serves('(b) after the interrupted rotation', $expected);

# --- (c) master_key_command; the command hangs at the next crash restart ----------------------------

my $script = "$base/getkey.sh";
VectorVault::write_bytes($script, "#!/bin/sh\nexec cat '$key3'\n", 0700);
VectorVault::write_bytes($case_conf,
	"vector_vault.master_key_file = ''\nvector_vault.master_key_command = '$script'\n");
my $offset = -s $node->logfile;
$node->restart;
like(VectorVault::log_since($node, $offset), qr/vector_vault: master key loaded/,
	'(c) restart with master_key_command printing the current key: loaded');
$expected = serves('(c) key from the command', $expected);
# The key source becomes a command that hangs (for 40 s; printing nothing).
VectorVault::write_bytes($script, "#!/bin/sh\nsleep 40\n", 0700);
my $took;
($log, $took) = crash_backend('(c) crash with a hanging key command');
ok($took < 20, sprintf('(c) the server was back after %.1f s (the command is not run again)', $took));
like($log, qr/kept the master key in use across the crash restart/, '(c) it kept the key in use');
$expected = serves('(c) after the crash restart', $expected);

# --- (d) full restarts: the command is bounded by master_key_command_timeout -------------------------

VectorVault::write_bytes($case_conf,
	"vector_vault.master_key_file = ''\nvector_vault.master_key_command = '$script'\n"
	  . "vector_vault.master_key_command_timeout = 2\n");
$offset = -s $node->logfile;
my $t0 = time();
$node->restart;
$took = time() - $t0;
ok($took < 20, sprintf('(d) hanging command: the server started after %.1f s', $took));
like(VectorVault::log_since($node, $offset),
	qr/WARNING:\s+vector_vault: master key command did not exit within 2 seconds and was killed/,
	'(d) hanging command: the log says it was killed after the timeout');
($state, $msg, $err) = VectorVault::sql_error($node, $db, $read_sql);
is($state, '22V03', '(d) hanging command: vault operations fail with 22V03');
like($msg, qr/did not exit within 2 seconds/, '(d) ... naming the timeout');
like($err, qr/HINT:.*master_key_command_timeout/, '(d) ... with a hint naming the setting');

# Prints the key, exits, and leaves a child holding standard output (for 41.7 s).
VectorVault::write_bytes($script, "#!/bin/sh\ncat '$key3'\nsleep 41.7 &\nexit 0\n", 0700);
$offset = -s $node->logfile;
$t0 = time();
$node->restart;
$took = time() - $t0;
ok($took < 20, sprintf('(d) command leaving a child on stdout: the server started after %.1f s', $took));
like(VectorVault::log_since($node, $offset), qr/vector_vault: master key loaded/,
	'(d) command leaving a child on stdout: the key is loaded');
my $left = `pgrep -a -f 'sleep 41[.]7'`;    # [.]: pgrep's own shell does not match
is($left, '', '(d) the child the command left behind was killed');
$expected = serves('(d) key from a command that left a child', $expected);

# --- (e) a full restart reads the configured source -----------------------------------------------------

VectorVault::write_bytes($case_conf, '');    # master_key_file = the node's first key
$offset = -s $node->logfile;
$node->restart;
like(VectorVault::log_since($node, $offset), qr/WARNING:\s+vector_vault: the master key does not match the keyring/,
	'(e) full restart with the config naming the old key: refused (the documented limit)');
($state) = VectorVault::sql_error($node, $db, $read_sql);
is($state, '22V03', '(e) ... vault operations fail with 22V03');
VectorVault::write_bytes($case_conf, "vector_vault.master_key_file = '$key3'\n");
$node->restart;
serves('(e) full restart configured with the current key', $expected);

$node->stop;
done_testing();
