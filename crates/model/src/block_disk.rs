//! `block_disk`: a raw disk handed to the engine (an aio bdev with an lvstore on it).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::storage_class::check_tags;
use crate::validate::{ValidationErrors, check_object_name};

/// How SPDK opens the disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DiskDriver {
    /// `aio` for every disk today; `nvme` (userspace driver) is chosen only when asked.
    #[default]
    Auto,
    /// Linux AIO on the block device (`bdev_aio_create`).
    Aio,
    /// SPDK's userspace NVMe driver (the device is unbound from the kernel).
    Nvme,
}

/// A disk on one node. Id `node/name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BlockDisk {
    /// Node the disk is attached to.
    #[schemars(extend("x-force-new" = true))]
    pub node: String,
    /// Disk name, unique on its node.
    #[schemars(extend("x-force-new" = true))]
    pub name: String,
    /// Device path; prefer a stable `/dev/disk/by-id/...` name.
    #[schemars(extend("x-force-new" = true))]
    pub path: String,
    /// auto, aio or nvme.
    #[schemars(extend("x-force-new" = true))]
    #[serde(default)]
    pub driver: DiskDriver,
    /// lvstore cluster size in MiB (a power of two).
    #[schemars(extend("x-force-new" = true))]
    #[serde(default = "default_cluster_mib")]
    pub cluster_size_mib: i64,
    /// New replicas may be placed on this disk.
    #[serde(default = "default_true")]
    pub allow_scheduling: bool,
    /// Move replicas off this disk.
    #[serde(default)]
    pub eviction_requested: bool,
    /// Bytes kept free for other uses; placement never counts them.
    #[serde(default)]
    pub storage_reserved_bytes: i64,
    /// Disk tags, matched by a storage class's `disk_selector`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Create the lvstore even if the device has a filesystem signature. DESTROYS its data.
    #[serde(default)]
    pub force_format: bool,
}

fn default_cluster_mib() -> i64 {
    1
}
fn default_true() -> bool {
    true
}

impl BlockDisk {
    /// The resource id, `node/name`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.node, self.name)
    }

    /// The aio bdev name on the node: `v2e-<name>`.
    pub fn bdev_name(&self) -> String {
        format!("v2e-{}", self.name)
    }

    /// The lvstore name on the node: `v2e-lvs-<name>`.
    pub fn lvstore_name(&self) -> String {
        format!("v2e-lvs-{}", self.name)
    }

    /// Checks every attribute; errors carry the attribute path.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errs = ValidationErrors::default();
        if let Err(e) = check_object_name(&self.node) {
            errs.push("node", e);
        }
        if let Err(e) = check_object_name(&self.name) {
            errs.push("name", e);
        }
        if let Err(e) = check_device_path(&self.path) {
            errs.push("path", e);
        }
        let c = self.cluster_size_mib;
        if !(1..=1024).contains(&c) || c & (c - 1) != 0 {
            errs.push(
                "cluster_size_mib",
                format!("must be a power of two from 1 to 1024 MiB, got {c}"),
            );
        }
        if self.storage_reserved_bytes < 0 {
            errs.push(
                "storage_reserved_bytes",
                format!("must not be negative, got {}", self.storage_reserved_bytes),
            );
        }
        check_tags(&mut errs, "tags", &self.tags);
        errs.into_result()
    }
}

/// A device path: absolute, under /dev, no `..`, no control characters.
pub fn check_device_path(p: &str) -> Result<(), String> {
    if !p.starts_with('/') {
        return Err(format!(
            "{p:?} must be an absolute path such as /dev/disk/by-id/..."
        ));
    }
    if p.split('/').any(|c| c == "..") {
        return Err(format!("{p:?} must not contain '..'"));
    }
    if p.chars().any(char::is_control) || p.len() > 4096 {
        return Err(format!("{p:?} contains control characters or is too long"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk() -> BlockDisk {
        serde_json::from_str(r#"{"node": "node-1", "name": "d1", "path": "/dev/loop3"}"#).unwrap()
    }

    #[test]
    fn defaults() {
        let d = disk();
        assert_eq!(d.driver, DiskDriver::Auto);
        assert_eq!(d.cluster_size_mib, 1);
        assert!(d.allow_scheduling);
        assert!(!d.force_format);
        assert_eq!(d.id(), "node-1/d1");
        assert!(d.validate().is_ok());
    }

    #[test]
    fn bad_attributes_are_named() {
        let d = BlockDisk {
            path: "dev/sda".into(),
            cluster_size_mib: 3,
            storage_reserved_bytes: -1,
            ..disk()
        };
        let paths: Vec<String> = d
            .validate()
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(
            paths,
            ["path", "cluster_size_mib", "storage_reserved_bytes"]
        );
        assert!(check_device_path("/dev/../etc/passwd").is_err());
    }
}
