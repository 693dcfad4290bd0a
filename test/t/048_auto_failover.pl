# 048_auto_failover.pl — automatic failover with pg_auto_failover and the out-of-band keyring
# synchronisation (scripts/keyring-sync.sh), issue 15.
#
# A monitor and two data nodes, a and b, on loopback, each data node with vector_vault preloaded,
# its own keyring directory and its own copy of the master key file (two "hosts"); their
# postgresql.conf includes '../vv_node.conf', so the one file pg_basebackup copies resolves to each
# node's own settings. pg_auto_failover runs synchronous replication (ANY 1). keyring-sync.sh runs
# next to each node, every second, pulling the primary's WRAPPED keyring entries over libpq as
# role vv_keyring_sync.
#   - keys reach the standby: a vault created on the primary is searchable on the standby within
#     seconds; a data-key rotation (new version, reencrypt, retire) adds v2 and removes v1 on the
#     standby; a drop removes the vault's entries from the standby's keyring.
#   - failover: under a write-and-search load from a libpq multi-host client (host=a,b
#     target_session_attrs=read-write, Python psycopg2), node a's postmaster and its pg_autoctl
#     keeper are killed with SIGKILL (the whole host gone: killing the postmaster alone makes the
#     keeper restart it in place, which is no failover). The monitor promotes b; every row the
#     client saw committed is on b (RPO 0) and decrypts; searches of a stable vault return the
#     same lists as before; RTO (seconds the client could not commit) is measured and printed.
#   - a standby promoted while its keyring sync lagged: b's sync is stopped, vault "late" is created
#     and filled on a, then a is killed. On b, "late" fails with 22V02 (no wrong data) while
#     every other vault works. When a rejoins (pg_rewind, secondary), its sync keeps late's
#     entries (never received from a primary, so never removed) and warns; copying them to b's
#     keyring, as docs/backups.md says, makes every committed "late" row readable on b.
#   - a rejoins as a secondary; searches on it equal the primary's.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use File::Copy qw(copy);
use POSIX ();
use VectorVault;

my $db = 'postgres';
my $top = $ENV{VV_TOP} // '.';
my $D = "$PostgreSQL::Test::Utils::tmp_check/af";
mkdir($D, 0700) or die "mkdir $D: $!";
my $sock = PostgreSQL::Test::Utils::tempdir_short();
$ENV{XDG_CONFIG_HOME} = "$D/xdg_config";
$ENV{XDG_DATA_HOME} = "$D/xdg_data";
$ENV{XDG_RUNTIME_DIR} = "$D/xdg_run";
mkdir($ENV{XDG_RUNTIME_DIR}, 0700);
delete $ENV{$_} for qw(PGHOST PGPORT PGDATABASE PGUSER PGSERVICE);

my %port = (mon => PostgreSQL::Test::Cluster::get_free_port(), a => PostgreSQL::Test::Cluster::get_free_port(),
	b => PostgreSQL::Test::Cluster::get_free_port());
my %pgdata = (mon => "$D/mon", a => "$D/a/pgdata", b => "$D/b/pgdata");
my $monitor_uri = "postgres://autoctl_node\@127.0.0.1:$port{mon}/pg_auto_failover?sslmode=disable";
my $multi = "host=127.0.0.1,127.0.0.1 port=$port{a},$port{b} dbname=$db target_session_attrs=read-write connect_timeout=2";
my (%keeper, %syncer, $client);    # node => process group id (pg_autoctl run / keyring-sync.sh run)

# Runs a command, output to $log; dies on failure unless $ok_fail.
sub run_cmd
{
	my ($cmd, $log, $ok_fail) = @_;
	my $ok = IPC::Run::run($cmd, '>', $log, '2>&1', IPC::Run::timeout(300));
	die "@$cmd failed, see $log" unless $ok || $ok_fail;
	return $ok;
}

# Starts a command in a new session (its own process group) in the background, output appended
# to $log; returns its pid, which is also its process group id.
sub start_bg
{
	my ($log, @cmd) = @_;
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		POSIX::setsid();
		open(STDIN, '<', '/dev/null');
		open(STDOUT, '>>', $log) or POSIX::_exit(126);
		open(STDERR, '>&', \*STDOUT);
		exec(@cmd) or POSIX::_exit(127);
	}
	return $pid;
}

# Runs SQL on one node (TCP loopback); returns (ok, stdout, stderr).
sub sql
{
	my ($conn, $sql) = @_;
	$conn = "host=127.0.0.1 port=$port{$conn} dbname=$db connect_timeout=5" if $conn =~ /^(a|b)$/;
	my ($out, $err) = ('', '');
	my $in = "\\set VERBOSITY verbose\n$sql\n";
	my $ok = IPC::Run::run([ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $conn, '-f', '-' ],
		'<', \$in, '>', \$out, '2>', \$err, IPC::Run::timeout(120));
	chomp($out);
	return ($ok ? 1 : 0, $out, $err);
}

# Like sql(), dying on failure.
sub safe_sql
{
	my ($conn, $sql) = @_;
	my ($ok, $out, $err) = sql($conn, $sql);
	die "SQL on $conn failed: $err\n$sql" unless $ok;
	return $out;
}

# Waits until $to has replayed everything $from has written so far; 1 or 0.
sub caught_up
{
	my ($from, $to) = @_;
	my $lsn = safe_sql($from, 'SELECT pg_current_wal_lsn()');
	return defined wait_for(60, sub { my ($ok, $o) = sql($to, "SELECT pg_last_wal_replay_lsn() >= '$lsn'"); $ok && $o eq 't' }) ? 1 : 0;
}

# The (reported, assigned) states of node $name from the monitor.
sub node_state
{
	my ($name) = @_;
	my $out = '';
	IPC::Run::run([ 'pg_autoctl', 'show', 'state', '--pgdata', $pgdata{mon} ], '>', \$out, '2>', \my $e,
		IPC::Run::timeout(30));
	for my $line (split /\n/, $out)
	{
		my @f = map { s/^\s+|\s+$//gr } split /\|/, $line;
		return ($f[5], $f[6]) if @f >= 7 && $f[0] eq $name;
	}
	return ('', '');
}

# Waits until node $name reports and is assigned one of the states in @want; returns seconds or undef.
sub wait_state
{
	my ($name, $seconds, @want) = @_;
	my $t0 = time();
	while (time() - $t0 < $seconds)
	{
		my ($rep, $asg) = node_state($name);
		return time() - $t0 if grep { $rep eq $_ && $asg eq $_ } @want;
		sleep(0.5);
	}
	return undef;
}

# Polls $code until it returns true or $seconds pass; returns the seconds it took, or undef.
sub wait_for
{
	my ($seconds, $code) = @_;
	my $t0 = time();
	while (time() - $t0 < $seconds)
	{
		return time() - $t0 if $code->();
		sleep(0.2);
	}
	return undef;
}

# Starts the keyring sync next to node $n (every second).
sub start_sync
{
	my ($n) = @_;
	$syncer{$n} = start_bg("$D/$n/keyring-sync.log", 'bash', "$top/scripts/keyring-sync.sh", 'run',
		'--source', "host=127.0.0.1,127.0.0.1 port=$port{a},$port{b} dbname=$db user=vv_keyring_sync "
		  . 'target_session_attrs=read-write connect_timeout=2',
		'--local', "host=127.0.0.1 port=$port{$n} dbname=$db connect_timeout=2",
		'--keyring', "$D/$n/keyring", '--interval', '1');
	return;
}

# Stops the keyring sync next to node $n.
sub stop_sync
{
	my ($n) = @_;
	return unless $syncer{$n};
	kill('TERM', -$syncer{$n});
	waitpid($syncer{$n}, 0);
	delete $syncer{$n};
	return;
}

# Stops everything this test started (also when it dies half-way).
sub cleanup
{
	stop_sync($_) for keys %syncer;
	if ($client)
	{
		kill('TERM', -$client);
		waitpid($client, 0);
		$client = undef;
	}
	for my $n (qw(b a mon))
	{
		next unless $keeper{$n};
		IPC::Run::run([ 'pg_autoctl', 'stop', '--pgdata', $pgdata{$n} ], '>', \my $o, '2>', \my $e, IPC::Run::timeout(60));
	}
	sleep(2);
	for my $n (keys %keeper)
	{
		kill('KILL', -$keeper{$n}) if waitpid($keeper{$n}, POSIX::WNOHANG()) == 0;
		waitpid($keeper{$n}, 0);
	}
	%keeper = ();
	return;
}
END { cleanup(); }

# --- two "hosts", one monitor ---------------------------------------------------------------------

my $keyhex = VectorVault::write_key("$D/master.key");
for my $n (qw(a b))
{
	mkdir("$D/$n", 0700);
	mkdir("$D/$n/keyring", 0700);
	mkdir("$sock/$n", 0700);
	copy("$D/master.key", "$D/$n/master.key") or die;
	chmod(0600, "$D/$n/master.key");
	VectorVault::write_bytes("$D/$n/vv_node.conf", qq{
shared_preload_libraries = 'vector_vault,pg_stat_statements'
vector_vault.master_key_file = '$D/$n/master.key'
vector_vault.keyring_dir = '$D/$n/keyring'
unix_socket_directories = '$sock/$n'
shared_buffers = '64MB'
wal_keep_size = '256MB'
max_wal_size = '256MB'
logging_collector = off
}, 0600);
}
run_cmd([ 'pg_autoctl', 'create', 'monitor', '--pgdata', $pgdata{mon}, '--pgport', $port{mon},
		'--hostname', '127.0.0.1', '--auth', 'trust', '--no-ssl' ], "$D/mon.create.log");
run_cmd([ 'pg_autoctl', 'config', 'set', '--pgdata', $pgdata{mon}, 'postgresql.listen_addresses', '127.0.0.1' ],
	"$D/mon.config.log");
open(my $mc, '>>', "$pgdata{mon}/postgresql.conf") or die;
print $mc "shared_buffers = '32MB'\nunix_socket_directories = '$sock'\n";
close($mc);
$keeper{mon} = start_bg("$D/mon.log", 'pg_autoctl', 'run', '--pgdata', $pgdata{mon});

# Node a: initdb'ed by us (so vector_vault is preloaded from its first start), then registered.
run_cmd([ 'initdb', '-k', '-A', 'trust', '-U', 'postgres', '-D', $pgdata{a} ], "$D/a.initdb.log");
open(my $ac, '>>', "$pgdata{a}/postgresql.conf") or die;
print $ac "include_if_exists = '../vv_node.conf'\n";
close($ac);
wait_for(60, sub { my ($ok) = sql("host=127.0.0.1 port=$port{mon} dbname=pg_auto_failover user=autoctl_node", 'SELECT 1'); $ok })
  or die 'monitor did not start';
for my $n (qw(a b))
{
	run_cmd([ 'pg_autoctl', 'create', 'postgres', '--pgdata', $pgdata{$n}, '--pgport', $port{$n}, '--pghost', "$sock/$n",
			'--listen', '127.0.0.1', '--hostname', '127.0.0.1', '--name', $n, '--monitor', $monitor_uri,
			'--auth', 'trust', '--no-ssl', '--username', 'postgres', '--dbname', $db ], "$D/$n.create.log");
	$keeper{$n} = start_bg("$D/$n.log", 'pg_autoctl', 'run', '--pgdata', $pgdata{$n});
	if ($n eq 'a')
	{
		ok(defined wait_state('a', 60, 'single') && defined wait_for(60, sub { (sql('a', 'SELECT 1'))[0] }),
			'node a runs as a single primary');
		# The keyring sync's reader, on the primary (it replicates to b like any object).
		run_cmd([ 'bash', "$top/scripts/keyring-sync.sh", 'install', '--source', "host=127.0.0.1 port=$port{a} dbname=$db" ],
			"$D/sync.install.log");
		safe_sql('a', 'ALTER ROLE vv_keyring_sync LOGIN');
	}
}
ok(defined wait_state('b', 120, 'secondary'), 'node b joined as a secondary');
ok(defined wait_state('a', 60, 'primary'), 'node a is the primary');
like(safe_sql('a', 'SHOW synchronous_standby_names'), qr/^ANY 1 \(pgautofailover_standby_\d+\)$/,
	'the primary replicates synchronously');
is(safe_sql($_, 'SHOW shared_preload_libraries'), 'vector_vault,pg_stat_statements', "vector_vault is preloaded on $_")
  for qw(a b);
is(safe_sql('b', 'SHOW vector_vault.keyring_dir'), "$D/b/keyring", 'node b uses its own keyring directory');
is(safe_sql($_, 'SHOW listen_addresses'), '127.0.0.1', "node $_ listens on loopback only") for qw(a b);
is(safe_sql("host=127.0.0.1 port=$port{mon} dbname=pg_auto_failover user=autoctl_node", 'SHOW listen_addresses'), '127.0.0.1',
	'the monitor listens on loopback only');
start_sync($_) for qw(a b);

# --- keys reach the standby through the sync ---------------------------------------------------------

my $dim = 16;
my $vecs = VectorVault::int_vectors(400, $dim, 4848);
my $queries = VectorVault::int_vectors(8, $dim, 4949);
my %vec_of = map { ($_ + 1 => $vecs->[$_]) } 0 .. 399;
safe_sql('a', q{
CREATE EXTENSION vector_vault;
SELECT vault.create_vault('vs');
SELECT vault.create_vault('vd');
SELECT vault.create_vault('vl');
CREATE ROLE reader_s LOGIN;
SELECT vault.grant('vs', 'reader_s', 'read');
CREATE TABLE items (id int PRIMARY KEY, body etext, embedding evector(16));
GRANT SELECT ON items TO reader_s;
CREATE TABLE load_items (id int PRIMARY KEY, body etext, embedding evector(16));
CREATE INDEX ON load_items USING vault_hnsw (embedding evector_l2_ops);
});
safe_sql('a', "SET vector_vault.vault = 'vs';\n" . VectorVault::insert_sql('items', \%vec_of, [ 1 .. 200 ], 'stable row'));
safe_sql('a', "SET vector_vault.vault = 'vd';\n" . VectorVault::insert_sql('items', \%vec_of, [ 201 .. 220 ], 'doomed row'));
safe_sql('a', 'CREATE INDEX items_embedding_idx ON items USING vault_hnsw (embedding evector_l2_ops) WITH (m = 16, ef_construction = 64)');
my %vid = map { $_ => vault_hex($_) } qw(vs vd vl);

# A vault's id as keyring file names spell it (16 hex digits).
sub vault_hex
{
	my ($name) = @_;
	return safe_sql('a', "SELECT lpad(to_hex(vault_id), 16, '0') FROM vault._vaults WHERE name = '$name'");
}

# The ids of each vault's rows in items.
my %ids_of = (vs => '1 AND 200', vd => '201 AND 220', vc => '221 AND 250', late => '301 AND 330');
# Digest of a vault's rows on a node (decrypts every value), or undef on error.
sub digest
{
	my ($n, $vault) = @_;
	my ($ok, $out) = sql($n, "SET vector_vault.vault = '$vault';\nSELECT count(*) || ' ' || md5(string_agg(id || '|' || body::text || '|' || embedding::text, ';' ORDER BY id)) FROM "
		  . "items WHERE id BETWEEN $ids_of{$vault}");
	return $ok ? $out : undef;
}
# Index search lists of vault vs (10 nearest of each query) on a node, as reader_s (who may read
# vs only: the owner's searches would walk every vault it owns).
sub searches
{
	my ($n) = @_;
	my $sql = "SET ROLE reader_s; SET vector_vault.vault = 'vs'; SET enable_seqscan = off; SET vector_vault.ef_search = 100;\n";
	$sql .= "SELECT string_agg(id::text, ',') FROM (SELECT id FROM items ORDER BY embedding <-> '"
	  . VectorVault::vector_text($_) . "' LIMIT 10) s;\n" for @$queries;
	my ($ok, $out, $err) = sql($n, $sql);
	return $ok ? $out : "error: $err";
}

my $t = wait_for(30, sub { defined digest('b', 'vs') });
ok(defined $t, 'a new vault is readable on the standby through the keyring sync') and note(sprintf('vault vs readable on b after %.1f s', $t));
my $stable = digest('a', 'vs');
like($stable, qr/^200 [0-9a-f]{32}$/, 'vault vs: 200 rows on the primary');
is(digest('b', 'vs'), $stable, 'vault vs: the standby decrypts the same 200 rows');
my $search_before = searches('a');
like($search_before, qr/^((\d+,){9}\d+\n){7}(\d+,){9}\d+$/, 'searches of vs on the primary return 10 rows each');
ok(caught_up('a', 'b'), 'the standby has replayed the index');
is(searches('b'), $search_before, 'searches of vs on the standby return the same lists');

# Creation: timed from the commit on the primary to the first successful read on the standby.
my $t0 = time();
safe_sql('a', "SELECT vault.create_vault('vc');\nSET vector_vault.vault = 'vc';\n"
	  . VectorVault::insert_sql('items', \%vec_of, [ 221 .. 240 ], 'created row'));
$vid{vc} = vault_hex('vc');
my $vc_digest = digest('a', 'vc');
$t = wait_for(20, sub { my $d = digest('b', 'vc'); defined $d && $d eq $vc_digest });
ok(defined $t && $t < 10, 'create: a vault created on the primary is readable on the standby within 10 s')
  and note(sprintf('create_vault + 20 rows -> readable on b after %.1f s', time() - $t0));

# Rotation: version 2 appears on the standby, reencrypt, retire version 1: it leaves the standby.
safe_sql('a', "SELECT vault.rotate_key('vc');\nSET vector_vault.vault = 'vc';\n"
	  . VectorVault::insert_sql('items', \%vec_of, [ 241 .. 250 ], 'rotated row'));
my $v2 = "vault-$vid{vc}-v2.key";
my $v1 = "vault-$vid{vc}-v1.key";
ok(defined wait_for(20, sub { -f "$D/b/keyring/$v2" }), 'rotate: key version 2 reaches the standby\'s keyring');
$vc_digest = digest('a', 'vc');
ok(defined wait_for(20, sub { my $d = digest('b', 'vc'); defined $d && $d eq $vc_digest }),
	'rotate: the standby reads rows of both versions');
safe_sql('a', "CALL vault.reencrypt('vc')");
# The standby's hot_standby_feedback (pg_auto_failover turns it on) can hold back the xmin for a
# few seconds, so the old index entries may need another VACUUM before retiring works.
ok(defined wait_for(60, sub {
	safe_sql('a', 'VACUUM (INDEX_CLEANUP ON) items');
	(sql('a', "SELECT vault.retire_key_version('vc', 1)"))[0] }), 'rotate: version 1 retired on the primary after reencrypt and VACUUM');
ok(!-f "$D/a/keyring/$v1", 'rotate: version 1 is shredded on the primary');
ok(defined wait_for(20, sub { !-f "$D/b/keyring/$v1" }), 'rotate: version 1 is shredded on the standby too');
ok(defined wait_for(20, sub { my $d = digest('b', 'vc'); defined $d && $d eq $vc_digest }),
	'rotate: the standby reads every vc row under version 2');

# Drop: every entry of the vault leaves the standby's keyring.
my @vd_files = grep { /$vid{vd}/ } VectorVault::keyring_files({ vv_keyring => "$D/b/keyring" });
ok(scalar(@vd_files) >= 2, 'drop: the standby holds vd\'s key and claim before the drop') or diag("@vd_files");
safe_sql('a', "SELECT vault.drop_vault('vd')");
ok(defined wait_for(20, sub { !grep { /$vid{vd}/ } VectorVault::keyring_files({ vv_keyring => "$D/b/keyring" }) }),
	'drop: every keyring file of vd is shredded on the standby');
my ($ok, $out, $err) = sql('b', "SELECT body::text FROM items WHERE id = 201");
ok(!$ok && $err =~ /ERROR:\s+22V02/, 'drop: the standby refuses vd rows with 22V02') or diag($err);
like(slurp_file("$D/b/keyring-sync.log"), qr/shredded vault-$vid{vd}-v1\.key/, 'drop: the sync logged the shred');

# --- a standby whose sync lags, then failover under load -------------------------------------------------

stop_sync('b');
safe_sql('a', "SELECT vault.create_vault('late');\nSET vector_vault.vault = 'late';\n"
	  . VectorVault::insert_sql('items', \%vec_of, [ 301 .. 330 ], 'late row'));
$vid{late} = vault_hex('late');
my $late_digest = digest('a', 'late');
like($late_digest, qr/^30 /, 'vault late: 30 rows committed on the primary while the standby\'s sync is stopped');

# The sync carries keys beside replication, never through it: no keyring entry's bytes are in
# either node's data directory (WAL included), although both keyrings hold them.
safe_sql('a', 'CHECKPOINT');
my %entries;
for my $f (grep { /\.key$/ } VectorVault::keyring_files({ vv_keyring => "$D/a/keyring" }))
{
	$entries{"keyring entry $f"} = VectorVault::read_bytes("$D/a/keyring/$f");
}
ok(keys(%entries) >= 3, 'the primary\'s keyring holds the entries of vs, vl, vc and late') or diag(join(' ', keys %entries));
VectorVault::assert_all_found(\%entries, 'positive control: the probe finds them in the keyring itself', "$D/a/keyring");
VectorVault::assert_none_found(\%entries, 'no keyring entry in the data directories or WAL of a and b', [ $pgdata{a}, $pgdata{b} ]);

# The load client: psycopg2 (libpq multi-host), one insert per transaction into vault vl, a search
# every 5th; logs each commit it saw succeed, each failure, and the first success after one.
my $client_py = <<'PY';
import sys, time, os, random
import psycopg2
dsn, logpath, stopfile = sys.argv[1], sys.argv[2], sys.argv[3]
log = open(logpath, 'a', buffering=1)
rnd = random.Random(7)
def vec(): return '[' + ','.join(str(rnd.randint(0, 99)) for _ in range(16)) + ']'
i, conn, failing = 100000, None, False
while not os.path.exists(stopfile):
    try:
        if conn is None:
            conn = psycopg2.connect(dsn)
            cur = conn.cursor()
            cur.execute("SET vector_vault.vault = 'vl'")
            conn.commit()
        i += 1
        cur.execute("INSERT INTO load_items (id, body, embedding) VALUES (%s, %s, %s)", (i, 'load %d' % i, vec()))
        conn.commit()
        log.write('commit %d %.3f %s\n' % (i, time.time(), conn.info.port))
        if failing:
            log.write('recovered %.3f\n' % time.time()); failing = False
        if i % 5 == 0:
            cur.execute("SET enable_seqscan = off; SELECT id FROM load_items ORDER BY embedding <-> %s LIMIT 5", (vec(),))
            n = len(cur.fetchall()); conn.commit()
            log.write('search %d %.3f\n' % (n, time.time()))
        time.sleep(0.02)
    except Exception as e:
        if not failing:
            log.write('fail %.3f %s\n' % (time.time(), str(e).strip().replace('\n', ' ')[:200])); failing = True
        try:
            if conn is not None: conn.close()
        except Exception:
            pass
        conn = None
        time.sleep(0.2)
log.write('stopped %.3f\n' % time.time())
PY
VectorVault::write_bytes("$D/load_client.py", $client_py, 0644);
my $client_log = "$D/load_client.log";
$client = start_bg("$D/load_client.out", '/usr/bin/python3', "$D/load_client.py",
	"$multi user=postgres", $client_log, "$D/load_client.stop");
ok(defined wait_for(30, sub { -f $client_log && (() = slurp_file($client_log) =~ /^commit /mg) >= 30 }),
	'the load client commits on the primary through the multi-host connection string');

# Kill node a: its pg_autoctl keeper and postmaster (one process group), and its keyring sync.
my $a_postmaster = (split /\n/, VectorVault::read_bytes("$pgdata{a}/postmaster.pid"))[0];
ok(kill(0, $a_postmaster), "node a's postmaster ($a_postmaster) is running");
stop_sync('a');
my $t_kill = time();
kill('KILL', $a_postmaster);
kill('KILL', -$keeper{a});
waitpid($keeper{a}, 0);    # reap it: pg_autoctl refuses to start while its old pid still exists
delete $keeper{a};
note(sprintf('killed node a (postmaster %d and its keeper) at %.3f', $a_postmaster, $t_kill));

my $promoted = wait_state('b', 150, 'wait_primary', 'primary');
ok(defined $promoted, 'the monitor promoted node b') and note(sprintf('b promoted %.1f s after the kill', time() - $t_kill));
ok(defined wait_for(60, sub { slurp_file($client_log) =~ /^recovered /m }), 'the load client writes again (on b)');
sleep(2);
VectorVault::write_bytes("$D/load_client.stop", '', 0644);
wait_for(30, sub { slurp_file($client_log) =~ /^stopped /m });
my $clog = slurp_file($client_log);
my @committed = $clog =~ /^commit (\d+) /mg;
my @before = grep { $_->[1] < $t_kill } map { [ /^commit (\d+) ([\d.]+)/ ] } grep { /^commit/ } split /\n/, $clog;
my @after = grep { $_->[1] >= $t_kill } map { [ /^commit (\d+) ([\d.]+) (\d+)/ ] } grep { /^commit/ } split /\n/, $clog;
ok(@before > 0 && @after > 0, 'commits before the kill and after the failover') or diag($clog);
my $rto = @after ? $after[0][1] - $t_kill : -1;
my $gap = (@after && @before) ? $after[0][1] - $before[-1][1] : -1;
ok(!grep({ $_->[2] != $port{b} } @after), 'every commit after the kill went to node b');
my $searches_ok = () = $clog =~ /^search 5 /mg;
ok($searches_ok > 0, "the client's searches returned 5 rows ($searches_ok searches)");

my %on_b = map { $_ => 1 } split /\n/, safe_sql('b', 'SELECT id FROM load_items');
my @lost = grep { !$on_b{$_} } @committed;
is(scalar(@lost), 0, 'RPO: every commit the client saw succeed is on the new primary (' . scalar(@committed) . ' commits)')
  or diag("lost: @lost");
my $bad = safe_sql('b', "SET vector_vault.vault = 'vl'; SELECT count(*) FROM load_items WHERE body::text <> 'load ' || id");
is($bad, '0', 'every load row decrypts to its own text on the new primary');
is(digest('b', 'vs'), $stable, 'after failover: vault vs rows are identical');
is(searches('b'), $search_before, 'after failover: searches of vs return the same lists');
is(digest('b', 'vc'), $vc_digest, 'after failover: the rotated vault vc reads as before');
my $fails = () = $clog =~ /^fail /mg;
note(sprintf('RTO: first commit %.1f s after the kill; the client saw no commit for %.1f s; RPO: %d lost of %d commits',
	$rto, $gap, scalar(@lost), scalar(@committed)));
VectorVault::write_bytes("$D/rto.txt", sprintf("rto_after_kill=%.1f\nclient_gap=%.1f\nlost=%d\ncommitted=%d\npromoted_after=%.1f\n",
	$rto, $gap, scalar(@lost), scalar(@committed), $promoted // -1), 0644);

# The vault whose keys b never received: refused, never wrong.
($ok, $out, $err) = sql('b', "SET vector_vault.vault = 'late'; SELECT body::text FROM items WHERE id = 301");
ok(!$ok && $err =~ /ERROR:\s+22V02/, 'sync lagged at promotion: vault late fails with 22V02 on b (no wrong data)') or diag($err);
is(safe_sql('b', "SELECT count(*) FROM items WHERE id BETWEEN 301 AND 330"), '30', '... while its 30 committed rows are there');
start_sync('b');    # b is the primary now: its sync does nothing

# --- the old primary rejoins ------------------------------------------------------------------------------

$keeper{a} = start_bg("$D/a.log", 'pg_autoctl', 'run', '--pgdata', $pgdata{a});
start_sync('a');
$t = wait_state('a', 120, 'secondary');
ok(defined $t, 'the old primary a rejoined as a secondary') and note(sprintf('a secondary %.1f s after its restart', $t));
ok(defined wait_state('b', 60, 'primary'), 'b is the primary with a synchronous standby again');
ok(defined wait_for(20, sub { slurp_file("$D/a/keyring-sync.log") =~ /WARNING: vault-$vid{late}-v1\.key is in this keyring but not on the primary/ }),
	'a\'s sync keeps late\'s key (never received from a primary) and warns');
ok(-f "$D/a/keyring/vault-$vid{late}-v1.key", '... the key file is still in a\'s keyring');
# The documented repair: copy the wrapped entries of that vault to the primary's keyring.
copy($_, "$D/b/keyring/" . (split m{/}, $_)[-1]) or die "copy $_: $!" for glob("$D/a/keyring/*$vid{late}*");
chmod(0600, glob("$D/b/keyring/*$vid{late}*"));
is(digest('b', 'late'), $late_digest, 'after copying late\'s wrapped entries to b, every committed late row reads as on a');
ok(caught_up('b', 'a'), 'a has replayed everything b wrote');
ok(defined wait_for(20, sub { my $d = digest('a', 'vs'); defined $d && $d eq $stable }), 'the rejoined a decrypts vs as before');
is(searches('a'), $search_before, 'searches of vs on the rejoined a return the same lists');
my $sync_logs = join('', map { slurp_file("$D/$_/keyring-sync.log") } qw(a b));
ok($sync_logs !~ /\Q$keyhex\E/ && $sync_logs =~ /received/, 'the sync logs name files, never the master key');

cleanup();
done_testing();
