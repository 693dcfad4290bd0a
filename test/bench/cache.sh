#!/usr/bin/env bash
# cache.sh — the index-cache benchmark, one command (as root): builds vector_vault, pgvector 0.8.6
# (scripts/peers.sh), the hnswlib reference and the libpq search client; starts one throwaway
# server (Unix socket only) with both extensions in one database; runs cache_bench.py, which
# restarts that server once per vector_vault.cache_representation setting, and writes
# test/bench/results/cache-<date>[-runN].{md,json,png}.
#   test/bench/cache.sh [--queries 1000] [--efs 10,20,40,80,120,200] ...  (arguments go to cache_bench.py)
# VV_CACHE_PORT picks the port (default 54418). The server is stopped and its directory removed
# on exit; its log is kept as test/bench/cache/cache-server.log (not committed).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib.sh"
[ "$(id -u)" -eq 0 ] || die "run as root: it installs into the system PostgreSQL"
port=${VV_CACHE_PORT:-54418}
lock=${VV_INSTALL_LOCK:-/tmp/vv-install.lock}
peers=${VV_PEERS_CACHE:-/var/cache/vector_vault-peers}
ensure_packages
"$top/scripts/peers.sh" pgvector
log "building vector_vault, hnswlib_bench and knn_run"
make -C "$top" -j"$(nproc)" >/dev/null
mkdir -p "$top/build/bench"
g++ -O3 -march=native -std=c++17 -pthread -isystem /usr/include/hnswlib \
	"$top/test/bench/hnswlib_bench.cpp" -o "$top/build/bench/hnswlib_bench"
g++ -O3 -std=c++17 -pthread -isystem /usr/include/hnswlib \
	"$top/test/bench/hnswlib_bench.cpp" -o "$top/build/bench/hnswlib_bench_portable"
gcc -O2 -Wall -Wextra -Werror "$top/test/bench/knn_run.c" -I"$(pg_config --includedir)" -lpq \
	-o "$top/build/bench/knn_run"

WORK=$(mktemp -d /tmp/vv-cache.XXXXXX)
chown postgres: "$WORK"
mkdir -p "$top/test/bench/cache" "$top/test/bench/results"
cleanup() {
	as_postgres pg_ctl -D "$WORK/data" -m fast stop >/dev/null 2>&1 || true
	cp "$WORK/server.log" "$top/test/bench/cache/cache-server.log" 2>/dev/null || true
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
# cache_bench.py sets these per phase with ALTER SYSTEM and a restart
vector_vault.cache_size = 1024MB
vector_vault.cache_representation = 'float32'
# both tables (~240 MB each, pgvector's TOASTed) and both indexes (~200 MB each) fit
shared_buffers = 2GB
maintenance_work_mem = 2GB
max_wal_size = 4GB
max_connections = 60
CONF
# Others install their builds into the same server directories: hold the install lock from our
# `make install` until our server has loaded vector_vault.so (a running server keeps the library
# it loaded) and CREATE EXTENSION has read the matching install script. The server must not
# inherit the lock's descriptor. cache_bench.py takes the same lock around each restart.
log "installing vector_vault and starting the server (port $port) under $lock"
exec 9>"$lock"
flock 9
make -C "$top" install >/dev/null
as_postgres pg_ctl -D "$WORK/data" -l "$WORK/server.log" -w start >/dev/null 9>&-
as_postgres psql -X -q -v ON_ERROR_STOP=1 -h "$WORK" -p "$port" -d postgres \
	-c 'CREATE EXTENSION vector' -c 'CREATE EXTENSION vector_vault' \
	-c 'CREATE EXTENSION pg_prewarm' 9>&-
flock -u 9
exec 9>&-

commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)
if ! git -C "$top" diff --quiet HEAD -- src 2>/dev/null; then commit="$commit+dirty"; fi
pkglib=$(pg_config --pkglibdir)
/usr/bin/python3 "$top/test/bench/cache_bench.py" --dsn "host=$WORK port=$port user=postgres dbname=postgres" \
	--pgdata "$WORK/data" --log "$WORK/server.log" --lock "$lock" \
	--vv-so "$top/vector_vault.so:$pkglib/vector_vault.so" \
	--pgv-so "$peers/pgvector-0.8.6/vector.so:$pkglib/vector.so" \
	--cache "$top/test/bench/cache" --hnswlib "$top/build/bench/hnswlib_bench" \
	--hnswlib-portable "$top/build/bench/hnswlib_bench_portable" --client "$top/build/bench/knn_run" \
	--out "$top/test/bench/results" --commit "$commit" "$@"
