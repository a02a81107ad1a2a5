# Shared by the client test scripts (sourced, not run): start and stop one `groupd serve` on
# ephemeral loopback ports with a fresh database. Needs $groupd, the binary to run.

server_pid=""

# stop_server: kill the server, if one runs (also the EXIT trap).
stop_server() {
    if [[ -n "$server_pid" ]]; then
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
}
trap stop_server EXIT

# start_server DIR WHICH [ARGS…]: groupd serve on 127.0.0.1:0 (plus ARGS) with a fresh database
# in DIR, its log in DIR/stderr. WHICH is "tcp" or "http": the listener whose address goes in
# $address (HOST:PORT), read from the log line the server writes once it listens.
start_server() {
    local dir="$1" which="$2" tries=0 pattern
    shift 2
    case "$which" in
        tcp) pattern='groupd: listening on [^ ]*' ;;
        http) pattern='http listening on [^ ]*' ;;
        *) echo "start_server: tcp or http, not $which" >&2; return 2 ;;
    esac
    rm -rf "$dir"
    mkdir -p "$dir"
    # The log exists before the server starts: the background shell opens it in its own time,
    # and grep below must never look for it before then.
    : >"$dir/stderr"
    RUST_LOG=info "$groupd" serve --listen 127.0.0.1:0 --db "$dir/groupd.redb" "$@" 2>>"$dir/stderr" &
    server_pid=$!
    address=""
    until address=$(grep -m1 -o "$pattern" "$dir/stderr" | awk '{print $NF}') && [[ -n "$address" ]]; do
        if ! kill -0 "$server_pid" 2>/dev/null || ((++tries > 400)); then
            echo "groupd did not start:" >&2
            cat "$dir/stderr" >&2
            return 1
        fi
        sleep 0.05
    done
}

# stop_cleanly DIR: SIGTERM; groupd must exit 0.
stop_cleanly() {
    local dir="$1" status=0
    kill -TERM "$server_pid"
    wait "$server_pid" || status=$?
    server_pid=""
    if ((status != 0)); then
        echo "groupd exited with status $status after SIGTERM:" >&2
        cat "$dir/stderr" >&2
        return 1
    fi
}
