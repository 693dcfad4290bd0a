# 015_vault_scoped.pl — vault-aware search: a role sees a full, accurate LIMIT from the vaults
# it may read, even when its vault holds 0.5% of the table and when RLS filters the rows.
#
# One table of 8,000 Fashion-MNIST rows in 100 vaults: 'small' holds 40 rows (0.5%), the other
# 7,960 are spread over 99 vaults. A plaintext column names each row's vault. One vault_hnsw
# index (m 16, ef_construction 64), default ef_search. Queries: 50 test images; exact ground
# truth (numpy) within the rows each role may see. It proves, without RLS:
#   - a role with read on 'small' only gets 10 rows per query, all of vault 'small', recall@10
#     >= 0.95 within 'small' (pgvector-style global search with a filter would find ~0 of them);
#   - a role with read on 'small' and 'v07' gets 10 rows per query, all from those two vaults
#     (both appear), recall@10 >= 0.95 within their union;
#   - a role that may read all 100 vaults gets recall@10 >= 0.95 over the whole table (the
#     per-vault searches are merged correctly);
#   - a role cannot seal a query under a vault it cannot read (SQLSTATE 42501);
# and with ROW LEVEL SECURITY enabled and a policy keeping rows whose vault_name is the session's
# vector_vault.vault:
#   - the 'small' reader still gets its full LIMIT at recall >= 0.95;
#   - the two-vault reader, whose index results include 'v07' rows that RLS then removes, still
#     gets 10 rows, all 'small', recall >= 0.95;
#   - a role that may read all 100 vaults, so that 99.5% of what the index finds is removed by
#     RLS, still gets 10 rows, all 'small', recall >= 0.95 (RLS does not starve the index).
# Every plan is an Index Scan on the vault_hnsw index (with RLS, Seq Scan is disabled to get it).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;

my $db = 'postgres';
my $k = 10;
my $node = VectorVault::new_node('scoped', init_opts => { allows_streaming => 1 });
$node->append_conf('postgresql.conf', qq{
vector_vault.cache_size = '128MB'
maintenance_work_mem = '256MB'
log_statement = 'ddl'
});
$node->start;
my $tmp = PostgreSQL::Test::Utils::tempdir;

my $nrows = 8000;
my $nq = 50;
my $train = VectorVault::fmnist_rows('train', 0, $nrows);
my $queries = VectorVault::fmnist_rows('t10k', 0, $nq);
my @qtext = map { VectorVault::vector_text($_) } @$queries;

# Row id $i (1-based) belongs to 'small' when $i % 200 == 0 (40 rows), else to one of v01..v99.
sub vault_of { my ($i) = @_; return $i % 200 == 0 ? 'small' : sprintf('v%02d', 1 + $i % 99); }
my %vec_of = map { ($_ => $train->[ $_ - 1 ]) } 1 .. $nrows;
my %rows_in;
push @{ $rows_in{ vault_of($_) } }, $_ for 1 .. $nrows;
my @vaults = sort keys %rows_in;
is(scalar(@vaults), 100, '100 vaults');
is(scalar(@{ $rows_in{small} }), 40, "vault small holds 40 of $nrows rows");

my $setup = "CREATE EXTENSION vector_vault;\n"
  . join('', map { "SELECT vault.create_vault('$_');\n" } @vaults)
  . "CREATE TABLE items (id int PRIMARY KEY, vault_name text NOT NULL, embedding evector(784));\n"
  . "CREATE ROLE small_reader; CREATE ROLE two_reader; CREATE ROLE wide_reader;\n"
  . "GRANT SELECT ON items TO small_reader, two_reader, wide_reader;\n"
  . "SELECT vault.grant('small', 'small_reader', 'read');\n"
  . "SELECT vault.grant('small', 'two_reader', 'read'); SELECT vault.grant('v07', 'two_reader', 'read');\n"
  . join('', map { "SELECT vault.grant('$_', 'wide_reader', 'read');\n" } @vaults);
$node->safe_psql($db, $setup);

# Each vault's rows with COPY, sealed under that vault.
my $load = '';
for my $v (@vaults)
{
	my $file = "$tmp/$v.txt";
	VectorVault::write_bytes($file,
		join('', map { "$_\t$v\t" . VectorVault::vector_text($vec_of{$_}) . "\n" } @{ $rows_in{$v} }), 0644);
	$load .= "SET vector_vault.vault = '$v';\nCOPY items (id, vault_name, embedding) FROM '$file';\n";
}
$node->safe_psql($db, $load);
is($node->safe_psql($db, 'SELECT count(*), count(DISTINCT vault_name) FROM items'), "$nrows|100", 'rows loaded into 100 vaults');
$node->safe_psql($db,
	'CREATE INDEX items_embedding_idx ON items USING vault_hnsw (embedding evector_l2_ops) WITH (m = 16, ef_construction = 64)');
my ($vok, $vreport) = VectorVault::hnsw_verify($node, $db, 'items_embedding_idx');
is(scalar(grep { /^vault\|/ } split /\n/, $vreport), 100, 'the index has one sub-graph per vault');

# Ground truth within a set of vaults.
sub truth_for
{
	my (@in) = @_;
	my @ids = sort { $a <=> $b } map { @{ $rows_in{$_} } } @in;
	return VectorVault::exact_knn($tmp, \@ids, [ map { $vec_of{$_} } @ids ], $queries, $k);
}
my $truth_small = truth_for('small');
my $truth_two = truth_for('small', 'v07');

# Runs every query as $role with vector_vault.vault = $vault; checks count, vaults, recall.
sub check_role
{
	my ($what, $role, $vault, $allowed, $truth, $extra) = @_;
	my $session = "SET ROLE $role; SET vector_vault.vault = '$vault'; " . ($extra // '');
	my $explain = $node->safe_psql($db,
		"$session EXPLAIN (COSTS OFF) SELECT id, vault_name FROM items ORDER BY embedding <-> '$qtext[0]' LIMIT $k");
	like($explain, qr/Index Scan using items_embedding_idx on items/, "$what: the plan uses the index") or diag($explain);
	my $answers = VectorVault::query_lists($node, $db,
		[ map { "SELECT id, vault_name FROM items ORDER BY embedding <-> '$_' LIMIT $k" } @qtext ], $session);
	my ($short, $foreign, $mismatch, $sum, $min) = (0, 0, 0, 0, 1);
	my %seen_vault;
	for my $i (0 .. $#$answers)
	{
		my @rows = map { [ split /\|/ ] } @{ $answers->[$i] };
		$short++ if @rows != $k;
		for my $r (@rows)
		{
			$foreign++ unless $allowed->{ $r->[1] };
			$mismatch++ unless $r->[1] eq vault_of($r->[0]);
			$seen_vault{ $r->[1] }++;
		}
		my %vecs = map { ($_->[0] => $vec_of{ $_->[0] }) } grep { $allowed->{ $_->[1] } } @rows;
		my $r = VectorVault::recall_at_k([ map { $_->[0] } @rows ], $truth->[$i], $k, \%vecs, $queries->[$i]);
		$sum += $r;
		$min = $r if $r < $min;
	}
	my $n = scalar @$answers;
	is($short, 0, "$what: all $n queries return $k rows");
	is($foreign, 0, "$what: every row belongs to " . join(' or ', sort keys %$allowed));
	is($mismatch, 0, "$what: every row's vault_name matches the row");
	my $recall = $sum / $n;
	ok($recall >= 0.95, sprintf('%s: recall@%d within %s = %.4f >= 0.95 (min %.2f)', $what, $k,
		join('+', sort keys %$allowed), $recall, $min));
	return \%seen_vault;
}

is($node->safe_psql($db, 'SHOW vector_vault.ef_search'), '40', 'ef_search is at its default (40)');

# --- without RLS ---------------------------------------------------------------------------------

check_role('small reader', 'small_reader', 'small', { small => 1 }, $truth_small);
my $seen = check_role('two-vault reader', 'two_reader', 'small', { small => 1, v07 => 1 }, $truth_two);
ok($seen->{small} && $seen->{v07}, 'two-vault reader: rows of both vaults are returned');
check_role('reader of all 100 vaults', 'wide_reader', 'small', { map { ($_ => 1) } @vaults }, truth_for(@vaults));
my ($state) = VectorVault::sql_error($node, $db,
	"SET ROLE small_reader; SET vector_vault.vault = 'v07'; SELECT id FROM items ORDER BY embedding <-> '$qtext[0]' LIMIT 1");
is($state, '42501', 'small reader cannot seal a query under vault v07 (42501)');

# --- with RLS ------------------------------------------------------------------------------------

$node->safe_psql($db, q{
ALTER TABLE items ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_vault ON items USING (vault_name = current_setting('vector_vault.vault'));
});
# The planner prefers Seq Scan + Sort once the policy's filter is estimated to keep few rows
# (here the cheaper plan: only the 40 rows that pass the filter are decrypted); what is tested
# is the index scan under RLS, so Seq Scan is disabled.
my $no_seqscan = 'SET enable_seqscan = off;';
check_role('RLS, small reader', 'small_reader', 'small', { small => 1 }, $truth_small, $no_seqscan);
check_role('RLS, two-vault reader', 'two_reader', 'small', { small => 1 }, $truth_small, $no_seqscan);
check_role('RLS, reader of all 100 vaults', 'wide_reader', 'small', { small => 1 }, $truth_small, $no_seqscan);
my $explain = $node->safe_psql($db,
	"SET ROLE wide_reader; SET vector_vault.vault = 'small'; $no_seqscan EXPLAIN (COSTS OFF) "
	  . "SELECT id FROM items ORDER BY embedding <-> '$qtext[0]' LIMIT $k");
like($explain, qr/Filter: \(vault_name = current_setting/, 'RLS, reader of all 100 vaults: the policy filters the index scan')
  or diag($explain);

$node->stop;
done_testing();
