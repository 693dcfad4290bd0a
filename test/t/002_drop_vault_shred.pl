# 002_drop_vault_shred.pl — dropping a vault crypto-shreds it, and only it.
#
# Proves that vault.drop_vault():
#   - makes the dropped vault's values undecryptable (SQLSTATE 22V02) in a table shared with
#     another vault and in a table of its own, while the other vault's values stay readable;
#   - deletes the dropped vault's keyring entry files (vault-<id>-v1.key) and keeps the others;
#   - is a real shred, not a catalog flag: with the catalog row switched back to 'active' the
#     values still fail ("not in the keyring"), and a base backup taken *before* the drop and
#     restored *after* it (same keyring) cannot decrypt them either, while the other vault's rows
#     in that restored backup can;
#   - survives a restart, and re-creating a vault with the same name does not revive old rows;
#   - is transactional: ROLLBACK, ROLLBACK TO SAVEPOINT, and RELEASE followed by ROLLBACK keep the
#     keys and the data; RELEASE followed by COMMIT shreds;
#   - is crash-safe on the common path: an immediate shutdown right after the drop's COMMIT
#     leaves no key and no shred intent behind; and the intent mechanism itself works: a shred
#     intent written by hand for a committed transaction (with the key files put back) is
#     finished by vault.reconcile_keyring(), by the reconciler worker after a restart and after a
#     crash restart (a backend killed, the postmaster stays), and on a new session's first key
#     use; an intent of an aborted transaction is discarded and keeps the keys; an
#     intent naming a future transaction is not carried out; an intent of a transaction still in
#     progress is left alone, and discarded (keys kept) once that transaction rolled back;
#   - a crash in the real window (backend killed after writing the shred intent, before the commit
#     record; needs strace) loses nothing: the vault stays active, readable and keeps its key,
#     also after the crashed transaction's xid has been reused by committed transactions;
#   - takes effect in sessions that already hold the key: their next statement fails, even in a
#     REPEATABLE READ transaction whose snapshot still sees the vault.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;

my $db = 'postgres';
my $node = VectorVault::new_node('shred', init_opts => { allows_streaming => 1 });
$node->start;

$node->safe_psql($db, q{
CREATE EXTENSION vector_vault;
CREATE TABLE mixed (id int PRIMARY KEY, owner text, body etext, meta ejsonb, embedding evector(3));
});

# Creates a vault and a table docs_<vault> with three rows in it, and two rows in mixed.
my %base = (vault_a => 100, vault_b => 200, vault_c => 300, vault_d => 400, vault_e => 500,
	vault_f => 600, vault_g => 700, vault_h => 800, vault_i => 900,
	vault_j => 1000, vault_k => 1100);
sub create_with_rows
{
	my ($vault) = @_;
	my $b = $base{$vault};
	$node->safe_psql($db, qq{
SELECT vault.create_vault('$vault');
SET vector_vault.vault = '$vault';
CREATE TABLE docs_$vault (id int PRIMARY KEY, body etext, meta ejsonb, embedding evector(3));
INSERT INTO docs_$vault
	SELECT i, '$vault body ' || i, jsonb_build_object('n', i), ARRAY[i, i + 1, i + 2]::real[]
	FROM generate_series($b + 1, $b + 3) i;
INSERT INTO mixed SELECT i, '$vault', '$vault mixed ' || i, jsonb_build_object('n', i), ARRAY[i, 0, 1]::real[]
	FROM generate_series($b + 1, $b + 2) i;
});
	return $node->safe_psql($db,
		"SELECT vault_id FROM vault._vaults WHERE name = '$vault' AND state = 'active'");
}

# The expected plaintext of docs_<vault>, as "id|body|meta|embedding" lines.
sub expected_docs
{
	my ($vault) = @_;
	my $b = $base{$vault};
	return join("\n",
		map { "$_|$vault body $_|{\"n\": $_}|[$_," . ($_ + 1) . ',' . ($_ + 2) . ']' } $b + 1 .. $b + 3);
}
sub read_docs_sql
{
	my ($vault) = @_;
	return "SELECT id, body::text, meta::jsonb, embedding FROM docs_$vault ORDER BY id";
}

# Asserts that docs_<vault> decrypts to what was written.
sub docs_readable
{
	my ($vault, $what, $n) = @_;
	$n //= $node;
	my ($state, $msg, $err, $out) = VectorVault::sql_error($n, $db, read_docs_sql($vault));
	is($state, '', "$what: reading $vault raises no error") or diag($err);
	is($out, expected_docs($vault), "$what: $vault decrypts to what was written");
	return;
}

# Asserts that every encrypted column of docs_<vault> fails with 22V02 and the message matches.
sub docs_shredded
{
	my ($vault, $what, $re, $n) = @_;
	$n //= $node;
	for my $col ('body::text', 'meta::jsonb', 'embedding::real[]', 'vector_norm(embedding)')
	{
		my ($state, $msg, $err) = VectorVault::sql_error($n, $db, "SELECT $col FROM docs_$vault");
		is($state, '22V02', "$what: $col of $vault fails with SQLSTATE 22V02");
		like($msg, $re, "$what: $col of $vault says why") if $col eq 'body::text';
	}
	return;
}

# True when the vault's key entry file exists in the node's keyring.
sub key_exists
{
	my ($id) = @_;
	return -f "$node->{vv_keyring}/" . VectorVault::key_file_name($id);
}
sub intents { return grep { /^shred-.*\.intent$/ } VectorVault::keyring_files($node); }

my %id;
$id{$_} = create_with_rows($_) for qw(vault_a vault_b vault_c);
ok(key_exists($id{vault_a}) && key_exists($id{vault_b}) && key_exists($id{vault_c}),
	'each vault has a keyring entry file');
docs_readable($_, 'before any drop') for qw(vault_a vault_b);
is($node->safe_psql($db, "SELECT string_agg(body::text, ',' ORDER BY id) FROM mixed"),
	'vault_a mixed 101,vault_a mixed 102,vault_b mixed 201,vault_b mixed 202,'
	  . 'vault_c mixed 301,vault_c mixed 302',
	'mixed table decrypts for all vaults');

# A base backup taken before the drop, to be restored after it.
$node->backup('before_drop');

# --- drop A -------------------------------------------------------------------------------------

my ($state, $msg, $err) = VectorVault::sql_error($node, $db, "SELECT vault.drop_vault('vault_a')");
is($state, '', 'vault.drop_vault(vault_a) succeeds') or diag($err);
ok(!key_exists($id{vault_a}), "vault_a's keyring entry is gone after the drop");
ok(key_exists($id{vault_b}) && key_exists($id{vault_c}), "vault_b's and vault_c's keyring entries remain");
is(scalar(intents()), 0, 'no shred intent is left after the drop committed');

docs_shredded('vault_a', 'after drop', qr/vault "vault_a" has been dropped/);
docs_readable('vault_b', 'after drop of vault_a');
($state, $msg) = VectorVault::sql_error($node, $db, "SELECT body::text FROM mixed WHERE owner = 'vault_a'");
is($state, '22V02', "mixed: vault_a's rows fail with 22V02");
is( $node->safe_psql($db,
		"SELECT string_agg(body::text, ',' ORDER BY id) FROM mixed WHERE owner <> 'vault_a'"),
	'vault_b mixed 201,vault_b mixed 202,vault_c mixed 301,vault_c mixed 302',
	"mixed: the other vaults' rows still decrypt");
is($node->safe_psql($db, "SELECT count(*) FROM vault.vaults WHERE name = 'vault_a'"), '0',
	'vault.vaults no longer lists vault_a');
($state, $msg) = VectorVault::sql_error($node, $db, "SELECT vault.drop_vault('vault_a')");
is($state, '42704', 'dropping vault_a again: it does not exist');

# --- restart ------------------------------------------------------------------------------------

$node->restart;
ok(!key_exists($id{vault_a}) && key_exists($id{vault_b}), 'after restart: vault_a has no key, vault_b has');
docs_shredded('vault_a', 'after restart', qr/has been dropped/);
docs_readable('vault_b', 'after restart');

# Not a catalog flag: with vault_a's row switched back to 'active' (inside a transaction that
# is never committed) the values are still unreadable, because the key is gone.
($state, $msg, $err) = VectorVault::sql_error($node, $db, qq{
BEGIN;
UPDATE vault._vaults SET state = 'active', dropped_at = NULL WHERE vault_id = $id{vault_a};
SELECT body::text FROM docs_vault_a;
});
is($state, '22V02', 'vault_a revived in the catalog: reading still fails with 22V02');
like($msg, qr/key version 1 of vault .* is not in the keyring/, '... because its key is not in the keyring');
is($node->safe_psql($db, "SELECT state FROM vault._vaults WHERE vault_id = $id{vault_a}"), 'dropped',
	'the catalog experiment was rolled back');

# --- an old base backup, restored after the drop, with the same keyring --------------------------

my $restored = VectorVault::new_node('restored', keyring => $node->{vv_keyring},
	keyfile => $node->{vv_keyfile}, init => 0);
$restored->init_from_backup($node, 'before_drop');
$restored->start;
is($restored->safe_psql($db, "SELECT state FROM vault._vaults WHERE vault_id = $id{vault_a}"), 'active',
	'restored pre-drop backup: its catalog still has vault_a active');
docs_shredded('vault_a', 'restored pre-drop backup', qr/is not in the keyring/, $restored);
docs_readable('vault_b', 'restored pre-drop backup', $restored);
$restored->stop;

# --- re-creating a vault named vault_a ------------------------------------------------------------

($state, $msg, $err) = VectorVault::sql_error($node, $db, "SELECT vault.create_vault('vault_a')");
is($state, '', 'a new vault named vault_a can be created') or diag($err);
my $new_a = $node->safe_psql($db,
	"SELECT vault_id FROM vault._vaults WHERE name = 'vault_a' AND state = 'active'");
isnt($new_a, $id{vault_a}, 'the new vault_a has a new id');
ok(key_exists($new_a) && !key_exists($id{vault_a}),
	'the new vault_a has its own key; the old key stays gone');
docs_shredded('vault_a', 'after re-creating vault_a', qr/has been dropped/);
$node->safe_psql($db,
	"SET vector_vault.vault = 'vault_a'; INSERT INTO docs_vault_a VALUES (1, 'new a', '{}', '[1,1,1]')");
is($node->safe_psql($db, 'SELECT body::text FROM docs_vault_a WHERE id = 1'), 'new a',
	'rows written under the new vault_a decrypt');
($state) = VectorVault::sql_error($node, $db, 'SELECT body::text FROM docs_vault_a WHERE id <> 1');
is($state, '22V02', 'the old vault_a rows in the same table still fail');

# --- transactions: rollback keeps everything -------------------------------------------------------

for my $case (
	[ 'ROLLBACK', "BEGIN; SELECT vault.drop_vault('vault_c'); ROLLBACK;" ],
	[ 'ROLLBACK TO SAVEPOINT',
		"BEGIN; SAVEPOINT s; SELECT vault.drop_vault('vault_c'); ROLLBACK TO SAVEPOINT s; COMMIT;" ],
	[ 'RELEASE SAVEPOINT then ROLLBACK',
		"BEGIN; SAVEPOINT s; SELECT vault.drop_vault('vault_c'); RELEASE SAVEPOINT s; ROLLBACK;" ])
{
	my ($what, $sql) = @$case;
	($state, $msg, $err) = VectorVault::sql_error($node, $db, $sql);
	is($state, '', "drop_vault then $what runs") or diag($err);
	ok(key_exists($id{vault_c}), "drop_vault then $what: vault_c's key is kept");
	is(scalar(intents()), 0, "drop_vault then $what: no shred intent is left");
	is($node->safe_psql($db, "SELECT count(*) FROM vault.vaults WHERE name = 'vault_c'"), '1',
		"drop_vault then $what: vault_c is still listed");
	docs_readable('vault_c', "drop_vault then $what");
}

# A drop inside a released savepoint of a committed transaction does shred.
$id{vault_e} = create_with_rows('vault_e');
($state, $msg, $err) = VectorVault::sql_error($node, $db,
	"BEGIN; SAVEPOINT s; SELECT vault.drop_vault('vault_e'); RELEASE SAVEPOINT s; COMMIT;");
is($state, '', 'drop_vault in a released savepoint, committed') or diag($err);
ok(!key_exists($id{vault_e}), "... shreds vault_e's key");
docs_shredded('vault_e', 'drop in a released savepoint', qr/has been dropped/);
ok(key_exists($id{vault_c}) && key_exists($id{vault_b}), '... and no other vault\'s key');

# --- crash right after COMMIT ----------------------------------------------------------------------

$id{vault_d} = create_with_rows('vault_d');
ok(key_exists($id{vault_d}), 'vault_d has a key');
$node->safe_psql($db, "SELECT vault.drop_vault('vault_d')");
$node->stop('immediate');
ok(!key_exists($id{vault_d}), 'immediate shutdown right after the drop committed: vault_d\'s key is gone');
is(scalar(intents()), 0, '... and no shred intent is left');
$node->start;
($state, $msg, $err) = VectorVault::sql_error($node, $db, 'SELECT vault.reconcile_keyring()');
is($state, '', 'vault.reconcile_keyring() runs without error after the crash') or diag($err);
docs_shredded('vault_d', 'after crash', qr/has been dropped/);
docs_readable('vault_b', 'after crash');
ok(key_exists($id{vault_b}) && key_exists($id{vault_c}), 'after crash: the other keys are intact');

# --- the shred intent, written by hand -------------------------------------------------------------

# Writes shred-<id>.intent as keyring.cpp does: "VVSI", vault id (LE64), full xid (LE64).
sub write_intent
{
	my ($vault_id, $fxid) = @_;
	my $name = sprintf('shred-%016x.intent', $vault_id);
	VectorVault::write_bytes("$node->{vv_keyring}/$name", 'VVSI' . pack('Q< Q<', $vault_id, $fxid));
	return $name;
}

# Committed drop whose key deletion "did not happen": drop vault_f in a transaction whose xid we
# learn, put its key file back as it was, and leave the intent a crash would have left.
$id{vault_f} = create_with_rows('vault_f');
my $f_key = "$node->{vv_keyring}/" . VectorVault::key_file_name($id{vault_f});
my $f_bytes = VectorVault::read_bytes($f_key);
my ($f_xid) = $node->safe_psql($db,
	"BEGIN; SELECT vault.drop_vault('vault_f'); SELECT txid_current(); COMMIT;") =~ /(\d+)\s*\z/;
$f_xid //= '';
ok($f_xid =~ /^\d+$/ && !-f $f_key, "vault_f dropped in transaction $f_xid, its key deleted");
VectorVault::write_bytes($f_key, $f_bytes);
my $f_intent = write_intent($id{vault_f}, $f_xid);
my $log_offset = -s $node->logfile;
($state, $msg, $err) = VectorVault::sql_error($node, $db, 'SELECT vault.reconcile_keyring()');
is($state, '', 'reconcile_keyring() with a committed intent runs') or diag($err);
ok(!-f $f_key, '... and deletes the key of the committed drop');
ok(!-f "$node->{vv_keyring}/$f_intent", '... and removes the intent');
like(VectorVault::log_since($node, $log_offset), qr/finished shredding the keys of vault/,
	'... and logs that it finished the shred');

# The same, finished automatically at the next start: a background worker reconciles the keyring
# as soon as recovery has finished, before any session needs a key.
VectorVault::write_bytes($f_key, $f_bytes);
write_intent($id{vault_f}, $f_xid);
$log_offset = -s $node->logfile;
$node->restart;
# The worker logs after it has removed both files, so waiting for the line (not the files) leaves
# no moment in which the files are gone but the line not yet written.
my $logged = eval { $node->wait_for_log(qr/finished shredding the keys of vault/, $log_offset) };
ok($logged && !-f $f_key && !-f "$node->{vv_keyring}/$f_intent",
	'the restart alone finished the pending shred: key file and intent are gone');
ok($logged, '... and the start-up reconciliation logged it');
docs_readable('vault_b', 'first key use after restart');

# The same after a crash restart that keeps the postmaster running (a backend killed with
# SIGKILL): the worker idles between restarts, so Postgres starts it again with the other
# processes and it finishes the shred before any session uses a key.
$node->append_conf('postgresql.conf', "restart_after_crash = on\n");
$node->reload;
VectorVault::write_bytes($f_key, $f_bytes);
write_intent($id{vault_f}, $f_xid);
$log_offset = -s $node->logfile;
my $victim = $node->background_psql($db);
my $victim_pid = $victim->query_safe('SELECT pg_backend_pid()');
ok(kill('KILL', $victim_pid), 'a backend is killed with SIGKILL');
$logged = eval {
	$node->wait_for_log(qr/all server processes terminated; reinitializing.*finished shredding the keys of vault/s,
		$log_offset);
};
ok($logged && !-f $f_key && !-f "$node->{vv_keyring}/$f_intent",
	'the crash restart alone finished the pending shred (the worker ran again)')
  or diag(VectorVault::log_since($node, $log_offset));
eval { $victim->quit };
$node->poll_query_until($db, 'SELECT true') or die 'the server did not come back';
$node->append_conf('postgresql.conf', "restart_after_crash = off\n");
$node->reload;
docs_readable('vault_b', 'first key use after the crash restart');

# And the first key use of a new backend reconciles too (a keyring restored while running).
VectorVault::write_bytes($f_key, $f_bytes);
write_intent($id{vault_f}, $f_xid);
docs_readable('vault_b', 'first key use of a new session');
ok(!-f $f_key, 'the first key use of a new session finished the pending shred');
ok(!-f "$node->{vv_keyring}/$f_intent", '... and removed the intent');

# An intent of a transaction that aborted: discarded, keys kept.
$id{vault_g} = create_with_rows('vault_g');
my $g_xid = $node->safe_psql($db, 'BEGIN; SELECT txid_current(); ROLLBACK;');
my $g_intent = write_intent($id{vault_g}, $g_xid);
($state, $msg, $err) = VectorVault::sql_error($node, $db, 'SELECT vault.reconcile_keyring()');
is($state, '', 'reconcile_keyring() with an aborted intent runs') or diag($err);
ok(key_exists($id{vault_g}), '... keeps the key of the vault whose drop aborted');
ok(!-f "$node->{vv_keyring}/$g_intent", '... and removes the intent');
docs_readable('vault_g', 'after an aborted intent');

# An intent naming a transaction that has not happened yet is not carried out.
$id{vault_h} = create_with_rows('vault_h');
my $next = $node->safe_psql($db, 'SELECT txid_current()');
my $h_intent = write_intent($id{vault_h}, $next + 1000000);
($state, $msg, $err) = VectorVault::sql_error($node, $db, 'SELECT vault.reconcile_keyring()');
is($state, '', 'reconcile_keyring() with a future intent runs') or diag($err);
ok(key_exists($id{vault_h}), '... and does not shred the vault it names');
unlink("$node->{vv_keyring}/$h_intent");
docs_readable('vault_h', 'after a future intent');

# An intent of a transaction still in progress (as between the drop's pre-commit intent and its
# commit record) is left alone; once that transaction has rolled back it is discarded.
$id{vault_j} = create_with_rows('vault_j');
my $open = $node->background_psql($db);
$open->query_safe('BEGIN');
my $j_xid = $open->query_safe('SELECT txid_current()');
my $j_intent = write_intent($id{vault_j}, $j_xid);
($state, $msg, $err) = VectorVault::sql_error($node, $db, 'SELECT vault.reconcile_keyring()');
is($state, '', 'reconcile_keyring() with an in-progress intent runs') or diag($err);
ok(key_exists($id{vault_j}) && -f "$node->{vv_keyring}/$j_intent",
	'... and leaves the key and the intent of the in-progress transaction alone');
$open->query_safe('ROLLBACK');
$open->quit;
($state, $msg, $err) = VectorVault::sql_error($node, $db, 'SELECT vault.reconcile_keyring()');
is($state, '', 'reconcile_keyring() once that transaction rolled back runs') or diag($err);
ok(key_exists($id{vault_j}) && !-f "$node->{vv_keyring}/$j_intent",
	'... discards the intent and keeps the key');
docs_readable('vault_j', 'after a rolled-back in-progress intent');

# --- crash between the shred intent and the commit record ----------------------------------------

# The real window: the backend running "SELECT vault.drop_vault('vault_k')" is killed (strace
# injects SIGKILL at its second fsync(2): the first is the intent's temporary file, the second the
# keyring directory after the intent was renamed into place), i.e. after the pre-commit intent is
# on disk and before the commit record is written. The drop never committed, so after restart
# vault_k must keep its key and its data, also once the crashed transaction's xid has been handed
# out again to transactions that commit (its WAL may never have reached disk, so recovery can
# leave the xid counter at or before it).
SKIP:
{
	my $strace_ok = system('strace -V >/dev/null 2>&1') == 0;
	skip 'strace is not installed', 9 unless $strace_ok;
	$id{vault_k} = create_with_rows('vault_k');
	my $victim = $node->background_psql($db, on_error_stop => 0);
	my $pid = $victim->query_safe('SELECT pg_backend_pid()');
	my ($s_out, $s_err) = ('', '');
	my $tracer = IPC::Run::start(
		[ 'strace', '-qq', '-o', '/dev/null', '-p', $pid, '-e', 'trace=fsync',
			'-e', 'inject=fsync:signal=SIGKILL:when=2' ],
		'>', \$s_out, '2>', \$s_err);
	my $traced = 0;
	for (1 .. 200)
	{
		$traced = 1, last if slurp_file("/proc/$pid/status") =~ /TracerPid:\s+[1-9]/;
		select(undef, undef, undef, 0.05);
	}
	if (!$traced)
	{
		$tracer->kill_kill;
		$victim->quit;
		skip "strace cannot attach here: $s_err", 9;
	}
	$victim->{stdin} .= "SELECT vault.drop_vault('vault_k');\n";
	$victim->{run}->pump_nb();
	my $pm = $node->{_pid};
	for (1 .. 600)
	{
		last unless kill(0, $pid) || kill(0, $pm);
		select(undef, undef, undef, 0.05);
	}
	$tracer->finish;
	ok(!kill(0, $pid), 'the backend dropping vault_k was killed inside its commit');
	$node->stop('immediate', fail_ok => 1);    # the postmaster has already gone (restart_after_crash = off)
	eval { $victim->quit; };
	my $k_intent = sprintf('shred-%016x.intent', $id{vault_k});
	ok(-f "$node->{vv_keyring}/$k_intent" && key_exists($id{vault_k}),
		'the crash hit the window: the shred intent is on disk and the key still there');
	my $k_xid = 0;
	(undef, undef, $k_xid) = unpack('a4 Q< Q<', VectorVault::read_bytes("$node->{vv_keyring}/$k_intent"))
	  if -f "$node->{vv_keyring}/$k_intent";
	$node->start;
	is($node->safe_psql($db, "SELECT state FROM vault._vaults WHERE vault_id = $id{vault_k}"), 'active',
		'after restart: the drop of vault_k did not commit, the vault is active');
	my $next = $node->safe_psql($db, 'SELECT txid_current()');
	note("xid of the crashed drop: $k_xid; first xid after restart: $next");
	for (1 .. 1000)
	{
		last if $next > $k_xid;
		$next = $node->safe_psql($db, 'SELECT txid_current()');
	}
	ok($next > $k_xid, 'transactions after the restart have used xids up to and past the crashed one');
	($state, $msg, $err) = VectorVault::sql_error($node, $db, 'SELECT vault.reconcile_keyring()');
	is($state, '', 'reconcile_keyring() after the crash runs') or diag($err);
	ok(!-f "$node->{vv_keyring}/$k_intent", 'after reconciliation the intent of the crashed drop is gone');
	# Fails while ReconcileKeyring() trusts a transaction id that recovery handed out again: the
	# reused xid committed, so the intent of the drop that never committed is carried out.
	ok(key_exists($id{vault_k}), 'the key of vault_k, whose drop never committed, is kept');
	docs_readable('vault_k', 'after a drop that crashed before commit');
}

# --- sessions that already hold the key ------------------------------------------------------------

# One session has decrypted vault_i's values (its key is in that backend's cache); another is in
# a REPEATABLE READ transaction whose snapshot still sees vault_i as active. After a third
# session drops vault_i, the next statement of each fails: the cached key was dropped and the
# key file is gone. (The vault catalog is read with the latest snapshot, not the transaction's,
# so session 2 sees the drop itself; were it to miss it, the missing key file would stop it.)
$id{vault_i} = create_with_rows('vault_i');
my $cached = $node->background_psql($db, on_error_stop => 0);
my $snap = $node->background_psql($db, on_error_stop => 0);
$_->query_safe('\set VERBOSITY verbose') for ($cached, $snap);
my $first = expected_docs('vault_i') =~ s/^\d+\|([^|]*)\|.*/$1/sr;
is(scalar($cached->query('SELECT body::text FROM docs_vault_i ORDER BY id LIMIT 1')), $first,
	'session 1 decrypts vault_i (key now cached in that backend)');
$snap->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
is(scalar($snap->query('SELECT body::text FROM docs_vault_i ORDER BY id LIMIT 1')), $first,
	'session 2 decrypts vault_i inside a REPEATABLE READ transaction');
$node->safe_psql($db, "SELECT vault.drop_vault('vault_i')");
ok(!key_exists($id{vault_i}), 'vault_i dropped by a third session');
my ($out, $failed) = $cached->query('SELECT body::text FROM docs_vault_i ORDER BY id LIMIT 1');
ok($failed && $cached->{stderr} =~ /ERROR:\s+22V02:/ && $out eq '',
	'session 1: the next statement fails with 22V02 (the cached key is not used)')
  or diag("stdout: $out stderr: $cached->{stderr}");
$cached->{stderr} = '';
($out, $failed) = $snap->query('SELECT body::text FROM docs_vault_i ORDER BY id LIMIT 1');
ok($failed && $snap->{stderr} =~ /ERROR:\s+22V02:.*(has been dropped|not in the keyring)/
	  && $out eq '',
	'session 2: inside its REPEATABLE READ transaction the next statement fails with 22V02')
  or diag("stdout: $out stderr: $snap->{stderr}");
$_->quit for ($cached, $snap);

$node->stop;
done_testing();
