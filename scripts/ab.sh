#!/usr/bin/env bash
# Interleaved A/B of groupd builds on the rows that move most with a change to the write path.
#
#   scripts/ab.sh ROUNDS BINARY...      e.g. scripts/ab.sh 5 /tmp/groupd-before target/release/groupd
#
# Each round measures the baselines first (one durable redb commit per create, the fixed-answer
# server, the durable baseline), then each binary in turn on a fresh copy of one seeded
# 1,000-group database: getGroup 8x16 with named params, createGroup 64x1, mixed 90/5/5 8x16.
# Every figure is printed with its ratio to the baseline of its own round; the last lines give
# each binary's median ratio per row over all rounds.
#
# Why interleaved rounds: on a shared 2-core machine the same baseline was seen to move from
# 0.59M to 1.07M calls/s within minutes, more than most changes move groupd. Alternating the
# builds inside each round, and comparing medians over several rounds, keeps a slow moment from
# deciding the comparison (scripts/bench.sh measures one build, once per row). Nothing here
# judges the figures.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 2 ]; then
    echo "usage: scripts/ab.sh ROUNDS BINARY..." >&2
    exit 2
fi
rounds=$1
shift
binaries=("$@")
for b in "${binaries[@]}"; do
    [ -x "$b" ] || { echo "ab: not an executable: $b" >&2; exit 2; }
done
cargo build --release --quiet --bin groupd-load
load=target/release/groupd-load
work=$(mktemp -d "${TMPDIR:-/tmp}/groupd-ab.XXXXXX")
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

source scripts/listening.sh
rate() {
    "$load" run --quiet --warmup 1 --duration 3 --addr "$1" --ids 1000 "${@:2}" |
        sed -n 's/.*calls_per_s=\([0-9]*\).*/\1/p'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

"$load" seed --db "$work/seed.redb" --groups 1000 2>/dev/null
"$load" baseline --listen 127.0.0.1:0 2>"$work/fixed.log" &
pids+=("$!")
fixed=$(wait_for_addr "$work/fixed.log")
"$load" baseline --listen 127.0.0.1:0 --log "$work" 2>"$work/durable.log" &
pids+=("$!")
durable=$(wait_for_addr "$work/durable.log")

results="$work/results"
for round in $(seq 1 "$rounds"); do
    commits=$("$load" commit-rate --dir "$work" --seconds 2 | sed 's/.*=//')
    get_base=$(rate "$fixed" --mix get-named -c 8 -d 16)
    mixed_base=$(rate "$fixed" --mix mixed -c 8 -d 16)
    ceiling=$(rate "$durable" --mix mixed -c 8 -d 16)
    echo "round $round: commit rate $commits/s, fixed-answer get $get_base, mixed $mixed_base," \
        "durable baseline mixed $ceiling ($(ratio "$ceiling" "$mixed_base"))"
    for i in "${!binaries[@]}"; do
        binary=${binaries[$i]}
        rm -f "$work"/db.redb*
        cp "$work/seed.redb" "$work/db.redb"
        "$binary" serve --listen 127.0.0.1:0 --db "$work/db.redb" 2>"$work/server.log" &
        server=$!
        addr=$(wait_for_addr "$work/server.log")
        get=$(rate "$addr" --mix get-named -c 8 -d 16)
        create=$(rate "$addr" --mix create -c 64 -d 1)
        mixed=$(rate "$addr" --mix mixed -c 8 -d 16)
        kill -TERM "$server"
        wait "$server" || true
        printf '  %-40s get %8d (%s)  64x1 %6d (%sx)  mixed %7d (%s)\n' "$binary" \
            "$get" "$(ratio "$get" "$get_base")" "$create" "$(ratio "$create" "$commits")" \
            "$mixed" "$(ratio "$mixed" "$mixed_base")"
        echo "$i $(ratio "$get" "$get_base") $(ratio "$create" "$commits") $(ratio "$mixed" "$mixed_base")" >>"$results"
    done
done
echo "medians over $rounds rounds (get vs fixed-answer, 64x1 vs commit rate, mixed vs fixed-answer):"
for i in "${!binaries[@]}"; do
    median() { awk -v i="$i" -v c="$1" '$1 == i { print $c }' "$results" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
    printf '  %-40s get %s  64x1 %sx  mixed %s\n' "${binaries[$i]}" "$(median 2)" "$(median 3)" "$(median 4)"
done
