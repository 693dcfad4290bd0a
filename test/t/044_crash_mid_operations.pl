# 044_crash_mid_operations.pl — crashes in the middle of vault drops, re-encryption and master key
# rotation lose nothing and leave a keyring the server can finish or roll back; damaged keyring
# entries give specific errors.
#
# (a) vault.drop_vault: the backend is SIGKILLed (the server goes down) while a transaction that
#     dropped vault c1 is still open: after restart c1 is active, keeps its key and reads; the
#     server is stopped 'immediate' right after a drop of c2 commits: c2's key is gone, no intent
#     is left.
# (b) CALL vault.reencrypt(c3, 50) over 3,000 rows after rotate_key, stopped 'immediate' after
#     some batches committed: after restart every row decrypts to what was written, some values
#     are under version 1 and some under 2, every live index element is reachable (the element
#     checks are in (e)) and searches equal exact searches;
#     retire_key_version(1) is refused while version 1 values remain; reencrypt run again
#     completes (only version 2), and after VACUUM version 1 can be retired; every row is found
#     by a search for its own vector.
# (c) master key rotation, by hand-made keyring states and real crashes:
#     - ".next" files without the "rotation.commit" marker (the re-wrapped entries of a real
#       rotation plus a garbage one) are discarded at start; the old key keeps working;
#     - the marker with half of the entries renamed and half still old + ".next": the start
#       completes the rotation (logged); the old key then gets 22V03 "does not match", the new
#       key reads everything and nothing is left over;
#     - a backend killed (strace, SIGKILL at a rename) after the marker, during the renames:
#       after restart the rotation is completed and the new key reads everything;
#     - a backend killed while writing ".next" files (before the marker): rolled back, the old
#       key reads everything;
#     - renames after the commit point that FAIL (strace injects EIO): the call must not report
#       plain success while the running server can no longer unwrap the entries whose rename
#       failed (regression: the call warns, sessions read the .next files); a restart completes it.
# (d) keyring damage that 003 does not cover: a truncated entry and another vault's entry copied
#     over an entry are "unusable" (22V01); a missing master.check with the right key is
#     recreated and everything reads; a missing master.check with a WRONG key must not let that
#     key create vaults (regression: it used to be accepted and a new master.check written).
# (e) vault_hnsw across crashes inside inserts: up to 6 rounds of an immediate stop while one
#     long INSERT ... SELECT (one transaction) fills an indexed table; after each restart
#     hnsw_verify must find no element beyond the metapage and no link to a missing element
#     (regression: a half-finished insert used to be replayed); then committed
#     inserts must not reuse an element id and must each be found by a search for their vector.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Digest::MD5 qw(md5_hex);
use VectorVault;

my $db = 'postgres';
my $node = VectorVault::new_node('crash', init_opts => { allows_streaming => 1 });
my $case_conf = $node->basedir . '/key_case.conf';
VectorVault::write_bytes($case_conf, '');
$node->append_conf('postgresql.conf', "include_if_exists = '$case_conf'\nmax_connections = 20\nlog_statement = 'ddl'\n");
$node->start;
my $keyring = $node->{vv_keyring};
my $key1 = $node->{vv_keyfile};

$node->safe_psql($db, q{
CREATE EXTENSION vector_vault;
CREATE TABLE docs (id int PRIMARY KEY, vault text, body etext);
});
my %docs;    # vault => number of rows
sub create_vault_with_rows
{
	my ($vault, $n) = @_;
	my $first = 100 * substr($vault, 1);    # c1: 100.., c2: 200..
	$node->safe_psql($db, "SELECT vault.create_vault('$vault'); SET vector_vault.vault = '$vault';
INSERT INTO docs SELECT i, '$vault', '$vault secret ' || i FROM generate_series($first, $first + $n - 1) i");
	$docs{$vault} = $n;
	return $node->safe_psql($db, "SELECT vault_id FROM vault._vaults WHERE name = '$vault' AND state = 'active'");
}
sub docs_ok
{
	my ($vault, $what) = @_;
	my ($state, $msg, $err, $out) = VectorVault::sql_error($node, $db,
		"SELECT count(*) FILTER (WHERE body::text LIKE '$vault secret %') FROM docs WHERE vault = '$vault'");
	is($state, '', "$what: $vault rows read without error") or diag($err);
	is($out, $docs{$vault}, "$what: all $docs{$vault} rows of $vault decrypt");
	return;
}
sub key_path { return "$keyring/" . VectorVault::key_file_name(@_); }

# --- (a) drop_vault --------------------------------------------------------------------------------------

my $c1 = create_vault_with_rows('c1', 5);
my $open = $node->background_psql($db, on_error_stop => 0);
my $open_pid = $open->query_safe('SELECT pg_backend_pid()');
$open->query_safe("BEGIN; SELECT vault.drop_vault('c1'); INSERT INTO docs VALUES (99999, 'x', NULL)");
is($node->safe_psql($db, "SELECT state FROM vault._vaults WHERE vault_id = $c1"), 'active',
	'(a) drop of c1 in an open transaction: others still see c1 active');
# SIGKILL the dropping backend (the postmaster then stops everything: restart_after_crash is
# off). Not the postmaster itself: this machine's init does not reap it, and the zombie's pid
# in postmaster.pid would block the next start.
kill('KILL', $open_pid);
for (1 .. 200) { last unless -f $node->data_dir . '/postmaster.pid'; select(undef, undef, undef, 0.05); }
$node->stop('immediate', fail_ok => 1);
eval { $open->quit; };
$node->start;
is($node->safe_psql($db, "SELECT state FROM vault._vaults WHERE vault_id = $c1"), 'active',
	'(a) after SIGKILL of the dropping backend: the uncommitted drop left c1 active');
ok(-f key_path($c1), '(a) ... c1 keeps its key');
is(scalar(grep { /intent/ } VectorVault::keyring_files($node)), 0, '(a) ... no shred intent is left');
is($node->safe_psql($db, 'SELECT count(*) FROM docs WHERE id = 99999'), '0', '(a) ... the rest of that transaction is gone too');
docs_ok('c1', '(a) after the crash');

my $c2 = create_vault_with_rows('c2', 5);
$node->safe_psql($db, "BEGIN; SELECT vault.drop_vault('c2'); COMMIT;");
$node->stop('immediate');
ok(!-f key_path($c2) && !grep({ /intent/ } VectorVault::keyring_files($node)),
	'(a) immediate stop right after the drop of c2 committed: its key is gone, no intent left');
$node->start;
my ($state, $msg) = VectorVault::sql_error($node, $db, "SELECT body::text FROM docs WHERE vault = 'c2'");
is($state, '22V02', '(a) after restart: c2 rows fail with 22V02');
docs_ok('c1', '(a) after the second crash');

# --- (b) reencrypt interrupted ---------------------------------------------------------------------------

my $dim = 16;
my $nrows = 3000;
my $vecs = VectorVault::int_vectors($nrows, $dim, 4444);
my %vec_of = map { ($_ + 1) => $vecs->[$_] } 0 .. $nrows - 1;
# Query vectors with fractional parts, so no two rows are at the same distance.
my @queries = map { my $q = $_; [ map { $q->[$_] + 0.1 + 0.0137 * $_ } 0 .. $dim - 1 ] } @{ VectorVault::int_vectors(12, $dim, 4545) };
$node->safe_psql($db, "SELECT vault.create_vault('c3'); CREATE TABLE items (id int PRIMARY KEY, body etext, embedding evector($dim));");
for (my $i = 1; $i <= $nrows; $i += 500)
{
	$node->safe_psql($db, "SET vector_vault.vault = 'c3';\n" . VectorVault::insert_sql('items', \%vec_of, [ $i .. $i + 499 ], 'row'));
}
$node->safe_psql($db, 'CREATE INDEX items_embedding_idx ON items USING vault_hnsw (embedding evector_l2_ops)');
my $expected = "$nrows " . md5_hex(join(';', map { "$_|row $_|" . VectorVault::vector_text($vec_of{$_}) } 1 .. $nrows));
my $md5_sql = "SET vector_vault.vault = 'c3';\n"
  . "SELECT count(*) || ' ' || md5(string_agg(id || '|' || body::text || '|' || embedding::text, ';' ORDER BY id)) FROM items";
my $versions_sql = q{SELECT count(*) FILTER (WHERE vault.key_version_of(body) = 1) + count(*) FILTER (WHERE vault.key_version_of(embedding) = 1)
	|| '|' || count(*) FILTER (WHERE vault.key_version_of(body) = 2) + count(*) FILTER (WHERE vault.key_version_of(embedding) = 2) FROM items};
is($node->safe_psql($db, $md5_sql), $expected, "(b) $nrows rows decrypt to what was written");
is($node->safe_psql($db, "SELECT vault.rotate_key('c3')"), '2', '(b) rotate_key(c3) returns 2');

my ($re_out, $re_err) = ('', '');
my $re = IPC::Run::start([ 'psql', '-X', '-d', $node->connstr($db), '-c', "CALL vault.reencrypt('c3', 50)" ],
	'>', \$re_out, '2>', \$re_err);
my ($v1, $v2) = (0, 0);
my $deadline = time() + 120;
while (time() < $deadline)
{
	($v1, $v2) = split /\|/, $node->safe_psql($db, $versions_sql);
	last if $v2 >= 600;
	select(undef, undef, undef, 0.05);
}
$node->stop('immediate');
$re->finish;
note("(b) before the crash: $v1 values under version 1, $v2 under version 2; reencrypt said: $re_err");
ok($v2 >= 600 && $v2 < 2 * $nrows, '(b) the crash hit after some batches committed');
unlike($re_err, qr/values re-encrypted/, '(b) reencrypt had not finished');
$node->start;
($v1, $v2) = split /\|/, $node->safe_psql($db, $versions_sql);
ok($v1 > 0 && $v2 >= 600 && $v1 + $v2 == 2 * $nrows, "(b) after restart: $v1 values under version 1, $v2 under version 2");
is($node->safe_psql($db, $md5_sql), $expected, '(b) after restart: every row decrypts to what was written');
my ($ok, $report) = VectorVault::hnsw_verify($node, $db, 'items_embedding_idx');
# A crash inside an insert (here: reencrypt's UPDATE) can leave the half-finished element of
# that uncommitted row unreachable until VACUUM flags it; one such element at most, since one
# backend was writing. Every other element must be reachable; after VACUUM all are (below).
note("(b) hnsw_verify after the crash:\n$report");
my ($live, $reached) = $report =~ /^vault\|[tf]\|vault [0-9a-f]+: (\d+) live, (\d+) reachable/m;
ok(defined $live && $live - $reached <= 1,
	'(b) after restart: every live element but the crashed insert\'s is reachable') or diag($report);
is_deeply(VectorVault::search_lists($node, $db, \@queries, vault => 'c3', ef => 400),
	VectorVault::exact_lists($node, $db, \@queries, vault => 'c3'), '(b) after restart: index searches equal exact searches');
($state, $msg) = VectorVault::sql_error($node, $db, "SELECT vault.retire_key_version('c3', 1)");
is($state, '55000', '(b) retire_key_version(1) is refused while version 1 values remain');
my ($rc, $out, $err) = $node->psql($db, "CALL vault.reencrypt('c3', 500)");
is($rc, 0, '(b) reencrypt run again succeeds') or diag($err);
is($node->safe_psql($db, $versions_sql), '0|' . (2 * $nrows), '(b) ... and leaves only version 2 values');
$node->safe_psql($db, 'VACUUM items');
($state, $msg, $err) = VectorVault::sql_error($node, $db, "SELECT vault.retire_key_version('c3', 1)");
is($state, '', '(b) after VACUUM retire_key_version(c3, 1) succeeds') or diag($err);
my $c3 = $node->safe_psql($db, "SELECT vault_id FROM vault._vaults WHERE name = 'c3'");
ok(!-f key_path($c3, 1), '(b) the version 1 key file is gone');
is($node->safe_psql($db, $md5_sql), $expected, '(b) every row still decrypts to what was written');
is_deeply(VectorVault::search_lists($node, $db, \@queries, vault => 'c3', ef => 400),
	VectorVault::exact_lists($node, $db, \@queries, vault => 'c3'), '(b) index searches equal exact searches');
($ok, $report) = VectorVault::hnsw_verify($node, $db, 'items_embedding_idx');
like($report, qr/^vault\|t\|/m, '(b) after the completed reencrypt and VACUUM: every live element is reachable') or diag($report);
note("(b) hnsw_verify after the completed reencrypt and VACUUM:\n$report");
my $unfound = $node->safe_psql($db, q{
SET vector_vault.vault = 'c3'; SET enable_seqscan = off; SET vector_vault.ef_search = 100;
SELECT count(*) FROM items t
WHERE NOT (t.id = ANY (ARRAY(SELECT u.id FROM items u ORDER BY u.embedding <-> t.embedding LIMIT 5)))});
is($unfound, '0', "(b) each of the $nrows rows is found by an index search for its own vector");

# --- (c) master key rotation: hand-made states -------------------------------------------------------------

# Everything readable with the configured key: c1 docs and c3 items.
sub all_readable
{
	my ($what) = @_;
	docs_ok('c1', $what);
	is($node->safe_psql($db, $md5_sql), $expected, "$what: c3 items decrypt");
	return;
}
sub entries
{
	my ($dir) = @_;
	opendir(my $dh, $dir) or die "opendir $dir: $!";
	my %e = map { $_ => VectorVault::read_bytes("$dir/$_") } grep { $_ eq 'master.check' || /\.key$/ } readdir($dh);
	closedir($dh);
	return \%e;
}
sub leftovers { return grep { /\.next$|^rotation\.commit$/ } VectorVault::keyring_files($node); }
# Replaces the keyring's entry files (the server is stopped).
sub set_entries
{
	my ($files) = @_;
	unlink map { "$keyring/$_" } grep { $_ eq 'master.check' || /\.key$|\.next$|^rotation\.commit$/ } VectorVault::keyring_files($node);
	VectorVault::write_bytes("$keyring/$_", $files->{$_}) for keys %$files;
	return;
}
sub use_key
{
	my ($file) = @_;
	VectorVault::write_bytes($case_conf, "vector_vault.master_key_file = '$file'\n");
	return;
}

my $old = entries($keyring);
my $key2 = $node->basedir . '/master.key.2';
VectorVault::write_key($key2);
$node->safe_psql($db, "SELECT vault.rotate_master_key(new_key_file => '$key2')");
my $new = entries($keyring);
ok(keys(%$new) >= 3 && !grep({ $new->{$_} eq $old->{$_} } keys %$old), '(c) a real rotation re-wrapped every entry (' . scalar(keys %$new) . ')');
$node->stop;

# ".next" files without the marker: discarded.
my $garbage = sprintf('vault-%016x-v7.key.next', 12345);
set_entries({ %$old, (map { ("$_.next" => $new->{$_}) } keys %$new), $garbage => 'x' x 88 });
my $offset = -s $node->logfile;
$node->start;
like(VectorVault::log_since($node, $offset), qr/discarded an unfinished master key rotation \(@{[ scalar(keys %$new) + 1 ]} entries\)/,
	'(c) .next files without a commit marker: the start discards them (logged)');
is(scalar(leftovers()), 0, '(c) ... none is left');
is_deeply(entries($keyring), $old, '(c) ... and the entries are the old ones');
all_readable('(c) rotation rolled back, old key');
$node->stop;

# The marker, half of the entries already renamed: completed at start.
my @names = sort keys %$new;
my %state = (%$new, 'rotation.commit' => 'VVRC');
for my $i (grep { $_ % 2 == 0 } 0 .. $#names)
{
	$state{ $names[$i] } = $old->{ $names[$i] };
	$state{"$names[$i].next"} = $new->{ $names[$i] };
}
set_entries(\%state);
$offset = -s $node->logfile;
$node->start;
my $log = VectorVault::log_since($node, $offset);
like($log, qr/finished a master key rotation interrupted by a crash/, '(c) marker + half renamed: the start completes the rotation (logged)');
like($log, qr/WARNING:\s+vector_vault: the master key does not match the keyring/, '(c) ... and the old key no longer matches');
is(scalar(leftovers()), 0, '(c) ... no .next file or marker is left');
is_deeply(entries($keyring), $new, '(c) ... every entry is the re-wrapped one');
($state, $msg) = VectorVault::sql_error($node, $db, "SELECT body::text FROM docs WHERE vault = 'c1'");
is($state, '22V03', '(c) ... reading with the old key fails with 22V03');
use_key($key2);
$node->restart;
all_readable('(c) completed rotation, new key');

# --- (c) master key rotation: real crashes (strace) ----------------------------------------------------------

# Runs "SELECT vault.rotate_master_key(...)" in a backend traced by strace with $inject (an
# inject= spec for rename(2)); returns (finished rotation's stdout, stderr, whether the backend died).
sub traced_rotation
{
	my ($newkey, $inject) = @_;
	my $bg = $node->background_psql($db, on_error_stop => 0);
	my $pid = $bg->query_safe('SELECT pg_backend_pid()');
	my ($s_out, $s_err) = ('', '');
	my $tracer = IPC::Run::start([ 'strace', '-qq', '-o', '/dev/null', '-p', $pid, '-e', 'trace=rename', '-e', "inject=rename:$inject" ],
		'>', \$s_out, '2>', \$s_err);
	my $traced = 0;
	for (1 .. 200)
	{
		$traced = 1, last if slurp_file("/proc/$pid/status") =~ /TracerPid:\s+[1-9]/;
		select(undef, undef, undef, 0.05);
	}
	die "strace could not attach: $s_err" unless $traced;
	my $sql = "SELECT vault.rotate_master_key(new_key_file => '$newkey');";
	my ($o, $e, $died) = ('', '', 0);
	if ($inject =~ /signal=SIGKILL/)
	{
		# The backend dies mid-statement and the server goes down (restart_after_crash = off).
		$bg->{stdin} .= "$sql\n";
		$bg->{run}->pump_nb();
		for (1 .. 600)
		{
			last unless kill(0, $pid);
			select(undef, undef, undef, 0.05);
		}
		$died = !kill(0, $pid);
	}
	else
	{
		($o) = $bg->query($sql);
		$e = $bg->{stderr};
		$died = !kill(0, $pid);
	}
	$tracer->kill_kill;
	$tracer->finish;
	eval { $bg->quit; };
	return ($o, $e, $died);
}

# True when strace can attach to a backend of this node.
sub strace_works
{
	return 0 unless system('strace -V >/dev/null 2>&1') == 0;
	my $bg = $node->background_psql($db);
	my $pid = $bg->query_safe('SELECT pg_backend_pid()');
	my ($o, $e) = ('', '');
	my $tracer = IPC::Run::start([ 'strace', '-qq', '-o', '/dev/null', '-p', $pid, '-e', 'trace=rename' ], '>', \$o, '2>', \$e);
	my $traced = 0;
	for (1 .. 100)
	{
		$traced = 1, last if slurp_file("/proc/$pid/status") =~ /TracerPid:\s+[1-9]/;
		last unless $tracer->pumpable;
		select(undef, undef, undef, 0.05);
	}
	$tracer->kill_kill;
	$tracer->finish;
	$bg->quit;
	note("strace cannot attach: $e") unless $traced;
	return $traced;
}

SKIP:
{
	skip 'strace is missing or cannot attach to a backend', 22 unless strace_works();
	my $n = scalar(keys %{ entries($keyring) });
	# rename(2) calls of a rotation: n (each .next into place), 1 (the marker), n (the switch).
	my $before = entries($keyring);
	my $key3 = $node->basedir . '/master.key.3';
	VectorVault::write_key($key3);
	my (undef, undef, $died) = traced_rotation($key3, 'signal=SIGKILL:when=' . ($n + 3));
	ok($died, '(c) real crash after the marker: the rotating backend was killed during the renames');
	$node->stop('immediate', fail_ok => 1);
	my @left = leftovers();
	ok((grep { $_ eq 'rotation.commit' } @left) && (grep { /\.next$/ } @left), '(c) ... it left the marker and .next files');
	$offset = -s $node->logfile;
	use_key($key3);
	$node->start;
	like(VectorVault::log_since($node, $offset), qr/finished a master key rotation interrupted by a crash/, '(c) ... the start completes it');
	is(scalar(leftovers()), 0, '(c) ... nothing is left over');
	all_readable('(c) real crash after the marker, new key');

	$before = entries($keyring);
	my $key4 = $node->basedir . '/master.key.4';
	VectorVault::write_key($key4);
	(undef, undef, $died) = traced_rotation($key4, 'signal=SIGKILL:when=2');
	ok($died, '(c) real crash before the marker: the rotating backend was killed writing .next files');
	$node->stop('immediate', fail_ok => 1);
	$offset = -s $node->logfile;
	$node->start;
	like(VectorVault::log_since($node, $offset), qr/discarded an unfinished master key rotation/, '(c) ... the start discards it');
	is(scalar(leftovers()), 0, '(c) ... nothing is left over');
	is_deeply(entries($keyring), $before, '(c) ... the entries are unchanged');
	note('(c) temporary files left by the killed backend: ' . join(' ', grep { /^\./ } VectorVault::keyring_files($node)));
	all_readable('(c) real crash before the marker, key 3 still in use');

	# Renames failing after the commit point (EIO injected into every switch rename).
	my $key5 = $node->basedir . '/master.key.5';
	VectorVault::write_key($key5);
	my ($o, $e);
	($o, $e, $died) = traced_rotation($key5, 'error=EIO:when=' . ($n + 2) . '..' . (2 * $n + 1));
	ok(!$died, '(c) renames failing after the commit point do not kill the backend');
	note("(c) rotate_master_key with failed renames said: $o / $e");
	@left = leftovers();
	is(scalar(grep { /\.next$/ } @left) . '/' . scalar(grep { $_ eq 'rotation.commit' } @left), "$n/1",
		'(c) ... the marker and every .next file are left (the renames really failed)');
	# Regression (fixed in src/admin/rotation.cpp, keys/rotation_recovery.cpp and keyring.cpp): failed renames after the commit
	# marker used to be ignored, leaving entries wrapped under the old key while the new key was
	# in use (22V01 for every uncached key until a restart). Now the call warns and sessions read
	# those entries from their .next files while the marker stays.
	like($e, qr/(WARNING|ERROR):/, '(c) renames that failed after the commit point are reported (WARNING or ERROR)');
	my ($st, $m) = VectorVault::sql_error($node, $db, "SELECT count(*) FROM docs WHERE vault = 'c1' AND body::text LIKE 'c1 secret %'");
	is($st, '', '(c) after the failed renames a new session still unwraps vault keys') or diag($m);
	$offset = -s $node->logfile;
	use_key($key5);
	$node->restart;
	is(scalar(leftovers()), 0, '(c) after a restart nothing is left over');
	all_readable('(c) failed rename, after restart with the new key');
}

# --- (d) keyring damage -----------------------------------------------------------------------------------------

my $c4 = create_vault_with_rows('c4', 3);
my $c4_file = key_path($c4);
my $c4_entry = VectorVault::read_bytes($c4_file);
VectorVault::write_bytes($c4_file, substr($c4_entry, 0, 40));
$node->restart;
($state, $msg) = VectorVault::sql_error($node, $db, "SELECT body::text FROM docs WHERE vault = 'c4'");
is($state, '22V01', '(d) a truncated keyring entry: 22V01');
like($msg, qr/keyring entry "\Q@{[ VectorVault::key_file_name($c4) ]}\E" is unusable/, '(d) ... naming the entry');
VectorVault::write_bytes($c4_file, VectorVault::read_bytes(key_path($c1)));
$node->restart;
($state, $msg) = VectorVault::sql_error($node, $db, "SELECT body::text FROM docs WHERE vault = 'c4'");
is($state, '22V01', '(d) another vault\'s entry copied over the entry: 22V01 (the vault id is authenticated)');
docs_ok('c1', '(d) the copied entry\'s own vault');
VectorVault::write_bytes($c4_file, $c4_entry);

my $check = VectorVault::read_bytes("$keyring/master.check");
unlink("$keyring/master.check");
$offset = -s $node->logfile;
$node->restart;
like(VectorVault::log_since($node, $offset), qr/master key loaded/, '(d) master.check missing, right key: the key is loaded');
ok(-f "$keyring/master.check", '(d) ... master.check is recreated');
docs_ok('c4', '(d) master.check recreated');
all_readable('(d) master.check recreated');

# master.check missing and a wrong key configured.
unlink("$keyring/master.check");
my $wrong = $node->basedir . '/wrong.key';
VectorVault::write_key($wrong);
my $keyfile_now = VectorVault::read_bytes($case_conf);
use_key($wrong);
$offset = -s $node->logfile;
$node->restart;
note('(d) start with master.check missing and a wrong key: ' . join(' | ', grep { /vector_vault/ } split /\n/, VectorVault::log_since($node, $offset)));
($state, $msg) = VectorVault::sql_error($node, $db, "SELECT body::text FROM docs WHERE vault = 'c4'");
ok($state eq '22V03' || $state eq '22V01', "(d) master.check missing, wrong key: reading fails ($state)");
# Regression (fixed in src/keys/master_key.cpp, CheckAgainstKeyring): with master.check missing,
# any key used to be accepted and a new master.check written under it, although the keyring
# held entries wrapped under another key. Now the key must open the existing entries.
($state, $msg) = VectorVault::sql_error($node, $db, "SELECT vault.create_vault('c5')");
is($state, '22V03', '(d) master.check missing, wrong key: create_vault is refused with 22V03');
# Clean up whatever the wrong key created, then restore the right configuration.
$node->stop;
unlink("$keyring/master.check");
VectorVault::write_bytes("$keyring/master.check", $check);
VectorVault::write_bytes($case_conf, $keyfile_now);
$node->start;
docs_ok('c4', '(d) right key and master.check restored');

# --- (e) vault_hnsw: crashes inside inserts ------------------------------------------------------------------

$node->safe_psql($db, "SET vector_vault.vault = 'c3';
CREATE TABLE crashy (id int PRIMARY KEY, embedding evector($dim));
INSERT INTO crashy SELECT i, ARRAY(SELECT (random() * 100 + i * 0)::real FROM generate_series(1, $dim)) FROM generate_series(1, 200) i;
CREATE INDEX crashy_idx ON crashy USING vault_hnsw (embedding evector_l2_ops);");
my ($rounds, $orphans, $last) = (0, 0, '');
for my $round (1 .. 6)
{
	$rounds = $round;
	my ($i_out, $i_err) = ('', '');
	my $ins = IPC::Run::start([ 'psql', '-X', '-d', $node->connstr($db), '-c',
			"SET vector_vault.vault = 'c3'; INSERT INTO crashy SELECT 1000000 * $round + i, "
			  . "ARRAY(SELECT (random() * 100 + i * 0)::real FROM generate_series(1, $dim)) FROM generate_series(1, 1000000) i" ],
		'>', \$i_out, '2>', \$i_err);
	my $size0 = $node->safe_psql($db, "SELECT pg_relation_size('crashy_idx')");
	$node->poll_query_until($db, "SELECT pg_relation_size('crashy_idx') > $size0 + 400000");
	$node->stop('immediate');
	$ins->finish;
	$node->start;
	(undef, $last) = VectorVault::hnsw_verify($node, $db, 'crashy_idx');
	if ($last !~ /^elements\|t\|/m || $last !~ /^links\|t\|/m)
	{
		$orphans++;
		last;
	}
}
note("(e) hnsw_verify after crash round $rounds:\n$last");
# Regression (fixed in src/index/hnsw_insert.cpp, InsertVector): an insert WAL-logs the vector
# record, the element record, the neighbours' new lists and the directory as separate GenericXLog
# records; the metapage that advances next_element_id used to come only at the end (now it is in
# the element's own record). When the WAL that reached disk ends
# between them (a crash while a transaction is inserting: its WAL is not flushed at a commit),
# recovery replayed the element and the links to it but not the metapage: hnsw_verify reported
# "ids beyond the metapage" (and invalid links), and the next insert handed out the same id again.
is($orphans, 0, "(e) $rounds crash rounds inside inserts: no element beyond the metapage, no link to a missing element")
  or diag($last);
my %late = map { (5000 + $_) => [ map { ($_ * 7 + 3) % 100 + 0.5 } $_ .. $_ + $dim - 1 ] } 1 .. 50;
$node->safe_psql($db, "SET vector_vault.vault = 'c3';\n" . join('', map {
	"INSERT INTO crashy VALUES ($_, '" . VectorVault::vector_text($late{$_}) . "');\n" } sort keys %late));
(undef, $report) = VectorVault::hnsw_verify($node, $db, 'crashy_idx');
like($report, qr/ 0 duplicate ids, 0 ids beyond the metapage/, '(e) committed inserts after the crashes reuse no element id')
  or diag($report);
my $found = VectorVault::search_lists($node, $db, [ map { $late{$_} } sort keys %late ], vault => 'c3', table => 'crashy', k => 1);
is(join(',', @$found), join(',', sort keys %late), '(e) each of the 50 committed rows is found first by a search for its vector');

$node->stop;
done_testing();
