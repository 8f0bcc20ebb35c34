//! `v2engine_data_engine_setting`: the cluster-wide record, predicted on every node.

use std::collections::BTreeMap;

use client::v1;
use model::setting::SETTING_ID;
use model::status::{DataEngineSettingStatus, NodeOutcome};
use model::{DataEngineSetting, Record, RecordKey, RecordKind};
use tfplugin::provider::{
    ApplyRequest, ApplyResponse, PlanRequest, PlanResponse, ReadRequest, ReadResponse,
};
use tfplugin::{Diagnostic, Diagnostics, Value};

use super::{Res, plan_unchanged, plan_unknown};
use crate::context::{Context, Observed};
use crate::convert::{object_from, spec_from_value};

fn key() -> RecordKey {
    RecordKey::new(RecordKind::DataEngineSetting, SETTING_ID)
}

fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
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

fn status_of(nodes: BTreeMap<String, NodeOutcome>) -> DataEngineSettingStatus {
    DataEngineSettingStatus {
        id: SETTING_ID.into(),
        reboot_required_nodes: nodes
            .iter()
            .filter(|(_, o)| o.reboot_required)
            .map(|(n, _)| n.clone())
            .collect(),
        nodes,
    }
}

fn observed_status(obs: &Observed) -> DataEngineSettingStatus {
    status_of(
        obs.nodes
            .iter()
            .filter_map(|(n, o)| {
                o.observation
                    .status
                    .as_ref()
                    .map(|s| (n.clone(), outcome_from_status(s)))
            })
            .collect(),
    )
}

/// Errors a prediction foresees (a missing module, too much memory) fail the plan.
pub fn prediction_errors(preds: &BTreeMap<String, v1::Prediction>) -> Diagnostics {
    preds
        .iter()
        .flat_map(|(node, p)| {
            p.errors.iter().map(move |e| {
                Diagnostic::error(
                    format!("Node {node} cannot apply the data engine configuration"),
                    e.clone(),
                )
            })
        })
        .collect()
}

/// Warnings naming each node that will need a reboot, and why.
pub fn reboot_warnings(outcomes: &BTreeMap<String, NodeOutcome>) -> Diagnostics {
    outcomes
        .iter()
        .filter(|(_, o)| o.reboot_required)
        .map(|(n, o)| {
            Diagnostic::warning(
                format!("Node {n} will need a reboot"),
                format!(
                    "{}. Its engine will wait for the reboot; the other nodes are not affected.",
                    o.reason
                ),
            )
        })
        .collect()
}

/// Plans the setting: validation, then a prediction on every node.
pub async fn plan(ctx: &Context, res: &Res, req: PlanRequest) -> Result<PlanResponse, Diagnostics> {
    if req.is_destroy() {
        let mut r = PlanResponse::new(Value::Null);
        r.diagnostics.push(Diagnostic::warning(
            "The V2 data engine will be disabled on every node that does not opt in",
            "Destroying the setting removes the cluster record: nodes fall back to the defaults (disabled).",
        ));
        return Ok(r);
    }
    let Some(spec) = spec_from_value::<DataEngineSetting>(
        &req.config,
        &res.schema,
        DataEngineSetting::validate,
    )?
    else {
        return Ok(plan_unknown(res, &req));
    };
    let obs = ctx.observed().await?;
    let prior: Option<DataEngineSetting> = if req.prior_state.is_null() {
        None
    } else {
        spec_from_value(
            &req.prior_state,
            &res.schema,
            |_: &DataEngineSetting| Ok(()),
        )?
    };
    if prior.as_ref() == Some(&spec) && obs.drift(&key()).is_empty() {
        return Ok(plan_unchanged(&req));
    }
    let spec_json = serde_json::to_value(&spec).map_err(crate::convert::internal)?;
    let overlay = ctx
        .plan_overlay(Record {
            key: key(),
            revision: obs.merged.max_revision() + 1,
            deleted: false,
            spec: spec_json,
        })
        .await;
    let preds = ctx.predict_all(&overlay).await?;
    let errs = prediction_errors(&preds);
    if errs.has_errors() {
        return Err(errs);
    }
    let outcomes: BTreeMap<String, NodeOutcome> = preds
        .iter()
        .map(|(n, p)| (n.clone(), outcome_from_prediction(p)))
        .collect();
    let mut resp = PlanResponse::new(object_from(
        &spec,
        &status_of(outcomes.clone()),
        &res.ty,
        &req.config,
    )?);
    resp.diagnostics = reboot_warnings(&outcomes);
    Ok(resp)
}

/// Writes the record everywhere, reconciles every node, reports the outcome.
pub async fn apply(
    ctx: &Context,
    res: &Res,
    req: ApplyRequest,
) -> Result<ApplyResponse, Diagnostics> {
    if req.is_destroy() {
        let prior = serde_json::to_value(
            spec_from_value::<DataEngineSetting>(&req.prior_state, &res.schema, |_| Ok(()))?
                .unwrap_or_default(),
        )
        .map_err(crate::convert::internal)?;
        ctx.write_all(key(), prior, true).await?;
        ctx.reconcile_all().await?;
        return Ok(ApplyResponse {
            new_state: Value::Null,
            private: vec![],
            diagnostics: Diagnostics::new(),
        });
    }
    let spec = spec_from_value::<DataEngineSetting>(
        &req.config,
        &res.schema,
        DataEngineSetting::validate,
    )?
    .ok_or_else(|| {
        Diagnostics::from(Diagnostic::error(
            "Configuration still unknown at apply",
            "",
        ))
    })?;
    ctx.write_all(
        key(),
        serde_json::to_value(&spec).map_err(crate::convert::internal)?,
        false,
    )
    .await?;
    let statuses = ctx.reconcile_all().await?;
    let mut diags = Diagnostics::new();
    for (node, s) in &statuses {
        if !s.last_error.is_empty() {
            diags.push(Diagnostic::error(
                format!("Node {node} could not apply the data engine setting"),
                s.last_error.clone(),
            ));
        }
    }
    if diags.has_errors() {
        return Err(diags);
    }
    let actual: BTreeMap<String, NodeOutcome> = statuses
        .iter()
        .map(|(n, s)| (n.clone(), outcome_from_status(s)))
        .collect();
    // Keep what the plan promised where it was known; say so when reality differs.
    let planned_nodes = req.planned_state.get_attr("nodes");
    let new_state = if planned_nodes.is_some_and(Value::is_wholly_known) {
        let promised = object_from(&spec, &status_of(actual.clone()), &res.ty, &req.config)?;
        if promised.get_attr("nodes") != planned_nodes {
            diags.push(Diagnostic::warning(
                "The nodes' outcome differs from the plan",
                format!(
                    "now: {}",
                    serde_json::to_string(&actual).unwrap_or_default()
                ),
            ));
        }
        req.planned_state.clone()
    } else {
        object_from(&spec, &status_of(actual.clone()), &res.ty, &req.config)?
    };
    diags.extend(reboot_warnings(&actual));
    Ok(ApplyResponse {
        new_state,
        private: vec![],
        diagnostics: diags,
    })
}

/// Reads the record and every node's status.
pub async fn read(ctx: &Context, res: &Res, req: ReadRequest) -> Result<ReadResponse, Diagnostics> {
    let obs = ctx.observed().await?;
    let Some(rec) = obs.live(&key()) else {
        return Ok(ReadResponse {
            new_state: Value::Null,
            private: vec![],
            diagnostics: Diagnostics::new(),
        });
    };
    let spec: DataEngineSetting =
        serde_json::from_value(rec.spec.clone()).map_err(crate::convert::internal)?;
    let state = object_from(&spec, &observed_status(&obs), &res.ty, &req.current_state)?;
    Ok(ReadResponse {
        new_state: state,
        private: vec![],
        diagnostics: Diagnostics::new(),
    })
}

/// Imports `cluster`.
pub async fn import(ctx: &Context, res: &Res, id: &str) -> Result<Value, Diagnostics> {
    if id != SETTING_ID {
        return Err(Diagnostic::error(
            "Invalid import id",
            format!("the data engine setting's id is \"{SETTING_ID}\", not {id:?}"),
        )
        .into());
    }
    let obs = ctx.observed().await?;
    let rec = obs.live(&key()).ok_or_else(|| {
        Diagnostics::from(Diagnostic::error(
            "Nothing to import",
            "no node stores a data engine setting",
        ))
    })?;
    let spec: DataEngineSetting =
        serde_json::from_value(rec.spec.clone()).map_err(crate::convert::internal)?;
    object_from(&spec, &observed_status(&obs), &res.ty, &Value::Null)
}
