#!/usr/bin/env bash
# The MCP Inspector in CLI mode (`mcp-inspector --cli`) against groupd, started from the MCP host
# configuration that the README gives (tests/lifecycle-clients/mcp.json, "From an AI agent") with its
# command pointed at GROUPD_BIN and its database at GROUPD_DB. Each Inspector run is a whole MCP
# session of its own (a new groupd on the same database): tools/list, then tools/call for each
# procedure, a procedure that reports failure (isError), arguments that do not fit (isError, the
# -32602 reason) and an unknown tool (the Inspector fails, exit 1, on the protocol error -32602).
# Every answer is compared exactly.
#
#   GROUPD_BIN=target/debug/groupd GROUPD_DB=/tmp/x.redb bash tests/lifecycle-clients/mcp_inspector.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
inspector="$here/node_modules/.bin/mcp-inspector"
db="${GROUPD_DB:-groupd.redb}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
config="$scratch/mcp.json"

version=$(node -p 'require(process.argv[1]).version' "$here/node_modules/@modelcontextprotocol/inspector/package.json")
echo "@modelcontextprotocol/inspector $version --cli, stdio, newline-delimited"

# The README's configuration, with the command and the database of this test.
node - "$here/mcp.json" "${GROUPD_BIN:-groupd}" "$db" >"$config" <<'EOF'
const [file, command, db] = process.argv.slice(2);
const config = JSON.parse(require('node:fs').readFileSync(file, 'utf8'));
const server = config.mcpServers.groupd;
server.command = command;
server.args[server.args.indexOf('--db') + 1] = db;
console.log(JSON.stringify(config));
EOF

# inspect ARGS…: one Inspector run against the configured groupd; its stdout.
inspect() {
    timeout 30 "$inspector" --cli --config "$config" --server groupd "$@"
}

# expect WHAT EXPECTED_JSON ACTUAL_JSON: the two JSON texts are equal as JSON.
expect() {
    node -e '
        const [what, expected, actual] = process.argv.slice(1);
        require("node:assert/strict").deepEqual(JSON.parse(actual), JSON.parse(expected), what);
    ' "$@"
}

# call TOOL EXPECTED_JSON [--tool-arg KEY=VALUE…]
call() {
    local tool="$1" expected="$2"
    shift 2
    expect "tools/call $tool $*" "$expected" "$(inspect --method tools/call --tool-name "$tool" "$@")"
}

tools=$(inspect --method tools/list)
expect "tool names" '["createGroup","updateGroup","removeGroup","getGroup","getAllGroups"]' \
    "$(node -p 'JSON.stringify(JSON.parse(process.argv[1]).tools.map((t) => t.name))' "$tools")"
expect "every tool has an object inputSchema and outputSchema" 'true' \
    "$(node -p 'JSON.parse(process.argv[1]).tools.every((t) => t.inputSchema.type === "object" && t.outputSchema.type === "object")' "$tools")"

call createGroup '{"content":[{"type":"text","text":"1"}],"structuredContent":{"result":1},"isError":false}' \
    --tool-arg name=Ops --tool-arg external_id=ops
call createGroup '{"content":[{"type":"text","text":"2"}],"structuredContent":{"result":2},"isError":false}' \
    --tool-arg name=Dev
call getGroup '{"content":[{"type":"text","text":"{\"id\":\"1\",\"external_id\":\"ops\",\"name\":\"Ops\"}"}],"structuredContent":{"result":{"id":"1","external_id":"ops","name":"Ops"}},"isError":false}' \
    --tool-arg group_id=1
call updateGroup '{"content":[{"type":"text","text":"true"}],"structuredContent":{"result":true},"isError":false}' \
    --tool-arg group_id=1 --tool-arg name=Operations
call getAllGroups '{"content":[{"type":"text","text":"[{\"id\":\"2\",\"external_id\":\"\",\"name\":\"Dev\"},{\"id\":\"1\",\"external_id\":\"ops\",\"name\":\"Operations\"}]"}],"structuredContent":{"result":[{"id":"2","external_id":"","name":"Dev"},{"id":"1","external_id":"ops","name":"Operations"}]},"isError":false}'
call removeGroup '{"content":[{"type":"text","text":"true"}],"structuredContent":{"result":true},"isError":false}' \
    --tool-arg group_id=2
call getGroup '{"content":[{"type":"text","text":"no group with id 2"}],"structuredContent":{"result":false},"isError":true}' \
    --tool-arg group_id=2
call getGroup '{"content":[{"type":"text","text":"group_id must be an integer"}],"isError":true}' \
    --tool-arg group_id=abc

status=0
inspect --method tools/call --tool-name deleteEverything >/dev/null 2>"$scratch/stderr" || status=$?
if ((status != 1)) || ! grep -q 'MCP error -32602' "$scratch/stderr"; then
    echo "an unknown tool: the Inspector exited $status, expected 1 on MCP error -32602:" >&2
    cat "$scratch/stderr" >&2
    exit 1
fi
echo "ok: tools/list, tools/call for each procedure, isError for false and for bad arguments, -32602 for an unknown tool"
