// client.js — a Node.js application of vector_vault, written as an application would be:
// node-postgres (pg) over TCP with SCRAM, an API key passed to vault.login() as a bind
// parameter, vectors sent with pgvector-node's toSql() and read back with its fromSql(), and a
// nearest-neighbour search ORDER BY embedding <-> $1 LIMIT 3 with the query vector bound.
//
// Input (environment): VV_HOST, VV_PORT, VV_DBNAME, VV_USER, VV_PASSWORD, VV_API_KEY,
// VV_ROWS (JSON array of {body, meta, embedding}), VV_QUERY (JSON array: the query vector).
// Output (stdout): one JSON object; the TAP driver (../01_node_pg.pl) checks it.
'use strict';

const pg = require('pg');
const pgvector = require('pgvector');

function env(name) {
  const v = process.env[name];
  if (v === undefined || v === '') throw new Error(`environment variable ${name} is not set`);
  return v;
}

async function main() {
  const rows = JSON.parse(env('VV_ROWS'));
  const query = JSON.parse(env('VV_QUERY'));
  const client = new pg.Client({
    host: env('VV_HOST'),
    port: Number(env('VV_PORT')),
    database: env('VV_DBNAME'),
    user: env('VV_USER'),
    password: env('VV_PASSWORD'),
    application_name: 'vv-node-client',
  });
  await client.connect();
  const out = { node: process.version, pg: require('pg/package.json').version,
                pgvector: require('pgvector/package.json').version };
  try {
    // Parse the encrypted types like their plaintext counterparts (what pgvector's
    // registerTypes does for "vector"; our column types are evector and ejsonb).
    const types = await client.query(
      "SELECT typname, oid FROM pg_type WHERE typname IN ('evector', 'ejsonb', 'etext')");
    const oid = Object.fromEntries(types.rows.map((r) => [r.typname, Number(r.oid)]));
    out.types = Object.keys(oid).sort();
    const parsers = {
      [oid.evector]: (v) => pgvector.fromSql(v),
      [oid.ejsonb]: (v) => JSON.parse(v),
    };
    const typeOpts = { getTypeParser: (id, format) => parsers[id] || pg.types.getTypeParser(id, format) };

    const run = (text, values) => client.query({ text, values, types: typeOpts });

    out.ssl = (await run('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows[0].ssl;
    // Before logging in the application role sees no rows (row-level security by vault).
    out.visible_before_login = Number((await run('SELECT count(*) AS n FROM items')).rows[0].n);

    const login = await run('SELECT vault.login($1) AS vault', [env('VV_API_KEY')]);
    out.login = login.rows[0].vault;
    out.principal = (await run('SELECT vault.principal() AS p')).rows[0].p;

    out.inserted = [];
    for (const r of rows) {
      const res = await run(
        'INSERT INTO items (body, meta, embedding) VALUES ($1, $2, $3) RETURNING id',
        [r.body, JSON.stringify(r.meta), pgvector.toSql(r.embedding)]);
      out.inserted.push(Number(res.rows[0].id));
    }

    const search = 'SELECT id, body, meta, embedding, embedding <-> $1 AS distance ' +
                   'FROM items ORDER BY embedding <-> $1 LIMIT 3';
    const q = pgvector.toSql(query);
    const neighbours = (res) => res.rows.map((r) => ({
      id: Number(r.id), body: r.body, meta: r.meta, embedding: r.embedding,
      distance: Number(r.distance),
    }));
    // With a handful of rows the planner sorts a sequential scan; then once more through the
    // vault_hnsw index (enable_seqscan off), with the query vector bound both times.
    let res = await run(search, [q]);
    out.neighbours = neighbours(res);
    out.embedding_is_array = res.rows.every((r) => Array.isArray(r.embedding));
    await run('SET enable_seqscan = off');
    const plan = await run(`EXPLAIN (FORMAT JSON, COSTS OFF) ${search}`, [q]);
    out.index_plan = JSON.stringify(plan.rows[0]['QUERY PLAN']);
    res = await run(search, [q]);
    out.index_neighbours = neighbours(res);
    await run('RESET enable_seqscan');

    // Everything back, in insertion order, to check the round trip of every value.
    const all = await run('SELECT id, body, meta, embedding FROM items ORDER BY id');
    out.all = all.rows.map((r) => ({ id: Number(r.id), body: r.body, meta: r.meta, embedding: r.embedding }));

    await run('SELECT vault.logout()');
    out.visible_after_logout = Number((await run('SELECT count(*) AS n FROM items')).rows[0].n);
  } finally {
    await client.end();
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  process.stderr.write(`client error: ${e.code || ''} ${e.message}\n`);
  process.exit(1);
});
