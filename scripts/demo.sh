#!/usr/bin/env bash
# demo.sh — the main job: a throwaway local cluster with vector_vault, a generated master key and
# a short demo. Everything lives in .vv/ under the checkout (git-ignored). Re-running reuses the
# cluster and key. Stop it with: scripts/demo.sh stop
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib.sh"

VV=$top/.vv
PORT=${VV_PORT:-54329}
PGDATA=$VV/data
KEYRING=$VV/keyring
KEYFILE=$VV/master.key

if [ "${1:-}" = stop ]; then
	as_postgres pg_ctl -D "$PGDATA" -m fast stop
	exit 0
fi

ensure_packages
build_and_install "$top"

mkdir -p "$VV"
[ "$(id -u)" -eq 0 ] && chown postgres: "$VV"
if [ ! -f "$KEYFILE" ]; then
	log "generating a master key in $KEYFILE (mode 0600)"
	as_postgres bash -c "umask 077; openssl rand -hex 32 > '$KEYFILE'"
fi
if [ ! -d "$PGDATA" ]; then
	log "creating a cluster in $PGDATA"
	as_postgres initdb -D "$PGDATA" -A peer --auth-local=trust -U postgres >/dev/null
	cat >>"$PGDATA/postgresql.conf" <<CONF
# vector_vault demo cluster
listen_addresses = ''
unix_socket_directories = '$VV'
port = $PORT
shared_preload_libraries = 'vector_vault'
vector_vault.master_key_file = '$KEYFILE'
vector_vault.keyring_dir = '$KEYRING'
log_statement = 'none'
CONF
fi
if as_postgres pg_ctl -D "$PGDATA" status >/dev/null 2>&1; then
	log "restarting the cluster (to load the freshly built library)"
	as_postgres pg_ctl -D "$PGDATA" -l "$VV/server.log" -w -m fast restart >/dev/null
else
	log "starting the cluster"
	as_postgres pg_ctl -D "$PGDATA" -l "$VV/server.log" -w start >/dev/null
fi

PSQL="psql -X -q -v ON_ERROR_STOP=1 -h $VV -p $PORT -U postgres -d postgres"
log "demo: a vault, encrypted rows, an exact search"
as_postgres $PSQL <<'SQL'
SET client_min_messages = warning;
-- a re-run starts over: drop the demo vault first so its keys are shredded, then the extension
DO $$ BEGIN
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector_vault') THEN
    PERFORM vault.drop_vault(name) FROM vault.vaults WHERE name = 'support_docs';
  END IF;
END $$;
DROP TABLE IF EXISTS demo_items, demo_plain;
DROP EXTENSION IF EXISTS vector_vault CASCADE;
CREATE EXTENSION vector_vault;
SELECT vault.create_vault('support_docs') AS created \gset
SET vector_vault.vault = 'support_docs';
CREATE TABLE demo_items (id bigserial PRIMARY KEY, body etext, meta ejsonb, embedding evector(3));
INSERT INTO demo_items (body, meta, embedding) VALUES
  ('DEMO-SECRET how to reset a password', '{"lang":"en","tag":"DEMO-SECRET-META"}', '[0.11,0.22,0.33]'),
  ('DEMO-SECRET billing questions',       '{"lang":"en"}',                          '[0.9,0.1,0.4]'),
  ('DEMO-SECRET comment changer de mot de passe', '{"lang":"fr"}',                  '[0.12,0.2,0.31]');
CREATE INDEX demo_items_embedding ON demo_items USING vault_hnsw (embedding evector_l2_ops);
-- the same rows in a plain table: the positive control for the disk probe below
CREATE TABLE demo_plain AS SELECT id, body::text AS body, meta::jsonb AS meta FROM demo_items;
\echo
\echo 'Nearest neighbours of [0.1,0.2,0.3] (decrypted for the vault owner):'
SELECT id, body, meta->>'lang' AS lang, round((embedding <-> '[0.1,0.2,0.3]')::numeric, 4) AS distance
FROM demo_items ORDER BY embedding <-> '[0.1,0.2,0.3]' LIMIT 2;
\echo 'The search runs on the encrypted vault_hnsw index:'
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM demo_items ORDER BY embedding <-> '[0.1,0.2,0.3]' LIMIT 2;
RESET enable_seqscan;
\echo 'Vaults you can use:'
SELECT name, owner, access FROM vault.vaults;
CHECKPOINT;
SQL

log "probing the table files on disk for the plaintext marker DEMO-SECRET"
enc=$(as_postgres $PSQL -At -c "SELECT pg_relation_filepath('demo_items')")
idx=$(as_postgres $PSQL -At -c "SELECT pg_relation_filepath('demo_items_embedding')")
toast=$(as_postgres $PSQL -At -c "SELECT pg_relation_filepath(reltoastrelid) FROM pg_class WHERE relname='demo_items'")
plain=$(as_postgres $PSQL -At -c "SELECT pg_relation_filepath('demo_plain')")
n_enc=$(cat "$PGDATA/$enc" "$PGDATA/$toast" "$PGDATA/$idx" | grep -a -c "DEMO-SECRET" || true)
n_plain=$(grep -a -c "DEMO-SECRET" "$PGDATA/$plain" || true)
echo "  encrypted table ($enc + TOAST + index): $n_enc lines containing the marker"
echo "  plain control table ($plain):   $n_plain lines containing the marker"
if [ "$n_enc" -ne 0 ] || [ "$n_plain" -eq 0 ]; then
	die "disk probe failed: the encrypted table must hold no marker and the plain one must"
fi
echo "  => the encrypted table holds only ciphertext; the probe does find plaintext where it exists."

cat <<EOM

The cluster keeps running.
  connect:  psql -h $VV -p $PORT -U postgres postgres     (as the postgres OS user: sudo -u postgres psql ...)
            then: SET vector_vault.vault = 'support_docs'; SELECT * FROM demo_items;
  stop:     scripts/demo.sh stop
  key:      $KEYFILE   keyring: $KEYRING   data: $PGDATA   log: $VV/server.log
EOM
