//! The `https://` transport: TCP with mutual TLS (rustls with ring).
//!
//! The server's certificate must chain to the configured CA file and name the endpoint's
//! host (a DNS name or an IP address SAN); we present the configured client certificate.
//! No system roots are used: executors have a private CA.
//!
//! With TLS 1.3 the server checks our certificate *after* our side of the handshake has
//! finished, so a refusal would only show up at the first gRPC call as an opaque
//! transport error. [`TlsDialer::connect`] therefore waits (briefly) for the server's
//! first bytes, the HTTP/2 SETTINGS frame every gRPC server sends at once, and reports a
//! refusal then, as [`TlsError::ClientCertRefused`]. The bytes read are handed on
//! unchanged ([`Greeted`]).

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{AlertDescription, ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// How long to wait for the server's first bytes after the handshake, at most.
const GREETING_WAIT: Duration = Duration::from_secs(2);

/// Why a mutual-TLS connection to an executor could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// No CA file is configured, so the server cannot be verified.
    #[error("https to {addr}: no CA file configured (tls_ca_file); the server must be verified")]
    NoCaFile {
        /// `host:port`.
        addr: String,
    },
    /// Only one of client certificate and key is configured.
    #[error("https to {addr}: {given} is configured without {missing}; give both or neither")]
    HalfIdentity {
        /// `host:port`.
        addr: String,
        /// The option that is set.
        given: &'static str,
        /// The option that is missing.
        missing: &'static str,
    },
    /// A PEM file could not be read or holds nothing usable.
    #[error("https to {addr}: cannot use {what} file {path}: {reason}")]
    File {
        /// `host:port`.
        addr: String,
        /// `CA`, `client certificate` or `client key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// rustls refused the configuration (e.g. the key does not match the certificate).
    #[error("https to {addr}: invalid TLS client configuration: {source}")]
    Config {
        /// `host:port`.
        addr: String,
        /// Why.
        #[source]
        source: rustls::Error,
    },
    /// The host is not a valid TLS server name.
    #[error("https to {addr}: {host:?} is not a valid TLS server name")]
    ServerName {
        /// `host:port`.
        addr: String,
        /// The host.
        host: String,
    },
    /// The TCP connection failed: the node is unreachable.
    #[error("node unreachable: cannot open a TCP connection to {addr}: {source}")]
    Unreachable {
        /// `host:port`.
        addr: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The TCP connection did not complete in time: the node is unreachable.
    #[error("node unreachable: no TCP connection to {addr} within {after:?}")]
    ConnectTimeout {
        /// `host:port`.
        addr: String,
        /// The connect timeout.
        after: Duration,
    },
    /// The server's certificate is not trusted (wrong CA, wrong name, expired).
    #[error(
        "https to {addr}: the server's certificate is not trusted with CA file {ca_file}: {reason}"
    )]
    ServerCertRejected {
        /// `host:port`.
        addr: String,
        /// The CA file used.
        ca_file: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The server refused our client certificate, or we presented none.
    #[error("https to {addr}: the server refused {presented} (TLS alert {alert})")]
    ClientCertRefused {
        /// `host:port`.
        addr: String,
        /// Which certificate was presented, or that none was.
        presented: String,
        /// The TLS alert the server sent.
        alert: String,
    },
    /// The TLS handshake failed otherwise.
    #[error("https to {addr}: TLS handshake failed: {source}")]
    Handshake {
        /// `host:port`.
        addr: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The TLS handshake did not finish in time.
    #[error("https to {addr}: TLS handshake did not finish within {after:?}")]
    HandshakeTimeout {
        /// `host:port`.
        addr: String,
        /// The connect timeout.
        after: Duration,
    },
    /// The server closed the connection right after the handshake.
    #[error(
        "https to {addr}: the server closed the connection right after the TLS handshake \
         (did it refuse {presented}?)"
    )]
    Closed {
        /// `host:port`.
        addr: String,
        /// Which certificate was presented, or that none was.
        presented: String,
    },
}

impl TlsError {
    /// True when the node could not be reached at all (TCP failed or timed out).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            TlsError::Unreachable { .. } | TlsError::ConnectTimeout { .. }
        )
    }
}

/// The files of a mutual-TLS client identity.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    /// CA certificates (PEM) the server's certificate must chain to. Required.
    pub ca_file: Option<PathBuf>,
    /// Our certificate chain (PEM).
    pub cert_file: Option<PathBuf>,
    /// Our private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
}

/// Opens mutual-TLS connections to one `host:port`; the files are read once, by
/// [`TlsDialer::new`].
#[derive(Clone)]
pub struct TlsDialer {
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    connector: TlsConnector,
    ca_file: PathBuf,
    presented: String,
    connect_timeout: Duration,
}

impl std::fmt::Debug for TlsDialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsDialer")
            .field("addr", &self.addr())
            .field("ca_file", &self.ca_file)
            .field("presented", &self.presented)
            .finish_non_exhaustive()
    }
}

impl TlsDialer {
    /// Reads the CA, certificate and key files and prepares connections to `host:port`.
    pub fn new(
        host: &str,
        port: u16,
        files: &TlsFiles,
        connect_timeout: Duration,
    ) -> Result<Self, TlsError> {
        let addr = addr(host, port);
        let ca_file = files
            .ca_file
            .clone()
            .ok_or_else(|| TlsError::NoCaFile { addr: addr.clone() })?;
        let identity = match (&files.cert_file, &files.key_file) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(TlsError::HalfIdentity {
                    addr,
                    given: "tls_cert_file",
                    missing: "tls_key_file",
                });
            }
            (None, Some(_)) => {
                return Err(TlsError::HalfIdentity {
                    addr,
                    given: "tls_key_file",
                    missing: "tls_cert_file",
                });
            }
        };
        let mut roots = RootCertStore::empty();
        for cert in read_certs(&addr, "CA", &ca_file)? {
            roots.add(cert).map_err(|e| TlsError::File {
                addr: addr.clone(),
                what: "CA",
                path: ca_file.clone(),
                reason: e.to_string(),
            })?;
        }

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|source| TlsError::Config {
                addr: addr.clone(),
                source,
            })?
            .with_root_certificates(roots);
        let (mut config, presented) = match identity {
            Some((cert_file, key_file)) => {
                let chain = read_certs(&addr, "client certificate", cert_file)?;
                let key = read_key(&addr, key_file)?;
                let config = builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|source| TlsError::Config {
                        addr: addr.clone(),
                        source,
                    })?;
                let presented = format!("our client certificate {}", cert_file.display());
                (config, presented)
            }
            None => (
                builder.with_no_client_auth(),
                "to connect without a client certificate (tls_cert_file, tls_key_file unset)"
                    .to_string(),
            ),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];

        let server_name =
            ServerName::try_from(host.to_string()).map_err(|_| TlsError::ServerName {
                addr: addr.clone(),
                host: host.to_string(),
            })?;
        Ok(Self {
            host: host.to_string(),
            port,
            server_name,
            connector: TlsConnector::from(Arc::new(config)),
            ca_file,
            presented,
            connect_timeout,
        })
    }

    /// `host:port`.
    pub fn addr(&self) -> String {
        addr(&self.host, self.port)
    }

    /// Connects, completes the handshake and waits briefly for the server's greeting, so
    /// that a refused client certificate is reported here.
    pub async fn connect(&self) -> Result<Greeted<TlsStream<TcpStream>>, TlsError> {
        let addr = self.addr();
        let after = self.connect_timeout;
        let tcp = match timeout(after, TcpStream::connect((self.host.as_str(), self.port))).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(source)) => return Err(TlsError::Unreachable { addr, source }),
            Err(_) => return Err(TlsError::ConnectTimeout { addr, after }),
        };
        let _ = tcp.set_nodelay(true);
        let mut tls =
            match timeout(after, self.connector.connect(self.server_name.clone(), tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => return Err(self.classify(e)),
                Err(_) => return Err(TlsError::HandshakeTimeout { addr, after }),
            };
        let mut head = vec![0u8; 4096];
        match timeout(after.min(GREETING_WAIT), tls.read(&mut head)).await {
            Ok(Ok(0)) => Err(TlsError::Closed {
                addr,
                presented: self.presented.clone(),
            }),
            Ok(Ok(n)) => {
                head.truncate(n);
                Ok(Greeted::new(head, tls))
            }
            Ok(Err(e)) => Err(self.classify(e)),
            // A server that waits for us to speak first: nothing to check yet.
            Err(_) => Ok(Greeted::new(Vec::new(), tls)),
        }
    }

    fn classify(&self, e: io::Error) -> TlsError {
        let addr = self.addr();
        let Some(tls_err) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
            return TlsError::Handshake { addr, source: e };
        };
        match tls_err {
            rustls::Error::InvalidCertificate(why) => TlsError::ServerCertRejected {
                addr,
                ca_file: self.ca_file.clone(),
                reason: format!("{why:?}"),
            },
            rustls::Error::AlertReceived(alert) if is_client_cert_alert(*alert) => {
                TlsError::ClientCertRefused {
                    addr,
                    presented: self.presented.clone(),
                    alert: format!("{alert:?}"),
                }
            }
            _ => TlsError::Handshake { addr, source: e },
        }
    }
}

/// Alerts a server sends when it does not accept the client's certificate.
fn is_client_cert_alert(a: AlertDescription) -> bool {
    matches!(
        a,
        AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnknownCA
            | AlertDescription::AccessDenied
            | AlertDescription::CertificateRequired
            | AlertDescription::NoCertificate
    )
}

fn addr(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn read_certs(
    addr: &str,
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |reason: String| TlsError::File {
        addr: addr.to_string(),
        what,
        path: path.to_path_buf(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(format!("bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(err("no CERTIFICATE in it".into()));
    }
    Ok(certs)
}

fn read_key(addr: &str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let err = |reason: String| TlsError::File {
        addr: addr.to_string(),
        what: "client key",
        path: path.to_path_buf(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            err("no PRIVATE KEY in it (an encrypted key is not supported)".into())
        }
        e => err(format!("bad PEM: {e}")),
    })
}

/// A stream whose first bytes were already read: they are returned first, then the rest
/// of the stream.
#[derive(Debug)]
pub struct Greeted<S> {
    head: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S> Greeted<S> {
    /// `inner`, with `head` read from it already.
    pub fn new(head: Vec<u8>, inner: S) -> Self {
        Self {
            head,
            pos: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Greeted<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let rest = this.head.get(this.pos..).unwrap_or_default();
        if !rest.is_empty() {
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.pos += n;
            if this.pos == this.head.len() {
                this.head = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Greeted<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn greeted_returns_the_head_then_the_stream() {
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(b" world").await.unwrap();
        drop(a);
        let mut g = Greeted::new(b"hello".to_vec(), b);
        let mut small = [0u8; 3];
        g.read_exact(&mut small).await.unwrap();
        assert_eq!(&small, b"hel");
        let mut rest = String::new();
        g.read_to_string(&mut rest).await.unwrap();
        assert_eq!(rest, "lo world");
    }

    #[test]
    fn missing_files_are_named() {
        let files = TlsFiles {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        let e = TlsDialer::new("h", 7443, &files, Duration::from_secs(1)).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("h:7443") && msg.contains("/nonexistent/ca.pem"),
            "{msg}"
        );
        assert!(matches!(
            TlsDialer::new("h", 1, &TlsFiles::default(), Duration::from_secs(1)),
            Err(TlsError::NoCaFile { .. })
        ));
    }

    #[test]
    fn half_an_identity_is_refused() {
        let files = TlsFiles {
            ca_file: Some("/ca.pem".into()),
            cert_file: Some("/c.pem".into()),
            key_file: None,
        };
        let e = TlsDialer::new("h", 1, &files, Duration::from_secs(1)).unwrap_err();
        assert!(
            matches!(
                e,
                TlsError::HalfIdentity {
                    missing: "tls_key_file",
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not pem").unwrap();
        let files = TlsFiles {
            ca_file: Some(ca),
            ..Default::default()
        };
        let e = TlsDialer::new("h", 1, &files, Duration::from_secs(1)).unwrap_err();
        assert!(e.to_string().contains("no CERTIFICATE"), "{e}");
    }

    #[test]
    fn client_cert_alerts_are_recognised() {
        assert!(is_client_cert_alert(AlertDescription::CertificateRequired));
        assert!(is_client_cert_alert(AlertDescription::UnknownCA));
        assert!(!is_client_cert_alert(AlertDescription::ProtocolVersion));
    }
}
