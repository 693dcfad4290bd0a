-- 81_scan: what the last vault_hnsw scan of this backend did (iterative_scan, max_scan_tuples).
CREATE FUNCTION vault.last_hnsw_scan(OUT rounds int, OUT candidates bigint, OUT returned bigint,
                                     OUT dropped bigint, OUT ended text)
    AS 'MODULE_PATHNAME', 'vault_last_hnsw_scan' LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION vault.last_hnsw_scan() IS 'counters of the last vault_hnsw index scan this backend started: search rounds, candidates gathered, rows returned, rows dropped by strict_order, and why it ended (off, graph_done, max_scan_tuples, ef_ceiling, null_query, or running when the executor stopped reading first)';
