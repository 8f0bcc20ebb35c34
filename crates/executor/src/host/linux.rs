//! The real host: procfs, sysfs, `/lib/modules`, modprobe, nvme-cli, all under a root
//! prefix (a program is run from under the root too, so a test tree can hold a fake one).

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::modules::{self, ModuleSources, SysfsModule};
use super::nvme::{self, KernelNvme};
use super::{
    HUGEPAGE_SIZE_BYTES, HostError, HostOs, HugepageInfo, MemoryInfo, ModuleState, RootedFs,
};
use super::{buddyinfo, procfs};

/// The 2 MiB pool's sysfs directory.
pub const HUGEPAGES_2M_DIR: &str = "/sys/kernel/mm/hugepages/hugepages-2048kB";
/// The sysctl file of the default pool, used when the sysfs directory is absent.
pub const PROC_NR_HUGEPAGES: &str = "/proc/sys/vm/nr_hugepages";

/// The real host, every path resolved under `root` (`/` in production).
#[derive(Debug, Clone)]
pub struct LinuxHost {
    fs: RootedFs,
}

impl LinuxHost {
    /// A host rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            fs: RootedFs::new(root),
        }
    }

    /// The root prefix.
    pub fn root(&self) -> &Path {
        self.fs.root()
    }

    fn nr_hugepages_file(&self) -> String {
        if self.fs.is_dir(HUGEPAGES_2M_DIR) {
            format!("{HUGEPAGES_2M_DIR}/nr_hugepages")
        } else {
            PROC_NR_HUGEPAGES.to_string()
        }
    }

    fn read_u64(&self, path: &str) -> Result<u64, HostError> {
        let text = self.fs.read(path)?;
        text.trim().parse().map_err(|_| HostError::Parse {
            path: self.fs.resolve(path),
            reason: format!("{:?} is not a number", text.trim()),
        })
    }

    fn module_sources(&self, names: &[String]) -> Result<ModuleSources, HostError> {
        let mut src = ModuleSources::default();
        if let Some(t) = self.fs.read_optional("/proc/modules")? {
            src.loaded = modules::parse_proc_modules(&t);
        }
        let release = self.kernel_release()?;
        let libdir = format!("/lib/modules/{release}");
        if let Some(t) = self
            .fs
            .read_optional(&format!("{libdir}/modules.builtin"))?
        {
            src.builtin = modules::parse_modules_builtin(&t);
        }
        if let Some(t) = self.fs.read_optional(&format!("{libdir}/modules.dep"))? {
            src.available = modules::parse_modules_dep(&t);
        }
        let mut sysfs = BTreeMap::new();
        for n in names.iter().map(|n| modules::normalize(n)) {
            let dir = format!("/sys/module/{n}");
            let entry = if !self.fs.is_dir(&dir) {
                SysfsModule::Absent
            } else {
                match self.fs.read_optional(&format!("{dir}/initstate"))? {
                    Some(s) => SysfsModule::Initstate(s.trim().to_string()),
                    None => SysfsModule::NoInitstate,
                }
            };
            sysfs.insert(n, entry);
        }
        src.sysfs = sysfs;
        Ok(src)
    }
}

impl HostOs for LinuxHost {
    fn simulated(&self) -> bool {
        false
    }

    fn kernel_release(&self) -> Result<String, HostError> {
        Ok(self
            .fs
            .read("/proc/sys/kernel/osrelease")?
            .trim()
            .to_string())
    }

    fn hostname(&self) -> Result<String, HostError> {
        match self.fs.read_optional("/proc/sys/kernel/hostname")? {
            Some(h) => Ok(h.trim().to_string()),
            None => Ok(self
                .fs
                .read_optional("/etc/hostname")?
                .unwrap_or_default()
                .trim()
                .to_string()),
        }
    }

    fn cpu_count(&self) -> Result<u32, HostError> {
        let path = "/sys/devices/system/cpu/online";
        if let Some(t) = self.fs.read_optional(path)? {
            return procfs::count_cpu_list(&t).ok_or_else(|| HostError::Parse {
                path: self.fs.resolve(path),
                reason: format!("{:?} is not a CPU list", t.trim()),
            });
        }
        let info = self.fs.read("/proc/cpuinfo")?;
        let n = info.lines().filter(|l| l.starts_with("processor")).count();
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    fn memory(&self) -> Result<MemoryInfo, HostError> {
        let text = self.fs.read("/proc/meminfo")?;
        let total_bytes =
            procfs::meminfo_value(&text, "MemTotal").ok_or_else(|| HostError::Parse {
                path: self.fs.resolve("/proc/meminfo"),
                reason: "no MemTotal".into(),
            })?;
        let available_bytes = procfs::meminfo_value(&text, "MemAvailable").unwrap_or(0);
        Ok(MemoryInfo {
            total_bytes,
            available_bytes,
        })
    }

    fn hugepages(&self) -> Result<HugepageInfo, HostError> {
        let (total, free) = if self.fs.is_dir(HUGEPAGES_2M_DIR) {
            (
                self.read_u64(&format!("{HUGEPAGES_2M_DIR}/nr_hugepages"))?,
                self.read_u64(&format!("{HUGEPAGES_2M_DIR}/free_hugepages"))?,
            )
        } else {
            let text = self.fs.read_optional("/proc/meminfo")?.unwrap_or_default();
            (
                self.read_u64(PROC_NR_HUGEPAGES)?,
                procfs::meminfo_value(&text, "HugePages_Free").unwrap_or(0),
            )
        };
        let allocatable_now = match self.fs.read_optional("/proc/buddyinfo")? {
            Some(t) => {
                let zones = buddyinfo::parse(&t).map_err(|e| HostError::Parse {
                    path: self.fs.resolve("/proc/buddyinfo"),
                    reason: e.to_string(),
                })?;
                buddyinfo::allocatable_2mib_pages(&zones)
            }
            None => 0,
        };
        Ok(HugepageInfo {
            page_size_bytes: HUGEPAGE_SIZE_BYTES,
            total,
            free,
            allocatable_now,
        })
    }

    fn set_nr_hugepages(&self, pages: u64) -> Result<u64, HostError> {
        let file = self.nr_hugepages_file();
        let path = self.fs.resolve(&file);
        let werr = |source| HostError::Write {
            path: path.clone(),
            source,
        };
        let mut f = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(werr)?;
        f.write_all(format!("{pages}\n").as_bytes()).map_err(werr)?;
        drop(f);
        self.read_u64(&file)
    }

    fn module_states(&self, names: &[String]) -> Result<Vec<(String, ModuleState)>, HostError> {
        let src = self.module_sources(names)?;
        Ok(names
            .iter()
            .map(|n| (n.clone(), modules::classify(n, &src)))
            .collect())
    }

    fn load_module(&self, name: &str) -> Result<(), HostError> {
        let module = name.to_string();
        let modprobe = self
            .find_tool("modprobe")
            .ok_or_else(|| HostError::ModprobeMissing {
                module: module.clone(),
            })?;
        let program = self.fs.resolve(&modprobe);
        let mut cmd = Command::new(&program);
        if self.fs.root() != Path::new("/") {
            cmd.arg("-d").arg(self.fs.root());
        }
        cmd.arg("--").arg(name);
        let out = cmd.output().map_err(|source| HostError::Spawn {
            program: program.clone(),
            module: module.clone(),
            source,
        })?;
        if !out.status.success() {
            return Err(HostError::Modprobe {
                module,
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(())
    }

    fn find_tool(&self, name: &str) -> Option<String> {
        self.fs.find_executable(name)
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
        nvme::read_topology(&self.fs)
    }

    fn run_nvme(&self, args: &[String]) -> Result<(), HostError> {
        let command = nvme::command_line(args);
        let tool = self
            .find_tool("nvme")
            .ok_or_else(|| HostError::NvmeCliMissing {
                command: command.clone(),
            })?;
        let program = self.fs.resolve(&tool);
        let out = Command::new(&program)
            .args(args)
            .output()
            .map_err(|source| HostError::NvmeCliSpawn {
                program: program.clone(),
                command: command.clone(),
                source,
            })?;
        if !out.status.success() {
            let mut said = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if said.is_empty() {
                said = String::from_utf8_lossy(&out.stdout).trim().to_string();
            }
            return Err(HostError::NvmeCli {
                command,
                status: out.status.to_string(),
                stderr: said,
            });
        }
        Ok(())
    }
}
