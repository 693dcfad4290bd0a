# 06_node_helpers.pl — the vector-vault npm package (clients/node) with node-postgres and
# pgvector-node against a real server.
#
# A scratch application gets pg and pgvector from npm (test/clients/node's package.json and lock;
# npm's cache is kept outside git in /tmp/vv-npm-cache-<uid>) and the package copied into its
# node_modules as npm would install it. test/clients/node/helpers_client.js runs as the role "app"
# over TCP with SCRAM: a flow through VaultPool.withKey (a transaction-scoped login per
# transaction) that passes ClientSetup::check_flow (vectors sent with pgvector's toSql, parsed by
# the package's registerTypes); an error inside withKey rolls back and ends the login. Leaks: with
# a plain pg.Pool (max 1) a session login survives release() and the next checkout acts as the key
# (the control); with VaultPool a session login made by the callback is gone at the next checkout
# on the same backend, and keys A and B alternating on one pooled connection each see only their
# vault.
use strict;
use warnings;
use utf8;
use FindBin;
use lib $FindBin::Bin;
use File::Copy qw(copy);
use File::Path qw(make_path);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;
use ClientSetup;

my $src = "$FindBin::Bin/node";
my $pkg = ($ENV{VV_TOP} // "$FindBin::Bin/../..") . '/clients/node';
my ($node_version) = (`node --version 2>/dev/null` // '') =~ /^v(\d+)\./;
plan skip_all => 'Node.js is not installed (node not on PATH)' unless defined $node_version;
plan skip_all => "Node.js $node_version is too old (pgvector-node and node --test need 18 or later)" if $node_version < 18;
plan skip_all => "no $pkg/index.js" unless -f "$pkg/index.js";

# A scratch application: pg + pgvector from npm, vector-vault from clients/node.
my $app = PostgreSQL::Test::Utils::tempdir('node_helpers');
copy("$src/$_", "$app/$_") or die "copy $_: $!" for qw(package.json package-lock.json helpers_client.js);
my $cache = "/tmp/vv-npm-cache-$<";
my ($rc, $out, $err) = ClientSetup::run_client(
	[ 'npm', 'ci', '--no-audit', '--no-fund', '--no-update-notifier', '--prefer-offline' ],
	{ npm_config_cache => $cache }, 600, dir => $app);
if ($rc != 0)
{
	plan skip_all => "npm registry unreachable: " . (split /\n/, $err)[0]
	  if $err =~ /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ENETUNREACH|network/i;
	BAIL_OUT("npm ci failed: $err");
}
make_path("$app/node_modules/vector-vault");
copy("$pkg/$_", "$app/node_modules/vector-vault/$_") or die "copy $_: $!" for qw(package.json index.js);
ok(-f "$app/node_modules/pg/package.json" && -f "$app/node_modules/vector-vault/index.js",
	'the application has pg, pgvector and vector-vault');

# The codec's unit tests (no server).
($rc, $out, $err) = ClientSetup::run_client([ 'node', '--test', 'test/' ], {}, 60, dir => $pkg);
ok($rc == 0 && $out =~ /^# fail 0$/m, 'clients/node unit tests pass (node --test)') or diag("$out\n$err");

my $node = ClientSetup::start_node('node_helpers');
my $query = ClientSetup::sample_query();
my $s = ClientSetup::setup_items($node, vaults => [ 'node_vault', 'b_vault', 'other_vault' ],
	rows => { other_vault => [ { body => 'other vault: exactly at the query', meta => { n => 0 }, embedding => $query } ],
		b_vault => [ map { { body => "b$_", meta => { b => $_ }, embedding => [ $_, 0, 0 ] } } 1 .. 2 ] });
my $rows = ClientSetup::sample_rows('node-helpers');

($rc, $out, $err) = ClientSetup::run_client([ 'node', "$app/helpers_client.js" ],
	ClientSetup::client_env($node, $s, VV_API_KEY => $s->{keys}{node_vault}, VV_API_KEY_B => $s->{keys}{b_vault},
		VV_ROWS => JSON::PP->new->utf8->encode($rows), VV_QUERY => JSON::PP::encode_json($query)),
	120, dir => $app);
is($rc, 0, 'node helpers client ran') or diag("stderr: $err\nstdout: $out");
my $r = ClientSetup::last_json($out) // {};
note("node $r->{node}, pg $r->{pg}, vector-vault $r->{vector_vault}") if $r->{node};

my $f = $r->{flow} // {};
ClientSetup::check_flow('node helpers', $f, $rows, $query, 'node_vault');
ClientSetup::check_sealed('node helpers', $node, 'node_vault', scalar @$rows);
is_deeply($f->{types}, ['true/object/string'], 'registerTypes: evector -> array, ejsonb -> object, etext -> string');
is_deeply($f->{arrays}, { evectors => 6, first_is_array => JSON::PP::true, bodies_match => JSON::PP::true },
	'registerTypes: evector[] and etext[] parse into arrays of values');
is($f->{error_code}, '22012', 'an error inside withKey rejects with the server\'s SQLSTATE');
is($f->{principal_after_error}, 'role app', '... and the next checkout acts as the role');

my $l = $r->{leaks} // {};
is_deeply([ @{ $l->{plain} // {} }{qw(same_backend visible)} ], [ JSON::PP::true, 6 ],
	'control: plain pg.Pool: the next checkout is the same backend and sees the key\'s rows');
like($l->{plain}{principal} // '', qr/^api key [0-9a-f]{16} \(connected as role app\)$/,
	'control: plain pg.Pool: the session login leaked into the next checkout');
is_deeply($l->{wrapped}, { same_backend => JSON::PP::true, principal => 'role app', visible => 0, visible_inside => 6 },
	'VaultPool: a session login made in withKey is gone at the next checkout of the same backend');
is_deeply($l->{alternating}, [ 'node_vault:6', 'b_vault:2', 'node_vault:6', '-:0', 'b_vault:2' ],
	'VaultPool: keys A, B, A, none, B on one pooled connection each see only their own vault');
is($l->{alternating_backends}, 1, '... all on one server backend');
is($l->{query_helper}, 6, 'VaultPool.query runs one statement as the key');
is_deeply($r->{tosql_error}, { code => '22P02', name => 'VectorVaultError' }, 'toSql refuses NaN with 22P02');

$node->stop;
done_testing();
