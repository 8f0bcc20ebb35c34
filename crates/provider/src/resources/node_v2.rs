//! `v2engine_node_v2`: one node's override, predicted and reconciled on that node.

use client::v1;
use model::status::NodeV2Status;
use model::{NodeV2, Record, RecordKey, RecordKind};
use tfplugin::provider::{
    ApplyRequest, ApplyResponse, PlanRequest, PlanResponse, ReadRequest, ReadResponse,
};
use tfplugin::{AttributePath, Diagnostic, Diagnostics, Value};

use super::{Res, plan_unchanged, plan_unknown};
use crate::context::Context;
use crate::convert::{internal, mark_unknown, object_from, spec_from_value};

fn key(node: &str) -> RecordKey {
    RecordKey::new(RecordKind::NodeV2, node)
}

fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
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
    }
}

/// Status as predicted (modules and version are known only after apply).
fn status_predicted(node: &str, p: &v1::Prediction) -> NodeV2Status {
    NodeV2Status {
        id: node.to_string(),
        reboot_required: p.reboot_required,
        reboot_reasons: p.reboot_reasons.clone(),
        hugepages_allocated: i64_of(p.hugepages_expected),
        modules_loaded: vec![],
        engine_state: p.engine_state.clone(),
        spdk_version: String::new(),
    }
}

fn decode(ctx: &Context, res: &Res, v: &Value) -> Result<Option<NodeV2>, Diagnostics> {
    let spec = spec_from_value::<NodeV2>(v, &res.schema, NodeV2::validate)?;
    if let Some(s) = &spec {
        ctx.fleet.check_node(&s.node).map_err(|e| {
            Diagnostics::from(
                Diagnostic::error("Unknown node", e.to_string())
                    .with_attribute(AttributePath::attribute("node")),
            )
        })?;
    }
    Ok(spec)
}

/// Plans the override: validation, then a prediction on its node.
pub async fn plan(ctx: &Context, res: &Res, req: PlanRequest) -> Result<PlanResponse, Diagnostics> {
    if req.is_destroy() {
        return Ok(PlanResponse::new(Value::Null));
    }
    let Some(spec) = decode(ctx, res, &req.config)? else {
        return Ok(plan_unknown(res, &req));
    };
    let obs = ctx.observed().await?;
    let prior: Option<NodeV2> = if req.prior_state.is_null() {
        None
    } else {
        spec_from_value(&req.prior_state, &res.schema, |_: &NodeV2| Ok(()))?
    };
    if prior.as_ref() == Some(&spec) && obs.drift(&key(&spec.node)).is_empty() {
        return Ok(plan_unchanged(&req));
    }
    let overlay = ctx
        .plan_overlay(Record {
            key: key(&spec.node),
            revision: obs.merged.max_revision() + 1,
            deleted: false,
            spec: serde_json::to_value(&spec).map_err(internal)?,
        })
        .await;
    let p = ctx.predict(&spec.node, &overlay).await?;
    if !p.errors.is_empty() {
        return Err(p
            .errors
            .iter()
            .map(|e| {
                Diagnostic::error(
                    format!("Node {} cannot apply this configuration", spec.node),
                    e.clone(),
                )
            })
            .collect());
    }
    let status = status_predicted(&spec.node, &p);
    let mut planned = object_from(&spec, &status, &res.ty, &req.config)?;
    mark_unknown(&mut planned, &["modules_loaded", "spdk_version"]);
    let mut resp = PlanResponse::new(planned);
    resp.requires_replace =
        crate::convert::replace_paths(&req.prior_state, &resp.planned_state, &res.schema);
    if p.reboot_required {
        resp.diagnostics.push(Diagnostic::warning(
            format!("Node {} will need a reboot", spec.node),
            format!(
                "{}. Its engine will wait for the reboot.",
                p.reboot_reasons.join("; ")
            ),
        ));
    }
    Ok(resp)
}

/// Writes the override everywhere, reconciles its node.
pub async fn apply(
    ctx: &Context,
    res: &Res,
    req: ApplyRequest,
) -> Result<ApplyResponse, Diagnostics> {
    if req.is_destroy() {
        let Some(prior) = spec_from_value::<NodeV2>(&req.prior_state, &res.schema, |_| Ok(()))?
        else {
            return Err(internal("prior state of node_v2 is unknown"));
        };
        ctx.write_all(
            key(&prior.node),
            serde_json::to_value(&prior).map_err(internal)?,
            true,
        )
        .await?;
        ctx.reconcile(&prior.node).await?;
        return Ok(ApplyResponse {
            new_state: Value::Null,
            private: vec![],
            diagnostics: Diagnostics::new(),
        });
    }
    let spec = decode(ctx, res, &req.config)?.ok_or_else(|| {
        Diagnostics::from(Diagnostic::error(
            "Configuration still unknown at apply",
            "",
        ))
    })?;
    ctx.write_all(
        key(&spec.node),
        serde_json::to_value(&spec).map_err(internal)?,
        false,
    )
    .await?;
    let s = ctx.reconcile(&spec.node).await?;
    if !s.last_error.is_empty() {
        return Err(Diagnostic::error(
            format!("Node {} could not apply its configuration", spec.node),
            s.last_error,
        )
        .into());
    }
    let actual = status_from(&s);
    let mut diags = Diagnostics::new();
    let mut state = object_from(&spec, &actual, &res.ty, &req.config)?;
    // Attributes the plan promised keep the promised value; a difference is reported.
    for attr in [
        "reboot_required",
        "reboot_reasons",
        "hugepages_allocated",
        "engine_state",
    ] {
        let planned = req
            .planned_state
            .get_attr(attr)
            .cloned()
            .unwrap_or(Value::Null);
        if planned.is_wholly_known() && state.get_attr(attr) != Some(&planned) {
            diags.push(Diagnostic::warning(
                format!("Node {}: {attr} differs from the plan", spec.node),
                format!(
                    "planned {planned:?}, now {:?}; the next refresh shows the current value",
                    state.get_attr(attr)
                ),
            ));
            state.set_attr(attr, planned);
        }
    }
    Ok(ApplyResponse {
        new_state: state,
        private: vec![],
        diagnostics: diags,
    })
}

/// Reads the override and the node's status. A node with no override record reads as
/// gone; an unreachable node is an error naming it.
pub async fn read(ctx: &Context, res: &Res, req: ReadRequest) -> Result<ReadResponse, Diagnostics> {
    let Some(node) = req
        .current_state
        .get_attr("node")
        .and_then(Value::as_str)
        .map(String::from)
    else {
        return Err(internal("node_v2 state has no node"));
    };
    let mut new_state = state_of(ctx, res, &node).await?.unwrap_or(Value::Null);
    if !new_state.is_null() {
        new_state.set_attr(
            "timeouts",
            req.current_state
                .get_attr("timeouts")
                .cloned()
                .unwrap_or(Value::Null),
        );
    }
    Ok(ReadResponse {
        new_state,
        private: vec![],
        diagnostics: Diagnostics::new(),
    })
}

async fn state_of(ctx: &Context, res: &Res, node: &str) -> Result<Option<Value>, Diagnostics> {
    let obs = ctx.observed().await?;
    let Some(rec) = obs.live(&key(node)) else {
        return Ok(None);
    };
    let spec: NodeV2 = serde_json::from_value(rec.spec.clone()).map_err(internal)?;
    let status = obs.status(node).map(status_from).unwrap_or_default();
    object_from(&spec, &status, &res.ty, &Value::Null).map(Some)
}

/// Imports by node name.
pub async fn import(ctx: &Context, res: &Res, node: &str) -> Result<Value, Diagnostics> {
    ctx.fleet
        .check_node(node)
        .map_err(|e| Diagnostics::from(Diagnostic::error("Unknown node", e.to_string())))?;
    state_of(ctx, res, node).await?.ok_or_else(|| {
        Diagnostics::from(Diagnostic::error(
            "Nothing to import",
            format!("no node_v2 record for node {node}"),
        ))
    })
}
