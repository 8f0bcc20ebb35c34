//! Calling the running engine from the executor's synchronous code.
//!
//! Reconcile and predict run in blocking threads; the SPDK client is async. An
//! [`RpcHandle`] spawns the calls onto the daemon's runtime and waits for their result
//! with a bound. It must be used from a blocking thread (never from a runtime thread,
//! which would have to run the calls it is waiting for: such a wait ends in
//! [`RpcError::Timeout`]).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use spdk_rpc::SpdkApi;

/// The engine could not be called.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// No result within the bound.
    #[error("engine at {socket}: no answer within {timeout:?}")]
    Timeout {
        /// The engine's socket.
        socket: PathBuf,
        /// The bound.
        timeout: Duration,
    },
    /// The runtime dropped the call (the daemon is shutting down).
    #[error("engine at {socket}: the call was dropped (the executor is shutting down)")]
    Dropped {
        /// The engine's socket.
        socket: PathBuf,
    },
}

/// A handle to call the running engine from blocking code.
#[derive(Clone)]
pub struct RpcHandle {
    api: Arc<dyn SpdkApi>,
    runtime: tokio::runtime::Handle,
    socket: PathBuf,
    timeout: Duration,
}

impl std::fmt::Debug for RpcHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcHandle")
            .field("socket", &self.socket)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RpcHandle {
    /// A handle running calls of `api` (the engine at `socket`) on `runtime`, each batch
    /// bounded by `timeout`.
    pub fn new(
        api: Arc<dyn SpdkApi>,
        runtime: tokio::runtime::Handle,
        socket: impl Into<PathBuf>,
        timeout: Duration,
    ) -> Self {
        Self {
            api,
            runtime,
            socket: socket.into(),
            timeout,
        }
    }

    /// The engine's socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Runs the future `f` builds from the API on the runtime and waits for its output.
    pub fn run<T, F, Fut>(&self, f: F) -> Result<T, RpcError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<dyn SpdkApi>) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let fut = f(Arc::clone(&self.api));
        let task = self.runtime.spawn(async move {
            // The receiver may have given up (timeout); nothing to do then.
            let _ = tx.send(fut.await);
        });
        match rx.recv_timeout(self.timeout) {
            Ok(v) => Ok(v),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                task.abort();
                Err(RpcError::Timeout {
                    socket: self.socket.clone(),
                    timeout: self.timeout,
                })
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(RpcError::Dropped {
                socket: self.socket.clone(),
            }),
        }
    }
}
