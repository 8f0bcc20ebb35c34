//! `data_engine_setting`: the cluster-wide switch and defaults of the V2 data engine.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cpu_mask::CpuMask;
use crate::validate::{ValidationErrors, check_hugepage_mib, check_module_name};

/// The only id a data engine setting has: there is one per cluster.
pub const SETTING_ID: &str = "cluster";

/// SPDK log levels accepted by `spdk_tgt --logflag`/`log_set_level`.
pub const LOG_LEVELS: &[&str] = &["error", "warning", "notice", "info", "debug"];

/// Cluster-wide V2 data engine setting. Stored on every node; each executor derives its
/// node's effective configuration from it and the node's own `node_v2` override.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DataEngineSetting {
    /// Turn the V2 data engine on for every node that does not opt out.
    #[serde(default)]
    pub enabled: bool,
    /// Hugepage memory per node in MiB (2 MiB pages): 2048 means 1024 pages. At least 256
    /// (SPDK does not start with less); below 1024 the executor sizes SPDK's buffer pools
    /// to the memory, from 1024 on SPDK runs with its default pools.
    #[serde(default = "default_hugepage_limit_mib")]
    pub hugepage_limit_mib: i64,
    /// SPDK reactor core mask, passed to `spdk_tgt -m`.
    #[serde(default = "default_cpu_mask")]
    pub cpu_mask: String,
    /// SPDK log level: error, warning, notice, info or debug.
    #[serde(default = "default_log_level")]
    pub log_level: String,
    /// Run SPDK reactors in interrupt mode instead of polling.
    #[serde(default)]
    pub interrupt_mode: bool,
    /// Kernel modules loaded on every enabled node, and at every boot.
    #[serde(default = "default_kernel_modules")]
    pub kernel_modules: Vec<String>,
}

fn default_hugepage_limit_mib() -> i64 {
    2048
}
fn default_cpu_mask() -> String {
    "0x1".into()
}
fn default_log_level() -> String {
    "notice".into()
}
/// The modules the V2 data engine needs by default.
pub fn default_kernel_modules() -> Vec<String> {
    vec![
        "vfio_pci".into(),
        "uio_pci_generic".into(),
        "nvme_tcp".into(),
    ]
}

impl Default for DataEngineSetting {
    fn default() -> Self {
        Self {
            enabled: false,
            hugepage_limit_mib: default_hugepage_limit_mib(),
            cpu_mask: default_cpu_mask(),
            log_level: default_log_level(),
            interrupt_mode: false,
            kernel_modules: default_kernel_modules(),
        }
    }
}

impl DataEngineSetting {
    /// Checks every attribute; errors carry the attribute path.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errs = ValidationErrors::default();
        if let Err(e) = check_hugepage_mib(self.hugepage_limit_mib) {
            errs.push("hugepage_limit_mib", e);
        }
        if let Err(e) = CpuMask::parse(&self.cpu_mask) {
            errs.push("cpu_mask", e.to_string());
        }
        if !LOG_LEVELS.contains(&self.log_level.as_str()) {
            errs.push(
                "log_level",
                format!(
                    "{:?} is not one of {}",
                    self.log_level,
                    LOG_LEVELS.join(", ")
                ),
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, m) in self.kernel_modules.iter().enumerate() {
            if let Err(e) = check_module_name(m) {
                errs.push(format!("kernel_modules[{i}]"), e);
            } else if !seen.insert(m.replace('-', "_")) {
                errs.push(
                    format!("kernel_modules[{i}]"),
                    format!("module {m:?} is listed twice"),
                );
            }
        }
        errs.into_result()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_longhorn() {
        let s: DataEngineSetting = serde_json::from_str("{}").unwrap();
        assert_eq!(s, DataEngineSetting::default());
        assert!(!s.enabled);
        assert_eq!(s.hugepage_limit_mib, 2048);
        assert_eq!(s.cpu_mask, "0x1");
        assert_eq!(
            s.kernel_modules,
            ["vfio_pci", "uio_pci_generic", "nvme_tcp"]
        );
        assert!(s.validate().is_ok());
    }

    #[test]
    fn unknown_attributes_are_refused() {
        let e = serde_json::from_str::<DataEngineSetting>(r#"{"enable": true}"#).unwrap_err();
        assert!(e.to_string().contains("enable"), "{e}");
    }

    #[test]
    fn every_bad_attribute_is_named() {
        let s = DataEngineSetting {
            hugepage_limit_mib: -4,
            cpu_mask: "ff".into(),
            log_level: "loud".into(),
            kernel_modules: vec!["nvme_tcp".into(), "rm -rf".into(), "nvme-tcp".into()],
            ..Default::default()
        };
        let errs = s.validate().unwrap_err();
        let paths: Vec<&str> = errs.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "hugepage_limit_mib",
                "cpu_mask",
                "log_level",
                "kernel_modules[1]",
                "kernel_modules[2]"
            ]
        );
    }
}
