-- 01_setup: installs vector_vault and the helpers the later tests share.
-- The server is started with vector_vault preloaded, a master key and a keyring (scripts/test.sh).

CREATE EXTENSION vector_vault;

-- The extension owns schema "vault" and the three encrypted types.
SELECT extname, extversion FROM pg_extension WHERE extname = 'vector_vault';
SELECT typname FROM pg_type WHERE typname IN ('evector', 'etext', 'ejsonb') ORDER BY 1;
SELECT nspname FROM pg_namespace WHERE nspname = 'vault';

-- Every vector_vault.* setting is defined; a typo in the prefix is refused, not kept silently.
SELECT name, setting FROM pg_settings WHERE name = 'vector_vault.vault';
SET vector_vault.no_such_setting = 'x';

-- sqlstate_of(q): runs q and returns 'ok', or the SQLSTATE and message of the error it raised.
-- EXECUTE discards result rows without calling type output functions, so a query that should
-- decrypt must do it in an expression (v::text, a distance, a cast), not just select the column.
CREATE FUNCTION sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
SELECT sqlstate_of('SELECT 1');
SELECT sqlstate_of('SELECT 1/0');

-- The vault the type tests (10_*, 11_*, 12_*) seal their values under; owned by the superuser
-- that runs the tests.
SELECT vault.create_vault('regress');
SELECT name, owner = current_user::regrole AS owned_by_me, access, key_version FROM vault.vaults;
