# 05_python_helpers.pl — the Python helpers in clients/python (package vector_vault) with real
# drivers: psycopg2, psycopg 3 and SQLAlchemy (Debian's python3-psycopg2, python3-psycopg,
# python3-sqlalchemy, python3-numpy on /usr/bin/python3).
#
# test/clients/python/helpers_client.py runs three application flows as the role "app" over TCP
# with SCRAM, each with its own key and vault, using only the helpers (register_types,
# transaction_login, Vector; EVector/EText/EJsonb with install_login and install_pool_guard). Each
# flow passes the checks every client shares (ClientSetup::check_flow: nothing visible without a
# login, the exact three neighbours in order through a sequential scan and through vault_hnsw,
# every value round-trips, another vault's nearer row never shows), and evector values come back
# as float32 numpy arrays, ejsonb as dicts. Pool leaks: with a plain psycopg2 pool and a plain
# SQLAlchemy engine a session login survives the return to the pool (the controls); through
# vector_vault.psycopg2.pooled and install_pool_guard the next checkout acts as the role again.
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
my $pkg = ($ENV{VV_TOP} // "$FindBin::Bin/../..") . '/clients/python';
my ($rc, $out, $err) = ClientSetup::run_client([ $python, '-c', 'import psycopg2, psycopg, sqlalchemy, numpy' ], {}, 60);
plan skip_all => "$python with psycopg2, psycopg 3, sqlalchemy and numpy is not available (Debian "
  . "python3-psycopg2 python3-psycopg python3-sqlalchemy python3-numpy): $err" if $rc != 0;
plan skip_all => "no $pkg/vector_vault" unless -f "$pkg/vector_vault/__init__.py";

# The codec's unit tests (no server).
($rc, $out, $err) = ClientSetup::run_client([ $python, '-m', 'unittest', 'discover', '-s', 'tests', '-v' ],
	{ PYTHONPATH => $pkg, PYTHONDONTWRITEBYTECODE => 1 }, 60, dir => $pkg);
ok($rc == 0 && $err =~ /^OK/m, 'clients/python unit tests pass (python3 -m unittest)') or diag("$out\n$err");

my $node = ClientSetup::start_node('py_helpers');
my $query = ClientSetup::sample_query();
my %vault = (pg2 => 'pg2_vault', pg3 => 'pg3_vault', sa => 'sa_vault');
my $s = ClientSetup::setup_items($node, vaults => [ (map { $vault{$_} } sort keys %vault), 'other_vault' ],
	rows => { other_vault => [ { body => 'other vault: exactly at the query', meta => { n => 0 },
		embedding => $query } ] });
my $rows = ClientSetup::sample_rows('py-helpers');

($rc, $out, $err) = ClientSetup::run_client([ $python, "$FindBin::Bin/python/helpers_client.py" ],
	ClientSetup::client_env($node, $s, PYTHONPATH => $pkg, PYTHONDONTWRITEBYTECODE => 1,
		VV_KEYS => JSON::PP::encode_json({ map { ($_ => $s->{keys}{ $vault{$_} }) } keys %vault }),
		VV_ROWS => JSON::PP->new->utf8->encode($rows), VV_QUERY => JSON::PP::encode_json($query)),
	300);
is($rc, 0, 'helpers client ran') or diag("stderr: $err\nstdout: $out");
my $r = ClientSetup::last_json($out) // {};
note(explain($r->{versions})) if $r->{versions};

for my $flow (qw(pg2 pg3 sa))
{
	my $f = $r->{$flow} // {};
	ClientSetup::check_flow($flow, $f, $rows, $query, $vault{$flow});
	ClientSetup::check_sealed($flow, $node, $vault{$flow}, scalar @$rows);
	is_deeply($f->{embedding_types}, ['ndarray/float32'], "$flow: evector values come back as float32 numpy arrays");
}
is_deeply([ $r->{pg2}{meta_types}, $r->{pg3}{meta_types} ], [ ['dict'], ['dict'] ],
	'psycopg2, psycopg 3: ejsonb values come back as dicts');
is_deeply($r->{pg3}{binary_embeddings}, [ map { $_->{embedding} } @{ $r->{pg3}{all} // [] } ],
	'psycopg 3: binary results parse to the same vectors as text results');
is($r->{pg2}{array_of_evector}, 'list/6/ndarray', 'psycopg2: evector[] comes back as a list of arrays');
is_deeply([ map { $r->{$_}{principal_after} } qw(pg2 pg3) ], [ 'role app', 'role app' ],
	'psycopg2, psycopg 3: after transaction_login the connection acts as its role');
is($r->{pg2}{error_code}, '22012', 'psycopg2: an error inside transaction_login propagates');
is($r->{pg2}{principal_after_error}, 'role app', 'psycopg2: ... and the rolled-back transaction ended the login');
like($r->{pg3}{session_principal} // '', qr/^api key /, 'psycopg 3: a session login acts as the key (control)');
is($r->{pg3}{principal_after_reset}, 'role app', 'psycopg 3: reset_session ends it');

my $l = $r->{leaks} // {};
is_deeply($l->{pg2_plain}, { same_backend => JSON::PP::true, principal => $l->{pg2_plain}{principal}, visible => 6 },
	'control: plain psycopg2 pool: the next checkout gets the same backend and sees the key\'s rows');
like($l->{pg2_plain}{principal} // '', qr/^api key [0-9a-f]{16} \(connected as role app\)$/,
	'control: plain psycopg2 pool: the session login leaked into the next checkout');
is_deeply($l->{pg2_pooled}, { same_backend => JSON::PP::true, principal => 'role app', visible => 0, visible_inside => 6 },
	'vector_vault.psycopg2.pooled: the next checkout (same backend) acts as the role and sees nothing');
is($l->{sa_plain}{same_backend}, JSON::PP::true, 'control: plain SQLAlchemy engine reuses the backend');
like($l->{sa_plain}{principal} // '', qr/^api key /, 'control: plain SQLAlchemy engine: the session login leaked');
is_deeply($l->{sa_guard}, { same_backend => JSON::PP::true, principal => 'role app', visible => 0 },
	'install_pool_guard: the next checkout (same backend) acts as the role and sees nothing');
is_deeply($r->{autocommit_error}, { code => '25000', has_hint => JSON::PP::true, echoes_key => JSON::PP::false },
	'transaction_login on an autocommit connection: a helper error with a hint, without the key');
is($r->{sa_bad_login}{raised}, JSON::PP::true, 'SQLAlchemy install_login: a failed login raises VectorVaultError');
like($r->{sa_bad_login}{code} // '', qr/^[0-9A-Z]{5}$/, 'SQLAlchemy install_login: the error carries the server SQLSTATE');
is($r->{sa_bad_login}{echoes_key}, JSON::PP::false, 'SQLAlchemy install_login: the error never carries the key');

$node->stop;
done_testing();
