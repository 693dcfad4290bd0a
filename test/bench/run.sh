#!/usr/bin/env bash
# run.sh — the benchmark, one command: builds and installs vector_vault and the plaintext helper,
# builds the hnswlib reference, starts a throwaway server tuned for the run, runs bench.py and
# writes dated results and a plot into test/bench/results/.
#   test/bench/run.sh [--queries N] [--efs 10,20,40] ...   (arguments go to bench.py)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib.sh"
ensure_packages
build_and_install "$top"
make -C "$top/test/bench/plain_l2" >/dev/null && make -C "$top/test/bench/plain_l2" install >/dev/null
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
as_postgres pg_ctl -D "$WORK/data" -l "$WORK/server.log" -w start >/dev/null
trap 'as_postgres pg_ctl -D "$WORK/data" -m fast stop >/dev/null 2>&1 || true' EXIT
mkdir -p "$top/test/bench/cache" "$top/test/bench/results"
/usr/bin/python3 "$top/test/bench/bench.py" --dsn "host=$WORK port=54399 user=postgres dbname=postgres" \
	--cache "$top/test/bench/cache" --hnswlib "$top/build/bench/hnswlib_bench" \
	--hnswlib-portable "$top/build/bench/hnswlib_bench_portable" --client "$top/build/bench/knn_client" \
	--out "$top/test/bench/results" "$@"
