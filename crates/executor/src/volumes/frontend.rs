//! The kernel side of a volume's frontend on its attach node (`frontend = block`): the
//! kernel's NVMe/TCP initiator connects to the volume's frontend subsystem, and the
//! namespace's block device (`/dev/nvmeXnY`, found through sysfs) is the volume's
//! `device_path`.
//!
//! - Before anything changes, [`InitiatorFacts::missing`] says what the host lacks:
//!   nvme-cli, the `nvme_tcp` module (loaded, built in, or loadable with modprobe), or a
//!   kernel at all (the lab's simulated host). A `block` engine is refused on such a host.
//! - [`plan_attach`] / [`plan_detach`] turn what the kernel has ([`KernelNvme`]) into the
//!   steps to take ([`KernelAction`]): nothing when already connected (attach) or not
//!   connected (detach), so both are idempotent.
//! - [`run`] carries the steps out through [`HostOs`] (nvme-cli with an argument vector,
//!   modprobe), and [`wait_for_device`] waits for the kernel's asynchronous namespace scan.
//!
//! The host NQN the kernel presents is the host's own (`/etc/nvme/hostnqn`, as nvme-cli
//! and every other initiator on the host use it) or, without one, a v2engine name derived
//! from the node ([`kernel_host_nqn`]); it is added to the frontend subsystem's hosts.
//!
//! A volume whose frontend is `nvmf` leaves the kernel alone (a consumer on the node may
//! have connected to it on purpose); deleting an engine disconnects the kernel first,
//! whatever the frontend was, because its subsystem is about to go.

use std::fmt;
use std::time::{Duration, Instant};

use model::storage_class::Frontend;

use crate::host::nvme::{self, KernelNvme, NvmeConnect};
use crate::host::{HostError, HostOs, ModuleState};

use super::names;

/// The kernel module of the NVMe/TCP initiator.
pub const KERNEL_MODULE: &str = "nvme_tcp";
/// The host's own NVMe host NQN (nvme-cli's default).
pub const HOSTNQN_FILE: &str = "/etc/nvme/hostnqn";
/// How long a new connection may take to show its namespace's block device.
pub const DEVICE_WAIT: Duration = Duration::from_secs(10);

/// The kernel side of a frontend failed.
#[derive(Debug, thiserror::Error)]
pub enum FrontendError {
    /// The host cannot connect the kernel; nothing was changed.
    #[error("frontend block needs the kernel NVMe/TCP initiator: {}", missing.join("; "))]
    Unavailable {
        /// What is missing, one entry each.
        missing: Vec<String>,
    },
    /// Reading sysfs, or running nvme-cli or modprobe, failed.
    #[error(transparent)]
    Host(#[from] HostError),
    /// Connected, but the namespace's block device did not appear.
    #[error(
        "{nqn}: the kernel is connected (controller {controllers}) but no namespace block \
         device appeared in sysfs within {waited:?}"
    )]
    NoDevice {
        /// The subsystem.
        nqn: String,
        /// The kernel's controllers of it.
        controllers: String,
        /// How long it waited.
        waited: Duration,
    },
    /// `nvme disconnect` left a controller behind.
    #[error("{nqn}: the kernel still has controller {controllers} after nvme disconnect")]
    StillConnected {
        /// The subsystem.
        nqn: String,
        /// The controllers left.
        controllers: String,
    },
}

impl FrontendError {
    /// The host lacks what the frontend needs (fix the host, then retry).
    pub fn is_precondition(&self) -> bool {
        matches!(
            self,
            Self::Unavailable { .. }
                | Self::Host(HostError::NvmeCliMissing { .. } | HostError::Unsupported { .. })
        )
    }
}

/// The `frontend` of an engine request: empty means `nvmf`.
pub fn parse_frontend(s: &str) -> Result<Frontend, String> {
    match s {
        "" | "nvmf" => Ok(Frontend::Nvmf),
        "block" => Ok(Frontend::Block),
        "ublk" => Err("ublk is not supported by this executor yet; use nvmf or block".into()),
        other => Err(format!("{other:?} is not a frontend: nvmf or block")),
    }
}

/// What the host has of the kernel's NVMe/TCP initiator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitiatorFacts {
    /// Why this host has no kernel initiator at all (the simulated host), if so.
    pub unsupported: Option<String>,
    /// Where nvme-cli is, if installed.
    pub nvme_cli: Option<String>,
    /// The state of `nvme_tcp`.
    pub nvme_tcp: ModuleState,
    /// Where modprobe is, if installed.
    pub modprobe: Option<String>,
}

impl InitiatorFacts {
    /// Reads them from the host (no change).
    pub fn read(host: &dyn HostOs) -> Result<Self, HostError> {
        let module = host
            .module_states(&[KERNEL_MODULE.to_string()])?
            .into_iter()
            .next()
            .map_or(ModuleState::Missing, |(_, s)| s);
        Ok(Self {
            unsupported: host
                .simulated()
                .then(|| crate::host::sim::NO_INITIATOR.to_string()),
            nvme_cli: host.find_tool("nvme"),
            nvme_tcp: module,
            modprobe: host.find_tool("modprobe"),
        })
    }

    /// What is missing for `nvme connect` over TCP; empty when nothing is.
    pub fn missing(&self) -> Vec<String> {
        if let Some(reason) = &self.unsupported {
            return vec![reason.clone()];
        }
        let mut out = Vec::new();
        if self.nvme_cli.is_none() {
            out.push(
                "nvme-cli is not installed (no nvme in /usr/local/sbin, /usr/local/bin, \
                 /usr/sbin, /usr/bin, /sbin or /bin)"
                    .to_string(),
            );
        }
        match self.nvme_tcp {
            ModuleState::Loaded | ModuleState::Builtin => {}
            ModuleState::Loadable if self.modprobe.is_some() => {}
            ModuleState::Loadable => out.push(format!(
                "kernel module {KERNEL_MODULE} is not loaded and modprobe is not installed to load it"
            )),
            ModuleState::Missing => out.push(format!(
                "kernel module {KERNEL_MODULE} is missing (not loaded, not built in, not in modules.dep)"
            )),
        }
        out
    }
}

/// The host NQN the kernel presents: the host's own from `/etc/nvme/hostnqn` (`file`, its
/// content if present) when it is a valid NQN, else `nqn.2026-11.io.v2engine:kernel-<node>`.
pub fn kernel_host_nqn(file: Option<&str>, node: &str) -> String {
    file.map(str::trim)
        .filter(|n| names::check_host_nqn(n).is_ok())
        .map_or_else(
            || format!("{}kernel-{node}", model::NQN_PREFIX),
            str::to_string,
        )
}

/// A step on the kernel side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelAction {
    /// `modprobe nvme_tcp`.
    LoadModule,
    /// `nvme connect ...`.
    Connect(NvmeConnect),
    /// `nvme disconnect -n NQN`.
    Disconnect {
        /// The subsystem.
        nqn: String,
    },
}

impl fmt::Display for KernelAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LoadModule => write!(f, "load kernel module {KERNEL_MODULE}"),
            Self::Connect(c) => f.write_str(&nvme::command_line(&c.args())),
            Self::Disconnect { nqn } => {
                f.write_str(&nvme::command_line(&nvme::disconnect_args(nqn)))
            }
        }
    }
}

/// The steps connecting the kernel as `connect` says: none when it already is (to that
/// subsystem, at whatever address); the module first when it is only loadable.
pub fn plan_attach(
    facts: &InitiatorFacts,
    kernel: &KernelNvme,
    connect: &NvmeConnect,
) -> Vec<KernelAction> {
    if kernel.is_connected(&connect.nqn) {
        return Vec::new();
    }
    let mut out = Vec::new();
    if facts.nvme_tcp == ModuleState::Loadable {
        out.push(KernelAction::LoadModule);
    }
    out.push(KernelAction::Connect(connect.clone()));
    out
}

/// The steps disconnecting the kernel from `nqn`: none when it is not connected.
pub fn plan_detach(kernel: &KernelNvme, nqn: &str) -> Vec<KernelAction> {
    if kernel.is_connected(nqn) {
        vec![KernelAction::Disconnect {
            nqn: nqn.to_string(),
        }]
    } else {
        Vec::new()
    }
}

fn controllers_text(kernel: &KernelNvme, nqn: &str) -> String {
    kernel
        .controllers_of(nqn)
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A failure of [`run`] and the steps done before it.
#[derive(Debug)]
pub struct RunError {
    /// Steps done before the failure.
    pub done: Vec<String>,
    /// The failure.
    pub source: FrontendError,
}

/// Carries out `actions` in order, stopping at the first failure; a disconnect is checked
/// in sysfs afterwards. Returns what was done.
pub fn run(host: &dyn HostOs, actions: &[KernelAction]) -> Result<Vec<String>, RunError> {
    let mut done = Vec::with_capacity(actions.len());
    for a in actions {
        let step = match a {
            KernelAction::LoadModule => host.load_module(KERNEL_MODULE).map_err(Into::into),
            KernelAction::Connect(c) => host.run_nvme(&c.args()).map_err(Into::into),
            KernelAction::Disconnect { nqn } => disconnect(host, nqn),
        };
        match step {
            Ok(()) => {
                tracing::info!(action = %a, "kernel frontend changed");
                done.push(a.to_string());
            }
            Err(source) => return Err(RunError { done, source }),
        }
    }
    Ok(done)
}

fn disconnect(host: &dyn HostOs, nqn: &str) -> Result<(), FrontendError> {
    host.run_nvme(&nvme::disconnect_args(nqn))?;
    let kernel = host.kernel_nvme()?;
    if kernel.is_connected(nqn) {
        return Err(FrontendError::StillConnected {
            nqn: nqn.to_string(),
            controllers: controllers_text(&kernel, nqn),
        });
    }
    Ok(())
}

/// Waits until `read` shows the block device of `nqn` (the kernel scans namespaces after
/// `nvme connect` returns), polling every 20 ms growing to 200 ms, at most `bound`.
pub fn wait_for_device(
    mut read: impl FnMut() -> Result<KernelNvme, HostError>,
    nqn: &str,
    bound: Duration,
) -> Result<String, FrontendError> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(20);
    loop {
        let kernel = read()?;
        if let Some(device) = kernel.block_device(nqn) {
            return Ok(device);
        }
        if started.elapsed() >= bound {
            return Err(FrontendError::NoDevice {
                nqn: nqn.to_string(),
                controllers: controllers_text(&kernel, nqn),
                waited: started.elapsed(),
            });
        }
        std::thread::sleep(pause.min(bound.saturating_sub(started.elapsed())));
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::nvme::KernelController;

    const NQN: &str = "nqn.2026-11.io.v2engine:vol1";

    fn facts() -> InitiatorFacts {
        InitiatorFacts {
            unsupported: None,
            nvme_cli: Some("/usr/sbin/nvme".into()),
            nvme_tcp: ModuleState::Loaded,
            modprobe: Some("/usr/sbin/modprobe".into()),
        }
    }

    fn connect() -> NvmeConnect {
        NvmeConnect {
            address: "10.0.0.1".into(),
            port: 4430,
            nqn: NQN.into(),
            host_nqn: "nqn.2026-11.io.v2engine:kernel-node-1".into(),
        }
    }

    fn connected(namespaces: &[&str]) -> KernelNvme {
        KernelNvme {
            subsystems: vec![],
            controllers: vec![KernelController {
                name: "nvme3".into(),
                subsysnqn: NQN.into(),
                transport: "tcp".into(),
                namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
                ..KernelController::default()
            }],
        }
    }

    #[test]
    fn frontends_parse_with_nvmf_as_the_default() {
        assert_eq!(parse_frontend(""), Ok(Frontend::Nvmf));
        assert_eq!(parse_frontend("nvmf"), Ok(Frontend::Nvmf));
        assert_eq!(parse_frontend("block"), Ok(Frontend::Block));
        assert!(
            parse_frontend("ublk")
                .unwrap_err()
                .contains("not supported")
        );
        assert!(parse_frontend("iscsi").is_err());
    }

    #[test]
    fn missing_names_each_absent_piece() {
        assert!(facts().missing().is_empty());
        let builtin = InitiatorFacts {
            nvme_tcp: ModuleState::Builtin,
            modprobe: None,
            ..facts()
        };
        assert!(builtin.missing().is_empty());
        let loadable = InitiatorFacts {
            nvme_tcp: ModuleState::Loadable,
            ..facts()
        };
        assert!(loadable.missing().is_empty());
        let none = InitiatorFacts {
            unsupported: None,
            nvme_cli: None,
            nvme_tcp: ModuleState::Missing,
            modprobe: None,
        };
        let m = none.missing();
        assert_eq!(m.len(), 2, "{m:?}");
        assert!(m[0].contains("nvme-cli is not installed"), "{m:?}");
        assert!(m[1].contains("nvme_tcp is missing"), "{m:?}");
        let no_modprobe = InitiatorFacts {
            nvme_tcp: ModuleState::Loadable,
            modprobe: None,
            ..facts()
        };
        assert!(no_modprobe.missing()[0].contains("modprobe is not installed"));
        let sim = InitiatorFacts {
            unsupported: Some("simulated".into()),
            ..facts()
        };
        assert_eq!(sim.missing(), ["simulated"]);
    }

    #[test]
    fn the_kernel_host_nqn_is_the_hosts_own_when_valid() {
        assert_eq!(
            kernel_host_nqn(Some("nqn.2014-08.org.nvmexpress:uuid:abc\n"), "node-1"),
            "nqn.2014-08.org.nvmexpress:uuid:abc"
        );
        for bad in [None, Some(""), Some("not an nqn\n")] {
            assert_eq!(
                kernel_host_nqn(bad, "node-1"),
                "nqn.2026-11.io.v2engine:kernel-node-1"
            );
        }
    }

    #[test]
    fn attach_and_detach_plan_only_the_difference() {
        let c = connect();
        let steps = plan_attach(&facts(), &KernelNvme::default(), &c);
        assert_eq!(steps, [KernelAction::Connect(c.clone())]);
        assert_eq!(
            steps[0].to_string(),
            "nvme connect -t tcp -a 10.0.0.1 -s 4430 -n nqn.2026-11.io.v2engine:vol1 \
             --hostnqn nqn.2026-11.io.v2engine:kernel-node-1"
        );
        let loadable = InitiatorFacts {
            nvme_tcp: ModuleState::Loadable,
            ..facts()
        };
        assert_eq!(
            plan_attach(&loadable, &KernelNvme::default(), &c),
            [KernelAction::LoadModule, KernelAction::Connect(c.clone())]
        );
        assert!(plan_attach(&facts(), &connected(&["nvme3n1"]), &c).is_empty());
        assert!(plan_detach(&KernelNvme::default(), NQN).is_empty());
        assert_eq!(
            plan_detach(&connected(&[]), NQN)
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["nvme disconnect -n nqn.2026-11.io.v2engine:vol1"]
        );
    }

    #[test]
    fn waiting_for_the_device_follows_the_namespace_scan_and_is_bounded() {
        let mut reads = 0;
        let got = wait_for_device(
            || {
                reads += 1;
                Ok(if reads < 3 {
                    connected(&[])
                } else {
                    connected(&["nvme3n1"])
                })
            },
            NQN,
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!((got.as_str(), reads), ("/dev/nvme3n1", 3));
        let err =
            wait_for_device(|| Ok(connected(&[])), NQN, Duration::from_millis(60)).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(NQN) && text.contains("nvme3") && text.contains("no namespace"),
            "{text}"
        );
    }
}
