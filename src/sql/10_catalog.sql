-- The vault catalog: who owns which vault, who may do what in it. Ordinary roles cannot read or
-- write these tables; they use the vault.* functions and views, which check levels themselves.

CREATE SCHEMA vault;
COMMENT ON SCHEMA vault IS 'vector_vault management: vaults, grants, keys, audit';
GRANT USAGE ON SCHEMA vault TO PUBLIC;

CREATE TABLE vault._vaults (
    vault_id    bigint PRIMARY KEY CHECK (vault_id > 0),
    name        text NOT NULL,
    owner       regrole NOT NULL,
    state       text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'dropped')),
    key_version integer NOT NULL DEFAULT 1 CHECK (key_version >= 1),
    created_at  timestamptz NOT NULL DEFAULT now(),
    dropped_at  timestamptz
);
CREATE UNIQUE INDEX _vaults_active_name ON vault._vaults (name) WHERE state = 'active';
COMMENT ON TABLE vault._vaults IS 'vector_vault internal: one row per vault (dropped vaults stay as tombstones)';

CREATE TABLE vault._grants (
    vault_id   bigint NOT NULL REFERENCES vault._vaults,
    grantee    regrole NOT NULL,
    level      text NOT NULL CHECK (level IN ('read', 'write', 'admin')),
    granted_by regrole NOT NULL,
    granted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (vault_id, grantee)
);
COMMENT ON TABLE vault._grants IS 'vector_vault internal: per-vault access levels of roles';

-- Dumps carry the catalog (role columns are regrole, so they dump as names, not OIDs).
SELECT pg_catalog.pg_extension_config_dump('vault._vaults', '');
SELECT pg_catalog.pg_extension_config_dump('vault._grants', '');
REVOKE ALL ON vault._vaults, vault._grants FROM PUBLIC;

CREATE FUNCTION vault.create_vault(name text) RETURNS void
    AS 'MODULE_PATHNAME', 'vault_create_vault' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION vault.create_vault(text) IS 'creates a vault owned by the current role, with a fresh data key';

CREATE FUNCTION vault.drop_vault(name text) RETURNS void
    AS 'MODULE_PATHNAME', 'vault_drop_vault' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION vault.drop_vault(text) IS 'drops a vault (owner only); its keys are shredded at commit';

CREATE FUNCTION vault.grant(vault text, role regrole, level text) RETURNS void
    AS 'MODULE_PATHNAME', 'vault_grant' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION vault.grant(text, regrole, text) IS 'gives a role read, write or admin access to a vault (admin only)';

CREATE FUNCTION vault.revoke(vault text, role regrole) RETURNS void
    AS 'MODULE_PATHNAME', 'vault_revoke' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION vault.revoke(text, regrole) IS 'removes a role''s grant on a vault (admin only)';

CREATE FUNCTION vault.access_level(vault text) RETURNS text
    AS 'MODULE_PATHNAME', 'vault_access_level' LANGUAGE C STRICT STABLE PARALLEL SAFE;
COMMENT ON FUNCTION vault.access_level(text) IS 'the current principal''s level on a vault: read, write, admin, owner or NULL';

CREATE FUNCTION vault.reconcile_keyring() RETURNS void
    AS 'MODULE_PATHNAME', 'vault_reconcile_keyring' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION vault.reconcile_keyring() IS 'finishes key shreds interrupted by a crash';

-- Creating vaults is a privilege the administrator hands out.
REVOKE EXECUTE ON FUNCTION vault.create_vault(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION vault.reconcile_keyring() FROM PUBLIC;

-- The vaults the current principal can use, and its level on each.
CREATE VIEW vault.vaults WITH (security_barrier) AS
    SELECT v.name, v.owner, vault.access_level(v.name) AS access, v.key_version, v.created_at
    FROM vault._vaults v
    WHERE v.state = 'active' AND vault.access_level(v.name) IS NOT NULL;
COMMENT ON VIEW vault.vaults IS 'vaults the current principal may access, with its level';

-- Grants on the vaults the current principal administers.
CREATE VIEW vault.grants WITH (security_barrier) AS
    SELECT v.name AS vault, g.grantee, g.level, g.granted_by, g.granted_at
    FROM vault._grants g JOIN vault._vaults v USING (vault_id)
    WHERE v.state = 'active' AND vault.access_level(v.name) IN ('admin', 'owner');
COMMENT ON VIEW vault.grants IS 'grants on the vaults the current principal administers';

GRANT SELECT ON vault.vaults, vault.grants TO PUBLIC;
