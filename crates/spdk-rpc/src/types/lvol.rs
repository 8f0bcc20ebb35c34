//! Logical volume stores and logical volumes (`bdev_lvol_*`).

use serde::{Deserialize, Serialize};

use crate::request::rpc_request;
use crate::types::string_enum;

string_enum! {
    /// How blocks are cleared: for an lvstore at creation, for an lvol when it is deleted.
    ///
    /// aio does no unmap, so on aio a new thick lvol can hold stale data; prefer thin lvols
    /// or `WriteZeroes`.
    pub enum ClearMethod {
        /// Leave data as is.
        None = "none",
        /// Unmap (the default).
        Unmap = "unmap",
        /// Write zeroes.
        WriteZeroes = "write_zeroes",
    }
}

/// Selects an lvstore by name or UUID (exactly one: giving both or neither is `-22`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LvsRef {
    /// By name (key `lvs_name`).
    #[serde(rename = "lvs_name")]
    Name(String),
    /// By UUID (key `uuid`).
    #[serde(rename = "uuid")]
    Uuid(String),
}

/// `bdev_lvol_create_lvstore`: answers the new lvstore's UUID.
///
/// A second lvstore on the same bdev is `-1 "Operation not permitted"`; a duplicate name is
/// `-17 "File exists"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BdevLvolCreateLvstore {
    /// The base bdev.
    pub bdev_name: String,
    /// Name of the new lvstore.
    pub lvs_name: String,
    /// Cluster size in bytes (default 4 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_sz: Option<u32>,
    /// How the data area is cleared at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear_method: Option<ClearMethod>,
    /// Metadata pages per cluster ratio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_md_pages_per_cluster_ratio: Option<u32>,
    /// Metadata page size in bytes. Only from SPDK v25.05; refused on older targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md_page_size: Option<u32>,
}

impl BdevLvolCreateLvstore {
    /// An lvstore `lvs_name` on `bdev_name` with default options.
    pub fn new(bdev_name: impl Into<String>, lvs_name: impl Into<String>) -> Self {
        Self {
            bdev_name: bdev_name.into(),
            lvs_name: lvs_name.into(),
            ..Self::default()
        }
    }
}
rpc_request!(BdevLvolCreateLvstore => "bdev_lvol_create_lvstore", String, write);

/// `bdev_lvol_get_lvstores`: all lvstores or the selected one (`-19` when missing).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BdevLvolGetLvstores {
    /// The lvstore; all when `None`.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub lvs: Option<LvsRef>,
}
rpc_request!(BdevLvolGetLvstores => "bdev_lvol_get_lvstores", Vec<Lvstore>, read);

/// One lvstore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lvstore {
    /// Its UUID.
    pub uuid: String,
    /// Its name.
    pub name: String,
    /// The bdev it lives on.
    pub base_bdev: String,
    /// Clusters for data.
    pub total_data_clusters: u64,
    /// Free clusters.
    pub free_clusters: u64,
    /// Block size in bytes.
    pub block_size: u32,
    /// Cluster size in bytes.
    pub cluster_size: u64,
}

impl Lvstore {
    /// Capacity for data in bytes.
    pub fn capacity_bytes(&self) -> u64 {
        self.total_data_clusters.saturating_mul(self.cluster_size)
    }

    /// Free space in bytes.
    pub fn free_bytes(&self) -> u64 {
        self.free_clusters.saturating_mul(self.cluster_size)
    }
}

/// `bdev_lvol_delete_lvstore`. Deletes the lvols in it too, even when a raid uses them:
/// SPDK does no reference checking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BdevLvolDeleteLvstore {
    /// The lvstore.
    #[serde(flatten)]
    pub lvs: LvsRef,
}
rpc_request!(BdevLvolDeleteLvstore => "bdev_lvol_delete_lvstore", bool, write);

/// `bdev_lvol_create`: answers the new lvol's bdev name (its UUID); `lvs/lvol` becomes an
/// alias. A duplicate name is `-17`; too big is -32602 "No space left on device".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BdevLvolCreate {
    /// Name of the lvol within the lvstore.
    pub lvol_name: String,
    /// Size in MiB (rounded up to whole clusters).
    pub size_in_mib: u64,
    /// The lvstore.
    #[serde(flatten)]
    pub lvs: LvsRef,
    /// Allocate clusters on first write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thin_provision: Option<bool>,
    /// How clusters are cleared when the lvol is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear_method: Option<ClearMethod>,
}

impl BdevLvolCreate {
    /// A thick lvol of `size_in_mib` MiB in lvstore `lvs`.
    pub fn new(lvs: LvsRef, lvol_name: impl Into<String>, size_in_mib: u64) -> Self {
        Self {
            lvol_name: lvol_name.into(),
            size_in_mib,
            lvs,
            thin_provision: None,
            clear_method: None,
        }
    }

    /// Makes it thin-provisioned.
    pub fn thin(mut self) -> Self {
        self.thin_provision = Some(true);
        self
    }
}
rpc_request!(BdevLvolCreate => "bdev_lvol_create", String, write);

/// `bdev_lvol_get_lvols`: all lvols or those of one lvstore (`-19` when it is missing).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BdevLvolGetLvols {
    /// Only this lvstore, by UUID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lvs_uuid: Option<String>,
    /// Only this lvstore, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lvs_name: Option<String>,
}
rpc_request!(BdevLvolGetLvols => "bdev_lvol_get_lvols", Vec<Lvol>, read);

/// One lvol as `bdev_lvol_get_lvols` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lvol {
    /// `lvs/lvol`.
    pub alias: String,
    /// The lvol UUID (also its bdev name).
    pub uuid: String,
    /// The lvol name within the lvstore.
    pub name: String,
    /// Thin-provisioned.
    #[serde(default)]
    pub is_thin_provisioned: bool,
    /// Is a snapshot.
    #[serde(default)]
    pub is_snapshot: bool,
    /// Is a clone.
    #[serde(default)]
    pub is_clone: bool,
    /// Is a clone of an external snapshot.
    #[serde(default)]
    pub is_esnap_clone: bool,
    /// Missing its external snapshot.
    #[serde(default)]
    pub is_degraded: bool,
    /// Its lvstore.
    pub lvs: LvsInfo,
}

/// The lvstore of an [`Lvol`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LvsInfo {
    /// Name.
    pub name: String,
    /// UUID.
    pub uuid: String,
}

/// `bdev_lvol_resize`: grows or shrinks (rounded up to clusters). Too big is -32602
/// "No space left on device".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BdevLvolResize {
    /// The lvol (bdev name, UUID or `lvs/lvol`).
    pub name: String,
    /// New size in MiB.
    pub size_in_mib: u64,
}
rpc_request!(BdevLvolResize => "bdev_lvol_resize", bool, write);

/// `bdev_lvol_snapshot`: answers the snapshot's bdev name (UUID). The origin becomes a thin
/// clone of it. A name in use is -32602 "File exists".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BdevLvolSnapshot {
    /// The lvol to snapshot.
    pub lvol_name: String,
    /// Name of the snapshot (within the same lvstore).
    pub snapshot_name: String,
}
rpc_request!(BdevLvolSnapshot => "bdev_lvol_snapshot", String, write);

/// `bdev_lvol_clone`: answers the clone's bdev name (UUID). Cloning a non-snapshot is -32602
/// "Invalid argument".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BdevLvolClone {
    /// The snapshot.
    pub snapshot_name: String,
    /// Name of the clone (within the same lvstore).
    pub clone_name: String,
}
rpc_request!(BdevLvolClone => "bdev_lvol_clone", String, write);

/// `bdev_lvol_delete`. Missing is `-19`; a snapshot with clones is -32603 "Operation not
/// permitted".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BdevLvolDelete {
    /// The lvol (bdev name, UUID or `lvs/lvol`).
    pub name: String,
}
rpc_request!(BdevLvolDelete => "bdev_lvol_delete", bool, write);

/// `bdev_lvol_set_read_only`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BdevLvolSetReadOnly {
    /// The lvol (bdev name, UUID or `lvs/lvol`).
    pub name: String,
}
rpc_request!(BdevLvolSetReadOnly => "bdev_lvol_set_read_only", bool, write);
