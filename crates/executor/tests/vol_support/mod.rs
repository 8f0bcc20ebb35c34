//! A simulated node for volume tests: SimHost, an spdk-sim engine, a data address and a
//! port range of its own, served in process over gRPC; a disk `d1` made directly in SPDK.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test helpers panic on failure

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::engine_support::{EngineGuard, connect, engine_options, setting};
use executor::host::HostOs;
use executor::host::sim::{SimHost, SimState};
use executor::node::{Node, NodeOptions};
use executor::server;
use executor::volumes::VolumeOptions;
use proto::v1 as pb;
use proto::v1::executor_client::ExecutorClient;
use spdk_rpc::types::bdev::BdevAioCreate;
use spdk_rpc::types::lvol::BdevLvolCreateLvstore;
use spdk_rpc::{SpdkApi, SpdkClient};
use tonic::transport::Channel;

/// The fleet's host NQN in these tests.
pub const HOST_NQN: &str = "nqn.2014-08.org.nvmexpress:uuid:6f1e0c1a-5b7e-4c55-9d61-0d8f8a1f3b27";

/// `n` consecutive TCP ports free on 127.0.0.1 right now.
pub fn free_range(n: u16) -> RangeInclusive<u16> {
    for _ in 0..200 {
        let base = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if base > u16::MAX - n {
            continue;
        }
        let held: Vec<_> = (base..base + n)
            .map(|p| TcpListener::bind(("127.0.0.1", p)))
            .collect();
        if held.iter().all(Result::is_ok) {
            return base..=base + n - 1;
        }
    }
    panic!("no {n} consecutive free ports on 127.0.0.1");
}

/// How a [`VolNode`] runs: extra engine arguments and how many export ports it has.
#[derive(Debug, Clone)]
pub struct Setup {
    pub engine_args: Vec<String>,
    pub ports: u16,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            engine_args: vec![],
            ports: 4,
        }
    }
}

/// A node with an engine (spdk-sim), exporting on 127.0.0.1.
pub struct VolNode {
    pub name: String,
    /// First: kills the engine before the temp dir goes.
    _guard: EngineGuard,
    pub dir: tempfile::TempDir,
    pub spdk_socket: PathBuf,
    pub sim_state: PathBuf,
    /// The ports its exports may use.
    pub ports: RangeInclusive<u16>,
    pub node: Option<Node>,
    pub client: ExecutorClient<Channel>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl VolNode {
    /// Starts node `name` with the engine `program`, on a simulated host with `sim` as its
    /// state (host root: `<dir>/root`).
    pub async fn start(program: &Path, name: &str, sim: SimState) -> Self {
        Self::start_with(program, name, sim, Setup::default()).await
    }

    /// [`VolNode::start`] with `setup`.
    pub async fn start_with(program: &Path, name: &str, sim: SimState, setup: Setup) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        let sim_state = dir.path().join("sim.json");
        let host = SimHost::new(&sim_state, &root);
        host.save(&sim).unwrap();
        Self::start_on(
            program,
            name,
            dir,
            Box::new(host),
            vec![setting(1, true, 256)],
            setup,
        )
        .await
    }

    /// Starts node `name` on `host`, with its state and sockets in `dir`, after storing
    /// `records` and reconciling (the engine must then run).
    pub async fn start_on(
        program: &Path,
        name: &str,
        dir: tempfile::TempDir,
        host: Box<dyn HostOs>,
        records: Vec<pb::Record>,
        setup: Setup,
    ) -> Self {
        let sim_state = dir.path().join("sim.json");
        let state_dir = dir.path().join("state");
        let spdk_socket = dir.path().join("run/spdk.sock");
        let mut engine = engine_options(program, &spdk_socket);
        engine.args = setup.engine_args;
        let ports = free_range(setup.ports);
        let node = Node::start(NodeOptions {
            node: name.into(),
            state_dir: state_dir.clone(),
            host,
            engine: Some(engine),
            device_root: PathBuf::from("/"),
            volumes: VolumeOptions {
                data_address: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                ports: ports.clone(),
            },
        })
        .unwrap();
        let socket = dir.path().join("run/executor.sock");
        let listener = server::bind(&socket).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let exec = Arc::clone(node.executor());
        let sock = socket.clone();
        let server = tokio::spawn(async move {
            let _ = server::serve(exec, listener, &sock, async {
                let _ = rx.await;
            })
            .await;
        });
        let mut client = connect(&socket).await;
        client
            .put_records(pb::PutRecordsRequest { records })
            .await
            .unwrap();
        let st = client
            .reconcile(pb::ReconcileRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(st.engine_state, "running", "{st:?}");
        Self {
            name: name.into(),
            _guard: EngineGuard(Some(state_dir)),
            dir,
            spdk_socket,
            sim_state,
            ports,
            node: Some(node),
            client,
            stop: Some(tx),
            server: Some(server),
        }
    }

    /// A SimState with `nvme_tcp` loadable.
    pub fn sim() -> SimState {
        SimState::new(
            8192,
            false,
            vec![
                "vfio_pci".into(),
                "uio_pci_generic".into(),
                "nvme_tcp".into(),
            ],
        )
    }

    /// A client of this node's engine.
    pub fn spdk(&self) -> SpdkClient {
        SpdkClient::new(&self.spdk_socket)
    }

    /// A disk `d1`: an aio bdev on a sparse file with lvstore `v2e-lvs-d1`.
    pub async fn disk(&self) {
        self.disk_of(256).await;
    }

    /// [`VolNode::disk`] of `mib` MiB.
    pub async fn disk_of(&self, mib: u64) {
        let file = self.dir.path().join("d1.img");
        std::fs::File::create(&file)
            .unwrap()
            .set_len(mib << 20)
            .unwrap();
        let api = self.spdk();
        api.bdev_aio_create(BdevAioCreate::new("v2e-d1", file.display().to_string()))
            .await
            .unwrap();
        api.bdev_lvol_create_lvstore(BdevLvolCreateLvstore::new("v2e-d1", "v2e-lvs-d1"))
            .await
            .unwrap();
    }

    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(s) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), s).await;
        }
        if let Some(n) = self.node.take() {
            n.shutdown(true).await.unwrap();
        }
    }
}

/// EnsureReplica of `replica` on disk d1 (64 MiB), exported to [`HOST_NQN`] when `export`.
pub fn replica_req(replica: &str, export: bool) -> pb::EnsureReplicaRequest {
    pb::EnsureReplicaRequest {
        replica: replica.into(),
        disk: "d1".into(),
        size_mib: 64,
        export,
        host_nqn: if export {
            HOST_NQN.into()
        } else {
            String::new()
        },
        ..Default::default()
    }
}

/// The local member `replica` (disk d1).
pub fn local(replica: &str) -> pb::EngineReplica {
    pb::EngineReplica {
        replica: replica.into(),
        disk: "d1".into(),
        ..Default::default()
    }
}

/// The remote member exported as `r` says.
pub fn remote(r: &pb::ReplicaResult) -> pb::EngineReplica {
    let rep = r.replica.as_ref().unwrap();
    let e = rep.export.as_ref().expect("exported");
    pb::EngineReplica {
        replica: rep.replica.clone(),
        address: e.address.clone(),
        port: e.port,
        ..Default::default()
    }
}

/// EnsureEngine of `volume` over `members`.
pub fn engine_req(volume: &str, members: Vec<pb::EngineReplica>) -> pb::EnsureEngineRequest {
    pb::EnsureEngineRequest {
        volume: volume.into(),
        host_nqn: HOST_NQN.into(),
        replicas: members,
        ..Default::default()
    }
}
