# 046_postmaster_kill.pl — the POSTMASTER itself is SIGKILLed (kill -9) in the middle of vault
# drops, master key rotations and re-encryption; after a restart the keyring and the data are
# consistent.
#
# How the postmaster is killed. 044 kills a backend because on this machine PID 1 does not reap
# orphans: a SIGKILLed postmaster would stay a zombie, its pid in postmaster.pid would look alive
# and block the next start. Here the test process makes itself a child subreaper
# (prctl(PR_SET_CHILD_SUBREAPER, 1), syscall 157 on x86_64) before the node starts, so the
# postmaster that pg_ctl daemonises is reparented to the test process (asserted before each kill),
# and after its death so are its children. kill_postmaster() SIGKILLs it and reaps it with
# waitpid (asserted: killed by signal 9, postmaster.pid left behind as after a real crash).
# wait_old_processes_gone() then waits until every process the postmaster had forked has exited
# (backends notice the postmaster's death by themselves; one that gdb holds is either killed, a
# whole-server crash, or let run on as an orphan) and reaps the ones reparented to us, and checks
# that no process is attached to the old shared memory segment any more (the same check Postgres'
# own start makes); restart_after_kill() starts the node and checks that it ran crash recovery.
# Only exited postgres processes are reaped, by pid, never with waitpid(-1): that would steal the
# exit status of the psql and gdb children IPC::Run waits for. gdb (as in 011 and
# VectorVault::gdb_pause) stops a backend at an exact function before the kill. Nothing depends
# on timing: every wait polls for a state, with a deadline only as a failure bound.
#
# (a) vault.drop_vault
#     d0: the postmaster is killed while a transaction that dropped d0 is open (idle): its backend
#         exits on its own; after restart d0 is active, keeps its key and reads, the rest of
#         that transaction is gone.
#     d1: the dropping backend is stopped in pre-commit after the durable shred intent is written
#         and before the commit record (checked: intent on disk, d1 still active for others);
#         postmaster and backend are killed; after restart the intent is discarded, d1 is active,
#         keeps its keys and reads.
#     d2 (two key versions): stopped AFTER the commit, in the middle of the key deletion (one
#         version's files deleted, the other's key file overwritten with zeros but not unlinked,
#         the intent still there; others see d2 dropped); postmaster and backend killed. The
#         restart finishes the shred by itself (a background worker reconciles the keyring once
#         recovery has finished; logged), before any key use; a master-key rotation as the first
#         statement succeeds; no key, seal-count or intent file is left, d2's rows fail with
#         22V02. (Both were bugs when this test was written: the shred waited for the first key
#         use, and the rotation failed on the zeroed entry.)
#     d3: stopped right after the commit, before any key file is deleted; the postmaster is
#         killed and the backend let run on as an orphan: it finishes the shred and reports
#         COMMIT; after restart nothing is left to finish and d3's rows fail with 22V02.
# (b) vault.rotate_master_key
#     b1: stopped while writing ".next" files (one written, no commit marker); the postmaster is
#         killed; a start attempted while that orphan backend still lives is refused by Postgres'
#         shared-memory interlock and must not have touched the keyring; after the backend is
#         killed and the node restarted, the rotation is rolled back (logged), every entry is
#         byte-identical to before and the old key reads everything.
#     b2: stopped after the commit marker, with one entry renamed into place; postmaster and
#         backend killed; the restart completes the rotation (logged); the old key now gives
#         22V03; with the new key configured everything reads.
#     b3: stopped after the commit marker before any rename; the postmaster is killed and the
#         backend let run on: it completes the rotation and returns the entry count; after
#         restart nothing is left over, nothing is "finished" or "discarded", the old key gives
#         22V03 and the new key reads everything.
# (c) CALL vault.reencrypt(ix, 50) over 600 indexed rows after rotate_key: stopped inside its
#     third batch (two batches, 100 values, committed: checked from another session), the WAL of
#     the open batch flushed by another commit, postmaster and backend killed; after restart
#     exactly the 100 committed values are under version 2, the seal count of version 2 did not
#     go back (durable reservation), every row decrypts to what was written, hnsw_verify reports
#     every check ok, index searches equal exact ones; reencrypt
#     re-run completes, only version 2 is left, and after VACUUM version 1 can be retired.
# After every restart: every surviving vault's rows decrypt to exactly what was written,
# vault.hnsw_verify on the indexed table reports every check ok, the keyring holds no ".next"
# file, commit marker, shred intent or temporary file, and every vault whose drop committed has no
# key or seal-count file left and its rows fail with 22V02.
use strict;
use warnings;
use Config;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use POSIX qw(WNOHANG WIFSIGNALED WTERMSIG);
use Digest::MD5 qw(md5_hex);
use VectorVault;

# --- the test process as child subreaper (before any node starts) -----------------------------

use constant { SYS_PRCTL_X86_64 => 157, PR_SET_CHILD_SUBREAPER => 36, PR_GET_CHILD_SUBREAPER => 37 };

plan skip_all => "prctl is syscall 157 only on x86_64; this Perl is built for $Config{archname}"
  unless $Config{archname} =~ /^x86_64-linux/;
plan skip_all => "prctl(PR_SET_CHILD_SUBREAPER, 1) failed: $!"
  unless syscall(SYS_PRCTL_X86_64, PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0;
my $subreaper = pack('i', 0);
plan skip_all => "prctl(PR_GET_CHILD_SUBREAPER) does not report the flag: $!"
  unless syscall(SYS_PRCTL_X86_64, PR_GET_CHILD_SUBREAPER, $subreaper, 0, 0, 0) == 0
  && unpack('i', $subreaper) == 1;
plan skip_all => 'gdb is not installed' unless system('gdb --version >/dev/null 2>&1') == 0;

my $db = 'postgres';
my $node = VectorVault::new_node('pmkill');
my $case_conf = $node->basedir . '/key_case.conf';
VectorVault::write_bytes($case_conf, '');
$node->append_conf('postgresql.conf', "include_if_exists = '$case_conf'\nmax_connections = 20\n");
$node->start;
my $keyring = $node->{vv_keyring};
{
	my $probe = $node->background_psql($db);
	my $can = VectorVault::gdb_can_attach($probe->query_safe('SELECT pg_backend_pid()'));
	$probe->quit;
	plan skip_all => 'gdb cannot attach to a backend (ptrace not permitted)' unless $can;
}

# --- processes: /proc, the lock file, shared memory ----------------------------------------------

# (state, ppid, start time, comm) of a process, or () when it does not exist.
sub proc_stat
{
	my ($pid) = @_;
	open(my $fh, '<', "/proc/$pid/stat") or return ();
	my $line = <$fh>;
	close($fh);
	return () unless defined $line && $line =~ /^\d+ \((.*)\) (.*)$/s;
	my ($comm, @f) = ($1, split(' ', $2));
	return ($f[0], $f[1], $f[19], $comm);
}

# Pids of the processes whose parent is $ppid.
sub children_of
{
	my ($ppid) = @_;
	opendir(my $dh, '/proc') or die "could not open /proc: $!";
	my @pids = grep { /^\d+$/ && ((proc_stat($_))[1] // -1) == $ppid } readdir($dh);
	closedir($dh);
	return @pids;
}

# (postmaster pid, shared memory id) from the node's postmaster.pid (lines 1 and 7).
sub lock_file_info
{
	my @lines = split /\n/, slurp_file($node->data_dir . '/postmaster.pid');
	my ($shmid) = ($lines[6] // '') =~ /^\s*\d+\s+(\d+)/;
	return ($lines[0], $shmid);
}

# Number of processes attached to SysV shared memory segment $shmid (undef when it is gone).
sub shm_nattch
{
	my ($shmid) = @_;
	open(my $fh, '<', '/proc/sysvipc/shm') or die "could not read /proc/sysvipc/shm: $!";
	while (my $line = <$fh>)
	{
		my @f = split ' ', $line;
		return $f[6] if @f > 6 && $f[1] eq $shmid;
	}
	return undef;
}

my %killed;    # what the last kill_postmaster() left to wait for

# SIGKILLs the postmaster and reaps it. Asserts first that it is the test process's child (the
# subreaper works) and has processes and attached shared memory, then that waitpid got it,
# killed by signal 9, with its postmaster.pid left behind.
sub kill_postmaster
{
	my ($what) = @_;
	my ($pm, $shmid) = lock_file_info();
	my @kids = children_of($pm);
	my $parent = (proc_stat($pm))[1] // -1;
	my $attached = shm_nattch($shmid) // 0;
	ok($parent == $$ && @kids >= 4 && $attached > 1,
		"$what: the postmaster is the test process's child (parent $parent, test $$) with "
		  . scalar(@kids) . " processes, $attached attached to its shared memory");
	kill('KILL', $pm);
	my $reaped = waitpid($pm, 0);
	my $status = $?;
	ok($reaped == $pm && WIFSIGNALED($status) && WTERMSIG($status) == 9 && (lock_file_info())[0] eq $pm,
		"$what: kill -9 of the postmaster; waitpid reaps it (status $status) and postmaster.pid still names it");
	# The lock file names a pid that no longer exists: Cluster.pm then counts the node as stopped.
	$node->_update_pid(-1);
	%killed = (pm => $pm, shmid => $shmid, kids => { map { my $t = (proc_stat($_))[2]; defined $t ? ($_ => $t) : () } @kids });
	return;
}

# Waits until every process of the killed postmaster has exited, reaping those reparented to the
# test process (by pid: its former children, and any other postgres process whose parent we now
# are, e.g. one forked just before the kill), then asserts none is left and nothing is attached
# to the old shared memory segment.
sub wait_old_processes_gone
{
	my ($what) = @_;
	my %kids = %{ $killed{kids} };
	my $deadline = time() + 90;
	my @left;
	while (1)
	{
		for my $pid (children_of($$))
		{
			my ($state, undef, $start, $comm) = proc_stat($pid);
			$kids{$pid} //= $start if defined $comm && $comm eq 'postgres';
		}
		for my $pid (keys %kids)
		{
			my ($state, $ppid, $start) = proc_stat($pid);
			waitpid($pid, WNOHANG) if defined $state && $state eq 'Z' && $ppid == $$ && $start == $kids{$pid};
		}
		@left = grep { my @s = proc_stat($_); @s && $s[2] == $kids{$_} } sort keys %kids;
		last if !@left || time() > $deadline;
		select(undef, undef, undef, 0.05);
	}
	my $nattch = shm_nattch($killed{shmid}) // 0;
	ok(!@left && $nattch == 0,
		"$what: all " . scalar(keys %kids) . " processes of the killed postmaster exited and were reaped, "
		  . "none attached to its shared memory (left: @left; attached: $nattch)");
	return;
}

# Starts the node after a kill; asserts it came up through crash recovery.
sub restart_after_kill
{
	my ($what) = @_;
	my $offset = -s $node->logfile;
	my $started = $node->start(fail_ok => 1);
	my $log = VectorVault::log_since($node, $offset);
	ok($started && $log =~ /database system was not properly shut down; automatic recovery in progress/,
		"$what: the node starts again, through crash recovery") or diag($log);
	die "$what: the node did not start" unless $started;
	return $log;
}

# --- sessions driven by the test, gdb -----------------------------------------------------------

# A psql session whose input we feed: { h, in, out, err, pid }.
sub open_session
{
	my %s = (in => "\\set VERBOSITY verbose\nSELECT pg_backend_pid();\n", out => '', err => '');
	$s{h} = IPC::Run::start([ 'psql', '-X', '-At', '-d', $node->connstr($db) ],
		'<', \$s{in}, '>', \$s{out}, '2>', \$s{err});
	wait_output(\%s, qr/^\d+$/m) or die "no backend pid: $s{err}";
	($s{pid}) = $s{out} =~ /^(\d+)$/m;
	$s{out} = '';
	return \%s;
}

sub send_sql
{
	my ($s, $sql) = @_;
	$s->{in} .= "$sql\n";
	eval { $s->{h}->pump_nb if $s->{h}->pumpable; };
	return;
}

# Pumps a session until its stdout or stderr matches $re; false after $seconds (default 60).
sub wait_output
{
	my ($s, $re, $seconds) = @_;
	my $deadline = time() + ($seconds // 60);
	while (time() < $deadline)
	{
		eval { $s->{h}->pump_nb if $s->{h}->pumpable; };
		return 1 if $s->{out} =~ $re || $s->{err} =~ $re;
		select(undef, undef, undef, 0.05);
	}
	return 0;
}

sub close_session
{
	my ($s) = @_;
	eval { $s->{h}->kill_kill; };
	return;
}

# Stops the backend of session $s with gdb (VectorVault::gdb_pause) at the last function of
# @$breaks (each breakpoint is set once the one before it was hit; $skip{fn} = n lets the first n
# hits of fn pass); what happens next is chosen later: VectorVault::gdb_release($g, 'kill')
# SIGKILLs the backend, gdb_release($g, 'detach') lets it run on. Returns the handle once gdb has
# set the first breakpoint (attached => 0 when it could not).
sub pause_backend
{
	my ($s, $name, $breaks, %skip) = @_;
	my $dir = $node->basedir . "/gdb_$name";
	mkdir $dir;
	return VectorVault::gdb_pause($s->{pid}, $dir, $breaks, { skip => \%skip });
}

# Runs $sql in session $s and waits until gdb holds its backend at the breakpoint.
sub run_until_paused
{
	my ($s, $g, $sql, $what) = @_;
	send_sql($s, $sql);
	my $stopped = $g->{attached} && VectorVault::gdb_stopped($g, 60);
	ok($stopped, "$what: gdb stopped the backend at its breakpoint")
	  or diag(${ $g->{out} } . ${ $g->{err} } . $s->{err});
	die "$what: the backend did not stop; the rest of the test depends on it" unless $stopped;
	return;
}

# --- data: vaults, rows, an indexed table --------------------------------------------------------

sub key_path { return "$keyring/" . VectorVault::key_file_name(@_); }
sub vault_hex { return sprintf('%016x', $_[0]); }
sub key_files_of
{
	my ($id) = @_;
	my $hex = vault_hex($id);
	return grep { /^vault-$hex-v\d+\.key$/ } VectorVault::keyring_files($node);
}
# A vault's key files and seal-count files (shredding removes both).
sub keyring_files_of
{
	my ($id) = @_;
	my $hex = vault_hex($id);
	return grep { /^vault-$hex-v\d+\.(key|count)$/ } VectorVault::keyring_files($node);
}
sub intent_of { return "$keyring/shred-" . vault_hex($_[0]) . '.intent'; }
sub vault_state
{
	my ($name) = @_;
	return $node->safe_psql($db, "SELECT state FROM vault._vaults WHERE name = '$name' ORDER BY created_at DESC LIMIT 1");
}

$node->safe_psql($db, 'CREATE EXTENSION vector_vault; CREATE TABLE docs (id int PRIMARY KEY, vault text, body etext);');
my (%rows, %vault_id, %dropped);    # vault => {id => body}; vault => id; vault => 1 once its drop committed

sub add_rows
{
	my ($vault, $first, $n) = @_;
	$node->safe_psql($db, "SET vector_vault.vault = '$vault';\nINSERT INTO docs SELECT i, '$vault', '$vault secret ' || i "
		  . "FROM generate_series($first, $first + $n - 1) i");
	$rows{$vault}{$_} = "$vault secret $_" for $first .. $first + $n - 1;
	return;
}

sub create_vault_with_rows
{
	my ($vault, $first, $n) = @_;
	$node->safe_psql($db, "SELECT vault.create_vault('$vault')");
	$vault_id{$vault} = $node->safe_psql($db, "SELECT vault_id FROM vault._vaults WHERE name = '$vault' AND state = 'active'");
	add_rows($vault, $first, $n);
	return $vault_id{$vault};
}

sub survivors { return sort grep { !$dropped{$_} } keys %rows; }

my $dim = 16;
my $nitems = 600;
my $vecs = VectorVault::int_vectors($nitems, $dim, 4646);
my %vec_of = map { ($_ + 1) => $vecs->[$_] } 0 .. $nitems - 1;
my @queries = map { my $q = $_; [ map { $q->[$_] + 0.1 + 0.0137 * $_ } 0 .. $dim - 1 ] } @{ VectorVault::int_vectors(12, $dim, 4747) };
$node->safe_psql($db, "SELECT vault.create_vault('ix'); CREATE TABLE items (id int PRIMARY KEY, body etext, embedding evector($dim));");
$vault_id{ix} = $node->safe_psql($db, "SELECT vault_id FROM vault._vaults WHERE name = 'ix'");
for (my $i = 1; $i <= $nitems; $i += 300)
{
	$node->safe_psql($db, "SET vector_vault.vault = 'ix';\n" . VectorVault::insert_sql('items', \%vec_of, [ $i .. $i + 299 ], 'row'));
}
$node->safe_psql($db, 'CREATE INDEX items_idx ON items USING vault_hnsw (embedding evector_l2_ops)');
my $items_expected = "$nitems " . md5_hex(join(';', map { "$_|row $_|" . VectorVault::vector_text($vec_of{$_}) } 1 .. $nitems));
my $items_sql = "SELECT count(*) || ' ' || md5(string_agg(id || '|' || body::text || '|' || embedding::text, ';' ORDER BY id)) FROM items";
my $versions_sql = q{SELECT count(*) FILTER (WHERE vault.key_version_of(body) = 1) + count(*) FILTER (WHERE vault.key_version_of(embedding) = 1)
	|| '|' || count(*) FILTER (WHERE vault.key_version_of(body) = 2) + count(*) FILTER (WHERE vault.key_version_of(embedding) = 2) FROM items};

create_vault_with_rows('s1', 100, 20);
create_vault_with_rows($_->[0], $_->[1], 5) for ([ 'd0', 1000 ], [ 'd1', 1100 ], [ 'd2', 1200 ], [ 'd3', 1300 ]);
# d2 gets a second key version, with rows under each.
$node->safe_psql($db, "SELECT vault.rotate_key('d2')");
add_rows('d2', 1250, 5);

# The checks made after every restart (see the header).
sub check_consistent
{
	my ($what) = @_;
	my @alive = survivors();
	my %all = map { %{ $rows{$_} } } @alive;
	my @ids = sort { $a <=> $b } keys %all;
	my $expected = scalar(@ids) . ' ' . md5_hex(join(';', map { "$_|$all{$_}" } @ids));
	my ($state, $msg, $err, $out) = VectorVault::sql_error($node, $db,
		"SELECT count(*) || ' ' || md5(string_agg(id || '|' || body::text, ';' ORDER BY id)) FROM docs WHERE vault IN ("
		  . join(', ', map { "'$_'" } @alive) . ')');
	is($state . $out, $expected, "$what: the " . scalar(@ids) . " rows of the surviving vaults (@alive) decrypt to what was written")
	  or diag($err);
	($state, $msg, $err, $out) = VectorVault::sql_error($node, $db, $items_sql);
	is($state . $out, $items_expected, "$what: the $nitems indexed rows of vault ix decrypt to what was written") or diag($err);
	my ($ok, $report) = eval { VectorVault::hnsw_verify($node, $db, 'items_idx') };
	ok($ok, "$what: vault.hnsw_verify(items_idx) reports every check ok") or diag($report // $@);
	my @junk = grep { /\.next$|^rotation\.commit$|\.intent$|\.tmp\./ } VectorVault::keyring_files($node);
	is("@junk", '', "$what: the keyring holds no .next file, commit marker, shred intent or temporary file");
	for my $v (sort keys %dropped)
	{
		is(join(' ', keyring_files_of($vault_id{$v})), '', "$what: dropped vault $v has no key file and no seal-count file");
		($state, $msg, $err) = VectorVault::sql_error($node, $db, "SELECT body::text FROM docs WHERE vault = '$v'");
		is($state, '22V02', "$what: dropped vault $v: its rows fail with 22V02") or diag($err);
	}
	return;
}

check_consistent('before any kill');
is(join(' ', map { s/^vault-[0-9a-f]+-//r } keyring_files_of($vault_id{d2})), 'v1.count v1.key v2.count v2.key',
	'before any kill: d2 has a key file and a seal-count file for each of its versions 1 and 2');

# --- (a) drop_vault ------------------------------------------------------------------------------

# d0: a transaction that dropped d0 is open (idle) when the postmaster dies.
{
	my $s = open_session();
	send_sql($s, "BEGIN;\nSELECT vault.drop_vault('d0');\nINSERT INTO docs VALUES (99999, 'x', NULL);\nSELECT 'in-transaction';");
	ok(wait_output($s, qr/^in-transaction$/m), '(a) d0: drop_vault and an insert ran in an open transaction') or diag($s->{err});
	is(vault_state('d0'), 'active', '(a) d0: others still see d0 active');
	kill_postmaster('(a) d0 open drop');
	wait_old_processes_gone('(a) d0 open drop');    # the idle backend notices by itself
	close_session($s);
	restart_after_kill('(a) d0 open drop');
	is(vault_state('d0'), 'active', '(a) d0: after restart the uncommitted drop left d0 active');
	ok(-f key_path($vault_id{d0}), '(a) d0: ... d0 keeps its key file');
	is($node->safe_psql($db, 'SELECT count(*) FROM docs WHERE id = 99999'), '0', '(a) d0: ... the rest of that transaction is gone');
	check_consistent('(a) d0 after restart');
}

# d1: stopped in pre-commit, after the shred intent is written, before the commit record.
{
	my $s = open_session();
	my $g = pause_backend($s, 'd1', [ 'vector_vault::WriteFileDurably', 'XLogInsert' ]);
	run_until_paused($s, $g, "BEGIN;\nSELECT vault.drop_vault('d1');\nCOMMIT;", '(a) d1 pre-commit');
	ok(-f intent_of($vault_id{d1}) && -f key_path($vault_id{d1}),
		'(a) d1: at the stop the shred intent is on disk and the key file still there');
	is(vault_state('d1'), 'active', '(a) d1: ... and the drop is not committed (others see d1 active)');
	kill_postmaster('(a) d1 pre-commit');
	VectorVault::gdb_release($g, 'kill');
	wait_old_processes_gone('(a) d1 pre-commit');
	close_session($s);
	restart_after_kill('(a) d1 pre-commit');
	is(vault_state('d1'), 'active', '(a) d1: after restart the uncommitted drop left d1 active');
	check_consistent('(a) d1 after restart');    # reading reconciles the keyring: the intent goes
	ok(-f key_path($vault_id{d1}), '(a) d1: ... d1 keeps its key file');
}

# d2: stopped after the commit, in the middle of the key deletion: version 1's files deleted,
# version 2's key file overwritten with zeros but not yet unlinked.
{
	my $s = open_session();
	# ShredDataKeyEntries destroys the key files one by one (overwrite, fsync, unlinkat), before
	# any .count file is removed; the second unlinkat is the second version's key file, which is
	# then already overwritten with zeros and fsynced.
	my $g = pause_backend($s, 'd2', [ 'vector_vault::ShredDataKeyEntries', 'unlinkat' ], 'unlinkat' => 1);
	run_until_paused($s, $g, "BEGIN;\nSELECT vault.drop_vault('d2');\nCOMMIT;", '(a) d2 between commit and key deletion');
	is(vault_state('d2'), 'dropped', '(a) d2: at the stop the drop is committed (others see d2 dropped)');
	my @left = key_files_of($vault_id{d2});
	ok(@left == 1 && VectorVault::read_bytes("$keyring/$left[0]") eq "\0" x 88 && -f intent_of($vault_id{d2}),
		"(a) d2: ... one of its two key files is deleted, the other (@left) overwritten with zeros, the shred intent still there");
	kill_postmaster('(a) d2 mid-shred');
	VectorVault::gdb_release($g, 'kill');
	wait_old_processes_gone('(a) d2 mid-shred');
	close_session($s);
	is(join(' ', key_files_of($vault_id{d2})), "@left", '(a) d2: after the kill that key file is still there');
	my $offset = -s $node->logfile;
	restart_after_kill('(a) d2 mid-shred');
	$dropped{d2} = 1;
	# Regression (was a bug): a crash between the drop's commit and the key deletion is finished at
	# the next start, by the keyring reconciler worker that runs once recovery has finished (it
	# used to wait for a backend's first uncached key use). Polled: the worker runs beside us.
	my $leftover;
	for (1 .. 1200)    # up to 60 s
	{
		$leftover = join(' ', keyring_files_of($vault_id{d2}), map { s{.*/}{}r } grep { -f $_ } intent_of($vault_id{d2}));
		last if $leftover eq '';
		select(undef, undef, undef, 0.05);
	}
	is($leftover, '', '(a) d2: after the restart, before any key use, the interrupted shred is finished');
	# Regression (was a bug): vault.rotate_master_key reconciles pending shred intents first
	# instead of failing on a half-shredded (zeroed) entry.
	my $key_a = $node->basedir . '/master.key.a';
	VectorVault::write_key($key_a);
	my ($state, $msg, $err) = VectorVault::sql_error($node, $db, "SELECT vault.rotate_master_key(new_key_file => '$key_a')");
	is($state, '', '(a) d2: a master key rotation as the first statement after the restart succeeds') or diag($err);
	use_key($key_a) if $state eq '';    # the rotation switched keys: the next starts need the new one
	check_consistent('(a) d2 after restart');
	like(VectorVault::log_since($node, $offset), qr/finished shredding the keys of vault @{[ vault_hex($vault_id{d2}) ]} after a crash/,
		'(a) d2: the shred interrupted by the kill is finished and logged');
}

# d3: stopped right after the commit; the postmaster is killed, the backend runs on as an orphan.
{
	my $s = open_session();
	my $g = pause_backend($s, 'd3', ['vector_vault::ShredDataKeyEntries']);
	run_until_paused($s, $g, "BEGIN;\nSELECT vault.drop_vault('d3');\nCOMMIT;\nSELECT 'after-commit';", '(a) d3 right after commit');
	ok(vault_state('d3') eq 'dropped' && key_files_of($vault_id{d3}) == 1 && -f intent_of($vault_id{d3}),
		'(a) d3: at the stop the drop is committed, its key file and the intent are still there');
	my $kill_offset = -s $node->logfile;
	kill_postmaster('(a) d3 orphan');
	VectorVault::gdb_release($g, 'detach');
	# It reports COMMIT, then exits by itself when it waits for a statement. Whether psql shows
	# that FATAL depends on timing (psql, waiting on its input, does not read a message that
	# arrives after a result), so the server log, which names the backend, is where to look.
	my $committed = wait_output($s, qr/^COMMIT$/m);
	wait_old_processes_gone('(a) d3 orphan');
	ok($committed && VectorVault::log_since($node, $kill_offset)
		  =~ /\[$s->{pid}\][^\n]*FATAL:\s+terminating connection due to unexpected postmaster exit/,
		'(a) d3: the orphaned backend finished the COMMIT, then ended its session (57P01 unexpected postmaster exit)')
	  or diag($s->{out} . $s->{err} . VectorVault::log_since($node, $kill_offset));
	close_session($s);
	ok(!key_files_of($vault_id{d3}) && !-f intent_of($vault_id{d3}),
		'(a) d3: the orphan deleted the key file and the intent before it exited');
	my $offset = -s $node->logfile;
	restart_after_kill('(a) d3 orphan');
	$dropped{d3} = 1;
	check_consistent('(a) d3 after restart');
	unlike(VectorVault::log_since($node, $offset), qr/finished shredding/, '(a) d3: nothing was left to finish');
}

# --- (b) rotate_master_key -------------------------------------------------------------------------

# Every entry file (master.check and the vault keys) => bytes.
sub entries
{
	opendir(my $dh, $keyring) or die "opendir $keyring: $!";
	my %e = map { $_ => VectorVault::read_bytes("$keyring/$_") } grep { $_ eq 'master.check' || /\.key$/ } readdir($dh);
	closedir($dh);
	return \%e;
}
sub use_key
{
	my ($file) = @_;
	VectorVault::write_bytes($case_conf, "vector_vault.master_key_file = '$file'\n");
	return;
}
sub rotation_files
{
	my @f = VectorVault::keyring_files($node);
	return (scalar(grep { /\.next$/ } @f), scalar(grep { $_ eq 'rotation.commit' } @f));
}
# Reading with the configured key fails with 22V03 (the keyring is under another key).
sub old_key_refused
{
	my ($what) = @_;
	my ($state, $msg, $err) = VectorVault::sql_error($node, $db, "SELECT body::text FROM docs WHERE vault = 's1'");
	is($state, '22V03', "$what: reading with the old master key fails with 22V03") or diag($err);
	return;
}

my $key2 = $node->basedir . '/master.key.2';
my $key3 = $node->basedir . '/master.key.3';
VectorVault::write_key($_) for ($key2, $key3);

# b1: stopped while writing .next files (one written, no marker).
{
	my $before = entries();
	my $n = keys %$before;
	my $s = open_session();
	my $g = pause_backend($s, 'b1', ['vector_vault::WriteFileDurably'], 'vector_vault::WriteFileDurably' => 1);
	run_until_paused($s, $g, "SELECT vault.rotate_master_key(new_key_file => '$key2');", '(b) b1 writing .next files');
	is(join('/', rotation_files()), '1/0', "(b) b1: at the stop one of $n .next files is written and there is no commit marker");
	kill_postmaster('(b) b1 writing .next files');
	# The stopped backend still lives: Postgres refuses to start while a process is attached to the
	# old shared memory. That check must come before the extension touches the keyring (its
	# postmaster start rolls back or completes rotations: doing so under a live orphan would race it).
	my @files = VectorVault::keyring_files($node);
	my $offset = -s $node->logfile;
	ok(!$node->start(fail_ok => 1), '(b) b1: a start while the orphaned rotating backend lives is refused');
	my $log = VectorVault::log_since($node, $offset);
	like($log, qr/pre-existing shared memory block .* is still in use/, '(b) b1: ... by the shared memory interlock');
	ok("@files" eq join(' ', VectorVault::keyring_files($node)) && $log !~ /vector_vault:/,
		'(b) b1: ... and the refused start left the keyring alone') or diag($log);
	VectorVault::gdb_release($g, 'kill');
	wait_old_processes_gone('(b) b1 writing .next files');
	close_session($s);
	$log = restart_after_kill('(b) b1 writing .next files');
	like($log, qr/discarded an unfinished master key rotation \(1 entries\)/, '(b) b1: the start rolled the rotation back (logged)');
	is_deeply(entries(), $before, '(b) b1: every entry is byte-identical to before');
	check_consistent('(b) b1 after restart, old key');
}

# b2: stopped after the commit marker with one entry renamed.
{
	my $before = entries();
	my $n = keys %$before;
	my $s = open_session();
	my $g = pause_backend($s, 'b2', ['vector_vault::RenameDurably'], 'vector_vault::RenameDurably' => 1);
	run_until_paused($s, $g, "SELECT vault.rotate_master_key(new_key_file => '$key2');", '(b) b2 after the commit marker');
	is(join('/', rotation_files()), ($n - 1) . '/1', "(b) b2: at the stop the marker is written and 1 of $n entries renamed into place");
	kill_postmaster('(b) b2 after the commit marker');
	VectorVault::gdb_release($g, 'kill');
	wait_old_processes_gone('(b) b2 after the commit marker');
	close_session($s);
	my $log = restart_after_kill('(b) b2 after the commit marker');
	like($log, qr/finished a master key rotation interrupted by a crash \(@{[ $n - 1 ]} entries\)/, '(b) b2: the start completed the rotation (logged)');
	my $after = entries();
	ok(keys(%$after) == $n && !grep({ $after->{$_} eq ($before->{$_} // '') } keys %$after), "(b) b2: all $n entries are re-wrapped");
	old_key_refused('(b) b2');
	use_key($key2);
	$node->restart;
	check_consistent('(b) b2 with the new key');
}

# b3: stopped after the commit marker; the backend runs on as an orphan and completes the rotation.
{
	my $before = entries();
	my $n = keys %$before;
	my $s = open_session();
	my $g = pause_backend($s, 'b3', ['vector_vault::RenameDurably']);
	run_until_paused($s, $g, "SELECT vault.rotate_master_key(new_key_file => '$key3');", '(b) b3 orphan');
	is(join('/', rotation_files()), "$n/1", "(b) b3: at the stop the marker and $n .next files are written");
	kill_postmaster('(b) b3 orphan');
	VectorVault::gdb_release($g, 'detach');
	ok(wait_output($s, qr/^$n$/m), "(b) b3: the orphaned backend completed the rotation ($n entries)") or diag($s->{out} . $s->{err});
	wait_old_processes_gone('(b) b3 orphan');
	close_session($s);
	is(join('/', rotation_files()), '0/0', '(b) b3: it left no .next file and no marker');
	my $log = restart_after_kill('(b) b3 orphan');
	unlike($log, qr/finished a master key rotation|discarded an unfinished master key rotation/, '(b) b3: the start had nothing to finish or discard');
	old_key_refused('(b) b3');
	use_key($key3);
	$node->restart;
	check_consistent('(b) b3 with the new key');
}

# --- (c) reencrypt ------------------------------------------------------------------------------------

{
	is($node->safe_psql($db, "SELECT vault.rotate_key('ix')"), '2', '(c) rotate_key(ix) returns 2');
	is($node->safe_psql($db, $versions_sql), (2 * $nitems) . '|0', '(c) before: every value is under version 1');
	my $s = open_session();
	# 50 values per batch and column (items.body and items.embedding are rewritten one after the
	# other): stop at the 18th reseal of the third batch of the first of them.
	my $g = pause_backend($s, 'c', ['vault_reseal'], vault_reseal => 117);
	run_until_paused($s, $g, "CALL vault.reencrypt('ix', 50);", '(c) reencrypt mid-batch');
	is($node->safe_psql($db, $versions_sql), (2 * $nitems - 100) . '|100', '(c) at the stop two batches (100 values) are committed');
	my $seals = $node->safe_psql($db, "SELECT vault.seal_count('ix', 2)");
	cmp_ok($seals, '>=', 117, '(c) ... and 117 values were sealed under version 2');
	# A commit elsewhere flushes the WAL of everything the stopped backend wrote in its open batch.
	$node->safe_psql($db, 'CREATE TABLE flush_c ()');
	kill_postmaster('(c) reencrypt mid-batch');
	VectorVault::gdb_release($g, 'kill');
	wait_old_processes_gone('(c) reencrypt mid-batch');
	close_session($s);
	unlike($s->{err}, qr/values re-encrypted/, '(c) reencrypt had not finished');
	restart_after_kill('(c) reencrypt mid-batch');
	is($node->safe_psql($db, $versions_sql), (2 * $nitems - 100) . '|100', '(c) after restart exactly the 100 committed values are under version 2');
	my $seals_after = $node->safe_psql($db, "SELECT vault.seal_count('ix', 2)");
	cmp_ok($seals_after, '>=', $seals, "(c) the seal count of version 2 did not go back across the kill ($seals, then $seals_after)");
	check_consistent('(c) after restart');
	is_deeply(VectorVault::search_lists($node, $db, \@queries, vault => 'ix', ef => 400),
		VectorVault::exact_lists($node, $db, \@queries, vault => 'ix'), '(c) index searches equal exact searches');
	my ($rc, $out, $err) = $node->psql($db, "CALL vault.reencrypt('ix', 500)");
	ok($rc == 0 && $err =~ /@{[ 2 * $nitems - 100 ]} values re-encrypted under key version 2/, '(c) reencrypt re-run completes the rest') or diag($err);
	is($node->safe_psql($db, $versions_sql), '0|' . (2 * $nitems), '(c) ... and leaves only version 2 values');
	$node->safe_psql($db, 'VACUUM (INDEX_CLEANUP ON) items');
	my ($state, $msg);
	($state, $msg, $err) = VectorVault::sql_error($node, $db, "SELECT vault.retire_key_version('ix', 1)");
	is($state, '', '(c) after VACUUM retire_key_version(ix, 1) succeeds') or diag($err);
	ok(!-f key_path($vault_id{ix}, 1) && -f key_path($vault_id{ix}, 2), '(c) ... the version 1 key file is gone, version 2 kept');
	check_consistent('(c) after the completed reencrypt');
	is_deeply(VectorVault::search_lists($node, $db, \@queries, vault => 'ix', ef => 400),
		VectorVault::exact_lists($node, $db, \@queries, vault => 'ix'), '(c) index searches still equal exact searches');
}

# The postmasters of the clean restarts and of this stop were the test process's children too:
# reap them, so that none is left a zombie under an init that does not reap.
$node->stop;
my $deadline = time() + 30;
while (time() < $deadline)
{
	my @exited = grep { my ($state, undef, undef, $comm) = proc_stat($_); ($comm // '') eq 'postgres' && $state eq 'Z' } children_of($$);
	waitpid($_, WNOHANG) for @exited;
	last unless grep { ((proc_stat($_))[3] // '') eq 'postgres' } children_of($$);
	select(undef, undef, undef, 0.05);
}
done_testing();
