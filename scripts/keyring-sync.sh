#!/usr/bin/env bash
# keyring-sync.sh — out-of-band keyring synchronisation for vector_vault standbys (issue 15).
#
#   keyring-sync.sh install --source CONNINFO [--role NAME]
#   keyring-sync.sh once    --source CONNINFO --local CONNINFO --keyring DIR [--state FILE]
#   keyring-sync.sh run     --source CONNINFO --local CONNINFO --keyring DIR [--state FILE] [--interval S]
#
# The keyring never enters WAL or backups, so a standby on another host does not receive it by
# streaming replication. This tool runs next to every data node (as the server's OS user) and,
# while the local server is a standby, pulls the primary's keyring entries over an ordinary
# authenticated libpq connection (use TLS and a password or certificate: sslmode=verify-full):
#
#   * What travels: data keys WRAPPED under the master key (vault-*.key), seal-count files,
#     claim files, shred intents and master.check — never the master key, which each node reads
#     from its own key source. A wrapped entry is useless without the master key. A shred intent
#     (written by a drop just before it commits, removed once the keys are shredded) lets a
#     standby promoted in between finish the shred: the server's reconciler shreds when the
#     drop's transaction committed and discards the intent when it did not.
#   * How: `install` creates, on the primary (it replicates to the standbys like any object),
#     vv_keyring_sync.entries(), a SECURITY DEFINER function owned by the installing superuser
#     that lists and reads only files with keyring entry names in vector_vault.keyring_dir.
#     Only the role it creates (default vv_keyring_sync, NOLOGIN until you give it a password or
#     certificate) may execute it; that role gets no other right, in particular not
#     pg_read_server_files (which would let it read the master key file).
#   * Adding: an entry that is new or changed on the primary is written locally durably (temporary
#     file, fsync, rename, fsync of the directory), so the server never reads half an entry.
#   * Removing: an entry that this node once received from a primary and that the primary no
#     longer has (the vault was dropped, or the key version retired, and the primary shredded it)
#     is overwritten with zeros, fsynced and removed. An entry this node never received from a
#     primary (for example a vault created here while this node was primary, which the new
#     primary missed) is NEVER removed: it is reported on every run, because it may be the only
#     copy of a live vault's key (copy it to the primary, or shred it if the vault is gone).
#   * Safety checks: the source must be out of recovery, have the same system identifier as the
#     local server, return master.check, and hold at least one data key when this keyring holds
#     some; otherwise nothing is changed. When the local server
#     is itself the primary (after a promotion) the tool does nothing.
#   * The state file (default DIR.sync-state, outside the keyring) lists the entries received from
#     a primary; its modification time is the time of the last successful run, which is what to
#     monitor as the keyring's replication lag.
#
# Prints one line per change and never prints key material. `once` exits non-zero on failure.
set -uo pipefail
umask 077

ENTRY_RE='^(vault-[0-9a-f]{16}-v[0-9]+\.(key|count)|claim-[0-9a-f]{16}\.db|shred-[0-9a-f]{16}\.intent|master\.check)$'

# Prints a timestamped line.
say() { printf '%s keyring-sync: %s\n' "$(date -u +%FT%TZ)" "$*"; }
# Prints an error and exits non-zero.
die() { say "error: $*" >&2; exit 1; }

# Prints the usage text (the header of this file) and exits.
usage() { sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

# Runs SQL on a connection string; tuples only, unaligned, "|" separated. No password here: use
# ~/.pgpass or a client certificate, so no secret is on a command line.
q() {
	local conn=$1 sql=$2
	psql -X -A -t -q -v ON_ERROR_STOP=1 -F '|' -d "$conn" -c "$sql"
}

# Creates the reading function and its role on the primary (run once, as a superuser).
cmd_install() {
	[[ "$ROLE" =~ ^[a-z_][a-z0-9_]*$ ]] || die "bad role name $ROLE"
	q "$SOURCE" "
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$ROLE') THEN
    CREATE ROLE $ROLE NOLOGIN;
  END IF;
END \$\$;
CREATE SCHEMA IF NOT EXISTS vv_keyring_sync;
REVOKE ALL ON SCHEMA vv_keyring_sync FROM PUBLIC;
GRANT USAGE ON SCHEMA vv_keyring_sync TO $ROLE;
CREATE OR REPLACE FUNCTION vv_keyring_sync.entries(OUT name text, OUT bytes bytea)
RETURNS SETOF record LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS \$f\$
  SELECT f, b FROM (
    SELECT f, pg_read_binary_file(current_setting('vector_vault.keyring_dir') || '/' || f, 0, 65536, true) AS b
    FROM pg_ls_dir(current_setting('vector_vault.keyring_dir'), false, false) AS f
    WHERE f ~ '$ENTRY_RE') s
  WHERE b IS NOT NULL
\$f\$;
REVOKE ALL ON FUNCTION vv_keyring_sync.entries() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vv_keyring_sync.entries() TO $ROLE;" >/dev/null || die "install failed"
	say "installed vv_keyring_sync.entries() for role $ROLE (give the role LOGIN and a password or certificate)"
}

# fsyncs files or directories (coreutils sync fsyncs each argument).
fsync() { sync -- "$@"; }

# Writes base64 data durably to DIR/NAME (temporary file, fsync, rename, fsync directory).
put_entry() {
	local name=$1 b64=$2 tmp="$KEYRING/.sync-$1.tmp"
	printf '%s' "$b64" | base64 -d >"$tmp" || { rm -f -- "$tmp"; return 1; }
	chmod 600 "$tmp"
	fsync "$tmp" && mv -f -- "$tmp" "$KEYRING/$name" && fsync "$KEYRING"
}

# Overwrites a keyring file with zeros, fsyncs it and removes it (never through a link).
shred_entry() {
	local f="$KEYRING/$1"
	if [ -L "$f" ]; then rm -f -- "$f"; else shred --iterations=0 --zero --remove -- "$f"; fi
	fsync "$KEYRING"
}

# One synchronisation pass; returns non-zero when nothing could be done safely.
cmd_once() {
	[ -d "$KEYRING" ] || die "keyring directory $KEYRING does not exist"
	local local_info
	if ! local_info=$(q "$LOCAL" "SELECT pg_is_in_recovery(), system_identifier FROM pg_control_system()" 2>/dev/null); then
		say "local server not reachable; nothing done"
		return 1
	fi
	local local_recovery=${local_info%%|*} local_sysid=${local_info##*|}
	if [ "$local_recovery" != t ]; then
		touch -- "$STATE"    # a primary's keyring is the source: it is never behind
		return 0
	fi
	local out
	if ! out=$(q "$SOURCE" "SELECT 'sysid', system_identifier::text FROM pg_control_system()
UNION ALL SELECT 'recovery', pg_is_in_recovery()::text
UNION ALL SELECT name, translate(encode(bytes, 'base64'), E'\\n', '') FROM vv_keyring_sync.entries()" 2>&1); then
		say "source not reachable or not installed: $(printf '%s' "$out" | head -1)"
		return 1
	fi
	declare -A src=()
	local name val
	while IFS='|' read -r name val; do
		[ -n "$name" ] && src[$name]=$val
	done <<<"$out"
	[ "${src[recovery]:-}" = false ] || { say "source is in recovery (not the primary); nothing done"; return 1; }
	[ "${src[sysid]:-}" = "$local_sysid" ] || { say "source has another system identifier than the local server; nothing done"; return 1; }
	[ -n "${src[master.check]:-}" ] || { say "source returned no master.check (wrong keyring_dir?); nothing done"; return 1; }
	unset 'src[sysid]' 'src[recovery]'

	# A source without a single data key while this keyring has some is a misconfigured primary
	# (an empty keyring_dir), not a primary whose every vault was dropped in one interval: refuse.
	local src_keys=0 name2
	for name2 in "${!src[@]}"; do [[ "$name2" == *.key ]] && src_keys=$((src_keys + 1)); done
	if [ "$src_keys" -eq 0 ] && compgen -G "$KEYRING/vault-*.key" >/dev/null; then
		say "source has no data keys while this keyring has some (wrong keyring_dir on the primary?); nothing done"
		return 1
	fi
	declare -A seen=()
	if [ -f "$STATE" ]; then
		while IFS= read -r name; do [ -n "$name" ] && seen[$name]=1; done <"$STATE"
	fi
	local changed=0 cur
	for name in "${!src[@]}"; do
		[[ "$name" =~ $ENTRY_RE ]] || continue
		cur=""
		[ -f "$KEYRING/$name" ] && [ ! -L "$KEYRING/$name" ] && cur=$(base64 -w0 <"$KEYRING/$name")
		if [ "$cur" != "${src[$name]}" ]; then
			put_entry "$name" "${src[$name]}" || { say "could not write $name"; return 1; }
			case "$name" in *.count) ;; *) say "received $name" ;; esac
			changed=1
		fi
		seen[$name]=1
	done
	local f
	for f in "$KEYRING"/*; do
		name=$(basename -- "$f")
		[[ "$name" =~ $ENTRY_RE ]] || continue
		[ -n "${src[$name]+x}" ] && continue
		if [ -n "${seen[$name]:-}" ]; then
			shred_entry "$name" && say "shredded $name (gone from the primary)"
			unset "seen[$name]"
			changed=1
		else
			say "WARNING: $name is in this keyring but not on the primary and was never received from it; kept (it may be the only copy of a live vault's key: copy it to the primary's keyring, or shred it if the vault was dropped)"
		fi
	done
	# The state file: entries received from a primary, replaced atomically; its mtime is the
	# time of the last successful pass.
	printf '%s\n' "${!seen[@]}" | sort >"$STATE.tmp" && fsync "$STATE.tmp" && mv -f -- "$STATE.tmp" "$STATE"
	[ $changed -eq 1 ] && say "pass done"
	return 0
}

# Runs passes forever, every --interval seconds, until terminated.
cmd_run() {
	trap 'say "stopped"; exit 0' TERM INT
	say "running every ${INTERVAL}s"
	while :; do
		(cmd_once) || true
		sleep "$INTERVAL" &
		wait $!
	done
}

CMD=${1:-}
[ -n "$CMD" ] || usage
shift
SOURCE="" LOCAL="" KEYRING="" STATE="" INTERVAL=1 ROLE=vv_keyring_sync
while [ $# -gt 0 ]; do
	case "$1" in
	--source) SOURCE=$2; shift 2 ;;
	--local) LOCAL=$2; shift 2 ;;
	--keyring) KEYRING=${2%/}; shift 2 ;;
	--state) STATE=$2; shift 2 ;;
	--interval) INTERVAL=$2; shift 2 ;;
	--role) ROLE=$2; shift 2 ;;
	*) die "unknown option $1" ;;
	esac
done
[ -n "$SOURCE" ] || die "--source is required"
[ -n "$STATE" ] || STATE="$KEYRING.sync-state"
case "$CMD" in
install) cmd_install ;;
once)
	[ -n "$LOCAL" ] && [ -n "$KEYRING" ] || die "--local and --keyring are required"
	cmd_once
	;;
run)
	[ -n "$LOCAL" ] && [ -n "$KEYRING" ] || die "--local and --keyring are required"
	[[ "$INTERVAL" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "bad --interval"
	cmd_run
	;;
*) usage ;;
esac
