# 01_node_pg.pl — a Node.js application (node-postgres + pgvector-node) against vector_vault.
#
# Runs test/clients/node/client.js (npm install of "pg" and "pgvector" into a scratch copy when
# the checkout has no node_modules) as the low-privilege role "app" over TCP with SCRAM. It logs
# in with an API key passed as a bind parameter, inserts rows (pgvector.toSql() for the evector
# parameter, text and JSON for etext and ejsonb), searches ORDER BY embedding <-> $1 LIMIT 3 with
# the query bound, and reads everything back (pgvector.fromSql() for evector). Checks: nothing is
# visible before the login or after vault.logout(); the login selects the key's vault; the three
# neighbours are the exact ones in order with the right distances, and the same search through
# the vault_hnsw index (enable_seqscan off; the plan is checked) agrees; every value round-trips;
# a nearer row of another vault never shows up.
use strict;
use warnings;
use utf8;
use FindBin;
use lib $FindBin::Bin;
use File::Copy qw(copy);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;
use ClientSetup;

my $src = "$FindBin::Bin/node";
my ($node_version) = (`node --version 2>/dev/null` // '') =~ /^v(\d+)\./;
plan skip_all => 'Node.js is not installed (node not on PATH)' unless defined $node_version;
plan skip_all => "Node.js $node_version is too old for node-postgres 8 (needs 16 or later)"
  if $node_version < 16;

# A scratch copy of the client with its dependencies.
my $app = PostgreSQL::Test::Utils::tempdir('node_client');
copy("$src/$_", "$app/$_") or die "copy $_: $!" for qw(package.json package-lock.json client.js);
if (-d "$src/node_modules/pg" && -d "$src/node_modules/pgvector")
{
	note("using $src/node_modules");
	symlink("$src/node_modules", "$app/node_modules") or die "symlink: $!";
}
else
{
	my ($rc, $out, $err) = ClientSetup::run_client(
		[ 'npm', 'install', '--no-audit', '--no-fund', '--no-update-notifier' ],
		{ npm_config_cache => "$app/.npm-cache" }, 600, dir => $app);
	if ($rc != 0)
	{
		# No route to the registry is an environment limit; anything else is a failure.
		plan skip_all => "npm registry unreachable: " . (split /\n/, $err)[0]
		  if $err =~ /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ENETUNREACH|network/i;
		BAIL_OUT("npm install failed: $err");
	}
}
ok(-f "$app/node_modules/pg/package.json" && -f "$app/node_modules/pgvector/package.json",
	'node_modules has pg and pgvector');

my $node = ClientSetup::start_node('node');
my ($s, $rows, $query) = ClientSetup::flow_setup($node, 'node_vault', 'node');

my ($rc, $out, $err) = ClientSetup::run_client([ 'node', "$app/client.js" ],
	ClientSetup::client_env($node, $s, VV_API_KEY => $s->{keys}{node_vault},
		VV_ROWS => JSON::PP->new->utf8->encode($rows), VV_QUERY => JSON::PP::encode_json($query)),
	120, dir => $app);
is($rc, 0, 'node client ran') or diag("stderr: $err\nstdout: $out");
my $r = ClientSetup::last_json($out) // {};
note("node $r->{node}, pg $r->{pg}, pgvector $r->{pgvector}") if $r->{node};

is_deeply($r->{types}, [ 'ejsonb', 'etext', 'evector' ], 'node: the client found the encrypted types');
is($r->{ssl}, JSON::PP::false, 'node: plain TCP connection with SCRAM (require_ssl is off)');
is($r->{embedding_is_array}, JSON::PP::true, 'node: pgvector.fromSql parses evector output into arrays');
ClientSetup::check_flow('node', $r, $rows, $query, 'node_vault');
ClientSetup::check_sealed('node', $node, 'node_vault', scalar @$rows);

$node->stop;
done_testing();
