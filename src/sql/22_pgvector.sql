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
