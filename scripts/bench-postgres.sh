#!/usr/bin/env bash
# PostgreSQL backend figures (tests/postgres_bench.rs) on a throw-away PostgreSQL 15 cluster,
# each beside its baseline from the same run. Release build; prints, never fails on a figure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-postgres.sh
cargo test --release --test postgres_bench -- --ignored --nocapture --test-threads 1 2>&1 |
    grep -E 'baseline|PgStore|mean calls' || true
