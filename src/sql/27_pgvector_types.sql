-- pgvector's halfvec and sparsevec into ehalfvec and esparsevec (22_pgvector.sql says how the
-- interoperation works; the C functions are in src/type/ehalfvec.cpp and esparsevec.cpp): each
-- reads the value through pgvector's binary send form and seals it under the session's vault.
CREATE FUNCTION vault.from_pghalfvec(anyelement) RETURNS ehalfvec
    AS 'MODULE_PATHNAME', 'ehalfvec_from_pgvector' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION vault.from_pghalfvec(anyelement) IS
    'seals a pgvector halfvec as an ehalfvec under the current vault';
CREATE FUNCTION vault.from_pgsparsevec(anyelement) RETURNS esparsevec
    AS 'MODULE_PATHNAME', 'esparsevec_from_pgvector' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION vault.from_pgsparsevec(anyelement) IS
    'seals a pgvector sparsevec as an esparsevec under the current vault';

-- vault.seal_in for pgvector's halfvec and sparsevec (85_migrate.sql: vault.migrate_column seals
-- each row of such a column under the vault its row names): a return type of their own, hence
-- names of their own. Here rather than in 85_migrate.sql because the update script from 0.1.0
-- runs that file's part before ehalfvec and esparsevec exist.
CREATE FUNCTION vault.seal_in_ehalfvec(value anyelement, vault text) RETURNS ehalfvec
    AS 'MODULE_PATHNAME', 'vault_seal_in_ehalfvec' LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;
CREATE FUNCTION vault.seal_in_esparsevec(value anyelement, vault text) RETURNS esparsevec
    AS 'MODULE_PATHNAME', 'vault_seal_in_esparsevec' LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION vault.seal_in_ehalfvec(anyelement, text) IS 'a pgvector halfvec sealed as an ehalfvec under the named vault (write level on it needed)';
COMMENT ON FUNCTION vault.seal_in_esparsevec(anyelement, text) IS 'a pgvector sparsevec sealed as an esparsevec under the named vault (write level on it needed)';

-- With pgvector installed before vector_vault, its casts are created now (every type exists).
SELECT vault.create_pgvector_casts();
