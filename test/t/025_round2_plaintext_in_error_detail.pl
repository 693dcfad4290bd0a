# 025_round2_plaintext_in_error_detail.pl — security round 2 attack pass (sql/44_round2_attack_pass.sql,
# class 4, attempt 4a): does Postgres' own "Failing row contains (...)" DETAIL carry decrypted
# values into the server log?
#
# Default logging (log_statement = none, log_min_messages = warning, log_min_error_statement =
# error). The plaintext enters once, in a statement that succeeds and is therefore not logged.
# The failing statements carry no plaintext in their text: INSERT ... SELECT from that table,
# and an UPDATE. A CHECK violation, a NOT NULL violation and a partition-constraint violation
# then build their DETAIL with the types' output functions, which decrypt.
#
# This was a hole when the attack pass ran (each marker was in the server log). The redaction of
# Postgres' own errors raised while plaintext is in play (src/auth/redact.cpp) closed it: the
# assertions now say each marker is not in the server log. Positive controls: the constraint
# errors themselves are logged, and the same failure on a plain text table puts its value in the
# log (the probe can find a marker that is there).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VectorVault;

my $db = 'postgres';
my $node = VectorVault::new_node('detail');
$node->start;

my $rand = join('', map { sprintf('%02x', int(rand(256))) } 1 .. 6);
my %marker = map { $_ => "RT44-$_-$rand" } qw(check notnull partition update);

$node->safe_psql($db, qq{
CREATE EXTENSION vector_vault;
SELECT vault.create_vault('rt44');
SET vector_vault.vault = 'rt44';
CREATE TABLE src (k text, body etext);
INSERT INTO src VALUES ('check', '$marker{check}'), ('notnull', '$marker{notnull}'),
    ('partition', '$marker{partition}'), ('update', '$marker{update}');
CREATE TABLE chk (id int CHECK (id > 0), body etext);
CREATE TABLE nn (id int NOT NULL, body etext);
CREATE TABLE pp (id int, body etext) PARTITION BY RANGE (id);
CREATE TABLE pp1 PARTITION OF pp FOR VALUES FROM (0) TO (10);
INSERT INTO chk SELECT 1, body FROM src WHERE k = 'update';
});

my $offset = -s $node->logfile;
my @failing = (
	[ check => "INSERT INTO chk SELECT -1, body FROM src WHERE k = 'check'" ],
	[ notnull => "INSERT INTO nn SELECT NULL, body FROM src WHERE k = 'notnull'" ],
	[ partition => "INSERT INTO pp1 SELECT 50, body FROM src WHERE k = 'partition'" ],
	[ update => "UPDATE chk SET id = -id" ],
);
for my $f (@failing)
{
	my ($name, $sql) = @$f;
	my ($rc, $out, $err) = $node->psql($db, "SET vector_vault.vault = 'rt44'; $sql");
	isnt($rc, 0, "$name: the statement fails");
	like($err, qr/Failing row contains/, "$name: the client gets the failing row");
}
# Positive control: a plain text value in the same kind of failure reaches the log.
$node->psql($db, q{CREATE TABLE plain_ctl (v text CHECK (v NOT LIKE 'PLAIN-CTL%'));
INSERT INTO plain_ctl SELECT 'PLAIN-CTL-' || 'MARKER-4A';});
$node->stop;
my $log = VectorVault::log_since($node, $offset);
ok(index($log, 'PLAIN-CTL-MARKER-4A') >= 0,
	'control: a plain value of a failing statement is found in the server log');

like($log, qr/violates check constraint/, 'control: the CHECK violation is logged');
like($log, qr/violates not-null constraint/, 'control: the NOT NULL violation is logged');
like($log, qr/violates partition constraint/, 'control: the partition violation is logged');
for my $name (sort keys %marker)
{
	ok(index($log, $marker{$name}) < 0,
		"4a ($name): the decrypted value is not in the server log (Failing row contains)");
}

done_testing();
