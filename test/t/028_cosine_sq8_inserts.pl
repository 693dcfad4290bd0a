# 028_cosine_sq8_inserts: rows inserted into an evector_cosine_ops index while the cache holds it
# as sq8 are linked and found as when it holds float32.
#   An insert plans its neighbours with the cache's distances: sq8 distances to the other
#   elements and the float32 kernel to the row being inserted (the staged vector), so both must be
#   the same distance (core/metric.h; the unit test Metric.Sq8DistanceIsOnTheKernelsScale checks
#   the scales, which this test cannot see: the neighbour lists are topped up with pruned
#   candidates either way). For each representation the same 1,000 Fashion-MNIST rows are built
#   and 1,000 more inserted one statement per row; hnsw_verify checks and counts the links.
#   Positive control: float32 sets the bar, the sq8 run must reach 90 % of its links; recall@10
#   at ef_search 40 after the inserts is >= 0.95 in both.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;

my $db = 'postgres';
my $node = VectorVault::new_node('cos');
$node->append_conf('postgresql.conf', "vector_vault.cache_size = '64MB'\n");
$node->start;
$node->safe_psql($db, q{
CREATE EXTENSION vector_vault;
SELECT vault.create_vault('cos');
ALTER DATABASE postgres SET vector_vault.vault = 'cos';
});
my $train = VectorVault::fmnist_rows('train', 0, 2000, packed => 1);
my $test = VectorVault::fmnist_rows('t10k', 0, 20, packed => 1);
my $tmp = PostgreSQL::Test::Utils::tempdir;
VectorVault::write_bytes("$tmp/items.txt",
	join('', map { ($_ + 1) . "\t" . VectorVault::vector_text($train->[$_]) . "\n" } 0 .. 999), 0644);
VectorVault::write_bytes("$tmp/queries.txt",
	join('', map { ($_ + 1) . "\t" . VectorVault::vector_text($test->[$_]) . "\n" } 0 .. 19), 0644);
my $inserts = join('', map {
	'INSERT INTO items VALUES (' . ($_ + 1) . ", '" . VectorVault::vector_text($train->[$_]) . "');\n"
} 1000 .. 1999);
$node->safe_psql($db, qq{
CREATE TABLE queries (qid int PRIMARY KEY, q evector(784));
COPY queries FROM '$tmp/queries.txt';
});

# Ids of each query's first 10 rows by cosine distance (index at ef 40, or a sort).
sub top10
{
	my ($how) = @_;
	my $settings = $how eq 'index'
	  ? 'SET enable_seqscan = off; SET vector_vault.ef_search = 40;'
	  : 'SET enable_indexscan = off;';
	return $node->safe_psql($db, qq{$settings
SELECT qid || ':' || (SELECT string_agg(id::text, ',') FROM (
    SELECT id FROM items ORDER BY embedding <=> q LIMIT 10) s)
FROM queries ORDER BY qid});
}

# Mean recall@10 of two top10 outputs.
sub recall
{
	my ($got, $want) = @_;
	my @g = split /\n/, $got;
	my @w = split /\n/, $want;
	my $sum = 0;
	for my $i (0 .. $#w)
	{
		my %want = map { $_ => 1 } split /,/, (split /:/, $w[$i])[1];
		$sum += scalar(grep { $want{$_} } split /,/, (split /:/, $g[$i])[1]) / 10;
	}
	return $sum / @w;
}

# Builds, inserts under $repr and returns the number of links hnsw_verify checked.
sub run_with
{
	my ($repr) = @_;
	$node->append_conf('postgresql.conf', "vector_vault.cache_representation = '$repr'\n");
	$node->restart;
	$node->safe_psql($db, qq{
DROP TABLE IF EXISTS items;
CREATE TABLE items (id int PRIMARY KEY, embedding evector(784));
COPY items FROM '$tmp/items.txt';
CREATE INDEX items_cos ON items USING vault_hnsw (embedding evector_cosine_ops);
SELECT vault.prewarm('items_cos');
});
	is($node->safe_psql($db, q{SELECT representation FROM vault.index_cache
		WHERE index = 'items_cos'::regclass}), $repr, "$repr: representation");
	$node->safe_psql($db, $inserts);
	my $r = recall(top10('index'), top10('sort'));
	cmp_ok($r, '>=', 0.95, "$repr: recall\@10 at ef_search 40 after the inserts is >= 0.95 ($r)");
	my ($ok, $report) = VectorVault::hnsw_verify($node, $db, 'items_cos');
	ok($ok, "$repr: hnsw_verify is ok") or diag($report);
	my ($links) = $report =~ /(\d+) links checked/;
	return $links;
}

my $float_links = run_with('float32');
my $sq8_links = run_with('sq8');
cmp_ok($float_links, '>', 2000 * 8, "float32: the inserted rows are linked ($float_links links)");
cmp_ok($sq8_links, '>=', 0.9 * $float_links,
	"sq8: inserts link as many neighbours as float32 ($sq8_links against $float_links)");
$node->stop;
done_testing();
