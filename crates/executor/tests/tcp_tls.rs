//! `serve --listen-tcp` with mutual TLS: the `serve` binary (SimHost) on 127.0.0.1 with
//! rcgen certificates, reached by the real client (`https://`) and by raw rustls clients
//! (TLS 1.2 and 1.3, ALPN h2); clients without a certificate or with one from another CA
//! are refused; a listener without client-certificate auth, and bad certificate or key
//! files, stop the executor before anything changes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use client::{ClientError, Endpoint, ExecutorClient, TlsError, TransportError, TransportOptions};
use common::{SimNode, snapshot};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const BIN: &str = env!("CARGO_BIN_EXE_v2engine-executor");

/// Every wait in these tests is bounded by this.
const LIMIT: Duration = Duration::from_secs(20);

/// A certificate authority.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf certificate for `names` (IP addresses become IP SANs); (cert PEM, key PEM).
    fn leaf(&self, names: &[&str]) -> (String, String) {
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The CAs and every file: the server's certificate (for 127.0.0.1) and key, the client
/// CA, a good client identity and a rogue one, all in the node's temp dir.
struct Pki {
    server_ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_ca: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    rogue_cert: PathBuf,
    rogue_key: PathBuf,
}

impl Pki {
    fn new(dir: &Path) -> Self {
        let dir = dir.join("pki");
        std::fs::create_dir_all(&dir).unwrap();
        let server_ca = Ca::new("executor CA");
        let client_ca = Ca::new("front-end CA");
        let rogue_ca = Ca::new("rogue CA");
        let (sc, sk) = server_ca.leaf(&["127.0.0.1"]);
        let (cc, ck) = client_ca.leaf(&["terraform"]);
        let (rc, rk) = rogue_ca.leaf(&["terraform"]);
        Self {
            server_ca: write(&dir, "server-ca.pem", &server_ca.pem),
            server_cert: write(&dir, "server.pem", &sc),
            server_key: write(&dir, "server.key", &sk),
            client_ca: write(&dir, "client-ca.pem", &client_ca.pem),
            client_cert: write(&dir, "client.pem", &cc),
            client_key: write(&dir, "client.key", &ck),
            rogue_cert: write(&dir, "rogue.pem", &rc),
            rogue_key: write(&dir, "rogue.key", &rk),
        }
    }

    /// `--tls-cert`, `--tls-key`, `--tls-client-ca`.
    fn server_args(&self) -> Vec<PathBuf> {
        vec![
            "--tls-cert".into(),
            self.server_cert.clone(),
            "--tls-key".into(),
            self.server_key.clone(),
            "--tls-client-ca".into(),
            self.client_ca.clone(),
        ]
    }

    fn client_options(&self) -> TransportOptions {
        TransportOptions {
            tls_ca_file: Some(self.server_ca.clone()),
            tls_cert_file: Some(self.client_cert.clone()),
            tls_key_file: Some(self.client_key.clone()),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            ..Default::default()
        }
    }
}

/// A spawned `serve`; killed by its pid on drop if a test fails before stopping it.
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

impl Daemon {
    fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.as_ref().unwrap().id()).unwrap())
    }

    /// SIGTERM, then the exit (bounded).
    async fn sigterm_and_wait(mut self) -> Output {
        kill(self.pid(), Signal::SIGTERM).unwrap();
        let mut child = self.child.take().unwrap();
        let start = Instant::now();
        while start.elapsed() < LIMIT {
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
}

fn serve_command(node: &SimNode, extra: &[PathBuf]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--node", "node-1", "--socket"])
        .arg(node.dir.path().join("run/executor.sock"))
        .arg("--state-dir")
        .arg(&node.state_dir)
        .arg("--host-root")
        .arg(&node.root)
        .arg("--sim-host")
        .arg(&node.state_file)
        .args(extra)
        .env("V2ENGINE_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs `serve` that is expected to refuse to start; its output (bounded wait).
async fn run_refused(node: &SimNode, extra: &[PathBuf]) -> (Output, String) {
    let mut d = Daemon {
        child: Some(serve_command(node, extra).spawn().unwrap()),
    };
    let start = Instant::now();
    loop {
        if d.child.as_mut().unwrap().try_wait().unwrap().is_some() {
            break;
        }
        assert!(
            start.elapsed() < LIMIT,
            "the executor did not exit: it should have refused {extra:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let out = d.child.take().unwrap().wait_with_output().unwrap();
    assert!(!out.status.success(), "{extra:?} must be refused");
    assert!(out.stdout.is_empty(), "nothing on stdout");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("{stderr}");
    (out, stderr)
}

/// The executor on `--listen-tcp 127.0.0.1:PORT` with mutual TLS, answering.
struct Running {
    node: SimNode,
    pki: Pki,
    port: u16,
    daemon: Daemon,
}

impl Running {
    async fn start() -> Self {
        let node = SimNode::new(8192, false);
        let pki = Pki::new(node.dir.path());
        let port = free_port();
        let mut args = vec!["--listen-tcp".into(), format!("127.0.0.1:{port}").into()];
        args.extend(pki.server_args());
        let daemon = Daemon {
            child: Some(serve_command(&node, &args).spawn().unwrap()),
        };
        let mut r = Self {
            node,
            pki,
            port,
            daemon,
        };
        r.wait_ready().await;
        r
    }

    fn endpoint(&self) -> Endpoint {
        format!("https://127.0.0.1:{}", self.port).parse().unwrap()
    }

    fn socket(&self) -> PathBuf {
        self.node.dir.path().join("run/executor.sock")
    }

    async fn connect(&self, opts: &TransportOptions) -> Result<ExecutorClient, ClientError> {
        tokio::time::timeout(
            LIMIT,
            ExecutorClient::connect_with("node-1", &self.endpoint(), opts),
        )
        .await
        .expect("connect did not finish in time")
    }

    /// Polls (bounded) until the TCP listener answers GetNodeStatus.
    async fn wait_ready(&mut self) {
        let opts = self.pki.client_options();
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < LIMIT {
            if let Some(status) = self.daemon.child.as_mut().unwrap().try_wait().unwrap() {
                let out = self
                    .daemon
                    .child
                    .take()
                    .unwrap()
                    .wait_with_output()
                    .unwrap();
                panic!(
                    "the executor exited ({status}): {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            match self.connect(&opts).await {
                Ok(mut c) => match c.node_status().await {
                    Ok(_) => return,
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the TCP listener never answered: {last}");
    }

    /// The TLS error of a refused connection, checked to name the node and address.
    async fn refused(&self, opts: &TransportOptions) -> (TlsError, String) {
        let e = self.connect(opts).await.unwrap_err();
        let msg = e.to_string();
        eprintln!("{msg}");
        assert!(msg.contains("node-1"), "{msg}");
        assert!(msg.contains(&format!("127.0.0.1:{}", self.port)), "{msg}");
        match e {
            ClientError::Connect {
                source: TransportError::Tls(e),
                ..
            } => (*e, msg),
            other => panic!("expected a TLS error, got: {other}"),
        }
    }

    /// A raw rustls client with the good identity, restricted to `version`.
    fn raw_client(&self, version: &'static rustls::SupportedProtocolVersion) -> TlsConnector {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(&self.pki.server_ca).unwrap())
            .unwrap();
        let chain = CertificateDer::pem_file_iter(&self.pki.client_cert)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(&self.pki.client_key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version])
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec()];
        TlsConnector::from(Arc::new(config))
    }
}

#[tokio::test]
async fn a_client_certificate_from_the_client_ca_gets_the_api_on_tcp_and_the_socket_stays() {
    let r = Running::start().await;
    let mut c = r.connect(&r.pki.client_options()).await.unwrap();
    let st = c.node_status().await.unwrap();
    assert_eq!(st.node, "node-1");
    let facts = c.host_facts().await.unwrap();
    assert!(facts.simulated);

    // The Unix socket serves the same service, at the same time.
    let unix: Endpoint = format!("unix://{}", r.socket().display()).parse().unwrap();
    let mut u = ExecutorClient::connect_with("node-1", &unix, &TransportOptions::default())
        .await
        .unwrap();
    assert_eq!(u.node_status().await.unwrap().node, "node-1");
    drop((c, u));

    let socket = r.socket();
    let out = r.daemon.sigterm_and_wait().await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?} {stderr}", out.status);
    assert!(
        stderr.contains(&format!("127.0.0.1:{}", r.port)),
        "the start-up log names the TCP listener: {stderr}"
    );
    assert!(!socket.exists(), "the socket is removed");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", r.port)).is_err(),
        "the TCP port is closed"
    );
}

#[tokio::test]
async fn tls_1_2_and_1_3_both_negotiate_h2() {
    let r = Running::start().await;
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let tcp = TcpStream::connect(("127.0.0.1", r.port)).await.unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let tls = tokio::time::timeout(LIMIT, r.raw_client(version).connect(name, tcp))
            .await
            .unwrap()
            .unwrap();
        let (_, conn) = tls.get_ref();
        assert_eq!(conn.protocol_version(), Some(version.version));
        assert_eq!(conn.alpn_protocol(), Some(&b"h2"[..]));
    }
    // The only client of these tests: the daemon is killed by its pid when `r` drops.
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused() {
    let r = Running::start().await;
    let opts = TransportOptions {
        tls_cert_file: None,
        tls_key_file: None,
        ..r.pki.client_options()
    };
    let (e, msg) = r.refused(&opts).await;
    assert!(matches!(e, TlsError::ClientCertRefused { .. }), "{msg}");
    assert!(msg.contains("without a client certificate"), "{msg}");

    // The refusal is logged with the peer; the good client still gets in afterwards.
    let mut c = r.connect(&r.pki.client_options()).await.unwrap();
    c.node_status().await.unwrap();
    drop(c);
    let out = r.daemon.sigterm_and_wait().await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("TLS handshake refused"), "{stderr}");
}

#[tokio::test]
async fn a_client_certificate_from_another_ca_is_refused() {
    let r = Running::start().await;
    let opts = TransportOptions {
        tls_cert_file: Some(r.pki.rogue_cert.clone()),
        tls_key_file: Some(r.pki.rogue_key.clone()),
        ..r.pki.client_options()
    };
    let (e, msg) = r.refused(&opts).await;
    assert!(matches!(e, TlsError::ClientCertRefused { .. }), "{msg}");
    assert!(msg.contains("rogue.pem"), "{msg}");
    // Nor is a certificate of the executors' CA (not the client CA) accepted.
    let opts = TransportOptions {
        tls_cert_file: Some(r.pki.server_cert.clone()),
        tls_key_file: Some(r.pki.server_key.clone()),
        ..r.pki.client_options()
    };
    let (e, msg) = r.refused(&opts).await;
    assert!(matches!(e, TlsError::ClientCertRefused { .. }), "{msg}");
}

/// Asserts a refused start left nothing behind: no socket, no state, no lock, the same
/// files as before, and (with `port`) nothing listening there.
fn assert_nothing_changed(node: &SimNode, before: &[(PathBuf, Vec<u8>)], port: Option<u16>) {
    assert!(!node.dir.path().join("run").exists(), "no socket directory");
    assert!(!node.state_dir.exists(), "no state directory");
    assert_eq!(snapshot(node.dir.path()), before, "no file changed");
    if let Some(port) = port {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "nothing listens on {port}"
        );
    }
}

#[tokio::test]
async fn a_tcp_listener_without_client_certificate_auth_is_refused_and_changes_nothing() {
    let node = SimNode::new(8192, false);
    let pki = Pki::new(node.dir.path());
    let before = snapshot(node.dir.path());
    let port = free_port();

    // All interfaces, with a server certificate but without --tls-client-ca.
    let listen = format!("0.0.0.0:{port}");
    let args: Vec<PathBuf> = vec![
        "--listen-tcp".into(),
        listen.clone().into(),
        "--tls-cert".into(),
        pki.server_cert.clone(),
        "--tls-key".into(),
        pki.server_key.clone(),
    ];
    let (_, stderr) = run_refused(&node, &args).await;
    assert!(
        stderr.contains(&format!(
            "refusing --listen-tcp {listen} (all interfaces) without client-certificate authentication"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("missing --tls-client-ca"), "{stderr}");
    assert_nothing_changed(&node, &before, Some(port));

    // Without any TLS, and on loopback too: TCP is only served with mutual TLS.
    for listen in [format!("10.0.0.1:{port}"), format!("127.0.0.1:{port}")] {
        let args: Vec<PathBuf> = vec!["--listen-tcp".into(), listen.clone().into()];
        let (_, stderr) = run_refused(&node, &args).await;
        assert!(
            stderr.contains(&format!("refusing --listen-tcp {listen}")),
            "{stderr}"
        );
        assert!(
            stderr.contains("missing --tls-cert, --tls-key, --tls-client-ca"),
            "{stderr}"
        );
        assert_nothing_changed(&node, &before, Some(port));
    }

    // TLS flags without a listener would suggest a protection that is not there.
    let args: Vec<PathBuf> = vec!["--tls-client-ca".into(), pki.client_ca.clone()];
    let (_, stderr) = run_refused(&node, &args).await;
    assert!(
        stderr.contains("--tls-client-ca is given without --listen-tcp"),
        "{stderr}"
    );
    assert_nothing_changed(&node, &before, None);
}

#[tokio::test]
async fn bad_certificate_key_or_ca_files_are_errors_naming_the_file() {
    let node = SimNode::new(8192, false);
    let pki = Pki::new(node.dir.path());
    let dir = node.dir.path().join("pki");
    let missing = dir.join("missing.pem");
    let garbage = write(&dir, "garbage.pem", "not a PEM file\n");
    let (_, other_key) = Ca::new("other").leaf(&["127.0.0.1"]);
    let other_key = write(&dir, "other.key", &other_key);
    let before = snapshot(node.dir.path());
    let port = free_port();

    let with = |cert: &Path, key: &Path, ca: &Path| -> Vec<PathBuf> {
        vec![
            "--listen-tcp".into(),
            format!("127.0.0.1:{port}").into(),
            "--tls-cert".into(),
            cert.to_path_buf(),
            "--tls-key".into(),
            key.to_path_buf(),
            "--tls-client-ca".into(),
            ca.to_path_buf(),
        ]
    };
    let cases: Vec<(Vec<PathBuf>, Vec<String>)> = vec![
        (
            with(&missing, &pki.server_key, &pki.client_ca),
            vec![format!("TLS certificate file {}", missing.display())],
        ),
        (
            with(&pki.server_cert, &missing, &pki.client_ca),
            vec![format!("TLS key file {}", missing.display())],
        ),
        (
            with(&pki.server_cert, &pki.server_key, &missing),
            vec![format!("client CA file {}", missing.display())],
        ),
        (
            with(&garbage, &pki.server_key, &pki.client_ca),
            vec![format!(
                "TLS certificate file {}: no CERTIFICATE",
                garbage.display()
            )],
        ),
        (
            with(&pki.server_cert, &garbage, &pki.client_ca),
            vec![format!(
                "TLS key file {}: no PRIVATE KEY",
                garbage.display()
            )],
        ),
        (
            with(&pki.server_cert, &pki.server_key, &garbage),
            vec![format!(
                "client CA file {}: no CERTIFICATE",
                garbage.display()
            )],
        ),
        (
            with(&pki.server_cert, &other_key, &pki.client_ca),
            vec![
                format!("TLS key file {}", other_key.display()),
                format!(
                    "does not match the certificate in {}",
                    pki.server_cert.display()
                ),
            ],
        ),
    ];
    for (args, wants) in cases {
        let (_, stderr) = run_refused(&node, &args).await;
        for want in wants {
            assert!(stderr.contains(&want), "want {want:?} in {stderr}");
        }
        assert_nothing_changed(&node, &before, Some(port));
    }

    // A port already in use is an error naming the address.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap();
    let mut args = vec!["--listen-tcp".into(), addr.to_string().into()];
    args.extend(pki.server_args());
    let (_, stderr) = run_refused(&node, &args).await;
    assert!(
        stderr.contains(&format!("TCP listener {addr}: cannot bind")),
        "{stderr}"
    );
    assert_nothing_changed(&node, &before, None);
}
