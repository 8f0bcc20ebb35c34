//! Terraform registry docs (docs/index.md, docs/resources/*, docs/data-sources/*) generated
//! from the provider schema (itself generated from the model) and the examples/ files.
//! `docs/guides/` and `docs/design.md` (the product's semantics) are written by hand and left
//! alone: only the generated files are compared, so hand-written ones never make the check
//! fail; a test holds design.md to naming every resource and data source the provider serves.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use tfplugin::{AttributeKind, AttributeMode, Block, Schema, Type};

/// What can go wrong generating or checking docs.
#[derive(Debug, thiserror::Error)]
pub enum DocsError {
    /// The provider schema could not be derived.
    #[error("provider schema: {0}")]
    Schema(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Generated docs differ from the committed ones.
    #[error("docs are out of date with the model ({0}); run `cargo xtask gen-docs`")]
    Stale(String),
}

fn read(path: &Path) -> Result<String, DocsError> {
    std::fs::read_to_string(path).map_err(|source| DocsError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn type_name(t: &Type) -> String {
    match t {
        Type::String => "String".into(),
        Type::Number => "Number".into(),
        Type::Bool => "Boolean".into(),
        Type::List(e) => format!("List of {}", type_name(e)),
        Type::Set(e) => format!("Set of {}", type_name(e)),
        Type::Map(e) => format!("Map of {}", type_name(e)),
        Type::Object(_) => "Object".into(),
        Type::Tuple(_) => "Tuple".into(),
        Type::Dynamic => "Dynamic".into(),
    }
}

fn object_fields(t: &Type) -> Option<&BTreeMap<String, Type>> {
    match t {
        Type::Object(m) => Some(m),
        Type::List(e) | Type::Set(e) | Type::Map(e) => object_fields(e),
        _ => None,
    }
}

fn block_markdown(out: &mut String, block: &Block, anchor: &str) {
    let groups = [
        ("Required", AttributeMode::Required),
        ("Optional", AttributeMode::Optional),
        ("Read-Only", AttributeMode::Computed),
    ];
    let mut nested: Vec<(String, &BTreeMap<String, Type>)> = Vec::new();
    for (title, mode) in groups {
        let attrs: Vec<_> = block
            .attributes
            .iter()
            .filter(|a| {
                a.mode == mode
                    || (mode == AttributeMode::Optional
                        && a.mode == AttributeMode::OptionalComputed)
            })
            .collect();
        let blocks: Vec<_> = if mode == AttributeMode::Optional {
            block.blocks.iter().collect()
        } else {
            vec![]
        };
        if attrs.is_empty() && blocks.is_empty() {
            continue;
        }
        let _ = writeln!(out, "### {title}\n");
        for a in attrs {
            let ty = match &a.kind {
                AttributeKind::Type(t) => {
                    if let Some(f) = object_fields(t) {
                        nested.push((format!("{anchor}{}", a.name), f));
                    }
                    type_name(t)
                }
                AttributeKind::Nested(_) => "Nested".into(),
            };
            let _ = writeln!(out, "- `{}` ({ty}) {}", a.name, a.description.trim());
        }
        for b in blocks {
            let _ = writeln!(
                out,
                "- `{}` (Block) See [below for nested schema](#nestedblock--{anchor}{}).",
                b.type_name, b.type_name
            );
        }
        out.push('\n');
    }
    for b in &block.blocks {
        let _ = writeln!(
            out,
            "<a id=\"nestedblock--{anchor}{}\"></a>\n### Nested Schema for `{}`\n",
            b.type_name, b.type_name
        );
        for a in &b.block.attributes {
            let ty = match &a.kind {
                AttributeKind::Type(t) => type_name(t),
                AttributeKind::Nested(_) => "Nested".into(),
            };
            let _ = writeln!(out, "- `{}` ({ty}) {}", a.name, a.description.trim());
        }
        out.push('\n');
    }
    for (name, fields) in nested {
        let _ = writeln!(
            out,
            "<a id=\"nestedatt--{name}\"></a>\n### Nested Schema for `{name}`\n\nRead-Only:\n"
        );
        for (k, t) in fields {
            let _ = writeln!(out, "- `{k}` ({})", type_name(t));
        }
        out.push('\n');
    }
}

fn example(root: &Path, rel: &str, lang: &str, title: &str) -> Result<String, DocsError> {
    let p = root.join(rel);
    if !p.exists() {
        return Ok(String::new());
    }
    Ok(format!(
        "## {title}\n\n```{lang}\n{}\n```\n\n",
        read(&p)?.trim_end()
    ))
}

fn page(root: &Path, kind: &str, name: &str, schema: &Schema) -> Result<String, DocsError> {
    let short = name.trim_start_matches("v2engine_");
    let first = schema
        .block
        .description
        .lines()
        .next()
        .unwrap_or_default()
        .replace('"', "'");
    let mut out = format!(
        "---\npage_title: \"{name} {kind} - v2engine\"\nsubcategory: \"\"\ndescription: |-\n  {first}\n---\n\n# {name} ({})\n\n{}\n\n",
        if kind == "Resource" {
            "Resource"
        } else {
            "Data Source"
        },
        schema.block.description.trim()
    );
    let dir = if kind == "Resource" {
        "resources"
    } else {
        "data-sources"
    };
    let file = if kind == "Resource" {
        "resource.tf"
    } else {
        "data-source.tf"
    };
    out.push_str(&example(
        root,
        &format!("examples/{dir}/{name}/{file}"),
        "terraform",
        "Example Usage",
    )?);
    out.push_str("## Schema\n\n");
    block_markdown(&mut out, &schema.block, "");
    out.push_str(&example(
        root,
        &format!("examples/{dir}/{name}/import.sh"),
        "shell",
        "Import",
    )?);
    let _ = short;
    Ok(out.trim_end().to_string() + "\n")
}

/// Every generated docs file: path relative to the repository → content.
pub fn generate(root: &Path) -> Result<BTreeMap<PathBuf, String>, DocsError> {
    let schema =
        provider::schema::provider_schema().map_err(|e| DocsError::Schema(e.to_string()))?;
    let mut files = BTreeMap::new();
    let mut index = String::from(
        "---\npage_title: \"v2engine Provider\"\ndescription: |-\n  Runs the SPDK V2 data engine on bare-metal Linux hosts as code.\n---\n\n# v2engine Provider\n\n\
         The v2engine provider turns the SPDK-based V2 data engine on across a fleet of Linux hosts, hands it raw \
         disks, defines storage classes and creates replicated volumes. It talks to `v2engine-executor` on every \
         host over SSH (or a local Unix socket). The plan says, before anything changes, which nodes will need a \
         reboot because their hugepages cannot be allocated on fragmented memory.\n\n\
         See the [quickstart guide](guides/quickstart.md) to try it on a local multi-node lab.\n\n",
    );
    index.push_str(&example(
        root,
        "examples/provider/provider.tf",
        "terraform",
        "Example Usage",
    )?);
    index.push_str("## Schema\n\n");
    block_markdown(&mut index, &schema.provider.block, "");
    files.insert(
        PathBuf::from("docs/index.md"),
        index.trim_end().to_string() + "\n",
    );
    for (name, s) in &schema.resources {
        let short = name.trim_start_matches("v2engine_");
        files.insert(
            PathBuf::from(format!("docs/resources/{short}.md")),
            page(root, "Resource", name, s)?,
        );
    }
    for (name, s) in &schema.data_sources {
        let short = name.trim_start_matches("v2engine_");
        files.insert(
            PathBuf::from(format!("docs/data-sources/{short}.md")),
            page(root, "Data Source", name, s)?,
        );
    }
    Ok(files)
}

/// Writes the generated docs under `root`.
pub fn write(root: &Path) -> Result<usize, DocsError> {
    let files = generate(root)?;
    for (rel, content) in &files {
        let p = root.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|source| DocsError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(&p, content).map_err(|source| DocsError::Io {
            path: p.clone(),
            source,
        })?;
    }
    Ok(files.len())
}

/// Checks that the committed docs equal the generated ones.
pub fn check(root: &Path) -> Result<usize, DocsError> {
    let files = generate(root)?;
    for (rel, content) in &files {
        let p = root.join(rel);
        let current = std::fs::read_to_string(&p).unwrap_or_default();
        if &current != content {
            return Err(DocsError::Stale(rel.display().to_string()));
        }
    }
    Ok(files.len())
}

/// The repository root (xtask lives one level below it).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_docs_match_the_model() {
        check(&repo_root()).unwrap();
    }

    #[test]
    fn the_design_names_every_resource_and_data_source() {
        let design = read(&repo_root().join("docs/design.md")).unwrap();
        let schema = provider::schema::provider_schema().unwrap();
        let names: Vec<&String> = schema
            .resources
            .keys()
            .chain(schema.data_sources.keys())
            .collect();
        assert!(names.len() >= 8, "{names:?}");
        for name in names {
            assert!(
                design.contains(&format!("`{name}`")),
                "docs/design.md does not name {name}"
            );
        }
        let generated = generate(&repo_root()).unwrap();
        assert!(!generated.contains_key(&PathBuf::from("docs/design.md")));
    }

    #[test]
    fn every_resource_page_has_schema_and_import() {
        let files = generate(&repo_root()).unwrap();
        for r in [
            "data_engine_setting",
            "node_v2",
            "block_disk",
            "storage_class",
            "volume",
        ] {
            let page = &files[&PathBuf::from(format!("docs/resources/{r}.md"))];
            assert!(
                page.contains("## Schema") && page.contains("### Read-Only"),
                "{r}"
            );
            assert!(page.contains("## Import"), "{r} has no import section");
            assert!(page.contains("## Example Usage"), "{r} has no example");
        }
    }
}
