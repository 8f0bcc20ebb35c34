//! `v2engine_volume_objects` with the real terraform over simulated nodes whose executors
//! export replicas (`--data-address 127.0.0.1`, distinct `--nvmf-ports`) from block disks on
//! real loop devices: the objects of a volume are listed, none orphan, and the node whose
//! engine waits for a reboot is `unlisted` with why; a replica made directly over an
//! executor's socket for a volume without a record is listed as an orphan with a warning
//! naming node and object, and neither growing nor destroying the volume deletes it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use client::{Endpoint, ExecutorClient, v1};
use common::{Loop, SimFleet, Tf, header};
use serde_json::Value;

const GHOST: &str = "ghost-r-0a1b2c3d";

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
    format!(
        r#"
resource "v2engine_volume" "v" {{
  name          = "v1"
  size          = "{size}"
  storage_class = v2engine_storage_class.two.name
  attach_node   = "node-1"
  depends_on    = [v2engine_block_disk.node-1, v2engine_block_disk.node-2]
}}
"#
    )
}

/// The data sources under test; read after the volume when `after_volume`.
fn data_sources(after_volume: bool, disk_path: &str) -> String {
    let dep = if after_volume {
        "\n  depends_on = [v2engine_volume.v]"
    } else {
        "\n  depends_on = [v2engine_block_disk.node-1, v2engine_block_disk.node-2]"
    };
    format!(
        r#"
data "v2engine_volume_objects" "all" {{{dep}
}}

data "v2engine_volume_objects" "orphans" {{
  orphans_only = true{dep}
}}

data "v2engine_volume_objects" "node2" {{
  node = "node-2"{dep}
}}

data "v2engine_disks" "node1" {{
  node  = "node-1"
  paths = ["{disk_path}"]{dep}
}}
"#
    )
}

/// A data source's values from `terraform show -json`.
fn data(tf: &Tf, name: &str) -> Value {
    let state = tf.show_json(None);
    state["values"]["root_module"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["mode"] == "data" && r["name"] == name)
        .unwrap_or_else(|| panic!("data source {name} not in state: {state}"))["values"]
        .clone()
}

fn objects(v: &Value) -> Vec<Value> {
    v["objects"].as_array().unwrap().clone()
}

/// Terraform's output with the diagnostic frame and line wrapping removed.
fn flat(out: &str) -> String {
    out.replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn executor(fleet: &SimFleet, node: &str) -> ExecutorClient {
    let n = fleet.nodes.iter().find(|n| n.name == node).unwrap();
    let ep: Endpoint = n.endpoint().parse().unwrap();
    ExecutorClient::connect(node, &ep).await.unwrap()
}

/// The objects a node's executor lists, as (kind, name, orphan).
fn listed(fleet: &SimFleet, node: &str) -> Vec<(String, String, bool)> {
    rt().block_on(async {
        let mut c = executor(fleet, node).await;
        c.list_volume_objects()
            .await
            .unwrap()
            .objects
            .into_iter()
            .map(|o| (o.kind, o.name, o.orphan))
            .collect()
    })
}

#[test]
fn volume_objects_lists_a_volume_and_reports_an_orphan_it_never_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let l1 = Loop::new(&dir.path().join("o1.img"));
    let l2 = Loop::new(&dir.path().join("o2.img"));
    let mut fleet = SimFleet::exporting(3, 29_400);
    let disks = [("node-1".to_string(), &l1), ("node-2".to_string(), &l2)];
    let tf = Tf::new(fleet.dir.path(), "objects");
    let with_volume = |size: &str| {
        format!(
            "{}{}{}{}",
            header(&fleet.nodes_hcl()),
            base(&disks),
            volume(size),
            data_sources(true, &l1.dev)
        )
    };
    tf.write(&format!("{}{}", header(&fleet.nodes_hcl()), base(&disks)));
    tf.init();
    tf.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);

    // The volume's objects: on node-1 its replica, the raid, the controller to node-2's
    // replica and the frontend; on node-2 its replica and that replica's export. None is
    // an orphan; node-3, whose engine waits for a reboot, is unlisted with why.
    tf.write(&with_volume("64Mi"));
    let out = tf.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert!(!out.contains("orphaned"), "{out}");
    let all = data(&tf, "all");
    let objs = objects(&all);
    assert!(!objs.is_empty(), "{all}");
    for o in &objs {
        assert_eq!(o["volume"], "v1", "{o}");
        assert_eq!(o["orphan"], false, "{o}");
    }
    let kinds_on = |node: &str| {
        let mut k: Vec<String> = objs
            .iter()
            .filter(|o| o["node"] == node)
            .map(|o| o["kind"].as_str().unwrap().to_string())
            .collect();
        k.sort();
        k.dedup();
        k
    };
    assert_eq!(
        kinds_on("node-1"),
        ["controller", "frontend_subsystem", "lvol", "raid"],
        "{all}"
    );
    assert_eq!(kinds_on("node-2"), ["lvol", "replica_subsystem"], "{all}");
    assert_eq!(kinds_on("node-3"), Vec::<String>::new(), "{all}");
    let unlisted = all["unlisted"].as_array().unwrap();
    assert_eq!(unlisted.len(), 1, "{all}");
    assert_eq!(unlisted[0]["node"], "node-3", "{all}");
    assert!(
        unlisted[0]["reason"]
            .as_str()
            .unwrap()
            .contains("engine is not running"),
        "{all}"
    );
    assert_eq!(data(&tf, "orphans")["objects"], serde_json::json!([]));
    let node2 = data(&tf, "node2");
    assert!(
        objects(&node2).iter().all(|o| o["node"] == "node-2") && !objects(&node2).is_empty(),
        "{node2}"
    );
    assert_eq!(node2["unlisted"], serde_json::json!([]), "{node2}");
    // v2engine_disks is served too: node-1's loop device is its disk node-1/d1.
    let disks1 = data(&tf, "node1");
    let cand = disks1["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == l1.dev.as_str())
        .unwrap_or_else(|| panic!("{} not a candidate: {disks1}", l1.dev))
        .clone();
    assert_eq!(cand["disk"], "node-1/d1", "{cand}");

    // An orphan: a replica (lvol and export) on node-2 for a volume without a record,
    // made directly over the executor's socket.
    rt().block_on(async {
        let mut c = executor(&fleet, "node-2").await;
        c.ensure_replica(v1::EnsureReplicaRequest {
            replica: GHOST.into(),
            disk: "d1".into(),
            size_mib: 16,
            export: true,
            host_nqn: "nqn.2026-11.io.v2engine:host-node-1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    });
    let out = tf.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    let text = flat(&out);
    assert!(
        text.contains("Node node-2 has 2 orphaned volume objects")
            && text.contains("lvol ")
            && text.contains(&format!("/{GHOST} (volume ghost"))
            && text.contains(&format!(
                "replica_subsystem nqn.2026-11.io.v2engine:{GHOST}"
            ))
            && text.contains("never deletes them automatically"),
        "{out}"
    );
    let orphans = objects(&data(&tf, "orphans"));
    let mut got: Vec<(String, String, String, bool)> = orphans
        .iter()
        .map(|o| {
            (
                o["node"].as_str().unwrap().to_string(),
                o["kind"].as_str().unwrap().to_string(),
                o["volume"].as_str().unwrap().to_string(),
                o["orphan"].as_bool().unwrap(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("node-2".into(), "lvol".into(), "ghost".into(), true),
            (
                "node-2".into(),
                "replica_subsystem".into(),
                "ghost".into(),
                true
            ),
        ],
        "{orphans:?}"
    );
    assert!(
        orphans
            .iter()
            .all(|o| o["name"].as_str().unwrap().ends_with(GHOST)),
        "{orphans:?}"
    );
    // The full listing has the volume's objects, none orphan, besides the ghost's.
    let all = objects(&data(&tf, "all"));
    assert!(
        all.iter()
            .all(|o| (o["volume"] == "v1") == (o["orphan"] == false)),
        "{all:?}"
    );

    // Growing the volume keeps the orphan.
    tf.write(&with_volume("128Mi"));
    let out = tf.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert!(out.contains("1 changed, 0 destroyed"), "{out}");
    assert!(flat(&out).contains("Node node-2 has 2 orphaned"), "{out}");
    assert_eq!(objects(&data(&tf, "orphans")).len(), 2);

    // Destroying the volume (removed from the configuration) removes its objects only.
    tf.write(&format!(
        "{}{}{}",
        header(&fleet.nodes_hcl()),
        base(&disks),
        data_sources(false, &l1.dev)
    ));
    let out = tf.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert!(out.contains("0 changed, 1 destroyed"), "{out}");
    // (Those data sources were read at plan time, before the destroy: read them again.)
    let out = tf.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert!(flat(&out).contains("Node node-2 has 2 orphaned"), "{out}");
    let all = objects(&data(&tf, "all"));
    assert_eq!(all.len(), 2, "only the ghost's objects are left: {all:?}");
    assert!(
        all.iter()
            .all(|o| o["volume"] == "ghost" && o["orphan"] == true),
        "{all:?}"
    );
    let on2 = listed(&fleet, "node-2");
    assert_eq!(on2.len(), 2, "{on2:?}");
    assert!(
        on2.iter()
            .all(|(_, name, orphan)| name.ends_with(GHOST) && *orphan),
        "{on2:?}"
    );
    assert!(listed(&fleet, "node-1").is_empty());

    // With node-3 down the listing still reads: node-3 is unreachable, node-2's orphan
    // is still reported.
    fleet.node("node-3").stop();
    let out = flat(&tf.ok(&["plan", "-input=false", "-no-color"]));
    assert!(
        out.contains("Node node-3 is unreachable")
            && out.contains("its volume objects (and any orphans among them) are not listed")
            && out.contains("Node node-2 has 2 orphaned"),
        "{out}"
    );
    fleet.node("node-3").start();

    // Removed by hand, the orphan is gone and the warning with it; then nothing is left.
    rt().block_on(async {
        let mut c = executor(&fleet, "node-2").await;
        c.delete_replica(v1::DeleteReplicaRequest {
            replica: GHOST.into(),
            dry_run: false,
        })
        .await
        .unwrap();
    });
    let out = tf.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert!(!out.contains("orphaned"), "{out}");
    assert_eq!(data(&tf, "all")["objects"], serde_json::json!([]));
    assert!(listed(&fleet, "node-2").is_empty());
    tf.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    drop(fleet);
}

/// The documented example applies: with the engines off every node is `unlisted`, saying
/// its engine is not running, and the listing is empty rather than an error.
#[test]
fn the_example_applies_with_engines_off() {
    let fleet = SimFleet::new(2);
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let example = std::fs::read_to_string(
        root.join("examples/data-sources/v2engine_volume_objects/data-source.tf"),
    )
    .unwrap();
    let tf = Tf::new(fleet.dir.path(), "example");
    tf.write(&format!("{}{}", header(&fleet.nodes_hcl()), example));
    tf.init();
    let out = tf.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert!(!out.contains("orphaned"), "{out}");
    let state = tf.show_json(None);
    let outputs = &state["values"]["outputs"];
    assert_eq!(
        outputs["orphans"]["value"],
        serde_json::json!([]),
        "{state}"
    );
    let unlisted = outputs["unlisted_nodes"]["value"].as_object().unwrap();
    assert_eq!(
        unlisted.keys().collect::<Vec<_>>(),
        ["node-1", "node-2"],
        "{state}"
    );
    assert!(
        unlisted
            .values()
            .all(|r| r.as_str().unwrap().contains("engine is not running")),
        "{state}"
    );
    assert_eq!(
        outputs["node1_objects_of_data"]["value"],
        serde_json::json!([])
    );
    drop(fleet);
}
