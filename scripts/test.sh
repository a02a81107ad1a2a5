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
# The wire-level suites once more with every test server on a new database of a throw-away
# PostgreSQL cluster (SPEC §14: the contract holds on both backends). Not the tests of the
# database file itself (persistence, crash, damage, backup, ...), and not protocol's
# control-character test: it stores U+0000, which PostgreSQL text cannot hold (false there).
source scripts/postgres-cluster.sh
trap stop_cluster EXIT
start_cluster
echo "== the wire-level suites on PostgreSQL (127.0.0.1:$pgport)"
GROUPD_TEST_POSTGRES="postgres://postgres@127.0.0.1:$pgport" GROUPD_TEST_PSQL="$pgbin/psql" \
    cargo test --test documentation_examples --test protocol --test batches \
    --test concurrency --test security --test limits --test attack --test lifecycle --test mcp \
    --test discovery --test lsp_framing -- \
    --skip control_characters_are_escaped_and_answers_hold_no_raw_newline
stop_cluster
# Kanboard's Python client libraries (from PyPI) against a real `groupd serve --http`.
bash scripts/kanboard-clients.sh
# Third-party JSON-RPC clients (netcat, socat, jayson, vscode-jsonrpc, python-lsp-jsonrpc,
# jsonrpcclient) against a real groupd, and the README's client snippets.
bash scripts/interop.sh
# Editors and AI agents (Neovim, Emacs eglot and jsonrpc.el, pygls, the MCP Python and TypeScript
# SDKs, the MCP Inspector) against a real groupd, and the README's editor and agent snippets.
bash scripts/lifecycle-clients.sh
