#!/usr/bin/env bash
# Kanboard's Python client libraries against a real `groupd serve --http` (SPEC §10).
#
# For each library (kanboard, kanboard-sdk: each in its own virtual environment under
# target/kanboard-clients, as both install a module named `kanboard`), starts a fresh groupd
# without a token and one with a token, runs tests/kanboard/check_<library>.py against each,
# then stops the server with SIGTERM and requires exit status 0 and a log free of the token.
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-target}"
work="$target/kanboard-clients"
mkdir -p "$work"

cargo build --quiet --bin groupd
groupd="$target/debug/groupd"

source scripts/groupd-server.sh

# stop_cleanly_without_token DIR [TOKEN_FILE]: stop_cleanly, and with a token, none in the log.
stop_cleanly_without_token() {
    local dir="$1" token_file="${2:-}"
    stop_cleanly "$dir" || return 1
    if [[ -n "$token_file" ]] && grep -qF -- "$(tr -d '[:space:]' <"$token_file")" "$dir/stderr"; then
        echo "groupd logged its token" >&2
        return 1
    fi
}

passed=0
failed=0
for library in kanboard kanboard-sdk; do
    venv="$work/venv-$library"
    [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        -r "tests/kanboard/requirements-$library.txt"
    check="tests/kanboard/check_${library//-/_}.py"

    for mode in without-token with-token; do
        dir="$work/$library-$mode"
        token_file=""
        args=()
        if [[ "$mode" == with-token ]]; then
            token_file="$work/$library.token"
            # A trailing newline, as editors write: groupd trims it.
            python3 -c 'import secrets; print(secrets.token_urlsafe(32))' >"$token_file"
            args=(--token-file "$token_file")
        fi
        echo "== $library, $mode"
        start_server "$dir" http --http 127.0.0.1:0 "${args[@]}"
        if GROUPD_URL="http://$address/jsonrpc.php" GROUPD_TOKEN_FILE="$token_file" \
            "$venv/bin/python" "$check" && stop_cleanly_without_token "$dir" "$token_file"; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
            stop_server
        fi
    done
done

echo "kanboard-clients: $passed passed, $failed failed"
((failed == 0))
