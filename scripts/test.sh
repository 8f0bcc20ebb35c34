#!/usr/bin/env bash
# Runs every v2engine check and test: formatting, clippy, the crate dependency rules, and
# the whole test suite (unit, in-process and acceptance tests: lab, terraform, ansible).
# Installs what it needs first (scripts/setup.sh). Must run as root, as CI does.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
export V2ENGINE_VENV="${V2ENGINE_VENV:-$PWD/.venv}"

scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== build (all binaries the acceptance tests run)"
cargo build --workspace --all-targets --locked 2>&1 | tail -n 3
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings 2>&1 | tail -n 3
echo "== dependency rules"
cargo xtask check-deps
echo "== tests"
cargo test --workspace --locked -- --test-threads=2
