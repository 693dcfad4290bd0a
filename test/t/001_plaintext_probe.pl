# 001_plaintext_probe.pl — the plaintext of etext, ejsonb and evector values never reaches disk.
#
# Unique markers are written into `items` (encrypted columns) through every write path: INSERT,
# INSERT ... SELECT through the casts from text/jsonb/real[], COPY FROM STDIN, UPDATE and
# INSERT ... ON CONFLICT DO UPDATE; each path writes a short row and a long row (> 2 kB body,
# stored out of line in TOAST). The same paths write *different* markers into the control table
# `plain_items` (text, jsonb, real[]; STORAGE EXTERNAL, so nothing is compressed). The vector
# markers are the packed little-endian float4 bytes of distinctive vectors.
#
# Then, after CHECKPOINT, it proves:
#   (a) the heap, TOAST heap and TOAST index files of items hold none of the items markers, while
#       they do hold vector_vault envelopes (header bytes with the vault id), so the probe read
#       the files the rows went to;
#   (b) the same files of plain_items hold every control marker (the probe finds plaintext);
#   (c) WAL: the items writes and the plain writes run in separate phases separated by
#       pg_switch_wal(); the items-phase segments hold no items marker but do hold that phase's
#       canary row and (pg_waldump) records of items and its TOAST table, the plain-phase segments
#       hold every control marker, and no segment in pg_wal holds an items marker;
#   (d) nowhere in the data directory and nowhere in a pg_basebackup is there an items marker,
#       while the control markers are there; neither holds the master key or a keyring entry.
# Finally every items row is read back through SQL and equals what was written, so the probe
# cannot pass because nothing (or something else) was stored.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;

my $db = 'postgres';

# allows_streaming: wal_level replica (every row is in WAL) and pg_basebackup works.
my $node = VectorVault::new_node('probe', init_opts => { allows_streaming => 1 });
# Keep every segment written by this test so the phase ranges can be read after checkpoints
# (recycling would rename them).
$node->append_conf('postgresql.conf', "wal_keep_size = '1GB'\n");
$node->start;

$node->safe_psql(
	$db, q{
CREATE EXTENSION vector_vault;
SELECT vault.create_vault('probe');
ALTER DATABASE postgres SET vector_vault.vault = 'probe';
CREATE TABLE items (id bigserial PRIMARY KEY, body etext, meta ejsonb, embedding evector(4));
CREATE TABLE plain_items (id bigserial PRIMARY KEY, body text, meta jsonb, embedding real[]);
ALTER TABLE plain_items ALTER body SET STORAGE EXTERNAL, ALTER meta SET STORAGE EXTERNAL,
	ALTER embedding SET STORAGE EXTERNAL;
CREATE TABLE canary (note text);
});
my $vault_id = $node->safe_psql($db, "SELECT vault_id FROM vault._vaults WHERE name = 'probe'");
ok($vault_id =~ /^[1-9][0-9]*$/, "vault 'probe' has an id ($vault_id)");

# --- markers ---------------------------------------------------------------------------------

my @paths = qw(insert cast copy update upsert);
my %family = (
	items => { text => 'VVMARKER-TEXT-7f3a9c', json => 'VVMARKER-JSON-2b8e' },
	plain => { text => 'VVCONTROL-TEXT-5d1e07', json => 'VVCONTROL-JSON-9c4a' },);

# Long bodies start with their marker (so the marker is in the first TOAST chunk, never split
# across two chunks) and are padded with letters to 3000+ bytes.
my $filler = join('', map { chr(97 + ($_ * 7) % 26) } 1 .. 3000);

# The vector of row $i of a family, as decimal strings.
sub vector_of
{
	my ($fam, $i) = @_;
	return $fam eq 'items'
	  ? [ sprintf('%d.5678', 1234 + $i), '-8765.4321', '3.14159e-05', '271828.18' ]
	  : [ sprintf('%d.8765', 4321 + $i), '-5678.1234', '2.71828e-05', '314159.27' ];
}

# The rows each path writes for a family: [label, body, json tag, vector].
sub rows_of
{
	my ($fam, $path) = @_;
	my $k = 0;
	$k++ while $paths[$k] ne $path;
	my $f = $family{$fam};
	return (
		[ "$path-short", "$f->{text}-$path-short", "$f->{json}-$path-short", vector_of($fam, 2 * $k) ],
		[ "$path-long", "$f->{text}-$path-long $filler", "$f->{json}-$path-long", vector_of($fam, 2 * $k + 1) ]);
}

# SQL literals for a row of a table.
sub lit_body { my ($r) = @_; return "'$r->[1]'"; }
sub lit_meta { my ($r) = @_; return qq('{"tag": "$r->[2]"}'); }
sub lit_vec
{
	my ($table, $r) = @_;
	my $v = join(',', @{ $r->[3] });
	return $table eq 'items' ? "'[$v]'" : "'{$v}'";
}
sub values_of
{
	my ($table, $r) = @_;
	return '(' . join(', ', lit_body($r), lit_meta($r), lit_vec($table, $r)) . ')';
}

# Writes a family's rows into $table through every path.
sub write_rows
{
	my ($table, $fam) = @_;
	my $zero = $table eq 'items' ? "'[0,0,0,0]'" : "'{0,0,0,0}'";
	my @r;

	# INSERT ... VALUES
	@r = rows_of($fam, 'insert');
	$node->safe_psql($db,
		"INSERT INTO $table (body, meta, embedding) VALUES "
		  . join(', ', map { values_of($table, $_) } @r));

	# INSERT ... SELECT with text, jsonb and real[] expressions (assignment casts for items)
	@r = rows_of($fam, 'cast');
	$node->safe_psql($db,
		"INSERT INTO $table (body, meta, embedding) "
		  . join(' UNION ALL ',
			map {
				'SELECT ' . lit_body($_) . '::text, ' . lit_meta($_) . '::jsonb, '
				  . "'{" . join(',', @{ $_->[3] }) . "}'::real[]"
			} @r));

	# COPY FROM STDIN, text format
	@r = rows_of($fam, 'copy');
	my $copy = "COPY $table (body, meta, embedding) FROM STDIN;\n";
	for my $row (@r)
	{
		my $v = join(',', @{ $row->[3] });
		$copy .= join("\t", $row->[1], qq({"tag": "$row->[2]"}), $table eq 'items' ? "[$v]" : "{$v}") . "\n";
	}
	$copy .= "\\.\n";
	$node->safe_psql($db, $copy);

	# UPDATE of rows that held placeholders
	@r = rows_of($fam, 'update');
	$node->safe_psql($db,
		"INSERT INTO $table (id, body, meta, embedding) VALUES "
		  . "(101, 'placeholder', '{}', $zero), (102, 'placeholder', '{}', $zero)");
	for my $i (0 .. 1)
	{
		my $row = $r[$i];
		$node->safe_psql($db,
			"UPDATE $table SET body = " . lit_body($row) . ', meta = ' . lit_meta($row)
			  . ', embedding = ' . lit_vec($table, $row) . ' WHERE id = ' . (101 + $i));
	}

	# INSERT ... ON CONFLICT DO UPDATE over rows that held placeholders
	@r = rows_of($fam, 'upsert');
	$node->safe_psql($db,
		"INSERT INTO $table (id, body, meta, embedding) VALUES "
		  . "(201, 'placeholder', '{}', $zero), (202, 'placeholder', '{}', $zero)");
	$node->safe_psql($db,
		"INSERT INTO $table (id, body, meta, embedding) VALUES "
		  . join(', ',
			map { '(' . join(', ', 201 + $_, lit_body($r[$_]), lit_meta($r[$_]), lit_vec($table, $r[$_])) . ')' }
			  0 .. 1)
		  . ' ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body, meta = EXCLUDED.meta, '
		  . 'embedding = EXCLUDED.embedding');
	return;
}

# Patterns (name => bytes) that must (plain) or must not (items) be found for a family.
sub patterns_of
{
	my ($fam) = @_;
	my %p;
	for my $path (@paths)
	{
		for my $r (rows_of($fam, $path))
		{
			$p{"$fam text $r->[0]"} = $r->[1] =~ s/ .*//r;    # the marker, without the filler
			$p{"$fam json $r->[0]"} = $r->[2];
			$p{"$fam vector $r->[0]"} = pack('f<4', @{ $r->[3] });
		}
	}
	if ($fam eq 'items')
	{
		# Shorter patterns that any partial leak of an items marker would contain.
		$p{'items text prefix'} = 'VVMARKER-TEXT';
		$p{'items json prefix'} = 'VVMARKER-JSON';
		$p{'items vector tail'} = pack('f<3', '-8765.4321', '3.14159e-05', '271828.18');
	}
	return \%p;
}
my $items_patterns = patterns_of('items');
my $plain_patterns = patterns_of('plain');

# --- phase 1: items (encrypted) ----------------------------------------------------------------

sub insert_lsn { return $node->safe_psql($db, 'SELECT pg_current_wal_insert_lsn()'); }
sub walfile
{
	my ($lsn) = @_;
	return $node->safe_psql($db, "SELECT pg_walfile_name('$lsn')");
}

$node->safe_psql($db, 'CHECKPOINT');
$node->safe_psql($db, 'SELECT pg_switch_wal()');
my $items_start = insert_lsn();
write_rows('items', 'items');
$node->safe_psql($db, "INSERT INTO canary VALUES ('VVCANARY-ITEMS-PHASE-31f9')");
my $items_end = insert_lsn();
$node->safe_psql($db, 'SELECT pg_switch_wal()');
$node->safe_psql($db, 'CHECKPOINT');

# --- phase 2: plain_items (control) ------------------------------------------------------------

$node->safe_psql($db, 'SELECT pg_switch_wal()');
my $plain_start = insert_lsn();
write_rows('plain_items', 'plain');
my $plain_end = insert_lsn();
$node->safe_psql($db, 'SELECT pg_switch_wal()');
$node->safe_psql($db, 'CHECKPOINT');

is($node->safe_psql($db, 'SELECT count(*) FROM items'), '10', 'items holds the 10 rows written');
is($node->safe_psql($db, 'SELECT count(*) FROM plain_items'), '10', 'plain_items holds the 10 rows written');
for my $t (qw(items plain_items))
{
	my $toast = $node->safe_psql($db, "SELECT reltoastrelid::regclass FROM pg_class WHERE oid = '$t'::regclass");
	my $chunks = $node->safe_psql($db, "SELECT count(*) FROM $toast");
	ok($chunks >= 10, "$t: the long values were stored out of line ($chunks TOAST chunks in $toast)");
}

# --- (a) and (b): the relation files -----------------------------------------------------------

my @items_files = VectorVault::relation_files($node, $db, 'items');
my @plain_files = VectorVault::relation_files($node, $db, 'plain_items');
my $items_rel = $node->safe_psql($db, "SELECT pg_relation_filepath('items')");
my $items_toast_rel = $node->safe_psql($db,
	"SELECT pg_relation_filepath(reltoastrelid) FROM pg_class WHERE oid = 'items'::regclass");
ok((grep { $_ eq $node->data_dir . "/$items_rel" } @items_files)
	  && (grep { $_ eq $node->data_dir . "/$items_toast_rel" } @items_files)
	  && @items_files >= 3,
	'items: heap, TOAST heap and TOAST index files found (' . scalar(@items_files) . ' files)');
ok(@plain_files >= 3, 'plain_items: heap, TOAST heap and TOAST index files found');

VectorVault::assert_none_found($items_patterns, 'items heap/TOAST/TOAST index files', [@items_files]);
VectorVault::assert_all_found($plain_patterns, 'plain_items heap/TOAST/TOAST index files', @plain_files);

# The items files do hold envelopes of vault 'probe': header = format 1, kind, flags 0,
# reserved 0, key version 1 (LE32), vault id (LE64).
my %envelope = (
	'evector envelope header' => pack('C4 V Q<', 1, 1, 0, 0, 1, $vault_id),
	'etext envelope header' => pack('C4 V Q<', 1, 2, 0, 0, 1, $vault_id),
	'ejsonb envelope header' => pack('C4 V Q<', 1, 3, 0, 0, 1, $vault_id),);
VectorVault::assert_all_found(\%envelope, 'items heap/TOAST files hold vault envelopes', @items_files);
VectorVault::assert_all_found({ 'etext envelope header' => $envelope{'etext envelope header'} },
	'items TOAST heap holds the long etext envelopes', $node->data_dir . "/$items_toast_rel");

# --- (c) WAL -----------------------------------------------------------------------------------

my $pg_wal = $node->data_dir . '/pg_wal';
# Segment files whose names lie between the segments of two LSNs (same timeline).
sub segments_between
{
	my ($from, $to) = @_;
	my ($first, $last) = (walfile($from), walfile($to));
	opendir(my $dh, $pg_wal) or die "could not open $pg_wal: $!";
	my @segs = sort grep { /^[0-9A-F]{24}$/ && $_ ge $first && $_ le $last } readdir($dh);
	closedir($dh);
	ok(@segs && $segs[0] eq $first && $segs[-1] eq $last,
		"WAL segments $first .. $last are all still in pg_wal (" . scalar(@segs) . ')');
	return map { "$pg_wal/$_" } @segs;
}
my @items_segs = segments_between($items_start, $items_end);
my @plain_segs = segments_between($plain_start, $plain_end);

VectorVault::assert_none_found($items_patterns, 'WAL segments of the items phase', [@items_segs]);
VectorVault::assert_all_found({ canary => 'VVCANARY-ITEMS-PHASE-31f9' },
	'WAL segments of the items phase hold that phase\'s plaintext canary', @items_segs);

# pg_waldump: the items-phase segments carry records of items and of its TOAST table.
my $dboid = $node->safe_psql($db, 'SELECT oid FROM pg_database WHERE datname = current_database()');
my $items_node = $node->safe_psql($db, "SELECT pg_relation_filenode('items')");
my $items_toast_node = $node->safe_psql($db,
	"SELECT pg_relation_filenode(reltoastrelid) FROM pg_class WHERE oid = 'items'::regclass");
my ($dump_out, $dump_err) = ('', '');
IPC::Run::run([ 'pg_waldump', '--path', $pg_wal, (map { s{.*/}{}r } $items_segs[0], $items_segs[-1]) ],
	'>', \$dump_out, '2>', \$dump_err);
like($dump_out, qr{rel \d+/$dboid/$items_node blk}, 'pg_waldump: items-phase WAL has records of items');
like($dump_out, qr{rel \d+/$dboid/$items_toast_node blk},
	'pg_waldump: items-phase WAL has records of items\' TOAST table');

VectorVault::assert_all_found($plain_patterns, 'WAL segments of the plain phase', @plain_segs);
VectorVault::assert_none_found($items_patterns, 'all of pg_wal', [$pg_wal]);

# --- (d) the whole data directory and a base backup --------------------------------------------

VectorVault::assert_none_found($items_patterns, 'whole data directory', [$node->data_dir]);
VectorVault::assert_all_found($plain_patterns, 'whole data directory', $node->data_dir);

$node->backup('bb');
my $bb = $node->backup_dir . '/bb';
ok(-f "$bb/PG_VERSION", 'pg_basebackup wrote a backup');
VectorVault::assert_none_found($items_patterns, 'pg_basebackup', [$bb]);
VectorVault::assert_all_found($plain_patterns, 'pg_basebackup', $bb);

# Neither the master key (hex or raw) nor any keyring entry is in the data directory or backup.
my $key_hex = VectorVault::read_bytes($node->{vv_keyfile}) =~ s/\s+//gr;
my %secrets = ('master key hex' => $key_hex);
# (The .count files beside the entries hold nonce-budget counters, not secrets.)
my @entries = grep { !/\.count$/ && !/^claim-/ } VectorVault::keyring_files($node);
ok((grep { $_ eq 'master.check' } @entries)
	  && (grep { $_ eq VectorVault::key_file_name($vault_id) } @entries),
	'keyring holds master.check and the vault key entry');
for my $e (@entries)
{
	my $bytes = VectorVault::read_bytes("$node->{vv_keyring}/$e");
	$secrets{"keyring entry $e"} = substr($bytes, 28);    # nonce, wrapped key, tag
}
VectorVault::assert_all_found(\%secrets, 'key file and keyring (positive control for the secret patterns)',
	$node->{vv_keyfile}, $node->{vv_keyring});
$secrets{'master key hex (upper case)'} = uc($key_hex);
$secrets{'master key bytes'} = pack('H*', $key_hex);
my $secret_hits = VectorVault::find_patterns(\%secrets, $node->data_dir, $bb);
my @leaks = grep { @{ $secret_hits->{$_} } } sort keys %secrets;
ok(!@leaks, 'no master key or keyring entry bytes in the data directory or the base backup')
  or diag(join(', ', @leaks));

# --- the items rows decrypt to exactly what was written ------------------------------------------

for my $path (@paths)
{
	for my $r (rows_of('items', $path))
	{
		my $v = join(',', @{ $r->[3] });
		is( $node->safe_psql($db,
				"SELECT count(*) FROM items WHERE body::text = '$r->[1]' AND meta->>'tag' = '$r->[2]' "
				  . "AND embedding::real[] = '{$v}'::real[]"),
			'1',
			"items row written by $r->[0] decrypts to its markers");
	}
}
is($node->safe_psql($db, "SELECT count(*) FROM items WHERE body::text LIKE 'placeholder%'"),
	'0', 'no items row still holds a placeholder');
# The vector markers were packed from the same float4 values the server stores.
is( $node->safe_psql($db,
		"SELECT encode(float4send(x), 'hex') "
		  . "FROM unnest('{1234.5678,-8765.4321,3.14159e-05,271828.18}'::real[]) x"),
	join("\n", map { unpack('H*', pack('f>', $_)) } qw(1234.5678 -8765.4321 3.14159e-05 271828.18)),
	'packed marker floats match the server\'s float4 values');

$node->stop;
done_testing();
