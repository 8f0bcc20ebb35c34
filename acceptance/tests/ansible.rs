//! The Ansible collection on a lab, on the SPDK lane of `V2ENGINE_SPDK_DIR` (spdk-sim when
//! unset, else a real SPDK build): the collection built and installed with ansible-galaxy, the
//! quickstart playbook over SSH (`--check --diff`, apply, idempotence, bad options), the
//! volume example (check mode, create, idempotence, delete: nothing left in SPDK), a block
//! disk removed and imported again, `node_v2` run on the nodes themselves, and a lab set up
//! by the Terraform quickstart compared with one set up by the playbook. Needs root, as CI
//! has; every lab is torn down, also when a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use acceptance::ansible::{
    Ansible, changed_files, engine_log, host_snapshot, inventory, is_engine_log, node_dir,
    snapshot, stage_collection,
};
use acceptance::bins;
use acceptance::lab::{Lab, has};
use acceptance::lane::Lane;
use acceptance::tf::Tf;
use client::{Endpoint, Fleet, TransportOptions};
use serde_json::{Value, json};

const NODES: usize = 3;
const SETTING_TASK: &str = "Turn the V2 data engine on";
const CLASS_TASK: &str = "Define the replicated storage class";
const VOLUME_TASK: &str = "The replicated volume";
const QUICKSTART_VOLUME_TASK: &str = "Create a volume mirrored across two nodes";
/// The nodes whose engine runs after the quickstart: node-3's memory is fragmented, so its
/// engine waits for a reboot (asserted) and has no socket to ask.
const ENGINE_NODES: [&str; 2] = ["node-1", "node-2"];

fn lane() -> Lane {
    Lane::from_env().unwrap_or_else(|e| panic!("{e}"))
}

fn quickstart() -> String {
    bins::repo_root()
        .join("examples/ansible/quickstart.yml")
        .display()
        .to_string()
}

/// Builds the collection tarball with ansible-galaxy and installs it under `root`, as the
/// README says; returns the collections path.
fn build_and_install(root: &Path) -> PathBuf {
    let staged = stage_collection(&root.join("src"));
    let dist = root.join("dist");
    let installed = root.join("installed");
    let ans = Ansible::new(root, &installed);
    let o = ans.output(
        "ansible-galaxy",
        &[
            "collection",
            "build",
            staged.to_str().unwrap(),
            "--output-path",
            dist.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let tarball = dist.join("v2engine-storage-0.1.0.tar.gz");
    let o = ans.output(
        "ansible-galaxy",
        &[
            "collection",
            "install",
            tarball.to_str().unwrap(),
            "-p",
            installed.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let coll = installed.join("ansible_collections/v2engine/storage");
    assert!(coll.join("plugins/modules/node_v2").is_symlink());
    assert!(coll.join("bin/v2engine-ansible").is_file());
    installed
}

/// The volume objects (lvols, subsystems, raids, controllers) of every running engine, as
/// SPDK lists them, named with `volume`.
fn volume_objects(lab: &Lab, volume: &str) -> Vec<String> {
    ENGINE_NODES
        .iter()
        .flat_map(|node| {
            lab.objects(node)
                .into_iter()
                .filter(|o| o.contains(volume))
                .map(move |o| format!("{node}: {o}"))
        })
        .collect()
}

#[test]
fn quickstart_playbook_on_a_lab() {
    let started = Instant::now();
    let lane = lane();
    let tmp = tempfile::tempdir().unwrap();
    let collections = build_and_install(tmp.path());
    let ans = Ansible::new(tmp.path(), &collections);
    let lab = Lab::up(&tmp.path().join("lab"), NODES, &lane);
    let inv = inventory(&lab).display().to_string();
    let qs = quickstart();

    // --check --diff on a fresh lab: node-3 will need a reboot; no host changes.
    let before = host_snapshot(&lab, NODES);
    let r = ans.playbook(&["-i", &inv, &qs, "--check", "--diff"]);
    assert_eq!(r.code, Some(0), "{}", r.text);
    let s = r.task(SETTING_TASK, "localhost");
    assert_eq!(s["changed"], true);
    assert_eq!(s["reboot_required_nodes"], json!(["node-3"]));
    assert_eq!(s["nodes"]["node-3"]["reboot_required"], true);
    assert_eq!(s["nodes"]["node-3"]["engine_state"], "waiting_for_reboot");
    assert_eq!(s["nodes"]["node-1"]["reboot_required"], false);
    assert_eq!(s["diff"]["before"], json!({}));
    assert_eq!(s["diff"]["after"]["hugepage_limit_mib"], 256);
    let c = r.task(CLASS_TASK, "localhost");
    assert_eq!(c["changed"], true);
    assert_eq!(c["diff"]["after"]["number_of_replicas"], 2);
    assert_eq!(c["diff"]["after"]["data_locality"], "best-effort");
    // The class and disks do not exist yet: the volume's placement waits for the run.
    let v = r.task(QUICKSTART_VOLUME_TASK, "localhost");
    assert_eq!(v["changed"], true, "{v}");
    assert!(
        v["warnings"]
            .to_string()
            .contains("Placement of volume data is decided when the task runs"),
        "{v}"
    );
    // The setting, the disks (one looped task), the class and the volume.
    assert_eq!(r.stat("localhost", "changed"), 4);
    let (code, text) = ans.playbook_text(&["-i", &inv, &qs, "--check", "--diff"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("[WARNING]: Node node-3 will need a reboot"),
        "{text}"
    );
    assert!(text.contains("+    \"enabled\": true,"), "{text}");
    let after = host_snapshot(&lab, NODES);
    assert!(
        changed_files(&before, &after).is_empty(),
        "--check changed {:?}",
        changed_files(&before, &after)
    );

    // The run applies; the second run changes nothing.
    let r = ans.playbook(&["-i", &inv, &qs]);
    assert_eq!(r.code, Some(0), "{}", r.text);
    assert_eq!(r.stat("localhost", "changed"), 4, "{}", r.text);
    let state = &r.task(SETTING_TASK, "localhost")["nodes"]["node-1"]["engine_state"];
    assert!(state == "running" || state == "ready", "{state}");
    let v = r.task(QUICKSTART_VOLUME_TASK, "localhost");
    assert_eq!(v["state"], "healthy", "{v}");
    // SPDK itself (spdk-sim or spdk_tgt, asked with SPDK's own client) serves the volume:
    // the raid1 and its frontend on the attach node, a replica lvol on each replica node.
    let on_node1 = lab.objects("node-1");
    assert!(has(&on_node1, "raid data"), "{on_node1:?}");
    let replica_nodes: Vec<&str> = v["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["node"].as_str().unwrap())
        .collect();
    for n in &replica_nodes {
        let objs = lab.objects(n);
        assert!(
            objs.iter()
                .any(|o| o.starts_with("lvol ") && o.contains("/data-r-")),
            "{n}: {objs:?}"
        );
    }
    // The disk of node-1 that holds no replica of it, for the block disk checks below.
    let used: Vec<&str> = v["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["node"] == "node-1")
        .map(|r| r["disk"].as_str().unwrap())
        .collect();
    assert_eq!(used.len(), 1, "{v}");
    let free = if used[0] == "disk-1" { 2 } else { 1 };
    let r = ans.playbook(&["-i", &inv, &qs, "--diff"]);
    assert_eq!(r.code, Some(0), "{}", r.text);
    assert_eq!(r.stat("localhost", "changed"), 0, "{}", r.text);

    // The volume example over SSH: replicas on node-1 and node-2 (node-3 waits for its
    // reboot), the remote one exported over NVMe-oF between the nodes' addresses. Check
    // mode creates nothing; a second run changes nothing; then it is deleted, and SPDK has
    // nothing of it left on any node.
    let vol = bins::repo_root()
        .join("examples/ansible/volume.yml")
        .display()
        .to_string();
    let before = host_snapshot(&lab, NODES);
    let r = ans.playbook(&["-i", &inv, &vol, "--check", "--diff"]);
    assert_eq!(r.code, Some(0), "{}", r.text);
    let t = r.task(VOLUME_TASK, "localhost");
    assert_eq!(t["changed"], true, "{t}");
    assert_eq!(t["diff"]["after"]["replicas"][0]["state"], "planned", "{t}");
    let after = host_snapshot(&lab, NODES);
    assert!(
        changed_files(&before, &after).is_empty(),
        "--check changed {:?}",
        changed_files(&before, &after)
    );
    assert_eq!(volume_objects(&lab, "data-1"), Vec::<String>::new());
    let r = ans.playbook(&["-i", &inv, &vol]);
    assert_eq!(r.code, Some(0), "{}", r.text);
    let t = r.task(VOLUME_TASK, "localhost");
    assert_eq!(t["state"], "healthy", "{t}");
    let nodes: Vec<&str> = t["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["node"].as_str().unwrap())
        .collect();
    assert_eq!(nodes, ["node-1", "node-2"], "{t}");
    // node-1 serves it through a remote replica on node-2: an NVMe-oF controller to it.
    let objs = volume_objects(&lab, "data-1");
    assert!(
        objs.iter().any(|o| o.starts_with("node-1: raid data-1")),
        "{objs:?}"
    );
    assert!(
        objs.iter().any(|o| o.starts_with("node-2: subsystem ")),
        "{objs:?}"
    );
    assert!(
        objs.iter().any(|o| o.starts_with("node-1: controller ")),
        "{objs:?}"
    );
    let r = ans.playbook(&["-i", &inv, &vol]);
    assert_eq!(r.stat("localhost", "changed"), 0, "{}", r.text);
    let r = ans.playbook(&["-i", &inv, &vol, "-e", "volume_state=absent"]);
    assert_eq!(r.code, Some(0), "{}", r.text);
    assert_eq!(r.stat("localhost", "changed"), 1, "{}", r.text);
    assert_eq!(volume_objects(&lab, "data-1"), Vec::<String>::new());

    // Bad options fail naming the option, and change nothing.
    let before = host_snapshot(&lab, NODES);
    let r = ans.playbook(&["-i", &inv, &qs, "-e", "hugepage_limit_mib=3"]);
    assert_ne!(r.code, Some(0));
    let msg = r.task(SETTING_TASK, "localhost")["msg"].to_string();
    assert!(
        msg.contains("hugepage_limit_mib: must be a multiple of 2 MiB"),
        "{msg}"
    );
    let r = ans.playbook(&[
        "-i",
        &inv,
        &qs,
        "-e",
        "v2engine_ssh_known_hosts_file=/nonexistent/known_hosts",
    ]);
    assert_ne!(r.code, Some(0));
    let msg = r.task(SETTING_TASK, "localhost")["msg"].to_string();
    assert!(
        msg.contains("ssh_known_hosts_file: /nonexistent/known_hosts: "),
        "{msg}"
    );
    let after = host_snapshot(&lab, NODES);
    assert!(changed_files(&before, &after).is_empty());

    // A block disk on node-1 (its engine runs now; the one without a replica of the
    // quickstart volume): checked, attached, unchanged, removed, and attached again, which
    // imports the lvstore left on the device.
    let index = free - 1;
    let disk = |state: &str| {
        ans.write(
            &format!("disk-{state}.yml"),
            &format!(
                "- hosts: localhost\n  connection: local\n  gather_facts: false\n  module_defaults:\n    group/v2engine.storage.all:\n      nodes: \"{{{{ v2engine_nodes }}}}\"\n      ssh_private_key_file: \"{{{{ v2engine_ssh_private_key_file }}}}\"\n      ssh_known_hosts_file: \"{{{{ v2engine_ssh_known_hosts_file }}}}\"\n  tasks:\n    - name: disk\n      v2engine.storage.block_disk:\n        node: node-1\n        name: disk-{free}\n        path: \"{{{{ hostvars['node-1'].v2engine_disks[{index}] }}}}\"\n        tags: [fast]\n        state: {state}\n"
            ),
        )
        .display()
        .to_string()
    };
    let (present, absent) = (disk("present"), disk("absent"));
    let before = host_snapshot(&lab, NODES);
    let r = ans.playbook(&["-i", &inv, &present, "--check", "--diff"]);
    assert_eq!(r.code, Some(0), "{}", r.text);
    assert_eq!(r.task("disk", "localhost")["changed"], true);
    assert!(changed_files(&before, &host_snapshot(&lab, NODES)).is_empty());
    let r = ans.playbook(&["-i", &inv, &present]);
    assert_eq!(r.code, Some(0), "{}", r.text);
    let t = r.task("disk", "localhost");
    let uuid = t["lvstore_uuid"].as_str().unwrap().to_string();
    assert!(
        !uuid.is_empty() && t["capacity_bytes"].as_i64() > Some(0),
        "{t}"
    );
    assert_eq!(t["id"], format!("node-1/disk-{free}"));
    let r = ans.playbook(&["-i", &inv, &present]);
    assert_eq!(r.stat("localhost", "changed"), 0, "{}", r.text);
    let r = ans.playbook(&["-i", &inv, &absent]);
    assert_eq!(r.stat("localhost", "changed"), 1, "{}", r.text);
    let r = ans.playbook(&["-i", &inv, &present]);
    assert_eq!(r.code, Some(0), "{}", r.text);
    assert_eq!(r.task("disk", "localhost")["lvstore_uuid"], uuid.as_str());

    // An engine is not restarted with new memory while volumes use it: the quickstart
    // volume is deleted first (by name, with the volume example), which leaves none.
    let r = ans.playbook(&[
        "-i",
        &inv,
        &vol,
        "-e",
        "volume_name=data",
        "-e",
        "volume_state=absent",
    ]);
    assert_eq!(r.code, Some(0), "{}", r.text);
    assert_eq!(
        r.task(VOLUME_TASK, "localhost")["msg"],
        "volume data removed"
    );
    assert_eq!(volume_objects(&lab, "data"), Vec::<String>::new());

    // node_v2 on the nodes themselves (over the inventory's SSH), against each node's own
    // executor socket: check mode predicts per node, then node-1 alone is changed.
    let on_nodes = ans.write(
        "on-nodes.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: local override\n      v2engine.storage.node_v2:\n        node: \"{{ v2engine_node }}\"\n        executor_socket: \"{{ v2engine_nodes[v2engine_node].endpoint | regex_replace('^ssh://[^/]+', '') }}\"\n        hugepage_limit_mib: 512\n",
    );
    let before = host_snapshot(&lab, NODES);
    let r = ans.playbook(&["-i", &inv, on_nodes.to_str().unwrap(), "--check"]);
    assert_eq!(r.code, Some(0), "{}", r.text);
    for (node, reboot) in [("node-1", false), ("node-2", false), ("node-3", true)] {
        let t = r.task("local override", node);
        assert_eq!(t["changed"], true, "{node}: {t}");
        assert_eq!(t["reboot_required"], reboot, "{node}: {t}");
    }
    assert!(changed_files(&before, &host_snapshot(&lab, NODES)).is_empty());
    let r = ans.playbook(&["-i", &inv, on_nodes.to_str().unwrap(), "--limit", "node-1"]);
    assert_eq!(r.code, Some(0), "{}", r.text);
    let t = r.task("local override", "node-1");
    assert_eq!(
        (t["changed"].clone(), t["hugepages_allocated"].clone()),
        (json!(true), json!(256))
    );
    let stored = |n: &str| {
        node_dir(&lab, n)
            .join("state/records/node_v2/node-1.json")
            .exists()
    };
    assert!(stored("node-1") && !stored("node-2"));
    eprintln!(
        "quickstart_playbook_on_a_lab on {}: {:.1} s",
        lane.name(),
        started.elapsed().as_secs_f64()
    );
}

/// Disk path → `<node> disk #<n>`: each lab has its own loop devices, so a disk's path is
/// compared by its place in the lab's `disks` map, not by device name.
fn disk_ids(lab: &Lab) -> BTreeMap<String, String> {
    let mut ids = BTreeMap::new();
    for (node, paths) in tfvars(lab)["disks"].as_object().unwrap() {
        for (i, p) in paths.as_array().unwrap().iter().enumerate() {
            ids.insert(
                p.as_str().unwrap().to_string(),
                format!("{node} disk #{}", i + 1),
            );
        }
    }
    ids
}

fn tfvars(lab: &Lab) -> Value {
    serde_json::from_slice(&std::fs::read(lab.dir.join("terraform.tfvars.json")).unwrap()).unwrap()
}

/// Per node: every record (kind/name → spec and deleted; revisions ignored).
fn records(lab: &Lab) -> BTreeMap<String, BTreeMap<String, Value>> {
    let disk_ids = disk_ids(lab);
    (1..=NODES)
        .map(|i| {
            let node = format!("node-{i}");
            let dir = node_dir(lab, &node).join("state/records");
            let recs = snapshot(std::slice::from_ref(&dir))
                .into_iter()
                .map(|(p, bytes)| {
                    let rel = p.strip_prefix(&dir).unwrap().display().to_string();
                    let mut v: Value = serde_json::from_slice(&bytes).unwrap();
                    v.as_object_mut().unwrap().remove("revision");
                    if let Some(path) = v["spec"]["path"].as_str().and_then(|p| disk_ids.get(p)) {
                        v["spec"]["path"] = Value::String(path.clone());
                    }
                    (rel, v)
                })
                .collect();
            (node, recs)
        })
        .collect()
}

/// Per node: the host's files other than records (boot configuration, hugepage baseline,
/// the simulated host's memory and modules, the engine's spec), by path relative to the
/// node's directory. The lab's own directory reads `LAB`, a node's address `ADDR(node)`, a
/// disk's path `<node> disk #<n>`; the engine's pid and start time (a process, not host
/// state) are left out, and so is a real engine's log (timestamps, its pid; checked by
/// [`assert_engine_logs`] instead).
fn host_files(lab: &Lab) -> BTreeMap<String, BTreeMap<String, String>> {
    let lab_dir = lab.dir.display().to_string();
    let addresses = node_addresses(lab);
    let disk_ids = disk_ids(lab);
    (1..=NODES)
        .map(|i| {
            let node = format!("node-{i}");
            let nd = node_dir(lab, &node);
            let files = snapshot(&[nd.join("root"), nd.join("state"), nd.join("sim-host.json")])
                .into_iter()
                .map(|(p, b)| {
                    let rel = p.strip_prefix(&nd).unwrap().display().to_string();
                    let mut text = String::from_utf8_lossy(&b).replace(&lab_dir, "LAB");
                    for (n, a) in &addresses {
                        text = text.replace(&format!("\"{a}\""), &format!("\"ADDR({n})\""));
                    }
                    for (path, id) in &disk_ids {
                        text = text.replace(&format!("\"{path}\""), &format!("\"{id}\""));
                    }
                    if rel.ends_with("engine.pid.json") {
                        let mut v: Value = serde_json::from_str(&text).unwrap();
                        let m = v.as_object_mut().unwrap();
                        m.remove("pid");
                        m.remove("start_time");
                        text = v.to_string();
                    }
                    (rel, text)
                })
                .filter(|(rel, _)| !rel.starts_with("state/records"))
                .filter(|(rel, _)| !(lab.lane.is_real() && is_engine_log(Path::new(rel))))
                .collect();
            (node, files)
        })
        .collect()
}

/// Node name → its address on the lab's network (from its ssh:// endpoint).
fn node_addresses(lab: &Lab) -> BTreeMap<String, String> {
    tfvars(lab)["nodes"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(n, v)| {
            let ep = v["endpoint"].as_str().unwrap();
            let host = ep
                .split_once('@')
                .map(|(_, rest)| rest)
                .unwrap_or(ep)
                .split([':', '/'])
                .next()
                .unwrap()
                .to_string();
            (n.clone(), host)
        })
        .collect()
}

/// What each running engine printed: on spdk-sim its one ready line (it prints nothing else
/// unless something fails); on a real SPDK, its start as the version the executor reports,
/// and the NVMe/TCP listener of the volume's export (node-2) or frontend (node-1) on the
/// node's own address.
fn assert_engine_logs(lab: &Lab, statuses: &BTreeMap<String, client::v1::NodeStatus>) {
    let addresses = node_addresses(lab);
    for node in ENGINE_NODES {
        let log = engine_log(lab, node);
        if lab.lane.is_real() {
            let version = &statuses[node].spdk_version;
            assert!(
                !version.is_empty() && log.contains(&format!("Starting {version} ")),
                "{node} on {}: the log does not show {version:?} starting:\n{log}",
                lab.lane.name()
            );
            let listening = format!("NVMe/TCP Target Listening on {} port ", addresses[node]);
            assert!(
                log.contains(&listening),
                "{node}: no {listening:?} in:\n{log}"
            );
        } else {
            let ready = format!(
                "stand-in ready, RPC socket {}",
                lab.spdk_socket(node).display()
            );
            assert!(
                log.lines().count() == 1 && log.starts_with("spdk-sim: ") && log.contains(&ready),
                "{node}: spdk-sim printed more than its ready line:\n{log}"
            );
        }
    }
}

/// Per node: the executor's full status, revisions zeroed.
fn statuses(lab: &Lab) -> BTreeMap<String, client::v1::NodeStatus> {
    let vars = tfvars(lab);
    let endpoints: BTreeMap<String, Endpoint> = vars["nodes"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(n, v)| (n.clone(), v["endpoint"].as_str().unwrap().parse().unwrap()))
        .collect();
    let opts = TransportOptions {
        ssh_private_key_file: Some(vars["ssh_private_key_file"].as_str().unwrap().into()),
        ssh_known_hosts_file: Some(vars["ssh_known_hosts_file"].as_str().unwrap().into()),
        ..TransportOptions::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let fleet = Fleet::new(endpoints, opts);
    let obs = rt.block_on(fleet.observe_all()).unwrap();
    obs.into_iter()
        .map(|(n, o)| {
            let mut s = o.observation.status.unwrap();
            s.setting_revision = 0;
            s.override_revision = 0;
            // Disks sit on each lab's own loop devices and get fresh lvstore UUIDs: compare
            // them by name, state and capacity.
            for d in &mut s.disks {
                d.path.clear();
                d.lvstore_uuid.clear();
            }
            (n, s)
        })
        .collect()
}

#[test]
fn terraform_and_the_playbook_set_up_the_same_lab() {
    let started = Instant::now();
    let lane = lane();
    let tmp = tempfile::tempdir().unwrap();
    bins::venv_bin("ansible-playbook");
    // `lab up` puts the provider next to it into the lab's Terraform mirror.
    bins::bin("terraform-provider-v2engine");
    let lab_tf = Lab::up(&tmp.path().join("lab-terraform"), NODES, &lane);
    let lab_pb = Lab::up(&tmp.path().join("lab-playbook"), NODES, &lane);

    // Lab A: the Terraform quickstart, with the provider the lab put into its mirror.
    let tf = Tf::new(tmp.path(), "tf", &lab_tf.terraformrc());
    tf.copy_example("quickstart");
    tf.init();
    tf.ok(&[
        "apply",
        "-auto-approve",
        "-input=false",
        "-no-color",
        &lab_tf.tfvars_arg(),
    ]);

    // Lab B: the playbook.
    let ans = Ansible::new(tmp.path(), tmp.path());
    stage_collection(tmp.path());
    let r = ans.playbook(&["-i", inventory(&lab_pb).to_str().unwrap(), &quickstart()]);
    assert_eq!(r.code, Some(0), "{}", r.text);

    let (rec_tf, rec_pb) = (records(&lab_tf), records(&lab_pb));
    // The setting, two disks, the class and the volume.
    assert_eq!(rec_tf["node-1"].len(), 5, "{rec_tf:?}");
    assert_eq!(rec_tf, rec_pb, "records differ");
    let (st_tf, st_pb) = (statuses(&lab_tf), statuses(&lab_pb));
    assert!(st_tf["node-3"].reboot_required);
    assert!(
        ["running", "ready"].contains(&st_tf["node-1"].engine_state.as_str()),
        "{:?}",
        st_tf["node-1"]
    );
    assert_eq!(st_tf, st_pb, "node statuses differ");
    assert_engine_logs(&lab_tf, &st_tf);
    assert_engine_logs(&lab_pb, &st_pb);
    assert_eq!(
        host_files(&lab_tf),
        host_files(&lab_pb),
        "host files differ"
    );
    // And SPDK serves the same volume objects in both (names carry each replica's own
    // random suffix: compared by kind and node).
    let kinds = |lab: &Lab| -> Vec<String> {
        let mut v: Vec<String> = ENGINE_NODES
            .iter()
            .flat_map(|node| {
                lab.objects(node)
                    .into_iter()
                    .map(move |o| format!("{node}: {}", o.split(' ').next().unwrap_or("?")))
            })
            .collect();
        v.sort();
        v
    };
    let (k_tf, k_pb) = (kinds(&lab_tf), kinds(&lab_pb));
    assert!(k_tf.contains(&"node-1: raid".to_string()), "{k_tf:?}");
    assert_eq!(k_tf, k_pb, "SPDK objects differ");
    eprintln!(
        "terraform_and_the_playbook_set_up_the_same_lab on {}: {:.1} s",
        lane.name(),
        started.elapsed().as_secs_f64()
    );
}
