#!/usr/bin/env bash
# The whole test suite: what the README names and .ci/run runs. Installs what the client
# tests need (Debian postgresql-15, netcat/socat, neovim, emacs-nox, elpa-eglot; npm and PyPI packages into
# target/, tests/interop/ and tests/lifecycle-clients/).
set -euo pipefail
cd "$(dirname "$0")/.."

# PostgreSQL 15's binaries (Debian) for the tests that start throw-away clusters (SPEC §14);
# here they must run, never skip.
bash scripts/install-postgres.sh
GROUPD_REQUIRE_POSTGRES=1 cargo test
# Kanboard's Python client libraries (from PyPI) against a real `groupd serve --http`.
bash scripts/kanboard-clients.sh
# Third-party JSON-RPC clients (netcat, socat, jayson, vscode-jsonrpc, python-lsp-jsonrpc,
# jsonrpcclient) against a real groupd, and the README's client snippets.
bash scripts/interop.sh
# Editors and AI agents (Neovim, Emacs eglot and jsonrpc.el, pygls, the MCP Python and TypeScript
# SDKs, the MCP Inspector) against a real groupd, and the README's editor and agent snippets.
bash scripts/lifecycle-clients.sh
