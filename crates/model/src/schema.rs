//! Resource schemas derived from the spec and status structs.
//!
//! The spec struct's JSON Schema (schemars) gives the user's attributes: `required` ones,
//! optional ones (with a default they are "optional + computed": the plan fills the
//! default in), their descriptions and allowed values. The status struct gives the computed
//! attributes. `x-force-new` marks attributes whose change replaces the resource;
//! `x-computed` marks optional attributes a plan may fill in without a default (a volume's
//! frontend comes from its class). The Terraform provider, the Ansible modules and the docs
//! are all generated from [`ResourceSchema`].

use schemars::{JsonSchema, schema_for};
use serde::Serialize;
use serde_json::Value;

use crate::status;

/// Why a schema could not be derived (a programming error in a spec struct).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// A JSON Schema construct we do not map.
    #[error("resource {resource}: attribute {attribute}: unsupported schema {detail}")]
    Unsupported {
        /// Resource name.
        resource: String,
        /// Attribute path.
        attribute: String,
        /// What was found.
        detail: String,
    },
}

/// An attribute's type, as Terraform and Ansible both can express it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum AttrType {
    /// UTF-8 string.
    String,
    /// 64-bit integer (a Terraform number).
    Int,
    /// Boolean.
    Bool,
    /// Ordered list.
    List {
        /// Element type.
        element: Box<AttrType>,
    },
    /// Map with string keys.
    Map {
        /// Value type.
        element: Box<AttrType>,
    },
    /// Object with fixed attributes.
    Object {
        /// Its attributes.
        attributes: Vec<Attribute>,
    },
}

/// Who sets an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The user must set it.
    Required,
    /// The user may set it; unset means null.
    Optional,
    /// The user may set it; unset means the default (or a value the plan computes).
    OptionalComputed,
    /// Only the provider sets it.
    Computed,
}

/// One attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attribute {
    /// Name.
    pub name: String,
    /// Type.
    #[serde(rename = "type")]
    pub ty: AttrType,
    /// Who sets it.
    pub mode: Mode,
    /// Markdown description (from the doc comment).
    pub description: String,
    /// Default value, as JSON.
    pub default: Option<Value>,
    /// Allowed values for enumerated strings.
    pub allowed: Vec<String>,
    /// A change replaces the resource.
    pub force_new: bool,
}

/// A resource's full schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceSchema {
    /// Name without prefix (`node_v2`).
    pub name: String,
    /// Markdown description.
    pub description: String,
    /// How the resource id is formed, for import.
    pub id_format: String,
    /// User attributes first (in declaration order), then computed ones.
    pub attributes: Vec<Attribute>,
}

impl ResourceSchema {
    /// The attribute called `name`.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }
}

/// The five resources.
pub fn resources() -> Result<Vec<ResourceSchema>, SchemaError> {
    Ok(vec![
        derive::<crate::DataEngineSetting, status::DataEngineSettingStatus>(
            "data_engine_setting",
            "The cluster-wide V2 data engine setting: turns the SPDK engine on for every node \
             that does not opt out, with its hugepage memory, CPU mask and kernel modules. \
             The plan shows which nodes will need a reboot.",
            "`cluster` (there is one per cluster)",
        )?,
        derive::<crate::NodeV2, status::NodeV2Status>(
            "node_v2",
            "One node's override of the data engine setting, and its status: hugepages, \
             modules, engine state and whether it needs a reboot. When the configuration also \
             manages the setting, declare `depends_on = [v2engine_data_engine_setting.<name>]`: \
             Terraform then plans and applies the setting first, so this node's plan-time \
             prediction includes the setting's change.",
            "the node name, e.g. `node-1`",
        )?,
        derive::<crate::BlockDisk, status::BlockDiskStatus>(
            "block_disk",
            "A raw disk handed to the engine: an aio bdev with an lvstore on it. An existing \
             lvstore is imported, never re-created.",
            "`<node>/<name>`, e.g. `node-1/disk-1`",
        )?,
        derive::<crate::StorageClass, status::StorageClassStatus>(
            "storage_class",
            "A storage class: replica count, locality, selectors and frontend of its volumes. \
             Its parameters are immutable; any change replaces the class.",
            "the class name",
        )?,
        derive::<crate::Volume, status::VolumeStatus>(
            "volume",
            "A replicated volume: lvols (thin or thick, as its class says) on distinct nodes, \
             exported over NVMe-oF TCP and mirrored by an SPDK raid1 on the attach node. A \
             replica on a node that fails or is cut off is replaced at the next apply; the plan \
             shows the volume degraded and where the replacement goes.",
            "the volume name",
        )?,
    ])
}

/// Derives one resource schema from its spec and status structs.
pub fn derive<Spec: JsonSchema, Status: JsonSchema>(
    name: &str,
    description: &str,
    id_format: &str,
) -> Result<ResourceSchema, SchemaError> {
    let spec = schema_for!(Spec);
    let status = schema_for!(Status);
    let mut attributes = object_attributes(name, "", spec.as_value(), spec.as_value(), false)?;
    for a in object_attributes(name, "", status.as_value(), status.as_value(), true)? {
        if attributes.iter().all(|s| s.name != a.name) {
            attributes.push(a);
        }
    }
    Ok(ResourceSchema {
        name: name.to_string(),
        description: description.to_string(),
        id_format: id_format.to_string(),
        attributes,
    })
}

fn unsupported(resource: &str, attribute: &str, v: &Value) -> SchemaError {
    SchemaError::Unsupported {
        resource: resource.to_string(),
        attribute: attribute.to_string(),
        detail: v.to_string(),
    }
}

/// Follows `$ref` into `$defs` of `root`.
fn resolve<'a>(root: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix("#/$defs/")
            .and_then(|name| root.get("$defs").and_then(|d| d.get(name)))
            .unwrap_or(v),
        None => v,
    }
}

fn object_attributes(
    res: &str,
    prefix: &str,
    root: &Value,
    obj: &Value,
    computed: bool,
) -> Result<Vec<Attribute>, SchemaError> {
    let required: Vec<&str> = obj
        .get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = obj.get("properties").and_then(Value::as_object) else {
        return Err(unsupported(res, prefix, obj));
    };
    let mut out = Vec::new();
    for (name, prop) in props {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        let (ty, nullable, allowed) = attr_type(res, &path, root, prop)?;
        let default = prop.get("default").cloned().filter(|d| !d.is_null());
        let marked_computed = prop
            .get("x-computed")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let mode = if computed {
            Mode::Computed
        } else if required.contains(&name.as_str()) && !nullable {
            Mode::Required
        } else if default.is_some() || marked_computed {
            Mode::OptionalComputed
        } else {
            Mode::Optional
        };
        out.push(Attribute {
            name: name.clone(),
            ty,
            mode,
            description: prop
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .replace('\n', " "),
            default,
            allowed,
            force_new: prop
                .get("x-force-new")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        });
    }
    // Declaration order: schemars keeps it when serde_json preserves order; otherwise sort
    // required first so docs read naturally.
    out.sort_by_key(|a| match a.mode {
        Mode::Required => 0,
        Mode::OptionalComputed | Mode::Optional => 1,
        Mode::Computed => 2,
    });
    Ok(out)
}

/// Maps one property to (type, nullable, allowed values).
fn attr_type(
    res: &str,
    path: &str,
    root: &Value,
    prop: &Value,
) -> Result<(AttrType, bool, Vec<String>), SchemaError> {
    let prop = resolve(root, prop);
    // Option<T> of a $ref: anyOf [{$ref}, {type: null}].
    if let Some(any) = prop.get("anyOf").and_then(Value::as_array) {
        let non_null: Vec<&Value> = any
            .iter()
            .filter(|v| v.get("type") != Some(&Value::from("null")))
            .collect();
        if non_null.len() == 1 && any.len() == 2 {
            let (t, _, allowed) = attr_type(res, path, root, non_null[0])?;
            return Ok((t, true, allowed));
        }
        return Err(unsupported(res, path, prop));
    }
    // A string enum: oneOf consts (documented variants) or enum.
    if let Some(one) = prop.get("oneOf").and_then(Value::as_array) {
        let consts: Option<Vec<String>> = one
            .iter()
            .map(|v| v.get("const").and_then(Value::as_str).map(String::from))
            .collect();
        return consts
            .map(|c| (AttrType::String, false, c))
            .ok_or_else(|| unsupported(res, path, prop));
    }
    if let Some(e) = prop.get("enum").and_then(Value::as_array) {
        let vals: Vec<String> = e
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect();
        return Ok((AttrType::String, false, vals));
    }
    let (ty_name, nullable) = match prop.get("type") {
        Some(Value::String(s)) => (s.as_str(), false),
        Some(Value::Array(a)) => {
            let names: Vec<&str> = a
                .iter()
                .filter_map(Value::as_str)
                .filter(|s| *s != "null")
                .collect();
            match names.as_slice() {
                [one] => (*one, a.len() == 2),
                _ => return Err(unsupported(res, path, prop)),
            }
        }
        _ => return Err(unsupported(res, path, prop)),
    };
    let t = match ty_name {
        "string" => AttrType::String,
        "integer" => AttrType::Int,
        "boolean" => AttrType::Bool,
        "array" => {
            let items = prop
                .get("items")
                .ok_or_else(|| unsupported(res, path, prop))?;
            let (e, _, _) = attr_type(res, &format!("{path}[]"), root, items)?;
            AttrType::List {
                element: Box::new(e),
            }
        }
        "object" => match prop.get("additionalProperties") {
            Some(ap) if ap.is_object() => {
                let (e, _, _) = attr_type(res, &format!("{path}{{}}"), root, ap)?;
                AttrType::Map {
                    element: Box::new(e),
                }
            }
            _ => AttrType::Object {
                attributes: object_attributes(res, path, root, prop, true)?,
            },
        },
        _ => return Err(unsupported(res, path, prop)),
    };
    Ok((t, nullable, Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(name: &str) -> ResourceSchema {
        resources()
            .unwrap()
            .into_iter()
            .find(|r| r.name == name)
            .unwrap()
    }

    #[test]
    fn all_five_resources_derive() {
        let names: Vec<String> = resources().unwrap().into_iter().map(|r| r.name).collect();
        assert_eq!(
            names,
            [
                "data_engine_setting",
                "node_v2",
                "block_disk",
                "storage_class",
                "volume"
            ]
        );
    }

    #[test]
    fn modes_follow_serde() {
        let s = get("storage_class");
        assert_eq!(s.attribute("name").unwrap().mode, Mode::Required);
        let r = s.attribute("number_of_replicas").unwrap();
        assert_eq!(r.mode, Mode::OptionalComputed);
        assert_eq!(r.default, Some(Value::from(3)));
        assert_eq!(r.ty, AttrType::Int);
        assert!(r.force_new);
        let n = get("node_v2");
        assert_eq!(n.attribute("enabled").unwrap().mode, Mode::Optional);
        assert_eq!(n.attribute("enabled").unwrap().ty, AttrType::Bool);
        assert_eq!(n.attribute("reboot_required").unwrap().mode, Mode::Computed);
        assert!(n.attribute("node").unwrap().force_new);
        assert!(!n.attribute("cpu_mask").unwrap().force_new);
    }

    #[test]
    fn enums_list_allowed_values() {
        let s = get("storage_class");
        assert_eq!(
            s.attribute("data_locality").unwrap().allowed,
            ["disabled", "best-effort", "strict-local"]
        );
        let n = get("node_v2");
        assert_eq!(
            n.attribute("boot_persistence").unwrap().allowed,
            ["auto", "systemd", "elemental", "none"]
        );
    }

    #[test]
    fn nested_computed_types() {
        let v = get("volume");
        let AttrType::List { element } = &v.attribute("replicas").unwrap().ty else {
            panic!("replicas is not a list")
        };
        let AttrType::Object { attributes } = element.as_ref() else {
            panic!("not an object")
        };
        let names: Vec<&str> = attributes.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["disk", "node", "state"]);
        let d = get("data_engine_setting");
        assert!(matches!(
            d.attribute("nodes").unwrap().ty,
            AttrType::Map { .. }
        ));
        let f = v.attribute("frontend").unwrap();
        assert_eq!(f.mode, Mode::OptionalComputed);
        assert_eq!(f.allowed, ["nvmf", "block", "ublk"]);
    }

    #[test]
    fn every_attribute_is_described() {
        for r in resources().unwrap() {
            for a in &r.attributes {
                assert!(
                    !a.description.is_empty(),
                    "{}.{} has no description",
                    r.name,
                    a.name
                );
            }
        }
    }
}
