//! The configured provider: the fleet and one observation of it per plan.
//!
//! Every resource's refresh and plan reads from one `Observe` per node, taken the first
//! time a resource asks and kept until something is written, so a plan costs O(nodes)
//! executor calls, not O(resources).

use std::collections::BTreeMap;
use std::sync::Arc;

use client::fleet::{NodeObservation, merge_observations};
use client::{Fleet, FleetError, v1};
use model::record::Merged;
use model::{Record, RecordKey};
use tfplugin::{Diagnostic, Diagnostics};
use tokio::sync::Mutex;

/// The fleet as observed once.
#[derive(Debug)]
pub struct Observed {
    /// Per node: facts, status, records.
    pub nodes: BTreeMap<String, NodeObservation>,
    /// Records merged across nodes (highest revision wins) with drift.
    pub merged: Merged,
}

impl Observed {
    /// The live record for `key`, if any.
    pub fn live(&self, key: &RecordKey) -> Option<&Record> {
        self.merged.live(key)
    }

    /// Nodes whose copy of `key` is missing or older.
    pub fn drift(&self, key: &RecordKey) -> Vec<String> {
        self.merged
            .drift
            .iter()
            .filter(|(_, k)| k == key)
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// A node's status.
    pub fn status(&self, node: &str) -> Option<&v1::NodeStatus> {
        self.nodes
            .get(node)
            .and_then(|o| o.observation.status.as_ref())
    }
}

/// The configured provider.
#[derive(Debug)]
pub struct Context {
    /// The fleet.
    pub fleet: Fleet,
    /// Thin provisioning limit for placement.
    pub over_provisioning_percent: u64,
    cache: Mutex<Option<Arc<Observed>>>,
    pending: Mutex<BTreeMap<RecordKey, Record>>,
}

/// A fleet error as a diagnostic that names the nodes.
pub fn fleet_diag(summary: &str, e: FleetError) -> Diagnostics {
    Diagnostic::error(summary, e.to_string()).into()
}

impl Context {
    /// A context over `fleet`.
    pub fn new(fleet: Fleet, over_provisioning_percent: u64) -> Self {
        Self {
            fleet,
            over_provisioning_percent,
            cache: Mutex::new(None),
            pending: Mutex::new(BTreeMap::new()),
        }
    }

    /// The fleet observed once (cached). An unreachable node is an error naming it.
    pub async fn observed(&self) -> Result<Arc<Observed>, Diagnostics> {
        let mut guard = self.cache.lock().await;
        if let Some(o) = guard.as_ref() {
            return Ok(o.clone());
        }
        let nodes = self
            .fleet
            .observe_all()
            .await
            .map_err(|e| fleet_diag("Cannot read the v2engine nodes", e))?;
        let merged = merge_observations(&nodes);
        let o = Arc::new(Observed { nodes, merged });
        *guard = Some(o.clone());
        Ok(o)
    }

    /// Forgets the cached observation (after a write).
    pub async fn invalidate(&self) {
        *self.cache.lock().await = None;
    }

    /// The revision for the next write: one more than any seen.
    pub async fn next_revision(&self) -> Result<u64, Diagnostics> {
        self.invalidate().await;
        Ok(self.observed().await?.merged.max_revision() + 1)
    }

    /// Writes a record to every node (cluster-scoped objects).
    pub async fn write_all(
        &self,
        key: RecordKey,
        spec: serde_json::Value,
        deleted: bool,
    ) -> Result<Record, Diagnostics> {
        let revision = self.next_revision().await?;
        let rec = Record {
            key,
            revision,
            deleted,
            spec,
        };
        let r = self.fleet.put_all(std::slice::from_ref(&rec)).await;
        self.invalidate().await;
        r.map_err(|e| fleet_diag(&format!("Cannot store {}", rec.key), e))?;
        Ok(rec)
    }

    /// Registers `rec` as planned in this run and returns every record planned so far
    /// (with `rec` last). Terraform plans a resource after those it depends on, so a
    /// `node_v2` that depends on the setting is predicted with the setting's new value.
    pub async fn plan_overlay(&self, rec: Record) -> Vec<Record> {
        let mut p = self.pending.lock().await;
        p.insert(rec.key.clone(), rec.clone());
        let mut out: Vec<Record> = p.values().filter(|r| r.key != rec.key).cloned().collect();
        out.push(rec);
        out
    }

    /// Predicts `overlay` on one node.
    pub async fn predict(
        &self,
        node: &str,
        overlay: &[Record],
    ) -> Result<v1::Prediction, Diagnostics> {
        let mut c = self
            .fleet
            .client(node)
            .await
            .map_err(|e| fleet_diag("Cannot reach node", e))?;
        c.predict(overlay).await.map_err(|e| {
            Diagnostic::error(
                format!("Cannot predict the outcome on node {node}"),
                e.to_string(),
            )
            .into()
        })
    }

    /// Predicts `overlay` on every node, in parallel.
    pub async fn predict_all(
        &self,
        overlay: &[Record],
    ) -> Result<BTreeMap<String, v1::Prediction>, Diagnostics> {
        self.fleet
            .on_all(|mut c| async move { c.predict(overlay).await })
            .await
            .map_err(|e| fleet_diag("Cannot predict the outcome on the nodes", e))
    }

    /// Reconciles every node, in parallel.
    pub async fn reconcile_all(&self) -> Result<BTreeMap<String, v1::NodeStatus>, Diagnostics> {
        let r = self.fleet.reconcile_all().await;
        self.invalidate().await;
        r.map_err(|e| fleet_diag("Reconcile failed", e))
    }

    /// Reconciles one node.
    pub async fn reconcile(&self, node: &str) -> Result<v1::NodeStatus, Diagnostics> {
        let mut c = self
            .fleet
            .client(node)
            .await
            .map_err(|e| fleet_diag("Cannot reach node", e))?;
        let r = c.reconcile().await;
        self.invalidate().await;
        r.map_err(|e| {
            Diagnostic::error(format!("Reconcile failed on node {node}"), e.to_string()).into()
        })
    }
}
