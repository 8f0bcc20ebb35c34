//! A serving node: the [`Executor`] wired to its engine [`Supervisor`], and the task that
//! reconciles again when the engine came back after a crash (spdk_tgt keeps no
//! configuration across a restart: the disks' aio bdevs must be created again, and
//! examine brings their lvstores back).
//!
//! Used by `serve` and by in-process tests; must be started inside a tokio runtime.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::daemon::{Executor, ExecutorError};
use crate::engine::machine::Snapshot;
use crate::engine::spec::EngineOptions;
use crate::engine::supervisor::{Supervisor, SupervisorError};
use crate::engine::{Engine, NoEngine};
use crate::host::HostOs;
use crate::volumes::VolumeOptions;

/// How to assemble a node.
#[derive(Debug)]
pub struct NodeOptions {
    /// The node's name.
    pub node: String,
    /// Records, baseline, engine pid file and log.
    pub state_dir: PathBuf,
    /// The host.
    pub host: Box<dyn HostOs>,
    /// The engine; `None` runs host preparation only.
    pub engine: Option<EngineOptions>,
    /// Where sysfs, proc and udev are read for block devices (`/`, or the host root of a
    /// LinuxHost under test).
    pub device_root: PathBuf,
    /// Where volumes are exported (data address, port range).
    pub volumes: VolumeOptions,
}

/// A running node.
#[derive(Debug)]
pub struct Node {
    exec: Arc<Executor>,
    supervisor: Option<Supervisor>,
    resync: Option<JoinHandle<()>>,
}

impl Node {
    /// Opens the executor, starts the supervisor (adopting an engine left running) and
    /// the resync task. Does not reconcile: see [`Node::reconcile_in_background`].
    pub fn start(opts: NodeOptions) -> Result<Self, ExecutorError> {
        let supervisor = opts
            .engine
            .map(|e| Supervisor::start(&opts.node, e, &opts.state_dir));
        let engine: Box<dyn Engine> = match &supervisor {
            Some(s) => Box::new(s.clone()),
            None => Box::new(NoEngine),
        };
        let exec = Arc::new(
            Executor::open(&opts.node, &opts.state_dir, opts.host, engine)?
                .with_device_root(&opts.device_root)
                .with_volume_options(opts.volumes),
        );
        let resync = supervisor
            .as_ref()
            .map(|s| tokio::spawn(resync(Arc::clone(&exec), s.subscribe())));
        Ok(Self {
            exec,
            supervisor,
            resync,
        })
    }

    /// The executor.
    pub fn executor(&self) -> &Arc<Executor> {
        &self.exec
    }

    /// The supervisor, when the node has an engine.
    pub fn supervisor(&self) -> Option<&Supervisor> {
        self.supervisor.as_ref()
    }

    /// Reconciles once in a blocking task (the start-up reconcile); a failure is in the
    /// status and the log.
    pub fn reconcile_in_background(&self) -> JoinHandle<()> {
        let exec = Arc::clone(&self.exec);
        tokio::task::spawn_blocking(move || {
            let _ = exec.reconcile();
        })
    }

    /// Ends the resync task; stops the engine too when `stop_engine` (otherwise it keeps
    /// running and the next executor adopts it).
    pub async fn shutdown(mut self, stop_engine: bool) -> Result<(), SupervisorError> {
        if let Some(r) = self.resync.take() {
            r.abort();
        }
        match (&self.supervisor, stop_engine) {
            (Some(s), true) => {
                tracing::info!(node = %self.exec.node(), "stopping the engine on exit");
                s.stop().await.map(|_| ())
            }
            _ => Ok(()),
        }
    }

    /// The state directory's engine log.
    pub fn engine_log(state_dir: &Path) -> PathBuf {
        crate::engine::process::EngineFiles::new(state_dir).log_file()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(r) = self.resync.take() {
            r.abort();
        }
    }
}

/// Reconciles whenever the engine reaches `running` again after a crash.
async fn resync(exec: Arc<Executor>, mut rx: watch::Receiver<Snapshot>) {
    let mut seen = rx.borrow().generation;
    while rx.changed().await.is_ok() {
        let (generation, after_crash) = {
            let s = rx.borrow_and_update();
            (s.generation, s.after_crash)
        };
        if generation == seen {
            continue;
        }
        seen = generation;
        if !after_crash {
            continue;
        }
        tracing::info!(node = %exec.node(), "the engine restarted after a crash; reconciling its disks");
        let e = Arc::clone(&exec);
        if let Err(err) = tokio::task::spawn_blocking(move || e.reconcile()).await {
            tracing::error!(node = %exec.node(), "reconcile after an engine restart failed: {err}");
        }
    }
}
