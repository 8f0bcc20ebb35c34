//! Test fixtures shared by the transport tests: a fake executor on a Unix socket, an
//! in-process SSH server (russh) that forwards `direct-streamlocal` channels, and key
//! helpers. Everything listens on 127.0.0.1 or in a temp dir and stops when dropped.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use client::v1;
use client::v1::executor_server::{Executor, ExecutorServer};
use russh::keys::ssh_key::rand_core::OsRng;
use russh::keys::ssh_key::{LineEnding, PrivateKey, PublicKey};
use russh::keys::{Algorithm, EcdsaCurve};
use russh::server::{Auth, Msg, Session};
use russh::{Channel, server};
use tokio::net::{TcpListener, UnixListener, UnixStream};
use tokio::task::JoinHandle;
use tonic::{Request, Response, Status};

/// The host name the fake executor reports.
pub const FAKE_HOSTNAME: &str = "fake-host";

/// An executor with canned answers.
#[derive(Debug, Clone, Default)]
pub struct FakeExecutor;

#[tonic::async_trait]
impl Executor for FakeExecutor {
    async fn get_host_facts(
        &self,
        _: Request<v1::GetHostFactsRequest>,
    ) -> Result<Response<v1::HostFacts>, Status> {
        Ok(Response::new(v1::HostFacts {
            node: "fake".into(),
            hostname: FAKE_HOSTNAME.into(),
            simulated: true,
            ..Default::default()
        }))
    }
    async fn get_node_status(
        &self,
        _: Request<v1::GetNodeStatusRequest>,
    ) -> Result<Response<v1::NodeStatus>, Status> {
        Ok(Response::new(v1::NodeStatus {
            node: "fake".into(),
            ..Default::default()
        }))
    }
    async fn observe(
        &self,
        _: Request<v1::ObserveRequest>,
    ) -> Result<Response<v1::Observation>, Status> {
        Ok(Response::new(v1::Observation::default()))
    }
    async fn list_records(
        &self,
        _: Request<v1::ListRecordsRequest>,
    ) -> Result<Response<v1::ListRecordsResponse>, Status> {
        Ok(Response::new(v1::ListRecordsResponse::default()))
    }
    async fn put_records(
        &self,
        _: Request<v1::PutRecordsRequest>,
    ) -> Result<Response<v1::PutRecordsResponse>, Status> {
        Ok(Response::new(v1::PutRecordsResponse::default()))
    }
    async fn predict(
        &self,
        _: Request<v1::PredictRequest>,
    ) -> Result<Response<v1::Prediction>, Status> {
        Ok(Response::new(v1::Prediction::default()))
    }
    async fn reconcile(
        &self,
        _: Request<v1::ReconcileRequest>,
    ) -> Result<Response<v1::NodeStatus>, Status> {
        Ok(Response::new(v1::NodeStatus::default()))
    }
}

/// A task aborted when dropped.
pub struct Task(pub JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serves the fake executor on a Unix socket at `path`.
pub fn serve_executor_unix(path: &Path) -> Task {
    let listener = UnixListener::bind(path).unwrap();
    let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
    Task(tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(ExecutorServer::new(FakeExecutor))
            .serve_with_incoming(incoming)
            .await;
    }))
}

/// A fresh Ed25519 key.
pub fn ed25519() -> PrivateKey {
    PrivateKey::random(&mut OsRng, Algorithm::Ed25519).unwrap()
}

/// A fresh ECDSA P-256 key.
pub fn ecdsa() -> PrivateKey {
    PrivateKey::random(
        &mut OsRng,
        Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP256,
        },
    )
    .unwrap()
}

/// Writes `key` as OpenSSH writes private keys; returns the path.
pub fn write_key(dir: &Path, name: &str, key: &PrivateKey) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, key.to_openssh(LineEnding::LF).unwrap().as_bytes()).unwrap();
    path
}

/// A known_hosts line for `127.0.0.1:port` with `key`.
pub fn known_hosts_line(port: u16, key: &PublicKey) -> String {
    format!("[127.0.0.1]:{port} {}\n", key.to_openssh().unwrap())
}

/// A TCP port on 127.0.0.1 with nothing listening (bound, then released).
pub async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// An in-process SSH server on 127.0.0.1: accepts `authorized` keys for any user and
/// forwards `direct-streamlocal@openssh.com` channels to the Unix socket they name.
pub struct SshServer {
    /// Its address.
    pub addr: SocketAddr,
    /// Its host key.
    pub host_key: PrivateKey,
    /// TCP connections accepted so far.
    pub accepted: Arc<AtomicUsize>,
    /// Streamlocal channels forwarded so far.
    pub forwarded: Arc<AtomicUsize>,
    sessions: Arc<std::sync::Mutex<Vec<server::Handle>>>,
    _task: Task,
}

impl SshServer {
    /// Starts a server with a fresh Ed25519 host key.
    pub async fn start(authorized: Vec<PublicKey>) -> Self {
        Self::start_with_host_key(ed25519(), authorized).await
    }

    /// Starts a server with `host_key`.
    pub async fn start_with_host_key(host_key: PrivateKey, authorized: Vec<PublicKey>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config = Arc::new(server::Config {
            keys: vec![host_key.clone()],
            auth_rejection_time: Duration::from_millis(10),
            auth_rejection_time_initial: Some(Duration::ZERO),
            inactivity_timeout: Some(Duration::from_secs(60)),
            ..Default::default()
        });
        let accepted = Arc::new(AtomicUsize::new(0));
        let forwarded = Arc::new(AtomicUsize::new(0));
        let authorized = Arc::new(authorized);
        let sessions = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (acc, fwd, live) = (accepted.clone(), forwarded.clone(), sessions.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                acc.fetch_add(1, Ordering::SeqCst);
                let handler = Forwarder {
                    authorized: authorized.clone(),
                    forwarded: fwd.clone(),
                };
                let config = config.clone();
                let live = live.clone();
                tokio::spawn(async move {
                    if let Ok(session) = server::run_stream(config, tcp, handler).await {
                        live.lock().unwrap().push(session.handle());
                        let _ = session.await;
                    }
                });
            }
        });
        Self {
            addr,
            host_key,
            accepted,
            forwarded,
            sessions,
            _task: Task(task),
        }
    }

    /// Disconnects every SSH session, as a restarted sshd would.
    pub async fn disconnect_all(&self) {
        let sessions: Vec<server::Handle> = self.sessions.lock().unwrap().drain(..).collect();
        for s in sessions {
            let _ = s
                .disconnect(
                    russh::Disconnect::ByApplication,
                    "test restart".into(),
                    String::new(),
                )
                .await;
        }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// This server's known_hosts line.
    pub fn known_hosts_line(&self) -> String {
        known_hosts_line(self.port(), self.host_key.public_key())
    }
}

struct Forwarder {
    authorized: Arc<Vec<PublicKey>>,
    forwarded: Arc<AtomicUsize>,
}

impl server::Handler for Forwarder {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        key: &PublicKey,
    ) -> Result<Auth, Self::Error> {
        Ok(self.decide(key))
    }

    async fn auth_publickey(&mut self, _user: &str, key: &PublicKey) -> Result<Auth, Self::Error> {
        Ok(self.decide(key))
    }

    async fn channel_open_direct_streamlocal(
        &mut self,
        channel: Channel<Msg>,
        socket_path: &str,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        // Like OpenSSH: refuse the channel when nothing listens at the path.
        let Ok(mut unix) = UnixStream::connect(socket_path).await else {
            return Ok(false);
        };
        self.forwarded.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            let mut stream = channel.into_stream();
            let _ = tokio::io::copy_bidirectional(&mut stream, &mut unix).await;
        });
        Ok(true)
    }
}

impl Forwarder {
    fn decide(&self, key: &PublicKey) -> Auth {
        if self
            .authorized
            .iter()
            .any(|k| k.key_data() == key.key_data())
        {
            Auth::Accept
        } else {
            Auth::reject()
        }
    }
}
