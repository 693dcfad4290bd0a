# map.sed — pgvector 0.8.6 names -> vector_vault names (sed -E), applied by test/parity/run.sh to
# pgvector's test/sql/*.sql and to its test/expected/*.out alike, so that a result line matches
# only when vector_vault prints what pgvector prints under the mapped names. Whole words only.
# One rule per line; docs/parity.md explains each and what stays unmapped (ivfflat, bit).

# operator classes first (they contain the type names)
s/\b(vector|halfvec|sparsevec)_(l2|ip|cosine|l1)_ops\b/e\1_\2_ops/g
# types, and the words "vector", "halfvec", "sparsevec" in messages and column headers
s/\bvector\b/evector/g
s/\bhalfvec\b/ehalfvec/g
s/\bsparsevec\b/esparsevec/g
# the access method
s/\bUSING hnsw\b/USING vault_hnsw/g
s/\bfor hnsw index\b/for vault_hnsw index/g
# settings: hnsw.ef_search -> vector_vault.ef_search (iterative_scan, max_scan_tuples, ...)
s/\bhnsw\.([a-z_]+)\b/vector_vault.\1/g
