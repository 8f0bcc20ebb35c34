//! The seam for the SPDK engine supervisor.
//!
//! Reconcile prepares the host, then calls [`Engine::after_prepare`] with the effective
//! configuration and how far the preparation got. The supervisor (starting and
//! monitoring `spdk_tgt -m cpu_mask -s memory`) implements this trait; until it exists,
//! [`NoEngine`] reports nothing and the node's state is the preparation's.

use model::NodeConfig;

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
}

/// No engine: host preparation only.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEngine;

impl Engine for NoEngine {
    fn after_prepare(&self, _: &NodeConfig, _: HostReadiness) -> Result<EngineReport, EngineError> {
        Ok(EngineReport::default())
    }
}
