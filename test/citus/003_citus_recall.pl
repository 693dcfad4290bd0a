# 003_citus_recall.pl — Fashion-MNIST on the cluster (issue 10): 20,000 training images in 20
# vaults (1,000 each), loaded with COPY through the coordinator into a table distributed by vault
# (4 shards on 2 workers, a vault_hnsw index per shard) and into a plain table on the coordinator
# (one node, one index). 100 test images are searched over all 20 vaults with
# ORDER BY embedding <-> q LIMIT 10 on both; recall@10 against the exact answer (numpy) must be
# high on both and the distributed one within 0.01 of the single node's.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;

my $db = 'postgres';
my $k = 10;
my $nvaults = 20;
my $per_vault = 1000;
my $nq = 100;

my ($coord, @workers) = VectorVault::citus_cluster(conf => q{vector_vault.cache_size = '128MB'
maintenance_work_mem = '128MB'
log_statement = 'ddl'
});

my $tmp = PostgreSQL::Test::Utils::tempdir;
chmod 0755, $tmp;
my $train = VectorVault::fmnist_rows('train', 0, $nvaults * $per_vault);
my $queries = VectorVault::fmnist_rows('t10k', 0, $nq);
my %vec_of = map { ($_ + 1) => $train->[$_] } 0 .. $#$train;

$coord->safe_psql($db, join('', map { sprintf("SELECT vault.create_vault('v%02d');\n", $_) } 0 .. $nvaults - 1)
	  . q{CREATE TABLE dist (tenant text NOT NULL, id int NOT NULL, embedding evector(784),
	                         PRIMARY KEY (tenant, id));
	      SELECT create_distributed_table('dist', 'tenant', shard_count => 4);
	      CREATE TABLE single (tenant text NOT NULL, id int NOT NULL, embedding evector(784),
	                           PRIMARY KEY (tenant, id));});

# One COPY per vault into each table; the session selects the vault the rows are sealed under.
my $load = '';
for my $v (0 .. $nvaults - 1)
{
	my $name = sprintf('v%02d', $v);
	my $file = "$tmp/$name.txt";
	VectorVault::write_bytes($file,
		join('', map { "$name\t$_\t" . VectorVault::vector_text($vec_of{$_}) . "\n" }
			  ($v * $per_vault + 1) .. (($v + 1) * $per_vault)), 0644);
	$load .= "SET vector_vault.vault = '$name';\nCOPY dist FROM '$file';\nCOPY single FROM '$file';\n";
}
my $t0 = time();
$coord->safe_psql($db, $load);
note('loading 2 x 20,000 rows took ' . (time() - $t0) . ' s');
is($coord->safe_psql($db, 'SELECT count(*) FROM dist'), $nvaults * $per_vault, '20,000 rows distributed');
$t0 = time();
$coord->safe_psql($db, q{
CREATE INDEX dist_idx ON dist USING vault_hnsw (embedding evector_l2_ops) WITH (m = 16, ef_construction = 64);
CREATE INDEX single_idx ON single USING vault_hnsw (embedding evector_l2_ops) WITH (m = 16, ef_construction = 64);
ANALYZE dist; ANALYZE single;});
note('index builds took ' . (time() - $t0) . ' s');

my @qtext = map { VectorVault::vector_text($_) } @$queries;
my $setup = "SET vector_vault.vault = 'v00';";
like($coord->safe_psql($db, "$setup EXPLAIN (COSTS OFF) SELECT id FROM dist ORDER BY embedding <-> '$qtext[0]' LIMIT $k"),
	qr/Task Count: 4.*Index Scan using dist_idx_\d+/s, 'distributed: every shard searches its index');
like($coord->safe_psql($db, "$setup EXPLAIN (COSTS OFF) SELECT id FROM single ORDER BY embedding <-> '$qtext[0]' LIMIT $k"),
	qr/Index Scan using single_idx/, 'single node: the index is used');

my @ids = sort { $a <=> $b } keys %vec_of;
my $truth = VectorVault::exact_knn($tmp, \@ids, [ map { $vec_of{$_} } @ids ], $queries, $k);
my %recall;
for my $table (qw(dist single))
{
	my $answers = VectorVault::query_lists($coord, $db,
		[ map { "SELECT id FROM $table ORDER BY embedding <-> '$_' LIMIT $k" } @qtext ], $setup);
	my $sum = 0;
	for my $i (0 .. $#$answers)
	{
		my %v = map { $_ => $vec_of{$_} } @{ $answers->[$i] };
		$sum += VectorVault::recall_at_k($answers->[$i], $truth->[$i], $k, \%v, $queries->[$i]);
	}
	$recall{$table} = $sum / @$answers;
}
ok($recall{single} >= 0.95, sprintf('single node: recall@10 = %.4f >= 0.95', $recall{single}));
ok($recall{dist} >= 0.95, sprintf('3 nodes: recall@10 = %.4f >= 0.95', $recall{dist}));
ok(abs($recall{dist} - $recall{single}) <= 0.01,
	sprintf('distributed recall within 0.01 of one node (%.4f vs %.4f)', $recall{dist}, $recall{single}));

done_testing();
