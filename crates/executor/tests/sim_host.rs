//! SimHost end to end: fragmented memory → shortfall → reboot required; the
//! `sim-reboot` command → ready; `sim-init`; the lock against a running node.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::process::Command;

use common::{SimNode, setting};
use executor::host::sim::{self, FRAGMENTED_FREE_PAGES};

const BIN: &str = env!("CARGO_BIN_EXE_v2engine-executor");
const REASON: &str =
    "allocated 3 of 1024 hugepages; the boot configuration will allocate them at next boot";

fn run(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).output().unwrap()
}

#[test]
fn fragmented_host_waits_for_reboot_then_is_ready_after_sim_reboot() {
    let node = SimNode::new(8192, true);
    let exec = node.executor("node-1");
    exec.put_records(&[setting(1, true, 2048)]).unwrap();

    // Predict says the same as reconcile will, without touching the host.
    let before = node.state();
    let p = exec.predict(&[]).unwrap();
    assert_eq!(node.state(), before, "predict changed nothing");
    assert_eq!(
        (p.plan.hugepages_target, p.plan.hugepages_expected),
        (1024, FRAGMENTED_FREE_PAGES)
    );
    assert_eq!(p.plan.reboot_reasons, [REASON]);
    assert_eq!(p.plan.engine_state.as_str(), "waiting_for_reboot");

    let st = exec.reconcile().unwrap();
    assert!(st.reboot_required);
    assert_eq!(st.reboot_reasons, [REASON]);
    assert_eq!(st.engine_state, "waiting_for_reboot");
    assert_eq!((st.hugepages_target, st.hugepages_allocated), (1024, 3));
    assert_eq!(st.modules_loaded, common::default_modules());
    assert_eq!(st.boot_persistence, "systemd");
    assert_eq!(st.last_error, "");
    let s = node.state();
    assert_eq!(
        (s.nr_hugepages, s.free_pages, s.loaded_modules.len()),
        (3, 0, 3)
    );
    drop(exec);

    let out = run(&[
        "sim-reboot",
        "--sim-host",
        node.state_file.to_str().unwrap(),
        "--host-root",
        node.root.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let s = node.state();
    assert!(!s.fragmented);
    assert_eq!(s.boots, 1);
    assert_eq!(
        s.nr_hugepages, 1024,
        "the boot configuration allocated the pages"
    );
    assert_eq!(s.loaded_modules, common::default_modules());

    // The executor restarts after the reboot: reconcile re-applies and all is in place.
    let exec = node.executor("node-1");
    let p = exec.predict(&[]).unwrap();
    assert!(!p.plan.changes, "nothing left to do: {:?}", p.plan);
    let st = exec.reconcile().unwrap();
    assert!(!st.reboot_required);
    assert_eq!(st.engine_state, "ready");
    assert_eq!(st.hugepages_allocated, 1024);
}

#[test]
fn sim_reboot_applies_the_elemental_stage() {
    let node = SimNode::new(4096, true);
    std::fs::create_dir_all(node.root.join("oem")).unwrap();
    let exec = node.executor("node-1");
    exec.put_records(&[setting(1, true, 256)]).unwrap();
    let st = exec.reconcile().unwrap();
    assert_eq!(st.boot_persistence, "elemental");
    assert_eq!(
        st.reboot_reasons,
        ["allocated 3 of 128 hugepages; the boot configuration will allocate them at next boot"]
    );
    let (s, warnings) = node.host().reboot().unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!((s.nr_hugepages, s.loaded_modules.len()), (128, 3));
}

#[test]
fn disabling_releases_the_pages_and_a_reboot_then_brings_none_back() {
    let node = SimNode::new(4096, false);
    let exec = node.executor("node-1");
    exec.put_records(&[setting(1, true, 512)]).unwrap();
    assert_eq!(exec.reconcile().unwrap().engine_state, "ready");
    assert_eq!(node.state().nr_hugepages, 256);
    exec.put_records(&[setting(2, false, 512)]).unwrap();
    let st = exec.reconcile().unwrap();
    assert_eq!(st.engine_state, "disabled");
    assert_eq!((st.hugepages_target, st.hugepages_allocated), (0, 0));
    assert_eq!(node.state().nr_hugepages, 0);
    let (s, _) = node.host().reboot().unwrap();
    assert_eq!(s.nr_hugepages, 0);
    assert!(s.loaded_modules.is_empty());
}

#[test]
fn sim_init_writes_a_fresh_state() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("n/sim.json");
    let out = run(&[
        "sim-init",
        "--sim-host",
        f.to_str().unwrap(),
        "--memory-mib",
        "4096",
        "--fragmented",
        "--modules",
        "vfio_pci,nvme_tcp",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = executor::host::sim::SimHost::new(&f, "/").load().unwrap();
    assert_eq!(
        (s.memory_mib, s.fragmented, s.free_pages),
        (4096, true, FRAGMENTED_FREE_PAGES)
    );
    assert_eq!(s.available_modules, ["vfio_pci", "nvme_tcp"]);
    assert_eq!((s.nr_hugepages, s.boots), (0, 0));

    let out = run(&[
        "sim-init",
        "--sim-host",
        f.to_str().unwrap(),
        "--modules",
        "rm -rf",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--modules"));
}

#[test]
fn sim_commands_refuse_a_running_node() {
    let node = SimNode::new(2048, true);
    let before = std::fs::read(&node.state_file).unwrap();
    let _running = sim::lock_state(&node.state_file).unwrap();
    let out = run(&[
        "sim-reboot",
        "--sim-host",
        node.state_file.to_str().unwrap(),
        "--host-root",
        node.root.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by a running executor"), "{err}");
    assert_eq!(std::fs::read(&node.state_file).unwrap(), before);
}
