# 095_upgrade.pl — ALTER EXTENSION vector_vault UPDATE from the released 0.1.0 to 0.2.0 (issue 12).
#
# Database "up": CREATE EXTENSION vector_vault VERSION '0.1.0' (the frozen install script in
# sql/released/, which names the 0.1.0 C symbol evector_from_real_array), two vaults, a table of
# etext/ejsonb/evector(8) rows (inserted through text and through 0.1.0's real[] cast), a
# vault_hnsw index; every row and three index searches are recorded. Positive control: 0.2.0's
# evector + evector does not exist yet (42883). Then ALTER EXTENSION ... UPDATE: the version is
# 0.2.0, every row decrypts to the same text, the index searches return the same ids, the index
# verifies, and 0.2.0 features work on the old data (avg, +, numeric[] cast, ANALYZE through the
# new typanalyze), a new row is found through the old index.
#
# Catalog equality: "clean" (0.1.0 + UPDATE, no data) and "up" must have exactly the catalog of
# "fresh" (CREATE EXTENSION at 0.2.0): one line per member object of the extension
# (pg_describe_object over pg_depend deptype 'e') with its definition (functions and aggregates,
# types, operators, casts, operator classes and families with their members, access methods,
# event triggers, schemas, tables with columns, constraints, triggers, policies and indexes,
# views, sequences, comments, ACLs) and the extension's configuration tables. This is the check
# that fails when src/sql changes and sql/updates/ does not follow. Positive controls: 0.1.0
# without the update differs, and so does "clean" with one detail undone (evector's ANALYZE
# function) inside a rolled-back transaction.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;

my $node = VectorVault::new_node('upgrade');
$node->start;
$node->safe_psql('postgres', "CREATE DATABASE $_") for qw(up clean fresh);

# Lists every member object of vector_vault with its definition, one line each, sorted.
my $catalog_sql = <<'SQL';
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'vector_vault'),
mem AS (SELECT d.classid, d.objid FROM pg_depend d, ext
         WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'),
lines AS (
SELECT pg_describe_object(m.classid, m.objid, 0) || ' :: ' || coalesce(CASE m.classid
  WHEN 'pg_proc'::regclass THEN (
    SELECT concat_ws(' | ', p.prokind, p.pronamespace::regnamespace, p.proname,
      p.proargtypes::oid[]::regtype[]::text, p.proallargtypes::regtype[]::text, p.proargmodes::text,
      p.proargnames::text, p.prorettype::regtype, p.proretset, (SELECT lanname FROM pg_language WHERE oid = p.prolang), p.prosecdef,
      p.proleakproof, p.proisstrict, p.provolatile, p.proparallel, p.procost, p.prorows,
      p.prosupport, p.probin, p.prosrc, p.proconfig::text, p.proacl::text,
      pg_get_expr(p.proargdefaults, 0),
      (SELECT concat_ws(' / ', a.aggkind, a.aggtransfn, a.aggfinalfn, a.aggcombinefn,
         a.aggserialfn, a.aggdeserialfn, a.aggtranstype::regtype, a.aggtransspace,
         a.aggfinalextra, a.aggfinalmodify, a.agginitval, a.aggsortop::regoperator)
         FROM pg_aggregate a WHERE a.aggfnoid = p.oid))
    FROM pg_proc p WHERE p.oid = m.objid)
  WHEN 'pg_type'::regclass THEN (
    SELECT concat_ws(' | ', t.typnamespace::regnamespace, t.typname, t.typlen, t.typbyval,
      t.typtype, t.typcategory, t.typispreferred, t.typdelim, t.typrelid::regclass,
      t.typsubscript, t.typelem::regtype, t.typarray::regtype, t.typinput, t.typoutput,
      t.typreceive, t.typsend, t.typmodin, t.typmodout, t.typanalyze, t.typalign, t.typstorage,
      t.typnotnull, t.typbasetype::regtype, t.typtypmod, t.typndims, t.typcollation,
      t.typdefault, t.typacl::text)
    FROM pg_type t WHERE t.oid = m.objid)
  WHEN 'pg_operator'::regclass THEN (
    SELECT concat_ws(' | ', o.oprnamespace::regnamespace, o.oprname, o.oprkind, o.oprcanmerge,
      o.oprcanhash, o.oprleft::regtype, o.oprright::regtype, o.oprresult::regtype,
      o.oprcom::regoperator, o.oprnegate::regoperator, o.oprcode::oid::regprocedure,
      o.oprrest, o.oprjoin)
    FROM pg_operator o WHERE o.oid = m.objid)
  WHEN 'pg_cast'::regclass THEN (
    SELECT concat_ws(' | ', c.castsource::regtype, c.casttarget::regtype,
      c.castfunc::regprocedure, c.castcontext, c.castmethod)
    FROM pg_cast c WHERE c.oid = m.objid)
  WHEN 'pg_opclass'::regclass THEN (
    SELECT concat_ws(' | ', am.amname, c.opcnamespace::regnamespace, c.opcname,
      f.opfname, c.opcintype::regtype, c.opcdefault, c.opckeytype::regtype)
    FROM pg_opclass c JOIN pg_am am ON am.oid = c.opcmethod JOIN pg_opfamily f ON f.oid = c.opcfamily
    WHERE c.oid = m.objid)
  WHEN 'pg_opfamily'::regclass THEN (
    SELECT concat_ws(' | ', am.amname, f.opfnamespace::regnamespace, f.opfname,
      (SELECT string_agg(concat_ws(' ', o.amopstrategy, o.amoplefttype::regtype,
         o.amoprighttype::regtype, o.amopopr::regoperator, o.amoppurpose,
         o.amopsortfamily), ', ' ORDER BY o.amopstrategy, o.amopopr::regoperator::text)
         FROM pg_amop o WHERE o.amopfamily = f.oid),
      (SELECT string_agg(concat_ws(' ', p.amprocnum, p.amproclefttype::regtype,
         p.amprocrighttype::regtype, p.amproc::oid::regprocedure), ', '
         ORDER BY p.amprocnum, p.amproc::oid::regprocedure::text)
         FROM pg_amproc p WHERE p.amprocfamily = f.oid))
    FROM pg_opfamily f JOIN pg_am am ON am.oid = f.opfmethod WHERE f.oid = m.objid)
  WHEN 'pg_am'::regclass THEN (
    SELECT concat_ws(' | ', a.amname, a.amtype, a.amhandler::oid::regprocedure)
    FROM pg_am a WHERE a.oid = m.objid)
  WHEN 'pg_event_trigger'::regclass THEN (
    SELECT concat_ws(' | ', e.evtname, e.evtevent, e.evtfoid::regprocedure, e.evtenabled,
      e.evttags::text)
    FROM pg_event_trigger e WHERE e.oid = m.objid)
  WHEN 'pg_namespace'::regclass THEN (
    SELECT concat_ws(' | ', n.nspname, n.nspacl::text) FROM pg_namespace n WHERE n.oid = m.objid)
  WHEN 'pg_class'::regclass THEN (
    SELECT concat_ws(' | ', c.relnamespace::regnamespace, c.relname, c.relkind,
      c.relpersistence, c.relrowsecurity, c.relforcerowsecurity, c.reloptions::text,
      c.relacl::text, c.relreplident,
      CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END,
      (SELECT string_agg(concat_ws(' ', a.attname, format_type(a.atttypid, a.atttypmod),
         a.attnotnull, a.attidentity, a.attgenerated, a.attstorage, a.attacl::text,
         a.attcollation, pg_get_expr(ad.adbin, ad.adrelid)), ', ' ORDER BY a.attnum)
         FROM pg_attribute a LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
      (SELECT string_agg(x.conname || ' ' || pg_get_constraintdef(x.oid), ', ' ORDER BY x.conname)
         FROM pg_constraint x WHERE x.conrelid = c.oid),
      (SELECT string_agg(pg_get_indexdef(i.indexrelid), ', ' ORDER BY pg_get_indexdef(i.indexrelid))
         FROM pg_index i WHERE i.indrelid = c.oid),
      (SELECT string_agg(pg_get_triggerdef(g.oid), ', ' ORDER BY g.tgname)
         FROM pg_trigger g WHERE g.tgrelid = c.oid AND NOT g.tgisinternal),
      (SELECT string_agg(concat_ws(' ', p.polname, p.polcmd, p.polpermissive, p.polroles::regrole[]::text,
         pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)), ', '
         ORDER BY p.polname) FROM pg_policy p WHERE p.polrelid = c.oid),
      (SELECT concat_ws(' ', s.seqtypid::regtype, s.seqstart, s.seqincrement, s.seqmax, s.seqmin,
         s.seqcache, s.seqcycle) FROM pg_sequence s WHERE s.seqrelid = c.oid))
    FROM pg_class c WHERE c.oid = m.objid)
  ELSE 'no definition compared for catalog ' || m.classid::regclass::text
  END, '(null)') || coalesce(' -- ' || (SELECT description FROM pg_description ds
    WHERE ds.objoid = m.objid AND ds.classoid = m.classid AND ds.objsubid = 0), '') AS line
FROM mem m
UNION ALL
SELECT 'extension :: ' || concat_ws(' | ', e.extnamespace::regnamespace, e.extrelocatable,
  e.extconfig::regclass[]::text, e.extcondition::text)
FROM pg_extension e WHERE e.extname = 'vector_vault')
SELECT line FROM lines ORDER BY line COLLATE "C";
SQL

# The catalog listing of database $db (one string, one object per line).
sub catalog
{
	my ($db, $before) = @_;
	return $node->safe_psql($db, ($before // '') . $catalog_sql);
}

# The lines of $a missing from $b and of $b missing from $a (a short diff for diagnostics).
sub catalog_diff
{
	my ($a, $b) = @_;
	my %a = map { $_ => 1 } split /\n/, $a;
	my %b = map { $_ => 1 } split /\n/, $b;
	my @only_a = grep { !$b{$_} } sort keys %a;
	my @only_b = grep { !$a{$_} } sort keys %b;
	return join("\n", (map { "- $_" } @only_a), (map { "+ $_" } @only_b));
}

# --- 0.1.0 with data and an index ------------------------------------------------------------
is($node->safe_psql('up', q{SELECT string_agg(source || '->' || target || ':' || path, ' ')
	FROM pg_extension_update_paths('vector_vault') WHERE path IS NOT NULL AND source = '0.1.0'}),
	'0.1.0->0.2.0:0.1.0--0.2.0', 'the installed scripts offer the update path 0.1.0 -> 0.2.0');
$node->safe_psql($_, q{CREATE EXTENSION vector_vault VERSION '0.1.0'}) for qw(up clean);
$node->safe_psql('fresh', q{CREATE EXTENSION vector_vault});
is($node->safe_psql('up', q{SELECT extversion FROM pg_extension WHERE extname = 'vector_vault'}),
	'0.1.0', 'CREATE EXTENSION ... VERSION 0.1.0 installs the released 0.1.0 script');
is($node->safe_psql('fresh', q{SELECT extversion FROM pg_extension WHERE extname = 'vector_vault'}),
	'0.2.0', 'CREATE EXTENSION without VERSION installs 0.2.0');

my $setup = q{
SELECT vault.create_vault('tenant_a');
SELECT vault.create_vault('tenant_b');
CREATE TABLE items (id bigserial PRIMARY KEY, body etext, meta ejsonb, embedding evector(8));
SET vector_vault.vault = 'tenant_a';
-- 0.1.0's real[] cast (C symbol evector_from_real_array in 0.1.0)
INSERT INTO items (body, meta, embedding)
SELECT 'a row ' || i || ' ünïcödé', jsonb_build_object('i', i, 'tenant', 'a'),
       (SELECT array_agg(((i * 31 + j * 17) % 23)::real / 4::real ORDER BY j) FROM generate_series(1, 8) j)
  FROM generate_series(1, 60) i;
SET vector_vault.vault = 'tenant_b';
INSERT INTO items (body, meta, embedding)
SELECT 'b row ' || i, jsonb_build_object('i', i, 'tenant', 'b'),
       ('[' || (SELECT string_agg(((i * 13 + j * 7) % 19)::text, ',' ORDER BY j) FROM generate_series(1, 8) j) || ']')::evector
  FROM generate_series(1, 40) i;
CREATE INDEX items_embedding ON items USING vault_hnsw (embedding evector_l2_ops) WITH (m = 8, ef_construction = 32);
};
$node->safe_psql('up', $setup);

my @queries = ('[1,2,3,4,5,6,7,8]', '[5,0,5,0,5,0,5,0]', '[0.5,4,2.25,1,3,0,2,1]');
my $rows_sql = q{SELECT string_agg(concat_ws('|', id, body::text, meta::text, embedding::text,
	vault.vault_of(embedding)), E'\n' ORDER BY id) FROM items};
my $search_sql = join('', map { qq{SELECT string_agg(id::text, ',') FROM (SELECT id FROM items
	ORDER BY embedding <-> '$_' LIMIT 10) s;\n} } @queries);
my $search = qq{SET vector_vault.vault = 'tenant_a'; SET enable_seqscan = off;\n$search_sql};

my $rows_before = $node->safe_psql('up', $rows_sql);
is(scalar(split /\n/, $rows_before), 100, '0.1.0: 100 rows stored and decrypted');
like($node->safe_psql('up', qq{SET vector_vault.vault = 'tenant_a'; SET enable_seqscan = off;
	EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY embedding <-> '$queries[0]' LIMIT 10}),
	qr/items_embedding/, '0.1.0: the search runs through the vault_hnsw index');
my $search_before = $node->safe_psql('up', $search);
is(scalar(grep { tr/,// == 9 } split /\n/, $search_before), 3, '0.1.0: three index searches of 10 rows');
my ($state) = VectorVault::sql_error($node, 'up',
	q{SET vector_vault.vault = 'tenant_a'; SELECT embedding + embedding FROM items LIMIT 1});
is($state, '42883', 'control: 0.1.0 has no evector + evector (a 0.2.0 operator)');

my $cat_old = catalog('clean');
my $cat_fresh = catalog('fresh');
isnt($cat_old, $cat_fresh, 'control: the catalog listing tells 0.1.0 from 0.2.0');
like($cat_fresh, qr/^type evector :: .*evector_typanalyze/m,
	'the listing shows definitions (evector ANALYZE function in 0.2.0)');

# --- the update ------------------------------------------------------------------------------
$node->safe_psql($_, q{ALTER EXTENSION vector_vault UPDATE}) for qw(up clean);
is($node->safe_psql('up', q{SELECT extversion FROM pg_extension WHERE extname = 'vector_vault'}),
	'0.2.0', 'ALTER EXTENSION vector_vault UPDATE brings 0.1.0 to 0.2.0');

is($node->safe_psql('up', $rows_sql), $rows_before, 'after the update every row decrypts to the same values');
is($node->safe_psql('up', $search), $search_before, 'after the update the index searches return the same rows');
my ($ok, $report) = VectorVault::hnsw_verify($node, 'up', 'items_embedding');
ok($ok, 'after the update vault.hnsw_verify passes') or diag($report);

# 0.2.0 features on 0.1.0 data.
is($node->safe_psql('up', q{SET vector_vault.vault = 'tenant_a';
	SELECT vector_dims(e + e) || ' ' || (e + e)::text FROM (SELECT embedding e FROM items WHERE id = 1) s}),
	'8 ' . $node->safe_psql('up', q{SELECT (SELECT '[' || string_agg((x * 2)::text, ',') || ']'
	FROM unnest(embedding::real[]) x) FROM items WHERE id = 1}),
	'0.2.0: evector + evector on a value sealed under 0.1.0');
like($node->safe_psql('up', q{SET vector_vault.vault = 'tenant_b';
	SELECT vector_dims(avg(embedding)) FROM items}), qr/^8$/, '0.2.0: avg(evector) over 0.1.0 data');
$node->safe_psql('up', q{SET vector_vault.vault = 'tenant_b';
	INSERT INTO items (body, meta, embedding) VALUES ('new after update', '{"new": true}',
	ARRAY[100.5, 100, 100, 100, 100, 100, 100, 100]::numeric[]);
	INSERT INTO items (body, embedding) VALUES ('real[] after update', ARRAY[0,0,0,0,0,0,0,1]::real[]);
	ANALYZE items;});
is($node->safe_psql('up', q{SET vector_vault.vault = 'tenant_b'; SET enable_seqscan = off;
	SELECT body::text FROM items ORDER BY embedding <-> '[100,100,100,100,100,100,100,100]' LIMIT 1}),
	'new after update', '0.2.0: a row inserted through the numeric[] cast is found through the 0.1.0 index');
is($node->safe_psql('up', q{SELECT count(*) FROM pg_stats WHERE tablename = 'items'
	AND attname = 'embedding' AND most_common_vals IS NULL AND histogram_bounds IS NULL}), '1',
	'0.2.0: ANALYZE of the upgraded evector column keeps no values (new typanalyze)');

# --- catalog equality ----------------------------------------------------------------------------
my $cat_clean = catalog('clean');
is($cat_clean, $cat_fresh, '0.1.0 + update has exactly the catalog of a fresh 0.2.0 install')
  or diag("differences (- updated, + fresh):\n" . catalog_diff($cat_clean, $cat_fresh)
	  . "\nsrc/sql changed: repeat the change in sql/updates/vector_vault--0.1.0--0.2.0.sql "
	  . "(or in the update script to the next version once 0.2.0 is released)");
my $cat_up = catalog('up');
is($cat_up, $cat_fresh, 'so does the updated database that holds data and an index')
  or diag("differences (- updated, + fresh):\n" . catalog_diff($cat_up, $cat_fresh));
unlike($cat_fresh, qr/no definition compared/, 'every member object kind has its definition compared')
  or diag(join("\n", grep { /no definition compared/ } split /\n/, $cat_fresh));
cmp_ok(scalar(split /\n/, $cat_fresh), '>', 100, 'the listing covers the extension (' . scalar(split /\n/, $cat_fresh) . ' objects)');
my $cat_tampered = catalog('clean', "BEGIN; ALTER TYPE evector SET (ANALYZE = NONE);\n");
isnt($cat_tampered, $cat_fresh, 'control: an update that forgot evector\'s ANALYZE function would be caught')
  and note(catalog_diff($cat_tampered, $cat_fresh));

# With pgvector installed before the update, the update creates the vector <-> evector casts as
# a fresh install would (members of neither extension).
SKIP:
{
	$node->safe_psql('postgres', 'CREATE DATABASE pgv');
	my ($rc) = $node->psql('pgv', 'CREATE EXTENSION vector');
	skip 'pgvector is not installed', 1 if $rc != 0;
	$node->safe_psql('pgv', q{CREATE EXTENSION vector_vault VERSION '0.1.0'; ALTER EXTENSION vector_vault UPDATE});
	is($node->safe_psql('pgv', q{SELECT string_agg(x, ' ' ORDER BY x) FROM (SELECT concat_ws(':',
		c.castsource::regtype || '->' || c.casttarget::regtype, c.castcontext,
		(SELECT count(*) FROM pg_depend d WHERE d.classid = 'pg_cast'::regclass AND d.objid = c.oid
		AND d.deptype = 'e')) AS x FROM pg_cast c WHERE 'evector'::regtype IN (c.castsource, c.casttarget)
		AND 'vector'::regtype IN (c.castsource, c.casttarget)) s}),
		'evector->vector:e:0 vector->evector:a:0',
		'with pgvector present the update creates the vector <-> evector casts, members of neither extension');
}

$node->stop;
done_testing();
