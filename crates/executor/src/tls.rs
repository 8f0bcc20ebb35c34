//! The TCP listener with mutual TLS (`serve --listen-tcp`), beside the Unix socket.
//!
//! **Rule** ([`check_listener`], pure): a TCP listener is always served with mutual TLS —
//! `--tls-cert`, `--tls-key` and `--tls-client-ca` are all required, whatever the address.
//! There is no plaintext TCP, and no TLS without client certificates, even on loopback:
//! every local user can reach a loopback port, and the API can reconfigure the host (the
//! Unix socket is root-only). So a non-loopback listener without client-certificate auth
//! is refused, and so is a loopback one. The address must be an IP address (host names
//! are not resolved: what gets exposed must not depend on DNS). TLS flags without
//! `--listen-tcp` are refused too (they would suggest a protection that is not there).
//!
//! **TLS**: rustls with the ring provider (passed explicitly; no process-wide default),
//! TLS 1.2 and 1.3, ALPN `h2`, and a client certificate required and verified against
//! `--tls-client-ca` ([`WebPkiClientVerifier`]). The files are read once at start; every
//! problem names the file.
//!
//! **Accepting**: handshakes run concurrently (at most [`MAX_HANDSHAKES`], each bounded by
//! [`HANDSHAKE_TIMEOUT`]) so a slow client cannot hold the listener up; a refused
//! handshake is logged with the peer address and the connection dropped. The finished
//! connections join the Unix socket's in one stream ([`Connection`]), so both listeners
//! serve the same gRPC service and stop together.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{InconsistentKeys, RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio::task::JoinSet;
use tokio::time::Sleep;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::Stream;

/// How long a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How many TLS handshakes may be in progress at once; further connections wait in the
/// kernel's backlog.
pub const MAX_HANDSHAKES: usize = 64;

/// How long to pause accepting after `accept` failed (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Why the TCP listener cannot be configured or started.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A TCP listener without complete mutual-TLS configuration.
    #[error(
        "refusing --listen-tcp {listen} ({reach}) without client-certificate authentication: \
         {why}; missing {missing}. TCP is only served with mutual TLS: give --tls-cert, \
         --tls-key and --tls-client-ca (or use the Unix socket)"
    )]
    ClientAuthRequired {
        /// The address as given.
        listen: String,
        /// What kind of address it is.
        reach: Reach,
        /// Why this address needs it.
        why: &'static str,
        /// The missing flags, comma-separated.
        missing: String,
    },
    /// TLS flags without a TCP listener.
    #[error("{flag} is given without --listen-tcp; TLS is only used on the TCP listener")]
    TlsWithoutListener {
        /// The first TLS flag given.
        flag: &'static str,
    },
    /// The listen address is not `IP:PORT`.
    #[error(
        "--listen-tcp {listen}: {reason}; give IP:PORT, e.g. 127.0.0.1:7443, 0.0.0.0:7443 \
         or [::1]:7443"
    )]
    BadAddress {
        /// The address as given.
        listen: String,
        /// Why.
        reason: &'static str,
    },
    /// A certificate or key file cannot be used.
    #[error("{what} file {path}: {reason}")]
    File {
        /// `TLS certificate` (`--tls-cert`), `TLS key` (`--tls-key`), `client CA`
        /// (`--tls-client-ca`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The private key is not the certificate's.
    #[error("TLS key file {key} does not match the certificate in {cert} (--tls-key, --tls-cert)")]
    KeyMismatch {
        /// The key file.
        key: PathBuf,
        /// The certificate file.
        cert: PathBuf,
    },
    /// rustls refused the configuration.
    #[error("TCP listener {addr}: invalid TLS configuration: {source}")]
    Config {
        /// The listen address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: rustls::Error,
    },
    /// The address cannot be bound.
    #[error("TCP listener {addr}: cannot {action}: {source}")]
    Bind {
        /// The listen address.
        addr: SocketAddr,
        /// What was being done.
        action: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// What a `--listen-tcp` address exposes the API to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// 127.0.0.0/8, ::1 (also IPv4-mapped): every user of this host.
    Loopback,
    /// 0.0.0.0 or `::`: every interface.
    AllInterfaces,
    /// Any other IP address: its network.
    Network,
    /// Not an IP address; treated as reaching the network.
    HostName,
}

impl fmt::Display for Reach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reach::Loopback => "loopback",
            Reach::AllInterfaces => "all interfaces",
            Reach::Network => "a network address",
            Reach::HostName => "a host name",
        })
    }
}

impl Reach {
    fn why(self) -> &'static str {
        match self {
            Reach::Loopback => {
                "even on loopback every local user and container sharing the network could \
                 reconfigure this host, while the Unix socket is root-only"
            }
            Reach::AllInterfaces | Reach::Network | Reach::HostName => {
                "anyone who can reach this address could reconfigure this host"
            }
        }
    }
}

/// The reach of an IP address.
pub fn reach_of(ip: IpAddr) -> Reach {
    let ip = ip.to_canonical();
    if ip.is_loopback() {
        Reach::Loopback
    } else if ip.is_unspecified() {
        Reach::AllInterfaces
    } else {
        Reach::Network
    }
}

/// Parses a `--listen-tcp` value: `Ok` for `IP:PORT`, otherwise whether it looks like a
/// host name with a port (`Err(Some(Reach::HostName))`) or is malformed (`Err(None)`).
fn parse_listen(listen: &str) -> Result<SocketAddr, Option<Reach>> {
    if let Ok(addr) = listen.parse::<SocketAddr>() {
        return Ok(addr);
    }
    match listen.rsplit_once(':') {
        Some((host, port))
            if !host.is_empty()
                && !host.contains(':')
                && host.parse::<IpAddr>().is_err()
                && port.parse::<u16>().is_ok() =>
        {
            Err(Some(Reach::HostName))
        }
        _ => Err(None),
    }
}

/// The TLS flags of `serve`, as given.
#[derive(Debug, Clone, Default)]
pub struct TlsFlags {
    /// `--tls-cert`: the server's certificate chain (PEM).
    pub cert: Option<PathBuf>,
    /// `--tls-key`: its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// `--tls-client-ca`: CA certificates (PEM) client certificates must chain to.
    pub client_ca: Option<PathBuf>,
}

/// A TCP listener that passed [`check_listener`]: the address and all three files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpListenerConfig {
    /// Where to listen.
    pub addr: SocketAddr,
    /// What the address reaches.
    pub reach: Reach,
    /// The server's certificate chain.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// The CA client certificates must chain to.
    pub client_ca: PathBuf,
}

/// The rule for `--listen-tcp` (pure): `Ok(None)` without a TCP listener, `Ok(Some)` for
/// an IP address with all of `--tls-cert`, `--tls-key`, `--tls-client-ca`; otherwise
/// the refusal. See the module documentation.
pub fn check_listener(
    listen: Option<&str>,
    flags: &TlsFlags,
) -> Result<Option<TcpListenerConfig>, TlsError> {
    let Some(listen) = listen else {
        let given = [
            ("--tls-cert", &flags.cert),
            ("--tls-key", &flags.key),
            ("--tls-client-ca", &flags.client_ca),
        ]
        .into_iter()
        .find(|(_, v)| v.is_some());
        return match given {
            Some((flag, _)) => Err(TlsError::TlsWithoutListener { flag }),
            None => Ok(None),
        };
    };
    let bad = |reason| TlsError::BadAddress {
        listen: listen.to_string(),
        reason,
    };
    let parsed = parse_listen(listen);
    let reach = match &parsed {
        Ok(addr) => reach_of(addr.ip()),
        Err(Some(reach)) => *reach,
        Err(None) => return Err(bad("not an address with a port")),
    };
    let (Some(cert), Some(key), Some(client_ca)) = (&flags.cert, &flags.key, &flags.client_ca)
    else {
        let missing: Vec<&str> = [
            ("--tls-cert", &flags.cert),
            ("--tls-key", &flags.key),
            ("--tls-client-ca", &flags.client_ca),
        ]
        .into_iter()
        .filter(|(_, v)| v.is_none())
        .map(|(flag, _)| flag)
        .collect();
        return Err(TlsError::ClientAuthRequired {
            listen: listen.to_string(),
            reach,
            why: reach.why(),
            missing: missing.join(", "),
        });
    };
    let addr = parsed.map_err(|_| bad("host names are not resolved"))?;
    Ok(Some(TcpListenerConfig {
        addr,
        reach,
        cert: cert.clone(),
        key: key.clone(),
        client_ca: client_ca.clone(),
    }))
}

fn file_err(what: &'static str, path: &Path, reason: impl Into<String>) -> TlsError {
    TlsError::File {
        what,
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn read_certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = std::fs::read(path).map_err(|e| file_err(what, path, e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(what, path, format!("bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(file_err(what, path, "no CERTIFICATE in it"));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    const WHAT: &str = "TLS key";
    let pem = std::fs::read(path).map_err(|e| file_err(WHAT, path, e.to_string()))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => file_err(
            WHAT,
            path,
            "no PRIVATE KEY in it (an encrypted key is not supported)",
        ),
        e => file_err(WHAT, path, format!("bad PEM: {e}")),
    })
}

/// Reads the files of `c` and builds the server configuration: ring, TLS 1.2 + 1.3,
/// ALPN h2, client certificates required and verified against the client CA.
pub fn server_config(c: &TcpListenerConfig) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config_err = |source| TlsError::Config {
        addr: c.addr,
        source,
    };

    let chain = read_certs("TLS certificate", &c.cert)?;
    let key = provider
        .key_provider
        .load_private_key(read_key(&c.key)?)
        .map_err(|e| file_err("TLS key", &c.key, e.to_string()))?;
    let certified = CertifiedKey::new(chain, key);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
            return Err(TlsError::KeyMismatch {
                key: c.key.clone(),
                cert: c.cert.clone(),
            });
        }
        Err(e) => return Err(file_err("TLS certificate", &c.cert, e.to_string())),
    }

    const CA: &str = "client CA";
    let mut roots = RootCertStore::empty();
    for cert in read_certs(CA, &c.client_ca)? {
        roots
            .add(cert)
            .map_err(|e| file_err(CA, &c.client_ca, e.to_string()))?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| file_err(CA, &c.client_ca, e.to_string()))?;

    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(config_err)?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// A configured and bound TCP listener, not yet accepting. Binding needs no runtime, so
/// `serve` can do it before anything else changes.
pub struct TlsListener {
    listener: std::net::TcpListener,
    addr: SocketAddr,
    acceptor: TlsAcceptor,
}

impl TlsListener {
    /// Reads the files ([`server_config`]) and binds `c.addr`.
    pub fn bind(c: &TcpListenerConfig) -> Result<Self, TlsError> {
        let config = server_config(c)?;
        let bind_err = |action, source| TlsError::Bind {
            addr: c.addr,
            action,
            source,
        };
        let listener = std::net::TcpListener::bind(c.addr).map_err(|e| bind_err("bind", e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| bind_err("set non-blocking", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| bind_err("read the bound address", e))?;
        Ok(Self {
            listener,
            addr,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsListener")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Starts accepting on `listener`; without one, the stream is empty. Must be called
/// inside a tokio runtime.
pub fn incoming(listener: Option<TlsListener>) -> Result<TlsIncoming, TlsError> {
    let Some(l) = listener else {
        return Ok(TlsIncoming { accepting: None });
    };
    let tcp = TcpListener::from_std(l.listener).map_err(|source| TlsError::Bind {
        addr: l.addr,
        action: "register with the runtime",
        source,
    })?;
    Ok(TlsIncoming {
        accepting: Some(Accepting {
            listener: tcp,
            addr: l.addr,
            acceptor: l.acceptor,
            handshakes: JoinSet::new(),
            backoff: None,
        }),
    })
}

/// The connections of a [`TlsListener`] whose handshake succeeded (none without a
/// listener). Dropping it closes the listener and aborts the handshakes in progress.
#[derive(Debug)]
pub struct TlsIncoming {
    accepting: Option<Accepting>,
}

struct Accepting {
    listener: TcpListener,
    addr: SocketAddr,
    acceptor: TlsAcceptor,
    handshakes: JoinSet<Option<TlsStream<TcpStream>>>,
    backoff: Option<Pin<Box<Sleep>>>,
}

impl fmt::Debug for Accepting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Accepting")
            .field("addr", &self.addr)
            .field("handshakes", &self.handshakes.len())
            .finish_non_exhaustive()
    }
}

async fn handshake(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
    listener: SocketAddr,
) -> Option<TlsStream<TcpStream>> {
    let _ = tcp.set_nodelay(true);
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => {
            tracing::debug!(%peer, %listener, "TLS client accepted");
            Some(tls)
        }
        Ok(Err(e)) => {
            tracing::warn!(%peer, %listener, "TLS handshake refused: {e}");
            None
        }
        Err(_) => {
            tracing::warn!(%peer, %listener,
                "TLS handshake not finished within {HANDSHAKE_TIMEOUT:?}; connection dropped");
            None
        }
    }
}

impl Stream for TlsIncoming {
    type Item = io::Result<Connection>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(this) = &mut self.get_mut().accepting else {
            return Poll::Ready(None);
        };
        if let Some(sleep) = &mut this.backoff
            && sleep.as_mut().poll(cx).is_ready()
        {
            this.backoff = None;
        }
        loop {
            while this.backoff.is_none() && this.handshakes.len() < MAX_HANDSHAKES {
                match this.listener.poll_accept(cx) {
                    Poll::Ready(Ok((tcp, peer))) => {
                        let acceptor = this.acceptor.clone();
                        this.handshakes
                            .spawn(handshake(acceptor, tcp, peer, this.addr));
                    }
                    Poll::Ready(Err(e)) => {
                        tracing::warn!(listener = %this.addr, "cannot accept a TCP connection: {e}");
                        let mut sleep = Box::pin(tokio::time::sleep(ACCEPT_BACKOFF));
                        // Registers the wake-up.
                        if sleep.as_mut().poll(cx).is_pending() {
                            this.backoff = Some(sleep);
                        }
                    }
                    Poll::Pending => break,
                }
            }
            match this.handshakes.poll_join_next(cx) {
                Poll::Ready(Some(Ok(Some(tls)))) => {
                    return Poll::Ready(Some(Ok(Connection::Tls(Box::new(tls)))));
                }
                // Refused (logged) or aborted: a slot is free, accept again.
                Poll::Ready(Some(Ok(None) | Err(_))) => {}
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// A connection to the API: from the Unix socket or from the TCP listener after the TLS
/// handshake.
#[derive(Debug)]
pub enum Connection {
    /// From the Unix socket.
    Unix(UnixStream),
    /// From the TCP listener, with a verified client certificate.
    Tls(Box<TlsStream<TcpStream>>),
}

impl tonic::transport::server::Connected for Connection {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Connection::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Connection::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Connection::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Connection::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Connection::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Connection::Unix(s) => s.is_write_vectored(),
            Connection::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Unix(s) => Pin::new(s).poll_flush(cx),
            Connection::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Connection::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn all() -> TlsFlags {
        TlsFlags {
            cert: Some("/etc/v2engine/server.pem".into()),
            key: Some("/etc/v2engine/server.key".into()),
            client_ca: Some("/etc/v2engine/clients-ca.pem".into()),
        }
    }

    fn without_client_ca() -> TlsFlags {
        TlsFlags {
            client_ca: None,
            ..all()
        }
    }

    #[test]
    fn no_listener_and_no_flags_is_fine() {
        assert_eq!(check_listener(None, &TlsFlags::default()).unwrap(), None);
    }

    #[test]
    fn tls_flags_without_a_listener_are_refused() {
        for (flags, flag) in [
            (all(), "--tls-cert"),
            (
                TlsFlags {
                    client_ca: Some("/ca.pem".into()),
                    ..TlsFlags::default()
                },
                "--tls-client-ca",
            ),
        ] {
            let e = check_listener(None, &flags).unwrap_err();
            assert!(
                matches!(e, TlsError::TlsWithoutListener { flag: f } if f == flag),
                "{e}"
            );
            assert!(e.to_string().contains("without --listen-tcp"), "{e}");
        }
    }

    #[test]
    fn reach_of_addresses() {
        for (ip, reach) in [
            ("127.0.0.1", Reach::Loopback),
            ("127.1.2.3", Reach::Loopback),
            ("::1", Reach::Loopback),
            ("::ffff:127.0.0.1", Reach::Loopback),
            ("0.0.0.0", Reach::AllInterfaces),
            ("::", Reach::AllInterfaces),
            ("10.0.0.5", Reach::Network),
            ("192.168.1.10", Reach::Network),
            ("fe80::1", Reach::Network),
            ("::ffff:10.0.0.5", Reach::Network),
        ] {
            assert_eq!(reach_of(ip.parse().unwrap()), reach, "{ip}");
        }
    }

    #[test]
    fn every_tcp_listener_without_client_certificates_is_refused() {
        let cases = [
            ("0.0.0.0:7443", Reach::AllInterfaces),
            ("[::]:7443", Reach::AllInterfaces),
            ("10.1.2.3:7443", Reach::Network),
            ("[2001:db8::1]:7443", Reach::Network),
            ("127.0.0.1:7443", Reach::Loopback),
            ("[::1]:7443", Reach::Loopback),
            ("node-1.example:7443", Reach::HostName),
            ("localhost:7443", Reach::HostName),
        ];
        for (listen, want) in cases {
            for flags in [TlsFlags::default(), without_client_ca()] {
                let e = check_listener(Some(listen), &flags).unwrap_err();
                let msg = e.to_string();
                match &e {
                    TlsError::ClientAuthRequired { reach, .. } => {
                        assert_eq!(*reach, want, "{listen}")
                    }
                    other => panic!("{listen}: {other}"),
                }
                assert!(msg.contains(listen), "{msg}");
                assert!(msg.contains("--tls-client-ca"), "{msg}");
                assert!(msg.contains("client-certificate"), "{msg}");
            }
        }
    }

    #[test]
    fn the_refusal_names_exactly_the_missing_flags() {
        let flags = TlsFlags {
            key: None,
            client_ca: None,
            ..all()
        };
        match check_listener(Some("0.0.0.0:7443"), &flags).unwrap_err() {
            TlsError::ClientAuthRequired { missing, .. } => {
                assert_eq!(missing, "--tls-key, --tls-client-ca")
            }
            other => panic!("{other}"),
        }
        let e = check_listener(Some("127.0.0.1:7443"), &without_client_ca()).unwrap_err();
        assert!(e.to_string().contains("even on loopback"), "{e}");
    }

    #[test]
    fn ip_addresses_with_mutual_tls_are_allowed() {
        for (listen, reach) in [
            ("0.0.0.0:7443", Reach::AllInterfaces),
            ("[::]:7443", Reach::AllInterfaces),
            ("10.1.2.3:7443", Reach::Network),
            ("127.0.0.1:7443", Reach::Loopback),
            ("[::1]:0", Reach::Loopback),
        ] {
            let c = check_listener(Some(listen), &all()).unwrap().unwrap();
            assert_eq!(c.addr, listen.parse::<SocketAddr>().unwrap());
            assert_eq!(c.reach, reach);
            assert_eq!(c.client_ca, PathBuf::from("/etc/v2engine/clients-ca.pem"));
        }
    }

    #[test]
    fn host_names_are_not_resolved_even_with_mutual_tls() {
        for listen in ["localhost:7443", "node-1.example:7443"] {
            let e = check_listener(Some(listen), &all()).unwrap_err();
            assert!(
                matches!(&e, TlsError::BadAddress { reason, .. } if reason.contains("host names")),
                "{e}"
            );
            assert!(e.to_string().contains(listen), "{e}");
        }
    }

    #[test]
    fn malformed_addresses_are_refused_before_anything_else() {
        for listen in [
            "7443",
            "127.0.0.1",
            "::1",
            "127.0.0.1:http",
            "127.0.0.1:70000",
            ":7443",
            "",
        ] {
            for flags in [all(), TlsFlags::default()] {
                let e = check_listener(Some(listen), &flags).unwrap_err();
                assert!(matches!(e, TlsError::BadAddress { .. }), "{listen:?}: {e}");
            }
        }
    }
}
