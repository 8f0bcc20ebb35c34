//! The NVMe-oF target (`nvmf_*`).
//!
//! nvmf methods report many failures generically: an unknown bdev, a duplicate or non-local
//! listener and an unknown NQN on delete are all -32602 "Invalid parameters"
//! ([`crate::ErrorKind::InvalidParams`]); a duplicate or malformed NQN on create is -32603
//! `"Unable to create subsystem <nqn>"` ([`crate::ErrorKind::Other`]). Read the state back
//! (`nvmf_get_subsystems`) to tell them apart.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::request::rpc_request;

/// `nvmf_create_transport`. A second transport of the same type is -32603
/// "Transport type 'TCP' already exists" ([`crate::ErrorKind::AlreadyExists`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NvmfCreateTransport {
    /// Transport type, e.g. `TCP`.
    pub trtype: String,
    /// Queue depth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_queue_depth: Option<u32>,
    /// I/O queue pairs per controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_io_qpairs_per_ctrlr: Option<u32>,
    /// In-capsule data size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_capsule_data_size: Option<u32>,
    /// Largest I/O in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_io_size: Option<u32>,
    /// I/O unit size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_unit_size: Option<u32>,
    /// Shared buffers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_shared_buffers: Option<u32>,
    /// Per-poll-group buffer cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buf_cache_size: Option<u32>,
}

impl NvmfCreateTransport {
    /// The TCP transport with default options.
    pub fn tcp() -> Self {
        Self {
            trtype: "TCP".into(),
            ..Self::default()
        }
    }
}
rpc_request!(NvmfCreateTransport => "nvmf_create_transport", bool, write);

/// `nvmf_get_transports`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NvmfGetTransports {
    /// Only this type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trtype: Option<String>,
}
rpc_request!(NvmfGetTransports => "nvmf_get_transports", Vec<NvmfTransport>, read);

/// One transport with its effective options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NvmfTransport {
    /// Type, e.g. `TCP`.
    pub trtype: String,
    /// Queue depth.
    #[serde(default)]
    pub max_queue_depth: Option<u32>,
    /// Largest I/O in bytes.
    #[serde(default)]
    pub max_io_size: Option<u32>,
    /// The other options, as received.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `nvmf_create_subsystem`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NvmfCreateSubsystem {
    /// The subsystem NQN.
    pub nqn: String,
    /// Serial number shown to hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    /// Model number shown to hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_number: Option<String>,
    /// Let any host connect (otherwise only those added with `nvmf_subsystem_add_host`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_any_host: Option<bool>,
    /// Namespace limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_namespaces: Option<u32>,
    /// ANA reporting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ana_reporting: Option<bool>,
    /// Lowest controller id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_cntlid: Option<u16>,
    /// Highest controller id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cntlid: Option<u16>,
    /// NVM subsystem reset support. Only from SPDK v25.09; refused on older targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_nssr: Option<bool>,
}

impl NvmfCreateSubsystem {
    /// A subsystem `nqn` with default options.
    pub fn new(nqn: impl Into<String>) -> Self {
        Self {
            nqn: nqn.into(),
            ..Self::default()
        }
    }
}
rpc_request!(NvmfCreateSubsystem => "nvmf_create_subsystem", bool, write);

/// `nvmf_subsystem_add_ns`: answers the namespace id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NvmfSubsystemAddNs {
    /// The subsystem.
    pub nqn: String,
    /// The namespace.
    pub namespace: NvmfNamespaceParams,
}
rpc_request!(NvmfSubsystemAddNs => "nvmf_subsystem_add_ns", u32, write);

/// The `namespace` object of [`NvmfSubsystemAddNs`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NvmfNamespaceParams {
    /// The bdev to export.
    pub bdev_name: String,
    /// Namespace id; the lowest free one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nsid: Option<u32>,
    /// Namespace UUID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Namespace NGUID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nguid: Option<String>,
    /// Namespace EUI-64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eui64: Option<String>,
    /// ANA group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anagrpid: Option<u32>,
    /// Hide from hosts until made visible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_auto_visible: Option<bool>,
}

/// A listen address as sent in requests (`trtype` `tcp`, `adrfam` `ipv4`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenAddress {
    /// Transport type, e.g. `tcp`.
    pub trtype: String,
    /// Address family, e.g. `ipv4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adrfam: Option<String>,
    /// Address.
    pub traddr: String,
    /// Port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trsvcid: Option<String>,
}

impl ListenAddress {
    /// A TCP/IPv4 address.
    pub fn tcp4(traddr: impl Into<String>, port: u16) -> Self {
        Self {
            trtype: "tcp".into(),
            adrfam: Some("ipv4".into()),
            traddr: traddr.into(),
            trsvcid: Some(port.to_string()),
        }
    }
}

/// `nvmf_subsystem_add_listener`. A duplicate or non-local address is -32602.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NvmfSubsystemAddListener {
    /// The subsystem.
    pub nqn: String,
    /// Where to listen.
    pub listen_address: ListenAddress,
}
rpc_request!(NvmfSubsystemAddListener => "nvmf_subsystem_add_listener", bool, write);

/// `nvmf_subsystem_add_host`: lets one host NQN connect.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NvmfSubsystemAddHost {
    /// The subsystem.
    pub nqn: String,
    /// The host NQN.
    pub host: String,
    /// Name of a keyring key holding the TLS PSK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psk: Option<String>,
    /// Name of a keyring key for DH-HMAC-CHAP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dhchap_key: Option<String>,
    /// Name of a keyring key for bidirectional DH-HMAC-CHAP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dhchap_ctrlr_key: Option<String>,
}
rpc_request!(NvmfSubsystemAddHost => "nvmf_subsystem_add_host", bool, write);

/// `nvmf_delete_subsystem`. An unknown NQN is -32602 "Invalid parameters".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NvmfDeleteSubsystem {
    /// The subsystem.
    pub nqn: String,
}
rpc_request!(NvmfDeleteSubsystem => "nvmf_delete_subsystem", bool, write);

/// `nvmf_get_subsystems`: all (always including the discovery subsystem) or one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NvmfGetSubsystems {
    /// Only this NQN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nqn: Option<String>,
}
rpc_request!(NvmfGetSubsystems => "nvmf_get_subsystems", Vec<NvmfSubsystem>, read);

/// One subsystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NvmfSubsystem {
    /// NQN.
    pub nqn: String,
    /// `NVMe` or `Discovery`.
    #[serde(default)]
    pub subtype: String,
    /// Listeners.
    #[serde(default)]
    pub listen_addresses: Vec<ListenAddressInfo>,
    /// Any host may connect.
    #[serde(default)]
    pub allow_any_host: bool,
    /// Allowed hosts.
    #[serde(default)]
    pub hosts: Vec<NvmfHost>,
    /// Serial number (NVMe subsystems).
    #[serde(default)]
    pub serial_number: Option<String>,
    /// Model number (NVMe subsystems).
    #[serde(default)]
    pub model_number: Option<String>,
    /// Namespace limit.
    #[serde(default)]
    pub max_namespaces: Option<u32>,
    /// Lowest controller id.
    #[serde(default)]
    pub min_cntlid: Option<u16>,
    /// Highest controller id.
    #[serde(default)]
    pub max_cntlid: Option<u16>,
    /// Namespaces.
    #[serde(default)]
    pub namespaces: Vec<NvmfNamespace>,
}

/// A listen address as answered (`trtype` `TCP`, `adrfam` `IPv4`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenAddressInfo {
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
}

/// An allowed host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NvmfHost {
    /// Host NQN.
    pub nqn: String,
}

/// A namespace of a subsystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NvmfNamespace {
    /// Namespace id.
    pub nsid: u32,
    /// The exported bdev (its name, e.g. the lvol UUID).
    pub bdev_name: String,
    /// Namespace name.
    #[serde(default)]
    pub name: Option<String>,
    /// NGUID.
    #[serde(default)]
    pub nguid: Option<String>,
    /// UUID.
    #[serde(default)]
    pub uuid: Option<String>,
}
