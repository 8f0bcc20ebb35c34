//! Turning an [`Endpoint`] into a gRPC channel.
//!
//! gRPC runs over any byte stream: the channel's connector opens the stream (a Unix
//! socket here, an SSH streamlocal channel for `ssh://`), and tonic speaks HTTP/2 on it.

use std::path::PathBuf;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Uri};

use crate::endpoint::Endpoint;

/// Settings shared by every connection of a fleet.
#[derive(Debug, Clone)]
pub struct TransportOptions {
    /// Private key for `ssh://` endpoints.
    pub ssh_private_key_file: Option<PathBuf>,
    /// known_hosts file that `ssh://` host keys are checked against.
    pub ssh_known_hosts_file: Option<PathBuf>,
    /// How long opening one connection may take.
    pub connect_timeout: Duration,
    /// How long one call may take.
    pub request_timeout: Duration,
}

impl Default for TransportOptions {
    fn default() -> Self {
        Self {
            ssh_private_key_file: None,
            ssh_known_hosts_file: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
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
    /// A transport this build cannot open yet.
    #[error("endpoint {endpoint}: the {scheme} transport is not available in this build")]
    Unsupported {
        /// The endpoint.
        endpoint: String,
        /// Its scheme.
        scheme: &'static str,
    },
}

/// Opens a channel to the executor at `endpoint`. The connection is made now (not lazily),
/// so an unreachable node is reported here, naming the socket.
pub async fn connect(
    endpoint: &Endpoint,
    opts: &TransportOptions,
) -> Result<Channel, TransportError> {
    match endpoint {
        Endpoint::Unix(path) => connect_unix(path.clone(), opts).await,
        Endpoint::Ssh { .. } => Err(TransportError::Unsupported {
            endpoint: endpoint.to_string(),
            scheme: "ssh",
        }),
    }
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
