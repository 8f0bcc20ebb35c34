//! Carrying out a disk plan against the engine (async, over [`SpdkApi`]): `bdev_aio_create`,
//! `bdev_wait_for_examine`, import or `bdev_lvol_create_lvstore`, `bdev_aio_delete`.
//!
//! A step that fails or is refused undoes what this step created (the aio bdev), so a
//! refused disk leaves the engine as it was. An lvstore is never deleted here.

use spdk_rpc::SpdkApi;
use spdk_rpc::types::bdev::{BdevAioCreate, BdevAioDelete, BdevGetBdevs};
use spdk_rpc::types::lvol::{
    BdevLvolCreateLvstore, BdevLvolGetLvols, BdevLvolGetLvstores, Lvstore,
};

use super::plan::{AioBdev, DiskAction, DiskPlan, EngineDisks, LvolRef};

/// What happened to one disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The aio bdev and the lvstore are in place.
    Ready {
        /// The lvstore.
        lvstore: Lvstore,
        /// Found on the device (examine) rather than created now.
        imported: bool,
    },
    /// The disk's aio bdev was deleted (tombstone).
    Removed,
    /// Nothing to do for a tombstone.
    Absent,
    /// Refused, nothing changed; each reason is a phrase about the device.
    Refused(Vec<String>),
    /// Removal refused: lvols live on the disk.
    InUse(String),
    /// An SPDK call failed.
    Failed(String),
}

/// Reads the aio bdevs (device numbers unresolved), lvstores and lvols of the engine.
pub async fn read_engine(api: &dyn SpdkApi) -> Result<EngineDisks, spdk_rpc::Error> {
    let bdevs = api.bdev_get_bdevs(BdevGetBdevs::all()).await?;
    let lvstores = api
        .bdev_lvol_get_lvstores(BdevLvolGetLvstores::default())
        .await?;
    let lvols = api.bdev_lvol_get_lvols(BdevLvolGetLvols::default()).await?;
    Ok(EngineDisks {
        aio: bdevs
            .into_iter()
            .filter_map(|b| {
                let aio = b.driver_specific.aio?;
                Some(AioBdev {
                    name: b.name,
                    filename: aio.filename,
                    dev: None,
                })
            })
            .collect(),
        lvstores,
        lvols: lvols
            .into_iter()
            .map(|l| LvolRef {
                name: l.name,
                lvs_name: l.lvs.name,
                lvs_uuid: l.lvs.uuid,
            })
            .collect(),
    })
}

async fn lvstore_on(api: &dyn SpdkApi, bdev: &str) -> Result<Option<Lvstore>, spdk_rpc::Error> {
    Ok(api
        .bdev_lvol_get_lvstores(BdevLvolGetLvstores::default())
        .await?
        .into_iter()
        .find(|l| l.base_bdev == bdev))
}

/// Deletes the aio bdev created by a failed step, logging a failure to do so.
async fn undo(api: &dyn SpdkApi, bdev: &str) {
    if let Err(e) = api.bdev_aio_delete(BdevAioDelete::new(bdev)).await {
        tracing::error!(
            bdev,
            "cannot delete the aio bdev again after a failed step: {e}"
        );
    }
}

async fn attach(api: &dyn SpdkApi, p: &DiskPlan, expect_import: bool) -> Applied {
    let spec = &p.record.spec;
    let bdev = spec.bdev_name();
    if let Err(e) = api
        .bdev_aio_create(BdevAioCreate::new(&bdev, &spec.path))
        .await
    {
        return Applied::Failed(e.to_string());
    }
    tracing::info!(disk = %p.record.key, bdev, path = %spec.path, "aio bdev created");
    let found = match api.bdev_wait_for_examine().await {
        Ok(()) => lvstore_on(api, &bdev).await,
        Err(e) => Err(e),
    };
    match found {
        Ok(Some(lvstore)) => {
            tracing::info!(disk = %p.record.key, lvstore = %lvstore.name, uuid = %lvstore.uuid,
                "lvstore imported from the device");
            Applied::Ready {
                lvstore,
                imported: true,
            }
        }
        Ok(None) if expect_import && !spec.force_format => {
            undo(api, &bdev).await;
            Applied::Refused(vec![
                "holds an SPDK blobstore that examine did not load as an lvstore; set force_format to create a new lvstore".into(),
            ])
        }
        Ok(None) => match create_lvstore(api, p).await {
            ok @ Applied::Ready { .. } => ok,
            other => {
                undo(api, &bdev).await;
                other
            }
        },
        Err(e) => {
            undo(api, &bdev).await;
            Applied::Failed(e.to_string())
        }
    }
}

async fn create_lvstore(api: &dyn SpdkApi, p: &DiskPlan) -> Applied {
    let spec = &p.record.spec;
    let bdev = spec.bdev_name();
    let mut req = BdevLvolCreateLvstore::new(&bdev, spec.lvstore_name());
    // cluster_size_mib is validated to 1..=1024, so the bytes fit in u32.
    req.cluster_sz = u32::try_from(spec.cluster_size_mib.saturating_mul(1 << 20)).ok();
    if let Err(e) = api.bdev_lvol_create_lvstore(req).await {
        return Applied::Failed(e.to_string());
    }
    match lvstore_on(api, &bdev).await {
        Ok(Some(lvstore)) => {
            tracing::info!(disk = %p.record.key, lvstore = %lvstore.name, uuid = %lvstore.uuid,
                "lvstore created");
            Applied::Ready {
                lvstore,
                imported: false,
            }
        }
        Ok(None) => Applied::Failed(format!(
            "lvstore {} was created but is not listed on bdev {bdev}",
            spec.lvstore_name()
        )),
        Err(e) => Applied::Failed(e.to_string()),
    }
}

async fn remove(api: &dyn SpdkApi, p: &DiskPlan) -> Applied {
    let bdev = p.record.spec.bdev_name();
    // Read the lvols again right before deleting: the plan may be a few calls old.
    let current = match read_engine(api).await {
        Ok(e) => e,
        Err(e) => return Applied::Failed(e.to_string()),
    };
    if let Some(lvs) = current.lvstore_on(&bdev) {
        let lvols = current.lvols_of(&lvs.uuid);
        if !lvols.is_empty() {
            return Applied::InUse(in_use_reason(&lvs.name, &lvols));
        }
    }
    match api.bdev_aio_delete(BdevAioDelete::new(&bdev)).await {
        Ok(()) => {
            tracing::info!(disk = %p.record.key, bdev, "aio bdev deleted; the lvstore stays on the device");
            Applied::Removed
        }
        Err(e) if e.is_not_found() => Applied::Removed,
        Err(e) => Applied::Failed(e.to_string()),
    }
}

/// The refusal of a removal while `lvols` live on lvstore `lvs`.
pub fn in_use_reason(lvs: &str, lvols: &[String]) -> String {
    format!(
        "cannot be removed while lvols live on its lvstore {lvs}: {}",
        lvols.join(", ")
    )
}

/// Carries out each plan in order.
pub async fn apply(api: &dyn SpdkApi, plans: &[DiskPlan]) -> Vec<Applied> {
    let mut out = Vec::with_capacity(plans.len());
    for p in plans {
        let a = match &p.action {
            DiskAction::Wait => Applied::Failed("the engine is not running".into()),
            DiskAction::Attach { expect_import } => attach(api, p, *expect_import).await,
            DiskAction::CreateLvstore => create_lvstore(api, p).await,
            DiskAction::Ready(l) => Applied::Ready {
                lvstore: l.clone(),
                imported: false,
            },
            DiskAction::Refuse(r) => Applied::Refused(r.clone()),
            DiskAction::Remove => remove(api, p).await,
            DiskAction::RemoveRefused(lvols) => {
                let lvs = p.record.spec.lvstore_name();
                Applied::InUse(in_use_reason(&lvs, lvols))
            }
            DiskAction::Absent => Applied::Absent,
        };
        out.push(a);
    }
    out
}
