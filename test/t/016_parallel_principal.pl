# 016_parallel_principal.pl — parallel plans decrypt, as exactly the leader's principal
# (security round 2, B1).
#
# On c9ba3cb every parallel plan that decrypted failed ("cannot update SecondarySnapshot during
# a parallel operation": the vault cache loader took GetLatestSnapshot() in the worker), and
# the worker knew nothing of the leader's API-key login. Now the loader reads with a snapshot
# workers may take, and the leader hands its key principal to its workers through shared memory
# (src/auth/session_guard.cpp). Plans are forced parallel with the leader not participating, so
# every decryption happens in a worker; each query checks EXPLAIN ANALYZE for launched workers.
#
#   - role principal: exact KNN (ORDER BY <-> LIMIT 10), a count of decrypted text and RLS
#     (vault.protect) in parallel equal the serial results;
#   - API-key principal whose role could read two vaults but whose key reads one: the workers
#     see only the key's vault through RLS and refuse to decrypt the other vault's values (42501),
#     exactly like the serial plan; after vault.logout the workers act as the role again;
#   - a revocation committed while the session stays logged in reaches the workers' next query.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;

my $db = 'postgres';
my $pw = 'par-password-0001';
my $node = VectorVault::new_node('par');
$node->append_conf('postgresql.conf', q{
max_worker_processes = 16
max_parallel_workers = 8
max_parallel_workers_per_gather = 2
});
$node->start;

my $rows = 400;
$node->safe_psql($db, qq{
CREATE EXTENSION vector_vault;
SELECT vault.set_key_password('$pw');
CREATE ROLE par_owner;
CREATE ROLE par_app LOGIN;
GRANT EXECUTE ON FUNCTION vault.create_vault(text) TO par_owner;
GRANT CREATE ON SCHEMA public TO par_owner;
SET ROLE par_owner;
SELECT vault.set_key_password('$pw');
SELECT vault.create_vault('par_a');
SELECT vault.create_vault('par_b');
SELECT vault.grant('par_a', 'par_app', 'read');
SELECT vault.grant('par_b', 'par_app', 'read');
CREATE TABLE items (id int PRIMARY KEY, body etext, embedding evector(3));
CREATE TABLE prot (id int PRIMARY KEY, body etext, embedding evector(3));
GRANT SELECT ON items, prot TO par_app;
RESET ROLE;
});
# Rows alternate between the two vaults; each insert statement is its own top-level statement.
my $sql = '';
for my $i (1 .. $rows)
{
	my $v = $i % 2 ? 'par_a' : 'par_b';
	$sql .= "SET vector_vault.vault = '$v';\n";
	$sql .= "INSERT INTO items VALUES ($i, 'PAR-SECRET-$i', '[$i," . ($i % 7) . "," . ($i % 13) . "]');\n";
	$sql .= "INSERT INTO prot VALUES ($i, 'PAR-SECRET-$i', '[$i," . ($i % 7) . "," . ($i % 13) . "]');\n";
}
$node->safe_psql($db, "SET ROLE par_owner;\n$sql SELECT vault.protect('prot'); ANALYZE items; ANALYZE prot;");
my $key = $node->safe_psql($db, qq{SET ROLE par_owner;
SELECT vault.create_api_key('$pw', '{"par_a": "read"}', 'par a only')});
$node->safe_psql($db, qq{GRANT par_owner TO par_app});    # the key owner's rights: both vaults

my $force = q{SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0; SET parallel_leader_participation = off;
SET max_parallel_workers_per_gather = 2;};
my $serial = q{SET max_parallel_workers_per_gather = 0;};

# Runs $q (as role par_owner, or after a login) with parallel workers or serially.
sub run
{
	my ($q, $mode, $login) = @_;
	my $pre = "SET ROLE par_owner;\nSET vector_vault.vault = 'par_a';\n";
	$pre .= "SELECT vault.login('$login') IS NULL;\n" if $login;
	my ($ret, $out, $err) = $node->psql($db,
		$pre . ($mode eq 'parallel' ? $force : $serial) . "\n$q", on_error_stop => 0);
	$out =~ s/^[tf]\n// if $login;
	return ($out, $err);
}

# True when EXPLAIN ANALYZE of $q shows launched workers.
sub workers_launched
{
	my ($q, $login) = @_;
	my ($out) = run("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) $q", 'parallel', $login);
	return $out =~ /Workers Launched: [1-9]/ ? 1 : 0;
}

my $knn = q{SELECT id FROM items ORDER BY embedding <-> '[100.3,3.1,5.2]' LIMIT 10};    # no two rows tie
my $count = q{SELECT count(*) FROM items WHERE body::text LIKE 'PAR-SECRET-%'};
my $rls = q{SELECT count(*), min(id), max(id) FROM prot WHERE length(body::text) > 0};

ok(workers_launched($knn), 'the exact KNN plan runs in parallel workers');
my ($par, $perr) = run($knn, 'parallel');
my ($ser) = run($knn, 'serial');
is($perr, '', 'role principal: parallel exact KNN raises no error') or diag($perr);
is($par, $ser, 'role principal: parallel exact KNN returns the serial top 10');
like($par, qr/^\d+(\n\d+){9}$/, 'role principal: ten rows');
($par, $perr) = run($count, 'parallel');
is($par, $rows, 'role principal: workers decrypt every row of both vaults') or diag($perr);
($par, $perr) = run($rls, 'parallel');
($ser) = run($rls, 'serial');
is($par, $ser, 'role principal: RLS (vault.protect) in workers equals the serial plan') or diag($perr);

# The key reads par_a only, although its owner role reads both.
ok(workers_launched($rls, $key), 'logged in with the key: the plan runs in parallel workers');
($par, $perr) = run($rls, 'parallel', $key);
($ser) = run($rls, 'serial', $key);
is($par, $ser, 'key principal: parallel RLS result equals the serial one') or diag($perr);
is($par, ($rows / 2) . '|1|' . ($rows - 1), "key principal: the workers see only par_a's rows");
my $b_id = $node->safe_psql($db, "SET ROLE par_owner; SELECT vault.vault_id('par_b')");
my $decrypt_b = "SELECT count(*) FROM items WHERE vault.vault_of(body) = $b_id AND body::text <> ''";
ok(workers_launched("SELECT count(*) FROM items WHERE vault.vault_of(body) = $b_id"), 'control: that scan is parallel');
($par, $perr) = run($decrypt_b, 'parallel', $key);
like($perr, qr/permission denied to [\w ]+ in vault "par_b"/,
	"key principal: a worker refuses to decrypt the other vault's value") or diag("out=$par err=$perr");
like($perr, qr/parallel worker/, '... and the refusal came from a parallel worker');
($par, $perr) = run($decrypt_b, 'parallel');
is($par, $rows / 2, 'control: the role itself decrypts that vault in workers') or diag($perr);

# A revocation committed while the key session stays open reaches the workers' next query.
my $bg = $node->background_psql($db, on_error_stop => 0);
$bg->query_safe("SET ROLE par_owner");
$bg->query_safe("SET vector_vault.vault = 'par_a'");
$bg->query_safe("SELECT vault.login('$key')");
$bg->query_safe($force);
my $before = $bg->query_safe($rls);
is($before, ($rows / 2) . '|1|' . ($rows - 1), 'live key session reads par_a in workers');
my $key_id = (split /_/, $key)[1];
$node->safe_psql($db, "SET ROLE par_owner; SELECT vault.revoke_api_key('$pw', '$key_id')");
my ($after, $err_after) = ('', '');
eval { $after = $bg->query($rls); };
$err_after = $bg->{stderr} // '';
isnt($after, $before, 'after the revocation the live session no longer reads par_a rows');
$bg->quit;

$node->stop;
done_testing();
