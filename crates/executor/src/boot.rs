//! Boot persistence (pure): which backend applies, the files it needs, and what a boot
//! would do with such files.
//!
//! - `systemd`: `/etc/modules-load.d/v2engine.conf` (one module per line) and
//!   `/etc/sysctl.d/90-v2engine-hugepages.conf` (`vm.nr_hugepages = N`).
//! - `elemental`: `/oem/93_spdk.yaml`, an Elemental (yip) cloud-config `boot` stage with
//!   `modules` and `sysctl`.
//! - `none`: no file.
//!
//! The executor owns exactly the files in [`OWNED_FILES`]; any of them that the desired
//! state does not include is removed.

use std::collections::BTreeMap;

use model::BootPersistence;

/// systemd-modules-load file.
pub const MODULES_LOAD_PATH: &str = "/etc/modules-load.d/v2engine.conf";
/// systemd-sysctl file.
pub const SYSCTL_PATH: &str = "/etc/sysctl.d/90-v2engine-hugepages.conf";
/// Elemental cloud-config stage.
pub const ELEMENTAL_PATH: &str = "/oem/93_spdk.yaml";
/// The directory whose presence makes `auto` resolve to `elemental`.
pub const OEM_DIR: &str = "/oem";
/// Every file the executor may write.
pub const OWNED_FILES: [&str; 3] = [MODULES_LOAD_PATH, SYSCTL_PATH, ELEMENTAL_PATH];

const HEADER: &str = "# Written by v2engine-executor; it is rewritten or removed as the V2 data engine's\n\
                      # configuration changes. Do not edit.\n";

/// A backend after resolving `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// systemd's modules-load.d and sysctl.d.
    Systemd,
    /// Elemental's /oem cloud-config.
    Elemental,
    /// Nothing persists.
    None,
}

impl Backend {
    /// `systemd`, `elemental` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Systemd => "systemd",
            Self::Elemental => "elemental",
            Self::None => "none",
        }
    }
}

/// Resolves the requested backend: `auto` is `elemental` where `/oem` exists.
pub fn resolve(requested: BootPersistence, oem_exists: bool) -> Backend {
    match requested {
        BootPersistence::Auto if oem_exists => Backend::Elemental,
        BootPersistence::Auto | BootPersistence::Systemd => Backend::Systemd,
        BootPersistence::Elemental => Backend::Elemental,
        BootPersistence::None => Backend::None,
    }
}

/// A file to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootFile {
    /// Absolute host path.
    pub path: &'static str,
    /// Full content.
    pub content: String,
}

/// The files `backend` needs for `modules` and `hugepages`.
pub fn render(backend: Backend, modules: &[String], hugepages: u64) -> Vec<BootFile> {
    match backend {
        Backend::None => Vec::new(),
        Backend::Systemd => {
            let mut files = Vec::new();
            if !modules.is_empty() {
                let mut c = String::from(HEADER);
                for m in modules {
                    c.push_str(m);
                    c.push('\n');
                }
                files.push(BootFile {
                    path: MODULES_LOAD_PATH,
                    content: c,
                });
            }
            files.push(BootFile {
                path: SYSCTL_PATH,
                content: format!("{HEADER}vm.nr_hugepages = {hugepages}\n"),
            });
            files
        }
        Backend::Elemental => {
            let mut c = String::from(HEADER);
            c.push_str("name: \"v2engine V2 data engine\"\nstages:\n  boot:\n");
            c.push_str("    - name: \"v2engine: load kernel modules and allocate hugepages\"\n");
            if !modules.is_empty() {
                c.push_str("      modules:\n");
                for m in modules {
                    c.push_str(&format!("        - {m}\n"));
                }
            }
            c.push_str(&format!(
                "      sysctl:\n        vm.nr_hugepages: \"{hugepages}\"\n"
            ));
            vec![BootFile {
                path: ELEMENTAL_PATH,
                content: c,
            }]
        }
    }
}

/// What to change so that the owned files match `desired`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootChanges {
    /// Files whose content differs or that are absent.
    pub write: Vec<BootFile>,
    /// Owned files that exist but are not desired.
    pub remove: Vec<&'static str>,
}

impl BootChanges {
    /// True when nothing changes.
    pub fn is_empty(&self) -> bool {
        self.write.is_empty() && self.remove.is_empty()
    }
}

/// Compares `desired` with the current content of the owned files (`None` = absent).
pub fn diff(desired: &[BootFile], current: &BTreeMap<&'static str, Option<String>>) -> BootChanges {
    let write = desired
        .iter()
        .filter(|f| current.get(f.path).and_then(|c| c.as_deref()) != Some(f.content.as_str()))
        .cloned()
        .collect();
    let remove = OWNED_FILES
        .into_iter()
        .filter(|p| current.get(p).is_some_and(Option::is_some))
        .filter(|p| !desired.iter().any(|f| f.path == *p))
        .collect();
    BootChanges { write, remove }
}

/// What a boot applies from the files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootConfig {
    /// Modules loaded at boot, in order, without duplicates.
    pub modules: Vec<String>,
    /// `vm.nr_hugepages` set at boot, the last one applied winning.
    pub nr_hugepages: Option<u64>,
}

impl BootConfig {
    fn add_module(&mut self, m: &str) {
        if !m.is_empty() && !self.modules.iter().any(|x| x == m) {
            self.modules.push(m.to_string());
        }
    }

    /// Applies a modules-load.d file.
    pub fn apply_modules_load(&mut self, text: &str) {
        for line in text.lines().map(str::trim) {
            if !(line.starts_with('#') || line.starts_with(';')) {
                self.add_module(line);
            }
        }
    }

    /// Applies a sysctl.d file.
    pub fn apply_sysctl(&mut self, text: &str) {
        for line in text.lines().map(str::trim) {
            if line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                let key = k.trim().trim_start_matches('-').replace('/', ".");
                if key == "vm.nr_hugepages"
                    && let Ok(n) = v.trim().parse()
                {
                    self.nr_hugepages = Some(n);
                }
            }
        }
    }

    /// Applies the `modules` and `sysctl` of an Elemental cloud-config (the subset of YAML
    /// that [`render`] writes: block lists and maps, scalars optionally quoted).
    pub fn apply_elemental(&mut self, text: &str) {
        #[derive(PartialEq)]
        enum Mode {
            Other,
            Modules,
            Sysctl,
        }
        let mut mode = Mode::Other;
        let mut key_indent = 0usize;
        for raw in text.lines() {
            let line = raw.trim_end();
            let body = line.trim_start();
            if body.is_empty() || body.starts_with('#') {
                continue;
            }
            let indent = line.len() - body.len();
            let same_level_item = mode == Mode::Modules && body.starts_with("- ");
            if mode != Mode::Other
                && (indent < key_indent || (indent == key_indent && !same_level_item))
            {
                mode = Mode::Other;
            }
            let body_key = body.strip_prefix("- ").unwrap_or(body);
            match mode {
                Mode::Modules => {
                    if let Some(item) = body.strip_prefix("- ") {
                        self.add_module(unquote(item));
                    }
                    continue;
                }
                Mode::Sysctl => {
                    if let Some((k, v)) = body.split_once(':')
                        && unquote(k) == "vm.nr_hugepages"
                        && let Ok(n) = unquote(v).parse()
                    {
                        self.nr_hugepages = Some(n);
                    }
                    continue;
                }
                Mode::Other => {}
            }
            let key_col = indent + (body.len() - body_key.len());
            if body_key == "modules:" {
                mode = Mode::Modules;
                key_indent = key_col;
            } else if body_key == "sysctl:" {
                mode = Mode::Sysctl;
                key_indent = key_col;
            }
        }
    }
}

fn unquote(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .or_else(|| s.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
        .unwrap_or(s)
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
    fn auto_follows_oem() {
        assert_eq!(resolve(BootPersistence::Auto, true), Backend::Elemental);
        assert_eq!(resolve(BootPersistence::Auto, false), Backend::Systemd);
        assert_eq!(resolve(BootPersistence::Systemd, true), Backend::Systemd);
        assert_eq!(
            resolve(BootPersistence::Elemental, false),
            Backend::Elemental
        );
        assert_eq!(resolve(BootPersistence::None, true), Backend::None);
    }

    #[test]
    fn systemd_files() {
        let f = render(Backend::Systemd, &mods(), 1024);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].path, MODULES_LOAD_PATH);
        assert!(f[0].content.starts_with("# Written by v2engine-executor"));
        assert!(
            f[0].content
                .ends_with("\nvfio_pci\nuio_pci_generic\nnvme_tcp\n")
        );
        assert_eq!(f[1].path, SYSCTL_PATH);
        assert!(f[1].content.ends_with("\nvm.nr_hugepages = 1024\n"));
        let f = render(Backend::Systemd, &[], 8);
        assert_eq!(f.iter().map(|f| f.path).collect::<Vec<_>>(), [SYSCTL_PATH]);
        assert!(render(Backend::None, &mods(), 8).is_empty());
    }

    #[test]
    fn elemental_file() {
        let f = render(Backend::Elemental, &mods(), 512);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].path, ELEMENTAL_PATH);
        let body = f[0].content.split_once("Do not edit.\n").unwrap().1;
        assert_eq!(
            body,
            "name: \"v2engine V2 data engine\"\n\
             stages:\n  boot:\n\
             \x20   - name: \"v2engine: load kernel modules and allocate hugepages\"\n\
             \x20     modules:\n\
             \x20       - vfio_pci\n        - uio_pci_generic\n        - nvme_tcp\n\
             \x20     sysctl:\n        vm.nr_hugepages: \"512\"\n"
        );
    }

    #[test]
    fn boot_reads_back_what_render_writes() {
        for backend in [Backend::Systemd, Backend::Elemental] {
            let mut b = BootConfig::default();
            for f in render(backend, &mods(), 300) {
                match f.path {
                    MODULES_LOAD_PATH => b.apply_modules_load(&f.content),
                    SYSCTL_PATH => b.apply_sysctl(&f.content),
                    _ => b.apply_elemental(&f.content),
                }
            }
            assert_eq!(
                b,
                BootConfig {
                    modules: mods(),
                    nr_hugepages: Some(300)
                },
                "{backend:?}"
            );
        }
    }

    #[test]
    fn parses_hand_written_files() {
        let mut b = BootConfig::default();
        b.apply_sysctl("; c\nvm/nr_hugepages=7\n-kernel.x = 1\n");
        b.apply_modules_load("# c\n\nloop\nloop\n");
        b.apply_elemental(
            "stages:\n  initramfs:\n  - modules: [ignored]\n    sysctl:\n      vm.swappiness: '1'\n      vm.nr_hugepages: '9'\n  - name: x\n    modules:\n    - 'br_netfilter'\n    commands:\n    - echo hi\n",
        );
        assert_eq!(b.modules, ["loop", "br_netfilter"]);
        assert_eq!(b.nr_hugepages, Some(9));
    }

    #[test]
    fn diff_writes_changed_files_and_removes_unwanted_ones() {
        let desired = render(Backend::Systemd, &mods(), 16);
        let mut current: BTreeMap<&'static str, Option<String>> =
            OWNED_FILES.iter().map(|p| (*p, None)).collect();
        current.insert(MODULES_LOAD_PATH, Some(desired[0].content.clone()));
        current.insert(ELEMENTAL_PATH, Some("old".into()));
        let d = diff(&desired, &current);
        assert_eq!(
            d.write.iter().map(|f| f.path).collect::<Vec<_>>(),
            [SYSCTL_PATH]
        );
        assert_eq!(d.remove, [ELEMENTAL_PATH]);
        let d = diff(&[], &current);
        assert!(d.write.is_empty());
        assert_eq!(d.remove, [MODULES_LOAD_PATH, ELEMENTAL_PATH]);
        current.insert(SYSCTL_PATH, Some(desired[1].content.clone()));
        current.insert(ELEMENTAL_PATH, None);
        assert!(diff(&desired, &current).is_empty());
    }
}
