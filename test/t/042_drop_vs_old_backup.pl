# 042_drop_vs_old_backup.pl — dropping a vault is permanent also against backups taken before the
# drop, as long as no keyring copy from before the drop is used; deleted rows leave the index.
#
# Vaults va and vb share table items and one vault_hnsw index; reader_a may read va, reader_b vb,
# the superuser owns both. A copy of the keyring is taken, then a base backup, then more rows
# (so the restore needs archived WAL), a named restore point, and vault.drop_vault('va').
# Restoring the pre-drop backup + archived WAL to the restore point on a fresh node:
#   - with the CURRENT keyring (copied after the drop): the restored catalog still lists va as
#     active, yet every va value fails with 22V02 ("not in the keyring") for the owner and for
#     reader_a; searching va fails too — reader_a's search errors with 22V02 (its query vector
#     cannot be sealed under va's key), a ciphertext query vector of va taken before the drop
#     errors with 22V02, and the owner's searches (vb selected, so both vaults are walked) return
#     no va row at all: exactly reader_b's pre-drop lists. vb's rows and searches are intact;
#   - positive control, with the keyring copy taken BEFORE the drop: va decrypts and searches
#     exactly as before the drop (so keyring backup retention bounds recovery).
# On the live node, DELETE of vb rows + VACUUM: hnsw_verify ok, a search for each deleted
# vector never returns a deleted id, a search for every row returns exactly the live rows; and
# after CHECKPOINT neither the index file nor the heap holds the float4 bytes of a marker vector
# (one deleted row's, one live row's), while a plain real[] table holding the same vectors does.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;

my $db = 'postgres';
my $dim = 16;
my $node = VectorVault::new_node('live', init_opts => { allows_streaming => 1, has_archiving => 1 });
$node->start;

my $vecs = VectorVault::int_vectors(500, $dim, 4242);
my $queries = VectorVault::int_vectors(12, $dim, 4343);
my %vec_of;
$vec_of{ $_ + 1 } = $vecs->[$_] for 0 .. 219;                 # va: 1..220
$vec_of{ 1001 + $_ } = $vecs->[ 220 + $_ ] for 0 .. 219;       # vb: 1001..1220
# Marker vectors: float4 values that never occur otherwise (vb rows 1300 and 1301).
$vec_of{1300} = [ map { 1000 + $_ + 0.125 } 1 .. $dim ];
$vec_of{1301} = [ map { 2000 + $_ + 0.375 } 1 .. $dim ];

$node->safe_psql($db, q{
CREATE EXTENSION vector_vault;
SELECT vault.create_vault('va');
SELECT vault.create_vault('vb');
CREATE ROLE reader_a LOGIN;
CREATE ROLE reader_b LOGIN;
SELECT vault.grant('va', 'reader_a', 'read');
SELECT vault.grant('vb', 'reader_b', 'read');
CREATE TABLE items (id int PRIMARY KEY, body etext, embedding evector(16));
GRANT SELECT ON items TO reader_a, reader_b;
CREATE TABLE plain_items (id int PRIMARY KEY, embedding real[]);
});
sub insert_into
{
	my ($n, $vault, @ids) = @_;
	$n->safe_psql($db, "SET vector_vault.vault = '$vault';\n"
		  . VectorVault::insert_sql('items', \%vec_of, \@ids, "$vault row"));
	return;
}
insert_into($node, 'va', 1 .. 200);
insert_into($node, 'vb', 1001 .. 1200, 1300, 1301);
$node->safe_psql($db, 'INSERT INTO plain_items VALUES '
	  . join(',', map { "($_, '{" . join(',', @{ $vec_of{$_} }) . "}')" } 1300, 1301));
$node->safe_psql($db,
	'CREATE INDEX items_embedding_idx ON items USING vault_hnsw (embedding evector_l2_ops) WITH (m = 16, ef_construction = 64)');
my $va_id = $node->safe_psql($db, "SELECT vault_id FROM vault._vaults WHERE name = 'va'");
my $va_key = "$node->{vv_keyring}/" . VectorVault::key_file_name($va_id);
ok(-f $va_key, 'va has a keyring entry');

# The keyring copy from before the drop, then the base backup, then rows only WAL has.
my $keyring_before = $node->basedir . '/keyring_before_drop';
VectorVault::copy_dir($node->{vv_keyring}, $keyring_before);
$node->backup('pre');
insert_into($node, 'va', 201 .. 220);
insert_into($node, 'vb', 1201 .. 1220);

# What each principal sees before the drop.
sub md5_sql
{
	my ($vault, $where) = @_;
	return "SET vector_vault.vault = '$vault';\n"
	  . "SELECT count(*) || ' ' || md5(string_agg(id || '|' || body::text || '|' || embedding::text, ';' ORDER BY id)) FROM items WHERE $where";
}
my %search = (
	reader_a => [ vault => 'va', role => 'reader_a' ],
	reader_b => [ vault => 'vb', role => 'reader_b' ],
	owner => [ vault => 'vb' ],);
sub searches
{
	my ($n, $who) = @_;
	return VectorVault::search_lists($n, $db, $queries, @{ $search{$who} });
}
my %pre = (
	va_rows => $node->safe_psql($db, md5_sql('va', 'id < 1000')),
	vb_rows => $node->safe_psql($db, md5_sql('vb', 'id > 1000')),
	map { $_ => searches($node, $_) } keys %search);
like($pre{va_rows}, qr/^220 [0-9a-f]{32}$/, 'before the drop: 220 va rows decrypt');
like($pre{vb_rows}, qr/^222 [0-9a-f]{32}$/, 'before the drop: 222 vb rows decrypt');
ok(!grep({ /\b1\d\d\d\b/ } @{ $pre{reader_a} }) && grep({ /\b\d{1,3}\b/ } @{ $pre{reader_a} }),
	'before the drop: reader_a finds va rows only');
ok(scalar(grep { /(^|,)\d{1,3}(,|$)/ } @{ $pre{owner} }) > 0,
	'before the drop: the owner (vb selected) also finds va rows');
# A ciphertext query vector of va (the sealed vector of row 1), for searching va after the drop.
my $va_cipher = $node->safe_psql($db, 'SET vector_vault.ciphertext_io = on; SELECT embedding FROM items WHERE id = 1');
like($va_cipher, qr/^vve1:/, 'the sealed vector of a va row can be taken in ciphertext form');

$node->safe_psql($db, "SELECT pg_create_restore_point('before_drop')");

# --- the drop ---------------------------------------------------------------------------------------

$node->safe_psql($db, "SELECT vault.drop_vault('va')");
ok(!-f $va_key, 'after the drop: va\'s keyring entry is gone from the live keyring');
ok(-f "$keyring_before/" . VectorVault::key_file_name($va_id), '... and still in the copy taken before');
my ($state, $msg) = VectorVault::sql_error($node, $db, 'SELECT body::text FROM items WHERE id = 1');
is($state, '22V02', 'live node: va rows fail with 22V02');
VectorVault::archive_wal($node, $db);
my $keyring_now = $node->basedir . '/keyring_after_drop';
VectorVault::copy_dir($node->{vv_keyring}, $keyring_now);

# --- restore with the current keyring -----------------------------------------------------------------

my $r1 = VectorVault::restored_node('restore_current_keyring', $node, 'pre', keyring => $keyring_now,
	target => "recovery_target_name = 'before_drop'");
$r1->start;
ok(VectorVault::wait_promoted($r1, $db), 'current keyring: the pre-drop backup is restored to the restore point');
is($r1->safe_psql($db, "SELECT state FROM vault._vaults WHERE name = 'va'"), 'active',
	'current keyring: the restored catalog still lists va as active');
is($r1->safe_psql($db, 'SELECT count(*) FROM items WHERE id BETWEEN 201 AND 220'), '20',
	'current keyring: the va rows written after the base backup were replayed');
for my $case ([ 'owner', '' ], [ 'reader_a', "SET ROLE reader_a;\n" ])
{
	my ($who, $setup) = @$case;
	for my $col ('body::text', 'embedding::real[]')
	{
		($state, $msg) = VectorVault::sql_error($r1, $db, "${setup}SELECT $col FROM items WHERE id <= 220");
		is($state, '22V02', "current keyring: $who reading $col of va rows fails with 22V02");
		like($msg, qr/is not in the keyring/, "current keyring: ... because va's key is not in the keyring")
		  if $col eq 'body::text';
	}
}
my $q0 = VectorVault::vector_text($queries->[0]);
($state, $msg) = VectorVault::sql_error($r1, $db, "SET ROLE reader_a; SET vector_vault.vault = 'va'; SET enable_seqscan = off;
SELECT id FROM items ORDER BY embedding <-> '$q0' LIMIT 10");
is($state, '22V02', 'current keyring: reader_a searching va gets an error (22V02: its query cannot be sealed under va)');
note("reader_a searching va on the restored node: $state $msg");
($state, $msg) = VectorVault::sql_error($r1, $db, "SET vector_vault.vault = 'vb'; SET enable_seqscan = off;
SET vector_vault.ciphertext_io = on;
SELECT id FROM items ORDER BY embedding <-> '$va_cipher'::evector LIMIT 10");
is($state, '22V02', 'current keyring: a search with a va ciphertext query vector fails with 22V02');
note("owner searching with va's sealed vector: $state $msg");
my $owner_r1 = searches($r1, 'owner');
ok(!grep({ /(^|,)\d{1,3}(,|$)/ } @$owner_r1), 'current keyring: the owner\'s searches (walking va and vb) return no va row');
is_deeply($owner_r1, $pre{reader_b}, '... they are exactly the vb-only lists reader_b got before the drop');
is($r1->safe_psql($db, md5_sql('vb', 'id > 1000')), $pre{vb_rows}, 'current keyring: vb rows decrypt as before the drop');
is_deeply(searches($r1, 'reader_b'), $pre{reader_b}, 'current keyring: reader_b\'s searches are unchanged');
my ($ok, $report) = VectorVault::hnsw_verify($r1, $db, 'items_embedding_idx');
ok($ok, 'current keyring: hnsw_verify reports every check ok') or diag($report);
like($report, qr/vault \Q@{[ sprintf('%016x', $va_id) ]}\E: keys shredded, 220 elements not checked/,
	'current keyring: hnsw_verify reports va\'s 220 elements as belonging to a shredded vault') or diag($report);
$r1->stop;

# --- positive control: the keyring copy from before the drop ---------------------------------------------

my $r2 = VectorVault::restored_node('restore_old_keyring', $node, 'pre', keyring => $keyring_before,
	target => "recovery_target_name = 'before_drop'");
$r2->start;
ok(VectorVault::wait_promoted($r2, $db), 'old keyring: the pre-drop backup is restored to the restore point');
is($r2->safe_psql($db, md5_sql('va', 'id < 1000')), $pre{va_rows},
	'old keyring (positive control): va rows decrypt as before the drop');
is_deeply(searches($r2, $_), $pre{$_}, "old keyring: $_\'s searches equal the pre-drop ones") for sort keys %search;
is($r2->safe_psql($db, md5_sql('vb', 'id > 1000')), $pre{vb_rows}, 'old keyring: vb rows decrypt as before');
($ok, $report) = VectorVault::hnsw_verify($r2, $db, 'items_embedding_idx');
ok($ok, 'old keyring: hnsw_verify reports every check ok') or diag($report);
$r2->stop;

# --- deleted rows leave the index ----------------------------------------------------------------------------

my @deleted = (1001 .. 1040, 1300);
$node->safe_psql($db, 'DELETE FROM items WHERE id BETWEEN 1001 AND 1040 OR id = 1300');
$node->safe_psql($db, 'VACUUM items');
($ok, $report) = VectorVault::hnsw_verify($node, $db, 'items_embedding_idx');
ok($ok, 'after DELETE + VACUUM: hnsw_verify reports every check ok') or diag($report);
my $vb_id = $node->safe_psql($db, "SELECT vault_id FROM vault._vaults WHERE name = 'vb'");
like($report, qr/vault \Q@{[ sprintf('%016x', $vb_id) ]}\E: 181 live, 181 reachable/,
	'after DELETE + VACUUM: hnsw_verify counts vb\'s 181 live rows, all reachable') or diag($report);
my $hits = VectorVault::search_lists($node, $db, [ map { $vec_of{$_} } @deleted ], vault => 'vb', role => 'reader_b');
my %is_deleted = map { $_ => 1 } @deleted;
my @returned = grep { $is_deleted{$_} } map { split /,/ } @$hits;
is(scalar(@returned), 0, 'a search for each deleted vector never returns a deleted id')
  or diag("returned: @returned");
is(scalar(grep { scalar(split /,/) == 10 } @$hits), scalar(@deleted), '... each of those searches returns 10 rows');
my $live = $node->safe_psql($db, 'SELECT count(*) FROM items WHERE id > 1000');
is( $node->safe_psql($db, qq{SET ROLE reader_b; SET vector_vault.vault = 'vb'; SET enable_seqscan = off;
SELECT count(*) || '|' || count(DISTINCT id) || '|' || count(*) FILTER (WHERE id BETWEEN 1001 AND 1040 OR id = 1300)
FROM (SELECT id FROM items ORDER BY embedding <-> '$q0' LIMIT 100000) s}),
	"$live|$live|0", "a search for every vb row returns the $live live rows once and no deleted one");

$node->safe_psql($db, 'CHECKPOINT');
my %markers = map { ("row $_" => pack('f<*', @{ $vec_of{$_} })) } 1300, 1301;
my @index_files = VectorVault::relation_files($node, $db, 'items_embedding_idx');
my @heap_files = VectorVault::relation_files($node, $db, 'items');
my @plain_files = VectorVault::relation_files($node, $db, 'plain_items');
ok(@index_files && @heap_files && @plain_files, 'the index, heap and control table files were found');
my $in_index = VectorVault::find_patterns(\%markers, @index_files);
my $in_heap = VectorVault::find_patterns(\%markers, @heap_files);
my $in_plain = VectorVault::find_patterns(\%markers, @plain_files);
for my $m (sort keys %markers)
{
	is(scalar(@{ $in_index->{$m} }), 0, "the index file holds no plaintext float4 bytes of $m");
	is(scalar(@{ $in_heap->{$m} }), 0, "the heap holds no plaintext float4 bytes of $m");
	ok(scalar(@{ $in_plain->{$m} }) > 0, "positive control: the plain real[] table holds the bytes of $m");
}

$node->stop;
done_testing();
