# 072_audit_database_settings.pl — database and role settings cannot switch the access log off.
#
# Security round 3 (issue 14), "the audit trail can be silenced": on c9ba3cb a non-superuser
# database owner ran ALTER DATABASE db SET default_transaction_read_only = on and the access log
# writer (a background worker of that database, which applies the database's settings) failed
# every batch: logins went unrecorded while reads kept working. Here the owner of a database
# attaches every setting it may attach that could stop or redirect the writer (read-only
# default, statement and lock timeouts, serializable isolation, search_path, role, ...), and the
# superuser attaches role settings of the bootstrap superuser (the writer's identity) in that
# database. Then
#   - a successful login, a failed login and a denial of a session are all in vault._access_log
#     (on c9ba3cb none of them: the writer's INSERTs were refused in a read-only transaction);
#   - the writer logged no failure to write;
#   - a key change made meanwhile (written in its own transaction) is there too.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use VectorVault;

my $pw = 'settings-password-01';
my $node = VectorVault::new_node('audit_settings');
$node->start;
my $boot = $node->safe_psql('postgres', 'SELECT rolname FROM pg_roles WHERE oid = 10');

$node->safe_psql('postgres', q{
CREATE ROLE set_dbo LOGIN;
CREATE DATABASE set_db OWNER set_dbo;
});
my $db = 'set_db';
$node->safe_psql($db, qq{
CREATE EXTENSION vector_vault;
CREATE ROLE set_owner LOGIN;
CREATE ROLE set_app LOGIN;
GRANT EXECUTE ON FUNCTION vault.create_vault(text) TO set_owner;
SET ROLE set_owner;
SELECT vault.create_vault('set_v');
SELECT vault.set_key_password('$pw');
RESET ROLE;
});
my $key = VectorVault::create_api_key($node, $db, 'set_owner', $pw, '{"set_v": "read"}');
my $key_id = VectorVault::key_id($key);

# The database owner (not a superuser) attaches what it can to its database.
my %levers = (
	default_transaction_read_only => 'on',
	transaction_read_only => 'on',
	statement_timeout => '1',
	lock_timeout => '1',
	idle_in_transaction_session_timeout => '1',
	default_transaction_isolation => 'serializable',
	default_transaction_deferrable => 'on',
	search_path => 'set_dbo_schema',
	role => 'set_dbo',
	exit_on_error => 'on',
	work_mem => '64kB',
);
my @attached;
for my $name (sort keys %levers)
{
	my ($rc, $out, $err) = $node->psql($db, "ALTER DATABASE $db SET $name = '$levers{$name}'",
		connstr => $node->connstr($db)
		  . " user=set_dbo options='-c default_transaction_read_only=off -c statement_timeout=0'");
	push @attached, $name if $rc == 0;
	note("ALTER DATABASE SET $name: " . ($rc == 0 ? 'accepted' : "refused: $err"));
}
is(join(',', @attached), join(',', sort keys %levers),
	'the database owner attached every one of these settings to its database')
  or diag("attached: @attached");
# The bootstrap superuser's own settings in this database (only a superuser can attach them; the
# writer runs as that role).
$node->safe_psql('postgres', qq{
ALTER ROLE "$boot" IN DATABASE $db SET default_transaction_read_only = on;
ALTER ROLE "$boot" IN DATABASE $db SET lock_timeout = '1';
});

# Our own sessions override the levers for themselves (client options beat database and role
# settings); the writer, a background worker, cannot.
local $ENV{PGOPTIONS} = join(' ',
	'-c default_transaction_read_only=off -c statement_timeout=0 -c lock_timeout=0',
	'-c idle_in_transaction_session_timeout=0 -c default_transaction_isolation=read\ committed',
	'-c search_path=public -c exit_on_error=off');
my $as_app = $node->connstr($db) . ' user=set_app';
my $read_only = $node->safe_psql($db, 'SET ROLE NONE; SHOW default_transaction_read_only',
	connstr => $node->connstr($db)
	  . ' options=\'-c search_path=public -c statement_timeout=0 -c exit_on_error=off\'');
is($read_only, 'on', 'a session without client options starts read-only (the lever is on)');

# A writer started before the settings were attached would not have read them: wait until the
# one of the setup has left (it leaves after ~0.5 s idle); the next event starts a new one.
ok(wait_for(q{SELECT count(*) = 0 FROM pg_stat_activity
	WHERE backend_type = 'vector_vault access log writer'}, 10), 'no access log writer runs');

my $log_offset = -s $node->logfile;
my ($rc, $out, $err) = $node->psql($db, "SET ROLE NONE; SELECT vault.login('$key') IS NOT NULL",
	connstr => $as_app);
is($out, 't', 'the key logs in') or diag($err);
($rc, $out, $err) = $node->psql($db, "SELECT vault.login('vv_0123456789abcdef_bad_00000000')",
	connstr => $as_app);
like($err, qr/malformed API key/, 'a malformed key fails');
($rc, $out, $err) = $node->psql($db, "SET vector_vault.vault = 'set_v'; SELECT 'x'::etext IS NOT NULL",
	connstr => $as_app);
like($err, qr/permission denied/, 'the role itself is denied the vault');
my $rotated = $node->safe_psql($db,
	"SET ROLE NONE; SET ROLE set_owner; SELECT vault.rotate_api_key('$pw', '$key_id') IS NOT NULL");
is($rotated, 't', 'the key owner rotates the key');

# Waits up to $seconds for $sql to return 't'.
sub wait_for
{
	my ($sql, $seconds) = @_;
	for (1 .. $seconds * 10)
	{
		return 1 if $node->safe_psql($db, "SET ROLE NONE; $sql") eq 't';
		usleep(100_000);
	}
	return 0;
}

ok(wait_for(q{SELECT count(*) > 0 FROM vault._access_log
	WHERE role = 'set_app' AND action = 'login' AND result = 'ok' AND key_id = '} . $key_id . q{'}, 20),
	'the successful login reached the access log');
ok(wait_for(q{SELECT count(*) > 0 FROM vault._access_log
	WHERE role = 'set_app' AND action = 'login' AND result = 'failed'}, 5),
	'the failed login reached the access log');
ok(wait_for(q{SELECT count(*) > 0 FROM vault._access_log
	WHERE role = 'set_app' AND action = 'denied' AND vault = 'set_v'}, 5),
	'the denial reached the access log');
ok(wait_for(q{SELECT count(*) > 0 FROM vault._access_log
	WHERE role = 'set_owner' AND action = 'rotate_api_key'}, 5),
	'the key rotation is in the access log');
my $log = VectorVault::log_since($node, $log_offset);
unlike($log, qr/could not write .*access log|read-only transaction|statement timeout|lock timeout/,
	'the writer reported no failure');
is($node->safe_psql($db, q{SET ROLE NONE;
	SELECT count(*) FROM vault._access_log WHERE action = 'login' AND result = 'ok'}), '1',
	'exactly one successful login is recorded');

done_testing();
