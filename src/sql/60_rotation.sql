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

-- Encrypted columns of user tables in this database.
CREATE FUNCTION vault._encrypted_columns() RETURNS TABLE (relid regclass, column_name name)
LANGUAGE sql STABLE AS $$
    SELECT a.attrelid::regclass, a.attname
    FROM pg_catalog.pg_attribute a
    JOIN pg_catalog.pg_class c ON c.oid = a.attrelid AND c.relkind IN ('r', 'p')
    JOIN pg_catalog.pg_depend d ON d.objid = a.atttypid AND d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass
    JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'vector_vault'
    WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relnamespace <> 'vault'::regnamespace
$$;

-- How many live values of a vault each encrypted column still holds under a key version.
CREATE FUNCTION vault._values_using(vault_id bigint, key_version integer)
RETURNS TABLE (table_name text, column_name text, remaining bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    col record;
BEGIN
    FOR col IN SELECT * FROM vault._encrypted_columns() LOOP
        table_name := col.relid::text;
        column_name := col.column_name;
        EXECUTE format('SELECT count(*) FROM %s WHERE vault.vault_of(%I) = $1 AND vault.key_version_of(%I) = $2',
                       col.relid, col.column_name, col.column_name)
            INTO remaining USING vault_id, key_version;
        RETURN NEXT;
    END LOOP;
END $$;
REVOKE EXECUTE ON FUNCTION vault._values_using(bigint, integer) FROM PUBLIC;

-- Rewrites every value of a vault sealed under an older key version, in batches, committing
-- after each batch so other sessions keep reading and writing. Needs write access to the vault
-- and UPDATE on the tables. CALL vault.reencrypt('acme');
CREATE PROCEDURE vault.reencrypt(vault text, batch_size integer DEFAULT 5000)
LANGUAGE plpgsql AS $$
DECLARE
    vid bigint := vault.vault_id(vault);
    cur integer;
    col record;
    n bigint;
    total bigint := 0;
BEGIN
    IF vid IS NULL THEN
        RAISE EXCEPTION 'vault "%" does not exist or is not accessible', vault USING ERRCODE = '42704';
    END IF;
    SELECT v.key_version INTO cur FROM vault.vaults v WHERE v.name = vault;
    FOR col IN SELECT * FROM vault._encrypted_columns() LOOP
        LOOP
            EXECUTE format('UPDATE %1$s SET %2$I = vault.reseal(%2$I) WHERE ctid = ANY (ARRAY(SELECT ctid FROM %1$s '
                           'WHERE vault.vault_of(%2$I) = $1 AND vault.key_version_of(%2$I) < $2 LIMIT $3))',
                           col.relid, col.column_name)
                USING vid, cur, batch_size;
            GET DIAGNOSTICS n = ROW_COUNT;
            total := total + n;
            COMMIT;
            EXIT WHEN n = 0;
        END LOOP;
    END LOOP;
    RAISE NOTICE '% values re-encrypted under key version % of vault "%"', total, cur, vault
        USING HINT = 'VACUUM the tables, then vault.retire_key_version(vault, old_version) shreds old versions.';
END $$;

CREATE FUNCTION vault.retire_key_version(vault text, version integer) RETURNS void
    AS 'MODULE_PATHNAME', 'vault_retire_key_version' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION vault.retire_key_version(text, integer) IS 'shreds an old key version once no live value or index entry uses it (admin)';

CREATE FUNCTION vault.seal_count(vault text, version integer) RETURNS bigint
    AS 'MODULE_PATHNAME', 'vault_seal_count' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION vault.seal_count(text, integer) IS 'AES-GCM seals under a key version (an upper bound after restarts); rotate well before 2^32';
