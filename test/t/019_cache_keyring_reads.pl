# 019_cache_keyring_reads.pl — loading the index cache reads the keyring directory a bounded
# number of times, whatever the number of vaults.
#
# Before the fix, every element's "is its key still there" was a stat of a keyring file and every
# vault's "has it any keys" a full listing of the keyring directory, so the first query after a
# restart over 1,000 vaults spent a second in readdir. The probe: strace attached to the backend
# that runs the first search after a restart, counting directory listings (getdents64) and the
# keyring files it opens or stats. Positive control: the same trace sees the per-vault work the
# load must do (one data key unwrapped per vault it decrypts), so a probe that saw nothing
# cannot pass.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use VectorVault;

my $db = 'postgres';
my $nvaults = 60;
my $node = VectorVault::new_node('keyring_reads');
$node->append_conf('postgresql.conf', "vector_vault.cache_representation = 'sq8'\n");
$node->start;
$node->safe_psql($db, 'CREATE EXTENSION vector_vault');
$node->safe_psql($db, 'CREATE TABLE items (id int PRIMARY KEY, v int, embedding evector(4))');
my $sql = '';
for my $v (1 .. $nvaults)
{
	$sql .= "SELECT vault.create_vault('kr_$v');\nSET vector_vault.vault = 'kr_$v';\n";
	$sql .= "INSERT INTO items VALUES "
	  . join(',', map { my $id = $v * 10 + $_; "($id, $v, '[" . ($v * 10) . ",$_,1,2]')" } 0 .. 2) . ";\n";
}
$node->safe_psql($db, $sql);
$node->safe_psql($db, 'CREATE INDEX ON items USING vault_hnsw (embedding evector_l2_ops)');
$node->restart;

my $s = VectorVault::bg_session($node, $db, "SET vector_vault.vault = 'kr_7'");
my ($pid) = VectorVault::bg_query($s, 'SELECT pg_backend_pid()');
$pid =~ s/\s+//g;
my $trace = $node->basedir . '/strace.out';
my ($out, $err) = ('', '');
my $st = IPC::Run::start(
	[ 'strace', '-f', '-qq', '-e', 'trace=getdents64,openat,newfstatat,stat,lstat,access', '-o', $trace,
		'-p', $pid ],
	'>', \$out, '2>', \$err);
# strace prints nothing until it is attached; give it a moment.
sleep 1;
my ($rows, $qerr) = VectorVault::bg_query($s,
	"SELECT string_agg(id::text, ',' ORDER BY embedding <-> '[70,1,1,2]'::evector) FROM "
	  . "(SELECT id, embedding FROM items ORDER BY embedding <-> '[70,1,1,2]'::evector LIMIT 3) t");
sleep 1;
kill 'INT', $st->{KIDS}[0]{PID} if $st->{KIDS} && $st->{KIDS}[0];
eval { $st->finish; };
$s->quit;

SKIP:
{
	skip 'strace could not attach to the backend here', 4
	  if !-s $trace || slurp_file($trace) =~ /Operation not permitted/;
	my $log = slurp_file($trace);
	my $listings = () = $log =~ /getdents64\(/g;
	my $keyring = $node->{vv_keyring};
	my $entry_opens = () = $log =~ /openat\([^\n]*\Q$keyring\E\/[^\n"]*"/g;
	my $entry_stats = () = $log =~ /(?:newfstatat|stat|lstat|access)\([^\n]*\Q$keyring\E\/[^"\n]+"/g;
	like($rows, qr/^7[012],7[012],7[012]$/, 'the first search after the restart returns the vault rows')
	  or diag($qerr);
	# positive control: the load unwraps one data key per vault whose vectors it decrypts (the
	# sq8 training samples every vault here), each by opening its keyring file
	cmp_ok($entry_opens, '>=', $nvaults / 2,
		"the trace sees the per-vault keyring entries the load opens ($entry_opens)");
	cmp_ok($listings, '<=', 12, "keyring listings during the load: $listings (one snapshot, not one per vault)");
	cmp_ok($entry_stats, '<=', $nvaults,
		"keyring entries stat'ed during the load: $entry_stats (not one per element)");
}

$node->stop;
done_testing();
