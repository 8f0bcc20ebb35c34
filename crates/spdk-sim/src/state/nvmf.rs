//! NVMe-oF target side: transports, subsystems, namespaces, allowed hosts, listeners and the
//! hosts currently connected.

use crate::fabric::proto::ToHost;
use crate::json::J;
use crate::rpc_error::RpcError;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::AbortHandle;
use uuid::Uuid;

/// The discovery subsystem every target has.
pub const DISCOVERY_NQN: &str = "nqn.2014-08.org.nvmexpress.discovery";
/// Longest NQN (bytes).
pub const MAX_NQN_LEN: usize = 223;
/// Default serial number.
pub const DEFAULT_SERIAL: &str = "00000000000000000000";
/// Default model number.
pub const DEFAULT_MODEL: &str = "SPDK bdev Controller";

/// Checks an NQN the way SPDK does: `nqn.yyyy-mm.reverse.domain:anything` or
/// `nqn.2014-08.org.nvmexpress:uuid:<uuid>`, at most 223 bytes.
#[must_use]
pub fn nqn_is_valid(nqn: &str) -> bool {
    if nqn.len() > MAX_NQN_LEN || !nqn.is_ascii() {
        return false;
    }
    if let Some(uuid) = nqn.strip_prefix("nqn.2014-08.org.nvmexpress:uuid:") {
        return Uuid::parse_str(uuid).is_ok() && uuid.len() == 36;
    }
    if nqn == DISCOVERY_NQN {
        return true;
    }
    let Some(rest) = nqn.strip_prefix("nqn.") else {
        return false;
    };
    let b = rest.as_bytes();
    if b.len() < 9
        || !b[..4].iter().all(u8::is_ascii_digit)
        || b[4] != b'-'
        || !b[5..7].iter().all(u8::is_ascii_digit)
        || b[7] != b'.'
    {
        return false;
    }
    let domain_and_user = &rest[8..];
    let domain = domain_and_user.split(':').next().unwrap_or("");
    !domain.is_empty()
        && domain.split('.').all(|label| {
            label
                .as_bytes()
                .first()
                .is_some_and(u8::is_ascii_alphabetic)
                && label
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-')
        })
}

/// The TCP transport and its effective options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transport {
    /// `TCP`.
    pub trtype: String,
    /// Effective options in SPDK's order.
    pub options: Vec<(String, TransportValue)>,
}

/// An option value of a transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportValue {
    /// Integer option.
    Num(u64),
    /// Boolean option.
    Flag(bool),
}

/// Defaults of the TCP transport in v24.09 (from `nvmf_get_transports`).
#[must_use]
pub fn tcp_defaults() -> Vec<(String, TransportValue)> {
    use TransportValue::{Flag, Num};
    [
        ("max_queue_depth", Num(128)),
        ("max_io_qpairs_per_ctrlr", Num(127)),
        ("in_capsule_data_size", Num(4096)),
        ("max_io_size", Num(131_072)),
        ("io_unit_size", Num(131_072)),
        ("max_aq_depth", Num(128)),
        ("num_shared_buffers", Num(511)),
        ("buf_cache_size", Num(4_294_967_295)),
        ("dif_insert_or_strip", Flag(false)),
        ("zcopy", Flag(false)),
        ("c2h_success", Flag(true)),
        ("sock_priority", Num(0)),
        ("abort_timeout_sec", Num(1)),
        ("ack_timeout", Num(0)),
        ("data_wr_pool_size", Num(0)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

impl Transport {
    /// The `nvmf_get_transports` entry.
    #[must_use]
    pub fn to_json(&self) -> J {
        let mut j = J::obj().with("trtype", self.trtype.as_str());
        for (k, v) in &self.options {
            j = match v {
                TransportValue::Num(n) => j.with(k, *n),
                TransportValue::Flag(b) => j.with(k, *b),
            };
        }
        j
    }
}

/// A listen address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListenAddr {
    /// `IPv4` / `IPv6`.
    pub adrfam: String,
    /// Address.
    pub traddr: String,
    /// Port.
    pub trsvcid: String,
}

impl ListenAddr {
    /// The JSON SPDK prints for a listener (transport type upper-case).
    #[must_use]
    pub fn to_json(&self) -> J {
        J::obj()
            .with("trtype", "TCP")
            .with("adrfam", self.adrfam.as_str())
            .with("traddr", self.traddr.as_str())
            .with("trsvcid", self.trsvcid.as_str())
    }
}

/// An open TCP listening socket, shared by the subsystems listening on it.
#[derive(Debug)]
pub struct Listener {
    /// Address.
    pub addr: ListenAddr,
    /// The accept task.
    pub task: AbortHandle,
}

/// A namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    /// Namespace id.
    pub nsid: u32,
    /// Registry name of the bdev.
    pub bdev: String,
    /// Namespace UUID.
    pub uuid: Uuid,
    /// Namespace NGUID: as given, else the bdev's UUID (not the namespace's: SPDK copies the
    /// bdev UUID when `nguid` is absent, even when an explicit `uuid` is given).
    pub nguid: Uuid,
}

/// A host connected to a subsystem.
#[derive(Debug)]
pub struct HostConn {
    /// Connection id (unique in this process).
    pub id: u64,
    /// Controller id.
    pub cntlid: u16,
    /// Host NQN.
    pub hostnqn: String,
    /// Host id.
    pub hostid: String,
    /// Listener it came in through.
    pub addr: ListenAddr,
    /// Messages to the connection task; dropping it closes the connection.
    pub tx: UnboundedSender<ToHost>,
}

/// An NVMe subsystem.
#[derive(Debug)]
pub struct Subsystem {
    /// NQN.
    pub nqn: String,
    /// Serial number.
    pub serial_number: String,
    /// Model number.
    pub model_number: String,
    /// Allow any host.
    pub allow_any_host: bool,
    /// Allowed hosts.
    pub hosts: Vec<String>,
    /// Max namespaces.
    pub max_namespaces: u32,
    /// Min controller id.
    pub min_cntlid: u16,
    /// Max controller id.
    pub max_cntlid: u16,
    /// ANA reporting.
    pub ana_reporting: bool,
    /// Namespaces.
    pub namespaces: Vec<Namespace>,
    /// Listen addresses.
    pub listeners: Vec<ListenAddr>,
    /// Connected hosts.
    pub conns: Vec<HostConn>,
    /// Next controller id.
    pub next_cntlid: u16,
}

impl Subsystem {
    /// Whether `hostnqn` may connect.
    #[must_use]
    pub fn host_allowed(&self, hostnqn: &str) -> bool {
        self.allow_any_host || self.hosts.iter().any(|h| h == hostnqn)
    }

    /// Allocates the next controller id in `[min_cntlid, max_cntlid]`.
    pub fn alloc_cntlid(&mut self) -> u16 {
        let id = self.next_cntlid.clamp(self.min_cntlid, self.max_cntlid);
        self.next_cntlid = if id >= self.max_cntlid {
            self.min_cntlid
        } else {
            id + 1
        };
        id
    }

    /// Lowest free namespace id, or `None` when full.
    #[must_use]
    pub fn free_nsid(&self) -> Option<u32> {
        (1..=self.max_namespaces).find(|n| self.namespaces.iter().all(|ns| ns.nsid != *n))
    }

    /// Drops the connections that match `pred` (their tasks close the sockets).
    pub fn disconnect_where(&mut self, pred: impl Fn(&HostConn) -> bool) {
        self.conns.retain(|c| !pred(c));
    }

    /// The `nvmf_get_subsystems` entry; `bdev_name` resolves registry names for namespaces.
    #[must_use]
    pub fn to_json(&self) -> J {
        let listen: Vec<J> = self.listeners.iter().map(ListenAddr::to_json).collect();
        let hosts: Vec<J> = self
            .hosts
            .iter()
            .map(|h| J::obj().with("nqn", h.as_str()))
            .collect();
        let ns: Vec<J> = self
            .namespaces
            .iter()
            .map(|n| {
                let mut j = J::obj()
                    .with("nsid", n.nsid)
                    .with("bdev_name", n.bdev.as_str())
                    .with("name", n.bdev.as_str())
                    .with("nguid", n.nguid.simple().to_string().to_uppercase())
                    .with("uuid", n.uuid.to_string());
                if self.ana_reporting {
                    j = j.with("anagrpid", n.nsid);
                }
                j
            })
            .collect();
        J::obj()
            .with("nqn", self.nqn.as_str())
            .with("subtype", "NVMe")
            .with("listen_addresses", listen)
            .with("allow_any_host", self.allow_any_host)
            .with("hosts", hosts)
            .with("serial_number", self.serial_number.as_str())
            .with("model_number", self.model_number.as_str())
            .with("max_namespaces", self.max_namespaces)
            .with("min_cntlid", u32::from(self.min_cntlid))
            .with("max_cntlid", u32::from(self.max_cntlid))
            .with("namespaces", ns)
    }
}

/// The discovery subsystem's entry.
#[must_use]
pub fn discovery_json() -> J {
    J::obj()
        .with("nqn", DISCOVERY_NQN)
        .with("subtype", "Discovery")
        .with("listen_addresses", Vec::<J>::new())
        .with("allow_any_host", true)
        .with("hosts", Vec::<J>::new())
}

/// Checks a serial number (at most 20 printable ASCII characters).
///
/// # Errors
/// -32602 "Invalid SN <sn>".
pub fn check_serial(sn: &str) -> Result<(), RpcError> {
    if sn.len() > 20 || !sn.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(RpcError::new(
            crate::rpc_error::INVALID_PARAMS,
            format!("Invalid SN {sn}"),
        ));
    }
    Ok(())
}

/// Checks a model number (at most 40 printable ASCII characters).
///
/// # Errors
/// -32602 "Invalid MN <mn>".
pub fn check_model(mn: &str) -> Result<(), RpcError> {
    if mn.len() > 40 || !mn.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(RpcError::new(
            crate::rpc_error::INVALID_PARAMS,
            format!("Invalid MN {mn}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nqn_validation() {
        assert!(nqn_is_valid("nqn.2016-06.io.spdk:spdklab-a1"));
        assert!(nqn_is_valid("nqn.2026-11.io.v2engine:vol1-r-0a1b2c3d"));
        assert!(nqn_is_valid(
            "nqn.2014-08.org.nvmexpress:uuid:5c2050e4-41bf-4a36-bf69-41760ea2e370"
        ));
        assert!(!nqn_is_valid("not-an-nqn"));
        assert!(!nqn_is_valid("nqn.2016-6.io.spdk:x"));
        assert!(!nqn_is_valid("nqn.2016-06.9io.spdk:x"));
        assert!(!nqn_is_valid("nqn.2014-08.org.nvmexpress:uuid:nope"));
        assert!(!nqn_is_valid(&format!(
            "nqn.2016-06.io.spdk:{}",
            "x".repeat(220)
        )));
    }

    #[test]
    fn cntlids_cycle_within_bounds() {
        let mut s = Subsystem {
            nqn: "n".into(),
            serial_number: DEFAULT_SERIAL.into(),
            model_number: DEFAULT_MODEL.into(),
            allow_any_host: false,
            hosts: vec!["h1".into()],
            max_namespaces: 2,
            min_cntlid: 1,
            max_cntlid: 2,
            ana_reporting: false,
            namespaces: vec![Namespace {
                nsid: 1,
                bdev: "b".into(),
                uuid: Uuid::nil(),
                nguid: Uuid::nil(),
            }],
            listeners: vec![],
            conns: vec![],
            next_cntlid: 1,
        };
        assert_eq!(
            (s.alloc_cntlid(), s.alloc_cntlid(), s.alloc_cntlid()),
            (1, 2, 1)
        );
        assert_eq!(s.free_nsid(), Some(2));
        assert!(s.host_allowed("h1") && !s.host_allowed("h2"));
        s.namespaces.push(Namespace {
            nsid: 2,
            bdev: "c".into(),
            uuid: Uuid::nil(),
            nguid: Uuid::nil(),
        });
        assert_eq!(s.free_nsid(), None);
    }

    #[test]
    fn serial_and_model_limits() {
        assert!(check_serial("SPDKLAB00000001").is_ok());
        assert_eq!(
            check_serial(&"1".repeat(21)).unwrap_err().message,
            format!("Invalid SN {}", "1".repeat(21))
        );
        assert!(check_model(&"m".repeat(41)).is_err());
    }

    #[test]
    fn transport_json_matches_the_transcript() {
        let t = Transport {
            trtype: "TCP".into(),
            options: tcp_defaults(),
        };
        assert_eq!(
            t.to_json().to_compact(),
            r#"{"trtype":"TCP","max_queue_depth":128,"max_io_qpairs_per_ctrlr":127,"in_capsule_data_size":4096,"max_io_size":131072,"io_unit_size":131072,"max_aq_depth":128,"num_shared_buffers":511,"buf_cache_size":4294967295,"dif_insert_or_strip":false,"zcopy":false,"c2h_success":true,"sock_priority":0,"abort_timeout_sec":1,"ack_timeout":0,"data_wr_pool_size":0}"#
        );
    }
}
