//! Logical volume stores and logical volumes: cluster accounting and the on-disk record.
//!
//! Accounting follows SPDK's blobstore: sizes are rounded up to whole clusters, thick lvols
//! reserve all their clusters, thin lvols none (the simulator has no data path, so a thin lvol
//! never allocates), a snapshot takes its origin's clusters and the origin becomes a thin clone.
//! Metadata overhead is estimated the way the blobstore lays it out (super block, three bit
//! masks, one metadata page per cluster), which reproduces the recorded numbers: a 2 GiB device
//! has 511 data clusters of 4 MiB, or 2039 of 1 MiB.

use crate::rpc_error::{RpcError, errno};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use uuid::Uuid;

/// Default cluster size (SPDK v24.09): 4 MiB.
pub const DEFAULT_CLUSTER_SIZE: u64 = 4 * 1024 * 1024;
/// Blobstore metadata page size.
pub const MD_PAGE_SIZE: u64 = 4096;
/// Longest lvstore or lvol name SPDK accepts (bytes, exclusive of the terminating NUL).
pub const MAX_NAME_LEN: usize = 63;

/// Metadata clusters the blobstore reserves for a device of `size` bytes.
///
/// `ratio` is `num_md_pages_per_cluster_ratio` (100 = one metadata page per cluster);
/// `min_bytes` is a floor for the reserved area (the simulator's own metadata slots).
#[must_use]
pub fn md_clusters(size: u64, cluster_size: u64, ratio: u64, min_bytes: u64) -> u64 {
    let clusters = size / cluster_size;
    let md_pages = (clusters * ratio).div_ceil(100);
    let mask_pages = |bits: u64| (bits.div_ceil(8) + 8).div_ceil(MD_PAGE_SIZE);
    let pages = 1 + mask_pages(md_pages) + mask_pages(clusters) + mask_pages(md_pages) + md_pages;
    let needed = (pages * MD_PAGE_SIZE).div_ceil(cluster_size);
    needed.max(min_bytes.div_ceil(cluster_size))
}

/// Clusters needed for `size_in_mib` MiB.
#[must_use]
pub fn clusters_for_mib(size_in_mib: u64, cluster_size: u64) -> u64 {
    size_in_mib
        .saturating_mul(1024 * 1024)
        .div_ceil(cluster_size)
}

/// Validates an lvstore or lvol name.
///
/// # Errors
/// -22 "Invalid argument" when empty or too long.
pub fn check_name(name: &str) -> Result<(), RpcError> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(RpcError::errno(errno::EINVAL));
    }
    Ok(())
}

/// One logical volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lvol {
    /// UUID (also the lvol bdev's name).
    pub uuid: Uuid,
    /// Name inside the lvstore (alias `lvs/name`).
    pub name: String,
    /// Size in clusters.
    pub num_clusters: u64,
    /// Thin provisioned.
    pub thin: bool,
    /// Clusters owned by this lvol.
    pub allocated: u64,
    /// The snapshot this lvol is a clone of.
    pub parent: Option<Uuid>,
    /// Whether this lvol is a snapshot.
    pub snapshot: bool,
    /// Read-only (snapshots and `bdev_lvol_set_read_only`).
    pub read_only: bool,
    /// Per-lvol clear method, if given.
    #[serde(default)]
    pub clear_method: Option<String>,
    /// Raid superblock written on this lvol by a `superblock: true` raid (opaque to the lvstore).
    #[serde(default)]
    pub raid_sb: Option<serde_json::Value>,
}

/// One logical volume store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LvStore {
    /// UUID.
    pub uuid: Uuid,
    /// Name.
    pub name: String,
    /// Cluster size in bytes.
    pub cluster_size: u64,
    /// Block size of the base bdev.
    pub block_size: u32,
    /// Clusters available for data.
    pub total_data_clusters: u64,
    /// Clear method of the store (none / unmap / write_zeroes).
    pub clear_method: String,
    /// Lvols in creation order.
    pub lvols: Vec<Lvol>,
    /// Base bdev name (not persisted: it is whatever bdev the store is found on).
    #[serde(skip)]
    pub base_bdev: String,
    /// Backing file or device where the store is persisted (aio bases only).
    #[serde(skip)]
    pub backing: Option<PathBuf>,
}

impl LvStore {
    /// Free data clusters.
    #[must_use]
    pub fn free_clusters(&self) -> u64 {
        let used: u64 = self.lvols.iter().map(|l| l.allocated).sum();
        self.total_data_clusters.saturating_sub(used)
    }

    /// Blocks of an lvol of `clusters` clusters.
    #[must_use]
    pub fn blocks(&self, clusters: u64) -> u64 {
        clusters * self.cluster_size / u64::from(self.block_size)
    }

    /// The lvol with this name.
    #[must_use]
    pub fn by_name(&self, name: &str) -> Option<&Lvol> {
        self.lvols.iter().find(|l| l.name == name)
    }

    /// The lvol with this UUID.
    #[must_use]
    pub fn get(&self, uuid: Uuid) -> Option<&Lvol> {
        self.lvols.iter().find(|l| l.uuid == uuid)
    }

    fn get_mut(&mut self, uuid: Uuid) -> Result<&mut Lvol, RpcError> {
        self.lvols
            .iter_mut()
            .find(|l| l.uuid == uuid)
            .ok_or_else(|| RpcError::errno(errno::ENODEV))
    }

    /// Names of the clones of `uuid`.
    #[must_use]
    pub fn clones_of(&self, uuid: Uuid) -> Vec<String> {
        self.lvols
            .iter()
            .filter(|l| l.parent == Some(uuid))
            .map(|l| l.name.clone())
            .collect()
    }

    /// Creates an lvol. Name collisions are -17, a thick lvol larger than the free space is
    /// -32602 "No space left on device" (SPDK reports the async failure that way).
    ///
    /// # Errors
    /// As described.
    pub fn create_lvol(
        &mut self,
        name: &str,
        size_in_mib: u64,
        thin: bool,
        clear_method: Option<String>,
    ) -> Result<Uuid, RpcError> {
        check_name(name)?;
        if self.by_name(name).is_some() {
            return Err(RpcError::errno(errno::EEXIST));
        }
        let clusters = clusters_for_mib(size_in_mib, self.cluster_size);
        if !thin && clusters > self.free_clusters() {
            return Err(RpcError::coded_errno(
                crate::rpc_error::INVALID_PARAMS,
                errno::ENOSPC,
            ));
        }
        let uuid = Uuid::new_v4();
        self.lvols.push(Lvol {
            uuid,
            name: name.to_owned(),
            num_clusters: clusters,
            thin,
            allocated: if thin { 0 } else { clusters },
            parent: None,
            snapshot: false,
            read_only: false,
            clear_method,
            raid_sb: None,
        });
        Ok(uuid)
    }

    /// Resizes an lvol (grow or shrink, rounded up to clusters).
    ///
    /// # Errors
    /// -32602 "No space left on device" when a thick lvol cannot grow; -32602 "Invalid argument"
    /// for a read-only lvol (snapshot).
    pub fn resize(&mut self, uuid: Uuid, size_in_mib: u64) -> Result<(), RpcError> {
        let free = self.free_clusters();
        let cluster_size = self.cluster_size;
        let lvol = self.get_mut(uuid)?;
        if lvol.read_only {
            return Err(RpcError::coded_errno(
                crate::rpc_error::INVALID_PARAMS,
                errno::EPERM,
            ));
        }
        let clusters = clusters_for_mib(size_in_mib, cluster_size);
        if lvol.thin {
            lvol.num_clusters = clusters;
            lvol.allocated = lvol.allocated.min(clusters);
            return Ok(());
        }
        if clusters > lvol.allocated && clusters - lvol.allocated > free {
            return Err(RpcError::coded_errno(
                crate::rpc_error::INVALID_PARAMS,
                errno::ENOSPC,
            ));
        }
        lvol.num_clusters = clusters;
        lvol.allocated = clusters;
        Ok(())
    }

    /// Snapshots `origin` as `name`: the snapshot takes the origin's clusters and becomes
    /// read-only; the origin becomes a thin clone of it.
    ///
    /// # Errors
    /// -32602 "File exists" for a taken name, -32602 "Invalid argument" for a snapshot origin.
    pub fn snapshot(&mut self, origin: Uuid, name: &str) -> Result<Uuid, RpcError> {
        let invalid = |e| RpcError::coded_errno(crate::rpc_error::INVALID_PARAMS, e);
        check_name(name).map_err(|_| invalid(errno::EINVAL))?;
        if self.by_name(name).is_some() {
            return Err(invalid(errno::EEXIST));
        }
        let uuid = Uuid::new_v4();
        let lvol = self.get_mut(origin)?;
        if lvol.snapshot {
            return Err(invalid(errno::EINVAL));
        }
        let snap = Lvol {
            uuid,
            name: name.to_owned(),
            num_clusters: lvol.num_clusters,
            thin: lvol.thin,
            allocated: lvol.allocated,
            parent: lvol.parent,
            snapshot: true,
            read_only: true,
            clear_method: lvol.clear_method.clone(),
            raid_sb: None,
        };
        lvol.allocated = 0;
        lvol.thin = true;
        lvol.parent = Some(uuid);
        self.lvols.push(snap);
        Ok(uuid)
    }

    /// Clones snapshot `snapshot` as `name` (thin, no clusters).
    ///
    /// # Errors
    /// -32602 "Invalid argument" when `snapshot` is not a snapshot, -32602 "File exists" for a taken name.
    pub fn clone_snapshot(&mut self, snapshot: Uuid, name: &str) -> Result<Uuid, RpcError> {
        let invalid = |e| RpcError::coded_errno(crate::rpc_error::INVALID_PARAMS, e);
        let snap = self
            .get(snapshot)
            .ok_or_else(|| RpcError::errno(errno::ENODEV))?;
        if !snap.snapshot {
            return Err(invalid(errno::EINVAL));
        }
        let num_clusters = snap.num_clusters;
        check_name(name).map_err(|_| invalid(errno::EINVAL))?;
        if self.by_name(name).is_some() {
            return Err(invalid(errno::EEXIST));
        }
        let uuid = Uuid::new_v4();
        self.lvols.push(Lvol {
            uuid,
            name: name.to_owned(),
            num_clusters,
            thin: true,
            allocated: 0,
            parent: Some(snapshot),
            snapshot: false,
            read_only: false,
            clear_method: None,
            raid_sb: None,
        });
        Ok(uuid)
    }

    /// Deletes an lvol. A snapshot with more than one clone is refused (-32603 "Operation not
    /// permitted"); with exactly one, its clusters merge into the clone, which inherits its parent.
    ///
    /// # Errors
    /// As described; -19 when the lvol is unknown.
    pub fn delete(&mut self, uuid: Uuid) -> Result<(), RpcError> {
        let lvol = self
            .get(uuid)
            .cloned()
            .ok_or_else(|| RpcError::errno(errno::ENODEV))?;
        let clones: Vec<Uuid> = self
            .lvols
            .iter()
            .filter(|l| l.parent == Some(uuid))
            .map(|l| l.uuid)
            .collect();
        match clones.as_slice() {
            [] => {}
            [only] => {
                let child = self.get_mut(*only)?;
                child.allocated += lvol.allocated;
                child.parent = lvol.parent;
            }
            _ => {
                return Err(RpcError::coded_errno(
                    crate::rpc_error::INTERNAL_ERROR,
                    errno::EPERM,
                ));
            }
        }
        self.lvols.retain(|l| l.uuid != uuid);
        Ok(())
    }

    /// Marks an lvol read-only.
    ///
    /// # Errors
    /// -19 when unknown.
    pub fn set_read_only(&mut self, uuid: Uuid) -> Result<(), RpcError> {
        self.get_mut(uuid)?.read_only = true;
        Ok(())
    }

    /// Stores (or clears) a raid superblock on an lvol.
    ///
    /// # Errors
    /// -19 when unknown.
    pub fn set_raid_sb(
        &mut self,
        uuid: Uuid,
        sb: Option<serde_json::Value>,
    ) -> Result<(), RpcError> {
        self.get_mut(uuid)?.raid_sb = sb;
        Ok(())
    }

    /// The JSON payload persisted on the device.
    ///
    /// # Errors
    /// Only if serialisation fails (it does not for this type).
    pub fn to_payload(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// Reads a persisted payload.
    ///
    /// # Errors
    /// When the payload is not a valid lvstore record.
    pub fn from_payload(
        payload: &[u8],
        base_bdev: &str,
        backing: PathBuf,
    ) -> Result<Self, serde_json::Error> {
        let mut lvs: LvStore = serde_json::from_slice(payload)?;
        lvs.base_bdev = base_bdev.to_owned();
        lvs.backing = Some(backing);
        Ok(lvs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(total: u64) -> LvStore {
        LvStore {
            uuid: Uuid::new_v4(),
            name: "lvs0".into(),
            cluster_size: DEFAULT_CLUSTER_SIZE,
            block_size: 512,
            total_data_clusters: total,
            clear_method: "unmap".into(),
            lvols: Vec::new(),
            base_bdev: "aio0".into(),
            backing: None,
        }
    }

    #[test]
    fn metadata_overhead_matches_the_recorded_target() {
        let two_gib = 2u64 << 30;
        assert_eq!(
            two_gib / DEFAULT_CLUSTER_SIZE
                - md_clusters(two_gib, DEFAULT_CLUSTER_SIZE, 100, 2 << 20),
            511
        );
        assert_eq!(
            two_gib / (1 << 20) - md_clusters(two_gib, 1 << 20, 100, 2 << 20),
            2039
        );
    }

    #[test]
    fn thick_reserves_thin_does_not() {
        let mut lvs = store(511);
        lvs.create_lvol("thick1", 100, false, None).unwrap();
        lvs.create_lvol("thin1", 500, true, None).unwrap();
        assert_eq!(lvs.free_clusters(), 486);
        assert_eq!(
            lvs.create_lvol("thick1", 8, false, None),
            Err(RpcError::new(-17, "File exists"))
        );
        assert_eq!(
            lvs.create_lvol("huge", 100_000, false, None),
            Err(RpcError::new(-32602, "No space left on device"))
        );
        assert!(lvs.create_lvol("huge_thin", 100_000, true, None).is_ok());
    }

    #[test]
    fn resize_rounds_up_to_clusters() {
        let mut lvs = store(511);
        let thick = lvs.create_lvol("thick1", 100, false, None).unwrap();
        lvs.resize(thick, 200).unwrap();
        lvs.resize(thick, 150).unwrap();
        let l = lvs.get(thick).unwrap();
        assert_eq!(l.allocated, 38);
        assert_eq!(lvs.blocks(l.num_clusters), 311_296);
        assert_eq!(
            lvs.resize(thick, 4096),
            Err(RpcError::new(-32602, "No space left on device"))
        );
        assert_eq!(lvs.free_clusters(), 511 - 38);
    }

    #[test]
    fn snapshot_clone_delete_like_spdk() {
        let mut lvs = store(511);
        let thick = lvs.create_lvol("thick1", 152, false, None).unwrap();
        let snap = lvs.snapshot(thick, "snap1").unwrap();
        assert_eq!(
            lvs.snapshot(thick, "thick1"),
            Err(RpcError::new(-32602, "File exists"))
        );
        let origin = lvs.get(thick).unwrap();
        assert!(origin.thin && origin.allocated == 0 && origin.parent == Some(snap));
        assert_eq!(lvs.get(snap).unwrap().allocated, 38);
        let clone = lvs.clone_snapshot(snap, "clone1").unwrap();
        assert_eq!(
            lvs.clone_snapshot(thick, "bad"),
            Err(RpcError::new(-32602, "Invalid argument"))
        );
        assert_eq!(
            lvs.clones_of(snap),
            vec!["thick1".to_owned(), "clone1".to_owned()]
        );
        assert_eq!(
            lvs.delete(snap),
            Err(RpcError::new(-32603, "Operation not permitted"))
        );
        lvs.delete(clone).unwrap();
        lvs.delete(snap).unwrap();
        let merged = lvs.get(thick).unwrap();
        assert_eq!(
            (merged.allocated, merged.parent, merged.thin),
            (38, None, true)
        );
        assert_eq!(lvs.free_clusters(), 511 - 38);
    }

    #[test]
    fn payload_roundtrip() {
        let mut lvs = store(100);
        lvs.create_lvol("a", 8, true, None).unwrap();
        let bytes = lvs.to_payload().unwrap();
        let back = LvStore::from_payload(&bytes, "aio9", PathBuf::from("/d")).unwrap();
        assert_eq!(back.lvols, lvs.lvols);
        assert_eq!(back.base_bdev, "aio9");
    }

    #[test]
    fn names_are_bounded() {
        assert!(check_name("").is_err());
        assert!(check_name(&"x".repeat(64)).is_err());
        assert!(check_name(&"x".repeat(63)).is_ok());
    }
}
