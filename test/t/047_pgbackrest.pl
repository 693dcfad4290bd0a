# 047_pgbackrest.pl — backups with pgBackRest (issue 15): archiving, full and incremental
# backups, keyring snapshots next to them, restores and PITR onto fresh directories, no plaintext
# in the repository, and repository encryption alongside.
#
# A node archives with `pgbackrest archive-push` into two repositories of stanza "vv": repo1
# plain and uncompressed (so the byte probe sees exactly what pgBackRest stores) and repo2
# encrypted (repo2-cipher-type=aes-256-cbc). Vaults va, vb, vc share table items and one
# vault_hnsw index; reader_a/b/c may read one vault each. A full backup (both repositories), more
# rows, an incremental backup with its keyring snapshot (scripts/pgbackrest-backup.sh), more rows
# only WAL has, a timestamp T1 and an LSN L1, then vault.drop_vault('va') and rows after it.
#   - repo1, --type=time to T1, onto a fresh directory, with the CURRENT keyring: va is listed
#     active but every va value fails with 22V02 and the owner's searches return no va row;
#     vb and vc decrypt and search exactly as at T1; the rows written after T1 are absent.
#   - repo2 (encrypted), --type=lsn to L1, with the keyring snapshot of the incremental backup
#     (restored by scripts/keyring-backup.sh): every vault, va included, decrypts and searches
#     exactly as before the drop — keyring retention is the window in which a drop can be undone.
#   - probe: repo1 holds none of the etext markers, float4 bytes of marker vectors or keyring
#     entries' bytes, while it holds the plaintext control rows (positive control: the probe sees
#     plaintext when it is there); repo2 holds not even the control rows; keyring snapshots hold no
#     master key.
#   - keyring retention: pruning to the newest snapshot taken after the drop leaves va's key in no
#     snapshot.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;

my $db = 'postgres';
my $dim = 16;
my $node = VectorVault::new_node('live', init_opts => { allows_streaming => 1 });
my $brdir = $node->basedir . '/pgbackrest';
my $cipher_pass = join('', map { sprintf('%02x', int(rand(256))) } 1 .. 32);
my $br = VectorVault::pgbackrest_setup($node, $brdir, cipher_pass => $cipher_pass);
my $kdest = $node->basedir . '/keyring_snapshots';
$node->start;
VectorVault::pgbackrest($br, 'stanza-create');
VectorVault::pgbackrest($br, 'check');
pass('stanza created and checked (archive-push into both repositories)');

my $vecs = VectorVault::int_vectors(700, $dim, 4747);
my $queries = VectorVault::int_vectors(10, $dim, 4848);
my %vec_of;
my %base = (va => 0, vb => 1000, vc => 2000);
for my $v (sort keys %base)
{
	my $off = { va => 0, vb => 230, vc => 460 }->{$v};
	$vec_of{ $base{$v} + 1 + $_ } = $vecs->[ $off + $_ ] for 0 .. 229;
}
# Marker vectors (float4 values that occur nowhere else), one per vault, rows x300.
for my $v (keys %base)
{
	$vec_of{ $base{$v} + 300 } = [ map { 1000 + $base{$v} + $_ + 0.125 } 1 .. $dim ];
}
# The plaintext control vector, stored only in a plain real[] column.
my $control_vec = [ map { 7000 + $_ + 0.625 } 1 .. $dim ];

$node->safe_psql($db, q{
CREATE EXTENSION vector_vault;
SELECT vault.create_vault('va');
SELECT vault.create_vault('vb');
SELECT vault.create_vault('vc');
CREATE ROLE reader_a LOGIN;
CREATE ROLE reader_b LOGIN;
CREATE ROLE reader_c LOGIN;
SELECT vault.grant('va', 'reader_a', 'read');
SELECT vault.grant('vb', 'reader_b', 'read');
SELECT vault.grant('vc', 'reader_c', 'read');
CREATE TABLE items (id int PRIMARY KEY, body etext, embedding evector(16));
GRANT SELECT ON items TO reader_a, reader_b, reader_c;
CREATE TABLE plain_control (id int PRIMARY KEY, body text, embedding real[]);
});

# Inserts rows @ids of a vault; bodies are "pgbr-secret-<vault> <id>".
sub insert_rows
{
	my ($vault, @ids) = @_;
	$node->safe_psql($db, "SET vector_vault.vault = '$vault';\n"
		  . VectorVault::insert_sql('items', \%vec_of, \@ids, "pgbr-secret-$vault"));
	return;
}
sub range_of { my ($v, $from, $to) = @_; return map { $base{$v} + $_ } $from .. $to; }
insert_rows($_, range_of($_, 1, 100), $base{$_} + 300) for sort keys %base;
# The plaintext control: the same kind of values, in plain columns.
$node->safe_psql($db, 'INSERT INTO plain_control VALUES '
	  . "(300, 'pgbr-control-text 300', '{" . join(',', @$control_vec) . "}')");
$node->safe_psql($db,
	'CREATE INDEX items_embedding_idx ON items USING vault_hnsw (embedding evector_l2_ops) WITH (m = 16, ef_construction = 64)');
my %vault_id = map { $_ => $node->safe_psql($db, "SELECT vault_id FROM vault._vaults WHERE name = '$_'") } keys %base;

# --- backups --------------------------------------------------------------------------------------

VectorVault::pgbackrest($br, '--repo=1', '--type=full', 'backup');
VectorVault::keyring_backup('backup', '--keyring', $node->{vv_keyring}, '--dest', $kdest, '--label', 'full');
VectorVault::pgbackrest($br, '--repo=2', '--type=full', 'backup');
pass('full backups into repo1 (plain) and repo2 (aes-256-cbc), keyring snapshot next to repo1\'s');
insert_rows($_, range_of($_, 101, 150)) for sort keys %base;

# The shipped wrapper: incremental backup, then a keyring snapshot labelled with its label.
my ($out, $err) = ('', '');
IPC::Run::run([ 'bash', "$ENV{VV_TOP}/scripts/pgbackrest-backup.sh", '--config', $br->{conf}, '--stanza', 'vv',
		'--repo', '1', '--type', 'incr', '--keyring', $node->{vv_keyring}, '--keyring-dest', $kdest,
		'--keyring-retain-days', '30' ], '>', \$out, '2>', \$err, IPC::Run::timeout(300))
  or die "pgbackrest-backup.sh failed: $err$out";
my $info = VectorVault::pgbackrest($br, '--repo=1', '--output=json', 'info');
my @labels = $info =~ /"label":"([^"]+)"/g;
ok(@labels == 2 && $labels[0] =~ /F$/ && $labels[1] =~ /I$/, 'repo1 holds one full and one incremental backup')
  or diag($info);
my @snaps = split /\n/, VectorVault::keyring_backup('list', '--dest', $kdest);
ok(@snaps == 2 && $snaps[1] =~ /-\Q$labels[1]\E$/, 'a keyring snapshot labelled with the incremental backup\'s label')
  or diag("@snaps");
my $snap_incr = $snaps[1];
ok(-f "$kdest/$snap_incr/" . VectorVault::key_file_name($vault_id{va}), '... it holds va\'s key');

# Rows only the WAL archive has, then the recovery targets.
insert_rows($_, range_of($_, 151, 220)) for sort keys %base;
my %md5_sql = map {
	$_ => "SET vector_vault.vault = '$_';\n"
	  . "SELECT count(*) || ' ' || md5(string_agg(id || '|' || body::text || '|' || embedding::text, ';' ORDER BY id)) "
	  . "FROM items WHERE id / 1000 = " . ($base{$_} / 1000)
} keys %base;
my %reader = (va => 'reader_a', vb => 'reader_b', vc => 'reader_c');
# What a node shows: per vault its rows' digest and its reader's index searches.
sub state_of
{
	my ($n, @vaults) = @_;
	my %s;
	for my $v (@vaults)
	{
		$s{"$v rows"} = $n->safe_psql($db, $md5_sql{$v});
		$s{"$v searches"} = VectorVault::search_lists($n, $db, $queries, vault => $v, role => $reader{$v});
	}
	return \%s;
}
my $pre = state_of($node, qw(va vb vc));
like($pre->{"$_ rows"}, qr/^221 [0-9a-f]{32}$/, "before the drop: 221 $_ rows decrypt") for qw(va vb vc);
ok(!grep({ !/^(\d+,){9}\d+$/ } @{ $pre->{"$_ searches"} }), "before the drop: $_ searches return 10 rows each")
  for qw(va vb vc);
sleep(1.2);
my $t1 = $node->safe_psql($db, "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'");
my $l1 = $node->safe_psql($db, 'SELECT pg_current_wal_lsn()');
sleep(1.2);

# --- the drop, and rows after it --------------------------------------------------------------------

$node->safe_psql($db, "SELECT vault.drop_vault('va')");
my $va_key = VectorVault::key_file_name($vault_id{va});
ok(!-f "$node->{vv_keyring}/$va_key", 'after the drop: va\'s key is gone from the live keyring');
insert_rows('vb', range_of('vb', 221, 229));
VectorVault::pgbackrest($br, 'check');    # switches WAL and waits until both repositories hold it
my $keyring_now = $node->basedir . '/keyring_current';
VectorVault::copy_dir($node->{vv_keyring}, $keyring_now);

# --- restore 1: repo1, to a timestamp, with the current keyring ---------------------------------------

my $r1 = VectorVault::pgbackrest_restore('r_time_current', $br, $node, $keyring_now,
	'--repo=1', '--type=time', "--target=$t1", '--target-action=promote');
$r1->start;
ok(VectorVault::wait_promoted($r1, $db), 'repo1 --type=time: restored to T1 and promoted');
is($r1->safe_psql($db, "SELECT state FROM vault._vaults WHERE name = 'va'"), 'active',
	'current keyring: the restored catalog lists va as active (the drop came after T1)');
is($r1->safe_psql($db, 'SELECT count(*) FROM items WHERE id BETWEEN 1221 AND 1229'), '0',
	'PITR to a timestamp: the rows committed after T1 are absent');
is($r1->safe_psql($db, 'SELECT count(*) FROM items WHERE id BETWEEN 151 AND 220'), '70',
	'... while the va rows only the WAL archive had were replayed');
for my $case ([ 'owner', '' ], [ 'reader_a', "SET ROLE reader_a;\n" ])
{
	my ($state) = VectorVault::sql_error($r1, $db, "$case->[1]SELECT body::text FROM items WHERE id < 1000");
	is($state, '22V02', "current keyring: $case->[0] reading va rows fails with 22V02 (va stays shredded)");
}
my ($state) = VectorVault::sql_error($r1, $db, "SET ROLE reader_a; SET vector_vault.vault = 'va'; SET enable_seqscan = off;
SELECT id FROM items ORDER BY embedding <-> '" . VectorVault::vector_text($queries->[0]) . "' LIMIT 10");
is($state, '22V02', 'current keyring: reader_a searching va fails with 22V02');
my $owner = VectorVault::search_lists($r1, $db, $queries, vault => 'vb');
ok(!grep({ /(^|,)\d{1,3}(,|$)/ } @$owner) && @$owner == @$queries, 'current keyring: the owner\'s searches return no va row');
is_deeply(state_of($r1, qw(vb vc)), { map { ($_ => $pre->{$_}) } grep { !/^va/ } keys %$pre },
	'current keyring: vb and vc rows and searches are identical to T1');
my ($ok, $report) = VectorVault::hnsw_verify($r1, $db, 'items_embedding_idx');
ok($ok, 'current keyring: hnsw_verify reports every check ok') or diag($report);
$r1->stop;

# --- restore 2: repo2 (encrypted), to an LSN, with the keyring snapshot of the incremental backup -------

my $keyring_old = $node->basedir . '/keyring_from_snapshot';
VectorVault::keyring_backup('restore', '--dest', $kdest, '--snapshot', $snap_incr, '--to', $keyring_old);
my $r2 = VectorVault::pgbackrest_restore('r_lsn_snapshot', $br, $node, $keyring_old,
	'--repo=2', '--type=lsn', "--target=$l1", '--target-action=promote');
$r2->start;
ok(VectorVault::wait_promoted($r2, $db), 'repo2 (aes-256-cbc) --type=lsn: restored to L1 and promoted');
is_deeply(state_of($r2, qw(va vb vc)), $pre,
	'keyring snapshot from before the drop: va, vb and vc rows and searches are identical to before the drop');
($ok, $report) = VectorVault::hnsw_verify($r2, $db, 'items_embedding_idx');
ok($ok, 'keyring snapshot: hnsw_verify reports every check ok') or diag($report);
$r2->stop;

# --- what the repositories and the keyring snapshots hold ---------------------------------------------

VectorVault::pgbackrest($br, 'check');
my %secret = map { ("etext of $_" => "pgbr-secret-$_") } keys %base;
$secret{"float4 bytes of $_ marker"} = pack('f<*', @{ $vec_of{ $base{$_} + 300 } }) for keys %base;
opendir(my $kd, $node->{vv_keyring}) or die;
for my $f (grep { /\.key$/ } readdir($kd))
{
	$secret{"keyring entry $f"} = VectorVault::read_bytes("$node->{vv_keyring}/$f");
}
closedir($kd);
$secret{"keyring entry $va_key (dropped)"} = VectorVault::read_bytes("$kdest/$snap_incr/$va_key");
my %control = ('control text' => 'pgbr-control-text 300',
	'control float4 bytes' => pack('f<*', @$control_vec));
my @repo1 = ("$brdir/repo1/archive", "$brdir/repo1/backup");
my @repo2 = ("$brdir/repo2/archive", "$brdir/repo2/backup");
VectorVault::assert_all_found(\%control, 'positive control: repo1 (plain) holds the plaintext control rows', @repo1);
VectorVault::assert_none_found(\%secret, 'repo1 holds no vault plaintext and no keyring entry', \@repo1);
VectorVault::assert_none_found({ %secret, %control },
	'repo2 (aes-256-cbc) holds neither vault plaintext nor even the control rows', \@repo2);
my $master_hex = VectorVault::read_bytes($node->{vv_keyfile}) =~ s/\s+//gr;
VectorVault::assert_none_found({ 'master key (hex)' => $master_hex, 'master key (bytes)' => pack('H*', $master_hex), %secret{ grep { /^(etext|float4)/ } keys %secret } },
	'keyring snapshots hold no master key and no plaintext', [$kdest]);

# --- keyring retention closes the window ---------------------------------------------------------------

VectorVault::keyring_backup('backup', '--keyring', $node->{vv_keyring}, '--dest', $kdest, '--label', 'after-drop',
	'--retain-count', '1');
@snaps = split /\n/, VectorVault::keyring_backup('list', '--dest', $kdest);
ok(@snaps == 1 && $snaps[0] =~ /-after-drop$/, 'retention 1: only the newest snapshot is kept') or diag("@snaps");
is(scalar(VectorVault::grep_files(substr($secret{"keyring entry $va_key (dropped)"}, 0, 88), $kdest)), 0,
	'once the snapshots from before the drop are pruned, va\'s key is in no snapshot');

$node->stop;
done_testing();
