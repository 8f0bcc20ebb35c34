//! `data_engine_setting`: the cluster record, predicted and reconciled on every node.

use std::collections::BTreeMap;

use model::setting::SETTING_ID;
use model::status::{DataEngineSettingStatus, NodeOutcome};
use model::{DataEngineSetting, RecordKey, RecordKind};

use super::session::{Observed, Session, prediction_errors, status_errors};
use super::{OpsError, Outcome, Warning, i64_of, json_of, spec_of};
use crate::v1;

/// The record key: `data_engine_setting/cluster`.
pub fn key() -> RecordKey {
    RecordKey::new(RecordKind::DataEngineSetting, SETTING_ID)
}

/// A node's outcome as predicted.
pub fn outcome_from_prediction(p: &v1::Prediction) -> NodeOutcome {
    NodeOutcome {
        enabled: p.config.as_ref().is_some_and(|c| c.enabled),
        target_pages: i64_of(p.hugepages_target),
        expected_pages: i64_of(p.hugepages_expected),
        reboot_required: p.reboot_required,
        reason: p.reboot_reasons.join("; "),
        engine_state: p.engine_state.clone(),
    }
}

/// A node's outcome as observed.
pub fn outcome_from_status(s: &v1::NodeStatus) -> NodeOutcome {
    NodeOutcome {
        enabled: s.config.as_ref().is_some_and(|c| c.enabled),
        target_pages: i64_of(s.hugepages_target),
        expected_pages: i64_of(s.hugepages_allocated),
        reboot_required: s.reboot_required,
        reason: s.reboot_reasons.join("; "),
        engine_state: s.engine_state.clone(),
    }
}

/// The status from per-node outcomes.
pub fn status_of(nodes: BTreeMap<String, NodeOutcome>) -> DataEngineSettingStatus {
    DataEngineSettingStatus {
        id: SETTING_ID.into(),
        reboot_required_nodes: nodes
            .iter()
            .filter(|(_, o)| o.reboot_required)
            .map(|(n, _)| n.clone())
            .collect(),
        nodes,
        out_of_sync_nodes: vec![],
    }
}

/// The status every node reports now; a node that is down shows `engine_state`
/// "unreachable" with why.
pub fn observed_status(obs: &Observed) -> DataEngineSettingStatus {
    observed_status_keeping(obs, &BTreeMap::new())
}

/// [`observed_status`], where a node that is down keeps what `known` (the caller's last
/// view) says of its configuration and pages; only its state and reason change.
pub fn observed_status_keeping(
    obs: &Observed,
    known: &BTreeMap<String, NodeOutcome>,
) -> DataEngineSettingStatus {
    let mut nodes: BTreeMap<String, NodeOutcome> = obs
        .nodes
        .iter()
        .filter_map(|(n, o)| {
            o.observation
                .status
                .as_ref()
                .map(|s| (n.clone(), outcome_from_status(s)))
        })
        .collect();
    for (n, why) in &obs.down {
        let last = known.get(n).cloned().unwrap_or_default();
        nodes.insert(
            n.clone(),
            NodeOutcome {
                reason: why.clone(),
                engine_state: "unreachable".into(),
                ..last
            },
        );
    }
    status_of(nodes)
}

/// Warnings naming each node that needs a reboot, and why.
pub fn reboot_warnings(status: &DataEngineSettingStatus) -> Vec<Warning> {
    status
        .nodes
        .iter()
        .filter(|(_, o)| o.reboot_required)
        .map(|(n, o)| Warning {
            summary: format!("Node {n} will need a reboot"),
            detail: format!(
                "{}. Its engine will wait for the reboot; the other nodes are not affected.",
                o.reason
            ),
        })
        .collect()
}

/// True when some node's copy of the setting is missing or old.
pub async fn drifted(s: &Session) -> Result<bool, OpsError> {
    Ok(!s.observed().await?.drift(&key()).is_empty())
}

/// Predicts `spec` on every node, changing nothing. Foreseen failures (a missing module,
/// more memory than a host has) are errors naming the node.
pub async fn plan(
    s: &Session,
    spec: &DataEngineSetting,
) -> Result<Outcome<DataEngineSettingStatus>, OpsError> {
    let overlay = s.planned_record(key(), json_of(&key(), spec)?).await?;
    let preds = s.predict_all(&overlay).await?;
    prediction_errors(&preds)?;
    let status = status_of(
        preds
            .iter()
            .map(|(n, p)| (n.clone(), outcome_from_prediction(p)))
            .collect(),
    );
    let warnings = reboot_warnings(&status);
    Ok(Outcome {
        value: status,
        warnings,
    })
}

/// Writes `spec` to every node and reconciles them all.
pub async fn apply(
    s: &Session,
    spec: &DataEngineSetting,
) -> Result<Outcome<DataEngineSettingStatus>, OpsError> {
    s.write_all(key(), json_of(&key(), spec)?, false).await?;
    let statuses = s.reconcile_all().await?;
    status_errors(&statuses)?;
    let status = status_of(
        statuses
            .iter()
            .map(|(n, st)| (n.clone(), outcome_from_status(st)))
            .collect(),
    );
    let warnings = reboot_warnings(&status);
    Ok(Outcome {
        value: status,
        warnings,
    })
}

/// Writes a tombstone (nodes fall back to the defaults: disabled) and reconciles.
pub async fn delete(s: &Session, prior: &DataEngineSetting) -> Result<(), OpsError> {
    s.write_all(key(), json_of(&key(), prior)?, true).await?;
    let statuses = s.reconcile_all().await?;
    status_errors(&statuses)
}

/// The stored setting (if any) and what every node reports.
pub async fn read(
    s: &Session,
) -> Result<Option<(DataEngineSetting, DataEngineSettingStatus)>, OpsError> {
    read_keeping(s, &BTreeMap::new()).await
}

/// [`read`], where a node that is down keeps its `known` outcome (see
/// [`observed_status_keeping`]).
pub async fn read_keeping(
    s: &Session,
    known: &BTreeMap<String, NodeOutcome>,
) -> Result<Option<(DataEngineSetting, DataEngineSettingStatus)>, OpsError> {
    let obs = s.observed().await?;
    let Some(rec) = obs.live(&key()) else {
        return Ok(None);
    };
    let status = DataEngineSettingStatus {
        out_of_sync_nodes: obs.drift(&key()),
        ..observed_status_keeping(&obs, known)
    };
    Ok(Some((spec_of(rec)?, status)))
}
