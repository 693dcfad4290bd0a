#!/usr/bin/env bash
# run.sh — the benchmark, one command (as root): builds and installs vector_vault, the plaintext
# helper and pgvector 0.8.6 (scripts/peers.sh, from the tarball in the peers folder), builds the
# hnswlib reference, starts a throwaway server tuned for the run with vector_vault, plain_l2 and
# pgvector in one database, runs bench.py and writes dated results and plots into
# test/bench/results/.
#   test/bench/run.sh [--queries N] [--efs 10,20,40] [--no-pgvector] [--no-cosine] ...
#   (arguments go to bench.py)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib.sh"
[ "$(id -u)" -eq 0 ] || die "run as root: it installs into the system PostgreSQL"
lock=${VV_INSTALL_LOCK:-/tmp/vv-install.lock}
ensure_packages
"$top/scripts/peers.sh" pgvector
log "building vector_vault"
make -C "$top" -j"$(nproc)" >/dev/null
make -C "$top/test/bench/plain_l2" >/dev/null
mkdir -p "$top/build/bench"
# hnswlib twice: -march=native (its best kernels on this CPU) and portable x86-64 (SSE, as a
# distribution package or pip wheel builds it; Postgres extensions are built that way too).
g++ -O3 -march=native -std=c++17 -pthread -isystem /usr/include/hnswlib \
	"$top/test/bench/hnswlib_bench.cpp" -o "$top/build/bench/hnswlib_bench"
g++ -O3 -std=c++17 -pthread -isystem /usr/include/hnswlib \
	"$top/test/bench/hnswlib_bench.cpp" -o "$top/build/bench/hnswlib_bench_portable"
# The minimal-overhead SQL client (libpq, binary parameters).
gcc -O2 -Wall -Wextra -Werror "$top/test/bench/knn_client.c" -I"$(pg_config --includedir)" -lpq \
	-o "$top/build/bench/knn_client"
# hnswlib's Python bindings, as ann-benchmarks runs it (bench-only package).
if ! /usr/bin/python3 -c 'import hnswlib' 2>/dev/null; then
	VV_PACKAGES=python3-hnswlib ensure_packages
fi

WORK=$(mktemp -d /tmp/vv-bench.XXXXXX)
chown postgres: "$WORK"
as_postgres bash -c "umask 077; openssl rand -hex 32 > $WORK/master.key"
as_postgres initdb -D "$WORK/data" -A trust -U postgres >/dev/null
cat >>"$WORK/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$WORK'
port = 54399
shared_preload_libraries = 'vector_vault'
vector_vault.master_key_file = '$WORK/master.key'
vector_vault.keyring_dir = '$WORK/keyring'
vector_vault.cache_size = 1024MB
shared_buffers = 1GB
maintenance_work_mem = 2GB
max_wal_size = 4GB
CONF
trap 'as_postgres pg_ctl -D "$WORK/data" -m fast stop >/dev/null 2>&1 || true' EXIT
# Others install their builds into the same server directories: hold the install lock from our
# `make install` until the server has loaded vector_vault.so and CREATE EXTENSION has read the
# install scripts (as exact.sh). The server must not inherit the lock's descriptor.
log "installing vector_vault and plain_l2, starting the server under $lock"
exec 9>"$lock"
flock 9
make -C "$top" install >/dev/null
make -C "$top/test/bench/plain_l2" install >/dev/null
as_postgres pg_ctl -D "$WORK/data" -l "$WORK/server.log" -w start >/dev/null 9>&-
as_postgres psql -X -q -v ON_ERROR_STOP=1 -h "$WORK" -p 54399 -d postgres -c 'CREATE EXTENSION vector_vault' \
	-c 'CREATE EXTENSION plain_l2' -c 'CREATE EXTENSION vector' 9>&-
flock -u 9
exec 9>&-
mkdir -p "$top/test/bench/cache" "$top/test/bench/results"
/usr/bin/python3 "$top/test/bench/bench.py" --dsn "host=$WORK port=54399 user=postgres dbname=postgres" \
	--cache "$top/test/bench/cache" --hnswlib "$top/build/bench/hnswlib_bench" \
	--hnswlib-portable "$top/build/bench/hnswlib_bench_portable" --client "$top/build/bench/knn_client" \
	--out "$top/test/bench/results" "$@"
