//! LinuxHost: this machine's real hugepage sysfs (small counts), buddyinfo fixtures,
//! and module detection, facts and boot persistence on a temporary root.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::fs;
use std::path::Path;

use common::{FAKE_RELEASE, FakeRoot, setting};
use executor::Executor;
use executor::boot::{ELEMENTAL_PATH, MODULES_LOAD_PATH, SYSCTL_PATH};
use executor::engine::NoEngine;
use executor::host::buddyinfo;
use executor::host::linux::LinuxHost;
use executor::host::{HostOs, ModuleState};
use serde_json::json;

/// Restores the real nr_hugepages even when an assertion fails.
struct RestorePool<'a> {
    host: &'a LinuxHost,
    baseline: u64,
}

impl Drop for RestorePool<'_> {
    fn drop(&mut self) {
        let _ = self.host.set_nr_hugepages(self.baseline);
    }
}

#[test]
fn real_sysfs_allocates_reads_back_and_releases_eight_pages() {
    let host = LinuxHost::new("/");
    let before = host.hugepages().expect("read this machine's 2 MiB pool");
    assert_eq!(before.page_size_bytes, 2 * 1024 * 1024);
    assert!(
        before.allocatable_now >= 8,
        "this machine has room for 8 pages: {before:?}"
    );
    let guard = RestorePool {
        host: &host,
        baseline: before.total,
    };

    let got = host
        .set_nr_hugepages(before.total + 8)
        .expect("write nr_hugepages (root)");
    assert_eq!(got, before.total + 8, "the kernel allocated all 8 pages");
    let during = host.hugepages().unwrap();
    assert_eq!(during.total, before.total + 8);
    assert!(
        during.free >= before.free + 8,
        "new pages are free: {during:?}"
    );

    let back = host.set_nr_hugepages(before.total).unwrap();
    assert_eq!(back, before.total, "the 8 pages were released");
    drop(guard);
    assert_eq!(host.hugepages().unwrap().total, before.total);
}

#[test]
fn real_buddyinfo_parses_and_the_facts_count_allocatable_pages() {
    let text = fs::read_to_string("/proc/buddyinfo").unwrap();
    let zones = buddyinfo::parse(&text).unwrap();
    assert!(
        zones
            .iter()
            .any(|z| buddyinfo::USABLE_ZONES.contains(&z.zone.as_str()))
    );
    assert!(
        zones
            .iter()
            .all(|z| z.free.len() > buddyinfo::HUGEPAGE_ORDER)
    );
    let facts = LinuxHost::new("/").hugepages().unwrap();
    assert!(
        facts.allocatable_now > 0,
        "this machine has unfragmented memory"
    );
}

fn fixture(name: &str) -> u64 {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let zones = buddyinfo::parse(&fs::read_to_string(p).unwrap()).unwrap();
    buddyinfo::allocatable_2mib_pages(&zones)
}

#[test]
fn buddyinfo_fixtures_give_the_allocatable_pages() {
    // This CI machine's /proc/buddyinfo: DMA ignored; DMA32 2 + 752×2; Normal 4 + 35×2.
    assert_eq!(fixture("buddyinfo-ci-host.txt"), 2 + 1504 + 4 + 70);
    // Fragmented: one order-9 block in Normal, none in DMA32; DMA's big blocks don't count.
    assert_eq!(fixture("buddyinfo-fragmented.txt"), 1);
    // Two NUMA nodes and a Movable zone, mostly order-10 blocks.
    assert_eq!(
        fixture("buddyinfo-unfragmented-numa.txt"),
        1402 + 7808 + 8006 + 22
    );
}

#[test]
fn the_facts_read_the_fixture_through_the_root() {
    let root = FakeRoot::new();
    let text = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/buddyinfo-fragmented.txt"),
    )
    .unwrap();
    root.write("proc/buddyinfo", &text);
    let h = root.host().hugepages().unwrap();
    assert_eq!(h.allocatable_now, 1);
}

#[test]
fn module_states_on_a_temp_root() {
    let root = FakeRoot::new();
    root.write(
        "proc/modules",
        "nvme_tcp 45056 0 - Live 0x0000000000000000\n",
    );
    root.write("sys/module/vfio_pci/initstate", "live\n");
    root.write("sys/module/nvme_core/parameters/multipath", "Y\n");
    let lib = format!("lib/modules/{FAKE_RELEASE}");
    root.write(
        &format!("{lib}/modules.builtin"),
        "kernel/drivers/block/loop.ko\n",
    );
    root.write(
        &format!("{lib}/modules.dep"),
        "kernel/drivers/uio/uio_pci_generic.ko.zst: kernel/drivers/uio/uio.ko.zst\n\
         kernel/drivers/uio/uio.ko.zst:\n",
    );
    let names: Vec<String> = [
        "nvme_tcp",
        "vfio-pci",
        "nvme_core",
        "loop",
        "uio_pci_generic",
        "nope",
    ]
    .map(String::from)
    .into();
    let states = root.host().module_states(&names).unwrap();
    let states: Vec<ModuleState> = states.into_iter().map(|(_, s)| s).collect();
    assert_eq!(
        states,
        [
            ModuleState::Loaded,
            ModuleState::Loaded,
            ModuleState::Builtin,
            ModuleState::Builtin,
            ModuleState::Loadable,
            ModuleState::Missing
        ]
    );
}

#[test]
fn facts_on_a_temp_root() {
    let root = FakeRoot::new();
    root.write(
        "sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
        "16\n",
    );
    root.write(
        "sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages",
        "10\n",
    );
    root.write("usr/sbin/modprobe", "");
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(
        root.path().join("usr/sbin/modprobe"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    fs::create_dir_all(root.path().join("oem")).unwrap();
    let state = tempfile::tempdir().unwrap();
    let exec = Executor::open(
        "node-1",
        state.path(),
        Box::new(root.host()),
        Box::new(NoEngine),
    )
    .unwrap();
    let f = exec.facts().unwrap();
    assert_eq!(
        (f.kernel_release.as_str(), f.hostname.as_str()),
        (FAKE_RELEASE, "fake-host")
    );
    assert_eq!(f.cpu_count, 4);
    assert_eq!(f.memory.total_bytes, 8 << 30);
    assert_eq!(
        (
            f.hugepages.total,
            f.hugepages.free,
            f.hugepages.allocatable_now
        ),
        (16, 10, 6000)
    );
    assert!(!f.simulated);
    assert_eq!(f.boot_persistence_auto.as_str(), "elemental");
    let tools: Vec<(&str, Option<&str>)> = f
        .tools
        .iter()
        .map(|t| (t.name.as_str(), t.path.as_deref()))
        .collect();
    assert_eq!(
        tools,
        [
            ("modprobe", Some("/usr/sbin/modprobe")),
            ("nvme", None),
            ("mdadm", None)
        ]
    );
    assert_eq!(f.modules.len(), 3);
    assert!(f.modules.iter().all(|(_, s)| *s == ModuleState::Missing));
}

fn open(root: &FakeRoot, state: &Path) -> Executor {
    Executor::open("node-1", state, Box::new(root.host()), Box::new(NoEngine)).unwrap()
}

#[test]
fn systemd_persistence_is_written_then_removed_on_disable() {
    let root = FakeRoot::new();
    root.load_default_modules();
    root.write(
        "sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
        "4\n",
    );
    let state = tempfile::tempdir().unwrap();
    let exec = open(&root, state.path());
    exec.put_records(&[setting(1, true, 256)]).unwrap();
    let st = exec.reconcile().unwrap();
    assert_eq!(st.engine_state, "ready");
    assert_eq!((st.hugepages_target, st.hugepages_allocated), (128, 128));
    assert_eq!(st.boot_persistence, "systemd");
    assert_eq!(st.boot_files, [MODULES_LOAD_PATH, SYSCTL_PATH]);
    let modules = root.read("etc/modules-load.d/v2engine.conf").unwrap();
    let lines: Vec<&str> = modules.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines, ["vfio_pci", "uio_pci_generic", "nvme_tcp"]);
    let sysctl = root
        .read("etc/sysctl.d/90-v2engine-hugepages.conf")
        .unwrap();
    assert!(sysctl.ends_with("\nvm.nr_hugepages = 128\n"), "{sysctl}");
    assert_eq!(
        root.read("sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages")
            .unwrap(),
        "128\n"
    );

    // Unchanged content is not rewritten: the files keep their inode.
    use std::os::unix::fs::MetadataExt;
    let ino = fs::metadata(root.path().join("etc/sysctl.d/90-v2engine-hugepages.conf"))
        .unwrap()
        .ino();
    exec.reconcile().unwrap();
    assert_eq!(
        fs::metadata(root.path().join("etc/sysctl.d/90-v2engine-hugepages.conf"))
            .unwrap()
            .ino(),
        ino
    );

    exec.put_records(&[setting(2, false, 256)]).unwrap();
    let st = exec.reconcile().unwrap();
    assert_eq!(st.engine_state, "disabled");
    assert!(st.boot_files.is_empty());
    assert!(root.read("etc/modules-load.d/v2engine.conf").is_none());
    assert!(
        root.read("etc/sysctl.d/90-v2engine-hugepages.conf")
            .is_none()
    );
    // The pool is back at the 4 pages it had before v2engine took it.
    assert_eq!(
        root.read("sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages")
            .unwrap(),
        "4\n"
    );
    assert!(!state.path().join("hugepages-baseline").exists());
}

#[test]
fn elemental_persistence_where_oem_exists_and_backend_switches_clean_up() {
    let root = FakeRoot::new();
    root.load_default_modules();
    fs::create_dir_all(root.path().join("oem")).unwrap();
    let state = tempfile::tempdir().unwrap();
    let exec = open(&root, state.path());
    exec.put_records(&[setting(1, true, 2048)]).unwrap();
    let st = exec.reconcile().unwrap();
    assert_eq!(st.boot_persistence, "elemental");
    assert_eq!(st.boot_files, [ELEMENTAL_PATH]);
    let yaml = root.read("oem/93_spdk.yaml").unwrap();
    let body = yaml.split_once("Do not edit.\n").unwrap().1;
    assert_eq!(
        body,
        "name: \"v2engine V2 data engine\"\n\
         stages:\n  boot:\n    - name: \"v2engine: load kernel modules and allocate hugepages\"\n\
         \x20     modules:\n        - vfio_pci\n        - uio_pci_generic\n        - nvme_tcp\n\
         \x20     sysctl:\n        vm.nr_hugepages: \"1024\"\n"
    );
    assert!(
        root.read("etc/sysctl.d/90-v2engine-hugepages.conf")
            .is_none()
    );

    // Switching this node to systemd removes the elemental stage.
    let over = common::rec(
        "node_v2",
        "node-1",
        2,
        json!({"node": "node-1", "boot_persistence": "systemd"}),
    );
    exec.put_records(&[over]).unwrap();
    let st = exec.reconcile().unwrap();
    assert_eq!(st.boot_files, [MODULES_LOAD_PATH, SYSCTL_PATH]);
    assert!(root.read("oem/93_spdk.yaml").is_none());

    // Backend none keeps nothing.
    let over = common::rec(
        "node_v2",
        "node-1",
        3,
        json!({"node": "node-1", "boot_persistence": "none"}),
    );
    exec.put_records(&[over]).unwrap();
    let st = exec.reconcile().unwrap();
    assert_eq!(st.boot_persistence, "none");
    assert!(st.boot_files.is_empty());
    assert!(root.read("etc/modules-load.d/v2engine.conf").is_none());
}

#[test]
fn a_module_to_load_without_modprobe_is_a_clear_error_that_changes_nothing() {
    let root = FakeRoot::new();
    root.write(
        &format!("lib/modules/{FAKE_RELEASE}/modules.dep"),
        "kernel/drivers/vfio/pci/vfio-pci.ko:\nkernel/drivers/uio/uio_pci_generic.ko:\n",
    );
    root.write("proc/modules", "nvme_tcp 1 0 - Live 0x0\n");
    let state = tempfile::tempdir().unwrap();
    let exec = open(&root, state.path());
    exec.put_records(&[setting(1, true, 256)]).unwrap();
    let before = common::snapshot(root.path());
    let err = exec.reconcile().unwrap_err().to_string();
    assert!(
        err.contains("node node-1: cannot load kernel module vfio_pci: modprobe is not installed"),
        "{err}"
    );
    assert!(err.contains("uio_pci_generic"), "{err}");
    assert_eq!(
        common::snapshot(root.path()),
        before,
        "nothing on the host changed"
    );
    let st = exec.status();
    assert_eq!(st.engine_state, "failed");
    assert_eq!(st.last_error, err);
    assert_eq!(st.modules_loaded, ["nvme_tcp"]);

    // A module that does not exist at all is named too.
    root.write(&format!("lib/modules/{FAKE_RELEASE}/modules.dep"), "");
    let err = exec.reconcile().unwrap_err().to_string();
    assert!(err.contains("kernel module vfio_pci is missing"), "{err}");
}
