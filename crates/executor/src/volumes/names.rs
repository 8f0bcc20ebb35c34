//! The names v2engine gives to SPDK objects of volumes (pure).
//!
//! | object | name |
//! |---|---|
//! | replica lvol | `<volume>-r-<8 hex>` on lvstore `v2e-lvs-<disk>` (alias `v2e-lvs-<disk>/<replica>`) |
//! | replica export | subsystem `nqn.2026-11.io.v2engine:<replica>` |
//! | remote replica on the attach node | NVMe controller `<replica>`, bdev `<replica>n1` |
//! | raid1 | `<volume>-raid` |
//! | frontend | subsystem `nqn.2026-11.io.v2engine:<volume>` |
//!
//! A volume name that itself looks like a replica name is refused, so every name maps back
//! to exactly one volume ([`owner_of_lvol`] and friends), which is how orphans are found.

use model::NQN_PREFIX;
use model::validate::check_object_name;

pub use crate::engine::usage::replica_volume;

/// Suffix of a volume's raid bdev.
pub const RAID_SUFFIX: &str = "-raid";

/// The lvstore of disk `disk`.
pub fn lvstore_of(disk: &str) -> String {
    format!("v2e-lvs-{disk}")
}

/// The alias of replica `replica`'s lvol on disk `disk`.
pub fn lvol_alias(disk: &str, replica: &str) -> String {
    format!("{}/{replica}", lvstore_of(disk))
}

/// The export subsystem of a replica.
pub fn replica_nqn(replica: &str) -> String {
    format!("{NQN_PREFIX}{replica}")
}

/// The frontend subsystem of a volume.
pub fn volume_nqn(volume: &str) -> String {
    format!("{NQN_PREFIX}{volume}")
}

/// The raid1 bdev of a volume.
pub fn raid_name(volume: &str) -> String {
    format!("{volume}{RAID_SUFFIX}")
}

/// The NVMe controller of a remote replica on the attach node.
pub fn controller_name(replica: &str) -> String {
    replica.to_string()
}

/// The bdev of a remote replica's namespace (`<controller>n1`).
pub fn controller_bdev(replica: &str) -> String {
    format!("{}n1", controller_name(replica))
}

/// Serial number of a subsystem: `V2E` and 16 hex digits of a hash of its NQN (SPDK allows
/// 20 printable characters).
pub fn serial_number(nqn: &str) -> String {
    format!("V2E{:016x}", fnv1a(nqn.as_bytes()))
}

/// FNV-1a, 64 bits: a stable hash for serial numbers and port choices.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Checks a volume name: an object name that does not look like a replica name.
pub fn check_volume_name(volume: &str) -> Result<(), String> {
    check_object_name(volume)?;
    if replica_volume(volume).is_some() {
        return Err(format!(
            "{volume:?} ends like a replica name (-r-<8 hex>); choose another volume name"
        ));
    }
    Ok(())
}

/// Checks a replica name `<volume>-r-<8 hex>` and returns its volume.
pub fn check_replica_name(replica: &str) -> Result<&str, String> {
    let Some(volume) = replica_volume(replica) else {
        return Err(format!(
            "{replica:?} is not a replica name: <volume>-r-<8 lowercase hex digits>"
        ));
    };
    check_volume_name(volume).map_err(|e| format!("{replica:?}: volume {e}"))?;
    Ok(volume)
}

/// Checks a host NQN: `nqn.` followed by printable ASCII without spaces, at most 223 bytes
/// (the NVMe limit).
pub fn check_host_nqn(nqn: &str) -> Result<(), String> {
    if !nqn.starts_with("nqn.") || nqn.len() <= 4 {
        return Err(format!(
            "{nqn:?} is not an NQN (nqn.<yyyy-mm>.<domain>:<name>)"
        ));
    }
    if nqn.len() > 223 {
        return Err(format!("{nqn:?} is longer than 223 bytes"));
    }
    if let Some(c) = nqn.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!("{nqn:?} contains {c:?}"));
    }
    Ok(())
}

/// The volume of an lvol with our naming (`<volume>-r-<8 hex>`).
pub fn owner_of_lvol(lvol: &str) -> Option<&str> {
    replica_volume(lvol)
}

/// What a subsystem with our prefix exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubsystemRole<'a> {
    /// A replica's export: the replica and its volume.
    Replica {
        /// The replica.
        replica: &'a str,
        /// Its volume.
        volume: &'a str,
    },
    /// A volume's frontend.
    Frontend {
        /// The volume.
        volume: &'a str,
    },
}

impl<'a> SubsystemRole<'a> {
    /// The volume.
    pub fn volume(self) -> &'a str {
        match self {
            Self::Replica { volume, .. } | Self::Frontend { volume } => volume,
        }
    }
}

/// What a subsystem NQN is, when it has our prefix.
pub fn subsystem_role(nqn: &str) -> Option<SubsystemRole<'_>> {
    let rest = nqn.strip_prefix(NQN_PREFIX)?;
    if rest.is_empty() {
        return None;
    }
    Some(match replica_volume(rest) {
        Some(volume) => SubsystemRole::Replica {
            replica: rest,
            volume,
        },
        None => SubsystemRole::Frontend { volume: rest },
    })
}

/// The volume of a raid bdev with our naming.
pub fn owner_of_raid(raid: &str) -> Option<&str> {
    raid.strip_suffix(RAID_SUFFIX).filter(|v| !v.is_empty())
}

/// The replica and volume of an NVMe controller with our naming.
pub fn owner_of_controller(name: &str) -> Option<(&str, &str)> {
    replica_volume(name).map(|v| (name, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_owners_round_trip() {
        let r = "vol-1-r-0a1b2c3d";
        assert_eq!(check_replica_name(r), Ok("vol-1"));
        assert_eq!(lvol_alias("d1", r), "v2e-lvs-d1/vol-1-r-0a1b2c3d");
        assert_eq!(
            subsystem_role(&replica_nqn(r)),
            Some(SubsystemRole::Replica {
                replica: r,
                volume: "vol-1"
            })
        );
        assert_eq!(
            subsystem_role(&volume_nqn("vol-1")),
            Some(SubsystemRole::Frontend { volume: "vol-1" })
        );
        assert_eq!(subsystem_role("nqn.2014-08.org.nvmexpress.discovery"), None);
        assert_eq!(owner_of_raid(&raid_name("vol-1")), Some("vol-1"));
        assert_eq!(owner_of_raid("-raid"), None);
        assert_eq!(owner_of_controller(r), Some((r, "vol-1")));
        assert_eq!(controller_bdev(r), "vol-1-r-0a1b2c3dn1");
        assert_eq!(owner_of_lvol("scratch"), None);
    }

    #[test]
    fn bad_names_are_refused() {
        assert!(check_replica_name("vol-1-r-0A1B2C3D").is_err());
        assert!(check_replica_name("vol-1-r-0a1b2c3").is_err());
        assert!(check_replica_name("Vol-r-0a1b2c3d").is_err());
        assert!(check_replica_name("a-r-00000000-r-0a1b2c3d").is_err());
        assert!(check_volume_name("x-r-0a1b2c3d").is_err());
        assert!(check_volume_name("vol-1").is_ok());
        assert!(check_host_nqn("nqn.2026-11.io.v2engine:host:fleet").is_ok());
        assert!(check_host_nqn("host").is_err());
        assert!(check_host_nqn("nqn.a b").is_err());
        assert_eq!(serial_number("x").len(), 19);
    }
}
