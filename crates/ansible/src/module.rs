//! The five modules of `v2engine.storage` and what distinguishes them.

use std::fmt;

/// The collection's fully qualified name.
pub const COLLECTION: &str = "v2engine.storage";

/// The action group that `module_defaults` uses to set options for every module:
/// `group/v2engine.storage.all`.
pub const ACTION_GROUP: &str = "all";

/// Why a module name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModuleError {
    /// Not one of the five.
    #[error("{0:?} is not a module of {COLLECTION} (expected one of {list})", list = Module::names().join(", "))]
    Unknown(String),
}

/// One module; each manages one model resource of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Module {
    /// `data_engine_setting`: the cluster-wide setting.
    DataEngineSetting,
    /// `node_v2`: one node's override and status.
    NodeV2,
    /// `block_disk`: a raw disk on one node.
    BlockDisk,
    /// `storage_class`: a storage class.
    StorageClass,
    /// `volume`: a replicated volume.
    Volume,
}

impl Module {
    /// Every module, in the model's order.
    pub const ALL: [Module; 5] = [
        Self::DataEngineSetting,
        Self::NodeV2,
        Self::BlockDisk,
        Self::StorageClass,
        Self::Volume,
    ];

    /// Short name, also the model resource name.
    pub fn name(self) -> &'static str {
        match self {
            Self::DataEngineSetting => "data_engine_setting",
            Self::NodeV2 => "node_v2",
            Self::BlockDisk => "block_disk",
            Self::StorageClass => "storage_class",
            Self::Volume => "volume",
        }
    }

    /// Every short name.
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|m| m.name()).collect()
    }

    /// `v2engine.storage.<name>`.
    pub fn fqcn(self) -> String {
        format!("{COLLECTION}.{}", self.name())
    }

    /// Parses a short name or any dotted name ending in one (`v2engine.storage.node_v2`,
    /// as ansible-core passes it in `_ansible_module_name`).
    pub fn parse(name: &str) -> Result<Self, ModuleError> {
        let short = name.rsplit('.').next().unwrap_or(name);
        Self::ALL
            .into_iter()
            .find(|m| m.name() == short)
            .ok_or_else(|| ModuleError::Unknown(name.to_string()))
    }

    /// Modules that manage one node's object and so can also run on that node against its
    /// local executor socket (when `nodes` is omitted).
    pub fn node_local(self) -> bool {
        matches!(self, Self::NodeV2 | Self::BlockDisk)
    }

    /// The option that names the object (the resource id, or its node part).
    pub fn identity(self) -> &'static [&'static str] {
        match self {
            Self::DataEngineSetting => &[],
            Self::NodeV2 => &["node"],
            Self::BlockDisk => &["node", "name"],
            Self::StorageClass | Self::Volume => &["name"],
        }
    }

    /// Whether a `state: absent` task needs only the object's identity: the resource's
    /// other required options are then required only with `state: present` (Ansible's
    /// `required_if`). A volume is deleted by name.
    pub fn absent_by_identity(self) -> bool {
        matches!(self, Self::Volume)
    }

    /// One line for `short_description`.
    pub fn short_description(self) -> &'static str {
        match self {
            Self::DataEngineSetting => "Turn the V2 data engine on across the fleet",
            Self::NodeV2 => "Override the data engine setting on one node, and read its status",
            Self::BlockDisk => "Hand a raw disk to the V2 data engine",
            Self::StorageClass => "Define a storage class of replicated volumes",
            Self::Volume => "Create, grow, move or delete a replicated volume",
        }
    }
}

impl fmt::Display for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_model() {
        let model: Vec<String> = model::schema::resources()
            .unwrap()
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(Module::names(), model);
    }

    #[test]
    fn parses_short_and_qualified_names() {
        assert_eq!(Module::parse("node_v2"), Ok(Module::NodeV2));
        assert_eq!(
            Module::parse("v2engine.storage.storage_class"),
            Ok(Module::StorageClass)
        );
        let e = Module::parse("v2engine.storage.disk").unwrap_err();
        assert!(e.to_string().contains("block_disk"), "{e}");
    }
}
