//! The host operating system as the executor sees it.
//!
//! [`HostOs`] is everything reconcile reads and changes on a host: facts, kernel modules,
//! the 2 MiB hugepage pool and the boot files; and, for a volume's `block` frontend, the
//! kernel's NVMe initiator (nvme-cli and what sysfs shows, see [`nvme`]). [`linux::LinuxHost`] is the real one,
//! rooted at a configurable prefix so tests can point it at a temporary tree;
//! [`sim::SimHost`] is the lab's simulated host with a memory model. Parsing of the
//! kernel's text files is pure and lives in [`buddyinfo`], [`modules`], [`procfs`] and
//! [`nvme`].
//! The trait is synchronous; the gRPC service calls it from blocking tasks.

pub mod buddyinfo;
pub mod linux;
pub mod modules;
pub mod nvme;
pub mod procfs;
pub mod sim;

use std::io;
use std::path::{Path, PathBuf};

use crate::fsio::{self, FsError};

/// Size of the hugepages v2engine uses.
pub const HUGEPAGE_SIZE_BYTES: u64 = model::HUGEPAGE_SIZE_BYTES;

/// The tools whose presence the facts report.
pub const TOOLS: [&str; 3] = ["modprobe", "nvme", "mdadm"];

/// Where a kernel module stands on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ModuleState {
    /// In `/proc/modules`, or `/sys/module/<name>/initstate` says `live`.
    Loaded,
    /// Built into the kernel (`modules.builtin`, or `/sys/module/<name>` without initstate).
    Builtin,
    /// Not loaded but listed in `modules.dep`, so modprobe can load it.
    Loadable,
    /// None of the above.
    Missing,
}

impl ModuleState {
    /// True when the module's functionality is available now.
    pub fn is_present(self) -> bool {
        matches!(self, Self::Loaded | Self::Builtin)
    }
}

/// A tool looked up on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolFact {
    /// `modprobe`, `nvme` or `mdadm`.
    pub name: String,
    /// Where it was found (as seen from inside the host root), `None` when absent.
    pub path: Option<String>,
}

/// Memory as `/proc/meminfo` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryInfo {
    /// MemTotal.
    pub total_bytes: u64,
    /// MemAvailable.
    pub available_bytes: u64,
}

/// The 2 MiB hugepage pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HugepageInfo {
    /// Always 2 MiB.
    pub page_size_bytes: u64,
    /// `nr_hugepages`.
    pub total: u64,
    /// `free_hugepages`.
    pub free: u64,
    /// 2 MiB pages the kernel could add to the pool right now.
    pub allocatable_now: u64,
}

/// A failed host operation, naming the file, module or tool.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// A host file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file, including the host root.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A kernel file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file, including the host root.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A host file has unexpected content.
    #[error("cannot parse {path}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A boot file could not be written or removed.
    #[error("boot file: {0}")]
    Fs(#[from] FsError),
    /// No modprobe on the host.
    #[error("cannot load kernel module {module}: modprobe is not installed")]
    ModprobeMissing {
        /// The module that needed loading.
        module: String,
    },
    /// The module does not exist for the running kernel.
    #[error("kernel module {module} is missing: not loaded, not built in and not in modules.dep")]
    ModuleMissing {
        /// The module.
        module: String,
    },
    /// modprobe ran and failed.
    #[error("modprobe {module} failed ({status}): {stderr}")]
    Modprobe {
        /// The module.
        module: String,
        /// Exit status.
        status: String,
        /// What modprobe said.
        stderr: String,
    },
    /// modprobe could not be started.
    #[error("cannot run {program} for kernel module {module}: {source}")]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The module.
        module: String,
        /// The cause.
        source: io::Error,
    },
    /// The simulated host's state file is unusable.
    #[error("simulated host state {path}: {reason}")]
    SimState {
        /// The state file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// nvme-cli is needed and not installed.
    #[error("cannot run {command}: nvme-cli is not installed (no nvme in the system directories)")]
    NvmeCliMissing {
        /// The command line that was to run.
        command: String,
    },
    /// nvme-cli could not be started.
    #[error("cannot run {command} ({program}): {source}")]
    NvmeCliSpawn {
        /// The program.
        program: PathBuf,
        /// The command line.
        command: String,
        /// The cause.
        source: io::Error,
    },
    /// nvme-cli ran and failed.
    #[error("{command} failed ({status}): {stderr}")]
    NvmeCli {
        /// The command line.
        command: String,
        /// Exit status.
        status: String,
        /// What nvme-cli said.
        stderr: String,
    },
    /// This host cannot do it at all.
    #[error("{what}: {reason}")]
    Unsupported {
        /// What was asked.
        what: String,
        /// Why this host cannot.
        reason: String,
    },
    /// The simulated host's state file is in use by a running executor.
    #[error("simulated host state {path} is in use by a running executor (lock {lock} is held)")]
    SimBusy {
        /// The state file.
        path: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },
}

/// The host operations reconcile, predict and the facts need.
///
/// Boot-file paths are absolute paths as seen on the host (`/etc/...`, `/oem/...`); both
/// implementations resolve them under their root.
pub trait HostOs: Send + Sync + std::fmt::Debug {
    /// True for the simulated host.
    fn simulated(&self) -> bool;
    /// `uname -r`.
    fn kernel_release(&self) -> Result<String, HostError>;
    /// The host name.
    fn hostname(&self) -> Result<String, HostError>;
    /// Online CPUs.
    fn cpu_count(&self) -> Result<u32, HostError>;
    /// Total and available memory.
    fn memory(&self) -> Result<MemoryInfo, HostError>;
    /// The 2 MiB hugepage pool and how much it could grow now.
    fn hugepages(&self) -> Result<HugepageInfo, HostError>;
    /// Writes `nr_hugepages` and returns the value read back (the kernel may allocate
    /// fewer than asked).
    fn set_nr_hugepages(&self, pages: u64) -> Result<u64, HostError>;
    /// The state of each module, in the order given.
    fn module_states(&self, names: &[String]) -> Result<Vec<(String, ModuleState)>, HostError>;
    /// Loads a module with `modprobe -- NAME`.
    fn load_module(&self, name: &str) -> Result<(), HostError>;
    /// Looks a tool up; `None` when absent.
    fn find_tool(&self, name: &str) -> Option<String>;
    /// Reads a boot file; `None` when absent.
    fn read_file(&self, path: &str) -> Result<Option<String>, HostError>;
    /// Writes a boot file atomically (mode 0644).
    fn write_file(&self, path: &str, content: &str) -> Result<(), HostError>;
    /// Removes a boot file; returns whether it existed.
    fn remove_file(&self, path: &str) -> Result<bool, HostError>;
    /// True when `path` is a directory.
    fn dir_exists(&self, path: &str) -> bool;
    /// The kernel's NVMe subsystems and controllers as sysfs shows them (empty when none).
    fn kernel_nvme(&self) -> Result<nvme::KernelNvme, HostError>;
    /// Runs nvme-cli with `args` (an argument vector, no shell); fails with
    /// [`HostError::NvmeCliMissing`] when it is not installed.
    fn run_nvme(&self, args: &[String]) -> Result<(), HostError>;
}

/// Files of a host tree below a root directory. Shared by both hosts for boot files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootedFs {
    root: PathBuf,
}

impl RootedFs {
    /// A tree rooted at `root` (`/` for the real host).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `path` (absolute on the host) under the root. `..` components are dropped.
    pub fn resolve(&self, path: &str) -> PathBuf {
        let mut out = self.root.clone();
        for part in path
            .split('/')
            .filter(|p| !p.is_empty() && *p != "." && *p != "..")
        {
            out.push(part);
        }
        out
    }

    /// Reads a text file; `None` when absent.
    pub fn read_optional(&self, path: &str) -> Result<Option<String>, HostError> {
        let p = self.resolve(path);
        fsio::read_optional(&p).map_err(|source| HostError::Read { path: p, source })
    }

    /// Reads a text file that must exist.
    pub fn read(&self, path: &str) -> Result<String, HostError> {
        let p = self.resolve(path);
        std::fs::read_to_string(&p).map_err(|source| HostError::Read { path: p, source })
    }

    /// Writes a file atomically with mode 0644.
    pub fn write(&self, path: &str, content: &str) -> Result<(), HostError> {
        Ok(fsio::write_atomic(
            &self.resolve(path),
            content.as_bytes(),
            0o644,
        )?)
    }

    /// Removes a file; returns whether it existed.
    pub fn remove(&self, path: &str) -> Result<bool, HostError> {
        Ok(fsio::remove_durable(&self.resolve(path))?)
    }

    /// True when `path` is a directory.
    pub fn is_dir(&self, path: &str) -> bool {
        self.resolve(path).is_dir()
    }

    /// The names in directory `path`, sorted; empty when it does not exist.
    pub fn list_dir(&self, path: &str) -> Result<Vec<String>, HostError> {
        let p = self.resolve(path);
        let entries = match std::fs::read_dir(&p) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(HostError::Read { path: p, source }),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| HostError::Read {
                path: p.clone(),
                source,
            })?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    /// The first of the usual system directories holding an executable `name`, as a
    /// host path (without the root).
    pub fn find_executable(&self, name: &str) -> Option<String> {
        use std::os::unix::fs::PermissionsExt;
        const DIRS: [&str; 6] = [
            "/usr/local/sbin",
            "/usr/local/bin",
            "/usr/sbin",
            "/usr/bin",
            "/sbin",
            "/bin",
        ];
        DIRS.iter().map(|d| format!("{d}/{name}")).find(|p| {
            std::fs::metadata(self.resolve(p))
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_under_the_root_only() {
        let fs = RootedFs::new("/tmp/r");
        assert_eq!(
            fs.resolve("/etc/x.conf"),
            PathBuf::from("/tmp/r/etc/x.conf")
        );
        assert_eq!(
            fs.resolve("/../../etc/passwd"),
            PathBuf::from("/tmp/r/etc/passwd")
        );
        assert_eq!(
            RootedFs::new("/").resolve("/proc/modules"),
            PathBuf::from("/proc/modules")
        );
    }

    #[test]
    fn finds_executables_only() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let fs = RootedFs::new(tmp.path());
        std::fs::create_dir_all(tmp.path().join("usr/sbin")).unwrap();
        let p = tmp.path().join("usr/sbin/modprobe");
        std::fs::write(&p, "").unwrap();
        assert_eq!(fs.find_executable("modprobe"), None, "not executable");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            fs.find_executable("modprobe").as_deref(),
            Some("/usr/sbin/modprobe")
        );
        assert_eq!(fs.find_executable("mdadm"), None);
    }
}
