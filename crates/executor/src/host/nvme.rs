//! The kernel's NVMe host side as sysfs shows it, and the nvme-cli command lines v2engine
//! runs.
//!
//! Layout read (every path under the host root):
//!
//! ```text
//! /sys/class/nvme-subsystem/nvme-subsys0/subsysnqn      the subsystem's NQN
//! /sys/class/nvme-subsystem/nvme-subsys0/nvme0          link to a controller of it
//! /sys/class/nvme-subsystem/nvme-subsys0/nvme0n1/       namespace block device (native
//!                                                        multipath: the shared head)
//! /sys/class/nvme/nvme0/{subsysnqn,transport,address,state}
//! /sys/class/nvme/nvme0/nvme0n1/                        namespace block device (no multipath)
//! /sys/class/nvme/nvme0/nvme0c0n1/                      a multipath path (hidden, not a device)
//! ```
//!
//! Namespace devices are the entries named `nvme<N>n<M>` (libnvme's namespace filter);
//! `nvme<N>c<C>n<M>` are per-path devices that have no `/dev` node. Entries in
//! `/sys/class/*` are symlinks into `/sys/devices`; they are followed.
//!
//! Parsing and lookups are pure; [`read_topology`] is the only I/O.

use super::{HostError, RootedFs};

/// Where the kernel lists NVMe subsystems.
pub const SUBSYSTEM_CLASS: &str = "/sys/class/nvme-subsystem";
/// Where the kernel lists NVMe controllers.
pub const CONTROLLER_CLASS: &str = "/sys/class/nvme";

/// An NVMe subsystem the kernel knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelSubsystem {
    /// `nvme-subsys0`.
    pub name: String,
    /// Its NQN.
    pub nqn: String,
    /// Its controllers, `nvme0`.
    pub controllers: Vec<String>,
    /// Namespace block devices listed under it (native multipath), `nvme0n1`.
    pub namespaces: Vec<String>,
}

/// An NVMe controller the kernel has (one connection, for fabrics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelController {
    /// `nvme0`.
    pub name: String,
    /// The NQN of its subsystem.
    pub subsysnqn: String,
    /// `tcp`, `rdma`, `pcie`, ...
    pub transport: String,
    /// `traddr=10.0.0.1,trsvcid=4420` for fabrics.
    pub address: String,
    /// `live`, `connecting`, `resetting`, `deleting`, ...
    pub state: String,
    /// Namespace block devices listed under it (no multipath), `nvme0n1`.
    pub namespaces: Vec<String>,
}

/// What sysfs shows of the kernel's NVMe host side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelNvme {
    /// Subsystems, by name.
    pub subsystems: Vec<KernelSubsystem>,
    /// Controllers, by name.
    pub controllers: Vec<KernelController>,
}

/// `nvme<N>n<M>`: `(N, M)`.
pub fn namespace_name(name: &str) -> Option<(u32, u32)> {
    let rest = name.strip_prefix("nvme")?;
    let (n, m) = rest.split_once('n')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(n) || !digits(m) {
        return None;
    }
    Some((n.parse().ok()?, m.parse().ok()?))
}

/// `nvme<N>`: `N`.
pub fn controller_name(name: &str) -> Option<u32> {
    let n = name.strip_prefix("nvme")?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

fn sorted_namespaces(mut names: Vec<String>) -> Vec<String> {
    names.retain(|n| namespace_name(n).is_some());
    names.sort_by_key(|n| namespace_name(n));
    names
}

impl KernelNvme {
    /// The controllers connected to subsystem `nqn`.
    pub fn controllers_of(&self, nqn: &str) -> Vec<&KernelController> {
        self.controllers
            .iter()
            .filter(|c| c.subsysnqn == nqn)
            .collect()
    }

    /// True when the kernel has a controller of subsystem `nqn`.
    pub fn is_connected(&self, nqn: &str) -> bool {
        !self.controllers_of(nqn).is_empty()
    }

    /// The block device (`/dev/nvme0n1`) of subsystem `nqn`'s first namespace: the
    /// multipath head under the subsystem, else a namespace under one of its controllers.
    pub fn block_device(&self, nqn: &str) -> Option<String> {
        let head = self
            .subsystems
            .iter()
            .filter(|s| s.nqn == nqn)
            .flat_map(|s| s.namespaces.iter())
            .min_by_key(|n| namespace_name(n));
        let direct = || {
            self.controllers_of(nqn)
                .into_iter()
                .flat_map(|c| c.namespaces.iter())
                .min_by_key(|n| namespace_name(n))
        };
        head.or_else(direct).map(|n| format!("/dev/{n}"))
    }
}

/// Reads the kernel's NVMe subsystems and controllers under `fs`'s root; empty when the
/// kernel has none (or no NVMe driver at all).
pub fn read_topology(fs: &RootedFs) -> Result<KernelNvme, HostError> {
    let attr = |dir: &str, name: &str| -> Result<String, HostError> {
        Ok(fs
            .read_optional(&format!("{dir}/{name}"))?
            .unwrap_or_default()
            .trim()
            .to_string())
    };
    let mut out = KernelNvme::default();
    for name in fs.list_dir(SUBSYSTEM_CLASS)? {
        if !name.starts_with("nvme-subsys") {
            continue;
        }
        let dir = format!("{SUBSYSTEM_CLASS}/{name}");
        let entries = fs.list_dir(&dir)?;
        let mut controllers: Vec<String> = entries
            .iter()
            .filter(|e| controller_name(e).is_some())
            .cloned()
            .collect();
        controllers.sort_by_key(|c| controller_name(c));
        out.subsystems.push(KernelSubsystem {
            nqn: attr(&dir, "subsysnqn")?,
            controllers,
            namespaces: sorted_namespaces(entries),
            name,
        });
    }
    for name in fs.list_dir(CONTROLLER_CLASS)? {
        if controller_name(&name).is_none() {
            continue;
        }
        let dir = format!("{CONTROLLER_CLASS}/{name}");
        out.controllers.push(KernelController {
            subsysnqn: attr(&dir, "subsysnqn")?,
            transport: attr(&dir, "transport")?,
            address: attr(&dir, "address")?,
            state: attr(&dir, "state")?,
            namespaces: sorted_namespaces(fs.list_dir(&dir)?),
            name,
        });
    }
    out.subsystems.sort_by(|a, b| a.name.cmp(&b.name));
    out.controllers.sort_by_key(|c| controller_name(&c.name));
    Ok(out)
}

/// A kernel connection to an NVMe/TCP subsystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvmeConnect {
    /// The target's address.
    pub address: String,
    /// The target's port.
    pub port: u16,
    /// The subsystem.
    pub nqn: String,
    /// The host NQN the kernel presents.
    pub host_nqn: String,
}

impl NvmeConnect {
    /// `nvme` arguments: `connect -t tcp -a ADDR -s PORT -n NQN --hostnqn HOSTNQN`.
    pub fn args(&self) -> Vec<String> {
        [
            "connect",
            "-t",
            "tcp",
            "-a",
            &self.address,
            "-s",
            &self.port.to_string(),
            "-n",
            &self.nqn,
            "--hostnqn",
            &self.host_nqn,
        ]
        .map(str::to_string)
        .to_vec()
    }
}

/// `nvme` arguments disconnecting every controller of subsystem `nqn`.
pub fn disconnect_args(nqn: &str) -> Vec<String> {
    ["disconnect", "-n", nqn].map(str::to_string).to_vec()
}

/// A command line as text, for action lists and errors (`nvme connect -t tcp ...`).
pub fn command_line(args: &[String]) -> String {
    std::iter::once("nvme")
        .chain(args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_libnvmes_filters() {
        assert_eq!(namespace_name("nvme0n1"), Some((0, 1)));
        assert_eq!(namespace_name("nvme12n3"), Some((12, 3)));
        for not in [
            "nvme0c0n1",
            "nvme0",
            "nvmen1",
            "nvme0n",
            "nvme-subsys0",
            "nvme0n1p1",
        ] {
            assert_eq!(namespace_name(not), None, "{not}");
        }
        assert_eq!(controller_name("nvme3"), Some(3));
        for not in ["nvme", "nvme0n1", "nvme-subsys0", "nvme0c0n1"] {
            assert_eq!(controller_name(not), None, "{not}");
        }
    }

    #[test]
    fn the_block_device_is_the_multipath_head_else_the_controllers_namespace() {
        let nqn = "nqn.2026-11.io.v2engine:vol1";
        let ctrl = |name: &str, subsysnqn: &str, ns: &[&str]| KernelController {
            name: name.into(),
            subsysnqn: subsysnqn.into(),
            transport: "tcp".into(),
            state: "live".into(),
            namespaces: ns.iter().map(|s| s.to_string()).collect(),
            ..KernelController::default()
        };
        let multipath = KernelNvme {
            subsystems: vec![
                KernelSubsystem {
                    name: "nvme-subsys0".into(),
                    nqn: "nqn.2014-08.org.nvmexpress:local".into(),
                    controllers: vec!["nvme0".into()],
                    namespaces: vec!["nvme0n1".into()],
                },
                KernelSubsystem {
                    name: "nvme-subsys1".into(),
                    nqn: nqn.into(),
                    controllers: vec!["nvme1".into()],
                    namespaces: vec!["nvme1n2".into(), "nvme1n1".into()],
                },
            ],
            controllers: vec![
                ctrl("nvme0", "nqn.2014-08.org.nvmexpress:local", &["nvme0n1"]),
                ctrl("nvme1", nqn, &[]),
            ],
        };
        assert_eq!(multipath.block_device(nqn).as_deref(), Some("/dev/nvme1n1"));
        assert!(multipath.is_connected(nqn));
        let direct = KernelNvme {
            subsystems: vec![],
            controllers: vec![ctrl("nvme4", nqn, &["nvme4n1"])],
        };
        assert_eq!(direct.block_device(nqn).as_deref(), Some("/dev/nvme4n1"));
        // Connected, namespace not scanned yet.
        let scanning = KernelNvme {
            subsystems: vec![],
            controllers: vec![ctrl("nvme4", nqn, &[])],
        };
        assert!(scanning.is_connected(nqn));
        assert_eq!(scanning.block_device(nqn), None);
        assert!(!KernelNvme::default().is_connected(nqn));
        assert_eq!(
            multipath.block_device("nqn.2026-11.io.v2engine:other"),
            None
        );
    }

    #[test]
    fn command_lines_are_argument_vectors() {
        let c = NvmeConnect {
            address: "10.0.0.1".into(),
            port: 4420,
            nqn: "nqn.2026-11.io.v2engine:vol1".into(),
            host_nqn: "nqn.2014-08.org.nvmexpress:uuid:1234".into(),
        };
        assert_eq!(
            c.args(),
            [
                "connect",
                "-t",
                "tcp",
                "-a",
                "10.0.0.1",
                "-s",
                "4420",
                "-n",
                "nqn.2026-11.io.v2engine:vol1",
                "--hostnqn",
                "nqn.2014-08.org.nvmexpress:uuid:1234"
            ]
        );
        assert_eq!(
            command_line(&disconnect_args("nqn.2026-11.io.v2engine:vol1")),
            "nvme disconnect -n nqn.2026-11.io.v2engine:vol1"
        );
    }
}
