//! `storage_class`: how volumes of a class are laid out and exposed.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::validate::{ValidationErrors, check_object_name};

/// Where a volume's data should live relative to the node it is attached to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DataLocality {
    /// Replicas anywhere.
    #[default]
    Disabled,
    /// Prefer a replica on the attach node.
    BestEffort,
    /// The single replica must be on the attach node.
    StrictLocal,
}

/// How the attach node exposes a volume.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Frontend {
    /// An NVMe-oF TCP subsystem on the attach node (consumers connect to it).
    #[default]
    Nvmf,
    /// As `nvmf`, plus a kernel `nvme connect` on the attach node giving a block device.
    Block,
    /// A ublk block device on the attach node.
    Ublk,
}

impl Frontend {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nvmf => "nvmf",
            Self::Block => "block",
            Self::Ublk => "ublk",
        }
    }
}

/// Filesystem created on the volume by a consumer that formats it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FsType {
    /// ext4.
    #[default]
    Ext4,
    /// XFS.
    Xfs,
}

/// Access mode, as in Kubernetes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AccessMode {
    /// ReadWriteOnce: one attach node.
    #[default]
    Rwo,
    /// ReadWriteMany: not available with the V2 data engine.
    Rwx,
}

/// A storage class. Its parameters are immutable once volumes use them, so every change
/// replaces the class (which is refused while volumes reference it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StorageClass {
    /// Class name; also the resource id.
    #[schemars(extend("x-force-new" = true))]
    pub name: String,
    /// Replicas per volume, 1 to 20, each on a different node.
    #[schemars(extend("x-force-new" = true))]
    #[serde(default = "default_replicas")]
    pub number_of_replicas: i64,
    /// Data engine: only "v2" (the SPDK engine v2engine manages).
    #[schemars(extend("x-force-new" = true))]
    #[serde(default = "default_data_engine")]
    pub data_engine: String,
    /// Minutes after which a failed replica is considered stale and rebuilt elsewhere.
    #[schemars(extend("x-force-new" = true))]
    #[serde(default = "default_stale_timeout")]
    pub stale_replica_timeout: i64,
    /// Filesystem for consumers that format the volume: ext4 or xfs.
    #[schemars(extend("x-force-new" = true))]
    #[serde(default)]
    pub fs_type: FsType,
    /// Extra mkfs parameters for consumers that format the volume.
    #[schemars(extend("x-force-new" = true))]
    #[serde(default)]
    pub mkfs_params: String,
    /// Live migration between nodes; not available with the V2 data engine.
    #[schemars(extend("x-force-new" = true))]
    #[serde(default)]
    pub migratable: bool,
    /// rwo; rwx is not available with the V2 data engine.
    #[schemars(extend("x-force-new" = true))]
    #[serde(default)]
    pub access_mode: AccessMode,
    /// Thin replicas allocate clusters on first write; thick ones reserve the whole size.
    #[schemars(extend("x-force-new" = true))]
    #[serde(default = "default_true")]
    pub thin_provision: bool,
    /// disabled, best-effort or strict-local (needs exactly one replica).
    #[schemars(extend("x-force-new" = true))]
    #[serde(default)]
    pub data_locality: DataLocality,
    /// Replicas only on disks carrying all these tags.
    #[schemars(extend("x-force-new" = true))]
    #[serde(default)]
    pub disk_selector: Vec<String>,
    /// Replicas only on nodes carrying all these tags.
    #[schemars(extend("x-force-new" = true))]
    #[serde(default)]
    pub node_selector: Vec<String>,
    /// nvmf, block or ublk.
    #[schemars(extend("x-force-new" = true))]
    #[serde(default)]
    pub frontend: Frontend,
    /// Encryption at rest; not available yet.
    #[schemars(extend("x-force-new" = true))]
    #[serde(default)]
    pub encrypted: bool,
}

fn default_replicas() -> i64 {
    3
}
fn default_data_engine() -> String {
    "v2".into()
}
fn default_stale_timeout() -> i64 {
    2880
}
fn default_true() -> bool {
    true
}

impl StorageClass {
    /// A class named `name` with every default.
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_string(),
            number_of_replicas: default_replicas(),
            data_engine: default_data_engine(),
            stale_replica_timeout: default_stale_timeout(),
            fs_type: FsType::default(),
            mkfs_params: String::new(),
            migratable: false,
            access_mode: AccessMode::default(),
            thin_provision: true,
            data_locality: DataLocality::default(),
            disk_selector: Vec::new(),
            node_selector: Vec::new(),
            frontend: Frontend::default(),
            encrypted: false,
        }
    }

    /// Checks every attribute; errors carry the attribute path.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errs = ValidationErrors::default();
        if let Err(e) = check_object_name(&self.name) {
            errs.push("name", e);
        }
        if !(1..=20).contains(&self.number_of_replicas) {
            errs.push(
                "number_of_replicas",
                format!("must be between 1 and 20, got {}", self.number_of_replicas),
            );
        }
        if self.data_engine != "v2" {
            errs.push(
                "data_engine",
                format!(
                    "{:?} is not supported: v2engine manages the \"v2\" data engine only",
                    self.data_engine
                ),
            );
        }
        if self.stale_replica_timeout < 1 {
            errs.push(
                "stale_replica_timeout",
                format!(
                    "must be at least 1 minute, got {}",
                    self.stale_replica_timeout
                ),
            );
        }
        if self.migratable {
            errs.push(
                "migratable",
                "live migration is not available with data engine v2; set false",
            );
        }
        if self.access_mode == AccessMode::Rwx {
            errs.push(
                "access_mode",
                "rwx is not available with data engine v2; use \"rwo\"",
            );
        }
        if self.data_locality == DataLocality::StrictLocal && self.number_of_replicas != 1 {
            errs.push(
                "data_locality",
                format!(
                    "strict-local needs number_of_replicas = 1, got {}",
                    self.number_of_replicas
                ),
            );
        }
        if self.encrypted {
            errs.push("encrypted", "encryption is not available yet; set false");
        }
        if self.mkfs_params.contains(['\n', '\0']) {
            errs.push("mkfs_params", "must be a single line");
        }
        check_tags(&mut errs, "disk_selector", &self.disk_selector);
        check_tags(&mut errs, "node_selector", &self.node_selector);
        errs.into_result()
    }
}

/// Tags: 1–63 characters, no whitespace or commas.
pub fn check_tags(errs: &mut ValidationErrors, attr: &str, tags: &[String]) {
    for (i, t) in tags.iter().enumerate() {
        if t.is_empty() || t.len() > 63 || t.chars().any(|c| c.is_whitespace() || c == ',') {
            errs.push(
                format!("{attr}[{i}]"),
                format!("tag {t:?} must be 1 to 63 characters without spaces or commas"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_longhorn() {
        let c: StorageClass = serde_json::from_str(r#"{"name": "fast"}"#).unwrap();
        assert_eq!(c, StorageClass::named("fast"));
        assert_eq!(c.number_of_replicas, 3);
        assert_eq!(c.stale_replica_timeout, 2880);
        assert!(c.thin_provision);
        assert!(c.validate().is_ok());
    }

    fn paths(c: &StorageClass) -> Vec<String> {
        c.validate()
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| e.path)
            .collect()
    }

    #[test]
    fn v2_restrictions() {
        let c = StorageClass {
            migratable: true,
            ..StorageClass::named("x")
        };
        assert_eq!(paths(&c), ["migratable"]);
        let c = StorageClass {
            access_mode: AccessMode::Rwx,
            ..StorageClass::named("x")
        };
        assert_eq!(paths(&c), ["access_mode"]);
        let c = StorageClass {
            data_engine: "v1".into(),
            ..StorageClass::named("x")
        };
        assert_eq!(paths(&c), ["data_engine"]);
    }

    #[test]
    fn replica_bounds() {
        for n in [0, 21, -1] {
            let c = StorageClass {
                number_of_replicas: n,
                ..StorageClass::named("x")
            };
            assert_eq!(paths(&c), ["number_of_replicas"]);
        }
        for n in [1, 20] {
            let c = StorageClass {
                number_of_replicas: n,
                ..StorageClass::named("x")
            };
            assert!(c.validate().is_ok());
        }
    }

    #[test]
    fn strict_local_needs_one_replica() {
        let c = StorageClass {
            data_locality: DataLocality::StrictLocal,
            ..StorageClass::named("x")
        };
        assert_eq!(paths(&c), ["data_locality"]);
        let c = StorageClass {
            number_of_replicas: 1,
            ..c
        };
        assert!(c.validate().is_ok());
    }

    #[test]
    fn enum_names_are_as_documented() {
        let c: StorageClass = serde_json::from_str(
            r#"{"name": "x", "data_locality": "best-effort", "frontend": "block", "fs_type": "xfs"}"#,
        )
        .unwrap();
        assert_eq!(c.data_locality, DataLocality::BestEffort);
        assert_eq!(c.frontend, Frontend::Block);
        assert!(
            serde_json::from_str::<StorageClass>(r#"{"name": "x", "frontend": "iscsi"}"#).is_err()
        );
    }
}
