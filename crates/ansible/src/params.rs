//! The module protocol's input: the arguments file, checked against the argument spec.
//!
//! ansible-core runs a binary module as `MODULE ARGS_FILE`; the file holds one JSON object
//! with the task's options and ansible-core's own `_ansible_*` keys (check mode, diff
//! mode, the module's name, ...). Options are checked as `AnsibleModule` checks them —
//! unknown options, missing required ones, types (with the same conversions: `"yes"` is a
//! bool, `"2048"` an int), choices — then the resource options are decoded into the
//! model's struct and validated by the model, so messages are the Terraform provider's.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::argspec::{ModuleSpec, OptSource, OptType, OptionSpec};
use crate::module::{Module, ModuleError};

/// Why the arguments are refused. Every message names the option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    /// The arguments file is not a JSON object.
    #[error("cannot read the module arguments: {0}")]
    Malformed(String),
    /// `_ansible_module_name` names no module of the collection.
    #[error(transparent)]
    Module(#[from] ModuleError),
    /// Options the module does not have.
    #[error(
        "Unsupported parameters for ({module}) module: {}. Supported parameters include: {}.",
        .unknown.join(", "),
        .supported.join(", ")
    )]
    Unsupported {
        /// The module's FQCN.
        module: String,
        /// The unknown option names.
        unknown: Vec<String>,
        /// Every option name.
        supported: Vec<String>,
    },
    /// Options that are missing or invalid: `option: reason` each.
    #[error("{}", .0.iter().map(|(o, r)| format!("{o}: {r}")).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<(String, String)>),
}

impl ParamsError {
    /// The options the error is about.
    pub fn options(&self) -> Vec<String> {
        match self {
            Self::Unsupported { unknown, .. } => unknown.clone(),
            Self::Invalid(v) => v.iter().map(|(o, _)| o.clone()).collect(),
            Self::Malformed(_) | Self::Module(_) => Vec::new(),
        }
    }
}

/// The arguments file, split into ansible-core's keys and the task's options.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// The module (from `_ansible_module_name`, else the program's name).
    pub module: Module,
    /// `--check`: predict, change nothing.
    pub check_mode: bool,
    /// `--diff`: return before and after.
    pub diff: bool,
    /// `_ansible_ignore_unknown_opts`.
    pub ignore_unknown: bool,
    /// The task's options as given.
    pub params: Map<String, Value>,
}

impl Invocation {
    /// Parses the arguments file's text. `fallback` names the module when the file does
    /// not (the program's file name, as ansible-core copies it under the module's name).
    pub fn parse(text: &str, fallback: Option<&str>) -> Result<Self, ParamsError> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| ParamsError::Malformed(e.to_string()))?;
        let Value::Object(all) = v else {
            return Err(ParamsError::Malformed(
                "the arguments are not a JSON object".into(),
            ));
        };
        let flag = |k: &str| all.get(k).and_then(Value::as_bool).unwrap_or(false);
        let name = all
            .get("_ansible_module_name")
            .and_then(Value::as_str)
            .or(fallback)
            .ok_or_else(|| {
                ParamsError::Malformed("no _ansible_module_name in the arguments".into())
            })?;
        let module = Module::parse(name)?;
        let params = all
            .iter()
            .filter(|(k, _)| !k.starts_with("_ansible_"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(Self {
            module,
            check_mode: flag("_ansible_check_mode"),
            diff: flag("_ansible_diff"),
            ignore_unknown: flag("_ansible_ignore_unknown_opts"),
            params,
        })
    }
}

/// Options after checking: every option of the spec, converted, defaults applied
/// (`Null` when unset and without default).
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// Option name → value.
    pub values: BTreeMap<String, Value>,
    /// Options the task set explicitly (not null).
    pub given: Vec<String>,
}

impl Checked {
    /// An option's value (`Null` when unset).
    pub fn get(&self, name: &str) -> &Value {
        self.values.get(name).unwrap_or(&Value::Null)
    }

    /// A string option.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.get(name).as_str()
    }

    /// Whether the task set `name`.
    pub fn is_given(&self, name: &str) -> bool {
        self.given.iter().any(|g| g == name)
    }

    /// `state: absent`.
    pub fn absent(&self) -> bool {
        self.str("state") == Some("absent")
    }

    /// The resource options as the model's JSON spec: unset ones are left out so the
    /// model's serde defaults apply exactly as they do for Terraform and the executor.
    pub fn spec_json(&self, spec: &ModuleSpec) -> Value {
        let m: Map<String, Value> = spec
            .resource_options()
            .filter(|o| self.is_given(&o.name))
            .map(|o| (o.name.clone(), self.get(&o.name).clone()))
            .collect();
        Value::Object(m)
    }
}

/// Checks `params` against `spec` as AnsibleModule does.
pub fn check(
    spec: &ModuleSpec,
    params: &Map<String, Value>,
    ignore_unknown: bool,
) -> Result<Checked, ParamsError> {
    let mut unknown: Vec<String> = params
        .keys()
        .filter(|k| spec.option(k).is_none())
        .cloned()
        .collect();
    if !unknown.is_empty() && !ignore_unknown {
        unknown.sort();
        let mut supported: Vec<String> = spec.options.iter().map(|o| o.name.clone()).collect();
        supported.sort();
        return Err(ParamsError::Unsupported {
            module: spec.module.fqcn(),
            unknown,
            supported,
        });
    }
    let mut errors = Vec::new();
    let mut values = BTreeMap::new();
    let mut given = Vec::new();
    for o in &spec.options {
        match params.get(&o.name).filter(|v| !v.is_null()) {
            Some(v) => match convert(o, &o.name, v) {
                Ok(c) => {
                    given.push(o.name.clone());
                    values.insert(o.name.clone(), c);
                }
                Err(e) => errors.push(e),
            },
            None if o.required => {
                errors.push((o.name.clone(), "missing required argument".to_string()));
            }
            None => {
                values.insert(o.name.clone(), o.default.clone().unwrap_or(Value::Null));
            }
        }
    }
    for rule in &spec.required_if {
        if values.get(&rule.option).and_then(Value::as_str) != Some(rule.value.as_str()) {
            continue;
        }
        for r in rule.requires.iter().filter(|r| !given.contains(r)) {
            // Not when the option itself was refused already.
            if errors.iter().all(|(o, _)| o != r) {
                errors.push((
                    r.clone(),
                    format!(
                        "missing required argument (required with {}={})",
                        rule.option, rule.value
                    ),
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(Checked { values, given })
    } else {
        Err(ParamsError::Invalid(errors))
    }
}

/// Decodes the resource options into the model's struct and runs its validation.
pub fn decode<T: DeserializeOwned>(
    spec: &ModuleSpec,
    checked: &Checked,
    validate: impl Fn(&T) -> Result<(), model::ValidationErrors>,
) -> Result<T, ParamsError> {
    let v: T = serde_json::from_value(checked.spec_json(spec))
        .map_err(|e| ParamsError::Invalid(vec![(spec.module.name().to_string(), e.to_string())]))?;
    validate(&v).map_err(|errs| {
        ParamsError::Invalid(errs.0.into_iter().map(|e| (e.path, e.reason)).collect())
    })?;
    Ok(v)
}

type Conv = Result<Value, (String, String)>;

fn bad(path: &str, reason: String) -> (String, String) {
    (path.to_string(), reason)
}

/// Converts one value to the option's type (Ansible's conversions), then checks choices.
fn convert(o: &OptionSpec, path: &str, v: &Value) -> Conv {
    let c = convert_type(o.ty, o.elements, path, v)?;
    if let Value::String(s) = &c
        && !o.choices.is_empty()
        && !o.choices.contains(s)
    {
        return Err(bad(
            path,
            format!("{s:?} is not one of {}", o.choices.join(", ")),
        ));
    }
    if let Value::Object(m) = &c
        && !o.suboptions.is_empty()
        && let Some(k) = m
            .keys()
            .find(|k| !o.suboptions.iter().any(|s| &s.name == *k))
    {
        return Err(bad(&format!("{path}.{k}"), "unsupported option".into()));
    }
    if let Value::Object(m) = &c
        && o.source == OptSource::Connection
        && o.name == "nodes"
        && m.is_empty()
    {
        return Err(bad(path, "must name at least one node".into()));
    }
    Ok(c)
}

fn convert_type(ty: OptType, elements: Option<OptType>, path: &str, v: &Value) -> Conv {
    match ty {
        OptType::Str | OptType::Path => match v {
            Value::String(s) => Ok(Value::String(s.clone())),
            Value::Number(n) => Ok(Value::String(n.to_string())),
            Value::Bool(b) => Ok(Value::String(b.to_string())),
            other => Err(bad(path, format!("{} is not a string", other))),
        },
        OptType::Int => match v {
            Value::Number(n) if n.is_i64() => Ok(v.clone()),
            Value::Number(n) => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                    // Integral floats are ints, as in Ansible. The bound keeps the cast exact.
                    #[allow(clippy::cast_possible_truncation)]
                    Ok(Value::from(f as i64))
                }
                _ => Err(bad(path, format!("{n} is not an integer"))),
            },
            Value::String(s) => s
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| bad(path, format!("{s:?} cannot be converted to an int"))),
            other => Err(bad(path, format!("{other} cannot be converted to an int"))),
        },
        OptType::Bool => match v {
            Value::Bool(_) => Ok(v.clone()),
            Value::String(s) => parse_bool(s)
                .map(Value::Bool)
                .ok_or_else(|| bad(path, format!("{s:?} cannot be converted to a bool"))),
            Value::Number(n) if n.as_i64() == Some(0) || n.as_i64() == Some(1) => {
                Ok(Value::Bool(n.as_i64() == Some(1)))
            }
            other => Err(bad(path, format!("{other} cannot be converted to a bool"))),
        },
        OptType::List => {
            let items: Vec<Value> = match v {
                Value::Array(xs) => xs.clone(),
                // Ansible splits a string on commas.
                Value::String(s) if s.trim().is_empty() => Vec::new(),
                Value::String(s) => s
                    .split(',')
                    .map(|p| Value::String(p.trim().to_string()))
                    .collect(),
                other => vec![other.clone()],
            };
            let el = elements.unwrap_or(OptType::Str);
            items
                .iter()
                .enumerate()
                .map(|(i, x)| convert_type(el, None, &format!("{path}[{i}]"), x))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
        OptType::Dict => match v {
            Value::Object(_) => Ok(v.clone()),
            Value::String(s) if s.trim_start().starts_with('{') => {
                match serde_json::from_str::<Value>(s) {
                    Ok(parsed @ Value::Object(_)) => Ok(parsed),
                    _ => Err(bad(path, format!("{s:?} is not a dictionary"))),
                }
            }
            other => Err(bad(path, format!("{other} is not a dictionary"))),
        },
    }
}

/// Ansible's boolean strings.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "yes" | "on" | "1" | "true" | "y" | "t" => Some(true),
        "no" | "off" | "0" | "false" | "n" | "f" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::argspec::module_spec;
    use serde_json::json;

    fn params(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn invocation_splits_ansible_keys() {
        let text = json!({
            "name": "fast",
            "_ansible_check_mode": true,
            "_ansible_diff": true,
            "_ansible_module_name": "v2engine.storage.storage_class",
            "_ansible_tmpdir": "/tmp/x"
        })
        .to_string();
        let inv = Invocation::parse(&text, None).unwrap();
        assert_eq!(inv.module, Module::StorageClass);
        assert!(inv.check_mode && inv.diff && !inv.ignore_unknown);
        assert_eq!(inv.params.keys().collect::<Vec<_>>(), ["name"]);
        let inv = Invocation::parse("{}", Some("AnsiballZ_node_v2")).unwrap_err();
        assert!(matches!(inv, ParamsError::Module(_)));
        assert_eq!(
            Invocation::parse("{}", Some("node_v2")).unwrap().module,
            Module::NodeV2
        );
        assert!(matches!(
            Invocation::parse("[1]", None),
            Err(ParamsError::Malformed(_))
        ));
    }

    #[test]
    fn unknown_options_are_named() {
        let s = module_spec(Module::StorageClass).unwrap();
        let e = check(&s, &params(json!({"name": "x", "replicas": 2})), false).unwrap_err();
        assert_eq!(e.options(), ["replicas"]);
        let msg = e.to_string();
        assert!(
            msg.contains(
                "Unsupported parameters for (v2engine.storage.storage_class) module: replicas"
            ) && msg.contains("number_of_replicas"),
            "{msg}"
        );
        assert!(
            check(
                &s,
                &params(json!({"name": "x", "nodes": {"a": {}}, "replicas": 2})),
                true
            )
            .is_ok()
        );
    }

    #[test]
    fn ansible_conversions_and_defaults() {
        let s = module_spec(Module::DataEngineSetting).unwrap();
        let c = check(
            &s,
            &params(json!({
                "enabled": "yes",
                "hugepage_limit_mib": "256",
                "kernel_modules": "nvme_tcp, vfio_pci",
                "nodes": {"node-1": {"endpoint": "unix:///x"}}
            })),
            false,
        )
        .unwrap();
        assert_eq!(c.get("enabled"), &json!(true));
        assert_eq!(c.get("hugepage_limit_mib"), &json!(256));
        assert_eq!(c.get("kernel_modules"), &json!(["nvme_tcp", "vfio_pci"]));
        assert_eq!(c.get("cpu_mask"), &json!("0x1"));
        assert_eq!(c.get("state"), &json!("present"));
        assert!(!c.is_given("cpu_mask"));
        assert_eq!(
            c.spec_json(&s),
            json!({"enabled": true, "hugepage_limit_mib": 256, "kernel_modules": ["nvme_tcp", "vfio_pci"]})
        );
    }

    #[test]
    fn every_bad_option_is_named() {
        let s = module_spec(Module::StorageClass).unwrap();
        let e = check(
            &s,
            &params(json!({
                "number_of_replicas": "two",
                "data_locality": "nearby",
                "thin_provision": "maybe",
                "nodes": {"n": {"endpoint": "unix:///x"}}
            })),
            false,
        )
        .unwrap_err();
        let mut named = e.options();
        named.sort();
        assert_eq!(
            named,
            [
                "data_locality",
                "name",
                "number_of_replicas",
                "thin_provision"
            ]
        );
        let msg = e.to_string();
        assert!(
            msg.contains(
                "data_locality: \"nearby\" is not one of disabled, best-effort, strict-local"
            ),
            "{msg}"
        );
        assert!(msg.contains("name: missing required argument"), "{msg}");
        assert!(
            msg.contains("number_of_replicas: \"two\" cannot be converted to an int"),
            "{msg}"
        );
    }

    #[test]
    fn a_volume_is_deleted_by_name_alone() {
        let s = module_spec(Module::Volume).unwrap();
        let nodes = json!({"n": {"endpoint": "unix:///x"}});
        let c = check(
            &s,
            &params(json!({"name": "v1", "state": "absent", "nodes": nodes})),
            false,
        )
        .unwrap();
        assert!(c.absent());
        assert_eq!(c.get("allow_replace"), &json!(false));
        let e = check(&s, &params(json!({"name": "v1", "nodes": nodes})), false).unwrap_err();
        assert_eq!(e.options(), ["size", "storage_class"]);
        assert!(
            e.to_string()
                .starts_with("size: missing required argument (required with state=present); "),
            "{e}"
        );
        // A refused value is reported once, not also as missing.
        let e = check(
            &s,
            &params(json!({"name": "v1", "size": [1], "storage_class": "c", "nodes": nodes})),
            false,
        )
        .unwrap_err();
        assert_eq!(e.options(), ["size"]);
    }

    #[test]
    fn model_validation_messages_are_terraforms() {
        let s = module_spec(Module::StorageClass).unwrap();
        let c = check(
            &s,
            &params(json!({"name": "x", "number_of_replicas": 25, "nodes": {"n": {"endpoint": "unix:///x"}}})),
            false,
        )
        .unwrap();
        let e = decode(&s, &c, model::StorageClass::validate).unwrap_err();
        assert_eq!(
            e.to_string(),
            "number_of_replicas: must be between 1 and 20, got 25"
        );
        let s = module_spec(Module::DataEngineSetting).unwrap();
        let c = check(
            &s,
            &params(json!({"kernel_modules": ["nvme_tcp", "x;y"], "nodes": {"n": {"endpoint": "unix:///x"}}})),
            false,
        )
        .unwrap();
        let e = decode(&s, &c, model::DataEngineSetting::validate).unwrap_err();
        assert_eq!(e.options(), ["kernel_modules[1]"]);
    }

    #[test]
    fn null_means_unset() {
        let s = module_spec(Module::NodeV2).unwrap();
        let c = check(
            &s,
            &params(json!({"node": "node-1", "enabled": null})),
            false,
        )
        .unwrap();
        assert!(!c.is_given("enabled"));
        let n: model::NodeV2 = decode(&s, &c, model::NodeV2::validate).unwrap();
        assert_eq!(n, model::NodeV2::follow("node-1"));
    }
}
