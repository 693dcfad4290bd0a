#!/usr/bin/env bash
# keyring-backup.sh — snapshots of vector_vault's keyring, kept next to the pgBackRest backups,
# with a retention of their own.
#
#   keyring-backup.sh backup  --keyring DIR --dest DIR [--label NAME] [--retain-days N] [--retain-count N]
#   keyring-backup.sh prune   --dest DIR [--retain-days N] [--retain-count N]
#   keyring-backup.sh list    --dest DIR
#   keyring-backup.sh restore --dest DIR --snapshot NAME --to DIR
#
# The keyring (vector_vault.keyring_dir) lives outside PGDATA on purpose, so pgBackRest never
# copies it and no backup or WAL archive holds a key. A restore needs the keyring and the master
# key next to the backup. This script copies the keyring's entries (the data keys wrapped under
# the master key, claim files, seal-count files and master.check; never the master key) into
# DEST/<UTC time>[-NAME]/, atomically (a temporary directory, fsynced, renamed), and removes
# snapshots past the retention by overwriting them with zeros before unlinking them.
#
# Keyring retention IS the window in which a dropped vault can be brought back: a snapshot
# taken before vault.drop_vault still holds the vault's key, and a restore with it decrypts the
# vault again; once every such snapshot has been pruned the vault is gone from every backup.
# Choose --retain-days accordingly (and note that snapshots must cover every backup you may
# restore: a snapshot is needed that is at least as new as the newest vault in that backup).
#
# Run it as the server's OS user (the keyring is mode 0700, owned by that user). It prints one
# line per action and never prints key material. Exit status is non-zero on any failure.
set -euo pipefail
umask 077

# Prints a message to stderr and exits non-zero.
die() { printf 'keyring-backup: error: %s\n' "$*" >&2; exit 1; }
# Prints an informational line.
say() { printf 'keyring-backup: %s\n' "$*"; }

# Prints the usage text (the header of this file) and exits.
usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }

# True when a name is a keyring file that belongs in a snapshot (see core/keyring_format.h).
is_keyring_entry() {
	case "$1" in
	vault-*-v*.key | vault-*-v*.count | claim-*.db | master.check | shred-*.intent) return 0 ;;
	esac
	return 1
}

# True when a master-key rotation is under way in the keyring (.next files or its commit marker).
rotation_in_progress() {
	compgen -G "$KEYRING/*.next" >/dev/null || [ -e "$KEYRING/rotation.commit" ]
}

# fsyncs the given files or directories (coreutils sync fsyncs each argument).
sync_paths() { sync -- "$@"; }

# Overwrites every regular file under a snapshot directory with zeros, fsyncs, and removes it.
shred_snapshot() {
	local dir=$1
	find "$dir" -type f -exec shred --iterations=0 --zero --remove {} +
	rm -rf -- "$dir"
	sync_paths "$(dirname "$dir")"
}

# Takes one snapshot of the keyring into the destination.
cmd_backup() {
	[ -n "$KEYRING" ] || die "--keyring is required"
	[ -d "$KEYRING" ] || die "keyring directory $KEYRING does not exist"
	mkdir -p "$DEST"
	chmod 700 "$DEST"
	local name
	name=$(date -u +%Y%m%dT%H%M%SZ)
	[ -n "$LABEL" ] && name="$name-$LABEL"
	case "$name" in */* | .*) die "bad label $LABEL" ;; esac
	[ -e "$DEST/$name" ] && die "snapshot $name exists already"
	rotation_in_progress && die "a master-key rotation is in progress in $KEYRING; run again when it has finished"
	local tmp="$DEST/.tmp-$name.$$"
	mkdir "$tmp"
	local f n=0 base
	for f in "$KEYRING"/*; do
		[ -e "$f" ] || continue
		base=$(basename "$f")
		# Only regular files with keyring names: never follow a link, skip temporary files.
		[ -f "$f" ] && [ ! -L "$f" ] && is_keyring_entry "$base" || continue
		cp --preserve=mode,timestamps -- "$f" "$tmp/$base"
		n=$((n + 1))
	done
	# A rotation in progress (.next files, rotation.commit) would make an inconsistent copy.
	if rotation_in_progress; then
		shred_snapshot "$tmp"
		die "a master-key rotation is in progress in $KEYRING; run again when it has finished"
	fi
	[ "$n" -gt 0 ] || { rm -rf -- "$tmp"; die "no keyring entries in $KEYRING"; }
	sync_paths "$tmp"/* "$tmp"
	mv -- "$tmp" "$DEST/$name"
	sync_paths "$DEST"
	say "snapshot $name: $n files"
	cmd_prune
}

# Removes snapshots older than --retain-days and beyond the newest --retain-count.
cmd_prune() {
	[ -d "$DEST" ] || die "destination $DEST does not exist"
	local snaps=() s
	while IFS= read -r s; do snaps+=("$s"); done < <(find "$DEST" -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf '%f\n' | sort)
	# Leftovers of an interrupted backup.
	for s in "$DEST"/.tmp-*; do [ -d "$s" ] && shred_snapshot "$s"; done
	local count=${#snaps[@]} i=0 cutoff=""
	[ -n "$RETAIN_DAYS" ] && cutoff=$(date -u -d "-$RETAIN_DAYS days" +%Y%m%dT%H%M%SZ)
	for s in "${snaps[@]}"; do
		local old=0
		[ -n "$RETAIN_COUNT" ] && [ $((count - i)) -gt "$RETAIN_COUNT" ] && old=1
		[ -n "$cutoff" ] && [[ "${s:0:16}" < "$cutoff" ]] && old=1
		# Never remove the newest snapshot: it is the one a restore of the newest backup needs.
		[ $i -eq $((count - 1)) ] && old=0
		if [ $old -eq 1 ]; then
			shred_snapshot "$DEST/$s"
			say "pruned $s"
		fi
		i=$((i + 1))
	done
}

# Lists the snapshots, oldest first.
cmd_list() {
	[ -d "$DEST" ] || die "destination $DEST does not exist"
	find "$DEST" -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf '%f\n' | sort
}

# Copies one snapshot to a new keyring directory (which must not exist yet), mode 0700.
cmd_restore() {
	[ -n "$SNAPSHOT" ] && [ -n "$TO" ] || die "restore needs --snapshot and --to"
	[ -d "$DEST/$SNAPSHOT" ] || die "no snapshot $SNAPSHOT in $DEST"
	[ -e "$TO" ] && die "$TO exists; restore into a new directory"
	cp -a -- "$DEST/$SNAPSHOT" "$TO"
	chmod 700 "$TO"
	sync_paths "$TO"/* "$TO"
	say "restored $SNAPSHOT to $TO"
}

CMD=${1:-}
[ -n "$CMD" ] || usage
shift
KEYRING="" DEST="" LABEL="" RETAIN_DAYS="" RETAIN_COUNT="" SNAPSHOT="" TO=""
while [ $# -gt 0 ]; do
	case "$1" in
	--keyring) KEYRING=$2; shift 2 ;;
	--dest) DEST=$2; shift 2 ;;
	--label) LABEL=$2; shift 2 ;;
	--retain-days) RETAIN_DAYS=$2; shift 2 ;;
	--retain-count) RETAIN_COUNT=$2; shift 2 ;;
	--snapshot) SNAPSHOT=$2; shift 2 ;;
	--to) TO=$2; shift 2 ;;
	-h | --help) usage 0 ;;
	*) die "unknown option $1" ;;
	esac
done
[ -n "$DEST" ] || die "--dest is required"
for v in "$RETAIN_DAYS" "$RETAIN_COUNT"; do
	[ -z "$v" ] || [[ "$v" =~ ^[0-9]+$ ]] || die "retention must be a whole number"
done
[ -z "$RETAIN_COUNT" ] || [ "$RETAIN_COUNT" -ge 1 ] || die "--retain-count must be at least 1"

case "$CMD" in
backup) cmd_backup ;;
prune) cmd_prune ;;
list) cmd_list ;;
restore) cmd_restore ;;
*) usage ;;
esac
