//! The `https://` transport against an in-process tonic server behind rustls that
//! requires client certificates; certificates come from rcgen (tier 2).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use client::v1::executor_server::ExecutorServer;
use client::{ClientError, Endpoint, ExecutorClient, TlsError, TransportError, TransportOptions};
use common::{FAKE_HOSTNAME, FakeExecutor, Task, closed_port};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tempfile::TempDir;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

const LIMIT: Duration = Duration::from_secs(30);

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

    /// A leaf certificate for `names`; returns (cert PEM, key PEM).
    fn leaf(&self, names: &[&str]) -> (String, String) {
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// Which TLS versions the test server speaks.
#[derive(Clone, Copy)]
enum Versions {
    Default,
    Tls12Only,
}

/// The fake executor behind rustls, requiring a client certificate from `client_ca`.
async fn serve_mtls(
    server_ca: &Ca,
    client_ca: &Ca,
    names: &[&str],
    v: Versions,
) -> (SocketAddr, Task) {
    let (cert_pem, key_pem) = server_ca.leaf(names);
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(client_ca.pem.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .unwrap();
    let builder = ServerConfig::builder_with_provider(provider);
    let builder = match v {
        Versions::Default => builder.with_safe_default_protocol_versions(),
        Versions::Tls12Only => builder.with_protocol_versions(&[&rustls::version::TLS12]),
    };
    let mut config = builder
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Io>>(4);
    let accept = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                // A refused handshake is simply dropped, as a real listener would.
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let _ = tx.send(Ok(Io(tls))).await;
                }
            });
        }
    });
    let serve = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(ExecutorServer::new(FakeExecutor))
            .serve_with_incoming(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await;
    });
    let task = Task(tokio::spawn(async move {
        let _guard = (Task(accept), Task(serve));
        std::future::pending::<()>().await;
    }));
    (addr, task)
}

/// A server-side TLS stream tonic can serve.
struct Io(TlsStream<TcpStream>);

impl tonic::transport::server::Connected for Io {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

/// CAs, a running server and the client's files.
struct Setup {
    dir: TempDir,
    addr: SocketAddr,
    ca_file: PathBuf,
    cert_file: PathBuf,
    key_file: PathBuf,
    server_ca: Ca,
    client_ca: Ca,
    _server: Task,
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

impl Setup {
    async fn new(v: Versions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server_ca = Ca::new("executor CA");
        let client_ca = Ca::new("front-end CA");
        let (addr, server) = serve_mtls(&server_ca, &client_ca, &["127.0.0.1"], v).await;
        let (cert, key) = client_ca.leaf(&["terraform"]);
        Self {
            ca_file: write(dir.path(), "ca.pem", &server_ca.pem),
            cert_file: write(dir.path(), "client.pem", &cert),
            key_file: write(dir.path(), "client.key", &key),
            dir,
            addr,
            server_ca,
            client_ca,
            _server: server,
        }
    }

    fn endpoint(&self) -> Endpoint {
        format!("https://{}", self.addr).parse().unwrap()
    }

    fn options(&self) -> TransportOptions {
        TransportOptions {
            tls_ca_file: Some(self.ca_file.clone()),
            tls_cert_file: Some(self.cert_file.clone()),
            tls_key_file: Some(self.key_file.clone()),
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

    async fn connect_err(&self, opts: &TransportOptions) -> (TlsError, String) {
        let e = self.connect(opts).await.unwrap_err();
        let msg = e.to_string();
        eprintln!("{msg}");
        assert!(
            msg.contains("node-1"),
            "error does not name the node: {msg}"
        );
        assert!(
            msg.contains(&self.addr.to_string()),
            "error does not name host:port: {msg}"
        );
        match e {
            ClientError::Connect {
                source: TransportError::Tls(e),
                ..
            } => (*e, msg),
            other => panic!("expected a TLS error, got: {other}"),
        }
    }
}

#[tokio::test]
async fn a_good_client_certificate_works() {
    for v in [Versions::Default, Versions::Tls12Only] {
        let s = Setup::new(v).await;
        let mut c = s.connect(&s.options()).await.unwrap();
        assert_eq!(c.host_facts().await.unwrap().hostname, FAKE_HOSTNAME);
        c.node_status().await.unwrap();
    }
}

#[tokio::test]
async fn no_client_certificate_is_refused() {
    for v in [Versions::Default, Versions::Tls12Only] {
        let s = Setup::new(v).await;
        let opts = TransportOptions {
            tls_cert_file: None,
            tls_key_file: None,
            ..s.options()
        };
        let (e, msg) = s.connect_err(&opts).await;
        assert!(matches!(e, TlsError::ClientCertRefused { .. }), "{msg}");
        assert!(msg.contains("without a client certificate"), "{msg}");
    }
}

#[tokio::test]
async fn an_untrusted_client_certificate_is_refused() {
    for v in [Versions::Default, Versions::Tls12Only] {
        let s = Setup::new(v).await;
        let rogue = Ca::new("rogue CA");
        let (cert, key) = rogue.leaf(&["terraform"]);
        let opts = TransportOptions {
            tls_cert_file: Some(write(s.dir.path(), "rogue.pem", &cert)),
            tls_key_file: Some(write(s.dir.path(), "rogue.key", &key)),
            ..s.options()
        };
        let (e, msg) = s.connect_err(&opts).await;
        assert!(matches!(e, TlsError::ClientCertRefused { .. }), "{msg}");
        assert!(msg.contains("rogue.pem"), "{msg}");
    }
}

#[tokio::test]
async fn a_server_from_another_ca_is_refused() {
    let s = Setup::new(Versions::Default).await;
    // The client trusts the CA of its own certificate, not the executors'.
    let wrong_ca = write(s.dir.path(), "wrong-ca.pem", &s.client_ca.pem);
    let opts = TransportOptions {
        tls_ca_file: Some(wrong_ca.clone()),
        ..s.options()
    };
    let (e, msg) = s.connect_err(&opts).await;
    assert!(matches!(e, TlsError::ServerCertRejected { .. }), "{msg}");
    assert!(msg.contains(&wrong_ca.display().to_string()), "{msg}");
    assert!(msg.contains("UnknownIssuer"), "{msg}");
}

#[tokio::test]
async fn a_server_certificate_for_another_name_is_refused() {
    let s = Setup::new(Versions::Default).await;
    let (addr, _server) = serve_mtls(
        &s.server_ca,
        &s.client_ca,
        &["other.example"],
        Versions::Default,
    )
    .await;
    let e: Endpoint = format!("https://{addr}").parse().unwrap();
    let err = ExecutorClient::connect_with("node-2", &e, &s.options())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("node-2") && msg.contains("not trusted"),
        "{msg}"
    );
    assert!(msg.contains("NotValidForName"), "{msg}");
}

#[tokio::test]
async fn an_unreachable_port_is_reported_as_unreachable() {
    let s = Setup::new(Versions::Default).await;
    let port = closed_port().await;
    let e: Endpoint = format!("https://127.0.0.1:{port}").parse().unwrap();
    let err = ExecutorClient::connect_with("node-3", &e, &s.options())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("node-3") && msg.contains("unreachable"),
        "{msg}"
    );
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    match err {
        ClientError::Connect { source, .. } => assert!(source.is_unreachable()),
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn a_key_that_does_not_match_the_certificate_is_a_config_error() {
    let s = Setup::new(Versions::Default).await;
    let (_, other_key) = s.client_ca.leaf(&["x"]);
    let opts = TransportOptions {
        tls_key_file: Some(write(s.dir.path(), "other.key", &other_key)),
        ..s.options()
    };
    let (e, msg) = s.connect_err(&opts).await;
    assert!(matches!(e, TlsError::Config { .. }), "{msg}");
}
