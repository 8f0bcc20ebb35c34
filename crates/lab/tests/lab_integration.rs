//! Acceptance tests of `v2engine-lab`: real namespaces, bridge, veths, loop devices, sshd and
//! executors. They need root (as CI has), `/usr/sbin/sshd`, `ssh`, `ip`, `losetup`, and the
//! executor binary next to the lab binary (`cargo build -p v2engine-executor`; the repo's
//! scripts/test.sh builds every binary first). Missing any of these is a failure, not a skip.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on failure

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
        spec: json!({"enabled": true, "hugepage_limit_mib": 256}),
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
    // reboot returns once the executor answers; its start-up reconcile may still be running
    // ("preparing"), so wait for it, bounded.
    let s3 = rt().block_on(async {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = executor(&after, "node-3")
                .await
                .node_status()
                .await
                .unwrap();
            if s.engine_state != "preparing" || Instant::now() >= deadline {
                break s;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
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

/// A TCP connection to `addr` from inside `namespace` (`None`: from the host), within `timeout`.
fn connect_from(
    namespace: Option<&str>,
    addr: SocketAddr,
    timeout: Duration,
) -> std::io::Result<TcpStream> {
    match namespace {
        None => TcpStream::connect_timeout(&addr, timeout),
        Some(ns) => net::in_namespace(ns, move || TcpStream::connect_timeout(&addr, timeout))
            .unwrap_or_else(|e| panic!("{e}")),
    }
}

/// Asserts that `addr` cannot be reached from `namespace` (`None`: the host) and that finding
/// out takes about the connect timeout, not longer. Returns the error and the time taken.
fn assert_unreachable(namespace: Option<&str>, addr: SocketAddr) -> (std::io::Error, Duration) {
    let started = Instant::now();
    let res = connect_from(namespace, addr, Duration::from_secs(3));
    let took = started.elapsed();
    let from = namespace.unwrap_or("the host");
    let err = match res {
        Ok(_) => panic!("{addr} is reachable from {from} although its node is cut"),
        Err(e) => e,
    };
    assert!(
        took < Duration::from_secs(5),
        "{from} -> {addr}: took {took:?} to fail ({err})"
    );
    (err, took)
}

/// A TCP echo server listening inside a node's namespace, on the node's address (as an
/// NVMe-oF export would), run by threads of the test process; `stop` closes everything.
struct EchoServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl EchoServer {
    fn start(namespace: &str, ip: Ipv4Addr) -> Self {
        let listener = net::in_namespace(namespace, move || TcpListener::bind((ip, 0)))
            .unwrap()
            .unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut conns = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        s.set_read_timeout(Some(Duration::from_millis(200)))
                            .unwrap();
                        let flag = flag.clone();
                        conns.push(std::thread::spawn(move || {
                            let mut buf = [0u8; 64];
                            while !flag.load(Ordering::Relaxed) {
                                match s.read(&mut buf) {
                                    Ok(0) => break,
                                    Ok(n) => {
                                        if s.write_all(&buf[..n]).is_err() {
                                            break;
                                        }
                                    }
                                    Err(e)
                                        if matches!(
                                            e.kind(),
                                            std::io::ErrorKind::WouldBlock
                                                | std::io::ErrorKind::TimedOut
                                        ) => {}
                                    Err(_) => break,
                                }
                            }
                        }));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(e) => panic!("echo server accept: {e}"),
                }
            }
            for c in conns {
                c.join().unwrap();
            }
        });
        Self { addr, stop, thread }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap();
    }
}

/// One application keep-alive: a byte out, the same byte back within the stream's read timeout.
fn keep_alive(s: &mut TcpStream) -> std::io::Result<()> {
    s.write_all(b"k")?;
    let mut b = [0u8; 1];
    s.read_exact(&mut b)
}

/// A connection from inside `namespace` to `addr` with the kernel's TCP keep-alive on: the
/// namespace's keep-alive settings are made 1 s idle, 1 s between probes, 3 probes.
fn keepalive_connection_from(namespace: &str, addr: SocketAddr) -> TcpStream {
    net::in_namespace(namespace, move || -> std::io::Result<TcpStream> {
        // /proc/sys/net is the calling thread's namespace: only the node's settings change.
        for (name, value) in [
            ("tcp_keepalive_time", "1"),
            ("tcp_keepalive_intvl", "1"),
            ("tcp_keepalive_probes", "3"),
        ] {
            std::fs::write(format!("/proc/sys/net/ipv4/{name}"), value)?;
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let stream = rt.block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.set_keepalive(true)?;
            tokio::time::timeout(Duration::from_secs(5), socket.connect(addr))
                .await
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
        })?;
        let stream = stream.into_std()?;
        stream.set_nonblocking(false)?;
        Ok(stream)
    })
    .unwrap()
    .unwrap()
}

fn status_json(t: &TestLab) -> Vec<serde_json::Value> {
    let v: serde_json::Value =
        serde_json::from_str(&lab_ok(&["status", "--dir", t.dir_arg(), "--json"])).unwrap();
    v.as_array().unwrap().clone()
}

fn links_of(t: &TestLab) -> Vec<String> {
    status_json(t)
        .iter()
        .map(|r| r["link"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn cut_partitions_a_node_and_restore_brings_it_back() {
    require_environment();
    let t = TestLab::new();
    lab_ok(&[
        "up",
        "--nodes",
        "3",
        "--dir",
        t.dir_arg(),
        "--disk-size-mib",
        "16",
        "--fragmented-nodes",
        "none",
    ]);
    let lab = t.state();
    let (n1, n2, n3) = (&lab.nodes[0], &lab.nodes[1], &lab.nodes[2]);
    let ssh2 = SocketAddr::from((n2.address, 22));
    let ssh3 = SocketAddr::from((n3.address, 22));
    assert_eq!(links_of(&t), ["up", "up", "up"]);
    let root_keepalive = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_keepalive_time").unwrap();

    // Established before the cut: from the host, an application keep-alive every second
    // (as SPDK's NVMe-oF keep-alive); from node-1, the kernel's TCP keep-alive (1 s).
    let echo = EchoServer::start(&n2.namespace, n2.address);
    let mut app = connect_from(None, echo.addr, Duration::from_secs(5)).unwrap();
    app.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    keep_alive(&mut app).unwrap();
    let mut tcp_ka = keepalive_connection_from(&n1.namespace, echo.addr);
    tcp_ka.write_all(b"k").unwrap();
    let mut b = [0u8; 1];
    tcp_ka.read_exact(&mut b).unwrap();
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/tcp_keepalive_time").unwrap(),
        root_keepalive,
        "the host's keep-alive setting must not change"
    );

    // Cut node-2.
    let cut_at = Instant::now();
    let out = lab_ok(&["cut", "node-2", "--dir", t.dir_arg()]);
    let cut_took = cut_at.elapsed();
    assert!(
        out.contains("node-2 cut") && out.contains(&n2.veth_host),
        "{out}"
    );

    // The kernel keep-alive of node-1's connection fails it, measured from the cut.
    tcp_ka
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let tcp_ka_waiter = std::thread::spawn(move || {
        let mut b = [0u8; 1];
        let res = tcp_ka.read(&mut b);
        (res, cut_at.elapsed())
    });
    // The application keep-alive from the host misses its answer.
    let app_missed = loop {
        let tick = Instant::now();
        if let Err(e) = keep_alive(&mut app) {
            break (e, cut_at.elapsed());
        }
        assert!(
            cut_at.elapsed() < Duration::from_secs(10),
            "keep-alives to cut node-2 are still answered"
        );
        std::thread::sleep(Duration::from_secs(1).saturating_sub(tick.elapsed()));
    };
    let (tcp_ka_res, tcp_ka_after) = tcp_ka_waiter.join().unwrap();
    let tcp_ka_err = tcp_ka_res.expect_err("node-1's connection to cut node-2 kept working");
    assert_eq!(
        tcp_ka_err.raw_os_error(),
        Some(nix::errno::Errno::ETIMEDOUT as i32),
        "{tcp_ka_err}"
    );
    assert!(tcp_ka_after < Duration::from_secs(15), "{tcp_ka_after:?}");

    // New connections fail, from the host and from both other nodes, to sshd and to the
    // node's data address; everything else still works.
    let (host_err, host_took) = assert_unreachable(None, ssh2);
    assert_unreachable(None, echo.addr);
    let (n1_err, n1_took) = assert_unreachable(Some(&n1.namespace), ssh2);
    assert_unreachable(Some(&n3.namespace), echo.addr);
    assert!(probe::ssh_banner(ssh2, Duration::from_secs(2)).is_err());
    connect_from(Some(&n1.namespace), ssh3, Duration::from_secs(3))
        .expect("node-1 still reaches node-3");
    connect_from(None, ssh3, Duration::from_secs(3)).expect("the host still reaches node-3");
    eprintln!(
        "cut took {cut_took:?}; application keep-alive (1 s) missed after {:?} ({}); \
         TCP keep-alive (1 s idle, 1 s interval, 3 probes) failed after {tcp_ka_after:?} ({tcp_ka_err}); \
         new connect from the host failed after {host_took:?} ({host_err}), from node-1 after {n1_took:?} ({n1_err})",
        app_missed.1, app_missed.0
    );
    drop(app);

    // node-2 keeps running: its processes, its executor answering on its socket.
    let state = t.state();
    assert!(state.nodes[1].cut, "lab.json records the cut");
    assert!(!state.nodes[0].cut && !state.nodes[2].cut);
    for rec in [&state.nodes[1].executor, &state.nodes[1].sshd] {
        let rec = rec.as_ref().unwrap();
        assert!(proc::runs(rec.pid, &rec.argv), "{:?} died", rec.argv);
    }
    assert_eq!(state.nodes[1].executor, n2.executor);
    let rows = status_json(&t);
    assert_eq!(
        rows.iter().map(|r| r["link"].clone()).collect::<Vec<_>>(),
        ["up", "cut", "up"]
    );
    assert_eq!(rows[1]["link_cut_recorded"], true);
    assert_eq!(rows[1]["ssh_up"], false);
    assert_eq!(rows[1]["executor_up"], true, "{:?}", rows[1]);
    assert_eq!(rows[0]["ssh_up"], true);
    let table = lab_ok(&["status", "--dir", t.dir_arg()]);
    assert!(table.contains("node-2: link: cut"), "{table}");

    // Again: nothing to do. Unknown nodes: a clear error naming the node; nothing changes.
    let out = lab_ok(&["cut", "node-2", "--dir", t.dir_arg()]);
    assert!(out.contains("node-2 was already cut"), "{out}");
    let json_before = std::fs::read(LabPaths::new(t.path()).lab_json()).unwrap();
    for cmd in ["cut", "restore"] {
        let out = lab_cmd(&[cmd, "node-9", "--dir", t.dir_arg()]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("no node \"node-9\"") && err.contains("node-1, node-2, node-3"),
            "{err}"
        );
    }
    assert_eq!(
        std::fs::read(LabPaths::new(t.path()).lab_json()).unwrap(),
        json_before
    );
    assert_eq!(links_of(&t), ["up", "cut", "up"]);

    // Restore: SSH and TCP work again, from the host and from node-1.
    let out = lab_ok(&["restore", "node-2", "--dir", t.dir_arg()]);
    assert!(
        out.contains("node-2 restored") && out.contains("answers"),
        "{out}"
    );
    let login = ssh(&t, &n2.address.to_string(), &["true"]);
    assert!(
        login.status.success(),
        "ssh to restored node-2: {}",
        String::from_utf8_lossy(&login.stderr)
    );
    connect_from(Some(&n1.namespace), ssh2, Duration::from_secs(5))
        .expect("node-1 reaches restored node-2");
    let mut again = connect_from(None, echo.addr, Duration::from_secs(5)).unwrap();
    again
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    keep_alive(&mut again).unwrap();
    drop(again);
    echo.stop();
    assert!(!t.state().nodes[1].cut);
    assert_eq!(links_of(&t), ["up", "up", "up"]);
    let out = lab_ok(&["restore", "node-2", "--dir", t.dir_arg()]);
    assert!(out.contains("node-2 was not cut"), "{out}");

    // up on a lab with a cut node restores it and says so.
    lab_ok(&["cut", "2", "--dir", t.dir_arg()]);
    let out = lab_ok(&["up", "--dir", t.dir_arg()]);
    assert!(
        out.contains("note: node-2's link was cut; up restored it"),
        "{out}"
    );
    assert_eq!(links_of(&t), ["up", "up", "up"]);
    assert!(!t.state().nodes[1].cut);
    assert!(probe::ssh_banner(ssh2, Duration::from_secs(5)).is_ok());

    // A cut node reboots and stays cut.
    lab_ok(&["cut", "node-2", "--dir", t.dir_arg()]);
    lab_ok(&["reboot", "node-2", "--dir", t.dir_arg()]);
    let rebooted = t.state();
    assert!(rebooted.nodes[1].cut);
    let exec = rebooted.nodes[1].executor.as_ref().unwrap();
    assert_ne!(Some(exec), n2.executor.as_ref());
    assert!(proc::runs(exec.pid, &exec.argv));
    assert_eq!(links_of(&t), ["up", "cut", "up"]);
    assert_unreachable(None, ssh2);

    // down with a node cut still removes everything, and forgets the cut.
    let pids = recorded_pids(&rebooted);
    let canonical = std::fs::canonicalize(t.path()).unwrap();
    lab_ok(&["down", "--dir", t.dir_arg()]);
    assert_nothing_left(&canonical, &LabId::from_string(rebooted.id.clone()), &pids);
    assert!(t.state().nodes.iter().all(|n| !n.cut));
}
