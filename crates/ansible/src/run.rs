//! One module run, from the arguments file to the result: parse, check the options
//! against the generated spec, validate with the model, connect, execute.

use std::collections::BTreeMap;

use client::Fleet;
use client::ops::Session;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::argspec::{self, ModuleSpec};
use crate::connection;
use crate::exec::{self, Desired};
use crate::module::Module;
use crate::params::{self, Checked, Invocation, ParamsError};
use crate::result::ModuleResult;

/// The provider's default thin-provisioning limit.
const DEFAULT_OVER_PROVISIONING: u64 = 100;

fn decoded<T: DeserializeOwned + Serialize>(
    spec: &ModuleSpec,
    c: &Checked,
    validate: impl Fn(&T) -> Result<(), model::ValidationErrors>,
) -> Result<(T, Value), ParamsError> {
    let v: T = params::decode(spec, c, validate)?;
    let j = serde_json::to_value(&v)
        .map_err(|e| ParamsError::Malformed(format!("cannot encode the spec: {e}")))?;
    Ok((v, j))
}

/// Decodes and validates the resource options with the model; returns the spec as the
/// nodes would store it (defaults filled in).
pub fn validate_spec(m: Module, spec: &ModuleSpec, c: &Checked) -> Result<Value, ParamsError> {
    if m.absent_by_identity() && c.absent() {
        // Deleted by identity: only those options are used.
        let mut ids = serde_json::Map::new();
        for id in m.identity() {
            let v = c.str(id).unwrap_or_default();
            model::validate::check_object_name(v)
                .map_err(|e| ParamsError::Invalid(vec![((*id).to_string(), e)]))?;
            ids.insert((*id).to_string(), Value::from(v));
        }
        return Ok(Value::Object(ids));
    }
    Ok(match m {
        Module::DataEngineSetting => decoded(spec, c, model::DataEngineSetting::validate)?.1,
        Module::NodeV2 => decoded(spec, c, model::NodeV2::validate)?.1,
        Module::BlockDisk => decoded(spec, c, model::BlockDisk::validate)?.1,
        Module::StorageClass => decoded(spec, c, model::StorageClass::validate)?.1,
        Module::Volume => decoded(spec, c, model::Volume::validate)?.1,
    })
}

/// The task's desired object, validated by the model.
pub fn desired(m: Module, spec: &ModuleSpec, c: &Checked) -> Result<Desired, ParamsError> {
    let present = !c.absent();
    let keep = |v| if present { Some(v) } else { None };
    Ok(match m {
        Module::DataEngineSetting => Desired::Setting(keep(
            decoded(spec, c, model::DataEngineSetting::validate)?.0,
        )),
        Module::NodeV2 => {
            let (v, _) = decoded(spec, c, model::NodeV2::validate)?;
            Desired::NodeV2 {
                node: v.node.clone(),
                spec: if present { Some(v) } else { None },
            }
        }
        Module::StorageClass => {
            let (v, _) = decoded(spec, c, model::StorageClass::validate)?;
            Desired::StorageClass {
                name: v.name.clone(),
                spec: if present { Some(v) } else { None },
            }
        }
        Module::BlockDisk => {
            let (v, _) = decoded(spec, c, model::BlockDisk::validate)?;
            Desired::BlockDisk {
                node: v.node.clone(),
                name: v.name.clone(),
                spec: if present { Some(v) } else { None },
            }
        }
        Module::Volume => {
            let allow_replace = c
                .get(crate::common_options::ALLOW_REPLACE)
                .as_bool()
                .unwrap_or(false);
            if present {
                let (v, _) = decoded(spec, c, model::Volume::validate)?;
                Desired::Volume {
                    name: v.name.clone(),
                    spec: Some(v),
                    allow_replace,
                }
            } else {
                // Deleted by name: the other options are not used.
                validate_spec(m, spec, c)?;
                Desired::Volume {
                    name: c.str("name").unwrap_or_default().to_string(),
                    spec: None,
                    allow_replace,
                }
            }
        }
    })
}

/// `over_provisioning_percent`, checked as the provider checks it.
pub fn over_provisioning(c: &Checked) -> Result<u64, ParamsError> {
    match c.get("over_provisioning_percent").as_i64() {
        None => Ok(DEFAULT_OVER_PROVISIONING),
        Some(p) if (1..=10_000).contains(&p) => {
            Ok(u64::try_from(p).unwrap_or(DEFAULT_OVER_PROVISIONING))
        }
        Some(p) => Err(ParamsError::Invalid(vec![(
            "over_provisioning_percent".into(),
            format!("must be 1 to 10000, got {p}"),
        )])),
    }
}

/// The module name ansible-core gives the copied binary's file (`AnsiballZ_node_v2`).
pub fn name_from_program(program: &str) -> &str {
    let base = program.rsplit('/').next().unwrap_or(program);
    base.strip_prefix("AnsiballZ_").unwrap_or(base)
}

/// The options as the module saw them, for `invocation.module_args`.
fn module_args(c: &Checked) -> Value {
    let m: BTreeMap<&String, &Value> = c.values.iter().collect();
    serde_json::to_value(m).unwrap_or(Value::Null)
}

/// Runs the module whose arguments file holds `text`. `program` is the program's path
/// (its file name names the module when the arguments do not).
pub fn run(text: &str, program: Option<&str>) -> ModuleResult {
    let inv = match Invocation::parse(text, program.map(name_from_program)) {
        Ok(i) => i,
        Err(e) => return ModuleResult::fail(e.to_string()),
    };
    let spec = match argspec::module_spec(inv.module) {
        Ok(s) => s,
        Err(e) => return ModuleResult::fail(format!("internal error: {e}")),
    };
    let checked = match params::check(&spec, &inv.params, inv.ignore_unknown) {
        Ok(c) => c,
        Err(e) => return ModuleResult::fail(e.to_string()),
    };
    let mut result = run_checked(&inv, &spec, &checked);
    result.module_args = Some(module_args(&checked));
    result
}

fn run_checked(inv: &Invocation, spec: &ModuleSpec, c: &Checked) -> ModuleResult {
    let prepared = (|| {
        let over = over_provisioning(c)?;
        let desired = desired(inv.module, spec, c)?;
        let home = std::env::var("HOME").ok();
        let conn = connection::from_checked(inv.module, c, home.as_deref())?;
        connection::check_files(&conn, c.is_given("executor_socket"))?;
        Ok::<_, ParamsError>((over, desired, conn))
    })();
    let (over, desired, conn) = match prepared {
        Ok(p) => p,
        Err(e) => return ModuleResult::fail(e.to_string()),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return ModuleResult::fail(format!("cannot start the async runtime: {e}")),
    };
    let session = Session::new(Fleet::new(conn.endpoints, conn.options), over);
    match rt.block_on(exec::execute(&session, desired, inv.check_mode)) {
        Ok(report) => report.into_result(inv.check_mode, inv.diff),
        Err(e) => ModuleResult::fail(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(module: &str, v: Value) -> String {
        let mut v = v;
        v["_ansible_module_name"] = json!(format!("v2engine.storage.{module}"));
        v.to_string()
    }

    #[test]
    fn program_names() {
        assert_eq!(name_from_program("/tmp/x/AnsiballZ_node_v2"), "node_v2");
        assert_eq!(name_from_program("volume"), "volume");
    }

    #[test]
    fn bad_options_fail_naming_the_option() {
        let r = run(
            &args(
                "storage_class",
                json!({"name": "x", "number_of_replicas": 0, "nodes": {"n": {"endpoint": "unix:///nonexistent.sock"}}}),
            ),
            None,
        );
        assert!(r.failed);
        assert_eq!(r.msg, "number_of_replicas: must be between 1 and 20, got 0");
        assert!(r.module_args.is_some());
        let r = run(
            &args(
                "data_engine_setting",
                json!({"enabled": true, "nodes": {"n": {"endpoint": "unix:///x"}}, "over_provisioning_percent": 0}),
            ),
            None,
        );
        assert_eq!(
            r.msg,
            "over_provisioning_percent: must be 1 to 10000, got 0"
        );
    }

    #[test]
    fn volume_options_are_checked_before_any_node_is_reached() {
        let nodes = json!({"n": {"endpoint": "unix:///nonexistent/executor.sock"}});
        let r = run(
            &args(
                "volume",
                json!({"name": "v", "size": "1000", "storage_class": "c", "nodes": nodes}),
            ),
            None,
        );
        assert!(r.failed);
        assert_eq!(
            r.msg,
            "size: 1000 bytes is not a whole number of MiB; use e.g. 1Mi"
        );
        let r = run(
            &args(
                "volume",
                json!({"name": "Bad Name", "state": "absent", "nodes": nodes}),
            ),
            None,
        );
        assert!(r.failed);
        assert!(r.msg.starts_with("name: "), "{}", r.msg);
        let r = run(
            &args(
                "volume",
                json!({"name": "v", "storage_class": "c", "nodes": nodes}),
            ),
            None,
        );
        assert_eq!(
            r.msg,
            "size: missing required argument (required with state=present)"
        );
        let r = run(
            &args(
                "volume",
                json!({"name": "v", "size": "1Gi", "storage_class": "c", "allow_replace": "maybe", "nodes": nodes}),
            ),
            None,
        );
        assert_eq!(
            r.msg,
            "allow_replace: \"maybe\" cannot be converted to a bool"
        );
    }

    #[test]
    fn unreachable_nodes_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("none.sock");
        let r = run(
            &args(
                "storage_class",
                json!({"name": "x", "nodes": {"node-1": {"endpoint": format!("unix://{}", sock.display())}}}),
            ),
            None,
        );
        assert!(r.failed);
        assert!(r.msg.contains("node-1"), "{}", r.msg);
    }
}
