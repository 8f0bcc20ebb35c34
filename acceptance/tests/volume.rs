//! A volume's day two on the run's SPDK lane: its engine moved to another node, the volume
//! imported back into a fresh state, and `terraform apply` killed in the middle of a grow,
//! then run again: everything converges, with nothing left behind on any node. Needs root.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::time::{Duration, Instant};

use acceptance::lab::{Lab, has};
use acceptance::lane::Lane;
use acceptance::tf::{Tf, resource_change};

const APPLY: [&str; 4] = ["apply", "-auto-approve", "-input=false", "-no-color"];

fn apply(tf: &Tf, extra: &[&str]) -> String {
    let mut args = APPLY.to_vec();
    args.extend_from_slice(extra);
    tf.ok(&args)
}

/// The raid bdev names on `node`.
fn raids(lab: &Lab, node: &str) -> Vec<String> {
    lab.objects(node)
        .into_iter()
        .filter_map(|o| o.strip_prefix("raid ").map(String::from))
        .collect()
}

/// Every replica lvol's size in MiB on `node` (`lvs/name` => MiB).
fn lvol_sizes(lab: &Lab, node: &str) -> Vec<(String, u64)> {
    let lvols = lab.spdk(node, &["bdev_lvol_get_lvols"]);
    let mut out = Vec::new();
    for l in lvols.as_array().cloned().unwrap_or_default() {
        let uuid = l["uuid"].as_str().unwrap().to_string();
        let b = lab.spdk(node, &["bdev_get_bdevs", "-b", &uuid]);
        let bytes = b[0]["num_blocks"].as_u64().unwrap() * b[0]["block_size"].as_u64().unwrap();
        out.push((l["alias"].as_str().unwrap().to_string(), bytes >> 20));
    }
    out
}

#[test]
fn a_volume_moves_imports_and_converges_after_terraform_is_killed_mid_apply() {
    let tmp = tempfile::tempdir().unwrap();
    let lane = Lane::from_env().unwrap();
    let lab = Lab::up(&tmp.path().join("lab"), 3, &lane);
    let vars = lab.tfvars_arg();
    let tf = Tf::new(tmp.path(), "quickstart", &lab.terraformrc());
    tf.copy_example("quickstart");
    tf.init();
    apply(&tf, &[&vars]);
    // node-3 reboots into its hugepages so that every node can hold the engine.
    lab.cmd(&["reboot", "node-3"]);
    lab.wait_for_lvstores("node-3", 2);
    apply(&tf, &[&vars]);
    tf.assert_plan_empty(&[&vars]);
    assert_eq!(raids(&lab, "node-1"), ["data-raid"]);

    // The engine moves to node-2 (a replica node): the plan says so, apply builds the raid
    // there and removes it from node-1; the replicas stay where they are.
    let before = tf.output("volume");
    let out = tf.ok(&[
        "plan",
        "-input=false",
        "-no-color",
        &vars,
        "-var=attach_node=node-2",
        "-out=move.bin",
    ]);
    assert!(out.contains("1 to change"), "{out}");
    let plan = tf.show_json(Some("move.bin"));
    let change = &resource_change(&plan, "v2engine_volume.data")["change"];
    assert_eq!(change["actions"], serde_json::json!(["update"]), "{change}");
    assert_eq!(change["after"]["attach_node"], "node-2", "{change}");
    tf.ok(&["apply", "-input=false", "-no-color", "move.bin"]);
    let moved = vec![&vars as &str, "-var=attach_node=node-2"];
    assert_eq!(raids(&lab, "node-2"), ["data-raid"]);
    assert!(
        raids(&lab, "node-1").is_empty(),
        "{:?}",
        lab.objects("node-1")
    );
    let n1 = lab.objects("node-1");
    assert!(
        !n1.iter()
            .any(|o| o == "subsystem nqn.2026-11.io.v2engine:data"),
        "the frontend left node-1: {n1:?}"
    );
    assert!(has(&n1, "lvol "), "node-1 keeps its replica: {n1:?}");
    let after = tf.output("volume");
    assert_eq!(after["replicas"], before["replicas"], "replicas moved");
    assert_eq!(after["state"], "healthy", "{after}");
    tf.assert_plan_empty(&moved);

    // Imported into a state that forgot it, the volume plans no change.
    tf.ok(&["state", "rm", "-no-color", "v2engine_volume.data"]);
    let mut import = vec!["import", "-input=false", "-no-color"];
    import.extend_from_slice(&moved);
    import.extend(["v2engine_volume.data", "data"]);
    tf.ok(&import);
    tf.assert_plan_empty(&moved);

    // terraform is killed (SIGKILL, provider and all) in the middle of a grow: as soon as
    // a node holds the volume record at the new size (apply writes the records, then changes
    // SPDK). An apply that finished before the kill landed proves nothing, so the next size
    // is tried (bounded: 3 sizes). The next apply finishes the grow, the plan after it is
    // empty, and every replica and the raid have the size.
    let record_at = |size: &str| {
        ["node-1", "node-2", "node-3"].iter().any(|n| {
            std::fs::read_to_string(
                lab.dir
                    .join("nodes")
                    .join(n)
                    .join("state/records/volume/data.json"),
            )
            .is_ok_and(|t| t.contains(&format!("\"size\": \"{size}\"")))
        })
    };
    let mut killed = None;
    for (size, mib) in [("40Mi", 40u64), ("48Mi", 48), ("56Mi", 56)] {
        let var = format!("-var=volume_size={size}");
        let mut args = APPLY.to_vec();
        args.extend_from_slice(&moved);
        args.push(&var);
        let mut child = tf.spawn(&args);
        let deadline = Instant::now() + Duration::from_secs(120);
        let landed = loop {
            if record_at(size) {
                acceptance::tf::kill_group(&mut child);
                break true;
            }
            if let Some(st) = child.try_wait().unwrap() {
                assert!(st.success(), "the apply of {size} failed before the kill");
                break false;
            }
            assert!(
                Instant::now() < deadline,
                "no record of {size} within 120 s"
            );
            std::thread::sleep(Duration::from_millis(2));
        };
        if landed {
            killed = Some((var, mib));
            break;
        }
    }
    let (var, mib) = killed.expect("no kill landed in the middle of an apply in 3 tries");
    let mut again = moved.clone();
    again.push(&var);
    apply(&tf, &again);
    tf.assert_plan_empty(&again);
    let b = lab.spdk("node-2", &["bdev_get_bdevs", "-b", "data-raid"]);
    let bytes = b[0]["num_blocks"].as_u64().unwrap() * b[0]["block_size"].as_u64().unwrap();
    assert_eq!(bytes, mib << 20, "{b}");
    for n in ["node-1", "node-2", "node-3"] {
        for (alias, size) in lvol_sizes(&lab, n) {
            assert_eq!(size, mib, "{n}: {alias} is {size} MiB");
        }
    }

    // Destroy leaves nothing on any node.
    let mut destroy = vec!["destroy", "-auto-approve", "-input=false", "-no-color"];
    destroy.extend_from_slice(&again);
    destroy.push("-target=v2engine_volume.data");
    tf.ok(&destroy);
    lab.assert_no_objects(&["node-1", "node-2", "node-3"]);
}
