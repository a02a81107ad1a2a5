# Shared by bench.sh and ab.sh (sourced, not run).

# wait_for_addr LOG: prints the address a server (groupd or a groupd-load baseline) says it
# listens on in LOG, once it has said so; fails after 30 s, showing the log.
wait_for_addr() {
    for _ in $(seq 1 3000); do
        a=$(grep -o 'listening on [0-9.:]*' "$1" 2>/dev/null | head -1 | cut -d' ' -f3 || true)
        if [ -n "$a" ]; then echo "$a"; return; fi
        sleep 0.01
    done
    echo "server did not start; log:" >&2; cat "$1" >&2; exit 1
}
