//! One front-end run over a fleet.

use std::collections::BTreeMap;
use std::sync::Arc;

use model::record::Merged;
use model::{Record, RecordKey};
use tokio::sync::Mutex;

use super::OpsError;
use crate::fleet::{Fleet, NodeObservation, merge_observations};
use crate::v1;

/// The fleet as observed once.
#[derive(Debug)]
pub struct Observed {
    /// Per node: facts, status, records.
    pub nodes: BTreeMap<String, NodeObservation>,
    /// Records merged across nodes (highest revision wins) with drift.
    pub merged: Merged,
    /// Nodes that are down or cut off, with why (not in `nodes`, not merged).
    pub down: BTreeMap<String, String>,
}

impl Observed {
    /// The live record for `key`, if any.
    pub fn live(&self, key: &RecordKey) -> Option<&Record> {
        self.merged.live(key)
    }

    /// Nodes whose copy of `key` is missing or older than the winner.
    pub fn drift(&self, key: &RecordKey) -> Vec<String> {
        self.merged
            .drift
            .iter()
            .filter(|(_, k)| k == key)
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// `Ok` when `node` answered, else [`OpsError::Unreachable`] naming it.
    pub fn require(&self, node: &str) -> Result<(), OpsError> {
        match self.down.get(node) {
            Some(reason) => Err(OpsError::Unreachable {
                node: node.to_string(),
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// `Ok` when every node answered; else an error naming each one down, saying that
    /// `what` needs them all.
    pub fn require_all(&self, what: &str) -> Result<(), OpsError> {
        if self.down.is_empty() {
            return Ok(());
        }
        Err(OpsError::Nodes(
            self.down
                .iter()
                .map(|(n, r)| {
                    (
                        n.clone(),
                        format!("unreachable ({r}); {what} needs every node, nothing was changed"),
                    )
                })
                .collect(),
        ))
    }

    /// Warnings naming each node that is down.
    pub fn down_warnings(&self, what: &str) -> Vec<super::Warning> {
        self.down
            .iter()
            .map(|(n, r)| super::Warning {
                summary: format!("Node {n} is unreachable"),
                detail: format!("{what}: {r}"),
            })
            .collect()
    }

    /// A node's status.
    pub fn status(&self, node: &str) -> Option<&v1::NodeStatus> {
        self.nodes
            .get(node)
            .and_then(|o| o.observation.status.as_ref())
    }

    /// A node's host facts.
    pub fn facts(&self, node: &str) -> Option<&v1::HostFacts> {
        self.nodes
            .get(node)
            .and_then(|o| o.observation.facts.as_ref())
    }
}

/// A front-end run: the fleet, one cached observation, and the records planned so far.
#[derive(Debug)]
pub struct Session {
    /// The fleet.
    pub fleet: Fleet,
    /// Thin provisioning limit for placement, in percent.
    pub over_provisioning_percent: u64,
    cache: Mutex<Option<Arc<Observed>>>,
    pending: Mutex<BTreeMap<RecordKey, Record>>,
    inventory: Mutex<Option<Arc<super::volume::Inventory>>>,
    /// Records this run plans to create or change (any kind), for decisions that depend
    /// on objects created in the same run.
    planned_keys: Mutex<std::collections::BTreeSet<RecordKey>>,
}

impl Session {
    /// A session over `fleet`.
    pub fn new(fleet: Fleet, over_provisioning_percent: u64) -> Self {
        Self {
            fleet,
            over_provisioning_percent,
            cache: Mutex::new(None),
            pending: Mutex::new(BTreeMap::new()),
            inventory: Mutex::new(None),
            planned_keys: Mutex::new(std::collections::BTreeSet::new()),
        }
    }

    /// Checks that `node` is one of the fleet's, as an error on `attribute`.
    pub fn check_node(&self, attribute: &str, node: &str) -> Result<(), OpsError> {
        self.fleet.check_node(node).map_err(|e| OpsError::Invalid {
            attribute: attribute.to_string(),
            reason: e.to_string(),
        })
    }

    /// The fleet observed once (cached): one `Observe` per node, in parallel. A node that
    /// is down is listed in `down` (each operation decides whether it can go on without
    /// it); a security or executor failure, or every node down, is an error naming them.
    pub async fn observed(&self) -> Result<Arc<Observed>, OpsError> {
        let mut guard = self.cache.lock().await;
        if let Some(o) = guard.as_ref() {
            return Ok(o.clone());
        }
        let partial = self
            .fleet
            .observe_reachable()
            .await
            .map_err(|e| OpsError::fleet("cannot read the v2engine nodes", e))?;
        if partial.nodes.is_empty() && !partial.down.is_empty() {
            return Err(OpsError::Nodes(
                partial
                    .down
                    .into_iter()
                    .map(|(n, r)| (n, format!("unreachable: {r}")))
                    .collect(),
            ));
        }
        let merged = merge_observations(&partial.nodes);
        let o = Arc::new(Observed {
            nodes: partial.nodes,
            merged,
            down: partial.down,
        });
        *guard = Some(o.clone());
        Ok(o)
    }

    /// Forgets the cached observation and volume inventory (after a write).
    pub async fn invalidate(&self) {
        *self.cache.lock().await = None;
        *self.inventory.lock().await = None;
    }

    /// The volume inventory cached for this run (see `ops::volume::inventory`).
    pub(crate) fn inventory_cache(&self) -> &Mutex<Option<Arc<super::volume::Inventory>>> {
        &self.inventory
    }

    /// Notes that this run plans to create or change the record `key`.
    pub async fn note_planned(&self, key: RecordKey) {
        self.planned_keys.lock().await.insert(key);
    }

    /// True when this run plans to create or change `key`.
    pub async fn is_planned(&self, key: &RecordKey) -> bool {
        self.planned_keys.lock().await.contains(key)
    }

    /// True when this run plans to create or change a record of `kind`.
    pub async fn plans_kind(&self, kind: model::RecordKind) -> bool {
        self.planned_keys
            .lock()
            .await
            .iter()
            .any(|k| k.kind == kind)
    }

    /// Registers `rec` as planned in this run and returns every record planned so far,
    /// `rec` last. Terraform plans a resource after those it depends on, so a `node_v2`
    /// that depends on the setting is predicted with the setting's new value.
    pub async fn plan_overlay(&self, rec: Record) -> Vec<Record> {
        let mut p = self.pending.lock().await;
        p.insert(rec.key.clone(), rec.clone());
        let mut out: Vec<Record> = p.values().filter(|r| r.key != rec.key).cloned().collect();
        out.push(rec);
        out
    }

    /// A record for `key` as it would be written next (for predictions).
    pub async fn planned_record(
        &self,
        key: RecordKey,
        spec: serde_json::Value,
    ) -> Result<Vec<Record>, OpsError> {
        let revision = self.observed().await?.merged.max_revision() + 1;
        Ok(self
            .plan_overlay(Record {
                key,
                revision,
                deleted: false,
                spec,
            })
            .await)
    }

    /// Writes a record (or a tombstone) to every node, one revision above any seen. With a
    /// node down nothing is written: the error names it.
    pub async fn write_all(
        &self,
        key: RecordKey,
        spec: serde_json::Value,
        deleted: bool,
    ) -> Result<Record, OpsError> {
        self.invalidate().await;
        self.observed()
            .await?
            .require_all(&format!("writing {key}"))?;
        // Every node answered just now: "every reachable node" is every node.
        let (rec, _) = self.write_reachable(key, spec, deleted).await?;
        Ok(rec)
    }

    /// Writes a record (or a tombstone) to every node that answers, one revision above any
    /// seen in this run's observation (callers that may hold an old one invalidate first);
    /// the nodes that are down are returned (they catch up at the next write, and a plan
    /// shows them as drift meanwhile).
    pub async fn write_reachable(
        &self,
        key: RecordKey,
        spec: serde_json::Value,
        deleted: bool,
    ) -> Result<(Record, BTreeMap<String, String>), OpsError> {
        let obs = self.observed().await?;
        let revision = obs.merged.max_revision() + 1;
        let rec = Record {
            key,
            revision,
            deleted,
            spec,
        };
        let up: Vec<String> = obs.nodes.keys().cloned().collect();
        let r = self.fleet.put_some(&up, std::slice::from_ref(&rec)).await;
        self.invalidate().await;
        r.map_err(|e| OpsError::fleet(format!("cannot store {}", rec.key), e))?;
        Ok((rec, obs.down.clone()))
    }

    /// Writes a node-scoped record (a block disk) to its own node only.
    pub async fn write_one(
        &self,
        node: &str,
        key: RecordKey,
        spec: serde_json::Value,
        deleted: bool,
    ) -> Result<Record, OpsError> {
        self.invalidate().await;
        let revision = self.observed().await?.merged.max_revision() + 1;
        let rec = Record {
            key,
            revision,
            deleted,
            spec,
        };
        let mut c = self
            .fleet
            .client(node)
            .await
            .map_err(|e| OpsError::fleet("cannot reach node", e))?;
        let r = c.put_records(std::slice::from_ref(&rec)).await;
        self.invalidate().await;
        r.map_err(|e| OpsError::Nodes(vec![(node.to_string(), e.detail())]))?;
        Ok(rec)
    }

    /// Predicts `overlay` on one node.
    pub async fn predict(
        &self,
        node: &str,
        overlay: &[Record],
    ) -> Result<v1::Prediction, OpsError> {
        let mut c = self
            .fleet
            .client(node)
            .await
            .map_err(|e| OpsError::fleet("cannot reach node", e))?;
        c.predict(overlay)
            .await
            .map_err(|e| OpsError::Nodes(vec![(node.to_string(), e.detail())]))
    }

    /// Predicts `overlay` on every node, in parallel.
    pub async fn predict_all(
        &self,
        overlay: &[Record],
    ) -> Result<BTreeMap<String, v1::Prediction>, OpsError> {
        self.fleet
            .on_all(|mut c| async move { c.predict(overlay).await })
            .await
            .map_err(|e| OpsError::fleet("cannot predict the outcome on the nodes", e))
    }

    /// Reconciles every node, in parallel.
    pub async fn reconcile_all(&self) -> Result<BTreeMap<String, v1::NodeStatus>, OpsError> {
        let r = self.fleet.reconcile_all().await;
        self.invalidate().await;
        r.map_err(|e| OpsError::fleet("reconcile failed", e))
    }

    /// Reconciles one node.
    pub async fn reconcile(&self, node: &str) -> Result<v1::NodeStatus, OpsError> {
        let mut c = self
            .fleet
            .client(node)
            .await
            .map_err(|e| OpsError::fleet("cannot reach node", e))?;
        let r = c.reconcile().await;
        self.invalidate().await;
        r.map_err(|e| OpsError::Nodes(vec![(node.to_string(), e.detail())]))
    }
}

/// Prediction errors as one error naming each node.
pub fn prediction_errors<'a>(
    preds: impl IntoIterator<Item = (&'a String, &'a v1::Prediction)>,
) -> Result<(), OpsError> {
    let errs: Vec<(String, String)> = preds
        .into_iter()
        .flat_map(|(n, p)| p.errors.iter().map(move |e| (n.clone(), e.clone())))
        .collect();
    if errs.is_empty() {
        Ok(())
    } else {
        Err(OpsError::Nodes(errs))
    }
}

/// Reconcile errors (`last_error`) as one error naming each node.
pub fn status_errors<'a>(
    statuses: impl IntoIterator<Item = (&'a String, &'a v1::NodeStatus)>,
) -> Result<(), OpsError> {
    let errs: Vec<(String, String)> = statuses
        .into_iter()
        .filter(|(_, s)| !s.last_error.is_empty())
        .map(|(n, s)| (n.clone(), s.last_error.clone()))
        .collect();
    if errs.is_empty() {
        Ok(())
    } else {
        Err(OpsError::Nodes(errs))
    }
}
