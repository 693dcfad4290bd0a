# 031_migrate_plaintext_probe.pl — after vault.migrate_column and VACUUM FULL, no plaintext of a
# pgvector vector, halfvec or sparsevec column is left in the table's files.
#
# A multi-tenant table holds pgvector columns vector(4), halfvec(4) and sparsevec(100) whose
# values carry distinctive element bytes (markers: the packed little-endian float4 / binary16
# values as pgvector stores them in the heap). Positive control: after CHECKPOINT the table's
# files hold every marker. Then each column is migrated (vault_column => 'tenant', batches of 7
# rows) and the table rewritten by VACUUM FULL (the old row versions are otherwise dead tuples
# until VACUUM, as README "Migrating a column" says). Then:
#   (a) the heap, TOAST heap and TOAST index files of the table hold none of the markers;
#   (b) a plaintext copy made before the migration (control) still holds every one, so the probe
#       reads files where the bytes would be;
#   (c) every value reads back through SQL equal to the copy, sealed under its tenant's vault, so
#       the probe cannot pass because nothing was stored.
# WAL and backups taken before keep the old plaintext (documented); they are not probed here.
# Skipped when pgvector is not installed on this server (scripts/peers.sh pgvector).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;

my $db = 'postgres';
my $node = VectorVault::new_node('migrate_probe');
$node->start;

if ($node->safe_psql($db, "SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'") eq '0')
{
	$node->stop;
	plan skip_all => 'pgvector is not installed on this server';
}

# binary16 bits of a float that is exactly a normal half (the markers are chosen so).
sub half_bits
{
	my ($x) = @_;
	my $b = unpack('V', pack('f<', $x));
	my $sign = ($b >> 31) & 1;
	my $exp = (($b >> 23) & 0xff) - 127 + 15;
	my $man = ($b >> 13) & 0x3ff;
	die "$x is not a normal half" if $exp <= 0 || $exp >= 31 || ($b & 0x1fff);
	return ($sign << 15) | ($exp << 10) | $man;
}

my @vec = (1234.5678, -8765.4321, 271828.18);    # + a fourth element per row
my @half = (1234, -567.5, 89.125);                # exactly representable as halves
my @sparse = (4321.8765, -9876.5, 31415.9);       # values at 1-based indices 3, 50, 97
my %markers = (
	vector => pack('f<3', @vec),
	halfvec => pack('v3', map { half_bits($_) } @half),
	sparsevec => pack('f<3', @sparse),
	sparsevec_indices => pack('V3', 2, 49, 96),);

$node->safe_psql(
	$db, qq{
CREATE EXTENSION vector_vault;
CREATE EXTENSION vector;
SELECT vault.create_vault('probe_a');
SELECT vault.create_vault('probe_b');
CREATE TABLE mp (id int PRIMARY KEY, tenant text NOT NULL, v vector(4), h halfvec(4), s sparsevec(100));
INSERT INTO mp
SELECT i, CASE WHEN i % 2 = 0 THEN 'probe_a' ELSE 'probe_b' END,
       format('[$vec[0],$vec[1],$vec[2],%s]', i)::vector,
       format('[$half[0],$half[1],$half[2],%s]', i)::halfvec,
       format('{1:%s,3:$sparse[0],50:$sparse[1],97:$sparse[2]}/100', i)::sparsevec
FROM generate_series(1, 60) i;
CREATE TABLE mp_plain AS SELECT * FROM mp;
CHECKPOINT;
});

# Positive control before the migration: the probe finds every marker in the table's files.
VectorVault::assert_all_found(\%markers, 'control: mp before the migration',
	VectorVault::relation_files($node, $db, 'mp'));

for my $col (qw(v h s))
{
	my ($rc, $out, $err) = $node->psql($db,
		"CALL vault.migrate_column('mp', '$col', vault_column => 'tenant', batch_size => 7)");
	is($rc, 0, "migrate_column of $col succeeded") or diag($err);
	like($err, qr/is now encrypted \(60 rows\)/, "migrate_column of $col converted 60 rows");
}
is( $node->safe_psql(
		$db, q{SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attname)
               FROM pg_attribute WHERE attrelid = 'mp'::regclass AND attname IN ('v', 'h', 's')}),
	'h ehalfvec(4), s esparsevec(100), v evector(4)',
	'the columns are ehalfvec(4), esparsevec(100) and evector(4)');

$node->safe_psql($db, 'VACUUM FULL mp; CHECKPOINT;');

# (a) no marker in the rewritten table's files; (b) all of them still in the plaintext copy's.
my @files = VectorVault::relation_files($node, $db, 'mp');
ok(scalar(@files) > 0 && (grep { -s $_ } @files), 'mp has non-empty files to probe');
VectorVault::assert_none_found(\%markers, 'mp after migrate_column and VACUUM FULL', \@files);
VectorVault::assert_all_found(\%markers, 'control: the plaintext copy mp_plain',
	VectorVault::relation_files($node, $db, 'mp_plain'));

# (c) every value is there, sealed under its tenant's vault, equal to the copy.
is( $node->safe_psql(
		$db, q{
SET vector_vault.vault = 'probe_a';
SELECT count(*) FILTER (WHERE m.v::text = p.v::text AND m.h::text = p.h::text AND m.s::text = p.s::text),
       count(*) FILTER (WHERE vault.vault_of(m.v) = vault.vault_id(m.tenant)
                          AND vault.vault_of(m.h) = vault.vault_id(m.tenant)
                          AND vault.vault_of(m.s) = vault.vault_id(m.tenant))
FROM mp m JOIN mp_plain p USING (id)}),
	'60|60',
	'all 60 rows read back equal, each column sealed under its tenant\'s vault');

done_testing();
