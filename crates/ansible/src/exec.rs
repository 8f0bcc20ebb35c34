//! Runs a checked task against the fleet through `client::ops`, the same operations the
//! Terraform provider calls: read what the nodes store, decide, then plan (check mode) or
//! apply / delete.

use client::ops::{self, OpsError, Session, Warning};
use model::status::{DataEngineSettingStatus, NodeV2Status};
use model::{DataEngineSetting, NodeV2, StorageClass};
use serde::Serialize;
use serde_json::Value;

use crate::change::{Action, Report, decide};
use crate::module::Module;

/// Why a task failed after its options were accepted.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// An operation failed; the message names the nodes or the option.
    #[error("{context}: {source}")]
    Ops {
        /// What was being done.
        context: String,
        /// Why.
        #[source]
        source: OpsError,
    },
    /// An option is invalid for this fleet (e.g. `node` is not one of `nodes`).
    #[error("{0}")]
    Invalid(OpsError),
    /// The module's operations do not exist in this build yet.
    #[error(
        "{} is not available in this build: its executor operations are not implemented yet \
         (the options were checked and are valid; nothing was changed)",
        .0.fqcn()
    )]
    NotAvailable(Module),
    /// A status or spec could not be encoded (a programming error).
    #[error("internal error: {0}")]
    Internal(String),
}

fn ctx(context: &str) -> impl FnOnce(OpsError) -> ExecError + '_ {
    move |e| match e {
        OpsError::Invalid { .. } => ExecError::Invalid(e),
        source => ExecError::Ops {
            context: context.to_string(),
            source,
        },
    }
}

fn json<T: Serialize>(v: &T) -> Result<Value, ExecError> {
    serde_json::to_value(v).map_err(|e| ExecError::Internal(e.to_string()))
}

fn warning_lines(ws: &[Warning]) -> Vec<String> {
    ws.iter()
        .map(|w| format!("{}: {}", w.summary, w.detail))
        .collect()
}

/// The desired object of a task: `None` for `state: absent`.
#[derive(Debug, Clone, PartialEq)]
pub enum Desired {
    /// `data_engine_setting`.
    Setting(Option<DataEngineSetting>),
    /// `node_v2` on `node`.
    NodeV2 {
        /// The node (the object's identity).
        node: String,
        /// The override.
        spec: Option<NodeV2>,
    },
    /// `storage_class` called `name`.
    StorageClass {
        /// The class name.
        name: String,
        /// The class.
        spec: Option<StorageClass>,
    },
    /// A module whose operations this build lacks.
    Unavailable(Module),
}

/// Runs the task.
pub async fn execute(s: &Session, desired: Desired, check_mode: bool) -> Result<Report, ExecError> {
    match desired {
        Desired::Setting(spec) => setting(s, spec, check_mode).await,
        Desired::NodeV2 { node, spec } => node_v2(s, &node, spec, check_mode).await,
        Desired::StorageClass { name, spec } => storage_class(s, &name, spec, check_mode).await,
        Desired::Unavailable(m) => Err(ExecError::NotAvailable(m)),
    }
}

/// "Node X needs a reboot" lines for nodes that still wait for one.
fn pending_reboots(st: &DataEngineSettingStatus) -> Vec<String> {
    st.nodes
        .iter()
        .filter(|(_, o)| o.reboot_required)
        .map(|(n, o)| format!("Node {n} needs a reboot: {}", o.reason))
        .collect()
}

fn node_pending_reboot(node: &str, st: &NodeV2Status) -> Vec<String> {
    if st.reboot_required {
        vec![format!(
            "Node {node} needs a reboot: {}",
            st.reboot_reasons.join("; ")
        )]
    } else {
        vec![]
    }
}

async fn observed_setting(s: &Session) -> Result<DataEngineSettingStatus, ExecError> {
    let obs = s
        .observed()
        .await
        .map_err(ctx("cannot read the data engine setting"))?;
    Ok(ops::setting::observed_status(&obs))
}

async fn setting(
    s: &Session,
    desired: Option<DataEngineSetting>,
    check: bool,
) -> Result<Report, ExecError> {
    let reading = "cannot read the data engine setting";
    let found = ops::setting::read(s).await.map_err(ctx(reading))?;
    let drifted = ops::setting::drifted(s).await.map_err(ctx(reading))?;
    let before = found.as_ref().map(|(spec, _)| spec.clone());
    let action = decide(before.as_ref(), desired.as_ref(), drifted);
    let (status, warnings) = match (action, &desired, check) {
        (Action::Create | Action::Update, Some(spec), true) => {
            let o = ops::setting::plan(s, spec)
                .await
                .map_err(ctx("the data engine setting cannot be applied"))?;
            (o.value, warning_lines(&o.warnings))
        }
        (Action::Create | Action::Update, Some(spec), false) => {
            let o = ops::setting::apply(s, spec)
                .await
                .map_err(ctx("cannot apply the data engine setting"))?;
            (o.value, warning_lines(&o.warnings))
        }
        (Action::Delete, _, false) => {
            if let Some(prior) = &before {
                ops::setting::delete(s, prior)
                    .await
                    .map_err(ctx("cannot remove the data engine setting"))?;
            }
            (observed_setting(s).await?, vec![])
        }
        _ => {
            let st = match &found {
                Some((_, st)) => st.clone(),
                None => observed_setting(s).await?,
            };
            let w = pending_reboots(&st);
            (st, w)
        }
    };
    Ok(Report {
        module: Module::DataEngineSetting,
        id: model::setting::SETTING_ID.into(),
        action,
        before: before.as_ref().map(json).transpose()?,
        after: desired.as_ref().map(json).transpose()?,
        status: json(&status)?,
        warnings,
    })
}

async fn node_v2(
    s: &Session,
    node: &str,
    desired: Option<NodeV2>,
    check: bool,
) -> Result<Report, ExecError> {
    let reading = format!("cannot read node {node}");
    let found = ops::node_v2::read(s, node).await.map_err(ctx(&reading))?;
    let drifted = ops::node_v2::drifted(s, node)
        .await
        .map_err(ctx(&reading))?;
    let before = found.as_ref().map(|(spec, _)| spec.clone());
    let action = decide(before.as_ref(), desired.as_ref(), drifted);
    let (status, warnings) = match (action, &desired, check) {
        (Action::Create | Action::Update, Some(spec), true) => {
            let now = ops::node_v2::status(s, node).await.map_err(ctx(&reading))?;
            let o = ops::node_v2::plan(s, spec)
                .await
                .map_err(ctx("the node override cannot be applied"))?;
            // Loaded modules and the engine version are known after apply; until then the
            // node's current ones are the best answer.
            let st = NodeV2Status {
                modules_loaded: now.modules_loaded,
                spdk_version: now.spdk_version,
                ..o.value
            };
            (st, warning_lines(&o.warnings))
        }
        (Action::Create | Action::Update, Some(spec), false) => {
            let o = ops::node_v2::apply(s, spec)
                .await
                .map_err(ctx("cannot apply the node override"))?;
            (o.value, warning_lines(&o.warnings))
        }
        (Action::Delete, _, false) => {
            if let Some(prior) = &before {
                ops::node_v2::delete(s, prior)
                    .await
                    .map_err(ctx("cannot remove the node override"))?;
            }
            let st = ops::node_v2::status(s, node).await.map_err(ctx(&reading))?;
            let w = node_pending_reboot(node, &st);
            (st, w)
        }
        _ => {
            let st = match &found {
                Some((_, st)) => st.clone(),
                None => ops::node_v2::status(s, node).await.map_err(ctx(&reading))?,
            };
            let w = node_pending_reboot(node, &st);
            (st, w)
        }
    };
    Ok(Report {
        module: Module::NodeV2,
        id: node.to_string(),
        action,
        before: before.as_ref().map(json).transpose()?,
        after: desired.as_ref().map(json).transpose()?,
        status: json(&status)?,
        warnings,
    })
}

async fn storage_class(
    s: &Session,
    name: &str,
    desired: Option<StorageClass>,
    check: bool,
) -> Result<Report, ExecError> {
    let reading = format!("cannot read storage class {name}");
    let found = ops::storage_class::read(s, name)
        .await
        .map_err(ctx(&reading))?;
    let obs = s.observed().await.map_err(ctx(&reading))?;
    let drifted = !obs.drift(&ops::storage_class::key(name)).is_empty();
    let before = found.as_ref().map(|(spec, _)| spec.clone());
    let action = decide(before.as_ref(), desired.as_ref(), drifted);
    match (action, &desired) {
        (Action::Create | Action::Update, Some(spec)) => {
            ops::storage_class::plan(s, spec, before.as_ref())
                .await
                .map_err(ctx(&format!("storage class {name} cannot change")))?;
            if !check {
                ops::storage_class::apply(s, spec)
                    .await
                    .map_err(ctx(&format!("cannot store storage class {name}")))?;
            }
        }
        (Action::Delete, _) => {
            let users = ops::storage_class::volumes_using(&obs, name);
            if !users.is_empty() {
                return Err(ExecError::Ops {
                    context: format!("cannot remove storage class {name}"),
                    source: OpsError::InUse(format!(
                        "it is used by volumes {}: delete those volumes first",
                        users.join(", ")
                    )),
                });
            }
            if let (Some(prior), false) = (&before, check) {
                ops::storage_class::delete(s, prior)
                    .await
                    .map_err(ctx(&format!("cannot remove storage class {name}")))?;
            }
        }
        _ => {}
    }
    let status = model::status::StorageClassStatus {
        id: name.to_string(),
    };
    Ok(Report {
        module: Module::StorageClass,
        id: name.to_string(),
        action,
        before: before.as_ref().map(json).transpose()?,
        after: desired.as_ref().map(json).transpose()?,
        status: json(&status)?,
        warnings: vec![],
    })
}
