# 018_cache_pressure.pl — the index cache under pressure: eviction while inserts, deletes and
# VACUUM run, a standby with a tiny cache, a dropped vault purged from a loaded entry, and a
# backend killed while it loads an index.
#
#   pressure   three indexes, room for two (vector_vault.cache_indexes = 2): pgbench runs
#              single-row inserts and deletes on t1, VACUUM on t1, and searches on t1, t2 and t3
#              concurrently for ~10 s, so t1's entry is evicted and reloaded while its writers
#              work. Afterwards: pgbench exited 0, hnsw_verify is ok, every live row of t1 (and
#              sampled rows of t2, t3) is found first by a search for its own vector, evictions
#              and reloads were counted;
#   standby    a streaming standby with cache_size = 1MB answers the same searches after
#              replaying all of it, holding t1 within that budget;
#   purge      a vault's rows in t2 are found, the vault is dropped: the next search reloads the
#              entry (loads + 1) and returns none of its rows, without error;
#   crash      a backend is SIGKILLed in the middle of loading a vault's sub-graph (gdb stops it
#              in ReadElementLinks): after crash recovery the index loads and answers correctly.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;

my $db = 'postgres';
my $dim = 96;
my $n = 1500;
my $seconds = 10;
my $tmp = PostgreSQL::Test::Utils::tempdir;
my $node = VectorVault::new_node('pressure', init_opts => { allows_streaming => 1 });
$node->append_conf('postgresql.conf', qq{
vector_vault.cache_size = '8MB'
vector_vault.cache_indexes = 2
max_connections = 30
restart_after_crash = on
});
$node->start;

my %vec_of;
my $vecs = VectorVault::int_vectors(3 * $n, $dim, 1818);
$node->safe_psql($db, q{
CREATE EXTENSION vector_vault;
SELECT vault.create_vault('p');
SELECT vault.create_vault('gone');
ALTER DATABASE postgres SET vector_vault.vault = 'p';
});
for my $t (1 .. 3)
{
	my %v = map { $_ => $vecs->[ ($t - 1) * $n + $_ - 1 ] } 1 .. $n;
	$vec_of{$t} = \%v;
	$node->safe_psql($db, "CREATE TABLE t$t (id bigint PRIMARY KEY, body etext, embedding evector($dim));\n"
		  . "SET vector_vault.vault = 'p';\n"
		  . VectorVault::insert_sql("t$t", \%v, [ 1 .. $n ], "t$t row")
		  . "CREATE SEQUENCE t${t}_ids START " . ($n + 1) . ";\n"
		  . "CREATE INDEX t${t}_idx ON t$t USING vault_hnsw (embedding evector_l2_ops);\n");
}
$node->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'b', has_streaming => 1);
$standby->append_conf('postgresql.conf', "vector_vault.cache_size = '1MB'\n");
$standby->start;

# --- pressure -------------------------------------------------------------------------------
my $sets = join('', map { "\\set a$_ random(0, 99)\n" } 1 .. $dim);
my $vec = "'[" . join(',', map { ":a$_" } 1 .. $dim) . "]'";
my %script = (
	'insert.sql' => $sets . "INSERT INTO t1 VALUES (nextval('t1_ids'), 'new', $vec);\n",
	'delete.sql' => "\\set r random(1, $n)\nDELETE FROM t1 WHERE id = :r;\n",
	'vacuum.sql' => "VACUUM t1;\n\\sleep 500 ms\n",
	(map { ("search$_.sql" => $sets . "SELECT id FROM t$_ ORDER BY embedding <-> $vec LIMIT 5;\n") } 1 .. 3),);
VectorVault::write_bytes("$tmp/$_", $script{$_}, 0644) for keys %script;
my @conn = ('-h', $node->host, '-p', $node->port, '-n');
my ($w_out, $w_err, $v_out, $v_err) = ('', '', '', '');
my ($work, $vac);
{
	local $ENV{PGOPTIONS} = '-c enable_seqscan=off';
	$work = IPC::Run::start([ 'pgbench', @conn, '-c', '5', '-j', '2', '-T', $seconds,
			'-f', "$tmp/insert.sql\@3", '-f', "$tmp/delete.sql\@1", '-f', "$tmp/search1.sql\@2",
			'-f', "$tmp/search2.sql\@2", '-f', "$tmp/search3.sql\@2", $db ],
		'>', \$w_out, '2>', \$w_err);
	$vac = IPC::Run::start([ 'pgbench', @conn, '-c', '1', '-T', $seconds, '-f', "$tmp/vacuum.sql", $db ],
		'>', \$v_out, '2>', \$v_err);
}
ok($work->finish, 'pgbench (inserts, deletes, searches on three indexes) exits 0') or diag($w_err, $w_out);
ok($vac->finish, 'pgbench (VACUUM t1 every 0.5 s) exits 0') or diag($v_err, $v_out);
my %ran;
while ($w_out =~ /SQL script \d+: \S*\/(\w+)\.sql\n(?:[^\n]*\n)*?\s+- (\d+) transactions/g)
{
	$ran{$1} = $2;
}
ok((grep { ($ran{$_} // 0) > 0 } qw(insert delete search1 search2 search3)) == 5,
	'every script ran: ' . join(', ', map { "$_ $ran{$_}" } sort keys %ran)) or diag($w_out);
$node->safe_psql($db, 'VACUUM t1');

my ($ok, $report) = VectorVault::hnsw_verify($node, $db, 't1_idx');
ok($ok, 'hnsw_verify of t1 after the pressure run') or diag($report);

# Every row of $table found first by a search for its own stored vector; returns the misses.
sub self_misses
{
	my ($nd, $table, $limit) = @_;
	return $nd->safe_psql($db, qq{
SET enable_seqscan = off;
SET vector_vault.ef_search = 100;
SELECT count(*) FROM (SELECT id, embedding FROM $table ORDER BY id LIMIT $limit) r
WHERE (SELECT s.id FROM $table s ORDER BY s.embedding <-> r.embedding LIMIT 1) <> r.id
  AND (SELECT count(*) FROM $table d WHERE d.embedding::text = r.embedding::text) = 1});
}
is(self_misses($node, 't1', 100000), 0, 'every live row of t1 is found first by its own vector');
is(self_misses($node, 't2', 300), 0, 'sampled rows of t2 are found by their own vectors');
is(self_misses($node, 't3', 300), 0, 'sampled rows of t3 are found by their own vectors');
note($node->safe_psql($db, 'SELECT * FROM vault.index_cache'));
my ($evictions, $t1_loads) = split /\|/, $node->safe_psql($db, q{
SELECT (SELECT sum(evictions) FROM vault.index_cache),
       (SELECT loads FROM vault.index_cache WHERE index = 't1_idx'::regclass)});
cmp_ok($evictions, '>', 0, "indexes were evicted under pressure ($evictions)");
cmp_ok($t1_loads, '>', 1, "t1 was loaded more than once ($t1_loads)");
like($node->safe_psql($db, q{SELECT count(*) FILTER (WHERE representation <> 'none') FROM vault.index_cache}),
	qr/^[0-2]$/, 'at most two indexes resident');

# --- standby with a tiny cache --------------------------------------------------------------
$node->wait_for_catchup($standby);
is(self_misses($standby, 't1', 100000), 0, 'standby (1MB cache): every live row of t1 finds itself');
my ($repr, $fits) = split /\|/, $standby->safe_psql($db,
	q{SELECT representation, resident_bytes <= 1024 * 1024 FROM vault.index_cache WHERE index = 't1_idx'::regclass});
is($fits, 't', "the standby holds t1 within its 1MB cache (as $repr)");
is($standby->safe_psql($db, 'SELECT count(*) FROM t1'), $node->safe_psql($db, 'SELECT count(*) FROM t1'),
	'the standby has every row');

# --- a dropped vault is purged from a loaded entry ------------------------------------------
my $gone_vec = $vecs->[0];
$node->safe_psql($db, "SET vector_vault.vault = 'gone';\n"
	  . "INSERT INTO t2 VALUES (900001, 'gone row', '" . VectorVault::vector_text($gone_vec) . "');");
my $near = "SET enable_seqscan = off;\nSELECT string_agg(id::text, ',') FROM (SELECT id FROM t2 ORDER BY embedding <-> '"
  . VectorVault::vector_text($gone_vec) . "' LIMIT 3) s";
like($node->safe_psql($db, $near), qr/\b900001\b/, "the other vault's row is found while it exists");
my $loads_before = $node->safe_psql($db, q{SELECT loads FROM vault.index_cache WHERE index = 't2_idx'::regclass});
$node->safe_psql($db, "SELECT vault.drop_vault('gone')");
my ($ret, $out, $err) = $node->psql($db, $near);
is($ret, 0, 'searching t2 after the drop succeeds') or diag($err);
unlike($out, qr/\b900001\b/, "the dropped vault's row is no longer returned");
my $loads_after = $node->safe_psql($db, q{SELECT loads FROM vault.index_cache WHERE index = 't2_idx'::regclass});
cmp_ok($loads_after, '>', $loads_before, "the entry was reloaded to purge the dropped vault ($loads_before -> $loads_after)");

# --- a backend killed while it loads an index -----------------------------------------------
SKIP:
{
	$node->restart;
	my $s = VectorVault::bg_session($node, $db, 'SET enable_seqscan = off;');
	my ($pid) = VectorVault::bg_query($s, 'SELECT pg_backend_pid();');
	$pid =~ s/\s+//g;
	skip 'gdb cannot attach here', 3 unless VectorVault::gdb_can_attach($pid);
	my $dir = "$tmp/gdb";
	mkdir $dir;
	# ReadElementLinks decrypts one element's lists while a vault's sub-graph loads.
	my $fn = 'vector_vault::index::ReadElementLinks';
	my $g = VectorVault::gdb_pause($pid, $dir, [$fn], { skip => { $fn => 50 } });
	$s->query_until(qr/start/, "\\echo start\nSELECT id FROM t3 ORDER BY embedding <-> '"
		  . VectorVault::vector_text($vec_of{3}{7}) . "' LIMIT 1;\n");
	ok(VectorVault::gdb_stopped($g), 'the backend stopped in the middle of loading a vault sub-graph');
	VectorVault::gdb_kill($g);
	eval { $s->quit };
	$node->poll_query_until($db, 'SELECT true') or die 'server did not come back';
	is($node->safe_psql($db, "SET enable_seqscan = off; SELECT id FROM t3 ORDER BY embedding <-> '"
			  . VectorVault::vector_text($vec_of{3}{7}) . "' LIMIT 1"),
		7, 'after the crash, t3 loads and finds row 7 first');
	is(self_misses($node, 't3', 300), 0, 'sampled rows of t3 still find themselves');
}
$standby->stop;
$node->stop;
done_testing();
