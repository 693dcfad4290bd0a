-- ehalfvec: pgvector's halfvec arithmetic, comparisons and aggregates (issue 11). The C functions
-- are evector's (src/type/evector_ops.cpp): each reads the kind from the value's authenticated
-- header, widens halves to floats, and seals its result as an ehalfvec again (22003 beyond half
-- range); comparisons return a boolean or -1/0/1. Names are pgvector's (halfvec_add, ...). The
-- btree operator class serves ORDER BY, DISTINCT and GROUP BY; the DDL guard still refuses a btree
-- index on the column (it would store plaintext order), and ANALYZE keeps width and null fraction
-- only (evector_typanalyze).

CREATE FUNCTION halfvec_add(ehalfvec, ehalfvec) RETURNS ehalfvec
    AS 'MODULE_PATHNAME', 'evector_add' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE FUNCTION halfvec_sub(ehalfvec, ehalfvec) RETURNS ehalfvec
    AS 'MODULE_PATHNAME', 'evector_sub' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE FUNCTION halfvec_mul(ehalfvec, ehalfvec) RETURNS ehalfvec
    AS 'MODULE_PATHNAME', 'evector_mul' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE FUNCTION halfvec_concat(ehalfvec, ehalfvec) RETURNS ehalfvec
    AS 'MODULE_PATHNAME', 'evector_concat' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE FUNCTION l2_normalize(ehalfvec) RETURNS ehalfvec
    AS 'MODULE_PATHNAME', 'evector_l2_normalize' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE FUNCTION subvector(ehalfvec, integer, integer) RETURNS ehalfvec
    AS 'MODULE_PATHNAME', 'evector_subvector' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;

CREATE OPERATOR + (LEFTARG = ehalfvec, RIGHTARG = ehalfvec, FUNCTION = halfvec_add, COMMUTATOR = +);
CREATE OPERATOR - (LEFTARG = ehalfvec, RIGHTARG = ehalfvec, FUNCTION = halfvec_sub);
CREATE OPERATOR * (LEFTARG = ehalfvec, RIGHTARG = ehalfvec, FUNCTION = halfvec_mul, COMMUTATOR = *);
CREATE OPERATOR || (LEFTARG = ehalfvec, RIGHTARG = ehalfvec, FUNCTION = halfvec_concat);

CREATE FUNCTION halfvec_lt(ehalfvec, ehalfvec) RETURNS bool
    AS 'MODULE_PATHNAME', 'evector_lt' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION halfvec_le(ehalfvec, ehalfvec) RETURNS bool
    AS 'MODULE_PATHNAME', 'evector_le' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION halfvec_eq(ehalfvec, ehalfvec) RETURNS bool
    AS 'MODULE_PATHNAME', 'evector_eq' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION halfvec_ne(ehalfvec, ehalfvec) RETURNS bool
    AS 'MODULE_PATHNAME', 'evector_ne' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION halfvec_ge(ehalfvec, ehalfvec) RETURNS bool
    AS 'MODULE_PATHNAME', 'evector_ge' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION halfvec_gt(ehalfvec, ehalfvec) RETURNS bool
    AS 'MODULE_PATHNAME', 'evector_gt' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION halfvec_cmp(ehalfvec, ehalfvec) RETURNS integer
    AS 'MODULE_PATHNAME', 'evector_cmp' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;

CREATE OPERATOR < (LEFTARG = ehalfvec, RIGHTARG = ehalfvec, FUNCTION = halfvec_lt,
    COMMUTATOR = >, NEGATOR = >=, RESTRICT = scalarltsel, JOIN = scalarltjoinsel);
CREATE OPERATOR <= (LEFTARG = ehalfvec, RIGHTARG = ehalfvec, FUNCTION = halfvec_le,
    COMMUTATOR = >=, NEGATOR = >, RESTRICT = scalarlesel, JOIN = scalarlejoinsel);
CREATE OPERATOR = (LEFTARG = ehalfvec, RIGHTARG = ehalfvec, FUNCTION = halfvec_eq,
    COMMUTATOR = =, NEGATOR = <>, RESTRICT = eqsel, JOIN = eqjoinsel);
CREATE OPERATOR <> (LEFTARG = ehalfvec, RIGHTARG = ehalfvec, FUNCTION = halfvec_ne,
    COMMUTATOR = <>, NEGATOR = =, RESTRICT = neqsel, JOIN = neqjoinsel);
CREATE OPERATOR >= (LEFTARG = ehalfvec, RIGHTARG = ehalfvec, FUNCTION = halfvec_ge,
    COMMUTATOR = <=, NEGATOR = <, RESTRICT = scalargesel, JOIN = scalargejoinsel);
CREATE OPERATOR > (LEFTARG = ehalfvec, RIGHTARG = ehalfvec, FUNCTION = halfvec_gt,
    COMMUTATOR = <, NEGATOR = <=, RESTRICT = scalargtsel, JOIN = scalargtjoinsel);

CREATE OPERATOR CLASS ehalfvec_ops DEFAULT FOR TYPE ehalfvec USING btree AS
    OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >,
    FUNCTION 1 halfvec_cmp(ehalfvec, ehalfvec);

-- avg and sum share evector's state functions (the state records the kind it summed); only the
-- transition's argument type and the final functions' result type differ.
CREATE FUNCTION halfvec_accum(internal, ehalfvec) RETURNS internal
    AS 'MODULE_PATHNAME', 'evector_accum' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION halfvec_avg(internal) RETURNS ehalfvec
    AS 'MODULE_PATHNAME', 'evector_avg' LANGUAGE C VOLATILE PARALLEL SAFE;
CREATE FUNCTION halfvec_sum(internal) RETURNS ehalfvec
    AS 'MODULE_PATHNAME', 'evector_sum' LANGUAGE C VOLATILE PARALLEL SAFE;
CREATE AGGREGATE avg(ehalfvec) (
    SFUNC = halfvec_accum, STYPE = internal, FINALFUNC = halfvec_avg,
    COMBINEFUNC = evector_combine, SERIALFUNC = evector_agg_serialize,
    DESERIALFUNC = evector_agg_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE sum(ehalfvec) (
    SFUNC = halfvec_accum, STYPE = internal, FINALFUNC = halfvec_sum,
    COMBINEFUNC = evector_combine, SERIALFUNC = evector_agg_serialize,
    DESERIALFUNC = evector_agg_deserialize, PARALLEL = SAFE);
