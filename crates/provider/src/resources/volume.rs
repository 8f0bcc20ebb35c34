//! `v2engine_volume`: Terraform's view of `client::ops::volume`.
//!
//! The plan shows the placement (`replicas`), `state` and `nqn`. Growing `size` and moving
//! `attach_node` are in-place updates; shrinking is refused at plan on `size`; a new
//! `storage_class` (or `name`) replaces the volume. When a new volume cannot be placed at
//! plan time because its class or disks are only created in the same run, the placement is
//! left to apply (unknown in the plan, with a warning); apply then places it or fails
//! naming each node.

use client::ops::OpsError;
use client::ops::volume as ops;
use model::Volume;
use model::status::{ReplicaStatus, VolumeStatus};
use tfplugin::provider::{
    ApplyRequest, ApplyResponse, PlanRequest, PlanResponse, ReadRequest, ReadResponse,
};
use tfplugin::{Diagnostic, Diagnostics, Value};

use super::{
    Res, imported, in_sync, plan_unchanged, plan_unknown, prior_spec, read_response, state_str,
    unknown_at_apply,
};
use crate::context::{Context, ops_diag, warning_diags};
use crate::convert::{mark_unknown, object_from, replace_paths, spec_from_value};

/// Computed attributes the plan predicts.
const COMPUTED: [&str; 4] = ["replicas", "state", "nqn", "device_path"];

fn decode(res: &Res, v: &Value) -> Result<Option<Volume>, Diagnostics> {
    spec_from_value::<Volume>(v, &res.schema, Volume::validate)
}

/// `spec` with the frontend the prior state resolved (when the configuration leaves it out).
fn with_prior_frontend(spec: &Volume, prior: Option<&Volume>) -> Volume {
    Volume {
        frontend: spec.frontend.or(prior.and_then(|p| p.frontend)),
        ..spec.clone()
    }
}

/// The replicas a state or plan object shows (empty when unknown or absent; a replica
/// whose state the plan leaves unknown is `planned`).
fn replicas_in(state: &Value) -> Vec<ReplicaStatus> {
    let Some(elems) = state.get_attr("replicas").and_then(Value::as_elements) else {
        return vec![];
    };
    elems
        .iter()
        .map(|r| {
            Some(ReplicaStatus {
                node: r.get_attr("node")?.as_str()?.to_string(),
                disk: r.get_attr("disk")?.as_str()?.to_string(),
                // A plan leaves the state of a replica to build unknown.
                state: r
                    .get_attr("state")
                    .and_then(Value::as_str)
                    .unwrap_or("planned")
                    .to_string(),
            })
        })
        .collect::<Option<Vec<_>>>()
        .unwrap_or_default()
}

/// True when the (refreshed) state shows a volume with nothing to repair.
fn looks_healthy(state: &Value) -> bool {
    let st = state
        .get_attr("state")
        .and_then(Value::as_str)
        .unwrap_or_default();
    // A rebuild in progress repairs itself: nothing to plan.
    matches!(st, "healthy" | "detached" | "rebuilding")
        && replicas_in(state)
            .iter()
            .all(|r| r.state == "healthy" || r.state == "rebuilding")
}

/// What apply will find out is unknown in the plan: the state of each replica it builds
/// (its placement, node and disk, is known) and, when replicas are built, the volume's
/// state (a rebuild may run). What stays as it is stays known.
fn unknown_until_apply(planned: &mut Value) {
    let mut building = false;
    if let Some(Value::List(rs)) = planned.get_attr("replicas").cloned() {
        let rs: Vec<Value> = rs
            .into_iter()
            .map(|mut r| {
                if r.get_attr("state").and_then(Value::as_str) != Some("healthy") {
                    building = true;
                    r.set_attr("state", Value::unknown());
                }
                r
            })
            .collect();
        planned.set_attr("replicas", Value::List(rs));
    }
    if building {
        planned.set_attr("state", Value::unknown());
    }
}

/// Plans the volume: its placement, or a refusal naming the attribute. An unchanged
/// configuration still plans a repair when the refreshed state shows failed, unreachable
/// or stale replicas: the replacement appears in the plan.
pub async fn plan(ctx: &Context, res: &Res, req: PlanRequest) -> Result<PlanResponse, Diagnostics> {
    if req.is_destroy() {
        return Ok(PlanResponse::new(Value::Null));
    }
    let Some(spec) = decode(res, &req.config)? else {
        return Ok(plan_unknown(res, &req));
    };
    let prior: Option<Volume> = prior_spec(res, &req);
    let spec = with_prior_frontend(&spec, prior.as_ref());
    let unchanged = prior.as_ref() == Some(&spec);
    if unchanged && looks_healthy(&req.prior_state) && in_sync(&req.prior_state) {
        return Ok(plan_unchanged(&req));
    }
    let known = replicas_in(&req.prior_state);
    // A replaced volume (new name or class) is planned as a new one.
    let kept = prior
        .as_ref()
        .filter(|p| p.name == spec.name && p.storage_class == spec.storage_class);
    match ops::plan(ctx, &spec, kept, &known).await {
        Ok(out) => {
            let stored = ops::resolved(ctx, &spec)
                .await
                .map_err(|e| ops_diag("Cannot plan the volume", e))?;
            let mut planned = object_from(&stored, &out.value, &res.ty, &req.config)?;
            unknown_until_apply(&mut planned);
            let mut resp = PlanResponse::new(planned);
            resp.requires_replace =
                replace_paths(&req.prior_state, &resp.planned_state, &res.schema);
            resp.diagnostics = warning_diags(&out.warnings);
            Ok(resp)
        }
        // Creating: the class or the disks may come in this same run.
        Err(OpsError::Deferred { attribute, reason }) if kept.is_none() => {
            let mut planned = object_from(
                &spec,
                &VolumeStatus {
                    id: spec.name.clone(),
                    nqn: ops::volume_nqn(&spec.name),
                    ..Default::default()
                },
                &res.ty,
                &req.config,
            )?;
            mark_unknown(&mut planned, &["replicas", "state", "device_path"]);
            if spec.frontend.is_none() {
                mark_unknown(&mut planned, &["frontend"]);
            }
            let mut resp = PlanResponse::new(planned);
            resp.requires_replace =
                replace_paths(&req.prior_state, &resp.planned_state, &res.schema);
            resp.diagnostics = Diagnostic::warning(
                format!("Placement of volume {} is decided at apply", spec.name),
                format!("{attribute}: {reason}"),
            )
            .into();
            Ok(resp)
        }
        // Nothing asked of it, and its attach node is down: nothing can be done now.
        Err(OpsError::Unreachable { node, reason }) if unchanged => {
            let mut resp = plan_unchanged(&req);
            resp.diagnostics = Diagnostic::warning(
                format!("Volume {} cannot be checked", spec.name),
                format!("its attach node {node} is unreachable ({reason})"),
            )
            .into();
            Ok(resp)
        }
        Err(e) => Err(ops_diag("The volume cannot be planned", e)),
    }
}

/// The replicas the plan showed, when known.
fn planned_status(req: &ApplyRequest) -> Option<VolumeStatus> {
    let replicas = replicas_in(&req.planned_state);
    (!replicas.is_empty()).then(|| VolumeStatus {
        replicas,
        ..Default::default()
    })
}

/// Creates, updates or deletes the volume.
pub async fn apply(
    ctx: &Context,
    res: &Res,
    req: ApplyRequest,
) -> Result<ApplyResponse, Diagnostics> {
    if req.is_destroy() {
        let prior = spec_from_value::<Volume>(&req.prior_state, &res.schema, |_| Ok(()))?
            .ok_or_else(unknown_at_apply)?;
        ops::delete(ctx, &prior)
            .await
            .map_err(|e| ops_diag("Cannot delete the volume", e))?;
        return Ok(ApplyResponse {
            new_state: Value::Null,
            private: vec![],
            diagnostics: Diagnostics::new(),
        });
    }
    let spec = decode(res, &req.config)?.ok_or_else(unknown_at_apply)?;
    let prior = if req.prior_state.is_null() {
        None
    } else {
        spec_from_value::<Volume>(&req.prior_state, &res.schema, |_| Ok(()))?
    };
    let spec = with_prior_frontend(&spec, prior.as_ref());
    let planned = planned_status(&req);
    let known = replicas_in(&req.prior_state);
    let out = ops::apply(ctx, &spec, prior.as_ref(), planned.as_ref(), &known)
        .await
        .map_err(|e| ops_diag("Cannot apply the volume", e))?;
    let stored = ops::resolved(ctx, &spec)
        .await
        .map_err(|e| ops_diag("Cannot apply the volume", e))?;
    let mut state = object_from(&stored, &out.value, &res.ty, &req.config)?;
    // Known planned values are kept (the plan's promise); the refresh shows current ones.
    for attr in COMPUTED.iter().chain(&["frontend"]) {
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

/// Reads the volume record and its objects; gone when no node stores it.
pub async fn read(ctx: &Context, res: &Res, req: ReadRequest) -> Result<ReadResponse, Diagnostics> {
    let known = replicas_in(&req.current_state);
    let found = ops::read(ctx, &state_str(&req, "name"), &known)
        .await
        .map_err(|e| ops_diag("Cannot read the volume", e))?;
    read_response(res, found, &req.current_state)
}

/// Imports by volume name.
pub async fn import(ctx: &Context, res: &Res, name: &str) -> Result<Value, Diagnostics> {
    let found = ops::read(ctx, name, &[])
        .await
        .map_err(|e| ops_diag("Cannot read the volume", e))?;
    imported(res, found, || {
        format!("no volume {name:?} is stored on the nodes")
    })
}
