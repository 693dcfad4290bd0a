# 022_shadowing.pl — nothing a caller plants runs inside the extension (security round 2, H1).
#
# The class: every statement the extension runs must resolve every name to the object it meant,
# whatever the caller created in pg_temp, in public or in its own schema, and run where the
# caller cannot get code executed. This test does not list the names by hand: it reads the
# extension's own SQL (every string literal in src/**/*.cpp that holds SQL, and src/sql/*.sql),
# takes every identifier and operator symbol in it, and plants, for each one that names a
# pg_catalog object:
#   - a type: a domain of that name whose CHECK calls the canary, in pg_temp and in public;
#   - a function (plain functions, every overload without polymorphic or internal arguments):
#     a function of that name and signature in public (and in pg_temp) that calls the canary;
#   - an operator: for every overload on common types, an operator of that name in public;
#   - a relation (pg_class, pg_attribute, ...): a view of that name in pg_temp and public whose
#     column calls the canary;
#   - every table of schema vault under its bare name, in pg_temp and public.
# The canary raises a WARNING with a marker, records the call in a table, and (when it runs as
# a superuser) would make the attacker superuser. Positive controls prove each kind of planted
# object does run for the attacker's own statements. Then every function and procedure of
# schema vault (enumerated from pg_proc, arguments chosen by parameter name and type), every
# type input/output/send/receive path (INSERT, SELECT ::text, COPY binary), casts, operators,
# index build, index search, VACUUM and vault.protect are called by the attacker (search_path
# pg_temp, public, pg_catalog), by a vault owner with public first in its search_path, and by
# the superuser. None of the planted code may have run: the canary table is empty, the marker
# is not in the server log, and the attacker is not superuser.
#
# On c9ba3cb the first vault.* call made the attacker superuser (the cache loader cast to the
# caller's pg_temp.oid domain as the extension owner).
use strict;
use warnings;
use File::Find;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;

my $db = 'postgres';
my $pw = 'shadow-password-0001';
my $top = $ENV{VV_TOP} or die "VV_TOP is not set";

# --- the extension's internal SQL --------------------------------------------------------------
my @sql_texts;
find(
	sub {
		return unless /\.cpp$/;
		my $src = slurp_file($File::Find::name);
		$src =~ s{/\*.*?\*/}{}gs;
		$src =~ s{//[^\n]*}{}g;
		# adjacent literals ("SELECT " "x") form one statement
		while ($src =~ /((?:"(?:[^"\\]|\\.)*"\s*)+)/g)
		{
			my $lit = $1;
			my $text = join('', $lit =~ /"((?:[^"\\]|\\.)*)"/g);
			push @sql_texts, $text
			  if $text =~ /\b(SELECT|INSERT|UPDATE|DELETE|FROM|WHERE|CREATE|ALTER)\b/;
		}
	},
	"$top/src");
for my $f (glob("$top/src/sql/*.sql"))
{
	push @sql_texts, slurp_file($f);
}
my (%ident, %opsym);
for my $t (@sql_texts)
{
	my $s = $t;
	$s =~ s/'(?:[^']|'')*'/ /g;    # string literals are values, not names
	$ident{ lc $1 } = 1 while $s =~ /\b([A-Za-z_][A-Za-z0-9_]*)\b/g;
	$opsym{$1} = 1 while $s =~ /([<>=!~+\-*\/|&#@%^]+)/g;
}
delete $opsym{$_} for ('--', '/', '*/', '/*');
ok(scalar(keys %ident) > 100, 'identifiers read from the extension SQL: ' . scalar(keys %ident));
ok(scalar(keys %opsym) > 3, 'operator symbols read: ' . join(' ', sort keys %opsym));

# --- the cluster -------------------------------------------------------------------------------
my $node = VectorVault::new_node('shadow');
$node->append_conf('postgresql.conf', "log_min_messages = warning\n");
$node->start;
$node->safe_psql($db, qq{
CREATE EXTENSION vector_vault;
SELECT vault.set_key_password('$pw');
CREATE ROLE sh_mallory LOGIN;
CREATE ROLE sh_owner LOGIN;
GRANT EXECUTE ON FUNCTION vault.create_vault(text) TO sh_owner, sh_mallory;
GRANT CREATE ON SCHEMA public TO sh_mallory, sh_owner;
CREATE SCHEMA sh_evil AUTHORIZATION sh_mallory;
CREATE TABLE public.sh_canary_log (who text, what text, query text, at timestamptz DEFAULT now());
GRANT INSERT, SELECT, DELETE ON public.sh_canary_log TO PUBLIC;
});
$node->safe_psql($db, qq{
SET ROLE sh_owner;
SELECT vault.set_key_password('$pw');
SELECT vault.create_vault('sh_v');
SELECT vault.create_vault('sh_drop');
SELECT vault.grant('sh_v', 'sh_mallory', 'read');
SELECT vault.grant('sh_v', session_user::regrole, 'admin');
SET vector_vault.vault = 'sh_v';
CREATE TABLE sh_items (id int PRIMARY KEY, body etext, meta ejsonb, embedding evector(3));
INSERT INTO sh_items SELECT i, 'SHADOW-' || i, '{"k": 1}', format('[%s,1,2]', i)::evector
  FROM generate_series(1, 20) i;
CREATE INDEX sh_idx ON sh_items USING vault_hnsw (embedding);
GRANT SELECT ON sh_items TO sh_mallory;
});
my $owner_key = $node->safe_psql($db,
	"SET ROLE sh_owner; SELECT vault.create_api_key('$pw', '{\"sh_v\": \"write\"}')");
$node->safe_psql($db, "SET ROLE sh_mallory; SELECT vault.set_key_password('$pw')");
my $mallory_key = $node->safe_psql($db,
	"SET ROLE sh_mallory; SELECT vault.create_api_key('$pw', '{\"sh_v\": \"read\"}')");
my $vault_id = $node->safe_psql($db, "SET ROLE sh_owner; SELECT vault.vault_id('sh_v')");
my $owner_key_id = (split /_/, $owner_key)[1];

# --- what to plant -----------------------------------------------------------------------------
my $idlist = join(',', map { "'$_'" } sort keys %ident);
my $oplist = join(',', map { my $o = $_; $o =~ s/'/''/g; "'$o'" } sort keys %opsym);
my $common = q{'text','oid','int8','int4','int2','bool','bytea','timestamptz','name','regrole',
  'regclass','regnamespace','jsonb','float8','float4','numeric','interval','char','varchar'};

my @types = split /\n/, $node->safe_psql($db, qq{
SELECT typname FROM pg_type WHERE typnamespace = 'pg_catalog'::regnamespace
  AND typname IN ($idlist) AND typtype = 'b' AND typname NOT LIKE '\\_%' AND typisdefined
  AND typname NOT IN ('unknown', 'cstring', 'internal') ORDER BY 1});
my @funcs = split /\n/, $node->safe_psql($db, qq{
SELECT format('%s;%s;%s;%s', p.proname, pg_get_function_identity_arguments(p.oid),
              format_type(p.prorettype, NULL), p.proretset)
FROM pg_proc p
WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.proname IN ($idlist) AND p.prokind = 'f'
  AND NOT EXISTS (SELECT 1 FROM unnest(p.proargtypes::oid[]) t(o) JOIN pg_type y ON y.oid = t.o
                  WHERE y.typtype = 'p' OR y.typname IN ('internal', 'cstring'))
  AND (SELECT typtype FROM pg_type WHERE oid = p.prorettype) <> 'p'
  AND NOT p.proretset
ORDER BY 1});
my @ops = split /\n/, $node->safe_psql($db, qq{
SELECT format('%s;%s;%s;%s', o.oprname, format_type(o.oprleft, NULL), format_type(o.oprright, NULL),
              format_type(o.oprresult, NULL))
FROM pg_operator o
WHERE o.oprnamespace = 'pg_catalog'::regnamespace AND o.oprname IN ($oplist) AND o.oprkind = 'b'
  AND (SELECT typname FROM pg_type WHERE oid = o.oprleft) IN ($common)
  AND (SELECT typname FROM pg_type WHERE oid = o.oprright) IN ($common)
ORDER BY 1});
my @rels = split /\n/, $node->safe_psql($db, qq{
SELECT relname FROM pg_class WHERE relnamespace IN ('pg_catalog'::regnamespace, 'vault'::regnamespace)
  AND relname IN ($idlist) AND relkind IN ('r', 'v') ORDER BY 1});
ok(@types >= 5, 'types to shadow: ' . join(' ', @types));
ok(@funcs >= 5, 'function overloads to shadow: ' . scalar(@funcs));
ok(@ops >= 5, 'operator overloads to shadow: ' . scalar(@ops));
ok(@rels >= 5, 'relations to shadow: ' . join(' ', @rels));

# Plant script: run in the attacker's session (pg_temp objects live in that session only).
my $plant = qq{
CREATE FUNCTION public.sh_canary(what text) RETURNS boolean LANGUAGE plpgsql AS \$c\$
BEGIN
    RAISE WARNING 'VV-PLANTED-CODE-RAN: % as %', what, current_user;
    INSERT INTO public.sh_canary_log (who, what, query) VALUES (current_user, what, pg_catalog.left(pg_catalog.current_query(), 80));
    BEGIN
        EXECUTE 'ALTER ROLE sh_mallory SUPERUSER';
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    RETURN true;
END \$c\$;
GRANT EXECUTE ON FUNCTION public.sh_canary(text) TO PUBLIC;
};
my $n_planted = 0;
for my $t (@types)
{
	for my $s ('pg_temp', 'public')
	{
		$plant .= qq{CREATE DOMAIN $s."$t" AS pg_catalog."$t" CHECK (public.sh_canary('domain $s.$t'));\n};
		$n_planted++;
	}
}
my $fn = 0;
for my $f (@funcs)
{
	my ($name, $args, $ret) = split /;/, $f;
	$fn++;
	my $retexpr = $ret eq 'void' ? '' : "NULL::$ret";
	for my $s ('public', 'pg_temp')
	{
		$plant .= qq{DO \$d\$ BEGIN EXECUTE 'CREATE FUNCTION $s."$name"($args) RETURNS $ret LANGUAGE plpgsql AS \$b\$ BEGIN PERFORM public.sh_canary(''function $s.$name($args)''); RETURN $retexpr; END \$b\$'; EXCEPTION WHEN OTHERS THEN NULL; END \$d\$;\n};
		$n_planted++;
	}
}
my $on = 0;
for my $o (@ops)
{
	my ($name, $l, $r, $ret) = split /;/, $o;
	$on++;
	$plant .= qq{CREATE FUNCTION public.sh_op_$on(a $l, b $r) RETURNS $ret LANGUAGE plpgsql AS \$b\$ BEGIN PERFORM public.sh_canary('operator public.$name($l, $r)'); RETURN NULL; END \$b\$;\n};
	$plant .= qq{DO \$d\$ BEGIN CREATE OPERATOR public.$name (LEFTARG = $l, RIGHTARG = $r, FUNCTION = public.sh_op_$on); EXCEPTION WHEN OTHERS THEN NULL; END \$d\$;\n};
	$n_planted++;
}
for my $r (@rels)
{
	$plant .= qq{CREATE TEMP VIEW "$r" AS SELECT public.sh_canary('relation pg_temp.$r') AS x;\n};
	$plant .= qq{CREATE VIEW public."$r" AS SELECT public.sh_canary('relation public.$r') AS x;\n};
	$n_planted += 2;
}
ok($n_planted > 50, "planted objects: $n_planted");

# The attacker's session: plants, then is given search_path pg_temp, public, pg_catalog.
my $mallory = $node->background_psql($db, on_error_stop => 0);
$mallory->query_safe("SET ROLE sh_mallory");
$mallory->query($plant);
my $count_objects = $mallory->query_safe(q{
SELECT (SELECT count(*) FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typtype = 'd' AND (n.nspname = 'public' OR n.oid = pg_catalog.pg_my_temp_schema()))
     + (SELECT count(*) FROM pg_catalog.pg_proc p WHERE p.pronamespace IN ('public'::pg_catalog.regnamespace, pg_catalog.pg_my_temp_schema()))
     + (SELECT count(*) FROM pg_catalog.pg_operator WHERE oprnamespace = 'public'::pg_catalog.regnamespace)
     + (SELECT count(*) FROM pg_catalog.pg_class WHERE relkind = 'v' AND relnamespace IN ('public'::pg_catalog.regnamespace, pg_catalog.pg_my_temp_schema()))});
ok($count_objects >= $n_planted * 0.8, "planted objects exist: $count_objects of $n_planted attempted");

# Positive controls: each kind of planted object runs the canary for the attacker's own SQL.
my $search = q{SET search_path = pg_temp, public, pg_catalog;};
$mallory->query($search);
my @controls = (
	[ 'domain in pg_temp', "SELECT 'x'::text" ],
	[ 'operator in public', "SELECT 'a'::text = 'b'::text" ],
	[ 'relation view in pg_temp', "SELECT * FROM pg_class" ],
);
for my $c (@controls)
{
	$mallory->query("DELETE FROM public.sh_canary_log");
	$mallory->query($c->[1]);
	my $n = $node->safe_psql($db, "SELECT count(*) FROM public.sh_canary_log");
	ok($n > 0, "control: a planted $c->[0] runs for the attacker's own statement ($c->[1])");
}
$node->safe_psql($db, "DELETE FROM public.sh_canary_log; ALTER ROLE sh_mallory NOSUPERUSER");

# --- every vault.* function and procedure -------------------------------------------------------
my @procs = split /\n/, $node->safe_psql($db, q{
SELECT format('%s|%s|%s|%s', p.proname, p.prokind,
              coalesce(array_to_string(p.proargnames, ','), ''),
              coalesce((SELECT string_agg(format_type(t, NULL), ',' ORDER BY ord)
                        FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY u(t, ord)), ''))
FROM pg_proc p WHERE p.pronamespace = 'vault'::regnamespace ORDER BY p.proname <> 'drop_vault', 1});
ok(@procs > 25, 'vault functions and procedures to call: ' . scalar(@procs));

# An argument for a parameter, by its name and type.
sub arg_for
{
	my ($proc, $name, $type) = @_;
	my %by_name = (
		password => "'$pw'", new_password => "'$pw'", old_password => "'$pw'",
		api_key => "'$mallory_key'", key_id => "'$owner_key_id'", vault => "'sh_v'",
		name => "'sh_v'", role => "'sh_mallory'", level => "'read'", version => '1',
		vault_id => $vault_id, tbl => "'sh_items'", index => "'sh_idx'", batch_size => '10',
		overlap => "'0'", transaction_only => 'false', vaults => q{'{"sh_v": "read"}'},
		new_key_file => 'NULL', new_key_command => 'NULL', label => "'l'",
		expires_at => 'NULL', key_version => '1', vault_ids => "$vault_id");
	return "'sh_drop'" if $proc eq 'drop_vault' && ($name eq 'name' || $name eq 'vault');
	return $by_name{$name} if defined $name && exists $by_name{$name};
	return '(SELECT embedding FROM public.sh_items LIMIT 1)' if $type eq 'evector';
	return '(SELECT body FROM public.sh_items LIMIT 1)' if $type eq 'etext';
	return '(SELECT meta FROM public.sh_items LIMIT 1)' if $type eq 'ejsonb';
	return "'sh_v'" if $type eq 'text';
	return 'NULL';
}
my $calls = '';
for my $p (@procs)
{
	my ($name, $kind, $names, $types) = split /\|/, $p, -1;
	my @n = split /,/, $names;
	my @t = split /,/, $types;
	my @args = map { arg_for($name, $n[$_], $t[$_]) } 0 .. $#t;
	my $call = "vault.\"$name\"(" . join(', ', @args) . ")";
	$calls .= $kind eq 'p' ? "CALL $call;\n" : "SELECT $call;\n";
}
# Type I/O, casts, operators, index paths, maintenance. The test's own statements name every
# object by schema, so only names the extension itself resolves could reach a planted object.
my $io = q{
SET vector_vault.vault = 'sh_v';
SELECT body::pg_catalog.text, meta::pg_catalog.text, embedding::pg_catalog.text FROM public.sh_items ORDER BY id LIMIT 3;
SELECT embedding OPERATOR(public.<->) '[1,1,1]', embedding OPERATOR(public.<#>) '[1,1,1]', embedding OPERATOR(public.<=>) '[1,1,1]', embedding OPERATOR(public.<+>) '[1,1,1]' FROM public.sh_items LIMIT 2;
SELECT meta OPERATOR(public.->) 'k', meta OPERATOR(public.->>) 'k', meta OPERATOR(public.@>) '{"k": 1}' FROM public.sh_items LIMIT 2;
SELECT public.vector_dims(embedding), public.vector_norm(embedding), embedding::pg_catalog.float4[] FROM public.sh_items LIMIT 2;
SELECT '{1,2,3}'::pg_catalog.float4[]::public.evector(3)::pg_catalog.text;
SELECT public.etext_send(body), public.evector_send(embedding), public.ejsonb_send(meta) FROM public.sh_items LIMIT 1;
SELECT id FROM public.sh_items ORDER BY embedding OPERATOR(public.<->) '[3,1,2]'::public.evector LIMIT 5;
COPY (SELECT body, meta, embedding FROM public.sh_items LIMIT 3) TO STDOUT;
};
my $next_id = 1000;
# Statements that write, for a session with write access; ids are unique per call.
sub owner_io
{
	my $id = $next_id++;
	my $copy = $node->basedir . "/sh_copy_$id.bin";
	return $io . qq{
INSERT INTO public.sh_items VALUES ($id, 'SHADOW-NEW', '{"n": 2}', '[7,7,7]');
CREATE TEMP TABLE sh_copy_$id (body public.etext, meta public.ejsonb, embedding public.evector(3));
INSERT INTO sh_copy_$id SELECT body, meta, embedding FROM public.sh_items LIMIT 3;
CREATE INDEX ON public.sh_items USING vault_hnsw (embedding public.evector_cosine_ops);
VACUUM public.sh_items;
SELECT vault.protect('public.sh_items'::pg_catalog.regclass);
};
}
# Binary COPY (send/receive) needs a file: the superuser's part.
my $binary = q{
COPY (SELECT body, meta, embedding FROM public.sh_items LIMIT 3) TO 'FILE' (FORMAT binary);
CREATE TEMP TABLE sh_bin (body public.etext, meta public.ejsonb, embedding public.evector(3));
COPY sh_bin FROM 'FILE' (FORMAT binary);
SELECT body::pg_catalog.text FROM sh_bin LIMIT 1;
};
my $binfile = $node->basedir . '/sh_binary.copy';
$binary =~ s/FILE/$binfile/g;
my $log_offset = -s $node->logfile;

# Runs each line of $sql in a background session; returns how many ran without an error.
sub run_all
{
	my ($session, $sql) = @_;
	my $ok = 0;
	for my $stmt (grep { /\S/ } split /\n/, $sql)
	{
		$session->{stderr} = '';    # BackgroundPsql keeps stderr across queries
		$session->query($stmt);
		$ok++ if $session->{stderr} !~ /ERROR/;
	}
	return $ok;
}

# 1. the attacker, logged in with its key and as its role
$mallory->query("SELECT vault.login('$mallory_key')");
my $m_io = run_all($mallory, $io);
$mallory->query("SELECT vault.logout()");
run_all($mallory, $io . $calls);
is($m_io, scalar(grep { /\S/ } split /\n/, $io), 'the attacker\'s key session ran every type path');

# 2. the vault owner, with public first in its search_path (objects planted in public apply)
my $owner = $node->background_psql($db, on_error_stop => 0);
$owner->query_safe("SET ROLE sh_owner");
$owner->query_safe("SET search_path = public, pg_catalog");
$owner->query($_) for split /\n/, owner_io();
$owner->query("SELECT vault.login('$owner_key')");
$owner->query($_) for split /\n/, owner_io();
$owner->query("SELECT vault.logout()");
$owner->query($_) for split /\n/, $calls;
$owner->quit;

# 3. the superuser (extension owner) with public first
my $su = $node->background_psql($db, on_error_stop => 0);
$su->query_safe("SET search_path = public, pg_catalog");
my $su_io = owner_io() . $binary;
is(run_all($su, $su_io), scalar(grep { /\S/ } split /\n/, $su_io), 'the superuser ran every type and maintenance path');
my $n_calls = scalar(grep { /\S/ } split /\n/, $calls);
my $su_calls = run_all($su, $calls);
ok($su_calls >= $n_calls / 2, "the superuser's vault.* calls mostly succeeded ($su_calls of $n_calls)");
$su->quit;
$mallory->quit;

# --- nothing planted ran -----------------------------------------------------------------------
my $ran = $node->safe_psql($db, "SELECT count(*) FROM public.sh_canary_log");
is($ran, '0', 'no planted function, domain, operator or view ran in any vault.* call or type path')
  or diag($node->safe_psql($db, "SELECT who, what, query, count(*) FROM public.sh_canary_log GROUP BY 1, 2, 3 ORDER BY 4 DESC LIMIT 30"));
is($node->safe_psql($db, "SELECT rolsuper FROM pg_roles WHERE rolname = 'sh_mallory'"),
	'f', 'the attacker did not become superuser');
my $log = VectorVault::log_since($node, $log_offset);
my @hits = $log =~ /(VV-PLANTED-CODE-RAN: [^\n]*)/g;
is(scalar(@hits), 0, 'the server log has no planted-code marker after the controls')
  or diag(join("\n", @hits[0 .. ($#hits > 10 ? 10 : $#hits)]));
my $before = slurp_file($node->logfile);
ok($before =~ /VV-PLANTED-CODE-RAN: domain pg_temp\.text as sh_mallory/,
	'control: the controls\' marker is in the server log (the probe can see it)');

$node->stop;
done_testing();
