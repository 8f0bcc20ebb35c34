//! `storage_class`: a cluster record; immutable while volumes use it.

use model::status::StorageClassStatus;
use model::{RecordKey, RecordKind, StorageClass, Volume};

use super::session::{Observed, Session};
use super::{OpsError, Outcome, json_of, spec_of};

/// The record key: `storage_class/<name>`.
pub fn key(name: &str) -> RecordKey {
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

fn refuse_in_use(obs: &Observed, name: &str, what: &str) -> Result<(), OpsError> {
    let users = volumes_using(obs, name);
    if users.is_empty() {
        Ok(())
    } else {
        Err(OpsError::InUse(format!(
            "storage class {name} is used by volumes {}: {what}",
            users.join(", ")
        )))
    }
}

/// Plans `spec`; replacing `prior` is refused while volumes use it.
pub async fn plan(
    s: &Session,
    spec: &StorageClass,
    prior: Option<&StorageClass>,
) -> Result<Outcome<StorageClassStatus>, OpsError> {
    s.note_planned(key(&spec.name)).await;
    let obs = s.observed().await?;
    obs.require_all(&format!("storage class {}", spec.name))?;
    if let Some(p) = prior.filter(|p| *p != spec) {
        refuse_in_use(
            &obs,
            &p.name,
            "its parameters are immutable while volumes use it",
        )?;
    }
    Ok(Outcome {
        value: StorageClassStatus {
            id: spec.name.clone(),
            out_of_sync_nodes: vec![],
        },
        warnings: vec![],
    })
}

/// Writes the class to every node.
pub async fn apply(
    s: &Session,
    spec: &StorageClass,
) -> Result<Outcome<StorageClassStatus>, OpsError> {
    s.write_all(key(&spec.name), json_of(&key(&spec.name), spec)?, false)
        .await?;
    Ok(Outcome {
        value: StorageClassStatus {
            id: spec.name.clone(),
            out_of_sync_nodes: vec![],
        },
        warnings: vec![],
    })
}

/// Writes a tombstone; refused while volumes use the class.
pub async fn delete(s: &Session, prior: &StorageClass) -> Result<(), OpsError> {
    s.invalidate().await;
    refuse_in_use(
        &*s.observed().await?,
        &prior.name,
        "delete those volumes first",
    )?;
    s.write_all(key(&prior.name), json_of(&key(&prior.name), prior)?, true)
        .await?;
    Ok(())
}

/// The stored class, if any.
pub async fn read(
    s: &Session,
    name: &str,
) -> Result<Option<(StorageClass, StorageClassStatus)>, OpsError> {
    let obs = s.observed().await?;
    let Some(rec) = obs.live(&key(name)) else {
        return Ok(None);
    };
    let spec: StorageClass = spec_of(rec)?;
    let id = spec.name.clone();
    let out_of_sync_nodes = obs.drift(&key(name));
    Ok(Some((
        spec,
        StorageClassStatus {
            id,
            out_of_sync_nodes,
        },
    )))
}
