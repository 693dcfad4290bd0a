#!/usr/bin/env bash
# citus.sh — one node against a coordinator + 2 workers on this machine (issue 10, item b).
# Builds and installs vector_vault (and Citus, cached: scripts/citus.sh), starts three throwaway
# servers on loopback (ports 54411-54413, one master key, one keyring each), and runs
# citus_bench.py: the same Fashion-MNIST rows loaded into a plain table on the coordinator (one
# node; the workers idle) and into a table distributed by vault over the two workers; ingest
# rows/s, query QPS and latency, recall@10 against the exact answer. Results (JSON + Markdown,
# dated) go to test/bench/results/. It prints figures; it never passes or fails on time.
#
#   flock -o /tmp/vv-install.lock bash test/bench/citus.sh [--rows 60000] [--queries 200] ...
#
# (-o: the servers this script starts must not inherit the install lock's descriptor.)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib.sh"
ensure_packages
build_and_install "$top"
VV_INSTALL_LOCK_HELD=1 bash "$top/scripts/citus.sh" >/dev/null

WORK=$(mktemp -d /tmp/vv-citus-bench.XXXXXX)
chown postgres: "$WORK"
as_postgres bash -c "umask 077; openssl rand -hex 32 > $WORK/master.key"
ports=(54411 54412 54413)
names=(coord worker1 worker2)
stop_all() {
	for n in "${names[@]}"; do
		[ -d "$WORK/$n" ] && as_postgres pg_ctl -D "$WORK/$n" -m fast stop >/dev/null 2>&1 || true
	done
}
trap stop_all EXIT
for i in 0 1 2; do
	n=${names[$i]}
	as_postgres initdb -D "$WORK/$n" -A trust -U postgres >/dev/null
	cat >>"$WORK/$n/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$WORK'
port = ${ports[$i]}
shared_preload_libraries = 'citus,vector_vault'
max_prepared_transactions = 50
citus.node_conninfo = 'sslmode=disable'
vector_vault.master_key_file = '$WORK/master.key'
vector_vault.keyring_dir = '$WORK/keyring-$n'
vector_vault.cache_size = 512MB
shared_buffers = 512MB
maintenance_work_mem = 512MB
max_wal_size = 4GB
synchronous_commit = off
CONF
	as_postgres pg_ctl -D "$WORK/$n" -l "$WORK/$n.log" -w start >/dev/null
	as_postgres psql -X -q -h "$WORK" -p "${ports[$i]}" -d postgres \
		-c 'CREATE EXTENSION citus' -c 'CREATE EXTENSION vector_vault'
done
as_postgres psql -X -q -h "$WORK" -p "${ports[0]}" -d postgres \
	-c "SELECT citus_set_coordinator_host('127.0.0.1', ${ports[0]})" \
	-c "SELECT citus_add_node('127.0.0.1', ${ports[1]})" \
	-c "SELECT citus_add_node('127.0.0.1', ${ports[2]})" >/dev/null
mkdir -p "$top/test/bench/results"
as_postgres env HOME="$WORK" /usr/bin/python3 "$top/test/bench/citus_bench.py" \
	--dsn "host=127.0.0.1 port=${ports[0]} user=postgres dbname=postgres" \
	--work "$WORK" --out "$WORK/out" "$@"
cp "$WORK"/out/citus-* "$top/test/bench/results/"
ls "$top"/test/bench/results/citus-*
