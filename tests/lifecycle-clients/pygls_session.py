"""pygls's LanguageClient runs a whole LSP session against groupd: it starts `groupd stdio` as
it starts any language server, initialize (the LSP result: capabilities and serverInfo, no MCP
protocolVersion), initialized, $/setTrace and workspace/didChangeConfiguration, the five Group API
calls through `protocol.send_request_async` (uuid string ids), a call refused with -32602 and one
answered `false`, a $/cancelRequest for a call already answered (ignored), a `$/` request (-32601),
then shutdown (null), a call after it (-32600 "shutting down"), exit, and `stop()` returns once
groupd has exited with status 0 although its stdin is still open. With `tcp`, the same client
talks to a running `groupd serve`: there `exit` closes the connection (so `stop()` returns) and
the server goes on serving new ones. Every answer is compared exactly; any message of groupd's
that pygls cannot take or complains of fails the test.

    GROUPD_BIN=target/debug/groupd GROUPD_DB=/tmp/x.redb python tests/lifecycle-clients/pygls_session.py
    GROUPD_BIN=… GROUPD_HOST=127.0.0.1 GROUPD_PORT=7411 python tests/lifecycle-clients/pygls_session.py tcp
"""

import asyncio
import importlib.metadata
import logging
import os
import subprocess
import sys

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.client import LanguageClient


class Client(LanguageClient):
    """pygls's client, keeping what pygls reports through its two hooks."""

    def __init__(self):
        super().__init__("groupd-lifecycle-test", "1")
        self.errors = []
        self.exit_status = None

    def report_server_error(self, error, source):
        self.errors.append((source.__name__, repr(error)))

    async def server_exit(self, server):
        self.exit_status = server.returncode


class Complaints(logging.Handler):
    """What pygls logs at WARNING or above, such as an answer to no request of its own."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


async def refused(awaitable):
    """The (code, message, data) of the JSON-RPC error that AWAITABLE must fail with."""
    try:
        result = await awaitable
    except JsonRpcException as error:
        return error.code, error.message, error.data
    raise AssertionError(f"succeeded with {result!r}")


async def initialize(client, version):
    """initialize (the LSP's answer: capabilities and serverInfo, no MCP protocolVersion), then
    the notifications an editor sends after it."""
    initialized = await client.initialize_async(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            process_id=os.getpid(),
            client_info=types.ClientInfo(name="pygls", version=importlib.metadata.version("pygls")),
        )
    )
    assert initialized.server_info == types.ServerInfo(name="groupd", version=version), initialized
    assert initialized.capabilities == types.ServerCapabilities(), initialized
    client.initialized(types.InitializedParams())
    client.set_trace(types.SetTraceParams(value=types.TraceValue.Off))
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={}))


async def stdio_session(groupd, db, version):
    client = Client()
    await client.start_io(groupd, "stdio", "--db", db)
    await initialize(client, version)

    call = client.protocol.send_request_async
    assert await call("createGroup", ["Ops", "ops"]) == 1
    assert await call("createGroup", {"name": "Dev"}) == 2
    # pygls hands an object result over as a namedtuple, and a list as it is.
    assert (await call("getGroup", {"group_id": "1"}))._asdict() == {"id": "1", "external_id": "ops", "name": "Ops"}
    assert await call("updateGroup", [1, "Operations"]) is True
    assert await call("getAllGroups") == [
        {"id": "2", "external_id": "", "name": "Dev"},
        {"id": "1", "external_id": "ops", "name": "Operations"},
    ]
    assert await call("removeGroup", [2]) is True
    assert await call("getGroup", [2]) is False
    assert await refused(call("getGroup", ["abc"])) == (-32602, "Invalid params", "group_id must be an integer")

    answered = "answered-already"
    assert (await call("getGroup", [1], msg_id=answered)).name == "Operations"
    client.cancel_request(types.CancelParams(id=answered))  # ignored: nothing is left to cancel
    assert (await refused(call("$/groupd/nothing")))[:2] == (-32601, "Method not found")

    assert await client.shutdown_async(None) is None
    assert await refused(call("getAllGroups")) == (-32600, "Invalid Request", "shutting down")
    client.exit(None)
    await client.stop()  # returns once groupd has exited
    assert client.exit_status == 0, f"groupd exited with {client.exit_status} after shutdown and exit"
    assert client.errors == [], client.errors


async def tcp_session(host, port, version):
    client = Client()
    await client.start_tcp(host, port)
    await initialize(client, version)
    call = client.protocol.send_request_async
    assert await call("createGroup", ["Ops", "ops"]) == 1
    assert (await call("getGroup", [1]))._asdict() == {"id": "1", "external_id": "ops", "name": "Ops"}
    assert await client.shutdown_async(None) is None
    assert await refused(call("getAllGroups")) == (-32600, "Invalid Request", "shutting down")
    client.exit(None)
    await client.stop()  # returns once groupd has closed the connection

    # The server keeps running: a new connection is served, and `exit` without `shutdown` on it
    # closes it too.
    again = Client()
    await again.start_tcp(host, port)
    assert await again.protocol.send_request_async("getAllGroups") == [{"id": "1", "external_id": "ops", "name": "Ops"}]
    again.exit(None)
    await again.stop()
    assert client.errors == again.errors == [], (client.errors, again.errors)


async def checked(session):
    """Runs SESSION within a bounded time; nothing pygls complains of may happen in it."""
    complaints = Complaints()
    logging.getLogger("pygls").addHandler(complaints)
    await asyncio.wait_for(session, timeout=30)
    assert complaints.messages == [], complaints.messages


def main(transport="stdio"):
    groupd = os.environ.get("GROUPD_BIN", "groupd")
    name, version = subprocess.run([groupd, "--version"], capture_output=True, text=True, check=True).stdout.split()
    assert name == "groupd"
    pygls = f"pygls {importlib.metadata.version('pygls')} LanguageClient"
    if transport == "tcp":
        print(f"{pygls}, TCP, Content-Length")
        asyncio.run(checked(tcp_session(os.environ["GROUPD_HOST"], int(os.environ["GROUPD_PORT"]), version)))
        print("ok: initialize, create, get, shutdown, -32600 after it, exit closes the connection;"
              " a new connection is served, exit without shutdown closes it")
    else:
        print(f"{pygls}, stdio, Content-Length")
        asyncio.run(checked(stdio_session(groupd, os.environ.get("GROUPD_DB", "groupd.redb"), version)))
        print("ok: initialize, create, get, update, getAll, remove, false, -32602, cancel, $/ request;"
              " shutdown, -32600 after it, exit, stop(), exit 0")


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
