# 002_citus_backup.pl — backup and restore of a whole vector_vault + Citus cluster (issue 10):
# pg_basebackup of every node plus a copy of every node's keyring (which is outside PGDATA and in
# no base backup), the cluster stopped, every node restored on its old port from its own backup
# and keyring copy, and the same distributed queries give the same answers. docs/citus.md
# "Backups" describes the procedure this follows.
#
# Negative control: a restored worker whose keyring copy is missing cannot decrypt or search
# its shards (22V02), so the keyring copy is what carries the keys, not the base backup.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;

my $db = 'postgres';
my %init = (init_opts => { allows_streaming => 1 });    # pg_basebackup needs replication access
my ($coord, @workers) = VectorVault::citus_cluster(%init);
my @nodes = ($coord, @workers);

$coord->safe_psql($db, q{
SELECT vault.create_vault('b1');
SELECT vault.create_vault('b2');
CREATE TABLE items (tenant text NOT NULL, id int NOT NULL, body etext, embedding evector(3),
                    PRIMARY KEY (tenant, id));
SELECT create_distributed_table('items', 'tenant', shard_count => 4);
CREATE INDEX ON items USING vault_hnsw (embedding evector_l2_ops);});
my $ins = '';
for my $t (qw(b1 b2))
{
	$ins .= "SET vector_vault.vault = '$t';\n";
	$ins .= "INSERT INTO items SELECT '$t', i, 'BK-$t-' || i, "
	  . "('[' || (i * 7) % 31 || ',' || (i * 11) % 37 || ',' || (i * 13) % 41 || ']')::text::evector "
	  . "FROM generate_series(1, 200) i;\n";
}
# text -> evector goes through the input function (seals under the selected vault)
$ins =~ s/::text::evector/::evector/g;
$coord->safe_psql($db, $ins);

my $queries = q{SET vector_vault.vault = 'b1';
SELECT count(*), count(*) FILTER (WHERE body::text LIKE 'BK-%') FROM items;
SELECT string_agg(tenant || id, ',') FROM (SELECT tenant, id FROM items
  ORDER BY embedding <-> '[5,5,5]', tenant, id LIMIT 10) s;
SELECT body FROM items WHERE tenant = 'b2' AND id = 77;};
my $before = $coord->safe_psql($db, $queries);
like($before, qr/^400\|400\n.+\nBK-b2-77$/s, 'cluster answers before the backup');

# Back up every node (pg_basebackup) and copy its keyring; then the cluster is lost.
my %keyring_copy;
for my $n (@nodes)
{
	$n->backup('bk');
	$keyring_copy{ $n->name } = $n->backup_dir . '/keyring-copy';
	system('cp', '-a', $n->{vv_keyring}, $keyring_copy{ $n->name }) == 0
	  or die "keyring copy failed";
	chmod 0700, $keyring_copy{ $n->name };
}
$_->stop for @nodes;

# Restore each node from its own backup and keyring copy, on its old port (pg_dist_node names
# the workers by host and port).
sub restore
{
	my ($orig, $keyring) = @_;
	my $r = PostgreSQL::Test::Cluster->new('restored_' . $orig->name, port => $orig->port);
	$r->init_from_backup($orig, 'bk');
	$r->append_conf('postgresql.conf', "vector_vault.keyring_dir = '$keyring'\n");
	$r->start;
	return $r;
}
my $empty = PostgreSQL::Test::Utils::tempdir();
chmod 0700, $empty;
# Negative control first: the workers restored without their keyring copies.
my $rc = restore($coord, $keyring_copy{ $coord->name });
my @rw = map { restore($_, $empty) } @workers;
my ($state) = VectorVault::sql_error($rc, $db, $queries);
is($state, '22V02', 'workers restored without their keyring copies cannot decrypt their shards (22V02)');
$_->stop for @rw;
@rw = map {
	my $w = PostgreSQL::Test::Cluster->new('restored2_' . $_->name, port => $_->port);
	$w->init_from_backup($_, 'bk');
	$w->append_conf('postgresql.conf', "vector_vault.keyring_dir = '$keyring_copy{ $_->name }'\n");
	$w->start;
	$w
} @workers;

is($rc->safe_psql($db, $queries), $before, 'the restored cluster gives the same answers');
is($rc->safe_psql($db, q{SELECT count(*) FROM citus_get_active_worker_nodes()}), '2',
	'the restored coordinator sees both restored workers');
# Writes and catalog changes work after the restore.
$rc->safe_psql($db, q{SELECT vault.create_vault('b3'); SET vector_vault.vault = 'b3';
INSERT INTO items VALUES ('b3', 1, 'AFTER-RESTORE', '[1,2,3]');});
is($rc->safe_psql($db, q{SELECT body FROM items WHERE tenant = 'b3'}), 'AFTER-RESTORE',
	'a vault created after the restore reaches the restored workers');

done_testing();
