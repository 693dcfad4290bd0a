-- evector: an encrypted float4 vector with pgvector's text and binary forms.
-- Functions that seal draw a fresh random nonce per call and depend on vector_vault.vault: the
-- casts into encrypted types are VOLATILE; type input/receive functions are STABLE, the most
-- Postgres allows for them. Functions that decrypt are STABLE, never IMMUTABLE: their result
-- depends on the caller's rights, and an IMMUTABLE decrypting function could be used in a
-- generated column or an expression index, where it would store plaintext computed with the
-- rights of whoever inserted the row (test sql/40_attack_7_holes.sql). Header-only
-- functions (vector_dims, vault.vault_of, vault.key_version_of) stay IMMUTABLE.

CREATE TYPE evector;

CREATE FUNCTION evector_in(cstring, oid, integer) RETURNS evector
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION evector_out(evector) RETURNS cstring
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION evector_typmod_in(cstring[]) RETURNS integer
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION evector_typmod_out(integer) RETURNS cstring
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION evector_recv(internal, oid, integer) RETURNS evector
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION evector_send(evector) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
-- ANALYZE keeps null fraction and width only: the standard statistics would decrypt and order
-- sample values (src/type/evector_ops.cpp).
CREATE FUNCTION evector_typanalyze(internal) RETURNS boolean
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;

-- STORAGE main: keep vectors in the heap row (a 784-dim evector is 3.2 kB, past the 2 kB TOAST
-- threshold), so fetching a search result's row does not also walk the TOAST index; measured
-- ~16% more queries per second than external. Vectors too large for a page still move out of
-- line. (Compression is attempted and abandoned after the first kilobyte: ciphertext is random.)
CREATE TYPE evector (
    INPUT     = evector_in,
    OUTPUT    = evector_out,
    TYPMOD_IN = evector_typmod_in,
    TYPMOD_OUT = evector_typmod_out,
    RECEIVE   = evector_recv,
    SEND      = evector_send,
    ANALYZE   = evector_typanalyze,
    STORAGE   = main
);
COMMENT ON TYPE evector IS 'AES-256-GCM encrypted float4 vector; text form [1,2,3] as pgvector';

CREATE FUNCTION evector(evector, integer, boolean) RETURNS evector
    AS 'MODULE_PATHNAME', 'evector_coerce' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE CAST (evector AS evector) WITH FUNCTION evector(evector, integer, boolean) AS IMPLICIT;

-- Casts from arrays, as pgvector has them (assignment casts, so INSERT of an array works): each
-- seals under the session's vault. psycopg2 sends Python lists as numeric[], node-pg as text.
CREATE FUNCTION evector(real[], integer, boolean) RETURNS evector
    AS 'MODULE_PATHNAME', 'evector_from_array' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE CAST (real[] AS evector) WITH FUNCTION evector(real[], integer, boolean) AS ASSIGNMENT;
CREATE FUNCTION evector(double precision[], integer, boolean) RETURNS evector
    AS 'MODULE_PATHNAME', 'evector_from_array' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE CAST (double precision[] AS evector) WITH FUNCTION evector(double precision[], integer, boolean) AS ASSIGNMENT;
CREATE FUNCTION evector(integer[], integer, boolean) RETURNS evector
    AS 'MODULE_PATHNAME', 'evector_from_array' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE CAST (integer[] AS evector) WITH FUNCTION evector(integer[], integer, boolean) AS ASSIGNMENT;
CREATE FUNCTION evector(numeric[], integer, boolean) RETURNS evector
    AS 'MODULE_PATHNAME', 'evector_from_array' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE CAST (numeric[] AS evector) WITH FUNCTION evector(numeric[], integer, boolean) AS ASSIGNMENT;

CREATE FUNCTION evector_to_real_array(evector) RETURNS real[]
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE CAST (evector AS real[]) WITH FUNCTION evector_to_real_array(evector) AS ASSIGNMENT;

CREATE FUNCTION l2_distance(evector, evector) RETURNS float8
    AS 'MODULE_PATHNAME', 'evector_l2_distance' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION inner_product(evector, evector) RETURNS float8
    AS 'MODULE_PATHNAME', 'evector_inner_product' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION vector_negative_inner_product(evector, evector) RETURNS float8
    AS 'MODULE_PATHNAME', 'evector_negative_inner_product' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION cosine_distance(evector, evector) RETURNS float8
    AS 'MODULE_PATHNAME', 'evector_cosine_distance' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION l1_distance(evector, evector) RETURNS float8
    AS 'MODULE_PATHNAME', 'evector_l1_distance' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION vector_dims(evector) RETURNS integer
    AS 'MODULE_PATHNAME', 'evector_dims' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_norm(evector) RETURNS float8
    AS 'MODULE_PATHNAME', 'evector_norm' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;

-- COST 50: every call decrypts (TOAST fetch + AES-GCM); the planner weighs that against the index.
CREATE OPERATOR <-> (LEFTARG = evector, RIGHTARG = evector, FUNCTION = l2_distance, COMMUTATOR = '<->');
CREATE OPERATOR <#> (LEFTARG = evector, RIGHTARG = evector, FUNCTION = vector_negative_inner_product, COMMUTATOR = '<#>');
CREATE OPERATOR <=> (LEFTARG = evector, RIGHTARG = evector, FUNCTION = cosine_distance, COMMUTATOR = '<=>');
CREATE OPERATOR <+> (LEFTARG = evector, RIGHTARG = evector, FUNCTION = l1_distance, COMMUTATOR = '<+>');
