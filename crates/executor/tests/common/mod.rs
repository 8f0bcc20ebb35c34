//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use executor::Executor;
use executor::engine::NoEngine;
use executor::host::linux::LinuxHost;
use executor::host::sim::{SimHost, SimState};
use executor::records::IncomingRecord;

/// The default modules of the setting.
pub fn default_modules() -> Vec<String> {
    vec![
        "vfio_pci".into(),
        "uio_pci_generic".into(),
        "nvme_tcp".into(),
    ]
}

/// An incoming record.
pub fn rec(kind: &str, name: &str, revision: u64, spec: serde_json::Value) -> IncomingRecord {
    IncomingRecord {
        kind: kind.into(),
        name: name.into(),
        revision,
        deleted: false,
        spec_json: spec.to_string(),
    }
}

/// The cluster setting with `enabled` and `mib` of hugepages.
pub fn setting(revision: u64, enabled: bool, mib: i64) -> IncomingRecord {
    rec(
        "data_engine_setting",
        "cluster",
        revision,
        serde_json::json!({"enabled": enabled, "hugepage_limit_mib": mib}),
    )
}

/// A simulated node in a temp dir: state file, host root, state dir.
pub struct SimNode {
    pub dir: tempfile::TempDir,
    pub state_file: PathBuf,
    pub root: PathBuf,
    pub state_dir: PathBuf,
}

impl SimNode {
    pub fn new(memory_mib: u64, fragmented: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let state_file = dir.path().join("sim.json");
        let root = dir.path().join("root");
        let state_dir = dir.path().join("state");
        fs::create_dir_all(&root).unwrap();
        SimHost::new(&state_file, &root)
            .save(&SimState::new(memory_mib, fragmented, default_modules()))
            .unwrap();
        Self {
            dir,
            state_file,
            root,
            state_dir,
        }
    }

    pub fn host(&self) -> SimHost {
        SimHost::new(&self.state_file, &self.root)
    }

    pub fn state(&self) -> SimState {
        self.host().load().unwrap()
    }

    pub fn executor(&self, node: &str) -> Executor {
        Executor::open(
            node,
            &self.state_dir,
            Box::new(self.host()),
            Box::new(NoEngine),
        )
        .unwrap()
    }
}

/// A fake Linux tree: kernel release, meminfo, hugepage sysfs, buddyinfo, modules.
pub struct FakeRoot {
    pub dir: tempfile::TempDir,
}

pub const FAKE_RELEASE: &str = "6.1.0-test";

impl FakeRoot {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let r = Self { dir };
        r.write("proc/sys/kernel/osrelease", &format!("{FAKE_RELEASE}\n"));
        r.write("proc/sys/kernel/hostname", "fake-host\n");
        r.write("sys/devices/system/cpu/online", "0-3\n");
        r.write(
            "proc/meminfo",
            "MemTotal:        8388608 kB\nMemFree:  4000000 kB\nMemAvailable:    6291456 kB\n",
        );
        r.write(
            "sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
            "0\n",
        );
        r.write(
            "sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages",
            "0\n",
        );
        r.write("proc/sys/vm/nr_hugepages", "0\n");
        r.write(
            "proc/buddyinfo",
            "Node 0, zone   Normal 0 0 0 0 0 0 0 0 0 0 3000\n",
        );
        r.write("proc/modules", "");
        r
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, content: &str) {
        let p = self.dir.path().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }

    pub fn read(&self, rel: &str) -> Option<String> {
        fs::read_to_string(self.dir.path().join(rel)).ok()
    }

    pub fn host(&self) -> LinuxHost {
        LinuxHost::new(self.dir.path())
    }

    /// Marks the default modules loaded in the fake /proc/modules.
    pub fn load_default_modules(&self) {
        let text: String = default_modules()
            .iter()
            .map(|m| format!("{m} 16384 0 - Live 0x0000000000000000\n"))
            .collect();
        self.write("proc/modules", &text);
    }
}

/// Every file under `dir` with its content, for "nothing changed" assertions.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let data = fs::read(&p).unwrap_or_default();
                out.push((p, data));
            }
        }
    }
    out.sort();
    out
}
