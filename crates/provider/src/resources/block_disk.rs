//! `v2engine_block_disk`: Terraform's view of `client::ops::block_disk`.

use client::ops::block_disk as ops;
use model::BlockDisk;
use tfplugin::provider::{
    ApplyRequest, ApplyResponse, PlanRequest, PlanResponse, ReadRequest, ReadResponse,
};
use tfplugin::{Diagnostic, Diagnostics, Value};

use super::{Res, plan_unchanged, plan_unknown, unknown_at_apply};
use crate::context::{Context, ops_diag, warning_diags};
use crate::convert::{keep_prior, mark_unknown, object_from, replace_paths, spec_from_value};

fn decode(ctx: &Context, res: &Res, v: &Value) -> Result<Option<BlockDisk>, Diagnostics> {
    let spec = spec_from_value::<BlockDisk>(v, &res.schema, BlockDisk::validate)?;
    if let Some(s) = &spec {
        ctx.check_node("node", &s.node)
            .map_err(|e| ops_diag("Unknown node", e))?;
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
    let prior = if req.prior_state.is_null() {
        None
    } else {
        spec_from_value::<BlockDisk>(&req.prior_state, &res.schema, |_| Ok(()))
            .ok()
            .flatten()
    };
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
    let node = req
        .current_state
        .get_attr("node")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let name = req
        .current_state
        .get_attr("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let found = ops::read(ctx, &node, &name)
        .await
        .map_err(|e| ops_diag("Cannot read the disk", e))?;
    let new_state = match found {
        Some((spec, status)) => object_from(&spec, &status, &res.ty, &req.current_state)?,
        None => Value::Null,
    };
    Ok(ReadResponse {
        new_state,
        private: vec![],
        diagnostics: Diagnostics::new(),
    })
}

/// Imports `node/name`.
pub async fn import(ctx: &Context, res: &Res, id: &str) -> Result<Value, Diagnostics> {
    let (node, name) = ops::parse_id(id).map_err(|e| ops_diag("Invalid import id", e))?;
    match ops::read(ctx, &node, &name)
        .await
        .map_err(|e| ops_diag("Cannot read the disk", e))?
    {
        Some((spec, status)) => object_from(&spec, &status, &res.ty, &Value::Null),
        None => Err(Diagnostic::error(
            "Nothing to import",
            format!("node {node} has no block disk {name:?}"),
        )
        .into()),
    }
}
