//! What the engine has, as the volume planner sees it (pure data, filled by
//! [`super::apply::observe`]): only the fields the plans and states need, so the planner can be
//! tested with hand-made values.

use serde::{Deserialize, Serialize};

/// A bdev's identity: every name SPDK resolves to it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bdev {
    /// Its name (an lvol's is its UUID).
    pub name: String,
    /// Aliases (`lvs/lvol` for an lvol).
    pub aliases: Vec<String>,
    /// UUID.
    pub uuid: Option<String>,
    /// Size.
    pub size_bytes: u64,
}

impl Bdev {
    /// True when `n` names this bdev.
    pub fn is_named(&self, n: &str) -> bool {
        self.name == n || self.aliases.iter().any(|a| a == n) || self.uuid.as_deref() == Some(n)
    }
}

/// An lvstore.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lvstore {
    /// Name.
    pub name: String,
    /// UUID.
    pub uuid: String,
    /// Cluster size in bytes.
    pub cluster_size: u64,
    /// Free bytes.
    pub free_bytes: u64,
}

/// An lvol.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lvol {
    /// Name within its lvstore.
    pub name: String,
    /// Its lvstore's name.
    pub lvs: String,
    /// UUID (its bdev name).
    pub uuid: String,
    /// Thin-provisioned.
    pub thin: bool,
    /// Size in MiB (whole clusters).
    pub size_mib: u64,
}

impl Lvol {
    /// `lvs/name`.
    pub fn alias(&self) -> String {
        format!("{}/{}", self.lvs, self.name)
    }
}

/// A TCP listener of a subsystem.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Listener {
    /// Address.
    pub address: String,
    /// Port as SPDK reports it.
    pub port: String,
}

/// An NVMe-oF subsystem.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subsystem {
    /// NQN.
    pub nqn: String,
    /// Any host may connect.
    pub allow_any_host: bool,
    /// Allowed host NQNs.
    pub hosts: Vec<String>,
    /// TCP listeners (other transports are listed with an empty address).
    pub listeners: Vec<Listener>,
    /// Bdev names of the namespaces.
    pub namespaces: Vec<String>,
}

/// One path of an NVMe controller.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerPath {
    /// `enabled`, `resetting`, `reconnect_is_delayed`, `failed`, ...
    pub state: String,
    /// Target address.
    pub address: String,
    /// Target port.
    pub port: String,
    /// Subsystem NQN.
    pub subnqn: String,
    /// Host NQN presented.
    pub hostnqn: String,
}

/// An NVMe controller (initiator side).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Controller {
    /// Name.
    pub name: String,
    /// Paths.
    pub paths: Vec<ControllerPath>,
}

impl Controller {
    /// `enabled` when a path is, else the first path's state (`none` without paths).
    pub fn state(&self) -> &str {
        if self.paths.iter().any(|p| p.state == "enabled") {
            return "enabled";
        }
        self.paths.first().map_or("none", |p| p.state.as_str())
    }
}

/// A member slot of a raid.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaidSlot {
    /// The member's name, `None` for an empty (failed or removed) slot.
    pub name: Option<String>,
    /// The member's UUID, when known.
    pub uuid: Option<String>,
    /// Present and in use.
    pub configured: bool,
    /// Bytes at the start of the member the raid keeps for itself (its superblock; 0
    /// without one): the member's size less this is what it gives the raid.
    pub data_offset_bytes: u64,
}

/// A raid bdev.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Raid {
    /// Name.
    pub name: String,
    /// `online`, `configuring`, `offline`.
    pub state: String,
    /// Level, e.g. `raid1`.
    pub level: String,
    /// Usable members.
    pub operational: u32,
    /// Slots.
    pub slots: Vec<RaidSlot>,
    /// A rebuild: target member and percent done.
    pub rebuild: Option<(String, u32)>,
    /// Its size as a bdev (SPDK's raid1: the smallest present member's data size), 0 while
    /// it is not a bdev (configuring, offline).
    pub size_bytes: u64,
}

/// Everything the planner reads from one engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// All bdevs.
    pub bdevs: Vec<Bdev>,
    /// Lvstores.
    pub lvstores: Vec<Lvstore>,
    /// Lvols.
    pub lvols: Vec<Lvol>,
    /// NVMe-oF subsystems (discovery included).
    pub subsystems: Vec<Subsystem>,
    /// NVMe controllers.
    pub controllers: Vec<Controller>,
    /// Raids.
    pub raids: Vec<Raid>,
    /// The TCP transport exists.
    pub tcp_transport: bool,
}

impl Observed {
    /// The bdev `n` names.
    pub fn bdev(&self, n: &str) -> Option<&Bdev> {
        self.bdevs
            .iter()
            .find(|b| b.name == n)
            .or_else(|| self.bdevs.iter().find(|b| b.is_named(n)))
    }

    /// Every name of the bdev `n` names (just `n` when there is none yet).
    pub fn identities(&self, n: &str) -> Vec<String> {
        match self.bdev(n) {
            Some(b) => {
                let mut v = vec![b.name.clone()];
                v.extend(b.aliases.iter().cloned());
                v.extend(b.uuid.iter().cloned());
                if !v.iter().any(|x| x == n) {
                    v.push(n.to_string());
                }
                v
            }
            None => vec![n.to_string()],
        }
    }

    /// The lvstore named `name`.
    pub fn lvstore(&self, name: &str) -> Option<&Lvstore> {
        self.lvstores.iter().find(|l| l.name == name)
    }

    /// The lvols named `name`, on any lvstore.
    pub fn lvols_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Lvol> + 'a {
        self.lvols.iter().filter(move |l| l.name == name)
    }

    /// The subsystem `nqn`.
    pub fn subsystem(&self, nqn: &str) -> Option<&Subsystem> {
        self.subsystems.iter().find(|s| s.nqn == nqn)
    }

    /// The controller `name`.
    pub fn controller(&self, name: &str) -> Option<&Controller> {
        self.controllers.iter().find(|c| c.name == name)
    }

    /// The raid `name`.
    pub fn raid(&self, name: &str) -> Option<&Raid> {
        self.raids.iter().find(|r| r.name == name)
    }

    /// What the bdev `member` gives raid `raid`: its size less the raid's data offset on it
    /// (its whole size when it is not a member); `None` when there is no such bdev.
    pub fn member_capacity(&self, raid: Option<&Raid>, member: &str) -> Option<u64> {
        let size = self.bdev(member)?.size_bytes;
        let ids = self.identities(member);
        let offset = raid
            .and_then(|r| {
                r.slots.iter().find(|s| {
                    s.name.as_ref().is_some_and(|n| ids.contains(n))
                        || s.uuid.as_ref().is_some_and(|u| ids.contains(u))
                })
            })
            .map_or(0, |s| s.data_offset_bytes);
        Some(size.saturating_sub(offset))
    }

    /// The raids having a slot whose member is one of `ids`.
    pub fn raids_using<'a>(&'a self, ids: &'a [String]) -> impl Iterator<Item = &'a Raid> + 'a {
        self.raids.iter().filter(move |r| {
            r.slots.iter().any(|s| {
                s.name.as_ref().is_some_and(|n| ids.contains(n))
                    || s.uuid.as_ref().is_some_and(|u| ids.contains(u))
            })
        })
    }
}
