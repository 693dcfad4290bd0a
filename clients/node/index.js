// vector-vault — node-postgres (pg) support for the vector_vault PostgreSQL extension.
//
//   const vv = require('vector-vault');
//   await vv.registerTypes(client);           // evector -> number[], ejsonb -> object, etext -> string
//   vv.toSql([1, 2, 3]) === '[1,2,3]';        // a parameter for an evector (as pgvector's toSql)
//   const pool = new vv.VaultPool({ connectionString });       // or new vv.VaultPool(existingPgPool)
//   await pool.withKey(apiKey, async (client) => client.query('SELECT ...'));
//
// withKey checks a client out, runs BEGIN; SELECT vault.login($1, true) (a login that ends with the
// transaction), the callback, COMMIT (ROLLBACK if it throws), and before the client goes back to
// the pool ends any session login and vault selection the callback may have left
// (vault.logout(), RESET vector_vault.vault); a client that cannot be reset is destroyed, never
// reused. With a plain pg.Pool, a session login (SELECT vault.login($1)) stays on the pooled
// server session and the next checkout acts as that key.
'use strict';

// Finds vector_vault's types by extension membership (not by search_path).
const TYPES_SQL =
  "SELECT t.typname, t.oid::int AS oid, t.typarray::int AS typarray FROM pg_catalog.pg_type t " +
  "JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass " +
  "AND d.objid = t.oid AND d.deptype = 'e' " +
  "JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'vector_vault' " +
  "WHERE t.typname IN ('evector', 'etext', 'ejsonb')";

// An error of these helpers: an SQLSTATE-like code, a message and a hint (never a key).
class VectorVaultError extends Error {
  constructor(code, message, hint) {
    super(hint ? `${message} (hint: ${hint})` : message);
    this.name = 'VectorVaultError';
    this.code = code;
    this.hint = hint;
  }
}

// '[1,2,3]' -> [1, 2, 3] (null stays null).
function fromSql(text) {
  if (text === null || text === undefined) return null;
  if (typeof text !== 'string' || text[0] !== '[' || text[text.length - 1] !== ']') {
    throw new VectorVaultError('22P02', "malformed evector text (expected '[x,y,...]')");
  }
  const body = text.slice(1, -1).trim();
  return body === '' ? [] : body.split(',').map(Number);
}

// [1, 2, 3] (array or typed array) -> '[1,2,3]'; non-finite elements are refused.
function toSql(values) {
  if (values === null || values === undefined) return values;
  const arr = Array.from(values, Number);
  if (!arr.every(Number.isFinite)) {
    throw new VectorVaultError('22P02', 'evector elements must be finite numbers');
  }
  return '[' + arr.join(',') + ']';
}

// Parses a Postgres array literal with element parser fn (pg's own array parser).
function arrayOf(fn) {
  const pg = require('pg');
  return (text) => (text === null ? null : pg.types.arrayParser.create(text, fn).parse());
}

// Looks up the type OIDs of vector_vault in the connected database.
async function typeOids(client) {
  const res = await client.query(TYPES_SQL);
  const oids = Object.fromEntries(res.rows.map((r) => [r.typname, { oid: r.oid, array: r.typarray }]));
  if (!oids.evector || !oids.etext || !oids.ejsonb) {
    throw new VectorVaultError('42704', 'the vector_vault types were not found in this database',
      'Run CREATE EXTENSION vector_vault (as a superuser) in the database you connect to.');
  }
  return oids;
}

// Registers text parsers for evector, etext, ejsonb and their arrays on one client.
async function registerTypes(client) {
  const oids = await typeOids(client);
  const parsers = { evector: fromSql, etext: (v) => v, ejsonb: (v) => (v === null ? null : JSON.parse(v)) };
  for (const [name, fn] of Object.entries(parsers)) {
    client.setTypeParser(oids[name].oid, 'text', fn);
    client.setTypeParser(oids[name].array, 'text', arrayOf(fn));
  }
  return oids;
}

// Ends any session login and vault selection on a client (outside a transaction).
async function resetSession(client) {
  await client.query('SELECT vault.logout()');
  await client.query('RESET vector_vault.vault');
}

// A pg.Pool whose checkouts act as an API key for exactly one transaction.
class VaultPool {
  // poolOrConfig: an existing pg.Pool, or a config for a new one. options.registerTypes (default
  // true) registers the parsers on every client once.
  constructor(poolOrConfig, options = {}) {
    const pg = require('pg');
    this.pool = poolOrConfig instanceof pg.Pool ? poolOrConfig : new pg.Pool(poolOrConfig);
    this.registerTypes = options.registerTypes !== false;
    this.registered = new WeakSet();
  }

  // Checks a client out, registers types once per client, and resets any session state left on it.
  async checkout() {
    const client = await this.pool.connect();
    try {
      if (this.registerTypes && !this.registered.has(client)) {
        await registerTypes(client);
        this.registered.add(client);
      }
      return client;
    } catch (e) {
      client.release(e);
      throw e;
    }
  }

  // Runs fn(client) in one transaction that starts with SELECT vault.login(apiKey, true) (no login
  // when apiKey is null); commits, or rolls back when fn throws; resets the session before the
  // client goes back to the pool (destroys it when that fails). Returns fn's result.
  async withKey(apiKey, fn) {
    const client = await this.checkout();
    let broken = null;
    try {
      await client.query('BEGIN');
      try {
        if (apiKey !== null && apiKey !== undefined) {
          await client.query('SELECT vault.login($1, true)', [apiKey]);
        }
        const result = await fn(client);
        await client.query('COMMIT');
        return result;
      } catch (e) {
        await client.query('ROLLBACK').catch((err) => { broken = err; });
        throw e;
      }
    } finally {
      if (!broken) await resetSession(client).catch((err) => { broken = err; });
      client.release(broken || undefined);
    }
  }

  // One statement in a transaction acting as apiKey; resolves to pg's result.
  query(apiKey, text, values) {
    return this.withKey(apiKey, (client) => client.query(text, values));
  }

  // Closes the underlying pool.
  end() {
    return this.pool.end();
  }
}

module.exports = { registerTypes, resetSession, fromSql, toSql, typeOids, VaultPool, VectorVaultError, TYPES_SQL };
