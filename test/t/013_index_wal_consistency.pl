# 013_index_wal_consistency.pl — replaying vault_hnsw's WAL reproduces the primary's pages
# exactly (wal_consistency_checking), and the standby answers searches as the primary does.
#
# The primary runs with wal_consistency_checking = 'all': every WAL record carries images of the
# pages it changed, and the standby, after redoing each record, compares its page with the image
# and stops with FATAL "inconsistent page found" on any difference (masked bytes aside). The
# base backup is taken before the table exists, so everything reaches the standby through WAL:
# COPY, CREATE INDEX (pages written without WAL, then logged), single-row INSERTs that extend
# vector pages and graph pages and add directory entries for new vaults, DELETE + VACUUM (graph
# repair), REINDEX, and inserts and VACUUM after the REINDEX.
# It proves: the consistency images are really in the WAL for the index's Generic records
# (pg_waldump shows "FPW for WAL verification"); after each phase the standby catches up, its
# log has no inconsistent page, FATAL, PANIC or TRAP, and it returns the primary's ordered
# answers for 20 queries; the index grew new vector and graph pages and directory entries.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;

my $db = 'postgres';
my $primary = VectorVault::new_node('wcc_primary', init_opts => { allows_streaming => 1 });
$primary->append_conf('postgresql.conf', qq{
wal_consistency_checking = 'all'
vector_vault.cache_size = '64MB'
log_statement = 'ddl'
wal_keep_size = '2GB'
autovacuum = off    # primary and standby are compared: only the test's own VACUUMs may change the graph
});
$primary->start;
$primary->safe_psql($db, q{
CREATE EXTENSION vector_vault;
SELECT vault.create_vault('v0');
ALTER DATABASE postgres SET vector_vault.vault = 'v0';
});
$primary->backup('bk');
my $standby = VectorVault::new_node('wcc_standby',
	keyring => $primary->{vv_keyring}, keyfile => $primary->{vv_keyfile}, init => 0);
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
$standby->start;
my $tmp = PostgreSQL::Test::Utils::tempdir;

is($primary->safe_psql($db, 'SHOW wal_consistency_checking'), 'all', 'the primary logs consistency images for every record');

my $train = VectorVault::fmnist_rows('train', 0, 2000, packed => 1);
my @qtext = map { VectorVault::vector_text($_) } @{ VectorVault::fmnist_rows('t10k', 0, 20) };
my $next = 0;
sub take_vector { return VectorVault::vector_text($train->[ $next++ ]); }
my @queries = map { "SELECT id FROM items ORDER BY embedding <-> '$_' LIMIT 10" } @qtext;

# Index pages by kind (from the page special space: kind, magic), and directory entries.
sub page_census
{
	my $out = $primary->safe_psql($db, q{
SELECT count(*) FILTER (WHERE k = 4), count(*) FILTER (WHERE k = 3), count(*) FILTER (WHERE k = 2)
FROM (SELECT get_byte(get_raw_page('items_embedding_idx', b), 8184)
           + 256 * get_byte(get_raw_page('items_embedding_idx', b), 8185) AS k
      FROM generate_series(0, pg_relation_size('items_embedding_idx') / 8192 - 1) b) s});
	return split /\|/, $out;
}

# Waits for replay and checks the standby's log and answers.
my $log_offset = 0;
sub check_phase
{
	my ($phase) = @_;
	my $caught_up = VectorVault::wait_for_replay($primary, $standby);
	ok($caught_up, "$phase: the standby replayed everything");
	my $log = VectorVault::log_since($standby, $log_offset);
	$log_offset += length($log);    # what was read, so nothing written meanwhile is skipped
	my @bad = grep { /inconsistent page|PANIC|TRAP:|FATAL/ && !/the database system is (starting up|shutting down)/ }
	  split /\n/, $log;
	is(scalar(@bad), 0, "$phase: the standby's log has no inconsistent page, FATAL, PANIC or TRAP")
	  or diag(join("\n", @bad[ 0 .. ($#bad < 9 ? $#bad : 9) ]));
	return unless $caught_up;
	my $p = VectorVault::query_lists($primary, $db, \@queries);
	my $s = VectorVault::query_lists($standby, $db, \@queries);
	my @diff = grep { join(',', @{ $p->[$_] }) ne join(',', @{ $s->[$_] }) } 0 .. $#$p;
	is(scalar(@diff), 0, "$phase: the standby returns the primary's ordered ids for all " . scalar(@queries) . ' queries')
	  or diag("query $diff[0]: primary " . join(',', @{ $p->[ $diff[0] ] }) . ' standby ' . join(',', @{ $s->[ $diff[0] ] }));
	is(scalar(grep { @$_ == 10 } @$p), scalar(@$p), "$phase: every answer has 10 rows");
	return;
}

$primary->safe_psql($db, q{
CREATE EXTENSION pageinspect;
CREATE TABLE items (id int PRIMARY KEY, embedding evector(784));
});
my $file = "$tmp/rows.txt";
VectorVault::write_bytes($file, join('', map { "$_\t" . take_vector() . "\n" } 1 .. 1000), 0644);
$primary->safe_psql($db, "COPY items FROM '$file'");
$primary->safe_psql($db,
	'CREATE INDEX items_embedding_idx ON items USING vault_hnsw (embedding evector_l2_ops) WITH (m = 16, ef_construction = 64)');
my @census0 = page_census();
check_phase('CREATE INDEX');

# Single-row inserts: 300 in v0 (new vector and graph pages), 10 each in five new vaults (new
# directory entries, new sub-graphs).
my $start_lsn = $primary->safe_psql($db, 'SELECT pg_current_wal_insert_lsn()');
my $script = join('', map { "INSERT INTO items VALUES ($_, '" . take_vector() . "');\n" } 1001 .. 1300);
for my $v (1 .. 5)
{
	$script .= "SELECT vault.create_vault('v$v');\nSET vector_vault.vault = 'v$v';\n";
	$script .= join('', map { "INSERT INTO items VALUES ($_, '" . take_vector() . "');\n" } (2000 + 100 * $v) .. (2009 + 100 * $v));
}
$primary->safe_psql($db, $script);
my $end_lsn = $primary->safe_psql($db, 'SELECT pg_current_wal_insert_lsn()');
my @census1 = page_census();
ok($census1[0] > $census0[0] + 50, "inserts added vector pages ($census0[0] -> $census1[0])");
ok($census1[1] > $census0[1], "inserts added graph pages ($census0[1] -> $census1[1])");
is($primary->safe_psql($db, q{SELECT count(*) FROM vault.hnsw_verify('items_embedding_idx') WHERE "check" = 'vault'}),
	'6', 'the index has six vault sub-graphs');

# The inserts' Generic records carry images for verification.
my $filenode = $primary->safe_psql($db, "SELECT pg_relation_filenode('items_embedding_idx')");
my ($dump, $err) = ('', '');
IPC::Run::run([ 'pg_waldump', '--path', $primary->data_dir . '/pg_wal', '--start', $start_lsn, '--end', $end_lsn,
		'--rmgr', 'Generic' ], '>', \$dump, '2>', \$err);
my @verif = grep { m{/$filenode blk \d+ FPW for WAL verification} } split /\n/, $dump;
ok(@verif > 300, 'pg_waldump: the index\'s Generic records carry "FPW for WAL verification" images (' . scalar(@verif) . ')')
  or diag(substr($err, 0, 500));
check_phase('single-row INSERTs');

$primary->safe_psql($db, 'DELETE FROM items WHERE id % 5 = 0');
$primary->safe_psql($db, 'VACUUM items');
check_phase('DELETE + VACUUM');

$primary->safe_psql($db, 'REINDEX INDEX items_embedding_idx');
check_phase('REINDEX');

$script = join('', map { "INSERT INTO items VALUES ($_, '" . take_vector() . "');\n" } 5001 .. 5100);
$primary->safe_psql($db, $script);
$primary->safe_psql($db, 'DELETE FROM items WHERE id BETWEEN 5001 AND 5020');
$primary->safe_psql($db, 'VACUUM items');
check_phase('INSERTs and VACUUM after REINDEX');

my ($ok, $report) = VectorVault::hnsw_verify($standby, $db, 'items_embedding_idx');
my ($pok, $preport) = VectorVault::hnsw_verify($primary, $db, 'items_embedding_idx');
is($report, $preport, 'hnsw_verify on the standby reports exactly what it reports on the primary');

$standby->stop;
$primary->stop;
done_testing();
