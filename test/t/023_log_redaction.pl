# 023_log_redaction.pl — nothing secret reaches the server log, whatever the statement's spelling,
# and no plaintext reaches it through Postgres' own error texts.
#
# Part 1 (issue 8, H9: redaction was textual). A node logs everything (log_statement = all,
# every duration, statements of every message, bind parameters in full, auto_explain of nested
# statements). A key-management password is changed once per channel, each channel with its own
# new password; every channel reaches vault.set_key_password without the text "set_key_password("
# in the statement:
#   uescape        vault.U&"\0073et_key_password"(...)
#   uescape_char   vault.U&"!0073et_key_password" UESCAPE '!'(...)
#   c_alias        a C function of another name bound to the same symbol
#   sql_wrapper    SELECT a SQL function that calls it
#   atomic_wrapper SELECT a BEGIN ATOMIC SQL function that calls it
#   procedure      CALL a PL/pgSQL procedure that calls it
#   do_block       DO block running dynamic SQL that builds the name
#   prepare        PREPARE (U& spelling) / EXECUTE with literals
#   operator       an operator whose function is set_key_password
#   view_rule      INSERT into a view whose INSTEAD rule calls it
#   copy           COPY (SELECT the SQL wrapper) TO STDOUT
#   attribute      a wrapper taking a row, called in attribute notation: (ROW(...)::t).f
#   trigger        INSERT into a table whose BEFORE INSERT trigger calls it
#   fresh_wrapper  a wrapper created in the same session just before its call
#   query_to_xml   a built-in function that runs SQL text (the call spelled U&"..." inside it)
#   multi          one simple-query message: the call (U& spelling), then a failing statement
#   wrong_old      a failing call (wrong old password: STATEMENT: lines of errors)
#   deadlock       a call (U& spelling) waiting for a lock; the other session's deadlock
#                  error quotes it in its DETAIL (detail_log)
#   ext_wrapper    the SQL wrapper with bind parameters (pgbench -M extended)
#   prep_wrapper   the SQL wrapper as a named prepared statement (pgbench -M prepared)
# Every password must be absent from the server log. Positive controls: a literal, a bind
# parameter, an EXECUTE argument, an auto_explain query text and an error's STATEMENT: line of
# ordinary statements are in the log.
#
# Part 2 (issue 8, H8: plaintext in Postgres' own error texts). A node with default logging.
# Values are written with bind parameters, then read back through failing casts (etext ->
# integer, ejsonb field -> integer, evector -> integer); malformed ejsonb input is bound and
# copied in (COPY FROM STDIN); a check violation shows a failing row of etext:
# Postgres' messages quote the plaintext; the client gets them, the server log must not.
# Positive controls: the same failures on plain text and jsonb values are in the log.
#
# Both parts fail on c9ba3cb (every channel of part 1 and every plaintext of part 2 was in the
# log) and pass since src/auth/redact.cpp.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use VectorVault;

my $db = 'postgres';
my $rand = join('', map { sprintf('%02x', int(rand(256))) } 1 .. 6);

# Runs a pgbench script once on $node in $mode with -D variables; returns (success, output).
sub pgbench_run
{
	my ($node, $mode, $script, %vars) = @_;
	my $file = $node->basedir . "/script_$mode.sql";
	open(my $fh, '>', $file) or die "could not write $file: $!";
	print $fh $script;
	close($fh);
	my @cmd = ('pgbench', '-n', '-M', $mode, '-t', '1', '-c', '1', '-f', $file,
		'-h', $node->host, '-p', $node->port);
	push @cmd, '-D', "$_=$vars{$_}" for sort keys %vars;
	push @cmd, $db;
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run(\@cmd, '>', \$out, '2>', \$err);
	return ($ok, $out . $err);
}

# The log lines of $log holding $needle (for diagnostics).
sub lines_with
{
	my ($log, $needle) = @_;
	return join("\n", grep { index($_, $needle) >= 0 } split /\n/, $log);
}

# ------------------------------------------------------------------------------------------------
# Part 1: secrets, every spelling, everything logged.
# ------------------------------------------------------------------------------------------------
my $node = VectorVault::new_node('redact');
$node->append_conf('postgresql.conf', q{
log_statement = 'all'
log_min_duration_statement = 0
log_min_error_statement = debug5
log_parameter_max_length = -1
log_parameter_max_length_on_error = -1
log_error_verbosity = verbose
session_preload_libraries = 'auto_explain'
auto_explain.log_min_duration = 0
auto_explain.log_nested_statements = on
auto_explain.log_verbose = on
});
$node->start;

my $pw0 = "pw-start-$rand";
$node->safe_psql($db, qq{
CREATE EXTENSION vector_vault;
SELECT vault.set_key_password('$pw0');
CREATE FUNCTION public.skp(text, text) RETURNS void
    AS '\$libdir/vector_vault', 'vault_set_key_password' LANGUAGE C;
CREATE FUNCTION public.chpw_sql(n text, o text) RETURNS void LANGUAGE sql
    AS \$\$ SELECT vault.set_key_password(n, o) \$\$;
CREATE FUNCTION public.chpw_atomic(n text, o text) RETURNS void LANGUAGE sql
    BEGIN ATOMIC SELECT vault.set_key_password(n, o); END;
CREATE PROCEDURE public.chpw_proc(n text, o text) LANGUAGE plpgsql
    AS \$\$ BEGIN PERFORM vault.set_key_password(n, o); END \$\$;
CREATE OPERATOR public.==> (LEFTARG = text, RIGHTARG = text, FUNCTION = vault.set_key_password);
CREATE VIEW public.pwview AS SELECT ''::text AS n, ''::text AS o;
CREATE RULE pwview_insert AS ON INSERT TO public.pwview
    DO INSTEAD SELECT vault.set_key_password(NEW.n, NEW.o);
CREATE TYPE public.pwpair AS (n text, o text);
CREATE FUNCTION public.chpw_attr(p pwpair) RETURNS void LANGUAGE sql
    AS \$\$ SELECT vault.set_key_password(p.n, p.o) \$\$;
CREATE TABLE public.pwtrig (n text, o text);
CREATE FUNCTION public.pwtrig_f() RETURNS trigger LANGUAGE plpgsql
    AS \$\$ BEGIN PERFORM vault.set_key_password(NEW.n, NEW.o); RETURN NULL; END \$\$;
CREATE TRIGGER pwtrig_t BEFORE INSERT ON public.pwtrig FOR EACH ROW EXECUTE FUNCTION public.pwtrig_f();
CREATE TABLE public.dl1 (); CREATE TABLE public.dl2 ();
});

my $log_start = -s $node->logfile;
my @channels = qw(uescape uescape_char c_alias sql_wrapper atomic_wrapper procedure do_block
  prepare operator view_rule copy attribute trigger fresh_wrapper query_to_xml multi wrong_old
  deadlock ext_wrapper prep_wrapper);
my %pw = map { $_ => "pw-$_-$rand" } @channels;
my %sql = (
	uescape => q{SELECT vault.U&"\0073et_key_password"('NEW', 'OLD');},
	uescape_char => q{SELECT vault.U&"!0073et_key_password" UESCAPE '!'('NEW', 'OLD');},
	c_alias => q{SELECT skp('NEW', 'OLD');},
	sql_wrapper => q{SELECT chpw_sql('NEW', 'OLD');},
	atomic_wrapper => q{SELECT chpw_atomic('NEW', 'OLD');},
	procedure => q{CALL chpw_proc('NEW', 'OLD');},
	do_block => q{DO $$ BEGIN EXECUTE format('SELECT vault.%I($1, $2)', 'set_key' || '_password') USING 'NEW', 'OLD'; END $$;},
	prepare => qq{PREPARE chp(text, text) AS SELECT vault.U&"\\0073et_key_password"(\$1, \$2);\nEXECUTE chp('NEW', 'OLD');\nDEALLOCATE chp;},
	operator => q{SELECT 'NEW' ==> 'OLD';},
	view_rule => q{INSERT INTO pwview VALUES ('NEW', 'OLD');},
	copy => q{COPY (SELECT chpw_sql('NEW', 'OLD')) TO STDOUT;},
	attribute => q{SELECT (ROW('NEW', 'OLD')::pwpair).chpw_attr;},
	query_to_xml => q{SELECT query_to_xml('SELECT vault.U&"\0073et_key_password"(''NEW'', ''OLD'')', false, false, '');},
	trigger => q{INSERT INTO pwtrig VALUES ('NEW', 'OLD');},
	fresh_wrapper => qq{CREATE FUNCTION public.chpw_fresh(n text, o text) RETURNS void LANGUAGE sql\n}
	  . qq{    AS \$\$ SELECT vault.set_key_password(n, o) \$\$;\nSELECT chpw_fresh('NEW', 'OLD');},
);

my $prev = $pw0;
for my $c (@channels)
{
	my $p = $pw{$c};
	if ($c eq 'wrong_old')
	{
		my ($rc, $out, $err) = $node->psql($db,
			qq{SELECT vault.U&"\\0073et_key_password"('$p', 'wrong-$p');});
		like($err, qr/password is wrong/, "$c: a wrong old password is refused");
		next;
	}
	if ($c eq 'multi')
	{
		# psql -c sends the whole string as one message.
		my ($out, $err) = ('', '');
		IPC::Run::run([ 'psql', '-X', '-d', $node->connstr($db), '-c',
				qq{SELECT vault.U&"\\0073et_key_password"('$p', '$prev'); SELECT 1/0;} ],
			'>', \$out, '2>', \$err);
		like($err, qr/division by zero/, "$c: the second statement fails");
		# Both ran in one implicit transaction: the password change was rolled back.
		next;
	}
	if ($c eq 'deadlock')
	{
		# B holds dl2 and detects the deadlock quickly; A holds dl1, then waits for dl2 in a
		# statement that calls set_key_password; B then waits for dl1: B's error reports A's query.
		my $b = VectorVault::bg_session($node, $db,
			"BEGIN; SET LOCAL deadlock_timeout = '100ms'; LOCK dl2;");
		my $a_file = $node->basedir . '/deadlock_a.sql';
		open(my $fh, '>', $a_file) or die "could not write $a_file: $!";
		print $fh qq{SET deadlock_timeout = '60s';\nBEGIN;\nLOCK dl1;\n}
		  . qq{SELECT vault.U&"\\0073et_key_password"('$p', '$prev') FROM (SELECT count(*) FROM dl2) s;\n}
		  . qq{COMMIT;\n};
		close($fh);
		my ($a_out, $a_err) = ('', '');
		my $a = IPC::Run::start([ 'psql', '-X', '-q', '-d', $node->connstr($db), '-f', $a_file ],
			'>', \$a_out, '2>', \$a_err);
		$node->poll_query_until($db,
			"SELECT count(*) > 0 FROM pg_locks WHERE NOT granted AND relation = 'dl2'::regclass")
		  or diag('session A never waited for dl2');
		my ($b_out, $b_err) = VectorVault::bg_query($b, 'LOCK dl1;');
		like($b_err, qr/deadlock detected/, "$c: the other session's statement is the deadlock's victim");
		VectorVault::bg_query($b, 'ROLLBACK;');
		$b->quit;
		$a->finish;
		is($a_err, '', "$c: the waiting session changed the password") or diag($a_err);
		$prev = $p;
		next;
	}
	if ($c eq 'ext_wrapper' || $c eq 'prep_wrapper')
	{
		my $mode = $c eq 'ext_wrapper' ? 'extended' : 'prepared';
		my ($ok, $out) = pgbench_run($node, $mode, "SELECT chpw_sql(:n, :o);\n", n => $p, o => $prev);
		ok($ok, "$c: password changed") or diag($out);
		$prev = $p;
		next;
	}
	(my $s = $sql{$c}) =~ s/NEW/$p/g;
	$s =~ s/OLD/$prev/g;
	my ($rc, $out, $err) = $node->psql($db, $s);
	is($rc, 0, "$c: password changed") or diag($err);
	$prev = $p;
}
# The last password really is the current one (every channel reached the function).
my ($rc_final, $out_final, $err_final) =
  $node->psql($db, qq{SELECT vault.U&"\\0073et_key_password"('$pw0', '$prev');});
is($rc_final, 0, 'every channel changed the password in turn');

# Positive controls: ordinary statements and values are logged.
my %ctl = map { $_ => "CTL-$_-$rand" } qw(stmt param exec err);
$node->psql($db, "SELECT '$ctl{stmt}';");
my ($ok_p, $out_p) = pgbench_run($node, 'extended', "SELECT :m::text;\n", m => $ctl{param});
ok($ok_p, 'control: the parameter statement ran') or diag($out_p);
$node->psql($db, "PREPARE echo(text) AS SELECT \$1::text;\nEXECUTE echo('$ctl{exec}');");
$node->psql($db, "SELECT '$ctl{err}'::integer;");
$node->safe_psql($db, 'SELECT pg_sleep(0.5)');

my $log = VectorVault::log_since($node, $log_start);
ok(index($log, "statement: SELECT '$ctl{stmt}'") >= 0, 'control: log_statement writes literals');
ok($log =~ /parameters: \$1 = '\Q$ctl{param}\E'/, 'control: bind parameters are written');
ok(index($log, $ctl{exec}) >= 0, 'control: EXECUTE arguments are written');
ok(index($log, "Query Text: SELECT '$ctl{stmt}'") >= 0, 'control: auto_explain writes query texts');
ok($log =~ /STATEMENT:\s+SELECT '\Q$ctl{err}\E'::integer/, 'control: STATEMENT: lines of errors are written');
ok(index($log, '[redacted by vector_vault') >= 0, 'control: the redaction note is in the log');
ok($log =~ /40P01: /, 'control: the deadlock was logged');

for my $c (@channels)
{
	ok(index($log, $pw{$c}) < 0, "$c: the password is not in the server log")
	  or diag("log lines:\n" . lines_with($log, $pw{$c}));
}
$node->stop;

# ------------------------------------------------------------------------------------------------
# Part 2: plaintext in Postgres' own error texts, default logging.
# ------------------------------------------------------------------------------------------------
my $plain = VectorVault::new_node('plainerr');
# The test framework turns log_statement on; default logging has it off.
$plain->append_conf('postgresql.conf', "log_statement = 'none'\n");
$plain->start;
my %secret = (
	etext => "A-SECRET-$rand",
	field => "J-SECRET-$rand",
	vector => '[31337.25,4242.125]',
	badjson => "JBAD_SECRET_$rand",
	failing_row => "C-SECRET-$rand",
	copy_json => "COPY_SECRET_$rand",
);
$plain->safe_psql($db, q{
CREATE EXTENSION vector_vault;
SELECT vault.create_vault('h8');
CREATE TABLE notes (id int, body etext, meta ejsonb, embedding evector(2));
CREATE TABLE plain_notes (id int, body text);
CREATE TABLE strict_notes (id int CHECK (id > 0), body etext);
});
my $p2_start = -s $plain->logfile;

my ($ok_w, $out_w) = pgbench_run($plain, 'extended',
	"SET vector_vault.vault = 'h8';\nINSERT INTO notes VALUES (1, :b, :m, :e);\n",
	b => $secret{etext}, m => qq({"k": "$secret{field}"}), e => $secret{vector});
ok($ok_w, 'plaintext written with bind parameters') or diag($out_w);

my %reads = (
	etext => 'SELECT body::text::integer FROM notes',
	field => q{SELECT (meta->>'k')::integer FROM notes},
	vector => 'SELECT embedding::text::integer FROM notes',
);
for my $k (sort keys %reads)
{
	my ($rc, $out, $err) = $plain->psql($db, "SET vector_vault.vault = 'h8'; $reads{$k};");
	like($err, qr/invalid input syntax for type integer: "\Q$secret{$k}\E"/,
		"$k: the reader (client) gets the full error");
}
my ($ok_j, $out_j) = pgbench_run($plain, 'extended',
	"SET vector_vault.vault = 'h8';\nINSERT INTO notes (id, meta) VALUES (2, :m);\n",
	m => qq({"k": $secret{badjson}}));
ok(!$ok_j && $out_j =~ /invalid input syntax for type json/, 'badjson: malformed ejsonb input is refused')
  or diag($out_j);

# A check violation's DETAIL shows the failing row, decrypted for the writer.
my ($ok_c, $out_c) = pgbench_run($plain, 'extended',
	"SET vector_vault.vault = 'h8';\nINSERT INTO strict_notes VALUES (-1, :b);\n",
	b => $secret{failing_row});
ok(!$ok_c && $out_c =~ /violates check constraint/, 'failing_row: the check violation is refused')
  or diag($out_c);

# COPY's error context quotes the rejected column value.
my ($rc_copy, $out_copy, $err_copy) = $plain->psql($db,
	"SET vector_vault.vault = 'h8';\nCOPY notes (id, meta) FROM STDIN;\n3\t{\"k\": $secret{copy_json}}\n\\.\n");
like($err_copy, qr/invalid input syntax for type json/, 'copy_json: malformed ejsonb in COPY is refused');

# Controls: the same failures on values that are not ours are logged in full.
my %control = (int => "CTL-INT-$rand", json => "CTL_JSON_$rand", row => "CTL-ROW-$rand");
$plain->safe_psql($db, "INSERT INTO plain_notes VALUES (1, '$control{int}')");
$plain->psql($db, 'SELECT body::integer FROM plain_notes');
$plain->psql($db, "CREATE TABLE strict_plain (id int CHECK (id > 0), body text); INSERT INTO strict_plain VALUES (-1, '$control{row}');");
pgbench_run($plain, 'extended', "SELECT :m::jsonb;\n", m => qq({"k": $control{json}}));
$plain->safe_psql($db, 'SELECT pg_sleep(0.5)');

my $plog = VectorVault::log_since($plain, $p2_start);
ok(index($plog, qq{invalid input syntax for type integer: "$control{int}"}) >= 0,
	'control: a failing cast of plain text is logged with its value');
ok(index($plog, $control{json}) >= 0, 'control: a jsonb parse error is logged with its token');
ok(index($plog, "Failing row contains (-1, $control{row})") >= 0,
	"control: a check violation's failing row is logged");
ok(index($plog, 'ERROR (redacted by vector_vault)') >= 0,
	'the server log holds the redacted copies of those errors');
for my $k (sort keys %secret)
{
	ok(index($plog, $secret{$k}) < 0, "$k: the plaintext is not in the server log")
	  or diag("log lines:\n" . lines_with($plog, $secret{$k}));
}
$plain->stop;

done_testing();
