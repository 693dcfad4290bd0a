-- ehalfvec: pgvector's halfvec arithmetic, comparisons and aggregates (issue 11). The C entry
-- points are ehalfvec's own (ehalfvec_add, ...; bodies shared with evector's in
-- src/type/evector_ops.cpp): each requires every argument's authenticated header to be an
-- ehalfvec's (an evector envelope is refused, 22V01, as evector's functions refuse an ehalfvec
-- one), widens halves to floats, and seals its result as an ehalfvec again (22003 beyond half
-- range); comparisons return a boolean or -1/0/1. SQL names are pgvector's (halfvec_add, ...). The
-- btree operator class serves ORDER BY, DISTINCT and GROUP BY; the DDL guard still refuses a btree
-- index on the column (it would store plaintext order), and ANALYZE keeps width and null fraction
-- only (evector_typanalyze).

CREATE FUNCTION halfvec_add(ehalfvec, ehalfvec) RETURNS ehalfvec
    AS 'MODULE_PATHNAME', 'ehalfvec_add' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE FUNCTION halfvec_sub(ehalfvec, ehalfvec) RETURNS ehalfvec
    AS 'MODULE_PATHNAME', 'ehalfvec_sub' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE FUNCTION halfvec_mul(ehalfvec, ehalfvec) RETURNS ehalfvec
    AS 'MODULE_PATHNAME', 'ehalfvec_mul' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE FUNCTION halfvec_concat(ehalfvec, ehalfvec) RETURNS ehalfvec
    AS 'MODULE_PATHNAME', 'ehalfvec_concat' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE FUNCTION l2_normalize(ehalfvec) RETURNS ehalfvec
    AS 'MODULE_PATHNAME', 'ehalfvec_l2_normalize' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE FUNCTION subvector(ehalfvec, integer, integer) RETURNS ehalfvec
    AS 'MODULE_PATHNAME', 'ehalfvec_subvector' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;

CREATE OPERATOR + (LEFTARG = ehalfvec, RIGHTARG = ehalfvec, FUNCTION = halfvec_add, COMMUTATOR = +);
CREATE OPERATOR - (LEFTARG = ehalfvec, RIGHTARG = ehalfvec, FUNCTION = halfvec_sub);
CREATE OPERATOR * (LEFTARG = ehalfvec, RIGHTARG = ehalfvec, FUNCTION = halfvec_mul, COMMUTATOR = *);
CREATE OPERATOR || (LEFTARG = ehalfvec, RIGHTARG = ehalfvec, FUNCTION = halfvec_concat);

CREATE FUNCTION halfvec_lt(ehalfvec, ehalfvec) RETURNS bool
    AS 'MODULE_PATHNAME', 'ehalfvec_lt' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION halfvec_le(ehalfvec, ehalfvec) RETURNS bool
    AS 'MODULE_PATHNAME', 'ehalfvec_le' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION halfvec_eq(ehalfvec, ehalfvec) RETURNS bool
    AS 'MODULE_PATHNAME', 'ehalfvec_eq' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION halfvec_ne(ehalfvec, ehalfvec) RETURNS bool
    AS 'MODULE_PATHNAME', 'ehalfvec_ne' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION halfvec_ge(ehalfvec, ehalfvec) RETURNS bool
    AS 'MODULE_PATHNAME', 'ehalfvec_ge' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION halfvec_gt(ehalfvec, ehalfvec) RETURNS bool
    AS 'MODULE_PATHNAME', 'ehalfvec_gt' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION halfvec_cmp(ehalfvec, ehalfvec) RETURNS integer
    AS 'MODULE_PATHNAME', 'ehalfvec_cmp' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;

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

-- avg and sum share evector's combine, serial and deserial functions (the state records the kind
-- it summed, and states of two kinds never combine); the transition and final functions are
-- ehalfvec's, which refuse an evector envelope or state.
CREATE FUNCTION halfvec_accum(internal, ehalfvec) RETURNS internal
    AS 'MODULE_PATHNAME', 'ehalfvec_accum' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION halfvec_avg(internal) RETURNS ehalfvec
    AS 'MODULE_PATHNAME', 'ehalfvec_avg' LANGUAGE C VOLATILE PARALLEL SAFE;
CREATE FUNCTION halfvec_sum(internal) RETURNS ehalfvec
    AS 'MODULE_PATHNAME', 'ehalfvec_sum' LANGUAGE C VOLATILE PARALLEL SAFE;
CREATE AGGREGATE avg(ehalfvec) (
    SFUNC = halfvec_accum, STYPE = internal, FINALFUNC = halfvec_avg,
    COMBINEFUNC = evector_combine, SERIALFUNC = evector_agg_serialize,
    DESERIALFUNC = evector_agg_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE sum(ehalfvec) (
    SFUNC = halfvec_accum, STYPE = internal, FINALFUNC = halfvec_sum,
    COMBINEFUNC = evector_combine, SERIALFUNC = evector_agg_serialize,
    DESERIALFUNC = evector_agg_deserialize, PARALLEL = SAFE);
