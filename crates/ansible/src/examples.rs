//! The EXAMPLES of each module's documentation, as data: they are rendered into the
//! sidecar docs and checked against the argument spec by the tests, so an example can
//! never use an option that does not exist or a value the module refuses.

use crate::module::Module;
use crate::yaml::Yaml;

fn s(v: &str) -> Yaml {
    Yaml::str(v)
}

fn task(name: &str, module: Module, args: Vec<(&str, Yaml)>) -> Vec<(String, Yaml)> {
    vec![
        ("name".to_string(), s(name)),
        (module.fqcn(), Yaml::map(args)),
    ]
}

fn with(mut t: Vec<(String, Yaml)>, extra: Vec<(&str, Yaml)>) -> Yaml {
    t.extend(extra.into_iter().map(|(k, v)| (k.to_string(), v)));
    Yaml::Map(t)
}

/// The connection options from the lab's (or any) inventory, for `module_defaults`.
pub fn module_defaults() -> Yaml {
    Yaml::map([(
        "group/v2engine.storage.all",
        Yaml::map([
            ("nodes", s("{{ v2engine_nodes }}")),
            (
                "ssh_private_key_file",
                s("{{ v2engine_ssh_private_key_file }}"),
            ),
            (
                "ssh_known_hosts_file",
                s("{{ v2engine_ssh_known_hosts_file }}"),
            ),
        ]),
    )])
}

/// The example tasks (and plays) of `m`, as a YAML sequence.
pub fn examples(m: Module) -> Yaml {
    let items = match m {
        Module::DataEngineSetting => vec![
            Yaml::map([
                ("name", s("Turn the V2 data engine on across the fleet")),
                ("hosts", s("localhost")),
                ("gather_facts", Yaml::Bool(false)),
                ("module_defaults", module_defaults()),
                (
                    "tasks",
                    Yaml::Seq(vec![
                        with(
                            task(
                                "Enable the engine with 1 GiB of hugepages per node",
                                m,
                                vec![
                                    ("enabled", Yaml::Bool(true)),
                                    ("hugepage_limit_mib", Yaml::Int(1024)),
                                    ("cpu_mask", s("0x3")),
                                ],
                            ),
                            vec![("register", s("setting"))],
                        ),
                        Yaml::map([
                            ("name", s("Nodes that need a reboot to get their hugepages")),
                            (
                                "ansible.builtin.debug",
                                Yaml::map([("var", s("setting.reboot_required_nodes"))]),
                            ),
                        ]),
                    ]),
                ),
            ]),
            with(
                task(
                    "Turn the engine off again (every node falls back to the defaults)",
                    m,
                    vec![("state", s("absent"))],
                ),
                vec![],
            ),
        ],
        Module::NodeV2 => vec![
            with(
                task(
                    "Keep a small node out of the V2 data engine",
                    m,
                    vec![("node", s("node-3")), ("enabled", Yaml::Bool(false))],
                ),
                vec![],
            ),
            with(
                task(
                    "Give this host 4 GiB of hugepages (runs on the host, against its local executor)",
                    m,
                    vec![
                        ("node", s("{{ v2engine_node }}")),
                        ("hugepage_limit_mib", Yaml::Int(4096)),
                        ("boot_persistence", s("systemd")),
                    ],
                ),
                vec![("register", s("node"))],
            ),
            Yaml::map([
                ("name", s("Reboot when the hugepages need it")),
                (
                    "ansible.builtin.reboot",
                    Yaml::map([("msg", s("v2engine: {{ node.reboot_reasons | join('; ') }}"))]),
                ),
                ("when", s("node.reboot_required")),
            ]),
            with(
                task(
                    "Predict whether node-2 would need a reboot for 8 GiB (changes nothing)",
                    m,
                    vec![
                        ("node", s("node-2")),
                        ("hugepage_limit_mib", Yaml::Int(8192)),
                    ],
                ),
                vec![
                    ("check_mode", Yaml::Bool(true)),
                    ("register", s("prediction")),
                ],
            ),
        ],
        Module::BlockDisk => vec![
            with(
                task(
                    "Hand an NVMe disk of node-1 to the engine",
                    m,
                    vec![
                        ("node", s("node-1")),
                        ("name", s("nvme-1")),
                        (
                            "path",
                            s("/dev/disk/by-id/nvme-SAMSUNG_MZQL21T9HCJR-00A07_S64GNE0R123456"),
                        ),
                        ("tags", Yaml::strs(["nvme", "fast"])),
                    ],
                ),
                vec![],
            ),
            with(
                task(
                    "Every disk the inventory lists for this host (local executor)",
                    m,
                    vec![
                        ("node", s("{{ v2engine_node }}")),
                        ("name", s("disk-{{ idx + 1 }}")),
                        ("path", s("{{ item }}")),
                    ],
                ),
                vec![
                    ("loop", s("{{ v2engine_disks }}")),
                    ("loop_control", Yaml::map([("index_var", s("idx"))])),
                ],
            ),
        ],
        Module::StorageClass => vec![
            with(
                task(
                    "Two replicas, one on the attach node when possible",
                    m,
                    vec![
                        ("name", s("replicated")),
                        ("number_of_replicas", Yaml::Int(2)),
                        ("data_locality", s("best-effort")),
                    ],
                ),
                vec![],
            ),
            with(
                task(
                    "One local replica on NVMe disks, exposed as a block device",
                    m,
                    vec![
                        ("name", s("local-nvme")),
                        ("number_of_replicas", Yaml::Int(1)),
                        ("data_locality", s("strict-local")),
                        ("disk_selector", Yaml::strs(["nvme"])),
                        ("frontend", s("block")),
                    ],
                ),
                vec![],
            ),
            with(
                task(
                    "Remove a class no volume uses",
                    m,
                    vec![("name", s("old")), ("state", s("absent"))],
                ),
                vec![],
            ),
        ],
        Module::Volume => vec![
            with(
                task(
                    "A 10 GiB volume attached to node-1",
                    m,
                    vec![
                        ("name", s("data-1")),
                        ("size", s("10Gi")),
                        ("storage_class", s("replicated")),
                        ("attach_node", s("node-1")),
                    ],
                ),
                vec![("register", s("vol"))],
            ),
            Yaml::map([
                ("name", s("Where its replicas live")),
                (
                    "ansible.builtin.debug",
                    Yaml::map([("var", s("vol.replicas"))]),
                ),
            ]),
            Yaml::Map(task(
                "Grow it in place (shrinking is refused, naming size)",
                m,
                vec![
                    ("name", s("data-1")),
                    ("size", s("20Gi")),
                    ("storage_class", s("replicated")),
                    ("attach_node", s("node-1")),
                ],
            )),
            Yaml::Map(task(
                "Move its engine and frontend to node-2, keeping the replicas",
                m,
                vec![
                    ("name", s("data-1")),
                    ("size", s("20Gi")),
                    ("storage_class", s("replicated")),
                    ("attach_node", s("node-2")),
                ],
            )),
            Yaml::Map(task(
                "Another class replaces the volume and loses its data: only with allow_replace",
                m,
                vec![
                    ("name", s("scratch")),
                    ("size", s("1Gi")),
                    ("storage_class", s("single")),
                    ("allow_replace", Yaml::Bool(true)),
                ],
            )),
            Yaml::Map(task(
                "Delete a volume (by name) with its replicas, exports and raid",
                m,
                vec![("name", s("scratch")), ("state", s("absent"))],
            )),
        ],
    };
    Yaml::Seq(items)
}

/// The `(module, options)` of every task of `m`'s examples that calls a module of this
/// collection, including tasks inside plays.
pub fn module_calls(m: Module) -> Vec<(Module, Vec<(String, Yaml)>)> {
    let mut out = Vec::new();
    if let Yaml::Seq(items) = examples(m) {
        for item in &items {
            collect_calls(item, &mut out);
        }
    }
    out
}

fn collect_calls(item: &Yaml, out: &mut Vec<(Module, Vec<(String, Yaml)>)>) {
    let Yaml::Map(pairs) = item else {
        return;
    };
    for (k, v) in pairs {
        if k == "tasks" {
            if let Yaml::Seq(tasks) = v {
                for t in tasks {
                    collect_calls(t, out);
                }
            }
        } else if let Some(short) = k.strip_prefix("v2engine.storage.")
            && let (Ok(module), Yaml::Map(args)) = (Module::parse(short), v)
        {
            out.push((module, args.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::argspec::module_spec;
    use crate::params::check;
    use serde_json::Value;

    fn to_json(y: &Yaml) -> Value {
        match y {
            Yaml::Null => Value::Null,
            Yaml::Bool(b) => Value::Bool(*b),
            Yaml::Int(i) => Value::from(*i),
            Yaml::Str(s) => Value::String(s.clone()),
            Yaml::Seq(xs) => Value::Array(xs.iter().map(to_json).collect()),
            Yaml::Map(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
        }
    }

    #[test]
    fn every_example_uses_real_options_and_valid_values() {
        for m in Module::ALL {
            let calls = module_calls(m);
            assert!(calls.iter().any(|(c, _)| *c == m), "{m} has no example");
            for (module, args) in calls {
                let spec = module_spec(module).unwrap();
                // Templated values are filled in by Ansible; check the literal ones.
                let mut params: serde_json::Map<String, Value> = args
                    .iter()
                    .filter(|(_, v)| !matches!(v, Yaml::Str(s) if s.contains("{{")))
                    .map(|(k, v)| (k.clone(), to_json(v)))
                    .collect();
                for (k, _) in args.iter().filter(|(k, _)| !params.contains_key(k)) {
                    assert!(spec.option(k).is_some(), "{module}: example option {k}");
                }
                // Connection options come from module_defaults in the examples.
                params
                    .entry("nodes")
                    .or_insert_with(|| serde_json::json!({"node-1": {"endpoint": "unix:///x"}}));
                for id in module.identity() {
                    params.entry(*id).or_insert_with(|| Value::from("node-1"));
                }
                if spec.option("path").is_some() {
                    params
                        .entry("path")
                        .or_insert_with(|| Value::from("/dev/x"));
                }
                let checked = check(&spec, &params, false)
                    .unwrap_or_else(|e| panic!("{module} example: {e}"));
                crate::run::validate_spec(module, &spec, &checked)
                    .unwrap_or_else(|e| panic!("{module} example: {e}"));
            }
        }
    }
}
