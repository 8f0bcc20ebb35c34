//! Runs a checked task against the fleet through `client::ops`, the same operations the
//! Terraform provider calls: read what the nodes store, decide, plan (which refuses what
//! a node foresees failing, before anything is written), then — unless in check mode —
//! apply or delete.

use std::collections::BTreeSet;

use client::ops::{self, OpsError, Session, Warning};
use model::status::{DataEngineSettingStatus, NodeV2Status};
use model::status::{ReplicaStatus, VolumeStatus};
use model::{BlockDisk, DataEngineSetting, NodeV2, StorageClass, Volume};
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
    /// An option is invalid for this fleet (e.g. `node` is not one of `nodes`), or asks
    /// for what the object cannot do (shrink a volume, replace it without the flag).
    #[error("{0}")]
    Invalid(OpsError),
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
    /// `volume` called `name`.
    Volume {
        /// The volume name.
        name: String,
        /// The volume (`None`: delete it).
        spec: Option<Volume>,
        /// `allow_replace`: a different storage class may replace the volume.
        allow_replace: bool,
    },
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
        Desired::Volume {
            name,
            spec,
            allow_replace,
        } => volume(s, &name, spec, allow_replace, check_mode).await,
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
        diff_extra: None,
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
        diff_extra: None,
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
        out_of_sync_nodes: vec![],
    };
    Ok(Report {
        module: Module::StorageClass,
        id: name.to_string(),
        action,
        before: before.as_ref().map(json).transpose()?,
        after: desired.as_ref().map(json).transpose()?,
        status: json(&status)?,
        warnings: vec![],
        diff_extra: None,
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
        diff_extra: None,
    })
}

/// The replicas a task knew from an earlier run: none. Terraform passes its prior state so
/// that a replica on a node that is down now is still known (and replaced); a playbook keeps
/// no state between runs, so the module knows the replicas the nodes list. A replica on a
/// node that is down is therefore not shown; when that node answers again its replica is
/// listed as stale and the next run removes it.
const UNKNOWN: &[ReplicaStatus] = &[];

/// `spec` with the frontend the task leaves out kept from the stored volume (same class),
/// as the provider keeps it from its prior state; [`ops::volume::resolved`] fills in the
/// class's otherwise.
pub fn with_stored_frontend(spec: &Volume, stored: Option<&Volume>) -> Volume {
    let kept = stored
        .filter(|p| p.storage_class == spec.storage_class)
        .and_then(|p| p.frontend);
    Volume {
        frontend: spec.frontend.or(kept),
        ..spec.clone()
    }
}

/// Why a volume whose record is as asked still needs an apply: the placement differs from
/// the replicas found (a failed or lost replica to replace, a stale one to remove), or the
/// engine is missing on the attach node. `None` when the volume is whole.
pub fn repair_reason(
    spec: &Volume,
    current: &VolumeStatus,
    planned: &VolumeStatus,
) -> Option<String> {
    let found: BTreeSet<(&str, &str)> = current
        .replicas
        .iter()
        .map(|r| (r.node.as_str(), r.disk.as_str()))
        .collect();
    let kept: BTreeSet<(&str, &str)> = planned
        .replicas
        .iter()
        .map(|r| (r.node.as_str(), r.disk.as_str()))
        .collect();
    let names = |v: Vec<(&str, &str)>| {
        v.iter()
            .map(|(n, d)| format!("{n}/{d}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut why = Vec::new();
    let build: Vec<_> = kept.difference(&found).copied().collect();
    if !build.is_empty() {
        why.push(format!("a replica to build on {}", names(build)));
    }
    let remove: Vec<_> = found.difference(&kept).copied().collect();
    if !remove.is_empty() {
        why.push(format!("a replaced replica to remove on {}", names(remove)));
    }
    if let Some(a) = &spec.attach_node
        && current.state == "absent"
    {
        why.push(format!("its engine on {a} is missing"));
    }
    (!why.is_empty()).then(|| why.join("; "))
}

/// In check mode, a new volume whose storage class is not stored yet: an earlier task of
/// the same `--check` run may create it (and the disks), which check mode does not store,
/// so placement waits for the real run. (Each task is its own session: unlike Terraform's
/// plan, a task cannot see what earlier tasks of the run planned.)
fn class_not_stored_yet(e: &OpsError) -> bool {
    matches!(e, OpsError::Invalid { attribute, .. } if attribute == "storage_class")
}

/// Warnings with one line per summary (the part before `: `): the first one is kept.
pub fn first_per_summary(lines: Vec<String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    lines
        .into_iter()
        .filter(|l| seen.insert(l.split(": ").next().unwrap_or(l).to_string()))
        .collect()
}

fn replicas_only(st: &VolumeStatus) -> Result<Value, ExecError> {
    let mut m = serde_json::Map::new();
    m.insert("replicas".into(), json(&st.replicas)?);
    Ok(Value::Object(m))
}

async fn volume(
    s: &Session,
    name: &str,
    desired: Option<Volume>,
    allow_replace: bool,
    check: bool,
) -> Result<Report, ExecError> {
    // An attach node that is not one of `nodes` is refused before any node is asked.
    if let Some(a) = desired.as_ref().and_then(|d| d.attach_node.as_deref()) {
        s.check_node("attach_node", a).map_err(ExecError::Invalid)?;
    }
    let reading = format!("cannot read volume {name}");
    let found = ops::volume::read(s, name, UNKNOWN)
        .await
        .map_err(ctx(&reading))?;
    let obs = s.observed().await.map_err(ctx(&reading))?;
    let drifted = !obs.drift(&ops::volume::key(name)).is_empty();
    let (before, current) = match found {
        Some((spec, st)) => (Some(spec), Some(st)),
        None => (None, None),
    };
    let mut warnings =
        warning_lines(&obs.down_warnings(&format!("volume {name} is read and placed without it")));
    // Why placement waits for the real run (check mode, a new volume only).
    let mut waits: Option<String> = None;
    let wanted = match &desired {
        None => None,
        Some(d) => {
            let d = with_stored_frontend(d, before.as_ref());
            match ops::volume::resolved(s, &d).await {
                Ok(v) => Some(v),
                Err(e) if check && before.is_none() && class_not_stored_yet(&e) => {
                    waits = Some(e.to_string());
                    Some(d)
                }
                Err(e) => return Err(ctx(&format!("volume {name} cannot be planned"))(e)),
            }
        }
    };
    let replaced = match (&before, &wanted) {
        (Some(b), Some(w)) if b.storage_class != w.storage_class => {
            if !allow_replace {
                return Err(ExecError::Invalid(OpsError::Invalid {
                    attribute: "storage_class".into(),
                    reason: format!(
                        "volume {name} is stored with class {:?}; class {:?} would replace it \
                         (delete it with its data, then create it anew): set allow_replace: \
                         true to replace it (nothing was changed)",
                        b.storage_class, w.storage_class
                    ),
                }));
            }
            true
        }
        _ => false,
    };
    let mut action = match decide(before.as_ref(), wanted.as_ref(), drifted) {
        Action::Update if replaced => Action::Replace,
        a => a,
    };
    let empty = || VolumeStatus {
        id: name.to_string(),
        ..Default::default()
    };
    let status = match (action, &wanted) {
        (Action::Delete, _) => {
            let deleting = format!("cannot delete volume {name}");
            match (&before, check) {
                (Some(prior), false) => {
                    ops::volume::delete(s, prior)
                        .await
                        .map_err(ctx(&deleting))?;
                }
                // The run would refuse while a node is down (its replica could not be
                // removed): so does check mode.
                _ => obs
                    .require_all(&format!(
                        "deleting volume {name} (its replicas may live there)"
                    ))
                    .map_err(ctx(&deleting))?,
            }
            empty()
        }
        (Action::Nothing, Some(w)) => {
            // The record is as asked; the nodes may still have lost part of the volume.
            let now = current.clone().unwrap_or_else(empty);
            match ops::volume::plan(s, w, before.as_ref(), UNKNOWN).await {
                Ok(p) => match repair_reason(w, &now, &p.value) {
                    None => now,
                    Some(why) => {
                        action = Action::Update;
                        warnings.push(format!(
                            "Volume {name} {} repaired: {why}",
                            if check { "would be" } else { "is" }
                        ));
                        if check {
                            warnings.extend(warning_lines(&p.warnings));
                            let mut st = p.value;
                            // A replica is missing now: degraded until the run rebuilds it.
                            if w.attach_node.is_some()
                                && st.replicas.iter().any(|r| r.state == "planned")
                            {
                                st.state = "degraded".into();
                            }
                            st
                        } else {
                            let o =
                                ops::volume::apply(s, w, before.as_ref(), Some(&p.value), UNKNOWN)
                                    .await
                                    .map_err(ctx(&format!("cannot repair volume {name}")))?;
                            warnings.extend(merged_warnings(&p.warnings, &o.warnings));
                            o.value
                        }
                    }
                },
                Err(e) => {
                    warnings.push(format!(
                        "Volume {name} could not be checked for lost replicas: {e}"
                    ));
                    now
                }
            }
        }
        (_, Some(w)) => {
            let planning = format!(
                "volume {name} cannot be {}",
                match action {
                    Action::Create => "created",
                    Action::Replace => "replaced",
                    _ => "updated",
                }
            );
            if replaced {
                warnings.push(format!(
                    "Volume {name} {} replaced: its storage class changes from {:?} to {:?}; \
                     the old volume and its data {} deleted",
                    if check { "would be" } else { "is" },
                    before
                        .as_ref()
                        .map(|b| b.storage_class.as_str())
                        .unwrap_or_default(),
                    w.storage_class,
                    if check { "would be" } else { "are" },
                ));
            }
            // A replaced volume is placed anew: the stored one has another class, so its
            // replicas are not kept (and it may be smaller).
            let planned = match &waits {
                Some(_) => None,
                None => match ops::volume::plan(s, w, before.as_ref(), UNKNOWN).await {
                    Ok(p) => Some(p),
                    // The class or disks are planned earlier in this session (not the case
                    // for a module run today, but what the operations say when it is).
                    Err(e @ OpsError::Deferred { .. }) if check => {
                        waits = Some(e.to_string());
                        None
                    }
                    Err(e) => return Err(ctx(&planning)(e)),
                },
            };
            match (planned, check) {
                (None, _) => {
                    warnings.push(format!(
                        "Placement of volume {name} is decided when the task runs: {}",
                        waits.as_deref().unwrap_or_default()
                    ));
                    VolumeStatus {
                        id: name.to_string(),
                        nqn: ops::volume::volume_nqn(name),
                        ..Default::default()
                    }
                }
                (Some(p), true) => {
                    warnings.extend(warning_lines(&p.warnings));
                    p.value
                }
                (Some(p), false) => {
                    if let (true, Some(prior)) = (replaced, &before) {
                        ops::volume::delete(s, prior)
                            .await
                            .map_err(ctx(&format!("cannot delete volume {name} to replace it")))?;
                    }
                    let prior = if replaced { None } else { before.as_ref() };
                    let o = ops::volume::apply(s, w, prior, Some(&p.value), UNKNOWN)
                        .await
                        .map_err(ctx(&format!("cannot apply volume {name}")))?;
                    warnings.extend(merged_warnings(&p.warnings, &o.warnings));
                    o.value
                }
            }
        }
        (_, None) => empty(),
    };
    let warnings = first_per_summary(warnings);
    let diff_before = match &current {
        Some(st) => replicas_only(st)?,
        None => Value::Null,
    };
    Ok(Report {
        module: Module::Volume,
        id: name.to_string(),
        action,
        before: before.as_ref().map(json).transpose()?,
        after: wanted.as_ref().map(json).transpose()?,
        diff_extra: Some((diff_before, replicas_only(&status)?)),
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

    fn vol(class: &str, frontend: Option<&str>) -> Volume {
        serde_json::from_value(serde_json::json!({
            "name": "v1", "size": "64Mi", "storage_class": class,
            "attach_node": "node-1", "frontend": frontend
        }))
        .unwrap()
    }

    fn st(state: &str, replicas: &[(&str, &str)]) -> VolumeStatus {
        VolumeStatus {
            id: "v1".into(),
            replicas: replicas
                .iter()
                .map(|(node, state)| ReplicaStatus {
                    node: (*node).into(),
                    disk: "d1".into(),
                    state: (*state).into(),
                })
                .collect(),
            state: state.into(),
            ..Default::default()
        }
    }

    #[test]
    fn an_omitted_frontend_is_the_stored_one_while_the_class_stays() {
        let stored = vol("two", Some("block"));
        assert_eq!(
            with_stored_frontend(&vol("two", None), Some(&stored)).frontend,
            stored.frontend
        );
        assert_eq!(
            with_stored_frontend(&vol("other", None), Some(&stored)).frontend,
            None
        );
        assert_eq!(
            with_stored_frontend(&vol("two", Some("nvmf")), Some(&stored)),
            vol("two", Some("nvmf"))
        );
    }

    #[test]
    fn a_whole_volume_needs_no_repair_and_a_broken_one_says_why() {
        let spec = vol("two", None);
        let whole = st("healthy", &[("node-1", "healthy"), ("node-2", "healthy")]);
        assert_eq!(repair_reason(&spec, &whole, &whole), None);
        // A rebuild in progress is not a repair to make.
        let rebuilding = st(
            "degraded",
            &[("node-1", "healthy"), ("node-2", "rebuilding")],
        );
        assert_eq!(repair_reason(&spec, &rebuilding, &rebuilding), None);
        let failed = st("degraded", &[("node-1", "healthy"), ("node-2", "failed")]);
        let planned = st("degraded", &[("node-1", "healthy"), ("node-3", "planned")]);
        assert_eq!(
            repair_reason(&spec, &failed, &planned).unwrap(),
            "a replica to build on node-3/d1; a replaced replica to remove on node-2/d1"
        );
        let no_engine = st("absent", &[("node-1", "healthy"), ("node-2", "healthy")]);
        assert_eq!(
            repair_reason(&spec, &no_engine, &whole).unwrap(),
            "its engine on node-1 is missing"
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
