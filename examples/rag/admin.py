"""admin.py — the RAG example's one-time setup, run by the operator (not by the application).

    python3 admin.py setup --dsn "host=/var/run/postgresql dbname=rag" --app-role app_runtime \
        --tenants acme globex         # prints {"acme": "vv_...", "globex": "vv_..."} once

Creates the chunks table (schema.sql), one vault per tenant, vault.protect('chunks'), the
vault_hnsw index, and one write API key per tenant (shown once: store it in the tenant's secret
store). The key-management password comes from VV_KEY_PASSWORD (never a command-line argument,
where other users could read it). The connecting role becomes every vault's owner.
"""
import argparse
import json
import os
import sys

import psycopg


def setup(args):
    """Table, vaults, protection, index and API keys; prints the keys as JSON."""
    password = os.environ.get("VV_KEY_PASSWORD")
    if not password:
        raise SystemExit("set VV_KEY_PASSWORD (the key-management password) in the environment")
    here = os.path.dirname(os.path.abspath(__file__))
    keys = {}
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        with open(os.path.join(here, "schema.sql")) as f:
            conn.execute(f.read())
        conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON chunks TO {args.app_role}")
        conn.execute(f"GRANT USAGE ON SEQUENCE chunks_id_seq TO {args.app_role}")
        for tenant in args.tenants:
            conn.execute("SELECT vault.create_vault(%s)", (tenant,))
        conn.execute("SELECT vault.protect('chunks')")
        conn.execute("CREATE INDEX IF NOT EXISTS chunks_embedding ON chunks "
                     "USING vault_hnsw (embedding evector_cosine_ops)")
        conn.execute("SELECT vault.set_key_password(%s)", (password,))
        for tenant in args.tenants:
            keys[tenant] = conn.execute(
                "SELECT vault.create_api_key(%s, jsonb_build_object(%s::text, 'write'), %s)",
                (password, tenant, f"rag example: {tenant}")).fetchone()[0]
    json.dump(keys, sys.stdout)
    sys.stdout.write("\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("setup")
    s.add_argument("--dsn", required=True)
    s.add_argument("--app-role", required=True)
    s.add_argument("--tenants", nargs="+", required=True)
    args = p.parse_args()
    setup(args)


if __name__ == "__main__":
    main()
