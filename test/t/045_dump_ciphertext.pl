# 045_dump_ciphertext.pl — logical dumps taken with vector_vault.ciphertext_io = on hold no
# plaintext and restore, on another cluster with the same keyring and master key, to the same
# data and the same vault_hnsw search results.
#
# Source cluster: vault d1 (owned by the superuser) and vault alice_v (owned by role alice, no
# grant to the superuser) share table docs (etext body, ejsonb meta, evector(16) embedding),
# protected by vault.protect (forced RLS policies) and indexed with vault_hnsw. Some rows carry
# markers: a text marker in body, a JSON marker in meta, a distinctive number in the vector. The
# plain table plain_docs holds the same markers (text, jsonb, real[]).
#   - pg_dump as the superuser WITHOUT ciphertext_io fails: decrypting alice's rows is refused
#     (the server logs SQLSTATE 42501; superusers get no implicit vault rights);
#   - with PGOPTIONS='-c vector_vault.ciphertext_io=on', pg_dump (plain format) succeeds; the COPY
#     data of docs holds only "vve1:" envelopes and none of the markers, and no marker appears
#     anywhere in the dump outside plain_docs' COPY data, while plain_docs' data shows every
#     marker (positive control); custom format (-Fc) also dumps;
#   - a second cluster sharing the keyring directory and master key (role alice created first):
#     psql -f of the plain dump with the same PGOPTIONS into a fresh database (the dump runs
#     CREATE EXTENSION and restores the vault catalog) stops at CREATE INDEX, and a restore of the
#     pre-data and data sections is refused the source's keys (22V02: they
#     belong to the source cluster's database) until a superuser runs vault.adopt_copied_vaults()
#     (issue 14), which re-wraps both vaults' keys under keyring ids of the restored database;
#     then the post-data section (indexes) restores and it gives the same decrypted contents per vault,
#     the same 12 ordered search results for the superuser (d1 selected) and for alice (alice_v
#     selected), the same plain rows, a vault_hnsw index that verifies, and vault.protect's
#     policies; pg_restore of the custom-format dump gives the same contents;
#   - restoring the plain dump WITHOUT ciphertext_io stops with an error instead of storing the
#     envelopes' text as plaintext.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use VectorVault;

my $db = 'postgres';
my $dim = 16;
my $src = VectorVault::new_node('src');
$src->start;
my $tmp = PostgreSQL::Test::Utils::tempdir;

my $vecs = VectorVault::int_vectors(400, $dim, 4545);
my $queries = VectorVault::int_vectors(12, $dim, 4646);
my %vec_of = map { ($_ + 1) => $vecs->[$_] } 0 .. 399;    # d1: 1..200, alice_v: 201..400
my $vmark = '31337.25';
$vec_of{$_} = [ $vmark, @{ $vec_of{$_} }[ 1 .. $dim - 1 ] ] for 7, 207;
my %marker = (text => 'VVDUMP-TEXT-9f2c', json => 'VVDUMP-JSON-4e7a', vector => $vmark);

$src->safe_psql($db, q{
CREATE EXTENSION vector_vault;
CREATE ROLE alice LOGIN;
GRANT EXECUTE ON FUNCTION vault.create_vault(text) TO alice;
SELECT vault.create_vault('d1');
CREATE TABLE docs (id int PRIMARY KEY, body etext, meta ejsonb, embedding evector(16));
GRANT SELECT, INSERT ON docs TO alice;
SELECT vault.protect('docs');
CREATE TABLE plain_docs (id int PRIMARY KEY, body text, meta jsonb, embedding real[]);
SET ROLE alice;
SELECT vault.create_vault('alice_v');
});
# Rows: body "<vault> row <id>" or the text marker, meta {"n": id} or the JSON marker.
sub rows_sql
{
	my ($table, @ids) = @_;
	return "INSERT INTO $table VALUES " . join(",\n", map {
		my $id = $_;
		my $marked = $id % 100 == 7;
		my $body = $marked ? "$marker{text} $id" : "row $id";
		my $meta = $marked ? qq({"m": "$marker{json}"}) : qq({"n": $id});
		my $vec = $table eq 'docs' ? VectorVault::vector_text($vec_of{$id}) : '{' . join(',', @{ $vec_of{$id} }) . '}';
		"($id, '$body', '$meta', '$vec')"
	} @ids) . ";\n";
}
$src->safe_psql($db, "SET vector_vault.vault = 'd1';\n" . rows_sql('docs', 1 .. 200));
$src->safe_psql($db, "SET ROLE alice; SET vector_vault.vault = 'alice_v';\n" . rows_sql('docs', 201 .. 400));
$src->safe_psql($db, rows_sql('plain_docs', 7, 107, 207));
$src->safe_psql($db,
	'CREATE INDEX docs_embedding_idx ON docs USING vault_hnsw (embedding evector_l2_ops) WITH (m = 16, ef_construction = 64)');

my %who = (superuser => [ vault => 'd1' ], alice => [ vault => 'alice_v', role => 'alice' ]);
sub contents
{
	my ($node, $dbname, $who) = @_;
	my %o = @{ $who{$who} };
	my $setup = ($o{role} ? "SET ROLE $o{role};\n" : '') . "SET vector_vault.vault = '$o{vault}';\n";
	return $node->safe_psql($dbname, $setup
		  . "SELECT count(*) || ' ' || md5(string_agg(id || '|' || body::text || '|' || meta::text || '|' || embedding::text, ';' ORDER BY id)) "
		  . "FROM docs WHERE vault.vault_of(body) = vault.vault_id('$o{vault}')");
}
sub state_of
{
	my ($node, $dbname) = @_;
	my %s = (plain => $node->safe_psql($dbname, 'SELECT md5(string_agg(plain_docs::text, \';\' ORDER BY id)) FROM plain_docs'));
	for my $w (sort keys %who)
	{
		$s{"$w rows"} = contents($node, $dbname, $w);
		# ef_search above the rows per vault: the restore rebuilds the index (a new graph), so
		# both sides must search exhaustively to be comparable.
		$s{"$w search"} = VectorVault::search_lists($node, $dbname, $queries, @{ $who{$w} }, table => 'docs', ef => 300);
	}
	return \%s;
}
my $before = state_of($src, $db);
like($before->{'superuser rows'}, qr/^200 /, 'the superuser reads its 200 d1 rows');
like($before->{'alice rows'}, qr/^200 /, 'alice reads her 200 alice_v rows');
ok(!grep({ /\b(2\d\d|300|3\d\d|400)\b/ } @{ $before->{'superuser search'} }), 'the superuser\'s searches return d1 rows only');

# Runs pg_dump / psql / pg_restore against a node with optional PGOPTIONS; returns (ok, stderr).
sub run_client
{
	my ($node, $pgoptions, @cmd) = @_;
	local $ENV{PGOPTIONS} = $pgoptions if defined $pgoptions;
	local $ENV{PGHOST} = $node->host;
	local $ENV{PGPORT} = $node->port;
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run(\@cmd, '>', \$out, '2>', \$err);
	return ($ok, $err, $out);
}
my $ct = '-c vector_vault.ciphertext_io=on';

# --- without ciphertext_io ---------------------------------------------------------------------------

my $offset = -s $src->logfile;
my ($ok, $err) = run_client($src, '-c log_error_verbosity=verbose', 'pg_dump', '-f', "$tmp/plaintext.sql", $db);
ok(!$ok, 'pg_dump as the superuser without ciphertext_io fails');
like($err, qr/docs/, '... while dumping table docs');
like(VectorVault::log_since($src, $offset), qr/ERROR:\s+42501:/, '... because decrypting alice\'s rows is refused (42501)');

# --- with ciphertext_io --------------------------------------------------------------------------------

($ok, $err) = run_client($src, $ct, 'pg_dump', '-f', "$tmp/dump.sql", $db);
ok($ok, 'pg_dump with ciphertext_io succeeds') or diag($err);
my $dump = VectorVault::read_bytes("$tmp/dump.sql");
# The COPY data of a table: the lines between "COPY public.<t> ..." and "\.".
sub copy_data
{
	my ($t) = @_;
	return $dump =~ /^COPY public\.$t \([^)]*\) FROM stdin;\n(.*?)^\\\.$/ms ? $1 : undef;
}
my $docs_data = copy_data('docs');
my $plain_data = copy_data('plain_docs');
ok(defined $docs_data && defined $plain_data, 'the dump has COPY data for docs and plain_docs');
$docs_data //= '';
$plain_data //= '';
my @docs_lines = split /\n/, $docs_data;
is(scalar(@docs_lines), 400, 'docs: 400 rows in the dump');
is(scalar(grep { (split /\t/)[1] =~ /^vve1:/ && (split /\t/)[2] =~ /^vve1:/ && (split /\t/)[3] =~ /^vve1:/ } @docs_lines), 400,
	'docs: every body, meta and embedding is a vve1: envelope');
(my $outside = $dump) =~ s/\Q$plain_data\E//;
for my $k (sort keys %marker)
{
	is(index($docs_data, $marker{$k}), -1, "docs' data holds no $k marker");
	is(index($outside, $marker{$k}), -1, "the dump outside plain_docs' data holds no $k marker");
	ok(index($plain_data, $marker{$k}) >= 0, "positive control: plain_docs' data shows the $k marker");
}
like($dump, qr/CREATE EXTENSION IF NOT EXISTS vector_vault/, 'the dump creates the extension');
like($dump, qr/^COPY vault\._vaults /m, 'the dump carries the vault catalog');
like($dump, qr/USING vault_hnsw/, 'the dump recreates the vault_hnsw index');
($ok, $err) = run_client($src, $ct, 'pg_dump', '-Fc', '-f', "$tmp/dump.custom", $db);
ok($ok, 'pg_dump -Fc with ciphertext_io succeeds') or diag($err);

# --- restore on a second cluster with the same keyring and key -----------------------------------------------

my $dst = VectorVault::new_node('dst', keyring => $src->{vv_keyring}, keyfile => $src->{vv_keyfile});
$dst->start;
$dst->safe_psql($db, 'CREATE ROLE alice LOGIN; CREATE DATABASE restored; CREATE DATABASE restored_fc; CREATE DATABASE restored_plain;');
# Issue 14: the restored database must adopt the vaults before anything decrypts, and CREATE
# INDEX decrypts: restore tables and data, adopt, then indexes (README, Backup).
($ok, $err) = run_client($src, $ct, 'pg_dump', '--section=pre-data', '--section=data', '-f', "$tmp/data.sql", $db);
ok($ok, 'pg_dump of the pre-data and data sections') or diag($err);
($ok, $err) = run_client($src, $ct, 'pg_dump', '--section=post-data', '-f', "$tmp/post.sql", $db);
ok($ok, 'pg_dump of the post-data section') or diag($err);
($ok, $err) = run_client($dst, $ct, 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'restored', '-f', "$tmp/dump.sql");
ok(!$ok && $err =~ /belong to a database of another cluster/,
	'psql -f of the whole dump stops at CREATE INDEX: the source\'s keys are not this database\'s');
$dst->safe_psql($db, 'DROP DATABASE restored; CREATE DATABASE restored');
($ok, $err) = run_client($dst, $ct, 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'restored', '-f', "$tmp/data.sql");
ok($ok, 'psql -f of the tables and data with ciphertext_io succeeds') or diag($err);
my ($kstate) = VectorVault::sql_error($dst, 'restored', "SET vector_vault.vault = 'd1'; SELECT count(body::text) FROM docs WHERE vault.vault_of(body) = vault.vault_id('d1')");
is($kstate, '22V02', 'restored: the source\'s keys are refused before adoption (they belong to the source database)');
like($dst->safe_psql('restored', 'SELECT string_agg(action, \';\') FROM vault.adopt_copied_vaults()'),
	qr/^re-wrapped 1 key versions under a new keyring id;re-wrapped 1 key versions under a new keyring id$/,
	'restored: the superuser adopts both vaults (keys re-wrapped under keyring ids of its own)');
($ok, $err) = run_client($dst, $ct, 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'restored', '-f', "$tmp/post.sql");
ok($ok, 'psql -f of the indexes after adoption succeeds') or diag($err);
my $after = state_of($dst, 'restored');
is($after->{plain}, $before->{plain}, 'restored: plain_docs equals the source');
for my $w (sort keys %who)
{
	is($after->{"$w rows"}, $before->{"$w rows"}, "restored: $w decrypts the same rows");
	is_deeply($after->{"$w search"}, $before->{"$w search"}, "restored: $w\'s 12 ordered search results equal the source\'s");
}
my ($vok, $report) = VectorVault::hnsw_verify($dst, 'restored', 'docs_embedding_idx');
ok($vok, 'restored: hnsw_verify reports every check ok') or diag($report);
is($dst->safe_psql('restored', "SELECT relrowsecurity AND relforcerowsecurity FROM pg_class WHERE relname = 'docs'"), 't',
	'restored: docs keeps forced row-level security');
my ($state, $msg) = VectorVault::sql_error($dst, 'restored', 'SELECT count(*) FROM docs WHERE body::text IS NOT NULL');
is($state, '42501', 'restored: the superuser still cannot decrypt alice\'s rows (42501)');

($ok, $err) = run_client($dst, $ct, 'pg_restore', '--section=pre-data', '--section=data', '-d', 'restored_fc', "$tmp/dump.custom");
ok($ok, 'pg_restore of the custom-format dump\'s tables and data with ciphertext_io succeeds') or diag($err);
$dst->safe_psql('restored_fc', 'SELECT * FROM vault.adopt_copied_vaults()');
($ok, $err) = run_client($dst, $ct, 'pg_restore', '--section=post-data', '-d', 'restored_fc', "$tmp/dump.custom");
ok($ok, 'pg_restore of its indexes after adoption succeeds') or diag($err);
is(contents($dst, 'restored_fc', $_), $before->{"$_ rows"}, "pg_restore: $_ decrypts the same rows") for sort keys %who;

# --- restoring without ciphertext_io -------------------------------------------------------------------------

my $out;
($ok, $err, $out) = run_client($dst, undef, 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=verbose',
	'-d', 'restored_plain', '-f', "$tmp/dump.sql");
ok(!$ok, 'psql -f of the dump without ciphertext_io stops with an error');
my ($code) = $err =~ /ERROR:\s+([0-9A-Z]{5}):/;
ok(defined $code && $code =~ /^(55000|22P02)$/, 'without ciphertext_io the envelopes are refused (' . ($code // 'no SQLSTATE') . ')')
  or diag($err);
is($dst->safe_psql('restored_plain', "SELECT count(*) FROM pg_class WHERE relname = 'docs'") eq '0'
	  || $dst->safe_psql('restored_plain', 'SELECT count(*) FROM docs') eq '0' ? 'no rows' : 'rows',
	'no rows', 'without ciphertext_io no docs row was stored');

$dst->stop;
$src->stop;
done_testing();
