// The MCP TypeScript SDK's Client over its StdioClientTransport runs a whole MCP session against
// groupd: it starts `groupd stdio` as an MCP host starts a tool server, initialize (protocol
// version, capabilities, serverInfo, instructions), ping, listTools (the five Group API procedures,
// each inputSchema and outputSchema compiled by the SDK's own Ajv validator), callTool for each
// procedure (the SDK checks each structuredContent against the tool's outputSchema), a procedure
// that reports failure (isError, a one-line text), arguments that do not fit (isError, the -32602
// reason), an unknown tool (the protocol error -32602), then close(): the SDK ends groupd's stdin
// and waits 2 s before it sends SIGTERM, so a close within that time means groupd exited by itself.
//
//   GROUPD_BIN=target/debug/groupd GROUPD_DB=/tmp/x.redb node tests/lifecycle-clients/mcp_typescript_session.mjs

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv';

const groupd = process.env.GROUPD_BIN || 'groupd';
const db = process.env.GROUPD_DB || 'groupd.redb';
const [name, version] = execFileSync(groupd, ['--version'], { encoding: 'utf8' }).trim().split(' ');
assert.equal(name, 'groupd');
const sdk = JSON.parse(readFileSync(new URL('./node_modules/@modelcontextprotocol/sdk/package.json', import.meta.url)));
console.log(`@modelcontextprotocol/sdk ${sdk.version} Client, StdioClientTransport, newline-delimited`);

const text = (value) => [{ type: 'text', text: value }];

async function session() {
  const transport = new StdioClientTransport({ command: groupd, args: ['stdio', '--db', db], stderr: 'inherit' });
  const client = new Client({ name: 'groupd-lifecycle-test', version: '1' });
  await client.connect(transport); // initialize, then notifications/initialized
  assert.deepEqual(client.getServerVersion(), { name: 'groupd', version });
  assert.deepEqual(client.getServerCapabilities(), { tools: { listChanged: false } });
  const instructions = client.getInstructions();
  assert.ok(instructions && !instructions.trim().includes('\n'), `instructions: ${instructions}`);
  assert.deepEqual(await client.ping(), {});

  const { tools } = await client.listTools();
  assert.deepEqual(
    tools.map((tool) => tool.name),
    ['createGroup', 'updateGroup', 'removeGroup', 'getGroup', 'getAllGroups'],
  );
  const ajv = new AjvJsonSchemaValidator();
  const inputs = {};
  for (const tool of tools) {
    assert.ok(tool.title && tool.description, tool.name);
    inputs[tool.name] = ajv.getValidator(tool.inputSchema); // throws on a schema Ajv cannot compile
    const output = ajv.getValidator(tool.outputSchema);
    // The procedures that can report failure admit its {result: false}; getAllGroups never does.
    if (tool.name !== 'getAllGroups') assert.ok(output({ result: false }).valid, `${tool.name} admits {result: false}`);
  }

  async function call(tool, args) {
    const { isError, content, structuredContent } = await client.callTool({ name: tool, arguments: args });
    if (!isError) assert.ok(inputs[tool](args).valid, `${tool} ${JSON.stringify(args)} fits its inputSchema`);
    return { isError, content, structuredContent };
  }
  const ok = (result) => ({ isError: false, content: text(JSON.stringify(result)), structuredContent: { result } });

  assert.deepEqual(await call('createGroup', { name: 'Ops', external_id: 'ops' }), ok(1));
  assert.deepEqual(await call('createGroup', { name: 'Dev' }), ok(2));
  assert.deepEqual(await call('getGroup', { group_id: 1 }), ok({ id: '1', external_id: 'ops', name: 'Ops' }));
  assert.deepEqual(await call('updateGroup', { group_id: '1', name: 'Operations' }), ok(true));
  assert.deepEqual(
    await call('getAllGroups', {}),
    ok([
      { id: '2', external_id: '', name: 'Dev' },
      { id: '1', external_id: 'ops', name: 'Operations' },
    ]),
  );
  assert.deepEqual(await call('removeGroup', { group_id: 2 }), ok(true));

  // Failures: the procedure's false, and arguments that do not fit.
  const failed = (why) => ({ isError: true, content: text(why), structuredContent: { result: false } });
  assert.deepEqual(await call('getGroup', { group_id: 2 }), failed('no group with id 2'));
  assert.deepEqual(await call('createGroup', { name: 'Operations' }), failed('a group named "Operations" already exists'));
  assert.deepEqual(await call('updateGroup', { group_id: 1, name: 'x'.repeat(101) }), failed('name must be 1 to 100 characters and not blank'));
  const refused = await client.callTool({ name: 'getGroup', arguments: { group_id: 'abc' } });
  assert.deepEqual([refused.isError, refused.content, refused.structuredContent], [true, text('group_id must be an integer'), undefined]);
  await assert.rejects(client.callTool({ name: 'deleteEverything', arguments: {} }), (error) => {
    assert.ok(error instanceof McpError);
    assert.deepEqual([error.code, error.data], [-32602, 'Unknown tool: deleteEverything']);
    return true;
  });

  const closing = performance.now();
  await client.close();
  const took = performance.now() - closing;
  assert.ok(took < 1900, `close took ${Math.round(took)} ms: groupd did not exit at the end of its input`);
}

const deadline = setTimeout(() => {
  console.error('timed out: an answer never came');
  process.exit(1);
}, 60_000);
session().then(
  () => {
    clearTimeout(deadline);
    console.log('ok: initialize, ping, listTools (schemas compile), callTool for each procedure,'
      + ' isError for false and for bad arguments, -32602 for an unknown tool; close');
  },
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
