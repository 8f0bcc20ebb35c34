//! Crate dependency rules, checked against `cargo metadata`.
//!
//! The graph is the one of this machine's platform (`--filter-platform` with the host triple
//! that `rustc -vV` reports): cargo then needs, and downloads if missing, only the crates a
//! build here uses, never those of other platforms (windows, android, wasm). It does not run
//! `--offline`, so it works with an empty cargo home, as on a fresh machine.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// What can go wrong checking the rules.
#[derive(Debug, thiserror::Error)]
pub enum DepsError {
    /// `rustc -vV` could not run, failed, or named no host triple.
    #[error("rustc -vV (to find the host triple): {0}")]
    Rustc(String),
    /// `cargo metadata` could not run or failed.
    #[error("cargo metadata failed: {0}")]
    Metadata(String),
    /// Its output is not what we expect.
    #[error("cargo metadata output is malformed: {0}")]
    Malformed(String),
    /// One or more rules are broken; each line names the crate and the dependency.
    #[error("dependency rules broken:\n{}", .0.join("\n"))]
    Broken(Vec<String>),
}

/// A rule: `krate` must not depend (transitively, normal dependencies) on any of `banned`.
/// Names are package names; `WORKSPACE` stands for every workspace member.
pub struct Rule {
    /// Package the rule is about.
    pub krate: &'static str,
    /// Packages it must not reach.
    pub banned: &'static [&'static str],
}

/// Stands for "any workspace crate" in a rule.
pub const WORKSPACE: &str = "<workspace>";

/// The rules of ARCHITECTURE.md ("must not depend on").
pub const RULES: &[Rule] = &[
    Rule {
        krate: "v2engine-model",
        banned: &[
            "tokio",
            "tonic",
            "russh",
            "hyper",
            "mio",
            "nix",
            "v2engine-proto",
        ],
    },
    Rule {
        krate: "v2engine-proto",
        banned: &[WORKSPACE],
    },
    Rule {
        krate: "v2engine-tfplugin",
        banned: &[WORKSPACE],
    },
    Rule {
        krate: "v2engine-client",
        banned: &["v2engine-executor", "v2engine-spdk-rpc", "spdk-sim"],
    },
    Rule {
        krate: "v2engine-spdk-rpc",
        banned: &["tonic", "v2engine-model", "spdk-sim"],
    },
    Rule {
        krate: "v2engine-executor",
        banned: &[
            "v2engine-client",
            "v2engine-provider",
            "v2engine-ansible",
            "russh",
        ],
    },
    Rule {
        krate: "spdk-sim",
        banned: &[WORKSPACE],
    },
    Rule {
        krate: "v2engine-provider",
        banned: &[
            "v2engine-ansible",
            "v2engine-executor",
            "v2engine-spdk-rpc",
            "spdk-sim",
        ],
    },
    Rule {
        krate: "v2engine-ansible",
        banned: &[
            "v2engine-provider",
            "v2engine-executor",
            "v2engine-spdk-rpc",
            "spdk-sim",
        ],
    },
];

/// The workspace's dependency graph: package name → names of its normal dependencies.
#[derive(Debug, Default)]
pub struct Graph {
    members: BTreeSet<String>,
    edges: BTreeMap<String, BTreeSet<String>>,
}

impl Graph {
    /// Builds the graph from `cargo metadata --format-version 1` JSON.
    pub fn from_metadata(meta: &Value) -> Result<Self, DepsError> {
        let packages = meta["packages"]
            .as_array()
            .ok_or_else(|| DepsError::Malformed("no packages".into()))?;
        let mut names = BTreeMap::new();
        for p in packages {
            if let (Some(id), Some(name)) = (p["id"].as_str(), p["name"].as_str()) {
                names.insert(id.to_string(), name.to_string());
            }
        }
        let name_of = |id: &str| {
            names
                .get(id)
                .cloned()
                .ok_or_else(|| DepsError::Malformed(format!("unknown id {id}")))
        };
        let mut g = Graph::default();
        for m in meta["workspace_members"].as_array().into_iter().flatten() {
            g.members.insert(name_of(m.as_str().unwrap_or_default())?);
        }
        let nodes = meta["resolve"]["nodes"]
            .as_array()
            .ok_or_else(|| DepsError::Malformed("no resolve".into()))?;
        for n in nodes {
            let from = name_of(n["id"].as_str().unwrap_or_default())?;
            let entry = g.edges.entry(from).or_default();
            for d in n["deps"].as_array().into_iter().flatten() {
                let normal = d["dep_kinds"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|k| k["kind"].is_null());
                if normal {
                    entry.insert(name_of(d["pkg"].as_str().unwrap_or_default())?);
                }
            }
        }
        Ok(g)
    }

    /// Every package some workspace member reaches through normal dependencies.
    pub fn reachable_from_members(&self) -> BTreeSet<String> {
        self.members
            .iter()
            .flat_map(|m| self.reachable(m))
            .collect()
    }

    /// Every package `krate` reaches through normal dependencies.
    pub fn reachable(&self, krate: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![krate.to_string()];
        while let Some(k) = stack.pop() {
            for d in self.edges.get(&k).into_iter().flatten() {
                if seen.insert(d.clone()) {
                    stack.push(d.clone());
                }
            }
        }
        seen
    }

    /// Checks `rules`; crates that do not exist (yet) are skipped.
    pub fn check(&self, rules: &[Rule]) -> Result<usize, DepsError> {
        let mut broken = Vec::new();
        let mut checked = 0;
        for rule in rules {
            if !self.members.contains(rule.krate) {
                continue;
            }
            checked += 1;
            let reach = self.reachable(rule.krate);
            for b in rule.banned {
                let hits: Vec<&String> = if *b == WORKSPACE {
                    reach.iter().filter(|d| self.members.contains(*d)).collect()
                } else {
                    reach.iter().filter(|d| d.as_str() == *b).collect()
                };
                for h in hits {
                    broken.push(format!(
                        "{} depends on {h}, which ARCHITECTURE.md forbids",
                        rule.krate
                    ));
                }
            }
        }
        if broken.is_empty() {
            Ok(checked)
        } else {
            Err(DepsError::Broken(broken))
        }
    }
}

/// The host triple from the output of `rustc -vV` (its `host: ` line).
pub fn host_triple(rustc_vv: &str) -> Result<String, DepsError> {
    rustc_vv
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| DepsError::Rustc(format!("no `host:` line in its output: {rustc_vv:?}")))
}

/// Runs `cmd` and returns its stdout; `what` names the command in errors.
fn run(cmd: &mut Command, what: fn(String) -> DepsError) -> Result<Vec<u8>, DepsError> {
    let out = cmd.output().map_err(|e| what(e.to_string()))?;
    if !out.status.success() {
        return Err(what(String::from_utf8_lossy(&out.stderr).into_owned()));
    }
    Ok(out.stdout)
}

/// The workspace's graph for this machine's platform, and that platform's triple.
pub fn workspace_graph() -> Result<(Graph, String), DepsError> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let vv = run(Command::new(rustc).arg("-vV"), DepsError::Rustc)?;
    let host = host_triple(&String::from_utf8_lossy(&vv))?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let stdout = run(
        Command::new(cargo).args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--filter-platform",
            &host,
        ]),
        DepsError::Metadata,
    )?;
    let meta: Value =
        serde_json::from_slice(&stdout).map_err(|e| DepsError::Malformed(e.to_string()))?;
    Ok((Graph::from_metadata(&meta)?, host))
}

/// Runs `cargo metadata` for this machine's platform on this workspace and checks [`RULES`].
pub fn check_workspace() -> Result<String, DepsError> {
    let (g, host) = workspace_graph()?;
    let n = g.check(RULES)?;
    let packages = g.reachable_from_members().len();
    Ok(format!(
        "dependency rules hold for {n} crates ({packages} packages reached on {host})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta() -> Value {
        json!({
            "packages": [
                {"id": "m", "name": "v2engine-model"},
                {"id": "c", "name": "v2engine-client"},
                {"id": "e", "name": "v2engine-executor"},
                {"id": "t", "name": "tokio"}
            ],
            "workspace_members": ["m", "c", "e"],
            "resolve": {"nodes": [
                {"id": "m", "deps": [{"pkg": "t", "dep_kinds": [{"kind": "dev"}]}]},
                {"id": "c", "deps": [{"pkg": "m", "dep_kinds": [{"kind": null}]},
                                      {"pkg": "e", "dep_kinds": [{"kind": null}]}]},
                {"id": "e", "deps": [{"pkg": "t", "dep_kinds": [{"kind": null}]}]},
                {"id": "t", "deps": []}
            ]}
        })
    }

    #[test]
    fn dev_dependencies_do_not_count() {
        let g = Graph::from_metadata(&meta()).unwrap();
        assert!(!g.reachable("v2engine-model").contains("tokio"));
    }

    #[test]
    fn forbidden_edges_are_reported_by_name() {
        let g = Graph::from_metadata(&meta()).unwrap();
        let err = g.check(RULES).unwrap_err().to_string();
        assert!(
            err.contains("v2engine-client depends on v2engine-executor"),
            "{err}"
        );
        assert!(!err.contains("v2engine-model"), "{err}");
    }

    #[test]
    fn transitive_edges_count() {
        let g = Graph::from_metadata(&meta()).unwrap();
        assert!(g.reachable("v2engine-client").contains("tokio"));
    }

    #[test]
    fn host_triple_comes_from_the_host_line() {
        let vv = "rustc 1.95.0 (59807616e 2026-04-14)\nbinary: rustc\n\
                  host: x86_64-unknown-linux-gnu\nrelease: 1.95.0\n";
        assert_eq!(host_triple(vv).unwrap(), "x86_64-unknown-linux-gnu");
        let err = host_triple("rustc 1.95.0\nrelease: 1.95.0\n").unwrap_err();
        assert!(err.to_string().contains("no `host:` line"), "{err}");
    }

    #[test]
    fn the_graph_is_this_platforms_only() {
        // Cargo.lock holds windows and android crates (chrono, tokio, ring reach them on those
        // platforms); a build here never downloads them, so the check must not need them.
        let (g, host) = workspace_graph().unwrap();
        let lock = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock"),
        )
        .unwrap();
        let reach = g.reachable_from_members();
        assert!(reach.contains("tokio"), "{reach:?}");
        if host.contains("linux") {
            for other in ["windows-sys", "android_system_properties"] {
                assert!(
                    lock.contains(&format!("name = \"{other}\"")),
                    "{other} not in Cargo.lock"
                );
                assert!(!reach.contains(other), "{other} is in the {host} graph");
            }
        }
    }

    #[test]
    fn this_workspace_keeps_the_rules() {
        // The real check, run as a test so `cargo test` enforces it.
        check_workspace().unwrap();
    }
}
