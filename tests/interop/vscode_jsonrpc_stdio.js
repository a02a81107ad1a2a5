// vscode-jsonrpc over stdio with Content-Length framing: starts `groupd` as a language client
// starts a server (`ARGS… --stdio --clientProcessId=PID`) on a fresh database, calls it, then
// closes its stdin and requires exit status 0. Every answer is compared exactly.
//
//   GROUPD_BIN=target/debug/groupd GROUPD_DB=/tmp/x.redb node tests/interop/vscode_jsonrpc_stdio.js
'use strict';

// README "Clients": vscode-jsonrpc
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const rpc = require('vscode-jsonrpc/node');

const groupd = spawn(
  process.env.GROUPD_BIN || 'groupd',
  ['--db', process.env.GROUPD_DB || 'groupd.redb', '--stdio', `--clientProcessId=${process.pid}`],
  { stdio: ['pipe', 'pipe', 'inherit'] },
);
const complaints = []; // what vscode-jsonrpc logs about groupd's messages, such as stray answers
const logger = { error: (m) => complaints.push(m), warn: (m) => complaints.push(m), info() {}, log() {} };
const connection = rpc.createMessageConnection(
  new rpc.StreamMessageReader(groupd.stdout),
  new rpc.StreamMessageWriter(groupd.stdin),
  logger,
);
connection.listen();

async function main() {
  assert.equal(await connection.sendRequest('createGroup', 'Ops', 'ops'), 1); // positional
  assert.equal(await connection.sendRequest('createGroup', { name: 'Dev' }), 2); // named
  await connection.sendNotification('createGroup', 'Quiet'); // run, never answered
  assert.deepEqual(await connection.sendRequest('getGroup', rpc.ParameterStructures.byPosition, 1), {
    id: '1',
    external_id: 'ops',
    name: 'Ops',
  });
  assert.equal(await connection.sendRequest('updateGroup', { group_id: '1', name: 'Operations' }), true);
  assert.equal(await connection.sendRequest('removeGroup', rpc.ParameterStructures.byPosition, 2), true);
  assert.deepEqual(await connection.sendRequest('getAllGroups'), [
    { id: '1', external_id: 'ops', name: 'Operations' },
    { id: '3', external_id: '', name: 'Quiet' },
  ]);
  await assert.rejects(connection.sendRequest('getGroup', 'abc'), (err) => {
    assert.ok(err instanceof rpc.ResponseError);
    assert.deepEqual([err.code, err.message, err.data], [-32602, 'Invalid params', 'group_id must be an integer']);
    return true;
  });
// end of snippet
  await assert.rejects(connection.sendRequest('getgroup', rpc.ParameterStructures.byPosition, 1), (err) => {
    assert.deepEqual([err.code, err.message], [-32601, 'Method not found']);
    return true;
  });
  assert.equal(await connection.sendRequest('getGroup', rpc.ParameterStructures.byPosition, 2), false);
  // Non-ASCII: Content-Length counts bytes both ways.
  assert.equal(await connection.sendRequest('createGroup', 'Ångström ☃'), 4);
  assert.deepEqual(await connection.sendRequest('getGroup', { group_id: 4 }), {
    id: '4',
    external_id: '',
    name: 'Ångström ☃',
  });
  assert.deepEqual(complaints, []);
}

/** Closes stdin as a language client does at shutdown; resolves with the exit status. */
function shutdown() {
  return new Promise((resolve) => {
    groupd.on('exit', (code) => resolve(code));
    connection.dispose();
    groupd.stdin.end();
  });
}

const fs = require('node:fs');
const path = require('node:path');
const manifest = path.join(path.dirname(require.resolve('vscode-jsonrpc')), '..', '..', 'package.json');
const { version } = JSON.parse(fs.readFileSync(manifest, 'utf8'));
console.log(`vscode-jsonrpc ${version}, stdio, Content-Length`);
const deadline = setTimeout(() => {
  console.error('timed out: an answer never came');
  groupd.kill();
  process.exit(1);
}, 30_000);
main()
  .then(shutdown)
  .then(
    (code) => {
      clearTimeout(deadline);
      assert.equal(code, 0, 'groupd exits 0 when its stdin ends');
      console.log('ok: create, get, getAll, update, remove, errors, notification; exit 0 at EOF');
    },
    (err) => {
      console.error(err);
      groupd.kill();
      process.exit(1);
    },
  );
