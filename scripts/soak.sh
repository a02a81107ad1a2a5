#!/usr/bin/env bash
# Soak test: MINUTES of mixed load against a release build of `groupd serve` on loopback, with
# random disconnects and garbage lines, printing the server's memory and the error counts every
# minute.
#
#   scripts/soak.sh MINUTES
#
# The load, all of it verified:
# - `groupd-load run --mix get` (4 connections × 8 pipelined lines) and `--mix update`
#   (2 × 4, external ids of the seeded groups), each checking every answer's id and shape;
#   restarted every minute so that each minute has its own figures.
# - A Python client with 4 workers that create, rename, remove and read back groups of their
#   own, checking every answer exactly against what they know; send garbage lines (each must get
#   a -32700 with id null); and drop their connections at random: cleanly, after a request
#   without reading its answer (reads only, so what they know stays exact), or in the middle of
#   a line (which must never run).
#
# Exits non-zero if any answer was wrong, any load process failed, the server died, or its
# resident memory grew beyond the bound (twice the first minute's, plus 64 MiB), and at the end
# if SIGTERM did not stop it cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=${1:?usage: scripts/soak.sh MINUTES}
seeded=200

cargo build --release --bins
groupd=target/release/groupd
load=target/release/groupd-load

work=$(mktemp -d)
server_pid=
cleanup() {
    [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null || true
    jobs -p | xargs -r kill 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

"$groupd" serve --listen 127.0.0.1:0 --db "$work/soak.redb" 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 200); do
    addr=$(sed -n 's/.*listening on \([0-9.:]*\).*/\1/p' "$work/server.log" | head -n1)
    [[ -n $addr ]] && break
    sleep 0.05
done
[[ -n $addr ]] || { echo "soak: groupd did not start" >&2; cat "$work/server.log" >&2; exit 1; }
echo "soak: groupd (pid $server_pid) on $addr for $minutes minute(s)"

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status"; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$server_pid/status"; }

cat >"$work/client.py" <<'PYTHON'
"""Verified churn, garbage and disconnects against groupd; counters go to a JSON file."""
import json, os, random, socket, sys, threading, time

host, port = sys.argv[1].rsplit(":", 1)
seconds, stats_path = float(sys.argv[2]), sys.argv[3]
deadline = time.monotonic() + seconds
lock = threading.Lock()
stats = {"calls": 0, "wrong": 0, "garbage": 0, "disconnects": 0, "conn_errors": 0}
first_wrong = []


def bump(key, n=1):
    with lock:
        stats[key] += n


def wrong(what):
    bump("wrong")
    with lock:
        if len(first_wrong) < 5:
            first_wrong.append(what)
            print("soak: WRONG " + what[:500], file=sys.stderr, flush=True)


class Conn:
    def __init__(self):
        self.sock = socket.create_connection((host, int(port)), timeout=20)
        self.file = self.sock.makefile("rb")

    def send(self, data):
        self.sock.sendall(data)

    def call(self, request):
        self.send(json.dumps(request, separators=(",", ":")).encode() + b"\n")
        line = self.file.readline()
        if not line.endswith(b"\n"):
            raise ConnectionError("closed")
        bump("calls")
        return json.loads(line)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def worker(n):
    rng = random.Random(n * 7919 + int(time.time()))
    mine = {}  # id -> name; every name carries the external id "x-" + name
    gone = []  # ids this worker removed
    seq = 0
    while time.monotonic() < deadline:
        try:
            conn = Conn()
        except OSError:
            bump("conn_errors")
            time.sleep(0.1)
            continue
        try:
            for _ in range(rng.randint(1, 60)):
                seq += 1
                req_id = rng.choice([seq, "s%d" % seq])
                pick = rng.random()
                if pick < 0.08:
                    garbage = b"#" + bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
                    conn.send(garbage.replace(b"\n", b" ") + b"\n")
                    line = conn.file.readline()
                    answer = json.loads(line)
                    bump("garbage")
                    if answer.get("id", 0) is not None or answer.get("error", {}).get("code") != -32700:
                        wrong("garbage answered %r" % line)
                    continue
                # Each worker keeps 20 to 50 groups, so the database stops growing early and
                # memory growth after that means a leak, not a bigger database.
                if (pick < 0.35 and len(mine) < 50) or len(mine) < 20:
                    name = "soak-%d-%d" % (n, seq)
                    a = conn.call({"jsonrpc": "2.0", "method": "createGroup", "id": req_id,
                                   "params": [name, "x-" + name]})
                    gid = a.get("result")
                    if a.get("id") != req_id or not isinstance(gid, int) or gid in mine or gid in gone:
                        wrong("create %s -> %r" % (name, a))
                    else:
                        mine[gid] = name
                elif pick < 0.55:
                    gid = rng.choice(list(mine))
                    name = "soak-%d-r%d" % (n, seq)
                    a = conn.call({"jsonrpc": "2.0", "method": "updateGroup", "id": req_id,
                                   "params": {"group_id": str(gid), "name": name, "external_id": "x-" + name}})
                    if a != {"jsonrpc": "2.0", "id": req_id, "result": True}:
                        wrong("rename %d -> %r" % (gid, a))
                    mine[gid] = name
                elif pick < 0.70 or len(mine) >= 50:
                    gid = rng.choice(list(mine))
                    a = conn.call({"jsonrpc": "2.0", "method": "removeGroup", "id": req_id, "params": [gid]})
                    if a != {"jsonrpc": "2.0", "id": req_id, "result": True}:
                        wrong("remove %d -> %r" % (gid, a))
                    del mine[gid]
                    gone.append(gid)
                else:
                    gid = rng.choice(list(mine) + gone[-5:])
                    a = conn.call({"jsonrpc": "2.0", "method": "getGroup", "id": req_id, "params": [gid]})
                    want = False
                    if gid in mine:
                        want = {"id": str(gid), "external_id": "x-" + mine[gid], "name": mine[gid]}
                    if a != {"jsonrpc": "2.0", "id": req_id, "result": want}:
                        wrong("get %d -> %r, want %r" % (gid, a, want))
            # Leave: cleanly, after a read left unread, or in the middle of a line.
            how = rng.random()
            if how < 0.3 and mine:
                conn.send(b'{"jsonrpc":"2.0","method":"getGroup","id":0,"params":[%d]}\n' % rng.choice(list(mine)))
            elif how < 0.6:
                conn.send(b'{"jsonrpc":"2.0","method":"removeGroup","id":0,"params":[%d' % rng.choice(list(mine) or [1]))
            bump("disconnects")
        except (OSError, ValueError, ConnectionError) as e:
            bump("conn_errors")
            print("soak: connection error: %r" % (e,), file=sys.stderr, flush=True)
        finally:
            conn.close()
    # A half line must never have run: every group this worker knows is still as it knows it.
    conn = Conn()
    for gid, name in mine.items():
        a = conn.call({"jsonrpc": "2.0", "method": "getGroup", "id": 1, "params": [gid]})
        if a.get("result") != {"id": str(gid), "external_id": "x-" + name, "name": name}:
            wrong("final get %d -> %r" % (gid, a))
    conn.close()


def report():
    while True:
        with lock:
            snapshot = json.dumps(stats)
        with open(stats_path + ".tmp", "w") as f:
            f.write(snapshot)
        os.replace(stats_path + ".tmp", stats_path)
        if time.monotonic() > deadline + 30:
            return
        time.sleep(1)


threading.Thread(target=report, daemon=True).start()
workers = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
for w in workers:
    w.start()
for w in workers:
    w.join()
with lock:
    snapshot = json.dumps(stats)
with open(stats_path, "w") as f:
    f.write(snapshot)
print("soak: client done: " + snapshot, flush=True)
sys.exit(1 if stats["wrong"] else 0)
PYTHON

# The groups groupd-load reads and updates: ids 1..$seeded, made before any other load.
python3 - "$addr" "$seeded" <<'PYTHON'
import json, socket, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=20)
f = s.makefile("rb")
for i in range(1, int(sys.argv[2]) + 1):
    s.sendall(b'{"jsonrpc":"2.0","method":"createGroup","id":%d,"params":["seed-%d"]}\n' % (i, i))
    if json.loads(f.readline()).get("result") != i:
        sys.exit("soak: seeding failed at %d" % i)
PYTHON

python3 "$work/client.py" "$addr" $((minutes * 60)) "$work/stats.json" 2>"$work/client.err" &
client_pid=$!

failed=0
baseline=
printf '%-6s %9s %9s %7s %12s %10s %14s %9s %6s %8s %11s %11s\n' minute rss_mib hwm_mib db_mib get_calls/s get_p99ms update_calls/s checked wrong garbage disconnects conn_errors
for minute in $(seq "$minutes"); do
    "$load" run --addr "$addr" --mix get -c 4 -d 8 --ids "$seeded" --warmup 1 --duration 57 --quiet \
        >"$work/get.out" 2>&1 &
    get_pid=$!
    "$load" run --addr "$addr" --mix update -c 2 -d 4 --ids "$seeded" --warmup 1 --duration 57 --quiet \
        >"$work/update.out" 2>&1 &
    update_pid=$!
    wait "$get_pid" || { failed=1; echo "soak: groupd-load get failed: $(cat "$work/get.out")"; }
    wait "$update_pid" || { failed=1; echo "soak: groupd-load update failed: $(cat "$work/update.out")"; }
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "soak: groupd died"; tail -20 "$work/server.log"; exit 1
    fi
    rss=$(rss_kib)
    hwm=$(hwm_kib)
    [[ -n $baseline ]] || baseline=$rss
    field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" "$2"; }
    counter() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$work/stats.json" "$1" 2>/dev/null || echo '?'; }
    db=$(stat -c %s "$work/soak.redb")
    printf '%-6s %9.1f %9.1f %7.1f %12s %10s %14s %9s %6s %8s %11s %11s\n' "$minute" \
        "$(awk "BEGIN {print $rss / 1024}")" "$(awk "BEGIN {print $hwm / 1024}")" \
        "$(awk "BEGIN {print $db / 1048576}")" \
        "$(field calls_per_s "$work/get.out")" "$(field p99_ms "$work/get.out")" \
        "$(field calls_per_s "$work/update.out")" \
        "$(counter calls)" "$(counter wrong)" "$(counter garbage)" "$(counter disconnects)" \
        "$(counter conn_errors)"
    bound=$((baseline * 2 + 64 * 1024))
    if ((rss > bound)); then
        echo "soak: RSS $rss KiB is over the bound of $bound KiB (first minute: $baseline KiB)"
        failed=1
    fi
done

wait "$client_pid" || { failed=1; echo "soak: the verifying client found wrong answers or failed"; }
sort "$work/client.err" | uniq -c | sort -rn | head -10
kill -TERM "$server_pid"
if ! wait "$server_pid"; then
    echo "soak: groupd did not exit 0 after SIGTERM"; failed=1
fi
server_pid=
echo "soak: server log: $(grep -c . "$work/server.log") lines, $(grep -ci ' error ' "$work/server.log" || true) errors"
if ((failed)); then
    echo "soak: FAILED"
    exit 1
fi
echo "soak: passed"
