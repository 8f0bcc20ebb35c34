//! `block_disk`: a disk record stored on its own node only; the executor turns it into an
//! aio bdev with an lvstore (imported when the device already holds one).

use model::status::BlockDiskStatus;
use model::{BlockDisk, Record, RecordKey, RecordKind};

use super::session::{Session, prediction_errors};
use super::{OpsError, Outcome, Warning, i64_of, json_of, spec_of};
use crate::v1;

/// The record key: `block_disk/<node>/<name>`.
pub fn key(node: &str, name: &str) -> RecordKey {
    RecordKey::new(RecordKind::BlockDisk, format!("{node}/{name}"))
}

/// The id, `node/name`, split; errors name the import id.
pub fn parse_id(id: &str) -> Result<(String, String), OpsError> {
    match id.split_once('/') {
        Some((n, d)) if !n.is_empty() && !d.is_empty() && !d.contains('/') => {
            Ok((n.to_string(), d.to_string()))
        }
        _ => Err(OpsError::Invalid {
            attribute: "id".into(),
            reason: format!("{id:?} is not of the form node/name"),
        }),
    }
}

/// The status from the executor's view of one disk.
pub fn status_from(id: &str, d: &v1::DiskStatus) -> BlockDiskStatus {
    BlockDiskStatus {
        id: id.to_string(),
        lvstore_uuid: d.lvstore_uuid.clone(),
        capacity_bytes: i64_of(d.capacity_bytes),
        free_bytes: i64_of(d.free_bytes),
    }
}

fn find<'a>(disks: &'a [v1::DiskStatus], id: &str) -> Option<&'a v1::DiskStatus> {
    disks.iter().find(|d| d.name == id)
}

/// What the executor would do with the disk (`attach`, `import`, `ready`, ...) and the
/// status it predicts; capacity is only known once the lvstore exists.
#[derive(Debug, Clone, PartialEq)]
pub struct DiskPlan {
    /// The executor's predicted state for the disk.
    pub action: String,
    /// Predicted status (zero capacity when not known yet).
    pub status: BlockDiskStatus,
}

/// Validates the device on its node without changing anything: a mounted, partitioned,
/// formatted (without `force_format`), root, device-mapper or SPDK-exported device is an
/// error naming the disk and the reason.
pub async fn plan(s: &Session, spec: &BlockDisk) -> Result<Outcome<DiskPlan>, OpsError> {
    s.check_node("node", &spec.node)?;
    let k = key(&spec.node, &spec.name);
    s.note_planned(k.clone()).await;
    let obs = s.observed().await?;
    obs.require(&spec.node)?;
    let revision = obs.merged.max_revision() + 1;
    // Only this disk: other planned records of the run belong to other nodes or kinds.
    let overlay = [Record {
        key: k.clone(),
        revision,
        deleted: false,
        spec: json_of(&k, spec)?,
    }];
    let p = s.predict(&spec.node, &overlay).await?;
    prediction_errors([(&spec.node, &p)]).map_err(|e| match e {
        OpsError::Nodes(errs) => OpsError::Invalid {
            attribute: "path".into(),
            reason: errs
                .into_iter()
                .map(|(_, m)| m)
                .collect::<Vec<_>>()
                .join("; "),
        },
        other => other,
    })?;
    let id = spec.id();
    let (action, status) = match find(&p.disks, &id) {
        Some(d) => (d.state.clone(), status_from(&id, d)),
        None => (
            "waiting_for_engine".to_string(),
            BlockDiskStatus {
                id: id.clone(),
                ..Default::default()
            },
        ),
    };
    let mut warnings = vec![];
    // A disk whose engine is not running yet is not warned about here: the setting that
    // starts the engine is often applied in the same run. Apply warns if it still waits.
    if spec.force_format && action == "attach" {
        warnings.push(Warning {
            summary: format!("Disk {id} will be formatted"),
            detail: format!(
                "force_format is set: an lvstore is created on {} whatever it holds",
                spec.path
            ),
        });
    }
    Ok(Outcome {
        value: DiskPlan { action, status },
        warnings,
    })
}

/// Stores the record on its node and reconciles it; the disk's failure is an error.
pub async fn apply(s: &Session, spec: &BlockDisk) -> Result<Outcome<BlockDiskStatus>, OpsError> {
    s.check_node("node", &spec.node)?;
    let k = key(&spec.node, &spec.name);
    s.write_one(&spec.node, k.clone(), json_of(&k, spec)?, false)
        .await?;
    let st = s.reconcile(&spec.node).await?;
    let id = spec.id();
    let d = find(&st.disks, &id).ok_or_else(|| {
        OpsError::Nodes(vec![(
            spec.node.clone(),
            format!("disk {id} is not reported after reconcile"),
        )])
    })?;
    match d.state.as_str() {
        "ready" => Ok(Outcome {
            value: status_from(&id, d),
            warnings: vec![],
        }),
        "waiting_for_engine" => Ok(Outcome {
            value: status_from(&id, d),
            warnings: vec![Warning {
                summary: format!("Disk {id} waits for the engine"),
                detail: format!("the V2 engine is not running on {}", spec.node),
            }],
        }),
        other => Err(OpsError::Nodes(vec![(
            spec.node.clone(),
            format!("disk {id} is {other}: {}", d.error),
        )])),
    }
}

/// Writes a tombstone on its node and reconciles; refused (and the record restored) while
/// replicas live on the disk. The lvstore stays on the device: nothing is wiped.
pub async fn delete(s: &Session, prior: &BlockDisk) -> Result<(), OpsError> {
    s.check_node("node", &prior.node)?;
    let k = key(&prior.node, &prior.name);
    let id = prior.id();
    // Refuse before writing anything when the executor already reports replicas on it.
    let obs = s.observed().await?;
    if let Some(d) = obs.status(&prior.node).and_then(|st| find(&st.disks, &id))
        && d.state == "in_use"
    {
        return Err(OpsError::InUse(format!("disk {id}: {}", d.error)));
    }
    s.write_one(&prior.node, k.clone(), json_of(&k, prior)?, true)
        .await?;
    let st = s.reconcile(&prior.node).await?;
    if let Some(d) = find(&st.disks, &id) {
        // Still there after the tombstone: the executor refused (replicas appeared).
        s.write_one(&prior.node, k.clone(), json_of(&k, prior)?, false)
            .await?;
        return Err(OpsError::InUse(format!(
            "disk {id} is {}: {}",
            d.state, d.error
        )));
    }
    Ok(())
}

/// The stored disk record (if any) and its status on its node.
pub async fn read(
    s: &Session,
    node: &str,
    name: &str,
) -> Result<Option<(BlockDisk, BlockDiskStatus)>, OpsError> {
    s.check_node("node", node)?;
    let obs = s.observed().await?;
    // The record lives on its node only: without the node we do not know.
    obs.require(node)?;
    let Some(rec) = obs.live(&key(node, name)) else {
        return Ok(None);
    };
    let spec: BlockDisk = spec_of(rec)?;
    let id = spec.id();
    let status = obs
        .status(node)
        .and_then(|st| find(&st.disks, &id))
        .map(|d| status_from(&id, d))
        .unwrap_or(BlockDiskStatus {
            id,
            ..Default::default()
        });
    Ok(Some((spec, status)))
}

/// Candidate disks of a node, with the reasons excluded ones are excluded.
pub async fn candidates(
    s: &Session,
    node: &str,
    paths: &[String],
) -> Result<Vec<v1::DiskCandidate>, OpsError> {
    s.check_node("node", node)?;
    let mut c = s
        .fleet
        .client(node)
        .await
        .map_err(|e| OpsError::fleet("cannot reach node", e))?;
    c.list_disks(paths)
        .await
        .map_err(|e| OpsError::Nodes(vec![(node.to_string(), e.detail())]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert_eq!(
            parse_id("node-1/disk-1").unwrap(),
            ("node-1".into(), "disk-1".into())
        );
        assert!(parse_id("disk-1").is_err());
        assert!(parse_id("/x").is_err());
        assert!(parse_id("a/b/c").is_err());
    }
}
