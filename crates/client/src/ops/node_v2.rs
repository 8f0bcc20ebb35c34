//! `node_v2`: one node's override, predicted and reconciled on that node.

use model::status::NodeV2Status;
use model::{NodeV2, RecordKey, RecordKind};

use super::session::{Session, prediction_errors, status_errors};
use super::{OpsError, Outcome, Warning, i64_of, json_of, spec_of};
use crate::v1;

/// The record key: `node_v2/<node>`.
pub fn key(node: &str) -> RecordKey {
    RecordKey::new(RecordKind::NodeV2, node)
}

/// Status as observed.
pub fn status_from(s: &v1::NodeStatus) -> NodeV2Status {
    NodeV2Status {
        id: s.node.clone(),
        reboot_required: s.reboot_required,
        reboot_reasons: s.reboot_reasons.clone(),
        hugepages_allocated: i64_of(s.hugepages_allocated),
        modules_loaded: s.modules_loaded.clone(),
        engine_state: s.engine_state.clone(),
        spdk_version: s.spdk_version.clone(),
        out_of_sync_nodes: vec![],
    }
}

/// Status as predicted. `modules_loaded` and `spdk_version` are only known after apply
/// (front-ends show them as such).
pub fn status_predicted(node: &str, p: &v1::Prediction) -> NodeV2Status {
    NodeV2Status {
        id: node.to_string(),
        reboot_required: p.reboot_required,
        reboot_reasons: p.reboot_reasons.clone(),
        hugepages_allocated: i64_of(p.hugepages_expected),
        modules_loaded: vec![],
        engine_state: p.engine_state.clone(),
        spdk_version: String::new(),
        out_of_sync_nodes: vec![],
    }
}

fn warnings(node: &str, st: &NodeV2Status) -> Vec<Warning> {
    if !st.reboot_required {
        return vec![];
    }
    vec![Warning {
        summary: format!("Node {node} will need a reboot"),
        detail: format!(
            "{}. Its engine will wait for the reboot.",
            st.reboot_reasons.join("; ")
        ),
    }]
}

/// True when some node's copy of this override is missing or old.
pub async fn drifted(s: &Session, node: &str) -> Result<bool, OpsError> {
    Ok(!s.observed().await?.drift(&key(node)).is_empty())
}

/// Predicts `spec` on its node, changing nothing.
pub async fn plan(s: &Session, spec: &NodeV2) -> Result<Outcome<NodeV2Status>, OpsError> {
    s.check_node("node", &spec.node)?;
    s.observed()
        .await?
        .require_all(&format!("the override of node {}", spec.node))?;
    let overlay = s
        .planned_record(key(&spec.node), json_of(&key(&spec.node), spec)?)
        .await?;
    let p = s.predict(&spec.node, &overlay).await?;
    prediction_errors([(&spec.node, &p)])?;
    let st = status_predicted(&spec.node, &p);
    Ok(Outcome {
        warnings: warnings(&spec.node, &st),
        value: st,
    })
}

/// Writes `spec` to every node and reconciles its node.
pub async fn apply(s: &Session, spec: &NodeV2) -> Result<Outcome<NodeV2Status>, OpsError> {
    s.check_node("node", &spec.node)?;
    s.write_all(key(&spec.node), json_of(&key(&spec.node), spec)?, false)
        .await?;
    let st = s.reconcile(&spec.node).await?;
    status_errors([(&spec.node, &st)])?;
    let st = status_from(&st);
    Ok(Outcome {
        warnings: warnings(&spec.node, &st),
        value: st,
    })
}

/// Writes a tombstone (the node follows the cluster setting again) and reconciles it.
pub async fn delete(s: &Session, prior: &NodeV2) -> Result<(), OpsError> {
    s.check_node("node", &prior.node)?;
    s.write_all(key(&prior.node), json_of(&key(&prior.node), prior)?, true)
        .await?;
    let st = s.reconcile(&prior.node).await?;
    status_errors([(&prior.node, &st)])
}

/// The stored override for `node` (if any) and the node's status.
pub async fn read(s: &Session, node: &str) -> Result<Option<(NodeV2, NodeV2Status)>, OpsError> {
    s.check_node("node", node)?;
    let obs = s.observed().await?;
    obs.require(node)?;
    let Some(rec) = obs.live(&key(node)) else {
        return Ok(None);
    };
    let status = NodeV2Status {
        out_of_sync_nodes: obs.drift(&key(node)),
        ..obs.status(node).map(status_from).unwrap_or_default()
    };
    Ok(Some((spec_of(rec)?, status)))
}

/// The node's status alone (no override needed): what `node_v2` reports for a node that
/// follows the cluster setting.
pub async fn status(s: &Session, node: &str) -> Result<NodeV2Status, OpsError> {
    s.check_node("node", node)?;
    let obs = s.observed().await?;
    obs.require(node)?;
    Ok(obs.status(node).map(status_from).unwrap_or_default())
}
