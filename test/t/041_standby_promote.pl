# 041_standby_promote.pl — a streaming standby that shares the primary's keyring and master key
# serves the same vault_hnsw search results through inserts, deletes + VACUUM and a vault data key
# rotation, and keeps them when it is promoted after the primary is killed.
#
# Table items holds vault sb (ids 1..) and vault other (ids 10001..) rows, one vault_hnsw index.
# Two principals search: the superuser that owns both vaults (vault sb selected, so its searches
# walk both vaults) and a role `reader` with read access to sb only. After each phase on the
# primary the standby replays (waited for by LSN) and must give the same ordered id lists for 12
# queries per principal, the same row count and decrypted contents (md5), and hnsw_verify ok:
#   1. inserts into both vaults after the base backup (the index changes arrive by WAL);
#   2. DELETE of every 5th sb row + VACUUM: additionally no deleted id is returned by the
#      standby even when a search asks for every row (LIMIT 100000 returns exactly the live rows);
#   3. vault.rotate_key('sb') + inserts under version 2 + CALL vault.reencrypt + VACUUM +
#      vault.retire_key_version('sb', 1): the standby sees only version 2 values, the v1 keyring
#      file is gone, and a standby session opened before the rotation still searches and reads;
#   4. a last insert, then the primary is stopped 'immediate' and the standby promoted: results
#      unchanged, the promoted node accepts new rows (found first by a search for their own
#      vector) and its index verifies.
# The standby's log must not contain a PANIC or a FATAL from the startup process.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;

my $db = 'postgres';
my $dim = 16;
my $primary = VectorVault::new_node('primary', init_opts => { allows_streaming => 1 });
# autovacuum off: primary and standby are compared, so only the test's own VACUUMs may change the graph
$primary->append_conf('postgresql.conf', "max_connections = 20\nautovacuum = off\n");
$primary->start;

my $vecs = VectorVault::int_vectors(700, $dim, 4141);
my $queries = VectorVault::int_vectors(12, $dim, 4242);
my %vec_of;
$vec_of{ $_ + 1 } = $vecs->[$_] for 0 .. 549;            # sb: 1..550
$vec_of{ 10001 + $_ } = $vecs->[ 550 + $_ ] for 0 .. 149;    # other: 10001..10150

$primary->safe_psql($db, q{
CREATE EXTENSION vector_vault;
SELECT vault.create_vault('sb');
SELECT vault.create_vault('other');
CREATE ROLE reader LOGIN;
SELECT vault.grant('sb', 'reader', 'read');
CREATE TABLE items (id int PRIMARY KEY, body etext, embedding evector(16));
GRANT SELECT ON items TO reader;
});
sub insert_into
{
	my ($node, $vault, @ids) = @_;
	$node->safe_psql($db, "SET vector_vault.vault = '$vault';\n"
		  . VectorVault::insert_sql('items', \%vec_of, \@ids, "$vault row"));
	return;
}
insert_into($primary, 'sb', 1 .. 300);
insert_into($primary, 'other', 10001 .. 10100);
$primary->safe_psql($db,
	'CREATE INDEX items_embedding_idx ON items USING vault_hnsw (embedding evector_l2_ops) WITH (m = 16, ef_construction = 64)');

$primary->backup('b');
my $standby = VectorVault::restored_node('standby', $primary, 'b', streaming => 1);
$standby->append_conf('postgresql.conf', "max_connections = 20\n");
$standby->start;
is($standby->safe_psql($db, 'SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');
is($standby->safe_psql($db, 'SHOW vector_vault.keyring_dir'), $primary->{vv_keyring},
	'the standby uses the primary\'s keyring directory');

my $md5_sql = "SET vector_vault.vault = 'sb';\n"
  . "SELECT count(*) || ' ' || md5(string_agg(id || '|' || body::text || '|' || embedding::text, ';' ORDER BY id)) FROM items";
my @principals = ([ 'owner', vault => 'sb' ], [ 'reader', vault => 'sb', role => 'reader' ]);

# Everything a principal sees: searches per principal and the decrypted contents.
sub snapshot
{
	my ($node) = @_;
	my %s = (rows => $node->safe_psql($db, $md5_sql));
	$s{ $_->[0] } = VectorVault::search_lists($node, $db, $queries, @$_[ 1 .. $#$_ ]) for @principals;
	return \%s;
}

# Waits for the standby and compares it with the primary.
my $last;
sub compare
{
	my ($what) = @_;
	ok(VectorVault::wait_for_replay($primary, $standby), "$what: the standby replayed the primary's WAL");
	my $p = snapshot($primary);
	my $s = snapshot($standby);
	is($s->{rows}, $p->{rows}, "$what: standby has the primary's row count and decrypted contents");
	for my $who (map { $_->[0] } @principals)
	{
		is(scalar(grep { scalar(split /,/) == 10 } @{ $p->{$who} }), 12, "$what: $who: every primary search returns 10 rows");
		is_deeply($s->{$who}, $p->{$who}, "$what: $who: the standby's 12 ordered id lists equal the primary's")
		  or diag(explain($s->{$who}), explain($p->{$who}));
	}
	my ($ok, $report) = VectorVault::hnsw_verify($standby, $db, 'items_embedding_idx');
	ok($ok, "$what: hnsw_verify on the standby reports every check ok") or diag($report);
	$last = $p;
	return;
}

# The reader sees sb rows only; the owner's searches with sb selected also walk vault other.
my $first = snapshot($primary);
ok(!grep({ /\b1\d{4}\b/ } @{ $first->{reader} }), 'reader: searches return no row of vault other');
ok(scalar(grep { /\b1\d{4}\b/ } @{ $first->{owner} }) > 0, 'owner: searches return rows of both vaults');

# A standby session opened now, kept across the rotation.
my $old_session = $standby->background_psql($db);
$old_session->query_safe("SET vector_vault.vault = 'sb'; SET vector_vault.ef_search = 100; SET enable_seqscan = off");
my $q0 = VectorVault::vector_text($queries->[0]);
my $session_sql = "SELECT string_agg(id::text, ',') FROM (SELECT id FROM items ORDER BY embedding <-> '$q0' LIMIT 10) s";
is($old_session->query_safe($session_sql), $first->{owner}[0], 'a standby session searches like the primary');

# --- 1. inserts -------------------------------------------------------------------------------------

insert_into($primary, 'sb', 301 .. 350);
insert_into($primary, 'sb', 351 .. 400);
insert_into($primary, 'other', 10101 .. 10120);
compare('after inserts');

# --- 2. deletes and VACUUM --------------------------------------------------------------------------

$primary->safe_psql($db, 'DELETE FROM items WHERE id % 5 = 0 AND id <= 400');
$primary->safe_psql($db, 'VACUUM items');
compare('after DELETE + VACUUM');
my $live = $primary->safe_psql($db, 'SELECT count(*) FROM items');
my $all = $standby->safe_psql($db, qq{
SET vector_vault.vault = 'sb'; SET enable_seqscan = off; SET vector_vault.ef_search = 100;
SELECT count(*) || '|' || count(DISTINCT id) || '|' || count(*) FILTER (WHERE id % 5 = 0 AND id <= 400)
FROM (SELECT id FROM items ORDER BY embedding <-> '$q0' LIMIT 100000) s});
is($all, "$live|$live|0", "after DELETE + VACUUM: a standby search for every row returns the $live live rows once, no deleted one");

# --- 3. vault data key rotation -----------------------------------------------------------------------

my $sb_id = $primary->safe_psql($db, "SELECT vault_id FROM vault._vaults WHERE name = 'sb'");
my $v1_file = "$primary->{vv_keyring}/" . VectorVault::key_file_name($sb_id, 1);
is($primary->safe_psql($db, "SELECT vault.rotate_key('sb')"), '2', 'rotate_key(sb) makes version 2');
insert_into($primary, 'sb', 401 .. 420);
my ($rc, $out, $err) = $primary->psql($db, "CALL vault.reencrypt('sb', 50)");
is($rc, 0, 'CALL vault.reencrypt(sb) succeeds') or diag($err);
$primary->safe_psql($db, 'VACUUM items');
($rc, $out, $err) = $primary->psql($db, "SELECT vault.retire_key_version('sb', 1)");
is($rc, 0, 'retire_key_version(sb, 1) succeeds after reencrypt + VACUUM') or diag($err);
ok(!-f $v1_file, 'the v1 keyring file of sb is gone');
compare('after rotate_key + reencrypt + VACUUM + retire_key_version');
my $versions_sql = "SELECT string_agg(DISTINCT vault.key_version_of(body)::text || '/' || vault.key_version_of(embedding)::text, ',') FROM items WHERE id <= 1000";
is($standby->safe_psql($db, $versions_sql), '2/2', 'the standby holds only version 2 values of sb');
is($old_session->query_safe($session_sql), $last->{owner}[0],
	'the standby session opened before the rotation still searches like the primary');
is($old_session->query_safe("SELECT body::text FROM items WHERE id = 1"), 'sb row 1',
	'... and decrypts a re-encrypted row');
$old_session->quit;

# --- 4. failover ----------------------------------------------------------------------------------------

insert_into($primary, 'sb', 421 .. 450);
compare('before failover');
my $before = $last;
$primary->stop('immediate');
$standby->promote;
ok(VectorVault::wait_promoted($standby, $db), 'the standby was promoted');
my $after = snapshot($standby);
is($after->{rows}, $before->{rows}, 'promoted: row count and decrypted contents unchanged');
is_deeply($after->{$_}, $before->{$_}, "promoted: $_: the 12 ordered id lists are unchanged") for map { $_->[0] } @principals;
insert_into($standby, 'sb', 501 .. 520);
my @own = map { $vec_of{$_} } 501 .. 520;
my $found = VectorVault::search_lists($standby, $db, \@own, vault => 'sb', k => 1);
is(join(',', @$found), join(',', 501 .. 520), 'promoted: 20 new rows are each found first by a search for their vector');
is($standby->safe_psql($db, "SELECT DISTINCT vault.key_version_of(body) FROM items WHERE id BETWEEN 501 AND 520"), '2',
	'promoted: new rows use key version 2');
my ($ok, $report) = VectorVault::hnsw_verify($standby, $db, 'items_embedding_idx');
ok($ok, 'promoted: hnsw_verify reports every check ok') or diag($report);

my $log = PostgreSQL::Test::Utils::slurp_file($standby->logfile);
unlike($log, qr/PANIC:|FATAL:.*(startup|recovery)/, 'the standby logged no PANIC and no startup FATAL');
$standby->stop;
done_testing();
