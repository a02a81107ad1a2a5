#!/usr/bin/env bash
# The longer damage sweep (issue 15, SPEC §13): tests/damage.rs with many more single-byte flips
# and several seeds. Each case damages a copy of a real 1,000-group database (a page of zeros,
# a page of random bytes, or one flipped bit) and runs `groupd stdio` and `groupd serve` on it:
# each run must exit 1 with one line before serving, or answer every request; never panic.
#
#   scripts/damage-sweep.sh [FLIPS_PER_SEED] [SEEDS]      (default 2000 flips, 3 seeds)
set -euo pipefail
cd "$(dirname "$0")/.."

flips=${1:-2000}
seeds=${2:-3}
cargo build --quiet --tests
for seed in $(seq 1 "$seeds"); do
    GROUPD_DAMAGE_SEED=$((0x5eed0000 + seed)) GROUPD_DAMAGE_FLIPS=$flips \
        cargo test --quiet --test damage damage_anywhere -- --nocapture 2>&1 | grep -E '^seed|test result|panicked'
done
