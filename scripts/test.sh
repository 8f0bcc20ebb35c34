#!/usr/bin/env bash
# Runs every v2engine check and test: formatting, clippy, the crate dependency rules, and
# the whole test suite (unit, in-process and acceptance tests: lab, terraform, ansible).
# Installs what it needs first (scripts/setup.sh). Must run as root, as CI does.
#
# With CI=true (CI runs a fresh clone, so target/ and .venv are fresh too) or
# V2ENGINE_FRESH_CARGO_HOME=1, cargo runs with an empty CARGO_HOME (.cargo-home-ci/ in the
# checkout, removed first): every crate is downloaded again, so nothing a previous run left in
# ~/.cargo can hide a missing step.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
export V2ENGINE_VENV="${V2ENGINE_VENV:-$PWD/.venv}"

if [ "${CI:-}" = true ] || [ "${V2ENGINE_FRESH_CARGO_HOME:-}" = 1 ]; then
  export CARGO_HOME="$PWD/.cargo-home-ci"
  rm -rf "$CARGO_HOME"
  mkdir -p "$CARGO_HOME"
  echo "== fresh CARGO_HOME $CARGO_HOME (CI=${CI:-} V2ENGINE_FRESH_CARGO_HOME=${V2ENGINE_FRESH_CARGO_HOME:-}): ~/.cargo is not used, every crate is downloaded"
  host=$(rustc -vV | sed -n 's/^host: //p')
  SECONDS=0
  cargo fetch --quiet --locked --target "$host"
  echo "== fetched $(find "$CARGO_HOME/registry/cache" -name '*.crate' | wc -l) crates for $host in ${SECONDS} s"
fi

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
