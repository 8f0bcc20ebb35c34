//! The executor of one node: records, facts, predict and reconcile over a [`HostOs`].
//!
//! Everything here is synchronous; the gRPC service runs it in blocking tasks. Reconciles
//! are serialized by a mutex. Errors carry the node, record, module or file they concern;
//! the service turns them into gRPC statuses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use model::setting::SETTING_ID;
use model::validate::check_object_name;
use model::{
    DataEngineSetting, NodeConfig, NodeV2, Record, RecordKey, RecordKind, ValidationErrors,
    effective_config,
};

use crate::baseline::{self, BaselineError};
use crate::boot::{self, Backend};
use crate::disks::{Candidate, DiskState, DiskStatus, Disks, DisksError};
use crate::engine::{Engine, EngineError, HostReadiness, usage};
use crate::host::{HostError, HostOs, HugepageInfo, MemoryInfo, ModuleState, TOOLS, ToolFact};
use crate::plan::{self, EngineState, HostView, Plan};
use crate::records::{IncomingRecord, PutOutcome, RecordStore, RecordsError, validate_batch};
use crate::volumes::{
    EngineRequest, Inventory, Outcome, ReplicaRequest, VolumeEngine, VolumeOptions, Volumes,
    VolumesError, state::ReplicaStatus,
};

/// The executor's version, reported in the facts.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Why an executor operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// The node name given at start is unusable.
    #[error("node name {node:?}: {reason}")]
    BadNodeName {
        /// The name.
        node: String,
        /// Why.
        reason: String,
    },
    /// Incoming records are invalid, or the store failed.
    #[error(transparent)]
    Records(#[from] RecordsError),
    /// A host operation failed.
    #[error("node {node}: {source}")]
    Host {
        /// The node.
        node: String,
        /// The cause.
        source: HostError,
    },
    /// The stored records give no valid configuration.
    #[error("node {node}: the stored records give an invalid configuration: {errors}")]
    Config {
        /// The node.
        node: String,
        /// The problems, with attribute paths.
        errors: ValidationErrors,
    },
    /// Reconcile refused to change anything (missing module, modprobe, memory).
    #[error("{}", problems.join("; "))]
    Refused {
        /// Each problem names the node and the object.
        problems: Vec<String>,
    },
    /// The baseline file failed.
    #[error("node {node}: {source}")]
    Baseline {
        /// The node.
        node: String,
        /// The cause.
        source: BaselineError,
    },
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Block disk work failed as a whole (a single disk's problem is in its status).
    #[error(transparent)]
    Disks(#[from] DisksError),
    /// A volume operation (replica, export, engine) failed or was refused.
    #[error(transparent)]
    Volumes(#[from] VolumesError),
}

impl ExecutorError {
    /// True when the caller's input was refused (as opposed to a host failure).
    pub fn is_invalid_input(&self) -> bool {
        matches!(self, Self::Records(RecordsError::Invalid { .. }))
    }
}

/// Facts about the host, read fresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// This node.
    pub node: String,
    /// Host name.
    pub hostname: String,
    /// `uname -r`.
    pub kernel_release: String,
    /// True for SimHost.
    pub simulated: bool,
    /// Memory.
    pub memory: MemoryInfo,
    /// Online CPUs.
    pub cpu_count: u32,
    /// The 2 MiB pool.
    pub hugepages: HugepageInfo,
    /// The configured (or default) modules.
    pub modules: Vec<(String, ModuleState)>,
    /// modprobe, nvme, mdadm.
    pub tools: Vec<ToolFact>,
    /// What `auto` resolves to here.
    pub boot_persistence_auto: Backend,
    /// [`VERSION`].
    pub executor_version: String,
}

/// The node's status after the last reconcile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeStatus {
    /// This node.
    pub node: String,
    /// The effective configuration, when the records give one.
    pub config: Option<NodeConfig>,
    /// disabled | preparing | waiting_for_reboot | ready | failed (or the engine's).
    pub engine_state: String,
    /// Whether a reboot is needed.
    pub reboot_required: bool,
    /// Why.
    pub reboot_reasons: Vec<String>,
    /// Pages wanted (0 when disabled).
    pub hugepages_target: u64,
    /// Pages in the pool after reconcile (0 when disabled).
    pub hugepages_allocated: u64,
    /// Configured modules that are loaded or built in.
    pub modules_loaded: Vec<String>,
    /// The backend in effect.
    pub boot_persistence: String,
    /// Owned boot files that exist.
    pub boot_files: Vec<String>,
    /// Empty when the last reconcile succeeded.
    pub last_error: String,
    /// Revision of the setting record applied (0 = none).
    pub setting_revision: u64,
    /// Revision of this node's node_v2 record applied (0 = none).
    pub override_revision: u64,
    /// The running engine's version.
    pub spdk_version: String,
    /// Engine restarts.
    pub engine_restarts: u32,
    /// The block disks of this node.
    pub disks: Vec<DiskStatus>,
}

/// What reconcile would do with overlay records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prediction {
    /// The effective configuration with the overlay.
    pub config: NodeConfig,
    /// The plan.
    pub plan: Plan,
    /// State of each configured module now.
    pub modules: Vec<(String, ModuleState)>,
    /// The engine state reconcile would reach (`running` where an engine runs once
    /// prepared; otherwise the plan's).
    pub engine_state: String,
    /// What reconcile would do with each block disk.
    pub disks: Vec<DiskStatus>,
}

/// One node's executor.
#[derive(Debug)]
pub struct Executor {
    node: String,
    state_dir: PathBuf,
    host: Box<dyn HostOs>,
    engine: Box<dyn Engine>,
    disks: Disks,
    volumes: Volumes,
    store: Mutex<RecordStore>,
    status: Mutex<NodeStatus>,
    reconcile_lock: Mutex<()>,
    /// The last reconcile took the node's state from the engine.
    engine_owned: AtomicBool,
    /// The engine generation the stored status was made with (written and read under
    /// the status lock).
    engine_generation: AtomicU64,
    /// The engine generation the running reconcile saw.
    pending_generation: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Revisions of the records a configuration came from.
type Revisions = (u64, u64);

impl Executor {
    /// Opens the executor of `node`: loads the records of `state_dir` (creating it).
    /// Record files that cannot be loaded are logged and skipped.
    pub fn open(
        node: &str,
        state_dir: &Path,
        host: Box<dyn HostOs>,
        engine: Box<dyn Engine>,
    ) -> Result<Self, ExecutorError> {
        check_object_name(node).map_err(|reason| ExecutorError::BadNodeName {
            node: node.to_string(),
            reason,
        })?;
        let (store, problems) = RecordStore::open(state_dir)?;
        for p in problems {
            tracing::error!(node, "{p}");
        }
        let status = NodeStatus {
            node: node.to_string(),
            engine_state: EngineState::Preparing.as_str().into(),
            ..Default::default()
        };
        Ok(Self {
            node: node.to_string(),
            state_dir: state_dir.to_path_buf(),
            host,
            engine,
            disks: Disks::new(node, "/"),
            volumes: Volumes::new(node, state_dir, VolumeOptions::default()),
            store: Mutex::new(store),
            status: Mutex::new(status),
            reconcile_lock: Mutex::new(()),
            engine_owned: AtomicBool::new(false),
            engine_generation: AtomicU64::new(0),
            pending_generation: AtomicU64::new(0),
        })
    }

    /// Reads block-device facts (sysfs, mountinfo, udev) under `root` instead of `/`; the
    /// devices themselves are always opened at their real paths.
    pub fn with_device_root(mut self, root: &Path) -> Self {
        self.disks = Disks::new(&self.node, root);
        self
    }

    /// Exports on `opts.data_address` with ports from `opts.ports`.
    pub fn with_volume_options(mut self, opts: VolumeOptions) -> Self {
        self.volumes = Volumes::new(&self.node, &self.state_dir, opts);
        self
    }

    /// The live volume records' names.
    fn live_volumes(&self) -> std::collections::BTreeSet<String> {
        lock(&self.store)
            .list(Some(RecordKind::Volume))
            .into_iter()
            .filter(|r| !r.deleted)
            .map(|r| r.key.name)
            .collect()
    }

    /// Makes a replica (lvol, export) as asked; serialized with reconcile.
    pub fn ensure_replica(
        &self,
        req: &ReplicaRequest,
    ) -> Result<Outcome<ReplicaStatus>, ExecutorError> {
        let _serial = lock(&self.reconcile_lock);
        Ok(self
            .volumes
            .ensure_replica(req, self.engine.rpc().as_ref())?)
    }

    /// Removes a replica (export, lvol); serialized with reconcile.
    pub fn delete_replica(
        &self,
        replica: &str,
        dry_run: bool,
    ) -> Result<Outcome<ReplicaStatus>, ExecutorError> {
        let _serial = lock(&self.reconcile_lock);
        Ok(self
            .volumes
            .delete_replica(replica, dry_run, self.engine.rpc().as_ref())?)
    }

    /// Makes a volume's engine (controllers, raid1, frontend) as asked.
    pub fn ensure_engine(
        &self,
        req: &EngineRequest,
    ) -> Result<Outcome<VolumeEngine>, ExecutorError> {
        let _serial = lock(&self.reconcile_lock);
        Ok(self
            .volumes
            .ensure_engine(req, self.engine.rpc().as_ref(), self.host.as_ref())?)
    }

    /// Tears a volume's engine down.
    pub fn delete_engine(
        &self,
        volume: &str,
        dry_run: bool,
    ) -> Result<Outcome<VolumeEngine>, ExecutorError> {
        let _serial = lock(&self.reconcile_lock);
        Ok(self.volumes.delete_engine(
            volume,
            dry_run,
            self.engine.rpc().as_ref(),
            self.host.as_ref(),
        )?)
    }

    /// Every engine object with our naming, orphans marked, and each replica's and
    /// engine's state.
    pub fn list_volume_objects(&self) -> Result<Inventory, ExecutorError> {
        let volumes = self.live_volumes();
        Ok(self
            .volumes
            .list(&volumes, self.engine.rpc().as_ref(), self.host.as_ref())?)
    }

    /// The engine.
    pub fn engine(&self) -> &dyn Engine {
        self.engine.as_ref()
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The host.
    pub fn host(&self) -> &dyn HostOs {
        self.host.as_ref()
    }

    fn host_err(&self, source: HostError) -> ExecutorError {
        ExecutorError::Host {
            node: self.node.clone(),
            source,
        }
    }

    fn baseline_err(&self, source: BaselineError) -> ExecutorError {
        ExecutorError::Baseline {
            node: self.node.clone(),
            source,
        }
    }

    /// Derives this node's configuration from a set of records.
    fn config_from(
        &self,
        records: &BTreeMap<RecordKey, Record>,
    ) -> Result<(NodeConfig, Revisions), ExecutorError> {
        let live = |kind, name: &str| {
            records
                .get(&RecordKey::new(kind, name))
                .filter(|r| !r.deleted)
        };
        let cfg_err = |path: &str, e: serde_json::Error| {
            let mut errors = ValidationErrors::default();
            errors.push(path, e.to_string());
            ExecutorError::Config {
                node: self.node.clone(),
                errors,
            }
        };
        let setting_rec = live(RecordKind::DataEngineSetting, SETTING_ID);
        let over_rec = live(RecordKind::NodeV2, &self.node);
        let setting: Option<DataEngineSetting> = setting_rec
            .map(|r| serde_json::from_value(r.spec.clone()))
            .transpose()
            .map_err(|e| cfg_err("data_engine_setting", e))?;
        let over: Option<NodeV2> = over_rec
            .map(|r| serde_json::from_value(r.spec.clone()))
            .transpose()
            .map_err(|e| cfg_err("node_v2", e))?;
        let cfg =
            effective_config(&self.node, setting.as_ref(), over.as_ref()).map_err(|errors| {
                ExecutorError::Config {
                    node: self.node.clone(),
                    errors,
                }
            })?;
        Ok((
            cfg,
            (
                setting_rec.map_or(0, |r| r.revision),
                over_rec.map_or(0, |r| r.revision),
            ),
        ))
    }

    fn stored_config(&self) -> Result<(NodeConfig, Revisions), ExecutorError> {
        let records = lock(&self.store).overlaid(&[]);
        self.config_from(&records)
    }

    /// Reads what a plan needs, changing nothing.
    fn view(&self, cfg: &NodeConfig) -> Result<HostView, ExecutorError> {
        let h = self.host.as_ref();
        let memory = h.memory().map_err(|e| self.host_err(e))?;
        let pages = h.hugepages().map_err(|e| self.host_err(e))?;
        let modules = h
            .module_states(&cfg.kernel_modules)
            .map_err(|e| self.host_err(e))?;
        let mut boot_files = BTreeMap::new();
        for p in boot::OWNED_FILES {
            boot_files.insert(p, h.read_file(p).map_err(|e| self.host_err(e))?);
        }
        Ok(HostView {
            memory_total_bytes: memory.total_bytes,
            nr_hugepages: pages.total,
            allocatable_now: pages.allocatable_now,
            modules,
            modprobe: h.find_tool("modprobe").is_some(),
            oem_exists: h.dir_exists(boot::OEM_DIR),
            boot_files,
            baseline: baseline::load(&self.state_dir).map_err(|e| self.baseline_err(e))?,
        })
    }

    /// Facts about the host, read fresh.
    pub fn facts(&self) -> Result<Facts, ExecutorError> {
        let h = self.host.as_ref();
        let modules = match self.stored_config() {
            Ok((cfg, _)) => cfg.kernel_modules,
            Err(_) => model::setting::default_kernel_modules(),
        };
        let e = |e| self.host_err(e);
        Ok(Facts {
            node: self.node.clone(),
            hostname: h.hostname().map_err(e)?,
            kernel_release: h.kernel_release().map_err(e)?,
            simulated: h.simulated(),
            memory: h.memory().map_err(e)?,
            cpu_count: h.cpu_count().map_err(e)?,
            hugepages: h.hugepages().map_err(e)?,
            modules: h.module_states(&modules).map_err(e)?,
            tools: TOOLS
                .iter()
                .map(|t| ToolFact {
                    name: (*t).to_string(),
                    path: h.find_tool(t),
                })
                .collect(),
            boot_persistence_auto: boot::resolve(
                model::BootPersistence::Auto,
                h.dir_exists(boot::OEM_DIR),
            ),
            executor_version: VERSION.to_string(),
        })
    }

    /// The status of the last reconcile, with the engine as it is now (it may have
    /// crashed or restarted since).
    pub fn status(&self) -> NodeStatus {
        let (mut st, generation) = {
            let g = lock(&self.status);
            (g.clone(), self.engine_generation.load(Ordering::Relaxed))
        };
        if self.engine_owned.load(Ordering::Relaxed)
            && let Some(live) = self.engine.live()
        {
            if let Some(s) = live.state {
                st.engine_state = s;
            }
            st.spdk_version = live.spdk_version;
            st.engine_restarts = live.restarts;
            if live.generation != generation {
                // The engine restarted since: its bdevs are gone until the next reconcile
                // (which the restart triggers) creates them again.
                for d in st.disks.iter_mut().filter(|d| d.state == DiskState::Ready) {
                    d.state = DiskState::WaitingForEngine;
                }
            }
        }
        st
    }

    /// Candidate block devices for disks, with the reasons the excluded ones are refused;
    /// `paths` are inspected in addition to every device sysfs lists.
    pub fn list_disks(&self, paths: &[String]) -> Result<Vec<Candidate>, ExecutorError> {
        let records = lock(&self.store).overlaid(&[]);
        let recs = self.disks.records(&records)?;
        Ok(self.disks.list(&recs, paths)?)
    }

    /// The volumes using this node's engine: replica lvols on its lvstores (while it
    /// runs) and volume records attached here.
    fn engine_users(
        &self,
        records: &BTreeMap<RecordKey, Record>,
    ) -> Result<Vec<usage::VolumeUse>, ExecutorError> {
        let volumes: Vec<model::Volume> = records
            .values()
            .filter(|r| r.key.kind == RecordKind::Volume && !r.deleted)
            .filter_map(|r| serde_json::from_value(r.spec.clone()).ok())
            .collect();
        let lvols = match self.engine.rpc() {
            Some(rpc) => rpc
                .run(|api| async move {
                    api.bdev_lvol_get_lvols(Default::default())
                        .await
                        .map(|v| {
                            v.into_iter()
                                .map(|l| (l.name, l.lvs.name))
                                .collect::<Vec<_>>()
                        })
                        .map_err(|e| e.to_string())
                })
                .map_err(|e| e.to_string())
                .and_then(|r| r)
                .map_err(|reason| EngineError {
                    node: self.node.clone(),
                    reason: format!(
                        "cannot list the lvols to check which volumes use the node: {reason}"
                    ),
                })?,
            None => Vec::new(),
        };
        let mut users = usage::volumes_using(&self.node, &lvols, &volumes);
        // Engines (raid1, frontend) this node was asked to run, with or without a record.
        for v in self.volumes.kept_engines() {
            let evidence = format!("its engine runs on node {}", self.node);
            match users.iter_mut().find(|u| u.volume == v) {
                Some(u) if u.evidence.iter().any(|e| e.starts_with("attached to")) => {}
                Some(u) => u.evidence.push(evidence),
                None => users.push(usage::VolumeUse {
                    volume: v,
                    evidence: vec![evidence],
                }),
            }
        }
        users.sort_by(|a, b| a.volume.cmp(&b.volume));
        Ok(users)
    }

    /// The problem with stopping the engine for `cfg` (disable, or restart with another
    /// command line) while volumes use the node, if any.
    fn stop_refusal(
        &self,
        cfg: &NodeConfig,
        readiness: HostReadiness,
        records: &BTreeMap<RecordKey, Record>,
    ) -> Result<Option<String>, ExecutorError> {
        if !self.engine.would_stop(cfg, readiness) {
            return Ok(None);
        }
        let users = self.engine_users(records)?;
        if users.is_empty() {
            return Ok(None);
        }
        let why = if readiness == HostReadiness::Disabled {
            "disable"
        } else {
            "restart with the new cpu_mask, memory or arguments"
        };
        Ok(Some(usage::refusal(&self.node, why, &users)))
    }

    /// Stored records, of one kind when given.
    pub fn list_records(&self, kind: Option<RecordKind>) -> Vec<Record> {
        lock(&self.store).list(kind)
    }

    /// Validates the whole batch (records, and that the resulting hugepages fit this
    /// host's memory), then stores each record whose revision is higher than the stored
    /// one. A refused batch stores nothing.
    pub fn put_records(&self, batch: &[IncomingRecord]) -> Result<Vec<PutOutcome>, ExecutorError> {
        let recs = validate_batch(batch)?;
        if let Some(r) = recs.iter().find(|r| {
            r.key.kind == RecordKind::BlockDisk
                && r.key.name.split('/').next() != Some(self.node.as_str())
        }) {
            return Err(RecordsError::Invalid {
                record: r.key.to_string(),
                reason: format!(
                    "a block disk is stored only on its own node; this is node {}",
                    self.node
                ),
            }
            .into());
        }
        let mut store = lock(&self.store);
        self.check_memory_for(&store, &recs)?;
        Ok(store.put(recs)?)
    }

    fn check_memory_for(&self, store: &RecordStore, recs: &[Record]) -> Result<(), ExecutorError> {
        let own = RecordKey::new(RecordKind::NodeV2, self.node.clone());
        let setting = RecordKey::new(RecordKind::DataEngineSetting, SETTING_ID);
        if !recs.iter().any(|r| r.key == own || r.key == setting) {
            return Ok(());
        }
        let records = store.overlaid(recs);
        let (cfg, _) = self.config_from(&records)?;
        if !cfg.enabled {
            return Ok(());
        }
        let memory = self.host.memory().map_err(|e| self.host_err(e))?;
        if let Err(reason) = plan::check_memory(&self.node, cfg.hugepages, memory.total_bytes) {
            let from_override = records.get(&own).filter(|r| !r.deleted).is_some_and(|r| {
                r.spec
                    .get("hugepage_limit_mib")
                    .is_some_and(|v| !v.is_null())
            });
            let record = if from_override { own } else { setting };
            return Err(RecordsError::Invalid {
                record: record.to_string(),
                reason: format!("hugepage_limit_mib: {reason}"),
            }
            .into());
        }
        Ok(())
    }

    /// What reconcile would do if `overlay` were stored, changing nothing.
    pub fn predict(&self, overlay: &[IncomingRecord]) -> Result<Prediction, ExecutorError> {
        let overlay = validate_batch(overlay)?;
        let records = lock(&self.store).overlaid(&overlay);
        let (config, _) = self.config_from(&records)?;
        let view = self.view(&config)?;
        let mut plan = plan::plan(&config, &view);
        let readiness = readiness_of(&config, plan.engine_state);
        let engine_state = self
            .engine
            .predicted_state(readiness)
            .unwrap_or(plan.engine_state.as_str())
            .to_string();
        if let Some(problem) = self.stop_refusal(&config, readiness, &records)? {
            plan.errors.push(problem);
        }
        let recs = self.disks.records(&records)?;
        let will_run =
            readiness == HostReadiness::Ready && self.engine.predicted_state(readiness).is_some();
        let disks = self
            .disks
            .predict(&recs, self.engine.rpc().as_ref(), will_run)?;
        plan.errors.extend(
            disks
                .iter()
                .filter(|d| d.has_error())
                .map(|d| d.error.clone()),
        );
        Ok(Prediction {
            config,
            plan,
            modules: view.modules,
            engine_state,
            disks,
        })
    }

    /// Makes the host match the records: boot files, then modules, then hugepages (or,
    /// when disabled: engine stop, boot files removed, hugepages given back). Returns the
    /// new status; on failure the status says `failed` with the error.
    pub fn reconcile(&self) -> Result<NodeStatus, ExecutorError> {
        let _serial = lock(&self.reconcile_lock);
        match self.reconcile_inner() {
            Ok(mut st) => {
                let problems: Vec<String> = st
                    .disks
                    .iter()
                    .filter(|d| d.has_error())
                    .map(|d| d.error.clone())
                    .collect();
                if !problems.is_empty() {
                    tracing::error!(node = %self.node, "disks: {}", problems.join("; "));
                    st.last_error = problems.join("; ");
                    self.store_status(st);
                    return Err(ExecutorError::Refused { problems });
                }
                tracing::info!(node = %self.node, state = %st.engine_state,
                    allocated = st.hugepages_allocated, target = st.hugepages_target, "reconciled");
                self.store_status(st.clone());
                Ok(st)
            }
            Err(e) => {
                tracing::error!(node = %self.node, "reconcile failed: {e}");
                let st = self.failed_status(&e);
                self.store_status(st);
                Err(e)
            }
        }
    }

    /// Stores the status of a reconcile with the engine generation it saw.
    fn store_status(&self, st: NodeStatus) {
        let mut g = lock(&self.status);
        *g = st;
        self.engine_generation.store(
            self.pending_generation.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
    }

    fn reconcile_inner(&self) -> Result<NodeStatus, ExecutorError> {
        let records = lock(&self.store).overlaid(&[]);
        let (cfg, (setting_revision, override_revision)) = self.config_from(&records)?;
        let view = self.view(&cfg)?;
        let p = plan::plan(&cfg, &view);
        if !p.errors.is_empty() {
            return Err(ExecutorError::Refused { problems: p.errors });
        }
        if let Some(problem) =
            self.stop_refusal(&cfg, readiness_of(&cfg, p.engine_state), &records)?
        {
            return Err(ExecutorError::Refused {
                problems: vec![problem],
            });
        }
        self.engine_owned.store(false, Ordering::Relaxed);
        let h = self.host.as_ref();
        let e = |e| self.host_err(e);
        if !cfg.enabled {
            self.engine.after_prepare(&cfg, HostReadiness::Disabled)?;
        }
        for f in &p.boot.write {
            tracing::info!(node = %self.node, path = f.path, "writing boot file");
            h.write_file(f.path, &f.content).map_err(e)?;
        }
        for path in &p.boot.remove {
            tracing::info!(node = %self.node, path, "removing boot file");
            h.remove_file(path).map_err(e)?;
        }
        for m in &p.modules_to_load {
            tracing::info!(node = %self.node, module = %m, "loading kernel module");
            h.load_module(m).map_err(e)?;
        }
        if let Some(b) = p.record_baseline {
            baseline::save(&self.state_dir, b).map_err(|e| self.baseline_err(e))?;
        }
        let pool = match p.set_hugepages {
            Some(n) => {
                tracing::info!(node = %self.node, pages = n, "writing nr_hugepages");
                h.set_nr_hugepages(n).map_err(e)?
            }
            None => view.nr_hugepages,
        };
        if p.release_baseline {
            baseline::clear(&self.state_dir).map_err(|e| self.baseline_err(e))?;
        }
        let modules = h.module_states(&cfg.kernel_modules).map_err(e)?;
        if cfg.enabled
            && let Some((m, _)) = modules.iter().find(|(_, s)| !s.is_present())
        {
            return Err(ExecutorError::Refused {
                problems: vec![format!(
                    "node {}: kernel module {m} is still not loaded after modprobe",
                    self.node
                )],
            });
        }
        let (state, reasons, allocated) = if cfg.enabled {
            let reasons = plan::reboot_reasons(p.backend, pool, p.hugepages_target);
            let state = if reasons.is_empty() {
                EngineState::Ready
            } else {
                EngineState::WaitingForReboot
            };
            (state, reasons, pool)
        } else {
            (EngineState::Disabled, Vec::new(), 0)
        };
        let mut st = NodeStatus {
            node: self.node.clone(),
            engine_state: state.as_str().into(),
            reboot_required: !reasons.is_empty(),
            reboot_reasons: reasons,
            hugepages_target: p.hugepages_target,
            hugepages_allocated: allocated,
            modules_loaded: present(&modules),
            boot_persistence: p.backend.as_str().into(),
            boot_files: self.existing_boot_files()?,
            last_error: String::new(),
            setting_revision,
            override_revision,
            ..Default::default()
        };
        if cfg.enabled {
            let readiness = match state {
                EngineState::Ready => HostReadiness::Ready,
                _ => HostReadiness::WaitingForReboot,
            };
            let report = self.engine.after_prepare(&cfg, readiness)?;
            if let Some(s) = report.state {
                st.engine_state = s;
                self.engine_owned.store(true, Ordering::Relaxed);
            }
            st.spdk_version = report.spdk_version;
            st.engine_restarts = report.restarts;
            self.pending_generation
                .store(report.generation, Ordering::Relaxed);
        }
        let recs = self.disks.records(&records)?;
        st.disks = self.disks.reconcile(&recs, self.engine.rpc().as_ref())?;
        if let Some(rpc) = self.engine.rpc() {
            // Exports lost with an engine restart come back once the disks are.
            match self.volumes.resync_replicas(&rpc) {
                Ok(problems) => {
                    for p in problems {
                        tracing::warn!(node = %self.node, "{p}");
                    }
                }
                Err(e) => tracing::warn!(node = %self.node, "replicas not resynced: {e}"),
            }
        }
        st.config = Some(cfg);
        Ok(st)
    }

    fn existing_boot_files(&self) -> Result<Vec<String>, ExecutorError> {
        let mut out = Vec::new();
        for p in boot::OWNED_FILES {
            if self
                .host
                .read_file(p)
                .map_err(|e| self.host_err(e))?
                .is_some()
            {
                out.push(p.to_string());
            }
        }
        Ok(out)
    }

    /// The status after a failed reconcile: what can still be observed, and the error.
    fn failed_status(&self, err: &ExecutorError) -> NodeStatus {
        let mut st = NodeStatus {
            node: self.node.clone(),
            engine_state: EngineState::Failed.as_str().into(),
            last_error: err.to_string(),
            ..Default::default()
        };
        if let Ok((cfg, (s, o))) = self.stored_config() {
            st.setting_revision = s;
            st.override_revision = o;
            st.boot_persistence =
                boot::resolve(cfg.boot_persistence, self.host.dir_exists(boot::OEM_DIR))
                    .as_str()
                    .into();
            if cfg.enabled {
                st.hugepages_target = cfg.hugepages;
                st.hugepages_allocated = self.host.hugepages().map_or(0, |h| h.total);
            }
            if let Ok(m) = self.host.module_states(&cfg.kernel_modules) {
                st.modules_loaded = present(&m);
            }
            st.config = Some(cfg);
        }
        st.boot_files = self.existing_boot_files().unwrap_or_default();
        st
    }
}

/// What a plan's outcome means for the engine.
fn readiness_of(cfg: &NodeConfig, state: EngineState) -> HostReadiness {
    match state {
        _ if !cfg.enabled => HostReadiness::Disabled,
        EngineState::Ready => HostReadiness::Ready,
        _ => HostReadiness::WaitingForReboot,
    }
}

fn present(modules: &[(String, ModuleState)]) -> Vec<String> {
    modules
        .iter()
        .filter(|(_, s)| s.is_present())
        .map(|(n, _)| n.clone())
        .collect()
}
