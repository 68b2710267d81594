#!/usr/bin/env bash
# Builds every cargo-fuzz target and runs each for a few seconds
# (FUZZ_SECONDS, default 5). cargo-fuzz needs nightly features; on a stable
# toolchain RUSTC_BOOTSTRAP=1 enables them.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-5}"
export RUSTC_BOOTSTRAP=1
targets=$(cargo fuzz list)
cargo fuzz build -O
for t in $targets; do
  mkdir -p "corpus/$t"
  if ! out=$(cargo fuzz run -O "$t" "corpus/$t" -- -max_total_time="$seconds" -rss_limit_mb=2048 2>&1); then
    echo "$out" | tail -40
    echo "fuzz target $t failed"
    exit 1
  fi
  echo "fuzz $t: $(echo "$out" | grep -E '^(Done|#[0-9]+.*DONE)' | tail -1)"
done
