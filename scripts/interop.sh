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
if [[ ! -f "$interop/node_modules/.package-lock.json" ||
    "$interop/package-lock.json" -nt "$interop/node_modules/.package-lock.json" ]]; then
    echo "== npm ci ($interop)"
    (cd "$interop" && npm ci --no-audit --no-fund --loglevel=error)
fi
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$interop/requirements.txt"

if [[ -n "${GROUPD_BIN:-}" ]]; then
    groupd="$GROUPD_BIN"
else
    cargo build --quiet --bin groupd
    groupd="$target/debug/groupd"
fi
groupd="$(cd "$(dirname "$groupd")" && pwd)/$(basename "$groupd")"

# --- servers -----------------------------------------------------------------------------------
source scripts/groupd-server.sh

# --- clients -----------------------------------------------------------------------------------
passed=0
failed=0
failures=()
record() { # record NAME STATUS
    if (($2 == 0)); then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failures+=("$1")
        echo "FAILED: $1" >&2
    fi
}

# over_tcp NAME COMMAND…: COMMAND talks to a fresh server at $GROUPD_HOST:$GROUPD_PORT.
over_tcp() {
    local name="$1" dir="$work/$1" status=0
    shift
    echo "== $name"
    start_server "$dir" tcp || { record "$name" 1; return; }
    GROUPD_HOST=127.0.0.1 GROUPD_PORT="${address##*:}" timeout 120 "$@" || status=$?
    if ((status == 0)); then
        stop_cleanly "$dir" || status=$?
    else
        stop_server
    fi
    record "$name" "$status"
}

# over_stdio NAME COMMAND…: COMMAND starts $GROUPD_BIN itself on the fresh database $GROUPD_DB.
over_stdio() {
    local name="$1" dir="$work/$1" status=0
    shift
    echo "== $name"
    rm -rf "$dir"
    mkdir -p "$dir"
    GROUPD_BIN="$groupd" GROUPD_DB="$dir/groupd.redb" RUST_LOG=warn timeout 120 "$@" || status=$?
    record "$name" "$status"
}

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
