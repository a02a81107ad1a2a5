"""jsonrpcclient builds the requests and parses the answers; a plain socket carries them to groupd
at $GROUPD_HOST:$GROUPD_PORT, one JSON text per line, on a fresh database. Every answer is
compared exactly, ids included.

    GROUPD_HOST=127.0.0.1 GROUPD_PORT=PORT python tests/interop/jsonrpcclient_socket.py
"""

import importlib.metadata
import sys

# README "Clients": jsonrpcclient
import json
import os
import socket

from jsonrpcclient import Error, Ok, notification, parse, request

address = (os.environ.get("GROUPD_HOST", "127.0.0.1"), int(os.environ.get("GROUPD_PORT", "7411")))
connection = socket.create_connection(address, timeout=10)
answers = connection.makefile("r", encoding="utf-8", newline="\n")


def send(message):
    connection.sendall(json.dumps(message).encode() + b"\n")


def call(method, params=None):
    message = request(method, params)
    send(message)
    response = parse(json.loads(answers.readline()))
    assert response.id == message["id"], (response, message)
    return response


def check():
    assert call("createGroup", ("Ops", "ops")) == Ok(1, 1)
    send(notification("createGroup", {"name": "Quiet"}))  # run, never answered
    assert call("getGroup", {"group_id": "1"}) == Ok({"id": "1", "external_id": "ops", "name": "Ops"}, 2)
    assert call("updateGroup", (1, "Operations", "OPS")) == Ok(True, 3)
    assert call("getAllGroups").result == [
        {"id": "1", "external_id": "OPS", "name": "Operations"},
        {"id": "2", "external_id": "", "name": "Quiet"},
    ]
    assert call("removeGroup", (2,)) == Ok(True, 5)
    assert call("getGroup", ("abc",)) == Error(-32602, "Invalid params", "group_id must be an integer", 6)
    send([request("createGroup", ("Dev",), id="a"), notification("createGroup", ("Silent",)), request("nope", id="b")])
    assert list(parse(json.loads(answers.readline()))) == [
        Ok(3, "a"),
        Error(-32601, "Method not found", None, "b"),
    ]
# end of snippet
    assert call("getGroup", (2,)) == Ok(False, 7)
    assert call("getAllGroups").result == [
        {"id": "3", "external_id": "", "name": "Dev"},
        {"id": "1", "external_id": "OPS", "name": "Operations"},
        {"id": "4", "external_id": "", "name": "Silent"},
    ]
    # A parse error comes back with id null, and the connection stays open.
    connection.sendall(b"{not json\n")
    assert parse(json.loads(answers.readline()))[0:2] == (-32700, "Parse error")
    assert call("removeGroup", {"group_id": 1}) == Ok(True, 9)


def main():
    print(f"jsonrpcclient {importlib.metadata.version('jsonrpcclient')}, plain socket, newline-delimited")
    check()
    connection.shutdown(socket.SHUT_WR)
    assert answers.read() == "", "nothing more after the last answer"
    print("ok: create, get, getAll, update, remove, errors, notification, batch")


if __name__ == "__main__":
    sys.exit(main())
