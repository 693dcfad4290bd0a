# 07_example_rag.pl — the end-to-end example in examples/rag runs as its README says.
#
# The operator's admin.py setup (as the bootstrap superuser over the Unix socket, which becomes the
# vaults' owner) creates the chunks table, vaults acme and globex, vault.protect, the vault_hnsw
# index and one API key per tenant. The application, rag.py (psycopg 3 + vector_vault.psycopg),
# connects as the low-privilege role "app" over TCP with SCRAM and acts as a tenant only through
# its key: ingest of each tenant's documents (paragraph chunks with given embeddings), ask with a
# query embedding (cosine, through the index) and prompt. Checks: each tenant gets its own nearest
# chunks in order, never the other tenant's even when those are nearer; re-ingest replaces; a
# wrong key is refused (28P01) without being echoed; the chunks are sealed under their tenant's
# vault; the role without a key sees no chunk.
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
my $example = ($ENV{VV_TOP} // "$FindBin::Bin/../..") . '/examples/rag';
my ($rc, $out, $err) = ClientSetup::run_client([ $python, '-c', 'import psycopg' ], {}, 60);
plan skip_all => "$python with psycopg 3 is not available (Debian python3-psycopg): $err" if $rc != 0;
plan skip_all => "no $example/rag.py" unless -f "$example/rag.py";

my $node = ClientSetup::start_node('rag');
my $app_password = 'app-' . join('', map { ('a' .. 'z')[ int(rand(26)) ] } 1 .. 16);
$node->safe_psql('postgres', qq{SET password_encryption = 'scram-sha-256';
CREATE ROLE app LOGIN PASSWORD '$app_password' NOINHERIT; CREATE EXTENSION vector_vault;});

my $kpw = 'kpw-' . join('', map { ('a' .. 'z')[ int(rand(26)) ] } 1 .. 16);
my $owner_dsn = 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres';
($rc, $out, $err) = ClientSetup::run_client([ $python, "$example/admin.py", 'setup', '--dsn', $owner_dsn,
	'--app-role', 'app', '--tenants', 'acme', 'globex' ], { VV_KEY_PASSWORD => $kpw, PYTHONDONTWRITEBYTECODE => 1 }, 120);
is($rc, 0, 'admin.py setup ran') or diag("stderr: $err\nstdout: $out");
my $keys = ClientSetup::last_json($out) // {};
like($keys->{$_} // '', qr/^vv_[0-9a-f]{16}_[0-9a-f]{40}_[0-9a-f]{8}$/, "admin.py printed $_\'s API key") for qw(acme globex);

my $app_dsn = 'host=127.0.0.1 port=' . $node->port . " dbname=postgres user=app password=$app_password";
# Runs rag.py as the application with a tenant's key; returns (exit code, decoded JSON, stderr).
my $rag = sub {
	my ($key, @args) = @_;
	my ($c, $o, $e) = ClientSetup::run_client([ $python, "$example/rag.py", @args ],
		{ VV_DSN => $app_dsn, VV_API_KEY => $key, PYTHONDONTWRITEBYTECODE => 1 }, 120, dir => $example);
	return ($c, $c == 0 ? ClientSetup::last_json($o) : undef, $e);
};

my ($c, $j, $e) = $rag->($keys->{acme}, 'ingest', 'data/acme.json');
is_deeply($j, { ingested => 4 }, 'acme ingests 4 chunks (3 paragraphs + 1 given chunk)') or diag($e);
($c, $j, $e) = $rag->($keys->{globex}, 'ingest', 'data/globex.json');
is_deeply($j, { ingested => 2 }, 'globex ingests 2 chunks') or diag($e);
($c, $j, $e) = $rag->($keys->{acme}, 'ingest', 'data/acme.json');
is_deeply($j, { ingested => 4 }, 'acme re-ingests (replaces its documents)') or diag($e);

# The query is nearest to globex's vacation chunk ([0.92, 0.08, 0, 0]); acme must get its own.
my $q = '[0.95,0.05,0,0]';
($c, $j, $e) = $rag->($keys->{acme}, 'ask', $q, '--k', '3');
is($c, 0, 'acme asks') or diag($e);
is_deeply([ map { "$_->{doc_id}#$_->{chunk_no}" } @{ $j->{chunks} // [] } ],
	[ 'acme-handbook#0', 'acme-handbook#1', 'acme-handbook#2' ], 'acme gets its own nearest chunks in cosine order');
is($j->{chunks}[0]{text}, 'Acme employees get 28 vacation days a year.', 'acme: the chunk text is decrypted');
is($j->{chunks}[0]{title}, 'Acme employee handbook', 'acme: the chunk metadata is decrypted');
($c, $j, $e) = $rag->($keys->{globex}, 'ask', $q, '--k', '5');
is_deeply([ map { $_->{doc_id} } @{ $j->{chunks} // [] } ], [ 'globex-handbook', 'globex-handbook' ],
	'globex sees only its 2 chunks even with k = 5');
($c, $j, $e) = $rag->($keys->{acme}, 'prompt', $q, 'How many vacation days?', '--k', '1');
like($j->{prompt} // '', qr/Context:\n\[acme-handbook#0\] Acme employees get 28 vacation days a year\.\n\nQuestion: How many vacation days\?$/,
	'prompt builds an LLM prompt from acme\'s context');
unlike($j->{prompt} // '', qr/Globex/, '... with nothing of globex in it');

my $bad = $keys->{acme};
$bad =~ s/(.)$/$1 eq '0' ? '1' : '0'/e;
($c, $j, $e) = $rag->($bad, 'ask', $q);
isnt($c, 0, 'a mistyped key is refused');
like($e, qr/^error 28P01: /m, '... with SQLSTATE 28P01');
unlike($e, qr/\Q$bad\E|\Q$keys->{acme}\E/, '... and the error does not echo the key');

is($node->safe_psql('postgres', q{SELECT string_agg(v.name || ':' || n, ',' ORDER BY v.name) FROM
	(SELECT vault.vault_of(body) AS vid, count(*) AS n FROM chunks
	  WHERE vault.vault_of(embedding) = vault.vault_of(body) AND vault.vault_of(meta) = vault.vault_of(body)
	  GROUP BY 1) s JOIN vault._vaults v ON v.vault_id = s.vid}), 'acme:4,globex:2',
	'every chunk is sealed (body, meta, embedding) under its tenant\'s vault');
($rc, $out, $err) = ClientSetup::run_client([ 'psql', '-XAt', '-d', $app_dsn, '-c', 'SELECT count(*) FROM chunks' ], {}, 30);
is($out, "0\n", 'the application role without a key sees no chunk');

$node->stop;
done_testing();
