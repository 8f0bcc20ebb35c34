//! Replicas, exports and engines of volumes on this node.
//!
//! - a **replica** is a thin (or thick) lvol `<volume>-r-<8 hex>` on a disk's lvstore,
//!   optionally **exported** as an NVMe-oF TCP subsystem `nqn.2026-11.io.v2engine:<replica>`
//!   on the node's data address, open only to the fleet's host NQN;
//! - an **engine** (on the attach node) attaches a controller per remote replica, uses the
//!   local replica directly, joins them in raid1 `<volume>-raid` (a one-replica volume
//!   uses its replica directly) and exports that as the frontend subsystem
//!   `nqn.2026-11.io.v2engine:<volume>`; with `frontend = block` the kernel connects to
//!   it and its block device is the volume's `device_path` ([`frontend`]).
//!
//! Each operation reads the engine, plans the difference (pure: [`plan`]), keeps the wanted
//! spec with its port ([`store`]), then makes only those calls ([`apply`]); calling it
//! twice changes nothing the second time. Every JSON-RPC call an operation makes, reads
//! included, is recorded in its own [`CallTrace`] and returned with the outcome
//! ([`Outcome::spdk_calls`]), so a caller can set its wall time against SPDK's. Requests are validated before anything is read
//! or changed. [`state`] says how each replica and engine is (healthy, degraded,
//! rebuilding with progress) and lists every object with our naming, orphans marked.
//!
//! Modules: pure [`names`], [`spec`], [`observed`], [`plan`], [`state`]; I/O [`apply`]
//! (SPDK), [`store`] (files); [`frontend`] (the kernel's initiator: pure plan, I/O through
//! [`HostOs`]).

pub mod apply;
pub mod frontend;
pub mod names;
pub mod observed;
pub mod plan;
pub mod spec;
pub mod state;
pub mod store;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::path::Path;

use spdk_rpc::{CallTrace, SpdkCall};

use crate::engine::rpc::{RpcError, RpcHandle};
use crate::host::nvme::{KernelNvme, NvmeConnect};
use crate::host::{HostError, HostOs};
use apply::ApplyError;
use frontend::{FrontendError, InitiatorFacts, KernelAction};
use model::storage_class::Frontend;
use observed::Observed;
use plan::{Action, PlanError};
use spec::{EngineSpec, Listen, MemberSpec, Reconnect, ReplicaSpec};
use state::{EngineStatus, ReplicaStatus, VolumeObject};
use store::{StoreError, VolumeStore};

/// The default `--nvmf-ports`.
pub const DEFAULT_PORTS: RangeInclusive<u16> = 4420..=4499;

/// How this node exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeOptions {
    /// The address subsystems listen on (`--data-address`); without it nothing can be
    /// exported.
    pub data_address: Option<IpAddr>,
    /// Ports for listeners (`--nvmf-ports`).
    pub ports: RangeInclusive<u16>,
}

impl Default for VolumeOptions {
    fn default() -> Self {
        Self {
            data_address: None,
            ports: DEFAULT_PORTS,
        }
    }
}

/// Parses `--nvmf-ports`: `FIRST-LAST` (or one port).
pub fn parse_port_range(s: &str) -> Result<RangeInclusive<u16>, String> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let p = |x: &str| {
        x.trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("{x:?} is not a port (1-65535)"))
    };
    let (a, b) = (p(a)?, p(b)?);
    if a > b {
        return Err(format!("{s:?}: the first port is above the last"));
    }
    Ok(a..=b)
}

/// Why a volume operation failed.
#[derive(Debug, thiserror::Error)]
pub enum VolumesError {
    /// The request is invalid; nothing was read or changed.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field, e.g. `replicas[1].address`.
        field: String,
        /// Why.
        reason: String,
    },
    /// The node has no data address to listen on.
    #[error("node {node}: no data address to export on; start the executor with --data-address IP")]
    NoDataAddress {
        /// The node.
        node: String,
    },
    /// The engine does not run.
    #[error("node {node}: the engine is not running")]
    EngineNotRunning {
        /// The node.
        node: String,
    },
    /// Every port of the range is taken.
    #[error("node {node}: no free port left in --nvmf-ports {first}-{last} for {nqn}")]
    NoPort {
        /// The node.
        node: String,
        /// The subsystem.
        nqn: String,
        /// Range start.
        first: u16,
        /// Range end.
        last: u16,
    },
    /// The wanted state cannot be reached; nothing changed.
    #[error("node {node}: {source}")]
    Plan {
        /// The node.
        node: String,
        /// Why.
        source: PlanError,
    },
    /// The engine could not be read.
    #[error("node {node}: cannot read the engine: {source}")]
    Observe {
        /// The node.
        node: String,
        /// The cause.
        source: spdk_rpc::Error,
    },
    /// A call failed midway.
    #[error("node {node}: {source}{}", done_suffix(&source.done))]
    Apply {
        /// The node.
        node: String,
        /// The failed call and what was done before it.
        source: Box<ApplyError>,
    },
    /// The engine did not answer in time.
    #[error("node {node}: {source}")]
    Rpc {
        /// The node.
        node: String,
        /// The cause.
        source: RpcError,
    },
    /// The kernel side of the frontend failed or cannot be had here.
    #[error("node {node}: volume {volume}: {source}{}", done_suffix(done))]
    Frontend {
        /// The node.
        node: String,
        /// The volume.
        volume: String,
        /// What failed.
        source: Box<FrontendError>,
        /// What was done before (SPDK calls, kernel steps).
        done: Vec<String>,
    },
    /// The host could not be read.
    #[error("node {node}: {source}")]
    Host {
        /// The node.
        node: String,
        /// The cause.
        source: Box<HostError>,
    },
    /// The state directory failed.
    #[error("node {node}: volume state: {source}")]
    Store {
        /// The node.
        node: String,
        /// The cause.
        source: StoreError,
    },
}

fn done_suffix(done: &[String]) -> String {
    if done.is_empty() {
        " (nothing was changed)".into()
    } else {
        format!(" (done before: {})", done.join("; "))
    }
}

impl VolumesError {
    /// The caller's input was refused.
    pub fn is_invalid_input(&self) -> bool {
        matches!(self, Self::Invalid { .. })
    }

    /// The node's state refuses the operation (fix that, then retry).
    pub fn is_precondition(&self) -> bool {
        match self {
            Self::NoDataAddress { .. }
            | Self::EngineNotRunning { .. }
            | Self::NoPort { .. }
            | Self::Plan { .. } => true,
            Self::Frontend { source, .. } => source.is_precondition(),
            _ => false,
        }
    }
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> VolumesError {
    VolumesError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// `EnsureReplica`, as asked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicaRequest {
    /// `<volume>-r-<8 hex>`.
    pub replica: String,
    /// The disk.
    pub disk: String,
    /// Size in MiB.
    pub size_mib: u64,
    /// Thick instead of thin.
    pub thick: bool,
    /// Export it.
    pub export: bool,
    /// The host NQN allowed to connect (required with `export`).
    pub host_nqn: String,
    /// Plan only.
    pub dry_run: bool,
}

/// One member of `EnsureEngine`, as asked: `disk` for a replica on this node, `address`
/// and `port` of its export for a remote one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberRequest {
    /// The replica.
    pub replica: String,
    /// Its disk (local).
    pub disk: String,
    /// Its export's address (remote).
    pub address: String,
    /// Its export's port (remote).
    pub port: u32,
}

/// `EnsureEngine`, as asked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineRequest {
    /// The volume.
    pub volume: String,
    /// The host NQN this node presents.
    pub host_nqn: String,
    /// The members, in slot order.
    pub members: Vec<MemberRequest>,
    /// More hosts allowed on the frontend (e.g. the kernel's host NQN).
    pub frontend_hosts: Vec<String>,
    /// Controller path-loss policy (default [`Reconnect::default`]).
    pub reconnect: Option<Reconnect>,
    /// `nvmf` (empty: the default) or `block` (the kernel connects: `device_path`).
    pub frontend: String,
    /// The volume's size when the caller knows it (after a grow): the engine waits for its
    /// raid and members to reach it, even without a local replica.
    pub size_bytes: Option<u64>,
    /// Plan only.
    pub dry_run: bool,
}

/// What an ensure or delete did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome<T> {
    /// The object as it is now.
    pub status: T,
    /// The calls made (with `dry_run`: that would be made); empty when nothing changed.
    pub actions: Vec<String>,
    /// Every JSON-RPC call made to spdk_tgt, in order, with its round trip: the reads
    /// that observe the engine and the changes (with `dry_run`: only the reads).
    pub spdk_calls: Vec<SpdkCall>,
}

/// The engine as one operation calls it: every call goes into the operation's trace.
struct Traced<'a> {
    rpc: &'a RpcHandle,
    trace: CallTrace,
}

impl<'a> Traced<'a> {
    fn new(rpc: &'a RpcHandle) -> Self {
        Self {
            rpc,
            trace: CallTrace::new(),
        }
    }

    /// Runs `f` with an API that records into the trace (or the plain API when it cannot
    /// record, e.g. a fake).
    fn run<T, F, Fut>(&self, f: F) -> Result<T, RpcError>
    where
        T: Send + 'static,
        F: FnOnce(std::sync::Arc<dyn spdk_rpc::SpdkApi>) -> Fut,
        Fut: std::future::Future<Output = T> + Send + 'static,
    {
        let trace = &self.trace;
        self.rpc.run(|api| f(api.with_trace(trace).unwrap_or(api)))
    }

    fn calls(&self) -> Vec<SpdkCall> {
        self.trace.take()
    }
}

/// A volume's engine on this node: SPDK's side ([`EngineStatus`]) and the kernel's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeEngine {
    /// The engine in SPDK.
    pub status: EngineStatus,
    /// The kernel's block device connected to the frontend (`/dev/nvme0n1`), if any.
    pub device_path: Option<String>,
}

/// The listing of every object with our naming.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Objects, orphans marked.
    pub objects: Vec<VolumeObject>,
    /// Replicas (lvols with our naming) on this node.
    pub replicas: Vec<ReplicaStatus>,
    /// Engines on this node.
    pub engines: Vec<VolumeEngine>,
}

fn check_replica_request(r: &ReplicaRequest) -> Result<(), VolumesError> {
    names::check_replica_name(&r.replica).map_err(|e| invalid("replica", e))?;
    model::validate::check_object_name(&r.disk).map_err(|e| invalid("disk", e))?;
    if r.size_mib == 0 {
        return Err(invalid("size_mib", "must be at least 1"));
    }
    if r.size_mib > 1 << 30 {
        return Err(invalid(
            "size_mib",
            format!("{} MiB is too large", r.size_mib),
        ));
    }
    if r.export {
        names::check_host_nqn(&r.host_nqn).map_err(|e| invalid("host_nqn", e))?;
    } else if !r.host_nqn.is_empty() {
        return Err(invalid("host_nqn", "only with export"));
    }
    Ok(())
}

fn check_engine_request(r: &EngineRequest) -> Result<(Vec<MemberSpec>, Frontend), VolumesError> {
    names::check_volume_name(&r.volume).map_err(|e| invalid("volume", e))?;
    let frontend = frontend::parse_frontend(&r.frontend).map_err(|e| invalid("frontend", e))?;
    names::check_host_nqn(&r.host_nqn).map_err(|e| invalid("host_nqn", e))?;
    if r.members.is_empty() {
        return Err(invalid("replicas", "at least one replica is needed"));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (i, m) in r.members.iter().enumerate() {
        let f = |x: &str| format!("replicas[{i}].{x}");
        let v = names::check_replica_name(&m.replica).map_err(|e| invalid(f("replica"), e))?;
        if v != r.volume {
            return Err(invalid(
                f("replica"),
                format!("{} belongs to volume {v}, not {}", m.replica, r.volume),
            ));
        }
        if !seen.insert(m.replica.clone()) {
            return Err(invalid(
                f("replica"),
                format!("{} is listed twice", m.replica),
            ));
        }
        match (m.disk.is_empty(), m.address.is_empty()) {
            (false, true) => {
                model::validate::check_object_name(&m.disk).map_err(|e| invalid(f("disk"), e))?;
                if m.port != 0 {
                    return Err(invalid(f("port"), "a local replica (disk set) has no port"));
                }
                out.push(MemberSpec::Local {
                    replica: m.replica.clone(),
                    disk: m.disk.clone(),
                });
            }
            (true, false) => {
                let ip: IpAddr = m.address.parse().map_err(|_| {
                    invalid(
                        f("address"),
                        format!("{:?} is not an IP address", m.address),
                    )
                })?;
                let port = u16::try_from(m.port)
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| {
                        invalid(f("port"), format!("{} is not a port (1-65535)", m.port))
                    })?;
                out.push(MemberSpec::Remote {
                    replica: m.replica.clone(),
                    address: ip.to_string(),
                    port,
                });
            }
            _ => {
                return Err(invalid(
                    f("disk"),
                    "give either disk (a replica on this node) or address and port (a remote replica's export)",
                ));
            }
        }
    }
    if out
        .iter()
        .filter(|m| matches!(m, MemberSpec::Local { .. }))
        .count()
        > 1
    {
        return Err(invalid(
            "replicas",
            "at most one replica may be local (replicas live on distinct nodes)",
        ));
    }
    for (i, h) in r.frontend_hosts.iter().enumerate() {
        names::check_host_nqn(h).map_err(|e| invalid(format!("frontend_hosts[{i}]"), e))?;
    }
    if let Some(rc) = &r.reconnect {
        rc.check().map_err(|e| invalid("reconnect", e))?;
    }
    Ok((out, frontend))
}

/// Volume work for one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volumes {
    node: String,
    opts: VolumeOptions,
    store: VolumeStore,
}

impl Volumes {
    /// Volume work of `node`, keeping its state under `state_dir`.
    pub fn new(node: &str, state_dir: &Path, opts: VolumeOptions) -> Self {
        Self {
            node: node.to_string(),
            opts,
            store: VolumeStore::new(state_dir),
        }
    }

    /// The options.
    pub fn options(&self) -> &VolumeOptions {
        &self.opts
    }

    fn store_err(&self, source: StoreError) -> VolumesError {
        VolumesError::Store {
            node: self.node.clone(),
            source,
        }
    }

    fn host_err(&self, source: HostError) -> VolumesError {
        VolumesError::Host {
            node: self.node.clone(),
            source: Box::new(source),
        }
    }

    fn frontend_err(&self, volume: &str, source: FrontendError, done: Vec<String>) -> VolumesError {
        VolumesError::Frontend {
            node: self.node.clone(),
            volume: volume.to_string(),
            source: Box::new(source),
            done,
        }
    }

    /// The initiator's facts and the host NQN the kernel presents, for a `block` engine of
    /// `volume`; refused, before anything is read from the engine or changed, when the host
    /// lacks the initiator.
    fn kernel_initiator(
        &self,
        volume: &str,
        host: &dyn HostOs,
    ) -> Result<(InitiatorFacts, String), VolumesError> {
        let facts = InitiatorFacts::read(host).map_err(|e| self.host_err(e))?;
        let missing = facts.missing();
        if !missing.is_empty() {
            return Err(self.frontend_err(
                volume,
                FrontendError::Unavailable { missing },
                Vec::new(),
            ));
        }
        let own = host
            .read_file(frontend::HOSTNQN_FILE)
            .map_err(|e| self.host_err(e))?;
        Ok((facts, frontend::kernel_host_nqn(own.as_deref(), &self.node)))
    }

    fn plan_err(&self, source: PlanError) -> VolumesError {
        VolumesError::Plan {
            node: self.node.clone(),
            source,
        }
    }

    fn rpc<'a>(&self, rpc: Option<&'a RpcHandle>) -> Result<Traced<'a>, VolumesError> {
        rpc.map(Traced::new)
            .ok_or_else(|| VolumesError::EngineNotRunning {
                node: self.node.clone(),
            })
    }

    fn address(&self) -> Result<String, VolumesError> {
        self.opts
            .data_address
            .map(|a| a.to_string())
            .ok_or_else(|| VolumesError::NoDataAddress {
                node: self.node.clone(),
            })
    }

    /// Reads the engine.
    pub fn observe(&self, rpc: &RpcHandle) -> Result<Observed, VolumesError> {
        self.observe_traced(&Traced::new(rpc))
    }

    fn observe_traced(&self, rpc: &Traced<'_>) -> Result<Observed, VolumesError> {
        rpc.run(|api| async move { apply::observe(api.as_ref()).await })
            .map_err(|source| VolumesError::Rpc {
                node: self.node.clone(),
                source,
            })?
            .map_err(|source| VolumesError::Observe {
                node: self.node.clone(),
                source,
            })
    }

    fn apply(&self, rpc: &Traced<'_>, actions: Vec<Action>) -> Result<Vec<String>, VolumesError> {
        if actions.is_empty() {
            return Ok(Vec::new());
        }
        rpc.run(move |api| async move { apply::apply(api.as_ref(), &actions).await })
            .map_err(|source| VolumesError::Rpc {
                node: self.node.clone(),
                source,
            })?
            .map_err(|source| VolumesError::Apply {
                node: self.node.clone(),
                source: Box::new(source),
            })
    }

    /// The port for subsystem `nqn`, listening on `address`.
    fn port_for(&self, nqn: &str, address: &str, obs: &Observed) -> Result<u16, VolumesError> {
        let kept = self.store.ports().map_err(|e| self.store_err(e))?;
        let mut taken: BTreeSet<u16> = kept
            .iter()
            .filter(|(n, _)| n.as_str() != nqn)
            .map(|(_, p)| *p)
            .collect();
        // Ports other subsystems of the engine listen on here (even ones we do not know).
        for s in obs.subsystems.iter().filter(|s| s.nqn != nqn) {
            taken.extend(
                s.listeners
                    .iter()
                    .filter(|l| l.address == address)
                    .filter_map(|l| l.port.parse::<u16>().ok()),
            );
        }
        let listening = obs.subsystem(nqn).and_then(|s| {
            s.listeners
                .iter()
                .find(|l| l.address == address)
                .and_then(|l| l.port.parse().ok())
        });
        store::choose_port(
            nqn,
            &self.opts.ports,
            kept.get(nqn).copied(),
            listening,
            &taken,
        )
        .ok_or_else(|| VolumesError::NoPort {
            node: self.node.clone(),
            nqn: nqn.to_string(),
            first: *self.opts.ports.start(),
            last: *self.opts.ports.end(),
        })
    }

    /// Makes a replica (and its export, when asked) as requested.
    pub fn ensure_replica(
        &self,
        req: &ReplicaRequest,
        rpc: Option<&RpcHandle>,
    ) -> Result<Outcome<ReplicaStatus>, VolumesError> {
        check_replica_request(req)?;
        let address = if req.export {
            Some(self.address()?)
        } else {
            None
        };
        let rpc = self.rpc(rpc)?;
        let obs = self.observe_traced(&rpc)?;
        let export = match address {
            Some(address) => {
                let port = self.port_for(&names::replica_nqn(&req.replica), &address, &obs)?;
                Some(Listen {
                    address,
                    port,
                    hosts: vec![req.host_nqn.clone()],
                })
            }
            None => None,
        };
        let spec = ReplicaSpec {
            replica: req.replica.clone(),
            disk: req.disk.clone(),
            size_mib: req.size_mib,
            thin: !req.thick,
            export,
        };
        let actions = plan::plan_replica(&spec, &obs).map_err(|e| self.plan_err(e))?;
        if req.dry_run {
            return Ok(Outcome {
                status: state::replica_status(&req.replica, &obs),
                actions: actions.iter().map(ToString::to_string).collect(),
                spdk_calls: rpc.calls(),
            });
        }
        self.store
            .put_replica(&spec)
            .map_err(|e| self.store_err(e))?;
        let done = self.apply(&rpc, actions)?;
        let after = if done.is_empty() {
            obs
        } else {
            self.observe_traced(&rpc)?
        };
        Ok(Outcome {
            status: state::replica_status(&req.replica, &after),
            actions: done,
            spdk_calls: rpc.calls(),
        })
    }

    /// Removes a replica: its export, then its lvol. Refused while a raid here uses it.
    pub fn delete_replica(
        &self,
        replica: &str,
        dry_run: bool,
        rpc: Option<&RpcHandle>,
    ) -> Result<Outcome<ReplicaStatus>, VolumesError> {
        names::check_replica_name(replica).map_err(|e| invalid("replica", e))?;
        let rpc = self.rpc(rpc)?;
        let obs = self.observe_traced(&rpc)?;
        let actions = plan::plan_replica_delete(replica, &obs).map_err(|e| self.plan_err(e))?;
        if dry_run {
            return Ok(Outcome {
                status: state::replica_status(replica, &obs),
                actions: actions.iter().map(ToString::to_string).collect(),
                spdk_calls: rpc.calls(),
            });
        }
        let done = self.apply(&rpc, actions)?;
        self.store
            .remove_replica(replica)
            .map_err(|e| self.store_err(e))?;
        let after = if done.is_empty() {
            obs
        } else {
            self.observe_traced(&rpc)?
        };
        Ok(Outcome {
            status: state::replica_status(replica, &after),
            actions: done,
            spdk_calls: rpc.calls(),
        })
    }

    /// Makes a volume's engine as requested; with `frontend = block` also the kernel's
    /// connection to it (refused first, changing nothing, where the host has no initiator).
    pub fn ensure_engine(
        &self,
        req: &EngineRequest,
        rpc: Option<&RpcHandle>,
        host: &dyn HostOs,
    ) -> Result<Outcome<VolumeEngine>, VolumesError> {
        let (members, frontend) = check_engine_request(req)?;
        let address = self.address()?;
        let initiator = match frontend {
            Frontend::Block => Some(self.kernel_initiator(&req.volume, host)?),
            Frontend::Nvmf | Frontend::Ublk => None,
        };
        let rpc = self.rpc(rpc)?;
        let obs = self.observe_traced(&rpc)?;
        let nqn = names::volume_nqn(&req.volume);
        let port = self.port_for(&nqn, &address, &obs)?;
        let mut hosts = vec![req.host_nqn.clone()];
        let kernel_host = initiator.as_ref().map(|(_, h)| h);
        for h in req.frontend_hosts.iter().chain(kernel_host) {
            if !hosts.contains(h) {
                hosts.push(h.clone());
            }
        }
        let spec = EngineSpec {
            volume: req.volume.clone(),
            host_nqn: req.host_nqn.clone(),
            members,
            frontend: Listen {
                address: address.clone(),
                port,
                hosts,
            },
            reconnect: req.reconnect.unwrap_or_default(),
        };
        let actions =
            plan::plan_engine_sized(&spec, &obs, req.size_bytes).map_err(|e| self.plan_err(e))?;
        let kernel = host.kernel_nvme().map_err(|e| self.host_err(e))?;
        let kernel_actions = match &initiator {
            Some((facts, host_nqn)) => frontend::plan_attach(
                facts,
                &kernel,
                &NvmeConnect {
                    address,
                    port,
                    nqn: nqn.clone(),
                    host_nqn: host_nqn.clone(),
                },
            ),
            None => Vec::new(),
        };
        if req.dry_run {
            return Ok(Outcome {
                status: VolumeEngine {
                    status: state::engine_status(&req.volume, Some(&spec), &obs),
                    device_path: kernel.block_device(&nqn),
                },
                actions: actions
                    .iter()
                    .map(ToString::to_string)
                    .chain(kernel_actions.iter().map(ToString::to_string))
                    .collect(),
                spdk_calls: rpc.calls(),
            });
        }
        self.store
            .put_engine(&spec)
            .map_err(|e| self.store_err(e))?;
        let mut done = self.apply(&rpc, actions)?;
        let after = if done.is_empty() {
            obs
        } else {
            self.observe_traced(&rpc)?
        };
        let device_path = if initiator.is_some() {
            Some(self.attach_kernel(&req.volume, host, &kernel_actions, &mut done)?)
        } else {
            kernel.block_device(&nqn)
        };
        Ok(Outcome {
            status: VolumeEngine {
                status: state::engine_status(&req.volume, Some(&spec), &after),
                device_path,
            },
            actions: done,
            spdk_calls: rpc.calls(),
        })
    }

    /// Runs `steps` (connecting the kernel to `volume`'s frontend), appending them to
    /// `done`, then waits for the block device.
    fn attach_kernel(
        &self,
        volume: &str,
        host: &dyn HostOs,
        steps: &[KernelAction],
        done: &mut Vec<String>,
    ) -> Result<String, VolumesError> {
        let nqn = names::volume_nqn(volume);
        match frontend::run(host, steps) {
            Ok(d) => done.extend(d),
            Err(e) => {
                done.extend(e.done);
                return Err(self.frontend_err(volume, e.source, std::mem::take(done)));
            }
        }
        frontend::wait_for_device(|| host.kernel_nvme(), &nqn, frontend::DEVICE_WAIT)
            .map_err(|e| self.frontend_err(volume, e, std::mem::take(done)))
    }

    /// Removes a volume's engine: the kernel's connection to it (whatever the frontend),
    /// frontend subsystem, raid, controllers.
    pub fn delete_engine(
        &self,
        volume: &str,
        dry_run: bool,
        rpc: Option<&RpcHandle>,
        host: &dyn HostOs,
    ) -> Result<Outcome<VolumeEngine>, VolumesError> {
        names::check_volume_name(volume).map_err(|e| invalid("volume", e))?;
        let rpc = self.rpc(rpc)?;
        let obs = self.observe_traced(&rpc)?;
        let actions = plan::plan_engine_delete(volume, &obs);
        let nqn = names::volume_nqn(volume);
        let kernel = host.kernel_nvme().map_err(|e| self.host_err(e))?;
        let kernel_actions = frontend::plan_detach(&kernel, &nqn);
        if dry_run {
            return Ok(Outcome {
                status: VolumeEngine {
                    status: state::engine_status(volume, None, &obs),
                    device_path: kernel.block_device(&nqn),
                },
                actions: kernel_actions
                    .iter()
                    .map(ToString::to_string)
                    .chain(actions.iter().map(ToString::to_string))
                    .collect(),
                spdk_calls: rpc.calls(),
            });
        }
        let mut done = frontend::run(host, &kernel_actions)
            .map_err(|e| self.frontend_err(volume, e.source, e.done))?;
        done.extend(self.apply(&rpc, actions)?);
        self.store
            .remove_engine(volume)
            .map_err(|e| self.store_err(e))?;
        let after = if done.is_empty() {
            obs
        } else {
            self.observe_traced(&rpc)?
        };
        Ok(Outcome {
            status: VolumeEngine {
                status: state::engine_status(volume, None, &after),
                device_path: None,
            },
            actions: done,
            spdk_calls: rpc.calls(),
        })
    }

    /// The volumes whose engine this node was asked to run (kept specs); a store that
    /// cannot be read is logged and counts as none.
    pub fn kept_engines(&self) -> Vec<String> {
        match self.store.engines() {
            Ok(e) => e.into_keys().collect(),
            Err(e) => {
                tracing::warn!(node = %self.node, "cannot read the kept engines: {e}");
                Vec::new()
            }
        }
    }

    /// Makes the kept replicas' exports real again: after an engine restart spdk_tgt has
    /// lost its subsystems, while the lvols come back with their disks. An lvol that did
    /// not come back is never created again here (an empty replica exported under the old
    /// name would hand the attach node blank data); engines are not rebuilt either (which
    /// members are current is the front-end's call). Returns one problem per replica left
    /// as it is.
    pub fn resync_replicas(&self, rpc: &RpcHandle) -> Result<Vec<String>, VolumesError> {
        let kept = self.store.replicas().map_err(|e| self.store_err(e))?;
        if kept.is_empty() {
            return Ok(Vec::new());
        }
        let rpc = Traced::new(rpc);
        let obs = self.observe_traced(&rpc)?;
        let mut problems = Vec::new();
        for spec in kept.values() {
            let actions = match plan::plan_replica(spec, &obs) {
                Ok(a) => a,
                Err(e) => {
                    problems.push(format!("node {}: {e}", self.node));
                    continue;
                }
            };
            if actions
                .iter()
                .any(|a| matches!(a, Action::CreateLvol { .. }))
            {
                problems.push(format!(
                    "node {}: replica {}: its lvol {} is gone; not creating an empty one in its place",
                    self.node,
                    spec.replica,
                    spec.alias()
                ));
                continue;
            }
            match self.apply(&rpc, actions) {
                Ok(done) if !done.is_empty() => {
                    tracing::info!(node = %self.node, replica = %spec.replica, ?done, "replica export restored");
                }
                Ok(_) => {}
                Err(e) => problems.push(e.to_string()),
            }
        }
        Ok(problems)
    }

    /// Every object with our naming (orphans: no live record among `volumes`), with the
    /// state of each replica and engine on this node.
    pub fn list(
        &self,
        volumes: &BTreeSet<String>,
        rpc: Option<&RpcHandle>,
        host: &dyn HostOs,
    ) -> Result<Inventory, VolumesError> {
        let rpc = self.rpc(rpc)?;
        let obs = self.observe_traced(&rpc)?;
        let engines_kept: BTreeMap<String, EngineSpec> =
            self.store.engines().map_err(|e| self.store_err(e))?;
        let objects = state::inventory(&obs, volumes);
        // The kernel's side only adds device paths: a listing does not fail for it.
        let kernel = host.kernel_nvme().unwrap_or_else(|e| {
            tracing::warn!(node = %self.node, "cannot read the kernel's NVMe devices: {e}");
            KernelNvme::default()
        });
        let mut replicas: Vec<String> = obs
            .lvols
            .iter()
            .filter(|l| names::owner_of_lvol(&l.name).is_some())
            .map(|l| l.name.clone())
            .collect();
        replicas.sort();
        replicas.dedup();
        let mut engine_volumes: BTreeSet<String> = engines_kept.keys().cloned().collect();
        for o in &objects {
            if matches!(
                o.kind,
                state::ObjectKind::Raid
                    | state::ObjectKind::FrontendSubsystem
                    | state::ObjectKind::Controller
            ) {
                engine_volumes.insert(o.volume.clone());
            }
        }
        Ok(Inventory {
            objects,
            replicas: replicas
                .iter()
                .map(|r| state::replica_status(r, &obs))
                .collect(),
            engines: engine_volumes
                .iter()
                .map(|v| VolumeEngine {
                    status: state::engine_status(v, engines_kept.get(v), &obs),
                    device_path: kernel.block_device(&names::volume_nqn(v)),
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine_req() -> EngineRequest {
        EngineRequest {
            volume: "v1".into(),
            host_nqn: "nqn.2026-11.io.v2engine:host:fleet".into(),
            members: vec![
                MemberRequest {
                    replica: "v1-r-00000001".into(),
                    disk: "d1".into(),
                    ..MemberRequest::default()
                },
                MemberRequest {
                    replica: "v1-r-00000002".into(),
                    address: "10.0.0.2".into(),
                    port: 4420,
                    ..MemberRequest::default()
                },
            ],
            ..EngineRequest::default()
        }
    }

    fn field_of(e: VolumesError) -> String {
        match e {
            VolumesError::Invalid { field, .. } => field,
            other => panic!("not invalid input: {other}"),
        }
    }

    #[test]
    fn requests_are_validated_with_field_paths() {
        assert!(check_engine_request(&engine_req()).is_ok());
        let mut r = engine_req();
        r.members[1].address = "node-2".into();
        assert_eq!(
            field_of(check_engine_request(&r).unwrap_err()),
            "replicas[1].address"
        );
        let mut r = engine_req();
        r.members[1].port = 70000;
        assert_eq!(
            field_of(check_engine_request(&r).unwrap_err()),
            "replicas[1].port"
        );
        let mut r = engine_req();
        r.members[1].replica = "v2-r-00000002".into();
        assert_eq!(
            field_of(check_engine_request(&r).unwrap_err()),
            "replicas[1].replica"
        );
        let mut r = engine_req();
        r.members[1].disk = "d2".into();
        assert_eq!(
            field_of(check_engine_request(&r).unwrap_err()),
            "replicas[1].disk"
        );
        let mut r = engine_req();
        r.members[1].replica = "v1-r-00000001".into();
        assert_eq!(
            field_of(check_engine_request(&r).unwrap_err()),
            "replicas[1].replica"
        );
        let mut r = engine_req();
        r.host_nqn = "host".into();
        assert_eq!(field_of(check_engine_request(&r).unwrap_err()), "host_nqn");
        let mut r = engine_req();
        r.reconnect = Some(Reconnect {
            reconnect_delay_sec: 5,
            ctrlr_loss_timeout_sec: 2,
            fast_io_fail_timeout_sec: 0,
        });
        assert_eq!(field_of(check_engine_request(&r).unwrap_err()), "reconnect");
        let mut r = engine_req();
        r.members.clear();
        assert_eq!(field_of(check_engine_request(&r).unwrap_err()), "replicas");

        let ok = ReplicaRequest {
            replica: "v1-r-00000001".into(),
            disk: "d1".into(),
            size_mib: 64,
            export: true,
            host_nqn: "nqn.2026-11.io.v2engine:host:fleet".into(),
            ..ReplicaRequest::default()
        };
        assert!(check_replica_request(&ok).is_ok());
        for (bad, field) in [
            (
                ReplicaRequest {
                    size_mib: 0,
                    ..ok.clone()
                },
                "size_mib",
            ),
            (
                ReplicaRequest {
                    replica: "v1".into(),
                    ..ok.clone()
                },
                "replica",
            ),
            (
                ReplicaRequest {
                    disk: "D 1".into(),
                    ..ok.clone()
                },
                "disk",
            ),
            (
                ReplicaRequest {
                    host_nqn: String::new(),
                    ..ok.clone()
                },
                "host_nqn",
            ),
        ] {
            assert_eq!(field_of(check_replica_request(&bad).unwrap_err()), field);
        }
    }

    #[test]
    fn port_ranges_parse() {
        assert_eq!(parse_port_range("4420-4499"), Ok(4420..=4499));
        assert_eq!(parse_port_range("4420"), Ok(4420..=4420));
        assert!(parse_port_range("4499-4420").is_err());
        assert!(parse_port_range("0-10").is_err());
        assert!(parse_port_range("a-b").is_err());
    }
}
