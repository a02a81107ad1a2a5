"""The MCP Python SDK's ClientSession over its stdio_client runs a whole MCP session against groupd:
it starts `groupd stdio` as an MCP host starts a tool server, initialize (protocolVersion,
capabilities, serverInfo, instructions), ping, list_tools (the five Group API procedures, each with
an inputSchema and an outputSchema that are valid JSON Schema and admit what the calls send and
get), call_tool for each procedure (the SDK itself validates each structuredContent against the
tool's outputSchema), a procedure that reports failure (isError, a one-line text), arguments that
do not fit (isError, the -32602 reason), an unknown tool (the protocol error -32602), then it
closes the session as the SDK does, by closing groupd's stdin, and groupd must be gone before the
SDK would signal it. Then the SDK's high-level Client connects as its default mode does (a
server/discover probe, then initialize) and reads what the first session left. Every answer is
compared exactly.

    GROUPD_BIN=target/debug/groupd GROUPD_DB=/tmp/x.redb python tests/lifecycle-clients/mcp_python_session.py
"""

import importlib.metadata
import json
import os
import subprocess
import sys

import anyio
from jsonschema.validators import validator_for
from mcp import Client, ClientSession, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client

PROCEDURES = ["createGroup", "updateGroup", "removeGroup", "getGroup", "getAllGroups"]


def schema_checks(tools):
    """Every tool's schemas are valid JSON Schema; returns validators by tool name."""
    validators = {}
    for tool in tools:
        for schema in (tool.input_schema, tool.output_schema):
            assert schema["type"] == "object", (tool.name, schema)
            validator_for(schema).check_schema(schema)
        validators[tool.name] = (
            validator_for(tool.input_schema)(tool.input_schema),
            validator_for(tool.output_schema)(tool.output_schema),
        )
    return validators


async def session(groupd, db, version):
    server = StdioServerParameters(command=groupd, args=["stdio", "--db", db])
    with anyio.fail_after(60):
        closed = await run(server, version)
    # Leaving stdio_client closes groupd's stdin and waits 2 s (PROCESS_TERMINATION_TIMEOUT)
    # before it signals groupd: a close within that time means groupd exited by itself.
    took = anyio.current_time() - closed
    assert took < 1.9, f"closing took {took:.1f} s: groupd did not exit at the end of its input"
    with anyio.fail_after(5):
        await high_level(server)


async def run(server, version):
    async with stdio_client(server) as (read, write), ClientSession(read, write) as client:
        started = await client.initialize()
        assert started.protocol_version == "2025-11-25", started
        assert (started.server_info.name, started.server_info.version) == ("groupd", version), started
        assert started.capabilities.tools.list_changed is False, started
        assert started.instructions and "\n" not in started.instructions.strip(), started
        assert (await client.send_ping()).model_dump(exclude_none=True) == {}

        tools = (await client.list_tools()).tools
        assert [tool.name for tool in tools] == PROCEDURES, tools
        assert all(tool.title and tool.description for tool in tools), tools
        validators = schema_checks(tools)

        async def call(name, arguments, expected):
            """Calls the tool; its (isError, content, structuredContent) must be `expected`."""
            result = await client.call_tool(name, arguments)
            if not result.is_error:
                validators[name][0].validate(arguments)  # what groupd took fits the inputSchema
            if result.structured_content is not None:
                validators[name][1].validate(result.structured_content)  # {"result": false} too
            content = [c.model_dump(exclude_none=True) for c in result.content]
            got = (result.is_error, content, result.structured_content)
            assert got == expected, f"{name} {arguments}: got {got}, expected {expected}"

        def ok(result, as_text):
            return False, [{"type": "text", "text": as_text}], {"result": result}

        def failed(why):
            return True, [{"type": "text", "text": why}], {"result": False}

        def refused(reason):
            return True, [{"type": "text", "text": reason}], None

        await call("createGroup", {"name": "Ops", "external_id": "ops"}, ok(1, "1"))
        await call("createGroup", {"name": "Dev"}, ok(2, "2"))
        ops = {"id": "1", "external_id": "ops", "name": "Ops"}
        await call("getGroup", {"group_id": 1}, ok(ops, '{"id":"1","external_id":"ops","name":"Ops"}'))
        await call("updateGroup", {"group_id": "1", "name": "Operations"}, ok(True, "true"))
        everyone = [{"id": "2", "external_id": "", "name": "Dev"}, {"id": "1", "external_id": "ops", "name": "Operations"}]
        await call("getAllGroups", {}, ok(everyone, json.dumps(everyone, separators=(",", ":"))))
        await call("removeGroup", {"group_id": 2}, ok(True, "true"))

        # Failures: the procedure's false, and arguments that do not fit.
        await call("getGroup", {"group_id": 2}, failed("no group with id 2"))
        await call("createGroup", {"name": "Operations"}, failed('a group named "Operations" already exists'))
        await call("createGroup", {"name": " "}, failed("name must be 1 to 100 characters and not blank"))
        await call("getGroup", {"group_id": "abc"}, refused("group_id must be an integer"))
        await call("createGroup", {}, refused("Missing argument: name"))
        try:
            await client.call_tool("deleteEverything", {})
            raise AssertionError("an unknown tool was called")
        except MCPError as error:
            assert (error.code, error.data) == (-32602, "Unknown tool: deleteEverything"), error.error
        closing = anyio.current_time()
    return closing


async def high_level(server):
    """The SDK's high-level Client, as its README starts one: its default "auto" mode first probes
    server/discover (a 2026 method: groupd answers -32601), then falls back to initialize."""
    async with Client(server) as client:
        assert client.session.protocol_version == "2025-11-25", client.session.protocol_version
        result = await client.call_tool("getAllGroups", {})
        operations = {"id": "1", "external_id": "ops", "name": "Operations"}
        assert (result.is_error, result.structured_content) == (False, {"result": [operations]}), result


def main():
    groupd = os.environ.get("GROUPD_BIN", "groupd")
    db = os.environ.get("GROUPD_DB", "groupd.redb")
    name, version = subprocess.run([groupd, "--version"], capture_output=True, text=True, check=True).stdout.split()
    assert name == "groupd"
    print(f"mcp (MCP Python SDK) {importlib.metadata.version('mcp')} ClientSession, stdio_client, newline-delimited")
    anyio.run(session, groupd, db, version)
    print("ok: initialize, ping, list_tools (schemas valid), call_tool for each procedure,"
          " isError for false and for bad arguments, -32602 for an unknown tool; Client after a discover probe")


if __name__ == "__main__":
    sys.exit(main())
