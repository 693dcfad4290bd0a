# ClientSetup.pm — shared setup of the real-client tests in test/clients/*.pl.
#
#   my $node = ClientSetup::start_node('node');        # vector_vault node, Unix socket + 127.0.0.1
#   my $s = ClientSetup::setup_items($node, vaults => ['vault_a'], rows => {...});
#       # extension, role "app" (SCRAM password, NOINHERIT, no vault grants), a protected table
#       # items(id bigserial, body etext, meta ejsonb, embedding evector(3)) with a vault_hnsw
#       # index, one vault per name (owned by the bootstrap superuser), its key-management
#       # password and one write API key per vault: { password, app_password, keys => {vault => key} }
#   my ($rc, $out, $err) = ClientSetup::run_client(\@cmd, \%env, $timeout);
#   my $env = ClientSetup::client_env($node, $s, %extra);   # VV_HOST, VV_PORT, ... for a client
#   ClientSetup::nearest(\@rows, \@query, $k)           # exact L2 order (indexes into @rows)
#
# The vaults and keys are owned by the superuser that created the extension, not by a dedicated
# owner role: vault.create_api_key currently checks the key-management password of the
# extension's owner instead of the calling role's (VerifyKeyPassword in src/admin/api_keys.cpp
# reads GetUserId() after EnterPrivileged), so for any other role it fails with "role ... has
# no key-management password". Switch to a dedicated owner role once that is fixed.
package ClientSetup;

use strict;
use warnings;
use utf8;
use Encode ();
use IPC::Run ();
use JSON::PP ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;

our $db = 'postgres';

# A started node that listens on its Unix socket and on 127.0.0.1 (TCP needs a SCRAM password).
sub start_node
{
	my ($name) = @_;
	my $node = VectorVault::new_node($name);
	$node->append_conf('postgresql.conf', "listen_addresses = '127.0.0.1'\n");
	VectorVault::write_bytes($node->data_dir . '/pg_hba.conf', qq{
local all all                trust
host  all all 127.0.0.1/32   scram-sha-256
}, 0600);
	$node->start;
	return $node;
}

# Creates the extension, the app role, the protected items table with its index, the vaults and
# one API key per vault. $opts{rows} = { vault => [ {body, meta, embedding}, ... ] } are inserted
# by the owner (Unix socket) before the keys are made.
sub setup_items
{
	my ($node, %opts) = @_;
	my @vaults = @{ $opts{vaults} };
	my $app_password = 'app-' . join('', map { ('a' .. 'z')[ int(rand(26)) ] } 1 .. 16);
	my $kpw = 'key-management-' . join('', map { ('a' .. 'z')[ int(rand(26)) ] } 1 .. 16);
	$node->safe_psql($db, qq{
SET password_encryption = 'scram-sha-256';
CREATE ROLE app LOGIN PASSWORD '$app_password' NOINHERIT;
CREATE EXTENSION vector_vault;
CREATE TABLE items (id bigserial PRIMARY KEY, body etext, meta ejsonb, embedding evector(3));
GRANT SELECT, INSERT, UPDATE, DELETE ON items TO app;
GRANT USAGE ON SEQUENCE items_id_seq TO app;
});
	my $sql = '';
	$sql .= "SELECT vault.create_vault('$_') \\g /dev/null\n" for @vaults;
	$sql .= "SELECT vault.protect('items') \\g /dev/null\n";
	$sql .= "CREATE INDEX items_embedding ON items USING vault_hnsw (embedding evector_l2_ops);\n";
	for my $v (@vaults)
	{
		next unless $opts{rows} && $opts{rows}{$v};
		$sql .= "SET vector_vault.vault = '$v';\n";
		for my $r (@{ $opts{rows}{$v} })
		{
			$sql .= sprintf("INSERT INTO items (body, meta, embedding) VALUES (%s, %s, %s);\n",
				quote($r->{body}), quote(JSON::PP->new->canonical->encode($r->{meta})),
				quote(vec_text($r->{embedding})));
		}
	}
	$sql .= "SELECT vault.set_key_password(:'kpw') \\g /dev/null\n";
	$sql .= "SELECT vault.create_api_key(:'kpw', jsonb_build_object('$_', 'write'), 'client test $_');\n"
	  for @vaults;
	my ($rc, $out, $err) =
	  $node->psql($db, Encode::encode_utf8($sql), extra_params => [ '-v', "kpw=$kpw" ]);
	die "setup failed: $err" if $rc != 0;
	my @keys = split /\n/, $out;
	die "expected " . scalar(@vaults) . " API keys, got: $out" unless @keys == @vaults;
	my %keys;
	@keys{@vaults} = @keys;
	return { app_password => $app_password, password => $kpw, keys => \%keys };
}

# SQL string literal.
sub quote
{
	my ($s) = @_;
	$s =~ s/'/''/g;
	return "'$s'";
}

# '[x,y,z]'
sub vec_text
{
	my ($v) = @_;
	return '[' . join(',', @$v) . ']';
}

# Environment for a client program connecting as the app role over TCP.
sub client_env
{
	my ($node, $s, %extra) = @_;
	return {
		VV_HOST => '127.0.0.1',
		VV_PORT => $node->port,
		VV_DBNAME => $db,
		VV_USER => 'app',
		VV_PASSWORD => $s->{app_password},
		%extra,
	};
}

# Runs a client program with extra environment; returns (exit code, stdout, stderr).
sub run_client
{
	my ($cmd, $env, $timeout, %opts) = @_;
	local %ENV = %ENV;
	# The client gets its connection only from VV_*: no libpq defaults from the TAP framework.
	delete $ENV{$_} for grep { /^PG/ } keys %ENV;
	$ENV{$_} = $env->{$_} for keys %$env;
	my ($out, $err) = ('', '');
	my @init = $opts{dir} ? (init => sub { chdir $opts{dir} or die "chdir $opts{dir}: $!" }) : ();
	my $ok = eval {
		IPC::Run::run($cmd, '<', \'', '>', \$out, '2>', \$err, @init,
			IPC::Run::timeout($timeout // 300));
		1;
	};
	return (-1, $out, "$err\n$@") unless $ok;
	return ($? >> 8, $out, $err);
}

# Decodes the last line of a client's stdout as JSON (undef, with a diagnostic, when it is not).
sub last_json
{
	my ($out) = @_;
	my @lines = grep { /\S/ } split /\n/, $out // '';
	my $doc = eval { JSON::PP::decode_json($lines[-1] // '') };
	diag("client output is not JSON: $@\n$out") unless $doc;
	return $doc;
}

# Indexes of @$rows in exact L2 order from $query (ties by index), the first $k.
sub nearest
{
	my ($rows, $query, $k) = @_;
	my @d = map { my $e = $rows->[$_]{embedding}; my $s = 0; $s += ($e->[$_] - $query->[$_])**2 for 0 .. $#$e; [ $_, $s ] }
	  0 .. $#$rows;
	my @order = map { $_->[0] } sort { $a->[1] <=> $b->[1] || $a->[0] <=> $b->[0] } @d;
	return @order[ 0 .. ($k > @order ? $#order : $k - 1) ];
}

# Euclidean distance.
sub l2
{
	my ($a, $b) = @_;
	my $s = 0;
	$s += ($a->[$_] - $b->[$_])**2 for 0 .. $#$a;
	return sqrt($s);
}

# The rows every client inserts (exactly representable floats, non-ASCII text, nested JSON).
sub sample_rows
{
	my ($tag) = @_;
	return [
		{ body => "$tag: first row", meta => { n => 1, tags => [ 'a', 'b' ] }, embedding => [ 1, 2, 3 ] },
		{ body => "$tag: zwei — ünïcödé ✓ \"quoted\" 'single'", meta => { n => 2, nested => { ok => JSON::PP::true } },
			embedding => [ -1.5, 0.25, 8 ] },
		{ body => "$tag: third, near the query", meta => { n => 3 }, embedding => [ 10, 10, 10.5 ] },
		{ body => "$tag: fourth", meta => { n => 4, note => undef }, embedding => [ 9.75, 11, 9 ] },
		{ body => "$tag: fifth, far away", meta => { n => 5 }, embedding => [ 100, -100, 0.125 ] },
		{ body => "$tag: sixth", meta => { n => 6, f => 1.5 }, embedding => [ 0.1, 0.2, 0.3 ] },
	];
}

# The query vector that goes with sample_rows (nearest: rows 2, 3, then 0 or 5).
sub sample_query { return [ 10, 10.25, 10 ]; }

# Compares a client's values with what was inserted: body text, meta JSON, embedding floats.
sub rows_equal
{
	my ($got, $want) = @_;
	return 0 unless defined $got && ($got->{body} // '') eq $want->{body};
	my $j = JSON::PP->new->canonical;
	return 0 unless $j->encode($got->{meta}) eq $j->encode($want->{meta});
	my ($g, $w) = ($got->{embedding}, $want->{embedding});
	return 0 unless ref $g eq 'ARRAY' && @$g == @$w;
	for my $i (0 .. $#$w)
	{
		# float4 round trip: the inserted values are float4-exact, except 0.1-style decimals,
		# which come back as the shortest text of their float4 (equal to the decimal).
		return 0 unless abs($g->[$i] - $w->[$i]) <= 1e-6 * (1 + abs($w->[$i]));
	}
	return 1;
}

# The checks every client flow shares (node, psycopg2, SQLAlchemy): $r is the client's JSON with
# visible_before_login, login, principal, inserted, neighbours, index_plan, index_neighbours,
# all and visible_after_logout; $name prefixes the test names.
sub check_flow
{
	my ($name, $r, $rows, $query, $vault) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	is($r->{visible_before_login}, 0, "$name: before vault.login the app role sees no rows");
	is($r->{login}, $vault, "$name: vault.login with the key as a parameter selects its vault");
	like($r->{principal} // '', qr/^api key [0-9a-f]{16}.* \(connected as role app\)$/,
		"$name: the principal is the key");
	is(scalar @{ $r->{inserted} // [] }, scalar @$rows, "$name: every row inserted with parameters");
	my @want = nearest($rows, $query, 3);
	my @got = @{ $r->{neighbours} // [] };
	is_deeply([ map { $_->{id} } @got ], [ map { $r->{inserted}[$_] } @want ],
		"$name: ORDER BY embedding <-> query LIMIT 3 gives the exact three nearest, in order "
		  . '(a row of another vault at distance 0 is absent)');
	ok(@got && rows_equal($got[0], $rows->[ $want[0] ]),
		"$name: the nearest neighbour's body, meta and vector round-trip");
	ok(@got == 3 && !grep({ abs($got[$_]{distance} - l2($rows->[ $want[$_] ]{embedding}, $query)) > 1e-4 } 0 .. $#got),
		"$name: distances returned by <-> are the L2 distances");
	like($r->{index_plan} // '', qr/items_embedding/,
		"$name: with enable_seqscan off the search plan uses the vault_hnsw index");
	my $j = JSON::PP->new->canonical;
	is($j->encode($r->{index_neighbours} // []), $j->encode($r->{neighbours} // []),
		"$name: the index search returns the same neighbours and distances");
	my @all = @{ $r->{all} // [] };
	is(scalar @all, scalar @$rows, "$name: the key sees exactly its own rows");
	ok(@all == @$rows && !grep({ !rows_equal($all[$_], $rows->[$_]) } 0 .. $#$rows),
		"$name: every body (non-ASCII, quotes), meta (nested JSON) and vector round-trips")
	  or diag(explain($r->{all}));
	is($r->{visible_after_logout}, 0, "$name: after vault.logout() the app role sees no rows again");
	return;
}

# Sets up a node for one client flow: vault $vault for the client, and other_vault holding a row
# exactly at the query vector that the client must never see. Returns ($s, $rows, $query).
sub flow_setup
{
	my ($node, $vault, $tag) = @_;
	my $query = sample_query();
	my $s = setup_items($node, vaults => [ $vault, 'other_vault' ],
		rows => { other_vault => [ { body => 'other vault: exactly at the query', meta => { n => 0 },
			embedding => $query } ] });
	return ($s, sample_rows($tag), $query);
}

# Asserts the rows the client wrote are sealed under $vault (checked by the superuser).
sub check_sealed
{
	my ($name, $node, $vault, $n) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	is($node->safe_psql($db, qq{SELECT count(*) FROM items WHERE vault.vault_of(body) =
	  (SELECT vault_id FROM vault._vaults WHERE name = '$vault') AND vault.vault_of(meta) = vault.vault_of(body)
	  AND vault.vault_of(embedding) = vault.vault_of(body)}), $n,
		"$name: the rows the client wrote are sealed under the key's vault");
	return;
}

1;
