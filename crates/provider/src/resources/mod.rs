//! One module per resource; each turns Terraform requests into record writes, predictions
//! and reconciles through [`Context`](crate::context::Context).

pub mod block_disk;
pub mod node_v2;
pub mod setting;
pub mod storage_class;
pub mod volume;

use model::schema::ResourceSchema;
use tfplugin::provider::{PlanRequest, PlanResponse};
use tfplugin::{Diagnostics, Type, Value};

use crate::convert;

/// A resource's model schema and its Terraform object type.
#[derive(Debug, Clone)]
pub struct Res {
    /// Model schema (attributes, modes, force-new).
    pub schema: ResourceSchema,
    /// Terraform object type of the whole resource.
    pub ty: Type,
}

/// The plan when part of the configuration is unknown: the proposal with every computed
/// attribute unknown, and force-new attributes compared where known.
pub fn plan_unknown(res: &Res, req: &PlanRequest) -> PlanResponse {
    let mut planned = req.proposed_new_state.clone();
    for a in res
        .schema
        .attributes
        .iter()
        .filter(|a| a.mode == model::schema::Mode::Computed)
    {
        planned.set_attr(&a.name, Value::unknown());
    }
    let mut resp = PlanResponse::new(planned.clone());
    resp.requires_replace = convert::replace_paths(&req.prior_state, &planned, &res.schema);
    resp
}

/// True unless the (refreshed) state lists nodes whose copy of the record is missing or
/// old: those make an unchanged configuration plan an update that writes it there.
pub fn in_sync(state: &Value) -> bool {
    state
        .get_attr("out_of_sync_nodes")
        .and_then(Value::as_elements)
        .is_none_or(<[Value]>::is_empty)
}

/// When the configuration did not change, the plan is the prior state (with the
/// configuration's timeouts): an unchanged resource plans no change.
pub fn plan_unchanged(req: &PlanRequest) -> PlanResponse {
    let mut planned = req.prior_state.clone();
    planned.set_attr(
        "timeouts",
        req.config
            .get_attr("timeouts")
            .cloned()
            .unwrap_or(Value::Null),
    );
    PlanResponse::new(planned)
}

/// Warnings as diagnostics.
pub fn warnings(ws: impl IntoIterator<Item = (String, String)>) -> Diagnostics {
    ws.into_iter()
        .map(|(s, d)| tfplugin::Diagnostic::warning(s, d))
        .collect()
}

/// The configuration must be wholly known when applying.
pub fn unknown_at_apply() -> Diagnostics {
    tfplugin::Diagnostic::error(
        "Configuration still unknown at apply",
        "a value the resource needs was not known",
    )
    .into()
}

/// The spec of a plan's prior state: `None` when creating (or when it no longer decodes,
/// which then plans like a change).
pub fn prior_spec<T: serde::de::DeserializeOwned>(res: &Res, req: &PlanRequest) -> Option<T> {
    if req.prior_state.is_null() {
        return None;
    }
    convert::spec_from_value::<T>(&req.prior_state, &res.schema, |_| Ok(()))
        .ok()
        .flatten()
}

/// A read answer for a result that may be "its node is down": then the last known state
/// is kept, with a warning, so that a node failure neither fails the whole refresh nor
/// plans the object's re-creation. Other errors fail with `what` as the summary.
pub fn read_or_keep<S: serde::Serialize, St: serde::Serialize>(
    res: &Res,
    found: Result<Option<(S, St)>, client::ops::OpsError>,
    current: &Value,
    what: &str,
) -> Result<tfplugin::provider::ReadResponse, Diagnostics> {
    match found {
        Err(client::ops::OpsError::Unreachable { node, reason }) => {
            Ok(tfplugin::provider::ReadResponse {
                new_state: current.clone(),
                private: vec![],
                diagnostics: tfplugin::Diagnostic::warning(
                    format!("Node {node} is unreachable"),
                    format!("{what}: the last known state is kept ({reason})"),
                )
                .into(),
            })
        }
        Err(e) => Err(crate::context::ops_diag(what, e)),
        Ok(found) => read_response(res, found, current),
    }
}

/// A read answer: the object built from what the nodes store, or null when it is gone.
pub fn read_response<S: serde::Serialize, St: serde::Serialize>(
    res: &Res,
    found: Option<(S, St)>,
    current: &Value,
) -> Result<tfplugin::provider::ReadResponse, Diagnostics> {
    let new_state = match found {
        Some((spec, status)) => convert::object_from(&spec, &status, &res.ty, current)?,
        None => Value::Null,
    };
    Ok(tfplugin::provider::ReadResponse {
        new_state,
        private: vec![],
        diagnostics: Diagnostics::new(),
    })
}

/// An imported object, or "Nothing to import" saying what was looked for.
pub fn imported<S: serde::Serialize, St: serde::Serialize>(
    res: &Res,
    found: Option<(S, St)>,
    missing: impl FnOnce() -> String,
) -> Result<Value, Diagnostics> {
    match found {
        Some((spec, status)) => convert::object_from(&spec, &status, &res.ty, &Value::Null),
        None => Err(tfplugin::Diagnostic::error("Nothing to import", missing()).into()),
    }
}

/// The `node` attribute of a node-scoped resource must name a configured node.
pub fn check_node(ctx: &crate::context::Context, node: &str) -> Result<(), Diagnostics> {
    ctx.check_node("node", node)
        .map_err(|e| crate::context::ops_diag("Unknown node", e))
}

/// A string attribute of the current state (for reads).
pub fn state_str(req: &tfplugin::provider::ReadRequest, name: &str) -> String {
    req.current_state
        .get_attr(name)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}
