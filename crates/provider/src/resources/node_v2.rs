//! `v2engine_node_v2`: Terraform's view of `client::ops::node_v2`.

use client::ops::node_v2 as ops;
use model::NodeV2;
use tfplugin::provider::{
    ApplyRequest, ApplyResponse, PlanRequest, PlanResponse, ReadRequest, ReadResponse,
};
use tfplugin::{Diagnostic, Diagnostics, Value};

use super::{
    Res, check_node, imported, plan_unchanged, plan_unknown, prior_spec, read_or_keep, state_str,
    unknown_at_apply,
};
use crate::context::{Context, ops_diag, warning_diags};
use crate::convert::{mark_unknown, object_from, replace_paths, spec_from_value};

fn decode(ctx: &Context, res: &Res, v: &Value) -> Result<Option<NodeV2>, Diagnostics> {
    let spec = spec_from_value::<NodeV2>(v, &res.schema, NodeV2::validate)?;
    if let Some(s) = &spec {
        check_node(ctx, &s.node)?;
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
    let prior: Option<NodeV2> = prior_spec(res, &req);
    let drifted = ops::drifted(ctx, &spec.node)
        .await
        .map_err(|e| ops_diag("Cannot read the nodes", e))?;
    if prior.as_ref() == Some(&spec) && !drifted {
        return Ok(plan_unchanged(&req));
    }
    let out = ops::plan(ctx, &spec)
        .await
        .map_err(|e| ops_diag("This node configuration cannot be applied", e))?;
    let mut planned = object_from(&spec, &out.value, &res.ty, &req.config)?;
    mark_unknown(&mut planned, &["modules_loaded", "spdk_version"]);
    let mut resp = PlanResponse::new(planned);
    resp.requires_replace = replace_paths(&req.prior_state, &resp.planned_state, &res.schema);
    resp.diagnostics = warning_diags(&out.warnings);
    Ok(resp)
}

/// Writes the override everywhere, reconciles its node.
pub async fn apply(
    ctx: &Context,
    res: &Res,
    req: ApplyRequest,
) -> Result<ApplyResponse, Diagnostics> {
    if req.is_destroy() {
        let prior = spec_from_value::<NodeV2>(&req.prior_state, &res.schema, |_| Ok(()))?
            .ok_or_else(unknown_at_apply)?;
        ops::delete(ctx, &prior)
            .await
            .map_err(|e| ops_diag("Cannot remove the node override", e))?;
        return Ok(ApplyResponse {
            new_state: Value::Null,
            private: vec![],
            diagnostics: Diagnostics::new(),
        });
    }
    let spec = decode(ctx, res, &req.config)?.ok_or_else(unknown_at_apply)?;
    let out = ops::apply(ctx, &spec)
        .await
        .map_err(|e| ops_diag("Cannot apply the node override", e))?;
    let mut diags = warning_diags(&out.warnings);
    let mut state = object_from(&spec, &out.value, &res.ty, &req.config)?;
    // Attributes the plan promised keep the promised value; a difference is reported and
    // the next refresh shows the current value.
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
                format!("planned {planned:?}, now {:?}", state.get_attr(attr)),
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

/// Reads the override and the node's status; gone when no override record exists.
pub async fn read(ctx: &Context, res: &Res, req: ReadRequest) -> Result<ReadResponse, Diagnostics> {
    let node = state_str(&req, "node");
    let found = ops::read(ctx, &node).await;
    read_or_keep(
        res,
        found,
        &req.current_state,
        &format!("Cannot read the override of node {node}"),
    )
}

/// Imports by node name.
pub async fn import(ctx: &Context, res: &Res, node: &str) -> Result<Value, Diagnostics> {
    let found = ops::read(ctx, node)
        .await
        .map_err(|e| ops_diag("Cannot read the node override", e))?;
    imported(res, found, || format!("no node_v2 record for node {node}"))
}
