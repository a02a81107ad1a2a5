# Shared by the client test runners (sourced, not run): installing pinned npm and PyPI packages,
# finding the groupd binary to test, running a client against a fresh server and counting what
# passed. Run from the repository root; sources scripts/groupd-server.sh.

source scripts/groupd-server.sh

passed=0
failed=0
failures=()

# record NAME STATUS: count one client test; a non-zero STATUS is a failure, named at the end.
record() {
    if (($2 == 0)); then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failures+=("$1")
        echo "FAILED: $1" >&2
    fi
}

# install_npm DIR: `npm ci` in DIR (into DIR/node_modules) unless its package-lock.json is in place.
install_npm() {
    local dir="$1"
    if [[ ! -f "$dir/node_modules/.package-lock.json" ||
        "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]]; then
        echo "== npm ci ($dir)"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    fi
}

# install_pypi VENV REQUIREMENTS: the pinned PyPI packages, in the venv VENV (made if missing).
install_pypi() {
    local venv="$1" requirements="$2"
    [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
}

# find_groupd TARGET_DIR: $groupd, the absolute path of $GROUPD_BIN if set, otherwise of
# TARGET_DIR/debug/groupd, built first.
find_groupd() {
    if [[ -n "${GROUPD_BIN:-}" ]]; then
        groupd="$GROUPD_BIN"
    else
        cargo build --quiet --bin groupd
        groupd="$1/debug/groupd"
    fi
    groupd="$(cd "$(dirname "$groupd")" && pwd)/$(basename "$groupd")"
}

# over_stdio NAME COMMAND…: COMMAND starts $GROUPD_BIN itself on the fresh database $GROUPD_DB
# (in $work/NAME).
over_stdio() {
    local name="$1" dir="$work/$1" status=0 started=$SECONDS
    shift
    echo "== $name"
    rm -rf "$dir"
    mkdir -p "$dir"
    GROUPD_BIN="$groupd" GROUPD_DB="$dir/groupd.redb" RUST_LOG=warn timeout 120 "$@" </dev/null || status=$?
    echo "($name: $((SECONDS - started)) s)"
    record "$name" "$status"
}

# over_tcp NAME COMMAND…: COMMAND talks to a fresh `groupd serve` (database and log in
# $work/NAME) at $GROUPD_HOST:$GROUPD_PORT; the server must then stop cleanly on SIGTERM.
over_tcp() {
    local name="$1" dir="$work/$1" status=0 started=$SECONDS
    shift
    echo "== $name"
    start_server "$dir" tcp || { record "$name" 1; return; }
    GROUPD_BIN="$groupd" GROUPD_HOST=127.0.0.1 GROUPD_PORT="${address##*:}" timeout 120 "$@" </dev/null ||
        status=$?
    if ((status == 0)); then
        stop_cleanly "$dir" || status=$?
    else
        stop_server
    fi
    echo "($name: $((SECONDS - started)) s)"
    record "$name" "$status"
}
