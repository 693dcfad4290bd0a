# 005_citus_attack.pl — the attack suite's principals across the nodes of a Citus cluster (issue
# 10, item c). A distributed table WITHOUT row-level security (so every row is visible and only the
# vault rights stand between a role and the plaintext) holds values of vault va; every principal
# below tries to read va's values, through the coordinator and directly on the worker that holds
# va's shard: the etext cast, evector to real[], and a k-NN whose distance needs va's vectors.
#   no grants, a revoked grant, a grant on another vault only, BYPASSRLS, the distributed table's
#   owner, a grantee of a dropped vault (its former rows: 22V02 or 42501), and a reader of va (positive
#   control: reads everything on both paths).
# Then search_path: an unprivileged role plants functions and operators in public, on the
# coordinator and directly on the workers, under every name the extension's pushed statements,
# catch-up and pending-shred report use; the planted objects log when they run. Vault changes,
# a catch-up, vault.citus_sync() and vault.citus_pending_shreds() run, and nothing was logged
# (positive control: the planter's own unqualified call is logged).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;

my $db = 'postgres';

my ($coord, @workers) = VectorVault::citus_cluster();

$coord->safe_psql($db, q{
CREATE ROLE vv_owner LOGIN;
CREATE ROLE p_reader LOGIN;
CREATE ROLE p_nogrant LOGIN;
CREATE ROLE p_revoked LOGIN;
CREATE ROLE p_other LOGIN;
CREATE ROLE p_bypass LOGIN BYPASSRLS;
CREATE ROLE p_tabowner LOGIN;
CREATE ROLE p_dropped LOGIN;
CREATE ROLE p_planter LOGIN;
GRANT EXECUTE ON FUNCTION vault.create_vault(text) TO vv_owner;
GRANT CREATE ON SCHEMA public TO p_tabowner, p_planter;
});
$coord->safe_psql($db, q{SET ROLE vv_owner;
SELECT vault.create_vault('va'); SELECT vault.create_vault('vb'); SELECT vault.create_vault('vd');
SELECT vault.grant('va', 'p_reader', 'read');
SELECT vault.grant('va', 'p_revoked', 'read'); SELECT vault.revoke('va', 'p_revoked');
SELECT vault.grant('vb', 'p_other', 'read');
SELECT vault.grant('vd', 'p_dropped', 'read');
SELECT vault.grant('va', 'p_tabowner', 'write'); SELECT vault.grant('vb', 'p_tabowner', 'write');
SELECT vault.grant('vd', 'p_tabowner', 'write');});

# The table's owner writes the rows (a write grant lets it seal), then loses its grants.
$coord->safe_psql($db, q{SET ROLE p_tabowner;
CREATE TABLE secrets (tenant text NOT NULL, id int NOT NULL, body etext, embedding evector(3),
                      PRIMARY KEY (tenant, id));
SELECT create_distributed_table('secrets', 'tenant', shard_count => 4);
GRANT SELECT ON secrets TO PUBLIC;
SET vector_vault.vault = 'va';
INSERT INTO secrets SELECT 'va', i, 'SECRET-va-' || i, ('[' || i || ',2,3]')::evector FROM generate_series(1, 10) i;
SET vector_vault.vault = 'vb';
INSERT INTO secrets SELECT 'vb', i, 'SECRET-vb-' || i, ('[' || i || ',5,6]')::evector FROM generate_series(1, 10) i;
SET vector_vault.vault = 'vd';
INSERT INTO secrets SELECT 'vd', i, 'SECRET-vd-' || i, ('[' || i || ',8,9]')::evector FROM generate_series(1, 10) i;});
$coord->safe_psql($db, q{SET ROLE vv_owner;
SELECT vault.revoke('va', 'p_tabowner'); SELECT vault.revoke('vb', 'p_tabowner');
SELECT vault.revoke('vd', 'p_tabowner'); SELECT vault.drop_vault('vd');});

# A query vector sealed under va (an envelope the owner made), for the k-NN attempts.
my $qenv = $coord->safe_psql($db, q{SET vector_vault.vault = 'va'; SET vector_vault.ciphertext_io = on;
SELECT embedding FROM secrets WHERE tenant = 'va' AND id = 5});
like($qenv, qr/^vve1:/, 'a query vector sealed under va');

# Where va's and vd's shards are.
my %shard;
for my $t (qw(va vd))
{
	my ($port, $name) = split / /, $coord->safe_psql($db, qq{SELECT nodeport || ' ' || shard_name('secrets'::regclass, shardid)
		FROM citus_shards WHERE table_name = 'secrets'::regclass
		AND shardid = get_shard_id_for_distribution_column('secrets', '$t')});
	my ($w) = grep { $_->port == $port } @workers;
	$shard{$t} = [ $w, $name ];
}

# The attempts: [label, SQL with TABLE for the relation].
my @attempts = (
	[ 'etext cast', q{SELECT string_agg(body::text, ',') FROM TABLE WHERE tenant = 'VAULT'} ],
	[ 'evector to real[]', q{SELECT string_agg(embedding::real[]::text, ',') FROM TABLE WHERE tenant = 'VAULT'} ],
	[ 'k-NN', qq{SET vector_vault.ciphertext_io = on; SELECT string_agg(id::text, ',') FROM
		(SELECT id FROM TABLE WHERE tenant = 'VAULT' ORDER BY embedding <-> '$qenv'::evector LIMIT 3) s} ],
	[ 'distance', qq{SET vector_vault.ciphertext_io = on;
		SELECT string_agg((embedding <-> '$qenv'::evector)::text, ',') FROM TABLE WHERE tenant = 'VAULT'} ],
);

# Runs every attempt for a role against a vault's rows, through the coordinator and on the
# worker; returns (outcomes that yielded data, outcomes, sqlstates seen).
sub attack
{
	my ($role, $vault) = @_;
	my (@leaks, @states);
	my ($w, $shard) = @{ $shard{$vault} };
	for my $path ([ 'coordinator', $coord, 'secrets' ], [ 'worker', $w, $shard ])
	{
		my ($pname, $node, $rel) = @$path;
		for my $a (@attempts)
		{
			(my $sql = $a->[1]) =~ s/TABLE/$rel/g;
			$sql =~ s/VAULT/$vault/g;
			my ($st, $msg, $err, $out) = VectorVault::sql_error($node, $db, "SET ROLE $role; $sql");
			push @states, $st;
			push @leaks, "$pname $a->[0]: $out" if $st eq '' && $out =~ /\S/;
			push @leaks, "$pname $a->[0]: error text '$msg'" if $msg =~ /SECRET-/;
		}
	}
	return (\@leaks, \@states);
}

my ($leaks, $states) = attack('p_reader', 'va');
is(scalar(grep { $_ eq '' } @$states), 8, 'positive control: a reader of va succeeds at all 8 attempts');
like(join("\n", @$leaks), qr/coordinator etext cast: SECRET-va-1,.*worker etext cast: SECRET-va-/s,
	'positive control: ... on the coordinator and directly on the worker');
for my $role (qw(p_nogrant p_revoked p_other p_bypass p_tabowner))
{
	($leaks, $states) = attack($role, 'va');
	is(join("\n", @$leaks), '', "$role: no attempt yields va's data, through the coordinator or on the worker");
	is(join(',', grep { $_ ne '42501' } @$states), '', "$role: every attempt fails with 42501");
}
($leaks, $states) = attack('p_dropped', 'vd');
is(join("\n", @$leaks), '', 'p_dropped: no attempt yields the dropped vault\'s data');
is(join(',', grep { $_ ne '22V02' && $_ ne '42501' } @$states), '',
	'p_dropped: every attempt fails (22V02: the key is gone, or 42501: the drop took its grant)');

# The rights are checked where the value is decrypted: even a role that may read the shard's rows
# and switch RLS off (the table owner) cannot decrypt on the worker.
my ($st) = VectorVault::sql_error($shard{va}[0], $db,
	"SET ROLE p_tabowner; SET row_security = off; SELECT body::text FROM $shard{va}[1] LIMIT 1");
is($st, '42501', 'the table owner with row_security off on the worker still cannot decrypt');

# --- search_path: planted objects are never resolved by the extension's statements ---------------
# Functions and operators under the names the pushed statements, the catch-up and the report use.
my $plant = q{
CREATE TABLE IF NOT EXISTS public.planted_log (what text, who text DEFAULT current_user);
GRANT INSERT, SELECT ON public.planted_log TO PUBLIC;
CREATE OR REPLACE FUNCTION public.jsonb_populate_recordset(anyelement, jsonb) RETURNS SETOF anyelement
  LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.planted_log(what) VALUES ('jsonb_populate_recordset'); END $$;
CREATE OR REPLACE FUNCTION public.jsonb_array_elements(jsonb) RETURNS SETOF jsonb
  LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.planted_log(what) VALUES ('jsonb_array_elements'); END $$;
CREATE OR REPLACE FUNCTION public.jsonb_build_array(jsonb) RETURNS jsonb
  LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.planted_log(what) VALUES ('jsonb_build_array'); RETURN '[]'; END $$;
CREATE OR REPLACE FUNCTION public.decode(text, text) RETURNS bytea
  LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.planted_log(what) VALUES ('decode'); RETURN pg_catalog.decode($1, $2); END $$;
CREATE OR REPLACE FUNCTION public.now() RETURNS timestamptz
  LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.planted_log(what) VALUES ('now'); RETURN pg_catalog.now(); END $$;
CREATE OR REPLACE FUNCTION public.nextval(regclass) RETURNS bigint
  LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.planted_log(what) VALUES ('nextval'); RETURN pg_catalog.nextval($1); END $$;
CREATE OR REPLACE FUNCTION public.master_run_on_worker(text[], int[], text[], boolean)
  RETURNS TABLE (node_name text, node_port int, success boolean, result text)
  LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.planted_log(what) VALUES ('master_run_on_worker'); END $$;
CREATE OR REPLACE FUNCTION public.planted_arrow(jsonb, text) RETURNS text
  LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.planted_log(what) VALUES ('->>'); RETURN $1 OPERATOR(pg_catalog.->>) $2; END $$;
CREATE OPERATOR public.->> (LEFTARG = jsonb, RIGHTARG = text, FUNCTION = public.planted_arrow);
CREATE OR REPLACE FUNCTION public.planted_eq(bigint, bigint) RETURNS boolean
  LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.planted_log(what) VALUES ('='); RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
CREATE OPERATOR public.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = public.planted_eq);
CREATE OR REPLACE FUNCTION public.planted_lt(bigint, bigint) RETURNS boolean
  LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.planted_log(what) VALUES ('<'); RETURN $1 OPERATOR(pg_catalog.<) $2; END $$;
CREATE OPERATOR public.< (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = public.planted_lt);
};
# Planted directly on each worker (Citus does not propagate them from there) and on the
# coordinator (DDL propagation off: the coordinator's own copy).
for my $n (@workers)
{
	$n->safe_psql($db, "SET citus.enable_ddl_propagation = off; SET ROLE p_planter; $plant");
}
$coord->safe_psql($db, "SET citus.enable_ddl_propagation = off; SET ROLE p_planter; $plant");
# Positive control: resolved by name, the plants run and log (public before pg_catalog; and with
# the default search_path, an exact-match plant beats pg_catalog's variadic jsonb_build_array).
is($workers[0]->safe_psql($db, q{SET ROLE p_planter; SELECT jsonb_build_array('1'::jsonb);
	SET search_path = public, pg_catalog; SELECT decode('00', 'hex') IS NOT NULL;
	SELECT ('{"a": "b"}'::jsonb ->> 'a'); SELECT count(*) FROM public.planted_log}), "[]\nt\nb\n3",
	'positive control: the planted functions and operators run when a statement resolves them');
$_->safe_psql($db, 'TRUNCATE public.planted_log') for ($coord, @workers);

# Everything that pushes, applies, catches up or reports.
$coord->safe_psql($db, q{SET ROLE vv_owner; SELECT vault.create_vault('ve'); SELECT vault.rotate_key('vb');
SELECT vault.grant('ve', 'p_reader', 'read'); SELECT vault.drop_vault('ve');});
$coord->safe_psql($db, q{SELECT vault.citus_sync()});
$coord->safe_psql($db, q{UPDATE vault._citus_nodes SET generation = 0});
$coord->safe_psql($db, q{SELECT count(*) FROM secrets});
is($coord->safe_psql($db, q{SELECT count(*) FROM vault.citus_pending_shreds()}), '0',
	'the pending-shred report ran (nothing pending)');
my $log = join('', map { $_->safe_psql($db, q{SELECT string_agg(what || ' as ' || who, ', ') FROM public.planted_log}) }
	($coord, @workers));
is($log, '', 'no planted function or operator ran in any pushed, applied, catch-up or report statement');
is($workers[1]->safe_psql($db, q{SELECT key_version FROM vault._vaults WHERE name = 'vb' AND state = 'active'}), '2',
	'and the changes did arrive on the workers (vb rotated)');

done_testing();
