//! `node_v2`: one node's override of the cluster setting.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::BootPersistence;
use crate::cpu_mask::CpuMask;
use crate::validate::{ValidationErrors, check_hugepage_mib, check_object_name};

/// Per-node override. `enabled = None` follows the cluster setting; `Some(false)` opts the
/// node out (Harvester's `node.longhorn.io/disable-v2-data-engine`), e.g. a small node that
/// should not give up 2 GiB and a core.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeV2 {
    /// Node name: a key of the provider's `nodes` map. Also the resource id.
    #[schemars(extend("x-force-new" = true))]
    pub node: String,
    /// `null` follows the cluster setting; `false` opts this node out; `true` opts it in.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Overrides the cluster's `hugepage_limit_mib` on this node (at least 256).
    #[serde(default)]
    pub hugepage_limit_mib: Option<i64>,
    /// Overrides the cluster's `cpu_mask` on this node.
    #[serde(default)]
    pub cpu_mask: Option<String>,
    /// How hugepages and modules are made to survive a reboot.
    #[serde(default)]
    pub boot_persistence: BootPersistence,
    /// Node tags, matched by a storage class's `node_selector`.
    #[serde(default)]
    pub tags: Vec<String>,
}

impl NodeV2 {
    /// An override that changes nothing for `node`.
    pub fn follow(node: &str) -> Self {
        Self {
            node: node.to_string(),
            enabled: None,
            hugepage_limit_mib: None,
            cpu_mask: None,
            boot_persistence: BootPersistence::Auto,
            tags: Vec::new(),
        }
    }

    /// Checks every attribute; errors carry the attribute path.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errs = ValidationErrors::default();
        if let Err(e) = check_object_name(&self.node) {
            errs.push("node", e);
        }
        if let Some(Err(e)) = self.hugepage_limit_mib.map(check_hugepage_mib) {
            errs.push("hugepage_limit_mib", e);
        }
        if let Some(Err(e)) = self.cpu_mask.as_deref().map(CpuMask::parse) {
            errs.push("cpu_mask", e.to_string());
        }
        for (i, t) in self.tags.iter().enumerate() {
            if t.is_empty() || t.len() > 63 || t.chars().any(|c| c.is_whitespace() || c == ',') {
                errs.push(
                    format!("tags[{i}]"),
                    format!("tag {t:?} must be 1 to 63 characters without spaces or commas"),
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
    fn minimal_override_follows_cluster() {
        let n: NodeV2 = serde_json::from_str(r#"{"node": "node-1"}"#).unwrap();
        assert_eq!(n, NodeV2::follow("node-1"));
        assert!(n.validate().is_ok());
    }

    #[test]
    fn bad_attributes_are_named() {
        let n = NodeV2 {
            node: "Node 1".into(),
            hugepage_limit_mib: Some(0),
            cpu_mask: Some("0x0".into()),
            tags: vec!["ok".into(), "not ok".into()],
            ..NodeV2::follow("x")
        };
        let errs = n.validate().unwrap_err();
        let paths: Vec<&str> = errs.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["node", "hugepage_limit_mib", "cpu_mask", "tags[1]"]);
    }

    #[test]
    fn boot_persistence_names() {
        let n: NodeV2 =
            serde_json::from_str(r#"{"node": "n", "boot_persistence": "elemental"}"#).unwrap();
        assert_eq!(n.boot_persistence, BootPersistence::Elemental);
        assert!(
            serde_json::from_str::<NodeV2>(r#"{"node": "n", "boot_persistence": "grub"}"#).is_err()
        );
    }
}
