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
