-- esparsevec: an encrypted sparse vector with pgvector sparsevec's text and binary forms
-- ('{1:0.5,3:2}/5'; issue 11); src/type/esparsevec.cpp. Volatility as evector's (20_evector.sql):
-- sealing functions VOLATILE, decrypting ones STABLE, header-only IMMUTABLE. The dimensions are
-- inside the ciphertext, so the typmod coercion decrypts (STABLE). Not indexable by vault_hnsw
-- (no operator class: CREATE INDEX ... USING vault_hnsw on it fails; docs/design.md).

CREATE TYPE esparsevec;

CREATE FUNCTION esparsevec_in(cstring, oid, integer) RETURNS esparsevec
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION esparsevec_out(esparsevec) RETURNS cstring
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION esparsevec_typmod_in(cstring[]) RETURNS integer
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION esparsevec_recv(internal, oid, integer) RETURNS esparsevec
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION esparsevec_send(esparsevec) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;

-- typmod output and ANALYZE are evector's: "(n)", and null fraction and width only. EXTENDED:
-- a value may be up to 16,000 pairs (128 kB), so it must be able to move out of line.
CREATE TYPE esparsevec (
    INPUT     = esparsevec_in,
    OUTPUT    = esparsevec_out,
    TYPMOD_IN = esparsevec_typmod_in,
    TYPMOD_OUT = evector_typmod_out,
    RECEIVE   = esparsevec_recv,
    SEND      = esparsevec_send,
    ANALYZE   = evector_typanalyze,
    STORAGE   = extended
);
COMMENT ON TYPE esparsevec IS 'AES-256-GCM encrypted sparse vector; text form {1:0.5,3:2}/5 as pgvector sparsevec';

CREATE FUNCTION esparsevec(esparsevec, integer, boolean) RETURNS esparsevec
    AS 'MODULE_PATHNAME', 'esparsevec_coerce' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE CAST (esparsevec AS esparsevec) WITH FUNCTION esparsevec(esparsevec, integer, boolean) AS IMPLICIT;

-- Casts as pgvector's sparsevec has them: from arrays (assignment), evector and ehalfvec ->
-- esparsevec implicit, esparsevec -> evector and ehalfvec assignment. Every one seals its result
-- under the session's vault (decrypting its input first when that is encrypted).
CREATE FUNCTION esparsevec(real[], integer, boolean) RETURNS esparsevec
    AS 'MODULE_PATHNAME', 'esparsevec_from_array' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE CAST (real[] AS esparsevec) WITH FUNCTION esparsevec(real[], integer, boolean) AS ASSIGNMENT;
CREATE FUNCTION esparsevec(double precision[], integer, boolean) RETURNS esparsevec
    AS 'MODULE_PATHNAME', 'esparsevec_from_array' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE CAST (double precision[] AS esparsevec) WITH FUNCTION esparsevec(double precision[], integer, boolean) AS ASSIGNMENT;
CREATE FUNCTION esparsevec(integer[], integer, boolean) RETURNS esparsevec
    AS 'MODULE_PATHNAME', 'esparsevec_from_array' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE CAST (integer[] AS esparsevec) WITH FUNCTION esparsevec(integer[], integer, boolean) AS ASSIGNMENT;
CREATE FUNCTION esparsevec(numeric[], integer, boolean) RETURNS esparsevec
    AS 'MODULE_PATHNAME', 'esparsevec_from_array' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE CAST (numeric[] AS esparsevec) WITH FUNCTION esparsevec(numeric[], integer, boolean) AS ASSIGNMENT;
CREATE FUNCTION esparsevec(evector, integer, boolean) RETURNS esparsevec
    AS 'MODULE_PATHNAME', 'esparsevec_from_evector' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE CAST (evector AS esparsevec) WITH FUNCTION esparsevec(evector, integer, boolean) AS IMPLICIT;
CREATE FUNCTION evector(esparsevec, integer, boolean) RETURNS evector
    AS 'MODULE_PATHNAME', 'evector_from_esparsevec' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE CAST (esparsevec AS evector) WITH FUNCTION evector(esparsevec, integer, boolean) AS ASSIGNMENT;
CREATE FUNCTION esparsevec(ehalfvec, integer, boolean) RETURNS esparsevec
    AS 'MODULE_PATHNAME', 'esparsevec_from_ehalfvec' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE CAST (ehalfvec AS esparsevec) WITH FUNCTION esparsevec(ehalfvec, integer, boolean) AS IMPLICIT;
CREATE FUNCTION ehalfvec(esparsevec, integer, boolean) RETURNS ehalfvec
    AS 'MODULE_PATHNAME', 'ehalfvec_from_esparsevec' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE CAST (esparsevec AS ehalfvec) WITH FUNCTION ehalfvec(esparsevec, integer, boolean) AS ASSIGNMENT;

CREATE FUNCTION l2_distance(esparsevec, esparsevec) RETURNS float8
    AS 'MODULE_PATHNAME', 'esparsevec_l2_distance' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION inner_product(esparsevec, esparsevec) RETURNS float8
    AS 'MODULE_PATHNAME', 'esparsevec_inner_product' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION vector_negative_inner_product(esparsevec, esparsevec) RETURNS float8
    AS 'MODULE_PATHNAME', 'esparsevec_negative_inner_product' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION cosine_distance(esparsevec, esparsevec) RETURNS float8
    AS 'MODULE_PATHNAME', 'esparsevec_cosine_distance' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION l1_distance(esparsevec, esparsevec) RETURNS float8
    AS 'MODULE_PATHNAME', 'esparsevec_l1_distance' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION l2_norm(esparsevec) RETURNS float8
    AS 'MODULE_PATHNAME', 'esparsevec_norm' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION l2_normalize(esparsevec) RETURNS esparsevec
    AS 'MODULE_PATHNAME', 'esparsevec_l2_normalize' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;

CREATE OPERATOR <-> (LEFTARG = esparsevec, RIGHTARG = esparsevec, FUNCTION = l2_distance, COMMUTATOR = '<->');
CREATE OPERATOR <#> (LEFTARG = esparsevec, RIGHTARG = esparsevec, FUNCTION = vector_negative_inner_product, COMMUTATOR = '<#>');
CREATE OPERATOR <=> (LEFTARG = esparsevec, RIGHTARG = esparsevec, FUNCTION = cosine_distance, COMMUTATOR = '<=>');
CREATE OPERATOR <+> (LEFTARG = esparsevec, RIGHTARG = esparsevec, FUNCTION = l1_distance, COMMUTATOR = '<+>');

-- Key rotation, row-level isolation and re-sealing see esparsevec like the other encrypted
-- types (they read the kind from the authenticated header).
CREATE FUNCTION vault.key_version_of(esparsevec) RETURNS integer
    AS 'MODULE_PATHNAME', 'vault_key_version_of' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vault.reseal(esparsevec) RETURNS esparsevec
    AS 'MODULE_PATHNAME', 'vault_reseal' LANGUAGE C STRICT VOLATILE;
CREATE FUNCTION vault.vault_of(esparsevec) RETURNS bigint
    AS 'MODULE_PATHNAME', 'vault_vault_of' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
