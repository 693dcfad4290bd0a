# 081_keyring_trust.pl — issue 14, "Keyring directory trust": the keyring directory must be the
# server user's and writable by nobody else, and files planted in it can neither redirect a shred
# nor feed a read.
#
# Before the fix a 0777 keyring was accepted silently, and vault.drop_vault's shred followed
# symbolic links planted in the keyring: it zeroed another vault's key (whose data became
# unreadable) and an arbitrary file of the server user, while the real key, moved aside, survived.
#
# (a) keyring directory mode 0777, then 0770: the server starts, warns naming the mode, and every
#     vault operation fails with 22V03 and a hint; back at 0700 everything reads.
# (b) vault A has key versions 1..3. Its v1 entry is renamed to another name inside the keyring and
#     replaced by a symbolic link to vault B's entry; its v2 entry is renamed and replaced by a link
#     to a file of the server user outside the keyring; its v3 entry is renamed and replaced by a
#     hard link to another such file. vault.drop_vault(A) then: warns that the keyring was tampered
#     with; leaves B's entry byte-identical (B still reads) and both outside files unchanged;
#     destroys all three of A's real entries under their new names (no file in the keyring holds
#     any of A's entry bytes); removes the two links without following them.
# (c) vault C's entry is moved aside and a symbolic link to it put in its place: reading C's
#     values is refused (the link is not followed); with the entry back in place C reads.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;

my $db = 'postgres';
my $node = VectorVault::new_node('trust');
my $base = $node->basedir;
my $keyring = $node->{vv_keyring};
$node->start;
$node->safe_psql($db, q{
CREATE EXTENSION vector_vault;
CREATE TABLE docs (id int PRIMARY KEY, body etext);
SELECT vault.create_vault('va');
SELECT vault.create_vault('vb');
SELECT vault.create_vault('vc');
SET vector_vault.vault = 'va';
INSERT INTO docs VALUES (1, 'a one');
SELECT vault.rotate_key('va');
SET vector_vault.vault = 'va';
INSERT INTO docs VALUES (2, 'a two');
SELECT vault.rotate_key('va');
SET vector_vault.vault = 'va';
INSERT INTO docs VALUES (3, 'a three');
SET vector_vault.vault = 'vb';
INSERT INTO docs VALUES (10, 'b ten');
SET vector_vault.vault = 'vc';
INSERT INTO docs VALUES (20, 'c twenty');
});
sub vault_id { return $node->safe_psql($db, "SELECT vault_id FROM vault._vaults WHERE name = '$_[0]'"); }
my ($a_id, $b_id, $c_id) = map { vault_id($_) } qw(va vb vc);
sub entry { return "$keyring/" . VectorVault::key_file_name(@_); }
is($node->safe_psql($db, "SELECT string_agg(body::text, ',' ORDER BY id) FROM docs WHERE id < 10"),
	'a one,a two,a three', 'vault va reads (three key versions)');
ok(-f entry($a_id, 1) && -f entry($a_id, 2) && -f entry($a_id, 3), 'va has entries for versions 1..3');

# --- (a) a keyring directory others can write ----------------------------------------------------------

for my $mode (0777, 0770)
{
	my $m = sprintf('%04o', $mode);
	chmod($mode, $keyring) or die "chmod: $!";
	my $offset = -s $node->logfile;
	$node->restart;
	like(VectorVault::log_since($node, $offset),
		qr/WARNING:\s+vector_vault: keyring directory "\Q$keyring\E" is writable by group or others \(mode $m\); vault operations will fail/,
		"(a) keyring mode $m: the server warns at start, naming the mode");
	my ($state, $msg, $err) = VectorVault::sql_error($node, $db, 'SELECT body::text FROM docs WHERE id = 10');
	is($state, '22V03', "(a) keyring mode $m: reading fails with 22V03");
	like($msg, qr/writable by group or others/, "(a) keyring mode $m: ... saying why");
	like($err, qr/HINT:.*writable by nobody else/, "(a) keyring mode $m: ... with a hint");
	($state) = VectorVault::sql_error($node, $db, "SELECT vault.create_vault('vx')");
	is($state, '22V03', "(a) keyring mode $m: creating a vault fails with 22V03");
}
chmod(0700, $keyring) or die "chmod: $!";
$node->restart;
is($node->safe_psql($db, 'SELECT body::text FROM docs WHERE id = 10'), 'b ten', '(a) keyring mode 0700: reads again');

# --- (b) links planted in the keyring do not redirect drop_vault's shred ---------------------------------

my %a_bytes = map { $_ => VectorVault::read_bytes(entry($a_id, $_)) } 1 .. 3;
my $b_before = VectorVault::read_bytes(entry($b_id, 1));
my $victim = "$base/victim.txt";
my $victim2 = "$base/victim2.txt";
VectorVault::write_bytes($victim, "a file of the server user\n");
VectorVault::write_bytes($victim2, "another file of the server user\n");
rename(entry($a_id, 1), "$keyring/stash-a1") or die "rename: $!";
symlink(entry($b_id, 1), entry($a_id, 1)) or die "symlink: $!";
rename(entry($a_id, 2), "$keyring/.hidden-a2") or die "rename: $!";
symlink($victim, entry($a_id, 2)) or die "symlink: $!";
rename(entry($a_id, 3), "$keyring/stash-a3") or die "rename: $!";
link($victim2, entry($a_id, 3)) or die "link: $!";

my ($state, $msg, $err) = VectorVault::sql_error($node, $db, "SELECT vault.drop_vault('va')");
is($state, '', '(b) drop_vault(va) succeeds') or diag($err);
like($err, qr/WARNING:.*keyring entries of vault \Q@{[ sprintf('%016x', $a_id) ]}\E have been tampered with/,
	'(b) ... and warns that its keyring entries were tampered with');
is(VectorVault::read_bytes(entry($b_id, 1)), $b_before, '(b) vault vb\'s entry is byte-identical');
is((VectorVault::sql_error($node, $db, 'SELECT body::text FROM docs WHERE id = 10'))[3], 'b ten', '(b) vault vb still reads');
is(VectorVault::read_bytes($victim), "a file of the server user\n", '(b) the file a link pointed to is unchanged');
is(VectorVault::read_bytes($victim2), "another file of the server user\n", '(b) the hard-linked file is unchanged');
ok(!-e "$keyring/stash-a1" && !-e "$keyring/.hidden-a2" && !-e "$keyring/stash-a3",
	'(b) va\'s real entries, moved to other names in the keyring, are gone');
my @holding = grep {
	my $f = "$keyring/$_";
	-f $f && !-l $f && do { my $d = VectorVault::read_bytes($f); grep { index($d, $a_bytes{$_}) >= 0 } 1 .. 3 }
} VectorVault::keyring_files($node);
is_deeply(\@holding, [], '(b) no file in the keyring holds any of va\'s entry bytes');
ok(!-l entry($a_id, 1) && !-l entry($a_id, 2), '(b) the symbolic links were removed');
($state, $msg) = VectorVault::sql_error($node, $db, 'SELECT body::text FROM docs WHERE id = 1');
isnt($state, '', '(b) va\'s values cannot be decrypted any more');

# --- (c) reads do not follow a link ----------------------------------------------------------------------------

$node->restart;    # no key cached
rename(entry($c_id, 1), "$base/c-entry") or die "rename: $!";
symlink("$base/c-entry", entry($c_id, 1)) or die "symlink: $!";
($state, $msg, $err) = VectorVault::sql_error($node, $db, 'SELECT body::text FROM docs WHERE id = 20');
isnt($state, '', '(c) reading vault vc through a planted link is refused');
like($msg, qr/symbolic link/, '(c) ... saying the entry is a symbolic link') or diag($err);
unlink(entry($c_id, 1)) or die "unlink: $!";
rename("$base/c-entry", entry($c_id, 1)) or die "rename: $!";
$node->restart;
is((VectorVault::sql_error($node, $db, 'SELECT body::text FROM docs WHERE id = 20'))[3], 'c twenty', '(c) with the entry back in place vc reads');

$node->stop;
done_testing();
