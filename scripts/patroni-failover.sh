#!/usr/bin/env bash
# High availability the way operators run it (SPEC §14): PostgreSQL 15 managed by Debian's
# Patroni 3.0 over a one-node Debian etcd, two nodes on this machine with synchronous_mode:
# true. A create load runs through one PgStore given both hosts
# (target_session_attrs=read-write); the primary node is killed (Patroni and every PostgreSQL
# process of it, SIGKILL: the machine is gone); Patroni promotes the replica; the same PgStore
# serves again, and every create it acknowledged is read back.
#
# Prints the time from the kill to the promotion and to the load being served again, and the
# acknowledged-write check. Exits 1 when an acknowledged create is missing or a step times
# out. Too slow for every CI run (about a minute); everything in it is bounded. Root only
# (apt, and Patroni runs as the postgres user).
set -euo pipefail
cd "$(dirname "$0")/.."

STEP_TIMEOUT=${STEP_TIMEOUT:-90}   # seconds any one wait may take
LOAD_AFTER=${LOAD_AFTER:-8}        # seconds of load after service is back

bash scripts/install-postgres.sh
if ! command -v patroni >/dev/null || ! command -v etcd >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        patroni etcd-server etcd-client python3-etcd >/dev/null
fi
cargo build --release --example pg_failover_load 2>&1 | tail -1

work=$(mktemp -d /tmp/groupd-patroni.XXXXXX)
chown postgres: "$work"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        disown "$pid" 2>/dev/null || true
        kill -9 "$pid" 2>/dev/null || true
    done
    for data in "$work"/node1 "$work"/node2; do
        if [[ -f $data/postmaster.pid ]]; then
            kill -9 "$(head -1 "$data/postmaster.pid")" 2>/dev/null || true
        fi
    done
    sleep 0.5
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# Waits until `$@` succeeds, at most STEP_TIMEOUT seconds.
wait_for() {
    local what=$1; shift
    local deadline=$((SECONDS + STEP_TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            echo "patroni-failover: timed out waiting for $what" >&2
            tail -20 "$work"/*.log >&2 || true
            exit 1
        fi
        sleep 0.2
    done
}
http_ok() { [[ $(curl -s -m 2 -o /dev/null -w '%{http_code}' "$1") == 200 ]]; }

etcd_client=$(free_port) etcd_peer=$(free_port)
etcd --name e1 --data-dir "$work/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_client" \
    --advertise-client-urls "http://127.0.0.1:$etcd_client" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "e1=http://127.0.0.1:$etcd_peer" >"$work/etcd.log" 2>&1 &
pids+=($!)
wait_for etcd env ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$etcd_client" endpoint health

declare -A pg_port api_port
for node in node1 node2; do
    pg_port[$node]=$(free_port)
    api_port[$node]=$(free_port)
    cat >"$work/$node.yml" <<YAML
scope: groupd-failover
namespace: /groupd/
name: $node
restapi:
  listen: 127.0.0.1:${api_port[$node]}
  connect_address: 127.0.0.1:${api_port[$node]}
etcd3:
  host: 127.0.0.1:$etcd_client
bootstrap:
  dcs:
    ttl: 20
    loop_wait: 2
    retry_timeout: 5
    maximum_lag_on_failover: 1048576
    synchronous_mode: true
    postgresql:
      use_pg_rewind: false
      parameters:
        max_connections: 100
        wal_level: replica
        hot_standby: "on"
        max_wal_senders: 5
        max_replication_slots: 5
  initdb:
    - encoding: UTF8
    - locale: C.UTF-8
  pg_hba:
    - local all all trust
    - host all all 127.0.0.1/32 trust
    - host replication replicator 127.0.0.1/32 trust
postgresql:
  listen: 127.0.0.1:${pg_port[$node]}
  connect_address: 127.0.0.1:${pg_port[$node]}
  data_dir: $work/$node
  bin_dir: /usr/lib/postgresql/15/bin
  pgpass: $work/$node.pgpass
  authentication:
    superuser: {username: postgres, password: postgres}
    replication: {username: replicator, password: replicator}
  parameters:
    unix_socket_directories: $work
YAML
    chown postgres: "$work/$node.yml"
done

start_node() {
    setpriv --reuid=postgres --regid=postgres --init-groups env HOME="$work" \
        patroni "$work/$1.yml" >"$work/$1.log" 2>&1 &
    pids+=($!)
    eval "${1}_pid=$!"
}
start_node node1
wait_for "node1 to lead" http_ok "http://127.0.0.1:${api_port[node1]}/primary"
start_node node2
wait_for "node2 to be the synchronous standby" http_ok "http://127.0.0.1:${api_port[node2]}/sync"
echo "patroni-failover: node1 primary on ${pg_port[node1]}, node2 synchronous standby on ${pg_port[node2]}"

url="postgres://postgres:postgres@127.0.0.1:${pg_port[node1]},127.0.0.1:${pg_port[node2]}/postgres?target_session_attrs=read-write"
stop="$work/stop"
timeout $((4 * STEP_TIMEOUT)) target/release/examples/pg_failover_load "$url" "$stop" \
    $((3 * STEP_TIMEOUT)) 16 >"$work/load.out" 2>"$work/load.err" &
load=$!
pids+=($load)
sleep 5

# The primary's machine is gone: Patroni and every PostgreSQL process of node1, at once.
postmaster=$(head -1 "$work/node1/postmaster.pid")
victims=("$node1_pid" "$postmaster" $(ps -o pid= --ppid "$postmaster" || true))
killed=$(now)
disown "$node1_pid"
kill -9 "${victims[@]}" 2>/dev/null || true
echo "patroni-failover: killed node1 (patroni $node1_pid, postmaster $postmaster and its children)"

wait_for "node2 to be promoted" http_ok "http://127.0.0.1:${api_port[node2]}/primary"
echo "patroni-failover: node2 promoted $(since "$killed") s after the kill"
wait_for "the load to be served again" grep -q "service back" "$work/load.err"
echo "patroni-failover: load served again $(since "$killed") s after the kill"
sleep "$LOAD_AFTER"
touch "$stop"
status=0
wait "$load" || status=$?
cat "$work/load.err" "$work/load.out"
exit $status
