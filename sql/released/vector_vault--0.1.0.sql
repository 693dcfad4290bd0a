-- vector_vault install script, assembled by the Makefile from src/sql/*.sql in name order.
\echo Use "CREATE EXTENSION vector_vault" to load this file. \quit
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
-- evector: an encrypted float4 vector with pgvector's text and binary forms.
-- Functions that seal draw a fresh random nonce per call and depend on vector_vault.vault: the
-- casts into encrypted types are VOLATILE; type input/receive functions are STABLE, the most
-- Postgres allows for them. Functions that decrypt are STABLE, never IMMUTABLE: their result
-- depends on the caller's rights, and an IMMUTABLE decrypting function could be used in a
-- generated column or an expression index, where it would store plaintext computed with the
-- rights of whoever inserted the row (test sql/40_attack_7_holes.sql). Header-only
-- functions (vector_dims, vault.vault_of, vault.key_version_of) stay IMMUTABLE.

CREATE TYPE evector;

CREATE FUNCTION evector_in(cstring, oid, integer) RETURNS evector
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION evector_out(evector) RETURNS cstring
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION evector_typmod_in(cstring[]) RETURNS integer
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION evector_typmod_out(integer) RETURNS cstring
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION evector_recv(internal, oid, integer) RETURNS evector
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION evector_send(evector) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;

-- STORAGE main: keep vectors in the heap row (a 784-dim evector is 3.2 kB, past the 2 kB TOAST
-- threshold), so fetching a search result's row does not also walk the TOAST index; measured
-- ~16% more queries per second than external. Vectors too large for a page still move out of
-- line. (Compression is attempted and abandoned after the first kilobyte: ciphertext is random.)
CREATE TYPE evector (
    INPUT     = evector_in,
    OUTPUT    = evector_out,
    TYPMOD_IN = evector_typmod_in,
    TYPMOD_OUT = evector_typmod_out,
    RECEIVE   = evector_recv,
    SEND      = evector_send,
    STORAGE   = main
);
COMMENT ON TYPE evector IS 'AES-256-GCM encrypted float4 vector; text form [1,2,3] as pgvector';

CREATE FUNCTION evector(evector, integer, boolean) RETURNS evector
    AS 'MODULE_PATHNAME', 'evector_coerce' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE CAST (evector AS evector) WITH FUNCTION evector(evector, integer, boolean) AS IMPLICIT;

CREATE FUNCTION evector(real[], integer, boolean) RETURNS evector
    AS 'MODULE_PATHNAME', 'evector_from_real_array' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE CAST (real[] AS evector) WITH FUNCTION evector(real[], integer, boolean) AS ASSIGNMENT;

CREATE FUNCTION evector_to_real_array(evector) RETURNS real[]
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE CAST (evector AS real[]) WITH FUNCTION evector_to_real_array(evector) AS ASSIGNMENT;

CREATE FUNCTION l2_distance(evector, evector) RETURNS float8
    AS 'MODULE_PATHNAME', 'evector_l2_distance' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION inner_product(evector, evector) RETURNS float8
    AS 'MODULE_PATHNAME', 'evector_inner_product' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION vector_negative_inner_product(evector, evector) RETURNS float8
    AS 'MODULE_PATHNAME', 'evector_negative_inner_product' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION cosine_distance(evector, evector) RETURNS float8
    AS 'MODULE_PATHNAME', 'evector_cosine_distance' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION l1_distance(evector, evector) RETURNS float8
    AS 'MODULE_PATHNAME', 'evector_l1_distance' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;
CREATE FUNCTION vector_dims(evector) RETURNS integer
    AS 'MODULE_PATHNAME', 'evector_dims' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_norm(evector) RETURNS float8
    AS 'MODULE_PATHNAME', 'evector_norm' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 50;

-- COST 50: every call decrypts (TOAST fetch + AES-GCM); the planner weighs that against the index.
CREATE OPERATOR <-> (LEFTARG = evector, RIGHTARG = evector, FUNCTION = l2_distance, COMMUTATOR = '<->');
CREATE OPERATOR <#> (LEFTARG = evector, RIGHTARG = evector, FUNCTION = vector_negative_inner_product, COMMUTATOR = '<#>');
CREATE OPERATOR <=> (LEFTARG = evector, RIGHTARG = evector, FUNCTION = cosine_distance, COMMUTATOR = '<=>');
CREATE OPERATOR <+> (LEFTARG = evector, RIGHTARG = evector, FUNCTION = l1_distance, COMMUTATOR = '<+>');
-- etext and ejsonb: encrypted content and metadata.

CREATE TYPE etext;
CREATE FUNCTION etext_in(cstring) RETURNS etext
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION etext_out(etext) RETURNS cstring
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION etext_recv(internal) RETURNS etext
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION etext_send(etext) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE TYPE etext (
    INPUT = etext_in, OUTPUT = etext_out, RECEIVE = etext_recv, SEND = etext_send,
    STORAGE = external, CATEGORY = 'S'
);
COMMENT ON TYPE etext IS 'AES-256-GCM encrypted text';

CREATE FUNCTION etext(text) RETURNS etext
    AS 'MODULE_PATHNAME', 'etext_from_text' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE CAST (text AS etext) WITH FUNCTION etext(text) AS ASSIGNMENT;
CREATE FUNCTION etext_to_text(etext) RETURNS text
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE CAST (etext AS text) WITH FUNCTION etext_to_text(etext);

CREATE TYPE ejsonb;
CREATE FUNCTION ejsonb_in(cstring) RETURNS ejsonb
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ejsonb_out(ejsonb) RETURNS cstring
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ejsonb_recv(internal) RETURNS ejsonb
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ejsonb_send(ejsonb) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE TYPE ejsonb (
    INPUT = ejsonb_in, OUTPUT = ejsonb_out, RECEIVE = ejsonb_recv, SEND = ejsonb_send,
    STORAGE = external
);
COMMENT ON TYPE ejsonb IS 'AES-256-GCM encrypted jsonb';

CREATE FUNCTION ejsonb(jsonb) RETURNS ejsonb
    AS 'MODULE_PATHNAME', 'ejsonb_from_jsonb' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE CAST (jsonb AS ejsonb) WITH FUNCTION ejsonb(jsonb) AS ASSIGNMENT;
CREATE FUNCTION ejsonb_to_jsonb(ejsonb) RETURNS jsonb
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE CAST (ejsonb AS jsonb) WITH FUNCTION ejsonb_to_jsonb(ejsonb);

CREATE FUNCTION ejsonb_object_field(ejsonb, text) RETURNS jsonb
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ejsonb_object_field_text(ejsonb, text) RETURNS text
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ejsonb_contains(ejsonb, jsonb) RETURNS boolean
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE OPERATOR -> (LEFTARG = ejsonb, RIGHTARG = text, FUNCTION = ejsonb_object_field);
CREATE OPERATOR ->> (LEFTARG = ejsonb, RIGHTARG = text, FUNCTION = ejsonb_object_field_text);
CREATE OPERATOR @> (LEFTARG = ejsonb, RIGHTARG = jsonb, FUNCTION = ejsonb_contains);
-- vault_hnsw: an HNSW index whose pages hold only ciphertext, searched per vault.

CREATE FUNCTION vault_hnsw_handler(internal) RETURNS index_am_handler
    AS 'MODULE_PATHNAME' LANGUAGE C;
CREATE ACCESS METHOD vault_hnsw TYPE INDEX HANDLER vault_hnsw_handler;
COMMENT ON ACCESS METHOD vault_hnsw IS 'encrypted HNSW index for evector, searched per vault';

-- Support function 1 of each opclass names its metric.
CREATE FUNCTION vault_hnsw_metric_l2(internal) RETURNS integer
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vault_hnsw_metric_ip(internal) RETURNS integer
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vault_hnsw_metric_cosine(internal) RETURNS integer
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OPERATOR CLASS evector_l2_ops DEFAULT FOR TYPE evector USING vault_hnsw AS
    OPERATOR 1 <-> (evector, evector) FOR ORDER BY float_ops,
    FUNCTION 1 vault_hnsw_metric_l2(internal);
CREATE OPERATOR CLASS evector_ip_ops FOR TYPE evector USING vault_hnsw AS
    OPERATOR 1 <#> (evector, evector) FOR ORDER BY float_ops,
    FUNCTION 1 vault_hnsw_metric_ip(internal);
CREATE OPERATOR CLASS evector_cosine_ops FOR TYPE evector USING vault_hnsw AS
    OPERATOR 1 <=> (evector, evector) FOR ORDER BY float_ops,
    FUNCTION 1 vault_hnsw_metric_cosine(internal);

CREATE FUNCTION vault.hnsw_verify(index regclass)
    RETURNS TABLE ("check" text, ok boolean, detail text)
    AS 'MODULE_PATHNAME', 'vault_hnsw_verify' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION vault.hnsw_verify(regclass) IS 'checks a vault_hnsw index: structure, links, reachability, decryption';
REVOKE EXECUTE ON FUNCTION vault.hnsw_verify(regclass) FROM PUBLIC;

CREATE FUNCTION vault.index_cache_stats()
    RETURNS TABLE (index regclass, representation text, resident_bytes bigint, vectors bigint,
                   vaults integer, resident_vaults integer, loads bigint, hits bigint,
                   evictions bigint)
    AS 'MODULE_PATHNAME', 'vault_index_cache_stats' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vault.index_cache_stats() IS 'the shared vault_hnsw cache, this database: what each index holds and how it was used since the server started';
REVOKE ALL ON FUNCTION vault.index_cache_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vault.index_cache_stats() TO pg_monitor;

CREATE VIEW vault.index_cache AS SELECT * FROM vault.index_cache_stats();
COMMENT ON VIEW vault.index_cache IS 'per vault_hnsw index: representation in the shared cache (sq8, float32, pages, none once evicted), resident bytes, elements, vaults, vaults whose sub-graph is loaded, full loads, acquisitions served, evictions';
REVOKE ALL ON vault.index_cache FROM PUBLIC;
GRANT SELECT ON vault.index_cache TO pg_monitor;

CREATE FUNCTION vault.prewarm(index regclass) RETURNS text
    AS 'MODULE_PATHNAME', 'vault_prewarm' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION vault.prewarm(regclass) IS 'loads a vault_hnsw index into the shared cache now; returns the representation it got (needs SELECT on the table)';
REVOKE EXECUTE ON FUNCTION vault.prewarm(regclass) FROM PUBLIC;
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
-- Key rotation: the master key (re-wrap the keyring) and vault data keys (new version,
-- re-encryption of old values, retirement of old versions).

CREATE FUNCTION vault.rotate_master_key(new_key_file text DEFAULT NULL, new_key_command text DEFAULT NULL)
    RETURNS integer AS 'MODULE_PATHNAME', 'vault_rotate_master_key' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vault.rotate_master_key(text, text) IS 're-wraps the keyring under a new master key (superuser); returns the entries re-wrapped';
REVOKE EXECUTE ON FUNCTION vault.rotate_master_key(text, text) FROM PUBLIC;

CREATE FUNCTION vault.rotate_key(vault text) RETURNS integer
    AS 'MODULE_PATHNAME', 'vault_rotate_key' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION vault.rotate_key(text) IS 'creates the vault''s next data key version; new values use it at once (admin)';

CREATE FUNCTION vault.vault_id(vault text) RETURNS bigint
    AS 'MODULE_PATHNAME', 'vault_vault_id' LANGUAGE C STRICT STABLE;
COMMENT ON FUNCTION vault.vault_id(text) IS 'the id of a vault you can access (as in vault.vault_of), NULL otherwise';

CREATE FUNCTION vault.key_version_of(evector) RETURNS integer
    AS 'MODULE_PATHNAME', 'vault_key_version_of' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vault.key_version_of(etext) RETURNS integer
    AS 'MODULE_PATHNAME', 'vault_key_version_of' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vault.key_version_of(ejsonb) RETURNS integer
    AS 'MODULE_PATHNAME', 'vault_key_version_of' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION vault.reseal(evector) RETURNS evector
    AS 'MODULE_PATHNAME', 'vault_reseal' LANGUAGE C STRICT VOLATILE;
CREATE FUNCTION vault.reseal(etext) RETURNS etext
    AS 'MODULE_PATHNAME', 'vault_reseal' LANGUAGE C STRICT VOLATILE;
CREATE FUNCTION vault.reseal(ejsonb) RETURNS ejsonb
    AS 'MODULE_PATHNAME', 'vault_reseal' LANGUAGE C STRICT VOLATILE;

-- Can values of a type hold encrypted values (evector, etext, ejsonb, domains over them, arrays
-- of them, composite types with such fields, at any depth)?
CREATE FUNCTION vault._holds_encrypted(regtype) RETURNS boolean
    AS 'MODULE_PATHNAME', 'vault_holds_encrypted' LANGUAGE C STABLE STRICT PARALLEL SAFE;

-- How many values of a vault under key versions lo..hi a value holds (headers only, at any
-- nesting depth); what rotation counts with.
CREATE FUNCTION vault._sealed_count(value anyelement, vault_id bigint, lo integer, hi integer)
    RETURNS integer AS 'MODULE_PATHNAME', 'vault_sealed_count' LANGUAGE C STABLE STRICT PARALLEL SAFE;

-- The value with every value of the vault under an older key version sealed again (write).
CREATE FUNCTION vault._reseal_nested(value anyelement, vault_id bigint) RETURNS anyelement
    AS 'MODULE_PATHNAME', 'vault_reseal_nested' LANGUAGE C STRICT VOLATILE;

-- The vault ids of every encrypted value inside a value (vault.protect on array and composite
-- columns).
CREATE FUNCTION vault._vault_ids(value anyelement) RETURNS bigint[]
    AS 'MODULE_PATHNAME', 'vault_vault_ids' LANGUAGE C STABLE STRICT PARALLEL SAFE;

-- Every column of this database that can hold encrypted values: tables (partitions and
-- inheritance children each on their own; partitioned parents hold no rows) and materialized
-- views, whatever the column's type wraps them in. The one enumeration rotation uses.
CREATE FUNCTION vault._encrypted_columns() RETURNS TABLE (relid regclass, column_name name)
LANGUAGE sql STABLE AS $$
    SELECT a.attrelid::pg_catalog.regclass, a.attname
    FROM pg_catalog.pg_attribute a
    JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) a.attrelid
    WHERE c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'm']::pg_catalog."char"[])
      AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
      AND c.relnamespace OPERATOR(pg_catalog.<>) 'vault'::pg_catalog.regnamespace
      AND vault._holds_encrypted(a.atttypid)
    ORDER BY a.attrelid, a.attnum
$$;

-- The relations that hold values of a vault under key versions lo..hi: counted as the extension
-- owner (another session's temporary table cannot be read: remaining is NULL), with the owner,
-- whether the owner has a level on the vault, and why the caller may not rewrite it in place
-- (NULL: it may), and whether the column is scalar (an encrypted type or a domain over one).
-- Needs write access to the vault.
CREATE FUNCTION vault._key_version_holders(vault text, lo integer, hi integer)
RETURNS TABLE (relation regclass, column_name name, owner regrole, remaining bigint,
               owner_has_rights boolean, not_rewritable text, scalar boolean)
    AS 'MODULE_PATHNAME', 'vault_key_version_holders' LANGUAGE C STRICT VOLATILE;

-- Values of a vault under key versions lo..hi left in one column, counted past row-level
-- security (write access to the vault).
CREATE FUNCTION vault._remaining_values(relation regclass, column_name name, vault text, lo integer, hi integer)
    RETURNS bigint AS 'MODULE_PATHNAME', 'vault_remaining_values' LANGUAGE C STRICT VOLATILE;

-- Why the current role may not rewrite a relation in place with vault.reencrypt (NULL: it may).
CREATE FUNCTION vault._not_rewritable(relation regclass) RETURNS text
    AS 'MODULE_PATHNAME', 'vault_not_rewritable' LANGUAGE C STRICT VOLATILE;

-- Rewrites the values of a vault sealed under an older key version, in batches, committing
-- after each batch so other sessions keep reading and writing. Needs write access to the vault.
-- It touches only the columns that hold such values, and only in tables the caller owns (or
-- whose owner it is a member of) where an UPDATE runs no code owned by another role (triggers,
-- rules, policies, constraints, generated columns, index expressions); it selects the rows
-- first and updates only those, so no statement trigger fires for nothing. Everything else is
-- reported (WARNING) and left as it is. CALL vault.reencrypt('acme');
CREATE PROCEDURE vault.reencrypt(vault text, batch_size integer DEFAULT 5000)
LANGUAGE plpgsql AS $$
DECLARE
    vid bigint := vault.vault_id(vault);
    cur integer;
    item record;
    ids pg_catalog.tid[];
    n bigint;
    total bigint := 0;
    left_over bigint := 0;
    why pg_catalog.text;
BEGIN
    IF vid IS NULL THEN
        RAISE EXCEPTION 'vault "%" does not exist or is not accessible', vault USING ERRCODE = '42704';
    END IF;
    SELECT v.key_version INTO cur FROM vault.vaults v WHERE v.name OPERATOR(pg_catalog.=) vault;
    FOR item IN SELECT * FROM vault._key_version_holders(vault, 1, cur OPERATOR(pg_catalog.-) 1) LOOP
        IF item.not_rewritable IS NOT NULL THEN
            left_over := left_over OPERATOR(pg_catalog.+) coalesce(item.remaining, 0);
            RAISE WARNING 'vault.reencrypt did not rewrite column % of %: %',
                pg_catalog.quote_ident(item.column_name), item.relation, item.not_rewritable
                USING DETAIL = pg_catalog.format('%s values of vault "%s" in it (owner %s) use an older key version.',
                                                 coalesce(item.remaining::pg_catalog.text, 'an unknown number of'),
                                                 vault, item.owner),
                      HINT = CASE WHEN item.owner_has_rights
                                  THEN 'Its owner has access to the vault, so these are the vault''s data: fix what is named above (or have its owner rewrite them), then call again.'
                                  ELSE 'Its owner has no access to the vault: vault.retire_key_version(vault, version, force => true) shreds these copies with the version.' END;
            CONTINUE;
        END IF;
        LOOP
            -- Checked again under a lock that keeps triggers, rules, policies, constraints and
            -- indexes from being added until the batch commits.
            EXECUTE pg_catalog.format('LOCK TABLE ONLY %s IN ROW EXCLUSIVE MODE', item.relation);
            why := vault._not_rewritable(item.relation);
            IF why IS NOT NULL THEN
                left_over := left_over OPERATOR(pg_catalog.+) item.remaining;
                RAISE WARNING 'vault.reencrypt stopped rewriting column % of %: %',
                    pg_catalog.quote_ident(item.column_name), item.relation, why;
                EXIT;
            END IF;
            -- FOR UPDATE: only rows the caller may update (row-level security applies the UPDATE
            -- policies), locked until the batch commits.
            EXECUTE pg_catalog.format('SELECT pg_catalog.array_agg(ctid) FROM (SELECT ctid FROM ONLY %s '
                                      'WHERE vault._sealed_count(%I, $1, 1, $2) OPERATOR(pg_catalog.>) 0 '
                                      'LIMIT $3 FOR UPDATE) s',
                                      item.relation, item.column_name)
                INTO ids USING vid, cur OPERATOR(pg_catalog.-) 1, batch_size;
            EXIT WHEN ids IS NULL;
            -- A scalar column (or a domain over one) holds one value of this vault per row
            -- selected: vault.reseal; arrays and composites are rebuilt around their values.
            EXECUTE pg_catalog.format(CASE WHEN item.scalar
                                           THEN 'UPDATE ONLY %1$s SET %2$I = vault.reseal(%2$I) '
                                           ELSE 'UPDATE ONLY %1$s SET %2$I = vault._reseal_nested(%2$I, $1) ' END
                                      OPERATOR(pg_catalog.||) 'WHERE ctid OPERATOR(pg_catalog.=) ANY ($2)',
                                      item.relation, item.column_name)
                USING vid, ids;
            GET DIAGNOSTICS n = ROW_COUNT;
            total := total OPERATOR(pg_catalog.+) n;
            COMMIT;
            EXIT WHEN n OPERATOR(pg_catalog.=) 0;
        END LOOP;
        IF why IS NULL THEN
            -- What is left in the column (counted past row-level security): rows the caller
            -- may not read or update.
            n := vault._remaining_values(item.relation, item.column_name, vault, 1, cur OPERATOR(pg_catalog.-) 1);
            IF n OPERATOR(pg_catalog.>) 0 THEN
                left_over := left_over OPERATOR(pg_catalog.+) n;
                RAISE WARNING 'vault.reencrypt could not rewrite % values in column % of %',
                    n, pg_catalog.quote_ident(item.column_name), item.relation
                    USING DETAIL = 'Row-level security keeps you from reading or updating their rows: they also hold values of vaults you cannot read or write.',
                          HINT = 'As the table''s owner, ALTER TABLE ... NO FORCE ROW LEVEL SECURITY while you call vault.reencrypt again, or have a role with access to those vaults call it.';
            END IF;
        END IF;
    END LOOP;
    RAISE NOTICE '% values re-encrypted under key version % of vault "%"', total, cur, vault
        USING HINT = CASE WHEN left_over OPERATOR(pg_catalog.=) 0
                          THEN 'VACUUM the tables, then vault.retire_key_version(vault, old_version) shreds old versions.'
                          ELSE 'Some values were left as they are (see the warnings above).' END;
END $$;

CREATE FUNCTION vault.retire_key_version(vault text, version integer, force boolean DEFAULT false) RETURNS void
    AS 'MODULE_PATHNAME', 'vault_retire_key_version' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION vault.retire_key_version(text, integer, boolean) IS 'shreds an old key version once no live value or index entry uses it (admin); force => true also shreds it while copies held by roles without access to the vault still use it';

CREATE FUNCTION vault.seal_count(vault text, version integer) RETURNS bigint
    AS 'MODULE_PATHNAME', 'vault_seal_count' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION vault.seal_count(text, integer) IS 'AES-GCM seals under a key version (an upper bound after restarts); rotate well before 2^32';
-- No stored derivation of an encrypted value: generated columns, index expressions and partial-
-- index predicates that read encrypted columns, and encrypted constants kept in defaults, CHECK
-- constraints and view queries, are refused at the end of the DDL command
-- (src/type/ddl_guard.cpp explains the rule and what it does not cover).
CREATE FUNCTION vault._ddl_guard() RETURNS event_trigger
    AS 'MODULE_PATHNAME', 'vault_ddl_guard' LANGUAGE C;
REVOKE EXECUTE ON FUNCTION vault._ddl_guard() FROM PUBLIC;
CREATE EVENT TRIGGER vault_ddl_guard ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE', 'CREATE INDEX', 'ALTER INDEX', 'CREATE TABLE AS',
                 'SELECT INTO', 'CREATE MATERIALIZED VIEW', 'CREATE FOREIGN TABLE', 'CREATE VIEW',
                 'ALTER VIEW')
    EXECUTE FUNCTION vault._ddl_guard();
-- One vault identity per keyring (issue 14; docs/design.md). A vault's keyring entries are
-- claimed by the database that created it; a copied catalog (CREATE DATABASE ... TEMPLATE, a
-- restored dump) is refused the original's keys until a superuser adopts its vaults, which
-- re-wraps the same data keys under a keyring id of the copy's own.

-- The keyring id under which this database keeps a vault's entries (NULL: the vault id).
ALTER TABLE vault._vaults ADD COLUMN keyring_id bigint CHECK (keyring_id > 0);
CREATE UNIQUE INDEX _vaults_keyring_id ON vault._vaults (keyring_id);

-- The object that holds pg_shdepend's record of every role the vault catalog names (owners,
-- grantees, owners of live API keys), so DROP ROLE in any database of the cluster is refused.
CREATE TABLE vault._roles_in_use ();
COMMENT ON TABLE vault._roles_in_use IS 'vector_vault internal: roles that own or may use vaults of this database depend on this table (pg_shdepend)';
REVOKE ALL ON vault._roles_in_use FROM PUBLIC;

CREATE FUNCTION vault.adopt_copied_vaults(take_over boolean DEFAULT false)
    RETURNS TABLE (vault text, vault_id bigint, keyring_id bigint, action text)
    AS 'MODULE_PATHNAME', 'vault_adopt_copied_vaults' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION vault.adopt_copied_vaults(boolean) IS 'gives a copied database (TEMPLATE copy, restored dump) keyring entries of its own for its vaults (superuser only); take_over moves the original''s claim here instead';
REVOKE EXECUTE ON FUNCTION vault.adopt_copied_vaults(boolean) FROM PUBLIC;

-- Any change of the roles the catalog names (our functions, API-key functions, a restore's COPY)
-- brings pg_shdepend in line at the end of the statement.
CREATE FUNCTION vault._sync_role_dependencies() RETURNS trigger
    AS 'MODULE_PATHNAME', 'vault_sync_role_dependencies' LANGUAGE C;
REVOKE EXECUTE ON FUNCTION vault._sync_role_dependencies() FROM PUBLIC;
CREATE TRIGGER _vaults_roles AFTER INSERT OR UPDATE OR DELETE ON vault._vaults
    FOR EACH STATEMENT EXECUTE FUNCTION vault._sync_role_dependencies();
CREATE TRIGGER _grants_roles AFTER INSERT OR UPDATE OR DELETE ON vault._grants
    FOR EACH STATEMENT EXECUTE FUNCTION vault._sync_role_dependencies();
CREATE TRIGGER _api_keys_roles AFTER INSERT OR UPDATE OR DELETE ON vault._api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION vault._sync_role_dependencies();
