// helpers_client.js — the vector-vault npm package (clients/node) with node-postgres and
// pgvector-node against a real server.
//
// A flow through VaultPool.withKey (each transaction logs in with vault.login($1, true)) that
// records what ClientSetup::check_flow reads: vectors sent with pgvector's toSql, read back by the
// package's registerTypes parsers. Then the leak: with a plain pg.Pool (max 1) a session login
// survives release() and the next checkout acts as the key (the control); through VaultPool a
// session login made by the callback is ended before the client goes back to the pool.
//
// Input (environment): VV_HOST, VV_PORT, VV_DBNAME, VV_USER, VV_PASSWORD, VV_API_KEY,
// VV_API_KEY_B (a key of another vault), VV_ROWS, VV_QUERY.
// Output (stdout): one JSON object; the TAP driver (../06_node_helpers.pl) checks it.
'use strict';

const pg = require('pg');
const pgvector = require('pgvector');
const vv = require('vector-vault');

function env(name) {
  const v = process.env[name];
  if (v === undefined || v === '') throw new Error(`environment variable ${name} is not set`);
  return v;
}

const config = () => ({
  host: env('VV_HOST'), port: Number(env('VV_PORT')), database: env('VV_DBNAME'),
  user: env('VV_USER'), password: env('VV_PASSWORD'), max: 1,
});

const WHO = "SELECT current_setting('vector_vault.vault', true) AS vault, vault.principal() AS p, " +
            'pg_backend_pid() AS pid, (SELECT count(*) FROM items)::int AS visible';

async function flow(key, rows, query) {
  const pool = new vv.VaultPool(config());
  const out = {};
  out.visible_before_login = await pool.withKey(null, async (c) => (await c.query(WHO)).rows[0].visible);
  await pool.withKey(key, async (c) => {
    const who = (await c.query(WHO)).rows[0];
    out.login = who.vault;
    out.principal = who.p;
    out.inserted = [];
    for (const r of rows) {
      const res = await c.query('INSERT INTO items (body, meta, embedding) VALUES ($1, $2, $3) RETURNING id',
        [r.body, JSON.stringify(r.meta), pgvector.toSql(r.embedding)]);
      out.inserted.push(Number(res.rows[0].id));
    }
  });
  const search = 'SELECT id, body, meta, embedding, embedding <-> $1 AS distance ' +
                 'FROM items ORDER BY embedding <-> $1 LIMIT 3';
  const q = vv.toSql(query);
  const shape = (res) => res.rows.map((r) => ({ id: Number(r.id), body: r.body, meta: r.meta,
    embedding: r.embedding, ...(r.distance !== undefined ? { distance: Number(r.distance) } : {}) }));
  await pool.withKey(key, async (c) => {
    let res = await c.query(search, [q]);
    out.neighbours = shape(res);
    out.types = res.rows.map((r) => `${Array.isArray(r.embedding)}/${typeof r.meta}/${typeof r.body}`)
      .filter((v, i, a) => a.indexOf(v) === i);
    await c.query('SET LOCAL enable_seqscan = off');
    const plan = await c.query(`EXPLAIN (COSTS OFF) ${search}`, [q]);
    out.index_plan = plan.rows.map((r) => r['QUERY PLAN']).join('\n');
    out.index_neighbours = shape(await c.query(search, [q]));
    out.all = shape(await c.query('SELECT id, body, meta, embedding FROM items ORDER BY id'));
    const arr = (await c.query('SELECT array_agg(embedding ORDER BY id) AS a, array_agg(body ORDER BY id) AS b FROM items')).rows[0];
    out.arrays = { evectors: arr.a.length, first_is_array: Array.isArray(arr.a[0]), bodies_match: arr.b[0] === out.all[0].body };
  });
  out.visible_after_logout = await pool.withKey(null, async (c) => (await c.query(WHO)).rows[0].visible);
  // An error inside withKey rolls back, and the next checkout acts as the role.
  try {
    await pool.withKey(key, async (c) => c.query('SELECT 1/0'));
  } catch (e) {
    out.error_code = e.code;
  }
  out.principal_after_error = await pool.withKey(null, async (c) => (await c.query(WHO)).rows[0].p);
  await pool.end();
  return out;
}

async function leaks(key, keyB) {
  const out = {};
  // Plain pg.Pool (the control): the session login survives release().
  const plain = new pg.Pool(config());
  let c = await plain.connect();
  const pid = (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
  await c.query('SELECT vault.login($1)', [key]);
  c.release();
  c = await plain.connect();
  const w = (await c.query(WHO)).rows[0];
  out.plain = { same_backend: w.pid === pid, principal: w.p, visible: w.visible };
  await c.query('SELECT vault.logout()');
  c.release();
  await plain.end();

  // VaultPool: the callback makes the same mistake (a session login after its own COMMIT).
  const pool = new vv.VaultPool(config());
  const first = await pool.withKey(key, async (client) => {
    const r = (await client.query(WHO)).rows[0];
    await client.query('COMMIT');
    await client.query('SELECT vault.login($1)', [key]);
    await client.query('BEGIN');
    return r;
  });
  const w2 = await pool.withKey(null, async (client) => (await client.query(WHO)).rows[0]);
  out.wrapped = { same_backend: w2.pid === first.pid, principal: w2.p, visible: w2.visible,
                  visible_inside: first.visible };
  // Keys A and B alternate on the single pooled connection: each sees only its own vault.
  const seen = [];
  for (const k of [key, keyB, key, null, keyB]) {
    seen.push(await pool.withKey(k, async (client) => {
      const r = (await client.query(WHO)).rows[0];
      return `${r.vault || '-'}:${r.visible}:${r.pid}`;
    }));
  }
  out.alternating = seen.map((s) => s.split(':').slice(0, 2).join(':'));
  out.alternating_backends = new Set(seen.map((s) => s.split(':')[2])).size;
  // pool.query: one statement as a key.
  out.query_helper = (await pool.query(key, 'SELECT count(*)::int AS n FROM items')).rows[0].n;
  await pool.end();
  return out;
}

async function main() {
  const rows = JSON.parse(env('VV_ROWS'));
  const query = JSON.parse(env('VV_QUERY'));
  const out = { node: process.version, pg: require('pg/package.json').version,
                vector_vault: require('vector-vault/package.json').version };
  out.flow = await flow(env('VV_API_KEY'), rows, query);
  out.leaks = await leaks(env('VV_API_KEY'), env('VV_API_KEY_B'));
  // Helper errors: a code and a hint, never the key.
  try {
    vv.toSql([1, NaN]);
  } catch (e) {
    out.tosql_error = { code: e.code, name: e.name };
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  process.stderr.write(`client error: ${e.code || ''} ${e.message}\n`);
  process.exit(1);
});
