-- API keys, logins, the access log and row-level isolation.

CREATE TABLE vault._key_passwords (
    role    regrole PRIMARY KEY,
    salt    bytea NOT NULL,
    log2_n  integer NOT NULL,
    r       integer NOT NULL,
    p       integer NOT NULL,
    hash    bytea NOT NULL,
    set_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE vault._key_passwords IS 'vector_vault internal: scrypt hashes of key-management passwords';

CREATE TABLE vault._api_keys (
    key_id          text PRIMARY KEY CHECK (key_id ~ '^[0-9a-f]{16}$'),
    owner           regrole NOT NULL,
    label           text,
    secret_hash     bytea NOT NULL,               -- SHA-256 of the secret; the secret is never stored
    old_secret_hash bytea,                        -- previous secret during a rotation's overlap
    old_valid_until timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    rotated_at      timestamptz,
    expires_at      timestamptz,
    revoked_at      timestamptz
);
COMMENT ON TABLE vault._api_keys IS 'vector_vault internal: API keys (digests only)';

CREATE TABLE vault._api_key_vaults (
    key_id   text NOT NULL REFERENCES vault._api_keys ON DELETE CASCADE,
    vault_id bigint NOT NULL REFERENCES vault._vaults,
    level    text NOT NULL CHECK (level IN ('read', 'write', 'admin')),
    PRIMARY KEY (key_id, vault_id)
);

CREATE TABLE vault._access_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL,
    role        text,
    key_id      text,
    vault       text,
    action      text NOT NULL,
    result      text NOT NULL,
    client_addr text,
    detail      text,
    vault_id    bigint
);
CREATE INDEX ON vault._access_log (vault_id, at);
COMMENT ON TABLE vault._access_log IS 'vector_vault internal: access log (read through vault.access_log)';

SELECT pg_catalog.pg_extension_config_dump('vault._key_passwords', '');
SELECT pg_catalog.pg_extension_config_dump('vault._api_keys', '');
SELECT pg_catalog.pg_extension_config_dump('vault._api_key_vaults', '');
SELECT pg_catalog.pg_extension_config_dump('vault._access_log', '');
SELECT pg_catalog.pg_extension_config_dump('vault._access_log_id_seq', '');
REVOKE ALL ON vault._key_passwords, vault._api_keys, vault._api_key_vaults, vault._access_log FROM PUBLIC;

CREATE FUNCTION vault.set_key_password(new_password text, old_password text DEFAULT NULL) RETURNS void
    AS 'MODULE_PATHNAME', 'vault_set_key_password' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vault.set_key_password(text, text) IS 'sets the current role''s key-management password (pass it as a bind parameter)';

CREATE FUNCTION vault.create_api_key(password text, vaults jsonb, label text DEFAULT NULL,
                                     expires_at timestamptz DEFAULT NULL) RETURNS text
    AS 'MODULE_PATHNAME', 'vault_create_api_key' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vault.create_api_key(text, jsonb, text, timestamptz) IS 'creates an API key for vaults {"name": "read|write|admin"}; returns it once';

CREATE FUNCTION vault.rotate_api_key(password text, key_id text, overlap interval DEFAULT '0') RETURNS text
    AS 'MODULE_PATHNAME', 'vault_rotate_api_key' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vault.rotate_api_key(text, text, interval) IS 'gives a key a new secret; the old one stays valid for the overlap';

CREATE FUNCTION vault.revoke_api_key(password text, key_id text) RETURNS void
    AS 'MODULE_PATHNAME', 'vault_revoke_api_key' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vault.revoke_api_key(text, text) IS 'revokes a key; every session using it is refused from its next statement';

CREATE FUNCTION vault.login(api_key text, transaction_only boolean DEFAULT false) RETURNS text
    AS 'MODULE_PATHNAME', 'vault_login' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vault.login(text, boolean) IS 'act as an API key (for the session, or this transaction only); returns the vault selected, if one';

CREATE FUNCTION vault.logout() RETURNS void
    AS 'MODULE_PATHNAME', 'vault_logout' LANGUAGE C VOLATILE;
CREATE FUNCTION vault.principal() RETURNS text
    AS 'MODULE_PATHNAME', 'vault_principal' LANGUAGE C STABLE;
COMMENT ON FUNCTION vault.principal() IS 'who the session acts as: its role or an API key';

-- Visibility helpers of the views below. Superusers get no shortcut: they read the tables.
CREATE FUNCTION vault._owns_vault_id(vault_id bigint) RETURNS boolean
    AS 'MODULE_PATHNAME', 'vault_owns_vault_id' LANGUAGE C STABLE STRICT;
CREATE FUNCTION vault._acts_for(role oid) RETURNS boolean
    AS 'MODULE_PATHNAME', 'vault_acts_for' LANGUAGE C STABLE STRICT;

-- The keys the current role owns (never secrets).
CREATE VIEW vault.api_keys WITH (security_barrier) AS
    SELECT k.key_id, k.label, k.owner,
           (SELECT pg_catalog.jsonb_object_agg(v.name, kv.level)
              FROM vault._api_key_vaults kv JOIN vault._vaults v USING (vault_id)
             WHERE kv.key_id = k.key_id) AS vaults,
           k.created_at, k.rotated_at, k.old_valid_until AS previous_secret_valid_until,
           k.expires_at, k.revoked_at
    FROM vault._api_keys k
    WHERE vault._acts_for(k.owner);
GRANT SELECT ON vault.api_keys TO PUBLIC;

-- Access log entries of the vaults the current role owns (by vault id, so a new vault reusing a
-- dropped one's name does not see its history), and logins and failures with its API keys.
CREATE VIEW vault.access_log WITH (security_barrier) AS
    SELECT l.at, l.role, l.key_id, l.vault, l.vault_id, l.action, l.result, l.client_addr, l.detail
    FROM vault._access_log l
    WHERE (l.vault_id IS NOT NULL AND vault._owns_vault_id(l.vault_id))
       OR (l.key_id IS NOT NULL AND EXISTS (SELECT 1 FROM vault._api_keys k
                                            WHERE k.key_id = l.key_id
                                              AND vault._acts_for(k.owner)));
GRANT SELECT ON vault.access_log TO PUBLIC;

-- Row-level isolation.
CREATE FUNCTION vault.vault_of(evector) RETURNS bigint
    AS 'MODULE_PATHNAME', 'vault_vault_of' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vault.vault_of(etext) RETURNS bigint
    AS 'MODULE_PATHNAME', 'vault_vault_of' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vault.vault_of(ejsonb) RETURNS bigint
    AS 'MODULE_PATHNAME', 'vault_vault_of' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vault.row_access(level text, VARIADIC vault_ids bigint[]) RETURNS boolean
    AS 'MODULE_PATHNAME', 'vault_row_access' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION vault.row_access(text, bigint[]) IS 'true when the principal has the level on every non-null vault id';
CREATE FUNCTION vault.protect(tbl regclass) RETURNS void
    AS 'MODULE_PATHNAME', 'vault_protect' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION vault.protect(regclass) IS 'enables and forces row-level security with per-vault policies on a table';

-- The access log merges identical failures under a flood (attempts, last_at) and counts what it
-- could not record; see README "Access log".
ALTER TABLE vault._access_log
    ADD COLUMN attempts integer NOT NULL DEFAULT 1 CHECK (attempts >= 1),
    ADD COLUMN last_at timestamptz;
COMMENT ON COLUMN vault._access_log.attempts IS 'identical failures this entry stands for (merged under a flood)';
COMMENT ON COLUMN vault._access_log.last_at IS 'time of the last merged attempt (attempts > 1)';
CREATE OR REPLACE VIEW vault.access_log WITH (security_barrier) AS
    SELECT l.at, l.role, l.key_id, l.vault, l.vault_id, l.action, l.result, l.client_addr, l.detail,
           l.attempts, l.last_at
    FROM vault._access_log l
    WHERE (l.vault_id IS NOT NULL AND vault._owns_vault_id(l.vault_id))
       OR (l.key_id IS NOT NULL AND EXISTS (SELECT 1 FROM vault._api_keys k
                                            WHERE k.key_id = l.key_id
                                              AND vault._acts_for(k.owner)));

CREATE FUNCTION vault.access_log_stats()
    RETURNS TABLE (action text, result text, queued bigint, coalesced bigint, dropped bigint,
                   refused bigint, waiting bigint, last_dropped timestamptz)
    AS 'MODULE_PATHNAME', 'vault_access_log_stats' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vault.access_log_stats() IS 'access log queue since the server started, all databases: events queued, merged into an identical waiting one, dropped from the table (failures stay in the server log), successful logins refused, still waiting';
REVOKE ALL ON FUNCTION vault.access_log_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vault.access_log_stats() TO pg_monitor;
