# lib.sh — shared helpers for the scripts in this directory (sourced, not run).

PG_MAJOR=${PG_MAJOR:-15}
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
PG_PGXS_DIR=/usr/lib/postgresql/$PG_MAJOR/lib/pgxs
export PATH="$PG_BIN:$PATH"

# Debian packages the build, the demo and the test suite need.
VV_PACKAGES="build-essential cmake clang clang-format libclang-rt-dev openssl libssl-dev
postgresql-$PG_MAJOR postgresql-client-$PG_MAJOR postgresql-server-dev-$PG_MAJOR libkrb5-dev libhnswlib-dev
libgtest-dev libipc-run-perl dataset-fashion-mnist python3-numpy python3-psycopg2
python3-sqlalchemy python3-matplotlib pgbouncer nodejs npm gdb strace liblz4-dev libzstd-dev universal-ctags
pgbackrest postgresql-$PG_MAJOR-auto-failover pg-auto-failover-cli"

# psycopg 3 for the client helpers (clients/python) and examples/rag.
VV_PACKAGES="$VV_PACKAGES python3-psycopg"

# The folder holding the peers' source tarballs (pgvector, Citus): $VV_PEERS_SRC, else ../shared/peers
# beside the checkout, else /work/shared/peers (where it is on the project's machines, so that a
# clone elsewhere, such as CI's /tmp/ci, finds it too).
peers_src() {
	local top=$1 d
	for d in "${VV_PEERS_SRC:-}" "$top/../shared/peers" /work/shared/peers; do
		[ -n "$d" ] && [ -d "$d" ] && { (cd "$d" && pwd); return 0; }
	done
	echo "$top/../shared/peers"
}

log() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Installs missing Debian packages when root; otherwise prints the exact apt-get line and fails.
ensure_packages() {
	local missing=()
	local p
	for p in $VV_PACKAGES; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
			# nodejs from another source may provide npm itself
			if [ "$p" = npm ] && command -v npm >/dev/null; then continue; fi
			if [ "$p" = nodejs ] && command -v node >/dev/null; then continue; fi
			missing+=("$p")
		fi
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "Missing packages. Run as root:" >&2
		echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
		exit 1
	fi
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Builds and installs the extension (install needs root).
build_and_install() {
	local top=$1
	log "building vector_vault"
	make -C "$top" -j"$(nproc)" >/dev/null
	if [ "$(id -u)" -eq 0 ]; then
		make -C "$top" install >/dev/null
	else
		echo "Not root: run 'sudo make -C $top install' to install the extension." >&2
		return 1
	fi
}

# Runs a command as the postgres OS user when root (initdb/postgres refuse root).
as_postgres() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}
