//! What is wanted on this node (pure, validated): a replica (lvol and its export) or a
//! volume's engine (controllers, raid1, frontend). Persisted as JSON under the state
//! directory, with the port chosen for each subsystem.

use serde::{Deserialize, Serialize};

use super::names;

/// Where a subsystem listens and who may connect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listen {
    /// The node's data address.
    pub address: String,
    /// The port chosen from the configured range.
    pub port: u16,
    /// Host NQNs allowed to connect (allow_any_host is always false).
    pub hosts: Vec<String>,
}

/// A replica as wanted on its node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaSpec {
    /// `<volume>-r-<8 hex>`.
    pub replica: String,
    /// The disk whose lvstore (`v2e-lvs-<disk>`) holds it.
    pub disk: String,
    /// Size in MiB (grows only).
    pub size_mib: u64,
    /// Thin-provisioned (the default).
    pub thin: bool,
    /// The NVMe-oF export, when wanted.
    pub export: Option<Listen>,
}

impl ReplicaSpec {
    /// The replica's volume.
    pub fn volume(&self) -> &str {
        names::replica_volume(&self.replica).unwrap_or(&self.replica)
    }

    /// The lvol's alias.
    pub fn alias(&self) -> String {
        names::lvol_alias(&self.disk, &self.replica)
    }
}

/// One member of a volume's engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MemberSpec {
    /// A replica on this node, used directly.
    Local {
        /// The replica.
        replica: String,
        /// Its disk.
        disk: String,
    },
    /// A replica on another node, reached over NVMe-oF TCP.
    Remote {
        /// The replica.
        replica: String,
        /// Its export's address.
        address: String,
        /// Its export's port.
        port: u16,
    },
}

impl MemberSpec {
    /// The replica.
    pub fn replica(&self) -> &str {
        match self {
            Self::Local { replica, .. } | Self::Remote { replica, .. } => replica,
        }
    }

    /// The bdev the raid (or the frontend) uses.
    pub fn bdev(&self) -> String {
        match self {
            Self::Local { replica, disk } => names::lvol_alias(disk, replica),
            Self::Remote { replica, .. } => names::controller_bdev(replica),
        }
    }
}

/// How the attach node's NVMe controllers ride out a lost path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconnect {
    /// Seconds between reconnect attempts.
    pub reconnect_delay_sec: u32,
    /// Seconds before a lost controller is deleted (the raid then degrades); -1 = never.
    pub ctrlr_loss_timeout_sec: i32,
    /// Seconds before I/O fails while reconnecting.
    pub fast_io_fail_timeout_sec: u32,
}

impl Default for Reconnect {
    /// Longhorn's values for replicas: 2 s, 15 s, 10 s.
    fn default() -> Self {
        Self {
            reconnect_delay_sec: 2,
            ctrlr_loss_timeout_sec: 15,
            fast_io_fail_timeout_sec: 10,
        }
    }
}

impl Reconnect {
    /// SPDK's rule: `reconnect_delay <= fast_io_fail <= ctrlr_loss` (unless -1 = never),
    /// and a positive delay when the loss timeout is not 0.
    pub fn check(&self) -> Result<(), String> {
        let Self {
            reconnect_delay_sec: d,
            ctrlr_loss_timeout_sec: l,
            fast_io_fail_timeout_sec: f,
        } = *self;
        if l < -1 {
            return Err(format!(
                "ctrlr_loss_timeout_sec must be -1 (never) or >= 0, got {l}"
            ));
        }
        if l == 0 {
            return Ok(());
        }
        if d == 0 {
            return Err(
                "reconnect_delay_sec must be > 0 when ctrlr_loss_timeout_sec is not 0".into(),
            );
        }
        if l > 0 && i64::from(d) > i64::from(l) {
            return Err(format!(
                "reconnect_delay_sec ({d}) must not exceed ctrlr_loss_timeout_sec ({l})"
            ));
        }
        if f != 0 {
            if l > 0 && i64::from(f) > i64::from(l) {
                return Err(format!(
                    "fast_io_fail_timeout_sec ({f}) must not exceed ctrlr_loss_timeout_sec ({l})"
                ));
            }
            if d > f {
                return Err(format!(
                    "reconnect_delay_sec ({d}) must not exceed fast_io_fail_timeout_sec ({f})"
                ));
            }
        }
        Ok(())
    }
}

/// A volume's engine as wanted on its attach node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineSpec {
    /// The volume.
    pub volume: String,
    /// The host NQN this node presents to the replicas' exports.
    pub host_nqn: String,
    /// The replicas, in raid slot order.
    pub members: Vec<MemberSpec>,
    /// The frontend subsystem's listener and hosts.
    pub frontend: Listen,
    /// Controller path-loss policy.
    pub reconnect: Reconnect,
}

impl EngineSpec {
    /// The bdev the frontend exports: the raid, or the only member.
    pub fn target_bdev(&self) -> String {
        match self.members.as_slice() {
            [one] => one.bdev(),
            _ => names::raid_name(&self.volume),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_rules() {
        assert!(Reconnect::default().check().is_ok());
        let r = |d, l, f| Reconnect {
            reconnect_delay_sec: d,
            ctrlr_loss_timeout_sec: l,
            fast_io_fail_timeout_sec: f,
        };
        assert!(r(0, 0, 0).check().is_ok());
        assert!(r(1, -1, 0).check().is_ok());
        assert!(r(1, 2, 1).check().is_ok());
        assert!(r(0, 5, 0).check().is_err());
        assert!(r(3, 2, 0).check().is_err());
        assert!(r(1, 2, 3).check().is_err());
        assert!(r(2, 5, 1).check().is_err());
        assert!(r(1, -2, 0).check().is_err());
    }
}
