//! Kernel module state from the kernel's text files (pure).
//!
//! Inputs: `/proc/modules` (loaded), `/lib/modules/$(uname -r)/modules.builtin` (built
//! in), `modules.dep` (loadable), and for each module asked about, what
//! `/sys/module/<name>` holds. Names compare with `-` and `_` equal, as the kernel does.

use std::collections::{BTreeMap, BTreeSet};

use super::ModuleState;

/// The kernel's spelling of a module name: `-` becomes `_`.
pub fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// Module names of `/proc/modules` (first column).
pub fn parse_proc_modules(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(normalize)
        .collect()
}

/// Module names of a `modules.builtin` (one `kernel/.../name.ko` path per line).
pub fn parse_modules_builtin(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| module_name_from_path(l.trim()))
        .collect()
}

/// Module names of a `modules.dep` (`kernel/.../name.ko[.xz|.zst|.gz]: deps...`).
pub fn parse_modules_dep(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.split(':').next())
        .filter_map(|p| module_name_from_path(p.trim()))
        .collect()
}

/// `kernel/drivers/vfio/pci/vfio-pci.ko.zst` → `vfio_pci`.
pub fn module_name_from_path(path: &str) -> Option<String> {
    let base = path.rsplit('/').next()?;
    let stem = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .find_map(|ext| base.strip_suffix(ext))?;
    (!stem.is_empty()).then(|| normalize(stem))
}

/// What `/sys/module/<name>` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SysfsModule {
    /// No such directory.
    Absent,
    /// The directory exists without `initstate` (a built-in module with parameters).
    NoInitstate,
    /// `initstate` holds this (`live`, `coming`, `going`).
    Initstate(String),
}

/// Everything needed to classify modules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleSources {
    /// From `/proc/modules`.
    pub loaded: BTreeSet<String>,
    /// From `modules.builtin`.
    pub builtin: BTreeSet<String>,
    /// From `modules.dep`.
    pub available: BTreeSet<String>,
    /// `/sys/module` entries of the modules asked about, by normalized name.
    pub sysfs: BTreeMap<String, SysfsModule>,
}

/// Classifies one module: loaded, then built in, then loadable, else missing.
pub fn classify(name: &str, src: &ModuleSources) -> ModuleState {
    let n = normalize(name);
    let sysfs = src.sysfs.get(&n).unwrap_or(&SysfsModule::Absent);
    if src.loaded.contains(&n) || *sysfs == SysfsModule::Initstate("live".into()) {
        ModuleState::Loaded
    } else if src.builtin.contains(&n) || *sysfs == SysfsModule::NoInitstate {
        ModuleState::Builtin
    } else if src.available.contains(&n) {
        ModuleState::Loadable
    } else {
        ModuleState::Missing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kernel_files() {
        let loaded = parse_proc_modules(
            "nvme_tcp 45056 0 - Live 0x0000000000000000\nvfio_pci 16384 0 - Live 0x0\n",
        );
        assert!(loaded.contains("nvme_tcp") && loaded.contains("vfio_pci"));
        let builtin = parse_modules_builtin("kernel/drivers/nvme/host/nvme-core.ko\n\n");
        assert_eq!(builtin.into_iter().collect::<Vec<_>>(), ["nvme_core"]);
        let dep = parse_modules_dep(
            "kernel/drivers/vfio/pci/vfio-pci.ko.zst: kernel/drivers/vfio/vfio.ko.zst\n\
             kernel/drivers/uio/uio_pci_generic.ko.xz:\nnot a module line\n",
        );
        assert_eq!(
            dep.into_iter().collect::<Vec<_>>(),
            ["uio_pci_generic", "vfio_pci"]
        );
        assert_eq!(module_name_from_path("x/.ko"), None);
    }

    #[test]
    fn classifies_in_order() {
        let mut src = ModuleSources {
            loaded: ["a".to_string()].into(),
            builtin: ["b".to_string()].into(),
            available: ["a", "c", "d"].map(String::from).into(),
            sysfs: BTreeMap::new(),
        };
        src.sysfs
            .insert("d".into(), SysfsModule::Initstate("live".into()));
        src.sysfs.insert("e".into(), SysfsModule::NoInitstate);
        src.sysfs
            .insert("c".into(), SysfsModule::Initstate("going".into()));
        assert_eq!(classify("a", &src), ModuleState::Loaded);
        assert_eq!(classify("b", &src), ModuleState::Builtin);
        assert_eq!(classify("c", &src), ModuleState::Loadable);
        assert_eq!(classify("d", &src), ModuleState::Loaded);
        assert_eq!(classify("e", &src), ModuleState::Builtin);
        assert_eq!(classify("f", &src), ModuleState::Missing);
    }

    #[test]
    fn dashes_and_underscores_are_the_same_module() {
        let src = ModuleSources {
            loaded: parse_proc_modules("vfio_pci 1 0 - Live 0x0"),
            ..Default::default()
        };
        assert_eq!(classify("vfio-pci", &src), ModuleState::Loaded);
    }
}
