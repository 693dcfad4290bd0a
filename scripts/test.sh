#!/usr/bin/env bash
# test.sh — the whole vector_vault test suite. CI (.ci/run) runs exactly this command.
#
#   scripts/test.sh                 everything
#   VV_SUITES="unit regress" scripts/test.sh   a subset (static unit asan fuzz regress parity isolation tap clients citus)
#   VV_FUZZ_SECONDS=60 scripts/test.sh         longer fuzzing (default 15 s per target)
#
# Installs missing Debian packages (as root), builds and installs the extension, runs each suite,
# prints one line per suite, and ends with exactly one line "N passed, N failed" that counts every
# test that ran (each static check, unit test, fuzz target, pg_regress test, pgvector parity file,
# isolation spec and TAP assertion). Exit status is non-zero when anything failed.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib.sh"

SUITES=${VV_SUITES:-static unit asan fuzz regress parity isolation tap clients citus}
FUZZ_SECONDS=${VV_FUZZ_SECONDS:-15}
PASS=0
FAIL=0
SUMMARY=()

# Adds a suite's counts to the totals.
record() {
	PASS=$((PASS + $2))
	FAIL=$((FAIL + $3))
	SUMMARY+=("$(printf '%-12s %5d passed %4d failed' "$1" "$2" "$3")")
	printf '%-12s %5d passed %4d failed\n' "$1" "$2" "$3" >&2
}

want() { case " $SUITES " in *" $1 "*) return 0 ;; esac; return 1; }

ensure_packages
build_and_install "$top" || die "build failed"

# A scratch copy of the test inputs the postgres user can write into.
WORK=$(mktemp -d /tmp/vv-test.XXXXXX)
cp -r "$top/sql" "$top/expected" "$top/test" "$WORK/"
mkdir -p "$WORK/results" "$WORK/logs"
chown -R postgres: "$WORK" 2>/dev/null || true
chmod 755 "$WORK"
echo "test scratch directory: $WORK" >&2

# --- static checks: each script in .ci/check-* is one test ------------------------------------
if want static; then
	p=0 f=0
	for check in "$top"/.ci/check-*; do
		if (cd "$top" && bash "$check") >"$WORK/logs/$(basename "$check").log" 2>&1; then
			p=$((p + 1))
		else
			f=$((f + 1)); echo "FAILED: $(basename "$check")" >&2; tail -20 "$WORK/logs/$(basename "$check").log" >&2
		fi
	done
	record static $p $f
fi

# Runs a GoogleTest binary and records its test counts (a crash counts as one failure).
run_gtest() {
	local name=$1 bin=$2 xml="$WORK/logs/$1.xml"
	"$bin" --gtest_output="xml:$xml" >"$WORK/logs/$name.log" 2>&1
	local rc=$?
	if [ -f "$xml" ]; then
		local tests fails errs
		tests=$(grep -o '<testsuites [^>]*' "$xml" | grep -o ' tests="[0-9]*"' | grep -o '[0-9]*')
		fails=$(grep -o '<testsuites [^>]*' "$xml" | grep -o ' failures="[0-9]*"' | grep -o '[0-9]*')
		errs=$(grep -o '<testsuites [^>]*' "$xml" | grep -o ' errors="[0-9]*"' | grep -o '[0-9]*')
		fails=$((fails + errs))
		[ $rc -ne 0 ] && [ "$fails" -eq 0 ] && fails=1
		record "$name" $((tests - fails < 0 ? 0 : tests - fails)) "$fails"
	else
		record "$name" 0 1
	fi
	[ $rc -eq 0 ] || tail -40 "$WORK/logs/$name.log" >&2
}

# --- unit tests of the pure C++ core -----------------------------------------------------------
if want unit; then
	if (cd "$top" && cmake --preset default >/dev/null && cmake --build build/core -j"$(nproc)" >"$WORK/logs/unit-build.log" 2>&1); then
		run_gtest unit "$top/build/core/vv_unit_tests"
	else
		tail -30 "$WORK/logs/unit-build.log" >&2; record unit 0 1
	fi
fi

# --- the same unit tests under AddressSanitizer + UndefinedBehaviorSanitizer ------------------
if want asan; then
	if (cd "$top" && cmake --preset asan >/dev/null && cmake --build build/asan -j"$(nproc)" >"$WORK/logs/asan-build.log" 2>&1); then
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
			run_gtest asan "$top/build/asan/vv_unit_tests"
	else
		tail -30 "$WORK/logs/asan-build.log" >&2; record asan 0 1
	fi
fi

# --- libFuzzer targets, each for a bounded time ------------------------------------------------
if want fuzz; then
	p=0 f=0
	if (cd "$top" && cmake --preset fuzz >/dev/null && cmake --build build/fuzz -j"$(nproc)" >"$WORK/logs/fuzz-build.log" 2>&1); then
		for bin in "$top"/build/fuzz/fuzz_*; do
			[ -x "$bin" ] || continue
			name=$(basename "$bin")
			corpus="$WORK/fuzz-corpus/$name"
			mkdir -p "$corpus"
			seeds="$top/test/fuzz/corpus/$name"
			[ -d "$seeds" ] || seeds=""
			if (cd "$WORK" && "$bin" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -print_final_stats=0 \
				"$corpus" $seeds >"$WORK/logs/$name.log" 2>&1); then
				p=$((p + 1))
			else
				f=$((f + 1)); echo "FAILED: $name" >&2; tail -40 "$WORK/logs/$name.log" >&2
			fi
		done
	else
		tail -30 "$WORK/logs/fuzz-build.log" >&2; f=1
	fi
	record fuzz $p $f
fi

# Writes a master key and a postgresql.conf fragment for a temporary server under $WORK.
make_server_conf() {
	local conf=$1 keyring=$2 keyfile=$3
	as_postgres bash -c "umask 077; openssl rand -hex 32 > '$keyfile'"
	cat >"$conf" <<CONF
shared_preload_libraries = 'vector_vault'
vector_vault.master_key_file = '$keyfile'
vector_vault.keyring_dir = '$keyring'
max_prepared_transactions = 2
CONF
	chown postgres: "$conf" 2>/dev/null || true
}

# Counts pg_regress / pg_isolation_regress results ("... ok" / "... FAILED") in a log.
record_regress() {
	local name=$1 log=$2 rc=$3 p f
	p=$(grep -Ec '\.\.\. ok' "$log")
	f=$(grep -Ec '\.\.\. FAILED|\.\.\. failed' "$log")
	[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
	record "$name" "$p" "$f"
	if [ "$f" -ne 0 ]; then
		[ -f "$WORK/regression.diffs" ] && head -150 "$WORK/regression.diffs" >&2
		[ -f "$WORK/isolation/regression.diffs" ] && head -150 "$WORK/isolation/regression.diffs" >&2
	fi
}

# --- pg_regress: SQL behaviour (sql/ + expected/) ----------------------------------------------
if want regress; then
	make_server_conf "$WORK/regress.conf" "$WORK/regress_keyring" "$WORK/regress.key"
	(cd "$WORK" && as_postgres "$PG_PGXS_DIR/src/test/regress/pg_regress" \
		--temp-instance="$WORK/tmp_check" --temp-config="$WORK/regress.conf" --bindir="$PG_BIN" \
		--inputdir="$WORK" --outputdir="$WORK" --dbname=contrib_regression \
		--schedule="$WORK/test/regress_schedule") >"$WORK/logs/regress.log" 2>&1
	rc=$?
	cat "$WORK/logs/regress.log" >&2
	record_regress regress "$WORK/logs/regress.log" $rc
fi

# --- parity: pgvector 0.8.6's own regression SQL, names mapped, against vector_vault ------------
# test/parity/run.sh reads pgvector's test/sql and test/expected from the tarball in the peers
# folder; each file is one test (it passes when it matches at least its lines in
# test/parity/baseline), and each control file (the same file unmapped against pgvector, which must
# match completely) is one more. pgvector is built once by scripts/peers.sh for the control.
if want parity; then
	if VV_INSTALL_LOCK_HELD=1 bash "$top/scripts/peers.sh" pgvector >"$WORK/logs/parity-build.log" 2>&1; then
		VV_INSTALL_LOCK_HELD=1 VV_PARITY_OUT="$WORK/parity" bash "$top/test/parity/run.sh" \
			>"$WORK/logs/parity.out" 2>"$WORK/logs/parity.log"
		rc=$?
		cat "$WORK/logs/parity.log" >&2
		cat "$WORK/logs/parity.out" >&2
		p=$(sed -n 's/^parity: .*; \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$WORK/logs/parity.out")
		f=$(sed -n 's/^parity: .*; \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$WORK/logs/parity.out")
		p=${p:-0} f=${f:-0}
		[ $rc -ne 0 ] && [ "$f" -eq 0 ] && f=1
		record parity "$p" "$f"
	else
		tail -30 "$WORK/logs/parity-build.log" >&2; record parity 0 1
	fi
fi

# --- isolation specs: concurrency -------------------------------------------------------------
if want isolation && ls "$WORK"/test/isolation/specs/*.spec >/dev/null 2>&1; then
	make_server_conf "$WORK/isolation.conf" "$WORK/isolation_keyring" "$WORK/isolation.key"
	# room for two indexes: cache_eviction.spec evicts one by searching two others
	echo "vector_vault.cache_indexes = 2" >>"$WORK/isolation.conf"
	mkdir -p "$WORK/isolation" && chown postgres: "$WORK/isolation"
	specs=$(cd "$WORK/test/isolation/specs" && ls *.spec | sed 's/\.spec$//')
	(cd "$WORK/isolation" && as_postgres "$PG_PGXS_DIR/src/test/isolation/pg_isolation_regress" \
		--temp-instance="$WORK/isolation/tmp_check" --temp-config="$WORK/isolation.conf" \
		--bindir="$PG_BIN" --inputdir="$WORK/test/isolation" --outputdir="$WORK/isolation" \
		--dbname=isolation_regression --load-extension=vector_vault $specs) >"$WORK/logs/isolation.log" 2>&1
	rc=$?
	cat "$WORK/logs/isolation.log" >&2
	record_regress isolation "$WORK/logs/isolation.log" $rc
fi

# Runs TAP files (each with prove) and records every assertion.
run_tap() {
	local name=$1; shift
	local p=0 f=0 t out rc np nf
	for t in "$@"; do
		out="$WORK/logs/tap-$(basename "$t" .pl).log"
		mkdir -p "$WORK/tap/$(basename "$t" .pl)" && chown postgres: "$WORK/tap/$(basename "$t" .pl)"
		(cd "$WORK" && as_postgres env PATH="$PATH" \
			PERL5LIB="$PG_PGXS_DIR/src/test/perl:$WORK/test/t" \
			TESTDIR="$WORK/tap/$(basename "$t" .pl)" PG_REGRESS="$PG_PGXS_DIR/src/test/regress/pg_regress" \
			VV_TOP="$top" prove -v "$t") >"$out" 2>&1
		rc=$?
		np=$(grep -Ec '^ok [0-9]+' "$out")
		nf=$(grep -Ec '^not ok [0-9]+' "$out")
		[ $rc -ne 0 ] && [ "$nf" -eq 0 ] && nf=1
		p=$((p + np)); f=$((f + nf))
		printf '  %-40s %3d ok %3d not ok\n' "$(basename "$t")" "$np" "$nf" >&2
		[ $rc -eq 0 ] || tail -60 "$out" >&2
	done
	record "$name" $p $f
}

# --- TAP: restarts, crashes, replicas, backups, disk and log inspection -------------------------
if want tap; then
	mkdir -p "$WORK/tap" && chown postgres: "$WORK/tap"
	# VV_TAP selects files, e.g. VV_TAP='test/t/02*.pl' (default: all).
	run_tap tap $(cd "$WORK" && ls ${VV_TAP:-test/t/*.pl})
fi

# --- real client libraries (Node.js pg + pgvector, psycopg2, SQLAlchemy, PgBouncer) -----------
if want clients && ls "$WORK"/test/clients/*.pl >/dev/null 2>&1; then
	# VV_CLIENTS selects files, e.g. VV_CLIENTS='test/clients/05*.pl' (default: all).
	run_tap clients $(cd "$WORK" && ls ${VV_CLIENTS:-test/clients/*.pl})
fi

# --- a real Citus cluster: coordinator + 2 workers (Citus built once from ../shared/peers) -----
if want citus && ls "$WORK"/test/citus/*.pl >/dev/null 2>&1; then
	# scripts/citus.sh caches the build; the caller of this script holds the install lock, if any
	if VV_INSTALL_LOCK_HELD=1 bash "$top/scripts/citus.sh" >"$WORK/logs/citus-build.log" 2>&1; then
		mkdir -p "$WORK/tap" && chown postgres: "$WORK/tap"
		# VV_CITUS selects files, e.g. VV_CITUS='test/citus/004*.pl' (default: all).
		run_tap citus $(cd "$WORK" && ls ${VV_CITUS:-test/citus/*.pl})
	else
		tail -30 "$WORK/logs/citus-build.log" >&2; record citus 0 1
	fi
fi

echo >&2
for line in "${SUMMARY[@]}"; do echo "  $line" >&2; done
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
