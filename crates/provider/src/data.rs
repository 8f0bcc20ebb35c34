//! Data sources: `v2engine_node` (host facts), `v2engine_disks` (candidate disks) and
//! `v2engine_volume_objects` (every volume object the executors made, orphans marked).

use client::ops::objects::{self, Filter, Listing};
use client::v1;
use tfplugin::provider::{ReadDataRequest, ReadDataResponse};
use tfplugin::{Attribute, Block, Diagnostic, Diagnostics, ProviderSchema, Schema, Type, Value};

use crate::context::{Context, ops_diag, warning_diags};

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

/// One element of `v2engine_volume_objects.objects`.
pub fn volume_object_type() -> Type {
    Type::object([
        ("node", Type::String),
        ("kind", Type::String),
        ("name", Type::String),
        ("volume", Type::String),
        ("orphan", Type::Bool),
        ("detail", Type::String),
    ])
}

/// One element of `v2engine_volume_objects.unlisted`.
pub fn unlisted_type() -> Type {
    Type::object([("node", Type::String), ("reason", Type::String)])
}

/// The schema of `v2engine_volume_objects`.
pub fn volume_objects_schema() -> Schema {
    let b = Block::new()
        .description(
            "Every object the executors have made for volumes — lvols, replica and frontend \
             NVMe-oF subsystems, raid1 bdevs, NVMe controllers — with the node it lives on. An \
             object with v2engine's naming whose volume no volume record names is an orphan: it \
             is listed with `orphan = true` and a warning names node and object; orphans are \
             never deleted automatically. Nodes that are down, or whose engine is not running, \
             are listed in `unlisted` with why instead of failing the read (as long as one \
             executor answers).",
        )
        .attribute(Attribute::optional("node", Type::String).description(
            "Only this node's objects (a key of the provider's `nodes`). Default: every node.",
        ))
        .attribute(
            Attribute::optional("orphans_only", Type::Bool)
                .description("Only orphans. Default `false`."),
        )
        .attribute(
            Attribute::computed("objects", Type::list(volume_object_type())).description(
                "The objects, by node, volume, kind and name: `node`, `kind` (`lvol`, \
                 `replica_subsystem`, `frontend_subsystem`, `raid`, `controller`), `name` (lvol \
                 `lvstore/name`, subsystem NQN, raid or controller name), the `volume` its name \
                 belongs to, `orphan` (no volume record names that volume) and `detail` (size, \
                 state, listener).",
            ),
        )
        .attribute(
            Attribute::computed("unlisted", Type::list(unlisted_type())).description(
                "Nodes whose objects could not be listed, with the `reason` (unreachable, or \
                 the engine is not running).",
            ),
        );
    Schema::new(0, b)
}

/// The listing as the `v2engine_volume_objects` object, keeping the configured filter.
pub fn volume_objects_value(config: &Value, l: &Listing) -> Value {
    let keep = |name: &str| config.get_attr(name).cloned().unwrap_or(Value::Null);
    Value::object([
        ("node", keep("node")),
        ("orphans_only", keep("orphans_only")),
        (
            "objects",
            Value::List(
                l.objects
                    .iter()
                    .map(|o| {
                        Value::object([
                            ("node", Value::string(&o.node)),
                            ("kind", Value::string(&o.kind)),
                            ("name", Value::string(&o.name)),
                            ("volume", Value::string(&o.volume)),
                            ("orphan", Value::Bool(o.orphan)),
                            ("detail", Value::string(&o.detail)),
                        ])
                    })
                    .collect(),
            ),
        ),
        (
            "unlisted",
            Value::List(
                l.unlisted
                    .iter()
                    .map(|u| {
                        Value::object([
                            ("node", Value::string(&u.node)),
                            ("reason", Value::string(&u.reason)),
                        ])
                    })
                    .collect(),
            ),
        ),
    ])
}

fn config_node(config: &Value) -> Option<String> {
    config
        .get_attr("node")
        .and_then(Value::as_str)
        .map(str::to_string)
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
        "v2engine_disks" => {
            let node = config_node(&req.config).unwrap_or_default();
            let paths: Vec<String> = req
                .config
                .get_attr("paths")
                .and_then(Value::as_elements)
                .unwrap_or_default()
                .iter()
                .filter_map(|p| p.as_str().map(str::to_string))
                .collect();
            let candidates = client::ops::block_disk::candidates(ctx, &node, &paths)
                .await
                .map_err(|e| ops_diag("Cannot list the disks", e))?;
            let eligible = candidates
                .iter()
                .filter(|c| c.excluded.is_empty())
                .map(|c| Value::string(&c.path))
                .collect();
            Ok(ReadDataResponse {
                state: Value::object([
                    ("node", Value::string(&node)),
                    (
                        "paths",
                        req.config.get_attr("paths").cloned().unwrap_or(Value::Null),
                    ),
                    (
                        "candidates",
                        Value::List(candidates.iter().map(candidate_value).collect()),
                    ),
                    ("eligible_paths", Value::List(eligible)),
                ]),
                diagnostics: Diagnostics::new(),
            })
        }
        "v2engine_volume_objects" => {
            let filter = Filter {
                node: config_node(&req.config),
                orphans_only: req
                    .config
                    .get_attr("orphans_only")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            };
            let out = objects::list(ctx, &filter)
                .await
                .map_err(|e| ops_diag("Cannot list the volume objects", e))?;
            Ok(ReadDataResponse {
                state: volume_objects_value(&req.config, &out.value),
                diagnostics: warning_diags(&out.warnings),
            })
        }
        other => Err(Diagnostic::error(
            "Unknown data source",
            format!("{other} is not a v2engine data source"),
        )
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use client::ops::objects::{NodeObject, Unlisted};

    fn listing() -> Listing {
        Listing {
            objects: vec![NodeObject {
                node: "node-2".into(),
                kind: "lvol".into(),
                name: "lvs-d1/ghost-r-0a1b2c3d".into(),
                volume: "ghost".into(),
                orphan: true,
                detail: "16 MiB thin".into(),
            }],
            unlisted: vec![Unlisted {
                node: "node-3".into(),
                reason: "the engine is not running".into(),
            }],
        }
    }

    #[test]
    fn volume_objects_state_matches_the_schema_and_keeps_the_config() {
        let ty = volume_objects_schema().value_type();
        let config = Value::object([
            ("node", Value::string("node-2")),
            ("orphans_only", Value::Null),
            ("objects", Value::Null),
            ("unlisted", Value::Null),
        ]);
        let v = volume_objects_value(&config, &listing());
        let bytes = tfplugin::msgpack::encode(&v, &ty).unwrap();
        let back = tfplugin::msgpack::decode(&bytes, &ty).unwrap();
        assert_eq!(back, v);
        assert_eq!(v.get_attr("node"), Some(&Value::string("node-2")));
        assert_eq!(v.get_attr("orphans_only"), Some(&Value::Null));
        let o = &v.get_attr("objects").unwrap().as_elements().unwrap()[0];
        assert_eq!(o.get_attr("orphan"), Some(&Value::Bool(true)));
        assert_eq!(
            v.get_attr("unlisted").unwrap().as_elements().unwrap()[0].get_attr("reason"),
            Some(&Value::string("the engine is not running"))
        );
    }

    #[tokio::test]
    async fn every_declared_data_source_is_served() {
        let ctx = Context::new(
            client::Fleet::new(Default::default(), Default::default()),
            100,
        );
        let schema = crate::schema::provider_schema().unwrap();
        let names: Vec<String> = crate::schema::data_sources()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            names,
            ["v2engine_node", "v2engine_disks", "v2engine_volume_objects"]
        );
        for n in names {
            let config = Value::object([("node", Value::string("node-9"))]);
            let r = read(
                &ctx,
                &schema,
                ReadDataRequest {
                    type_name: n.clone(),
                    config,
                },
            )
            .await;
            // Served: the unknown node is the error, not the data source.
            let d = r.err().unwrap_or_default();
            assert!(
                d.iter().all(|d| d.summary != "Unknown data source"),
                "{n}: {d:?}"
            );
            assert!(d.has_errors(), "{n}: node-9 is not in the fleet");
        }
    }
}
