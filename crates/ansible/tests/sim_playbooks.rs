//! Real ansible-playbook runs of the collection against real executors over simulated
//! hosts (SimHost) on Unix sockets: check mode predicts and changes nothing, apply writes
//! and reconciles, a second run changes nothing, `state: absent` removes, node-local mode
//! uses the node's socket, and bad options fail naming the option, changing nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::path::Path;

use common::{Ansible, Run, SimFleet, changed_files, stage_collection};
use serde_json::{Value, json};

/// A play on localhost with the fleet's connection options as module defaults.
fn play(fleet: &SimFleet, tasks: &str) -> String {
    format!(
        "- hosts: localhost\n  connection: local\n  gather_facts: false\n  module_defaults:\n    group/v2engine.storage.all:\n      nodes: {}\n  tasks:\n{}",
        fleet.nodes_json(),
        indent(tasks, 4)
    )
}

fn indent(s: &str, n: usize) -> String {
    s.lines()
        .map(|l| format!("{}{l}\n", " ".repeat(n)))
        .collect()
}

struct Env {
    _tmp: tempfile::TempDir,
    fleet: SimFleet,
    ans: Ansible,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let fleet = SimFleet::new(&tmp.path().join("fleet"), 3);
    stage_collection(tmp.path());
    let ans = Ansible::new(tmp.path(), tmp.path());
    Env {
        fleet,
        ans,
        _tmp: tmp,
    }
}

impl Env {
    /// Runs `tasks` as a play with `extra` arguments; asserts the run succeeded.
    fn ok(&self, name: &str, tasks: &str, extra: &[&str]) -> Run {
        let r = self.run(name, tasks, extra);
        assert_eq!(r.code, Some(0), "{name} failed:\n{}", r.text);
        r
    }

    fn run(&self, name: &str, tasks: &str, extra: &[&str]) -> Run {
        let pb = self
            .ans
            .write(&format!("{name}.yml"), &play(&self.fleet, tasks));
        let mut args = vec![pb.to_str().unwrap()];
        args.extend(extra);
        self.ans.playbook(&args)
    }

    /// Asserts that running `tasks` with `extra` changes no host file.
    fn changes_nothing(&self, name: &str, tasks: &str, extra: &[&str]) -> Run {
        let before = self.fleet.snapshot();
        let r = self.run(name, tasks, extra);
        let after = self.fleet.snapshot();
        assert!(
            changed_files(&before, &after).is_empty(),
            "{name} changed {:?}",
            changed_files(&before, &after)
        );
        r
    }
}

fn record(node_dir: &Path, kind: &str, name: &str) -> Option<Value> {
    let p = node_dir
        .join("state/records")
        .join(kind)
        .join(format!("{name}.json"));
    std::fs::read(p)
        .ok()
        .map(|b| serde_json::from_slice(&b).unwrap())
}

const SETTING: &str = "- name: setting
  v2engine.storage.data_engine_setting:
    enabled: true
    hugepage_limit_mib: 256
";

#[test]
fn setting_and_node_v2_predict_apply_converge_and_remove() {
    let e = env();

    // --check --diff: the fragmented node-3 will need a reboot; nothing changes.
    let r = e.changes_nothing("setting-check", SETTING, &["--check", "--diff"]);
    assert_eq!(r.code, Some(0), "{}", r.text);
    let t = r.task("setting", "localhost");
    assert_eq!(t["changed"], true);
    assert_eq!(t["reboot_required_nodes"], json!(["node-3"]));
    assert_eq!(t["nodes"]["node-3"]["reboot_required"], true);
    assert_eq!(t["nodes"]["node-1"]["target_pages"], 128);
    assert_eq!(t["diff"]["before"], json!({}));
    assert_eq!(t["diff"]["after"]["enabled"], true);
    assert_eq!(
        t["diff"]["after"]["cpu_mask"], "0x1",
        "defaults are filled in"
    );
    let warnings = t["warnings"].to_string();
    assert!(
        warnings.contains("Node node-3 will need a reboot"),
        "{warnings}"
    );
    assert_eq!(t["msg"], "data_engine_setting cluster would be created");

    // Apply, then the same playbook again changes nothing.
    let r = e.ok("setting", SETTING, &[]);
    let t = r.task("setting", "localhost");
    assert_eq!(
        (t["changed"].clone(), r.stat("localhost", "changed")),
        (json!(true), 1)
    );
    assert_eq!(t["reboot_required_nodes"], json!(["node-3"]));
    assert_eq!(t["nodes"]["node-1"]["expected_pages"], 128);
    for n in &e.fleet.nodes {
        let rec = record(&n.dir, "data_engine_setting", "cluster").unwrap();
        assert_eq!(rec["spec"]["hugepage_limit_mib"], 256, "{}", n.name);
    }
    let r = e.ok("setting", SETTING, &["--diff"]);
    assert_eq!(r.stat("localhost", "changed"), 0, "{}", r.text);
    let t = r.task("setting", "localhost");
    assert_eq!(t["msg"], "data_engine_setting cluster unchanged");
    assert_eq!(t["diff"]["before"], t["diff"]["after"]);

    // node_v2 opts node-3 out: predicted, applied, then unchanged.
    let opt_out = "- name: node-3
  v2engine.storage.node_v2:
    node: node-3
    enabled: false
  register: n3
";
    let r = e.changes_nothing("node3-check", opt_out, &["--check", "--diff"]);
    let t = r.task("node-3", "localhost");
    assert_eq!(t["changed"], true, "{}", r.text);
    assert_eq!(t["reboot_required"], false);
    assert_eq!(t["engine_state"], "disabled");
    assert_eq!(t["diff"]["after"]["enabled"], false);
    let r = e.ok("node3", opt_out, &[]);
    let t = r.task("node-3", "localhost");
    assert_eq!(
        (t["changed"].clone(), t["reboot_required"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(t["reboot_reasons"], json!([]));
    assert_eq!(t["id"], "node-3");
    assert_eq!(t["spec"]["enabled"], false);
    assert_eq!(e.ok("node3", opt_out, &[]).stat("localhost", "changed"), 0);

    // Removing the override: node-3 follows the setting again and needs its reboot.
    let remove = "- name: node-3
  v2engine.storage.node_v2:
    node: node-3
    state: absent
";
    let r = e.changes_nothing("node3-absent-check", remove, &["--check"]);
    assert_eq!(r.task("node-3", "localhost")["changed"], true, "{}", r.text);
    let r = e.ok("node3-absent", remove, &[]);
    let t = r.task("node-3", "localhost");
    assert_eq!(t["changed"], true);
    assert_eq!(t["reboot_required"], true, "{t}");
    assert!(
        t["reboot_reasons"][0]
            .as_str()
            .unwrap()
            .contains("the boot configuration will allocate them at next boot"),
        "{t}"
    );
    assert_eq!(
        e.ok("node3-absent", remove, &[])
            .stat("localhost", "changed"),
        0
    );

    // Removing the setting: every node falls back to the defaults (disabled).
    let r = e.ok(
        "setting-absent",
        "- name: setting\n  v2engine.storage.data_engine_setting:\n    state: absent\n",
        &[],
    );
    let t = r.task("setting", "localhost");
    assert_eq!(t["changed"], true);
    assert_eq!(t["nodes"]["node-1"]["enabled"], false, "{t}");
    assert_eq!(t["spec"], json!({}));
}

#[test]
fn node_v2_runs_on_the_node_against_its_local_executor() {
    let e = env();
    let n1 = &e.fleet.nodes[0];
    // No `nodes`: the play has no module defaults.
    let pb = e.ans.write(
        "local.yml",
        &format!(
            "- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n    - name: local\n      v2engine.storage.node_v2:\n        node: node-1\n        executor_socket: {}\n        enabled: true\n        hugepage_limit_mib: 256\n",
            n1.socket.display()
        ),
    );
    let r = e.ans.playbook(&[pb.to_str().unwrap()]);
    assert_eq!(r.code, Some(0), "{}", r.text);
    let t = r.task("local", "localhost");
    assert_eq!(t["changed"], true);
    assert_eq!(t["engine_state"], "running", "{t}");
    assert!(
        t["spdk_version"].as_str().unwrap().starts_with("SPDK"),
        "{t}"
    );
    assert_eq!(t["hugepages_allocated"], 128);
    assert!(record(&n1.dir, "node_v2", "node-1").is_some());
    assert!(record(&e.fleet.nodes[1].dir, "node_v2", "node-1").is_none());
    let r = e.ans.playbook(&[pb.to_str().unwrap()]);
    assert_eq!(r.stat("localhost", "changed"), 0, "{}", r.text);

    // Neither `nodes` nor `executor_socket`: the default socket, named in the error.
    let pb = e.ans.write(
        "default-socket.yml",
        "- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n    - name: local\n      v2engine.storage.node_v2:\n        node: node-1\n",
    );
    let r = e.ans.playbook(&[pb.to_str().unwrap()]);
    let t = r.task("local", "localhost");
    assert_eq!(t["failed"], true);
    let msg = t["msg"].as_str().unwrap();
    assert!(
        msg.starts_with("executor_socket: /run/v2engine/executor.sock") && msg.contains("node-1"),
        "{msg}"
    );
}

#[test]
fn storage_class_is_created_replaced_and_removed() {
    let e = env();
    let class = |replicas: u32, state: &str| {
        format!(
            "- name: class\n  v2engine.storage.storage_class:\n    name: replicated\n    number_of_replicas: {replicas}\n    data_locality: best-effort\n    state: {state}\n"
        )
    };
    let r = e.changes_nothing("class-check", &class(2, "present"), &["--check"]);
    assert_eq!(r.task("class", "localhost")["changed"], true, "{}", r.text);
    let r = e.ok("class", &class(2, "present"), &["--diff"]);
    let t = r.task("class", "localhost");
    assert_eq!(t["changed"], true);
    assert_eq!(t["spec"]["number_of_replicas"], 2);
    assert_eq!(t["spec"]["stale_replica_timeout"], 2880);
    assert_eq!(t["id"], "replicated");
    for n in &e.fleet.nodes {
        let rec = record(&n.dir, "storage_class", "replicated").unwrap();
        assert_eq!(rec["spec"]["data_locality"], "best-effort");
    }
    assert_eq!(
        e.ok("class", &class(2, "present"), &[])
            .stat("localhost", "changed"),
        0
    );

    let r = e.ok("class3", &class(3, "present"), &["--diff"]);
    let t = r.task("class", "localhost");
    assert_eq!(t["changed"], true);
    assert_eq!(t["diff"]["before"]["number_of_replicas"], 2);
    assert_eq!(t["diff"]["after"]["number_of_replicas"], 3);
    assert_eq!(t["msg"], "storage_class replicated updated");

    let r = e.ok("class-absent", &class(3, "absent"), &["--diff"]);
    let t = r.task("class", "localhost");
    assert_eq!(t["changed"], true);
    assert_eq!(t["diff"]["after"], json!({}));
    for n in &e.fleet.nodes {
        assert_eq!(
            record(&n.dir, "storage_class", "replicated").unwrap()["deleted"],
            true
        );
    }
    assert_eq!(
        e.ok("class-absent", &class(3, "absent"), &[])
            .stat("localhost", "changed"),
        0
    );
}

#[test]
fn bad_options_fail_naming_the_option_and_change_nothing() {
    let e = env();
    // (module, options, what the message must say: parts joined by " && ")
    let cases: &[(&str, &str, &str)] = &[
        (
            "storage_class",
            "name: x\nnumber_of_replicas: 0",
            "number_of_replicas: must be between 1 and 20, got 0",
        ),
        (
            "storage_class",
            "name: x\ndata_locality: nearby",
            "data_locality: \"nearby\" is not one of disabled, best-effort, strict-local",
        ),
        (
            "storage_class",
            "name: x\nreplicas: 2",
            "Unsupported parameters for (v2engine.storage.storage_class) module: replicas",
        ),
        (
            "storage_class",
            "number_of_replicas: 2",
            "name: missing required argument",
        ),
        (
            "storage_class",
            "name: x\nmigratable: true",
            "migratable: live migration is not available with data engine v2",
        ),
        ("data_engine_setting", "cpu_mask: zz", "cpu_mask: "),
        (
            "data_engine_setting",
            "hugepage_limit_mib: 3",
            "hugepage_limit_mib: must be a multiple of 2 MiB",
        ),
        (
            "data_engine_setting",
            "hugepage_limit_mib: lots",
            "hugepage_limit_mib: \"lots\" cannot be converted to an int",
        ),
        (
            "data_engine_setting",
            "kernel_modules: [nvme_tcp, 'x;y']",
            "kernel_modules[1]: ",
        ),
        (
            "data_engine_setting",
            "enabled: true\nnodes: {node-1: {endpoint: 'tcp://10.0.0.1'}}",
            "nodes.node-1.endpoint: ",
        ),
        (
            "data_engine_setting",
            "enabled: true\nnodes: {node-1: {endpoint: 'ssh://root@10.0.0.1'}}",
            "ssh_known_hosts_file: ssh endpoints need a known_hosts file",
        ),
        (
            "node_v2",
            "node: node-9\nenabled: false",
            "node: node \"node-9\" is not one of the configured nodes (node-1, node-2, node-3)",
        ),
        (
            "node_v2",
            "enabled: false",
            "node: missing required argument",
        ),
        (
            "node_v2",
            "node: node-1\nboot_persistence: grub",
            "boot_persistence: \"grub\" is not one of auto, systemd, elemental, none",
        ),
        (
            "block_disk",
            "node: node-1\nname: d1\npath: dev/sda",
            "path: \"dev/sda\" must be an absolute path",
        ),
        (
            "block_disk",
            "node: node-1\nname: d1\npath: /dev/null",
            "path: && /dev/null && is not a block device",
        ),
        (
            "volume",
            "name: v1\nsize: 1000\nstorage_class: replicated",
            "size: 1000 bytes is not a whole number of MiB",
        ),
        (
            "volume",
            "name: v1\nstorage_class: replicated",
            "size: missing required argument (required with state=present)",
        ),
        (
            "volume",
            "name: v1\nsize: 1Gi\nstorage_class: replicated\nattach_node: node-9",
            "attach_node: node \"node-9\" is not one of the configured nodes",
        ),
        (
            "volume",
            "name: v1\nsize: 1Gi\nstorage_class: replicated\nallow_replace: maybe",
            "allow_replace: \"maybe\" cannot be converted to a bool",
        ),
        (
            "volume",
            "name: v1\nsize: 1Gi\nstorage_class: replicated\nfrontend: iscsi",
            "frontend: \"iscsi\" is not one of nvmf, block, ublk",
        ),
    ];
    let mut tasks = String::new();
    for (i, (module, opts, _)) in cases.iter().enumerate() {
        tasks.push_str(&format!(
            "- name: case {i}\n  v2engine.storage.{module}:\n{}  ignore_errors: true\n",
            indent(opts, 4)
        ));
    }
    for mode in [&[][..], &["--check"][..]] {
        let r = e.changes_nothing("bad", &tasks, mode);
        assert_eq!(
            r.code,
            Some(0),
            "ignore_errors keeps the play going:\n{}",
            r.text
        );
        for (i, (module, opts, want)) in cases.iter().enumerate() {
            let t = r.task(&format!("case {i}"), "localhost");
            assert_eq!(t["failed"], true, "{module} {opts:?} did not fail: {t}");
            assert_eq!(t["changed"], false);
            let msg = t["msg"].as_str().unwrap_or_default();
            assert!(
                want.split(" && ").all(|w| msg.contains(w)),
                "{module} {opts:?}: {msg:?} lacks {want:?}"
            );
        }
        assert_eq!(r.stat("localhost", "failures"), 0);
        assert_eq!(r.stat("localhost", "ignored"), cases.len() as i64);
    }
}
