-- ehalfvec: an encrypted half-precision vector with pgvector halfvec's text and binary forms
-- (issue 11): half evector's heap and TOAST size; src/type/ehalfvec.cpp. Volatility as evector's
-- (20_evector.sql): sealing functions VOLATILE, decrypting ones STABLE, header-only IMMUTABLE.

CREATE TYPE ehalfvec;

CREATE FUNCTION ehalfvec_in(cstring, oid, integer) RETURNS ehalfvec
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ehalfvec_out(ehalfvec) RETURNS cstring
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ehalfvec_typmod_in(cstring[]) RETURNS integer
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ehalfvec_recv(internal, oid, integer) RETURNS ehalfvec
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ehalfvec_send(ehalfvec) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;

-- typmod output and ANALYZE are evector's: "(n)", and null fraction and width only.
CREATE TYPE ehalfvec (
    INPUT     = ehalfvec_in,
    OUTPUT    = ehalfvec_out,
    TYPMOD_IN = ehalfvec_typmod_in,
    TYPMOD_OUT = evector_typmod_out,
    RECEIVE   = ehalfvec_recv,
    SEND      = ehalfvec_send,
    ANALYZE   = evector_typanalyze,
    STORAGE   = main
);
COMMENT ON TYPE ehalfvec IS 'AES-256-GCM encrypted half-precision vector; text form [1,2,3] as pgvector halfvec';

CREATE FUNCTION ehalfvec(ehalfvec, integer, boolean) RETURNS ehalfvec
    AS 'MODULE_PATHNAME', 'ehalfvec_coerce' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE CAST (ehalfvec AS ehalfvec) WITH FUNCTION ehalfvec(ehalfvec, integer, boolean) AS IMPLICIT;

-- Casts as pgvector's halfvec has them: from arrays (assignment), evector -> ehalfvec implicit
-- and ehalfvec -> evector assignment (as vector -> halfvec and halfvec -> vector), to real[].
-- The evector <-> ehalfvec casts decrypt and seal again under the session's vault.
CREATE FUNCTION ehalfvec(real[], integer, boolean) RETURNS ehalfvec
    AS 'MODULE_PATHNAME', 'ehalfvec_from_array' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE CAST (real[] AS ehalfvec) WITH FUNCTION ehalfvec(real[], integer, boolean) AS ASSIGNMENT;
CREATE FUNCTION ehalfvec(double precision[], integer, boolean) RETURNS ehalfvec
    AS 'MODULE_PATHNAME', 'ehalfvec_from_array' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE CAST (double precision[] AS ehalfvec) WITH FUNCTION ehalfvec(double precision[], integer, boolean) AS ASSIGNMENT;
CREATE FUNCTION ehalfvec(integer[], integer, boolean) RETURNS ehalfvec
    AS 'MODULE_PATHNAME', 'ehalfvec_from_array' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE CAST (integer[] AS ehalfvec) WITH FUNCTION ehalfvec(integer[], integer, boolean) AS ASSIGNMENT;
CREATE FUNCTION ehalfvec(numeric[], integer, boolean) RETURNS ehalfvec
    AS 'MODULE_PATHNAME', 'ehalfvec_from_array' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE CAST (numeric[] AS ehalfvec) WITH FUNCTION ehalfvec(numeric[], integer, boolean) AS ASSIGNMENT;
CREATE FUNCTION ehalfvec(evector, integer, boolean) RETURNS ehalfvec
    AS 'MODULE_PATHNAME', 'ehalfvec_from_evector' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE CAST (evector AS ehalfvec) WITH FUNCTION ehalfvec(evector, integer, boolean) AS IMPLICIT;
CREATE FUNCTION evector(ehalfvec, integer, boolean) RETURNS evector
    AS 'MODULE_PATHNAME', 'evector_from_ehalfvec' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE CAST (ehalfvec AS evector) WITH FUNCTION evector(ehalfvec, integer, boolean) AS ASSIGNMENT;
CREATE FUNCTION ehalfvec_to_real_array(ehalfvec) RETURNS real[]
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE CAST (ehalfvec AS real[]) WITH FUNCTION ehalfvec_to_real_array(ehalfvec) AS ASSIGNMENT;

CREATE FUNCTION l2_distance(ehalfvec, ehalfvec) RETURNS float8
    AS 'MODULE_PATHNAME', 'ehalfvec_l2_distance' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION inner_product(ehalfvec, ehalfvec) RETURNS float8
    AS 'MODULE_PATHNAME', 'ehalfvec_inner_product' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION vector_negative_inner_product(ehalfvec, ehalfvec) RETURNS float8
    AS 'MODULE_PATHNAME', 'ehalfvec_negative_inner_product' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION cosine_distance(ehalfvec, ehalfvec) RETURNS float8
    AS 'MODULE_PATHNAME', 'ehalfvec_cosine_distance' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION l1_distance(ehalfvec, ehalfvec) RETURNS float8
    AS 'MODULE_PATHNAME', 'ehalfvec_l1_distance' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION vector_dims(ehalfvec) RETURNS integer
    AS 'MODULE_PATHNAME', 'ehalfvec_dims' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION l2_norm(ehalfvec) RETURNS float8
    AS 'MODULE_PATHNAME', 'ehalfvec_norm' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;

CREATE OPERATOR <-> (LEFTARG = ehalfvec, RIGHTARG = ehalfvec, FUNCTION = l2_distance, COMMUTATOR = '<->');
CREATE OPERATOR <#> (LEFTARG = ehalfvec, RIGHTARG = ehalfvec, FUNCTION = vector_negative_inner_product, COMMUTATOR = '<#>');
CREATE OPERATOR <=> (LEFTARG = ehalfvec, RIGHTARG = ehalfvec, FUNCTION = cosine_distance, COMMUTATOR = '<=>');
CREATE OPERATOR <+> (LEFTARG = ehalfvec, RIGHTARG = ehalfvec, FUNCTION = l1_distance, COMMUTATOR = '<+>');

-- Key rotation, row-level isolation and re-sealing see ehalfvec like the other encrypted types
-- (they read the kind from the authenticated header).
CREATE FUNCTION vault.key_version_of(ehalfvec) RETURNS integer
    AS 'MODULE_PATHNAME', 'vault_key_version_of' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vault.reseal(ehalfvec) RETURNS ehalfvec
    AS 'MODULE_PATHNAME', 'vault_reseal' LANGUAGE C STRICT VOLATILE;
CREATE FUNCTION vault.vault_of(ehalfvec) RETURNS bigint
    AS 'MODULE_PATHNAME', 'vault_vault_of' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
