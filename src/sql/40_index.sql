-- vault_hnsw: an HNSW index whose pages hold only ciphertext, searched per vault.

CREATE FUNCTION vault_hnsw_handler(internal) RETURNS index_am_handler
    AS 'MODULE_PATHNAME' LANGUAGE C;
CREATE ACCESS METHOD vault_hnsw TYPE INDEX HANDLER vault_hnsw_handler;
COMMENT ON ACCESS METHOD vault_hnsw IS 'encrypted HNSW index for evector, searched per vault';

-- Support function 1 of each opclass names its metric.
CREATE FUNCTION vault_hnsw_metric_l2(internal) RETURNS integer
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vault_hnsw_metric_ip(internal) RETURNS integer
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vault_hnsw_metric_cosine(internal) RETURNS integer
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vault_hnsw_metric_l1(internal) RETURNS integer
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OPERATOR CLASS evector_l2_ops DEFAULT FOR TYPE evector USING vault_hnsw AS
    OPERATOR 1 <-> (evector, evector) FOR ORDER BY float_ops,
    FUNCTION 1 vault_hnsw_metric_l2(internal);
CREATE OPERATOR CLASS evector_ip_ops FOR TYPE evector USING vault_hnsw AS
    OPERATOR 1 <#> (evector, evector) FOR ORDER BY float_ops,
    FUNCTION 1 vault_hnsw_metric_ip(internal);
CREATE OPERATOR CLASS evector_cosine_ops FOR TYPE evector USING vault_hnsw AS
    OPERATOR 1 <=> (evector, evector) FOR ORDER BY float_ops,
    FUNCTION 1 vault_hnsw_metric_cosine(internal);
CREATE OPERATOR CLASS evector_l1_ops FOR TYPE evector USING vault_hnsw AS
    OPERATOR 1 <+> (evector, evector) FOR ORDER BY float_ops,
    FUNCTION 1 vault_hnsw_metric_l1(internal);

-- ehalfvec (issue 11): an index on ehalfvec seals halves in its vector stream and caches halves
-- (the metapage's element width, set by CREATE INDEX from the opclass's type; cosine indexes keep
-- float32, their unit vectors are not halves); otherwise it treats the value as an evector; the
-- same support functions name the metrics.
CREATE OPERATOR CLASS ehalfvec_l2_ops DEFAULT FOR TYPE ehalfvec USING vault_hnsw AS
    OPERATOR 1 <-> (ehalfvec, ehalfvec) FOR ORDER BY float_ops,
    FUNCTION 1 vault_hnsw_metric_l2(internal);
CREATE OPERATOR CLASS ehalfvec_ip_ops FOR TYPE ehalfvec USING vault_hnsw AS
    OPERATOR 1 <#> (ehalfvec, ehalfvec) FOR ORDER BY float_ops,
    FUNCTION 1 vault_hnsw_metric_ip(internal);
CREATE OPERATOR CLASS ehalfvec_cosine_ops FOR TYPE ehalfvec USING vault_hnsw AS
    OPERATOR 1 <=> (ehalfvec, ehalfvec) FOR ORDER BY float_ops,
    FUNCTION 1 vault_hnsw_metric_cosine(internal);
CREATE OPERATOR CLASS ehalfvec_l1_ops FOR TYPE ehalfvec USING vault_hnsw AS
    OPERATOR 1 <+> (ehalfvec, ehalfvec) FOR ORDER BY float_ops,
    FUNCTION 1 vault_hnsw_metric_l1(internal);

CREATE FUNCTION vault.hnsw_verify(index regclass)
    RETURNS TABLE ("check" text, ok boolean, detail text)
    AS 'MODULE_PATHNAME', 'vault_hnsw_verify' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION vault.hnsw_verify(regclass) IS 'checks a vault_hnsw index: structure, links, reachability, decryption';
REVOKE EXECUTE ON FUNCTION vault.hnsw_verify(regclass) FROM PUBLIC;

CREATE FUNCTION vault.index_cache_stats()
    RETURNS TABLE (index regclass, representation text, resident_bytes bigint, vectors bigint,
                   vaults integer, resident_vaults integer, loads bigint, hits bigint,
                   evictions bigint)
    AS 'MODULE_PATHNAME', 'vault_index_cache_stats' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vault.index_cache_stats() IS 'the shared vault_hnsw cache, this database: what each index holds and how it was used since the server started';
REVOKE ALL ON FUNCTION vault.index_cache_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vault.index_cache_stats() TO pg_monitor;

CREATE VIEW vault.index_cache AS SELECT * FROM vault.index_cache_stats();
COMMENT ON VIEW vault.index_cache IS 'per vault_hnsw index: representation in the shared cache (float32, half for an index on ehalfvec, sq8, sq4, pages, none once evicted), resident bytes, elements, vaults, vaults whose sub-graph is loaded, full loads, acquisitions served, evictions';
REVOKE ALL ON vault.index_cache FROM PUBLIC;
GRANT SELECT ON vault.index_cache TO pg_monitor;

CREATE FUNCTION vault.prewarm(index regclass) RETURNS text
    AS 'MODULE_PATHNAME', 'vault_prewarm' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION vault.prewarm(regclass) IS 'loads a vault_hnsw index into the shared cache now; returns the representation it got (needs SELECT on the table)';
REVOKE EXECUTE ON FUNCTION vault.prewarm(regclass) FROM PUBLIC;
