//! `v2engine_data_engine_setting`: Terraform's view of `client::ops::setting`.

use client::ops::setting as ops;
use model::DataEngineSetting;
use tfplugin::provider::{
    ApplyRequest, ApplyResponse, PlanRequest, PlanResponse, ReadRequest, ReadResponse,
};
use tfplugin::{Diagnostic, Diagnostics, Value};

use super::{Res, plan_unchanged, plan_unknown, prior_spec, read_response, unknown_at_apply};
use crate::context::{Context, ops_diag, warning_diags};
use crate::convert::{object_from, spec_from_value};

fn decode(res: &Res, v: &Value) -> Result<Option<DataEngineSetting>, Diagnostics> {
    spec_from_value::<DataEngineSetting>(v, &res.schema, DataEngineSetting::validate)
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
    let Some(spec) = decode(res, &req.config)? else {
        return Ok(plan_unknown(res, &req));
    };
    let prior: Option<DataEngineSetting> = prior_spec(res, &req);
    let drifted = ops::drifted(ctx)
        .await
        .map_err(|e| ops_diag("Cannot read the nodes", e))?;
    if prior.as_ref() == Some(&spec) && !drifted {
        return Ok(plan_unchanged(&req));
    }
    let out = ops::plan(ctx, &spec)
        .await
        .map_err(|e| ops_diag("The data engine setting cannot be applied", e))?;
    let mut resp = PlanResponse::new(object_from(&spec, &out.value, &res.ty, &req.config)?);
    resp.diagnostics = warning_diags(&out.warnings);
    Ok(resp)
}

/// Writes the record everywhere, reconciles every node, reports the outcome.
pub async fn apply(
    ctx: &Context,
    res: &Res,
    req: ApplyRequest,
) -> Result<ApplyResponse, Diagnostics> {
    if req.is_destroy() {
        let prior = decode(res, &req.prior_state)
            .ok()
            .flatten()
            .unwrap_or_default();
        ops::delete(ctx, &prior)
            .await
            .map_err(|e| ops_diag("Cannot remove the data engine setting", e))?;
        return Ok(ApplyResponse {
            new_state: Value::Null,
            private: vec![],
            diagnostics: Diagnostics::new(),
        });
    }
    let spec = decode(res, &req.config)?.ok_or_else(unknown_at_apply)?;
    let out = ops::apply(ctx, &spec)
        .await
        .map_err(|e| ops_diag("Cannot apply the data engine setting", e))?;
    let mut diags = warning_diags(&out.warnings);
    let actual = object_from(&spec, &out.value, &res.ty, &req.config)?;
    // What the plan promised stays in the state; a different outcome is reported and the
    // next refresh shows it.
    let planned_nodes = req.planned_state.get_attr("nodes");
    let new_state = if planned_nodes.is_some_and(Value::is_wholly_known) {
        if actual.get_attr("nodes") != planned_nodes {
            diags.push(Diagnostic::warning(
                "The nodes' outcome differs from the plan",
                format!(
                    "now: {}",
                    serde_json::to_string(&out.value.nodes).unwrap_or_default()
                ),
            ));
        }
        req.planned_state.clone()
    } else {
        actual
    };
    Ok(ApplyResponse {
        new_state,
        private: vec![],
        diagnostics: diags,
    })
}

/// Reads the record and every node's status; gone when no node stores it.
pub async fn read(ctx: &Context, res: &Res, req: ReadRequest) -> Result<ReadResponse, Diagnostics> {
    // A node that is down keeps what the state last said of it (only its state changes).
    let known: std::collections::BTreeMap<String, model::status::NodeOutcome> = req
        .current_state
        .get_attr("nodes")
        .filter(|v| v.is_wholly_known() && !v.is_null())
        .and_then(crate::convert::to_json)
        .and_then(|j| serde_json::from_value(j).ok())
        .unwrap_or_default();
    let found = ops::read_keeping(ctx, &known)
        .await
        .map_err(|e| ops_diag("Cannot read the data engine setting", e))?;
    read_response(res, found, &req.current_state)
}

/// Imports `cluster`.
pub async fn import(ctx: &Context, res: &Res, id: &str) -> Result<Value, Diagnostics> {
    if id != model::setting::SETTING_ID {
        return Err(Diagnostic::error(
            "Invalid import id",
            format!(
                "the data engine setting's id is \"{}\", not {id:?}",
                model::setting::SETTING_ID
            ),
        )
        .into());
    }
    match ops::read(ctx)
        .await
        .map_err(|e| ops_diag("Cannot read the data engine setting", e))?
    {
        Some((spec, status)) => object_from(&spec, &status, &res.ty, &Value::Null),
        None => Err(
            Diagnostic::error("Nothing to import", "no node stores a data engine setting").into(),
        ),
    }
}
