#!/usr/bin/env bash
# Fuzzes the whole conversation (framing → JSON-RPC → dispatch → a scratch redb database) with
# libFuzzer through cargo-fuzz, for DURATION_SECONDS in all.
#
#   scripts/fuzz.sh DURATION_SECONDS [TARGET]      # TARGET defaults to `wire`
#
# The fuzz crate is tests/fuzz (its own workspace, so `cargo test` never builds it). It runs on
# the stable toolchain: `--sanitizer none` asks rustc for nothing nightly-only (the coverage
# instrumentation is a stable `-C` option); safe Rust needs no AddressSanitizer, and a panic,
# which the target turns any broken answer into, is what we look for.
#
# New corpus entries go to tests/fuzz/corpus/TARGET, crashes to tests/fuzz/artifacts/TARGET
# (neither is committed). After a crash, fuzzing starts again for the time that is left, so one
# finding does not end the run; the script exits 1 if there was any. Replay a crash with
#   cargo fuzz run --fuzz-dir tests/fuzz --sanitizer none TARGET tests/fuzz/artifacts/TARGET/crash-…
# and keep it as a case in tests/fuzz_regressions.rs.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${1:?usage: scripts/fuzz.sh DURATION_SECONDS [TARGET]}
target=${2:-wire}

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

corpus=tests/fuzz/corpus/$target
artifacts=tests/fuzz/artifacts/$target
mkdir -p "$corpus" "$artifacts"
cargo fuzz build --fuzz-dir tests/fuzz --sanitizer none "$target"

crashes_before=$(find "$artifacts" -type f | wc -l)
deadline=$((SECONDS + duration))
while ((SECONDS < deadline)); do
    left=$((deadline - SECONDS))
    echo "== fuzzing $target for ${left}s"
    if cargo fuzz run --fuzz-dir tests/fuzz --sanitizer none "$target" \
        "$corpus" "tests/fuzz/seeds/$target" -- \
        -max_total_time="$left" \
        -dict="tests/fuzz/$target.dict" \
        -max_len=4096 \
        -print_final_stats=1; then
        break
    fi
    echo "== $target stopped on a finding; continuing"
done

found=$(($(find "$artifacts" -type f | wc -l) - crashes_before))
echo "== $found new finding(s) in $artifacts"
((found == 0))
