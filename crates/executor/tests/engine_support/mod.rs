//! Helpers of the engine and disk tests: the spdk-sim stand-in binary, a simulated node
//! with an engine served in process over gRPC, bounded waits, and teardown by pid.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test helpers panic on failure

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use executor::engine::process::EngineFiles;
use executor::engine::spec::EngineOptions;
use executor::host::sim::{SimHost, SimState};
use executor::node::{Node, NodeOptions};
use executor::server;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use proto::v1 as pb;
use proto::v1::executor_client::ExecutorClient;
use tonic::transport::{Channel, Endpoint};

/// The spdk_tgt stand-in: `$V2ENGINE_SPDK_SIM`, else this package's example
/// `spdk_sim_engine` (built by `cargo test -p v2engine-executor`), else `spdk-sim` in the
/// target directory.
pub fn spdk_sim() -> PathBuf {
    if let Some(p) = std::env::var_os("V2ENGINE_SPDK_SIM") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    let target = exe.parent().and_then(Path::parent).unwrap();
    for p in [
        target.join("examples/spdk_sim_engine"),
        target.join("spdk-sim"),
    ] {
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "no spdk-sim binary under {}: run `cargo test -p v2engine-executor` (builds the \
         spdk_sim_engine example) or `cargo build -p spdk-sim`, or set V2ENGINE_SPDK_SIM",
        target.display()
    );
}

/// An incoming record as the API takes it.
pub fn rec(kind: &str, name: &str, revision: u64, spec: serde_json::Value) -> pb::Record {
    pb::Record {
        kind: kind.into(),
        name: name.into(),
        revision,
        deleted: false,
        spec_json: spec.to_string(),
    }
}

/// A tombstone.
pub fn tombstone(kind: &str, name: &str, revision: u64) -> pb::Record {
    pb::Record {
        kind: kind.into(),
        name: name.into(),
        revision,
        deleted: true,
        spec_json: String::new(),
    }
}

/// The cluster setting.
pub fn setting(revision: u64, enabled: bool, mib: i64) -> pb::Record {
    rec(
        "data_engine_setting",
        "cluster",
        revision,
        serde_json::json!({"enabled": enabled, "hugepage_limit_mib": mib}),
    )
}

/// A block disk of node-1.
pub fn disk(revision: u64, name: &str, path: &str) -> pb::Record {
    rec(
        "block_disk",
        &format!("node-1/{name}"),
        revision,
        serde_json::json!({"node": "node-1", "name": name, "path": path}),
    )
}

/// Polls `f` every 20 ms until it returns `Some`, at most `limit`.
pub async fn until<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// True when `pid` runs (not a zombie).
pub fn alive(pid: u32) -> bool {
    executor::engine::process::start_time(pid).is_some()
}

/// Kills the engine recorded in `state_dir` (teardown after a failed test).
pub struct EngineGuard(pub Option<PathBuf>);

impl Drop for EngineGuard {
    fn drop(&mut self) {
        let Some(dir) = &self.0 else { return };
        let f = EngineFiles::new(dir);
        if let Ok(t) = std::fs::read_to_string(f.pid_file())
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&t)
            && let Some(pid) = v["pid"].as_i64()
        {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
}

/// A simulated node with an engine, served in process.
pub struct TestNode {
    /// First, so it runs before the temp dir (holding the pid file) is removed.
    guard: EngineGuard,
    pub dir: tempfile::TempDir,
    pub state_dir: PathBuf,
    pub spdk_socket: PathBuf,
    pub node: Option<Node>,
    pub client: ExecutorClient<Channel>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// Engine options for tests: short timeouts, the stand-in binary.
pub fn engine_options(program: &Path, socket: &Path) -> EngineOptions {
    let mut o = EngineOptions::new(program, socket);
    o.ready_timeout = Duration::from_secs(15);
    o.stop_timeout = Duration::from_secs(5);
    o.rpc_timeout = Duration::from_secs(30);
    o
}

impl TestNode {
    /// A node in a fresh temp dir running `program` as its engine.
    pub async fn start(program: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let state_file = dir.path().join("sim.json");
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        SimHost::new(&state_file, &root)
            .save(&SimState::new(
                8192,
                false,
                vec![
                    "vfio_pci".into(),
                    "uio_pci_generic".into(),
                    "nvme_tcp".into(),
                ],
            ))
            .unwrap();
        let state_dir = dir.path().join("state");
        let spdk_socket = dir.path().join("run/spdk.sock");
        Self::start_in(dir, state_dir, spdk_socket, program).await
    }

    /// A node over an existing temp dir (a restarted executor).
    pub async fn start_in(
        dir: tempfile::TempDir,
        state_dir: PathBuf,
        spdk_socket: PathBuf,
        program: &Path,
    ) -> Self {
        let host = SimHost::new(dir.path().join("sim.json"), dir.path().join("root"));
        let node = Node::start(NodeOptions {
            node: "node-1".into(),
            state_dir: state_dir.clone(),
            host: Box::new(host),
            engine: Some(engine_options(program, &spdk_socket)),
            device_root: PathBuf::from("/"),
            volumes: Default::default(),
        })
        .unwrap();
        let socket = dir.path().join("run/executor.sock");
        let listener = server::bind(&socket).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let exec = std::sync::Arc::clone(node.executor());
        let sock = socket.clone();
        let server = tokio::spawn(async move {
            let _ = server::serve(exec, listener, &sock, async {
                let _ = rx.await;
            })
            .await;
        });
        let client = connect(&socket).await;
        Self {
            guard: EngineGuard(Some(state_dir.clone())),
            dir,
            state_dir,
            spdk_socket,
            node: Some(node),
            client,
            stop: Some(tx),
            server: Some(server),
        }
    }

    /// The engine's pid now.
    pub fn engine_pid(&self) -> Option<u32> {
        self.node
            .as_ref()
            .and_then(|n| n.supervisor())
            .and_then(|s| s.snapshot().pid)
    }

    pub async fn put(&mut self, records: Vec<pb::Record>) {
        self.client
            .put_records(pb::PutRecordsRequest { records })
            .await
            .unwrap();
    }

    pub async fn reconcile(&mut self) -> Result<pb::NodeStatus, tonic::Status> {
        self.client
            .reconcile(pb::ReconcileRequest {})
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn status(&mut self) -> pb::NodeStatus {
        self.client
            .get_node_status(pb::GetNodeStatusRequest {})
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn predict(&mut self, overlay: Vec<pb::Record>) -> pb::Prediction {
        self.client
            .predict(pb::PredictRequest { overlay })
            .await
            .unwrap()
            .into_inner()
    }

    /// Stops serving; stops the engine when `stop_engine`. Returns the temp dir for a
    /// restart.
    pub async fn shutdown(mut self, stop_engine: bool) -> tempfile::TempDir {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(s) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), s).await;
        }
        if let Some(n) = self.node.take() {
            n.shutdown(stop_engine).await.unwrap();
        }
        if !stop_engine {
            self.guard.0 = None; // left running on purpose: the caller adopts or kills it
        }
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }
}

/// A client of the executor at `socket`.
pub async fn connect(path: &Path) -> ExecutorClient<Channel> {
    try_connect(path).await.unwrap()
}

/// A client of the executor at `socket`, or the error when nobody listens yet (the
/// socket file appears at bind(2), a moment before listen(2) accepts connections).
pub async fn try_connect(path: &Path) -> Result<ExecutorClient<Channel>, tonic::transport::Error> {
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
