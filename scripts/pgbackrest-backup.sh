#!/usr/bin/env bash
# pgbackrest-backup.sh — one scheduled backup of a vector_vault cluster: a pgBackRest backup,
# then a keyring snapshot labelled with that backup's label (scripts/keyring-backup.sh), so that
# every backup in the repository has a keyring snapshot at least as new as itself.
#
#   pgbackrest-backup.sh --stanza NAME --type full|diff|incr --keyring DIR --keyring-dest DIR
#                        [--config FILE] [--repo N] [--keyring-retain-days N] [--keyring-retain-count N]
#
# Run it as the server's OS user (from cron or a systemd timer: docs/backups.md). pgBackRest's
# own retention (repoN-retention-full/diff in its configuration) expires backups; the keyring
# snapshots have their own retention (--keyring-retain-days), which is the window in which a
# dropped vault can still be brought back. The master key is never read or copied.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

# Prints a message to stderr and exits non-zero.
die() { printf 'pgbackrest-backup: error: %s\n' "$*" >&2; exit 1; }

STANZA="" TYPE="" KEYRING="" KDEST="" CONFIG="" REPO="" KDAYS="" KCOUNT=""
while [ $# -gt 0 ]; do
	case "$1" in
	--stanza) STANZA=$2; shift 2 ;;
	--type) TYPE=$2; shift 2 ;;
	--keyring) KEYRING=$2; shift 2 ;;
	--keyring-dest) KDEST=$2; shift 2 ;;
	--config) CONFIG=$2; shift 2 ;;
	--repo) REPO=$2; shift 2 ;;
	--keyring-retain-days) KDAYS=$2; shift 2 ;;
	--keyring-retain-count) KCOUNT=$2; shift 2 ;;
	*) die "unknown option $1" ;;
	esac
done
[ -n "$STANZA" ] && [ -n "$KEYRING" ] && [ -n "$KDEST" ] || die "--stanza, --keyring and --keyring-dest are required"
case "$TYPE" in full | diff | incr) ;; *) die "--type must be full, diff or incr" ;; esac

br=(pgbackrest "--stanza=$STANZA")
[ -n "$CONFIG" ] && br+=("--config=$CONFIG")
[ -n "$REPO" ] && br+=("--repo=$REPO")

# The backup first: the keyring snapshot taken after it holds every key its data can need.
"${br[@]}" "--type=$TYPE" backup

# The label of the newest backup of the repository (pgbackrest info, JSON output).
# Without --repo, backup writes to repo1, so that is the repository to ask.
info=(pgbackrest "--stanza=$STANZA" "--repo=${REPO:-1}" --output=json)
[ -n "$CONFIG" ] && info+=("--config=$CONFIG")
label=$("${info[@]}" info | grep -o '"label":"[^"]*"' | tail -1 | cut -d'"' -f4)
[ -n "$label" ] || die "could not read the label of the new backup from pgbackrest info"

kb=(bash "$here/keyring-backup.sh" backup --keyring "$KEYRING" --dest "$KDEST" --label "$label")
[ -n "$KDAYS" ] && kb+=(--retain-days "$KDAYS")
[ -n "$KCOUNT" ] && kb+=(--retain-count "$KCOUNT")
"${kb[@]}"
echo "pgbackrest-backup: $TYPE backup $label and its keyring snapshot done"
