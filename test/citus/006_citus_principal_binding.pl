# 006_citus_principal_binding.pl — what Citus 13.2.2 itself lets an ordinary role do, which is why
# vector_vault's bound principal tokens need a guard (issue 10, "The principal travels";
# docs/citus.md, "The bound principal token"). The first review proposed binding a token to
# (1) the worker backend's Citus distributed transaction id, (2) the global pid (gpid) in the
# application_name of its startup packet and (3) a TLS client certificate only the coordinator
# holds. This test builds exactly that deployment (a throwaway CA, a server certificate for every
# node, the coordinator's client certificate in citus.node_conninfo, workers that accept TCP only
# with a certificate of that CA) with vector_vault.citus_coordinator_cn left empty (the default:
# guard off, tokens refused), and shows that an ordinary role on the coordinator gets all three
# for a worker connection that runs its own SQL:
#   - SET application_name = 'citus_internal gpid=<victim's gpid>' on the coordinator makes Citus
#     take the victim's gpid as the session's own (citus_backend_gpid()), and every connection
#     Citus then opens to a worker carries the victim's gpid in its startup packet (the worker's
#     "connection authorized" log line);
#   - those connections present the coordinator's certificate (pg_stat_ssl.client_dn on the
#     worker), because Citus opens them, not the attacker;
#   - run_command_on_workers, or a qual pushed down with a read outside BEGIN, runs the attacker's
#     SQL there, and assign_distributed_transaction_id (EXECUTE granted to PUBLIC) adopts the
#     victim's open distributed transaction id.
# So the three checks alone would accept the victim's token replayed by another session of the
# same role: these are the positive controls for the guard that 007 tests (with the setting on,
# the same SET and assign are refused). Also checked: tokens are refused on those very
# connections (28000), key sessions are refused reads, KNN, writes and COPY on distributed tables
# without the setting (0A000, message, hint), and a direct connection to a worker without the
# certificate is refused.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;

my $db = 'postgres';
my $pw = 'citus-binding-password-01';

my ($pki, $tls) = VectorVault::citus_pki();
# vector_vault.citus_coordinator_cn stays empty here (its default): the guard is off, as it is on
# every cluster that has not set it, and this is what Citus itself allows.
my ($coord, @workers) = VectorVault::citus_cluster(conf => $tls);
VectorVault::citus_workers_require_certificates(@workers);

$coord->safe_psql($db, q{
CREATE ROLE vv_owner LOGIN;
CREATE ROLE app LOGIN;
GRANT EXECUTE ON FUNCTION vault.create_vault(text) TO vv_owner;
GRANT CREATE ON SCHEMA public TO vv_owner;
});
$coord->safe_psql($db, qq{SET ROLE vv_owner; SELECT vault.set_key_password('$pw');});
$coord->safe_psql($db, q{SET ROLE vv_owner;
SELECT vault.create_vault('t1'); SELECT vault.create_vault('t2');
CREATE TABLE docs (tenant text NOT NULL, id int NOT NULL, body etext, embedding evector(3),
                   PRIMARY KEY (tenant, id));
SELECT create_distributed_table('docs', 'tenant', shard_count => 4);
GRANT SELECT ON docs TO app;
SET vector_vault.vault = 't1';
INSERT INTO docs SELECT 't1', i, 'one-' || i, ('[' || i || ',1,1]')::evector FROM generate_series(1, 5) i;
SET vector_vault.vault = 't2';
INSERT INTO docs SELECT 't2', i, 'two-' || i, ('[' || i || ',2,2]')::evector FROM generate_series(1, 5) i;
SELECT vault.grant('t1', 'app', 'read'); SELECT vault.grant('t2', 'app', 'read');});
is($coord->safe_psql($db, 'SET ROLE app; SELECT count(*) FROM docs'), '10',
	'the cluster works with the coordinator certificate in citus.node_conninfo (app reads t1 and t2)');

# A direct connection to a worker without a certificate is refused by pg_hba; with the
# coordinator's certificate it is accepted (which is why only the coordinator may hold it).
my $wconn = 'host=127.0.0.1 port=' . $workers[0]->port . " dbname=$db user=app";
my ($rc, $out, $err) = VectorVault::psql_conn("$wconn sslmode=require", 'SELECT 1');
isnt($rc, 0, 'a direct worker connection without a client certificate is refused');
($rc, $out, $err) = VectorVault::psql_conn("$wconn sslmode=require sslcert=$pki/coord.crt sslkey=$pki/coord.key", 'SELECT 1');
is($out, '1', 'positive control: with the coordinator certificate the same connection is accepted');

# A certificate of the same CA with another subject is accepted by pg_hba as well (a worker would
# have to check the subject); tokens are refused on such a connection, as everywhere.
my $forged = 'vvpt1.' . ('0' x 16) . '.9999999999.' . ('0' x 64) . '.' . ('0' x 64);
{
	my ($o, $e) = ('', '');
	my @cmd = ('psql', '-XAtq', '-d', "$wconn sslmode=require sslcert=$pki/other.crt sslkey=$pki/other.key",
		'-c', 'SELECT client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
		'-c', "SELECT vault._citus_as_key('$forged')");
	IPC::Run::run(\@cmd, '>', \$o, '2>', \$e);
	like($o, qr/CN=vv-other-client/, 'a direct worker connection with a non-coordinator certificate of the CA is accepted');
	like($e, qr/principal tokens are not accepted/, '... and a token is refused on it');
}

# --- the victim: a session of app inside a distributed transaction --------------------------------
my $victim = $coord->background_psql($db, on_error_stop => 0);
$victim->query_safe('SET ROLE app');
my $vgpid = $victim->query_safe('SELECT citus_backend_gpid()');
$victim->query_safe('BEGIN');
$victim->query_safe('SELECT count(*) FROM docs');
my ($vinit, $vnum, $vstamp) = split /\|/, $victim->query_safe(
	q{SELECT initiator_node_identifier || '|' || transaction_number || '|' || transaction_stamp
	  FROM get_current_transaction_id()});
cmp_ok($vnum, '>', 0, "the victim's transaction has a Citus distributed transaction id ($vnum)");

# --- the attacker: another session of the same role, not a superuser -------------------------
my $probe = qq{WITH a AS MATERIALIZED (
	SELECT assign_distributed_transaction_id($vinit, $vnum, '$vstamp')::text AS x)
SELECT (SELECT concat_ws(' ', a.x, t.transaction_number, pg_backend_pid(),
	(SELECT client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()))
	FROM get_current_transaction_id() t) FROM a};
my $attacker = $coord->background_psql($db, on_error_stop => 0);
$attacker->query_safe('SET ROLE app');
is($attacker->query_safe('SELECT rolsuper FROM pg_roles WHERE rolname = current_user'), 'f',
	'the attacker is an ordinary role');
my $agpid = $attacker->query_safe('SELECT citus_backend_gpid()');
isnt($agpid, $vgpid, "the attacker's own gpid differs from the victim's");

# (2) the gpid: a SET by the attacker makes Citus take the victim's gpid as its own.
$attacker->query_safe("SET application_name = 'citus_internal gpid=$vgpid'");
is($attacker->query_safe('SELECT citus_backend_gpid()'), $vgpid,
	"SET application_name = 'citus_internal gpid=<victim>' gives the attacker's session the victim's gpid");

# (1) and (3): Citus opens the attacker's run_command_on_workers connections; the attacker's SQL
# adopts the victim's transaction id there.
my $res = $attacker->query_safe(qq{SELECT string_agg(nodeport || ' ' || success || ' ' || result, E'\\n'
	ORDER BY nodeport) FROM run_command_on_workers(\$q\$$probe\$q\$)});
my @rows = split /\n/, $res;
is(scalar(@rows), 2, 'the probe ran on both workers');
for my $row (@rows)
{
	my ($port, $ok, $x, $num, $pid, $dn) = split / /, $row, 6;
	my ($w) = grep { $_->port == $port } @workers;
	is("$ok $num", "true $vnum", "worker $port: the attacker's backend now holds the victim's distributed transaction id");
	like($dn // '', qr/CN=vv-coordinator/, "worker $port: ... and was authenticated with the coordinator's certificate");
	my $log = slurp_file($w->logfile);
	like($log, qr/\[$pid\][^\n]*connection authorized: user=app database=$db application_name=citus_internal gpid=$vgpid\b/,
		"worker $port: ... and its startup packet carried the victim's gpid (log line of pid $pid)");
}

# The same from a qual Citus pushes down with a router query (a read outside BEGIN runs on the
# worker without a remote transaction block, so the worker backend has no id of its own yet).
# With the internal application name Citus refuses distributed queries in the session ("nested
# execution") unless citus.allow_nested_distributed_execution is on, a setting any role may SET.
$attacker->query_safe('SET citus.allow_nested_distributed_execution = on');
$res = $attacker->query_safe(qq{SELECT (SELECT concat_ws(' ', t.transaction_number, pg_backend_pid())
	FROM get_current_transaction_id() t WHERE d.id > 0)
	FROM docs d WHERE tenant = 't1' AND assign_distributed_transaction_id($vinit, $vnum, '$vstamp')::text = '' LIMIT 1});
my ($qnum, $qpid) = split / /, $res;
is($qnum, $vnum, "a pushed-down qual adopts the victim's distributed transaction id on the worker");
like(slurp_file($workers[0]->logfile) . slurp_file($workers[1]->logfile),
	qr/\[$qpid\][^\n]*connection authorized: user=app database=$db application_name=citus_internal gpid=$vgpid\b/,
	"... in a worker backend whose startup packet carried the victim's gpid");

# Positive control of the gpid path: before the SET, the attacker's connections carried its own gpid.
my $pre = $coord->background_psql($db, on_error_stop => 0);
$pre->query_safe('SET ROLE app');
my $pgpid = $pre->query_safe('SELECT citus_backend_gpid()');
my $ppid = $pre->query_safe(q{SELECT string_agg(result, ',') FROM run_command_on_workers('SELECT pg_backend_pid()')});
$pre->quit;
my ($pp) = split /,/, $ppid;
like(slurp_file($workers[0]->logfile) . slurp_file($workers[1]->logfile),
	qr/\[$pp\][^\n]*application_name=citus_internal gpid=$pgpid\b/,
	'positive control: without the SET, a session\'s worker connections carry its own gpid');

# Tokens stay refused, also on these connections (the feature is off).
$res = $attacker->query_safe(qq{SELECT string_agg(result, E'\\n') FROM run_command_on_workers(
	\$q\$SELECT vault._citus_as_key('$forged')\$q\$)});
like($res, qr/principal tokens are not accepted/, 'a token is refused on the attacker\'s worker connections');
$attacker->quit;
$victim->query_safe('COMMIT');
$victim->quit;

# --- key sessions stay refused on distributed tables (fail closed) -------------------------------
my $key = $coord->safe_psql($db, qq{SET ROLE vv_owner;
SELECT vault.create_api_key('$pw', '{"t1": "read"}', 'binding test t1 reader')});
like($key, qr/^vv_/, 'an API key that reads t1');
my @refused = (
	[ 'a read', q{SELECT count(*) FROM docs WHERE tenant = 't1'} ],
	[ 'a KNN search', q{SELECT id FROM docs ORDER BY embedding <-> '[1,1,1]' LIMIT 3} ],
	[ 'a write', q{INSERT INTO docs VALUES ('t1', 99, 'x', '[1,1,1]')} ],
	[ 'COPY', q{COPY docs FROM STDIN} ],
);
for my $r (@refused)
{
	my ($st, $msg, $e) = VectorVault::sql_error($coord, $db,
		"SET ROLE vv_owner; SET vector_vault.vault = 't1'; SELECT vault.login('$key');\n$r->[1];");
	is($st, '0A000', "key session: $r->[0] on a distributed table is refused (0A000)");
	like($msg, qr/not available to API-key sessions/, "... with the message");
	like($e, qr/HINT:\s+Query distributed tables as a role/, '... and a hint');
}
unlike(slurp_file($workers[0]->logfile) . slurp_file($workers[1]->logfile), qr/\Q$key\E/,
	'the API key never reached a worker');

done_testing();
