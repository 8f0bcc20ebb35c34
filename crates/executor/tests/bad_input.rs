//! Bad input is refused with a message naming the record and attribute, and changes
//! nothing: neither the records nor the host.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use common::{SimNode, rec, setting, snapshot};
use executor::ExecutorError;
use serde_json::json;

fn refused(node: &SimNode, batch: &[executor::records::IncomingRecord]) -> String {
    let exec = node.executor("node-1");
    exec.put_records(&[setting(1, false, 256)]).unwrap();
    let records_before = snapshot(&node.state_dir);
    let host_before = std::fs::read(&node.state_file).unwrap();
    let err = exec.put_records(batch).unwrap_err();
    assert!(err.is_invalid_input(), "{err:?}");
    // Predict refuses the same overlay when a record is invalid in itself (memory is
    // reported in its errors instead, see below).
    if !err.to_string().contains("more than the host's memory") {
        let perr = exec.predict(batch).unwrap_err();
        assert_eq!(perr.to_string(), err.to_string());
    }
    assert_eq!(
        snapshot(&node.state_dir),
        records_before,
        "no record changed"
    );
    assert_eq!(
        std::fs::read(&node.state_file).unwrap(),
        host_before,
        "the host is untouched"
    );
    assert_eq!(exec.list_records(None).len(), 1);
    err.to_string()
}

#[test]
fn negative_page_counts_are_refused() {
    let node = SimNode::new(8192, false);
    let e = refused(&node, &[setting(2, true, -2048)]);
    assert!(
        e.starts_with("record data_engine_setting/cluster: hugepage_limit_mib:"),
        "{e}"
    );
    assert!(e.contains("-2048"), "{e}");
}

#[test]
fn more_hugepages_than_memory_are_refused_naming_node_and_numbers() {
    let node = SimNode::new(8192, false);
    let e = refused(&node, &[setting(2, true, 16384)]);
    assert_eq!(
        e,
        "record data_engine_setting/cluster: hugepage_limit_mib: node node-1: 8192 hugepages \
         (16384 MiB) are more than the host's memory (8192 MiB)"
    );
    let over = rec(
        "node_v2",
        "node-1",
        2,
        json!({"node": "node-1", "enabled": true, "hugepage_limit_mib": 10240}),
    );
    let e = refused(&node, &[over]);
    assert!(
        e.starts_with("record node_v2/node-1: hugepage_limit_mib: node node-1: 5120 hugepages"),
        "{e}"
    );
}

#[test]
fn a_node_that_opts_out_may_keep_a_setting_too_big_for_it() {
    let node = SimNode::new(1024, false);
    let exec = node.executor("node-1");
    let out_opt = rec(
        "node_v2",
        "node-1",
        1,
        json!({"node": "node-1", "enabled": false}),
    );
    let out = exec
        .put_records(&[out_opt, setting(1, true, 4096)])
        .unwrap();
    assert!(out.iter().all(|o| o.applied));
}

#[test]
fn malformed_cpu_masks_are_refused() {
    let node = SimNode::new(8192, false);
    let over = rec(
        "node_v2",
        "node-1",
        2,
        json!({"node": "node-1", "cpu_mask": "0xZZ"}),
    );
    let e = refused(&node, &[over]);
    assert!(e.starts_with("record node_v2/node-1: cpu_mask:"), "{e}");
    let s = rec(
        "data_engine_setting",
        "cluster",
        2,
        json!({"cpu_mask": "3"}),
    );
    let e = refused(&node, &[s]);
    assert!(
        e.contains("cpu_mask: cpu mask \"3\" is not a hexadecimal mask"),
        "{e}"
    );
}

#[test]
fn module_names_that_are_not_identifiers_are_refused() {
    let node = SimNode::new(8192, false);
    let s = rec(
        "data_engine_setting",
        "cluster",
        2,
        json!({"kernel_modules": ["vfio_pci", "-r", "nvme_tcp"]}),
    );
    let e = refused(&node, &[s]);
    assert!(e.contains("kernel_modules[1]:"), "{e}");
    let s = rec(
        "data_engine_setting",
        "cluster",
        2,
        json!({"kernel_modules": ["../../x"]}),
    );
    let e = refused(&node, &[s]);
    assert!(e.contains("kernel_modules[0]:"), "{e}");
}

#[test]
fn one_bad_record_refuses_the_whole_batch() {
    let node = SimNode::new(8192, false);
    let good = rec("storage_class", "fast", 1, json!({"number_of_replicas": 2}));
    let bad = rec("volume", "v 1", 1, json!({}));
    let e = refused(&node, &[good, bad]);
    assert!(e.starts_with("record volume/v 1: name:"), "{e}");
}

#[test]
fn predict_reports_an_overlay_too_big_for_the_host_as_an_error() {
    let node = SimNode::new(8192, false);
    let exec = node.executor("node-1");
    let before = std::fs::read(&node.state_file).unwrap();
    let p = exec.predict(&[setting(1, true, 16384)]).unwrap();
    assert_eq!(
        p.plan.errors,
        ["node node-1: 8192 hugepages (16384 MiB) are more than the host's memory (8192 MiB)"]
    );
    assert!(!p.plan.changes);
    assert_eq!(std::fs::read(&node.state_file).unwrap(), before);
    assert!(exec.list_records(None).is_empty(), "predict stores nothing");
}

#[test]
fn predict_reports_memory_it_does_not_refuse_the_stored_state() {
    // Records already stored (e.g. before the host lost memory) are reported by predict.
    let node = SimNode::new(8192, false);
    let exec = node.executor("node-1");
    exec.put_records(&[setting(1, true, 4096)]).unwrap();
    let mut s = node.state();
    s.memory_mib = 2048;
    node.host().save(&s).unwrap();
    let p = exec.predict(&[]).unwrap();
    assert_eq!(
        p.plan.errors,
        ["node node-1: 2048 hugepages (4096 MiB) are more than the host's memory (2048 MiB)"]
    );
    let before = std::fs::read(&node.state_file).unwrap();
    let err = exec.reconcile().unwrap_err();
    assert!(matches!(err, ExecutorError::Refused { .. }), "{err:?}");
    assert_eq!(
        std::fs::read(&node.state_file).unwrap(),
        before,
        "reconcile changed nothing"
    );
    assert_eq!(exec.status().engine_state, "failed");
}
