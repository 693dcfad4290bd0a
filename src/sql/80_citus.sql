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
