//! `v2engine_volume` with the real terraform over simulated nodes whose executors export
//! replicas (`--data-address 127.0.0.1`, distinct `--nvmf-ports`) from block disks on real
//! loop devices: the placement is in the plan, apply builds replicas and the engine, a
//! second plan is empty, growing is in place, shrinking fails on `size`, destroy converges.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use common::{Loop, SimFleet, Tf, header};
use serde_json::Value;

fn resource<'a>(plan: &'a Value, address: &str) -> &'a Value {
    plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == address)
        .unwrap_or_else(|| panic!("{address} not in plan"))
}

fn base(disks: &[(String, &Loop)]) -> String {
    let mut s = String::from(
        r#"
resource "v2engine_data_engine_setting" "this" {
  enabled            = true
  hugepage_limit_mib = 256
}

resource "v2engine_storage_class" "two" {
  name               = "two"
  number_of_replicas = 2
}
"#,
    );
    for (node, l) in disks {
        s.push_str(&format!(
            "\nresource \"v2engine_block_disk\" \"{node}\" {{\n  node = \"{node}\"\n  name = \"d1\"\n  path = \"{}\"\n  depends_on = [v2engine_data_engine_setting.this]\n}}\n",
            l.dev
        ));
    }
    s
}

fn volume(size: &str) -> String {
    volume_on(size, "node-1")
}

fn volume_on(size: &str, attach: &str) -> String {
    format!(
        r#"
resource "v2engine_volume" "v" {{
  name          = "v1"
  size          = "{size}"
  storage_class = v2engine_storage_class.two.name
  attach_node   = "{attach}"
  depends_on    = [v2engine_block_disk.node-1, v2engine_block_disk.node-2]
}}
"#
    )
}

#[test]
fn volume_plan_apply_grow_refuse_shrink_destroy() {
    let dir = tempfile::tempdir().unwrap();
    let l1 = Loop::new(&dir.path().join("d1.img"));
    let l2 = Loop::new(&dir.path().join("d2.img"));
    let fleet = SimFleet::exporting(3, 24_400);
    let disks = [("node-1".to_string(), &l1), ("node-2".to_string(), &l2)];
    let tf = Tf::new(fleet.dir.path(), "vol");
    tf.write(&format!("{}{}", header(&fleet.nodes_hcl()), base(&disks)));
    tf.init();
    tf.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);

    // The placement is in the plan: node-3's engine waits for a reboot.
    tf.write(&format!(
        "{}{}{}",
        header(&fleet.nodes_hcl()),
        base(&disks),
        volume("64Mi")
    ));
    tf.ok(&["plan", "-input=false", "-no-color", "-out=plan.bin"]);
    let plan = tf.show_json(Some("plan.bin"));
    let after = &resource(&plan, "v2engine_volume.v")["change"]["after"];
    assert_eq!(
        after["replicas"],
        serde_json::json!([
            {"node": "node-1", "disk": "d1"},
            {"node": "node-2", "disk": "d1"},
        ]),
        "{after}"
    );
    // What apply finds out (each new replica's state, the volume's) is unknown till then.
    let unknown = &resource(&plan, "v2engine_volume.v")["change"]["after_unknown"];
    assert_eq!(
        unknown["replicas"],
        serde_json::json!([{"state": true}, {"state": true}]),
        "{unknown}"
    );
    assert_eq!(unknown["state"], true, "{unknown}");
    assert_eq!(after["nqn"], "nqn.2026-11.io.v2engine:v1");
    tf.ok(&["apply", "-input=false", "-no-color", "plan.bin"]);
    let o = tf.run(&["plan", "-input=false", "-no-color", "-detailed-exitcode"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "second plan is not empty:\n{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let state = tf.show_json(None);
    let v = state["values"]["root_module"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == "v2engine_volume.v")
        .unwrap()["values"]
        .clone();
    assert_eq!(v["state"], "healthy", "{v}");

    // Grow in place.
    tf.write(&format!(
        "{}{}{}",
        header(&fleet.nodes_hcl()),
        base(&disks),
        volume("128Mi")
    ));
    let out = tf.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert!(out.contains("1 changed, 0 destroyed"), "{out}");

    // Shrink is refused at plan, naming the attribute.
    tf.write(&format!(
        "{}{}{}",
        header(&fleet.nodes_hcl()),
        base(&disks),
        volume("64Mi")
    ));
    let out = tf.fails(&["plan", "-input=false", "-no-color"]);
    assert!(out.contains("size") && out.contains("shrink"), "{out}");

    // Moving the engine is an in-place update.
    tf.write(&format!(
        "{}{}{}",
        header(&fleet.nodes_hcl()),
        base(&disks),
        volume_on("128Mi", "node-2")
    ));
    let out = tf.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert!(out.contains("1 changed, 0 destroyed"), "{out}");
    tf.ok(&[
        "apply",
        "-refresh-only",
        "-auto-approve",
        "-input=false",
        "-no-color",
    ]);
    let state = tf.show_json(None);
    let v = state["values"]["root_module"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == "v2engine_volume.v")
        .unwrap()["values"]
        .clone();
    assert_eq!(v["state"], "healthy", "{v}");
    assert_eq!(v["attach_node"], "node-2", "{v}");

    // (terraform destroy plans the configuration too: restore the size first.)
    tf.write(&format!(
        "{}{}{}",
        header(&fleet.nodes_hcl()),
        base(&disks),
        volume_on("128Mi", "node-2")
    ));
    tf.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    drop(fleet);
}

#[test]
fn a_volume_created_with_its_class_and_disks_is_placed_at_apply() {
    let dir = tempfile::tempdir().unwrap();
    let l1 = Loop::new(&dir.path().join("e1.img"));
    let l2 = Loop::new(&dir.path().join("e2.img"));
    let fleet = SimFleet::exporting(3, 25_400);
    let disks = [("node-1".to_string(), &l1), ("node-2".to_string(), &l2)];
    let tf = Tf::new(fleet.dir.path(), "together");
    tf.write(&format!(
        "{}{}{}",
        header(&fleet.nodes_hcl()),
        base(&disks),
        volume("64Mi")
    ));
    tf.init();
    let out = tf.ok(&["plan", "-input=false", "-no-color"]);
    assert!(
        out.contains("Placement of volume v1 is decided at apply"),
        "{out}"
    );
    tf.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    let o = tf.run(&["plan", "-input=false", "-no-color", "-detailed-exitcode"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "second plan is not empty:\n{}",
        String::from_utf8_lossy(&o.stdout)
    );
    tf.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    drop(fleet);
}

fn volume_values(tf: &Tf) -> Value {
    let state = tf.show_json(None);
    state["values"]["root_module"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == "v2engine_volume.v")
        .unwrap()["values"]
        .clone()
}

/// Refreshes until the volume's state is `want` (bounded: the rebuild runs in the engine).
fn refresh_until(tf: &Tf, want: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        tf.ok(&[
            "apply",
            "-refresh-only",
            "-auto-approve",
            "-input=false",
            "-no-color",
        ]);
        let v = volume_values(tf);
        if v["state"] == want {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "volume never became {want}: {v}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

#[test]
fn a_replica_on_a_failed_node_is_replaced_and_the_leftover_removed_when_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let loops: Vec<Loop> = (1..=3)
        .map(|i| Loop::new(&dir.path().join(format!("f{i}.img"))))
        .collect();
    let mut fleet = SimFleet::exporting(3, 26_400);
    let disks: Vec<(String, &Loop)> = loops
        .iter()
        .enumerate()
        .map(|(i, l)| (format!("node-{}", i + 1), l))
        .collect();
    let tf = Tf::new(fleet.dir.path(), "failover");
    // The volume depends on every disk, so destroy removes it before any of them.
    let config = |fleet: &SimFleet| {
        format!(
            "{}{}{}",
            header(&fleet.nodes_hcl()),
            base(&disks),
            volume("64Mi").replace(
                "v2engine_block_disk.node-2]",
                "v2engine_block_disk.node-2, v2engine_block_disk.node-3]"
            )
        )
    };
    tf.write(&format!("{}{}", header(&fleet.nodes_hcl()), base(&disks)));
    tf.init();
    tf.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    // node-3 gets its hugepages at the reboot; its disk attaches at the next apply.
    fleet.node("node-3").reboot();
    tf.write(&config(&fleet));
    tf.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    let v = refresh_until(&tf, "healthy");
    let nodes: Vec<&str> = v["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["node"].as_str().unwrap())
        .collect();
    assert_eq!(nodes, ["node-1", "node-2"], "{v}");

    // node-2 fails (executor and engine killed): the plan shows the volume degraded and
    // the replacement on node-3; node-2's disk is kept as last known, not re-created.
    fleet.node("node-2").stop();
    tf.ok(&["plan", "-input=false", "-no-color", "-out=heal.bin"]);
    let plan = tf.show_json(Some("heal.bin"));
    let change = &resource(&plan, "v2engine_volume.v")["change"];
    assert_eq!(change["actions"], serde_json::json!(["update"]), "{change}");
    assert_eq!(change["before"]["state"], "degraded", "{change}");
    assert_eq!(
        change["after"]["replicas"],
        serde_json::json!([
            {"node": "node-1", "disk": "d1", "state": "healthy"},
            {"node": "node-3", "disk": "d1"},
        ]),
        "{change}"
    );
    assert_eq!(
        change["after_unknown"]["replicas"],
        serde_json::json!([{}, {"state": true}]),
        "{change}"
    );
    assert_eq!(
        change["before"]["replicas"][1],
        serde_json::json!({"node": "node-2", "disk": "d1", "state": "unreachable"}),
        "{change}"
    );
    for r in plan["resource_changes"].as_array().unwrap() {
        if r["address"] != "v2engine_volume.v" {
            assert_eq!(r["change"]["actions"], serde_json::json!(["no-op"]), "{r}");
        }
    }
    let out = tf.ok(&["apply", "-input=false", "-no-color", "heal.bin"]);
    assert!(out.contains("Node node-2 is unreachable"), "{out}");
    let v = refresh_until(&tf, "healthy");
    assert_eq!(
        v["replicas"],
        serde_json::json!([
            {"node": "node-1", "disk": "d1", "state": "healthy"},
            {"node": "node-3", "disk": "d1", "state": "healthy"},
        ]),
        "{v}"
    );

    // node-2 returns: its old replica is stale, and the next apply removes it.
    fleet.node("node-2").start();
    let out = tf.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert!(out.contains("1 changed, 0 destroyed"), "{out}");
    let o = tf.run(&["plan", "-input=false", "-no-color", "-detailed-exitcode"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "plan after the repair is not empty:\n{}",
        String::from_utf8_lossy(&o.stdout)
    );
    tf.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    drop(fleet);
}

#[test]
fn after_the_attach_node_engine_restarts_the_plan_rebuilds_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let l1 = Loop::new(&dir.path().join("g1.img"));
    let l2 = Loop::new(&dir.path().join("g2.img"));
    let fleet = SimFleet::exporting(3, 27_400);
    let disks = [("node-1".to_string(), &l1), ("node-2".to_string(), &l2)];
    let tf = Tf::new(fleet.dir.path(), "restart");
    tf.write(&format!(
        "{}{}{}",
        header(&fleet.nodes_hcl()),
        base(&disks),
        volume("64Mi")
    ));
    tf.init();
    tf.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    refresh_until(&tf, "healthy");

    // spdk_tgt on the attach node dies; its executor restarts it: the lvols come back
    // with the disk, the raid, the controller and the frontend do not.
    let sock = fleet.dir.path().join("node-1").join("spdk.sock");
    common::kill_matching(&sock.display().to_string());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        tf.ok(&[
            "apply",
            "-refresh-only",
            "-auto-approve",
            "-input=false",
            "-no-color",
        ]);
        let v = volume_values(&tf);
        if v["state"] != "healthy" && v["state"] != "unknown" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the restart was never noticed: {v}"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let o = tf.run(&["plan", "-input=false", "-no-color", "-detailed-exitcode"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "the plan must rebuild the engine:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    tf.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    let v = refresh_until(&tf, "healthy");
    assert_eq!(v["replicas"].as_array().unwrap().len(), 2, "{v}");
    tf.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    drop(fleet);
}

#[test]
fn a_node_that_missed_a_volume_change_gets_the_record_at_the_next_apply() {
    let dir = tempfile::tempdir().unwrap();
    let l1 = Loop::new(&dir.path().join("h1.img"));
    let l2 = Loop::new(&dir.path().join("h2.img"));
    let mut fleet = SimFleet::exporting(3, 23_400);
    let disks = [("node-1".to_string(), &l1), ("node-2".to_string(), &l2)];
    let tf = Tf::new(fleet.dir.path(), "sync");
    let nodes = fleet.nodes_hcl();
    let config = |size: &str| format!("{}{}{}", header(&nodes), base(&disks), volume(size));
    tf.write(&config("64Mi"));
    tf.init();
    tf.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);

    // node-3 (no replica of the volume) is down while the volume grows: the record is
    // stored on node-1 and node-2 only.
    fleet.node("node-3").stop();
    tf.write(&config("96Mi"));
    let out = tf.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert!(out.contains("Node node-3 is unreachable"), "{out}");

    // Back, node-3 holds the old revision: the plan writes it there, then nothing is left.
    fleet.node("node-3").start();
    tf.ok(&["plan", "-input=false", "-no-color", "-out=sync.bin"]);
    let plan = tf.show_json(Some("sync.bin"));
    let change = &resource(&plan, "v2engine_volume.v")["change"];
    assert_eq!(change["actions"], serde_json::json!(["update"]), "{change}");
    assert_eq!(
        change["before"]["out_of_sync_nodes"],
        serde_json::json!(["node-3"]),
        "{change}"
    );
    assert_eq!(
        change["after"]["out_of_sync_nodes"],
        serde_json::json!([]),
        "{change}"
    );
    tf.ok(&["apply", "-input=false", "-no-color", "sync.bin"]);
    let o = tf.run(&["plan", "-input=false", "-no-color", "-detailed-exitcode"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "plan after the sync is not empty:\n{}",
        String::from_utf8_lossy(&o.stdout)
    );
    tf.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    drop(fleet);
}
