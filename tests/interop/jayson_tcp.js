// jayson's TCP client (newline-delimited JSON, one connection per call) against groupd at
// $GROUPD_HOST:$GROUPD_PORT, on a fresh database. Every answer is compared exactly.
//
//   GROUPD_HOST=127.0.0.1 GROUPD_PORT=PORT node tests/interop/jayson_tcp.js
'use strict';

// README "Clients": jayson
const assert = require('node:assert/strict');
const jayson = require('jayson/promise');

const client = jayson.client.tcp({
  host: process.env.GROUPD_HOST || '127.0.0.1',
  port: Number(process.env.GROUPD_PORT || 7411),
});

async function main() {
  const created = await client.request('createGroup', ['Ops', 'ops'], 1);
  assert.deepEqual(created, { jsonrpc: '2.0', id: 1, result: 1 });
  const group = await client.request('getGroup', { group_id: 1 }, 'get-1');
  assert.deepEqual(group.result, { id: '1', external_id: 'ops', name: 'Ops' });
  const invalid = await client.request('getGroup', ['abc'], 3);
  assert.deepEqual(invalid.error, { code: -32602, message: 'Invalid params', data: 'group_id must be an integer' });
  const batch = await client.request([
    client.request('createGroup', ['Dev'], 4, false),
    client.request('createGroup', ['Silent'], null, false), // a notification: no answer
    client.request('nope', [], 5, false),
  ]);
  assert.deepEqual(batch, [
    { jsonrpc: '2.0', id: 4, result: 2 },
    { jsonrpc: '2.0', id: 5, error: { code: -32601, message: 'Method not found' } },
  ]);
// end of snippet
  // A generated id (a UUID string) is echoed too: jayson matches nothing, so check it here.
  const request = client.request('getAllGroups', [], undefined, false);
  const all = await client.request(request);
  assert.equal(all.id, request.id);
  assert.deepEqual(all.result, [
    { id: '2', external_id: '', name: 'Dev' },
    { id: '1', external_id: 'ops', name: 'Ops' },
    { id: '3', external_id: '', name: 'Silent' },
  ]);
  assert.deepEqual(await client.request('updateGroup', [1, 'Operations', null], 6), { jsonrpc: '2.0', id: 6, result: true });
  assert.deepEqual(await client.request('removeGroup', ['2'], 7), { jsonrpc: '2.0', id: 7, result: true });
  assert.deepEqual(await client.request('removeGroup', ['2'], 8), { jsonrpc: '2.0', id: 8, result: false });

  // A notification on its own: jayson writes it and closes the connection without waiting,
  // so its effect is looked for until it shows (bounded).
  const none = await client.request('createGroup', ['Quiet'], null);
  assert.equal(none, undefined);
  let names = [];
  for (let tries = 0; tries < 200 && !names.includes('Quiet'); tries++) {
    if (tries > 0) await new Promise((resolve) => setTimeout(resolve, 25));
    names = (await client.request('getAllGroups', [], 9)).result.map((g) => g.name);
  }
  assert.deepEqual(names, ['Operations', 'Quiet', 'Silent']);
  assert.deepEqual((await client.request('getGroup', [1], 10)).result, { id: '1', external_id: 'ops', name: 'Operations' });
}

const { version } = require('jayson/package.json');
console.log(`jayson ${version}, TCP, newline-delimited`);
main().then(
  () => console.log('ok: create, get, getAll, update, remove, errors, batch, notifications'),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
