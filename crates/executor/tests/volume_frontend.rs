//! `frontend = block`: the kernel's NVMe/TCP initiator connected to a volume's frontend.
//!
//! This machine's kernel has no NVMe modules, so the kernel side is a fake: LinuxHost on a
//! temporary root holding a stand-in `nvme` (and `modprobe`) that log their arguments and
//! make the sysfs entries the kernel would (shaped like real sysfs: class symlinks into
//! /sys/devices, a native-multipath head under the subsystem, the per-path device under the
//! controller, a local PCIe SSD alongside). The engine is spdk-sim.
//!
//! Checked: the refusal before anything changes where nvme-cli or nvme_tcp is missing (and
//! on the simulated host, which says it has no initiator); the `nvme connect` command line;
//! the module loaded first when only loadable; the device found through sysfs; idempotence;
//! the listing; a dry run; delete disconnecting first. Also sysfs discovery on its own
//! against both layouts (with and without native multipath).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
mod engine_support;
mod vol_support;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use common::{FAKE_RELEASE, FakeRoot, snapshot};
use engine_support::{rec, spdk_sim};
use executor::host::HostOs;
use executor::host::linux::LinuxHost;
use executor::host::sim::SimHost;
use proto::v1 as pb;
use spdk_rpc::SpdkApi;
use spdk_rpc::types::nvmf::NvmfGetSubsystems;
use spdk_rpc::types::raid::BdevRaidGetBdevs;
use tonic::Code;
use vol_support::{HOST_NQN, VolNode, engine_req, local, replica_req};

const NQN: &str = "nqn.2026-11.io.v2engine:blk";
const R1: &str = "blk-r-0000000a";
const KERNEL_NQN: &str = "nqn.2014-08.org.nvmexpress:uuid:0c7d6b1e-7a43-4a5e-9a43-2f1c5e7d9b10";

/// A stand-in for nvme-cli: logs its arguments to `<root>/nvme.log`; `connect` makes
/// nvme-subsys1 / nvme1 with namespace head nvme1n1 (nvme1c1n1 the path under the
/// controller), `disconnect` removes them, as the kernel would.
const FAKE_NVME: &str = r#"#!/bin/sh
root=$(cd "$(dirname "$0")/../.." && pwd)
echo "$*" >> "$root/nvme.log"
case "$1" in
connect)
  nqn=""; addr=""; port=""
  while [ $# -gt 0 ]; do
    case "$1" in -n) nqn=$2; shift;; -a) addr=$2; shift;; -s) port=$2; shift;; esac
    shift
  done
  s=$root/sys/devices/virtual/nvme-subsystem/nvme-subsys1
  c=$root/sys/devices/virtual/nvme-fabrics/ctl/nvme1
  mkdir -p "$s/nvme1n1" "$c/nvme1c1n1" "$root/sys/class/nvme-subsystem" "$root/sys/class/nvme"
  echo "$nqn" > "$s/subsysnqn"
  echo "$nqn" > "$c/subsysnqn"
  echo tcp > "$c/transport"
  echo live > "$c/state"
  echo "traddr=$addr,trsvcid=$port" > "$c/address"
  ln -s ../../nvme-fabrics/ctl/nvme1 "$s/nvme1"
  ln -s ../../devices/virtual/nvme-subsystem/nvme-subsys1 "$root/sys/class/nvme-subsystem/nvme-subsys1"
  ln -s ../../devices/virtual/nvme-fabrics/ctl/nvme1 "$root/sys/class/nvme/nvme1"
  ;;
disconnect)
  rm -rf "$root/sys/class/nvme-subsystem/nvme-subsys1" "$root/sys/class/nvme/nvme1" \
    "$root/sys/devices/virtual/nvme-subsystem/nvme-subsys1" "$root/sys/devices/virtual/nvme-fabrics/ctl/nvme1"
  echo "NQN:$3 disconnected 1 controller(s)"
  ;;
esac
"#;

/// A stand-in for modprobe: logs, and marks the module loaded in `<root>/proc/modules`.
const FAKE_MODPROBE: &str = r#"#!/bin/sh
root=$(cd "$(dirname "$0")/../.." && pwd)
echo "$*" >> "$root/modprobe.log"
for m; do :; done
echo "$m 16384 0 - Live 0x0000000000000000" >> "$root/proc/modules"
"#;

fn install(root: &Path, rel: &str, script: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, script).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
}

/// A local PCIe SSD the kernel already has (nvme0, nvme-subsys0, nvme0n1), so discovery
/// has to pick the right subsystem.
fn local_ssd(root: &Path) {
    let s = root.join("sys/devices/virtual/nvme-subsystem/nvme-subsys0");
    let c = root.join("sys/devices/pci0000:00/0000:00:04.0/nvme/nvme0");
    fs::create_dir_all(s.join("nvme0n1")).unwrap();
    fs::create_dir_all(c.join("nvme0c0n1")).unwrap();
    fs::write(
        s.join("subsysnqn"),
        "nqn.2014.08.org.nvmexpress:80868086PHKS\n",
    )
    .unwrap();
    fs::write(
        c.join("subsysnqn"),
        "nqn.2014.08.org.nvmexpress:80868086PHKS\n",
    )
    .unwrap();
    fs::write(c.join("transport"), "pcie\n").unwrap();
    fs::write(c.join("state"), "live\n").unwrap();
    fs::write(c.join("address"), "0000:00:04.0\n").unwrap();
    symlink(
        "../../../pci0000:00/0000:00:04.0/nvme/nvme0",
        s.join("nvme0"),
    )
    .unwrap();
    fs::create_dir_all(root.join("sys/class/nvme-subsystem")).unwrap();
    fs::create_dir_all(root.join("sys/class/nvme")).unwrap();
    symlink(
        "../../devices/virtual/nvme-subsystem/nvme-subsys0",
        root.join("sys/class/nvme-subsystem/nvme-subsys0"),
    )
    .unwrap();
    symlink(
        "../../devices/pci0000:00/0000:00:04.0/nvme/nvme0",
        root.join("sys/class/nvme/nvme0"),
    )
    .unwrap();
}

/// The setting without nvme_tcp among the modules reconcile loads (the frontend needs it,
/// not the engine).
fn setting_without_nvme_tcp() -> pb::Record {
    rec(
        "data_engine_setting",
        "cluster",
        1,
        serde_json::json!({"enabled": true, "hugepage_limit_mib": 256, "kernel_modules": ["vfio_pci"]}),
    )
}

fn block_req() -> pb::EnsureEngineRequest {
    pb::EnsureEngineRequest {
        frontend: "block".into(),
        ..engine_req("blk", vec![local(R1)])
    }
}

/// Every subsystem, raid and controller of ours in the engine.
async fn engine_objects(node: &VolNode) -> Vec<String> {
    let api = node.spdk();
    let mut out: Vec<String> = api
        .nvmf_get_subsystems(NvmfGetSubsystems::default())
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.nqn)
        .filter(|n| n.starts_with("nqn.2026-11.io.v2engine:"))
        .collect();
    out.extend(
        api.bdev_raid_get_bdevs(BdevRaidGetBdevs::default())
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.name),
    );
    out
}

fn log(root: &Path, name: &str) -> Vec<String> {
    fs::read_to_string(root.join(name))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_frontend_connects_the_kernel_finds_the_device_and_disconnects_on_delete() {
    let fake = FakeRoot::new();
    let root = fake.path().to_path_buf();
    fake.write(
        "proc/modules",
        "vfio_pci 16384 0 - Live 0x0000000000000000\n",
    );
    local_ssd(&root);
    let mut n = VolNode::start_on(
        &spdk_sim(),
        "node-l",
        tempfile::tempdir().unwrap(),
        Box::new(LinuxHost::new(&root)),
        vec![setting_without_nvme_tcp()],
        vol_support::Setup::default(),
    )
    .await;
    n.disk().await;
    n.client
        .ensure_replica(replica_req(R1, false))
        .await
        .unwrap();

    // No nvme-cli, no nvme_tcp: refused, naming node, volume and both; nothing changed.
    let before = snapshot(&root);
    let err = n.client.ensure_engine(block_req()).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let msg = err.message();
    eprintln!("refused: {msg}");
    for part in [
        "node node-l",
        "volume blk",
        "nvme-cli is not installed",
        "nvme_tcp is missing",
        "nothing was changed",
    ] {
        assert!(msg.contains(part), "{part:?} not in {msg}");
    }
    // A dry run is refused the same way: the plan would fail.
    let dry = pb::EnsureEngineRequest {
        dry_run: true,
        ..block_req()
    };
    assert_eq!(
        n.client.ensure_engine(dry).await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    assert_eq!(snapshot(&root), before, "the host root changed");
    assert!(engine_objects(&n).await.is_empty());
    let inv = n
        .client
        .list_volume_objects(pb::ListVolumeObjectsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(inv.engines.is_empty(), "{inv:?}");

    // nvme-cli installed, nvme_tcp still missing: refused for the module only.
    install(&root, "usr/sbin/nvme", FAKE_NVME);
    let msg = n
        .client
        .ensure_engine(block_req())
        .await
        .unwrap_err()
        .message()
        .to_string();
    assert!(
        msg.contains("nvme_tcp is missing") && !msg.contains("nvme-cli"),
        "{msg}"
    );
    assert!(engine_objects(&n).await.is_empty());
    assert!(log(&root, "nvme.log").is_empty());

    // nvme_tcp loadable (modules.dep) with modprobe, and the host's own host NQN.
    fake.write(
        &format!("lib/modules/{FAKE_RELEASE}/modules.dep"),
        "kernel/drivers/nvme/host/nvme-tcp.ko: kernel/drivers/nvme/host/nvme-fabrics.ko\n",
    );
    install(&root, "usr/sbin/modprobe", FAKE_MODPROBE);
    fake.write("etc/nvme/hostnqn", &format!("{KERNEL_NQN}\n"));
    let out = n
        .client
        .ensure_engine(block_req())
        .await
        .unwrap()
        .into_inner();
    let eng = out.engine.clone().unwrap();
    let front = eng.frontend.clone().unwrap();
    let connect = format!(
        "connect -t tcp -a 127.0.0.1 -s {} -n {NQN} --hostnqn {KERNEL_NQN}",
        front.port
    );
    eprintln!("block engine: {:?}", out.actions);
    let k = out.actions.len();
    assert_eq!(
        out.actions[k - 2..],
        [
            "load kernel module nvme_tcp".to_string(),
            format!("nvme {connect}")
        ],
        "{:?}",
        out.actions
    );
    assert_eq!(eng.device_path, "/dev/nvme1n1", "{eng:?}");
    assert_eq!(log(&root, "nvme.log"), std::slice::from_ref(&connect));
    assert!(
        log(&root, "modprobe.log")[0].ends_with("-- nvme_tcp"),
        "{:?}",
        log(&root, "modprobe.log")
    );
    // The kernel's host NQN may connect to the frontend, besides the fleet's.
    assert_eq!(front.hosts, [HOST_NQN, KERNEL_NQN]);
    let subs = n
        .spdk()
        .nvmf_get_subsystems(NvmfGetSubsystems::default())
        .await
        .unwrap();
    let f = subs.iter().find(|s| s.nqn == NQN).unwrap();
    assert!(f.hosts.iter().any(|h| h.nqn == KERNEL_NQN), "{f:?}");
    // The kernel's steps are not SPDK calls.
    assert!(
        out.spdk_calls
            .iter()
            .all(|c| !c.method.contains("nvme connect"))
    );

    // Again: connected already, only the device is reported.
    let again = n
        .client
        .ensure_engine(block_req())
        .await
        .unwrap()
        .into_inner();
    assert!(again.actions.is_empty(), "{:?}", again.actions);
    assert_eq!(again.engine.unwrap().device_path, "/dev/nvme1n1");
    assert_eq!(log(&root, "nvme.log").len(), 1);
    let inv = n
        .client
        .list_volume_objects(pb::ListVolumeObjectsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(inv.engines.len(), 1);
    assert_eq!(inv.engines[0].device_path, "/dev/nvme1n1");

    // Delete: a dry run names the disconnect first and changes nothing; then for real.
    let disconnect = format!("nvme disconnect -n {NQN}");
    let dry = n
        .client
        .delete_engine(pb::DeleteEngineRequest {
            volume: "blk".into(),
            dry_run: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(dry.actions[0], disconnect, "{:?}", dry.actions);
    assert_eq!(dry.engine.unwrap().device_path, "/dev/nvme1n1");
    assert_eq!(log(&root, "nvme.log").len(), 1);
    let del = n
        .client
        .delete_engine(pb::DeleteEngineRequest {
            volume: "blk".into(),
            dry_run: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(del.actions[0], disconnect, "{:?}", del.actions);
    assert_eq!(
        del.actions[1],
        format!("delete subsystem {NQN}"),
        "{:?}",
        del.actions
    );
    assert_eq!(
        log(&root, "nvme.log"),
        [connect, format!("disconnect -n {NQN}")]
    );
    assert_eq!(del.engine.unwrap().device_path, "");
    assert!(!root.join("sys/class/nvme/nvme1").exists());
    assert!(
        root.join("sys/class/nvme/nvme0").exists(),
        "the local SSD stays"
    );
    assert!(engine_objects(&n).await.is_empty());

    // frontend nvmf leaves the kernel alone.
    let nvmf = n
        .client
        .ensure_engine(engine_req("blk", vec![local(R1)]))
        .await
        .unwrap()
        .into_inner();
    assert!(nvmf.actions.iter().all(|a| !a.starts_with("nvme ")));
    assert_eq!(nvmf.engine.unwrap().device_path, "");
    assert_eq!(log(&root, "nvme.log").len(), 2);

    // nvme connect failing: the error names the node, the volume, the command and what
    // nvme-cli said.
    install(
        &root,
        "usr/sbin/nvme",
        "#!/bin/sh\necho 'could not add new controller: failed to write to nvme-fabrics device' >&2\nexit 1\n",
    );
    let err = n.client.ensure_engine(block_req()).await.unwrap_err();
    let msg = err.message();
    for part in [
        "node node-l: volume blk: nvme connect -t tcp",
        "failed (exit status: 1): could not add new controller",
    ] {
        assert!(msg.contains(part), "{part:?} not in {msg}");
    }
    n.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulated_host_has_no_kernel_initiator_and_refuses_block() {
    let mut n = VolNode::start(&spdk_sim(), "node-s", VolNode::sim()).await;
    // Even with an nvme program in its root, the simulated host reports none.
    install(&n.dir.path().join("root"), "usr/sbin/nvme", FAKE_NVME);
    let facts = n
        .client
        .get_host_facts(pb::GetHostFactsRequest {})
        .await
        .unwrap()
        .into_inner();
    let nvme = facts.tools.iter().find(|t| t.name == "nvme").unwrap();
    assert!(!nvme.present, "{nvme:?}");
    n.disk().await;
    n.client
        .ensure_replica(replica_req(R1, false))
        .await
        .unwrap();

    let err = n.client.ensure_engine(block_req()).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    eprintln!("refused: {}", err.message());
    for part in [
        "node node-s",
        "volume blk",
        "simulated host has no kernel NVMe initiator",
        "nothing was changed",
    ] {
        assert!(
            err.message().contains(part),
            "{part:?} not in {}",
            err.message()
        );
    }
    assert!(engine_objects(&n).await.is_empty());
    assert!(!n.dir.path().join("root/nvme.log").exists());

    // Not a frontend this executor has: invalid input.
    let err = n
        .client
        .ensure_engine(pb::EnsureEngineRequest {
            frontend: "ublk".into(),
            ..engine_req("blk", vec![local(R1)])
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("frontend:"), "{}", err.message());

    // nvmf works as before, without a device.
    let eng = n
        .client
        .ensure_engine(engine_req("blk", vec![local(R1)]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(eng.engine.unwrap().device_path, "");
    let host = SimHost::new(n.dir.path().join("sim.json"), n.dir.path().join("root"));
    assert!(host.kernel_nvme().unwrap().subsystems.is_empty());
    assert!(
        host.run_nvme(&["list".to_string()])
            .unwrap_err()
            .to_string()
            .contains("no kernel NVMe initiator")
    );
    n.shutdown().await;
}

#[test]
fn sysfs_discovery_with_and_without_native_multipath() {
    let nqn = "nqn.2026-11.io.v2engine:vol9";
    // Native multipath: the head nvme2n1 under the subsystem, paths under controllers.
    let fake = FakeRoot::new();
    let root = fake.path();
    local_ssd(root);
    let s = root.join("sys/devices/virtual/nvme-subsystem/nvme-subsys2");
    fs::create_dir_all(s.join("nvme2n1")).unwrap();
    fs::write(s.join("subsysnqn"), format!("{nqn}\n")).unwrap();
    for (ctrl, path) in [("nvme2", "nvme2c2n1"), ("nvme3", "nvme2c3n1")] {
        let c = root.join(format!("sys/devices/virtual/nvme-fabrics/ctl/{ctrl}"));
        fs::create_dir_all(c.join(path)).unwrap();
        fs::write(c.join("subsysnqn"), format!("{nqn}\n")).unwrap();
        fs::write(c.join("transport"), "tcp\n").unwrap();
        fs::write(c.join("state"), "live\n").unwrap();
        fs::write(c.join("address"), "traddr=10.0.0.1,trsvcid=4420\n").unwrap();
        symlink(format!("../../nvme-fabrics/ctl/{ctrl}"), s.join(ctrl)).unwrap();
        symlink(
            format!("../../devices/virtual/nvme-fabrics/ctl/{ctrl}"),
            root.join(format!("sys/class/nvme/{ctrl}")),
        )
        .unwrap();
    }
    symlink(
        "../../devices/virtual/nvme-subsystem/nvme-subsys2",
        root.join("sys/class/nvme-subsystem/nvme-subsys2"),
    )
    .unwrap();
    let k = LinuxHost::new(root).kernel_nvme().unwrap();
    assert_eq!(k.subsystems.len(), 2);
    assert_eq!(k.subsystems[1].controllers, ["nvme2", "nvme3"]);
    assert_eq!(k.subsystems[1].namespaces, ["nvme2n1"]);
    let ctrls: Vec<&str> = k
        .controllers_of(nqn)
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(ctrls, ["nvme2", "nvme3"]);
    assert!(
        k.controllers_of(nqn)[0].namespaces.is_empty(),
        "paths are no devices"
    );
    assert_eq!(
        k.controllers_of(nqn)[0].address,
        "traddr=10.0.0.1,trsvcid=4420"
    );
    assert_eq!(k.block_device(nqn).as_deref(), Some("/dev/nvme2n1"));
    assert_eq!(
        k.block_device("nqn.2014.08.org.nvmexpress:80868086PHKS")
            .as_deref(),
        Some("/dev/nvme0n1")
    );

    // Without multipath: the namespace nvme5n1 under the controller only.
    let fake = FakeRoot::new();
    let root = fake.path();
    let s = root.join("sys/devices/virtual/nvme-subsystem/nvme-subsys5");
    let c = root.join("sys/devices/virtual/nvme-fabrics/ctl/nvme5");
    fs::create_dir_all(&s).unwrap();
    fs::create_dir_all(c.join("nvme5n1")).unwrap();
    fs::write(s.join("subsysnqn"), format!("{nqn}\n")).unwrap();
    fs::write(c.join("subsysnqn"), format!("{nqn}\n")).unwrap();
    symlink("../../nvme-fabrics/ctl/nvme5", s.join("nvme5")).unwrap();
    fs::create_dir_all(root.join("sys/class/nvme-subsystem")).unwrap();
    fs::create_dir_all(root.join("sys/class/nvme")).unwrap();
    symlink(
        "../../devices/virtual/nvme-subsystem/nvme-subsys5",
        root.join("sys/class/nvme-subsystem/nvme-subsys5"),
    )
    .unwrap();
    symlink(
        "../../devices/virtual/nvme-fabrics/ctl/nvme5",
        root.join("sys/class/nvme/nvme5"),
    )
    .unwrap();
    let k = LinuxHost::new(root).kernel_nvme().unwrap();
    assert_eq!(k.block_device(nqn).as_deref(), Some("/dev/nvme5n1"));
    assert!(k.is_connected(nqn));

    // No NVMe at all: empty, not an error.
    let empty = FakeRoot::new();
    assert_eq!(
        LinuxHost::new(empty.path()).kernel_nvme().unwrap(),
        Default::default()
    );
}
