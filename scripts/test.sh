#!/usr/bin/env bash
# Runs every v2engine check and test: formatting, clippy, the crate dependency rules, and
# the whole test suite in lanes:
#   - unit and in-process tests (spdk-sim);
#   - the acceptance scenarios (acceptance/: lab, terraform, ansible) on spdk-sim;
#   - for each real SPDK build found (v24.09, v26.05): the acceptance scenarios, the
#     sim-vs-real differential and the real-memory test on that build.
# Real builds are looked up in $V2ENGINE_SPDK_REAL (default ../shared/spdk/real beside the
# checkout); where none is found the last lines say that those lanes did not run and how to
# run them. Every lane's time is reported at the end. Installs what it needs first
# (scripts/setup.sh). Must run as root, as CI does.
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
REAL_ROOT="${V2ENGINE_SPDK_REAL:-$PWD/../shared/spdk/real}"
REAL_VERSIONS=(v24.09 v26.05)
report=()
failed=0

# lane NAME COMMAND...: runs one lane, records its outcome and time, goes on after a failure.
lane() {
  local name=$1 start=$SECONDS
  shift
  echo "== lane: $name"
  if "$@"; then
    report+=("passed  $(printf '%5d' $((SECONDS - start))) s  $name")
  else
    report+=("FAILED  $(printf '%5d' $((SECONDS - start))) s  $name")
    failed=1
  fi
}

real_lane() {
  local dir=$1
  V2ENGINE_SPDK_DIR="$dir" cargo test --locked -p spdk-sim --test differential -- --ignored --test-threads=1 &&
    V2ENGINE_SPDK_DIR="$dir" cargo test --locked -p v2engine-executor --test real_engine_memory -- --ignored --test-threads=1 &&
    V2ENGINE_SPDK_DIR="$dir" cargo test --locked -p v2engine-acceptance -- --include-ignored --test-threads=1
}

lane "unit and in-process (spdk-sim)" \
  cargo test --workspace --locked --exclude v2engine-acceptance -- --test-threads=2
lane "acceptance on spdk-sim" \
  cargo test --locked -p v2engine-acceptance -- --test-threads=1
missing=()
for v in "${REAL_VERSIONS[@]}"; do
  if [ -x "$REAL_ROOT/$v/bin/spdk_tgt" ]; then
    lane "real SPDK $v ($REAL_ROOT/$v)" real_lane "$REAL_ROOT/$v"
  else
    missing+=("$v")
  fi
done

echo
echo "== lanes"
printf '%s\n' "${report[@]}"
if [ "${#missing[@]}" -gt 0 ]; then
  echo "NOT RUN: the real SPDK lanes ${missing[*]}: no $REAL_ROOT/<version>/bin/spdk_tgt."
  echo "NOT RUN: set V2ENGINE_SPDK_REAL to a directory holding SPDK builds as <version>/bin/spdk_tgt (e.g. built by build-spdk.sh) to run them."
fi
exit "$failed"
