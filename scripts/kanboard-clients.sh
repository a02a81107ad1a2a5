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

server_pid=""
stop_server() {
    if [[ -n "$server_pid" ]]; then
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
}
trap stop_server EXIT

# start_server DIR [ARGS…]: starts groupd on a fresh database in DIR; sets server_pid and url.
start_server() {
    local dir="$1"
    shift
    rm -rf "$dir"
    mkdir -p "$dir"
    RUST_LOG=info "$groupd" serve --listen 127.0.0.1:0 --http 127.0.0.1:0 \
        --db "$dir/groupd.redb" "$@" 2>"$dir/stderr" &
    server_pid=$!
    local addr="" tries=0
    until addr=$(grep -m1 -o 'http listening on [^ ]*' "$dir/stderr" | cut -d' ' -f4) && [[ -n "$addr" ]]; do
        if ! kill -0 "$server_pid" 2>/dev/null || ((++tries > 400)); then
            echo "groupd did not start:" >&2
            cat "$dir/stderr" >&2
            return 1
        fi
        sleep 0.05
    done
    url="http://$addr/jsonrpc.php"
}

# stop_cleanly DIR [TOKEN_FILE]: SIGTERM, then exit status 0 and, with a token, no token in the log.
stop_cleanly() {
    local dir="$1" token_file="${2:-}" status=0
    kill -TERM "$server_pid"
    wait "$server_pid" || status=$?
    server_pid=""
    if ((status != 0)); then
        echo "groupd exited with status $status after SIGTERM:" >&2
        cat "$dir/stderr" >&2
        return 1
    fi
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
        start_server "$dir" "${args[@]}"
        if GROUPD_URL="$url" GROUPD_TOKEN_FILE="$token_file" "$venv/bin/python" "$check" \
            && stop_cleanly "$dir" "$token_file"; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
            stop_server
        fi
    done
done

echo "kanboard-clients: $passed passed, $failed failed"
((failed == 0))
