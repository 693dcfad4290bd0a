# VectorVault.pm — shared helpers for vector_vault's TAP tests.
#
#   my $node = VectorVault::new_node('primary');           # initdb + vector_vault configured
#   my $node = VectorVault::new_node('standby', keyring => $primary_keyring, keyfile => ..., init => 0)
#   VectorVault::grep_files($pattern, @paths)              # files (recursively) containing bytes
#   VectorVault::find_patterns(\%patterns, @paths)         # one pass, many patterns
#   VectorVault::assert_none_found(\%patterns, $what, \@paths, $forgive)   # the probe's assertions
#   VectorVault::assert_all_found(\%patterns, $what, @paths)               # (and positive controls)
#   VectorVault::relation_files($node, $db, $rel)          # heap, TOAST heap, TOAST index files
#   my ($state, $msg, $err) = VectorVault::sql_error($node, $db, $sql)   # SQLSTATE of a failure
#   VectorVault::keyring_files($node)                      # names in the node's keyring dir
#   VectorVault::log_since($node, $offset)                 # server log text after $offset
#
# Index tests (vault_hnsw):
#   VectorVault::fmnist_rows('train', $start, $n)          # Fashion-MNIST images as int arrays
#   VectorVault::vector_text(\@v)                          # '[v1,v2,...]'
#   VectorVault::exact_knn($dir, \@ids, \@vecs, \@queries, $k)   # exact L2 top-k (numpy)
#   VectorVault::recall_at_k(\@found, $truth, $k, \%vec_of_id, \@query)   # tie-aware recall
#   VectorVault::query_lists($node, $db, \@selects, $setup)  # many queries, one psql session
#   VectorVault::hnsw_verify($node, $db, $index)           # (all checks ok?, report text)
#   VectorVault::wal_segments_between($node, $db, $from_lsn, $to_lsn)   # segment paths
#   VectorVault::wait_for_replay($primary, $standby, $seconds)          # 1, or 0 on failure
#   VectorVault::gdb_pause($pid, $dir, [functions])       # stop a backend at an exact point
#
# Every node gets a master key file (mode 0600) and a keyring directory outside its data
# directory, in the node's base directory, unless the caller passes shared ones (standbys and
# restores must use the same keyring as their primary).
package VectorVault;

use strict;
use warnings;
use File::Find;
use File::Path qw(make_path);
use IPC::Run;

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

# Asserts that no file under @$where (which must not be empty) holds a pattern of %$patterns.
# $forgive (optional) gets the hits and the findings ("name in files") and returns those that
# count (014 uses it for a 4-byte marker that random ciphertext may hold once by chance).
sub assert_none_found
{
	my ($patterns, $what, $where, $forgive) = @_;
	my $hits = find_patterns($patterns, @$where);
	my @found = map { "$_ in " . join(', ', @{ $hits->{$_} }) } grep { @{ $hits->{$_} } } sort keys %$hits;
	@found = $forgive->($hits, @found) if $forgive && @found;
	Test::More::ok(@$where && !@found, "$what: none of " . scalar(keys %$patterns) . ' plaintext patterns')
	  or Test::More::diag(join("\n", @found));
	return;
}

# Asserts that every pattern of %$patterns is in some file under @where (which must not be empty).
sub assert_all_found
{
	my ($patterns, $what, @where) = @_;
	my $hits = find_patterns($patterns, @where);
	my @missing = grep { !@{ $hits->{$_} } } sort keys %$hits;
	Test::More::ok(@where && !@missing, "$what: all " . scalar(keys %$patterns) . ' patterns found')
	  or Test::More::diag('missing: ' . join(', ', @missing));
	return;
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


# --- index tests: data sets, exact neighbours, recall, queries, verify, WAL, replicas -----------

my $fmnist_dir = '/usr/share/datasets/fashion-mnist';
my %fmnist_data;

# Rows [$start, $start + $n) of a Fashion-MNIST image file ($set 'train': 60000 rows, 't10k':
# 10000) as arrayrefs of 784 integers 0..255, or with packed => 1 as 784-byte strings (far less
# memory for many rows). The file is decompressed once per process.
sub fmnist_rows
{
	my ($set, $start, $n, %opts) = @_;
	my $data = $fmnist_data{$set} //= do {
		my $file = "$fmnist_dir/$set-images-idx3-ubyte.gz";
		open(my $fh, '-|', 'gzip', '-dc', $file) or die "could not run gzip -dc $file: $!";
		binmode($fh);
		local $/;
		my $bytes = <$fh>;
		close($fh) or die "gzip -dc $file failed";
		$bytes;
	};
	my ($magic, $count, $rows, $cols) = unpack('N4', $data);
	die "$set: not an idx3 image file (magic $magic)" unless $magic == 2051;
	die "$set: rows $start .. " . ($start + $n - 1) . " requested, file has $count"
	  if $start + $n > $count;
	my $dim = $rows * $cols;
	return [ map { substr($data, 16 + ($start + $_) * $dim, $dim) } 0 .. $n - 1 ] if $opts{packed};
	return [ map { [ unpack('C*', substr($data, 16 + ($start + $_) * $dim, $dim)) ] } 0 .. $n - 1 ];
}

# pgvector's text form of a vector (arrayref, or packed bytes from fmnist_rows): '[v1,v2,...]'.
sub vector_text
{
	my ($v) = @_;
	return '[' . join(',', ref $v ? @$v : unpack('C*', $v)) . ']';
}

# Squared L2 distance of two vectors (exact for integer data).
sub sq_l2
{
	my ($a, $b) = @_;
	my $s = 0;
	for my $i (0 .. $#$a)
	{
		my $d = $a->[$i] - $b->[$i];
		$s += $d * $d;
	}
	return $s;
}

# Exact k nearest neighbours (squared L2, float64 in numpy) of each query among the base vectors
# with ids @$ids; ties are broken by id. Returns one { ids => [k ids, nearest first],
# kth => squared distance of the k-th } per query. Work files go to $dir.
sub exact_knn
{
	my ($dir, $ids, $vecs, $queries, $k) = @_;
	die 'exact_knn: ids and vectors differ in number' unless @$ids == @$vecs;
	my $dim = scalar @{ $vecs->[0] };
	write_bytes("$dir/knn_base.f32", join('', map { pack('f<*', @$_) } @$vecs));
	write_bytes("$dir/knn_ids.i64", pack('q<*', @$ids));
	write_bytes("$dir/knn_queries.f32", join('', map { pack('f<*', @$_) } @$queries));
	my $py = <<'PY';
import sys
import numpy as np
dim, k, d = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
base = np.fromfile(d + '/knn_base.f32', dtype='<f4').reshape(-1, dim).astype(np.float64)
ids = np.fromfile(d + '/knn_ids.i64', dtype='<i8')
qs = np.fromfile(d + '/knn_queries.f32', dtype='<f4').reshape(-1, dim).astype(np.float64)
for q in qs:
    dist = ((base - q) ** 2).sum(axis=1)
    order = np.lexsort((ids, dist))[:k]
    print(' '.join(str(i) for i in ids[order]), repr(float(dist[order[-1]])))
PY
	my ($out, $err) = ('', '');
	IPC::Run::run([ '/usr/bin/python3', '-c', $py, $dim, $k, $dir ], '>', \$out, '2>', \$err)
	  or die "exact_knn: python3 failed: $err";
	my @truth;
	for my $line (split /\n/, $out)
	{
		my @f = split / /, $line;
		my $kth = pop @f;
		push @truth, { ids => \@f, kth => $kth };
	}
	die 'exact_knn: expected ' . scalar(@$queries) . ' answers, got ' . scalar(@truth)
	  unless @truth == @$queries;
	return \@truth;
}

# recall@k of one answer, counting ties: a returned id is a hit when it is a distinct base id
# (present in %$vec_of_id) whose exact distance to the query is at most the k-th true distance.
sub recall_at_k
{
	my ($found, $truth, $k, $vec_of_id, $query) = @_;
	my %seen;
	my $hits = 0;
	for my $id (@$found[ 0 .. ($#$found < $k - 1 ? $#$found : $k - 1) ])
	{
		next if $seen{$id}++;
		my $v = $vec_of_id->{$id};
		next unless defined $v;
		$hits++ if sq_l2($v, $query) <= $truth->{kth} * (1 + 1e-9) + 1e-6;
	}
	return $hits / $k;
}

# The distances of each query's first 10 rows, "qid:d,d,..." per line in qid order: found by the
# index at ef_search $o{ef} ($o{how} 'index') or by a sort ('sort'), ordered by "embedding $o{op} q"
# (default <->) over $o{table} (default items) for the rows of queries (qid, q); the distances
# reported are "embedding $o{measure} q" (default: the order's). Ties may be broken either way,
# so tests compare distances, not ids.
sub top10_distances
{
	my ($node, $db, %o) = @_;
	my $table = $o{table} // 'items';
	my $op = $o{op} // '<->';
	my $measure = $o{measure} // $op;
	my $settings = $o{how} eq 'index'
	  ? "SET enable_seqscan = off; SET vector_vault.ef_search = $o{ef};"
	  : 'SET enable_indexscan = off;';
	return $node->safe_psql($db, qq{$settings
SELECT qid || ':' || (SELECT string_agg(d::text, ',' ORDER BY n) FROM (
    SELECT embedding $measure q AS d, row_number() OVER () AS n
    FROM (SELECT embedding FROM $table ORDER BY embedding $op q LIMIT 10) s) s2)
FROM queries ORDER BY qid});
}

# Mean recall@10 of a top10_distances output against the exact one: a row counts when its
# distance is at most the exact 10th distance (ties at the boundary count as found).
sub distance_recall
{
	my ($got, $want) = @_;
	my @g = split /\n/, $got;
	my @w = split /\n/, $want;
	my $sum = 0;
	for my $i (0 .. $#w)
	{
		my @wd = split /,/, (split /:/, $w[$i])[1];
		$sum += scalar(grep { $_ <= $wd[-1] + 1e-9 } split /,/, (split /:/, $g[$i])[1]) / 10;
	}
	return $sum / @w;
}

# Runs every query of @$selects in one psql session (after the $setup SQL, e.g. SET ROLE) and
# returns one arrayref of output lines per query, in order. Dies on any error.
sub query_lists
{
	my ($node, $db, $selects, $setup) = @_;
	my $sql = ($setup // '') . "\n";
	for my $i (0 .. $#$selects)
	{
		my $q = $selects->[$i] =~ s/;\s*$//r;
		$sql .= "\\echo ==Q$i==\n$q;\n";
	}
	my $out = $node->safe_psql($db, $sql);
	my @lists;
	my $cur;
	for my $line (split /\n/, $out)
	{
		if ($line =~ /^==Q(\d+)==$/)
		{
			die "query_lists: output out of order at query $1" unless $1 == scalar @lists;
			push @lists, [];
			$cur = $lists[-1];
			next;
		}
		push @$cur, $line if defined $cur;
	}
	die 'query_lists: expected ' . scalar(@$selects) . ' answers, got ' . scalar(@lists)
	  unless @lists == @$selects;
	return \@lists;
}

# Runs vault.hnsw_verify on an index; returns (1 when every check is ok and there is at least a
# metapage, elements, links and one vault row; the report as "check|ok|detail" lines).
sub hnsw_verify
{
	my ($node, $db, $index) = @_;
	my $out = $node->safe_psql($db, "SELECT \"check\", ok, detail FROM vault.hnsw_verify('$index')");
	my @rows = split /\n/, $out;
	my %kinds = map { (split /\|/)[0] => 1 } @rows;
	my $ok = (!grep { (split /\|/)[1] ne 't' } @rows)
	  && $kinds{metapage} && $kinds{elements} && $kinds{links} && $kinds{vault};
	return ($ok ? 1 : 0, $out);
}

# Paths of the WAL segments of $node from the one holding $from_lsn to the one holding $to_lsn
# (same timeline); dies when one of them is missing (recycled).
sub wal_segments_between
{
	my ($node, $db, $from, $to) = @_;
	my $first = $node->safe_psql($db, "SELECT pg_walfile_name('$from')");
	my $last = $node->safe_psql($db, "SELECT pg_walfile_name('$to')");
	my $pg_wal = $node->data_dir . '/pg_wal';
	opendir(my $dh, $pg_wal) or die "could not open $pg_wal: $!";
	my @segs = sort grep { /^[0-9A-F]{24}$/ && $_ ge $first && $_ le $last } readdir($dh);
	closedir($dh);
	die "WAL segments $first .. $last are not all in $pg_wal"
	  unless @segs && $segs[0] eq $first && $segs[-1] eq $last
	  && hex(substr($last, 8)) * 256 + hex(substr($last, 16)) - hex(substr($first, 8)) * 256
	  - hex(substr($first, 16)) + 1 == @segs;
	return map { "$pg_wal/$_" } @segs;
}

# Waits until $standby has replayed everything $primary has written so far. Returns 1, or 0
# (without waiting out a long timeout) when the standby stops running or logs a PANIC, or when
# $seconds (default 120) pass.
sub wait_for_replay
{
	my ($primary, $standby, $seconds) = @_;
	$seconds //= 120;
	my $target = $primary->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
	my $deadline = time() + $seconds;
	while (time() < $deadline)
	{
		my ($rc, $out) = $standby->psql('postgres',
			"SELECT pg_last_wal_replay_lsn() >= '$target'::pg_lsn");
		return 1 if $rc == 0 && defined $out && $out eq 't';
		my $log = PostgreSQL::Test::Utils::slurp_file($standby->logfile);
		return 0 if $log =~ /PANIC:|startup process .* terminated/;
		select(undef, undef, undef, 0.2);
	}
	return 0;
}

# --- backup, recovery, rotation, dump and load tests (test/t/04*.pl, 050_load.pl) --------------
#
#   VectorVault::int_vectors($n, $dim, $seed)              # deterministic integer vectors 0..99
#   VectorVault::insert_sql($table, \%vec_of, \@ids, $body)  # one INSERT (id, body, embedding)
#   VectorVault::search_lists($node, $db, \@queries, %o)   # ordered id lists via the index
#   VectorVault::exact_lists($node, $db, \@queries, %o)    # the same, exact (no index)
#   VectorVault::archive_wal($node, $db)                   # switch WAL, wait until archived
#   VectorVault::copy_dir($from, $to)                      # cp -a (keyring copies)
#   VectorVault::restored_node($name, $from, $backup, %o)  # fresh node from a base backup
#   VectorVault::wait_promoted($node, $db)                 # 1 once recovery has ended

# $n distinct vectors of $dim integers 0..99 from a seed (a linear congruential generator, so
# the same on every Perl), as arrayrefs.
sub int_vectors
{
	my ($n, $dim, $seed) = @_;
	my $x = $seed & 0x7fffffff;
	my (@out, %seen);
	while (@out < $n)
	{
		my @v;
		for (1 .. $dim)
		{
			$x = ($x * 1103515245 + 12345) % 2147483648;
			push @v, int($x / 65536) % 100;
		}
		push @out, \@v unless $seen{ join(',', @v) }++;
	}
	return \@out;
}

# One INSERT statement writing (id, body, embedding) for every id of @$ids into $table, the body
# being "$body <id>" and the embedding $vec_of->{id}. The current vault must be selected.
sub insert_sql
{
	my ($table, $vec_of, $ids, $body) = @_;
	return "INSERT INTO $table (id, body, embedding) VALUES "
	  . join(",\n", map { "($_, '$body $_', '" . vector_text($vec_of->{$_}) . "')" } @$ids) . ";\n";
}

# The SET commands of a search session: optional role, the vault, ef_search.
sub search_setup
{
	my (%o) = @_;
	my $setup = '';
	$setup .= "SET ROLE $o{role};\n" if $o{role};
	$setup .= "SET vector_vault.vault = '$o{vault}';\n" if $o{vault};
	$setup .= 'SET vector_vault.ef_search = ' . ($o{ef} // 100) . ";\n";
	$setup .= "$o{setup}\n" if $o{setup};
	return $setup;
}

# For each query vector, the ids of its $o{k} (default 10) nearest rows of $o{table} (default
# items, column embedding) as one "id,id,..." string, searched through the index (sequential
# scans off) in one session (as $o{role} with vault $o{vault} selected, ef_search $o{ef} or 100).
sub search_lists
{
	my ($node, $db, $queries, %o) = @_;
	my $k = $o{k} // 10;
	my $table = $o{table} // 'items';
	my @sql = map { "SELECT string_agg(id::text, ',') FROM (SELECT id FROM $table ORDER BY embedding <-> '"
		  . vector_text($_) . "' LIMIT $k) s" } @$queries;
	# Small tables would be sorted after a sequential scan: force the index.
	my $lists = query_lists($node, $db, \@sql, search_setup(%o) . "SET enable_seqscan = off;\n");
	return [ map { $_->[0] // '' } @$lists ];
}

# The same lists computed exactly: index scans off, so every row's distance is computed (ties
# broken by id).
sub exact_lists
{
	my ($node, $db, $queries, %o) = @_;
	my $k = $o{k} // 10;
	my $table = $o{table} // 'items';
	my @sql = map { "SELECT string_agg(id::text, ',') FROM (SELECT id FROM $table ORDER BY embedding <-> '"
		  . vector_text($_) . "', id LIMIT $k) s" } @$queries;
	my $lists = query_lists($node, $db, \@sql,
		search_setup(%o) . "SET enable_indexscan = off;\nSET enable_bitmapscan = off;\n");
	return [ map { $_->[0] // '' } @$lists ];
}

# Ends the current WAL segment and waits until the archiver has archived it (and every segment
# before it). Returns the segment name, or dies after the timeout.
sub archive_wal
{
	my ($node, $db) = @_;
	my $seg = $node->safe_psql($db, 'SELECT pg_walfile_name(pg_current_wal_lsn())');
	$node->safe_psql($db, 'SELECT pg_switch_wal()');
	$node->poll_query_until($db,
		"SELECT last_archived_wal IS NOT NULL AND last_archived_wal >= '$seg' FROM pg_stat_archiver")
	  or die "WAL segment $seg was not archived";
	die "archived segment $seg is not in " . $node->archive_dir unless -f $node->archive_dir . "/$seg";
	return $seg;
}

# Copies a directory tree with modes (cp -a); $to must not exist yet.
sub copy_dir
{
	my ($from, $to) = @_;
	die "copy_dir: $to exists" if -e $to;
	system('cp', '-a', $from, $to) == 0 or die "cp -a $from $to failed";
	return;
}

# A node initialised from base backup $backup of $from, not started. It uses keyring $o{keyring}
# and key file $o{keyfile} (default: $from's), does not archive, and with $o{restore} (default
# on) restores WAL from $from's archive and ends recovery with promotion; $o{target} adds
# recovery target settings (e.g. "recovery_target_name = 'x'"). With $o{streaming} it is a
# streaming standby of $from instead.
sub restored_node
{
	my ($name, $from, $backup, %o) = @_;
	my $node = new_node($name, keyring => $o{keyring} // $from->{vv_keyring},
		keyfile => $o{keyfile} // $from->{vv_keyfile}, init => 0);
	if ($o{streaming})
	{
		$node->init_from_backup($from, $backup, has_streaming => 1);
	}
	else
	{
		$node->init_from_backup($from, $backup, has_restoring => $o{restore} // 1, standby => 0);
	}
	configure($node);
	$node->append_conf('postgresql.conf', "archive_mode = off\n");
	$node->append_conf('postgresql.conf', "recovery_target_action = 'promote'\n$o{target}\n")
	  if $o{target};
	return $node;
}

# Waits until $node has left recovery; 1 on success, 0 on timeout.
sub wait_promoted
{
	my ($node, $db) = @_;
	return $node->poll_query_until($db // 'postgres', 'SELECT NOT pg_is_in_recovery()');
}


# Pauses a backend inside a function with gdb, for a test that must crash at an exact point.
#   my $g = VectorVault::gdb_pause($pid, $dir, ['vector_vault::index::BumpMeta'], $then);
# Attaches gdb to $pid, sets a breakpoint on each function of @$breaks in turn (each after the
# previous was hit; $then->{skip}{$fn} = n continues past the first n hits of $fn), and when the
# last one is hit touches "$dir/stopped" and waits for "$dir/go", then runs the gdb commands
# that file holds. Returns a handle ({attached} is false when gdb could not attach); wait for
# gdb_stopped(), do what must happen while the backend is paused, then gdb_kill() (SIGKILL: the
# postmaster then runs crash recovery) or gdb_release($g, commands), e.g. 'detach' (the backend
# goes on) or 'return', 'detach' (the function returns at once). A function name gdb does not
# know never stops the backend.
sub gdb_pause
{
	my ($pid, $dir, $breaks, $then) = @_;
	unlink("$dir/ready", "$dir/stopped", "$dir/go");
	my @ex = ('set pagination off', 'set confirm off');
	for my $i (0 .. $#$breaks)
	{
		my $fn = $breaks->[$i];
		push @ex, "break $fn";
		my $skip = $then->{skip}{$fn} // 0;
		push @ex, "ignore \$bpnum $skip" if $skip;
		push @ex, "shell touch $dir/ready" if $i == 0;
		push @ex, 'continue';
	}
	push @ex, "shell touch $dir/stopped", "shell while [ ! -f $dir/go ]; do sleep 0.05; done",
	  "source $dir/go", 'quit';
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start([ 'gdb', '-nx', '-q', '-batch', '-p', $pid, map { ('-ex', $_) } @ex ],
		'>', \$out, '2>', \$err);
	my $deadline = time() + 60;
	while (!-f "$dir/ready" && time() < $deadline && $h->pumpable)
	{
		$h->pump_nb;
		select(undef, undef, undef, 0.05);
	}
	return { h => $h, out => \$out, err => \$err, dir => $dir, attached => (-f "$dir/ready" ? 1 : 0) };
}

# Waits (up to $seconds, default 30) until the paused backend reached the last breakpoint.
sub gdb_stopped
{
	my ($g, $seconds) = @_;
	my $deadline = time() + ($seconds // 30);
	while (!-f "$g->{dir}/stopped" && time() < $deadline && $g->{h}->pumpable)
	{
		$g->{h}->pump_nb;
		select(undef, undef, undef, 0.05);
	}
	return -f "$g->{dir}/stopped" ? 1 : 0;
}

# Lets gdb run @commands on the paused backend and exit; when the backend never stopped, ends
# gdb itself (the backend is detached and goes on). The commands file appears at once (rename).
sub gdb_release
{
	my ($g, @commands) = @_;
	if (-f "$g->{dir}/stopped")
	{
		write_bytes("$g->{dir}/go.tmp", join('', map { "$_\n" } @commands));
		rename("$g->{dir}/go.tmp", "$g->{dir}/go") or die "could not rename to $g->{dir}/go: $!";
		$g->{h}->finish;
	}
	else
	{
		$g->{h}->kill_kill;
	}
	return;
}

# Lets gdb kill (SIGKILL) the paused backend and exit.
sub gdb_kill
{
	my ($g) = @_;
	gdb_release($g, 'kill');
	return;
}

# True when gdb can attach to process $pid (ptrace allowed) and detach again.
sub gdb_can_attach
{
	my ($pid) = @_;
	my ($out, $err) = ('', '');
	my $ok = eval {
		IPC::Run::run([ 'gdb', '-nx', '-q', '-batch', '-p', $pid, '-ex', 'detach' ], '>', \$out, '2>', \$err,
			IPC::Run::timeout(60));
	};
	return $ok && $out . $err !~ /ptrace|not permitted|Could not attach/i ? 1 : 0;
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


# --- pgBackRest (test/t/047_pgbackrest.pl) -------------------------------------------------------
#
#   my $br = VectorVault::pgbackrest_setup($node, $dir, %o)   # stanza config, repos in $dir
#   VectorVault::pgbackrest($br, @args)                      # run pgbackrest, die on failure
#   VectorVault::pgbackrest_restore($name, $br, $keyring, @args)  # fresh node restored by pgbackrest
#   VectorVault::keyring_backup(@args)                       # run scripts/keyring-backup.sh

# Writes a pgBackRest configuration for $node under $dir: stanza "vv", repository 1 plain and
# uncompressed (so a byte probe sees what pgBackRest stores), repository 2 (with $o{cipher_pass})
# encrypted with aes-256-cbc. The cipher pass is in the 0600 configuration file only, never on a
# command line. Sets archive_command to pgBackRest's archive-push (the node must be restarted).
sub pgbackrest_setup
{
	my ($node, $dir, %o) = @_;
	make_path("$dir/repo1", "$dir/log", "$dir/lock", "$dir/spool");
	my $conf = "$dir/pgbackrest.conf";
	my $text = "[global]\nrepo1-path=$dir/repo1\nrepo1-retention-full=2\ncompress-type=none\n"
	  . "log-path=$dir/log\nlock-path=$dir/lock\nspool-path=$dir/spool\nlog-level-console=warn\n"
	  . "log-level-file=info\nstart-fast=y\nprocess-max=1\narchive-timeout=60\n";
	if (defined $o{cipher_pass})
	{
		make_path("$dir/repo2");
		$text .= "repo2-path=$dir/repo2\nrepo2-retention-full=2\nrepo2-cipher-type=aes-256-cbc\n"
		  . "repo2-cipher-pass=$o{cipher_pass}\n";
	}
	$text .= "\n[vv]\npg1-path=" . $node->data_dir . "\npg1-port=" . $node->port
	  . "\npg1-socket-path=" . $node->host . "\n";
	write_bytes($conf, $text, 0600);
	$node->append_conf('postgresql.conf', "archive_mode = on\n"
		  . "archive_command = 'pgbackrest --config=$conf --stanza=vv archive-push %p'\n");
	return { conf => $conf, dir => $dir, stanza => 'vv', repos => (defined $o{cipher_pass} ? 2 : 1) };
}

# Runs pgbackrest with the setup's configuration and stanza; returns its standard output.
sub pgbackrest
{
	my ($br, @args) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'pgbackrest', "--config=$br->{conf}", "--stanza=$br->{stanza}", @args ],
		'>', \$out, '2>', \$err, IPC::Run::timeout(300))
	  or die "pgbackrest @args failed: $err$out";
	return $out;
}

# A node restored by `pgbackrest restore @args` into its own, fresh data directory, given keyring
# $keyring (and $from's master key file), with its own port and socket and archiving off (it must
# not push into the stanza of the node it was restored from). Not started.
sub pgbackrest_restore
{
	my ($name, $br, $from, $keyring, @args) = @_;
	my $node = new_node($name, keyring => $keyring, keyfile => $from->{vv_keyfile}, init => 0);
	my $pgdata = $node->data_dir;
	die "pgbackrest_restore: $pgdata exists" if -e $pgdata;
	mkdir($pgdata, 0700) or die "could not create $pgdata: $!";
	pgbackrest($br, "--pg1-path=$pgdata", @args, 'restore');
	$node->append_conf('postgresql.conf', "port = " . $node->port . "\n"
		  . "unix_socket_directories = '" . $node->host . "'\narchive_mode = off\n");
	configure($node);
	return $node;
}

# Runs scripts/keyring-backup.sh (from the source tree, $VV_TOP) with @args; returns its output.
sub keyring_backup
{
	my (@args) = @_;
	my $script = ($ENV{VV_TOP} // '.') . '/scripts/keyring-backup.sh';
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'bash', $script, @args ], '>', \$out, '2>', \$err, IPC::Run::timeout(60))
	  or die "keyring-backup.sh @args failed: $err$out";
	return $out;
}


# A Citus cluster for the citus suite: coordinator 'coord' and workers 'worker1', 'worker2' sharing
# its master key, each preloading citus and vector_vault on loopback with trust for 127.0.0.1,
# CREATE EXTENSION citus and vector_vault in database postgres, workers added to the coordinator.
# %opts: conf (more postgresql.conf lines for every node), and new_node's init_opts.
# Returns ($coord, @workers).
sub citus_cluster
{
	my (%opts) = @_;
	my @init = $opts{init_opts} ? (init_opts => $opts{init_opts}) : ();
	my $coord = new_node('coord', @init);
	my @workers =
	  map { new_node("worker$_", keyfile => $coord->{vv_keyfile}, @init) } (1, 2);
	for my $n ($coord, @workers)
	{
		$n->append_conf('postgresql.conf', q{
shared_preload_libraries = 'citus,vector_vault'
listen_addresses = '127.0.0.1'
max_prepared_transactions = 50
citus.node_conninfo = 'sslmode=prefer'
} . ($opts{conf} // ''));
		$n->append_conf('pg_hba.conf', "host all all 127.0.0.1/32 trust\n");
		$n->start;
		$n->safe_psql('postgres', 'CREATE EXTENSION citus; CREATE EXTENSION vector_vault;');
	}
	$coord->safe_psql('postgres',
		"SELECT citus_set_coordinator_host('127.0.0.1', " . $coord->port . ")");
	$coord->safe_psql('postgres', "SELECT citus_add_node('127.0.0.1', " . $_->port . ")")
	  for @workers;
	return ($coord, @workers);
}

# A throwaway CA in a temporary directory with certificates signed by it: server (for every node),
# coord (CN vv-coordinator: the client certificate the nodes present in citus.node_conninfo) and
# other (CN vv-other-client). Returns the directory and the postgresql.conf lines that turn on TLS
# with client certificates and give Citus the coordinator's certificate.
sub citus_pki
{
	my $pki = PostgreSQL::Test::Utils::tempdir();
	my $openssl = sub {
		my ($out, $err) = ('', '');
		IPC::Run::run([ 'openssl', @_ ], '>', \$out, '2>', \$err) or die "openssl @_ failed: $err";
	};
	$openssl->('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=vv-test-ca',
		'-keyout', "$pki/ca.key", '-out', "$pki/ca.crt");
	for my $c ([ 'server', '127.0.0.1' ], [ 'coord', 'vv-coordinator' ], [ 'other', 'vv-other-client' ])
	{
		my ($name, $cn) = @$c;
		$openssl->('req', '-newkey', 'rsa:2048', '-nodes', '-subj', "/CN=$cn", '-keyout', "$pki/$name.key",
			'-out', "$pki/$name.csr");
		$openssl->('x509', '-req', '-in', "$pki/$name.csr", '-CA', "$pki/ca.crt", '-CAkey', "$pki/ca.key",
			'-CAcreateserial', '-days', '2', '-out', "$pki/$name.crt");
		chmod 0600, "$pki/$name.key";
	}
	my $conf = qq{
ssl = on
ssl_cert_file = '$pki/server.crt'
ssl_key_file = '$pki/server.key'
ssl_ca_file = '$pki/ca.crt'
citus.node_conninfo = 'sslmode=verify-ca sslrootcert=$pki/ca.crt sslcert=$pki/coord.crt sslkey=$pki/coord.key'
log_connections = on
};
	return ($pki, $conf);
}

# Lets the workers accept TCP connections only over TLS with a client certificate of the test CA
# (the local socket stays trusted for the test's own checks).
sub citus_workers_require_certificates
{
	my (@workers) = @_;
	for my $w (@workers)
	{
		open my $fh, '>', $w->data_dir . '/pg_hba.conf' or die;
		print $fh "local all all trust\nhostssl all all 127.0.0.1/32 trust clientcert=verify-ca\n";
		close $fh;
		$w->reload;
	}
	return;
}

# Runs psql with a connection string and a list of -c commands; returns (exit code, stdout, stderr).
sub psql_conn
{
	my ($conn, @cmds) = @_;
	my ($o, $e) = ('', '');
	my @cmd = ('psql', '-XAtq', '-v', 'VERBOSITY=verbose', '-d', $conn, map { ('-c', $_) } @cmds);
	IPC::Run::run(\@cmd, '>', \$o, '2>', \$e);
	chomp $o;
	return ($? >> 8, $o, $e);
}

1;
