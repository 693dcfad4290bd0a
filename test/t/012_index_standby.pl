# 012_index_standby.pl — a streaming standby answers vault_hnsw searches exactly as its primary,
# through build, inserts, DELETE + VACUUM, and after promotion.
#
# The primary holds Fashion-MNIST rows in two vaults ('docs', 3,000 rows; 'other', 500 rows) in
# one table. A base backup is taken before the index exists; the standby (same keyring and
# master key file) streams from it, so CREATE INDEX, every insert and VACUUM's repair reach it
# only through WAL. The standby keeps a warm decrypted cache across phases, so it must
# revalidate the cache against replayed pages. After each phase, once replay caught up:
#   - the standby returns the same ordered id lists as the primary for 30 top-10 and 5 top-300
#     queries (the latter need several rounds of the iterative scan), both for a
#     role that may read only 'docs' (whose rows must all be 'docs' rows) and for the owner of
#     both vaults (whose answers must include 'other' rows);
#   - vault.hnsw_verify on the standby gives the same report as on the primary, and every check
#     is ok;
#   - after DELETE + VACUUM no deleted row is returned by either node.
# Finally the standby is promoted: single-row inserts work there, each new row is found by a
# search for its own vector, and hnsw_verify stays ok.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;

my $db = 'postgres';
my $primary = VectorVault::new_node('primary', init_opts => { allows_streaming => 1 });
$primary->append_conf('postgresql.conf', qq{
vector_vault.cache_size = '128MB'
maintenance_work_mem = '256MB'
log_statement = 'ddl'
autovacuum = off    # primary and standby are compared: only the test's own VACUUMs may change the graph
});
$primary->start;
my $tmp = PostgreSQL::Test::Utils::tempdir;

my ($ndocs, $nother, $ninsert, $nq) = (3000, 500, 300, 30);
my $train = VectorVault::fmnist_rows('train', 0, $ndocs + $nother + $ninsert + 50);
my @qtext = map { VectorVault::vector_text($_) } @{ VectorVault::fmnist_rows('t10k', 0, $nq) };
my $next = 0;
sub take_vector { return VectorVault::vector_text($train->[ $next++ ]); }

$primary->safe_psql($db, q{
CREATE EXTENSION vector_vault;
SELECT vault.create_vault('docs');
SELECT vault.create_vault('other');
CREATE ROLE reader LOGIN;
SELECT vault.grant('docs', 'reader', 'read');
ALTER DATABASE postgres SET vector_vault.vault = 'docs';
CREATE TABLE items (id int PRIMARY KEY, vault_name text NOT NULL, embedding evector(784));
GRANT SELECT ON items TO reader;
});

# Loads rows $from .. $to of a vault with COPY (the vault selected for the session).
sub copy_rows
{
	my ($vault, $from, $to) = @_;
	my $file = "$tmp/$vault-$from.txt";
	VectorVault::write_bytes($file, join('', map { "$_\t$vault\t" . take_vector() . "\n" } $from .. $to), 0644);
	$primary->safe_psql($db, "SET vector_vault.vault = '$vault'; COPY items (id, vault_name, embedding) FROM '$file'");
	return;
}
copy_rows('docs', 1, $ndocs);
copy_rows('other', 100001, 100000 + $nother);

$primary->backup('bk');
my $standby = VectorVault::new_node('standby',
	keyring => $primary->{vv_keyring}, keyfile => $primary->{vv_keyfile}, init => 0);
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
$standby->start;
is($standby->safe_psql($db, 'SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');
is( $standby->safe_psql($db, 'SHOW vector_vault.keyring_dir') . '|' . $standby->safe_psql($db, 'SHOW vector_vault.master_key_file'),
	"$primary->{vv_keyring}|$primary->{vv_keyfile}",
	'the standby uses the primary\'s keyring and master key file (its postgresql.conf came with the base backup)');

$primary->safe_psql($db,
	'CREATE INDEX items_embedding_idx ON items USING vault_hnsw (embedding evector_l2_ops) WITH (m = 16, ef_construction = 64)');

# 30 top-10 queries, and 5 top-300 queries (these take several rounds of the iterative scan).
my @queries = ((map { "SELECT id FROM items ORDER BY embedding <-> '$_' LIMIT 10" } @qtext),
	(map { "SELECT id FROM items ORDER BY embedding <-> '$_' LIMIT 300" } @qtext[ 0 .. 4 ]));
my $as_reader = 'SET ROLE reader;';

# Asserts that both nodes answer every query identically (as reader and as owner); returns the
# owner's answers on the primary.
sub compare_nodes
{
	my ($phase) = @_;
	ok(VectorVault::wait_for_replay($primary, $standby), "$phase: the standby replayed the primary's WAL");
	my $explain = $standby->safe_psql($db, "$as_reader EXPLAIN (COSTS OFF) $queries[0]");
	like($explain, qr/Index Scan using items_embedding_idx/, "$phase: the standby's plan uses the index")
	  or diag($explain);
	my %answers;
	for my $who ([ 'reader', $as_reader ], [ 'owner', '' ])
	{
		my $p = VectorVault::query_lists($primary, $db, \@queries, $who->[1]);
		my $s = VectorVault::query_lists($standby, $db, \@queries, $who->[1]);
		my @diff = grep { join(',', @{ $p->[$_] }) ne join(',', @{ $s->[$_] }) } 0 .. $#$p;
		my $full = grep { @{ $p->[$_] } == ($_ < $nq ? 10 : 300) } 0 .. $#$p;
		is($full, scalar(@$p), "$phase: every $who->[0] answer on the primary has its LIMIT of rows (10 or 300)");
		is(scalar(@diff), 0, "$phase: the standby returns the primary's ordered ids for all "
			  . scalar(@queries) . " queries as $who->[0]")
		  or diag("query $diff[0]: primary " . join(',', @{ $p->[ $diff[0] ] }) . ' standby ' . join(',', @{ $s->[ $diff[0] ] }));
		$answers{ $who->[0] } = $p;
	}
	my @reader_ids = map { @$_ } @{ $answers{reader} };
	is(scalar(grep { $_ > 100000 } @reader_ids), 0, "$phase: the reader gets only rows of vault docs");
	my @owner_ids = map { @$_ } @{ $answers{owner} };
	ok(scalar(grep { $_ > 100000 } @owner_ids) > 0, "$phase: the owner's answers include rows of vault other");

	my ($pok, $preport) = VectorVault::hnsw_verify($primary, $db, 'items_embedding_idx');
	my ($sok, $sreport) = VectorVault::hnsw_verify($standby, $db, 'items_embedding_idx');
	is($sreport, $preport, "$phase: hnsw_verify on the standby reports exactly what it reports on the primary");
	ok($sok, "$phase: hnsw_verify on the standby reports every check ok") or diag($sreport);
	return \%answers;
}

compare_nodes('after CREATE INDEX');

# Single-row inserts on the primary, in both vaults.
my $script = '';
for my $i (1 .. $ninsert)
{
	my ($vault, $id) = $i % 3 ? ('docs', $ndocs + $i) : ('other', 100000 + $nother + $i);
	$script .= "SET vector_vault.vault = '$vault'; INSERT INTO items VALUES ($id, '$vault', '" . take_vector() . "');\n";
}
$primary->safe_psql($db, $script);
compare_nodes('after inserts');

$primary->safe_psql($db, 'DELETE FROM items WHERE id % 5 = 0');
$primary->safe_psql($db, 'VACUUM items');
my $answers = compare_nodes('after DELETE + VACUUM');
my @returned = map { @$_ } @{ $answers->{owner} }, @{ $answers->{reader} };
is(scalar(grep { $_ % 5 == 0 } @returned), 0, 'after DELETE + VACUUM: no deleted row is returned');

# --- promotion -----------------------------------------------------------------------------------

$standby->promote;
$standby->poll_query_until($db, 'SELECT NOT pg_is_in_recovery()') or die 'standby did not leave recovery';
$script = '';
for my $id (200001 .. 200050)
{
	$script .= "INSERT INTO items VALUES ($id, 'docs', '" . take_vector() . "');\n";
}
$standby->safe_psql($db, $script);
is($standby->safe_psql($db, 'SELECT count(*) FROM items WHERE id > 200000'), '50',
	'after promotion: 50 single-row inserts succeeded on the former standby');
my $unfound = $standby->safe_psql($db, q{
SET enable_sort = off;
SELECT string_agg(t.id::text, ',') FROM items t WHERE t.id > 200000
  AND NOT (t.id = ANY (ARRAY(SELECT u.id FROM items u ORDER BY u.embedding <-> t.embedding LIMIT 10)))});
is($unfound, '', 'after promotion: each new row is found by an index search for its own vector');
my ($ok, $report) = VectorVault::hnsw_verify($standby, $db, 'items_embedding_idx');
ok($ok, 'after promotion and inserts: hnsw_verify reports every check ok') or diag($report);
like($report, qr/counter \d+/, 'after promotion: verify read the metapage');

$standby->stop;
$primary->stop;
done_testing();
