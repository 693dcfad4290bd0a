#!/usr/bin/env bash
# citus.sh — builds Citus 13.2.2 from ../shared/peers/citus-13.2.2.tar.gz (no package registry
# here carries Citus for PostgreSQL 15) and installs it into the system PostgreSQL, for the
# `citus` test suite. No Citus code is copied into this repository.
#
#   sudo scripts/citus.sh            build (once per tarball checksum) and install
#   scripts/citus.sh --check         exit 0 when the installed citus.so is the cached build
#
# The tree is unpacked and built in a cache directory outside git (VV_CITUS_CACHE, default
# /var/cache/vector_vault-peers as root, else ~/.cache/vector_vault/peers), in a directory named
# after the tarball's SHA-256, so a new tarball means a new build and an unchanged one is never
# rebuilt. The one local change is the one PITFALLS.md describes: PostgreSQL 15.20's headers
# declare have_createdb_privilege() extern while Citus's src/include/pg_version_compat.h defines
# a static copy for PG < 16, so the copy is renamed (sed) before configure. Installing holds
# /tmp/vv-install.lock unless the caller already holds it (VV_INSTALL_LOCK_HELD=1): scripts/test.sh
# runs under that lock in CI and on shared machines.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib.sh"

PG_CONFIG=${PG_CONFIG:-$PG_BIN/pg_config}
PEERS_SRC=$(peers_src "$top")
TARBALL=${VV_CITUS_TARBALL:-$PEERS_SRC/citus-13.2.2.tar.gz}
if [ -z "${VV_CITUS_CACHE:-}" ]; then
	if [ "$(id -u)" -eq 0 ]; then VV_CITUS_CACHE=/var/cache/vector_vault-peers
	else VV_CITUS_CACHE=$HOME/.cache/vector_vault/peers; fi
fi
INSTALL_LOCK=${VV_INSTALL_LOCK:-/tmp/vv-install.lock}

[ -f "$TARBALL" ] || die "$TARBALL not found (the shared peers folder sits beside the clone as ../shared)"
sum=$(sha256sum "$TARBALL" | cut -c1-16)
build="$VV_CITUS_CACHE/citus-$sum"
pkglib=$($PG_CONFIG --pkglibdir)
sharedir=$($PG_CONFIG --sharedir)

# True when the installed citus.so and control file are the cached build's.
installed() {
	[ -f "$build/.vv-built" ] &&
		cmp -s "$build/src/backend/distributed/citus.so" "$pkglib/citus.so" &&
		[ -f "$sharedir/extension/citus.control" ]
}

if [ "${1:-}" = "--check" ]; then
	installed
	exit
fi

# Unpacks, patches, configures and builds into $build (once; the stamp marks a finished build,
# and configure records absolute paths, so the tree is built where it stays).
build_citus() {
	[ -f "$build/.vv-built" ] && return 0
	rm -rf "$build"
	mkdir -p "$build"
	log "unpacking $(basename "$TARBALL") into $build"
	tar -xzf "$TARBALL" -C "$build" --strip-components=1
	# PG 15.20 declares have_createdb_privilege() extern; rename Citus's static PG < 16 copy.
	local compat="$build/src/include/pg_version_compat.h"
	grep -q 'have_createdb_privilege' "$compat" || die "$compat no longer defines have_createdb_privilege"
	sed -i 's/\bhave_createdb_privilege\b/citus_have_createdb_privilege/g' "$compat"
	log "building Citus in $build (a few minutes; cached afterwards)"
	(cd "$build" && ./configure --without-libcurl PG_CONFIG="$PG_CONFIG" >build.log 2>&1 &&
		make -j"${VV_CITUS_JOBS:-2}" >>build.log 2>&1) ||
		{ tail -30 "$build/build.log" >&2; die "Citus build failed (log: $build/build.log)"; }
	touch "$build/.vv-built"
}

ensure_packages
build_citus
if ! installed; then
	[ "$(id -u)" -eq 0 ] || die "installing Citus into $pkglib needs root"
	log "installing Citus into $pkglib"
	if [ "${VV_INSTALL_LOCK_HELD:-0}" = 1 ]; then
		make -C "$build" install >/dev/null
	else
		flock "$INSTALL_LOCK" make -C "$build" install >/dev/null
	fi
fi
log "Citus installed ($pkglib/citus.so, build $build)"
