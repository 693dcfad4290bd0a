# 027_ehalfvec_size: what ehalfvec saves, measured (issue 11). 10,000 Fashion-MNIST rows
# (784 dimensions, integers 0..255: exact in half precision, so both columns hold the same
# values) stored as evector and as ehalfvec, each with a vault_hnsw index: a value is 52 + 4 and
# 52 + 2 bytes per dimension, the ehalfvec heap is at most 0.6 of the evector heap, and so is
# the ehalfvec index (its vector stream seals halves; test 029 covers the cache), both indexes
# reach recall@10 >= 0.95 on 20 test-set queries against a sort, and hnsw_verify passes. The
# figures are printed for docs/design.md.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;

my $db = 'postgres';
my $node = VectorVault::new_node('half');
$node->append_conf('postgresql.conf', "maintenance_work_mem = '512MB'\nvector_vault.cache_size = '128MB'\n");
$node->start;
$node->safe_psql($db, q{
CREATE EXTENSION vector_vault;
SELECT vault.create_vault('h');
ALTER DATABASE postgres SET vector_vault.vault = 'h';
});
my $rows = VectorVault::fmnist_rows('train', 0, 10000, packed => 1);
my $queries = VectorVault::fmnist_rows('t10k', 0, 20, packed => 1);
my $tmp = PostgreSQL::Test::Utils::tempdir;
VectorVault::write_bytes("$tmp/rows.txt",
	join('', map { ($_ + 1) . "\t" . VectorVault::vector_text($rows->[$_]) . "\n" } 0 .. $#$rows), 0644);
VectorVault::write_bytes("$tmp/queries.txt",
	join('', map { ($_ + 1) . "\t" . VectorVault::vector_text($queries->[$_]) . "\n" } 0 .. $#$queries), 0644);
$node->safe_psql($db, qq{
CREATE TABLE ev (id int PRIMARY KEY, embedding evector(784));
COPY ev FROM '$tmp/rows.txt';
CREATE TABLE eh (id int PRIMARY KEY, embedding ehalfvec(784));
INSERT INTO eh SELECT id, embedding FROM ev;
CREATE TABLE q_ev (id int PRIMARY KEY, embedding evector(784));
COPY q_ev FROM '$tmp/queries.txt';
CREATE TABLE q_eh (id int PRIMARY KEY, embedding ehalfvec(784));
INSERT INTO q_eh SELECT id, embedding FROM q_ev;
CREATE INDEX ev_idx ON ev USING vault_hnsw (embedding evector_l2_ops);
CREATE INDEX eh_idx ON eh USING vault_hnsw (embedding ehalfvec_l2_ops);
VACUUM ANALYZE ev;
VACUUM ANALYZE eh;
});
my ($ev_heap, $eh_heap, $ev_idx, $eh_idx, $ev_val, $eh_val) = split /\|/, $node->safe_psql($db, q{
SELECT pg_table_size('ev'), pg_table_size('eh'), pg_relation_size('ev_idx'),
       pg_relation_size('eh_idx'),
       (SELECT pg_column_size(embedding) FROM ev LIMIT 1), (SELECT pg_column_size(embedding) FROM eh LIMIT 1)});
note(sprintf('10000 x 784: value %d vs %d bytes; heap (with TOAST) evector %.1f MiB, ehalfvec %.1f MiB (%.2f); '
	  . 'index evector %.1f MiB, ehalfvec %.1f MiB', $ev_val, $eh_val,
	  $ev_heap / 1048576, $eh_heap / 1048576, $eh_heap / $ev_heap, $ev_idx / 1048576, $eh_idx / 1048576));
is($ev_val, 52 + 4 * 784, 'an evector(784) value is 52 + 4 * 784 bytes');
is($eh_val, 52 + 2 * 784, 'an ehalfvec(784) value is 52 + 2 * 784 bytes');
cmp_ok($eh_heap / $ev_heap, '<=', 0.6, 'the ehalfvec heap is at most 0.6 of the evector heap');
cmp_ok($eh_idx / $ev_idx, '<=', 0.6, 'the ehalfvec index is at most 0.6 of the evector index');

# recall@10 of the 20 test-set queries (stored in q_<table>, of the column's type) through the
# table's index against a sort of the same column; also checks that the plan uses the index.
sub recall
{
	my ($tbl) = @_;
	my $knn = qq{SELECT q.id, (SELECT array_agg(id) FROM (SELECT id FROM $tbl
	    ORDER BY embedding <-> q.embedding LIMIT 10) x) AS ids FROM q_$tbl q};
	like($node->safe_psql($db, "SET enable_seqscan = off; EXPLAIN (COSTS OFF) $knn"),
		qr/Index Scan using ${tbl}_idx/, "$tbl: the search uses its index");
	$node->safe_psql($db, "SET enable_indexscan = off; CREATE TABLE sort_$tbl AS $knn");
	return $node->safe_psql($db, qq{SET enable_seqscan = off;
SELECT avg(cardinality(ARRAY(SELECT unnest(i.ids) INTERSECT SELECT unnest(s.ids))) / 10.0)
FROM ($knn) i JOIN sort_$tbl s USING (id)});
}
my $r_ev = recall('ev');
my $r_eh = recall('eh');
note("recall\@10 at ef_search 40: evector $r_ev, ehalfvec $r_eh");
cmp_ok($r_ev, '>=', 0.95, "evector index recall\@10 >= 0.95 ($r_ev)");
cmp_ok($r_eh, '>=', 0.95, "ehalfvec index recall\@10 >= 0.95 ($r_eh)");
my ($ok, $report) = VectorVault::hnsw_verify($node, $db, 'eh_idx');
ok($ok, 'hnsw_verify on the ehalfvec index is ok') or diag($report);
$node->stop;
done_testing();
