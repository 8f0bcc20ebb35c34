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
    reboot_needed: bool,
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
            status: Some(status(&self.node, self.enabled(&[]), self.reboot_needed)),
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
}

struct Cluster {
    _dir: tempfile::TempDir,
    fakes: Vec<Arc<Fake>>,
    _tasks: Vec<tokio::task::JoinHandle<()>>,
    session: Session,
}

async fn cluster(n: usize) -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let mut fakes = vec![];
    let mut tasks = vec![];
    let mut endpoints = BTreeMap::new();
    for i in 1..=n {
        let fake = Arc::new(Fake {
            node: format!("node-{i}"),
            reboot_needed: i == n,
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
