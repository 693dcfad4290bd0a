# 010_index_recall.pl — vault_hnsw finds the true nearest neighbours of real data, through build,
# single-row inserts, deletes with VACUUM, and inserts that reuse the freed heap slots.
#
# Data: Fashion-MNIST (784 dims, L2). 5,000 training images are loaded and indexed (m = 16,
# ef_construction = 64); 100 test images are the queries; exact ground truth comes from numpy.
# At the default vector_vault.ef_search, after each phase:
#   build        recall@10 >= 0.95 (ties counted), plan is an Index Scan on the index,
#                every answer has 10 distinct rows in non-decreasing true distance;
#   +1000 rows   1,000 single-row INSERTs, each its own transaction: recall >= 0.95 against the
#                new ground truth, and (almost) every new row is found by a search for its own
#                vector;
#   -20%         DELETE of every 5th row and VACUUM: recall >= 0.95 against the survivors, no
#                deleted id is ever returned (also with LIMIT 100000, which must return exactly
#                the live rows), hnsw_verify counts exactly the live rows;
#   +200 rows    inserts after VACUUM (which reuse freed heap TIDs): still recall >= 0.95, no
#                deleted id, and rows arrive in true distance order (a stale TID in the graph
#                would return a wrong row at a wrong place).
# vault.hnsw_verify reports every check ok after each phase.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;

my $db = 'postgres';
my $k = 10;
my $node = VectorVault::new_node('recall', init_opts => { allows_streaming => 1 });
$node->append_conf('postgresql.conf', qq{
vector_vault.cache_size = '256MB'
maintenance_work_mem = '256MB'
log_statement = 'ddl'
});
$node->start;
my $tmp = PostgreSQL::Test::Utils::tempdir;

my $nbase = 5000;
my $ninsert = 1000;
my $nlate = 200;
my $nq = 100;
my $train = VectorVault::fmnist_rows('train', 0, $nbase + $ninsert + $nlate);
my $queries = VectorVault::fmnist_rows('t10k', 0, $nq);
my %vec_of;    # id => vector (ids are 1-based training row numbers)
$vec_of{ $_ + 1 } = $train->[$_] for 0 .. $#$train;

$node->safe_psql($db, q{
CREATE EXTENSION vector_vault;
SELECT vault.create_vault('fm');
ALTER DATABASE postgres SET vector_vault.vault = 'fm';
CREATE TABLE items (id int PRIMARY KEY, embedding evector(784));
});

# Loads ids $from .. $to with COPY from a server-side file.
sub copy_rows
{
	my ($from, $to) = @_;
	my $file = "$tmp/rows_$from.txt";
	VectorVault::write_bytes($file,
		join('', map { "$_\t" . VectorVault::vector_text($vec_of{$_}) . "\n" } $from .. $to), 0644);
	$node->safe_psql($db, "COPY items (id, embedding) FROM '$file'");
	return;
}
copy_rows(1, $nbase);
is($node->safe_psql($db, 'SELECT count(*) FROM items'), $nbase, "$nbase Fashion-MNIST rows loaded");

my $t0 = time();
$node->safe_psql($db, 'CREATE INDEX items_embedding_idx ON items USING vault_hnsw '
	  . '(embedding evector_l2_ops) WITH (m = 16, ef_construction = 64)');
note('CREATE INDEX took ' . (time() - $t0) . ' s');
is($node->safe_psql($db, 'SHOW vector_vault.ef_search'), '40', 'ef_search is at its default (40)');

my @qtext = map { VectorVault::vector_text($_) } @$queries;
my $explain = $node->safe_psql($db,
	"EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY embedding <-> '$qtext[0]' LIMIT $k");
like($explain, qr/Index Scan using items_embedding_idx on items/, 'the planner uses the vault_hnsw index')
  or diag($explain);

# Runs every query; returns arrayref of id lists.
sub search_all
{
	my ($limit) = @_;
	my @sql = map { "SELECT id FROM items ORDER BY embedding <-> '$_' LIMIT $limit" } @qtext;
	return VectorVault::query_lists($node, $db, \@sql);
}

# Checks one phase: recall against ground truth over @$live ids, answer shape, no other ids.
sub check_phase
{
	my ($phase, $live) = @_;
	my $truth = VectorVault::exact_knn($tmp, $live, [ map { $vec_of{$_} } @$live ], $queries, $k);
	my %is_live = map { $_ => 1 } @$live;
	my $answers = search_all($k);
	my ($sum, $min, $bad_shape, $bad_order, $dead) = (0, 1, 0, 0, 0);
	my @dead_ids;
	for my $i (0 .. $#$answers)
	{
		my @ids = @{ $answers->[$i] };
		my %distinct = map { $_ => 1 } @ids;
		$bad_shape++ unless @ids == $k && keys(%distinct) == $k;
		my @d = map { defined $vec_of{$_} ? VectorVault::sq_l2($vec_of{$_}, $queries->[$i]) : -1 } @ids;
		for my $j (1 .. $#d)
		{
			# float32 distances can swap near-ties of the exact integer ones
			$bad_order++, last if $d[$j] < $d[ $j - 1 ] * (1 - 1e-5);
		}
		for my $id (@ids)
		{
			next if $is_live{$id};
			$dead++;
			push @dead_ids, $id;
		}
		my %live_vec = map { $_ => $vec_of{$_} } grep { $is_live{$_} } @ids;
		my $r = VectorVault::recall_at_k(\@ids, $truth->[$i], $k, \%live_vec, $queries->[$i]);
		$sum += $r;
		$min = $r if $r < $min;
	}
	my $recall = $sum / @$answers;
	ok($recall >= 0.95, sprintf('%s: recall@%d = %.4f >= 0.95 over %d queries (min %.2f)',
		$phase, $k, $recall, scalar @$answers, $min));
	is($bad_shape, 0, "$phase: every answer has $k distinct rows");
	is($bad_order, 0, "$phase: every answer is in non-decreasing true distance");
	is($dead, 0, "$phase: no deleted (or unknown) id is returned")
	  or diag('returned: ' . join(',', @dead_ids[ 0 .. ($#dead_ids < 19 ? $#dead_ids : 19) ]));
	return;
}

# Asserts that hnsw_verify is all ok; returns the report.
sub verify_ok
{
	my ($phase) = @_;
	my ($ok, $report) = VectorVault::hnsw_verify($node, $db, 'items_embedding_idx');
	ok($ok, "$phase: vault.hnsw_verify reports every check ok") or diag($report);
	return $report;
}

# --- phase 1: build ------------------------------------------------------------------------------

my @live = (1 .. $nbase);
check_phase('after build', \@live);
my $report = verify_ok('after build');
like($report, qr/vault [0-9a-f]+: $nbase live, $nbase reachable/, "after build: verify counts $nbase live, reachable elements");

# --- phase 2: 1000 single-row inserts, one transaction each ------------------------------------

my $script = '';
for my $id ($nbase + 1 .. $nbase + $ninsert)
{
	$script .= "INSERT INTO items (id, embedding) VALUES ($id, '" . VectorVault::vector_text($vec_of{$id}) . "');\n";
}
$t0 = time();
my $xid_before = $node->safe_psql($db, 'SELECT txid_current()');
$node->safe_psql($db, $script);
my $xid_after = $node->safe_psql($db, 'SELECT txid_current()');
note("$ninsert inserts took " . (time() - $t0) . ' s');
ok($xid_after - $xid_before > $ninsert, "the $ninsert inserts ran as separate transactions");
is($node->safe_psql($db, 'SELECT count(*) FROM items'), $nbase + $ninsert, "$ninsert rows inserted");
@live = (1 .. $nbase + $ninsert);
check_phase('after 1000 inserts', \@live);
verify_ok('after 1000 inserts');

# Every inserted row should be among the 10 nearest rows of its own vector.
my $self_found = $node->safe_psql($db, qq{
SELECT count(*) FROM items t
WHERE t.id > $nbase
  AND t.id = ANY (ARRAY(SELECT u.id FROM items u ORDER BY u.embedding <-> t.embedding LIMIT $k))});
ok($self_found >= 0.99 * $ninsert,
	"after 1000 inserts: $self_found of $ninsert inserted rows found by a search for their own vector (>= 99%)");
$explain = $node->safe_psql($db, qq{
EXPLAIN (COSTS OFF) SELECT count(*) FROM items t
WHERE t.id = ANY (ARRAY(SELECT u.id FROM items u ORDER BY u.embedding <-> t.embedding LIMIT $k))});
like($explain, qr/Index Scan using items_embedding_idx on items u/, 'the self-search uses the index (rescanned per row)')
  or diag($explain);

# --- phase 3: delete 20%, VACUUM -----------------------------------------------------------------

$node->safe_psql($db, 'DELETE FROM items WHERE id % 5 = 0');
@live = grep { $_ % 5 != 0 } 1 .. $nbase + $ninsert;
is($node->safe_psql($db, 'SELECT count(*) FROM items'), scalar(@live), '20% of the rows deleted');
check_phase('after DELETE, before VACUUM', \@live);
$node->safe_psql($db, 'VACUUM items');
check_phase('after DELETE + VACUUM', \@live);
$report = verify_ok('after DELETE + VACUUM');
my $nlive = scalar @live;
like($report, qr/vault [0-9a-f]+: $nlive live, $nlive reachable/,
	"after VACUUM: verify counts exactly the $nlive live rows, all reachable");

# A large LIMIT walks the whole graph: exactly the live rows, each once, none deleted.
my $all = $node->safe_psql($db,
	"SELECT count(*), count(DISTINCT id), count(*) FILTER (WHERE id % 5 = 0) FROM "
	  . "(SELECT id FROM items ORDER BY embedding <-> '$qtext[0]' LIMIT 100000) s");
is($all, "$nlive|$nlive|0", 'after VACUUM: LIMIT 100000 through the index returns every live row once and no deleted row');

# --- phase 4: inserts after VACUUM reuse freed heap slots ---------------------------------------

my $first_late = $nbase + $ninsert + 1;
$script = '';
for my $id ($first_late .. $first_late + $nlate - 1)
{
	$script .= "INSERT INTO items (id, embedding) VALUES ($id, '" . VectorVault::vector_text($vec_of{$id}) . "');\n";
}
$node->safe_psql($db, $script);
my $reused = $node->safe_psql($db, qq{
SELECT count(*) FROM items WHERE id >= $first_late AND (ctid::text::point)[0] < (
	SELECT max((ctid::text::point)[0]) FROM items WHERE id < $first_late)});
ok($reused > 0, "inserts after VACUUM reused freed heap pages ($reused of $nlate rows)");
push @live, $first_late .. $first_late + $nlate - 1;
check_phase('after inserts into freed slots', \@live);
verify_ok('after inserts into freed slots');

$node->stop;
done_testing();
