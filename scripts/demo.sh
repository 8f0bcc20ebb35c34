#!/usr/bin/env bash
# The v2engine demo: builds everything, brings up a local multi-node lab (network namespaces,
# an sshd, an executor and an engine per node, loop devices as disks) in .lab/, and shows
# each node's status. `scripts/demo.sh down` tears the lab down again.
set -euo pipefail
cd "$(dirname "$0")/.."
LAB_DIR="${LAB_DIR:-$PWD/.lab}"
NODES="${NODES:-3}"

if [ "${1:-}" = down ]; then
  [ -x target/debug/v2engine-lab ] && target/debug/v2engine-lab down --dir "$LAB_DIR"
  exit 0
fi

scripts/setup.sh
cargo build --workspace --bins --locked 2>&1 | tail -n 1
target/debug/v2engine-lab up --nodes "$NODES" --dir "$LAB_DIR"
target/debug/v2engine-lab status --dir "$LAB_DIR"
echo
echo "The lab is up in $LAB_DIR. Tear it down with: scripts/demo.sh down"
