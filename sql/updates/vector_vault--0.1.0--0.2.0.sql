-- vector_vault 0.1.0 -> 0.2.0 update script (ALTER EXTENSION vector_vault UPDATE TO '0.2.0').
-- Reviewed by hand: it brings a 0.1.0 install (sql/released/vector_vault--0.1.0.sql, frozen at
-- commit 85f4877) to exactly what src/sql/*.sql installs for 0.2.0. test/t/095_upgrade.pl
-- compares the catalog of (0.1.0 + this script) with a fresh 0.2.0 install object by object, so
-- a change to src/sql that is not repeated here fails that test.
\echo Use "ALTER EXTENSION vector_vault UPDATE TO '0.2.0'" to load this file. \quit

-- src/sql/20_evector.sql: ANALYZE keeps null fraction and width only.
CREATE FUNCTION evector_typanalyze(internal) RETURNS boolean
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
ALTER TYPE evector SET (ANALYZE = evector_typanalyze);

-- src/sql/20_evector.sql: the real[] cast's C function was renamed (the library still exports
-- the 0.1.0 name evector_from_real_array as an alias, so the 0.1.0 script installs); casts from
-- double precision[], integer[] and numeric[].
CREATE OR REPLACE FUNCTION evector(real[], integer, boolean) RETURNS evector
    AS 'MODULE_PATHNAME', 'evector_from_array' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE FUNCTION evector(double precision[], integer, boolean) RETURNS evector
    AS 'MODULE_PATHNAME', 'evector_from_array' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE CAST (double precision[] AS evector) WITH FUNCTION evector(double precision[], integer, boolean) AS ASSIGNMENT;
CREATE FUNCTION evector(integer[], integer, boolean) RETURNS evector
    AS 'MODULE_PATHNAME', 'evector_from_array' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE CAST (integer[] AS evector) WITH FUNCTION evector(integer[], integer, boolean) AS ASSIGNMENT;
CREATE FUNCTION evector(numeric[], integer, boolean) RETURNS evector
    AS 'MODULE_PATHNAME', 'evector_from_array' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE CAST (numeric[] AS evector) WITH FUNCTION evector(numeric[], integer, boolean) AS ASSIGNMENT;

-- src/sql/21_evector_ops.sql (new in 0.2.0), unchanged:
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

-- src/sql/22_pgvector.sql (new in 0.2.0), unchanged:
-- pgvector interoperation, without depending on pgvector: vector_vault installs whether or not
-- pgvector is there, and finds pgvector's type `vector` at run time (by its name and its send
-- function vector_send, whose binary form is evector's).
--   vault.from_pgvector(v)          seals a pgvector value under the session's vault (binary, no
--                                   text round trip); works in any order of installation.
--   casts vector -> evector         assignment (INSERT INTO items SELECT ... FROM pgvector_table),
--                                   through vault.from_pgvector; evector -> vector explicit only
--                                   (WITH INOUT: decrypts through evector's output, with the usual
--                                   read check), because it writes plaintext out of the vault.
-- The casts exist only while both types do, so they are created when possible: at the end of this
-- script when pgvector is already installed, by the event trigger below when pgvector is
-- installed later (by a superuser; anyone else gets a NOTICE), or by
-- vault.create_pgvector_casts(). They are not members of either extension: `DROP EXTENSION
-- vector CASCADE` drops just the casts (a member of vector_vault would take vector_vault and every
-- evector column with it), and `DROP EXTENSION vector_vault` needs CASCADE to drop them. pg_dump
-- dumps them as casts of their own, restored after both extensions.
CREATE FUNCTION vault.from_pgvector(anyelement) RETURNS evector
    AS 'MODULE_PATHNAME', 'evector_from_pgvector' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION vault.from_pgvector(anyelement) IS
    'seals a pgvector vector as an evector under the current vault';

-- Creates the casts between pgvector's vector and evector when pgvector is installed; says what
-- it did. Superuser (CREATE CAST needs ownership of a type); idempotent.
CREATE FUNCTION vault.create_pgvector_casts() RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    vtype regtype;
    etype regtype := '@extschema@.evector'::regtype;
    done text := '';
    castoid oid;
BEGIN
    SELECT t.oid INTO vtype
      FROM pg_catalog.pg_type t JOIN pg_catalog.pg_proc p ON p.oid = t.typsend
     WHERE t.typname = 'vector' AND p.proname = 'vector_send'
     ORDER BY t.oid LIMIT 1;
    IF vtype IS NULL THEN
        RETURN 'pgvector is not installed in this database: no casts created';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_cast WHERE castsource = vtype AND casttarget = etype) THEN
        EXECUTE pg_catalog.format(
            'CREATE CAST (%s AS %s) WITH FUNCTION vault.from_pgvector(anyelement) AS ASSIGNMENT',
            vtype, etype);
        done := done || pg_catalog.format('created cast %s -> %s (assignment); ', vtype, etype);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_cast WHERE castsource = etype AND casttarget = vtype) THEN
        EXECUTE pg_catalog.format('CREATE CAST (%s AS %s) WITH INOUT', etype, vtype);
        done := done || pg_catalog.format('created cast %s -> %s (explicit); ', etype, vtype);
    END IF;
    -- Never members of vector_vault: a member cast depending on pgvector's type would make
    -- DROP EXTENSION vector CASCADE drop vector_vault itself, with every evector column.
    -- (Created inside this extension's script they would be members; release them.)
    FOR castoid IN
        SELECT c.oid FROM pg_catalog.pg_cast c
         WHERE (c.castsource, c.casttarget) IN ((vtype, etype), (etype, vtype))
           AND EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                        WHERE d.classid = 'pg_catalog.pg_cast'::pg_catalog.regclass
                          AND d.objid = c.oid AND d.deptype = 'e')
    LOOP
        EXECUTE pg_catalog.format('ALTER EXTENSION vector_vault DROP CAST (%s AS %s)',
            (SELECT castsource::regtype FROM pg_catalog.pg_cast WHERE oid = castoid),
            (SELECT casttarget::regtype FROM pg_catalog.pg_cast WHERE oid = castoid));
    END LOOP;
    RETURN CASE WHEN done = '' THEN 'the casts exist already' ELSE pg_catalog.rtrim(done, '; ') END;
END
$$;
REVOKE EXECUTE ON FUNCTION vault.create_pgvector_casts() FROM PUBLIC;

-- At the end of CREATE EXTENSION vector (pgvector installed after vector_vault): create the
-- casts; a caller who may not (not a superuser) gets a NOTICE instead of a failed CREATE
-- EXTENSION.
CREATE FUNCTION vault._pgvector_casts_trigger() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger_ddl_commands() c
                WHERE c.command_tag = 'CREATE EXTENSION' AND c.object_identity = 'vector') THEN
        BEGIN
            PERFORM vault.create_pgvector_casts();
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'vector_vault: the casts between vector and evector were not created (%)', SQLERRM
                USING HINT = 'A superuser can create them with SELECT vault.create_pgvector_casts(); '
                             'until then use vault.from_pgvector(v) and e::text::vector.';
        END;
    END IF;
END
$$;
REVOKE EXECUTE ON FUNCTION vault._pgvector_casts_trigger() FROM PUBLIC;
CREATE EVENT TRIGGER vault_pgvector_casts ON ddl_command_end WHEN TAG IN ('CREATE EXTENSION')
    EXECUTE FUNCTION vault._pgvector_casts_trigger();

SELECT vault.create_pgvector_casts();

-- ---- src/sql/80_citus.sql (new in 0.2.0) ----
-- Citus (docs/citus.md): one vault catalog across the nodes of a cluster. On the coordinator a
-- change of any catalog table sends the catalog and the vaults' wrapped keyring entries to every
-- worker in the same distributed transaction; on a worker the same trigger refuses changes that
-- do not come from the coordinator. Without Citus the trigger does nothing.

CREATE FUNCTION vault._citus_catalog_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'vault_citus_catalog_changed' LANGUAGE C;
REVOKE EXECUTE ON FUNCTION vault._citus_catalog_changed() FROM PUBLIC;
CREATE TRIGGER _vaults_citus AFTER INSERT OR UPDATE OR DELETE ON vault._vaults
    FOR EACH STATEMENT EXECUTE FUNCTION vault._citus_catalog_changed();
CREATE TRIGGER _grants_citus AFTER INSERT OR UPDATE OR DELETE ON vault._grants
    FOR EACH STATEMENT EXECUTE FUNCTION vault._citus_catalog_changed();
CREATE TRIGGER _api_keys_citus AFTER INSERT OR UPDATE OR DELETE ON vault._api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION vault._citus_catalog_changed();
CREATE TRIGGER _api_key_vaults_citus AFTER INSERT OR UPDATE OR DELETE ON vault._api_key_vaults
    FOR EACH STATEMENT EXECUTE FUNCTION vault._citus_catalog_changed();
CREATE TRIGGER _key_passwords_citus AFTER INSERT OR UPDATE OR DELETE ON vault._key_passwords
    FOR EACH STATEMENT EXECUTE FUNCTION vault._citus_catalog_changed();

-- A worker applies the coordinator's catalog (superuser only: the coordinator's Citus connection).
CREATE FUNCTION vault._citus_apply(snapshot text) RETURNS void
    AS 'MODULE_PATHNAME', 'vault_citus_apply' LANGUAGE C STRICT VOLATILE;
REVOKE EXECUTE ON FUNCTION vault._citus_apply(text) FROM PUBLIC;

-- Sends the catalog to every worker now (a worker added after vaults existed).
CREATE FUNCTION vault.citus_sync() RETURNS void
    AS 'MODULE_PATHNAME', 'vault_citus_sync' LANGUAGE C STRICT VOLATILE;
REVOKE EXECUTE ON FUNCTION vault.citus_sync() FROM PUBLIC;
COMMENT ON FUNCTION vault.citus_sync() IS 'sends the vault catalog and wrapped keyring entries to every Citus worker (superuser, coordinator)';

-- Shreds a worker owes once the prepared transaction that recorded them has committed.
CREATE TABLE vault._citus_pending_shreds (
    vault_id    bigint NOT NULL,
    key_version integer NOT NULL,   -- 0: every version (a dropped vault)
    PRIMARY KEY (vault_id, key_version)
);
REVOKE ALL ON vault._citus_pending_shreds FROM PUBLIC;

-- The coordinator adds this call, with a token it MACs under a key derived from the master key,
-- to every level of an API-key session's read-only statement that reads a distributed table; on
-- the worker it makes the statement's transaction act as that key (docs/citus.md).
CREATE FUNCTION vault._citus_as_key(token text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'vault_citus_as_key' LANGUAGE C STRICT STABLE PARALLEL UNSAFE;
GRANT EXECUTE ON FUNCTION vault._citus_as_key(text) TO PUBLIC;
