# 040_archive_pitr.pl — continuous archiving, base backup restore and point-in-time recovery
# bring back exactly the encrypted data and the same vault_hnsw search results.
#
# A primary archives its WAL (archive_mode/archive_command) and holds a vault with an indexed
# table (etext body, evector(16) embedding, vault_hnsw). After a pg_basebackup it gets a second
# batch of rows, deletes and a VACUUM, then a named restore point, then a third batch whose rows
# are the nearest neighbours of every query (so the third batch visibly changes every answer).
# Then it proves:
#   - full restore: the base backup + archived WAL, restored to a fresh node that has a copy of
#     the CURRENT keyring and the same master key, replays to the end of the archive and gives
#     the primary's row count, decrypted contents (md5 over every row's plaintext) and ordered
#     id lists of 12 index searches (same role, same vault selected); hnsw_verify is ok; the
#     restored node accepts new rows and finds them through the index;
#   - point-in-time recovery to the restore point (same keyring directory as the primary): the
#     log says it stopped at the restore point, no third-batch row exists, and count, contents and
#     search results equal the primary's as recorded just before the restore point;
#   - the restore needs the keyring: the same backup restored with an EMPTY keyring directory and
#     the same master key reads nothing (22V02, "not in the keyring").
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;

my $db = 'postgres';
my $dim = 16;
my $primary = VectorVault::new_node('primary', init_opts => { allows_streaming => 1, has_archiving => 1 });
$primary->start;

# Data: batch 1 (ids 1..300) before the base backup, batch 2 (301..400) after it, then every
# 7th row deleted, then the restore point, then batch 3 (401..450): 401..412 sit at distance 1
# from query 0..11, so they become the first answer of every query.
my $vecs = VectorVault::int_vectors(450, $dim, 4040);
my $queries = VectorVault::int_vectors(12, $dim, 777);
my %vec_of = map { ($_ + 1) => $vecs->[$_] } 0 .. 449;
for my $i (0 .. 11)
{
	my @v = @{ $queries->[$i] };
	$v[0] += 1;
	$vec_of{ 401 + $i } = \@v;
}

$primary->safe_psql($db, q{
CREATE EXTENSION vector_vault;
SELECT vault.create_vault('arch');
CREATE TABLE items (id int PRIMARY KEY, body etext, embedding evector(16));
});
my $set_vault = "SET vector_vault.vault = 'arch';\n";
$primary->safe_psql($db, $set_vault . VectorVault::insert_sql('items', \%vec_of, [ 1 .. 300 ], 'batch1 row'));
$primary->safe_psql($db,
	'CREATE INDEX items_embedding_idx ON items USING vault_hnsw (embedding evector_l2_ops) WITH (m = 16, ef_construction = 64)');

# The state a restore must reproduce: row count, md5 over every row's plaintext, searches.
my $md5_sql = "SELECT count(*) || ' ' || md5(string_agg(id || '|' || body::text || '|' || embedding::text, ';' ORDER BY id)) FROM items";
sub state_of
{
	my ($node) = @_;
	return {
		rows => $node->safe_psql($db, $set_vault . $md5_sql),
		search => VectorVault::search_lists($node, $db, $queries, vault => 'arch'),
	};
}
sub same_state
{
	my ($node, $want, $what) = @_;
	my $got = state_of($node);
	is($got->{rows}, $want->{rows}, "$what: row count and decrypted contents equal the primary's");
	is_deeply($got->{search}, $want->{search}, "$what: the 12 index searches return the primary's ordered id lists")
	  or diag(explain($got->{search}), explain($want->{search}));
	my ($ok, $report) = VectorVault::hnsw_verify($node, $db, 'items_embedding_idx');
	ok($ok, "$what: hnsw_verify reports every check ok") or diag($report);
	return;
}

$primary->backup('base');

$primary->safe_psql($db, $set_vault . VectorVault::insert_sql('items', \%vec_of, [ 301 .. 350 ], 'batch2 row'));
$primary->safe_psql($db, $set_vault . VectorVault::insert_sql('items', \%vec_of, [ 351 .. 400 ], 'batch2 row'));
$primary->safe_psql($db, 'DELETE FROM items WHERE id % 7 = 0');
$primary->safe_psql($db, 'VACUUM items');
my $at_rp = state_of($primary);
like($at_rp->{rows}, qr/^\d+ [0-9a-f]{32}$/, 'state before the restore point recorded (count and md5)');
is((split / /, $at_rp->{rows})[0], 400 - int(400 / 7), 'before the restore point: batches 1 and 2 minus every 7th row');
is(scalar(grep { scalar(split /,/) == 10 } @{ $at_rp->{search} }), 12,
	'before the restore point: every search returns 10 rows');
my $explain = $primary->safe_psql($db, $set_vault . "SET enable_seqscan = off;\n"
	  . "EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY embedding <-> '" . VectorVault::vector_text($queries->[0]) . "' LIMIT 10");
like($explain, qr/Index Scan using items_embedding_idx/, 'searches (sequential scans off) use the vault_hnsw index') or diag($explain);

$primary->safe_psql($db, "SELECT pg_create_restore_point('before_batch3')");
$primary->safe_psql($db, $set_vault . VectorVault::insert_sql('items', \%vec_of, [ 401 .. 450 ], 'batch3 row'));
my $at_end = state_of($primary);
is(scalar(grep { $at_end->{search}[$_] =~ /^(\d+),/ && $1 == 401 + $_ } 0 .. 11), 12,
	'batch 3 changes every answer: query i now finds row 401+i first');
my $last_seg = VectorVault::archive_wal($primary, $db);
note("archived up to $last_seg");

# --- full restore with a copy of the current keyring ---------------------------------------------

my $log_offset;

my $keyring_copy = $primary->basedir . '/keyring_copy';
VectorVault::copy_dir($primary->{vv_keyring}, $keyring_copy);
my $key_copy = $primary->basedir . '/master_copy.key';
VectorVault::write_bytes($key_copy, VectorVault::read_bytes($primary->{vv_keyfile}));
my $full = VectorVault::restored_node('restore_full', $primary, 'base', keyring => $keyring_copy,
	keyfile => $key_copy);
$log_offset = -s $full->logfile // 0;
$full->start;
ok(VectorVault::wait_promoted($full, $db), 'full restore: recovery from the archive ends');
like(VectorVault::log_since($full, $log_offset), qr/restored log file "[0-9A-F]{24}" from archive/,
	'full restore: WAL was restored from the archive');
same_state($full, $at_end, 'full restore (base backup + all archived WAL)');
is($full->safe_psql($db, 'SHOW vector_vault.keyring_dir'), $keyring_copy, 'full restore: it uses the keyring copy');

# The restored node takes new rows and finds them through its index.
my $new_vec = VectorVault::int_vectors(1, $dim, 9999)->[0];
$vec_of{1001} = $new_vec;
$full->safe_psql($db, $set_vault . VectorVault::insert_sql('items', \%vec_of, [1001], 'after restore'));
is(VectorVault::search_lists($full, $db, [$new_vec], vault => 'arch', k => 1)->[0], '1001',
	'full restore: a row inserted after the restore is found first by a search for its vector');
$full->stop;

# --- point-in-time recovery to the restore point, same keyring directory ----------------------------

my $pitr = VectorVault::restored_node('restore_pitr', $primary, 'base',
	target => "recovery_target_name = 'before_batch3'");
$log_offset = -s $pitr->logfile // 0;
$pitr->start;
ok(VectorVault::wait_promoted($pitr, $db), 'PITR: recovery ends');
like(VectorVault::log_since($pitr, $log_offset), qr/recovery stopping at restore point "before_batch3"/,
	'PITR: recovery stopped at the named restore point');
is($pitr->safe_psql($db, 'SELECT count(*) FROM items WHERE id > 400'), '0', 'PITR: no row of batch 3 exists');
same_state($pitr, $at_rp, 'PITR to the restore point');
$pitr->stop;

# --- the same backup without the keyring ---------------------------------------------------------------

my $nokeys = VectorVault::restored_node('restore_nokeys', $primary, 'base',
	keyring => $primary->basedir . '/empty_keyring');
$nokeys->start;
ok(VectorVault::wait_promoted($nokeys, $db), 'restore with an empty keyring: recovery ends');
my ($state, $msg) = VectorVault::sql_error($nokeys, $db, 'SELECT body::text FROM items LIMIT 1');
is($state, '22V02', 'restore with an empty keyring: reading fails with 22V02');
like($msg, qr/not in the keyring/, '... because the key is not in the keyring');
$nokeys->stop;

$primary->stop;
done_testing();
