# 02_psycopg2.pl — a Python application (psycopg2 + numpy, Debian's /usr/bin/python3) against
# vector_vault.
#
# Runs test/clients/python/psycopg2_client.py as the low-privilege role "app" over TCP with SCRAM:
# numpy arrays adapted to the evector text form and evector cast back to float32 arrays (what
# pgvector-python's register_vector does for "vector"), ejsonb registered with register_json, a
# mistyped key refused with 28P01 without echoing it, vault.login(%s), inserts with parameters,
# ORDER BY embedding <-> %(q)s LIMIT 3 (sequential and through the vault_hnsw index), everything
# read back through a server-side (named) cursor, then vault.logout(). The checks shared with the
# other clients are in ClientSetup::check_flow.
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
my ($rc, $out, $err) = ClientSetup::run_client([ $python, '-c', 'import psycopg2, numpy' ], {}, 60);
plan skip_all => "$python with psycopg2 and numpy is not available (Debian python3-psycopg2, "
  . "python3-numpy): $err" if $rc != 0;

my $node = ClientSetup::start_node('psycopg2');
my ($s, $rows, $query) = ClientSetup::flow_setup($node, 'py_vault', 'psycopg2');

($rc, $out, $err) = ClientSetup::run_client([ $python, "$FindBin::Bin/python/psycopg2_client.py" ],
	ClientSetup::client_env($node, $s, VV_API_KEY => $s->{keys}{py_vault},
		VV_ROWS => JSON::PP->new->utf8->encode($rows), VV_QUERY => JSON::PP::encode_json($query)),
	120);
is($rc, 0, 'psycopg2 client ran') or diag("stderr: $err\nstdout: $out");
my $r = ClientSetup::last_json($out) // {};
note("psycopg2 $r->{psycopg2}, numpy $r->{numpy}") if $r->{psycopg2};

is($r->{ssl}, JSON::PP::false, 'psycopg2: plain TCP connection with SCRAM (require_ssl is off)');
is($r->{bad_key}, '28P01', 'psycopg2: a mistyped key is refused with 28P01');
is($r->{bad_key_echoed}, JSON::PP::false, 'psycopg2: the error does not echo the key');
is_deeply($r->{embedding_types}, ['ndarray/float32'], 'psycopg2: evector values are cast to float32 numpy arrays');
ClientSetup::check_flow('psycopg2', $r, $rows, $query, 'py_vault');
ClientSetup::check_sealed('psycopg2', $node, 'py_vault', scalar @$rows);

$node->stop;
done_testing();
