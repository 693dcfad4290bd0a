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

-- This backend's secret-buffer counters: buffers of plaintext and keys handed out, released by
-- the code that used them, and zeroed because an error reset their memory context first (tests
-- prove with it that no error path leaves a decrypted value or key behind; src/pg/secret.h).
CREATE FUNCTION vault._secret_wipes(OUT allocated bigint, OUT freed bigint, OUT wiped_on_reset bigint)
    RETURNS record AS 'MODULE_PATHNAME', 'vault_secret_wipes' LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
REVOKE EXECUTE ON FUNCTION vault._secret_wipes() FROM PUBLIC;

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
