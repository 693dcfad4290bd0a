#!/usr/bin/env bash
# peers.sh — builds and installs the extensions we measure ourselves against ("peers") from the
# source tarballs in ../shared/peers/ (beside the repository; read-only in CI), never from code
# copied into this repository.
#
#   sudo scripts/peers.sh pgvector [...]     build (once) and install each named peer
#
# Sources are unpacked and built in a cache directory outside git (VV_PEERS_CACHE, default
# /var/cache/vector_vault-peers as root, else ~/.cache/vector_vault/peers) and rebuilt only when
# the build product is missing. Installing into the system PostgreSQL holds /tmp/vv-install.lock,
# the lock every `make install` on this machine takes (vector_vault's too), unless the caller holds
# it already (VV_INSTALL_LOCK_HELD=1, as scripts/test.sh passes). Each peer is one
# function `peer_<name>`; a new peer (Citus next) is one more function.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib.sh"

PG_CONFIG=${PG_CONFIG:-$PG_BIN/pg_config}
PEERS_SRC=$(peers_src "$top")
if [ -z "${VV_PEERS_CACHE:-}" ]; then
	if [ "$(id -u)" -eq 0 ]; then VV_PEERS_CACHE=/var/cache/vector_vault-peers
	else VV_PEERS_CACHE=$HOME/.cache/vector_vault/peers; fi
fi
INSTALL_LOCK=${VV_INSTALL_LOCK:-/tmp/vv-install.lock}

# Unpacks peers/<tarball> into the cache (once) and prints the source directory.
unpack_peer() {
	local tarball=$1 dir=$2
	local src="$PEERS_SRC/$tarball"
	[ -f "$src" ] || die "$src not found (the shared peers folder sits beside the clone as ../shared)"
	mkdir -p "$VV_PEERS_CACHE"
	if [ ! -d "$VV_PEERS_CACHE/$dir" ]; then
		log "unpacking $tarball into $VV_PEERS_CACHE"
		tar -xzf "$src" -C "$VV_PEERS_CACHE"
	fi
	[ -d "$VV_PEERS_CACHE/$dir" ] || die "$tarball did not unpack into $dir"
	printf '%s\n' "$VV_PEERS_CACHE/$dir"
}

# Runs `make install` in dir under the install lock (root only: it writes the server's directories).
install_locked() {
	local dir=$1
	shift
	[ "$(id -u)" -eq 0 ] || die "installing into $($PG_CONFIG --pkglibdir) needs root"
	if [ "${VV_INSTALL_LOCK_HELD:-0}" = 1 ]; then
		# the caller (scripts/test.sh under the lock) holds it already: flock again would wait forever
		make -C "$dir" PG_CONFIG="$PG_CONFIG" "$@" install >/dev/null
	else
		flock "$INSTALL_LOCK" make -C "$dir" PG_CONFIG="$PG_CONFIG" "$@" install >/dev/null
	fi
}

# pgvector 0.8.6 with its default flags (its Makefile adds -march=native on x86-64).
peer_pgvector() {
	local dir
	dir=$(unpack_peer pgvector-0.8.6.tar.gz pgvector-0.8.6)
	if [ ! -f "$dir/vector.so" ]; then
		log "building pgvector 0.8.6 in $dir"
		make -C "$dir" -j"$(nproc)" PG_CONFIG="$PG_CONFIG" >"$dir/build.log" 2>&1 ||
			{ tail -20 "$dir/build.log" >&2; die "pgvector build failed (log: $dir/build.log)"; }
	fi
	local pkglib
	pkglib=$($PG_CONFIG --pkglibdir)
	if ! cmp -s "$dir/vector.so" "$pkglib/vector.so" ||
		[ ! -f "$($PG_CONFIG --sharedir)/extension/vector--0.8.6.sql" ]; then
		log "installing pgvector 0.8.6 into $pkglib"
		install_locked "$dir"
	fi
	log "pgvector 0.8.6 installed ($pkglib/vector.so)"
}

[ $# -gt 0 ] || die "usage: scripts/peers.sh PEER... (peers: pgvector)"
for peer in "$@"; do
	declare -F "peer_$peer" >/dev/null || die "unknown peer '$peer' (peers: pgvector)"
	"peer_$peer"
done
