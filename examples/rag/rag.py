"""rag.py — a multi-tenant retrieval service over vector_vault (the application side).

    export VV_DSN="host=db dbname=rag user=app_runtime password=..."
    export VV_API_KEY=vv_...                         # the tenant's key, from its secret store
    python3 rag.py ingest data/acme.json             # documents -> chunks with their embeddings
    python3 rag.py ask '[0.9,0.1,0,0]' --k 3         # the k chunks nearest to a query embedding
    python3 rag.py prompt '[0.9,0.1,0,0]' "How many vacation days?"   # a prompt for your LLM

The application connects as one low-privilege role for every tenant and acts as a tenant only
through its API key, one transaction at a time (vector_vault.psycopg.transaction_login): the key
is a bind parameter, the login ends with the transaction, and row-level security plus the
per-vault index keep every other tenant's chunks out of reach. Embeddings are given as vectors
(from your embedding model); this example ships them precomputed in data/*.json.
"""
import argparse
import json
import os
import sys

import psycopg

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "clients", "python"))  # the helpers, from a checkout

import vector_vault.psycopg as vv  # noqa: E402


def connect():
    """A connection with vector_vault's types registered."""
    dsn = os.environ.get("VV_DSN")
    if not dsn:
        raise SystemExit("set VV_DSN to the application's connection string")
    conn = psycopg.connect(dsn, application_name="rag-example")
    vv.register_types(conn, use_numpy=False)
    return conn


def api_key():
    """The tenant's API key from the environment (never from the command line)."""
    key = os.environ.get("VV_API_KEY")
    if not key:
        raise SystemExit("set VV_API_KEY to the tenant's API key")
    return key


def split_chunks(doc):
    """A document's chunks: given ones, or its text split into paragraphs (embeddings must match)."""
    if "chunks" in doc:
        return doc["chunks"]
    paragraphs = [p.strip() for p in doc["text"].split("\n\n") if p.strip()]
    if len(paragraphs) != len(doc["embeddings"]):
        raise SystemExit(f"document {doc['id']}: {len(paragraphs)} paragraphs but "
                         f"{len(doc['embeddings'])} embeddings")
    return [{"text": p, "embedding": e} for p, e in zip(paragraphs, doc["embeddings"])]


def ingest(path):
    """Stores every chunk of the documents in a file under the key's vault; one transaction."""
    with open(path) as f:
        docs = json.load(f)["documents"]
    n = 0
    with connect() as conn, vv.transaction_login(conn, api_key()):
        for doc in docs:
            conn.execute("DELETE FROM chunks WHERE doc_id = %s", (doc["id"],))  # re-ingest replaces
            for i, chunk in enumerate(split_chunks(doc)):
                conn.execute(
                    "INSERT INTO chunks (doc_id, chunk_no, body, meta, embedding) VALUES (%s, %s, %s, %s, %s)",
                    (doc["id"], i, chunk["text"], json.dumps({"title": doc.get("title"), "source": path}),
                     vv.Vector(chunk["embedding"])))
                n += 1
    return {"ingested": n}


def ask(vector, k):
    """The k chunks nearest (cosine) to a query embedding, with their distances."""
    q = vv.Vector(json.loads(vector))
    with connect() as conn, vv.transaction_login(conn, api_key()):
        rows = conn.execute(
            "SELECT doc_id, chunk_no, body, meta, embedding <=> %s AS distance "
            "FROM chunks ORDER BY embedding <=> %s LIMIT %s", (q, q, k)).fetchall()
    return {"chunks": [{"doc_id": d, "chunk_no": c, "text": b, "title": (m or {}).get("title"),
                        "distance": round(float(dist), 6)} for d, c, b, m, dist in rows]}


def prompt(vector, question, k):
    """A retrieval-augmented prompt: the nearest chunks as context, then the question."""
    context = "\n".join(f"[{c['doc_id']}#{c['chunk_no']}] {c['text']}" for c in ask(vector, k)["chunks"])
    return {"prompt": f"Answer from the context only.\n\nContext:\n{context}\n\nQuestion: {question}"}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("ingest")
    s.add_argument("file")
    s = sub.add_parser("ask")
    s.add_argument("vector")
    s.add_argument("--k", type=int, default=3)
    s = sub.add_parser("prompt")
    s.add_argument("vector")
    s.add_argument("question")
    s.add_argument("--k", type=int, default=3)
    a = p.parse_args()
    try:
        if a.cmd == "ingest":
            out = ingest(a.file)
        elif a.cmd == "ask":
            out = ask(a.vector, a.k)
        else:
            out = prompt(a.vector, a.question, a.k)
    except psycopg.Error as e:
        # The server's SQLSTATE and message (vector_vault never puts a key into either).
        sys.stderr.write(f"error {e.sqlstate}: {e.diag.message_primary}\n")
        sys.exit(1)
    json.dump(out, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
