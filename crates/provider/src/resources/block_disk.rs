//! `v2engine_block_disk`: Terraform's view of `client::ops::block_disk`.

use client::ops::block_disk as ops;
use model::BlockDisk;
use tfplugin::provider::{
    ApplyRequest, ApplyResponse, PlanRequest, PlanResponse, ReadRequest, ReadResponse,
};
use tfplugin::{Diagnostics, Value};

use super::{
    Res, check_node, imported, plan_unchanged, plan_unknown, prior_spec, read_or_keep, state_str,
    unknown_at_apply,
};
use crate::context::{Context, ops_diag, warning_diags};
use crate::convert::{keep_prior, mark_unknown, object_from, replace_paths, spec_from_value};

fn decode(ctx: &Context, res: &Res, v: &Value) -> Result<Option<BlockDisk>, Diagnostics> {
    let spec = spec_from_value::<BlockDisk>(v, &res.schema, BlockDisk::validate)?;
    if let Some(s) = &spec {
        check_node(ctx, &s.node)?;
    }
    Ok(spec)
}

/// Plans the disk: validation, then the device checked on its node (nothing changes).
pub async fn plan(ctx: &Context, res: &Res, req: PlanRequest) -> Result<PlanResponse, Diagnostics> {
    if req.is_destroy() {
        return Ok(PlanResponse::new(Value::Null));
    }
    let Some(spec) = decode(ctx, res, &req.config)? else {
        return Ok(plan_unknown(res, &req));
    };
    let prior: Option<BlockDisk> = prior_spec(res, &req);
    if prior.as_ref() == Some(&spec) {
        return Ok(plan_unchanged(&req));
    }
    let out = ops::plan(ctx, &spec)
        .await
        .map_err(|e| ops_diag("This disk cannot be used", e))?;
    let mut planned = object_from(&spec, &out.value.status, &res.ty, &req.config)?;
    let replace = replace_paths(&req.prior_state, &planned, &res.schema);
    if prior.is_some() && replace.is_empty() {
        // An in-place change (scheduling, tags, reservation) keeps the lvstore as it is.
        keep_prior(&mut planned, &req.prior_state, &res.schema);
    } else {
        mark_unknown(
            &mut planned,
            &["lvstore_uuid", "capacity_bytes", "free_bytes"],
        );
    }
    let mut resp = PlanResponse::new(planned);
    resp.requires_replace = replace;
    resp.diagnostics = warning_diags(&out.warnings);
    Ok(resp)
}

/// Stores the disk record on its node and reconciles it.
pub async fn apply(
    ctx: &Context,
    res: &Res,
    req: ApplyRequest,
) -> Result<ApplyResponse, Diagnostics> {
    if req.is_destroy() {
        let prior = spec_from_value::<BlockDisk>(&req.prior_state, &res.schema, |_| Ok(()))?
            .ok_or_else(unknown_at_apply)?;
        ops::delete(ctx, &prior)
            .await
            .map_err(|e| ops_diag("Cannot remove the disk", e))?;
        return Ok(ApplyResponse {
            new_state: Value::Null,
            private: vec![],
            diagnostics: Diagnostics::new(),
        });
    }
    let spec = decode(ctx, res, &req.config)?.ok_or_else(unknown_at_apply)?;
    let out = ops::apply(ctx, &spec)
        .await
        .map_err(|e| ops_diag("Cannot attach the disk", e))?;
    let mut state = object_from(&spec, &out.value, &res.ty, &req.config)?;
    // Known planned values (an in-place update) are kept; the refresh shows current ones.
    for attr in ["lvstore_uuid", "capacity_bytes", "free_bytes"] {
        if let Some(p) = req
            .planned_state
            .get_attr(attr)
            .filter(|v| v.is_wholly_known())
        {
            state.set_attr(attr, p.clone());
        }
    }
    Ok(ApplyResponse {
        new_state: state,
        private: vec![],
        diagnostics: warning_diags(&out.warnings),
    })
}

/// Reads the disk record and its status; gone when its node has no record.
pub async fn read(ctx: &Context, res: &Res, req: ReadRequest) -> Result<ReadResponse, Diagnostics> {
    let (node, name) = (state_str(&req, "node"), state_str(&req, "name"));
    let found = ops::read(ctx, &node, &name).await;
    read_or_keep(
        res,
        found,
        &req.current_state,
        &format!("Cannot read disk {node}/{name}"),
    )
}

/// Imports `node/name`.
pub async fn import(ctx: &Context, res: &Res, id: &str) -> Result<Value, Diagnostics> {
    let (node, name) = ops::parse_id(id).map_err(|e| ops_diag("Invalid import id", e))?;
    let found = ops::read(ctx, &node, &name)
        .await
        .map_err(|e| ops_diag("Cannot read the disk", e))?;
    imported(res, found, || {
        format!("node {node} has no block disk {name:?}")
    })
}
