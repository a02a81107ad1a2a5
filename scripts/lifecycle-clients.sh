#!/usr/bin/env bash
# Editors and AI agents as clients (SPEC §11, §12): each real client starts `groupd stdio` on a
# fresh database the way it starts any server (or, over TCP, connects to a fresh `groupd serve`)
# and runs a whole session, checking exact answers:
#
#   Neovim's vim.lsp (start_client, request_sync, stop)     tests/lifecycle-clients/neovim_session.lua
#   Emacs eglot (eglot, jsonrpc-request, eglot-shutdown)    tests/lifecycle-clients/eglot_session.el
#   Emacs jsonrpc.el, the lifecycle by hand                 tests/lifecycle-clients/jsonrpc_session.el
#   pygls's LanguageClient, over stdio and over TCP         tests/lifecycle-clients/pygls_session.py
#   the MCP Python SDK (ClientSession, stdio_client)        tests/lifecycle-clients/mcp_python_session.py
#   the MCP TypeScript SDK (Client, StdioClientTransport)   tests/lifecycle-clients/mcp_typescript_session.mjs
#   the MCP Inspector's CLI, from tests/lifecycle-clients/mcp.json  tests/lifecycle-clients/mcp_inspector.sh
#
# then that the README's editor and agent snippets are the tested ones. Installs what is missing
# first: Debian's neovim, emacs-nox and elpa-eglot (apt-get, as root), the npm packages pinned in
# tests/lifecycle-clients/package-lock.json (npm ci, into tests/lifecycle-clients/node_modules), the PyPI packages
# pinned in tests/lifecycle-clients/requirements.txt (into a venv at target/lifecycle-venv). The TCP test
# gets a `groupd serve` on 127.0.0.1:0, stopped with SIGTERM afterwards (it must exit 0). Each
# test prints its client's name and version; this script prints how long each took and exits
# non-zero on any failure.
#
# GROUPD_BIN=PATH tests that binary instead of building target/debug/groupd.
set -euo pipefail
cd "$(dirname "$0")/.."

lifecycle=tests/lifecycle-clients
target="${CARGO_TARGET_DIR:-target}"
work="$target/lifecycle"
venv="$target/lifecycle-venv"
mkdir -p "$work"
source scripts/client-tests.sh

# --- install what is missing -------------------------------------------------------------------
debian=()
command -v nvim >/dev/null || debian+=(neovim)
command -v emacs >/dev/null || debian+=(emacs-nox)
dpkg-query -W -f='${Status}' elpa-eglot 2>/dev/null | grep -q 'ok installed' || debian+=(elpa-eglot)
if ((${#debian[@]})); then
    echo "== installing ${debian[*]} (Debian)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${debian[@]}" >/dev/null
fi
install_npm "$lifecycle"
install_pypi "$venv" "$lifecycle/requirements.txt"
find_groupd "$target"

# --- clients -----------------------------------------------------------------------------------
started=$SECONDS
over_stdio neovim nvim --headless --clean -c "luafile $lifecycle/neovim_session.lua" -c "cquit 1"
over_stdio eglot emacs --batch -l ert -l "$lifecycle/eglot_session.el" -f ert-run-tests-batch-and-exit
over_stdio jsonrpc.el emacs --batch -l ert -l "$lifecycle/jsonrpc_session.el" -f ert-run-tests-batch-and-exit
over_stdio pygls "$venv/bin/python" "$lifecycle/pygls_session.py"
over_tcp pygls-tcp "$venv/bin/python" "$lifecycle/pygls_session.py" tcp
over_stdio mcp-python "$venv/bin/python" "$lifecycle/mcp_python_session.py"
over_stdio mcp-typescript node "$lifecycle/mcp_typescript_session.mjs"
over_stdio mcp-inspector bash "$lifecycle/mcp_inspector.sh"

echo "== README snippets"
status=0
python3 tests/interop/check_readme.py README.md \
    "$lifecycle/neovim_session.lua" "$lifecycle/eglot_session.el" "$lifecycle/mcp.json" || status=$?
record "README snippets" "$status"

echo "lifecycle clients ran in $((SECONDS - started)) s${failures[*]:+; failed: ${failures[*]}}"
echo "lifecycle: $passed passed, $failed failed"
((failed == 0))
