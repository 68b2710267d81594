#!/usr/bin/env bash
# Builds every cargo-fuzz target, replays the saved regression inputs
# (fuzz/regressions/TARGET/*, crashes found earlier), then runs each target
# for a fixed number of inputs from a fixed seed, so a run is repeatable:
# the same commit explores the same inputs (FUZZ_RUNS, default 100000;
# FUZZ_SEED, default 1). FUZZ_SECONDS instead runs each target for that many
# seconds from a random seed, for longer campaigns.
# cargo-fuzz needs nightly features; on a stable toolchain RUSTC_BOOTSTRAP=1
# enables them.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
export RUSTC_BOOTSTRAP=1
if [ -n "${FUZZ_SECONDS:-}" ]; then
  limits=(-max_total_time="$FUZZ_SECONDS")
else
  limits=(-runs="${FUZZ_RUNS:-100000}" -seed="${FUZZ_SEED:-1}")
fi
targets=$(cargo fuzz list)
cargo fuzz build -O
for t in $targets; do
  mkdir -p "corpus/$t"
  if [ -d "regressions/$t" ]; then
    if ! out=$(cargo fuzz run -O "$t" "regressions/$t" -- -runs=0 2>&1); then
      echo "$out" | tail -40
      echo "fuzz target $t failed on a saved regression input"
      exit 1
    fi
  fi
  if ! out=$(cargo fuzz run -O "$t" "corpus/$t" -- "${limits[@]}" -rss_limit_mb=2048 2>&1); then
    echo "$out" | tail -40
    echo "fuzz target $t failed"
    exit 1
  fi
  echo "fuzz $t: $(echo "$out" | grep -E '^(Done|#[0-9]+.*DONE)' | tail -1)"
done
