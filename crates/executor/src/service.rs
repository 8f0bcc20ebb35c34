//! The gRPC service `v2engine.executor.v1.Executor`: conversions between the API and the
//! executor's types, and the only place where errors become [`tonic::Status`].
//!
//! Every call runs the synchronous [`Executor`] in a blocking task, so slow host I/O
//! (modprobe, allocating hugepages, fsync) never stalls the runtime.

use std::sync::Arc;

use model::{NodeConfig, Record, RecordKind};
use proto::v1 as pb;
use spdk_rpc::SpdkCall;
use tonic::{Request, Response, Status};

use crate::daemon::{Executor, ExecutorError, Facts, NodeStatus, Prediction};
use crate::disks::{Candidate, DiskStatus};
use crate::host::ModuleState;
use crate::records::{IncomingRecord, PutOutcome, RecordsError};
use crate::volumes::spec::Reconnect;
use crate::volumes::state::{ExportStatus, ReplicaStatus, VolumeObject};
use crate::volumes::{EngineRequest, MemberRequest, ReplicaRequest, VolumeEngine};

/// The tonic service over one node's [`Executor`].
#[derive(Debug, Clone)]
pub struct Service {
    exec: Arc<Executor>,
}

impl Service {
    /// A service for `exec`.
    pub fn new(exec: Arc<Executor>) -> Self {
        Self { exec }
    }

    /// The tonic server wrapper.
    pub fn into_server(self) -> pb::executor_server::ExecutorServer<Self> {
        pb::executor_server::ExecutorServer::new(self)
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&Executor) -> Result<T, ExecutorError> + Send + 'static,
    {
        let exec = Arc::clone(&self.exec);
        tokio::task::spawn_blocking(move || f(&exec))
            .await
            .map_err(|e| Status::internal(format!("executor task failed: {e}")))?
            .map_err(|e| status_of(&e))
    }
}

/// The gRPC status for an executor error.
pub fn status_of(e: &ExecutorError) -> Status {
    let msg = e.to_string();
    match e {
        ExecutorError::Records(RecordsError::Invalid { .. }) => Status::invalid_argument(msg),
        ExecutorError::Refused { .. } | ExecutorError::Config { .. } => {
            Status::failed_precondition(msg)
        }
        ExecutorError::Volumes(v) if v.is_invalid_input() => Status::invalid_argument(msg),
        ExecutorError::Volumes(v) if v.is_precondition() => Status::failed_precondition(msg),
        ExecutorError::Volumes(_) => Status::internal(msg),
        ExecutorError::Records(_)
        | ExecutorError::Host { .. }
        | ExecutorError::Baseline { .. }
        | ExecutorError::Engine(_)
        | ExecutorError::Disks(_)
        | ExecutorError::BadNodeName { .. } => Status::internal(msg),
    }
}

fn module_state(s: ModuleState) -> pb::ModuleState {
    match s {
        ModuleState::Loaded => pb::ModuleState::Loaded,
        ModuleState::Builtin => pb::ModuleState::Builtin,
        ModuleState::Loadable => pb::ModuleState::Loadable,
        ModuleState::Missing => pb::ModuleState::Missing,
    }
}

fn module_facts(m: Vec<(String, ModuleState)>) -> Vec<pb::ModuleFact> {
    m.into_iter()
        .map(|(name, s)| pb::ModuleFact {
            name,
            state: module_state(s) as i32,
        })
        .collect()
}

/// API form of the facts.
pub fn facts_to_pb(f: Facts) -> pb::HostFacts {
    pb::HostFacts {
        node: f.node,
        hostname: f.hostname,
        kernel_release: f.kernel_release,
        simulated: f.simulated,
        memory_total_bytes: f.memory.total_bytes,
        memory_available_bytes: f.memory.available_bytes,
        cpu_count: f.cpu_count,
        hugepages: Some(pb::HugepageFacts {
            page_size_bytes: f.hugepages.page_size_bytes,
            total: f.hugepages.total,
            free: f.hugepages.free,
            allocatable_now: f.hugepages.allocatable_now,
        }),
        modules: module_facts(f.modules),
        tools: f
            .tools
            .into_iter()
            .map(|t| pb::ToolFact {
                name: t.name,
                present: t.path.is_some(),
                path: t.path.unwrap_or_default(),
            })
            .collect(),
        boot_persistence_auto: f.boot_persistence_auto.as_str().into(),
        executor_version: f.executor_version,
    }
}

/// API form of a configuration.
pub fn config_to_pb(c: NodeConfig) -> pb::NodeConfig {
    pb::NodeConfig {
        enabled: c.enabled,
        hugepages: c.hugepages,
        cpu_mask: c.cpu_mask,
        log_level: c.log_level,
        interrupt_mode: c.interrupt_mode,
        kernel_modules: c.kernel_modules,
        boot_persistence: c.boot_persistence.as_str().into(),
    }
}

/// API form of a disk's status.
pub fn disk_to_pb(d: DiskStatus) -> pb::DiskStatus {
    pb::DiskStatus {
        name: d.name,
        path: d.path,
        state: d.state.as_str().into(),
        bdev: d.bdev,
        lvstore: d.lvstore,
        lvstore_uuid: d.lvstore_uuid,
        capacity_bytes: d.capacity_bytes,
        free_bytes: d.free_bytes,
        error: d.error,
    }
}

/// API form of a candidate device.
pub fn candidate_to_pb(c: Candidate) -> pb::DiskCandidate {
    pb::DiskCandidate {
        path: c.path,
        device: c.device,
        size_bytes: c.size_bytes,
        partition: c.partition,
        by_id: c.by_id,
        signature: c.signature,
        excluded: c.excluded,
        disk: c.disk,
    }
}

/// API form of the status.
pub fn status_to_pb(s: NodeStatus) -> pb::NodeStatus {
    pb::NodeStatus {
        node: s.node,
        config: s.config.map(config_to_pb),
        engine_state: s.engine_state,
        reboot_required: s.reboot_required,
        reboot_reasons: s.reboot_reasons,
        hugepages_target: s.hugepages_target,
        hugepages_allocated: s.hugepages_allocated,
        modules_loaded: s.modules_loaded,
        boot_persistence: s.boot_persistence,
        boot_files: s.boot_files,
        last_error: s.last_error,
        setting_revision: s.setting_revision,
        override_revision: s.override_revision,
        spdk_version: s.spdk_version,
        engine_restarts: s.engine_restarts,
        disks: s.disks.into_iter().map(disk_to_pb).collect(),
    }
}

/// API form of a record (a tombstone without spec has an empty `spec_json`).
pub fn record_to_pb(r: Record) -> pb::Record {
    pb::Record {
        kind: r.key.kind.as_str().into(),
        name: r.key.name,
        revision: r.revision,
        deleted: r.deleted,
        spec_json: if r.spec.is_null() {
            String::new()
        } else {
            r.spec.to_string()
        },
    }
}

/// An API record as the store takes it.
pub fn record_from_pb(r: pb::Record) -> IncomingRecord {
    IncomingRecord {
        kind: r.kind,
        name: r.name,
        revision: r.revision,
        deleted: r.deleted,
        spec_json: r.spec_json,
    }
}

fn put_result(o: PutOutcome) -> pb::PutResult {
    pb::PutResult {
        kind: o.key.kind.as_str().into(),
        name: o.key.name,
        applied: o.applied,
        stored_revision: o.stored_revision,
    }
}

/// API form of a prediction.
pub fn prediction_to_pb(p: Prediction) -> pb::Prediction {
    let plan = p.plan;
    pb::Prediction {
        config: Some(config_to_pb(p.config)),
        engine_state: p.engine_state,
        reboot_required: !plan.reboot_reasons.is_empty(),
        reboot_reasons: plan.reboot_reasons,
        hugepages_target: plan.hugepages_target,
        hugepages_current: plan.hugepages_current,
        hugepages_expected: plan.hugepages_expected,
        modules: module_facts(p.modules),
        errors: plan.errors,
        boot_persistence: plan.backend.as_str().into(),
        boot_files: plan
            .desired_files
            .iter()
            .map(|f| f.path.to_string())
            .collect(),
        changes: plan.changes,
        disks: p.disks.into_iter().map(disk_to_pb).collect(),
    }
}

fn export_to_pb(e: ExportStatus) -> pb::ExportState {
    pb::ExportState {
        nqn: e.nqn,
        address: e.address,
        port: u32::from(e.port),
        hosts: e.hosts,
    }
}

/// API form of a replica's state.
pub fn replica_to_pb(r: ReplicaStatus) -> pb::ReplicaState {
    pb::ReplicaState {
        replica: r.replica,
        volume: r.volume,
        disk: r.disk,
        uuid: r.uuid,
        size_mib: r.size_mib,
        thin: r.thin,
        state: r.state,
        export: r.export.map(export_to_pb),
    }
}

/// API form of an engine's state.
pub fn engine_to_pb(v: VolumeEngine) -> pb::EngineState {
    let e = v.status;
    pb::EngineState {
        volume: e.volume,
        state: e.state,
        raid: e.raid,
        raid_state: e.raid_state,
        rebuild: e
            .rebuild
            .map(|(target, percent)| pb::RebuildProgress { target, percent }),
        members: e
            .members
            .into_iter()
            .map(|m| pb::EngineMember {
                replica: m.replica,
                bdev: m.bdev,
                local: m.local,
                state: m.state,
                controller_state: m.controller_state,
                size_bytes: m.size_bytes,
            })
            .collect(),
        frontend: e.frontend.map(export_to_pb),
        device_path: v.device_path.unwrap_or_default(),
        size_bytes: e.size_bytes,
    }
}

/// API form of an operation's SPDK call trace.
pub fn spdk_calls_to_pb(calls: Vec<SpdkCall>) -> Vec<pb::SpdkCall> {
    calls
        .into_iter()
        .map(|c| pb::SpdkCall {
            micros: c.micros(),
            method: c.method,
            ok: c.ok,
        })
        .collect()
}

/// An API replica request as the executor takes it.
pub fn replica_request_from_pb(r: pb::EnsureReplicaRequest) -> ReplicaRequest {
    ReplicaRequest {
        replica: r.replica,
        disk: r.disk,
        size_mib: r.size_mib,
        thick: r.thick,
        export: r.export,
        host_nqn: r.host_nqn,
        dry_run: r.dry_run,
    }
}

/// An API engine request as the executor takes it.
pub fn engine_request_from_pb(r: pb::EnsureEngineRequest) -> EngineRequest {
    EngineRequest {
        volume: r.volume,
        host_nqn: r.host_nqn,
        members: r
            .replicas
            .into_iter()
            .map(|m| MemberRequest {
                replica: m.replica,
                disk: m.disk,
                address: m.address,
                port: m.port,
            })
            .collect(),
        frontend_hosts: r.frontend_hosts,
        reconnect: r.reconnect.map(|p| Reconnect {
            reconnect_delay_sec: p.reconnect_delay_sec,
            ctrlr_loss_timeout_sec: p.ctrlr_loss_timeout_sec,
            fast_io_fail_timeout_sec: p.fast_io_fail_timeout_sec,
        }),
        frontend: r.frontend,
        size_bytes: (r.size_mib > 0).then_some(r.size_mib << 20),
        dry_run: r.dry_run,
    }
}

fn object_to_pb(o: VolumeObject) -> pb::VolumeObject {
    pb::VolumeObject {
        kind: o.kind.as_str().into(),
        name: o.name,
        volume: o.volume,
        orphan: o.orphan,
        detail: o.detail,
    }
}

#[tonic::async_trait]
impl pb::executor_server::Executor for Service {
    async fn get_host_facts(
        &self,
        _: Request<pb::GetHostFactsRequest>,
    ) -> Result<Response<pb::HostFacts>, Status> {
        let f = self.blocking(Executor::facts).await?;
        Ok(Response::new(facts_to_pb(f)))
    }

    async fn get_node_status(
        &self,
        _: Request<pb::GetNodeStatusRequest>,
    ) -> Result<Response<pb::NodeStatus>, Status> {
        Ok(Response::new(status_to_pb(self.exec.status())))
    }

    async fn observe(
        &self,
        _: Request<pb::ObserveRequest>,
    ) -> Result<Response<pb::Observation>, Status> {
        let (facts, status, records) = self
            .blocking(|e| Ok((e.facts()?, e.status(), e.list_records(None))))
            .await?;
        Ok(Response::new(pb::Observation {
            facts: Some(facts_to_pb(facts)),
            status: Some(status_to_pb(status)),
            records: records.into_iter().map(record_to_pb).collect(),
        }))
    }

    async fn list_records(
        &self,
        req: Request<pb::ListRecordsRequest>,
    ) -> Result<Response<pb::ListRecordsResponse>, Status> {
        let kind = req.into_inner().kind;
        let kind = if kind.is_empty() {
            None
        } else {
            Some(
                RecordKind::parse(&kind)
                    .map_err(|e| Status::invalid_argument(format!("kind: {e}")))?,
            )
        };
        let records = self.exec.list_records(kind);
        Ok(Response::new(pb::ListRecordsResponse {
            records: records.into_iter().map(record_to_pb).collect(),
        }))
    }

    async fn put_records(
        &self,
        req: Request<pb::PutRecordsRequest>,
    ) -> Result<Response<pb::PutRecordsResponse>, Status> {
        let batch: Vec<IncomingRecord> = req
            .into_inner()
            .records
            .into_iter()
            .map(record_from_pb)
            .collect();
        let out = self.blocking(move |e| e.put_records(&batch)).await?;
        Ok(Response::new(pb::PutRecordsResponse {
            results: out.into_iter().map(put_result).collect(),
        }))
    }

    async fn predict(
        &self,
        req: Request<pb::PredictRequest>,
    ) -> Result<Response<pb::Prediction>, Status> {
        let overlay: Vec<IncomingRecord> = req
            .into_inner()
            .overlay
            .into_iter()
            .map(record_from_pb)
            .collect();
        let p = self.blocking(move |e| e.predict(&overlay)).await?;
        Ok(Response::new(prediction_to_pb(p)))
    }

    async fn reconcile(
        &self,
        _: Request<pb::ReconcileRequest>,
    ) -> Result<Response<pb::NodeStatus>, Status> {
        let st = self.blocking(Executor::reconcile).await?;
        Ok(Response::new(status_to_pb(st)))
    }

    async fn ensure_replica(
        &self,
        req: Request<pb::EnsureReplicaRequest>,
    ) -> Result<Response<pb::ReplicaResult>, Status> {
        let r = replica_request_from_pb(req.into_inner());
        let out = self.blocking(move |e| e.ensure_replica(&r)).await?;
        Ok(Response::new(pb::ReplicaResult {
            replica: Some(replica_to_pb(out.status)),
            actions: out.actions,
            spdk_calls: spdk_calls_to_pb(out.spdk_calls),
        }))
    }

    async fn delete_replica(
        &self,
        req: Request<pb::DeleteReplicaRequest>,
    ) -> Result<Response<pb::ReplicaResult>, Status> {
        let r = req.into_inner();
        let out = self
            .blocking(move |e| e.delete_replica(&r.replica, r.dry_run))
            .await?;
        Ok(Response::new(pb::ReplicaResult {
            replica: Some(replica_to_pb(out.status)),
            actions: out.actions,
            spdk_calls: spdk_calls_to_pb(out.spdk_calls),
        }))
    }

    async fn ensure_engine(
        &self,
        req: Request<pb::EnsureEngineRequest>,
    ) -> Result<Response<pb::EngineResult>, Status> {
        let r = engine_request_from_pb(req.into_inner());
        let out = self.blocking(move |e| e.ensure_engine(&r)).await?;
        Ok(Response::new(pb::EngineResult {
            engine: Some(engine_to_pb(out.status)),
            actions: out.actions,
            spdk_calls: spdk_calls_to_pb(out.spdk_calls),
        }))
    }

    async fn delete_engine(
        &self,
        req: Request<pb::DeleteEngineRequest>,
    ) -> Result<Response<pb::EngineResult>, Status> {
        let r = req.into_inner();
        let out = self
            .blocking(move |e| e.delete_engine(&r.volume, r.dry_run))
            .await?;
        Ok(Response::new(pb::EngineResult {
            engine: Some(engine_to_pb(out.status)),
            actions: out.actions,
            spdk_calls: spdk_calls_to_pb(out.spdk_calls),
        }))
    }

    async fn list_volume_objects(
        &self,
        _: Request<pb::ListVolumeObjectsRequest>,
    ) -> Result<Response<pb::ListVolumeObjectsResponse>, Status> {
        let inv = self.blocking(Executor::list_volume_objects).await?;
        Ok(Response::new(pb::ListVolumeObjectsResponse {
            objects: inv.objects.into_iter().map(object_to_pb).collect(),
            replicas: inv.replicas.into_iter().map(replica_to_pb).collect(),
            engines: inv.engines.into_iter().map(engine_to_pb).collect(),
        }))
    }

    async fn list_disks(
        &self,
        req: Request<pb::ListDisksRequest>,
    ) -> Result<Response<pb::ListDisksResponse>, Status> {
        let paths = req.into_inner().paths;
        if let Some((i, e)) = paths.iter().enumerate().find_map(|(i, p)| {
            model::block_disk::check_device_path(p)
                .err()
                .map(|e| (i, e))
        }) {
            return Err(Status::invalid_argument(format!("paths[{i}]: {e}")));
        }
        let c = self.blocking(move |e| e.list_disks(&paths)).await?;
        Ok(Response::new(pb::ListDisksResponse {
            candidates: c.into_iter().map(candidate_to_pb).collect(),
        }))
    }
}
