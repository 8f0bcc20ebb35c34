//! The lab's simulated host: a memory model, kernel modules and a reboot, kept in a JSON
//! state file that is replaced atomically on every change. Boot files are real files
//! under the host root, the same as for [`super::linux::LinuxHost`]. It has no kernel NVMe
//! initiator and says so: no `nvme` tool in the facts, no NVMe devices, and running
//! nvme-cli fails with [`NO_INITIATOR`] (a volume's `block` frontend is refused).
//!
//! Memory model: `memory_mib` of which `reserved_mib` is never available to hugepages;
//! `free_pages` counts the 2 MiB blocks the kernel could hand out now. A fragmented host
//! has only [`FRAGMENTED_FREE_PAGES`] of them until it reboots.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::modules::normalize;
use super::nvme::{self, KernelNvme};
use super::{
    HUGEPAGE_SIZE_BYTES, HostError, HostOs, HugepageInfo, MemoryInfo, ModuleState, RootedFs,
};
use crate::boot::{self, BootConfig};
use crate::fsio;

/// 2 MiB blocks a fragmented simulated host can allocate at runtime.
pub const FRAGMENTED_FREE_PAGES: u64 = 3;

/// The path reported for the simulated modprobe.
pub const SIM_MODPROBE: &str = "(simulated)";

/// Why a simulated host has no kernel NVMe initiator (no `block` frontend, no nvme-cli).
pub const NO_INITIATOR: &str = "the lab's simulated host has no kernel NVMe initiator \
     (it simulates memory and modules, not block devices); use frontend nvmf";

const MIB: u64 = 1024 * 1024;

/// The simulated host's whole state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimState {
    /// Total memory.
    pub memory_mib: u64,
    /// Memory the OS keeps for itself; never becomes hugepages.
    pub reserved_mib: u64,
    /// Whether free memory is fragmented (cleared by a reboot).
    pub fragmented: bool,
    /// 2 MiB blocks allocatable now.
    pub free_pages: u64,
    /// Size of the hugepage pool.
    pub nr_hugepages: u64,
    /// Modules modprobe can load.
    pub available_modules: Vec<String>,
    /// Modules built into the kernel.
    #[serde(default)]
    pub builtin_modules: Vec<String>,
    /// Modules loaded now.
    #[serde(default)]
    pub loaded_modules: Vec<String>,
    /// Whether modprobe exists.
    pub modprobe: bool,
    /// Reported kernel release.
    pub kernel_release: String,
    /// Reported host name.
    pub hostname: String,
    /// Reported CPU count.
    pub cpus: u32,
    /// Simulated reboots so far.
    pub boots: u64,
}

impl SimState {
    /// A freshly booted host with `memory_mib` of memory and the `available` modules.
    pub fn new(memory_mib: u64, fragmented: bool, available: Vec<String>) -> Self {
        let reserved_mib = (memory_mib / 4).min(512);
        let mut s = Self {
            memory_mib,
            reserved_mib,
            fragmented,
            free_pages: 0,
            nr_hugepages: 0,
            available_modules: available.iter().map(|m| normalize(m)).collect(),
            builtin_modules: Vec::new(),
            loaded_modules: Vec::new(),
            modprobe: true,
            kernel_release: "6.8.0-v2engine-sim".into(),
            hostname: "sim-host".into(),
            cpus: 2,
            boots: 0,
        };
        s.free_pages = if fragmented {
            FRAGMENTED_FREE_PAGES.min(s.capacity_pages())
        } else {
            s.capacity_pages()
        };
        s
    }

    /// 2 MiB pages an unfragmented host can hold in total.
    pub fn capacity_pages(&self) -> u64 {
        self.memory_mib.saturating_sub(self.reserved_mib) / 2
    }

    /// Resizes the pool as the kernel would: growth is limited by the free blocks.
    /// Returns the new pool size.
    pub fn set_nr_hugepages(&mut self, pages: u64) -> u64 {
        if pages > self.nr_hugepages {
            let grow = (pages - self.nr_hugepages).min(self.free_pages);
            self.nr_hugepages += grow;
            self.free_pages -= grow;
        } else {
            self.free_pages += self.nr_hugepages - pages;
            self.nr_hugepages = pages;
        }
        self.nr_hugepages
    }

    /// The state of module `name`.
    pub fn module_state(&self, name: &str) -> ModuleState {
        let n = normalize(name);
        let has = |l: &[String]| l.iter().any(|m| normalize(m) == n);
        if has(&self.loaded_modules) {
            ModuleState::Loaded
        } else if has(&self.builtin_modules) {
            ModuleState::Builtin
        } else if has(&self.available_modules) {
            ModuleState::Loadable
        } else {
            ModuleState::Missing
        }
    }

    /// Loads a module as modprobe would.
    pub fn load_module(&mut self, name: &str) -> Result<(), HostError> {
        if !self.modprobe {
            return Err(HostError::ModprobeMissing {
                module: name.to_string(),
            });
        }
        match self.module_state(name) {
            ModuleState::Loaded | ModuleState::Builtin => Ok(()),
            ModuleState::Loadable => {
                self.loaded_modules.push(normalize(name));
                Ok(())
            }
            ModuleState::Missing => Err(HostError::ModuleMissing {
                module: name.to_string(),
            }),
        }
    }

    /// A reboot: memory is no longer fragmented, modules and hugepages are gone, then
    /// `boot` is applied. Returns what the boot could not do.
    pub fn reboot(&mut self, boot: &BootConfig) -> Vec<String> {
        self.boots += 1;
        self.fragmented = false;
        self.loaded_modules.clear();
        self.nr_hugepages = 0;
        self.free_pages = self.capacity_pages();
        let mut warnings = Vec::new();
        for m in &boot.modules {
            if let Err(e) = self.load_module(m) {
                warnings.push(format!("boot: {e}"));
            }
        }
        if let Some(n) = boot.nr_hugepages {
            let got = self.set_nr_hugepages(n);
            if got < n {
                warnings.push(format!("boot: allocated {got} of {n} hugepages"));
            }
        }
        warnings
    }
}

/// The simulated host: state in `state_file`, boot files under a root.
#[derive(Debug, Clone)]
pub struct SimHost {
    state_file: PathBuf,
    fs: RootedFs,
}

impl SimHost {
    /// A simulated host whose state is in `state_file` and boot files under `root`.
    pub fn new(state_file: impl Into<PathBuf>, root: impl Into<PathBuf>) -> Self {
        Self {
            state_file: state_file.into(),
            fs: RootedFs::new(root),
        }
    }

    /// The state file.
    pub fn state_file(&self) -> &Path {
        &self.state_file
    }

    /// Reads the state.
    pub fn load(&self) -> Result<SimState, HostError> {
        let bad = |reason: String| HostError::SimState {
            path: self.state_file.clone(),
            reason,
        };
        let text = std::fs::read_to_string(&self.state_file).map_err(|e| bad(e.to_string()))?;
        serde_json::from_str(&text).map_err(|e| bad(e.to_string()))
    }

    /// Replaces the state atomically.
    pub fn save(&self, state: &SimState) -> Result<(), HostError> {
        let data = serde_json::to_vec_pretty(state).map_err(|e| HostError::SimState {
            path: self.state_file.clone(),
            reason: e.to_string(),
        })?;
        Ok(fsio::write_atomic(&self.state_file, &data, 0o600)?)
    }

    fn update<T>(
        &self,
        f: impl FnOnce(&mut SimState) -> Result<T, HostError>,
    ) -> Result<T, HostError> {
        let mut s = self.load()?;
        let out = f(&mut s)?;
        self.save(&s)?;
        Ok(out)
    }

    /// What a boot would apply from the boot files under the root: modules-load.d and
    /// sysctl.d first, then the Elemental stage.
    pub fn boot_config(&self) -> Result<BootConfig, HostError> {
        let mut b = BootConfig::default();
        if let Some(t) = self.fs.read_optional(boot::MODULES_LOAD_PATH)? {
            b.apply_modules_load(&t);
        }
        if let Some(t) = self.fs.read_optional(boot::SYSCTL_PATH)? {
            b.apply_sysctl(&t);
        }
        if let Some(t) = self.fs.read_optional(boot::ELEMENTAL_PATH)? {
            b.apply_elemental(&t);
        }
        Ok(b)
    }

    /// Reboots the (stopped) host: see [`SimState::reboot`]. Returns the new state and
    /// what the boot could not do.
    pub fn reboot(&self) -> Result<(SimState, Vec<String>), HostError> {
        let boot = self.boot_config()?;
        let mut s = self.load()?;
        let warnings = s.reboot(&boot);
        self.save(&s)?;
        Ok((s, warnings))
    }
}

impl HostOs for SimHost {
    fn simulated(&self) -> bool {
        true
    }

    fn kernel_release(&self) -> Result<String, HostError> {
        Ok(self.load()?.kernel_release)
    }

    fn hostname(&self) -> Result<String, HostError> {
        Ok(self.load()?.hostname)
    }

    fn cpu_count(&self) -> Result<u32, HostError> {
        Ok(self.load()?.cpus)
    }

    fn memory(&self) -> Result<MemoryInfo, HostError> {
        let s = self.load()?;
        let used_mib = s.reserved_mib / 2 + s.nr_hugepages * 2;
        Ok(MemoryInfo {
            total_bytes: s.memory_mib * MIB,
            available_bytes: s.memory_mib.saturating_sub(used_mib) * MIB,
        })
    }

    fn hugepages(&self) -> Result<HugepageInfo, HostError> {
        let s = self.load()?;
        Ok(HugepageInfo {
            page_size_bytes: HUGEPAGE_SIZE_BYTES,
            total: s.nr_hugepages,
            free: s.nr_hugepages,
            allocatable_now: s.free_pages,
        })
    }

    fn set_nr_hugepages(&self, pages: u64) -> Result<u64, HostError> {
        self.update(|s| Ok(s.set_nr_hugepages(pages)))
    }

    fn module_states(&self, names: &[String]) -> Result<Vec<(String, ModuleState)>, HostError> {
        let s = self.load()?;
        Ok(names
            .iter()
            .map(|n| (n.clone(), s.module_state(n)))
            .collect())
    }

    fn load_module(&self, name: &str) -> Result<(), HostError> {
        self.update(|s| s.load_module(name))
    }

    fn find_tool(&self, name: &str) -> Option<String> {
        match name {
            "modprobe" => self
                .load()
                .ok()
                .filter(|s| s.modprobe)
                .map(|_| SIM_MODPROBE.to_string()),
            // No kernel initiator to drive, whatever the host root holds.
            "nvme" => None,
            _ => self.fs.find_executable(name),
        }
    }

    fn read_file(&self, path: &str) -> Result<Option<String>, HostError> {
        self.fs.read_optional(path)
    }

    fn write_file(&self, path: &str, content: &str) -> Result<(), HostError> {
        self.fs.write(path, content)
    }

    fn remove_file(&self, path: &str) -> Result<bool, HostError> {
        self.fs.remove(path)
    }

    fn dir_exists(&self, path: &str) -> bool {
        self.fs.is_dir(path)
    }

    fn kernel_nvme(&self) -> Result<KernelNvme, HostError> {
        Ok(KernelNvme::default())
    }

    fn run_nvme(&self, args: &[String]) -> Result<(), HostError> {
        Err(HostError::Unsupported {
            what: nvme::command_line(args),
            reason: NO_INITIATOR.to_string(),
        })
    }
}

/// An exclusive lock on a simulated host's state, held by a running executor so that
/// `sim-init` and `sim-reboot` refuse to touch a running node. Released on drop.
#[derive(Debug)]
pub struct SimLock {
    _lock: Flock<File>,
}

/// Takes the lock of `state_file` (the file `STATE_FILE.lock`) without waiting.
pub fn lock_state(state_file: &Path) -> Result<SimLock, HostError> {
    let mut name = state_file.as_os_str().to_owned();
    name.push(".lock");
    let lock = PathBuf::from(name);
    if let Some(dir) = lock.parent().filter(|d| !d.as_os_str().is_empty()) {
        fsio::create_dir_all(dir, 0o755)?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .map_err(|source| HostError::Write {
            path: lock.clone(),
            source,
        })?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(l) => Ok(SimLock { _lock: l }),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Err(HostError::SimBusy {
            path: state_file.to_path_buf(),
            lock,
        }),
        Err((_, e)) => Err(HostError::Write {
            path: lock,
            source: e.into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mods() -> Vec<String> {
        vec![
            "vfio_pci".into(),
            "uio_pci_generic".into(),
            "nvme_tcp".into(),
        ]
    }

    #[test]
    fn fragmented_memory_limits_runtime_allocation() {
        let mut s = SimState::new(8192, true, mods());
        assert_eq!(s.capacity_pages(), 3840);
        assert_eq!(s.free_pages, 3);
        assert_eq!(s.set_nr_hugepages(1024), 3);
        assert_eq!(s.free_pages, 0);
        assert_eq!(s.set_nr_hugepages(1), 1);
        assert_eq!(s.free_pages, 2);
        let mut s = SimState::new(8192, false, mods());
        assert_eq!(s.set_nr_hugepages(1024), 1024);
        assert_eq!(s.set_nr_hugepages(5000), 3840);
        assert_eq!(s.free_pages, 0);
    }

    #[test]
    fn modules_load_only_when_available() {
        let mut s = SimState::new(1024, false, vec!["vfio-pci".into()]);
        assert_eq!(s.module_state("vfio_pci"), ModuleState::Loadable);
        s.load_module("vfio_pci").unwrap();
        assert_eq!(s.module_state("vfio-pci"), ModuleState::Loaded);
        let e = s.load_module("nvme_tcp").unwrap_err();
        assert!(
            e.to_string().contains("kernel module nvme_tcp is missing"),
            "{e}"
        );
        s.modprobe = false;
        s.available_modules.push("loop".into());
        let e = s.load_module("loop").unwrap_err();
        assert!(e.to_string().contains("modprobe is not installed"), "{e}");
    }

    #[test]
    fn reboot_defragments_clears_and_applies_boot() {
        let mut s = SimState::new(8192, true, mods());
        s.set_nr_hugepages(1024);
        s.load_module("nvme_tcp").unwrap();
        let boot = BootConfig {
            modules: vec!["vfio_pci".into(), "nope".into()],
            nr_hugepages: Some(1024),
        };
        let warnings = s.reboot(&boot);
        assert!(!s.fragmented);
        assert_eq!(s.nr_hugepages, 1024);
        assert_eq!(s.loaded_modules, ["vfio_pci"]);
        assert_eq!(s.free_pages, 3840 - 1024);
        assert_eq!(s.boots, 1);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("nope"));
        s.reboot(&BootConfig::default());
        assert_eq!((s.nr_hugepages, s.loaded_modules.len()), (0, 0));
    }

    #[test]
    fn state_round_trips_and_lock_is_exclusive() {
        let tmp = tempfile::tempdir().unwrap();
        let host = SimHost::new(tmp.path().join("sim.json"), tmp.path().join("root"));
        host.save(&SimState::new(2048, true, mods())).unwrap();
        assert_eq!(host.set_nr_hugepages(10).unwrap(), 3);
        assert_eq!(host.hugepages().unwrap().total, 3);
        assert_eq!(host.memory().unwrap().total_bytes, 2048 * MIB);
        let l = lock_state(host.state_file()).unwrap();
        assert!(matches!(
            lock_state(host.state_file()),
            Err(HostError::SimBusy { .. })
        ));
        drop(l);
        assert!(lock_state(host.state_file()).is_ok());
    }
}
