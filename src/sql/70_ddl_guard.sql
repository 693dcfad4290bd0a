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
