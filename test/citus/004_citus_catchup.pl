# 004_citus_catchup.pl — a worker that was away while the catalog changed (issue 10, item a).
#
# Policy (docs/citus.md, "A worker that was away"):
#   - a worker that is down but still active in Citus' metadata makes a drop or a rotation fail as
#     a whole (two-phase commit): nothing is shredded or rotated anywhere;
#   - a worker the operator disabled (citus_disable_node, Citus' own way to run without a node) is
#     skipped: the drop completes on every other node, vault.citus_pending_shreds() names the
#     disabled node as still holding the dropped vault's key, and when the node is activated again
#     the coordinator pushes the catalog to it before its next distributed statement reaches it:
#     the node tombstones the vault, shreds the key on its disk, installs the new key version, and
#     refuses the dropped vault's rows, directly and through the coordinator.
# Positive controls: right after citus_activate_node (before a distributed statement) the key is
# still on the returning node's disk, so it is the catch-up that shreds it; the other vaults'
# rows still decrypt on that node.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;

my $db = 'postgres';

my ($coord, @workers) = VectorVault::citus_cluster();
my ($w1, $w2) = @workers;
my $w2port = $w2->port;

$coord->safe_psql($db, q{
CREATE ROLE vv_owner LOGIN;
CREATE ROLE vv_reader LOGIN;
GRANT EXECUTE ON FUNCTION vault.create_vault(text) TO vv_owner;
GRANT CREATE ON SCHEMA public TO vv_owner;
});
$coord->safe_psql($db, q{SET ROLE vv_owner;
SELECT vault.create_vault('a'); SELECT vault.create_vault('b'); SELECT vault.create_vault('c');
SELECT vault.grant('a', 'vv_reader', 'read'); SELECT vault.grant('b', 'vv_reader', 'read');
SELECT vault.grant('c', 'vv_reader', 'read');});
my %vid = map { split /\|/ } split /\n/,
	$coord->safe_psql($db, q{SELECT name, vault_id FROM vault._vaults});

# Two placements per shard (one on each worker), so the cluster keeps serving with one disabled.
$coord->safe_psql($db, q{SET ROLE vv_owner; SET citus.shard_replication_factor = 2;
CREATE TABLE docs (tenant text NOT NULL, id int NOT NULL, body etext, embedding evector(3),
                   PRIMARY KEY (tenant, id));
SELECT create_distributed_table('docs', 'tenant', shard_count => 2);
GRANT SELECT ON docs TO vv_reader;});
for my $t (qw(a b c))
{
	$coord->safe_psql($db, qq{SET ROLE vv_owner; SET vector_vault.vault = '$t';
INSERT INTO docs SELECT '$t', i, 'SECRET-$t-' || i, ('[' || i || ',1,2]')::evector
FROM generate_series(1, 20) i;});
}

my $gen_sql = q{SELECT generation FROM vault._citus_applied};
my $coord_gen = q{SELECT max(generation) FROM vault._citus_nodes};
is($w2->safe_psql($db, $gen_sql), $coord->safe_psql($db, $coord_gen),
	'worker 2 holds the newest catalog generation');
is($coord->safe_psql($db, 'SELECT count(*) FROM vault.citus_pending_shreds()'), '0',
	'nothing pending before anything happened');
my $afile = VectorVault::key_file_name($vid{a}, 1);
my $bfile2 = VectorVault::key_file_name($vid{b}, 2);
ok(-f "$w2->{vv_keyring}/$afile", "worker 2 holds a's key");

# --- a worker down, still active: drop and rotation fail as a whole ---------------------------
$w2->stop;
my ($state) = VectorVault::sql_error($coord, $db, q{SET ROLE vv_owner; SELECT vault.drop_vault('a')});
isnt($state, '', "drop with an active worker down is refused ($state)");
($state) = VectorVault::sql_error($coord, $db, q{SET ROLE vv_owner; SELECT vault.rotate_key('b')});
isnt($state, '', "rotation with an active worker down is refused ($state)");
ok(-f "$coord->{vv_keyring}/$afile" && -f "$w1->{vv_keyring}/$afile",
	"a's key intact on the nodes that are up");
is($coord->safe_psql($db, q{SELECT string_agg(name || ':' || state || ':' || key_version, ',' ORDER BY name)
	FROM vault._vaults}), 'a:active:1,b:active:1,c:active:1', 'nothing dropped or rotated on the coordinator');

# --- the operator disables it: drop and rotation complete, the worker owes the shred ----------
$coord->safe_psql($db, "SELECT citus_disable_node('127.0.0.1', $w2port, synchronous := true)");
$coord->safe_psql($db, q{SET ROLE vv_owner; SELECT vault.drop_vault('a'); SELECT vault.rotate_key('b');});
ok(!-f "$coord->{vv_keyring}/$afile" && !-f "$w1->{vv_keyring}/$afile",
	"with worker 2 disabled the drop shreds a's key on the coordinator and worker 1");
ok(-f "$w1->{vv_keyring}/$bfile2", "worker 1 has b's version 2");
my $pending = $coord->safe_psql($db,
	q{SELECT nodeport || ' ' || vault_name || ' ' || key_version || ' ' || reason FROM vault.citus_pending_shreds()});
is($pending, "$w2port a 0 node unreachable; vault dropped after its last sync",
	'pending shreds: the disabled, unreachable worker 2 may still hold a');
is($coord->safe_psql($db, q{SET ROLE vv_reader; SELECT count(*) FROM docs WHERE tenant = 'c' AND body::text LIKE 'SECRET-c-%'}),
	'20', 'the cluster keeps serving c through worker 1');

# Envelopes of a's and b's values, as the coordinator stores them (taken before anything is
# decrypted anywhere): decrypting them directly on worker 2 shows what that node still serves.
my $env_sql = q{SET vector_vault.ciphertext_io = on; SELECT body FROM docs WHERE tenant = '%s' AND id = 1};
my $env_a = $coord->safe_psql($db, sprintf($env_sql, 'a'));
my $env_b = $coord->safe_psql($db, sprintf($env_sql, 'b'));
like($env_a, qr/^vve1:/, "a's value as an envelope");
my $decrypt = sub {
	my ($node, $env) = @_;
	return VectorVault::sql_error($node, $db,
		qq{SET ROLE vv_reader; SET vector_vault.ciphertext_io = on; SELECT ('$env'::etext)::text});
};

# --- it comes back, still disabled: the report reads its disk --------------------------------
$w2->start;
ok(-f "$w2->{vv_keyring}/$afile", "worker 2 came back with a's key on its disk");
$pending = $coord->safe_psql($db,
	q{SELECT nodeport || ' ' || vault_name || ' ' || key_version || ' ' || reason FROM vault.citus_pending_shreds()});
is($pending, "$w2port a 1 dropped vault key still on disk",
	"pending shreds: worker 2 reachable, a's version 1 found on its disk");
is($w2->safe_psql($db, qq{SELECT state FROM vault._vaults WHERE vault_id = $vid{a}}), 'active',
	"worker 2 still believes a is active (it missed the drop)");
my ($st, $msg, $err, $out) = $decrypt->($w2, $env_a);
is("$st|$out", '|SECRET-a-1',
	'positive control: while disabled and not caught up, worker 2 still decrypts a (what pending_shreds reports)');

# --- activated again: the coordinator catches it up before its next distributed statement ------
$coord->safe_psql($db, "SELECT citus_activate_node('127.0.0.1', $w2port)");
ok(-f "$w2->{vv_keyring}/$afile",
	"positive control: right after citus_activate_node worker 2 still has a's key (Citus did not shred it)");
($st) = VectorVault::sql_error($coord, $db,
	q{SET ROLE vv_reader; BEGIN READ ONLY; SELECT count(*) FROM docs; COMMIT;});
is($st, '55000', 'a read-only transaction cannot catch worker 2 up, so its distributed statement is refused');
ok(-f "$w2->{vv_keyring}/$afile", "... and a's key is still on worker 2's disk");
$coord->safe_psql($db, q{SET ROLE vv_reader; SELECT count(*) FROM docs});
ok(!-f "$w2->{vv_keyring}/$afile", "after the coordinator's next distributed statement: a's key shredded on worker 2");
is($w2->safe_psql($db, qq{SELECT state FROM vault._vaults WHERE vault_id = $vid{a}}), 'dropped',
	'worker 2: a is a tombstone');
is($w2->safe_psql($db, qq{SELECT key_version FROM vault._vaults WHERE vault_id = $vid{b}}), '2',
	'worker 2: b rotated to version 2');
ok(-f "$w2->{vv_keyring}/$bfile2", "worker 2: b's version 2 installed");
is($w2->safe_psql($db, $gen_sql), $coord->safe_psql($db, $coord_gen), 'worker 2 holds the newest generation');
is($w2->safe_psql($db, 'SELECT count(*) FROM vault._citus_pending_shreds'), '0', 'worker 2 owes no shred');
is($coord->safe_psql($db, 'SELECT count(*) FROM vault.citus_pending_shreds()'), '0',
	'vault.citus_pending_shreds() is empty: a is gone everywhere');

# Directly on worker 2: a's value is refused; b's values (old and new key version) decrypt.
($st, $msg) = $decrypt->($w2, $env_a);
is($st, '22V02', "directly on worker 2 a's value no longer decrypts");
like($msg, qr/dropped/, "... because a has been dropped ($msg)");
$coord->safe_psql($db, q{SET ROLE vv_owner; SET vector_vault.vault = 'b';
INSERT INTO docs VALUES ('b', 100, 'AFTER-ROTATION', '[1,1,1]');});
my $env_b2 = $coord->safe_psql($db, q{SET vector_vault.ciphertext_io = on; SELECT body FROM docs WHERE tenant = 'b' AND id = 100});
(undef, undef, undef, $out) = $decrypt->($w2, $env_b);
is($out, 'SECRET-b-1', "directly on worker 2 b's version-1 value decrypts (positive control)");
(undef, undef, undef, $out) = $decrypt->($w2, $env_b2);
is($out, 'AFTER-ROTATION', "directly on worker 2 b's version-2 value decrypts (the rotation arrived)");
($st) = VectorVault::sql_error($coord, $db,
	q{SET ROLE vv_owner; SELECT body::text FROM docs WHERE tenant = 'a' AND id = 1});
isnt($st, '', "through the coordinator a's rows no longer decrypt ($st)");

# A worker added after the vaults existed gets the catalog at the next distributed statement
# (no vault.citus_sync() needed): remove worker 2's metadata record and add it back.
$coord->safe_psql($db, "UPDATE vault._citus_nodes SET generation = 0 WHERE nodeport = $w2port");
is($coord->safe_psql($db, q{SELECT count(*) FROM docs}), '61', 'a distributed statement');
cmp_ok($coord->safe_psql($db, "SELECT generation FROM vault._citus_nodes WHERE nodeport = $w2port"), '>', 0,
	'a node recorded as behind is caught up by the next distributed statement');
is($w2->safe_psql($db, $gen_sql), $coord->safe_psql($db, $coord_gen), 'and holds the newest generation again');

# Only superusers may ask.
($st) = VectorVault::sql_error($coord, $db, q{SET ROLE vv_owner; SELECT * FROM vault.citus_pending_shreds()});
is($st, '42501', 'vault.citus_pending_shreds() is for superusers');
($st) = VectorVault::sql_error($w1, $db, q{SET ROLE vv_owner; SELECT vault._citus_held_keys()});
is($st, '42501', 'vault._citus_held_keys() is for superusers');

done_testing();
