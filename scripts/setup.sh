#!/usr/bin/env bash
# Installs what v2engine's demo and tests need on a fresh Debian machine of this kind:
# Debian packages (sshd, iproute2, util-linux, e2fsprogs, nvme-cli), and a Python venv at
# .venv with ansible-core and SPDK's own JSON-RPC client. Idempotent and quiet when done.
set -euo pipefail
cd "$(dirname "$0")/.."

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "setup: must run as root (network namespaces, loop devices, hugepages, apt)" >&2
    exit 1
  fi
}

apt_packages=(openssh-server openssh-client iproute2 util-linux e2fsprogs fdisk procps python3-venv)
# What upstream SPDK builds need at run time (shared/spdk/real/README.md), installed when the
# real-SPDK lanes can run: builds under $V2ENGINE_SPDK_REAL (default ../shared/spdk/real).
spdk_runtime=(librte-eal23 librte-kvargs23 librte-telemetry23 librte-ring23 librte-mempool23
  librte-mempool-ring23 librte-pci23 librte-bus-pci23 librte-power23 librte-timer23
  librte-ethdev23 librte-net23 librte-mbuf23 librte-meter23 librte-rcu23 libaio1 libssl3 openssl
  libuuid1 libnuma1 libfdt1 libbsd0 libkeyutils1)
# ... and the crypto builds (<version>-crypto) in addition.
spdk_crypto_runtime=(libipsec-mb1 libibverbs1 ibverbs-providers libnl-3-200 libnl-route-3-200
  librte-bus-auxiliary23 librte-bus-vdev23 librte-common-mlx5-23 librte-common-qat23
  librte-compressdev23 librte-crypto-ipsec-mb23 librte-crypto-mlx5-23 librte-cryptodev23
  librte-hash23 librte-security23)
REAL_ROOT="${V2ENGINE_SPDK_REAL:-$PWD/../shared/spdk/real}"
if compgen -G "$REAL_ROOT/*/bin/spdk_tgt" >/dev/null; then
  apt_packages+=("${spdk_runtime[@]}")
  if compgen -G "$REAL_ROOT/*-crypto/bin/spdk_tgt" >/dev/null; then
    apt_packages+=("${spdk_crypto_runtime[@]}")
  fi
fi
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  need_root
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
mkdir -p /run/sshd

if ! command -v terraform >/dev/null 2>&1; then
  echo "setup: terraform is not installed (expected at /usr/local/bin/terraform); the acceptance tests need the real binary" >&2
  exit 1
fi

VENV="${V2ENGINE_VENV:-$PWD/.venv}"
# A venv left by an earlier run is reused only when it holds exactly what is pinned here.
venv_ok() {
  [ -x "$VENV/bin/ansible-playbook" ] && [ -x "$VENV/bin/spdk-rpc" ] && "$VENV/bin/python" - <<'PY'
import importlib.metadata as m, sys
ansible = tuple(int(x) for x in m.version("ansible-core").split(".")[:2])
sys.exit(0 if m.version("spdk") == "25.5" and (2, 17) <= ansible < (2, 19) else 1)
PY
}
if ! venv_ok 2>/dev/null; then
  echo "setup: creating Python venv $VENV (ansible-core, spdk==25.5)"
  python3 -m venv --clear "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check 'ansible-core>=2.17,<2.19' 'spdk==25.5'
  venv_ok || { echo "setup: the venv $VENV does not hold ansible-core 2.17/2.18 and spdk 25.5 after install" >&2; exit 1; }
fi
echo "setup: ready (venv $VENV)"
