-- esparsevec: pgvector's sparsevec comparisons (issue 11). Booleans or -1/0/1 from the decrypted
-- values in pgvector's order (the dense order: the first min(dims) elements one by one, absent
-- elements being 0, then fewer dimensions first; core/sparse_format.h CompareSparse). The btree
-- operator class serves ORDER BY, DISTINCT and GROUP BY; the DDL guard still refuses a btree index
-- on the column, and ANALYZE keeps width and null fraction only (evector_typanalyze).

CREATE FUNCTION sparsevec_lt(esparsevec, esparsevec) RETURNS bool
    AS 'MODULE_PATHNAME', 'esparsevec_lt' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION sparsevec_le(esparsevec, esparsevec) RETURNS bool
    AS 'MODULE_PATHNAME', 'esparsevec_le' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION sparsevec_eq(esparsevec, esparsevec) RETURNS bool
    AS 'MODULE_PATHNAME', 'esparsevec_eq' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION sparsevec_ne(esparsevec, esparsevec) RETURNS bool
    AS 'MODULE_PATHNAME', 'esparsevec_ne' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION sparsevec_ge(esparsevec, esparsevec) RETURNS bool
    AS 'MODULE_PATHNAME', 'esparsevec_ge' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION sparsevec_gt(esparsevec, esparsevec) RETURNS bool
    AS 'MODULE_PATHNAME', 'esparsevec_gt' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION sparsevec_cmp(esparsevec, esparsevec) RETURNS integer
    AS 'MODULE_PATHNAME', 'esparsevec_cmp' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;

CREATE OPERATOR < (LEFTARG = esparsevec, RIGHTARG = esparsevec, FUNCTION = sparsevec_lt,
    COMMUTATOR = >, NEGATOR = >=, RESTRICT = scalarltsel, JOIN = scalarltjoinsel);
CREATE OPERATOR <= (LEFTARG = esparsevec, RIGHTARG = esparsevec, FUNCTION = sparsevec_le,
    COMMUTATOR = >=, NEGATOR = >, RESTRICT = scalarlesel, JOIN = scalarlejoinsel);
CREATE OPERATOR = (LEFTARG = esparsevec, RIGHTARG = esparsevec, FUNCTION = sparsevec_eq,
    COMMUTATOR = =, NEGATOR = <>, RESTRICT = eqsel, JOIN = eqjoinsel);
CREATE OPERATOR <> (LEFTARG = esparsevec, RIGHTARG = esparsevec, FUNCTION = sparsevec_ne,
    COMMUTATOR = <>, NEGATOR = =, RESTRICT = neqsel, JOIN = neqjoinsel);
CREATE OPERATOR >= (LEFTARG = esparsevec, RIGHTARG = esparsevec, FUNCTION = sparsevec_ge,
    COMMUTATOR = <=, NEGATOR = <, RESTRICT = scalargesel, JOIN = scalargejoinsel);
CREATE OPERATOR > (LEFTARG = esparsevec, RIGHTARG = esparsevec, FUNCTION = sparsevec_gt,
    COMMUTATOR = <, NEGATOR = <=, RESTRICT = scalargtsel, JOIN = scalargtjoinsel);

CREATE OPERATOR CLASS esparsevec_ops DEFAULT FOR TYPE esparsevec USING btree AS
    OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >,
    FUNCTION 1 sparsevec_cmp(esparsevec, esparsevec);
