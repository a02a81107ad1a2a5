#!/usr/bin/env bash
# Third-party JSON-RPC clients against a real groupd (SPEC §1, §2, §8), each on a fresh database,
# each checking exact answers:
#
#   netcat (nc -N) and socat over TCP, LF and CRLF      tests/interop/line_session.sh
#   jayson's TCP client (newline-delimited)             tests/interop/jayson_tcp.js
#   vscode-jsonrpc over stdio (Content-Length)          tests/interop/vscode_jsonrpc_stdio.js
#   python-lsp-jsonrpc over stdio (Content-Length)      tests/interop/python_lsp_jsonrpc_stdio.py
#   jsonrpcclient over a plain socket                   tests/interop/jsonrpcclient_socket.py
#
# then that the README's client snippets are the tested ones. Installs what is missing first:
# Debian's netcat-openbsd and socat (apt-get, as root), the npm packages pinned in
# tests/interop/package-lock.json (npm ci, into tests/interop/node_modules), the PyPI packages
# pinned in tests/interop/requirements.txt (into a venv at target/interop-venv). TCP clients get
# a `groupd serve` on 127.0.0.1:0, stopped with SIGTERM afterwards (it must exit 0); stdio clients
# start `groupd` themselves. Prints each client's name and version; exits non-zero on any failure.
#
# GROUPD_BIN=PATH tests that binary instead of building target/debug/groupd.
set -euo pipefail
cd "$(dirname "$0")/.."

interop=tests/interop
target="${CARGO_TARGET_DIR:-target}"
work="$target/interop"
venv="$target/interop-venv"
mkdir -p "$work"
source scripts/client-tests.sh

# --- install what is missing -------------------------------------------------------------------
debian=()
nc_help=$(nc -h 2>&1 || true)
[[ "$nc_help" == *OpenBSD* ]] || debian+=(netcat-openbsd) # -N and -C are OpenBSD netcat's
command -v socat >/dev/null || debian+=(socat)
if ((${#debian[@]})); then
    echo "== installing ${debian[*]} (Debian)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${debian[@]}" >/dev/null
fi
install_npm "$interop"
install_pypi "$venv" "$interop/requirements.txt"
find_groupd "$target"

# --- clients -----------------------------------------------------------------------------------
started=$SECONDS
for tool in nc socat; do
    for ending in lf crlf; do
        over_tcp "$tool-$ending" bash "$interop/line_session.sh" "$tool" "$ending"
    done
done
over_tcp jayson node "$interop/jayson_tcp.js"
over_stdio vscode-jsonrpc node "$interop/vscode_jsonrpc_stdio.js"
over_stdio python-lsp-jsonrpc "$venv/bin/python" "$interop/python_lsp_jsonrpc_stdio.py"
over_tcp jsonrpcclient "$venv/bin/python" "$interop/jsonrpcclient_socket.py"

echo "== README snippets"
status=0
python3 "$interop/check_readme.py" README.md \
    "$interop/line_session.sh" "$interop/session.jsonl" "$interop/session.expected" \
    "$interop/jayson_tcp.js" "$interop/vscode_jsonrpc_stdio.js" \
    "$interop/python_lsp_jsonrpc_stdio.py" "$interop/jsonrpcclient_socket.py" || status=$?
record "README snippets" "$status"

echo "interop clients ran in $((SECONDS - started)) s${failures[*]:+; failed: ${failures[*]}}"
echo "interop: $passed passed, $failed failed"
((failed == 0))
