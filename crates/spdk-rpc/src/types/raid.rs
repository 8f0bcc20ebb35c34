//! RAID bdevs (`bdev_raid_*`).

use serde::{Deserialize, Serialize};

use crate::request::rpc_request;
use crate::types::string_enum;

string_enum! {
    /// RAID level. SPDK accepts `"1"` for `"raid1"` and answers `"raid1"`.
    pub enum RaidLevel {
        /// Striping.
        Raid0 = "raid0" | "0",
        /// Mirroring (upstream needs at least 2 base bdevs).
        Raid1 = "raid1" | "1",
        /// Parity, full stripe writes only.
        Raid5f = "raid5f" | "5f",
        /// Concatenation.
        Concat = "concat",
    }
}

string_enum! {
    /// State of a raid bdev.
    pub enum RaidState {
        /// Usable (possibly degraded: compare discovered and total base bdevs).
        Online = "online",
        /// Waiting for base bdevs (e.g. created with a missing member).
        Configuring = "configuring",
        /// Failed.
        Offline = "offline",
    }
}

string_enum! {
    /// Which raid bdevs `bdev_raid_get_bdevs` lists.
    pub enum RaidCategory {
        /// All.
        All = "all",
        /// Online ones.
        Online = "online",
        /// Configuring ones.
        Configuring = "configuring",
        /// Offline ones.
        Offline = "offline",
    }
}

/// `bdev_raid_create`. raid1 with a non-zero `strip_size_kb` is `-22`; a name in use, or a
/// base bdev holding another raid's superblock, is `-17`; a base bdev claimed by another
/// module is `-1`. A missing base bdev leaves the raid `configuring`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BdevRaidCreate {
    /// Name of the raid bdev.
    pub name: String,
    /// Level.
    pub raid_level: RaidLevel,
    /// Base bdev names.
    pub base_bdevs: Vec<String>,
    /// Strip size; leave `None` for raid1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip_size_kb: Option<u32>,
    /// UUID of the raid bdev.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Write a superblock to the members (the raid then reassembles by itself on examine,
    /// and `bdev_raid_delete` does not wipe it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superblock: Option<bool>,
}

impl BdevRaidCreate {
    /// A raid1 over `base_bdevs`.
    pub fn raid1(name: impl Into<String>, base_bdevs: Vec<String>) -> Self {
        Self {
            name: name.into(),
            raid_level: RaidLevel::Raid1,
            base_bdevs,
            strip_size_kb: None,
            uuid: None,
            superblock: None,
        }
    }
}
rpc_request!(BdevRaidCreate => "bdev_raid_create", bool, write);

/// `bdev_raid_get_bdevs`; `category` is required by spdk_tgt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BdevRaidGetBdevs {
    /// Which ones.
    pub category: RaidCategory,
}

impl Default for BdevRaidGetBdevs {
    fn default() -> Self {
        Self {
            category: RaidCategory::All,
        }
    }
}
rpc_request!(BdevRaidGetBdevs => "bdev_raid_get_bdevs", Vec<RaidBdev>, read);

/// One raid bdev. SPDK sends `uuid` twice in each object; answers are decoded from a
/// `serde_json::Value`, which keeps one, so this struct never sees the duplicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaidBdev {
    /// Its name (empty inside `bdev_get_bdevs`' `driver_specific.raid`).
    #[serde(default)]
    pub name: String,
    /// Its UUID (all zeroes while configuring without superblock).
    #[serde(default)]
    pub uuid: Option<String>,
    /// Strip size (0 for raid1).
    #[serde(default)]
    pub strip_size_kb: u32,
    /// State.
    pub state: RaidState,
    /// Level.
    pub raid_level: RaidLevel,
    /// Whether members carry a superblock.
    #[serde(default)]
    pub superblock: bool,
    /// Number of member slots.
    pub num_base_bdevs: u32,
    /// Members present.
    pub num_base_bdevs_discovered: u32,
    /// Members usable.
    pub num_base_bdevs_operational: u32,
    /// A running background process (rebuild), if any.
    #[serde(default)]
    pub process: Option<RaidProcess>,
    /// Member slots.
    #[serde(default)]
    pub base_bdevs_list: Vec<RaidBaseBdev>,
}

impl RaidBdev {
    /// Online with fewer operational members than slots.
    pub fn is_degraded(&self) -> bool {
        self.state == RaidState::Online && self.num_base_bdevs_operational < self.num_base_bdevs
    }
}

/// A background process of a raid bdev, e.g. a rebuild after `bdev_raid_add_base_bdev`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaidProcess {
    /// `rebuild`.
    #[serde(rename = "type")]
    pub process_type: String,
    /// The member being written.
    pub target: String,
    /// How far it got.
    pub progress: RaidProgress,
}

/// Progress of a [`RaidProcess`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaidProgress {
    /// Blocks done.
    pub blocks: u64,
    /// Percent done.
    pub percent: u32,
}

/// A member slot of a raid bdev.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaidBaseBdev {
    /// The member's name; `None` for a slot whose member is gone.
    #[serde(default)]
    pub name: Option<String>,
    /// The member's UUID (zeroes when unknown).
    #[serde(default)]
    pub uuid: Option<String>,
    /// Whether the member is in use.
    #[serde(default)]
    pub is_configured: bool,
    /// Data offset in blocks (non-zero with a superblock).
    #[serde(default)]
    pub data_offset: u64,
    /// Data size in blocks.
    #[serde(default)]
    pub data_size: u64,
}

/// `bdev_raid_delete`. Missing is `-19 "raid bdev X not found"`. Does not wipe superblocks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BdevRaidDelete {
    /// The raid bdev.
    pub name: String,
}
rpc_request!(BdevRaidDelete => "bdev_raid_delete", bool, write);

/// `bdev_raid_add_base_bdev`: adds a member and starts a rebuild (see [`RaidBdev::process`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BdevRaidAddBaseBdev {
    /// The raid bdev.
    pub raid_bdev: String,
    /// The new member.
    pub base_bdev: String,
}
rpc_request!(BdevRaidAddBaseBdev => "bdev_raid_add_base_bdev", bool, write);

/// `bdev_raid_remove_base_bdev`: removes a member; `name` is the **member** bdev. A bdev
/// that is no member is `-19`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BdevRaidRemoveBaseBdev {
    /// The member bdev.
    pub name: String,
}
rpc_request!(BdevRaidRemoveBaseBdev => "bdev_raid_remove_base_bdev", bool, write);
