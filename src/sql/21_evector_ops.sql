-- pgvector 0.8's arithmetic, comparisons and aggregates on evector (issue 11); the rules are in
-- src/type/evector_ops.cpp. Results computed from encrypted inputs are sealed under the session's
-- vault (VOLATILE: a fresh nonce per call) or are booleans / integers from decrypted values
-- (STABLE: they need the read right, and an IMMUTABLE decryption could be stored).
CREATE FUNCTION vector_add(evector, evector) RETURNS evector
    AS 'MODULE_PATHNAME', 'evector_add' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_sub(evector, evector) RETURNS evector
    AS 'MODULE_PATHNAME', 'evector_sub' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_mul(evector, evector) RETURNS evector
    AS 'MODULE_PATHNAME', 'evector_mul' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_concat(evector, evector) RETURNS evector
    AS 'MODULE_PATHNAME', 'evector_concat' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE FUNCTION l2_normalize(evector) RETURNS evector
    AS 'MODULE_PATHNAME', 'evector_l2_normalize' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE FUNCTION subvector(evector, integer, integer) RETURNS evector
    AS 'MODULE_PATHNAME', 'evector_subvector' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;

CREATE OPERATOR + (LEFTARG = evector, RIGHTARG = evector, FUNCTION = vector_add, COMMUTATOR = +);
CREATE OPERATOR - (LEFTARG = evector, RIGHTARG = evector, FUNCTION = vector_sub);
CREATE OPERATOR * (LEFTARG = evector, RIGHTARG = evector, FUNCTION = vector_mul, COMMUTATOR = *);
CREATE OPERATOR || (LEFTARG = evector, RIGHTARG = evector, FUNCTION = vector_concat);

-- Comparisons in pgvector's order (element by element, then fewer dimensions first), on the
-- decrypted values: two seals of one vector are equal. Each call decrypts both sides.
CREATE FUNCTION vector_lt(evector, evector) RETURNS bool
    AS 'MODULE_PATHNAME', 'evector_lt' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION vector_le(evector, evector) RETURNS bool
    AS 'MODULE_PATHNAME', 'evector_le' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION vector_eq(evector, evector) RETURNS bool
    AS 'MODULE_PATHNAME', 'evector_eq' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION vector_ne(evector, evector) RETURNS bool
    AS 'MODULE_PATHNAME', 'evector_ne' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION vector_ge(evector, evector) RETURNS bool
    AS 'MODULE_PATHNAME', 'evector_ge' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION vector_gt(evector, evector) RETURNS bool
    AS 'MODULE_PATHNAME', 'evector_gt' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION vector_cmp(evector, evector) RETURNS integer
    AS 'MODULE_PATHNAME', 'evector_cmp' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;

CREATE OPERATOR < (LEFTARG = evector, RIGHTARG = evector, FUNCTION = vector_lt,
    COMMUTATOR = >, NEGATOR = >=, RESTRICT = scalarltsel, JOIN = scalarltjoinsel);
CREATE OPERATOR <= (LEFTARG = evector, RIGHTARG = evector, FUNCTION = vector_le,
    COMMUTATOR = >=, NEGATOR = >, RESTRICT = scalarlesel, JOIN = scalarlejoinsel);
CREATE OPERATOR = (LEFTARG = evector, RIGHTARG = evector, FUNCTION = vector_eq,
    COMMUTATOR = =, NEGATOR = <>, RESTRICT = eqsel, JOIN = eqjoinsel);
CREATE OPERATOR <> (LEFTARG = evector, RIGHTARG = evector, FUNCTION = vector_ne,
    COMMUTATOR = <>, NEGATOR = =, RESTRICT = neqsel, JOIN = neqjoinsel);
CREATE OPERATOR >= (LEFTARG = evector, RIGHTARG = evector, FUNCTION = vector_ge,
    COMMUTATOR = <=, NEGATOR = <, RESTRICT = scalargesel, JOIN = scalargejoinsel);
CREATE OPERATOR > (LEFTARG = evector, RIGHTARG = evector, FUNCTION = vector_gt,
    COMMUTATOR = <, NEGATOR = <=, RESTRICT = scalargtsel, JOIN = scalargtjoinsel);

-- The default btree opclass gives ORDER BY, DISTINCT, GROUP BY and merge joins their order. A
-- btree *index* on an encrypted column is refused by the DDL guard (its page order would reveal
-- the plaintexts' order; src/type/ddl_guard.cpp).
CREATE OPERATOR CLASS evector_ops DEFAULT FOR TYPE evector USING btree AS
    OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >,
    FUNCTION 1 vector_cmp(evector, evector);

-- avg and sum: the state is plaintext in memory only; its serial form for parallel workers is
-- sealed under the session's vault (it can be spilled to temporary files above a Gather).
CREATE FUNCTION evector_accum(internal, evector) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION evector_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION evector_agg_serialize(internal) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE FUNCTION evector_agg_deserialize(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION evector_avg(internal) RETURNS evector
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE PARALLEL SAFE;
CREATE FUNCTION evector_sum(internal) RETURNS evector
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE PARALLEL SAFE;
CREATE AGGREGATE avg(evector) (
    SFUNC = evector_accum, STYPE = internal, FINALFUNC = evector_avg,
    COMBINEFUNC = evector_combine, SERIALFUNC = evector_agg_serialize,
    DESERIALFUNC = evector_agg_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE sum(evector) (
    SFUNC = evector_accum, STYPE = internal, FINALFUNC = evector_sum,
    COMBINEFUNC = evector_combine, SERIALFUNC = evector_agg_serialize,
    DESERIALFUNC = evector_agg_deserialize, PARALLEL = SAFE);

-- binary_quantize(evector) exists only to refuse with a reason: pgvector's returns a plaintext
-- bit string, which for an encrypted vector is its sign pattern in the clear.
CREATE FUNCTION binary_quantize(evector) RETURNS bit
    AS 'MODULE_PATHNAME', 'evector_binary_quantize' LANGUAGE C STABLE STRICT PARALLEL SAFE;
