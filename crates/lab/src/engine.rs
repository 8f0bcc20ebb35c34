//! Which engine the lab's nodes run (pure): `--spdk sim|VERSION|PATH`.
//!
//! - `sim`: spdk-sim, the workspace's stand-in (next to v2engine-lab);
//! - a version name such as `v24.09` or `v26.05-crypto`: that build in the real-SPDK
//!   directory (`$V2ENGINE_SPDK_REAL`, else `../shared/spdk/real` beside the checkout);
//! - a path: an SPDK build directory holding `bin/spdk_tgt`, or an spdk_tgt binary.
//!
//! Real targets get what several of them on one machine need: `--disable-cpumask-locks`
//! (else the second one exits with "Cannot create lock on core 0"), `-u` (no PCI probing)
//! and `--no-huge` (the lab's hosts simulate their hugepages, so SPDK takes ordinary
//! memory; the executor still passes `-s` and the pool configuration sized to it).

use std::path::{Path, PathBuf};

/// The environment variable naming the directory of real SPDK builds.
pub const REAL_DIR_VAR: &str = "V2ENGINE_SPDK_REAL";

/// The arguments every real spdk_tgt of a lab gets.
pub const REAL_TARGET_ARGS: [&str; 3] = ["--no-huge", "-u", "--disable-cpumask-locks"];

/// Why `--spdk` names no usable engine.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EngineError {
    /// A version name not found in any real-SPDK directory.
    #[error(
        "--spdk {name}: no SPDK build named {name} (looked for bin/spdk_tgt in {searched}); set {REAL_DIR_VAR} to the directory holding the builds, or pass a build directory"
    )]
    UnknownVersion {
        /// What was asked for.
        name: String,
        /// The directories looked in.
        searched: String,
    },
    /// A path that is neither a build directory nor a binary.
    #[error(
        "--spdk {path}: neither an SPDK build directory (with bin/spdk_tgt) nor an spdk_tgt binary"
    )]
    NotATarget {
        /// What was given.
        path: PathBuf,
    },
}

/// The engine chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// spdk-sim.
    Sim,
    /// A real spdk_tgt binary.
    Real(PathBuf),
}

impl Engine {
    /// The arguments the lab adds for this engine.
    pub fn args(&self) -> Vec<String> {
        match self {
            Engine::Sim => Vec::new(),
            Engine::Real(_) => REAL_TARGET_ARGS.iter().map(|a| a.to_string()).collect(),
        }
    }
}

/// Resolves `choice`. `roots` are the real-SPDK directories to look version names up in;
/// `is_file` says whether a path is an existing file (the only I/O, passed in).
pub fn resolve(
    choice: &str,
    roots: &[PathBuf],
    is_file: impl Fn(&Path) -> bool,
) -> Result<Engine, EngineError> {
    if choice == "sim" {
        return Ok(Engine::Sim);
    }
    let looks_like_path = choice.contains('/') || choice.starts_with('.');
    if looks_like_path {
        let p = PathBuf::from(choice);
        let in_build = p.join("bin/spdk_tgt");
        if is_file(&in_build) {
            return Ok(Engine::Real(in_build));
        }
        if is_file(&p) {
            return Ok(Engine::Real(p));
        }
        return Err(EngineError::NotATarget { path: p });
    }
    for root in roots {
        let t = root.join(choice).join("bin/spdk_tgt");
        if is_file(&t) {
            return Ok(Engine::Real(t));
        }
    }
    Err(EngineError::UnknownVersion {
        name: choice.to_string(),
        searched: if roots.is_empty() {
            "no directory".into()
        } else {
            roots
                .iter()
                .map(|r| r.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        },
    })
}

/// Where version names are looked up: `$V2ENGINE_SPDK_REAL` when set (only there), else
/// `shared/spdk/real` beside the checkout this v2engine-lab was built in
/// (`<checkout>/target/<profile>/v2engine-lab`) and beside the current directory.
pub fn real_roots(env: Option<PathBuf>, exe: Option<&Path>, cwd: Option<&Path>) -> Vec<PathBuf> {
    if let Some(e) = env {
        return vec![e];
    }
    let mut v = Vec::new();
    if let Some(checkout) = exe.and_then(|e| e.ancestors().nth(3)) {
        v.push(checkout.join("../shared/spdk/real"));
    }
    if let Some(c) = cwd {
        v.push(c.join("../shared/spdk/real"));
    }
    v
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn files(list: &'static [&'static str]) -> impl Fn(&Path) -> bool {
        move |p| list.iter().any(|f| Path::new(f) == p)
    }

    #[test]
    fn sim_needs_nothing() {
        assert_eq!(resolve("sim", &[], |_| false), Ok(Engine::Sim));
        assert!(Engine::Sim.args().is_empty());
    }

    #[test]
    fn a_version_is_found_in_the_first_root_that_has_it() {
        let roots = vec![PathBuf::from("/a"), PathBuf::from("/b")];
        let e = resolve("v26.05", &roots, files(&["/b/v26.05/bin/spdk_tgt"])).unwrap();
        assert_eq!(e, Engine::Real("/b/v26.05/bin/spdk_tgt".into()));
        assert_eq!(e.args(), ["--no-huge", "-u", "--disable-cpumask-locks"]);
    }

    #[test]
    fn an_unknown_version_names_where_it_looked() {
        let roots = vec![PathBuf::from("/a")];
        let e = resolve("v9.99", &roots, |_| false).unwrap_err().to_string();
        assert!(e.contains("v9.99") && e.contains("/a"), "{e}");
        assert!(e.contains(REAL_DIR_VAR), "{e}");
    }

    #[test]
    fn a_path_is_a_build_directory_or_a_binary() {
        assert_eq!(
            resolve("/opt/spdk", &[], files(&["/opt/spdk/bin/spdk_tgt"])).unwrap(),
            Engine::Real("/opt/spdk/bin/spdk_tgt".into())
        );
        assert_eq!(
            resolve("/usr/bin/spdk_tgt", &[], files(&["/usr/bin/spdk_tgt"])).unwrap(),
            Engine::Real("/usr/bin/spdk_tgt".into())
        );
        assert!(matches!(
            resolve("./nothing", &[], |_| false),
            Err(EngineError::NotATarget { .. })
        ));
    }

    #[test]
    fn the_environment_overrides_the_search() {
        let r = real_roots(
            Some("/srv/spdk".into()),
            Some(Path::new("/w/repo/target/debug/v2engine-lab")),
            None,
        );
        assert_eq!(r, [PathBuf::from("/srv/spdk")]);
        let r = real_roots(
            None,
            Some(Path::new("/w/repo/target/debug/v2engine-lab")),
            Some(Path::new("/x")),
        );
        assert_eq!(
            r,
            [
                PathBuf::from("/w/repo/../shared/spdk/real"),
                PathBuf::from("/x/../shared/spdk/real")
            ]
        );
    }
}
