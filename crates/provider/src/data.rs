//! Data sources: `v2engine_node` (host facts).

use client::v1;
use tfplugin::provider::{ReadDataRequest, ReadDataResponse};
use tfplugin::{Diagnostic, Diagnostics, ProviderSchema, Value};

use crate::context::{Context, ops_diag};

fn num(n: u64) -> Value {
    Value::number(n)
}

fn module_state(s: i32) -> &'static str {
    match v1::ModuleState::try_from(s) {
        Ok(v1::ModuleState::Loaded) => "loaded",
        Ok(v1::ModuleState::Builtin) => "builtin",
        Ok(v1::ModuleState::Loadable) => "loadable",
        Ok(v1::ModuleState::Missing) => "missing",
        _ => "unknown",
    }
}

/// Facts as the `v2engine_node` object.
pub fn facts_value(node: &str, f: &v1::HostFacts) -> Value {
    let hp = f.hugepages.unwrap_or_default();
    Value::object([
        ("node", Value::string(node)),
        ("hostname", Value::string(&f.hostname)),
        ("kernel_release", Value::string(&f.kernel_release)),
        ("simulated", Value::Bool(f.simulated)),
        ("memory_total_bytes", num(f.memory_total_bytes)),
        ("cpu_count", num(u64::from(f.cpu_count))),
        ("hugepages_total", num(hp.total)),
        ("hugepages_free", num(hp.free)),
        ("hugepages_allocatable_now", num(hp.allocatable_now)),
        (
            "modules",
            Value::List(
                f.modules
                    .iter()
                    .map(|m| {
                        Value::object([
                            ("name", Value::string(&m.name)),
                            ("state", Value::string(module_state(m.state))),
                        ])
                    })
                    .collect(),
            ),
        ),
        (
            "tools",
            Value::Map(
                f.tools
                    .iter()
                    .map(|t| (t.name.clone(), Value::Bool(t.present)))
                    .collect(),
            ),
        ),
        ("boot_persistence", Value::string(&f.boot_persistence_auto)),
    ])
}

/// One disk candidate as a Terraform object.
pub fn candidate_value(c: &v1::DiskCandidate) -> Value {
    let strings = |v: &[String]| Value::List(v.iter().map(Value::string).collect());
    Value::object([
        ("path", Value::string(&c.path)),
        ("device", Value::string(&c.device)),
        ("size_bytes", num(c.size_bytes)),
        ("partition", Value::Bool(c.partition)),
        ("by_id", strings(&c.by_id)),
        ("signature", Value::string(&c.signature)),
        ("eligible", Value::Bool(c.excluded.is_empty())),
        ("excluded", strings(&c.excluded)),
        ("disk", Value::string(&c.disk)),
    ])
}

/// Reads a data source.
pub async fn read(
    ctx: &Context,
    _schema: &ProviderSchema,
    req: ReadDataRequest,
) -> Result<ReadDataResponse, Diagnostics> {
    match req.type_name.as_str() {
        "v2engine_node" => {
            let node = req
                .config
                .get_attr("node")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            ctx.check_node("node", &node)
                .map_err(|e| ops_diag("Unknown node", e))?;
            let obs = ctx
                .observed()
                .await
                .map_err(|e| ops_diag("Cannot read the nodes", e))?;
            let facts = obs.facts(&node).cloned().ok_or_else(|| {
                Diagnostics::from(Diagnostic::error(
                    "No facts",
                    format!("node {node} sent no host facts"),
                ))
            })?;
            Ok(ReadDataResponse {
                state: facts_value(&node, &facts),
                diagnostics: Diagnostics::new(),
            })
        }
        other => Err(Diagnostic::error(
            "Unknown data source",
            format!("{other} is not a v2engine data source"),
        )
        .into()),
    }
}
