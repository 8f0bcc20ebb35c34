//! `v2engine_storage_class`: a cluster-scoped record; every change replaces it.

use model::status::StorageClassStatus;
use model::{RecordKey, RecordKind, StorageClass, Volume};
use tfplugin::provider::{
    ApplyRequest, ApplyResponse, PlanRequest, PlanResponse, ReadRequest, ReadResponse,
};
use tfplugin::{Diagnostic, Diagnostics, Value};

use super::{Res, plan_unchanged, plan_unknown};
use crate::context::{Context, Observed};
use crate::convert::{internal, object_from, replace_paths, spec_from_value};

fn key(name: &str) -> RecordKey {
    RecordKey::new(RecordKind::StorageClass, name)
}

/// Volumes (live records) that use class `name`.
pub fn volumes_using(obs: &Observed, name: &str) -> Vec<String> {
    obs.merged
        .records
        .values()
        .filter(|r| r.key.kind == RecordKind::Volume && !r.deleted)
        .filter_map(|r| serde_json::from_value::<Volume>(r.spec.clone()).ok())
        .filter(|v| v.storage_class == name)
        .map(|v| v.name)
        .collect()
}

/// Plans the class.
pub async fn plan(ctx: &Context, res: &Res, req: PlanRequest) -> Result<PlanResponse, Diagnostics> {
    if req.is_destroy() {
        return Ok(PlanResponse::new(Value::Null));
    }
    let Some(spec) =
        spec_from_value::<StorageClass>(&req.config, &res.schema, StorageClass::validate)?
    else {
        return Ok(plan_unknown(res, &req));
    };
    let prior: Option<StorageClass> = if req.prior_state.is_null() {
        None
    } else {
        spec_from_value(&req.prior_state, &res.schema, |_: &StorageClass| Ok(()))?
    };
    if prior.as_ref() == Some(&spec) {
        return Ok(plan_unchanged(&req));
    }
    let status = StorageClassStatus {
        id: spec.name.clone(),
    };
    let planned = object_from(&spec, &status, &res.ty, &req.config)?;
    let mut resp = PlanResponse::new(planned);
    resp.requires_replace = replace_paths(&req.prior_state, &resp.planned_state, &res.schema);
    if let Some(p) = &prior {
        let obs = ctx.observed().await?;
        let users = volumes_using(&obs, &p.name);
        if !users.is_empty() {
            return Err(Diagnostic::error(
                format!("Storage class {} is in use", p.name),
                format!(
                    "its parameters are immutable while volumes use it: {}",
                    users.join(", ")
                ),
            )
            .into());
        }
    }
    Ok(resp)
}

/// Writes the class everywhere (or its tombstone).
pub async fn apply(
    ctx: &Context,
    res: &Res,
    req: ApplyRequest,
) -> Result<ApplyResponse, Diagnostics> {
    if req.is_destroy() {
        let Some(prior) =
            spec_from_value::<StorageClass>(&req.prior_state, &res.schema, |_| Ok(()))?
        else {
            return Err(internal("prior state of storage_class is unknown"));
        };
        ctx.invalidate().await;
        let users = volumes_using(&*ctx.observed().await?, &prior.name);
        if !users.is_empty() {
            return Err(Diagnostic::error(
                format!("Storage class {} is in use", prior.name),
                format!("delete its volumes first: {}", users.join(", ")),
            )
            .into());
        }
        ctx.write_all(
            key(&prior.name),
            serde_json::to_value(&prior).map_err(internal)?,
            true,
        )
        .await?;
        return Ok(ApplyResponse {
            new_state: Value::Null,
            private: vec![],
            diagnostics: Diagnostics::new(),
        });
    }
    let spec = spec_from_value::<StorageClass>(&req.config, &res.schema, StorageClass::validate)?
        .ok_or_else(|| {
        Diagnostics::from(Diagnostic::error(
            "Configuration still unknown at apply",
            "",
        ))
    })?;
    ctx.write_all(
        key(&spec.name),
        serde_json::to_value(&spec).map_err(internal)?,
        false,
    )
    .await?;
    let state = object_from(
        &spec,
        &StorageClassStatus {
            id: spec.name.clone(),
        },
        &res.ty,
        &req.config,
    )?;
    Ok(ApplyResponse {
        new_state: state,
        private: vec![],
        diagnostics: Diagnostics::new(),
    })
}

/// Reads the class record; an unreachable node is an error naming it.
pub async fn read(ctx: &Context, res: &Res, req: ReadRequest) -> Result<ReadResponse, Diagnostics> {
    let name = req
        .current_state
        .get_attr("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut new_state = state_of(ctx, res, &name).await?.unwrap_or(Value::Null);
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

async fn state_of(ctx: &Context, res: &Res, name: &str) -> Result<Option<Value>, Diagnostics> {
    let obs = ctx.observed().await?;
    let Some(rec) = obs.live(&key(name)) else {
        return Ok(None);
    };
    let spec: StorageClass = serde_json::from_value(rec.spec.clone()).map_err(internal)?;
    object_from(
        &spec,
        &StorageClassStatus {
            id: spec.name.clone(),
        },
        &res.ty,
        &Value::Null,
    )
    .map(Some)
}

/// Imports by class name.
pub async fn import(ctx: &Context, res: &Res, name: &str) -> Result<Value, Diagnostics> {
    state_of(ctx, res, name).await?.ok_or_else(|| {
        Diagnostics::from(Diagnostic::error(
            "Nothing to import",
            format!("no storage class {name:?} is stored on the nodes"),
        ))
    })
}
