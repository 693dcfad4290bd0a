#!/usr/bin/env bash
# exact.sh — the exact-scan benchmark against pgvector 0.8.6, one command (as root): builds
# vector_vault and pgvector (scripts/peers.sh), starts a throwaway server with
# shared_preload_libraries = 'vector_vault' and both extensions in one database, runs
# exact_scan.py and appends the figures to test/bench/results/exact-scan-<date>.md.
#   test/bench/exact.sh [--queries 50] [--reps 3] [--profile] ...   (arguments go to exact_scan.py)
#   test/bench/exact.sh --profile-only      perf profiles and call chains only, no timed runs
# Planner settings are Postgres' defaults (max_parallel_workers_per_gather = 2 etc.); only memory
# and WAL sizes are set for the load. VV_EXACT_PORT picks the port (default 54417).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib.sh"
[ "$(id -u)" -eq 0 ] || die "run as root: it installs into the system PostgreSQL"
port=${VV_EXACT_PORT:-54417}
lock=${VV_INSTALL_LOCK:-/tmp/vv-install.lock}
for a in "$@"; do
	case $a in --profile | --profile-only) VV_PACKAGES=linux-perf ensure_packages ;; esac
done
ensure_packages
"$top/scripts/peers.sh" pgvector
log "building vector_vault"
make -C "$top" -j"$(nproc)" >/dev/null

WORK=$(mktemp -d /tmp/vv-exact.XXXXXX)
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
# no index in this benchmark: the decrypted index cache stays small
vector_vault.cache_size = 64MB
# both tables (~240 MB each) stay in shared buffers
shared_buffers = 1GB
max_wal_size = 4GB
CONF
# Others install their builds into the same server directories: hold the install lock from our
# `make install` until our server has loaded vector_vault.so (a running server keeps the library
# it loaded) and CREATE EXTENSION has read the matching install script. The server must not
# inherit the lock's descriptor.
log "installing vector_vault and starting the server (port $port) under $lock"
exec 9>"$lock"
flock 9
make -C "$top" install >/dev/null
as_postgres pg_ctl -D "$WORK/data" -l "$WORK/server.log" -w start >/dev/null 9>&-
as_postgres psql -X -q -v ON_ERROR_STOP=1 -h "$WORK" -p "$port" -d postgres \
	-c 'CREATE EXTENSION vector' -c 'CREATE EXTENSION vector_vault' 9>&-
flock -u 9
exec 9>&-

mkdir -p "$top/test/bench/results"
commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)
if ! git -C "$top" diff --quiet HEAD -- src 2>/dev/null; then commit="$commit+dirty"; fi
/usr/bin/python3 "$top/test/bench/exact_scan.py" --dsn "host=$WORK port=$port user=postgres dbname=postgres" \
	--out "$top/test/bench/results" --commit "$commit" \
	--so "$top/vector_vault.so" "$@"
