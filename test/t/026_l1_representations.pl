# 026_l1_representations: an evector_l1_ops index searched from each cache representation.
#   For float32, sq8 and sq4 (L1 over codes, then exact re-ranking) and pages (vectors decrypted as the
#   search visits them): vault.index_cache names the representation; at ef_search 200 every
#   query's first 10 rows have the distances of the exact L1 order of a sequential scan, and at
#   the default ef_search recall@10 >= 0.95 (Fashion-MNIST, as test 017 for L2); after inserts,
#   deletes and VACUUM the same holds. Positive control: the rows of the exact L2 order have other
#   L1 distances, so the comparison can fail. auto in a cache too small for sq8 picks sq4 (in a
#   smaller one, pages). hnsw_verify is ok at the end.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;

my $db = 'postgres';
my $node = VectorVault::new_node('l1');
$node->append_conf('postgresql.conf', "vector_vault.cache_size = '64MB'\n");
$node->start;
$node->safe_psql($db, q{
CREATE EXTENSION vector_vault;
SELECT vault.create_vault('l1');
ALTER DATABASE postgres SET vector_vault.vault = 'l1';
});
# 2000 Fashion-MNIST rows (784 integer dimensions) and 20 test-set queries. L1 distances are
# integers and may tie, so results are compared as lists of distances, not ids.
my $train = VectorVault::fmnist_rows('train', 0, 2300, packed => 1);
my $test = VectorVault::fmnist_rows('t10k', 0, 20, packed => 1);
my $tmp = PostgreSQL::Test::Utils::tempdir;
VectorVault::write_bytes("$tmp/items.txt",
	join('', map { ($_ + 1) . "\t" . VectorVault::vector_text($train->[$_]) . "\n" } 0 .. 1999), 0644);
VectorVault::write_bytes("$tmp/more.txt",
	join('', map { ($_ + 1) . "\t" . VectorVault::vector_text($train->[$_]) . "\n" } 2000 .. 2299), 0644);
VectorVault::write_bytes("$tmp/queries.txt",
	join('', map { ($_ + 1) . "\t" . VectorVault::vector_text($test->[$_]) . "\n" } 0 .. 19), 0644);
$node->safe_psql($db, qq{
CREATE TABLE items (id int PRIMARY KEY, embedding evector(784));
COPY items FROM '$tmp/items.txt';
CREATE TABLE queries (qid int PRIMARY KEY, q evector(784));
COPY queries FROM '$tmp/queries.txt';
CREATE INDEX items_l1 ON items USING vault_hnsw (embedding evector_l1_ops);
});

# The L1 distances (or those of another order, $op) of the first 10 rows per query, found by the
# index at $ef or by a sort; L1 distances are integers and may tie, so lists of distances, not
# ids, are compared; and their recall against the exact lists.
sub top10
{
	my ($how, $ef, $op) = @_;
	return VectorVault::top10_distances($node, $db, how => $how, ef => $ef, op => $op // '<+>',
		measure => '<+>');
}
sub recall { return VectorVault::distance_recall(@_); }

# Checks each representation against the exact order; $label names the phase.
sub check_all
{
	my ($label) = @_;
	my $exact = top10('sort');
	isnt(top10('sort', 0, '<->'), $exact, "$label: the L2 order differs from the L1 order");
	for my $repr (qw(float32 sq8 sq4 pages))
	{
		$node->append_conf('postgresql.conf', "vector_vault.cache_representation = '$repr'\n");
		$node->restart;
		$node->safe_psql($db, q{SELECT vault.prewarm('items_l1')});
		is($node->safe_psql($db, q{SELECT representation FROM vault.index_cache
			WHERE index = 'items_l1'::regclass}), $repr, "$label, $repr: representation");
		is(top10('index', 200), $exact, "$label, $repr: ef_search 200 gives the exact L1 distances");
		my $r = recall(top10('index', 40), $exact);
		cmp_ok($r, '>=', 0.95, "$label, $repr: recall\@10 at ef_search 40 is >= 0.95 ($r)");
	}
	return;
}

check_all('after build');
$node->safe_psql($db, qq{
COPY items FROM '$tmp/more.txt';
DELETE FROM items WHERE id % 7 = 0;
VACUUM items;
});
check_all('after inserts, deletes and VACUUM');
# auto in a cache too small for float32 and sq8 (about 8 and 3 MB here) but not for sq4 (about
# 1.7 MB) picks sq4, and searches as exactly.
$node->append_conf('postgresql.conf',
	"vector_vault.cache_representation = 'auto'\nvector_vault.cache_size = '2MB'\n");
$node->restart;
$node->safe_psql($db, q{SELECT vault.prewarm('items_l1')});
is($node->safe_psql($db, q{SELECT representation FROM vault.index_cache WHERE index = 'items_l1'::regclass}),
	'sq4', 'auto in a 2 MB cache holds the index as sq4');
my $exact = top10('sort');
is(top10('index', 200), $exact, 'auto, sq4: ef_search 200 gives the exact L1 distances');
my $r = recall(top10('index', 40), $exact);
cmp_ok($r, '>=', 0.95, "auto, sq4: recall\@10 at ef_search 40 is >= 0.95 ($r)");
$node->append_conf('postgresql.conf', "vector_vault.cache_size = '1MB'\n");
$node->restart;
$node->safe_psql($db, q{SELECT vault.prewarm('items_l1')});
is($node->safe_psql($db, q{SELECT representation FROM vault.index_cache WHERE index = 'items_l1'::regclass}),
	'pages', 'control: in a 1 MB cache not even sq4 fits (pages)');
is(top10('index', 200), $exact, 'auto, pages: ef_search 200 gives the exact L1 distances');

my ($ok, $report) = VectorVault::hnsw_verify($node, $db, 'items_l1');
ok($ok, 'hnsw_verify is ok') or diag($report);
$node->stop;
done_testing();
