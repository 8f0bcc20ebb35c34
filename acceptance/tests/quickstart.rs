//! The quickstart over SSH against the lab (network namespaces, a real sshd per node, the
//! executors) on the run's SPDK lane: the README demo's path, as a test, then the volume's
//! life: its objects checked with SPDK's own Python client on each node's socket, growth,
//! the fragmented node's reboot, a node's link cut (plan degraded with the replacement,
//! apply heals), the stale replica removed when the node returns, a class asking for more
//! replicas than nodes refused at plan, and destroy leaving nothing. Needs root, as CI has.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::time::Duration;

use acceptance::lab::{Lab, has};
use acceptance::lane::Lane;
use acceptance::tf::{Tf, resource_change};

fn replica_nodes(v: &serde_json::Value) -> Vec<String> {
    v["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["node"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn quickstart_over_ssh_then_a_volume_survives_a_cut_node_and_destroy_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let lab_dir = tmp.path().join("lab");
    let lane = Lane::from_env().unwrap();
    let lab = Lab::up(&lab_dir, 3, &lane);
    let vars = lab.tfvars_arg();

    let tf = Tf::new(tmp.path(), "quickstart", &lab.terraformrc());
    tf.copy_example("quickstart");
    tf.init();
    let out = tf.ok(&["plan", "-input=false", "-no-color", &vars, "-out=plan.bin"]);
    assert!(out.contains("Node node-3 will need a reboot"), "{out}");
    assert!(
        out.contains("Placement of volume data is decided at apply"),
        "{out}"
    );
    let plan = tf.show_json(Some("plan.bin"));
    assert_eq!(
        resource_change(&plan, "v2engine_data_engine_setting.this")["change"]["after"]["reboot_required_nodes"],
        serde_json::json!(["node-3"])
    );

    tf.ok(&["apply", "-input=false", "-no-color", "plan.bin"]);
    let o = tf.run(&[
        "plan",
        "-input=false",
        "-no-color",
        "-detailed-exitcode",
        &vars,
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "second plan not empty:\n{}",
        String::from_utf8_lossy(&o.stdout)
    );

    // Two replicas on two different nodes (node-3 waits for its reboot); SPDK's own
    // client sees the lvols, the replica export on node-2, and on node-1 the raid1, the
    // controller to node-2 and the frontend subsystem.
    let v = tf.output("volume");
    assert_eq!(v["state"], "healthy", "{v}");
    assert_eq!(replica_nodes(&v), ["node-1", "node-2"], "{v}");
    let n1 = lab.objects("node-1");
    let n2 = lab.objects("node-2");
    assert!(
        has(&n1, "lvol v2e-lvs-disk-") && has(&n1, "raid data-raid"),
        "{n1:?}"
    );
    assert!(has(&n1, "controller data-r-"), "{n1:?}");
    assert!(has(&n1, "subsystem nqn.2026-11.io.v2engine:data"), "{n1:?}");
    assert!(
        !n1.iter()
            .any(|o| o.starts_with("subsystem nqn.2026-11.io.v2engine:data-r-")),
        "the attach node's own replica is used directly, not exported: {n1:?}"
    );
    assert!(has(&n2, "lvol v2e-lvs-disk-"), "{n2:?}");
    assert!(
        has(&n2, "subsystem nqn.2026-11.io.v2engine:data-r-"),
        "{n2:?}"
    );
    assert!(!has(&n2, "raid ") && !has(&n2, "controller "), "{n2:?}");
    assert!(
        !lab_dir.join("nodes/node-3/run/spdk.sock").exists(),
        "node-3's engine waits for the reboot"
    );
    let raid = lab.spdk("node-1", &["bdev_raid_get_bdevs", "all"]);
    assert_eq!(raid[0]["raid_level"], "raid1", "{raid}");
    assert_eq!(raid[0]["num_base_bdevs_operational"], 2, "{raid}");

    // Growing is in place: the replicas grow, then the raid1 (once every member has) and
    // the frontend namespace, as SPDK's raid1 does.
    let out = tf.ok(&[
        "apply",
        "-auto-approve",
        "-input=false",
        "-no-color",
        &vars,
        "-var=volume_size=48Mi",
    ]);
    assert!(out.contains("0 added, 1 changed, 0 destroyed"), "{out}");
    let b = lab.spdk("node-1", &["bdev_get_bdevs", "-b", "data-raid"]);
    let bytes = b[0]["num_blocks"].as_u64().unwrap() * b[0]["block_size"].as_u64().unwrap();
    assert_eq!(bytes, 48 << 20, "{b}");
    let vars48 = "-var=volume_size=48Mi";

    // node-3 reboots into its hugepages: the engine runs, its disks attach.
    lab.cmd(&["reboot", "node-3"]);
    tf.ok(&[
        "apply",
        "-refresh-only",
        "-auto-approve",
        "-input=false",
        "-no-color",
        &vars,
        vars48,
    ]);
    let outputs = &tf.show_json(None)["values"]["outputs"];
    assert_eq!(
        outputs["reboot_required_nodes"]["value"],
        serde_json::json!([])
    );
    assert_eq!(
        outputs["nodes"]["value"]["node-3"]["engine_state"],
        "running"
    );

    // node-2's link is cut: the plan shows the volume degraded and its replacement on
    // node-3, and nothing else changes; apply builds it and the raid rebuilds onto it.
    lab.cmd(&["cut", "node-2"]);
    // The attach node's engine notices the lost member by itself (command timeout, failed
    // reconnects, the controller given up: the raid1 degrades) before the plan looks. On
    // SPDK v24.09 this takes longer: its reconnect connect()s block the engine until the
    // kernel gives up on the unreachable host (about 70 s in the lab), and an engine that
    // does not answer cannot tell its replicas apart.
    lab.wait_for_raid_members("node-1", "data-raid", 1, Duration::from_secs(180));
    let out = tf.ok(&[
        "plan",
        "-input=false",
        "-no-color",
        &vars,
        vars48,
        "-out=heal.bin",
    ]);
    assert!(out.contains("Node node-2 is unreachable"), "{out}");
    let plan = tf.show_json(Some("heal.bin"));
    // The refreshed setting shows node-2 unreachable, keeping what was known of it.
    let setting = plan["prior_state"]["values"]["root_module"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == "v2engine_data_engine_setting.this")
        .unwrap()["values"]["nodes"]["node-2"]
        .clone();
    assert_eq!(setting["engine_state"], "unreachable", "{setting}");
    assert_eq!(setting["enabled"], true, "{setting}");
    assert_eq!(setting["target_pages"], 128, "{setting}");
    let change = &resource_change(&plan, "v2engine_volume.data")["change"];
    assert_eq!(change["actions"], serde_json::json!(["update"]), "{change}");
    assert_eq!(change["before"]["state"], "degraded", "{change}");
    assert_eq!(
        change["before"]["replicas"][1],
        serde_json::json!({"node": "node-2", "disk": "disk-1", "state": "unreachable"}),
        "{change}"
    );
    assert_eq!(
        change["after"]["replicas"],
        serde_json::json!([
            {"node": "node-1", "disk": "disk-1", "state": "healthy"},
            {"node": "node-3", "disk": "disk-1"},
        ]),
        "{change}"
    );
    for r in plan["resource_changes"].as_array().unwrap() {
        if r["address"] != "v2engine_volume.data" {
            assert_eq!(r["change"]["actions"], serde_json::json!(["no-op"]), "{r}");
        }
    }
    tf.ok(&["apply", "-input=false", "-no-color", "heal.bin"]);
    let v = tf.refresh_until(&[&vars], "volume", "healthy", Duration::from_secs(60));
    assert_eq!(replica_nodes(&v), ["node-1", "node-3"], "{v}");
    let raid = lab.spdk("node-1", &["bdev_raid_get_bdevs", "all"]);
    assert_eq!(raid[0]["num_base_bdevs_operational"], 2, "{raid}");
    let n3 = lab.objects("node-3");
    assert!(
        has(&n3, "subsystem nqn.2026-11.io.v2engine:data-r-"),
        "{n3:?}"
    );

    // node-2 returns: its old replica is stale and the next apply removes it.
    lab.cmd(&["restore", "node-2"]);
    tf.ok(&[
        "apply",
        "-auto-approve",
        "-input=false",
        "-no-color",
        &vars,
        vars48,
    ]);
    assert!(
        !has(&lab.objects("node-2"), "lvol "),
        "the stale replica stays"
    );
    let o = tf.run(&[
        "plan",
        "-input=false",
        "-no-color",
        "-detailed-exitcode",
        &vars,
        vars48,
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "plan after the repair not empty:\n{}",
        String::from_utf8_lossy(&o.stdout)
    );

    // More replicas than eligible nodes: refused at plan, saying why each node is out.
    std::fs::write(
        tf.dir.join("wide.tf"),
        r#"
resource "v2engine_storage_class" "wide" {
  name               = "wide"
  number_of_replicas = 4
}
"#,
    )
    .unwrap();
    tf.ok(&[
        "apply",
        "-auto-approve",
        "-input=false",
        "-no-color",
        &vars,
        vars48,
    ]);
    std::fs::write(
        tf.dir.join("wide.tf"),
        r#"
resource "v2engine_storage_class" "wide" {
  name               = "wide"
  number_of_replicas = 4
}

resource "v2engine_volume" "wide" {
  name          = "wide"
  size          = "16Mi"
  storage_class = v2engine_storage_class.wide.name
  attach_node   = "node-1"
}
"#,
    )
    .unwrap();
    let out = tf.fails(&["plan", "-input=false", "-no-color", &vars, vars48]);
    for n in ["node-1", "node-2", "node-3"] {
        assert!(out.contains(n), "{n} is not named: {out}");
    }
    assert!(out.contains("storage_class"), "{out}");
    std::fs::remove_file(tf.dir.join("wide.tf")).unwrap();

    // Destroying the volume leaves no lvol, subsystem, controller or raid bdev on any node
    // (checked while the engines still run: destroying the setting stops them).
    tf.ok(&[
        "destroy",
        "-target=v2engine_volume.data",
        "-auto-approve",
        "-input=false",
        "-no-color",
        &vars,
        vars48,
    ]);
    lab.assert_no_objects(&["node-1", "node-2", "node-3"]);
    tf.ok(&[
        "destroy",
        "-auto-approve",
        "-input=false",
        "-no-color",
        &vars,
        vars48,
    ]);
}
