#!/usr/bin/env bash
# Runs every test of Portcullis on a fresh Debian machine: installs what the
# tests need, checks formatting and lints, smoke-runs the fuzz targets and
# benchmarks, then runs the whole test suite against real services (slapd,
# SoftHSM2, Redis, Postfix, ...) that the tests start on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s (%ss)\n' "$1" "$SECONDS"; }

step "install test dependencies"
scripts/install-test-deps.sh

step "cargo fmt --check"
cargo fmt --all -- --check
(cd fuzz && cargo fmt -- --check)

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "fuzz smoke runs"
scripts/fuzz-smoke.sh

step "benchmark smoke runs"
cargo bench --locked -p portcullis-benches -- --test >/dev/null

step "cargo test"
cargo test --workspace --locked --no-fail-fast
