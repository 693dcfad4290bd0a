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

-- Catch-up (docs/citus.md, "A worker that was away"): every catalog push has a generation; the
-- coordinator records, per node, the generation that node committed, and pushes the catalog again
-- to an active node that is behind before its next distributed statement runs.
CREATE SEQUENCE vault._citus_generation;
REVOKE ALL ON SEQUENCE vault._citus_generation FROM PUBLIC;
CREATE TABLE vault._citus_nodes (
    nodeid     integer PRIMARY KEY,      -- pg_dist_node.nodeid
    nodename   text NOT NULL,
    nodeport   integer NOT NULL,
    generation bigint NOT NULL,          -- the last catalog push this node committed
    synced_at  timestamptz NOT NULL
);
REVOKE ALL ON vault._citus_nodes FROM PUBLIC;
-- On a worker: the generation of the catalog it holds.
CREATE TABLE vault._citus_applied (
    one        boolean PRIMARY KEY DEFAULT true CHECK (one),
    generation bigint NOT NULL,
    applied_at timestamptz NOT NULL
);
REVOKE ALL ON vault._citus_applied FROM PUBLIC;

-- The keyring entries on this node's disk for the vaults its catalog knows (superuser).
CREATE FUNCTION vault._citus_held_keys() RETURNS text
    AS 'MODULE_PATHNAME', 'vault_citus_held_keys' LANGUAGE C STRICT VOLATILE;
REVOKE EXECUTE ON FUNCTION vault._citus_held_keys() FROM PUBLIC;

-- Per node, the keys the coordinator has shredded and the node still holds (superuser, on the
-- coordinator): "is this vault gone everywhere?" An empty result means yes.
CREATE FUNCTION vault.citus_pending_shreds()
    RETURNS TABLE (nodename text, nodeport integer, vault_id bigint, vault_name text,
                   key_version integer, reason text, last_sync timestamptz)
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $f$
DECLARE
    n record;
    here jsonb;
    there jsonb;
    ok boolean;
    res text;
BEGIN
    IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r
            WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER) THEN
        RAISE EXCEPTION 'only a superuser may run vault.citus_pending_shreds()'
            USING ERRCODE = '42501', HINT = 'Connect to the coordinator as a superuser.';
    END IF;
    here := vault._citus_held_keys()::jsonb;
    FOR n IN SELECT d.nodeid, d.nodename::text AS nodename, d.nodeport, d.isactive,
                    s.synced_at
             FROM pg_catalog.pg_dist_node d LEFT JOIN vault._citus_nodes s USING (nodeid)
             WHERE d.groupid OPERATOR(pg_catalog.<>) 0
               AND d.noderole OPERATOR(pg_catalog.=) 'primary'
             ORDER BY d.nodename, d.nodeport
    LOOP
        ok := false;
        BEGIN
            SELECT w.success, w.result INTO ok, res
            FROM pg_catalog.master_run_on_worker(ARRAY[n.nodename], ARRAY[n.nodeport],
                     ARRAY['SELECT vault._citus_held_keys()'], false) w;
        EXCEPTION WHEN OTHERS THEN
            ok := false;
        END;
        IF ok THEN
            there := res::jsonb;
            -- held there, no longer here: the coordinator shredded it (drop or retirement)
            RETURN QUERY
                SELECT n.nodename, n.nodeport, (e OPERATOR(pg_catalog.->>) 'vault_id')::bigint,
                       v.name::text, (e OPERATOR(pg_catalog.->>) 'version')::integer,
                       CASE WHEN v.state OPERATOR(pg_catalog.=) 'active'
                            THEN 'retired version still on disk'
                            ELSE 'dropped vault key still on disk' END,
                       n.synced_at
                FROM pg_catalog.jsonb_array_elements(there) e
                LEFT JOIN vault._vaults v
                       ON v.vault_id OPERATOR(pg_catalog.=) (e OPERATOR(pg_catalog.->>) 'vault_id')::bigint
                WHERE NOT here OPERATOR(pg_catalog.@>) pg_catalog.jsonb_build_array(e);
        ELSE
            -- unreachable: every vault dropped since its last catalog push (all, if none)
            RETURN QUERY
                SELECT n.nodename, n.nodeport, v.vault_id, v.name::text, 0,
                       'node unreachable; vault dropped after its last sync'::text, n.synced_at
                FROM vault._vaults v
                WHERE v.state OPERATOR(pg_catalog.<>) 'active'
                  AND (n.synced_at IS NULL OR v.dropped_at IS NULL
                       OR v.dropped_at OPERATOR(pg_catalog.>) n.synced_at);
        END IF;
    END LOOP;
END
$f$;
REVOKE EXECUTE ON FUNCTION vault.citus_pending_shreds() FROM PUBLIC;
COMMENT ON FUNCTION vault.citus_pending_shreds() IS 'per Citus node, the keys the coordinator shredded that the node still holds or may hold (superuser, coordinator)';

-- ---- src/sql/81_scan.sql (new in 0.2.0) ----
-- 81_scan: what the last vault_hnsw scan of this backend did (iterative_scan, max_scan_tuples).
CREATE FUNCTION vault.last_hnsw_scan(OUT rounds int, OUT candidates bigint, OUT returned bigint,
                                     OUT dropped bigint, OUT ended text)
    AS 'MODULE_PATHNAME', 'vault_last_hnsw_scan' LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION vault.last_hnsw_scan() IS 'counters of the last vault_hnsw index scan this backend started: search rounds, candidates gathered, rows returned, rows dropped by strict_order, and why it ended (off, graph_done, max_scan_tuples, ef_ceiling, null_query, or running when the executor stopped reading first)';

-- ---- src/sql/85_migrate.sql (new in 0.2.0) ----
-- 85_migrate: converting an existing plaintext column to an encrypted type in place (issue 11).
--
-- vault.seal_in(value, vault) seals plaintext under a vault named per call (write level on it
-- needed; src/type/seal_in.cpp). vault.migrate_column is a procedure that commits between
-- batches and is restartable:
--   1. a shadow column "vv_migrating_<column>" of the encrypted type is added, with a trigger
--      that clears a row's shadow value when its source value is updated meanwhile;
--   2. batches (ranges of heap blocks, then whatever was inserted or updated since) fill the
--      shadow column, one COMMIT and one NOTICE each; the source column is never written;
--   3. one last transaction locks the table (ACCESS EXCLUSIVE), converts what is still missing,
--      drops the trigger and the source column (its indexes go with it), renames the shadow
--      column, keeps NOT NULL, and recreates pgvector's hnsw index as vault_hnsw if asked.
-- A failure at any point leaves the source column as it was; calling again resumes at step 2
-- with the rows already converted. Everything runs with the caller's rights (SECURITY INVOKER;
-- row-level security applies), every name is schema-qualified or quoted with %I, and only the
-- table's owner (a member of the owning role) may convert it. No SET clause (a procedure with
-- one may not COMMIT), hence OPERATOR(pg_catalog.=) and pg_catalog-qualified functions.
CREATE FUNCTION vault.seal_in(value real[], vault text) RETURNS evector
    AS 'MODULE_PATHNAME', 'vault_seal_in' LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;
CREATE FUNCTION vault.seal_in(value text, vault text) RETURNS etext
    AS 'MODULE_PATHNAME', 'vault_seal_in' LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;
CREATE FUNCTION vault.seal_in(value jsonb, vault text) RETURNS ejsonb
    AS 'MODULE_PATHNAME', 'vault_seal_in' LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION vault.seal_in(real[], text) IS 'the array sealed as an evector under the named vault (write level on it needed)';
COMMENT ON FUNCTION vault.seal_in(text, text) IS 'the text sealed as an etext under the named vault (write level on it needed)';
COMMENT ON FUNCTION vault.seal_in(jsonb, text) IS 'the jsonb sealed as an ejsonb under the named vault (write level on it needed)';

-- Trigger of a running migration: a row whose source value changes gets its shadow value
-- cleared (TG_ARGV[0] names the shadow column), so the next batch converts it again.
-- jsonb_populate_record copies the other fields as they are (no output function, no decryption).
CREATE FUNCTION vault._migrate_reset() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN pg_catalog.jsonb_populate_record(NEW, pg_catalog.jsonb_build_object(TG_ARGV[0], NULL));
END
$$;

-- The indexes on column attnum of tbl, each with the vault_hnsw statement that replaces it
-- (pgvector hnsw with an L2, inner-product, cosine or L1 opclass of vector or halfvec: evector_*
-- or ehalfvec_* ops) or NULL (any other index, sparsevec's hnsw too: esparsevec has no vault_hnsw
-- opclass).
CREATE FUNCTION vault._migrate_indexes(tbl regclass, attnum smallint)
RETURNS TABLE (index regclass, amname name, vault_hnsw pg_catalog.text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT i.indexrelid::pg_catalog.regclass, am.amname,
           CASE WHEN am.amname OPERATOR(pg_catalog.=) 'hnsw' AND i.indnatts OPERATOR(pg_catalog.=) 1
                     AND op.opcname OPERATOR(pg_catalog.=) ANY (ARRAY['vector_l2_ops', 'vector_ip_ops', 'vector_cosine_ops', 'vector_l1_ops',
                                                             'halfvec_l2_ops', 'halfvec_ip_ops', 'halfvec_cosine_ops', 'halfvec_l1_ops']::pg_catalog.name[])
                THEN pg_catalog.format('CREATE INDEX %I ON %s USING vault_hnsw (%I @extschema@.%I)%s', c.relname, $1,
                                       a.attname, 'e' OPERATOR(pg_catalog.||) op.opcname,
                                       CASE WHEN c.reloptions IS NULL THEN ''
                                            ELSE pg_catalog.format(' WITH (%s)', pg_catalog.array_to_string(c.reloptions, ', ')) END)
           END
    FROM pg_catalog.pg_index i
    JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.indexrelid
    JOIN pg_catalog.pg_am am ON am.oid OPERATOR(pg_catalog.=) c.relam
    JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) $1 AND a.attnum OPERATOR(pg_catalog.=) $2
    LEFT JOIN pg_catalog.pg_opclass op ON op.oid OPERATOR(pg_catalog.=) i.indclass[0]
    WHERE i.indrelid OPERATOR(pg_catalog.=) $1 AND $2 OPERATOR(pg_catalog.=) ANY (i.indkey::pg_catalog.int2[])
    ORDER BY c.relname
$$;

-- A procedure that COMMITs cannot pin search_path with a SET clause, so everything in it is
-- schema-qualified, variable types included (pg_catalog.name: a planted domain "name" in the
-- caller's path ran in its DECLARE block before; test/t/022_shadowing.pl).
CREATE PROCEDURE vault.migrate_column(tbl regclass, col name, vault_column name DEFAULT NULL,
                                      vault text DEFAULT NULL, batch_size integer DEFAULT 10000,
                                      rebuild_index boolean DEFAULT false,
                                      drop_indexes_first boolean DEFAULT false)
LANGUAGE plpgsql AS $$
DECLARE
    rel record;
    src record;
    shadow pg_catalog.name := pg_catalog.left('vv_migrating_' OPERATOR(pg_catalog.||) col, 63);
    trig pg_catalog.name := pg_catalog.left('vv_migrate_' OPERATOR(pg_catalog.||) col, 63);
    target pg_catalog.text;     -- evector | ehalfvec | esparsevec | etext | ejsonb
    target_type pg_catalog.text;
    seal_fn pg_catalog.text := 'vault.seal_in';  -- the sealing function (seal_in_ehalfvec, ...)
    arg pg_catalog.text;        -- the plaintext argument of seal_fn
    vault_arg pg_catalog.text;  -- the vault argument
    shadow_type pg_catalog.text;
    lo integer;
    hi integer;
    nblocks bigint;
    step bigint;
    b bigint := 0;
    n bigint;
    total bigint;
    done bigint := 0;
    convert_sql pg_catalog.text;
    idx record;
    rebuild pg_catalog.text[] := '{}';
    stmt pg_catalog.text;
BEGIN
    IF batch_size IS NULL OR batch_size OPERATOR(pg_catalog.<) 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1' USING ERRCODE = '22023',
            HINT = 'Pass batch_size => 10000 (rows per committed batch).';
    END IF;
    SELECT c.relowner, c.relkind, c.relpersistence INTO rel FROM pg_catalog.pg_class c
    WHERE c.oid OPERATOR(pg_catalog.=) tbl;
    IF rel.relkind IS NULL OR rel.relkind OPERATOR(pg_catalog.<>) 'r' THEN
        RAISE EXCEPTION '% is not a table', tbl USING ERRCODE = '42809',
            HINT = 'vault.migrate_column converts a column of a plain table (for a partitioned table, call it per partition).';
    END IF;
    IF NOT pg_catalog.pg_has_role(CURRENT_USER, rel.relowner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table % to migrate its columns', tbl USING ERRCODE = '42501',
            HINT = 'Ask the table''s owner to run vault.migrate_column.';
    END IF;
    IF vault_column IS NOT NULL AND vault IS NOT NULL THEN
        RAISE EXCEPTION 'vault_column and vault are exclusive' USING ERRCODE = '22023',
            HINT = 'Name a column that holds each row''s vault, or one vault for every row.';
    END IF;
    IF vault_column IS NULL THEN
        vault := coalesce(vault, NULLIF(pg_catalog.current_setting('vector_vault.vault', true), ''));
        IF vault IS NULL THEN
            RAISE EXCEPTION 'no vault to seal the column''s values under' USING ERRCODE = '22023',
                HINT = 'Pass vault => ''name'', or vault_column => ''column'' for a table with one vault per row, or SET vector_vault.vault.';
        END IF;
        -- Fails early (42704 / 42501) instead of in the first batch.
        PERFORM vault.seal_in(''::pg_catalog.text, vault);
        vault_arg := '$1';
    ELSE
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                       WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) vault_column
                         AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped) THEN
            RAISE EXCEPTION 'column "%" of % does not exist', vault_column, tbl USING ERRCODE = '42703',
                HINT = 'vault_column names the column that holds each row''s vault name.';
        END IF;
        vault_arg := pg_catalog.format('t.%I::pg_catalog.text', vault_column);
    END IF;

    SELECT a.attnum, a.atttypid, a.atttypmod, a.attnotnull, a.atthasdef, t.typname, t.typtype,
           pg_catalog.format_type(a.atttypid, a.atttypmod) AS shown
    INTO src FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) a.atttypid
    WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) col
      AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped;
    IF src.attnum IS NULL THEN
        RAISE EXCEPTION 'column "%" of % does not exist', col, tbl USING ERRCODE = '42703',
            HINT = 'Name the plaintext column to convert (col => ''embedding'').';
    END IF;
    IF src.typname OPERATOR(pg_catalog.=) ANY (ARRAY['evector', 'ehalfvec', 'esparsevec', 'etext', 'ejsonb']::pg_catalog.name[]) THEN
        RAISE NOTICE 'column % of % is already %: nothing to do', pg_catalog.quote_ident(col), tbl, src.shown;
        RETURN;
    END IF;
    -- The source types and the plaintext each gives vault.seal_in (or seal_fn).
    IF src.typname OPERATOR(pg_catalog.=) 'vector' AND src.typtype OPERATOR(pg_catalog.=) 'b' THEN
        target := 'evector';   -- pgvector: its cast to real[]; typmod = dimensions
        arg := pg_catalog.format('t.%I::pg_catalog.float4[]', col);
        IF src.atttypmod OPERATOR(pg_catalog.>) 0 THEN
            lo := src.atttypmod;
            hi := src.atttypmod;
        END IF;
    ELSIF src.typname OPERATOR(pg_catalog.=) ANY (ARRAY['halfvec', 'sparsevec']::pg_catalog.name[])
          AND src.typtype OPERATOR(pg_catalog.=) 'b' THEN
        -- pgvector's halfvec / sparsevec, sealed as they are (binary form, no rounding); typmod =
        -- dimensions, kept
        target := 'e' OPERATOR(pg_catalog.||) src.typname;
        seal_fn := 'vault.seal_in_' OPERATOR(pg_catalog.||) target;
        arg := pg_catalog.format('t.%I', col);
        IF src.atttypmod OPERATOR(pg_catalog.>) 0 THEN
            lo := src.atttypmod;
            hi := src.atttypmod;
        END IF;
    ELSIF src.atttypid OPERATOR(pg_catalog.=) ANY (ARRAY['pg_catalog.float4[]'::pg_catalog.regtype, 'pg_catalog.float8[]'::pg_catalog.regtype,
                           'pg_catalog.int4[]'::pg_catalog.regtype, 'pg_catalog.numeric[]'::pg_catalog.regtype]::pg_catalog.oid[]) THEN
        target := 'evector';
        arg := pg_catalog.format('t.%I::pg_catalog.float4[]', col);
    ELSIF src.atttypid OPERATOR(pg_catalog.=) ANY (ARRAY['pg_catalog.text'::pg_catalog.regtype, 'pg_catalog.varchar'::pg_catalog.regtype,
                           'pg_catalog.bpchar'::pg_catalog.regtype]::pg_catalog.oid[]) THEN
        target := 'etext';
        arg := pg_catalog.format('t.%I::pg_catalog.text', col);
    ELSIF src.atttypid OPERATOR(pg_catalog.=) ANY (ARRAY['pg_catalog.jsonb'::pg_catalog.regtype, 'pg_catalog.json'::pg_catalog.regtype]::pg_catalog.oid[]) THEN
        target := 'ejsonb';
        arg := pg_catalog.format('t.%I::pg_catalog.jsonb', col);
    ELSE
        RAISE EXCEPTION 'cannot migrate column % of type %', pg_catalog.quote_ident(col), src.shown
            USING ERRCODE = '42804',
                  HINT = 'vault.migrate_column converts vector (pgvector), real[], double precision[], integer[], numeric[] (to evector), halfvec (to ehalfvec), sparsevec (to esparsevec), text, varchar, char (to etext) and jsonb, json (to ejsonb).';
    END IF;

    -- Rows that cannot be converted, found before anything is written.
    IF vault_column IS NOT NULL THEN
        EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM ONLY %s WHERE %I IS NOT NULL AND %I IS NULL',
                                  tbl, col, vault_column) INTO n;
        IF n OPERATOR(pg_catalog.>) 0 THEN
            RAISE EXCEPTION '% rows of % have a value in % but no vault in %', n, tbl,
                pg_catalog.quote_ident(col), pg_catalog.quote_ident(vault_column)
                USING ERRCODE = '23502', HINT = 'Set their vault column (or delete them), then call again.';
        END IF;
    END IF;

    -- Step 1: the shadow column and the trigger (or those of an interrupted run).
    SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) INTO shadow_type FROM pg_catalog.pg_attribute a
    WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) shadow
      AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped;
    IF shadow_type IS NULL THEN
        IF target OPERATOR(pg_catalog.=) 'evector' AND lo IS NULL THEN
            -- Arrays: declared dimensions when every vector has the same (an index needs them).
            EXECUTE pg_catalog.format('SELECT pg_catalog.min(pg_catalog.cardinality(%1$I)), pg_catalog.max(pg_catalog.cardinality(%1$I)) '
                                      'FROM ONLY %2$s WHERE %1$I IS NOT NULL', col, tbl) INTO lo, hi;
        END IF;
        target_type := CASE WHEN lo OPERATOR(pg_catalog.=) hi AND lo OPERATOR(pg_catalog.>) 0
                            THEN pg_catalog.format('@extschema@.%s(%s)', target, lo)
                            ELSE '@extschema@.' OPERATOR(pg_catalog.||) target END;
        EXECUTE pg_catalog.format('ALTER TABLE %s ADD COLUMN %I %s', tbl, shadow, target_type);
        RAISE NOTICE 'vault.migrate_column: converting % of % (%) to % in column %', pg_catalog.quote_ident(col), tbl,
            src.shown, target_type, pg_catalog.quote_ident(shadow);
    ELSIF pg_catalog.split_part(shadow_type, '(', 1) OPERATOR(pg_catalog.<>) target THEN
        RAISE EXCEPTION 'column % of % exists and is %, not %', pg_catalog.quote_ident(shadow), tbl, shadow_type, target
            USING ERRCODE = '42P16', HINT = 'Drop or rename that column, then call again.';
    ELSE
        RAISE NOTICE 'vault.migrate_column: resuming the conversion of % of % in column %', pg_catalog.quote_ident(col),
            tbl, pg_catalog.quote_ident(shadow);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g WHERE g.tgrelid OPERATOR(pg_catalog.=) tbl
                   AND g.tgname OPERATOR(pg_catalog.=) trig) THEN
        EXECUTE pg_catalog.format('CREATE TRIGGER %I BEFORE UPDATE OF %I ON %s FOR EACH ROW '
                                  'WHEN ((OLD.%I)::pg_catalog.text IS DISTINCT FROM (NEW.%I)::pg_catalog.text) '
                                  'EXECUTE FUNCTION vault._migrate_reset(%L)', trig, col, tbl, col, col, shadow);
    END IF;
    -- Every batch UPDATE writes a new row version, and a row that does not fit its page again
    -- is inserted into every index of the table: for a pgvector hnsw index that is a graph
    -- insert per row (test/bench/results/migrate-*.md: about 100 times slower). Asked to, the
    -- indexes on the source column (which go at the end anyway) go now; the statements that
    -- recreate them are kept for this call and printed.
    IF drop_indexes_first THEN
        FOR idx IN SELECT * FROM vault._migrate_indexes(tbl, src.attnum) LOOP
            IF idx.vault_hnsw IS NOT NULL AND rebuild_index THEN
                rebuild := rebuild OPERATOR(pg_catalog.||) idx.vault_hnsw;
            END IF;
            RAISE NOTICE 'vault.migrate_column: index % on the plaintext column is dropped before the batches', idx.index
                USING HINT = coalesce(pg_catalog.format('Its vault_hnsw replacement: %s;', idx.vault_hnsw),
                                      'Encrypted columns take only vault_hnsw indexes.');
            EXECUTE pg_catalog.format('DROP INDEX %s', idx.index);
        END LOOP;
    END IF;
    COMMIT;

    -- Step 2: batches over ranges of heap blocks, then rows written since.
    EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM ONLY %s WHERE %I IS NOT NULL', tbl, col) INTO total;
    nblocks := pg_catalog.pg_relation_size(tbl) OPERATOR(pg_catalog./) pg_catalog.current_setting('block_size')::integer;
    step := GREATEST(1, (batch_size::numeric OPERATOR(pg_catalog.*) nblocks
                                    OPERATOR(pg_catalog./) GREATEST(total, 1))::bigint);
    convert_sql := pg_catalog.format('UPDATE ONLY %s t SET %I = %s(%s, %s) WHERE t.%I IS NULL AND t.%I IS NOT NULL ',
                                     tbl, shadow, seal_fn, arg, vault_arg, shadow, col);
    EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM ONLY %s WHERE %I IS NOT NULL', tbl, shadow) INTO done;
    WHILE b OPERATOR(pg_catalog.<) nblocks LOOP
        EXECUTE convert_sql OPERATOR(pg_catalog.||)
                'AND t.ctid OPERATOR(pg_catalog.>=) pg_catalog.format(''(%s,0)'', $2::bigint)::pg_catalog.tid '
                'AND t.ctid OPERATOR(pg_catalog.<) pg_catalog.format(''(%s,0)'', $3::bigint)::pg_catalog.tid'
            USING vault, b, b OPERATOR(pg_catalog.+) step;
        GET DIAGNOSTICS n = ROW_COUNT;
        b := b OPERATOR(pg_catalog.+) step;
        COMMIT;
        IF n OPERATOR(pg_catalog.>) 0 THEN
            done := done OPERATOR(pg_catalog.+) n;
            RAISE NOTICE 'vault.migrate_column: % of % rows converted', LEAST(done, total), total;
        END IF;
    END LOOP;
    LOOP
        EXECUTE convert_sql OPERATOR(pg_catalog.||)
                pg_catalog.format('AND t.ctid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT ctid FROM ONLY %s '
                                  'WHERE %I IS NULL AND %I IS NOT NULL LIMIT $2))', tbl, shadow, col)
            USING vault, batch_size;
        GET DIAGNOSTICS n = ROW_COUNT;
        COMMIT;
        EXIT WHEN n OPERATOR(pg_catalog.=) 0;
        done := done OPERATOR(pg_catalog.+) n;
        RAISE NOTICE 'vault.migrate_column: % rows written meanwhile converted', n;
    END LOOP;

    -- Step 3: the swap, in one transaction under an exclusive lock.
    EXECUTE pg_catalog.format('LOCK TABLE ONLY %s IN ACCESS EXCLUSIVE MODE', tbl);
    EXECUTE convert_sql USING vault;
    EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM ONLY %s WHERE %I IS NULL AND %I IS NOT NULL',
                              tbl, shadow, col) INTO n;
    IF n OPERATOR(pg_catalog.>) 0 THEN
        RAISE EXCEPTION '% rows of % could not be converted', n, tbl USING ERRCODE = '55000',
            DETAIL = 'Row-level security may hide them from you, or their vault column is NULL.',
            HINT = 'Nothing was changed in the source column; fix those rows and call again to resume.';
    END IF;
    -- Indexes on the source column go with it; pgvector's hnsw indexes can come back as vault_hnsw.
    FOR idx IN SELECT * FROM vault._migrate_indexes(tbl, src.attnum) LOOP
        IF idx.vault_hnsw IS NOT NULL AND rebuild_index THEN
            rebuild := rebuild OPERATOR(pg_catalog.||) idx.vault_hnsw;
        ELSIF idx.vault_hnsw IS NOT NULL THEN
            RAISE NOTICE 'vault.migrate_column: pgvector index % is dropped with the column', idx.index
                USING HINT = pg_catalog.format('Recreate it with: %s;', idx.vault_hnsw);
        ELSE
            RAISE NOTICE 'vault.migrate_column: index % (%) on the plaintext column is dropped with it', idx.index, idx.amname
                USING HINT = 'Encrypted columns take only vault_hnsw indexes (an ordered index would reveal the plaintexts'' order).';
        END IF;
    END LOOP;
    IF src.atthasdef THEN
        RAISE NOTICE 'vault.migrate_column: the default of % is not carried over', pg_catalog.quote_ident(col)
            USING HINT = 'An encrypted column''s default would be a sealed constant in the catalog; set values when inserting.';
    END IF;
    EXECUTE pg_catalog.format('DROP TRIGGER %I ON %s', trig, tbl);
    EXECUTE pg_catalog.format('ALTER TABLE %s DROP COLUMN %I', tbl, col);
    EXECUTE pg_catalog.format('ALTER TABLE %s RENAME COLUMN %I TO %I', tbl, shadow, col);
    IF src.attnotnull THEN
        EXECUTE pg_catalog.format('ALTER TABLE %s ALTER COLUMN %I SET NOT NULL', tbl, col);
    END IF;
    FOREACH stmt IN ARRAY rebuild LOOP
        RAISE NOTICE 'vault.migrate_column: %', stmt;
        EXECUTE stmt;
    END LOOP;
    COMMIT;
    RAISE NOTICE 'vault.migrate_column: % of % is now encrypted (% rows)', pg_catalog.quote_ident(col), tbl, total
        USING HINT = 'The old plaintext stays in dead tuples until VACUUM (VACUUM FULL or CLUSTER rewrite the table), and in WAL, archives and backups taken before; see README "Migrating a column".';
END
$$;
COMMENT ON PROCEDURE vault.migrate_column(regclass, name, name, text, integer, boolean, boolean) IS 'converts a vector, real[], halfvec, sparsevec, text or jsonb column to evector, ehalfvec, esparsevec, etext or ejsonb in place, in committed batches (restartable), sealing each row under the vault its vault_column names or under one vault';

-- This backend's secret-buffer counters: buffers of plaintext and keys handed out, released by
-- the code that used them, and zeroed because an error reset their memory context first (tests
-- prove with it that no error path leaves a decrypted value or key behind; src/pg/secret.h).
CREATE FUNCTION vault._secret_wipes(OUT allocated bigint, OUT freed bigint, OUT wiped_on_reset bigint)
    RETURNS record AS 'MODULE_PATHNAME', 'vault_secret_wipes' LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
REVOKE EXECUTE ON FUNCTION vault._secret_wipes() FROM PUBLIC;

-- vault_hnsw orders by L1 (<+>) too, as pgvector's vector_l1_ops (issue 11).
CREATE FUNCTION vault_hnsw_metric_l1(internal) RETURNS integer
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE OPERATOR CLASS evector_l1_ops FOR TYPE evector USING vault_hnsw AS
    OPERATOR 1 <+> (evector, evector) FOR ORDER BY float_ops,
    FUNCTION 1 vault_hnsw_metric_l1(internal);

-- binary_quantize(evector) exists only to refuse with a reason: pgvector's returns a plaintext
-- bit string, which for an encrypted vector is its sign pattern in the clear.
CREATE FUNCTION binary_quantize(evector) RETURNS bit
    AS 'MODULE_PATHNAME', 'evector_binary_quantize' LANGUAGE C STABLE STRICT PARALLEL SAFE;

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

-- ehalfvec (issue 11): the index decrypts each value, widens it to float32 and from there treats
-- it as an evector's; the same support functions name the metrics.
CREATE OPERATOR CLASS ehalfvec_l2_ops DEFAULT FOR TYPE ehalfvec USING vault_hnsw AS
    OPERATOR 1 <-> (ehalfvec, ehalfvec) FOR ORDER BY float_ops,
    FUNCTION 1 vault_hnsw_metric_l2(internal);
CREATE OPERATOR CLASS ehalfvec_ip_ops FOR TYPE ehalfvec USING vault_hnsw AS
    OPERATOR 1 <#> (ehalfvec, ehalfvec) FOR ORDER BY float_ops,
    FUNCTION 1 vault_hnsw_metric_ip(internal);
CREATE OPERATOR CLASS ehalfvec_cosine_ops FOR TYPE ehalfvec USING vault_hnsw AS
    OPERATOR 1 <=> (ehalfvec, ehalfvec) FOR ORDER BY float_ops,
    FUNCTION 1 vault_hnsw_metric_cosine(internal);
CREATE OPERATOR CLASS ehalfvec_l1_ops FOR TYPE ehalfvec USING vault_hnsw AS
    OPERATOR 1 <+> (ehalfvec, ehalfvec) FOR ORDER BY float_ops,
    FUNCTION 1 vault_hnsw_metric_l1(internal);


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

-- src/sql/25_ehalfvec_ops.sql
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

-- src/sql/26_esparsevec_ops.sql
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

-- src/sql/27_pgvector_types.sql (new in 0.2.0)
-- pgvector's halfvec and sparsevec into ehalfvec and esparsevec (22_pgvector.sql says how the
-- interoperation works; the C functions are in src/type/ehalfvec.cpp and esparsevec.cpp): each
-- reads the value through pgvector's binary send form and seals it under the session's vault.
CREATE FUNCTION vault.from_pghalfvec(anyelement) RETURNS ehalfvec
    AS 'MODULE_PATHNAME', 'ehalfvec_from_pgvector' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION vault.from_pghalfvec(anyelement) IS
    'seals a pgvector halfvec as an ehalfvec under the current vault';
CREATE FUNCTION vault.from_pgsparsevec(anyelement) RETURNS esparsevec
    AS 'MODULE_PATHNAME', 'esparsevec_from_pgvector' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION vault.from_pgsparsevec(anyelement) IS
    'seals a pgvector sparsevec as an esparsevec under the current vault';

-- vault.seal_in for pgvector's halfvec and sparsevec (85_migrate.sql: vault.migrate_column seals
-- each row of such a column under the vault its row names): a return type of their own, hence
-- names of their own. Here rather than in 85_migrate.sql because the update script from 0.1.0
-- runs that file's part before ehalfvec and esparsevec exist.
CREATE FUNCTION vault.seal_in_ehalfvec(value anyelement, vault text) RETURNS ehalfvec
    AS 'MODULE_PATHNAME', 'vault_seal_in_ehalfvec' LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;
CREATE FUNCTION vault.seal_in_esparsevec(value anyelement, vault text) RETURNS esparsevec
    AS 'MODULE_PATHNAME', 'vault_seal_in_esparsevec' LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION vault.seal_in_ehalfvec(anyelement, text) IS 'a pgvector halfvec sealed as an ehalfvec under the named vault (write level on it needed)';
COMMENT ON FUNCTION vault.seal_in_esparsevec(anyelement, text) IS 'a pgvector sparsevec sealed as an esparsevec under the named vault (write level on it needed)';

-- With pgvector installed before vector_vault, its casts are created now (every type exists).
SELECT vault.create_pgvector_casts();

-- The view names the new representations (half for an index on ehalfvec, sq4).
COMMENT ON VIEW vault.index_cache IS 'per vault_hnsw index: representation in the shared cache (float32, half for an index on ehalfvec, sq8, sq4, pages, none once evicted), resident bytes, elements, vaults, vaults whose sub-graph is loaded, full loads, acquisitions served, evictions';
