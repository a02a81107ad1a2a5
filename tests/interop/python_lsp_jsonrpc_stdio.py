"""python-lsp-jsonrpc's stream reader and writer over stdio (Content-Length framing, with the
Content-Type header it always sends): starts `groupd --stdio` on a fresh database, calls it through
an Endpoint, sends a batch through the writer, then closes stdin and requires exit status 0.
Every answer is compared exactly.

    GROUPD_BIN=target/debug/groupd GROUPD_DB=/tmp/x.redb python tests/interop/python_lsp_jsonrpc_stdio.py
"""

import importlib.metadata
import sys

# README "Clients": python-lsp-jsonrpc
import os
import queue
import subprocess
import threading

from pylsp_jsonrpc.endpoint import Endpoint
from pylsp_jsonrpc.exceptions import JsonRpcException
from pylsp_jsonrpc.streams import JsonRpcStreamReader, JsonRpcStreamWriter

groupd = subprocess.Popen(
    [os.environ.get("GROUPD_BIN", "groupd"), "--stdio", "--db", os.environ.get("GROUPD_DB", "groupd.redb")],
    stdin=subprocess.PIPE,
    stdout=subprocess.PIPE,
)
writer = JsonRpcStreamWriter(groupd.stdin)
reader = JsonRpcStreamReader(groupd.stdout)
endpoint = Endpoint({}, writer.write)  # no methods of our own: we only call
batches = queue.Queue()  # the Endpoint takes single messages; batch answers come here


def consume(message):
    if isinstance(message, list):
        batches.put(message)
    else:
        endpoint.consume(message)


threading.Thread(target=reader.listen, args=(consume,), daemon=True).start()


def call(method, params=None):
    return endpoint.request(method, params).result(timeout=10)


def check():
    assert call("createGroup", ["Ops", "ops"]) == 1
    endpoint.notify("createGroup", {"name": "Quiet"})  # run, never answered
    assert call("getGroup", {"group_id": "1"}) == {"id": "1", "external_id": "ops", "name": "Ops"}
    assert call("updateGroup", [1, "Operations"]) is True
    assert call("getAllGroups") == [
        {"id": "1", "external_id": "ops", "name": "Operations"},
        {"id": "2", "external_id": "", "name": "Quiet"},
    ]
    assert call("removeGroup", [2]) is True
    try:
        call("createGroup", [42])
        raise AssertionError("createGroup [42] succeeded")
    except JsonRpcException as error:
        assert (error.code, error.message, error.data) == (-32602, "Invalid params", "name must be a string")
    writer.write([
        {"jsonrpc": "2.0", "id": 10, "method": "createGroup", "params": ["Dev"]},
        {"jsonrpc": "2.0", "method": "createGroup", "params": ["Silent"]},
        {"jsonrpc": "2.0", "id": 11, "method": "getGroup", "params": [3]},
    ])
    assert batches.get(timeout=10) == [
        {"jsonrpc": "2.0", "id": 10, "result": 3},
        {"jsonrpc": "2.0", "id": 11, "result": {"id": "3", "external_id": "", "name": "Dev"}},
    ]
# end of snippet
    try:
        call("getgroup", [1])
        raise AssertionError("getgroup succeeded")
    except JsonRpcException as error:
        assert (error.code, error.message) == (-32601, "Method not found")
    assert call("getGroup", [2]) is False
    assert call("createGroup", ["Ångström ☃"]) == 5
    assert call("getAllGroups") == [
        {"id": "3", "external_id": "", "name": "Dev"},
        {"id": "1", "external_id": "ops", "name": "Operations"},
        {"id": "4", "external_id": "", "name": "Silent"},
        {"id": "5", "external_id": "", "name": "Ångström ☃"},
    ]


def main():
    print(f"python-lsp-jsonrpc {importlib.metadata.version('python-lsp-jsonrpc')}, stdio, Content-Length")
    try:
        check()
    except Exception:
        groupd.kill()
        raise
    finally:
        endpoint.shutdown()
    groupd.stdin.close()
    status = groupd.wait(timeout=10)
    assert status == 0, f"groupd exited with {status} at the end of its input"
    print("ok: create, get, getAll, update, remove, errors, notification, batch; exit 0 at EOF")


if __name__ == "__main__":
    sys.exit(main())
