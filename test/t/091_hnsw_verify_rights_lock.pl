# 091_hnsw_verify_rights_lock.pl — vault.hnsw_verify (issue 14, "Smaller"):
#   - needs SELECT on the index's table or its ownership: a role granted EXECUTE on hnsw_verify
#     but neither is refused (42501; on c9ba3cb it read the vault ids and per-vault counts),
#     SELECT or ownership is enough;
#   - does not hold the index writers' lock while it checks: with a verify stopped by gdb in the
#     middle of its run (at keys::DataKey, while it decrypts elements), an INSERT into the table
#     completes within 5 s (on c9ba3cb it waited for the whole verify and hit statement_timeout);
#     the verify, released, still reports every check ok and counts the new row (it notices the
#     concurrent change and runs again).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use VectorVault;

my $db = 'postgres';
my $node = VectorVault::new_node('verify');
$node->start;
my $tmp = PostgreSQL::Test::Utils::tempdir;

my $vecs = VectorVault::int_vectors(201, 8, 7171);
$node->safe_psql($db, q{
CREATE EXTENSION vector_vault;
CREATE ROLE eve LOGIN; CREATE ROLE reader LOGIN; CREATE ROLE tabowner LOGIN;
SELECT vault.create_vault('v');
CREATE TABLE docs (id int PRIMARY KEY, embedding evector(8));
}
	  . "SET vector_vault.vault = 'v';\n"
	  . 'INSERT INTO docs VALUES '
	  . join(',', map { "($_, '" . VectorVault::vector_text($vecs->[$_ - 1]) . "')" } 1 .. 200) . ";\n"
	  . q{CREATE INDEX docs_idx ON docs USING vault_hnsw (embedding evector_l2_ops);
GRANT SELECT ON docs TO reader;
GRANT EXECUTE ON FUNCTION vault.hnsw_verify(regclass) TO eve, reader, tabowner;
});
my $verify = q{SELECT "check", ok, detail FROM vault.hnsw_verify('docs_idx')};

# --- privileges -----------------------------------------------------------------------------------

my ($state, $msg) = VectorVault::sql_error($node, $db, "SET ROLE eve; $verify");
is($state, '42501', 'a role without SELECT on the table cannot verify its index');
like($msg, qr/permission denied for table docs/, '... with Postgres\' own message');
($state, $msg) = VectorVault::sql_error($node, $db, "SET ROLE reader; $verify");
is($state, '', 'a role with SELECT on the table can verify') or diag($msg);
$node->safe_psql($db, 'ALTER TABLE docs OWNER TO tabowner; GRANT SELECT ON docs TO reader');
$node->safe_psql($db, 'REVOKE ALL ON docs FROM tabowner');
($state, $msg) = VectorVault::sql_error($node, $db, "SET ROLE tabowner; $verify");
is($state, '', 'the table\'s owner can verify (even after revoking its own SELECT)') or diag($msg);
$node->safe_psql($db, 'ALTER TABLE docs OWNER TO CURRENT_USER');

# --- the writers' lock is not held for the run ------------------------------------------------------

# Starts a psql session whose input we feed; returns [harness, \in, \out, backend pid].
sub open_session
{
	my ($in, $out, $err) = ('', '', '');
	my $h = IPC::Run::start([ 'psql', '-X', '-At', '-d', $node->connstr($db) ], '<', \$in, '>', \$out, '2>', \$err);
	$in .= "SELECT pg_backend_pid();\n";
	my $deadline = time() + 30;
	while ($out !~ /^(\d+)$/m && time() < $deadline)
	{
		$h->pump_nb;
		select(undef, undef, undef, 0.02);
	}
	die "no backend pid: $err" unless $out =~ /^(\d+)$/m;
	return [ $h, \$in, \$out, $1 ];
}

SKIP:
{
	skip 'gdb is not installed', 5 unless system('gdb --version >/dev/null 2>&1') == 0;
	my $s = open_session();
	skip 'gdb cannot attach to a backend (ptrace not permitted)', 5 unless VectorVault::gdb_can_attach($s->[3]);
	my $dir = "$tmp/gdb_verify";
	mkdir $dir;
	my $g = VectorVault::gdb_pause($s->[3], $dir, ['vector_vault::keys::DataKey']);
	${ $s->[2] } = '';
	${ $s->[1] } .= "$verify;\n";
	$s->[0]->pump_nb;
	my $stopped = $g->{attached} && VectorVault::gdb_stopped($g);
	ok($stopped, 'the verify stopped in the middle of its run') or diag(${ $g->{out} } . ${ $g->{err} });
	($state, $msg) = VectorVault::sql_error($node, $db,
		"SET statement_timeout = '5s'; SET vector_vault.vault = 'v'; INSERT INTO docs VALUES (201, '"
		  . VectorVault::vector_text($vecs->[200]) . "')");
	is($state, '', 'an INSERT completes while the verify is stopped (no writers\' lock held)') or diag($msg);
	VectorVault::gdb_release($g, 'detach');
	my $deadline = time() + 60;
	while (${ $s->[2] } !~ /^vault\|/m && time() < $deadline)
	{
		$s->[0]->pump_nb;
		select(undef, undef, undef, 0.05);
	}
	my $report = ${ $s->[2] };
	like($report, qr/^vault\|t\|vault [0-9a-f]+: 201 live, 201 reachable/m,
		'the released verify counts the concurrently inserted row') or diag($report);
	unlike($report, qr/\|f\|/, '... and reports every check ok') or diag($report);
	${ $s->[1] } .= "\\q\n";
	$s->[0]->finish;
	ok(1, 'the verify session ended');
}

$node->stop;
done_testing();
