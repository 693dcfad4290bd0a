# 029_ehalfvec_index: an index on ehalfvec keeps halves in its vector stream and in the cache
# (issue 11: "half the heap, index and cache").
#
# The same 2,000 Fashion-MNIST rows (784 dimensions, integers 0..255: exact in half precision)
# are stored as evector and as ehalfvec, each with a vault_hnsw L2 index. Proven:
#   - the ehalfvec index file is at most 0.6 of the evector one (positive control for the
#     measure: the evector index is larger than its vectors' float32 bytes alone);
#   - hnsw_verify reports "half vectors" for it (and not for the evector index) and is ok;
#   - in each cache representation: vault.index_cache names it ('half' where the evector index
#     says 'float32', then 'sq8', 'pages'); at ef_search 200 the first 10 rows have the
#     distances of the exact order of a sort (halves lose nothing: the values are halves), at
#     the default ef_search recall@10 >= 0.95; the 'half' entry's resident bytes are at most 0.6
#     of the evector index's 'float32' entry;
#   - the same after single-row inserts, deletes and VACUUM, and after a restart;
#   - an ehalfvec_ip_ops index is half width too, an ehalfvec_cosine_ops one keeps float32 (its
#     unit vectors are not halves), both reach recall@10 >= 0.95 against a sort;
#   - a 3072-dimension ehalfvec column is indexed at half width and searched exactly;
#   - the index files hold no plaintext halves: rows share four marker halves whose packed
#     little-endian bytes are probed for; positive control: the same bytes in a bytea table's
#     file are found.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;

my $db = 'postgres';
my $node = VectorVault::new_node('halfidx');
$node->append_conf('postgresql.conf', "vector_vault.cache_size = '128MB'\n");
$node->start;
$node->safe_psql($db, q{
CREATE EXTENSION vector_vault;
SELECT vault.create_vault('h');
ALTER DATABASE postgres SET vector_vault.vault = 'h';
});
my $train = VectorVault::fmnist_rows('train', 0, 2300, packed => 1);
my $test = VectorVault::fmnist_rows('t10k', 0, 20, packed => 1);
my $tmp = PostgreSQL::Test::Utils::tempdir;
VectorVault::write_bytes("$tmp/items.txt",
	join('', map { ($_ + 1) . "\t" . VectorVault::vector_text($train->[$_]) . "\n" } 0 .. 1999), 0644);
VectorVault::write_bytes("$tmp/queries.txt",
	join('', map { ($_ + 1) . "\t" . VectorVault::vector_text($test->[$_]) . "\n" } 0 .. 19), 0644);
$node->safe_psql($db, qq{
CREATE TABLE ev (id int PRIMARY KEY, embedding evector(784));
COPY ev FROM '$tmp/items.txt';
CREATE TABLE items (id int PRIMARY KEY, embedding ehalfvec(784));
INSERT INTO items SELECT id, embedding FROM ev;
CREATE TABLE queries (qid int PRIMARY KEY, q ehalfvec(784));
CREATE TABLE q_ev (qid int PRIMARY KEY, q evector(784));
COPY q_ev FROM '$tmp/queries.txt';
INSERT INTO queries SELECT qid, q FROM q_ev;
CREATE INDEX ev_idx ON ev USING vault_hnsw (embedding evector_l2_ops);
CREATE INDEX items_idx ON items USING vault_hnsw (embedding ehalfvec_l2_ops);
});

# Sizes of the two index files.
my ($ev_size, $eh_size) = split /\|/,
  $node->safe_psql($db, q{SELECT pg_relation_size('ev_idx'), pg_relation_size('items_idx')});
note(sprintf('index files: evector %.2f MiB, ehalfvec %.2f MiB (%.2f)',
	$ev_size / 1048576, $eh_size / 1048576, $eh_size / $ev_size));
cmp_ok($ev_size, '>', 2000 * 784 * 4, 'control: the evector index is larger than its float32 vectors');
cmp_ok($eh_size / $ev_size, '<=', 0.6, 'the ehalfvec index is at most 0.6 of the evector index');

my ($ok, $report) = VectorVault::hnsw_verify($node, $db, 'items_idx');
ok($ok, 'hnsw_verify on the ehalfvec index is ok') or diag($report);
like($report, qr/metapage\|t\|[^\n]*, half vectors/, 'its metapage says half vectors');
unlike((VectorVault::hnsw_verify($node, $db, 'ev_idx'))[1], qr/half vectors/,
	'the evector index\'s does not');

# The distances of the first 10 rows per query (index at $ef, or a sort) and their recall.
sub top10
{
	my ($how, $ef, $table, $op) = @_;
	return VectorVault::top10_distances($node, $db, how => $how, ef => $ef, table => $table, op => $op);
}
sub recall { return VectorVault::distance_recall(@_); }

# The representation and resident bytes of an index in the cache.
sub cached
{
	my ($index) = @_;
	return split /\|/, $node->safe_psql($db, qq{SELECT representation, resident_bytes
		FROM vault.index_cache WHERE index = '$index'::regclass});
}

# Checks every representation against the exact order; $label names the phase.
sub check_all
{
	my ($label) = @_;
	my $exact = top10('sort');
	for my $repr (qw(float32 sq8 sq4 pages))
	{
		$node->append_conf('postgresql.conf', "vector_vault.cache_representation = '$repr'\n");
		$node->restart;
		$node->safe_psql($db, q{SELECT vault.prewarm('items_idx'), vault.prewarm('ev_idx')});
		my ($got, $bytes) = cached('items_idx');
		my $want = $repr eq 'float32' ? 'half' : $repr;
		is($got, $want, "$label, cache_representation $repr: the ehalfvec index is held as $want");
		if ($repr eq 'float32')
		{
			my ($evrepr, $evbytes) = cached('ev_idx');
			is($evrepr, 'float32', "$label: the evector index is held as float32");
			note(sprintf('%s: cache half %.2f MiB, float32 %.2f MiB (%.2f)', $label, $bytes / 1048576,
				$evbytes / 1048576, $bytes / $evbytes));
			cmp_ok($bytes / $evbytes, '<=', 0.6, "$label: the half entry is at most 0.6 of the float32 one");
		}
		is(top10('index', 200), $exact, "$label, $want: ef_search 200 gives the exact distances");
		my $r = recall(top10('index', 40), $exact);
		cmp_ok($r, '>=', 0.95, "$label, $want: recall\@10 at ef_search 40 is >= 0.95 ($r)");
	}
	return;
}

check_all('after build');

# Single-row inserts (each goes through the cache's half slots), deletes, VACUUM.
$node->append_conf('postgresql.conf', "vector_vault.cache_representation = 'auto'\n");
$node->restart;
# The evector table takes the same changes, so the two caches stay comparable.
for my $t (qw(items ev))
{
	$node->safe_psql($db, join("\n",
		map { "INSERT INTO $t VALUES (" . ($_ + 1) . ", '" . VectorVault::vector_text($train->[$_]) . "');" }
		  2000 .. 2299));
	$node->safe_psql($db, "DELETE FROM $t WHERE id % 7 = 0; VACUUM $t;");
}
check_all('after inserts, deletes and VACUUM');
($ok, $report) = VectorVault::hnsw_verify($node, $db, 'items_idx');
ok($ok, 'hnsw_verify is ok after inserts, deletes and VACUUM') or diag($report);

# Inner product on ehalfvec is half width as well; cosine keeps float32 (unit vectors are not
# halves); both reach recall against a sort.
$node->safe_psql($db, q{
CREATE INDEX items_ip ON items USING vault_hnsw (embedding ehalfvec_ip_ops);
CREATE INDEX items_cos ON items USING vault_hnsw (embedding ehalfvec_cosine_ops);
});
for my $case ([ 'items_ip', '<#>', 1 ], [ 'items_cos', '<=>', 0 ])
{
	my ($index, $op, $half) = @$case;
	my $size = $node->safe_psql($db, "SELECT pg_relation_size('$index')");
	my $verify = (VectorVault::hnsw_verify($node, $db, $index))[1];
	if ($half)
	{
		cmp_ok($size / $ev_size, '<=', 0.7, "$index is half width ($size bytes)");
		like($verify, qr/half vectors/, "$index: half vectors");
	}
	else
	{
		cmp_ok($size / $ev_size, '>=', 0.9, "$index keeps float32 ($size bytes)");
		unlike($verify, qr/half vectors/, "$index: float32 vectors");
	}
	# Only this index may serve the operator: the others order by another one.
	my $r = recall(top10('index', 40, 'items', $op), top10('sort', 0, 'items', $op));
	cmp_ok($r, '>=', 0.95, "$index: recall\@10 at ef_search 40 is >= 0.95 ($r)");
}

# A 3072-dimension model (text-embedding-3-large's size) fits: pgvector's halfvec index stops at
# 4,000 dimensions, vault_hnsw at 16,000. 300 rows of values rounded to halves; the index's
# first 10 rows at an ef_search covering the table have the sort's distances.
$node->safe_psql($db, q{
CREATE TABLE big (id int PRIMARY KEY, embedding ehalfvec(3072));
INSERT INTO big SELECT i, (SELECT format('[%s]', string_agg(round((sin(i * 0.37 + d * 0.011 + d * d * 0.0001) * 4)::numeric, 3)::text, ','))
    FROM generate_series(1, 3072) d)::ehalfvec FROM generate_series(1, 300) i;
CREATE INDEX big_idx ON big USING vault_hnsw (embedding);
CREATE TABLE big_q AS SELECT embedding AS q FROM big WHERE id = 17;
});
like((VectorVault::hnsw_verify($node, $db, 'big_idx'))[1], qr/dims 3072,[^\n]*half vectors/,
	'a 3072-dimension ehalfvec index is half width');
my $bigknn = q{SELECT string_agg(d::text, ',' ORDER BY n) FROM (SELECT embedding <-> (SELECT q FROM big_q) AS d,
    row_number() OVER () AS n FROM (SELECT embedding FROM big ORDER BY embedding <-> (SELECT q FROM big_q) LIMIT 10) s) s2};
my $big_sort = $node->safe_psql($db, "SET enable_indexscan = off; $bigknn");
like($node->safe_psql($db, "SET enable_seqscan = off; EXPLAIN (COSTS OFF) SELECT id FROM big ORDER BY embedding <-> (SELECT q FROM big_q) LIMIT 10"),
	qr/Index Scan using big_idx/, '3072 dimensions: the search uses the index');
is($node->safe_psql($db, "SET enable_seqscan = off; SET vector_vault.ef_search = 400; $bigknn"), $big_sort,
	'3072 dimensions: the index gives the exact distances at ef_search 400');
like($big_sort, qr/^0,/, 'control: the nearest row is the query itself');

# No plaintext halves in the index files. Rows 1..50 of a 16-d table share four marker halves
# (exact: 11 significant bits) whose packed pairs are the patterns.
my @marker = (1234.0, -987.5, 3.140625, -60000.0);
# The little-endian binary16 bits of an exactly representable value.
sub half_bits
{
	my ($x) = @_;
	my $sign = $x < 0 ? 0x8000 : 0;
	$x = abs($x);
	my $e = 0;
	$e++ while $x >= 2**($e + 1);
	$e-- while $x < 2**$e;
	my $frac = ($x / 2**$e - 1) * 1024;
	die "not exact: $x" if $frac != int($frac);
	return pack('v', $sign | (($e + 15) << 10) | $frac);
}
my %patterns = map { ("markers $_-" . ($_ + 1)) => half_bits($marker[$_]) . half_bits($marker[ $_ + 1 ]) } 0 .. 2;
is($node->safe_psql($db, q{SELECT encode(ehalfvec_send('[1234,-987.5,3.140625,-60000]'::ehalfvec), 'hex')}),
	'00040000' . join('', map { unpack('H*', scalar reverse half_bits($_)) } @marker),
	'the packed marker halves are the server\'s halves');
$node->safe_psql($db, q{
CREATE TABLE probe (id int PRIMARY KEY, embedding ehalfvec(16));
INSERT INTO probe SELECT i, ('[1234,-987.5,3.140625,-60000,' || i || ',' || (i * 2) || ',' ||
    array_to_string(array_fill(i % 5, ARRAY[10]), ',') || ']')::ehalfvec FROM generate_series(1, 50) i;
CREATE INDEX probe_idx ON probe USING vault_hnsw (embedding);
CHECKPOINT;
});
like((VectorVault::hnsw_verify($node, $db, 'probe_idx'))[1], qr/half vectors/, 'the probe index holds halves');
VectorVault::assert_none_found(\%patterns, 'ehalfvec index files',
	[ VectorVault::relation_files($node, $db, 'probe_idx') ]);
VectorVault::assert_none_found(\%patterns, 'ehalfvec table files', [ VectorVault::relation_files($node, $db, 'probe') ]);
$node->safe_psql($db, q{
CREATE TABLE control (b bytea);
INSERT INTO control SELECT decode('} . unpack('H*', join('', map { half_bits($_) } @marker)) . q{', 'hex') FROM generate_series(1, 50);
CHECKPOINT;
});
VectorVault::assert_all_found(\%patterns, 'control: the same halves in plain bytes',
	VectorVault::relation_files($node, $db, 'control'));
is($node->safe_psql($db, q{SELECT embedding::text FROM probe WHERE id = 3}),
	'[1234,-987.5,3.140625,-60000,3,6,3,3,3,3,3,3,3,3,3,3]', 'rows decrypt to the markers');
$node->stop;
done_testing();
