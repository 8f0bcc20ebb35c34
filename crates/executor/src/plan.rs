//! What reconcile would do (pure): the same computation serves Predict and Reconcile.
//!
//! Input is a node's effective configuration and a read-only [`HostView`]; output is a
//! [`Plan`]: boot files to write or remove, modules to load, the pool size to write, the
//! expected outcome (pages, reboot reasons, engine state) and the problems that would
//! make reconcile refuse to change anything.

use std::collections::BTreeMap;

use model::{HUGEPAGE_SIZE_BYTES, NodeConfig};

use crate::boot::{self, Backend, BootChanges, BootFile};
use crate::host::ModuleState;

/// The state a node's preparation reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineState {
    /// The engine is off on this node.
    Disabled,
    /// No reconcile has finished yet.
    Preparing,
    /// Hugepages fell short; the boot configuration allocates them at the next boot.
    WaitingForReboot,
    /// The host is prepared.
    Ready,
    /// Reconcile failed; see the last error.
    Failed,
}

impl EngineState {
    /// The API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::Preparing => "preparing",
            Self::WaitingForReboot => "waiting_for_reboot",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }
}

/// The reboot reason for a hugepage shortfall.
pub fn shortfall_reason(allocated: u64, target: u64) -> String {
    format!(
        "allocated {allocated} of {target} hugepages; the boot configuration will allocate them at next boot"
    )
}

/// What the host looks like, read without changing it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostView {
    /// MemTotal.
    pub memory_total_bytes: u64,
    /// Current pool size.
    pub nr_hugepages: u64,
    /// 2 MiB pages allocatable now.
    pub allocatable_now: u64,
    /// State of each configured module.
    pub modules: Vec<(String, ModuleState)>,
    /// Whether modprobe exists.
    pub modprobe: bool,
    /// Whether `/oem` exists.
    pub oem_exists: bool,
    /// Current content of each owned boot file (`None` = absent).
    pub boot_files: BTreeMap<&'static str, Option<String>>,
    /// The pool size recorded before v2engine first took hugepages, if it did.
    pub baseline: Option<u64>,
}

/// Reconcile's plan for one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The backend after resolving `auto`.
    pub backend: Backend,
    /// Boot files the desired state consists of.
    pub desired_files: Vec<BootFile>,
    /// Boot files to write and to remove.
    pub boot: BootChanges,
    /// Modules to modprobe, in order.
    pub modules_to_load: Vec<String>,
    /// Pages wanted (0 when disabled).
    pub hugepages_target: u64,
    /// The pool size now.
    pub hugepages_current: u64,
    /// The pool size to write, if any.
    pub set_hugepages: Option<u64>,
    /// The pool size expected after reconcile.
    pub hugepages_expected: u64,
    /// Baseline to record before the first write (the pool size before v2engine).
    pub record_baseline: Option<u64>,
    /// Whether the baseline is given back and forgotten (disable).
    pub release_baseline: bool,
    /// Problems that make reconcile refuse; each names the node and the object.
    pub errors: Vec<String>,
    /// Why a reboot is required.
    pub reboot_reasons: Vec<String>,
    /// The state reconcile would reach.
    pub engine_state: EngineState,
    /// True when reconcile would change anything on the host.
    pub changes: bool,
}

/// Checks that `pages` fit in the host's memory; the message names the node and numbers.
pub fn check_memory(node: &str, pages: u64, memory_total_bytes: u64) -> Result<(), String> {
    let want = pages.saturating_mul(HUGEPAGE_SIZE_BYTES);
    if want > memory_total_bytes {
        return Err(format!(
            "node {node}: {pages} hugepages ({} MiB) are more than the host's memory ({} MiB)",
            want / (1024 * 1024),
            memory_total_bytes / (1024 * 1024)
        ));
    }
    Ok(())
}

/// Plans reconcile of `cfg` on a host that looks like `view`.
pub fn plan(cfg: &NodeConfig, view: &HostView) -> Plan {
    let backend = boot::resolve(cfg.boot_persistence, view.oem_exists);
    let current = view.nr_hugepages;
    let mut p = Plan {
        backend,
        desired_files: Vec::new(),
        boot: BootChanges::default(),
        modules_to_load: Vec::new(),
        hugepages_target: 0,
        hugepages_current: current,
        set_hugepages: None,
        hugepages_expected: current,
        record_baseline: None,
        release_baseline: false,
        errors: Vec::new(),
        reboot_reasons: Vec::new(),
        engine_state: EngineState::Disabled,
        changes: false,
    };
    if !cfg.enabled {
        p.boot = boot::diff(&[], &view.boot_files);
        if let Some(b) = view.baseline {
            p.release_baseline = true;
            p.hugepages_expected = b;
            if b != current {
                p.set_hugepages = Some(b);
            }
        }
        p.changes = !p.boot.is_empty() || p.hugepages_expected != current;
        return p;
    }

    let target = cfg.hugepages;
    p.hugepages_target = target;
    if let Err(e) = check_memory(&cfg.node, target, view.memory_total_bytes) {
        p.errors.push(e);
    }
    for (name, state) in &view.modules {
        match state {
            ModuleState::Loaded | ModuleState::Builtin => {}
            ModuleState::Loadable if view.modprobe => p.modules_to_load.push(name.clone()),
            ModuleState::Loadable => p.errors.push(format!(
                "node {}: cannot load kernel module {name}: modprobe is not installed",
                cfg.node
            )),
            ModuleState::Missing => p.errors.push(format!(
                "node {}: kernel module {name} is missing: not loaded, not built in and not in modules.dep",
                cfg.node
            )),
        }
    }
    p.desired_files = boot::render(backend, &cfg.kernel_modules, target);
    p.boot = boot::diff(&p.desired_files, &view.boot_files);
    if view.baseline.is_none() {
        p.record_baseline = Some(current);
    }
    if current != target {
        p.set_hugepages = Some(target);
    }
    p.hugepages_expected = if current >= target {
        target
    } else {
        current + (target - current).min(view.allocatable_now)
    };
    if !p.errors.is_empty() {
        p.engine_state = EngineState::Failed;
        p.hugepages_expected = current;
        return p;
    }
    p.reboot_reasons = reboot_reasons(backend, p.hugepages_expected, target);
    p.engine_state = if p.reboot_reasons.is_empty() {
        EngineState::Ready
    } else {
        EngineState::WaitingForReboot
    };
    p.changes =
        !p.boot.is_empty() || !p.modules_to_load.is_empty() || p.hugepages_expected != current;
    p
}

/// The reasons a node with `allocated` of `target` pages needs a reboot.
pub fn reboot_reasons(backend: Backend, allocated: u64, target: u64) -> Vec<String> {
    if allocated >= target {
        return Vec::new();
    }
    let mut r = vec![shortfall_reason(allocated, target)];
    if backend == Backend::None {
        r.push("boot_persistence is none: no boot configuration is written, so set another backend for the reboot to help".into());
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::BootPersistence;

    fn cfg(enabled: bool, pages: u64) -> NodeConfig {
        NodeConfig {
            node: "node-1".into(),
            enabled,
            hugepages: pages,
            cpu_mask: "0x1".into(),
            log_level: "notice".into(),
            interrupt_mode: false,
            kernel_modules: vec!["vfio_pci".into(), "nvme_tcp".into()],
            boot_persistence: BootPersistence::Auto,
        }
    }

    fn view() -> HostView {
        HostView {
            memory_total_bytes: 8 << 30,
            nr_hugepages: 0,
            allocatable_now: 5000,
            modules: vec![
                ("vfio_pci".into(), ModuleState::Loadable),
                ("nvme_tcp".into(), ModuleState::Builtin),
            ],
            modprobe: true,
            oem_exists: false,
            boot_files: boot::OWNED_FILES.iter().map(|p| (*p, None)).collect(),
            baseline: None,
        }
    }

    #[test]
    fn enabling_on_a_roomy_host_is_ready() {
        let p = plan(&cfg(true, 1024), &view());
        assert_eq!(p.backend, Backend::Systemd);
        assert_eq!(p.boot.write.len(), 2);
        assert_eq!(p.modules_to_load, ["vfio_pci"]);
        assert_eq!((p.set_hugepages, p.hugepages_expected), (Some(1024), 1024));
        assert_eq!(p.record_baseline, Some(0));
        assert_eq!(p.engine_state, EngineState::Ready);
        assert!(p.reboot_reasons.is_empty() && p.errors.is_empty() && p.changes);
    }

    #[test]
    fn fragmented_memory_predicts_a_reboot_with_the_exact_reason() {
        let mut v = view();
        v.allocatable_now = 3;
        v.oem_exists = true;
        let p = plan(&cfg(true, 1024), &v);
        assert_eq!(p.backend, Backend::Elemental);
        assert_eq!(p.hugepages_expected, 3);
        assert_eq!(
            p.reboot_reasons,
            [
                "allocated 3 of 1024 hugepages; the boot configuration will allocate them at next boot"
            ]
        );
        assert_eq!(p.engine_state, EngineState::WaitingForReboot);
    }

    #[test]
    fn a_prepared_node_plans_no_change() {
        let mut v = view();
        v.nr_hugepages = 1024;
        v.baseline = Some(0);
        v.modules[0].1 = ModuleState::Loaded;
        for f in boot::render(Backend::Systemd, &cfg(true, 1024).kernel_modules, 1024) {
            v.boot_files.insert(f.path, Some(f.content));
        }
        let p = plan(&cfg(true, 1024), &v);
        assert!(!p.changes, "{p:?}");
        assert_eq!(p.set_hugepages, None);
        assert_eq!(p.record_baseline, None);
        assert_eq!(p.engine_state, EngineState::Ready);
    }

    #[test]
    fn problems_name_node_module_and_numbers() {
        let mut v = view();
        v.modprobe = false;
        v.modules.push(("nope".into(), ModuleState::Missing));
        v.memory_total_bytes = 1 << 30;
        let p = plan(&cfg(true, 1024), &v);
        assert_eq!(
            p.errors,
            [
                "node node-1: 1024 hugepages (2048 MiB) are more than the host's memory (1024 MiB)",
                "node node-1: cannot load kernel module vfio_pci: modprobe is not installed",
                "node node-1: kernel module nope is missing: not loaded, not built in and not in modules.dep",
            ]
        );
        assert_eq!(p.engine_state, EngineState::Failed);
        assert!(!p.changes);
    }

    #[test]
    fn disabling_gives_back_the_baseline_and_removes_files() {
        let mut v = view();
        v.nr_hugepages = 1024;
        v.baseline = Some(4);
        v.boot_files.insert(boot::SYSCTL_PATH, Some("x".into()));
        let p = plan(&cfg(false, 1024), &v);
        assert_eq!(p.boot.remove, [boot::SYSCTL_PATH]);
        assert_eq!((p.set_hugepages, p.hugepages_expected), (Some(4), 4));
        assert!(p.release_baseline && p.changes);
        assert_eq!(p.engine_state, EngineState::Disabled);
        // Never enabled: nothing to give back, nothing changes.
        let p = plan(&cfg(false, 1024), &view());
        assert!(!p.changes && p.set_hugepages.is_none() && !p.release_baseline);
    }

    #[test]
    fn backend_none_says_a_reboot_will_not_help() {
        let mut c = cfg(true, 10);
        c.boot_persistence = BootPersistence::None;
        let mut v = view();
        v.allocatable_now = 0;
        let p = plan(&c, &v);
        assert!(p.desired_files.is_empty());
        assert_eq!(p.reboot_reasons.len(), 2);
        assert!(p.reboot_reasons[1].contains("boot_persistence is none"));
    }
}
