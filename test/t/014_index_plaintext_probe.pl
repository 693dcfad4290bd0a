# 014_index_plaintext_probe.pl — vault_hnsw index files and the WAL of index writes hold no
# plaintext vector bytes.
#
# Rows of an evector(16) table share eight marker floats (dims 0..7: values whose float32 bit
# patterns do not occur by chance) and differ in dims 8..15. The probe looks for the packed
# little-endian float32 bytes: every pair of consecutive markers (8 bytes), every single marker
# (4 bytes; only in the index files, which are small enough for a 4-byte pattern never to occur
# by chance) and the 32 bytes of dims 8..15 of a few rows. Phases, each between CHECKPOINT and
# pg_switch_wal() so that its WAL segments are its own: load (COPY), CREATE INDEX, 200 single-row
# INSERTs, DELETE + VACUUM, REINDEX. After each index phase it proves:
#   - the index's files (pg_relation_filepath, all forks and segments) hold none of the patterns,
#     while they do hold the plaintext element headers (vault id), so the probe read the files
#     the index went to;
#   - that phase's WAL segments hold none of the patterns (records split across pages and
#     segments are searched as one stream), while pg_waldump shows records of the index in them;
# and at the end no file anywhere in the data directory holds any pattern.
# Positive control: the same vectors written into a real[] table in a separate, later phase are
# found by the same probe, in its file and in that phase's WAL. Finally the index returns the
# exact nearest rows (computed here) and rows decrypt to the marker values, so the probe cannot
# pass because nothing, or something else, was written.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;

my $db = 'postgres';
my $node = VectorVault::new_node('iprobe', init_opts => { allows_streaming => 1 });
$node->append_conf('postgresql.conf', "wal_keep_size = '1GB'\nlog_statement = 'ddl'\n");
$node->start;
my $tmp = PostgreSQL::Test::Utils::tempdir;

my @marker = (1234.5678, -8765.4321, 31415.927, -27182.818, 16180.339, -14142.136, 22360.68, -17320.508);

# Row $i's vector: the markers, then eight row-specific values.
sub vector_of
{
	my ($i) = @_;
	return [ @marker, $i * 0.5, -$i * 0.25, ($i % 7) * 3, ($i % 11) * 2, $i * 0.125 + 1, 100 - $i * 0.5,
		($i % 13) * 1.5, ($i % 17) - 8 ];
}

my %patterns;
$patterns{"markers $_-" . ($_ + 1)} = pack('f<2', @marker[ $_, $_ + 1 ]) for 0 .. 6;
$patterns{"dims 8-15 of row $_"} = pack('f<8', @{ vector_of($_) }[ 8 .. 15 ]) for (3, 77, 251, 499, 651);
my %singles = map { ("marker $_" => pack('f<', $marker[$_])) } 0 .. 7;
my %all = (%patterns, %singles);

$node->safe_psql($db, q{
CREATE EXTENSION vector_vault;
SELECT vault.create_vault('probe');
ALTER DATABASE postgres SET vector_vault.vault = 'probe';
});
my $vault_id = $node->safe_psql($db, "SELECT vault_id FROM vault._vaults WHERE name = 'probe'");

# The packed patterns are the server's float4 values.
is( $node->safe_psql($db,
		"SELECT string_agg(encode(float4send(x), 'hex'), ',') FROM unnest('{" . join(',', @marker) . "}'::real[]) x"),
	join(',', map { unpack('H*', pack('f>', $_)) } @marker),
	'the packed marker floats match the server\'s float4 values');

sub lsn { return $node->safe_psql($db, 'SELECT pg_current_wal_insert_lsn()'); }
sub index_files { return VectorVault::relation_files($node, $db, 'items_embedding_idx'); }

# Runs a phase between a checkpoint and WAL switches; returns its WAL segment paths.
sub phase
{
	my ($sql) = @_;
	$node->safe_psql($db, 'CHECKPOINT');
	$node->safe_psql($db, 'SELECT pg_switch_wal()');
	my $start = lsn();
	$node->safe_psql($db, $sql);
	my $end = lsn();
	$node->safe_psql($db, 'SELECT pg_switch_wal()');
	$node->safe_psql($db, 'CHECKPOINT');
	return VectorVault::wal_segments_between($node, $db, $start, $end);
}

# A single 4-byte marker turns up once in a few hundred kB of random ciphertext about once in
# 2,000 runs; every row holds all eight markers, so a plaintext copy of even one dimension shows
# its marker once per row. So one marker found exactly once (and nothing else) is noted, not
# counted (assert_none_found's $forgive); anything more fails.
sub chance_single
{
	my ($hits, @found) = @_;
	return @found unless @found == 1 && $found[0] =~ /^(marker \d+) in /;
	my $name = $1;
	my $count = 0;
	for my $f (@{ $hits->{$name} })
	{
		return @found unless -f $f;    # a hit in the joined WAL stream: not a plain file
		my $data = VectorVault::read_bytes($f);
		my $at = -1;
		$count++ while ($at = index($data, $all{$name}, $at + 1)) >= 0;
	}
	return @found unless $count == 1;
	note("$name found once, by chance in ciphertext; not counted");
	return ();
}

# Asserts that pg_waldump finds records of the index's current file node in @segs.
sub index_records_in
{
	my ($what, @segs) = @_;
	my $filenode = $node->safe_psql($db, "SELECT pg_relation_filenode('items_embedding_idx')");
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'pg_waldump', '--path', $node->data_dir . '/pg_wal', map { s{.*/}{}r } $segs[0], $segs[-1] ],
		'>', \$out, '2>', \$err);
	my $n = () = $out =~ m{rel \d+/\d+/$filenode\b}g;
	ok($n > 0, "$what: pg_waldump shows $n references to the index in that WAL");
	return;
}

# Probes the index files and a phase's WAL.
sub probe_index_phase
{
	my ($what, @segs) = @_;
	my @files = index_files();
	VectorVault::assert_none_found(\%all, "$what: index files", [@files], \&chance_single);
	VectorVault::assert_all_found({ 'element header vault id' => pack('Q<', $vault_id) }, "$what: index files hold element headers", @files);
	VectorVault::assert_none_found(\%patterns, "$what: WAL of the phase", [@segs]);
	index_records_in($what, @segs);
	return;
}

# --- load, then the index phases ------------------------------------------------------------

my $nrows = 500;
my $file = "$tmp/rows.txt";
VectorVault::write_bytes($file,
	join('', map { "$_\t" . VectorVault::vector_text(vector_of($_)) . "\n" } 1 .. $nrows), 0644);
my @segs = phase("CREATE TABLE items (id int PRIMARY KEY, embedding evector(16));\nCOPY items FROM '$file';");
VectorVault::assert_none_found(\%patterns, 'load: WAL of the COPY into the evector table', [@segs]);

@segs = phase('CREATE INDEX items_embedding_idx ON items USING vault_hnsw (embedding evector_l2_ops) '
	  . 'WITH (m = 16, ef_construction = 64)');
probe_index_phase('CREATE INDEX', @segs);

@segs = phase(join('', map { "INSERT INTO items VALUES ($_, '" . VectorVault::vector_text(vector_of($_)) . "');\n" }
	  $nrows + 1 .. $nrows + 200));
probe_index_phase('200 INSERTs', @segs);

@segs = phase("DELETE FROM items WHERE id % 5 = 0;\nVACUUM items;");
probe_index_phase('DELETE + VACUUM', @segs);

my $before = $node->safe_psql($db, "SELECT pg_relation_filepath('items_embedding_idx')");
@segs = phase('REINDEX INDEX items_embedding_idx');
isnt($node->safe_psql($db, "SELECT pg_relation_filepath('items_embedding_idx')"), $before, 'REINDEX wrote a new file');
probe_index_phase('REINDEX', @segs);

VectorVault::assert_none_found(\%patterns, 'whole data directory before the control phase', [$node->data_dir]);

# --- positive control: the same vectors as real[] ----------------------------------------------

@segs = phase(q{
CREATE TABLE plain_items (id int PRIMARY KEY, embedding real[]);
ALTER TABLE plain_items ALTER embedding SET STORAGE EXTERNAL;
INSERT INTO plain_items SELECT id, embedding::real[] FROM items;});
my @plain_files = VectorVault::relation_files($node, $db, 'plain_items');
VectorVault::assert_all_found(\%all, 'control: plain_items files', @plain_files);
VectorVault::assert_all_found(\%patterns, 'control: WAL of the plain_items phase', @segs);

# --- the index returns the right, decrypted rows ------------------------------------------------

my @live = grep { $_ % 5 != 0 } 1 .. $nrows + 200;
my @qids = (3, 77, 251, 499, 651);
my @sql;
for my $qid (@qids)
{
	my $q = vector_of($qid);
	$q->[8] += 0.1;    # near row $qid, not equal to it
	push @sql, "SELECT id FROM items ORDER BY embedding <-> '" . VectorVault::vector_text($q) . "' LIMIT 5";
}
# The table is small enough for Seq Scan + Sort to look cheaper: make the planner use the index.
my $use_index = 'SET enable_sort = off;';
my $answers = VectorVault::query_lists($node, $db, \@sql, $use_index);
my $exact = 0;
for my $k (0 .. $#qids)
{
	my $q = vector_of($qids[$k]);
	$q->[8] += 0.1;
	my @truth = (sort { VectorVault::sq_l2(vector_of($a), $q) <=> VectorVault::sq_l2(vector_of($b), $q) || $a <=> $b } @live)[ 0 .. 4 ];
	$exact++ if join(',', @{ $answers->[$k] }) eq join(',', @truth);
}
is($exact, scalar(@qids), 'the index returns the exact 5 nearest rows for every query');
my $explain = $node->safe_psql($db, "$use_index EXPLAIN (COSTS OFF) $sql[0]");
like($explain, qr/Index Scan using items_embedding_idx/, 'those queries use the index') or diag($explain);
my $row = $node->safe_psql($db, "SELECT array_to_string(embedding::real[], ',') FROM items WHERE id = 77");
is(pack('f<*', split /,/, $row), pack('f<*', @{ vector_of(77) }), 'row 77 decrypts to its marker vector');
is($node->safe_psql($db, 'SELECT count(*) FROM items'), scalar(@live), 'the table holds the live rows');

$node->stop;
done_testing();
