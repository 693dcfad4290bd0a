# 001_citus_cluster.pl — vector_vault on a real Citus 13.2.2 cluster (issue 10): a coordinator
# and two workers on loopback, shared_preload_libraries = 'citus,vector_vault', every node with
# the same master key and its own keyring.
#
#   - one vault catalog: vault.create_vault on the coordinator makes the vault exist on both
#     workers with the same id, the same key version and the same wrapped keyring entry (so the
#     same data key; the entry is the ciphertext under the common master key); grants and
#     rotations reach the workers; a worker refuses catalog changes made on it directly, and a
#     non-superuser cannot call the apply function;
#   - the recommended layout: a table distributed by its tenant (= vault) column, a vault_hnsw
#     index on every shard, ORDER BY embedding <-> $1 LIMIT k through the coordinator equal to
#     the exact global top-k (computed here), a vault-scoped query routed to one shard (EXPLAIN),
#     COPY through the coordinator sealed under the vault the session selected;
#   - vault.protect (RLS) on the distributed table: a reader granted one vault sees and decrypts
#     only that vault through the coordinator (positive control: the owner sees both);
#   - a drop shreds the keyring entries on every node;
#   - an API-key session is refused distributed statements (fail closed; positive control after
#     vault.logout).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;

my $db = 'postgres';
my $pw = 'citus-password-0001';

my ($coord, @workers) = VectorVault::citus_cluster();
my @nodes = ($coord, @workers);
is($coord->safe_psql($db, 'SELECT count(*) FROM citus_get_active_worker_nodes()'), '2',
	'two active workers');

# --- one vault catalog -----------------------------------------------------------------------
$coord->safe_psql($db, q{
CREATE ROLE vv_owner LOGIN;
CREATE ROLE vv_reader LOGIN;
GRANT EXECUTE ON FUNCTION vault.create_vault(text) TO vv_owner;
GRANT CREATE ON SCHEMA public TO vv_owner;
});
$coord->safe_psql($db, qq{SET ROLE vv_owner;
SELECT vault.set_key_password('$pw');
SELECT vault.create_vault('t1');
SELECT vault.create_vault('t2');
SELECT vault.create_vault('t3');
SELECT vault.grant('t1', 'vv_reader', 'read');});

my $catalog_sql = q{SELECT vault_id || ' ' || name || ' ' || owner || ' ' || state || ' ' || key_version
	FROM vault._vaults ORDER BY name};
my $coord_catalog = $coord->safe_psql($db, $catalog_sql);
like($coord_catalog, qr/t1 vv_owner active 1\n.* t2 vv_owner active 1\n.* t3 /s, 'coordinator catalog');
my %vid = map { (split / /)[1] => (split / /)[0] } split /\n/, $coord_catalog;
my $grants_sql = q{SELECT vault_id || ' ' || grantee || ' ' || level FROM vault._grants ORDER BY 1};
for my $i (0, 1)
{
	my $w = $workers[$i];
	is($w->safe_psql($db, $catalog_sql), $coord_catalog, "worker $i: same vaults, ids and versions");
	is($w->safe_psql($db, $grants_sql), $coord->safe_psql($db, $grants_sql),
		"worker $i: same grants");
	my $same = 1;
	for my $name (qw(t1 t2 t3))
	{
		my $file = VectorVault::key_file_name($vid{$name}, 1);
		my $a = slurp_file("$coord->{vv_keyring}/$file");
		my $b = -f "$w->{vv_keyring}/$file" ? slurp_file("$w->{vv_keyring}/$file") : '';
		$same = 0 unless $a eq $b && length($a) == 88;
	}
	ok($same, "worker $i: keyring holds the coordinator's wrapped entries (same data keys)");
}

# A worker takes catalog changes only from the coordinator.
my ($state, $msg) = VectorVault::sql_error($workers[0], $db, "SELECT vault.create_vault('rogue')");
is($state, '0A000', 'a worker refuses vault.create_vault made on it directly (even by a superuser)');
($state) = VectorVault::sql_error($workers[0], $db,
	"INSERT INTO vault._grants VALUES ($vid{t2}, 'vv_reader', 'read', 'vv_owner')");
is($state, '0A000', 'a worker refuses a direct catalog write (even by a superuser)');
($state, $msg) = VectorVault::sql_error($workers[0], $db,
	q{SET ROLE vv_owner; SELECT vault._citus_apply('{}')});
is($state, '42501', 'a non-superuser cannot call the apply function on a worker');

# --- distributed by vault -------------------------------------------------------------------
$coord->safe_psql($db, q{SET ROLE vv_owner;
CREATE TABLE docs (tenant text NOT NULL, id bigint NOT NULL, body etext, embedding evector(3),
                   PRIMARY KEY (tenant, id));
SELECT create_distributed_table('docs', 'tenant', shard_count => 4);
GRANT SELECT ON docs TO vv_reader;});

# 150 rows per vault, inserted through the coordinator (t1, t2) and COPY (t3's rows come later).
my (%vec, @rows);
my $ins = '';
for my $t (qw(t1 t2))
{
	$ins .= "SET vector_vault.vault = '$t';\nINSERT INTO docs VALUES\n";
	my @vals;
	for my $i (1 .. 150)
	{
		my $id = ($t eq 't1' ? 0 : 1000) + $i;
		my @v = (($i * 37) % 101, ($i * 53) % 97, ($i * 11) % 89);
		$vec{$id} = \@v;
		push @vals, "('$t', $id, 'SECRET-$t-$id', '[" . join(',', @v) . "]')";
	}
	$ins .= join(",\n", @vals) . ";\n";
}
$coord->safe_psql($db, "SET ROLE vv_owner;\n$ins");

# COPY through the coordinator seals under the selected vault.
my $copy = "SET ROLE vv_owner;\nSET vector_vault.vault = 't2';\nCOPY docs (tenant, id, body, embedding) FROM STDIN;\n";
for my $i (1 .. 50)
{
	my $id = 2000 + $i;
	my @v = (($i * 7) % 50, ($i * 13) % 60, ($i * 17) % 70);
	$vec{$id} = \@v;
	$copy .= "t2\t$id\tCOPIED-$id\t[" . join(',', @v) . "]\n";
}
$copy .= "\\.\n";
$coord->safe_psql($db, $copy);
is($coord->safe_psql($db, q{SET ROLE vv_owner;
	SELECT count(*) FILTER (WHERE vault.vault_of(body) = vault.vault_id('t2')
	                           AND vault.vault_of(embedding) = vault.vault_id('t2')),
	       count(*) FILTER (WHERE body::text = 'COPIED-' || id)
	FROM docs WHERE id > 2000}), '50|50',
	'COPY through the coordinator: sealed under the selected vault, decrypts to the copied text');

# Plaintext never reached a worker's tables: look for the marker in the workers' data files.
$coord->safe_psql($db, 'CHECKPOINT');
$_->safe_psql($db, 'CHECKPOINT') for @workers;
VectorVault::assert_none_found({ body => 'SECRET-t1-', copied => 'COPIED-20' },
	'worker data directories', [ map { $_->data_dir } @workers ]);

# Between the nodes values travel as envelopes: the workers' statement logs (log_statement = all)
# show the coordinator's sealed constants and never the plaintext (positive control: 'vve1:').
my $wlogs = join('', map { slurp_file($_->logfile) } @workers);
like($wlogs, qr/'vve1:[A-Za-z0-9+\/=]{40,}'::public\.e(vector|text)/, 'worker logs show sealed constants');
unlike($wlogs, qr/SECRET-t[12]-|COPIED-20/, 'worker logs hold no plaintext of the rows sent to them');

$coord->safe_psql($db, q{SET ROLE vv_owner;
CREATE INDEX docs_embedding_idx ON docs USING vault_hnsw (embedding evector_l2_ops);
ANALYZE docs;});
my $shard_indexes = 0;
$shard_indexes += $_->safe_psql($db,
	q{SET citus.show_shards_for_app_name_prefixes = '*'; SELECT count(*) FROM pg_class c JOIN pg_am a ON a.oid = c.relam
	  WHERE a.amname = 'vault_hnsw' AND c.relname LIKE 'docs_embedding_idx_%'}) for @workers;
is($shard_indexes, 4, 'a vault_hnsw index on each of the 4 shards');

# Global top-10 through the coordinator equals the exact top-10 over every readable row.
sub exact_top
{
	my ($q, $k, $filter) = @_;
	my @ids = grep { $filter->($_) } keys %vec;
	my %d = map {
		my $v = $vec{$_};
		($_ => ($v->[0] - $q->[0])**2 + ($v->[1] - $q->[1])**2 + ($v->[2] - $q->[2])**2)
	} @ids;
	my @sorted = sort { $d{$a} <=> $d{$b} || $a <=> $b } @ids;
	return dist_sig($q, join(',', @sorted[0 .. $k - 1]));
}

# The sorted squared distances of a list of ids to $q ("exact top-k" holds up to ties: the data
# are small integers, so several rows can share the k-th distance and either is a right answer).
sub dist_sig
{
	my ($q, $ids) = @_;
	my @ids = grep { /^\d+$/ } split /[,\n]/, $ids;
	my %seen;
	return 'duplicate ids' if grep { $seen{$_}++ } @ids;
	return join(',', sort { $a <=> $b } map {
		my $v = $vec{$_} // [ -1e9, -1e9, -1e9 ];
		($v->[0] - $q->[0])**2 + ($v->[1] - $q->[1])**2 + ($v->[2] - $q->[2])**2
	} @ids);
}
my $all_ok = 1;
my $checked = 0;
for my $q ([ 10, 20, 30 ], [ 90, 5, 44 ], [ 50, 50, 50 ], [ 3, 96, 70 ])
{
	my $qt = '[' . join(',', @$q) . ']';
	my $got = $coord->safe_psql($db, qq{SET ROLE vv_owner; SET vector_vault.vault = 't1';
PREPARE knn(evector) AS SELECT id FROM docs ORDER BY embedding <-> \$1 LIMIT 10;
EXECUTE knn('$qt');});
	$checked++;
	my ($g, $e) = (dist_sig($q, $got), exact_top($q, 10, sub { 1 }));
	next if $g eq $e;
	$all_ok = 0;
	diag("query $qt: distances $g, exact $e");
}
ok($all_ok, "global top-10 through the coordinator equals the exact top-10, up to ties ($checked queries)");

my $plan = $coord->safe_psql($db, q{SET ROLE vv_owner; SET vector_vault.vault = 't1';
EXPLAIN (COSTS OFF) SELECT id FROM docs ORDER BY embedding <-> '[1,2,3]' LIMIT 10});
like($plan, qr/Task Count: 4/, 'a global KNN runs on all 4 shards');
like($plan, qr/Index Scan using docs_embedding_idx_\d+/, 'each shard searches its vault_hnsw index');
$plan = $coord->safe_psql($db, q{SET ROLE vv_owner; SET vector_vault.vault = 't1';
EXPLAIN (COSTS OFF) SELECT id FROM docs WHERE tenant = 't1' ORDER BY embedding <-> '[1,2,3]' LIMIT 10});
like($plan, qr/Task Count: 1\b/, 'a vault-scoped KNN is routed to one shard');
is(dist_sig([ 10, 20, 30 ], $coord->safe_psql($db, q{SET ROLE vv_owner; SET vector_vault.vault = 't1';
SELECT string_agg(id::text, ',' ORDER BY id) FROM (SELECT id FROM docs WHERE tenant = 't1'
ORDER BY embedding <-> '[10,20,30]' LIMIT 10) s})),
	exact_top([ 10, 20, 30 ], 10, sub { $_[0] <= 150 }), 'vault-scoped top-10 is exact (up to ties)');

# Results decrypt on the coordinator for the client.
is($coord->safe_psql($db, q{SET ROLE vv_owner;
SELECT body FROM docs WHERE tenant = 't1' AND id = 7}), 'SECRET-t1-7', 'etext decrypts through the coordinator');
is($coord->safe_psql($db, q{SET ROLE vv_owner;
SELECT embedding FROM docs WHERE tenant = 't2' AND id = 1001}),
	'[' . join(',', @{ $vec{1001} }) . ']', 'evector prints as pgvector text through the coordinator');

# --- vault.protect on the distributed table -------------------------------------------------
$coord->safe_psql($db, q{SET ROLE vv_owner; SELECT vault.protect('docs');});
is($coord->safe_psql($db, q{SET ROLE vv_owner; SELECT count(*) FROM docs}), '350',
	'protect: the owner still sees every row (positive control)');
is($coord->safe_psql($db, q{SET ROLE vv_reader; SELECT count(*), count(*) FILTER (WHERE tenant = 't1') FROM docs}),
	'150|150', 'protect: a reader granted t1 sees only t1 rows through the coordinator');
my $reader_top = $coord->safe_psql($db, q{SET ROLE vv_reader; SET vector_vault.vault = 't1';
SELECT string_agg(id::text, ',' ORDER BY id) FROM (SELECT id FROM docs ORDER BY embedding <-> '[10,20,30]' LIMIT 10) s});
is(dist_sig([ 10, 20, 30 ], $reader_top), exact_top([ 10, 20, 30 ], 10, sub { $_[0] <= 150 }),
	'protect: the reader\'s global KNN is t1\'s exact top-10 (up to ties)');
is(scalar(grep { $_ > 150 } split /,/, $reader_top), 0, 'protect: ... and holds only t1 rows');
# Directly on the workers: the shards carry the policies, so a reader connecting to a worker
# and naming the shard tables sees only its vault, and cannot decrypt the other's values.
my $placements = $coord->safe_psql($db, q{SELECT nodeport || ' ' || shard_name('docs'::regclass, shardid)
	FROM citus_shards WHERE table_name = 'docs'::regclass ORDER BY 1});
my ($direct_rows, $direct_t1, $direct_owner) = (0, 0, 0);
for my $line (split /\n/, $placements)
{
	my ($port, $shard) = split / /, $line;
	my ($w) = grep { $_->port == $port } @workers;
	my $r = $w->safe_psql($db, qq{SET ROLE vv_reader; SELECT count(*), count(*) FILTER (WHERE tenant = 't1') FROM $shard});
	my ($all, $t1) = split /\|/, $r;
	$direct_rows += $all;
	$direct_t1 += $t1;
	$direct_owner += $w->safe_psql($db, qq{SET ROLE vv_owner; SELECT count(*) FROM $shard});
}
is("$direct_rows|$direct_t1", '150|150', 'directly on the workers the reader sees only t1 rows of the shards');
is($direct_owner, 350, 'directly on the workers the owner sees every row (positive control)');
my ($t2port, $t2shard) = split / /, $coord->safe_psql($db, q{SELECT nodeport || ' ' || shard_name('docs'::regclass, shardid)
	FROM citus_shards WHERE table_name = 'docs'::regclass
	AND shardid = get_shard_id_for_distribution_column('docs', 't2')});
my ($t2w) = grep { $_->port == $t2port } @workers;
($state) = VectorVault::sql_error($t2w, $db,
	qq{SET ROLE vv_reader; SET row_security = off; SELECT body::text FROM $t2shard LIMIT 1});
is($state, '42501', 'directly on a worker the reader cannot switch RLS off on a shard');
($state) = VectorVault::sql_error($t2w, $db,
	qq{SET ROLE vv_reader; SELECT vault.access_level('t2') IS NULL AS none;
	   SELECT vault._citus_apply('{}')});
is($state, '42501', 'directly on a worker the reader cannot apply a catalog');

# A revocation reaches the workers at the reader's next statement, even on the worker
# connections its session already uses (Citus caches them per session).
is($coord->safe_psql($db, q{SET ROLE vv_reader; SELECT count(*) FROM docs;
SET ROLE vv_owner; SELECT vault.revoke('t1', 'vv_reader');
SET ROLE vv_reader; SELECT count(*) FROM docs;
SET ROLE vv_owner; SELECT vault.grant('t1', 'vv_reader', 'read');
SET ROLE vv_reader; SELECT count(*) FROM docs;}), "150\n\n0\n\n150",
	'revoke and grant take effect on the workers at the next statement of a live session');
($state) = VectorVault::sql_error($coord, $db,
	q{SET ROLE vv_reader; SET row_security = off; SELECT count(*) FROM docs});
is($state, '42501', 'protect: row_security = off is refused for the reader');

# --- rotation reaches the workers -----------------------------------------------------------
$coord->safe_psql($db, q{SET ROLE vv_owner; SELECT vault.rotate_key('t1');});
for my $i (0, 1)
{
	is($workers[$i]->safe_psql($db, "SELECT key_version FROM vault._vaults WHERE name = 't1' AND state = 'active'"),
		'2', "worker $i: t1 rotated to version 2");
	ok(-f "$workers[$i]->{vv_keyring}/" . VectorVault::key_file_name($vid{t1}, 2),
		"worker $i: t1 version 2 entry installed");
}
$coord->safe_psql($db, q{SET ROLE vv_owner; SET vector_vault.vault = 't1';
INSERT INTO docs VALUES ('t1', 500, 'AFTER-ROTATION', '[1,1,1]');});
is($coord->safe_psql($db, q{SET ROLE vv_owner;
SELECT vault.key_version_of(body) || ' ' || body FROM docs WHERE tenant = 't1' AND id = 500}),
	'2 AFTER-ROTATION', 'a value sealed under the new version decrypts through the coordinator');

# Retiring a version changes no catalog row: the workers shred it at the next catalog change or
# vault.citus_sync() (docs/citus.md), never earlier.
$coord->safe_psql($db, q{SET ROLE vv_owner; SELECT vault.create_vault('t5'); SELECT vault.rotate_key('t5');});
my $t5id = $coord->safe_psql($db, q{SELECT vault_id FROM vault._vaults WHERE name = 't5'});
my $t5v1 = VectorVault::key_file_name($t5id, 1);
ok((-f "$workers[0]->{vv_keyring}/$t5v1") && (-f "$workers[1]->{vv_keyring}/$t5v1"),
	't5 version 1 on both workers before the retirement');
$coord->safe_psql($db, q{SET ROLE vv_owner; SELECT vault.retire_key_version('t5', 1);});
ok(!-f "$coord->{vv_keyring}/$t5v1", 't5 version 1 shredded on the coordinator');
$coord->safe_psql($db, q{SELECT vault.citus_sync();});
ok(!(-f "$workers[0]->{vv_keyring}/$t5v1") && !(-f "$workers[1]->{vv_keyring}/$t5v1"),
	'after vault.citus_sync() the workers shredded t5 version 1');
ok((-f "$workers[0]->{vv_keyring}/" . VectorVault::key_file_name($t5id, 2)),
	't5 version 2 kept on the workers');
($state) = VectorVault::sql_error($coord, $db, q{SET ROLE vv_owner; SELECT vault.citus_sync();});
is($state, '42501', 'vault.citus_sync() is for superusers');

# --- drop shreds on every node ------------------------------------------------------------
$coord->safe_psql($db, q{SET ROLE vv_owner; SET vector_vault.vault = 't3';
INSERT INTO docs VALUES ('t3', 3001, 'DOOMED', '[9,9,9]');});
my $t3file = VectorVault::key_file_name($vid{t3}, 1);
ok((-f "$coord->{vv_keyring}/$t3file") && (-f "$workers[0]->{vv_keyring}/$t3file")
	&& (-f "$workers[1]->{vv_keyring}/$t3file"), 't3 has its entry on every node before the drop');
$coord->safe_psql($db, q{SET ROLE vv_owner; SELECT vault.drop_vault('t3');});
for my $n (@nodes)
{
	ok(!-f "$n->{vv_keyring}/$t3file", $n->name . ': t3 entry shredded');
	is($n->safe_psql($db, "SELECT state FROM vault._vaults WHERE vault_id = $vid{t3}"),
		'dropped', $n->name . ': t3 is a tombstone');
}
is($workers[0]->safe_psql($db, 'SELECT count(*) FROM vault._citus_pending_shreds')
	+ $workers[1]->safe_psql($db, 'SELECT count(*) FROM vault._citus_pending_shreds'),
	0, 'no shred left pending on the workers');
my ($st3, $msg3, $err3, $out3) = VectorVault::sql_error($coord, $db,
	q{SET ROLE vv_owner; SET vector_vault.ciphertext_io = off;
	  SELECT body FROM docs WHERE tenant = 't3' AND id = 3001});
ok($out3 !~ /DOOMED/, "t3's row no longer yields plaintext through the coordinator");
is($coord->safe_psql($db, q{SELECT count(*) FROM docs WHERE tenant = 't3'}), '1',
	"t3's ciphertext row is still stored (the shred, not a delete, made it unreadable)");

# A drop while a worker is down fails as a whole (Citus' two-phase commit): no node shreds, so
# no node is left serving a vault the others dropped; after the worker returns the drop succeeds.
$coord->safe_psql($db, q{SET ROLE vv_owner; SELECT vault.create_vault('t4');});
my $t4id = $coord->safe_psql($db, q{SELECT vault_id FROM vault._vaults WHERE name = 't4'});
my $t4file = VectorVault::key_file_name($t4id, 1);
$workers[1]->stop;
($state) = VectorVault::sql_error($coord, $db, q{SET ROLE vv_owner; SELECT vault.drop_vault('t4');});
isnt($state, '', "drop with a worker down is refused ($state)");
ok((-f "$coord->{vv_keyring}/$t4file") && (-f "$workers[0]->{vv_keyring}/$t4file"),
	't4 keys intact on the nodes that were up');
is($coord->safe_psql($db, q{SELECT state FROM vault._vaults WHERE vault_id = } . $t4id), 'active',
	't4 still active on the coordinator');
$workers[1]->start;
$coord->safe_psql($db, q{SET ROLE vv_owner; SELECT vault.drop_vault('t4');});
ok(!(-f "$coord->{vv_keyring}/$t4file") && !(-f "$workers[0]->{vv_keyring}/$t4file")
	&& !(-f "$workers[1]->{vv_keyring}/$t4file"), 'after the worker returned, the drop shreds t4 on every node');

# --- API keys and distributed tables ----------------------------------------------------
# vv_owner owns every vault; its key reads t1 only.
my $key = $coord->safe_psql($db, qq{SET ROLE vv_owner;
SELECT vault.create_api_key('$pw', '{"t1": "read"}', 'citus t1 reader')});
like($key, qr/^vv_/, 'API key created on the coordinator');
my ($key_id) = $key =~ /^vv_([0-9a-f]{16})_/;
is($workers[0]->safe_psql($db, 'SELECT count(*) FROM vault._api_keys'), '1',
	'the API key (digest only) reached the workers');
my $t1_count = $coord->safe_psql($db, q{SET ROLE vv_owner; SELECT count(*) FROM docs WHERE tenant = 't1'});
my $role_count = $coord->safe_psql($db, q{SET ROLE vv_owner; SELECT count(*) FROM docs});
cmp_ok($role_count, '>', $t1_count, "the role reads more than t1 ($role_count rows; positive control)");

# API-key sessions get no access to distributed tables (fail closed): a principal token in SQL
# text could be read from citus_stat_activity by another session of the same role and replayed
# (security review, 2026-12-05); tokens wait for a binding to the distributed transaction.
my $bg = $coord->background_psql($db, on_error_stop => 0);
$bg->query_safe("SET ROLE vv_owner; SET vector_vault.vault = 't1'; SELECT vault.login('$key');");
$bg->{stderr} = '';
$bg->query(q{SELECT count(*) FROM docs});
like($bg->{stderr}, qr/not available to API-key sessions/,
	'key session: reading a distributed table is refused (fail closed)');
$bg->{stderr} = '';
$bg->query(q{SELECT id FROM docs ORDER BY embedding <-> '[10,20,30]' LIMIT 10});
like($bg->{stderr}, qr/not available to API-key sessions/, 'key session: a distributed KNN is refused');
$bg->{stderr} = '';
$bg->query(q{INSERT INTO docs VALUES ('t1', 9999, 'X', '[1,1,1]')});
like($bg->{stderr}, qr/not available to API-key sessions/,
	'key session: writes to distributed tables are refused');
$bg->{stderr} = '';
$bg->query_safe('SELECT vault.logout()');
is($bg->query_safe('SELECT count(*) FROM docs'), $role_count,
	'after vault.logout the same session reads as its role again (positive control)');
$bg->quit;

# No token is ever sent, and a token written by a client is refused wherever it runs: on a
# worker directly, and pushed down through the coordinator (the replay path the review found).
my $wlog = slurp_file($workers[0]->logfile) . slurp_file($workers[1]->logfile);
unlike($wlog, qr/vvpt1\./, 'no principal token reached a worker');
unlike($wlog, qr/\Q$key\E/, 'the API key itself never reached a worker');
my $forged = "vvpt1.$key_id.9999999999." . ('0' x 64) . '.' . ('0' x 64);
($state) = VectorVault::sql_error($workers[0], $db,
	"SET ROLE vv_owner; SELECT vault._citus_as_key('$forged')");
is($state, '28000', 'a token is refused on a worker, even for the key owner\'s role');
($state) = VectorVault::sql_error($coord, $db,
	"SET ROLE vv_owner; SELECT count(*) FROM docs WHERE vault._citus_as_key('$forged')");
is($state, '28000', 'a token pushed down to the workers through the coordinator is refused');

# The catalog push never reaches the client's NOTICEs (citus.log_remote_commands is a user
# setting, and the push holds password and key digests and wrapped keys).
my ($lout, $lerr) = ('', '');
$coord->psql($db, "SET ROLE vv_owner; SET citus.log_remote_commands = on; SELECT vault.create_vault('t_log')",
	stdout => \$lout, stderr => \$lerr);
unlike($lerr, qr/_citus_apply/, 'citus.log_remote_commands does not echo the catalog push to the client');
($lout, $lerr) = ('', '');
$coord->psql($db, "SET ROLE vv_owner; SET citus.log_remote_commands = on; SELECT count(*) FROM docs",
	stdout => \$lout, stderr => \$lerr);
like($lerr, qr/issuing/, 'positive control: the same setting echoes an ordinary remote command');

done_testing();
