# 082_nonce_budget_slots.pl — issue 14, "Nonce budget stops counting": any number of key versions
# over the cluster's life is counted.
#
# Before the fix the shared table of seal counts had 1,024 slots that were never freed: once one
# vault admin had created (and sealed under) that many key versions, seals under every later
# version of every vault went uncounted (vault.seal_count stayed 0, no warning, no refusal).
#
# Vault "churn" gets 2,100 key versions, more than the table's 2,048 slots, with exactly one seal
# under each (so slots are certainly evicted and taken again); then:
# - vault.seal_count is exactly 1 for every one of the 2,100 versions (an eviction saves the exact
#   count and a version that comes back continues from it: nothing lost, nothing inflated);
# - a second vault created afterwards counts its 5 seals exactly;
# - after a restart every version's count is still at least 1 (the durable files: an upper bound,
#   never below the truth);
# - drop_vault(churn) removes every one of its key and count files, and the other vault goes on
#   counting.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;

my $db = 'postgres';
my $versions = 2100;
my $node = VectorVault::new_node('budget');
$node->start;
$node->safe_psql($db, q{
CREATE EXTENSION vector_vault;
CREATE TABLE t (id int, body etext);
SELECT vault.create_vault('churn');
});

my $sql = '';
for my $v (1 .. $versions)
{
	$sql .= "SET vector_vault.vault = 'churn';\nINSERT INTO t VALUES ($v, 'v$v');\n";
	$sql .= "SELECT vault.rotate_key('churn');\n" if $v < $versions;
}
$node->safe_psql($db, $sql);
is($node->safe_psql($db, "SELECT key_version FROM vault._vaults WHERE name = 'churn'"), $versions,
	"vault churn has $versions key versions");
is($node->safe_psql($db, "SELECT count(DISTINCT vault.key_version_of(body)) FROM t"), $versions,
	'... each of which sealed one value');

my $off_sql = "SELECT count(*) FROM generate_series(1, $versions) v WHERE vault.seal_count('churn', v) %s";
is($node->safe_psql($db, sprintf($off_sql, '<> 1')), '0',
	"seal_count is exactly 1 for every one of the $versions versions (evicted slots saved and restored exactly)");
is($node->safe_psql($db, "SELECT vault.seal_count('churn', $versions)"), '1',
	'the latest version\'s single seal is counted');

$node->safe_psql($db, q{
SELECT vault.create_vault('other');
SET vector_vault.vault = 'other';
INSERT INTO t SELECT g, 'o' || g FROM generate_series(1, 5) g;
});
is($node->safe_psql($db, "SELECT vault.seal_count('other', 1)"), '5',
	'a vault created after the churn counts its 5 seals');

$node->restart;
is($node->safe_psql($db, sprintf($off_sql, '< 1')), '0',
	'after a restart every version\'s count is still at least 1 (durable upper bound)');
ok($node->safe_psql($db, "SELECT vault.seal_count('other', 1)") >= 5,
	'after a restart the other vault\'s count is at least 5');

my $hex = sprintf('%016x', $node->safe_psql($db, "SELECT vault_id FROM vault._vaults WHERE name = 'churn'"));
ok(scalar(grep { /^vault-$hex-v\d+\.count$/ } VectorVault::keyring_files($node)) >= 1, 'churn has count files in the keyring');
$node->safe_psql($db, "SELECT vault.drop_vault('churn')");
is(scalar(grep { /^vault-$hex-/ } VectorVault::keyring_files($node)), 0,
	'drop_vault(churn) removed every one of its key and count files');
my $before = $node->safe_psql($db, "SELECT vault.seal_count('other', 1)");
$node->safe_psql($db, "SET vector_vault.vault = 'other'; INSERT INTO t VALUES (99, 'o99')");
is($node->safe_psql($db, "SELECT vault.seal_count('other', 1)"), $before + 1,
	'the other vault goes on counting after the drop');

$node->stop;
done_testing();
