-- pgvector interoperation, without depending on pgvector: vector_vault installs whether or not
-- pgvector is there, and finds pgvector's types `vector`, `halfvec` and `sparsevec` at run time (by
-- name and by their send functions vector_send, halfvec_send and sparsevec_send, whose binary
-- forms are evector's, ehalfvec's and esparsevec's).
--   vault.from_pgvector(v)          seals a pgvector vector (or halfvec, widened exactly) as an
--                                   evector under the session's vault (binary, no text round
--                                   trip); works in any order of installation.
--   vault.from_pghalfvec(v)         the same for halfvec -> ehalfvec, and vault.from_pgsparsevec(v)
--                                   for sparsevec -> esparsevec (27_pgvector_types.sql).
--   casts vector -> evector, halfvec -> ehalfvec, halfvec -> evector, sparsevec -> esparsevec
--                                   assignment (INSERT INTO items SELECT ... FROM pgvector_table),
--                                   through those functions; evector -> vector, ehalfvec -> halfvec
--                                   and esparsevec -> sparsevec explicit only (WITH INOUT: decrypts
--                                   through the encrypted type's output, with the usual read
--                                   check), because they write plaintext out of the vault.
-- The casts exist only while both types do, so they are created when possible: at the end of
-- 27_pgvector_types.sql when pgvector is already installed, by the event trigger below when
-- pgvector is installed later (by a superuser; anyone else gets a NOTICE), or by
-- vault.create_pgvector_casts(). A pgvector older than 0.7 has no halfvec or sparsevec: their
-- casts are then skipped. They are not members of either extension: `DROP EXTENSION vector
-- CASCADE` drops just the casts (a member of vector_vault would take vector_vault and every
-- evector column with it), and `DROP EXTENSION vector_vault` needs CASCADE to drop them. pg_dump
-- dumps them as casts of their own, restored after both extensions.
CREATE FUNCTION vault.from_pgvector(anyelement) RETURNS evector
    AS 'MODULE_PATHNAME', 'evector_from_pgvector' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION vault.from_pgvector(anyelement) IS
    'seals a pgvector vector or halfvec as an evector under the current vault';

-- Creates the casts between pgvector's types and vector_vault's for those pgvector has installed;
-- says what it did. Superuser (CREATE CAST needs ownership of a type); idempotent.
CREATE FUNCTION vault.create_pgvector_casts() RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c record;
    ptype regtype;
    etype regtype;
    done text := '';
    found_any boolean := false;
    castoid oid;
BEGIN
    -- pgvector type, its send function, our type, the function of the cast into ours (NULL: the
    -- cast is only into pgvector's type, explicit WITH INOUT), in the order they are created.
    FOR c IN SELECT * FROM (VALUES
        (1, 'vector', 'evector', 'vault.from_pgvector(anyelement)', true),
        (2, 'halfvec', 'ehalfvec', 'vault.from_pghalfvec(anyelement)', true),
        (3, 'halfvec', 'evector', 'vault.from_pgvector(anyelement)', false),
        (4, 'sparsevec', 'esparsevec', 'vault.from_pgsparsevec(anyelement)', true))
        AS t(n, pgname, ename, fn, back) ORDER BY n
    LOOP
        SELECT t.oid INTO ptype
          FROM pg_catalog.pg_type t JOIN pg_catalog.pg_proc p ON p.oid = t.typsend
         WHERE t.typname = c.pgname AND p.proname = c.pgname || '_send'
         ORDER BY t.oid LIMIT 1;
        CONTINUE WHEN ptype IS NULL;
        found_any := true;
        etype := pg_catalog.format('@extschema@.%I', c.ename)::regtype;
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_cast WHERE castsource = ptype AND casttarget = etype) THEN
            EXECUTE pg_catalog.format('CREATE CAST (%s AS %s) WITH FUNCTION %s AS ASSIGNMENT',
                ptype, etype, c.fn);
            done := done || pg_catalog.format('created cast %s -> %s (assignment); ', ptype, etype);
        END IF;
        IF c.back AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_cast WHERE castsource = etype AND casttarget = ptype) THEN
            EXECUTE pg_catalog.format('CREATE CAST (%s AS %s) WITH INOUT', etype, ptype);
            done := done || pg_catalog.format('created cast %s -> %s (explicit); ', etype, ptype);
        END IF;
        -- Never members of vector_vault: a member cast depending on pgvector's type would make
        -- DROP EXTENSION vector CASCADE drop vector_vault itself, with every encrypted column.
        -- (Created inside this extension's script they would be members; release them.)
        FOR castoid IN
            SELECT pc.oid FROM pg_catalog.pg_cast pc
             WHERE (pc.castsource, pc.casttarget) IN ((ptype, etype), (etype, ptype))
               AND EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                            WHERE d.classid = 'pg_catalog.pg_cast'::pg_catalog.regclass
                              AND d.objid = pc.oid AND d.deptype = 'e')
        LOOP
            EXECUTE pg_catalog.format('ALTER EXTENSION vector_vault DROP CAST (%s AS %s)',
                (SELECT castsource::regtype FROM pg_catalog.pg_cast WHERE oid = castoid),
                (SELECT casttarget::regtype FROM pg_catalog.pg_cast WHERE oid = castoid));
        END LOOP;
    END LOOP;
    IF NOT found_any THEN
        RETURN 'pgvector is not installed in this database: no casts created';
    END IF;
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
            RAISE NOTICE 'vector_vault: the casts between pgvector''s types and the encrypted types were not created (%)', SQLERRM
                USING HINT = 'A superuser can create them with SELECT vault.create_pgvector_casts(); '
                             'until then use vault.from_pgvector(v) (from_pghalfvec, from_pgsparsevec) and e::text::vector.';
        END;
    END IF;
END
$$;
REVOKE EXECUTE ON FUNCTION vault._pgvector_casts_trigger() FROM PUBLIC;
CREATE EVENT TRIGGER vault_pgvector_casts ON ddl_command_end WHEN TAG IN ('CREATE EXTENSION')
    EXECUTE FUNCTION vault._pgvector_casts_trigger();
-- (vault.create_pgvector_casts() runs at the end of 27_pgvector_types.sql, once ehalfvec and
-- esparsevec exist.)
