//! Acceptance tests of `v2engine-lab`: real namespaces, bridge, veths, loop devices, sshd and
//! executors. They need root (as CI has), `/usr/sbin/sshd`, `ssh`, `ip`, `losetup`, and the
//! executor binary next to the lab binary (`cargo build -p v2engine-executor`; the repo's
//! scripts/test.sh builds every binary first). Missing any of these is a failure, not a skip.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on failure

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use client::transport::TransportOptions;
use client::{Endpoint, ExecutorClient};
use lab::plan::{LabId, LabPaths};
use lab::state::{self, LabState};
use lab::{loopdev, net, probe, proc};
use model::{Record, RecordKey, RecordKind};
use serde_json::json;

const LAB_BIN: &str = env!("CARGO_BIN_EXE_v2engine-lab");
/// How long one lab command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

fn require_environment() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the v2engine-lab acceptance tests need root (network namespaces, loop devices, sshd); \
         run them as root, as CI does"
    );
    let executor = Path::new(LAB_BIN).with_file_name("v2engine-executor");
    assert!(
        executor.is_file(),
        "{} is missing: run `cargo build -p v2engine-executor` first (scripts/test.sh builds every binary)",
        executor.display()
    );
    assert!(
        Path::new("/usr/sbin/sshd").is_file(),
        "/usr/sbin/sshd is missing: run scripts/setup.sh (apt-get install openssh-server)"
    );
}

/// Runs `v2engine-lab ARGS…` with a time limit; the child is killed when it runs over.
fn lab_cmd(args: &[&str]) -> Output {
    let mut child = Command::new(LAB_BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > COMMAND_TIMEOUT {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "v2engine-lab {args:?} ran longer than {COMMAND_TIMEOUT:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

fn lab_ok(args: &[&str]) -> String {
    let out = lab_cmd(args);
    assert!(
        out.status.success(),
        "v2engine-lab {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A lab in a temporary directory, removed (`down --purge`) however the test ends.
struct TestLab {
    dir: tempfile::TempDir,
}

impl TestLab {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("v2e-lab-test-")
            .tempdir_in("/tmp")
            .unwrap();
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn dir_arg(&self) -> &str {
        self.path().to_str().unwrap()
    }

    fn state(&self) -> LabState {
        state::load(&LabPaths::new(self.path()).lab_json())
            .unwrap()
            .expect("lab.json exists")
    }
}

impl Drop for TestLab {
    fn drop(&mut self) {
        let _ = lab_cmd(&["down", "--purge", "--dir", self.dir_arg()]);
    }
}

fn ssh(lab: &TestLab, addr: &str, remote: &[&str]) -> Output {
    let paths = LabPaths::new(lab.path());
    Command::new("ssh")
        .args(["-F", "/dev/null", "-i"])
        .arg(paths.client_key())
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            paths.known_hosts().display()
        ))
        .args([
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "ConnectTimeout=10",
        ])
        .arg(format!("root@{addr}"))
        .args(remote)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// A runtime for one block of client calls; dropping it closes the connections (an idle
/// connection left open would make the executor's graceful shutdown wait out the grace time).
fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn executor(lab: &LabState, node: &str) -> ExecutorClient {
    let socket = LabPaths::new(&lab.dir).node(node).executor_socket();
    ExecutorClient::connect(node, &Endpoint::Unix(socket))
        .await
        .unwrap()
}

fn ready(status: &proto::v1::NodeStatus) -> bool {
    !status.reboot_required && matches!(status.engine_state.as_str(), "ready" | "running")
}

/// Asserts that nothing of the lab is left: namespaces, links, loop devices, processes.
fn assert_nothing_left(dir: &Path, id: &LabId, pids: &[u32]) {
    let nss: Vec<String> = net::namespaces()
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with(&id.namespace_prefix()))
        .collect();
    assert!(nss.is_empty(), "namespaces left behind: {nss:?}");
    let links: Vec<String> = net::links()
        .unwrap()
        .into_iter()
        .filter(|l| l.starts_with(&id.link_prefix()))
        .collect();
    assert!(links.is_empty(), "links left behind: {links:?}");
    let devices = loopdev::list().unwrap();
    let loops = loopdev::under_dir(&devices, dir);
    assert!(loops.is_empty(), "loop devices left behind: {loops:?}");
    let alive: Vec<u32> = pids
        .iter()
        .copied()
        .filter(|p| proc::is_alive(*p))
        .collect();
    assert!(alive.is_empty(), "processes left behind: {alive:?}");
}

fn recorded_pids(lab: &LabState) -> Vec<u32> {
    lab.nodes
        .iter()
        .flat_map(|n| [&n.sshd, &n.executor])
        .flatten()
        .map(|p| p.pid)
        .collect()
}

#[test]
fn three_node_lab_serves_ssh_and_executors_and_reboots_the_fragmented_node() {
    require_environment();
    let t = TestLab::new();
    let out = lab_ok(&[
        "up",
        "--nodes",
        "3",
        "--dir",
        t.dir_arg(),
        "--disk-size-mib",
        "64",
    ]);
    assert!(out.contains("node-3"), "{out}");
    let lab = t.state();
    let id = LabId::from_string(lab.id.clone());
    assert_eq!(
        id,
        LabId::for_dir(&std::fs::canonicalize(t.path()).unwrap())
    );
    assert_eq!(lab.nodes.len(), 3);
    assert_eq!(
        lab.nodes.iter().map(|n| n.fragmented).collect::<Vec<_>>(),
        [false, false, true]
    );

    // Namespaces, addresses, bridge.
    let namespaces = net::namespaces().unwrap();
    let links = net::links().unwrap();
    assert!(
        links.contains(&lab.bridge.name),
        "bridge {} missing",
        lab.bridge.name
    );
    for n in &lab.nodes {
        assert!(
            namespaces.contains(&n.namespace),
            "namespace {} missing",
            n.namespace
        );
        let addrs = net::namespace_ipv4_addresses(&n.namespace).unwrap();
        assert!(
            addrs.contains(&(n.iface.clone(), n.address)),
            "{}: {addrs:?}",
            n.name
        );
        assert!(links.contains(&n.veth_host));
    }
    let bridge_addrs = net::root_ipv4_addresses().unwrap();
    assert!(bridge_addrs.contains(&(lab.bridge.name.clone(), lab.bridge.address)));

    // sshd: TCP from the root namespace, then a real login with the lab keys, which lands
    // inside the node's namespace.
    for n in &lab.nodes {
        let addr = SocketAddr::from((n.address, 22));
        assert!(
            probe::tcp_accepts(addr, Duration::from_secs(5)),
            "{addr} refuses TCP"
        );
        let out = ssh(&t, &n.address.to_string(), &["true"]);
        assert!(
            out.status.success(),
            "ssh to {}: {}",
            n.name,
            String::from_utf8_lossy(&out.stderr)
        );
        let out = ssh(
            &t,
            &n.address.to_string(),
            &["ip", "-4", "-o", "addr", "show", "dev", "eth0"],
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&format!("{}/24", n.address)),
            "{}: {text}",
            n.name
        );
    }

    // Nodes reach each other through the bridge: ssh from inside node-1 to node-2.
    let paths = LabPaths::new(&lab.dir);
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.nodes[0].namespace,
            "ssh",
            "-F",
            "/dev/null",
            "-i",
        ])
        .arg(paths.client_key())
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            paths.known_hosts().display()
        ))
        .args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"])
        .arg(format!("root@{}", lab.nodes[1].address))
        .args(["ip", "-4", "-o", "addr", "show", "dev", "eth0"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("{}/24", lab.nodes[1].address)),
        "node-1 -> node-2: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Disks: two per node, loop devices over the images (this machine has them).
    let devices = loopdev::list().unwrap();
    for n in &lab.nodes {
        assert_eq!(n.disks.len(), 2);
        for d in &n.disks {
            let dev = d
                .loop_device
                .as_ref()
                .unwrap_or_else(|| panic!("{}: no loop device for {}", n.name, d.image.display()));
            assert!(dev.exists());
            assert!(
                devices
                    .iter()
                    .any(|l| &l.device == dev && l.back_file.as_deref() == Some(d.image.as_path())),
                "{} is not backed by {}",
                dev.display(),
                d.image.display()
            );
        }
    }

    // Front-end files.
    let tfvars: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(paths.tfvars()).unwrap()).unwrap();
    for n in &lab.nodes {
        let ep = tfvars["nodes"][&n.name]["endpoint"].as_str().unwrap();
        let Endpoint::Ssh { host, socket, .. } = ep.parse::<Endpoint>().unwrap() else {
            panic!("{ep}")
        };
        assert_eq!(host, n.address.to_string());
        assert_eq!(socket, paths.node(&n.name).executor_socket());
        assert_eq!(tfvars["disks"][&n.name].as_array().unwrap().len(), 2);
    }
    // The ssh:// endpoints work through the client with the lab's key and known_hosts,
    // as the front-ends use them (streamlocal forwarding to the executor socket).
    let opts = TransportOptions {
        ssh_private_key_file: Some(tfvars["ssh_private_key_file"].as_str().unwrap().into()),
        ssh_known_hosts_file: Some(tfvars["ssh_known_hosts_file"].as_str().unwrap().into()),
        ..Default::default()
    };
    rt().block_on(async {
        for n in &lab.nodes {
            let ep: Endpoint = tfvars["nodes"][&n.name]["endpoint"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            let mut c = ExecutorClient::connect_with(&n.name, &ep, &opts)
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", n.name));
            assert_eq!(c.node_status().await.unwrap().node, n.name);
        }
    });
    for f in [
        paths.terraformrc(),
        paths.inventory(),
        paths.lab_env(),
        paths.known_hosts(),
    ] {
        assert!(f.is_file(), "{} missing", f.display());
    }

    // Every executor answers; enabling the engine everywhere leaves the fragmented node
    // waiting for a reboot and the others ready.
    let setting = Record {
        key: RecordKey::new(RecordKind::DataEngineSetting, "cluster"),
        revision: 1,
        deleted: false,
        spec: json!({"enabled": true, "hugepage_limit_mib": 64}),
    };
    let statuses = rt().block_on(async {
        let mut out = Vec::new();
        for n in &lab.nodes {
            let mut c = executor(&lab, &n.name).await;
            assert_eq!(c.node_status().await.unwrap().node, n.name);
            c.put_records(std::slice::from_ref(&setting)).await.unwrap();
        }
        for n in &lab.nodes {
            out.push(executor(&lab, &n.name).await.reconcile().await.unwrap());
        }
        out
    });
    for s in &statuses[..2] {
        assert!(ready(s), "{} should be ready: {s:?}", s.node);
    }
    let s3 = &statuses[2];
    assert!(s3.reboot_required, "node-3 should need a reboot: {s3:?}");
    assert_eq!(s3.engine_state, "waiting_for_reboot");
    assert!(
        s3.reboot_reasons.iter().any(|r| r.contains("hugepages")),
        "{:?}",
        s3.reboot_reasons
    );

    // status shows the same.
    let status: serde_json::Value =
        serde_json::from_str(&lab_ok(&["status", "--dir", t.dir_arg(), "--json"])).unwrap();
    let rows = status.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert!(
        rows.iter()
            .all(|r| r["ssh_up"] == true && r["executor_up"] == true),
        "{status}"
    );
    assert_eq!(rows[2]["reboot_required"], true);
    assert_eq!(rows[0]["reboot_required"], false);
    let table = lab_ok(&["status", "--dir", t.dir_arg()]);
    assert!(
        table.contains("node-3: reboot required: allocated"),
        "{table}"
    );

    // Reboot node-3: it comes back ready (the executor reconciles at start), sshd too.
    let old = t.state().nodes[2].clone();
    lab_ok(&["reboot", "node-3", "--dir", t.dir_arg()]);
    let after = t.state();
    let n3 = &after.nodes[2];
    assert_ne!(
        n3.executor.as_ref().unwrap().pid,
        old.executor.as_ref().unwrap().pid
    );
    assert!(!proc::is_alive(old.executor.as_ref().unwrap().pid));
    let s3 = rt().block_on(async {
        executor(&after, "node-3")
            .await
            .node_status()
            .await
            .unwrap()
    });
    assert!(
        ready(&s3),
        "node-3 should be ready after its reboot: {s3:?}"
    );
    assert_eq!(s3.hugepages_allocated, s3.hugepages_target);
    assert!(ssh(&t, &n3.address.to_string(), &["true"]).status.success());
    // The others were not touched.
    assert_eq!(after.nodes[0].executor, lab.nodes[0].executor);

    // down leaves nothing behind, and a second down is fine.
    let pids = recorded_pids(&after);
    let canonical = std::fs::canonicalize(t.path()).unwrap();
    lab_ok(&["down", "--dir", t.dir_arg()]);
    assert_nothing_left(&canonical, &id, &pids);
    lab_ok(&["down", "--dir", t.dir_arg()]);
    assert_nothing_left(&canonical, &id, &pids);
}

#[test]
fn up_is_idempotent_and_down_cleans_up_after_a_crash() {
    require_environment();
    let t = TestLab::new();
    let args = [
        "up",
        "--nodes",
        "2",
        "--dir",
        t.dir_arg(),
        "--disk-size-mib",
        "16",
        "--fragmented-nodes",
        "none",
    ];
    lab_ok(&args);
    let first = t.state();
    assert!(first.nodes.iter().all(|n| !n.fragmented));

    // A second up keeps everything as it is.
    lab_ok(&args);
    let second = t.state();
    assert_eq!(recorded_pids(&second), recorded_pids(&first));
    assert_eq!(second.subnet, first.subnet);
    assert_eq!(second.nodes[0].disks, first.nodes[0].disks);

    // An executor that died is restarted by up; nothing else is.
    let dead = first.nodes[0].executor.as_ref().unwrap().pid;
    proc::terminate_all(&[dead], Duration::from_secs(5)).unwrap();
    lab_ok(&["up", "--dir", t.dir_arg()]);
    let third = t.state();
    let restarted = third.nodes[0].executor.as_ref().unwrap().pid;
    assert_ne!(restarted, dead);
    assert!(proc::is_alive(restarted));
    assert_eq!(third.nodes[0].sshd, first.nodes[0].sshd);
    assert_eq!(third.nodes[1].executor, first.nodes[1].executor);
    let s = rt().block_on(async {
        executor(&third, "node-1")
            .await
            .node_status()
            .await
            .unwrap()
    });
    assert_eq!(s.node, "node-1");

    // Crash: every process killed, lab.json gone, and a stray process in a namespace.
    let mut pids = recorded_pids(&third);
    proc::terminate_all(&pids, Duration::from_secs(5)).unwrap();
    let mut stray = Command::new("ip")
        .args(["netns", "exec", &third.nodes[1].namespace, "sleep", "600"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    pids.push(stray.id());
    std::fs::remove_file(LabPaths::new(t.path()).lab_json()).unwrap();

    let canonical = std::fs::canonicalize(t.path()).unwrap();
    let out = lab_ok(&["down", "--dir", t.dir_arg()]);
    assert!(out.contains("deleted 2 namespaces"), "{out}");
    assert_nothing_left(&canonical, &LabId::for_dir(&canonical), &pids);
    assert!(
        !stray.wait().unwrap().success(),
        "the stray process was killed"
    );
    lab_ok(&["down", "--dir", t.dir_arg()]);

    // The same directory makes a working lab again.
    lab_ok(&args);
    let again = t.state();
    let s = rt().block_on(async {
        executor(&again, "node-2")
            .await
            .node_status()
            .await
            .unwrap()
    });
    assert_eq!(s.node, "node-2");
    lab_ok(&["down", "--purge", "--dir", t.dir_arg()]);
    assert!(
        !t.path().exists(),
        "down --purge removes the emptied lab directory"
    );
    assert_nothing_left(
        &canonical,
        &LabId::for_dir(&canonical),
        &recorded_pids(&again),
    );
}

#[test]
fn commands_on_a_missing_lab_explain_themselves() {
    require_environment();
    let t = TestLab::new();
    let out = lab_cmd(&["status", "--dir", t.dir_arg()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no lab in") && err.contains(t.dir_arg()),
        "{err}"
    );
    let out = lab_cmd(&[
        "up",
        "--dir",
        t.dir_arg(),
        "--executor",
        "/nonexistent/v2engine-executor",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/v2engine-executor"), "{err}");
    // down of a lab that never existed is fine.
    lab_ok(&["down", "--dir", t.dir_arg()]);
}
