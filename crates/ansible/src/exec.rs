//! Runs a checked task against the fleet through `client::ops`, the same operations the
//! Terraform provider calls: read what the nodes store, decide, plan (which refuses what
//! a node foresees failing, before anything is written), then — unless in check mode —
//! apply or delete.

use client::ops::{self, OpsError, Session, Warning};
use model::status::{DataEngineSettingStatus, NodeV2Status};
use model::{BlockDisk, DataEngineSetting, NodeV2, StorageClass};
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

/// The apply's warnings, then the plan's that the apply did not repeat (by summary).
pub fn merged_warnings(planned: &[Warning], applied: &[Warning]) -> Vec<String> {
    let extra = planned
        .iter()
        .filter(|p| applied.iter().all(|a| a.summary != p.summary));
    warning_lines(applied)
        .into_iter()
        .chain(extra.map(|w| format!("{}: {}", w.summary, w.detail)))
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
    /// `block_disk` `name` on `node`.
    BlockDisk {
        /// The node.
        node: String,
        /// The disk's name on it.
        name: String,
        /// The disk.
        spec: Option<BlockDisk>,
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
        Desired::BlockDisk { node, name, spec } => {
            block_disk(s, &node, &name, spec, check_mode).await
        }
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
        (Action::Create | Action::Update, Some(spec), _) => {
            let planned = ops::setting::plan(s, spec)
                .await
                .map_err(ctx("the data engine setting cannot be applied"))?;
            if check {
                (planned.value, warning_lines(&planned.warnings))
            } else {
                let o = ops::setting::apply(s, spec)
                    .await
                    .map_err(ctx("cannot apply the data engine setting"))?;
                (o.value, merged_warnings(&planned.warnings, &o.warnings))
            }
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
        (Action::Create | Action::Update, Some(spec), _) => {
            let now = ops::node_v2::status(s, node).await.map_err(ctx(&reading))?;
            let planned = ops::node_v2::plan(s, spec)
                .await
                .map_err(ctx("the node override cannot be applied"))?;
            if check {
                // Loaded modules and the engine version are known after apply; until then
                // the node's current ones are the best answer.
                let st = NodeV2Status {
                    modules_loaded: now.modules_loaded,
                    spdk_version: now.spdk_version,
                    ..planned.value
                };
                (st, warning_lines(&planned.warnings))
            } else {
                let o = ops::node_v2::apply(s, spec)
                    .await
                    .map_err(ctx("cannot apply the node override"))?;
                (o.value, merged_warnings(&planned.warnings, &o.warnings))
            }
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

/// Whether going from `prior` to `spec` replaces the disk (Terraform's force-new
/// attributes that are not its identity: the device, the driver, the cluster size).
pub fn disk_replaced(prior: &BlockDisk, spec: &BlockDisk) -> bool {
    prior.path != spec.path
        || prior.driver != spec.driver
        || prior.cluster_size_mib != spec.cluster_size_mib
}

async fn block_disk(
    s: &Session,
    node: &str,
    name: &str,
    desired: Option<BlockDisk>,
    check: bool,
) -> Result<Report, ExecError> {
    let id = format!("{node}/{name}");
    let reading = format!("cannot read disk {id}");
    let found = ops::block_disk::read(s, node, name)
        .await
        .map_err(ctx(&reading))?;
    let before = found.as_ref().map(|(spec, _)| spec.clone());
    // The record lives on its own node only: there is no drift across nodes to repair.
    let action = decide(before.as_ref(), desired.as_ref(), false);
    let replaced = matches!((&before, &desired), (Some(b), Some(d)) if disk_replaced(b, d));
    let mut warnings = Vec::new();
    if replaced {
        warnings.push(format!(
            "Disk {id} {} replaced: its path, driver or cluster size changed; the old record \
             is removed (the device keeps its lvstore) and the new one attached",
            if check { "would be" } else { "is" }
        ));
    }
    let status = match (action, &desired, check) {
        (Action::Create | Action::Update, Some(spec), _) => {
            let planned = ops::block_disk::plan(s, spec)
                .await
                .map_err(ctx("this disk cannot be used"))?;
            if check {
                warnings.extend(warning_lines(&planned.warnings));
                match (&found, replaced || action == Action::Create) {
                    // An in-place change (scheduling, tags, reservation) keeps the lvstore.
                    (Some((_, st)), false) => st.clone(),
                    _ => planned.value.status,
                }
            } else {
                if let (true, Some(prior)) = (replaced, &before) {
                    ops::block_disk::delete(s, prior)
                        .await
                        .map_err(ctx("cannot remove the replaced disk"))?;
                }
                let o = ops::block_disk::apply(s, spec)
                    .await
                    .map_err(ctx("cannot attach the disk"))?;
                warnings.extend(merged_warnings(&planned.warnings, &o.warnings));
                o.value
            }
        }
        (Action::Delete, _, false) => {
            if let Some(prior) = &before {
                ops::block_disk::delete(s, prior)
                    .await
                    .map_err(ctx("cannot remove the disk"))?;
            }
            model::status::BlockDiskStatus {
                id: id.clone(),
                ..Default::default()
            }
        }
        _ => found
            .as_ref()
            .map(|(_, st)| st.clone())
            .unwrap_or(model::status::BlockDiskStatus {
                id: id.clone(),
                ..Default::default()
            }),
    };
    Ok(Report {
        module: Module::BlockDisk,
        id,
        action,
        before: before.as_ref().map(json).transpose()?,
        after: desired.as_ref().map(json).transpose()?,
        status: json(&status)?,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(summary: &str, detail: &str) -> Warning {
        Warning {
            summary: summary.into(),
            detail: detail.into(),
        }
    }

    #[test]
    fn plan_warnings_the_apply_does_not_repeat_are_kept() {
        let planned = [
            w("Node node-3 will need a reboot", "p"),
            w("Disk d will be formatted", "f"),
        ];
        let applied = [w("Node node-3 will need a reboot", "a")];
        assert_eq!(
            merged_warnings(&planned, &applied),
            [
                "Node node-3 will need a reboot: a",
                "Disk d will be formatted: f"
            ]
        );
    }

    #[test]
    fn disks_are_replaced_when_device_driver_or_cluster_size_change() {
        let d: BlockDisk = serde_json::from_value(serde_json::json!(
            {"node": "node-1", "name": "d1", "path": "/dev/loop1"}
        ))
        .unwrap();
        assert!(!disk_replaced(&d, &d));
        let tagged = BlockDisk {
            tags: vec!["fast".into()],
            allow_scheduling: false,
            ..d.clone()
        };
        assert!(!disk_replaced(&d, &tagged));
        for other in [
            BlockDisk {
                path: "/dev/loop2".into(),
                ..d.clone()
            },
            BlockDisk {
                cluster_size_mib: 4,
                ..d.clone()
            },
            BlockDisk {
                driver: model::block_disk::DiskDriver::Aio,
                ..d.clone()
            },
        ] {
            assert!(disk_replaced(&d, &other));
        }
    }
}
