//! The JSON-RPC Unix socket server, and [`Sim`], a simulator running on its own thread.

use crate::cli::Config;
use crate::jsonrpc::{self, Envelope, Frame, Splitter};
use crate::rpc;
use crate::shared::Shared;
use crate::state::Target;
use std::future::Future;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

/// The server could not start or run.
#[derive(Debug, Error)]
pub enum ServeError {
    /// Binding the RPC socket failed.
    #[error("cannot listen on RPC socket {path}: {source}")]
    Bind {
        /// Socket path.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// Something that is not a socket is in the way.
    #[error("RPC socket path {0} exists and is not a socket")]
    NotASocket(PathBuf),
    /// Removing a stale socket failed.
    #[error("cannot remove stale RPC socket {path}: {source}")]
    Stale {
        /// Socket path.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// The async runtime could not be built.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    /// The server thread could not be started or died.
    #[error("simulator thread for {0} failed")]
    Thread(PathBuf),
    /// The JSON configuration (`-c`) is one spdk_tgt would refuse.
    #[error(transparent)]
    Startup(#[from] crate::startup::StartupError),
}

fn remove_stale(path: &Path) -> Result<(), ServeError> {
    match std::fs::symlink_metadata(path) {
        Ok(md) if md.file_type().is_socket() => {
            std::fs::remove_file(path).map_err(|source| ServeError::Stale {
                path: path.to_owned(),
                source,
            })
        }
        Ok(_) => Err(ServeError::NotASocket(path.to_owned())),
        Err(_) => Ok(()),
    }
}

/// Serves `config.socket` until `shutdown` completes; `ready` runs once the socket accepts.
/// The socket file is removed on the way out. The JSON configuration, if any, is applied
/// first: one spdk_tgt would refuse ends the start before the socket exists.
///
/// # Errors
/// [`ServeError`] when the configuration is refused or the socket cannot be created.
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()>,
    ready: impl FnOnce(),
) -> Result<(), ServeError> {
    let startup = match &config.json_config {
        Some(path) => Some((path, crate::startup::load(path, &config.version)?)),
        None => None,
    };
    let mut target = Target::new(config.version.clone(), config.rebuild_time);
    target.aio_file_block_size = config.aio_file_block_size;
    let shared = Arc::new(Shared::new(target));
    if let Some((path, s)) = startup {
        crate::startup::run_calls(&shared, path, s.calls).await?;
    }
    remove_stale(&config.socket)?;
    let listener = UnixListener::bind(&config.socket).map_err(|source| ServeError::Bind {
        path: config.socket.clone(),
        source,
    })?;
    ready();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(handle_connection(Arc::clone(&shared), stream));
                }
                Err(e) => eprintln!("spdk-sim: accept on {}: {e}", config.socket.display()),
            },
        }
    }
    drop(listener);
    let _ = std::fs::remove_file(&config.socket);
    Ok(())
}

/// Reads concatenated requests, answers each in order; closes on invalid JSON.
async fn handle_connection(shared: Arc<Shared>, stream: UnixStream) {
    let (mut rd, mut wr) = stream.into_split();
    let mut splitter = Splitter::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        splitter.push(&buf[..n]);
        if splitter.buffered() > jsonrpc::MAX_BUFFERED {
            return;
        }
        loop {
            let value = match splitter.next_frame() {
                Frame::NeedMore => break,
                Frame::Invalid => return,
                Frame::Value(v) => v,
            };
            let out = match jsonrpc::parse_envelope(value) {
                Envelope::Invalid { id } => jsonrpc::encode_invalid(&id),
                Envelope::Call { id, method, params } => {
                    let outcome = rpc::dispatch(&shared, &method, params).await;
                    jsonrpc::encode_response(id.as_ref(), &outcome)
                }
            };
            if wr.write_all(&out).await.is_err() {
                return;
            }
        }
    }
}

/// A simulator running on its own thread with its own runtime (so that stopping it really
/// closes every socket it owns, like killing the process would).
#[derive(Debug)]
pub struct Sim {
    socket: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), ServeError>>>,
}

impl Sim {
    /// Starts a simulator; returns once its socket accepts connections.
    ///
    /// # Errors
    /// [`ServeError`] when the socket cannot be created.
    pub fn spawn(config: Config) -> Result<Self, ServeError> {
        let socket = config.socket.clone();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
        let thread_socket = socket.clone();
        let thread = std::thread::Builder::new()
            .name(format!("spdk-sim {}", socket.display()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(ServeError::Runtime)?;
                let shutdown = async move {
                    let _ = stop_rx.await;
                };
                let result = rt.block_on(serve(config, shutdown, move || {
                    let _ = ready_tx.send(());
                }));
                drop(rt);
                let _ = std::fs::remove_file(&thread_socket);
                result
            })
            .map_err(|_| ServeError::Thread(socket.clone()))?;
        if ready_rx.recv().is_err() {
            return match thread.join() {
                Ok(Err(e)) => Err(e),
                _ => Err(ServeError::Thread(socket)),
            };
        }
        Ok(Self {
            socket,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// The RPC socket path.
    #[must_use]
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Stops the simulator: every connection and listening socket it owns is closed.
    ///
    /// # Errors
    /// [`ServeError::Thread`] if the server thread panicked.
    pub fn stop(mut self) -> Result<(), ServeError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take().map(std::thread::JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(e),
            Some(Err(_)) => Err(ServeError::Thread(self.socket.clone())),
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}
