#!/usr/bin/env bash
# The v2engine demo: builds everything, brings up a local multi-node lab (network namespaces,
# an sshd, an executor and a simulated host per node, loop devices as disks) in .lab/, then
# runs `terraform plan` and `apply` of examples/quickstart over SSH. The plan shows, before
# anything changes, that the last node (fragmented memory) will need a reboot; after
# `v2engine-lab reboot` a refresh shows it ready.
#
#   scripts/demo.sh          run the demo (idempotent)
#   SPDK=v26.05 scripts/demo.sh   the same on upstream SPDK (v24.09, v26.05 or a build dir)
#   scripts/demo.sh down     destroy the quickstart and tear the lab down
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
LAB_DIR="${LAB_DIR:-$ROOT/.lab}"
NODES="${NODES:-3}"
LAB="$ROOT/target/debug/v2engine-lab"
WORK="$LAB_DIR/quickstart"
export TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1 TF_CLI_CONFIG_FILE="$LAB_DIR/terraformrc"
tf() { local cmd=$1; shift; terraform -chdir="$WORK" "$cmd" -input=false -no-color "$@"; }
vars=(-var-file="$LAB_DIR/terraform.tfvars.json")

if [ "${1:-}" = down ]; then
  if [ -d "$WORK" ] && [ -f "$LAB_DIR/terraform.tfvars.json" ]; then
    tf destroy -auto-approve "${vars[@]}" || true
  fi
  [ -x "$LAB" ] && "$LAB" down --dir "$LAB_DIR"
  exit 0
fi

scripts/setup.sh
command -v terraform >/dev/null || { echo "demo: terraform is not installed (expected /usr/local/bin/terraform)" >&2; exit 1; }
echo "== building"
cargo build --workspace --bins --locked 2>&1 | tail -n 1
echo "== lab: $NODES nodes in $LAB_DIR"
"$LAB" up --nodes "$NODES" --dir "$LAB_DIR" --spdk "${SPDK:-sim}"
"$LAB" status --dir "$LAB_DIR"

echo "== terraform init + plan of examples/quickstart (over SSH)"
mkdir -p "$WORK"
cp "$ROOT"/examples/quickstart/*.tf "$WORK/"
# The provider is built locally: forget checksums recorded for an earlier build.
rm -rf "$WORK/.terraform" "$WORK/.terraform.lock.hcl"
tf init >/dev/null
tf plan "${vars[@]}" -out=quickstart.plan
echo "== terraform apply"
tf apply quickstart.plan
"$LAB" status --dir "$LAB_DIR"

last="node-$NODES"
echo "== rebooting $last (its boot configuration allocates the hugepages)"
"$LAB" reboot "$last" --dir "$LAB_DIR"
tf apply -refresh-only -auto-approve "${vars[@]}" >/dev/null
terraform -chdir="$WORK" output -no-color reboot_required_nodes
"$LAB" status --dir "$LAB_DIR"
terraform -chdir="$WORK" output -no-color volume

if [ "$NODES" -ge 3 ]; then
  echo "== cutting node-2's link: the plan shows the volume degraded and its replacement"
  "$LAB" cut node-2 --dir "$LAB_DIR"
  tf plan "${vars[@]}" -out=heal.plan
  echo "== terraform apply: the replacement is built and the raid1 rebuilds onto it"
  tf apply heal.plan
  for _ in $(seq 1 20); do
    tf apply -refresh-only -auto-approve "${vars[@]}" >/dev/null
    state=$(terraform -chdir="$WORK" output -no-color -json volume | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
    [ "$state" = healthy ] && break
    sleep 0.5
  done
  terraform -chdir="$WORK" output -no-color volume
  echo "== restoring node-2: its old replica is stale, the next apply removes it"
  "$LAB" restore node-2 --dir "$LAB_DIR"
  tf apply -auto-approve "${vars[@]}"
fi
echo
echo "Done. The lab stays up in $LAB_DIR; tear it down with: scripts/demo.sh down"
