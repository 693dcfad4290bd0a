# 030_tls.pl — vector_vault.require_ssl over real TLS connections.
#
# The test makes its own PKI with openssl (a CA, a server certificate for CN=localhost with
# subjectAltName DNS:localhost and IP:127.0.0.1, and an unrelated second CA), runs the server with
# ssl = on (ssl_cert_file / ssl_key_file / ssl_ca_file) listening on 127.0.0.1 as well as on its
# Unix socket, and a pg_hba.conf with "local trust" and separate hostssl and hostnossl lines for
# 127.0.0.1 (SCRAM). The vault and its API key are made by the superuser that created the
# extension (over the Unix socket); "app" only logs in with the key. Then it proves:
#
#   - the certificates really are checked: sslmode=verify-full against the CA works for
#     host=localhost and host=127.0.0.1, and fails against the unrelated CA;
#   - with vector_vault.require_ssl = on, an application role on a verify-full connection
#     (pg_stat_ssl.ssl = true for its backend) logs in with an API key, encrypts (INSERT of
#     etext, ejsonb, evector), decrypts (SELECT) and searches;
#   - on a non-TLS TCP connection (sslmode=disable, pg_stat_ssl.ssl = false) vault.login, an
#     INSERT of an evector, etext or ejsonb and a SELECT of an etext or evector are refused with
#     SQLSTATE 28000 "... requires an encrypted connection" (the encryption and decryption are
#     tried by a role with a write grant, which needs no login), and the refused statements leave
#     nothing behind;
#   - a Unix-socket connection is not affected (login, encrypt, decrypt);
#   - the access log holds exactly one successful TCP login (the TLS one, with 127.0.0.1);
#   - after require_ssl = off and a reload, the same non-TLS TCP connection works.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;

my $db = 'postgres';
my $node = VectorVault::new_node('tls');
my $dir = $node->basedir . '/pki';
mkdir $dir or die "mkdir $dir: $!";

# Runs openssl; dies with its output on failure.
sub openssl
{
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'openssl', @_ ], '>', \$out, '2>', \$err)
	  or die "openssl @_ failed: $err$out";
	return $out;
}

# --- PKI ------------------------------------------------------------------------------------------
openssl('req', '-x509', '-new', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2',
	'-subj', '/CN=vector_vault test CA', '-keyout', "$dir/ca.key", '-out', "$dir/ca.crt",
	'-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
openssl('req', '-x509', '-new', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2',
	'-subj', '/CN=some other CA', '-keyout', "$dir/other.key", '-out', "$dir/other.crt",
	'-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
openssl('req', '-new', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-subj', '/CN=localhost',
	'-keyout', "$dir/server.key", '-out', "$dir/server.csr");
VectorVault::write_bytes("$dir/server.ext",
	"basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
	  . "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n", 0644);
openssl('x509', '-req', '-in', "$dir/server.csr", '-CA', "$dir/ca.crt", '-CAkey', "$dir/ca.key",
	'-CAcreateserial', '-days', '2', '-sha256', '-extfile', "$dir/server.ext", '-out',
	"$dir/server.crt");
chmod(0600, "$dir/server.key", "$dir/ca.key", "$dir/other.key");
like(openssl('x509', '-in', "$dir/server.crt", '-noout', '-ext', 'subjectAltName'),
	qr/DNS:localhost.*IP Address:127\.0\.0\.1/s, 'server certificate names localhost and 127.0.0.1');

# --- server ---------------------------------------------------------------------------------------
my $port = $node->port;
$node->append_conf('postgresql.conf', qq{
listen_addresses = '127.0.0.1'
ssl = on
ssl_cert_file = '$dir/server.crt'
ssl_key_file = '$dir/server.key'
ssl_ca_file = '$dir/ca.crt'
vector_vault.require_ssl = on
});
# Replace initdb's pg_hba.conf: Unix sockets, TLS and plain TCP from 127.0.0.1 are distinct lines.
VectorVault::write_bytes($node->data_dir . '/pg_hba.conf', qq{
local     all all                trust
hostssl   all all 127.0.0.1/32   scram-sha-256
hostnossl all all 127.0.0.1/32   scram-sha-256
}, 0600);
$node->start;

my $app_password = 'app-Pa55-' . int(rand(1e9));
my $writer_password = 'wri-Pa55-' . int(rand(1e9));
my $kpw = 'key management ' . int(rand(1e9));
# The superuser that creates the extension owns the vault and the API key; "writer" is a role
# with a write grant (it needs no login to encrypt and decrypt), "app" only logs in with the key.
$node->safe_psql($db, qq{
SET password_encryption = 'scram-sha-256';
CREATE ROLE writer LOGIN PASSWORD '$writer_password';
CREATE ROLE app LOGIN PASSWORD '$app_password' NOINHERIT;
CREATE EXTENSION vector_vault;
CREATE TABLE items (id bigserial PRIMARY KEY, body etext, meta ejsonb, embedding evector(3));
GRANT SELECT, INSERT, UPDATE, DELETE ON items TO app, writer;
GRANT USAGE ON SEQUENCE items_id_seq TO app, writer;
});
my ($rc, $key, $err) = $node->psql($db, qq{
SELECT vault.create_vault('tls_vault') \\g /dev/null
SELECT vault.grant('tls_vault', 'writer', 'write') \\g /dev/null
SELECT vault.protect('items') \\g /dev/null
CREATE INDEX items_embedding ON items USING vault_hnsw (embedding evector_l2_ops);
SELECT vault.set_key_password(:'kpw') \\g /dev/null
SELECT vault.create_api_key(:'kpw', '{"tls_vault": "write"}', 'tls test') AS key;
}, extra_params => [ '-v', "kpw=$kpw" ]);
is($rc, 0, 'vault, grant, protection, index and API key created over the Unix socket') or diag($err);
like($key, qr/^vv_[0-9a-f]{16}_[0-9a-f]{40}_[0-9a-f]{8}$/, 'API key has the documented shape');

# Connection strings. hostaddr pins 127.0.0.1 (the server does not listen on ::1) while host=
# stays the name that verify-full checks against the certificate.
my $tls_localhost = "host=localhost hostaddr=127.0.0.1 port=$port dbname=$db sslmode=verify-full "
  . "sslrootcert=$dir/ca.crt";
my $tls_ip = "host=127.0.0.1 port=$port dbname=$db sslmode=verify-full sslrootcert=$dir/ca.crt";
my $plain = "host=127.0.0.1 port=$port dbname=$db sslmode=disable";
my $unix = $node->connstr($db);

# Runs $sql on $connstr as $user with $password; returns (rc, stdout, stderr), errors verbose.
sub run_as
{
	my ($connstr, $user, $password, $sql, %vars) = @_;
	local $ENV{PGPASSWORD} = $password;
	delete local $ENV{PGSSLMODE};    # the connection strings say what they want
	my ($rc, $out, $err) = $node->psql($db, "\\set VERBOSITY verbose\n$sql",
		connstr => "$connstr user=$user", extra_params => [ '-w', map { ('-v', "$_=$vars{$_}") } sort keys %vars ],
		on_error_stop => 1);
	return ($rc, $out // '', $err // '');
}

# Asserts that $sql fails with the require_ssl error.
sub refused_without_tls
{
	my ($what, $connstr, $user, $password, $sql, %vars) = @_;
	my ($rc, $out, $err) = run_as($connstr, $user, $password, $sql, %vars);
	isnt($rc, 0, "$what: refused");
	like($err, qr/ERROR:\s+28000: .*requires an encrypted connection/, "$what: SQLSTATE 28000, requires an encrypted connection");
	unlike($err, qr/\Q$key\E/, "$what: the error does not show the API key");
}

# --- certificates are verified --------------------------------------------------------------------
{
	local $ENV{PGPASSWORD} = $app_password;
	$node->connect_ok("$tls_localhost user=app", 'verify-full for host=localhost with the test CA',
		sql => 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()', expected_stdout => qr/^t$/);
	$node->connect_ok("$tls_ip user=app", 'verify-full for host=127.0.0.1 (IP SAN) with the test CA',
		sql => 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()', expected_stdout => qr/^t$/);
	$node->connect_fails("host=localhost hostaddr=127.0.0.1 port=$port dbname=$db user=app "
		  . "sslmode=verify-full sslrootcert=$dir/other.crt",
		'verify-full against an unrelated CA fails', expected_stderr => qr/certificate verify failed/);
}

# --- require_ssl = on: TLS works ------------------------------------------------------------------
my ($r, $out);
($r, $out, $err) = run_as($tls_localhost, 'app', $app_password, q{
SELECT ssl, version IS NOT NULL AND cipher IS NOT NULL FROM pg_stat_ssl WHERE pid = pg_backend_pid();
SELECT current_setting('vector_vault.require_ssl');
SELECT vault.login(:'key');
SELECT vault.principal() LIKE 'api key %';
INSERT INTO items (body, meta, embedding) VALUES
  ('tls body one', '{"n": 1}', '[1,2,3]'), ('tls body two', '{"n": 2}', '[10,20,30]');
SELECT body::text || '|' || (meta->>'n') || '|' || embedding::text FROM items ORDER BY id;
SET enable_seqscan = off;
SELECT body::text FROM items ORDER BY embedding <-> '[9,19,29]' LIMIT 1;
}, key => $key);
is($r, 0, 'require_ssl on, verify-full TLS: login, insert, select, search succeed') or diag($err);
is($out, "t|t\non\ntls_vault\nt\ntls body one|1|[1,2,3]\ntls body two|2|[10,20,30]\ntls body two",
	'TLS connection (pg_stat_ssl.ssl), login selects the vault, values round-trip, index search finds the nearest');

# --- require_ssl = on: plain TCP is refused -------------------------------------------------------
($r, $out, $err) = run_as($plain, 'app', $app_password,
	q{SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()});
is("$r|$out", '0|f', 'sslmode=disable over TCP connects without TLS (hostnossl)') or diag($err);

my $before = $node->safe_psql($db, 'SELECT count(*) FROM items');
refused_without_tls('vault.login over plain TCP', $plain, 'app', $app_password,
	q{SELECT vault.login(:'key');}, key => $key);
# The writer role needs no login: the encryption and decryption themselves must be refused.
refused_without_tls('INSERT of an evector over plain TCP', $plain, 'writer', $writer_password, q{
SET vector_vault.vault = 'tls_vault';
INSERT INTO items (embedding) VALUES ('[4,5,6]');
});
refused_without_tls('INSERT of an etext over plain TCP', $plain, 'writer', $writer_password, q{
SET vector_vault.vault = 'tls_vault';
INSERT INTO items (body) VALUES ('secret plain text');
});
refused_without_tls('INSERT of an ejsonb over plain TCP', $plain, 'writer', $writer_password, q{
SET vector_vault.vault = 'tls_vault';
INSERT INTO items (meta) VALUES ('{"secret": "plain"}');
});
refused_without_tls('SELECT of an etext over plain TCP', $plain, 'writer', $writer_password,
	q{SELECT body FROM items ORDER BY id;});
refused_without_tls('SELECT of an etext cast to text over plain TCP', $plain, 'writer',
	$writer_password, q{SELECT body::text FROM items ORDER BY id;});
refused_without_tls('SELECT of an evector over plain TCP', $plain, 'writer', $writer_password,
	q{SELECT embedding FROM items ORDER BY id;});
is($node->safe_psql($db, 'SELECT count(*) FROM items'), $before, 'refused statements inserted nothing');
# --- Unix sockets are always allowed --------------------------------------------------------------
($r, $out, $err) = run_as($unix, 'app', '', q{
SELECT vault.login(:'key');
INSERT INTO items (body, meta, embedding) VALUES ('unix body', '{"n": 3}', '[7,7,7]');
SELECT body::text || '|' || embedding::text FROM items WHERE meta->>'n' = '3';
}, key => $key);
is($r, 0, 'require_ssl on: Unix-socket login, insert and select succeed') or diag($err);
is($out, "tls_vault\nunix body|[7,7,7]", 'Unix-socket values round-trip');

# The access log is written by a background worker, in order: once the Unix-socket login is in,
# everything before it is too. The refused plain-TCP login must not appear as a successful one.
ok($node->poll_query_until($db, q{SELECT count(*) > 0 FROM vault._access_log
	WHERE action = 'login' AND result = 'ok' AND client_addr = 'local'}), 'the Unix-socket login reached the access log');
is($node->safe_psql($db, q{SELECT count(*) FROM vault._access_log
	WHERE action = 'login' AND result = 'ok' AND client_addr LIKE '127.0.0.1%'}), '1',
	'the access log has exactly one successful TCP login: the TLS one, with its client address');

# --- require_ssl = off: plain TCP works -----------------------------------------------------------
$node->append_conf('postgresql.conf', "vector_vault.require_ssl = off\n");
$node->reload;
$node->poll_query_until($db, "SELECT current_setting('vector_vault.require_ssl') = 'off'")
  or die 'require_ssl did not turn off';
($r, $out, $err) = run_as($plain, 'app', $app_password, q{
SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid();
SELECT vault.login(:'key');
INSERT INTO items (body, meta, embedding) VALUES ('plain body', '{"n": 4}', '[0,0,1]');
SELECT count(*) FROM items;
SELECT body::text || '|' || embedding::text FROM items ORDER BY embedding <-> '[0,0,0]' LIMIT 1;
}, key => $key);
is($r, 0, 'require_ssl off (reload): plain-TCP login, insert, select succeed') or diag($err);
is($out, "f\ntls_vault\n4\nplain body|[0,0,1]", 'plain-TCP connection sees all rows, nearest is right');
($r, $out, $err) = run_as($plain, 'writer', $writer_password,
	q{SELECT string_agg(body::text, ',' ORDER BY id) FROM items;});
is("$r|$out", '0|tls body one,tls body two,unix body,plain body',
	'require_ssl off: the writer role decrypts over plain TCP') or diag($err);

$node->stop;
done_testing();
