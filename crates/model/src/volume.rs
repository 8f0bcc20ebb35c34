//! `volume`: a replicated block volume.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::size::parse_size;
use crate::storage_class::Frontend;
use crate::validate::{ValidationErrors, check_object_name};

/// Volume sizes are whole MiB (SPDK sizes lvols in MiB).
pub const VOLUME_SIZE_ALIGN: u64 = 1 << 20;

/// A volume as declared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    /// Volume name; also the resource id.
    #[schemars(extend("x-force-new" = true))]
    pub name: String,
    /// Size in bytes or as a quantity ("10Gi"). Grows in place; shrinking is refused.
    pub size: String,
    /// Storage class name.
    #[schemars(extend("x-force-new" = true))]
    pub storage_class: String,
    /// Node where the volume is attached (its RAID1 engine and frontend run there).
    #[serde(default)]
    pub attach_node: Option<String>,
    /// Overrides the class's frontend (defaults to the class's).
    #[schemars(extend("x-computed" = true))]
    #[serde(default)]
    pub frontend: Option<Frontend>,
}

impl Volume {
    /// Size in bytes (validated).
    pub fn size_bytes(&self) -> Result<u64, String> {
        let b = parse_size(&self.size).map_err(|e| e.to_string())?;
        if b == 0 {
            return Err("must be larger than 0".into());
        }
        if b % VOLUME_SIZE_ALIGN != 0 {
            return Err(format!(
                "{} bytes is not a whole number of MiB; use e.g. {}Mi",
                b,
                b.div_ceil(VOLUME_SIZE_ALIGN)
            ));
        }
        Ok(b)
    }

    /// Checks every attribute; errors carry the attribute path.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errs = ValidationErrors::default();
        if let Err(e) = check_object_name(&self.name) {
            errs.push("name", e);
        }
        if let Err(e) = self.size_bytes() {
            errs.push("size", e);
        }
        if let Err(e) = check_object_name(&self.storage_class) {
            errs.push("storage_class", e);
        }
        if let Some(Err(e)) = self.attach_node.as_deref().map(check_object_name) {
            errs.push("attach_node", e);
        }
        errs.into_result()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vol(size: &str) -> Volume {
        Volume {
            name: "v1".into(),
            size: size.into(),
            storage_class: "fast".into(),
            attach_node: Some("node-1".into()),
            frontend: None,
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(vol("1Gi").size_bytes(), Ok(1 << 30));
        assert_eq!(vol("1048576").size_bytes(), Ok(1 << 20));
        assert!(vol("0").validate().is_err());
        assert!(vol("1000").size_bytes().unwrap_err().contains("1Mi"));
        assert!(vol("lots").validate().is_err());
    }

    #[test]
    fn names_are_checked() {
        let v = Volume {
            attach_node: Some("Node 1".into()),
            ..vol("1Gi")
        };
        let paths: Vec<String> = v
            .validate()
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(paths, ["attach_node"]);
    }
}
