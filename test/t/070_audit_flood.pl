# 070_audit_flood.pl — a flood of failed logins cannot push successful logins out of the access
# log, and whatever the queue drops is counted and announced.
#
# Security round 3 (issue 14), "queue overflow": on c9ba3cb a role with only CONNECT flooded
# malformed vault.login('x') calls from 4 connections; the 4,096-slot queue dropped thousands of
# events silently, successful logins made meanwhile among them. Here the writer is held (a
# superuser locks vault._access_log, as a slow disk would) so that the queue fills
# deterministically, and 4 connections of a CONNECT-only role send 1,000 malformed keys and
# 1,000 well-formed keys with made-up ids each (8,000 failed or blocked logins). Then a real key
# logs in 5 times. Afterwards
#   - the 5 successful logins are all in vault._access_log (on c9ba3cb the queue was full and
#     dropped them);
#   - the 4,000 malformed attempts from one client take fewer than 200 rows (identical failures
#     are merged while more than 64 events wait: attempts counts them; on c9ba3cb ~2,000);
#   - every failed attempt is accounted for: rows' attempts plus the drops counted by
#     vault.access_log_stats() are exactly 8,000, and the server log has all 8,000;
#   - the server log has one WARNING that the queue is dropping events; the flooding clients are
#     not told;
#   - vault.access_log_stats() is not executable by PUBLIC.
use strict;
use warnings;
use Compress::Zlib qw(crc32);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use VectorVault;

my $db = 'postgres';
my $pw = 'flood-password-0001';
my $per_conn = 1000;
my $node = VectorVault::new_node('audit_flood');
$node->start;
$node->safe_psql($db, qq{
CREATE EXTENSION vector_vault;
CREATE ROLE fl_owner LOGIN;
CREATE ROLE fl_app LOGIN;
CREATE ROLE fl_mallory LOGIN;
GRANT EXECUTE ON FUNCTION vault.create_vault(text) TO fl_owner;
SET ROLE fl_owner;
SELECT vault.create_vault('fl_v');
SELECT vault.set_key_password('$pw');
RESET ROLE;
});
my $key = VectorVault::create_api_key($node, $db, 'fl_owner', $pw, '{"fl_v": "read"}');
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

# Hold the writer: it blocks on its first INSERT until this transaction ends.
my $holder = $node->background_psql($db);
$holder->query_safe('BEGIN; LOCK TABLE vault._access_log IN SHARE MODE;');

my $log_offset = -s $node->logfile;
my @flooders;
for my $c (1 .. 4)
{
	my @keys = ('x') x $per_conn;
	push @keys, map { forge(sprintf('%04x%012x', $c, $_), sprintf('%040x', $_)) } 1 .. $per_conn;
	# One top-level statement per attempt: vault.login is refused in nested code (DO blocks).
	my $sql = join('', map { "SELECT vault.login('$_');\n" } @keys);
	my %h = (out => '', err => '');
	$h{run} = IPC::Run::start(
		[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=0', '-d', $node->connstr($db) . ' user=fl_mallory' ],
		'<', \$sql, '>', \$h{out}, '2>', \$h{err});
	push @flooders, \%h;
}
my $flood_ok = 1;
for my $h (@flooders)
{
	$h->{run}->finish;
	$flood_ok = 0 if $h->{run}->result != 0;
}
my $told = join('', map { $_->{err} } @flooders);
my $failed = () = $told =~ /ERROR:  (?:malformed API key|API key authentication failed|too many failed vault logins)/g;
ok($flood_ok && $failed == 8 * $per_conn, "4 connections sent 8,000 failing logins ($failed failed)")
  or diag(substr($told, 0, 2000));
unlike($told, qr/WARNING/, 'the flooding clients got no WARNING');

# The queue is full of failures now; the real key still logs in, 5 times.
my $logins = 0;
for (1 .. 5)
{
	my ($rc, $out, $err) = $node->psql($db, "SELECT vault.login('$key') IS NOT NULL",
		connstr => $node->connstr($db) . ' user=fl_app');
	$logins++ if $out eq 't';
}
is($logins, 5, 'the real key logged in 5 times during the flood');

my $stats = query(q{SELECT sum(dropped) FILTER (WHERE action = 'login' AND result <> 'ok'),
	sum(dropped) FILTER (WHERE result = 'ok'), sum(refused) FROM vault.access_log_stats()});
my ($dropped, $dropped_ok, $refused) = (split(/\|/, $stats), '', '', '');
ok($dropped ne '' && $dropped > 0, "the queue dropped failures ($dropped) and counted them");
is($dropped_ok, '0', 'no successful event was dropped');
is($refused, '0', 'no successful login was refused');

$holder->query_safe('COMMIT');
$holder->quit;
ok(wait_queue_empty(30),
	'the writer emptied the queue');

is($node->safe_psql($db, qq{SELECT count(*) FROM vault._access_log
	WHERE role = 'fl_app' AND action = 'login' AND result = 'ok' AND key_id = '$key_id'}), '5',
	'all 5 successful logins are in the access log');
my $rows = query(q{SELECT count(*) FROM vault._access_log WHERE role = 'fl_mallory' AND key_id IS NULL});
# Merging starts once 64 events wait: the first 64 (and the 64 after the writer took its first
# batch) have rows of their own; the rest merge into them.
cmp_ok($rows, '<', 200, "4,000 malformed attempts from one client take $rows rows");
my $accounted = query(q{SELECT sum(attempts) FROM vault._access_log
	WHERE role = 'fl_mallory' AND action = 'login'})
  || query(q{SELECT count(*) FROM vault._access_log WHERE role = 'fl_mallory' AND action = 'login'});
$accounted += query(q{SELECT sum(dropped) FROM vault.access_log_stats()
	WHERE action = 'login' AND result IN ('failed', 'blocked')}) || 0;
is($accounted, 8 * $per_conn, 'every failed login is a row, merged into one, or counted as dropped');

my $log = VectorVault::log_since($node, $log_offset);
my $in_log = () = $log =~ /vector_vault audit: action=login result=(?:failed|blocked) role=fl_mallory/g;
is($in_log, 8 * $per_conn, 'the server log has every failed login');
my $warnings = () = $log =~ /WARNING:  vector_vault: the access log queue is full; events are being dropped/g;
is($warnings, 1, 'one WARNING in the server log says that dropping started');

my ($rc, $out, $err) = $node->psql($db, 'SELECT * FROM vault.access_log_stats()',
	connstr => $node->connstr($db) . ' user=fl_mallory');
like($err, qr/permission denied/, 'vault.access_log_stats() is not for PUBLIC');

done_testing();
