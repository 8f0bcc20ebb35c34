//! NVMe-oF host side (`bdev_nvme_*`): options, controllers and their path-loss policy.

use crate::json::J;
use std::time::Duration;
use tokio::task::AbortHandle;
use uuid::Uuid;

/// Path-loss policy of a controller (`bdev_nvme_set_options` defaults, overridable per attach).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LossPolicy {
    /// -1: reconnect forever; 0: give up after the first failed reconnect; N: give up after N s.
    pub ctrlr_loss_timeout_sec: i64,
    /// Delay between reconnect attempts.
    pub reconnect_delay_sec: u64,
    /// When queued I/O fails (no effect in the simulator: it has no I/O).
    pub fast_io_fail_timeout_sec: u64,
}

impl LossPolicy {
    /// SPDK's consistency rules for the three options.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        let (loss, delay, fail) = (
            self.ctrlr_loss_timeout_sec,
            self.reconnect_delay_sec,
            self.fast_io_fail_timeout_sec,
        );
        match loss {
            l if l < -1 => false,
            -1 => delay != 0 && (fail == 0 || fail >= delay),
            0 => delay == 0 && fail == 0,
            l => {
                let l = l.unsigned_abs();
                delay != 0 && delay <= l && (fail == 0 || (fail >= delay && fail <= l))
            }
        }
    }

    /// Whether to give up after `elapsed` without a connection.
    #[must_use]
    pub fn expired(&self, elapsed: Duration) -> bool {
        match self.ctrlr_loss_timeout_sec {
            -1 => false,
            l => elapsed >= Duration::from_secs(l.unsigned_abs()),
        }
    }
}

/// Controller state as `bdev_nvme_get_controllers` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtrlrState {
    /// Connected.
    Enabled,
    /// Trying to reconnect.
    Resetting,
    /// Waiting for the next reconnect attempt.
    ReconnectIsDelayed,
}

impl CtrlrState {
    /// SPDK's name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "enabled",
            Self::Resetting => "resetting",
            Self::ReconnectIsDelayed => "reconnect_is_delayed",
        }
    }
}

/// Transport id of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trid {
    /// `IPv4` / `IPv6`.
    pub adrfam: String,
    /// Address.
    pub traddr: String,
    /// Port.
    pub trsvcid: String,
    /// Subsystem NQN.
    pub subnqn: String,
}

impl Trid {
    /// The `trid` object.
    #[must_use]
    pub fn to_json(&self) -> J {
        J::obj()
            .with("trtype", "TCP")
            .with("adrfam", self.adrfam.as_str())
            .with("traddr", self.traddr.as_str())
            .with("trsvcid", self.trsvcid.as_str())
            .with("subnqn", self.subnqn.as_str())
    }
}

/// What the remote subsystem told us about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteInfo {
    /// Controller id.
    pub cntlid: u16,
    /// Serial number.
    pub serial_number: String,
    /// Model number.
    pub model_number: String,
    /// Firmware revision.
    pub firmware_revision: String,
}

/// An attached controller.
#[derive(Debug)]
pub struct Ctrlr {
    /// Unique id (a re-attach under the same name is a different controller).
    pub id: u64,
    /// Name given at attach.
    pub name: String,
    /// Path.
    pub trid: Trid,
    /// Host NQN used.
    pub hostnqn: String,
    /// State.
    pub state: CtrlrState,
    /// Policy.
    pub policy: LossPolicy,
    /// Remote identity.
    pub remote: RemoteInfo,
    /// Namespace bdevs: (nsid, bdev name).
    pub bdevs: Vec<(u32, String)>,
    /// The connection/monitor task.
    pub task: Option<AbortHandle>,
}

impl Ctrlr {
    /// The `bdev_nvme_get_controllers` entry.
    #[must_use]
    pub fn to_json(&self) -> J {
        let host = J::obj()
            .with("nqn", self.hostnqn.as_str())
            .with("addr", "")
            .with("svcid", "");
        let ctrlr = J::obj()
            .with("state", self.state.as_str())
            .with("trid", self.trid.to_json())
            .with("cntlid", u32::from(self.remote.cntlid))
            .with("host", host);
        J::obj()
            .with("name", self.name.as_str())
            .with("ctrlrs", vec![ctrlr])
    }

    /// The `driver_specific` object of namespace `nsid`'s bdev.
    #[must_use]
    pub fn bdev_driver_specific(&self, nsid: u32) -> J {
        let ctrlr_data = J::obj()
            .with("cntlid", u32::from(self.remote.cntlid))
            .with("vendor_id", "0x8086")
            .with("model_number", self.remote.model_number.as_str())
            .with("serial_number", self.remote.serial_number.as_str())
            .with("firmware_revision", self.remote.firmware_revision.as_str())
            .with("subnqn", self.trid.subnqn.as_str())
            .with(
                "oacs",
                J::obj()
                    .with("security", 0u64)
                    .with("format", 0u64)
                    .with("firmware", 0u64)
                    .with("ns_manage", 0u64),
            )
            .with("multi_ctrlr", true)
            .with("ana_reporting", false);
        let path = J::obj()
            .with("trid", self.trid.to_json())
            .with("ctrlr_data", ctrlr_data)
            .with("vs", J::obj().with("nvme_version", "1.3"))
            .with("ns_data", J::obj().with("id", nsid).with("can_share", true));
        J::obj()
            .with("nvme", vec![path])
            .with("mp_policy", "active_passive")
    }
}

/// A host NQN of the form SPDK generates: `nqn.2014-08.org.nvmexpress:uuid:<uuid>`.
#[must_use]
pub fn host_nqn(id: Uuid) -> String {
    format!("nqn.2014-08.org.nvmexpress:uuid:{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(loss: i64, delay: u64, fail: u64) -> LossPolicy {
        LossPolicy {
            ctrlr_loss_timeout_sec: loss,
            reconnect_delay_sec: delay,
            fast_io_fail_timeout_sec: fail,
        }
    }

    #[test]
    fn resiliency_rules() {
        assert!(p(0, 0, 0).is_valid());
        assert!(p(8, 2, 4).is_valid());
        assert!(p(-1, 1, 0).is_valid());
        assert!(!p(0, 2, 0).is_valid());
        assert!(!p(8, 0, 0).is_valid());
        assert!(!p(8, 10, 0).is_valid());
        assert!(!p(8, 2, 9).is_valid());
        assert!(!p(-1, 0, 0).is_valid());
        assert!(!p(-2, 1, 0).is_valid());
    }

    #[test]
    fn expiry() {
        assert!(p(0, 0, 0).expired(Duration::ZERO));
        assert!(!p(8, 2, 4).expired(Duration::from_secs(7)));
        assert!(p(8, 2, 4).expired(Duration::from_secs(8)));
        assert!(!p(-1, 1, 0).expired(Duration::from_secs(1_000_000)));
    }
}
