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
