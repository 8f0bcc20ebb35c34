//! Which engine the scenarios run on: spdk-sim, or a real SPDK build.
//!
//! `V2ENGINE_SPDK_DIR` names a directory holding `bin/spdk_tgt` (e.g. an upstream build such
//! as `../shared/spdk/real/v26.05`); unset or `sim`, the lane is spdk-sim. A lane asked for
//! and not found is an error, never a silent fallback to the simulator.

use std::path::{Path, PathBuf};

/// The environment variable naming the real SPDK build of this run.
pub const SPDK_DIR_VAR: &str = "V2ENGINE_SPDK_DIR";

/// Why the lane could not be chosen.
#[derive(Debug, thiserror::Error)]
pub enum LaneError {
    /// The directory has no spdk_tgt.
    #[error(
        "{SPDK_DIR_VAR}={dir}: no executable {dir}/bin/spdk_tgt (a real SPDK build directory is expected)"
    )]
    NoTarget {
        /// What the variable said.
        dir: PathBuf,
    },
}

/// The engine of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lane {
    /// spdk-sim, the workspace's stand-in.
    Sim,
    /// A real SPDK build.
    Real {
        /// The build directory (`bin/spdk_tgt`, `bin/spdk_dd`, `bin/spdk_nvme_perf`).
        dir: PathBuf,
    },
}

impl Lane {
    /// The lane `V2ENGINE_SPDK_DIR` asks for.
    pub fn from_env() -> Result<Lane, LaneError> {
        match std::env::var_os(SPDK_DIR_VAR) {
            None => Ok(Lane::Sim),
            Some(v) if v.is_empty() || v == "sim" => Ok(Lane::Sim),
            Some(v) => Lane::real(Path::new(&v)),
        }
    }

    /// A real build at `dir`, checked.
    pub fn real(dir: &Path) -> Result<Lane, LaneError> {
        if is_executable(&dir.join("bin/spdk_tgt")) {
            Ok(Lane::Real {
                dir: dir.to_path_buf(),
            })
        } else {
            Err(LaneError::NoTarget {
                dir: dir.to_path_buf(),
            })
        }
    }

    /// True on a real SPDK build.
    pub fn is_real(&self) -> bool {
        matches!(self, Lane::Real { .. })
    }

    /// A short name for messages: `sim`, or the build directory's last component.
    pub fn name(&self) -> String {
        match self {
            Lane::Sim => "sim".into(),
            Lane::Real { dir } => dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| dir.display().to_string()),
        }
    }

    /// The `v2engine-lab up` arguments choosing this engine.
    pub fn lab_args(&self) -> Vec<String> {
        match self {
            Lane::Sim => vec!["--spdk".into(), "sim".into()],
            Lane::Real { dir } => vec!["--spdk".into(), dir.display().to_string()],
        }
    }

    /// An SPDK tool of the real build (`spdk_dd`, `spdk_nvme_perf`); None on spdk-sim.
    pub fn tool(&self, name: &str) -> Option<PathBuf> {
        match self {
            Lane::Sim => None,
            Lane::Real { dir } => Some(dir.join("bin").join(name)),
        }
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_directory_without_spdk_tgt_is_refused_naming_it() {
        let d = tempfile::tempdir().unwrap();
        let e = Lane::real(d.path()).unwrap_err().to_string();
        assert!(e.contains("bin/spdk_tgt"), "{e}");
        assert!(e.contains(&d.path().display().to_string()), "{e}");
    }

    #[test]
    fn a_build_directory_is_a_real_lane_named_after_it() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let v = d.path().join("v26.05");
        std::fs::create_dir_all(v.join("bin")).unwrap();
        let t = v.join("bin/spdk_tgt");
        std::fs::write(&t, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&t, std::fs::Permissions::from_mode(0o755)).unwrap();
        let lane = Lane::real(&v).unwrap();
        assert!(lane.is_real());
        assert_eq!(lane.name(), "v26.05");
        assert_eq!(lane.tool("spdk_dd").unwrap(), v.join("bin/spdk_dd"));
        assert_eq!(Lane::Sim.tool("spdk_dd"), None);
    }
}
