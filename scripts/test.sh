#!/usr/bin/env bash
# Runs every test of Portcullis on a fresh Debian machine: installs what the
# tests need, checks formatting, lints and docs, smoke-runs the fuzz targets
# and benchmarks, then runs the whole test suite against real services
# (slapd, SoftHSM2, Redis, Postfix, ...) that the tests start on loopback.
#
# Builds are shared where cargo allows it: the benchmarks smoke-run under the
# test profile (criterion's test mode, one iteration each) after the test
# suite, so they reuse its dependencies instead of a separate release build.
# A per-step timing summary is printed at the end, pass or fail.
set -euo pipefail
cd "$(dirname "$0")/.."

timings=()
current=""
started=$SECONDS
step() {
  finish_step
  current="$1"
  started=$SECONDS
  printf '\n== %s (at %ss)\n' "$current" "$SECONDS"
}
finish_step() {
  if [ -n "$current" ]; then
    timings+=("$(printf '%6ss  %s' "$((SECONDS - started))" "$current")")
  fi
  current=""
}
summary() {
  local rc=$?
  finish_step
  printf '\n== timing per step\n'
  printf '%s\n' "${timings[@]}"
  printf '%6ss  total\n' "$SECONDS"
  exit "$rc"
}
trap summary EXIT

step "install test dependencies"
scripts/install-test-deps.sh

step "cargo fmt --check"
cargo fmt --all -- --check
(cd fuzz && cargo fmt -- --check)

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo doc"
RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps --locked --quiet

step "fuzz smoke runs"
scripts/fuzz-smoke.sh

step "cargo test"
cargo test --workspace --locked --no-fail-fast

step "benchmark smoke runs (test profile)"
cargo test --locked -p portcullis-benches --benches -q >/dev/null
