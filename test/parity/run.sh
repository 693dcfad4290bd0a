#!/usr/bin/env bash
# run.sh — proof of parity: pgvector 0.8.6's own regression SQL, with pgvector's names mapped to
# vector_vault's, run against vector_vault; counts how many of pgvector's expected output lines
# vector_vault reproduces, per file, and compares the counts with test/parity/baseline.
#
#   test/parity/run.sh              compare; exit 1 if any file matches fewer lines than its baseline
#   test/parity/run.sh --record     rewrite test/parity/baseline with this run's counts
#   VV_PARITY_FILES='hnsw_vector vector_type' test/parity/run.sh      a subset (--record refuses it)
#   VV_PARITY_MAP=other.sed test/parity/run.sh                         another mapping (map.sed)
#   VV_PARITY_OUT=dir test/parity/run.sh     keep the mapped inputs, outputs and diffs in dir
#
# Nothing of pgvector is copied into this repository: test/sql/*.sql and test/expected/*.out are
# read from pgvector-0.8.6.tar.gz in the peers folder (scripts/lib.sh peers_src) at every run, and
# both go through the same sed mapping (map.sed). Each file runs as pg_regress runs it (psql -X -a
# -q, one session, output and errors into one file) in a database of its own on a throwaway server
# (Unix socket only, as the postgres user, stopped on exit), whose set-up is what a vault needs:
# the server preloads vector_vault with a master key file and a keyring, the database has
# CREATE EXTENSION vector_vault, a vault "parity" and vector_vault.vault = 'parity' for every
# session (ALTER DATABASE ... SET, the form a client's own settings take).
#
# Control: when pgvector is installed (scripts/peers.sh pgvector), the same files run unmapped
# against pgvector itself in the same server, and every one of them must match its expected output
# completely: this proves that the harness reproduces pg_regress, so every difference counted in
# the mapped run is vector_vault's. Without pgvector the control is skipped (and says so).
#
# A matched line is a line of the (mapped) expected file that is part of the longest common
# subsequence of expected and actual output (GNU diff --minimal), both with runs of blanks
# collapsed and psql's table rules shortened (the mapped names are longer, which widens columns).
# The last line of output is
#   parity: M of N expected lines match (P%); P passed, F failed
# where each mapped file and each control file is one test. Needs the extension installed (as
# scripts/test.sh does; standalone, run `make install` first), root (it runs the server as postgres).
# The install lock /tmp/vv-install.lock is held from server start until every database has its
# extensions, unless the caller holds it (VV_INSTALL_LOCK_HELD=1).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/scripts/lib.sh"

record=0
for a in "$@"; do
	case $a in
	--record) record=1 ;;
	-h | --help) sed -n '2,35p' "$0"; exit 0 ;;
	*) die "unknown argument $a (see --help)" ;;
	esac
done
[ "$(id -u)" -eq 0 ] || die "run as root (the throwaway server runs as the postgres user)"
[ $record -eq 1 ] && [ -n "${VV_PARITY_FILES:-}" ] && die "--record needs every file (unset VV_PARITY_FILES)"

MAP=${VV_PARITY_MAP:-$here/map.sed}
BASELINE=$here/baseline
TARBALL="$(peers_src "$top")/pgvector-0.8.6.tar.gz"
[ -f "$TARBALL" ] || die "$TARBALL not found (the shared peers folder: scripts/lib.sh peers_src)"
[ -f "$MAP" ] || die "$MAP not found"
port=${VV_PARITY_PORT:-54433}
lock=${VV_INSTALL_LOCK:-/tmp/vv-install.lock}

WORK=$(mktemp -d /tmp/vv-parity.XXXXXX)
chmod 755 "$WORK"
cleanup() {
	as_postgres pg_ctl -D "$WORK/data" -m immediate stop >/dev/null 2>&1 || true
	if [ -n "${VV_PARITY_OUT:-}" ]; then
		mkdir -p "$VV_PARITY_OUT"
		cp -r "$WORK/mapped" "$WORK/results" "$WORK/diffs" "$WORK/server.log" "$VV_PARITY_OUT/" 2>/dev/null
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

# pgvector's tests, straight from the tarball.
tar -xzf "$TARBALL" -C "$WORK" --wildcards 'pgvector-0.8.6/test/sql/*.sql' 'pgvector-0.8.6/test/expected/*.out' ||
	die "cannot read test/sql and test/expected from $TARBALL"
SRC=$WORK/pgvector-0.8.6/test
ALL=$(cd "$SRC/sql" && ls *.sql | sed 's/\.sql$//')
FILES=${VV_PARITY_FILES:-$ALL}
for f in $FILES; do [ -f "$SRC/sql/$f.sql" ] || die "no test/sql/$f.sql in $TARBALL"; done

# The mapped copies (vector_vault) and the originals (control).
mkdir -p "$WORK/mapped/sql" "$WORK/mapped/expected" "$WORK/results/vv" "$WORK/results/pgvector" "$WORK/diffs"
for f in $FILES; do
	sed -E -f "$MAP" "$SRC/sql/$f.sql" >"$WORK/mapped/sql/$f.sql" || die "mapping $f.sql failed"
	sed -E -f "$MAP" "$SRC/expected/$f.out" >"$WORK/mapped/expected/$f.out" || die "mapping $f.out failed"
done
control=0
sharedir=$("$PG_BIN/pg_config" --sharedir)
if [ -f "$sharedir/extension/vector--0.8.6.sql" ]; then control=1; else
	echo "control skipped: pgvector 0.8.6 is not installed (scripts/peers.sh pgvector)" >&2
fi
# psql writes \copy files under results/ of its working directory, as under pg_regress
mkdir -p "$WORK/run/vv/results" "$WORK/run/pgvector/results"
chown -R postgres: "$WORK"

# The throwaway server: vector_vault preloaded, a master key, a keyring, a Unix socket only.
as_postgres bash -c "umask 077; openssl rand -hex 32 > '$WORK/master.key'"
as_postgres initdb -D "$WORK/data" -A trust -U postgres --no-locale -E UTF8 --no-sync >"$WORK/initdb.log" 2>&1 ||
	{ cat "$WORK/initdb.log" >&2; die "initdb failed"; }
cat >>"$WORK/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$WORK'
port = $port
fsync = off
shared_preload_libraries = 'vector_vault'
vector_vault.master_key_file = '$WORK/master.key'
vector_vault.keyring_dir = '$WORK/keyring'
max_prepared_transactions = 2
CONF
psql_as() { as_postgres psql -X -h "$WORK" -p "$port" "$@"; }

# Server start and CREATE EXTENSION under the install lock, so that another session's
# `make install` cannot swap the library or the install script in between.
if [ "${VV_INSTALL_LOCK_HELD:-0}" != 1 ]; then
	exec 9>"$lock"
	flock 9
fi
as_postgres pg_ctl -D "$WORK/data" -l "$WORK/server.log" -w start >/dev/null 9>&- ||
	{ tail -20 "$WORK/server.log" >&2; die "server did not start"; }
setup_ok=1
for f in $FILES; do
	for kind in vv pgvector; do
		[ $kind = pgvector ] && [ $control -eq 0 ] && continue
		db="${kind}_$f"
		# pg_regress's database settings (pg_regress.c, create_database)
		s=""
		for g in "lc_messages TO 'C'" "lc_monetary TO 'C'" "lc_numeric TO 'C'" "lc_time TO 'C'" \
			"bytea_output TO 'hex'" "timezone_abbreviations TO 'Default'"; do
			s="$s ALTER DATABASE $db SET $g;"
		done
		if [ $kind = vv ]; then
			ext="CREATE EXTENSION vector_vault; SELECT vault.create_vault('parity');
				ALTER DATABASE $db SET vector_vault.vault = 'parity';"
		else
			ext="CREATE EXTENSION vector;"
		fi
		psql_as -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $db" >>"$WORK/setup.log" 2>&1 &&
			psql_as -q -v ON_ERROR_STOP=1 -d "$db" -c "$s" \
				-c "$ext" >>"$WORK/setup.log" 2>&1 9>&- || { setup_ok=0; break 2; }
	done
done
if [ "${VV_INSTALL_LOCK_HELD:-0}" != 1 ]; then
	flock -u 9
	exec 9>&-
fi
[ $setup_ok -eq 1 ] || { cat "$WORK/setup.log" >&2; tail -20 "$WORK/server.log" >&2; die "set-up failed"; }

# Runs one file as pg_regress does; prints "total matched".
run_one() {
	local kind=$1 f=$2 in exp out
	if [ "$kind" = vv ]; then in=$WORK/mapped/sql/$f.sql exp=$WORK/mapped/expected/$f.out
	else in=$SRC/sql/$f.sql exp=$SRC/expected/$f.out; fi
	out=$WORK/results/$kind/$f.out
	(cd "$WORK/run/$kind" && PGTZ=PST8PDT PGDATESTYLE='Postgres, MDY' LC_MESSAGES=C PGAPPNAME=pg_regress \
		timeout 600 runuser -u postgres -- psql -X -a -q -h "$WORK" -p "$port" -d "${kind}_$f" \
		-v HIDE_TABLEAM=on -v HIDE_TOAST_COMPRESSION=on <"$in" >"$out" 2>&1)
	diff -U3 "$exp" "$out" >"$WORK/diffs/$kind-$f.diff"
	# Lines are compared with layout normalised: the mapped type is one letter longer than
	# pgvector's ("evector" for "vector"), which widens psql's column headers and rules.
	normalise "$exp" >"$WORK/diffs/$kind-$f.expected"
	normalise "$out" >"$WORK/diffs/$kind-$f.actual"
	diff -U3 "$WORK/diffs/$kind-$f.expected" "$WORK/diffs/$kind-$f.actual" >"$WORK/diffs/$kind-$f.normalised.diff"
	local total matched
	total=$(grep -c '' "$exp")
	matched=$(diff --minimal --old-line-format='' --new-line-format='' --unchanged-line-format=$'=\n' \
		"$WORK/diffs/$kind-$f.expected" "$WORK/diffs/$kind-$f.actual" | grep -c '')
	echo "$total $matched"
}

# Collapses runs of blanks, trims lines and shortens psql's table rules (----+----) to "---".
normalise() { sed -E 's/[[:space:]]+/ /g; s/^ //; s/ $//; s/^-+(\+-+)*$/---/' "$1"; }

declare -A BASE_TOTAL BASE_MATCHED
if [ -f "$BASELINE" ]; then
	while read -r name total matched; do
		case $name in '' | '#'*) continue ;; esac
		BASE_TOTAL[$name]=$total BASE_MATCHED[$name]=$matched
	done <"$BASELINE"
fi

pass=0 fail=0 sum_total=0 sum_matched=0
rows=()
printf '%-18s %9s %9s %9s\n' file expected matched baseline >&2
for f in $FILES; do
	read -r total matched < <(run_one vv "$f")
	sum_total=$((sum_total + total)) sum_matched=$((sum_matched + matched))
	rows+=("$(printf '%-18s %7d %7d' "$f" "$total" "$matched")")
	b=${BASE_MATCHED[$f]:-}
	bt=${BASE_TOTAL[$f]:-}
	verdict=ok
	if [ $record -eq 0 ]; then
		if [ -z "$b" ]; then verdict="FAILED (not in the baseline; --record)"
		elif [ "$bt" != "$total" ]; then verdict="FAILED (pgvector's file has $total lines, the baseline $bt: --record)"
		elif [ "$matched" -lt "$b" ]; then verdict="FAILED (below the baseline by $((b - matched)))"
		elif [ "$matched" -gt "$b" ]; then verdict="ok (above the baseline by $((matched - b)); --record to keep it)"
		fi
	fi
	printf '%-18s %9d %9d %9s  %s\n' "$f" "$total" "$matched" "${b:--}" "$verdict" >&2
	case $verdict in ok*) pass=$((pass + 1)) ;; *) fail=$((fail + 1)); head -60 "$WORK/diffs/vv-$f.normalised.diff" >&2 ;; esac
done
pct=$(awk -v m=$sum_matched -v t=$sum_total 'BEGIN { printf "%.1f", t ? 100 * m / t : 0 }')
printf '%-18s %9d %9d  (%s%%)\n' total "$sum_total" "$sum_matched" "$pct" >&2

if [ $control -eq 1 ]; then
	for f in $FILES; do
		read -r total matched < <(run_one pgvector "$f")
		if [ "$total" -eq "$matched" ] && [ ! -s "$WORK/diffs/pgvector-$f.diff" ]; then
			pass=$((pass + 1))
		else
			fail=$((fail + 1))
			echo "FAILED control $f: pgvector itself matches $matched of $total lines (the harness differs from pg_regress)" >&2
			head -40 "$WORK/diffs/pgvector-$f.diff" >&2
		fi
	done
	echo "control: pgvector 0.8.6 unmapped, $(echo $FILES | wc -w) files" >&2
fi

if [ $record -eq 1 ]; then
	{
		echo "# test/parity/baseline — written by test/parity/run.sh --record ($(date -u +%Y-%m-%d))"
		echo "# pgvector 0.8.6 test file, lines of its expected output, lines vector_vault reproduces"
		echo "# total: $sum_matched of $sum_total ($pct%)"
		for r in "${rows[@]}"; do echo "$r"; done
	} >"$BASELINE"
	echo "baseline written: $BASELINE" >&2
fi
echo "parity: $sum_matched of $sum_total expected lines match ($pct%); $pass passed, $fail failed"
[ $fail -eq 0 ]
