//! Serving the API on a root-only Unix socket.
//!
//! The socket is created with mode 0600 (umask during bind, then chmod) in a parent
//! directory created 0700 when missing. A stale socket of a dead executor is removed; a
//! live one, or a path that is not a socket, is refused. The socket is removed again on
//! shutdown. With a [`TlsListener`] the same service is also served on TCP with mutual
//! TLS (see [`crate::tls`]); both listeners stop together.

use std::future::Future;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::stat::{Mode, umask};
use tokio::net::UnixListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::UnixListenerStream;

use crate::daemon::Executor;
use crate::fsio::{self, FsError};
use crate::service::Service;
use crate::tls::{self, Connection, TlsError, TlsListener};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Another process answers on the socket.
    #[error("socket {path}: another executor is answering on it")]
    InUse {
        /// The socket.
        path: PathBuf,
    },
    /// Something other than a socket is at the path.
    #[error("socket path {path} exists and is not a socket; refusing to remove it")]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// The parent directory could not be created.
    #[error("socket directory: {0}")]
    Dir(#[from] FsError),
    /// A socket operation failed.
    #[error("socket {path}: cannot {action}: {source}")]
    Socket {
        /// The socket.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The cause.
        source: io::Error,
    },
    /// The gRPC server failed.
    #[error("gRPC server on {path}: {source}")]
    Serve {
        /// The socket.
        path: PathBuf,
        /// The cause.
        source: tonic::transport::Error,
    },
    /// The TCP listener could not start accepting.
    #[error(transparent)]
    Tcp(#[from] TlsError),
    /// Signal handlers could not be installed.
    #[error("cannot install the {signal} handler: {source}")]
    Signal {
        /// The signal.
        signal: &'static str,
        /// The cause.
        source: io::Error,
    },
}

/// Binds the socket at `path` with mode 0600. Must run inside a tokio runtime.
pub fn bind(path: &Path) -> Result<UnixListener, ServerError> {
    let serr = |action, source| ServerError::Socket {
        path: path.to_path_buf(),
        action,
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        fsio::create_dir_all(dir, 0o700)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(ServerError::InUse {
                    path: path.to_path_buf(),
                });
            }
            tracing::info!(socket = %path.display(), "removing stale socket");
            std::fs::remove_file(path).map_err(|e| serr("remove the stale socket", e))?;
        }
        Ok(_) => {
            return Err(ServerError::NotASocket {
                path: path.to_path_buf(),
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(serr("inspect the path", e)),
    }
    let old = umask(Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(path);
    umask(old);
    let listener = bound.map_err(|e| serr("bind", e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| serr("set mode 0600", e))?;
    Ok(listener)
}

/// How long in-flight calls may finish after the shutdown signal before the server
/// stops anyway (a client that never closes its connection must not keep us alive).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves the API for `exec` on `listener` (bound at `path`) until `shutdown` completes
/// and in-flight calls have finished (at most [`SHUTDOWN_GRACE`]), then removes the
/// socket.
pub async fn serve(
    exec: Arc<Executor>,
    listener: UnixListener,
    path: &Path,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    serve_with_tcp(exec, listener, path, None, shutdown).await
}

/// [`serve`], and with `tcp` the same service on that TCP listener with mutual TLS too.
/// Both stop accepting at `shutdown`; the TCP listener is closed when serving ends.
pub async fn serve_with_tcp(
    exec: Arc<Executor>,
    listener: UnixListener,
    path: &Path,
    tcp: Option<TlsListener>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let unix = UnixListenerStream::new(listener).map(|r| r.map(Connection::Unix));
    let incoming = unix.merge(tls::incoming(tcp)?);
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        let _ = stopping_tx.send(());
    };
    let serving = tonic::transport::Server::builder()
        .add_service(Service::new(exec).into_server())
        .serve_with_incoming_shutdown(incoming, signal);
    let grace = async move {
        if stopping_rx.await.is_ok() {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let result = tokio::select! {
        r = serving => r,
        () = grace => {
            tracing::warn!(socket = %path.display(),
                "connections still open {SHUTDOWN_GRACE:?} after the shutdown signal; stopping anyway");
            Ok(())
        }
    };
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(socket = %path.display(), "cannot remove the socket: {e}");
    }
    result.map_err(|source| ServerError::Serve {
        path: path.to_path_buf(),
        source,
    })
}

/// A future that completes on SIGTERM or SIGINT. Must be called inside a tokio runtime.
pub fn shutdown_signal() -> Result<impl Future<Output = ()>, ServerError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(|source| ServerError::Signal {
        signal: "SIGTERM",
        source,
    })?;
    let mut int = signal(SignalKind::interrupt()).map_err(|source| ServerError::Signal {
        signal: "SIGINT",
        source,
    })?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
    })
}
