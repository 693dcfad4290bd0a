# VectorVault.pm — shared helpers for vector_vault's TAP tests.
#
#   my $node = VectorVault::new_node('primary');           # initdb + vector_vault configured
#   my $node = VectorVault::new_node('standby', keyring => $primary_keyring, keyfile => ..., init => 0)
#   VectorVault::grep_files($pattern, @paths)              # files (recursively) containing bytes
#   VectorVault::find_patterns(\%patterns, @paths)         # one pass, many patterns
#   VectorVault::relation_files($node, $db, $rel)          # heap, TOAST heap, TOAST index files
#   my ($state, $msg, $err) = VectorVault::sql_error($node, $db, $sql)   # SQLSTATE of a failure
#   VectorVault::keyring_files($node)                      # names in the node's keyring dir
#   VectorVault::log_since($node, $offset)                 # server log text after $offset
#
# Every node gets a master key file (mode 0600) and a keyring directory outside its data
# directory, in the node's base directory, unless the caller passes shared ones (standbys and
# restores must use the same keyring as their primary).
package VectorVault;

use strict;
use warnings;
use File::Find;
use File::Path qw(make_path);

# PostgreSQL::Test::Utils' INIT block creates $TESTDIR/tmp_check but not $TESTDIR itself, and
# scripts/test.sh points TESTDIR at a per-file directory it does not create. This runs while the
# test file is being compiled, before that INIT block.
BEGIN
{
	make_path($ENV{TESTDIR}) if defined $ENV{TESTDIR} && !-d $ENV{TESTDIR};
}

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;

# Writes a fresh random master key (64 hex characters) to $path with mode 0600.
sub write_key
{
	my ($path) = @_;
	my $hex = join('', map { sprintf('%02x', int(rand(256))) } 1 .. 32);
	open(my $fh, '>', $path) or die "could not write $path: $!";
	print $fh "$hex\n";
	close($fh);
	chmod(0600, $path);
	return $hex;
}

# Creates (and by default initdb's) a node with vector_vault preloaded and a key and keyring.
sub new_node
{
	my ($name, %opts) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	my $base = $node->basedir;
	my $keyfile = $opts{keyfile} // "$base/master.key";
	my $keyring = $opts{keyring} // "$base/keyring";
	write_key($keyfile) unless -f $keyfile;
	$node->{vv_keyfile} = $keyfile;
	$node->{vv_keyring} = $keyring;
	return $node if defined $opts{init} && !$opts{init};
	$node->init(%{ $opts{init_opts} // {} });
	configure($node);
	return $node;
}

# Appends vector_vault's settings to a node's postgresql.conf.
sub configure
{
	my ($node) = @_;
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'vector_vault'
vector_vault.master_key_file = '$node->{vv_keyfile}'
vector_vault.keyring_dir = '$node->{vv_keyring}'
});
	return;
}

# Returns the list of files under @paths (files or directories) whose bytes match $pattern.
sub grep_files
{
	my ($pattern, @paths) = @_;
	my @hits;
	my $check = sub {
		my ($f) = @_;
		return unless -f $f;
		open(my $fh, '<:raw', $f) or return;
		local $/;
		my $data = <$fh>;
		close($fh);
		push @hits, $f if defined $data && index($data, $pattern) >= 0;
	};
	for my $p (@paths)
	{
		if (-d $p)
		{
			find({ wanted => sub { $check->($File::Find::name) }, no_chdir => 1 }, $p);
		}
		else
		{
			$check->($p);
		}
	}
	return @hits;
}

# Path of a relation's main file (and its TOAST table's, when it has one) inside the data dir.
sub relation_files
{
	my ($node, $db, $rel) = @_;
	my $pgdata = $node->data_dir;
	my @files;
	for my $q (
		"SELECT pg_relation_filepath('$rel')",
		"SELECT pg_relation_filepath(reltoastrelid) FROM pg_class "
		  . "WHERE oid = '$rel'::regclass AND reltoastrelid <> 0",
		"SELECT pg_relation_filepath(indexrelid) FROM pg_index "
		  . "WHERE indrelid = (SELECT reltoastrelid FROM pg_class WHERE oid = '$rel'::regclass)")
	{
		for my $p (split /\n/, $node->safe_psql($db, $q))
		{
			next unless $p;
			# The main fork, its 1 GB segments (.1, .2, ...) and its _fsm/_vm forks; not "$p*",
			# which would also match another relation whose file number merely starts with $p.
			push @files, grep { -f $_ } ("$pgdata/$p", glob("$pgdata/$p.*"), glob("$pgdata/${p}_*"));
		}
	}
	return @files;
}

# Scans every regular file under @paths (files or directories, recursively) once and returns
# { name => [files whose bytes contain $patterns->{name}] } for every name in %$patterns, so
# many markers can be looked for in large files (WAL segments) with one read per file.
#
# WAL segments (24-hex-digit files in a pg_wal directory) are also searched as one stream of
# record bytes: a WAL record that crosses an 8 kB page is split by the next page's header, and
# one that crosses a segment continues in the next file, so the segments of each directory are
# read in name order with page headers removed and the end of one joined to the start of the
# next. A hit found only that way is reported as "<segment> (WAL stream)".
sub find_patterns
{
	my ($patterns, @paths) = @_;
	my %hits = map { $_ => [] } keys %$patterns;
	my %wal;    # directory => [segment paths]
	my $maxlen = 1;
	for (values %$patterns) { $maxlen = length($_) if length($_) > $maxlen; }
	my $check = sub {
		my ($f) = @_;
		return unless -f $f && !-l $f;
		push @{ $wal{$1} }, $f if $f =~ m{^(.*/pg_wal)/[0-9A-F]{24}$};
		my $data = read_bytes($f);
		for my $name (keys %$patterns)
		{
			push @{ $hits{$name} }, $f if index($data, $patterns->{$name}) >= 0;
		}
	};
	for my $p (@paths)
	{
		die "probe path $p does not exist" unless -e $p;
		if (-d $p)
		{
			find({ wanted => sub { $check->($File::Find::name) }, no_chdir => 1 }, $p);
		}
		else
		{
			$check->($p);
		}
	}
	for my $dir (sort keys %wal)
	{
		my $carry = '';
		for my $seg (sort @{ $wal{$dir} })
		{
			my $stream = $carry . wal_record_bytes(read_bytes($seg));
			for my $name (keys %$patterns)
			{
				push @{ $hits{$name} }, "$seg (WAL stream)"
				  if index($stream, $patterns->{$name}) >= 0 && !grep { $_ eq $seg } @{ $hits{$name} };
			}
			$carry = substr($stream, -($maxlen - 1)) if $maxlen > 1 && length($stream) >= $maxlen - 1;
		}
	}
	return \%hits;
}

# The bytes of a WAL segment with every page header removed (XLOG_BLCKSZ 8192; the long header,
# flagged XLP_LONG_HEADER, is 40 bytes, the short one 24, both MAXALIGNed). Pages that do not
# start with a WAL page magic (never written, zeroed) are kept whole.
sub wal_record_bytes
{
	my ($data) = @_;
	my $out = '';
	for (my $off = 0; $off < length($data); $off += 8192)
	{
		my $page = substr($data, $off, 8192);
		my ($magic, $info) = unpack('v v', $page);
		if (length($page) >= 40 && ($magic & 0xFF00) == 0xD100)
		{
			$out .= substr($page, ($info & 0x0002) ? 40 : 24);
		}
		else
		{
			$out .= $page;
		}
	}
	return $out;
}

# Runs $sql (psql, stop at the first error, verbose error fields) and returns
# ($sqlstate, $message, $stderr, $stdout); $sqlstate and $message are '' when nothing failed.
sub sql_error
{
	my ($node, $db, $sql) = @_;
	my ($rc, $out, $err) = $node->psql($db, "\\set VERBOSITY verbose\n$sql");
	$out //= '';
	$err //= '';
	if ($err =~ /ERROR:\s+([0-9A-Z]{5}):\s+([^\n]*)/)
	{
		return ($1, $2, $err, $out);
	}
	die "psql failed (exit $rc) without an error report: $err" if $rc != 0;
	return ('', '', $err, $out);
}

# Sorted names of the files in a node's keyring directory (without . and ..).
sub keyring_files
{
	my ($node) = @_;
	opendir(my $dh, $node->{vv_keyring}) or return ();
	my @names = sort grep { $_ ne '.' && $_ ne '..' } readdir($dh);
	closedir($dh);
	return @names;
}

# File name of a vault's data-key entry, as src/core/keyring_format.cpp names it.
sub key_file_name
{
	my ($vault_id, $version) = @_;
	return sprintf('vault-%016x-v%d.key', $vault_id, $version // 1);
}

# The server log written after byte $offset (take the offset with -s $node->logfile).
sub log_since
{
	my ($node, $offset) = @_;
	return PostgreSQL::Test::Utils::slurp_file($node->logfile, $offset);
}

# Reads a whole file as bytes.
sub read_bytes
{
	my ($path) = @_;
	open(my $fh, '<:raw', $path) or die "could not read $path: $!";
	local $/;
	my $data = <$fh>;
	close($fh);
	return $data // '';
}

# Writes bytes to a file with the given mode (default 0600).
sub write_bytes
{
	my ($path, $data, $mode) = @_;
	open(my $fh, '>:raw', $path) or die "could not write $path: $!";
	print $fh $data;
	close($fh) or die "could not close $path: $!";
	chmod($mode // 0600, $path) or die "could not chmod $path: $!";
	return;
}

# --- attack tests (020_*, 021_*): concurrent sessions, keys and passwords ---------------

# A BackgroundPsql session on $db that keeps going after errors and reports them with their
# SQLSTATE (VERBOSITY verbose), with a per-query timeout; $setup (optional) runs first and must
# succeed. Quit it with ->quit.
sub bg_session
{
	my ($node, $db, $setup) = @_;
	my $s = $node->background_psql($db, on_error_stop => 0);
	$s->set_query_timer_restart();
	my ($out, $err) = bg_query($s, "\\set VERBOSITY verbose");
	if (defined $setup)
	{
		($out, $err) = bg_query($s, $setup);
		die "session setup failed: $err" if $err =~ /ERROR/;
	}
	return $s;
}

# Runs $sql in a bg_session; returns (stdout, stderr) of this query alone.
sub bg_query
{
	my ($s, $sql) = @_;
	$s->{stderr} = '';
	my $out = $s->query($sql);
	my $err = $s->{stderr};
	$s->{stderr} = '';
	return ($out // '', $err // '');
}

# The SQLSTATE of the first ERROR in psql's verbose stderr, or '' when there is none.
sub err_sqlstate
{
	my ($err) = @_;
	return $err =~ /ERROR:\s+([0-9A-Z]{5}):/ ? $1 : '';
}

# Creates an API key as $role (with key-management password $password) for $vaults (a JSON
# object) and returns it. $extra is appended to the argument list (e.g. a label and an expiry).
sub create_api_key
{
	my ($node, $db, $role, $password, $vaults, $extra) = @_;
	my $key = $node->safe_psql($db,
		"SET ROLE $role; SELECT vault.create_api_key('$password', '$vaults'"
		  . (defined $extra ? ", $extra" : '') . ')');
	die "not an API key: $key" unless $key =~ /^vv_[0-9a-f]{16}_[0-9a-f]{40}_[0-9a-f]{8}$/;
	return $key;
}

# The key id of an API key (the 16 hex digits after "vv_").
sub key_id
{
	my ($key) = @_;
	return (split /_/, $key)[1];
}

1;
