// codec.test.js — unit tests of vector-vault's text codec (no server): node --test test/
'use strict';

const test = require('node:test');
const assert = require('node:assert');
const vv = require('..');

test('toSql writes the evector text form', () => {
  assert.strictEqual(vv.toSql([1, 2.5, -3]), '[1,2.5,-3]');
  assert.strictEqual(vv.toSql(new Float32Array([0.5, 2])), '[0.5,2]');
  assert.strictEqual(vv.toSql(null), null);
});

test('toSql refuses non-finite elements with 22P02', () => {
  for (const bad of [NaN, Infinity, -Infinity, 'x']) {
    assert.throws(() => vv.toSql([1, bad]), (e) => e instanceof vv.VectorVaultError && e.code === '22P02');
  }
});

test('fromSql parses and refuses malformed text without echoing it', () => {
  assert.deepStrictEqual(vv.fromSql('[1,-2.5,3e-8]'), [1, -2.5, 3e-8]);
  assert.deepStrictEqual(vv.fromSql('[]'), []);
  assert.strictEqual(vv.fromSql(null), null);
  assert.throws(() => vv.fromSql('1,2,secret'), (e) => e.code === '22P02' && !e.message.includes('secret'));
});
