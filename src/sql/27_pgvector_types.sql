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

-- With pgvector installed before vector_vault, its casts are created now (every type exists).
SELECT vault.create_pgvector_casts();
