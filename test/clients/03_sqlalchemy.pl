# 03_sqlalchemy.pl — a SQLAlchemy application (Debian python3-sqlalchemy on /usr/bin/python3,
# psycopg2 driver) against vector_vault.
#
# Runs test/clients/python/sqlalchemy_client.py as the low-privilege role "app" over TCP with
# SCRAM: a declarative model of items with user-defined types for evector(3) (rendering and
# parsing '[1,2,3]', with an l2_distance comparator), etext and ejsonb; the ORM session logs in
# per transaction from an "after_begin" listener (text("SELECT vault.login(:k, true)")), adds
# rows, selects ORDER BY distance LIMIT 3 (sequential and through the vault_hnsw index) and reads
# everything back; then on the same pooled connection the transaction-scoped logins are gone, and
# a Core session login (text("SELECT vault.login(:k)")) and vault.logout() work. The checks shared
# with the other clients are in ClientSetup::check_flow.
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

my $python = '/usr/bin/python3';
my ($rc, $out, $err) = ClientSetup::run_client([ $python, '-c', 'import sqlalchemy, psycopg2' ], {}, 60);
plan skip_all => "$python with sqlalchemy and psycopg2 is not available (Debian "
  . "python3-sqlalchemy, python3-psycopg2): $err" if $rc != 0;

my $node = ClientSetup::start_node('sqlalchemy');
my ($s, $rows, $query) = ClientSetup::flow_setup($node, 'orm_vault', 'sqlalchemy');

($rc, $out, $err) = ClientSetup::run_client([ $python, "$FindBin::Bin/python/sqlalchemy_client.py" ],
	ClientSetup::client_env($node, $s, VV_API_KEY => $s->{keys}{orm_vault},
		VV_ROWS => JSON::PP->new->utf8->encode($rows), VV_QUERY => JSON::PP::encode_json($query)),
	120);
is($rc, 0, 'SQLAlchemy client ran') or diag("stderr: $err\nstdout: $out");
my $r = ClientSetup::last_json($out) // {};
note("SQLAlchemy $r->{sqlalchemy}") if $r->{sqlalchemy};

like($r->{ddl} // '', qr/embedding evector\(3\)/, 'sqlalchemy: the model renders the column type evector(3)');
ClientSetup::check_flow('sqlalchemy', $r, $rows, $query, 'orm_vault');
is($r->{logins}, 4, 'sqlalchemy: the after_begin listener logged in once per ORM transaction');
is($r->{same_backend}, JSON::PP::true, 'sqlalchemy: all transactions ran on one pooled server session');
like($r->{principal_after_commit} // '', qr/^role app$/,
	'sqlalchemy: after the ORM transactions the pooled session acts as its role again');
is($r->{visible_after_commit}, 0, 'sqlalchemy: ... and sees no rows (transaction-scoped logins ended)');
is($r->{core_visible}, scalar @$rows, 'sqlalchemy: Core session login with text("SELECT vault.login(:k)") sees the rows');
is($r->{core_visible_after_logout}, 0, 'sqlalchemy: Core: nothing visible after vault.logout()');
ClientSetup::check_sealed('sqlalchemy', $node, 'orm_vault', scalar @$rows);

$node->stop;
done_testing();
