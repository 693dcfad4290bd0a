# 071_audit_writer_starvation.pl — when the access log writer cannot start, successful logins are
# refused rather than lost, and the writer starts as soon as a slot is free.
#
# Security round 3 (issue 14), "writer starvation": on c9ba3cb a parallel query holding the free
# max_worker_processes slots kept the writer from starting (a writer that never started counted
# as alive for 10 s), 4,300 denials filled the queue and the next successful login was lost.
# Here a parallel query holds every free background worker slot while
#   - a role without rights is denied a vault 4,300 times (identical denials: merged, so they
#     take a handful of queue slots; on c9ba3cb they took 4,096 and the rest were dropped);
#   - a CONNECT-only role fails 3,500 logins with made-up key ids (distinct events) until the
#     part of the queue that failures may use is full;
#   - an application logs in with a real key 1,100 times in a row: the logins that find room
#     succeed, the rest are refused with 53000 and do not log in (on c9ba3cb all 1,100 "succeeded"
#     and those beyond the queue were recorded nowhere);
#   - the server log says that the writer could not start.
# Then the parallel query ends, one more login starts the writer, and every successful login
# (and no refused one) is in vault._access_log.
use strict;
use warnings;
use Compress::Zlib qw(crc32);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use VectorVault;

my $db = 'postgres';
my $pw = 'starve-password-001';
my $node = VectorVault::new_node('audit_starve');
$node->append_conf('postgresql.conf', qq{
max_worker_processes = 6
max_parallel_workers = 6
max_parallel_workers_per_gather = 6
parallel_leader_participation = off
parallel_setup_cost = 0
parallel_tuple_cost = 0
});
$node->start;
$node->safe_psql($db, qq{
CREATE EXTENSION vector_vault;
CREATE ROLE st_owner LOGIN;
CREATE ROLE st_app LOGIN;
CREATE ROLE st_mallory LOGIN;
GRANT EXECUTE ON FUNCTION vault.create_vault(text) TO st_owner;
SET ROLE st_owner;
SELECT vault.create_vault('st_v');
SELECT vault.set_key_password('$pw');
RESET ROLE;
-- 600 pages of one row each: a parallel scan that sleeps 0.2 s per row keeps every worker busy.
CREATE TABLE st_hold (id int, pad text) WITH (fillfactor = 10, parallel_workers = 6);
INSERT INTO st_hold SELECT i, repeat('x', 1000) FROM generate_series(1, 600) i;
ANALYZE st_hold;
});
my $key = VectorVault::create_api_key($node, $db, 'st_owner', $pw, '{"st_v": "read"}');
my $key_id = VectorVault::key_id($key);

# A well-formed key (valid CRC-32 checksum) for any id and secret.
sub forge
{
	my ($id, $secret) = @_;
	my $body = "vv_${id}_$secret";
	return sprintf('%s_%08x', $body, crc32($body));
}

# Waits up to $seconds for $sql to return 't' (an error counts as not yet).
sub wait_for
{
	my ($sql, $seconds) = @_;
	for (1 .. $seconds * 10)
	{
		my ($rc, $out) = $node->psql($db, $sql);
		return 1 if $rc == 0 && $out eq 't';
		usleep(100_000);
	}
	return 0;
}

# The output of $sql, or '' when it fails (on c9ba3cb vault.access_log_stats() does not exist:
# the assertions on it fail there, the others still run).
sub query
{
	my ($sql) = @_;
	my ($rc, $out) = $node->psql($db, $sql);
	return $rc == 0 ? $out : '';
}

# Waits until no event waits in the queue (without vault.access_log_stats(): until no writer runs).
sub wait_queue_empty
{
	my ($seconds) = @_;
	return wait_for(q{SELECT coalesce(sum(waiting), 0) = 0 FROM vault.access_log_stats()}, $seconds)
	  if query(q{SELECT to_regprocedure('vault.access_log_stats()') IS NOT NULL}) eq 't';
	return wait_for(q{SELECT count(*) = 0 FROM pg_stat_activity
		WHERE backend_type = 'vector_vault access log writer'}, $seconds);
}

# Let the writer that the setup started finish and exit (it leaves after ~0.5 s idle).
ok(wait_for(q{SELECT count(*) = 0 FROM pg_stat_activity
	WHERE backend_type = 'vector_vault access log writer'}, 10), 'no access log writer runs');

# The parallel query takes every free background worker slot.
my $log_offset = -s $node->logfile;
my $hold = $node->background_psql($db);
$hold->query_until(qr/holding/, q{\echo holding
SELECT count(*) FROM st_hold WHERE pg_sleep(0.2) IS NOT NULL;
});
ok(wait_for(q{SELECT count(*) >= 3 FROM pg_stat_activity WHERE backend_type = 'parallel worker'}, 10),
	'the parallel query runs with its workers');
# 4,300 identical denials (one top-level statement each).
my ($rc, $out, $err) = $node->psql($db,
	"SET vector_vault.vault = 'st_v';\n" . ("SELECT 'x'::etext;\n" x 4300),
	connstr => $node->connstr($db) . ' user=st_mallory', on_error_stop => 0);
my $denied = () = $err =~ /ERROR:  permission denied to /g;
is($denied, 4300, '4,300 denials');
my $waiting = query(q{SELECT sum(waiting) FROM vault.access_log_stats() WHERE action = 'denied'});
ok($waiting ne '' && $waiting < 100, "the 4,300 identical denials wait in $waiting queue slots");

# 3,500 failed logins with made-up key ids (vault.login is refused in nested code: top level).
my $sql = join('', map { "SELECT vault.login('" . forge(sprintf('%016x', $_), sprintf('%040x', $_)) . "');\n" } 1 .. 3500);
($rc, $out, $err) = $node->psql($db, $sql, connstr => $node->connstr($db) . ' user=st_mallory',
	on_error_stop => 0);
my $failed = () = $err =~ /ERROR:  (?:API key authentication failed|too many failed vault logins)/g;
is($failed, 3500, '3,500 failed logins');

# 1,100 logins with the real key, one session.
($rc, $out, $err) = $node->psql($db, "\\set VERBOSITY verbose\n" . ("SELECT vault.login('$key');\n" x 1100),
	connstr => $node->connstr($db) . ' user=st_app', on_error_stop => 0);
my $ok = () = $out =~ /^st_v$/mg;
my $refused = () = $err =~ /ERROR:  53000: vault login refused: the access log cannot record it/g;
my $other = join("\n", grep { /ERROR/ && !/53000/ } split /\n/, $err);
is($other, '', 'no login failed for another reason');
cmp_ok($refused, '>', 0, "logins that could not be recorded were refused ($refused of 1100)");
is($ok + $refused, 1100, "the others succeeded ($ok)");
($rc, $out, $err) = $node->psql($db,
	"\\set VERBOSITY verbose\nSELECT vault.login('$key');\nSELECT vault.principal();",
	connstr => $node->connstr($db) . ' user=st_app', on_error_stop => 0);
like($err, qr/ERROR:  53000: vault login refused: the access log cannot record it/,
	'a refused login says why (53000)');
is($out, 'role st_app', 'after a refused login the session still acts as its role');
ok($hold->{run}->pumpable, 'the parallel query still held the worker slots meanwhile');
my $stats = query(q{SELECT refused FROM vault.access_log_stats()
	WHERE action = 'login' AND result = 'ok'});
is($stats, $refused + 1, 'vault.access_log_stats() counts the refused logins');

# The parallel query ends; the next event starts the writer.
$node->safe_psql($db, q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity
	WHERE query LIKE 'SELECT count(*) FROM st_hold%' AND backend_type = 'client backend'});
# The cancelled psql may already have gone (it stops at the error): its quit then meets a closed
# pipe, which is fine.
eval { $hold->quit; 1 } or note("the holding psql had already ended: $@");
ok(wait_for(q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'parallel worker'}, 10),
	'the parallel query ended');
is($node->safe_psql($db, "SELECT vault.login('$key') IS NOT NULL", connstr => $node->connstr($db) . ' user=st_app'),
	't', 'a login after the parallel query succeeds');
ok(wait_queue_empty(30),
	'the writer started and emptied the queue');
is($node->safe_psql($db, qq{SELECT count(*) FROM vault._access_log
	WHERE role = 'st_app' AND action = 'login' AND result = 'ok' AND key_id = '$key_id'}), $ok + 1,
	'every successful login, and no refused one, is in the access log');
is(query(q{SELECT sum(attempts) FROM vault._access_log WHERE role = 'st_mallory' AND action = 'denied'})
	  || query(q{SELECT count(*) FROM vault._access_log WHERE role = 'st_mallory' AND action = 'denied'}), '4300', 'all 4,300 denials are in the access log');
my $log = VectorVault::log_since($node, $log_offset);
like($log, qr/WARNING:  vector_vault: could not start the access log writer/,
	'the server log says that the writer could not start');

done_testing();
