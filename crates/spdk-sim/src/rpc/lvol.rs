//! `bdev_lvol_*`: lvstores and lvols.

use super::params::{Decoder, decode};
use crate::disk::meta::META_REGION;
use crate::json::J;
use crate::rpc_error::{RpcError, errno};
use crate::state::Target;
use crate::state::bdev::{BdevKind, Claimer};
use crate::state::lvs::{self, LvStore};
use crate::state::persist;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

/// SPDK's message for an unknown `clear_method` of `bdev_lvol_create_lvstore`.
const LVS_CLEAR_METHOD: &str = "Invalid clear_method parameter";
/// ... and of `bdev_lvol_create` (SPDK words the two differently).
const LVOL_CLEAR_METHOD: &str = "Invalid clean_method option";

/// Checks a `clear_method` as SPDK does (case-insensitively) and returns it in lower case.
fn check_clear_method(m: Option<&str>, message: &str) -> Result<Option<String>, RpcError> {
    match m.map(str::to_ascii_lowercase) {
        None => Ok(None),
        Some(l) if matches!(l.as_str(), "none" | "unmap" | "write_zeroes") => Ok(Some(l)),
        Some(_) => Err(RpcError::new(-i64::from(errno::EINVAL), message)),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateLvstore {
    bdev_name: String,
    lvs_name: String,
    cluster_sz: Option<u32>,
    clear_method: Option<String>,
    num_md_pages_per_cluster_ratio: Option<u32>,
}

/// `bdev_lvol_create_lvstore`: -19 unknown bdev, -17 name taken, -1 bdev already claimed (e.g.
/// it holds an lvstore). The store is written to the device when the base is an aio bdev.
///
/// # Errors
/// As described.
pub fn create_lvstore(t: &mut Target, params: Option<Value>) -> Result<J, RpcError> {
    let mut p: CreateLvstore = decode(params, Decoder::Bdev)?;
    p.clear_method = check_clear_method(p.clear_method.as_deref(), LVS_CLEAR_METHOD)?;
    let bdev = t
        .bdev(&p.bdev_name)
        .cloned()
        .ok_or_else(|| RpcError::errno(errno::ENODEV))?;
    lvs::check_name(&p.lvs_name)?;
    if t.lvstores.iter().any(|l| l.name == p.lvs_name) {
        return Err(RpcError::errno(errno::EEXIST));
    }
    if bdev.claim.is_some() {
        return Err(RpcError::errno(errno::EPERM));
    }
    let cluster_size = p.cluster_sz.map_or(lvs::DEFAULT_CLUSTER_SIZE, u64::from);
    if cluster_size < lvs::MD_PAGE_SIZE
        || !cluster_size.is_multiple_of(lvs::MD_PAGE_SIZE)
        || cluster_size < u64::from(bdev.block_size)
    {
        return Err(RpcError::errno(errno::EINVAL));
    }
    let size = bdev.num_blocks * u64::from(bdev.block_size);
    let ratio = u64::from(p.num_md_pages_per_cluster_ratio.unwrap_or(100)).max(1);
    let reserved = if bdev.backing.is_some() {
        META_REGION
    } else {
        0
    };
    let md = lvs::md_clusters(size, cluster_size, ratio, reserved);
    let clusters = size / cluster_size;
    if clusters <= md {
        return Err(RpcError::errno(errno::ENOSPC));
    }
    let store = LvStore {
        uuid: Uuid::new_v4(),
        name: p.lvs_name,
        cluster_size,
        block_size: bdev.block_size,
        total_data_clusters: clusters - md,
        clear_method: p.clear_method.unwrap_or_else(|| "unmap".to_owned()),
        lvols: Vec::new(),
        base_bdev: bdev.name.clone(),
        backing: bdev.backing.clone(),
    };
    persist(&store)?;
    let uuid = store.uuid;
    t.set_claim(&bdev.name, Some(Claimer::Lvstore(uuid)));
    t.lvstores.push(store);
    Ok(J::from(uuid.to_string()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LvsSelector {
    uuid: Option<String>,
    lvs_name: Option<String>,
}

/// Finds an lvstore by exactly one of UUID or name (-22 for both, -19 when unknown).
fn select_lvs(
    t: &Target,
    uuid: Option<&str>,
    name: Option<&str>,
    required: bool,
) -> Result<Option<Uuid>, RpcError> {
    let found = match (uuid, name) {
        (Some(_), Some(_)) => return Err(RpcError::errno(errno::EINVAL)),
        (None, None) if required => return Err(RpcError::errno(errno::EINVAL)),
        (None, None) => return Ok(None),
        (Some(u), None) => t
            .lvstores
            .iter()
            .find(|l| Uuid::parse_str(u).is_ok_and(|u| u == l.uuid)),
        (None, Some(n)) => t.lvstores.iter().find(|l| l.name == n),
    };
    found
        .map(|l| Some(l.uuid))
        .ok_or_else(|| RpcError::errno(errno::ENODEV))
}

fn lvs_json(l: &LvStore) -> J {
    J::obj()
        .with("uuid", l.uuid.to_string())
        .with("name", l.name.as_str())
        .with("base_bdev", l.base_bdev.as_str())
        .with("total_data_clusters", l.total_data_clusters)
        .with("free_clusters", l.free_clusters())
        .with("block_size", l.block_size)
        .with("cluster_size", l.cluster_size)
}

/// `bdev_lvol_get_lvstores {uuid? | lvs_name?}`.
///
/// # Errors
/// -19 when the selected store is unknown, -22 when both selectors are given.
pub fn get_lvstores(t: &mut Target, params: Option<Value>) -> Result<J, RpcError> {
    let p: LvsSelector = decode(params, Decoder::Bdev)?;
    let sel = select_lvs(t, p.uuid.as_deref(), p.lvs_name.as_deref(), false)?;
    let list = t
        .lvstores
        .iter()
        .filter(|l| sel.is_none_or(|u| u == l.uuid))
        .map(lvs_json)
        .collect();
    Ok(J::Arr(list))
}

/// `bdev_lvol_delete_lvstore {uuid? | lvs_name?}`: destroys the store and its lvols, even lvols a
/// raid uses (no reference checking, as in SPDK v24.09).
///
/// # Errors
/// -19 unknown store, -22 both/neither selector.
pub fn delete_lvstore(t: &mut Target, params: Option<Value>) -> Result<J, RpcError> {
    let p: LvsSelector = decode(params, Decoder::Bdev)?;
    let uuid = select_lvs(t, p.uuid.as_deref(), p.lvs_name.as_deref(), true)?
        .ok_or_else(|| RpcError::errno(errno::EINVAL))?;
    t.destroy_lvstore(uuid)?;
    Ok(J::Bool(true))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateLvol {
    lvol_name: String,
    size_in_mib: u64,
    lvs_name: Option<String>,
    uuid: Option<String>,
    thin_provision: Option<bool>,
    clear_method: Option<String>,
}

/// `bdev_lvol_create`: returns the new lvol's UUID (its bdev name); alias `lvs/lvol`.
///
/// # Errors
/// -22 both/neither lvstore selector, -19 unknown store, -17 name taken, -32602 "No space left on device".
pub fn create(t: &mut Target, params: Option<Value>) -> Result<J, RpcError> {
    let mut p: CreateLvol = decode(params, Decoder::Bdev)?;
    let lvs = select_lvs(t, p.uuid.as_deref(), p.lvs_name.as_deref(), true)?
        .ok_or_else(|| RpcError::errno(errno::EINVAL))?;
    p.clear_method = check_clear_method(p.clear_method.as_deref(), LVOL_CLEAR_METHOD)?;
    let thin = p.thin_provision.unwrap_or(false);
    let uuid = t.with_lvs(lvs, |s| {
        s.create_lvol(&p.lvol_name, p.size_in_mib, thin, p.clear_method.clone())
    })?;
    t.register_lvol_bdev(lvs, uuid);
    Ok(J::from(uuid.to_string()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GetLvols {
    lvs_uuid: Option<String>,
    lvs_name: Option<String>,
}

/// `bdev_lvol_get_lvols {lvs_uuid? | lvs_name?}`.
///
/// # Errors
/// -19 unknown store, -22 both selectors.
pub fn get_lvols(t: &mut Target, params: Option<Value>) -> Result<J, RpcError> {
    let p: GetLvols = decode(params, Decoder::Bdev)?;
    let sel = select_lvs(t, p.lvs_uuid.as_deref(), p.lvs_name.as_deref(), false)?;
    let mut out = Vec::new();
    for store in t
        .lvstores
        .iter()
        .filter(|l| sel.is_none_or(|u| u == l.uuid))
    {
        for l in &store.lvols {
            out.push(
                J::obj()
                    .with("alias", format!("{}/{}", store.name, l.name))
                    .with("uuid", l.uuid.to_string())
                    .with("name", l.name.as_str())
                    .with("is_thin_provisioned", l.thin)
                    .with("is_snapshot", l.snapshot)
                    .with("is_clone", l.parent.is_some())
                    .with("is_esnap_clone", false)
                    .with("is_degraded", false)
                    .with(
                        "lvs",
                        J::obj()
                            .with("name", store.name.as_str())
                            .with("uuid", store.uuid.to_string()),
                    ),
            );
        }
    }
    Ok(J::Arr(out))
}

/// Resolves an lvol bdev name/alias/UUID to (lvstore, lvol).
///
/// # Errors
/// -19 when it is not an lvol.
pub fn find_lvol(t: &Target, name: &str) -> Result<(Uuid, Uuid), RpcError> {
    match t.bdev(name) {
        Some(b) => match b.kind {
            BdevKind::Lvol { lvs } => Ok((lvs, b.uuid)),
            _ => Err(RpcError::errno(errno::ENODEV)),
        },
        None => Err(RpcError::errno(errno::ENODEV)),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Resize {
    name: String,
    size_in_mib: u64,
}

/// `bdev_lvol_resize {name, size_in_mib}`: resizes the blob, then notifies the bdev, whose
/// consumers follow (an NVMe-oF namespace tells its hosts, a raid recomputes its size; see
/// `state::resize`).
///
/// # Errors
/// -19 unknown lvol, -32602 "No space left on device"; -32602 "Device or resource busy" when
/// shrinking an lvol that is in use (raid member, namespace): as in SPDK the blob is already
/// smaller then, the bdev keeps its size.
pub fn resize(t: &mut Target, params: Option<Value>) -> Result<J, RpcError> {
    let p: Resize = decode(params, Decoder::Bdev)?;
    let (lvs, lvol) = find_lvol(t, &p.name)?;
    t.with_lvs(lvs, |s| s.resize(lvol, p.size_in_mib))?;
    let wanted = t
        .lvstores
        .iter()
        .find(|l| l.uuid == lvs)
        .and_then(|l| l.get(lvol).map(|v| l.blocks(v.num_clusters)));
    let have = t.bdev(&lvol.to_string()).map(|b| b.num_blocks);
    if wanted.is_some() && have.is_some() && wanted != have {
        return Err(RpcError::coded_errno(
            crate::rpc_error::INVALID_PARAMS,
            errno::EBUSY,
        ));
    }
    Ok(J::Bool(true))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Snapshot {
    lvol_name: String,
    snapshot_name: String,
}

/// `bdev_lvol_snapshot {lvol_name, snapshot_name}`: returns the snapshot's UUID.
///
/// # Errors
/// -19 unknown lvol, -32602 "File exists".
pub fn snapshot(t: &mut Target, params: Option<Value>) -> Result<J, RpcError> {
    let p: Snapshot = decode(params, Decoder::Bdev)?;
    let (lvs, lvol) = find_lvol(t, &p.lvol_name)?;
    let uuid = t.with_lvs(lvs, |s| s.snapshot(lvol, &p.snapshot_name))?;
    t.register_lvol_bdev(lvs, uuid);
    Ok(J::from(uuid.to_string()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Clone {
    snapshot_name: String,
    clone_name: String,
}

/// `bdev_lvol_clone {snapshot_name, clone_name}`: returns the clone's UUID.
///
/// # Errors
/// -19 unknown snapshot, -32602 "Invalid argument" for a non-snapshot.
pub fn clone(t: &mut Target, params: Option<Value>) -> Result<J, RpcError> {
    let p: Clone = decode(params, Decoder::Bdev)?;
    let (lvs, snap) = find_lvol(t, &p.snapshot_name)?;
    let uuid = t.with_lvs(lvs, |s| s.clone_snapshot(snap, &p.clone_name))?;
    t.register_lvol_bdev(lvs, uuid);
    Ok(J::from(uuid.to_string()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NameOnly {
    name: String,
}

/// `bdev_lvol_delete {name}`: also when a raid uses it (the raid loses the member).
///
/// # Errors
/// -19 unknown lvol, -32603 "Operation not permitted" for a snapshot with several clones.
pub fn delete(t: &mut Target, params: Option<Value>) -> Result<J, RpcError> {
    let p: NameOnly = decode(params, Decoder::Bdev)?;
    let (lvs, lvol) = find_lvol(t, &p.name)?;
    t.with_lvs(lvs, |s| s.delete(lvol))?;
    t.unregister(&lvol.to_string());
    Ok(J::Bool(true))
}

/// `bdev_lvol_set_read_only {name}`.
///
/// # Errors
/// -19 unknown lvol.
pub fn set_read_only(t: &mut Target, params: Option<Value>) -> Result<J, RpcError> {
    let p: NameOnly = decode(params, Decoder::Bdev)?;
    let (lvs, lvol) = find_lvol(t, &p.name)?;
    t.with_lvs(lvs, |s| s.set_read_only(lvol))?;
    Ok(J::Bool(true))
}
