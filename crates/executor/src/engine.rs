//! The SPDK engine: the seam reconcile sees ([`Engine`]) and the supervisor behind it.
//!
//! Reconcile prepares the host, then calls [`Engine::after_prepare`] with the effective
//! configuration and how far the preparation got. [`supervisor::Supervisor`] implements it
//! by starting and monitoring `spdk_tgt -m cpu_mask -s memory -r socket`; [`NoEngine`]
//! reports nothing, and the node's state is then the preparation's.
//!
//! Modules: pure [`backoff`], [`machine`] (the state machine), [`pools`] (SPDK's memory
//! pools sized to the memory), [`spec`] (command line),
//! [`usage`] (volumes using the node); I/O [`process`] (spawn, pid file, signals),
//! [`supervisor`] (the actor), [`rpc`] (calling the engine from blocking code).

pub mod backoff;
pub mod machine;
pub mod pools;
pub mod process;
pub mod rpc;
pub mod spec;
pub mod supervisor;
pub mod usage;

use model::NodeConfig;

use self::rpc::RpcHandle;

/// How far host preparation got; tells the engine whether it may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostReadiness {
    /// The engine is disabled here: stop it if it runs.
    Disabled,
    /// Hugepages fell short until the next boot: the engine must not start.
    WaitingForReboot,
    /// Modules are loaded and the hugepages allocated: the engine may run.
    Ready,
}

/// What the engine reports back to the node status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineReport {
    /// Replaces the preparation's engine state (e.g. `starting`, `running`, `crashed`);
    /// `None` keeps it.
    pub state: Option<String>,
    /// `spdk_get_version` of the running engine, empty when not running.
    pub spdk_version: String,
    /// Restarts since the executor started.
    pub restarts: u32,
    /// Counts the engine's starts: a different value means it restarted in between (and
    /// lost its bdevs, which the next reconcile creates again).
    pub generation: u64,
}

/// A failure of the engine, naming the node.
#[derive(Debug, thiserror::Error)]
#[error("engine on node {node}: {reason}")]
pub struct EngineError {
    /// The node.
    pub node: String,
    /// What went wrong.
    pub reason: String,
}

/// The engine supervisor, as reconcile sees it.
pub trait Engine: Send + Sync + std::fmt::Debug {
    /// Called by every reconcile once the host is prepared (or the engine disabled).
    fn after_prepare(
        &self,
        config: &NodeConfig,
        host: HostReadiness,
    ) -> Result<EngineReport, EngineError>;

    /// The engine as it is now (it may have crashed or restarted since the last
    /// reconcile); `None` without an engine.
    fn live(&self) -> Option<EngineReport> {
        None
    }

    /// A handle to call the engine while it runs.
    fn rpc(&self) -> Option<RpcHandle> {
        None
    }

    /// True when `after_prepare(config, host)` would stop the running engine: the node is
    /// disabled, or it must restart with another command line. Reconcile refuses that
    /// while volumes use the node.
    fn would_stop(&self, _config: &NodeConfig, _host: HostReadiness) -> bool {
        false
    }

    /// The engine state reconcile would reach for `host` (`running` where prepared);
    /// `None` keeps the preparation's.
    fn predicted_state(&self, _host: HostReadiness) -> Option<&'static str> {
        None
    }
}

/// No engine: host preparation only.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEngine;

impl Engine for NoEngine {
    fn after_prepare(&self, _: &NodeConfig, _: HostReadiness) -> Result<EngineReport, EngineError> {
        Ok(EngineReport::default())
    }
}
