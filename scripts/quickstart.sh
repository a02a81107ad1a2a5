#!/usr/bin/env bash
# The README's Quick start run command, exactly as written, on this checkout (SPEC §5): read
# from the README (the first line of the first fenced block under "## Quick start", comment
# stripped, as a reader would type it), run in the repository's root, it must serve its
# default address 127.0.0.1:7411 with its default database ./groupd.redb, answer a call, and
# exit 0 on SIGTERM. The database it made is removed afterwards. Port 7411 must be free and
# ./groupd.redb absent (a clean checkout). Exits non-zero, with the server's stderr, otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

addr=127.0.0.1:7411
db=groupd.redb
serve_within=60 # seconds from start to serving, once built

fail() {
    echo "quickstart: $*" >&2
    [[ -s "${log:-}" ]] && { echo "--- its stderr:" >&2; cat "$log" >&2; }
    exit 1
}

command=$(awk '/^## Quick start/{q=1} q&&/^```/{n++; next} q&&n==1{print; exit}' README.md |
    sed 's/#.*//; s/[[:space:]]*$//')
[[ -n "$command" ]] || fail "no run command in the README's Quick start"
echo "== Quick start: $command"
case "$command" in
    "cargo run "*) ;;
    *) fail "the run command is not a 'cargo run': teach this script how to build it first" ;;
esac
[[ ! -e "$db" ]] || fail "./$db exists already; this check needs a clean checkout"
if (exec 3<>"/dev/tcp/${addr%:*}/${addr#*:}") 2>/dev/null; then
    fail "something already listens on $addr"
fi

# Build first (minutes on a fresh machine), so that the start is timed on its own: the same
# command with `build` for `run` and without the binary's arguments.
build=${command%% -- *}
build=${build/cargo run/cargo build}
$build

log=$(mktemp)
trap 'kill -KILL "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
# `cargo run` execs the binary on Unix, so $pid is groupd itself once it runs.
bash -c "exec $command" 2>"$log" &
pid=$!
started=$SECONDS
until grep -q "listening on $addr .*db=$db" "$log"; do
    kill -0 "$pid" 2>/dev/null || fail "it exited before serving"
    ((SECONDS - started < serve_within)) || fail "it did not serve $addr within $serve_within s"
    sleep 0.2
done
echo "serving $addr with ./$db after $((SECONDS - started)) s"

groupd=target/release/groupd
[[ -x "$groupd" ]] || groupd=target/debug/groupd
answer=$("$groupd" call --addr "$addr" --timeout 10 getAllGroups) || fail "the call failed"
[[ "$answer" == "[]" ]] || fail "getAllGroups answered $answer on a fresh database"
[[ -f "$db" ]] || fail "./$db is not there"

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
((status == 0)) || fail "exit status $status after SIGTERM"
grep -q "shut down cleanly" "$log" || fail "no clean shutdown in its log"
rm -f "$db"
echo "quickstart: served, answered, and stopped cleanly"
