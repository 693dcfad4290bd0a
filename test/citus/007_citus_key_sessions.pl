# 007_citus_key_sessions.pl — API-key sessions read distributed tables with exactly the key's rights
# (issue 10, "The principal travels"), in the deployment docs/citus.md describes: every node has
# vector_vault.citus_coordinator_cn = 'vv-coordinator', presents that client certificate in
# citus.node_conninfo, and the workers accept TCP connections only with a certificate of the CA.
#   - a key session (connected as a role without vault grants) reads and searches (KNN through the
#     shards' vault_hnsw indexes) exactly what a role granted the same vault reads, and is refused a
#     vault outside the key; writes and COPY stay refused (0A000, message, hint);
#   - the victim's token (seen with citus.log_remote_commands) replayed by another session of the
#     same role is refused: in a pushed-down qual (outside and inside a transaction block, with and
#     without assign_distributed_transaction_id of the victim's id in the qual), through
#     run_command_on_workers (with and without the assign), after assign_distributed_transaction_id
#     on the coordinator, and after SET application_name to the victim's gpid (both refused);
#   - a direct worker connection: without a certificate (pg_hba), with another certificate of the
#     CA (token refused; a Citus application name refused at startup);
#   - a token from a finished transaction is refused, in the victim's own session too;
#   - revoking the key takes effect on the next statement;
#   - positive control: a client holding the coordinator's certificate and key, the victim's gpid and
#     transaction id (what only the coordinator can present) is accepted with the same token, so the
#     refusals above come from the checks, not from a token that never worked.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;

my $db = 'postgres';
my $pw = 'citus-key-session-pass-01';

my ($pki, $tls) = VectorVault::citus_pki();
my ($coord, @workers) = VectorVault::citus_cluster(conf => $tls . q{
vector_vault.citus_coordinator_cn = 'vv-coordinator'
enable_seqscan = off
});
VectorVault::citus_workers_require_certificates(@workers);

$coord->safe_psql($db, q{
CREATE ROLE vv_owner LOGIN;
CREATE ROLE app LOGIN;
CREATE ROLE r1 LOGIN;
GRANT EXECUTE ON FUNCTION vault.create_vault(text) TO vv_owner;
GRANT CREATE ON SCHEMA public TO vv_owner;
});
$coord->safe_psql($db, qq{SET ROLE vv_owner; SELECT vault.set_key_password('$pw');});
$coord->safe_psql($db, q{SET ROLE vv_owner;
SELECT vault.create_vault('t1'); SELECT vault.create_vault('t2');
CREATE TABLE docs (tenant text NOT NULL, id int NOT NULL, body etext, embedding evector(3),
                   PRIMARY KEY (tenant, id));
SELECT create_distributed_table('docs', 'tenant', shard_count => 4);
GRANT SELECT ON docs TO app, r1;
SET vector_vault.vault = 't1';
INSERT INTO docs SELECT 't1', i, 'one-' || i, ('[' || i || ',1,1]')::evector FROM generate_series(1, 8) i;
SET vector_vault.vault = 't2';
INSERT INTO docs SELECT 't2', i, 'two-' || i, ('[' || i || ',1,1]')::evector FROM generate_series(1, 8) i;
CREATE INDEX ON docs USING vault_hnsw (embedding evector_l2_ops);
SELECT vault.grant('t1', 'r1', 'read');});
my $key = $coord->safe_psql($db, qq{SET ROLE vv_owner;
SELECT vault.create_api_key('$pw', '{"t1": "read"}', 'citus key session t1')});
my ($key_id) = $key =~ /^vv_([0-9a-f]{16})_/;
ok($key_id, 'an API key that reads t1 (owned by vv_owner; app has no vault grants)');

# Direct connections to a worker: no certificate, another certificate of the CA.
my $wconn = 'host=127.0.0.1 port=' . $workers[0]->port . " dbname=$db user=app";
my ($rc, $out, $err) = VectorVault::psql_conn("$wconn sslmode=require", 'SELECT 1');
isnt($rc, 0, 'a direct worker connection without a client certificate is refused (pg_hba)');
($rc, $out, $err) = VectorVault::psql_conn(
	"$wconn sslmode=require sslcert=$pki/other.crt sslkey=$pki/other.key application_name='citus_internal gpid=10000000042'",
	'SELECT 1');
like($err, qr/FATAL:.*Citus application name is reserved for connections between Citus nodes/,
	'a Citus application name without the coordinator certificate is refused at startup');

# --- the key session reads exactly the key's vault ----------------------------------------------
# A query vector sealed under t1 (the owner's envelope), as 005 does.
my $qenv = $coord->safe_psql($db, q{SET ROLE vv_owner; SET vector_vault.vault = 't1'; SET vector_vault.ciphertext_io = on;
SELECT embedding FROM docs WHERE tenant = 't1' AND id = 3});
like($qenv, qr/^vve1:/, 'a query vector sealed under t1');
my $knn = qq{SET vector_vault.ciphertext_io = on; SELECT string_agg(id::text, ',') FROM
	(SELECT id FROM docs ORDER BY embedding <-> '$qenv'::evector LIMIT 4) s; RESET vector_vault.ciphertext_io};
my $plain = q{SELECT count(*) || ':' || string_agg(body::text, ',' ORDER BY id) FROM docs WHERE tenant = 't1'};
my $r1_knn = $coord->safe_psql($db, "SET ROLE r1; SET vector_vault.vault = 't1'; $knn");
my $r1_plain = $coord->safe_psql($db, "SET ROLE r1; $plain");
is($r1_plain, '8:one-1,one-2,one-3,one-4,one-5,one-6,one-7,one-8', 'r1 (granted t1) reads t1');
my $app_state = (VectorVault::sql_error($coord, $db, "SET ROLE app; $plain"))[0];
is($app_state, '42501', 'app itself may not decrypt t1 (the key is what grants it)');

my $victim = $coord->background_psql($db, on_error_stop => 0);
$victim->query_safe("SET ROLE app; SET vector_vault.vault = 't1'; SELECT vault.login('$key')");
my $vgpid = $victim->query_safe('SELECT citus_backend_gpid()');
is($victim->query_safe($plain), $r1_plain, 'key session: a plain read equals the t1 reader\'s');
is($victim->query_safe($knn), $r1_knn, "key session: a distributed KNN equals the t1 reader's ($r1_knn)");
$victim->{stderr} = '';
my $t2 = $victim->query(q{SELECT body::text FROM docs WHERE tenant = 't2' LIMIT 1});
ok($victim->{stderr} =~ /ERROR/ && ($t2 // '') !~ /two-/, 'key session: a vault outside the key is refused')
  or diag("stderr: $victim->{stderr}");
is($coord->safe_psql($db, q{SET ROLE vv_owner; SELECT body::text FROM docs WHERE tenant = 't2' AND id = 1}), 'two-1',
	'positive control: the owner reads t2');

# The victim's token, as another session of app could see it (the statement text on the workers).
$victim->{stderr} = '';
$victim->query_safe('SET citus.log_remote_commands = on; BEGIN');
$victim->query(q{SELECT count(*) FROM docs WHERE tenant = 't1'});
my ($token) = $victim->{stderr} =~ /_citus_as_key\('(vvpt1\.[^']+)'/;
ok($token, 'the victim\'s read carried a principal token to the worker');
$victim->query('SET citus.log_remote_commands = off');
$victim->{stderr} = '';
my ($vinit, $vnum, $vstamp) = split /\|/, $victim->query_safe(
	q{SELECT initiator_node_identifier || '|' || transaction_number || '|' || transaction_stamp
	  FROM get_current_transaction_id()});
cmp_ok($vnum, '>', 0, "the victim's transaction id ($vnum)");

# --- replays by another session of app, while the victim's transaction is open ------------------
my $attacker = $coord->background_psql($db, on_error_stop => 0);
$attacker->query_safe('SET ROLE app');
my $assign = "assign_distributed_transaction_id($vinit, $vnum, '$vstamp')";

# Runs a statement in the attacker's session; returns its stderr (empty when it succeeded) and
# stdout.
sub attempt
{
	my ($sql) = @_;
	$attacker->{stderr} = '';
	my $o = $attacker->query($sql);
	my $e = $attacker->{stderr};
	$attacker->query('ROLLBACK') if $e ne '';
	$attacker->{stderr} = '';
	return ($e, $o);
}

my @replays = (
	[ 'a pushed-down qual', qq{$plain AND vault._citus_as_key('$token')} ],
	[ 'a pushed-down qual in a transaction block',
		qq{BEGIN; $plain AND vault._citus_as_key('$token'); COMMIT} ],
	[ 'a pushed-down qual after assign_distributed_transaction_id in the qual',
		qq{$plain AND $assign IS NOT NULL AND vault._citus_as_key('$token')} ],
	[ 'the same in a transaction block',
		qq{BEGIN; $plain AND $assign IS NOT NULL AND vault._citus_as_key('$token'); COMMIT} ],
	[ 'run_command_on_workers',
		qq{SELECT string_agg(result, ' ') FROM run_command_on_workers(\$q\$SELECT vault._citus_as_key('$token')\$q\$)} ],
	[ 'run_command_on_workers with the assign',
		qq{SELECT string_agg(result, ' ') FROM run_command_on_workers(\$q\$SELECT $assign IS NOT NULL AND vault._citus_as_key('$token')\$q\$)} ],
);
for my $r (@replays)
{
	my ($e, $o) = attempt($r->[1]);
	unlike($o // '', qr/one-/, "replay through $r->[0]: no t1 plaintext");
	like("$e $o", qr/principal tokens are accepted only|invalid principal token|reserved for connections between Citus nodes|already been assigned/,
		"replay through $r->[0]: refused") or diag("stderr: $e\nstdout: $o");
}
# The replays reached the workers and were refused there (positive control of the path: the
# workers' logs hold the refusals of their own check).
my $wlog = slurp_file($workers[0]->logfile) . slurp_file($workers[1]->logfile);
like($wlog, qr/ERROR:  principal tokens are accepted only in a distributed transaction/,
	'the workers refused replays in their own check (worker log)');
like($wlog, qr/ERROR:  invalid principal token/, '... and refused the MAC of a replay in a transaction block');

# On the coordinator: adopting the victim's id, or its gpid, is refused.
my ($e) = attempt("SELECT $assign");
like($e, qr/reserved for connections between Citus nodes/,
	'assign_distributed_transaction_id on the coordinator is refused');
($e) = attempt("SET application_name = 'citus_internal gpid=$vgpid'");
like($e, qr/reserved for connections between Citus nodes/, 'SET application_name to the victim\'s gpid is refused');
isnt($attacker->query_safe('SELECT citus_backend_gpid()'), $vgpid, '... and the attacker keeps its own gpid');
($e) = attempt("SET application_name = 'citus_run_command gpid=$vgpid'");
like($e, qr/reserved for connections between Citus nodes/, '... also as citus_run_command');
($e) = attempt("SET application_name = 'an ordinary name'");
is($e, '', 'an ordinary application name is accepted');

# Directly on a worker with another certificate of the CA: a token is refused.
my $oconn = "$wconn sslmode=require sslcert=$pki/other.crt sslkey=$pki/other.key";
($rc, $out, $err) = VectorVault::psql_conn($oconn, 'BEGIN', "SELECT vault._citus_as_key('$token')");
like($err, qr/28000: principal tokens are accepted only/,
	'a direct worker connection with a non-coordinator certificate is refused a token');
($rc, $out, $err) = VectorVault::psql_conn($oconn, "SELECT $assign");
like($err, qr/42501: assign_distributed_transaction_id is reserved/, '... and may not adopt a transaction id');

# Positive control: what only the coordinator can present (its certificate and key, the victim's gpid
# at startup, the victim's transaction id in a block) makes the same token work.
my ($shard) = $coord->safe_psql($db, q{SELECT shard_name('docs'::regclass, shardid) || ' ' || nodeport FROM citus_shards
	WHERE table_name = 'docs'::regclass AND shardid = get_shard_id_for_distribution_column('docs', 't1')});
my ($sname, $sport) = split / /, $shard;
my $cconn = "host=127.0.0.1 port=$sport dbname=$db user=app sslmode=require sslcert=$pki/coord.crt sslkey=$pki/coord.key application_name='citus_internal gpid=$vgpid'";
($rc, $out, $err) = VectorVault::psql_conn($cconn, 'BEGIN', "SELECT $assign",
	"SET LOCAL vector_vault.ciphertext_io = off; SELECT count(*) FROM $sname WHERE vault._citus_as_key('$token') AND body::text LIKE 'one-%'", 'COMMIT');
like($out, qr/^8$/m, 'positive control: with the coordinator\'s certificate, gpid and transaction id the token is accepted')
  or diag($err);

$attacker->quit;
$victim->query_safe('COMMIT');

# --- a token from a finished transaction ---------------------------------------------------------
$victim->query_safe('SELECT vault.logout()');
$victim->{stderr} = '';
$victim->query(qq{BEGIN; $plain AND vault._citus_as_key('$token')});
like($victim->{stderr}, qr/invalid principal token/,
	'a token from a finished transaction is refused, even in the session that made it');
$victim->query('ROLLBACK');
$victim->{stderr} = '';
($rc, $out, $err) = VectorVault::psql_conn($cconn, 'BEGIN',
	"SELECT count(*) FROM $sname WHERE vault._citus_as_key('$token')", 'COMMIT');
like($err, qr/principal tokens are accepted only/, '... and without the transaction id it names');

# --- cached plans: a generic plan from another transaction carries a dead token ----------------
$victim->query_safe("SELECT vault.login('$key')");
$victim->query_safe(q{SET plan_cache_mode = force_generic_plan;
PREPARE q(text) AS SELECT count(*) FROM docs WHERE tenant = $1});
is($victim->query_safe(q{EXECUTE q('t1')}), '8', 'key session: a prepared read runs in the transaction that planned it');
$victim->{stderr} = '';
$victim->query(q{EXECUTE q('t1')});
like($victim->{stderr}, qr/not available to API-key sessions.*force_custom_plan/s,
	'... its generic plan is refused in a later transaction, with a hint to plan per execution');
$victim->{stderr} = '';
$victim->query_safe('SET plan_cache_mode = force_custom_plan');
is($victim->query_safe(q{EXECUTE q('t1')}), '8', '... and runs again with plan_cache_mode = force_custom_plan');
$victim->query_safe('DEALLOCATE q; RESET plan_cache_mode; SELECT vault.logout()');

# A LANGUAGE sql function in FROM may be inlined by the planner after the token was added, so
# its tables would reach the workers without one: such statements are refused (fail closed).
$coord->safe_psql($db, q{SET ROLE vv_owner;
CREATE FUNCTION t2_ids() RETURNS SETOF int LANGUAGE sql STABLE AS $$ SELECT id FROM docs WHERE tenant = 't2' $$;
CREATE FUNCTION one_row() RETURNS SETOF int LANGUAGE sql STABLE AS $$ SELECT 1 $$;
GRANT EXECUTE ON FUNCTION t2_ids(), one_row() TO app;});
$victim->query_safe("SELECT vault.login('$key')");
$victim->{stderr} = '';
my $srf = $victim->query(q{SELECT count(*) FROM docs WHERE tenant = 't1' AND id IN (SELECT * FROM t2_ids())});
ok($victim->{stderr} =~ /ERROR/ && ($srf // '') eq '',
	'key session: a SQL function in FROM reading a distributed table is refused (Citus refuses it too)')
  or diag($victim->{stderr});
$victim->{stderr} = '';
$srf = $victim->query(q{SELECT count(*) FROM docs, (SELECT * FROM one_row()) o WHERE tenant = 't1'});
like($victim->{stderr}, qr/LANGUAGE sql function in FROM is not available to API-key sessions/,
	'key session: any SQL function in FROM with a distributed table is refused by vector_vault');
$victim->{stderr} = '';
is($victim->query_safe(q{SELECT count(*) FROM docs WHERE tenant = 't1' AND id IN (SELECT id FROM docs WHERE tenant = 't2')}),
	'8', 'positive control: the same read with the subquery written out runs (the token reaches both levels)');
$victim->query_safe('SELECT vault.logout()');

# Roles keep using Citus normally with the guard on: run_command_on_workers, then a distributed
# read in a transaction block, in one session.
is($coord->safe_psql($db, q{SET ROLE r1; SELECT count(*) FROM run_command_on_workers('SELECT 1') WHERE success;
BEGIN; SELECT count(*) FROM docs WHERE tenant = 't1'; COMMIT;}), "2\n8",
	'a role session runs run_command_on_workers and a distributed transaction with the guard on');

# --- writes and COPY stay refused ----------------------------------------------------------------
$victim->query_safe("SELECT vault.login('$key')");
for my $w ([ 'a write', q{INSERT INTO docs VALUES ('t1', 99, 'x', '[1,1,1]')} ], [ 'COPY', q{COPY docs FROM STDIN} ])
{
	my ($st, $msg, $e2) = VectorVault::sql_error($coord, $db,
		"SET ROLE app; SET vector_vault.vault = 't1'; SELECT vault.login('$key');\n$w->[1];");
	is($st, '0A000', "key session: $w->[0] on a distributed table is refused (0A000)");
	like($msg, qr/not available to API-key sessions/, '... with the message');
	like($e2, qr/HINT:\s+API-key sessions may only read distributed tables/, '... and a hint');
}

# --- revocation takes effect on the next statement ------------------------------------------------
is($victim->query_safe($plain), $r1_plain, 'the key session reads before the revocation');
$coord->safe_psql($db, qq{SET ROLE vv_owner; SELECT vault.revoke_api_key('$pw', '$key_id')});
$victim->{stderr} = '';
my $after = $victim->query($plain);
unlike($after // '', qr/one-/, 'after revoke_api_key the key session\'s next statement reads nothing');
isnt($victim->{stderr}, '', '... it fails') or diag($after);
$victim->quit;
# On the worker too: the token that was accepted above (positive control) is refused now.
($rc, $out, $err) = VectorVault::psql_conn($cconn, 'BEGIN', "SELECT $assign",
	"SELECT count(*) FROM $sname WHERE vault._citus_as_key('$token')", 'COMMIT');
unlike($out, qr/^8$/m, 'after the revocation the worker refuses the token that it accepted before');
like($err, qr/28000: API key $key_id named by the principal token is not valid: it was revoked/,
	'... because the key was revoked (28000)') or diag($err);

unlike(slurp_file($workers[0]->logfile) . slurp_file($workers[1]->logfile), qr/\Q$key\E/,
	'the API key never reached a worker');

done_testing();
