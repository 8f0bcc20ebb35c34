//! Turning an [`Endpoint`] into a gRPC channel.
//!
//! gRPC runs over any byte stream: the channel's connector opens the stream and tonic
//! speaks HTTP/2 on it. The streams are:
//!
//! - `unix://`: the executor's Unix socket;
//! - `ssh://`: a `direct-streamlocal@openssh.com` channel of one SSH connection per
//!   endpoint ([`crate::ssh`]);
//! - `https://`: TCP with mutual TLS ([`crate::tls`]).
//!
//! The first stream is opened by [`connect`] itself, so that every failure (unreachable,
//! host key, authentication, refused forwarding, refused certificate) comes back typed;
//! later reconnects of the channel go through the same tunnel or dialer.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::UnixStream;
use tonic::transport::{Channel, Uri};

use crate::endpoint::Endpoint;
use crate::ssh::{SshAuth, SshError, SshTarget, SshTunnel};
use crate::tls::{TlsDialer, TlsError, TlsFiles};

/// Settings shared by every connection of a fleet.
#[derive(Debug, Clone)]
pub struct TransportOptions {
    /// Private key for `ssh://` endpoints (OpenSSH or PEM format, unencrypted). When
    /// unset, the keys of the ssh-agent are offered.
    pub ssh_private_key_file: Option<PathBuf>,
    /// known_hosts file that `ssh://` host keys are checked against. Required for
    /// `ssh://`: an unknown host is refused, never trusted on first use.
    pub ssh_known_hosts_file: Option<PathBuf>,
    /// The ssh-agent's socket, used when no private key file is set. `None` reads
    /// `SSH_AUTH_SOCK`.
    pub ssh_agent_socket: Option<PathBuf>,
    /// CA certificates (PEM) that an `https://` executor's certificate must chain to.
    /// Required for `https://`.
    pub tls_ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM) presented to `https://` executors.
    pub tls_cert_file: Option<PathBuf>,
    /// Private key (PEM) of [`TransportOptions::tls_cert_file`].
    pub tls_key_file: Option<PathBuf>,
    /// How long opening one connection may take (each of: TCP connect, SSH or TLS
    /// handshake with authentication, opening the forwarded channel).
    pub connect_timeout: Duration,
    /// How long one call may take.
    pub request_timeout: Duration,
}

impl Default for TransportOptions {
    fn default() -> Self {
        Self {
            ssh_private_key_file: None,
            ssh_known_hosts_file: None,
            ssh_agent_socket: None,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
        }
    }
}

impl TransportOptions {
    /// The SSH part of these options.
    pub fn ssh_auth(&self) -> SshAuth {
        SshAuth {
            known_hosts_file: self.ssh_known_hosts_file.clone(),
            private_key_file: self.ssh_private_key_file.clone(),
            agent_socket: self.ssh_agent_socket.clone(),
            connect_timeout: self.connect_timeout,
        }
    }

    /// The TLS part of these options.
    pub fn tls_files(&self) -> TlsFiles {
        TlsFiles {
            ca_file: self.tls_ca_file.clone(),
            cert_file: self.tls_cert_file.clone(),
            key_file: self.tls_key_file.clone(),
        }
    }
}

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The Unix socket could not be reached.
    #[error("cannot connect to executor socket {path}: {source}")]
    Unix {
        /// Socket path.
        path: PathBuf,
        /// Underlying error (tonic's transport error wraps the io error).
        #[source]
        source: tonic::transport::Error,
    },
    /// A transport this build cannot open. (Every scheme is supported now; kept so that
    /// callers matching on it still compile.)
    #[error("endpoint {endpoint}: the {scheme} transport is not available in this build")]
    Unsupported {
        /// The endpoint.
        endpoint: String,
        /// Its scheme.
        scheme: &'static str,
    },
    /// The SSH tunnel could not be opened.
    #[error(transparent)]
    Ssh(Box<SshError>),
    /// The mutual-TLS connection could not be opened.
    #[error(transparent)]
    Tls(Box<TlsError>),
    /// The stream was opened, but gRPC (HTTP/2) could not start on it.
    #[error("endpoint {endpoint}: gRPC could not start over the connection: {source}")]
    Grpc {
        /// The endpoint.
        endpoint: String,
        /// Why.
        #[source]
        source: tonic::transport::Error,
    },
}

impl From<SshError> for TransportError {
    fn from(e: SshError) -> Self {
        TransportError::Ssh(Box::new(e))
    }
}

impl From<TlsError> for TransportError {
    fn from(e: TlsError) -> Self {
        TransportError::Tls(Box::new(e))
    }
}

impl TransportError {
    /// True when the node could not be reached at all (TCP failed or timed out).
    pub fn is_unreachable(&self) -> bool {
        match self {
            TransportError::Ssh(e) => e.is_unreachable(),
            TransportError::Tls(e) => e.is_unreachable(),
            _ => false,
        }
    }

    /// True when the node or its executor is down (unreachable, timed out, socket absent or
    /// refusing), as opposed to a configuration or security failure (host key, credentials,
    /// certificates), which must never be taken for a node failure.
    pub fn is_node_down(&self) -> bool {
        match self {
            TransportError::Unix { .. } => true,
            TransportError::Ssh(e) => e.is_node_down(),
            TransportError::Tls(e) => e.is_unreachable(),
            TransportError::Unsupported { .. } | TransportError::Grpc { .. } => false,
        }
    }
}

/// Opens a channel to the executor at `endpoint`. The connection is made now (not lazily),
/// so an unreachable node is reported here, naming the socket or `host:port`.
pub async fn connect(
    endpoint: &Endpoint,
    opts: &TransportOptions,
) -> Result<Channel, TransportError> {
    match endpoint {
        Endpoint::Unix(path) => connect_unix(path.clone(), opts).await,
        Endpoint::Ssh {
            user,
            host,
            port,
            socket,
        } => {
            let target = SshTarget {
                user: user.clone(),
                host: host.clone(),
                port: *port,
                socket: socket.clone(),
            };
            let tunnel = Arc::new(SshTunnel::new(target, opts.ssh_auth()));
            let first = tunnel.open_stream().await?;
            channel_over(endpoint, opts, first, move || {
                let tunnel = tunnel.clone();
                async move { tunnel.open_stream().await.map_err(std::io::Error::other) }
            })
            .await
        }
        Endpoint::Https { host, port } => {
            let dialer = Arc::new(TlsDialer::new(
                host,
                *port,
                &opts.tls_files(),
                opts.connect_timeout,
            )?);
            let first = dialer.connect().await?;
            channel_over(endpoint, opts, first, move || {
                let dialer = dialer.clone();
                async move { dialer.connect().await.map_err(std::io::Error::other) }
            })
            .await
        }
    }
}

/// A gRPC channel whose first connection is `first` and whose reconnects call `open`.
async fn channel_over<S, F, Fut>(
    endpoint: &Endpoint,
    opts: &TransportOptions,
    first: S,
    open: F,
) -> Result<Channel, TransportError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::io::Result<S>> + Send + 'static,
{
    let first = Arc::new(Mutex::new(Some(first)));
    let open = Arc::new(open);
    tonic::transport::Endpoint::from_static("http://executor.invalid")
        .connect_timeout(opts.connect_timeout)
        .timeout(opts.request_timeout)
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let ready = first.lock().ok().and_then(|mut f| f.take());
            let open = open.clone();
            async move {
                let stream = match ready {
                    Some(s) => s,
                    None => open().await?,
                };
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }))
        .await
        .map_err(|source| TransportError::Grpc {
            endpoint: endpoint.to_string(),
            source,
        })
}

async fn connect_unix(path: PathBuf, opts: &TransportOptions) -> Result<Channel, TransportError> {
    // The URI is required by tonic but unused: the connector below decides where bytes go.
    let connector_path = path.clone();
    tonic::transport::Endpoint::from_static("http://executor.invalid")
        .connect_timeout(opts.connect_timeout)
        .timeout(opts.request_timeout)
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let p = connector_path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(p).await?)) }
        }))
        .await
        .map_err(|source| TransportError::Unix { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync + 'static>() {}

    #[test]
    fn errors_can_cross_threads() {
        assert_send_sync::<TransportError>();
        assert_send_sync::<crate::ClientError>();
    }

    #[tokio::test]
    async fn ssh_without_known_hosts_is_refused_before_any_network() {
        let e: Endpoint = "ssh://root@127.0.0.1:1/run/x.sock".parse().unwrap();
        let err = connect(&e, &TransportOptions::default()).await.unwrap_err();
        assert!(
            matches!(&err, TransportError::Ssh(e) if matches!(**e, SshError::NoKnownHostsFile { .. })),
            "{err}"
        );
        assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
    }

    #[tokio::test]
    async fn https_without_ca_is_refused() {
        let e: Endpoint = "https://127.0.0.1:1".parse().unwrap();
        let err = connect(&e, &TransportOptions::default()).await.unwrap_err();
        assert!(
            matches!(&err, TransportError::Tls(e) if matches!(**e, TlsError::NoCaFile { .. })),
            "{err}"
        );
    }
}
