//! `client::ops` against in-process fake executors (the same gRPC trait the real executor
//! implements): a plan reads each node once, writes go to every node with one revision above
//! any seen, tombstones hide objects, and a class in use cannot be deleted.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use client::ops::{self, OpsError, Session};
use client::transport::TransportOptions;
use client::{Endpoint, Fleet, v1};
use proto::v1::executor_server::{Executor, ExecutorServer};
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::{Request, Response, Status};

/// A fake executor: keeps records, counts calls, predicts a fixed outcome.
#[derive(Default)]
struct Fake {
    node: String,
    records: Mutex<BTreeMap<(String, String), v1::Record>>,
    observes: AtomicUsize,
    puts: AtomicUsize,
    lists: AtomicUsize,
    reboot_needed: bool,
    /// Volume tests: the engine runs and the node has one ready disk `d1`.
    running: bool,
    /// Volume objects and the calls that made them.
    vols: Mutex<Vols>,
}

/// A fake executor's volume objects and the volume calls it received.
#[derive(Default)]
struct Vols {
    replicas: Vec<v1::ReplicaState>,
    engines: Vec<v1::EngineState>,
    ensure_replica: Vec<v1::EnsureReplicaRequest>,
    ensure_engine: Vec<v1::EnsureEngineRequest>,
    deleted_replicas: Vec<String>,
    deleted_engines: Vec<String>,
}

impl Fake {
    fn node_status(&self) -> v1::NodeStatus {
        let mut s = status(&self.node, self.enabled(&[]), self.reboot_needed);
        if self.running {
            s.engine_state = "running".into();
            s.disks = vec![v1::DiskStatus {
                name: format!("{}/d1", self.node),
                state: "ready".into(),
                capacity_bytes: 10 << 30,
                free_bytes: 10 << 30,
                ..Default::default()
            }];
        }
        s
    }
}

fn status(node: &str, enabled: bool, reboot: bool) -> v1::NodeStatus {
    v1::NodeStatus {
        node: node.into(),
        config: Some(v1::NodeConfig {
            enabled,
            hugepages: 32,
            ..Default::default()
        }),
        engine_state: if !enabled {
            "disabled"
        } else if reboot {
            "waiting_for_reboot"
        } else {
            "ready"
        }
        .into(),
        reboot_required: enabled && reboot,
        reboot_reasons: if enabled && reboot {
            vec!["allocated 3 of 32 hugepages".into()]
        } else {
            vec![]
        },
        hugepages_target: if enabled { 32 } else { 0 },
        hugepages_allocated: if !enabled {
            0
        } else if reboot {
            3
        } else {
            32
        },
        ..Default::default()
    }
}

impl Fake {
    fn enabled(&self, overlay: &[v1::Record]) -> bool {
        let recs = self.records.lock().unwrap();
        let stored = recs.get(&("data_engine_setting".into(), "cluster".into()));
        let rec = overlay
            .iter()
            .find(|r| r.kind == "data_engine_setting")
            .or(stored);
        rec.is_some_and(|r| !r.deleted && r.spec_json.contains("\"enabled\":true"))
    }
}

/// The gRPC face of a shared fake.
#[derive(Clone)]
struct Svc(Arc<Fake>);

impl std::ops::Deref for Svc {
    type Target = Fake;
    fn deref(&self) -> &Fake {
        &self.0
    }
}

#[tonic::async_trait]
impl Executor for Svc {
    async fn get_host_facts(
        &self,
        _: Request<v1::GetHostFactsRequest>,
    ) -> Result<Response<v1::HostFacts>, Status> {
        Ok(Response::new(v1::HostFacts {
            node: self.node.clone(),
            ..Default::default()
        }))
    }
    async fn get_node_status(
        &self,
        _: Request<v1::GetNodeStatusRequest>,
    ) -> Result<Response<v1::NodeStatus>, Status> {
        Ok(Response::new(status(
            &self.node,
            self.enabled(&[]),
            self.reboot_needed,
        )))
    }
    async fn observe(
        &self,
        _: Request<v1::ObserveRequest>,
    ) -> Result<Response<v1::Observation>, Status> {
        self.observes.fetch_add(1, Ordering::SeqCst);
        Ok(Response::new(v1::Observation {
            facts: Some(v1::HostFacts {
                node: self.node.clone(),
                ..Default::default()
            }),
            status: Some(self.node_status()),
            records: self.records.lock().unwrap().values().cloned().collect(),
        }))
    }
    async fn list_records(
        &self,
        _: Request<v1::ListRecordsRequest>,
    ) -> Result<Response<v1::ListRecordsResponse>, Status> {
        Ok(Response::new(v1::ListRecordsResponse {
            records: self.records.lock().unwrap().values().cloned().collect(),
        }))
    }
    async fn put_records(
        &self,
        r: Request<v1::PutRecordsRequest>,
    ) -> Result<Response<v1::PutRecordsResponse>, Status> {
        self.puts.fetch_add(1, Ordering::SeqCst);
        let mut recs = self.records.lock().unwrap();
        let mut results = vec![];
        for rec in r.into_inner().records {
            let k = (rec.kind.clone(), rec.name.clone());
            let applied = recs.get(&k).is_none_or(|old| rec.revision > old.revision);
            if applied {
                recs.insert(k, rec.clone());
            }
            results.push(v1::PutResult {
                kind: rec.kind,
                name: rec.name,
                applied,
                stored_revision: rec.revision,
            });
        }
        Ok(Response::new(v1::PutRecordsResponse { results }))
    }
    async fn predict(
        &self,
        r: Request<v1::PredictRequest>,
    ) -> Result<Response<v1::Prediction>, Status> {
        let enabled = self.enabled(&r.into_inner().overlay);
        let s = status(&self.node, enabled, self.reboot_needed);
        Ok(Response::new(v1::Prediction {
            config: s.config,
            engine_state: s.engine_state,
            reboot_required: s.reboot_required,
            reboot_reasons: s.reboot_reasons,
            hugepages_target: s.hugepages_target,
            hugepages_expected: s.hugepages_allocated,
            ..Default::default()
        }))
    }
    async fn reconcile(
        &self,
        _: Request<v1::ReconcileRequest>,
    ) -> Result<Response<v1::NodeStatus>, Status> {
        Ok(Response::new(status(
            &self.node,
            self.enabled(&[]),
            self.reboot_needed,
        )))
    }
    async fn ensure_replica(
        &self,
        r: Request<v1::EnsureReplicaRequest>,
    ) -> Result<Response<v1::ReplicaResult>, Status> {
        let r = r.into_inner();
        let mut v = self.vols.lock().unwrap();
        v.ensure_replica.push(r.clone());
        let volume = r.replica.rsplit_once("-r-").unwrap().0.to_string();
        let port = 4420
            + self
                .node
                .trim_start_matches("node-")
                .parse::<u32>()
                .unwrap();
        let st = v1::ReplicaState {
            replica: r.replica.clone(),
            volume,
            disk: r.disk,
            size_mib: r.size_mib,
            thin: !r.thick,
            state: "healthy".into(),
            export: r.export.then(|| v1::ExportState {
                nqn: format!("nqn.2026-11.io.v2engine:{}", r.replica),
                address: "127.0.0.1".into(),
                port,
                hosts: vec![r.host_nqn],
            }),
            ..Default::default()
        };
        v.replicas.retain(|x| x.replica != r.replica);
        v.replicas.push(st.clone());
        Ok(Response::new(v1::ReplicaResult {
            replica: Some(st),
            actions: vec![],
            ..Default::default()
        }))
    }
    async fn delete_replica(
        &self,
        r: Request<v1::DeleteReplicaRequest>,
    ) -> Result<Response<v1::ReplicaResult>, Status> {
        let r = r.into_inner();
        let mut v = self.vols.lock().unwrap();
        v.replicas.retain(|x| x.replica != r.replica);
        v.deleted_replicas.push(r.replica);
        Ok(Response::new(v1::ReplicaResult::default()))
    }
    async fn ensure_engine(
        &self,
        r: Request<v1::EnsureEngineRequest>,
    ) -> Result<Response<v1::EngineResult>, Status> {
        let r = r.into_inner();
        let mut v = self.vols.lock().unwrap();
        v.ensure_engine.push(r.clone());
        let e = v1::EngineState {
            volume: r.volume.clone(),
            state: "healthy".into(),
            members: r
                .replicas
                .iter()
                .map(|m| v1::EngineMember {
                    replica: m.replica.clone(),
                    local: !m.disk.is_empty(),
                    state: "healthy".into(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        v.engines.retain(|x| x.volume != r.volume);
        v.engines.push(e.clone());
        Ok(Response::new(v1::EngineResult {
            engine: Some(e),
            actions: vec![],
            ..Default::default()
        }))
    }
    async fn delete_engine(
        &self,
        r: Request<v1::DeleteEngineRequest>,
    ) -> Result<Response<v1::EngineResult>, Status> {
        let r = r.into_inner();
        let mut v = self.vols.lock().unwrap();
        v.engines.retain(|x| x.volume != r.volume);
        v.deleted_engines.push(r.volume);
        Ok(Response::new(v1::EngineResult::default()))
    }
    async fn list_volume_objects(
        &self,
        _: Request<v1::ListVolumeObjectsRequest>,
    ) -> Result<Response<v1::ListVolumeObjectsResponse>, Status> {
        self.lists.fetch_add(1, Ordering::SeqCst);
        let v = self.vols.lock().unwrap();
        Ok(Response::new(v1::ListVolumeObjectsResponse {
            objects: vec![],
            replicas: v.replicas.clone(),
            engines: v.engines.clone(),
        }))
    }
}

struct Cluster {
    _dir: tempfile::TempDir,
    fakes: Vec<Arc<Fake>>,
    _tasks: Vec<tokio::task::JoinHandle<()>>,
    session: Session,
}

async fn cluster(n: usize) -> Cluster {
    cluster_with(n, false).await
}

async fn cluster_with(n: usize, running: bool) -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let mut fakes = vec![];
    let mut tasks = vec![];
    let mut endpoints = BTreeMap::new();
    for i in 1..=n {
        let fake = Arc::new(Fake {
            node: format!("node-{i}"),
            reboot_needed: i == n && !running,
            running,
            ..Default::default()
        });
        let path = dir.path().join(format!("n{i}.sock"));
        let listener = UnixListener::bind(&path).unwrap();
        let svc = ExecutorServer::new(Svc(fake.clone()));
        tasks.push(tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming(UnixListenerStream::new(listener))
                .await;
        }));
        endpoints.insert(format!("node-{i}"), Endpoint::Unix(path_buf(&path)));
        fakes.push(fake);
    }
    let session = Session::new(Fleet::new(endpoints, TransportOptions::default()), 100);
    Cluster {
        _dir: dir,
        fakes,
        _tasks: tasks,
        session,
    }
}

fn path_buf(p: &Path) -> std::path::PathBuf {
    p.to_path_buf()
}

#[tokio::test]
async fn reads_cost_one_observe_per_node_until_a_write() {
    let c = cluster(3).await;
    for i in 0..50 {
        let _ = ops::storage_class::read(&c.session, &format!("c{i}"))
            .await
            .unwrap();
        let _ = ops::setting::read(&c.session).await.unwrap();
    }
    for f in &c.fakes {
        assert_eq!(
            f.observes.load(Ordering::SeqCst),
            1,
            "{} observed more than once",
            f.node
        );
    }
    ops::storage_class::apply(&c.session, &model::StorageClass::named("fast"))
        .await
        .unwrap();
    for f in &c.fakes {
        assert_eq!(f.puts.load(Ordering::SeqCst), 1, "{} not written", f.node);
    }
    let (spec, _) = ops::storage_class::read(&c.session, "fast")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(spec.name, "fast");
}

#[tokio::test]
async fn revisions_increase_and_tombstones_hide() {
    let c = cluster(2).await;
    let class = model::StorageClass::named("gold");
    ops::storage_class::apply(&c.session, &class).await.unwrap();
    ops::storage_class::apply(
        &c.session,
        &model::StorageClass {
            number_of_replicas: 2,
            ..class.clone()
        },
    )
    .await
    .unwrap();
    let revs: Vec<u64> = c.fakes[0]
        .records
        .lock()
        .unwrap()
        .values()
        .map(|r| r.revision)
        .collect();
    assert_eq!(revs, vec![2]);
    ops::storage_class::delete(&c.session, &class)
        .await
        .unwrap();
    assert!(
        ops::storage_class::read(&c.session, "gold")
            .await
            .unwrap()
            .is_none()
    );
    let rec = c.fakes[1]
        .records
        .lock()
        .unwrap()
        .values()
        .next()
        .cloned()
        .unwrap();
    assert!(rec.deleted);
    assert_eq!(rec.revision, 3);
}

#[tokio::test]
async fn plan_predicts_reboot_and_changes_nothing() {
    let c = cluster(3).await;
    let spec = model::DataEngineSetting {
        enabled: true,
        ..Default::default()
    };
    let out = ops::setting::plan(&c.session, &spec).await.unwrap();
    assert_eq!(out.value.reboot_required_nodes, vec!["node-3".to_string()]);
    assert_eq!(out.warnings.len(), 1);
    assert!(out.warnings[0].summary.contains("node-3"));
    for f in &c.fakes {
        assert_eq!(f.puts.load(Ordering::SeqCst), 0, "plan wrote to {}", f.node);
    }
    let applied = ops::setting::apply(&c.session, &spec).await.unwrap();
    assert_eq!(
        applied.value, out.value,
        "apply reached what the plan predicted"
    );
}

#[tokio::test]
async fn a_class_in_use_cannot_be_deleted_and_unknown_nodes_are_named() {
    let c = cluster(2).await;
    let class = model::StorageClass::named("fast");
    ops::storage_class::apply(&c.session, &class).await.unwrap();
    let vol = model::Volume {
        name: "v1".into(),
        size: "1Gi".into(),
        storage_class: "fast".into(),
        attach_node: None,
        frontend: None,
    };
    c.session
        .write_all(
            model::RecordKey::new(model::RecordKind::Volume, "v1"),
            serde_json::to_value(&vol).unwrap(),
            false,
        )
        .await
        .unwrap();
    let err = ops::storage_class::delete(&c.session, &class)
        .await
        .unwrap_err();
    assert!(matches!(err, OpsError::InUse(_)), "{err}");
    assert!(err.to_string().contains("v1"), "{err}");
    let err = ops::node_v2::plan(&c.session, &model::NodeV2::follow("node-9"))
        .await
        .unwrap_err();
    match err {
        OpsError::Invalid { attribute, reason } => {
            assert_eq!(attribute, "node");
            assert!(
                reason.contains("node-9") && reason.contains("node-1, node-2"),
                "{reason}"
            );
        }
        other => panic!("unexpected {other}"),
    }
}

/// Volume tests: three nodes with running engines and a disk `d1` each.
async fn volume_cluster(replicas: i64) -> Cluster {
    let c = cluster_with(3, true).await;
    let class = model::StorageClass {
        number_of_replicas: replicas,
        ..model::StorageClass::named("fast")
    };
    ops::storage_class::apply(&c.session, &class).await.unwrap();
    for i in 1..=3 {
        let node = format!("node-{i}");
        let disk: model::BlockDisk = serde_json::from_value(serde_json::json!({
            "node": node, "name": "d1", "path": "/dev/loop9",
            "allow_scheduling": i != 3,
        }))
        .unwrap();
        c.session
            .write_one(
                &node,
                ops::block_disk::key(&node, "d1"),
                serde_json::to_value(&disk).unwrap(),
                false,
            )
            .await
            .unwrap();
    }
    c
}

fn volume(attach: Option<&str>) -> model::Volume {
    model::Volume {
        name: "v1".into(),
        size: "1Gi".into(),
        storage_class: "fast".into(),
        attach_node: attach.map(Into::into),
        frontend: None,
    }
}

#[tokio::test]
async fn volume_plan_places_replicas_and_changes_nothing() {
    let c = volume_cluster(2).await;
    let out = ops::volume::plan(&c.session, &volume(Some("node-1")), None, &[])
        .await
        .unwrap();
    let placed: Vec<(&str, &str, &str)> = out
        .value
        .replicas
        .iter()
        .map(|r| (r.node.as_str(), r.disk.as_str(), r.state.as_str()))
        .collect();
    assert_eq!(
        placed,
        [("node-1", "d1", "planned"), ("node-2", "d1", "planned")]
    );
    assert_eq!(out.value.nqn, "nqn.2026-11.io.v2engine:v1");
    assert_eq!(out.value.state, "healthy");
    for f in &c.fakes {
        assert!(f.vols.lock().unwrap().ensure_replica.is_empty());
    }
    let detached = ops::volume::plan(&c.session, &volume(None), None, &[])
        .await
        .unwrap();
    assert_eq!(detached.value.state, "detached");
}

#[tokio::test]
async fn volume_plans_and_reads_cost_one_listing_per_node_until_a_change() {
    let c = volume_cluster(2).await;
    for i in 0..20 {
        let v = model::Volume {
            name: format!("v{i}"),
            ..volume(Some("node-1"))
        };
        ops::volume::plan(&c.session, &v, None, &[]).await.unwrap();
        assert!(
            ops::volume::read(&c.session, &v.name, &[])
                .await
                .unwrap()
                .is_none()
        );
    }
    for f in &c.fakes {
        assert_eq!(
            f.lists.load(Ordering::SeqCst),
            1,
            "{} listed more than once",
            f.node
        );
    }
    // A volume apply changes SPDK: the next plan looks again.
    ops::volume::apply(&c.session, &volume(Some("node-1")), None, None, &[])
        .await
        .unwrap();
    let before: Vec<usize> = c
        .fakes
        .iter()
        .map(|f| f.lists.load(Ordering::SeqCst))
        .collect();
    ops::volume::plan(&c.session, &volume(Some("node-1")), None, &[])
        .await
        .unwrap();
    ops::volume::plan(&c.session, &volume(Some("node-1")), None, &[])
        .await
        .unwrap();
    for (f, b) in c.fakes.iter().zip(before) {
        assert_eq!(
            f.lists.load(Ordering::SeqCst),
            b + 1,
            "{} not listed again exactly once",
            f.node
        );
    }
}

#[tokio::test]
async fn volume_plan_errors_name_the_class_and_each_excluded_node() {
    let c = volume_cluster(3).await;
    let err = ops::volume::plan(&c.session, &volume(Some("node-1")), None, &[])
        .await
        .unwrap_err();
    match err {
        OpsError::Invalid { attribute, reason } => {
            assert_eq!(attribute, "storage_class");
            assert!(
                reason.contains("node-3") && reason.contains("scheduling disabled"),
                "{reason}"
            );
        }
        other => panic!("unexpected {other}"),
    }
    let err = ops::volume::plan(
        &c.session,
        &model::Volume {
            storage_class: "nope".into(),
            ..volume(None)
        },
        None,
        &[],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, OpsError::Invalid { attribute, .. } if attribute == "storage_class"),
        "{err}"
    );
    assert!(err.to_string().contains("nope"), "{err}");
}

#[tokio::test]
async fn volume_apply_read_grow_refuse_shrink_and_delete() {
    let c = volume_cluster(2).await;
    let spec = volume(Some("node-1"));
    let out = ops::volume::apply(&c.session, &spec, None, None, &[])
        .await
        .unwrap();
    assert_eq!(out.value.state, "healthy");
    assert!(out.value.replicas.iter().all(|r| r.state == "healthy"));
    let reqs1 = c.fakes[0].vols.lock().unwrap().ensure_replica.clone();
    let reqs2 = c.fakes[1].vols.lock().unwrap().ensure_replica.clone();
    assert_eq!((reqs1.len(), reqs2.len()), (1, 1));
    assert!(c.fakes[2].vols.lock().unwrap().ensure_replica.is_empty());
    assert!(
        !reqs1[0].export,
        "the attach node's replica is used directly"
    );
    assert!(reqs2[0].export, "the remote replica is exported");
    assert_eq!(reqs2[0].host_nqn, "nqn.2026-11.io.v2engine:host-node-1");
    for r in [&reqs1[0], &reqs2[0]] {
        assert_eq!(r.size_mib, 1024);
        assert!(r.replica.starts_with("v1-r-"));
    }
    let eng = c.fakes[0].vols.lock().unwrap().ensure_engine.clone();
    assert_eq!(eng.len(), 1);
    assert_eq!(eng[0].replicas[0].disk, "d1", "the local replica by disk");
    assert_eq!(
        eng[0].replicas[1].port, 4422,
        "the remote one by its export"
    );
    assert_eq!(eng[0].replicas[1].replica, reqs2[0].replica);

    // Idempotent: the same names again, and the plan keeps the existing replicas.
    ops::volume::apply(&c.session, &spec, Some(&spec), None, &[])
        .await
        .unwrap();
    assert_eq!(
        c.fakes[1].vols.lock().unwrap().ensure_replica[1].replica,
        reqs2[0].replica
    );
    let (stored, st) = ops::volume::read(&c.session, "v1", &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.frontend, Some(model::storage_class::Frontend::Nvmf));
    assert_eq!(st.state, "healthy");
    assert_eq!(st.replicas.len(), 2);

    // Grow in place; shrink refused on `size`.
    let big = model::Volume {
        size: "2Gi".into(),
        ..spec.clone()
    };
    let p = ops::volume::plan(&c.session, &big, Some(&spec), &[])
        .await
        .unwrap();
    assert!(p.value.replicas.iter().all(|r| r.state == "healthy"));
    let err = ops::volume::plan(&c.session, &spec, Some(&big), &[])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, OpsError::Invalid { attribute, .. } if attribute == "size"),
        "{err}"
    );

    // Move the engine: deleted on node-1, ensured on node-2.
    let moved = volume(Some("node-2"));
    ops::volume::apply(&c.session, &moved, Some(&spec), None, &[])
        .await
        .unwrap();
    assert_eq!(c.fakes[0].vols.lock().unwrap().deleted_engines, ["v1"]);
    let eng2 = c.fakes[1].vols.lock().unwrap().ensure_engine.clone();
    assert_eq!(eng2.len(), 1);
    assert_eq!(eng2[0].host_nqn, "nqn.2026-11.io.v2engine:host-node-2");

    ops::volume::delete(&c.session, &moved).await.unwrap();
    for f in &c.fakes[..2] {
        let v = f.vols.lock().unwrap();
        assert!(v.replicas.is_empty() && v.engines.is_empty(), "{}", f.node);
    }
    assert!(
        ops::volume::read(&c.session, "v1", &[])
            .await
            .unwrap()
            .is_none()
    );
}
