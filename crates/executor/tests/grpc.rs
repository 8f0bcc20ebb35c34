//! The gRPC API over a Unix socket: in process with SimHost, and the `serve` binary
//! (readiness, SIGTERM, stale and busy sockets).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{SimNode, rec, setting};
use executor::server;
use proto::v1 as pb;
use proto::v1::executor_client::ExecutorClient;
use serde_json::json;
use tonic::transport::{Channel, Endpoint};

const BIN: &str = env!("CARGO_BIN_EXE_v2engine-executor");

async fn connect(path: &Path) -> Result<ExecutorClient<Channel>, tonic::transport::Error> {
    let path = path.to_path_buf();
    let ch = Endpoint::from_static("http://executor.local")
        .connect_with_connector(tower::service_fn(move |_: http::Uri| {
            let p = path.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(p).await?,
                ))
            }
        }))
        .await?;
    Ok(ExecutorClient::new(ch))
}

fn pb_rec(r: executor::records::IncomingRecord) -> pb::Record {
    pb::Record {
        kind: r.kind,
        name: r.name,
        revision: r.revision,
        deleted: r.deleted,
        spec_json: r.spec_json,
    }
}

#[tokio::test]
async fn every_rpc_in_process_over_a_0600_socket() {
    let node = SimNode::new(8192, false);
    let exec = Arc::new(node.executor("node-1"));
    let st = exec.reconcile().unwrap();
    assert_eq!(st.engine_state, "disabled");
    let socket = node.dir.path().join("run/v2engine/executor.sock");
    let listener = server::bind(&socket).unwrap();
    let meta = std::fs::metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let dir_mode = std::fs::metadata(socket.parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700);

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let sock = socket.clone();
    let server = tokio::spawn(async move {
        server::serve(exec, listener, &sock, async {
            let _ = stop_rx.await;
        })
        .await
    });
    let mut c = connect(&socket).await.unwrap();

    // PutRecords: enable with 2048 MiB; the same again is an idempotent no-op.
    let put = pb::PutRecordsRequest {
        records: vec![pb_rec(setting(1, true, 2048))],
    };
    let out = c.put_records(put.clone()).await.unwrap().into_inner();
    assert_eq!(out.results.len(), 1);
    assert!(out.results[0].applied);
    assert_eq!(out.results[0].kind, "data_engine_setting");
    let out = c.put_records(put).await.unwrap().into_inner();
    assert_eq!(
        (out.results[0].applied, out.results[0].stored_revision),
        (false, 1)
    );

    // A bad batch is INVALID_ARGUMENT naming record and attribute.
    let bad = rec(
        "node_v2",
        "node-1",
        1,
        json!({"node": "node-1", "cpu_mask": "0x0"}),
    );
    let err = c
        .put_records(pb::PutRecordsRequest {
            records: vec![pb_rec(bad)],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message()
            .starts_with("record node_v2/node-1: cpu_mask:"),
        "{}",
        err.message()
    );

    // Predict: what reconcile will do, nothing changed yet.
    let before = std::fs::read(&node.state_file).unwrap();
    let p = c
        .predict(pb::PredictRequest { overlay: vec![] })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(std::fs::read(&node.state_file).unwrap(), before);
    assert_eq!(p.engine_state, "ready");
    assert!(p.changes && !p.reboot_required && p.errors.is_empty());
    assert_eq!(
        (
            p.hugepages_target,
            p.hugepages_current,
            p.hugepages_expected
        ),
        (1024, 0, 1024)
    );
    assert_eq!(p.boot_persistence, "systemd");
    assert_eq!(
        p.boot_files,
        [
            "/etc/modules-load.d/v2engine.conf",
            "/etc/sysctl.d/90-v2engine-hugepages.conf"
        ]
    );
    assert_eq!(p.config.as_ref().unwrap().hugepages, 1024);
    assert!(
        p.modules
            .iter()
            .all(|m| m.state == pb::ModuleState::Loadable as i32)
    );
    // With an overlay that opts this node out: nothing to change.
    let opt_out = rec(
        "node_v2",
        "node-1",
        1,
        json!({"node": "node-1", "enabled": false}),
    );
    let p = c
        .predict(pb::PredictRequest {
            overlay: vec![pb_rec(opt_out)],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.engine_state, "disabled");
    assert!(!p.changes);

    // Reconcile, then the status says the same.
    let st = c
        .reconcile(pb::ReconcileRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(st.engine_state, "ready");
    assert_eq!((st.hugepages_target, st.hugepages_allocated), (1024, 1024));
    assert_eq!(st.setting_revision, 1);
    assert_eq!(st.modules_loaded, common::default_modules());
    let got = c
        .get_node_status(pb::GetNodeStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, st);

    // Facts and Observe.
    let f = c
        .get_host_facts(pb::GetHostFactsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(f.simulated);
    assert_eq!(f.node, "node-1");
    assert_eq!(f.memory_total_bytes, 8192 << 20);
    let hp = f.hugepages.unwrap();
    assert_eq!((hp.page_size_bytes, hp.total), (2 << 20, 1024));
    assert!(
        f.modules
            .iter()
            .all(|m| m.state == pb::ModuleState::Loaded as i32)
    );
    assert_eq!(f.tools[0].name, "modprobe");
    assert!(f.tools[0].present);
    assert_eq!(f.boot_persistence_auto, "systemd");
    let o = c.observe(pb::ObserveRequest {}).await.unwrap().into_inner();
    assert_eq!(o.status.unwrap(), st);
    assert_eq!(o.facts.unwrap().hugepages.unwrap().total, 1024);
    assert_eq!(o.records.len(), 1);
    assert_eq!(o.records[0].kind, "data_engine_setting");

    // ListRecords by kind.
    let l = c
        .list_records(pb::ListRecordsRequest {
            kind: "volume".into(),
        })
        .await
        .unwrap();
    assert!(l.into_inner().records.is_empty());
    let l = c
        .list_records(pb::ListRecordsRequest {
            kind: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(l.into_inner().records.len(), 1);
    let err = c
        .list_records(pb::ListRecordsRequest {
            kind: "disk".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);

    drop(c);
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(!socket.exists(), "the socket is removed on shutdown");
}

#[tokio::test]
async fn a_failed_reconcile_is_failed_precondition_and_shows_in_the_status() {
    let node = SimNode::new(8192, false);
    let mut s = node.state();
    s.available_modules.retain(|m| m != "nvme_tcp");
    node.host().save(&s).unwrap();
    let exec = Arc::new(node.executor("node-1"));
    exec.put_records(&[setting(1, true, 256)]).unwrap();
    let socket = node.dir.path().join("x.sock");
    let listener = server::bind(&socket).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let sock = socket.clone();
    let server = tokio::spawn(async move {
        server::serve(exec, listener, &sock, async {
            let _ = stop_rx.await;
        })
        .await
    });
    let mut c = connect(&socket).await.unwrap();
    let err = c.reconcile(pb::ReconcileRequest {}).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    assert_eq!(
        err.message(),
        "node node-1: kernel module nvme_tcp is missing: not loaded, not built in and not in modules.dep"
    );
    let st = c
        .get_node_status(pb::GetNodeStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(st.engine_state, "failed");
    assert_eq!(st.last_error, err.message());
    let p = c
        .predict(pb::PredictRequest { overlay: vec![] })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.errors, [err.message()]);
    drop(c);
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// A spawned `serve`; killed on drop if a test fails before stopping it.
struct Daemon {
    child: Option<Child>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn_serve(node: &SimNode, socket: &Path) -> Daemon {
    let child = Command::new(BIN)
        .args(["serve", "--node", "node-1", "--socket"])
        .arg(socket)
        .arg("--state-dir")
        .arg(&node.state_dir)
        .arg("--host-root")
        .arg(&node.root)
        .arg("--sim-host")
        .arg(&node.state_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Daemon { child: Some(child) }
}

/// Polls until the daemon answers GetNodeStatus with a state other than `preparing`
/// (the start-up reconcile runs beside serving; bounded: 20 s).
async fn wait_reconciled(socket: &Path) -> pb::NodeStatus {
    for _ in 0..2000 {
        if let Ok(mut c) = connect(socket).await
            && let Ok(st) = c.get_node_status(pb::GetNodeStatusRequest {}).await
            && st.get_ref().engine_state != "preparing"
        {
            return st.into_inner();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "the executor at {} never finished its start-up reconcile",
        socket.display()
    );
}

/// SIGTERM, then waits (bounded: 20 s, the server's grace is 5 s) for the exit.
async fn sigterm_and_wait(mut d: Daemon) -> std::process::Output {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let mut child = d.child.take().unwrap();
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
    kill(pid, Signal::SIGTERM).unwrap();
    for _ in 0..2000 {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    panic!(
        "the executor ignored SIGTERM: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_serve_binary_reconciles_at_start_and_exits_cleanly_on_sigterm() {
    // Fragmented, so the host waits for a reboot and no engine is started.
    let node = SimNode::new(8192, true);
    // Records stored before start are applied by the start-up reconcile.
    node.executor("node-1")
        .put_records(&[setting(1, true, 256)])
        .unwrap();
    let socket: PathBuf = node.dir.path().join("run/executor.sock");
    // A stale socket (from a killed executor) is replaced.
    std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());

    let d = spawn_serve(&node, &socket);
    let st = wait_reconciled(&socket).await;
    assert_eq!(st.engine_state, "waiting_for_reboot");
    assert_eq!(
        st.reboot_reasons,
        ["allocated 3 of 128 hugepages; the boot configuration will allocate them at next boot"]
    );
    assert_eq!(node.state().nr_hugepages, 3);
    assert_eq!(st.boot_files.len(), 2);
    assert!(
        node.root
            .join("etc/sysctl.d/90-v2engine-hugepages.conf")
            .exists()
    );
    assert_eq!(
        std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // A second executor refuses both the busy socket and the locked sim state.
    let other = SimNode::new(1024, false);
    let out = Command::new(BIN)
        .args(["serve", "--node", "node-2", "--socket"])
        .arg(&socket)
        .arg("--state-dir")
        .arg(&other.state_dir)
        .arg("--sim-host")
        .arg(&other.state_file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("another executor is answering"));
    let out = Command::new(BIN)
        .args(["sim-reboot", "--sim-host"])
        .arg(&node.state_file)
        .arg("--host-root")
        .arg(&node.root)
        .output()
        .unwrap();
    assert!(!out.status.success(), "sim-reboot refuses a running node");

    let out = sigterm_and_wait(d).await;
    assert!(
        out.status.success(),
        "{:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "nothing on stdout");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SIGTERM"), "{stderr}");
    assert!(
        !stderr.contains("stopping anyway"),
        "no connection was left open: {stderr}"
    );
    assert!(!socket.exists(), "the socket is removed");
}
