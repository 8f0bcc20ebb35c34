//! Terraform schemas generated from the model's resource schemas.

use model::schema::{AttrType, Attribute as ModelAttribute, Mode, ResourceSchema};
use tfplugin::{Attribute, Block, BlockNesting, NestedBlock, ProviderSchema, Schema, Type};

/// Resource and data source names carry this prefix.
pub const PREFIX: &str = "v2engine_";

/// Schema version of every resource (bump with an upgrade path when it changes).
pub const SCHEMA_VERSION: i64 = 0;

/// The cty type of a model attribute type.
pub fn cty(t: &AttrType) -> Type {
    match t {
        AttrType::String => Type::String,
        AttrType::Int => Type::Number,
        AttrType::Bool => Type::Bool,
        AttrType::List { element } => Type::list(cty(element)),
        AttrType::Map { element } => Type::map(cty(element)),
        AttrType::Object { attributes } => {
            Type::object(attributes.iter().map(|a| (a.name.clone(), cty(&a.ty))))
        }
    }
}

/// The description Terraform shows: the doc text, allowed values, default, replacement.
pub fn describe(a: &ModelAttribute) -> String {
    let mut d = a.description.clone();
    if !a.allowed.is_empty() {
        let vals: Vec<String> = a.allowed.iter().map(|v| format!("`{v}`")).collect();
        d.push_str(&format!(" One of {}.", vals.join(", ")));
    }
    if let Some(def) = &a.default {
        d.push_str(&format!(" Default `{def}`."));
    }
    if a.force_new {
        d.push_str(" Changing it replaces the resource.");
    }
    d
}

fn attribute(a: &ModelAttribute) -> Attribute {
    let ty = cty(&a.ty);
    let attr = match a.mode {
        Mode::Required => Attribute::required(&a.name, ty),
        Mode::Optional => Attribute::optional(&a.name, ty),
        Mode::OptionalComputed => Attribute::optional_computed(&a.name, ty),
        Mode::Computed => Attribute::computed(&a.name, ty),
    };
    attr.description(describe(a))
}

/// The `timeouts` block every resource has: `create`, `update`, `delete` durations
/// such as "30s", "10m" or "1h".
pub fn timeouts_block() -> NestedBlock {
    let b = Block::new()
        .attribute(
            Attribute::optional("create", Type::String)
                .description("How long create may take, e.g. \"10m\". Default 10m."),
        )
        .attribute(
            Attribute::optional("update", Type::String)
                .description("How long update may take. Default 10m."),
        )
        .attribute(
            Attribute::optional("delete", Type::String)
                .description("How long delete may take. Default 10m."),
        );
    NestedBlock::new("timeouts", BlockNesting::Single, b)
}

/// The Terraform schema of one resource.
pub fn resource_schema(r: &ResourceSchema) -> Schema {
    let mut b =
        Block::new().description(format!("{}\n\nImport id: {}.", r.description, r.id_format));
    for a in &r.attributes {
        b = b.attribute(attribute(a));
    }
    Schema::new(SCHEMA_VERSION, b.block(timeouts_block()))
}

/// The `provider "v2engine"` block.
pub fn provider_block() -> Schema {
    let node = Type::object([("endpoint", Type::String)]);
    let b = Block::new()
        .description("Reaches the v2engine executors of a fleet of hosts.")
        .attribute(
            Attribute::required("nodes", Type::map(node)).description(
                "The hosts: node name → { endpoint }. Endpoints are `ssh://user@host[:port][/executor-socket]` \
                 (default socket /run/v2engine/executor.sock) or `unix:///path` for an executor on this machine.",
            ),
        )
        .attribute(
            Attribute::optional("ssh_private_key_file", Type::String)
                .description("Private key for ssh endpoints; without it the ssh-agent at SSH_AUTH_SOCK is used."),
        )
        .attribute(
            Attribute::optional("ssh_known_hosts_file", Type::String)
                .description("known_hosts file that host keys of ssh endpoints are verified against (required for ssh endpoints)."),
        )
        .attribute(
            Attribute::optional("over_provisioning_percent", Type::Number)
                .description("Thin provisioning limit used by volume placement. Default 100."),
        );
    Schema::new(0, b)
}

/// Data sources: `v2engine_node` (facts of one node), `v2engine_disks` (candidate disks) and
/// `v2engine_volume_objects` (declared in [`crate::data`]).
pub fn data_sources() -> Vec<(String, Schema)> {
    let module = Type::object([("name", Type::String), ("state", Type::String)]);
    let node = Block::new()
        .description("Facts about one node's host, read fresh from its executor.")
        .attribute(Attribute::required("node", Type::String).description("Node name."))
        .attribute(Attribute::computed("hostname", Type::String).description("Host name."))
        .attribute(
            Attribute::computed("kernel_release", Type::String).description("Kernel release."),
        )
        .attribute(Attribute::computed("simulated", Type::Bool).description("True for a lab host."))
        .attribute(Attribute::computed("memory_total_bytes", Type::Number).description("Memory."))
        .attribute(Attribute::computed("cpu_count", Type::Number).description("CPUs."))
        .attribute(
            Attribute::computed("hugepages_total", Type::Number)
                .description("2 MiB hugepages in the pool."),
        )
        .attribute(
            Attribute::computed("hugepages_free", Type::Number)
                .description("Free 2 MiB hugepages."),
        )
        .attribute(
            Attribute::computed("hugepages_allocatable_now", Type::Number).description(
                "2 MiB pages the kernel could add right now (free blocks of order ≥ 9).",
            ),
        )
        .attribute(
            Attribute::computed("modules", Type::list(module))
                .description("Needed kernel modules: loaded, builtin, loadable or missing."),
        )
        .attribute(
            Attribute::computed("tools", Type::map(Type::Bool))
                .description("modprobe, nvme, mdadm: present or not."),
        )
        .attribute(
            Attribute::computed("boot_persistence", Type::String)
                .description("Backend `auto` resolves to."),
        );
    let candidate = disk_candidate_type();
    let disks = Block::new()
        .description("Block devices on one node that could become `v2engine_block_disk`s, and for each excluded one why.")
        .attribute(Attribute::required("node", Type::String).description("Node name."))
        .attribute(
            Attribute::optional("paths", Type::list(Type::String))
                .description("Paths to inspect besides every device the node's sysfs lists, e.g. /dev/disk/by-id/... names."),
        )
        .attribute(
            Attribute::computed("candidates", Type::list(candidate))
                .description("Every device: path, kernel device, size, by-id names, signature, `eligible`, and the reasons it is `excluded`."),
        )
        .attribute(Attribute::computed("eligible_paths", Type::list(Type::String)).description("Paths of the devices that can become disks."));
    vec![
        (format!("{PREFIX}node"), Schema::new(0, node)),
        (format!("{PREFIX}disks"), Schema::new(0, disks)),
        (
            format!("{PREFIX}volume_objects"),
            crate::data::volume_objects_schema(),
        ),
    ]
}

/// One element of `v2engine_disks.candidates`.
pub fn disk_candidate_type() -> Type {
    Type::object([
        ("path", Type::String),
        ("device", Type::String),
        ("size_bytes", Type::Number),
        ("partition", Type::Bool),
        ("by_id", Type::list(Type::String)),
        ("signature", Type::String),
        ("eligible", Type::Bool),
        ("excluded", Type::list(Type::String)),
        ("disk", Type::String),
    ])
}

/// Everything the provider declares.
pub fn provider_schema() -> Result<ProviderSchema, model::schema::SchemaError> {
    let mut s = ProviderSchema {
        provider: provider_block(),
        ..Default::default()
    };
    for r in model::schema::resources()? {
        s.resources
            .insert(format!("{PREFIX}{}", r.name), resource_schema(&r));
    }
    s.data_sources.extend(data_sources());
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_has_id_and_timeouts() {
        let s = provider_schema().unwrap();
        assert_eq!(s.resources.len(), 5);
        for (name, schema) in &s.resources {
            let b = &schema.block;
            assert!(b.get_attribute("id").is_some(), "{name} has no id");
            assert!(
                b.blocks.iter().any(|nb| nb.type_name == "timeouts"),
                "{name} has no timeouts"
            );
        }
    }

    #[test]
    fn descriptions_carry_enums_and_defaults() {
        let s = provider_schema().unwrap();
        let sc = &s.resources["v2engine_storage_class"].block;
        let d = sc
            .get_attribute("data_locality")
            .unwrap()
            .description
            .clone();
        assert!(
            d.contains("`best-effort`")
                && d.contains("Default `\"disabled\"`")
                && d.contains("replaces"),
            "{d}"
        );
    }
}
