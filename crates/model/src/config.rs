//! A node's effective configuration: the cluster setting with the node's override applied.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::HUGEPAGE_SIZE_MIB;
use crate::cpu_mask::CpuMask;
use crate::node::NodeV2;
use crate::setting::DataEngineSetting;
use crate::validate::ValidationErrors;

/// How a node makes its hugepages and modules survive a reboot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BootPersistence {
    /// `elemental` where `/oem` exists (Elemental/SLE Micro, as Harvester), else `systemd`.
    #[default]
    Auto,
    /// `/etc/modules-load.d/v2engine.conf` and `/etc/sysctl.d/90-v2engine-hugepages.conf`.
    Systemd,
    /// An Elemental cloud-config stage `/oem/93_spdk.yaml`.
    Elemental,
    /// Nothing is written: the node loses its preparation at reboot.
    None,
}

impl BootPersistence {
    /// The lowercase name used in configuration and status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Systemd => "systemd",
            Self::Elemental => "elemental",
            Self::None => "none",
        }
    }

    /// Parses the lowercase name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "auto" => Some(Self::Auto),
            "systemd" => Some(Self::Systemd),
            "elemental" => Some(Self::Elemental),
            "none" => Some(Self::None),
            _ => None,
        }
    }
}

/// What one node should look like, derived from the records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NodeConfig {
    /// Node name.
    pub node: String,
    /// Whether the engine should run here.
    pub enabled: bool,
    /// 2 MiB hugepages wanted while enabled.
    pub hugepages: u64,
    /// Canonical core mask, e.g. `0x3`.
    pub cpu_mask: String,
    /// SPDK log level.
    pub log_level: String,
    /// Interrupt mode instead of polling.
    pub interrupt_mode: bool,
    /// Modules to load, in order.
    pub kernel_modules: Vec<String>,
    /// Requested boot-persistence backend (`auto` is resolved by the executor).
    pub boot_persistence: BootPersistence,
}

impl NodeConfig {
    /// Hugepage memory in MiB for `spdk_tgt -s`.
    pub fn memory_mib(&self) -> u64 {
        self.hugepages * HUGEPAGE_SIZE_MIB
    }
}

/// Derives `node`'s effective configuration. A missing setting means the defaults
/// (engine disabled); a missing override follows the setting. Both inputs are validated
/// first, so a bad record can never reach a host.
pub fn effective_config(
    node: &str,
    setting: Option<&DataEngineSetting>,
    over: Option<&NodeV2>,
) -> Result<NodeConfig, ValidationErrors> {
    let default_setting = DataEngineSetting::default();
    let setting = setting.unwrap_or(&default_setting);
    let mut errs = ValidationErrors::default();
    if let Err(e) = setting.validate() {
        errs.extend_prefixed("data_engine_setting", e);
    }
    if let Some(Err(e)) = over.map(NodeV2::validate) {
        errs.extend_prefixed("node_v2", e);
    }
    errs.clone().into_result()?;

    let mib = over
        .and_then(|o| o.hugepage_limit_mib)
        .unwrap_or(setting.hugepage_limit_mib);
    let mask_src = over
        .and_then(|o| o.cpu_mask.clone())
        .unwrap_or_else(|| setting.cpu_mask.clone());
    let mask = CpuMask::parse(&mask_src).map_err(|e| {
        let mut v = ValidationErrors::default();
        v.push("cpu_mask", e.to_string());
        v
    })?;
    Ok(NodeConfig {
        node: node.to_string(),
        enabled: over.and_then(|o| o.enabled).unwrap_or(setting.enabled),
        hugepages: u64::try_from(mib).unwrap_or(0) / HUGEPAGE_SIZE_MIB,
        cpu_mask: mask.to_string(),
        log_level: setting.log_level.clone(),
        interrupt_mode: setting.interrupt_mode,
        kernel_modules: setting.kernel_modules.clone(),
        boot_persistence: over.map(|o| o.boot_persistence).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_records_means_disabled_defaults() {
        let c = effective_config("node-1", None, None).unwrap();
        assert!(!c.enabled);
        assert_eq!(c.hugepages, 1024);
        assert_eq!(c.memory_mib(), 2048);
        assert_eq!(c.cpu_mask, "0x1");
    }

    #[test]
    fn override_wins_over_setting() {
        let s = DataEngineSetting {
            enabled: true,
            hugepage_limit_mib: 1024,
            ..Default::default()
        };
        let o = NodeV2 {
            enabled: Some(false),
            hugepage_limit_mib: Some(256),
            cpu_mask: Some("0x0003".into()),
            ..NodeV2::follow("node-2")
        };
        let c = effective_config("node-2", Some(&s), Some(&o)).unwrap();
        assert!(!c.enabled);
        assert_eq!(c.hugepages, 128);
        assert_eq!(c.cpu_mask, "0x3");
        let c = effective_config("node-2", Some(&s), Some(&NodeV2::follow("node-2"))).unwrap();
        assert!(c.enabled);
        assert_eq!(c.hugepages, 512);
    }

    #[test]
    fn bad_records_are_refused_with_paths() {
        let s = DataEngineSetting {
            cpu_mask: "nope".into(),
            ..Default::default()
        };
        let errs = effective_config("n", Some(&s), None).unwrap_err();
        assert_eq!(errs.0[0].path, "data_engine_setting.cpu_mask");
    }
}
