-- schema.sql — the RAG example's table (run by admin.py setup as the vaults' owner).
-- One table for every tenant: each row is sealed under its tenant's vault, vault.protect() adds
-- forced row-level security by vault, and one vault_hnsw index serves all tenants (each vault is
-- its own sub-graph, so a tenant's search never walks or returns another tenant's chunks).
CREATE TABLE IF NOT EXISTS chunks (
    id        bigserial PRIMARY KEY,
    doc_id    text NOT NULL,              -- plaintext: keep identifiers free of secrets
    chunk_no  integer NOT NULL,
    body      etext NOT NULL,             -- the chunk's text, encrypted
    meta      ejsonb,                     -- source, title, ... encrypted
    embedding evector(4) NOT NULL         -- given by the caller (your embedding model's output)
);
