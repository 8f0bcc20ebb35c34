//! Generic bdev calls and aio bdevs: `bdev_get_bdevs`, `bdev_wait_for_examine`,
//! `bdev_aio_create`, `bdev_aio_delete`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::request::{RpcRequest, rpc_request};
use crate::types::nvme::TransportId;
use crate::types::raid::RaidBdev;

/// `bdev_get_bdevs`: all bdevs, or the one named (by name, alias or UUID).
///
/// A missing bdev is `-19 "No such device"` ([`crate::ErrorKind::NotFound`]); with `timeout`
/// spdk_tgt waits that many milliseconds for it to appear, then answers
/// `-110 "Connection timed out"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BdevGetBdevs {
    /// Name, alias or UUID of one bdev.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Milliseconds to wait for the bdev to appear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
}

impl BdevGetBdevs {
    /// All bdevs.
    pub fn all() -> Self {
        Self::default()
    }

    /// One bdev by name, alias or UUID.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
            timeout: None,
        }
    }
}

impl RpcRequest for BdevGetBdevs {
    const METHOD: &'static str = "bdev_get_bdevs";
    const IDEMPOTENT: bool = true;
    type Response = Vec<Bdev>;

    fn server_wait(&self) -> Option<Duration> {
        self.timeout.map(|ms| Duration::from_millis(ms.into()))
    }
}

/// One bdev as `bdev_get_bdevs` describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bdev {
    /// The bdev name (for an lvol: its UUID).
    pub name: String,
    /// Other names (for an lvol: `lvs/lvol`; for others often the UUID).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Module description, e.g. `AIO disk`, `Logical Volume`, `Raid Volume`, `NVMe disk`.
    #[serde(default)]
    pub product_name: String,
    /// Logical block size in bytes.
    pub block_size: u32,
    /// Size in blocks.
    pub num_blocks: u64,
    /// The bdev UUID.
    #[serde(default)]
    pub uuid: Option<String>,
    /// Whether a module (lvstore, raid...) holds it.
    #[serde(default)]
    pub claimed: bool,
    /// How it is claimed, when claimed.
    #[serde(default)]
    pub claim_type: Option<String>,
    /// I/O types it supports (`read`, `write`, `unmap`, `write_zeroes`...).
    #[serde(default)]
    pub supported_io_types: BTreeMap<String, bool>,
    /// Module-specific details.
    #[serde(default)]
    pub driver_specific: DriverSpecific,
}

impl Bdev {
    /// Size in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.num_blocks.saturating_mul(self.block_size.into())
    }
}

/// `driver_specific` of a bdev: the modules this crate uses, the rest kept as JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DriverSpecific {
    /// For aio bdevs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aio: Option<AioInfo>,
    /// For lvol bdevs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lvol: Option<LvolBdevInfo>,
    /// For raid bdevs (the same shape as a `bdev_raid_get_bdevs` entry, without `name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raid: Option<RaidBdev>,
    /// For NVMe bdevs: one entry per path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvme: Option<Vec<NvmeBdevPath>>,
    /// Everything else (e.g. `mp_policy`, other modules).
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `driver_specific.aio`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AioInfo {
    /// The file or block device.
    pub filename: String,
    /// Whether `block_size` was given at creation.
    #[serde(default)]
    pub block_size_override: bool,
    /// Read-only bdev.
    #[serde(default)]
    pub readonly: bool,
    /// Unmap/write-zeroes by fallocate.
    #[serde(default)]
    pub fallocate: bool,
}

/// `driver_specific.lvol`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LvolBdevInfo {
    /// UUID of the lvstore.
    pub lvol_store_uuid: String,
    /// The bdev under the lvstore.
    #[serde(default)]
    pub base_bdev: String,
    /// Thin-provisioned.
    #[serde(default)]
    pub thin_provision: bool,
    /// Clusters allocated so far.
    #[serde(default)]
    pub num_allocated_clusters: u64,
    /// Is a snapshot.
    #[serde(default)]
    pub snapshot: bool,
    /// Is a clone.
    #[serde(default)]
    pub clone: bool,
    /// Is a clone of an external snapshot.
    #[serde(default)]
    pub esnap_clone: bool,
    /// For a clone: its snapshot's name.
    #[serde(default)]
    pub base_snapshot: Option<String>,
    /// For a snapshot: its clones' names.
    #[serde(default)]
    pub clones: Vec<String>,
}

/// One path of an NVMe bdev (`driver_specific.nvme[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NvmeBdevPath {
    /// Where the controller is.
    pub trid: TransportId,
    /// Identify-controller data, as received.
    #[serde(default)]
    pub ctrlr_data: Option<Value>,
    /// Namespace data, as received.
    #[serde(default)]
    pub ns_data: Option<Value>,
}

/// `bdev_wait_for_examine`: answers `true` once every bdev module has examined every bdev
/// (call it after `bdev_aio_create` on a device that holds an lvstore, before looking for it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BdevWaitForExamine;
rpc_request!(BdevWaitForExamine => "bdev_wait_for_examine", bool, read);

/// `bdev_aio_create`: answers the new bdev's name.
///
/// A missing file is `-2`; a name in use is `-22 "Invalid argument"` (SPDK does not say
/// "exists"). SPDK does not notice the same device opened twice under two names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BdevAioCreate {
    /// Name of the new bdev.
    pub name: String,
    /// File or block device path.
    pub filename: String,
    /// Block size; auto-detected for block devices, 512 for regular files when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_size: Option<u32>,
    /// Open read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly: Option<bool>,
    /// Implement unmap/write-zeroes with fallocate (blocks the reactor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallocate: Option<bool>,
    /// UUID of the bdev.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Submit with `RWF_NOWAIT`. Only from SPDK v26.01; omitted for older targets (see
    /// [`crate::version`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nowait: Option<bool>,
}

impl BdevAioCreate {
    /// An aio bdev `name` on `filename` with default options.
    pub fn new(name: impl Into<String>, filename: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            filename: filename.into(),
            ..Self::default()
        }
    }
}
rpc_request!(BdevAioCreate => "bdev_aio_create", String, write);

/// `bdev_aio_delete`. A missing bdev is `-19`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BdevAioDelete {
    /// The aio bdev.
    pub name: String,
}

impl BdevAioDelete {
    /// Deletes aio bdev `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }
}
rpc_request!(BdevAioDelete => "bdev_aio_delete", bool, write);
