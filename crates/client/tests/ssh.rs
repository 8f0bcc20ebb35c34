//! The `ssh://` transport against an in-process russh server forwarding to a fake
//! executor on a Unix socket (tier 2: no root, no sshd).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use client::ssh::{SshTarget, SshTunnel};
use client::{
    ClientError, Endpoint, ExecutorClient, Fleet, SshError, TransportError, TransportOptions,
};
use common::*;
use russh::keys::ssh_key::rand_core::OsRng;
use tempfile::TempDir;

/// Bound on every test: nothing here should take more than a few seconds.
const LIMIT: Duration = Duration::from_secs(30);

/// A running server with an executor behind it and the client files to reach it.
struct Setup {
    dir: TempDir,
    server: SshServer,
    socket: PathBuf,
    key_file: PathBuf,
    known_hosts: PathBuf,
    _executor: Task,
}

impl Setup {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("executor.sock");
        let executor = serve_executor_unix(&socket);
        let user_key = ed25519();
        let key_file = write_key(dir.path(), "id_ed25519", &user_key);
        let server = SshServer::start(vec![user_key.public_key().clone()]).await;
        let known_hosts = dir.path().join("known_hosts");
        std::fs::write(&known_hosts, server.known_hosts_line()).unwrap();
        Self {
            dir,
            server,
            socket,
            key_file,
            known_hosts,
            _executor: executor,
        }
    }

    fn endpoint(&self) -> Endpoint {
        format!(
            "ssh://tester@127.0.0.1:{}{}",
            self.server.port(),
            self.socket.display()
        )
        .parse()
        .unwrap()
    }

    fn options(&self) -> TransportOptions {
        TransportOptions {
            ssh_private_key_file: Some(self.key_file.clone()),
            ssh_known_hosts_file: Some(self.known_hosts.clone()),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            ..Default::default()
        }
    }

    async fn connect(&self, opts: &TransportOptions) -> Result<ExecutorClient, ClientError> {
        tokio::time::timeout(
            LIMIT,
            ExecutorClient::connect_with("node-1", &self.endpoint(), opts),
        )
        .await
        .expect("connect did not finish in time")
    }
}

fn ssh_err(e: ClientError) -> SshError {
    match e {
        ClientError::Connect {
            source: TransportError::Ssh(e),
            ..
        } => *e,
        other => panic!("expected an SSH error, got: {other}"),
    }
}

async fn connect_err(setup: &Setup, opts: &TransportOptions) -> (SshError, String) {
    let e = setup.connect(opts).await.unwrap_err();
    let msg = e.to_string();
    eprintln!("{msg}");
    assert!(
        msg.contains("node-1"),
        "error does not name the node: {msg}"
    );
    (ssh_err(e), msg)
}

#[tokio::test]
async fn calls_go_through_the_tunnel() {
    let s = Setup::new().await;
    let mut c = s.connect(&s.options()).await.unwrap();
    let facts = c.host_facts().await.unwrap();
    assert_eq!(facts.hostname, FAKE_HOSTNAME);
    // Several calls share the one channel and the one SSH connection.
    c.node_status().await.unwrap();
    c.list_records(None).await.unwrap();
    assert_eq!(
        s.server.accepted.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    assert_eq!(
        s.server.forwarded.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
}

#[tokio::test]
async fn a_fleet_reaches_nodes_over_ssh() {
    let s = Setup::new().await;
    let fleet = Fleet::new(
        BTreeMap::from([("node-1".to_string(), s.endpoint())]),
        s.options(),
    );
    let obs = tokio::time::timeout(LIMIT, fleet.observe_all())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(obs.keys().collect::<Vec<_>>(), ["node-1"]);
}

#[tokio::test]
async fn new_channels_reuse_the_ssh_connection() {
    let s = Setup::new().await;
    let tunnel = SshTunnel::new(
        SshTarget {
            user: "tester".into(),
            host: "127.0.0.1".into(),
            port: s.server.port(),
            socket: s.socket.clone(),
        },
        s.options().ssh_auth(),
    );
    let a = tunnel.open_stream().await.unwrap();
    let b = tunnel.open_stream().await.unwrap();
    drop((a, b));
    let _c = tunnel.open_stream().await.unwrap();
    assert_eq!(tunnel.connections(), 1);
    assert_eq!(
        s.server.accepted.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    assert_eq!(
        s.server.forwarded.load(std::sync::atomic::Ordering::SeqCst),
        3
    );
}

#[tokio::test]
async fn the_channel_reconnects_over_a_new_ssh_connection_after_a_drop() {
    let s = Setup::new().await;
    let mut c = s.connect(&s.options()).await.unwrap();
    c.host_facts().await.unwrap();
    s.server.disconnect_all().await;
    // The call in flight when the connection dies may fail; tonic then reconnects through
    // the tunnel, which opens a new SSH connection.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match c.host_facts().await {
            Ok(f) => {
                assert_eq!(f.hostname, FAKE_HOSTNAME);
                break;
            }
            Err(e) => {
                assert!(std::time::Instant::now() < deadline, "no reconnect: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    assert_eq!(
        s.server.accepted.load(std::sync::atomic::Ordering::SeqCst),
        2
    );
}

#[tokio::test]
async fn hashed_known_hosts_entries_are_accepted() {
    let s = Setup::new().await;
    let out = std::process::Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&s.known_hosts)
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        // Hashing is also covered by the pure known_hosts tests with a line ssh-keygen wrote.
        _ => return,
    }
    let text = std::fs::read_to_string(&s.known_hosts).unwrap();
    assert!(text.starts_with("|1|"), "{text}");
    let mut c = s.connect(&s.options()).await.unwrap();
    c.host_facts().await.unwrap();
}

#[tokio::test]
async fn a_changed_host_key_is_refused() {
    let s = Setup::new().await;
    std::fs::write(
        &s.known_hosts,
        known_hosts_line(s.server.port(), ed25519().public_key()),
    )
    .unwrap();
    let (e, msg) = connect_err(&s, &s.options()).await;
    assert!(matches!(e, SshError::HostKeyChanged { .. }), "{msg}");
    assert!(msg.contains("MISMATCH"), "{msg}");
    assert!(
        msg.contains(&format!("[127.0.0.1]:{}", s.server.port())),
        "{msg}"
    );
    assert!(msg.contains(&s.known_hosts.display().to_string()), "{msg}");
    assert_eq!(
        s.server.forwarded.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
}

#[tokio::test]
async fn an_unknown_host_is_refused() {
    let s = Setup::new().await;
    // The right key, but recorded for another port: that is another host.
    std::fs::write(
        &s.known_hosts,
        known_hosts_line(s.server.port() + 1, s.server.host_key.public_key()),
    )
    .unwrap();
    let (e, msg) = connect_err(&s, &s.options()).await;
    assert!(matches!(e, SshError::HostKeyUnknown { .. }), "{msg}");
    assert!(msg.contains(&s.known_hosts.display().to_string()), "{msg}");
    assert!(msg.contains("SHA256:"), "{msg}");
}

#[tokio::test]
async fn a_host_known_only_by_another_key_type_is_refused() {
    let s = Setup::new().await;
    std::fs::write(
        &s.known_hosts,
        known_hosts_line(s.server.port(), ecdsa().public_key()),
    )
    .unwrap();
    let (e, msg) = connect_err(&s, &s.options()).await;
    assert!(matches!(e, SshError::HostKeyUnknown { .. }), "{msg}");
    assert!(msg.contains("ecdsa-sha2-nistp256 on line 1"), "{msg}");
}

#[tokio::test]
async fn a_missing_known_hosts_file_is_an_error() {
    let s = Setup::new().await;
    let opts = TransportOptions {
        ssh_known_hosts_file: Some(s.dir.path().join("nope")),
        ..s.options()
    };
    let (e, msg) = connect_err(&s, &opts).await;
    assert!(matches!(e, SshError::KnownHostsFile { .. }), "{msg}");
    assert!(msg.contains("nope"), "{msg}");
    let opts = TransportOptions {
        ssh_known_hosts_file: None,
        ..s.options()
    };
    let (e, _) = connect_err(&s, &opts).await;
    assert!(matches!(e, SshError::NoKnownHostsFile { .. }));
}

#[tokio::test]
async fn a_wrong_client_key_fails_authentication() {
    let s = Setup::new().await;
    let other = write_key(s.dir.path(), "other", &ed25519());
    let opts = TransportOptions {
        ssh_private_key_file: Some(other.clone()),
        ..s.options()
    };
    let (e, msg) = connect_err(&s, &opts).await;
    assert!(matches!(e, SshError::AuthFailed { .. }), "{msg}");
    assert!(msg.contains("tester"), "{msg}");
    assert!(msg.contains(&other.display().to_string()), "{msg}");
}

#[tokio::test]
async fn ecdsa_keys_authenticate() {
    let dir = tempfile::tempdir().unwrap();
    let s = Setup::new().await;
    let key = ecdsa();
    let server = SshServer::start(vec![key.public_key().clone()]).await;
    let key_file = write_key(dir.path(), "id_ecdsa", &key);
    let known = dir.path().join("kh");
    std::fs::write(&known, server.known_hosts_line()).unwrap();
    let opts = TransportOptions {
        ssh_private_key_file: Some(key_file),
        ssh_known_hosts_file: Some(known),
        ..s.options()
    };
    let e: Endpoint = format!("ssh://u@127.0.0.1:{}{}", server.port(), s.socket.display())
        .parse()
        .unwrap();
    let mut c = ExecutorClient::connect_with("node-1", &e, &opts)
        .await
        .unwrap();
    c.host_facts().await.unwrap();
}

#[tokio::test]
async fn an_encrypted_key_is_refused_with_advice() {
    let s = Setup::new().await;
    let locked = ed25519().encrypt(&mut OsRng, "secret").unwrap();
    let path = write_key(s.dir.path(), "locked", &locked);
    let opts = TransportOptions {
        ssh_private_key_file: Some(path.clone()),
        ..s.options()
    };
    let (e, msg) = connect_err(&s, &opts).await;
    assert!(matches!(e, SshError::KeyEncrypted { .. }), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("ssh-agent"), "{msg}");
}

#[tokio::test]
async fn an_unreadable_key_file_is_named() {
    let s = Setup::new().await;
    let path = s.dir.path().join("garbage");
    std::fs::write(&path, "not a key\n").unwrap();
    let opts = TransportOptions {
        ssh_private_key_file: Some(path.clone()),
        ..s.options()
    };
    let (e, msg) = connect_err(&s, &opts).await;
    assert!(matches!(e, SshError::KeyFile { .. }), "{msg}");
    assert!(msg.contains("garbage"), "{msg}");
}

#[tokio::test]
async fn the_agent_authenticates_when_no_key_file_is_set() {
    let s = Setup::new().await;
    let agent_sock = s.dir.path().join("agent.sock");
    let _agent = start_agent(&agent_sock).await;
    let key = russh::keys::decode_secret_key(&std::fs::read_to_string(&s.key_file).unwrap(), None)
        .unwrap();
    let mut agent = russh::keys::agent::client::AgentClient::connect_uds(&agent_sock)
        .await
        .unwrap();
    // A key the server does not accept first, then the right one.
    agent.add_identity(&ed25519(), &[]).await.unwrap();
    agent.add_identity(&key, &[]).await.unwrap();
    let opts = TransportOptions {
        ssh_private_key_file: None,
        ssh_agent_socket: Some(agent_sock),
        ..s.options()
    };
    let mut c = s.connect(&opts).await.unwrap();
    assert_eq!(c.host_facts().await.unwrap().hostname, FAKE_HOSTNAME);
}

#[tokio::test]
async fn an_agent_without_the_right_key_fails_authentication() {
    let s = Setup::new().await;
    let agent_sock = s.dir.path().join("agent.sock");
    let _agent = start_agent(&agent_sock).await;
    let opts = TransportOptions {
        ssh_private_key_file: None,
        ssh_agent_socket: Some(agent_sock.clone()),
        ..s.options()
    };
    let (e, msg) = connect_err(&s, &opts).await;
    assert!(matches!(e, SshError::Agent { .. }), "{msg}");
    assert!(msg.contains("holds no keys"), "{msg}");

    let mut agent = russh::keys::agent::client::AgentClient::connect_uds(&agent_sock)
        .await
        .unwrap();
    agent.add_identity(&ed25519(), &[]).await.unwrap();
    let (e, msg) = connect_err(&s, &opts).await;
    assert!(matches!(e, SshError::AuthFailed { .. }), "{msg}");
    assert!(msg.contains("agent"), "{msg}");

    let opts = TransportOptions {
        ssh_agent_socket: Some(s.dir.path().join("no-agent.sock")),
        ..opts
    };
    let (e, msg) = connect_err(&s, &opts).await;
    assert!(matches!(e, SshError::Agent { .. }), "{msg}");
    assert!(msg.contains("no-agent.sock"), "{msg}");
}

/// An in-process ssh-agent (russh's) on `path`.
async fn start_agent(path: &Path) -> Task {
    #[derive(Clone)]
    struct Agent;
    impl russh::keys::agent::server::Agent for Agent {}
    let listener = tokio::net::UnixListener::bind(path).unwrap();
    let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
    Task(tokio::spawn(async move {
        let _ = russh::keys::agent::server::serve(incoming, Agent).await;
    }))
}

#[tokio::test]
async fn an_unreachable_port_is_reported_as_unreachable() {
    let s = Setup::new().await;
    let port = closed_port().await;
    let e: Endpoint = format!("ssh://root@127.0.0.1:{port}/run/x.sock")
        .parse()
        .unwrap();
    let err = tokio::time::timeout(
        LIMIT,
        ExecutorClient::connect_with("node-7", &e, &s.options()),
    )
    .await
    .unwrap()
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("node-7"), "{msg}");
    assert!(msg.contains("unreachable"), "{msg}");
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    let ssh = ssh_err(err);
    assert!(ssh.is_unreachable(), "{ssh}");
}

#[tokio::test]
async fn a_missing_executor_socket_is_a_refused_forward() {
    let s = Setup::new().await;
    let missing = s.dir.path().join("not-running.sock");
    let e: Endpoint = format!(
        "ssh://tester@127.0.0.1:{}{}",
        s.server.port(),
        missing.display()
    )
    .parse()
    .unwrap();
    let err = ExecutorClient::connect_with("node-1", &e, &s.options())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(ssh_err(err), SshError::ForwardRefused { .. }),
        "{msg}"
    );
    assert!(msg.contains(&missing.display().to_string()), "{msg}");
}
