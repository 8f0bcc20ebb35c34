//! `v2engine_storage_class`: Terraform's view of `client::ops::storage_class`.

use client::ops::storage_class as ops;
use model::StorageClass;
use tfplugin::provider::{
    ApplyRequest, ApplyResponse, PlanRequest, PlanResponse, ReadRequest, ReadResponse,
};
use tfplugin::{Diagnostics, Value};

use super::{
    Res, imported, in_sync, plan_unchanged, plan_unknown, prior_spec, read_response, state_str,
    unknown_at_apply,
};
use crate::context::{Context, ops_diag};
use crate::convert::{object_from, replace_paths, spec_from_value};

fn decode(res: &Res, v: &Value) -> Result<Option<StorageClass>, Diagnostics> {
    spec_from_value::<StorageClass>(v, &res.schema, StorageClass::validate)
}

/// Plans the class; every change replaces it, refused while volumes use it.
pub async fn plan(ctx: &Context, res: &Res, req: PlanRequest) -> Result<PlanResponse, Diagnostics> {
    if req.is_destroy() {
        return Ok(PlanResponse::new(Value::Null));
    }
    let Some(spec) = decode(res, &req.config)? else {
        return Ok(plan_unknown(res, &req));
    };
    let prior: Option<StorageClass> = prior_spec(res, &req);
    if prior.as_ref() == Some(&spec) && in_sync(&req.prior_state) {
        return Ok(plan_unchanged(&req));
    }
    let out = ops::plan(ctx, &spec, prior.as_ref())
        .await
        .map_err(|e| ops_diag("The storage class cannot change", e))?;
    let mut resp = PlanResponse::new(object_from(&spec, &out.value, &res.ty, &req.config)?);
    resp.requires_replace = replace_paths(&req.prior_state, &resp.planned_state, &res.schema);
    Ok(resp)
}

/// Writes the class everywhere (or its tombstone).
pub async fn apply(
    ctx: &Context,
    res: &Res,
    req: ApplyRequest,
) -> Result<ApplyResponse, Diagnostics> {
    if req.is_destroy() {
        let prior = spec_from_value::<StorageClass>(&req.prior_state, &res.schema, |_| Ok(()))?
            .ok_or_else(unknown_at_apply)?;
        ops::delete(ctx, &prior)
            .await
            .map_err(|e| ops_diag("Cannot delete the storage class", e))?;
        return Ok(ApplyResponse {
            new_state: Value::Null,
            private: vec![],
            diagnostics: Diagnostics::new(),
        });
    }
    let spec = decode(res, &req.config)?.ok_or_else(unknown_at_apply)?;
    let out = ops::apply(ctx, &spec)
        .await
        .map_err(|e| ops_diag("Cannot store the storage class", e))?;
    let state = object_from(&spec, &out.value, &res.ty, &req.config)?;
    Ok(ApplyResponse {
        new_state: state,
        private: vec![],
        diagnostics: Diagnostics::new(),
    })
}

/// Reads the class record; gone when no node stores it.
pub async fn read(ctx: &Context, res: &Res, req: ReadRequest) -> Result<ReadResponse, Diagnostics> {
    let found = ops::read(ctx, &state_str(&req, "name"))
        .await
        .map_err(|e| ops_diag("Cannot read the storage class", e))?;
    read_response(res, found, &req.current_state)
}

/// Imports by class name.
pub async fn import(ctx: &Context, res: &Res, name: &str) -> Result<Value, Diagnostics> {
    let found = ops::read(ctx, name)
        .await
        .map_err(|e| ops_diag("Cannot read the storage class", e))?;
    imported(res, found, || {
        format!("no storage class {name:?} is stored on the nodes")
    })
}
