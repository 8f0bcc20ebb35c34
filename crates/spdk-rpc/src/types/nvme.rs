//! The NVMe bdev module as an NVMe-oF initiator (`bdev_nvme_*`).

use serde::{Deserialize, Serialize};

use crate::request::rpc_request;

/// `bdev_nvme_set_options`: module-wide options. spdk_tgt accepts it only before the first
/// controller is attached.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BdevNvmeSetOptions {
    /// What to do on an I/O timeout: `none`, `reset`, `abort`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_on_timeout: Option<String>,
    /// I/O timeout in microseconds (0 = none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_us: Option<u64>,
    /// Admin command timeout in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_admin_us: Option<u64>,
    /// Keep-alive timeout in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive_timeout_ms: Option<u32>,
    /// Transport-level retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport_retry_count: Option<u32>,
    /// Bdev-level retries of failed I/O (-1 = infinite).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bdev_retry_count: Option<i32>,
    /// Default for [`BdevNvmeAttachController::ctrlr_loss_timeout_sec`] (-1 = never give up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctrlr_loss_timeout_sec: Option<i32>,
    /// Default for [`BdevNvmeAttachController::reconnect_delay_sec`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconnect_delay_sec: Option<u32>,
    /// Default for [`BdevNvmeAttachController::fast_io_fail_timeout_sec`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fast_io_fail_timeout_sec: Option<u32>,
    /// Do not fail back to a preferred path automatically.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_auto_failback: Option<bool>,
    /// Generate namespace UUIDs from the serial number when the target has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate_uuids: Option<bool>,
}
rpc_request!(BdevNvmeSetOptions => "bdev_nvme_set_options", bool, write);

/// `bdev_nvme_attach_controller`: connects to a (remote) controller and answers the names of
/// the bdevs created for its namespaces, e.g. `["rAn1"]`. The same name and path again is
/// `-114` ([`crate::ErrorKind::AlreadyExists`]); nothing listening is `-19`.
///
/// Reconnect policy: while the path is down spdk_tgt retries every `reconnect_delay_sec`,
/// fails I/O after `fast_io_fail_timeout_sec` and deletes the controller and its bdevs after
/// `ctrlr_loss_timeout_sec` (-1 = never). SPDK requires
/// `fast_io_fail_timeout_sec <= ctrlr_loss_timeout_sec` and `reconnect_delay_sec <=` both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BdevNvmeAttachController {
    /// Controller name; bdevs are named `<name>n<nsid>`.
    pub name: String,
    /// Transport type, e.g. `tcp`.
    pub trtype: String,
    /// Target address.
    pub traddr: String,
    /// Address family, e.g. `ipv4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adrfam: Option<String>,
    /// Target port, e.g. `4420`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trsvcid: Option<String>,
    /// Subsystem NQN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnqn: Option<String>,
    /// Host NQN to present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostnqn: Option<String>,
    /// Local address to connect from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostaddr: Option<String>,
    /// Local port to connect from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostsvcid: Option<String>,
    /// `disable`, `failover` or `multipath`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multipath: Option<String>,
    /// Seconds before a lost controller is deleted (-1 = never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctrlr_loss_timeout_sec: Option<i32>,
    /// Seconds between reconnect attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconnect_delay_sec: Option<u32>,
    /// Seconds before I/O fails while reconnecting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fast_io_fail_timeout_sec: Option<u32>,
    /// Name of a keyring key holding the TLS PSK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psk: Option<String>,
}

impl BdevNvmeAttachController {
    /// An NVMe/TCP over IPv4 controller `name` for subsystem `subnqn` at `traddr:port`.
    pub fn tcp4(
        name: impl Into<String>,
        traddr: impl Into<String>,
        port: u16,
        subnqn: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            trtype: "tcp".into(),
            traddr: traddr.into(),
            adrfam: Some("ipv4".into()),
            trsvcid: Some(port.to_string()),
            subnqn: Some(subnqn.into()),
            ..Self::default()
        }
    }
}
rpc_request!(BdevNvmeAttachController => "bdev_nvme_attach_controller", Vec<String>, write);

/// `bdev_nvme_detach_controller`: removes a controller (or, with path fields, one path).
/// Missing is `-19`. Allowed while its bdev is a raid member (the raid degrades).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BdevNvmeDetachController {
    /// Controller name.
    pub name: String,
    /// Only the path of this transport type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trtype: Option<String>,
    /// Only the path to this address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traddr: Option<String>,
    /// Only the path of this address family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adrfam: Option<String>,
    /// Only the path to this port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trsvcid: Option<String>,
    /// Only the path to this subsystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnqn: Option<String>,
}

impl BdevNvmeDetachController {
    /// Detaches controller `name` (all paths).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }
}
rpc_request!(BdevNvmeDetachController => "bdev_nvme_detach_controller", bool, write);

/// `bdev_nvme_get_controllers`: all controllers or one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BdevNvmeGetControllers {
    /// Only this controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}
rpc_request!(BdevNvmeGetControllers => "bdev_nvme_get_controllers", Vec<NvmeController>, read);

/// A named NVMe controller with its paths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NvmeController {
    /// Controller name.
    pub name: String,
    /// One entry per path.
    #[serde(default)]
    pub ctrlrs: Vec<NvmeControllerPath>,
}

/// One path of an [`NvmeController`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NvmeControllerPath {
    /// `enabled`, `resetting`, `reconnect_is_delayed`, `failed`...
    pub state: String,
    /// Where it connects.
    pub trid: TransportId,
    /// Controller id on the target.
    #[serde(default)]
    pub cntlid: Option<u16>,
    /// The host side.
    #[serde(default)]
    pub host: Option<NvmeHostInfo>,
}

/// The host side of a controller path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NvmeHostInfo {
    /// Host NQN.
    pub nqn: String,
    /// Local address (may be empty).
    #[serde(default)]
    pub addr: String,
    /// Local port (may be empty).
    #[serde(default)]
    pub svcid: String,
}

/// A transport id as answered (`trtype` `TCP`, `adrfam` `IPv4`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransportId {
    /// Transport type.
    pub trtype: String,
    /// Address family.
    #[serde(default)]
    pub adrfam: Option<String>,
    /// Address.
    pub traddr: String,
    /// Port.
    #[serde(default)]
    pub trsvcid: Option<String>,
    /// Subsystem NQN.
    #[serde(default)]
    pub subnqn: Option<String>,
}
