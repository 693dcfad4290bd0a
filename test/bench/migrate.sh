#!/usr/bin/env bash
# migrate.sh — rows per second of vault.migrate_column (issue 11), one command (as root): builds
# vector_vault, starts a throwaway server, loads N rows and converts them in place, printing
# one line per case and appending them to test/bench/results/migrate-<date>.md.
#   test/bench/migrate.sh [rows] [dims] [batch_size]      (defaults 1000000 128 10000)
# Cases: pgvector vector(dims) with an hnsw index, 10 tenants (one vault each, rows sealed
# under the vault their tenant column names), once keeping the index during the batches and
# once with drop_indexes_first (the vault_hnsw build afterwards is timed apart);
# real[] under one vault; text (~200 bytes) to etext. The pgvector case is skipped when
# CREATE EXTENSION vector fails. Timings are the CALL's wall time as psql reports it; the
# load is not timed. VV_MIGRATE_PORT picks the port (default 54431). VV_MIGRATE_KEPT=0 skips the
# case that keeps the pgvector index during the batches (a graph insert per moved row: about
# 450 rows/s here, so close to an hour at 1M rows).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib.sh"
[ "$(id -u)" -eq 0 ] || die "run as root: it installs into the system PostgreSQL"
rows=${1:-1000000}
dims=${2:-128}
batch=${3:-10000}
port=${VV_MIGRATE_PORT:-54431}
lock=${VV_INSTALL_LOCK:-/tmp/vv-install.lock}
log "building vector_vault"
make -C "$top" -j2 >/dev/null

WORK=$(mktemp -d /tmp/vv-migrate.XXXXXX)
chown postgres: "$WORK"
cleanup() {
	as_postgres pg_ctl -D "$WORK/data" -m fast stop >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT
as_postgres bash -c "umask 077; openssl rand -hex 32 > $WORK/master.key"
as_postgres initdb -D "$WORK/data" -A trust -U postgres >/dev/null
cat >>"$WORK/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$WORK'
port = $port
shared_preload_libraries = 'vector_vault'
vector_vault.master_key_file = '$WORK/master.key'
vector_vault.keyring_dir = '$WORK/keyring'
shared_buffers = 1GB
maintenance_work_mem = 2GB
max_wal_size = 8GB
CONF
# Hold the install lock from `make install` until the server has loaded our library and
# CREATE EXTENSION has read our script; the server must not inherit the lock's descriptor.
log "installing vector_vault and starting the server (port $port) under $lock"
exec 9>"$lock"
flock 9
make -C "$top" install >/dev/null
as_postgres pg_ctl -D "$WORK/data" -l "$WORK/server.log" -w start >/dev/null 9>&-
as_postgres psql -X -q -v ON_ERROR_STOP=1 -h "$WORK" -p "$port" -d postgres \
	-c 'CREATE EXTENSION vector_vault' 9>&-
flock -u 9
exec 9>&-

psql_() { as_postgres psql -X -q -v ON_ERROR_STOP=1 -h "$WORK" -p "$port" -d postgres "$@"; }
has_pgvector=0
psql_ -c 'CREATE EXTENSION vector' 2>/dev/null && has_pgvector=1

# Seconds a CALL takes (psql's \timing, in ms, converted).
timed() {
	local ms
	ms=$(psql_ -c "SET client_min_messages = warning" -c '\timing on' -c "$1" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1)
	echo "scale=3; $ms / 1000" | bc
}

psql_ <<SQL
SELECT vault.create_vault('bench_t' || t) FROM generate_series(0, 9) t;
SELECT vault.create_vault('bench_one');
CREATE TABLE src (id bigint PRIMARY KEY, tenant text, arr real[], body text);
INSERT INTO src
SELECT i, 'bench_t' || (i % 10),
       (SELECT array_agg(random()::real) FROM generate_series(1, $dims) d WHERE i > -d),
       repeat(md5(i::text), 6)
FROM generate_series(1, $rows) i;
VACUUM ANALYZE src;
SQL
date=$(date -u +%Y-%m-%d)
out="$top/test/bench/results/migrate-$date.md"
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
line() {
	printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$date" "$1" "$rows" "$dims" "$batch" "$2" \
		"$(echo "scale=0; $rows / $2" | bc)" | tee -a "$out"
}
[ -f "$out" ] || printf '# vault.migrate_column throughput\n\nMachine: %s, %s cores. test/bench/migrate.sh.\n\n| date | case | rows | dims | batch | seconds | rows/s |\n|---|---|---|---|---|---|---|\n' "$cpu" "$(nproc)" >"$out"

if [ $has_pgvector -eq 1 ] && [ "${VV_MIGRATE_KEPT:-1}" != 0 ]; then
	psql_ -c "CREATE TABLE pv AS SELECT id, tenant, arr::vector($dims) AS embedding FROM src" \
		-c "CREATE INDEX ON pv USING hnsw (embedding vector_l2_ops)" -c "VACUUM ANALYZE pv"
	s=$(timed "CALL vault.migrate_column('pv', 'embedding', vault_column => 'tenant', batch_size => $batch)")
	line "vector($dims) + hnsw index -> evector, 10 tenants (index kept during the batches)" "$s"
fi
if [ $has_pgvector -eq 1 ]; then
	psql_ -c "CREATE TABLE pv2 AS SELECT id, tenant, arr::vector($dims) AS embedding FROM src" \
		-c "CREATE INDEX ON pv2 USING hnsw (embedding vector_l2_ops)" -c "VACUUM ANALYZE pv2"
	s=$(timed "CALL vault.migrate_column('pv2', 'embedding', vault_column => 'tenant', batch_size => $batch, drop_indexes_first => true)")
	line "vector($dims) + hnsw index -> evector, 10 tenants (drop_indexes_first)" "$s"
	s=$(timed "CREATE INDEX ON pv2 USING vault_hnsw (embedding evector_l2_ops)")
	log "vault_hnsw index build on the migrated column: $s s (not in rows/s)"
fi
psql_ -c "CREATE TABLE ra AS SELECT id, arr FROM src" -c "VACUUM ANALYZE ra"
s=$(timed "CALL vault.migrate_column('ra', 'arr', vault => 'bench_one', batch_size => $batch)")
line "real[] -> evector, one vault" "$s"
psql_ -c "CREATE TABLE tx AS SELECT id, body FROM src" -c "VACUUM ANALYZE tx"
s=$(timed "CALL vault.migrate_column('tx', 'body', vault => 'bench_one', batch_size => $batch)")
line "text (192 B) -> etext, one vault" "$s"
