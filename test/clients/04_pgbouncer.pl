# 04_pgbouncer.pl — API keys through PgBouncer in transaction mode: no key leaks across pooled
# transactions.
#
# Starts Debian's /usr/sbin/pgbouncer (as the test's user) with a generated configuration:
# 127.0.0.1 on a free port, SCRAM against an auth_file, pool_mode = transaction,
# default_pool_size = 1 and max_db_connections = 1 (every client's transactions share one server
# session) and no server_reset_query, so nothing but vector_vault itself ends a key's login.
# test/clients/python/pgbouncer_client.py (psycopg2) then runs, one after another, transactions
# of a client with key A (vault_a), a client with key B (vault_b) and a client without a key,
# each BEGIN; SELECT vault.login(key, true); read (and search, and sometimes insert); COMMIT, and
# then the same three concurrently in threads. Checks: all transactions ran on one server
# backend; each keyed transaction sees exactly its own vault's rows (plain reads and vault_hnsw
# search), principal and vault selection; a transaction without a login — from the third client
# or from A or B in a later transaction — acts as the role, has no vault selected, sees no rows
# and cannot write; the rows A and B inserted landed in their own vaults. PgBouncer is stopped at
# the end.
use strict;
use warnings;
use utf8;
use FindBin;
use lib $FindBin::Bin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;
use ClientSetup;

my $pgbouncer = '/usr/sbin/pgbouncer';
my $python = '/usr/bin/python3';
plan skip_all => "$pgbouncer is not installed (Debian package pgbouncer)" unless -x $pgbouncer;
plan skip_all => 'PgBouncer refuses to run as root; run this through scripts/test.sh (as postgres)'
  if $> == 0;
my ($rc, $out, $err) = ClientSetup::run_client([ $python, '-c', 'import psycopg2' ], {}, 60);
plan skip_all => "$python with psycopg2 is not available (Debian python3-psycopg2): $err" if $rc != 0;

my $node = ClientSetup::start_node('pgbouncer');
my %rows = (
	vault_a => [ map { { body => "A$_", meta => { v => 'a', n => $_ }, embedding => [ $_, 0, 0 ] } } 1 .. 3 ],
	vault_b => [ map { { body => "B$_", meta => { v => 'b', n => $_ }, embedding => [ 0, $_, 0 ] } } 1 .. 2 ],
);
my $s = ClientSetup::setup_items($node, vaults => [ 'vault_a', 'vault_b' ], rows => \%rows);

# --- PgBouncer ------------------------------------------------------------------------------------
my $dir = PostgreSQL::Test::Utils::tempdir('pgbouncer');
my $bport = PostgreSQL::Test::Cluster::get_free_port();
my $pgport = $node->port;
VectorVault::write_bytes("$dir/userlist.txt", qq{"app" "$s->{app_password}"\n}, 0600);
VectorVault::write_bytes("$dir/pgbouncer.ini", qq{[databases]
postgres = host=127.0.0.1 port=$pgport dbname=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bport
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = 1
min_pool_size = 0
reserve_pool_size = 0
max_db_connections = 1
max_client_conn = 50
server_reset_query =
server_reset_query_always = 0
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
}, 0600);
my ($bout, $berr) = ('', '');
my $bouncer = IPC::Run::start([ $pgbouncer, "$dir/pgbouncer.ini" ], '<', \'', '>', \$bout, '2>', \$berr);

# Waits until PgBouncer answers (it connects to the server on the first query).
my $ready = 0;
for (1 .. 100)
{
	my ($r, $o) = ClientSetup::run_client(
		[ 'psql', '-XAtw', '-d', "host=127.0.0.1 port=$bport dbname=postgres user=app", '-c', 'SELECT 1' ],
		{ PGPASSWORD => $s->{app_password} }, 30);
	if ($r == 0 && $o =~ /^1$/m) { $ready = 1; last; }
	last unless $bouncer->pumpable;
	select(undef, undef, undef, 0.2);
}
ok($ready, 'PgBouncer accepts connections (SCRAM, transaction pooling)')
  or BAIL_OUT("pgbouncer did not start: $berr" . slurp_file("$dir/pgbouncer.log"));

# --- the clients ----------------------------------------------------------------------------------
my $rounds = 25;
($rc, $out, $err) = ClientSetup::run_client([ $python, "$FindBin::Bin/python/pgbouncer_client.py" ],
	{ VV_HOST => '127.0.0.1', VV_PORT => $bport, VV_DBNAME => 'postgres', VV_USER => 'app',
	  VV_PASSWORD => $s->{app_password}, VV_API_KEY_A => $s->{keys}{vault_a},
	  VV_API_KEY_B => $s->{keys}{vault_b}, VV_ROUNDS => $rounds }, 300);
is($rc, 0, 'pgbouncer client ran') or diag("stderr: $err\nstdout: $out");
my $r = ClientSetup::last_json($out) // {};
my %st = %{ $r->{steps} // {} };

my %pids = map { ($_->{pid} // 'none') => 1 } values %st;
is(scalar keys %pids, 1, 'all sequential transactions of the three clients ran on one server backend')
  or diag(explain(\%st));
ok(!grep({ exists $st{$_}{error} } keys %st), 'no transaction failed')
  or diag(explain({ map { $_ => $st{$_}{error} } grep { exists $st{$_}{error} } keys %st }));

my @a = map { $_->{body} } @{ $rows{vault_a} };
my @b = map { $_->{body} } @{ $rows{vault_b} };
my %want = (
	a1 => [@a], b1 => [@b], a2 => [ @a, 'A-new' ], b2 => [ @b, 'B-new' ], b3 => [ @b, 'B-new' ],
	a3 => [ @a, 'A-new' ],
);
for my $step (sort keys %want)
{
	my $t = $st{$step} // {};
	my $v = $step =~ /^a/ ? 'vault_a' : 'vault_b';
	is_deeply($t->{bodies}, $want{$step}, "$step: key " . uc(substr($v, -1)) . " sees exactly $v\'s rows");
	is_deeply($t->{searched}, [ sort @{ $want{$step} } ], "$step: the vault_hnsw search returns only $v\'s rows");
	is("$t->{login}|$t->{vault}", "$v|$v", "$step: the login selected $v for this transaction");
	like($t->{principal} // '', qr/^api key [0-9a-f]{16}, this transaction only \(connected as role app\)$/,
		"$step: the principal is the transaction-scoped key");
	is(join(',', map { $_ // 'none' } $t->{level_a}, $t->{level_b}),
		$v eq 'vault_a' ? 'write,none' : 'none,write', "$step: access levels are the key's only");
}
for my $step (qw(none1 a_nokey none2 b_nokey))
{
	my $t = $st{$step} // {};
	is($t->{principal}, 'role app', "$step: a transaction without login acts as the role");
	is($t->{vault}, '', "$step: no vault is selected (the previous login's selection ended)");
	is_deeply($t->{bodies}, [], "$step: it reads no rows");
	is($t->{search_error}, '55000', "$step: it cannot search (no vault to seal the query vector under, 55000)");
	ok(!defined $t->{level_a} && !defined $t->{level_b}, "$step: it has no level on either vault");
	is($t->{insert_without_key}, '55000', "$step: it cannot encrypt (no vault selected, 55000)")
	  if $step =~ /^none/;
}
ok($st{none1}{order} > $st{b1}{order} && $st{a_nokey}{order} > $st{b2}{order},
	'the key-less transactions ran right after keyed ones on the same backend');

# Concurrent phase.
my $c = $r->{concurrent} // {};
for my $tag (qw(a b none))
{
	my $x = $c->{$tag} // {};
	is($x->{transactions}, $rounds, "concurrent $tag: $rounds transactions");
	is_deeply($x->{errors}, [], "concurrent $tag: none failed");
}
my %cpids = map { map { $_ => 1 } @{ $c->{$_}{pids} // [] } } qw(a b none);
is(scalar keys %cpids, 1, 'concurrent: all 3 x 25 transactions shared one server backend');
cmp_ok($r->{concurrent_switches} // 0, '>=', 2,
	'concurrent: the server session passed between clients (' . ($r->{concurrent_switches} // 0) . ' switches)');
is_deeply($c->{a}{bodies}, [ sort(@a, 'A-new') ], 'concurrent a: only vault_a rows, ever');
is_deeply($c->{b}{bodies}, [ sort(@b, 'B-new') ], 'concurrent b: only vault_b rows, ever');
is_deeply([ $c->{a}{searched}, $c->{b}{searched} ], [ [ sort(@a, 'A-new') ], [ sort(@b, 'B-new') ] ],
	'concurrent: searches return only the key\'s own vault');
is_deeply([ $c->{a}{principals}, $c->{b}{principals} ], [ ['api key'], ['api key'] ],
	'concurrent a, b: every transaction acted as its key');
is_deeply([ $c->{none}{bodies}, $c->{none}{searched}, $c->{none}{principals}, $c->{none}{search_errors} ],
	[ [], [], ['role app'], ['55000'] ], 'concurrent none: never a row, never a search, never a key');
is_deeply([ $c->{a}{search_errors}, $c->{b}{search_errors} ], [ [], [] ], 'concurrent a, b: every search ran');

# Server side: the rows written through PgBouncer are in the writers' vaults.
is($node->safe_psql('postgres', q{SELECT string_agg(v.name || ':' || i.body::text, ',' ORDER BY i.id)
	FROM items i JOIN vault._vaults v ON v.vault_id = vault.vault_of(i.body) WHERE i.body::text LIKE '%-new'}),
	'vault_a:A-new,vault_b:B-new', 'A-new was sealed under vault_a and B-new under vault_b');

# --- stop PgBouncer -------------------------------------------------------------------------------
$bouncer->signal('TERM');
my $stopped = eval { $bouncer->finish; 1 };
$bouncer->kill_kill unless $stopped;
ok(!$bouncer->pumpable, 'PgBouncer stopped');

$node->stop;
done_testing();
