//! The `volume` module with the real ansible-playbook, running the examples
//! (examples/ansible/quickstart.yml, then examples/ansible/volume.yml with `-e` overrides)
//! against executors over simulated hosts whose engines (spdk-sim) export replicas over
//! NVMe-oF on 127.0.0.1 (distinct `--nvmf-ports` per node), with block disks on real loop
//! devices: check mode places the replicas and changes nothing; the playbook creates a
//! 2-replica volume and a second run changes nothing; growing is in place; shrinking fails
//! naming `size`; moving the attach node keeps the replicas; another class is refused
//! without `allow_replace` and replaces the volume with it; `state: absent` leaves no
//! replica, engine or other volume object on any node, and a second delete changes nothing.
//! Needs root (loop devices), as CI has.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use client::v1::ListVolumeObjectsResponse;
use client::{Endpoint, ExecutorClient};
use common::{Ansible, Loop, Run, SimFleet, changed_files, repo_root, stage_collection};
use serde_json::{Value, json};

const VOLUME_TASK: &str = "The replicated volume";
const NQN: &str = "nqn.2026-11.io.v2engine:data-1";

/// Executors and disks; fields drop in order: the fleet (its engines close the devices)
/// before the loop devices.
struct Env {
    fleet: SimFleet,
    _disks: Vec<Loop>,
    ans: Ansible,
    inventory: PathBuf,
    _tmp: tempfile::TempDir,
}

/// An inventory like the one `v2engine-lab up` writes, with the fleet's Unix sockets as
/// endpoints (no ssh options) and a loop device as the disk of node-1 and node-2.
fn inventory(fleet: &SimFleet, disks: &[(&str, &Loop)]) -> String {
    let mut s = String::from("all:\n  hosts:\n");
    for n in &fleet.nodes {
        s.push_str(&format!(
            "    {0}:\n      ansible_connection: local\n      v2engine_node: {0}\n      v2engine_disks: [",
            n.name
        ));
        let paths: Vec<String> = disks
            .iter()
            .filter(|(node, _)| *node == n.name)
            .map(|(_, l)| format!("\"{}\"", l.dev))
            .collect();
        s.push_str(&paths.join(", "));
        s.push_str("]\n");
    }
    s.push_str(&format!(
        "  vars:\n    v2engine_nodes: {}\n",
        fleet.nodes_json()
    ));
    s
}

/// `nodes` executors (the last one's memory fragmented: its engine waits for a reboot),
/// a loop device as the disk of each of `disk_nodes`; NVMe-oF ports from `first_port` on.
fn env(nodes: usize, disk_nodes: &[&'static str], first_port: usize) -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let disks: Vec<Loop> = disk_nodes
        .iter()
        .map(|n| Loop::new(&tmp.path().join(format!("{n}-disk.img")), 256))
        .collect();
    let fleet = SimFleet::with_args(&tmp.path().join("fleet"), nodes, |i| {
        let first = first_port + 20 * i;
        vec![
            "--data-address".into(),
            "127.0.0.1".into(),
            "--nvmf-ports".into(),
            format!("{first}-{}", first + 19),
        ]
    });
    stage_collection(tmp.path());
    let ans = Ansible::new(tmp.path(), tmp.path());
    let pairs: Vec<(&str, &Loop)> = disk_nodes.iter().copied().zip(&disks).collect();
    let inventory = ans.write("inventory.yml", &inventory(&fleet, &pairs));
    Env {
        fleet,
        _disks: disks,
        ans,
        inventory,
        _tmp: tmp,
    }
}

fn example(name: &str) -> String {
    repo_root()
        .join("examples/ansible")
        .join(name)
        .display()
        .to_string()
}

/// Every node's volume objects, by node; nodes whose engine does not run (the last node
/// waits for a reboot) or that are down cannot list any and are left out.
fn objects(fleet: &SimFleet) -> BTreeMap<String, ListVolumeObjectsResponse> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut out = BTreeMap::new();
        for n in &fleet.nodes {
            let Ok(mut c) =
                ExecutorClient::connect(&n.name, &Endpoint::Unix(n.socket.clone())).await
            else {
                continue;
            };
            if let Ok(l) = c.list_volume_objects().await {
                out.insert(n.name.clone(), l);
            }
        }
        out
    })
}

/// A replica found on a node: `(node, replica name, disk, size MiB)`.
type Found = (String, String, String, u64);

/// Every replica of `volume` found on the nodes, and the nodes with its engine.
fn placement(fleet: &SimFleet, volume: &str) -> (Vec<Found>, Vec<String>) {
    let objs = objects(fleet);
    let mut replicas = Vec::new();
    let mut engines = Vec::new();
    for (node, l) in &objs {
        for r in l.replicas.iter().filter(|r| r.volume == volume) {
            replicas.push((node.clone(), r.replica.clone(), r.disk.clone(), r.size_mib));
        }
        if l.engines
            .iter()
            .any(|e| e.volume == volume && e.state != "absent")
        {
            engines.push(node.clone());
        }
    }
    (replicas, engines)
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

impl Env {
    fn playbook(&self, pb: &str, extra: &[&str]) -> Run {
        let inv = self.inventory.display().to_string();
        let mut args = vec!["-i", inv.as_str(), pb];
        args.extend(extra);
        self.ans.playbook(&args)
    }

    fn ok(&self, pb: &str, extra: &[&str]) -> Run {
        let r = self.playbook(pb, extra);
        assert_eq!(r.code, Some(0), "{pb} {extra:?} failed:\n{}", r.text);
        r
    }

    /// Runs the volume example; asserts that no host file and no volume object changed.
    fn changes_nothing(&self, extra: &[&str]) -> Run {
        let (files, objs) = (self.fleet.snapshot(), objects(&self.fleet));
        let r = self.playbook(&example("volume.yml"), extra);
        let after = self.fleet.snapshot();
        assert!(
            changed_files(&files, &after).is_empty(),
            "{extra:?} changed {:?}",
            changed_files(&files, &after)
        );
        assert_eq!(
            objs,
            objects(&self.fleet),
            "{extra:?} changed volume objects"
        );
        r
    }
}

fn replicas(t: &Value) -> Vec<(String, String, String)> {
    t["replicas"]
        .as_array()
        .unwrap_or_else(|| panic!("no replicas in {t}"))
        .iter()
        .map(|r| {
            (
                r["node"].as_str().unwrap().to_string(),
                r["disk"].as_str().unwrap().to_string(),
                r["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn on_both(state: &str) -> Vec<(String, String, String)> {
    ["node-1", "node-2"]
        .iter()
        .map(|n| (n.to_string(), "disk-1".to_string(), state.to_string()))
        .collect()
}

#[test]
fn volume_example_is_placed_created_grown_moved_replaced_and_deleted() {
    let e = env(3, &["node-1", "node-2"], 27_400);
    let vol = example("volume.yml");

    // The quickstart: engine on (node-3's waits for a reboot), disks, class `replicated`,
    // and its own volume `data` (left alone below).
    let r = e.ok(
        &example("quickstart.yml"),
        &["-e", "hugepage_limit_mib=256"],
    );
    assert_eq!(r.stat("localhost", "changed"), 4, "{}", r.text);

    // --check --diff: the placement, nothing created.
    let r = e.changes_nothing(&["--check", "--diff"]);
    assert_eq!(r.code, Some(0), "{}", r.text);
    let t = r.task(VOLUME_TASK, "localhost");
    assert_eq!(t["changed"], true, "{t}");
    assert_eq!(t["msg"], "volume data-1 would be created");
    assert_eq!(replicas(t), on_both("planned"), "{t}");
    assert_eq!(t["state"], "healthy");
    assert_eq!(t["nqn"], NQN);
    assert_eq!(t["diff"]["before"], json!({}));
    assert_eq!(t["diff"]["after"]["size"], "32Mi");
    assert_eq!(
        t["diff"]["after"]["frontend"], "nvmf",
        "the class's frontend is filled in"
    );
    assert_eq!(t["diff"]["after"]["replicas"][1]["state"], "planned");
    assert!(t["spec"].get("replicas").is_none(), "{t}");

    // The run creates it: a replica on node-1 and node-2, the engine on node-1.
    let started = std::time::Instant::now();
    let r = e.ok(&vol, &[]);
    let created_in = started.elapsed();
    let t = r.task(VOLUME_TASK, "localhost");
    assert_eq!(
        (t["changed"].clone(), t["msg"].clone()),
        (json!(true), json!("volume data-1 created")),
        "{t}"
    );
    assert_eq!(replicas(t), on_both("healthy"), "{t}");
    assert_eq!(t["state"], "healthy", "{t}");
    assert_eq!(t["nqn"], NQN);
    assert_eq!(t["spec"]["storage_class"], "replicated");
    for n in &e.fleet.nodes {
        let rec = record(&n.dir, "volume", "data-1").unwrap();
        assert_eq!(rec["spec"]["size"], "32Mi", "{}", n.name);
    }
    let (reps, engines) = placement(&e.fleet, "data-1");
    assert_eq!(reps.len(), 2, "{reps:?}");
    assert!(
        reps.iter().all(|r| r.3 == 32 && r.2 == "disk-1"),
        "{reps:?}"
    );
    assert_eq!(engines, ["node-1"]);
    let names: Vec<String> = reps.iter().map(|r| r.1.clone()).collect();

    // A second run changes nothing, and says so in the diff too.
    let r = e.ok(&vol, &["--diff"]);
    assert_eq!(r.stat("localhost", "changed"), 0, "{}", r.text);
    let t = r.task(VOLUME_TASK, "localhost");
    assert_eq!(t["msg"], "volume data-1 unchanged");
    assert_eq!(t["diff"]["before"], t["diff"]["after"]);
    assert_eq!(replicas(t), on_both("healthy"));

    // Growing: predicted (nothing changes), then in place on the same replicas.
    let r = e.changes_nothing(&["--check", "--diff", "-e", "volume_size=64Mi"]);
    let t = r.task(VOLUME_TASK, "localhost");
    assert_eq!(t["changed"], true, "{}", r.text);
    assert_eq!(t["msg"], "volume data-1 would be updated");
    assert_eq!(
        (
            t["diff"]["before"]["size"].clone(),
            t["diff"]["after"]["size"].clone()
        ),
        (json!("32Mi"), json!("64Mi"))
    );
    assert_eq!(replicas(t), on_both("healthy"));
    let r = e.ok(&vol, &["-e", "volume_size=64Mi"]);
    let t = r.task(VOLUME_TASK, "localhost");
    assert_eq!(t["msg"], "volume data-1 updated", "{t}");
    let (reps, _) = placement(&e.fleet, "data-1");
    assert!(reps.iter().all(|r| r.3 == 64), "{reps:?}");
    assert_eq!(
        reps.iter().map(|r| r.1.clone()).collect::<Vec<_>>(),
        names,
        "grown in place"
    );
    assert_eq!(
        e.ok(&vol, &["-e", "volume_size=64Mi"])
            .stat("localhost", "changed"),
        0
    );

    // Shrinking is refused naming `size`, in check mode too, changing nothing.
    for mode in [
        &["-e", "volume_size=32Mi"][..],
        &["-e", "volume_size=32Mi", "--check"][..],
    ] {
        let r = e.changes_nothing(mode);
        assert_ne!(r.code, Some(0), "{mode:?}: {}", r.text);
        let t = r.task(VOLUME_TASK, "localhost");
        assert_eq!(
            (t["failed"].clone(), t["changed"].clone()),
            (json!(true), json!(false))
        );
        let msg = t["msg"].as_str().unwrap();
        assert!(
            msg.starts_with("size: ") && msg.contains("cannot shrink from 67108864 to 33554432"),
            "{msg}"
        );
    }

    // The engine moves to node-2; the replicas stay.
    let r = e.ok(
        &vol,
        &["-e", "volume_size=64Mi", "-e", "attach_node=node-2"],
    );
    let t = r.task(VOLUME_TASK, "localhost");
    assert_eq!(
        (t["changed"].clone(), t["state"].clone()),
        (json!(true), json!("healthy")),
        "{t}"
    );
    let (reps, engines) = placement(&e.fleet, "data-1");
    assert_eq!(engines, ["node-2"]);
    assert_eq!(reps.iter().map(|r| r.1.clone()).collect::<Vec<_>>(), names);
    let r = e.ok(
        &vol,
        &["-e", "volume_size=64Mi", "-e", "attach_node=node-2"],
    );
    assert_eq!(r.stat("localhost", "changed"), 0, "{}", r.text);

    // Another class would replace the volume and lose its data: refused without
    // allow_replace (in check mode too), predicted with it, then done.
    let single = e.ans.write(
        "single.yml",
        &format!(
            "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - name: class\n      v2engine.storage.storage_class:\n        name: single\n        number_of_replicas: 1\n        nodes: {}\n",
            e.fleet.nodes_json()
        ),
    );
    e.ok(single.to_str().unwrap(), &[]);
    let moved = [
        "-e",
        "volume_size=64Mi",
        "-e",
        "attach_node=node-2",
        "-e",
        "volume_class=single",
    ];
    for check in [false, true] {
        let mut args = moved.to_vec();
        if check {
            args.push("--check");
        }
        let r = e.changes_nothing(&args);
        assert_ne!(r.code, Some(0), "{}", r.text);
        let msg = r.task(VOLUME_TASK, "localhost")["msg"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            msg.starts_with("storage_class: volume data-1 is stored with class \"replicated\"")
                && msg.contains("allow_replace: true"),
            "{msg}"
        );
    }
    let mut with_flag = moved.to_vec();
    with_flag.extend(["-e", "allow_replace=true"]);
    let mut check = with_flag.clone();
    check.extend(["--check", "--diff"]);
    let r = e.changes_nothing(&check);
    let t = r.task(VOLUME_TASK, "localhost");
    assert_eq!(t["msg"], "volume data-1 would be replaced", "{}", r.text);
    assert_eq!(t["diff"]["before"]["storage_class"], "replicated");
    assert_eq!(t["diff"]["after"]["storage_class"], "single");
    assert_eq!(replicas(t).len(), 1, "{t}");
    assert!(
        t["warnings"].to_string().contains("would be replaced"),
        "{t}"
    );
    let r = e.ok(&vol, &with_flag);
    let t = r.task(VOLUME_TASK, "localhost");
    assert_eq!(t["msg"], "volume data-1 replaced", "{t}");
    assert_eq!(replicas(t).len(), 1, "{t}");
    let (reps, engines) = placement(&e.fleet, "data-1");
    assert_eq!(reps.len(), 1, "the old replicas are gone: {reps:?}");
    assert_eq!(engines, ["node-2"]);
    assert_eq!(e.ok(&vol, &with_flag).stat("localhost", "changed"), 0);

    // Deleted: predicted, done, and nothing of it is left on any node; deleting again
    // (by name alone) changes nothing.
    let absent = ["-e", "volume_state=absent"];
    let r = e.changes_nothing(&["-e", "volume_state=absent", "--check"]);
    assert_eq!(
        r.task(VOLUME_TASK, "localhost")["msg"],
        "volume data-1 would be removed"
    );
    let r = e.ok(&vol, &absent);
    let t = r.task(VOLUME_TASK, "localhost");
    assert_eq!(
        (t["changed"].clone(), t["replicas"].clone()),
        (json!(true), json!([]))
    );
    let objs = objects(&e.fleet);
    assert_eq!(objs.len(), 2, "node-1 and node-2 list their objects");
    for (node, l) in &objs {
        assert!(
            l.objects.iter().all(|o| o.volume != "data-1"),
            "{node}: {:?}",
            l.objects
        );
        assert!(l.replicas.iter().all(|r| r.volume != "data-1"), "{node}");
        assert!(
            l.engines
                .iter()
                .all(|en| en.volume != "data-1" || en.state == "absent"),
            "{node}"
        );
    }
    for n in &e.fleet.nodes {
        assert_eq!(
            record(&n.dir, "volume", "data-1").unwrap()["deleted"],
            true,
            "{}",
            n.name
        );
    }
    let by_name = e.ans.write(
        "delete.yml",
        &format!(
            "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - name: delete\n      v2engine.storage.volume:\n        name: data-1\n        state: absent\n        nodes: {}\n",
            e.fleet.nodes_json()
        ),
    );
    let r = e.ok(by_name.to_str().unwrap(), &["--diff"]);
    assert_eq!(r.stat("localhost", "changed"), 0, "{}", r.text);
    assert_eq!(
        r.task("delete", "localhost")["msg"],
        "volume data-1 unchanged"
    );
    eprintln!(
        "volume create (one ansible-playbook run, 2 replicas + engine): {} ms",
        created_in.as_millis()
    );
}

fn warnings(t: &Value) -> String {
    t["warnings"].to_string()
}

#[test]
fn a_lost_replica_is_replaced_and_the_leftover_removed_when_its_node_returns() {
    let mut e = env(4, &["node-1", "node-2", "node-3"], 28_400);
    let vol = example("volume.yml");
    let r = e.ok(
        &example("quickstart.yml"),
        &["-e", "hugepage_limit_mib=256"],
    );
    assert_eq!(r.stat("localhost", "changed"), 4, "{}", r.text);
    let r = e.ok(&vol, &[]);
    let t = r.task(VOLUME_TASK, "localhost");
    let placed = replicas(t);
    assert_eq!(placed.len(), 2, "{t}");
    assert_eq!(placed[0].0, "node-1", "best-effort locality: {t}");
    let lost = placed[1].0.clone();
    let spare = if lost == "node-2" { "node-3" } else { "node-2" };
    let index = |n: &str| e.fleet.nodes.iter().position(|x| x.name == n).unwrap();

    // The node with the remote replica fails.
    let i = index(&lost);
    e.fleet.nodes[i].kill();

    // Deleting needs every node (the lost one may hold a replica): refused, in check mode
    // too, changing nothing.
    for mode in [
        &["-e", "volume_state=absent"][..],
        &["-e", "volume_state=absent", "--check"][..],
    ] {
        let r = e.changes_nothing(mode);
        assert_ne!(r.code, Some(0), "{mode:?}: {}", r.text);
        let msg = r.task(VOLUME_TASK, "localhost")["msg"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            msg.starts_with("cannot delete volume data-1: ")
                && msg.contains(&format!("node {lost}: unreachable")),
            "{mode:?}: {msg}"
        );
    }

    // Check mode shows the replacement and changes nothing.
    let r = e.changes_nothing(&["--check", "--diff"]);
    assert_eq!(r.code, Some(0), "{}", r.text);
    let t = r.task(VOLUME_TASK, "localhost");
    assert_eq!(t["changed"], true, "{t}");
    assert_eq!(t["msg"], "volume data-1 would be updated");
    assert_eq!(t["state"], "degraded", "{t}");
    assert_eq!(
        replicas(t),
        [
            ("node-1".into(), "disk-1".into(), "healthy".into()),
            (spare.into(), "disk-1".into(), "planned".into())
        ],
        "{t}"
    );
    let w = warnings(t);
    assert!(
        w.contains(&format!(
            "Volume data-1 would be repaired: a replica to build on {spare}/disk-1"
        )) && w.contains(&format!("Node {lost} is unreachable")),
        "{w}"
    );

    // The run builds it; the next one has nothing to do.
    let r = e.ok(&vol, &[]);
    let t = r.task(VOLUME_TASK, "localhost");
    assert_eq!(
        (t["changed"].clone(), t["msg"].clone()),
        (json!(true), json!("volume data-1 updated")),
        "{t}"
    );
    let (reps, engines) = placement(&e.fleet, "data-1");
    let nodes: Vec<&str> = reps.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(nodes, ["node-1", spare], "{reps:?}");
    assert_eq!(engines, ["node-1"]);
    let r = e.ok(&vol, &[]);
    assert_eq!(r.stat("localhost", "changed"), 0, "{}", r.text);

    // The node returns with its old replica: stale, removed by the next run.
    e.fleet.nodes[i].start();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !objects(&e.fleet)
        .get(&lost)
        .is_some_and(|l| l.replicas.iter().any(|r| r.volume == "data-1"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{lost} never listed its old replica again"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // (Its copy of the volume record is old too: the run also writes the current one.)
    let r = e.ok(&vol, &["--diff"]);
    let t = r.task(VOLUME_TASK, "localhost");
    assert_eq!(t["changed"], true, "{t}");
    assert!(
        t["diff"]["before"]["replicas"]
            .as_array()
            .unwrap()
            .contains(&json!({"node": lost, "disk": "disk-1", "state": "stale"})),
        "{t}"
    );
    assert!(warnings(t).contains(&format!("{lost}/disk-1")), "{t}");
    let (reps, _) = placement(&e.fleet, "data-1");
    let nodes: Vec<&str> = reps.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(nodes, ["node-1", spare], "{reps:?}");
    let r = e.ok(&vol, &[]);
    assert_eq!(r.stat("localhost", "changed"), 0, "{}", r.text);

    // Deleted: nothing is left on any node.
    e.ok(&vol, &["-e", "volume_state=absent"]);
    let (reps, engines) = placement(&e.fleet, "data-1");
    assert!(
        reps.is_empty() && engines.is_empty(),
        "{reps:?} {engines:?}"
    );
}
