//! `nvmf_*`: the NVMe-oF target. Most failures are -32602 "Invalid parameters", as in SPDK.

use super::params::{Decoder, decode, uuid_str};
use crate::fabric::target::start_listener;
use crate::json::J;
use crate::rpc_error::{INTERNAL_ERROR, INVALID_PARAMS, RpcError, errno};
use crate::shared::Shared;
use crate::state::Target;
use crate::state::bdev::Claimer;
use crate::state::nvmf::{
    self, DEFAULT_MODEL, DEFAULT_SERIAL, DISCOVERY_NQN, ListenAddr, Namespace, Subsystem,
    Transport, TransportValue,
};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use uuid::Uuid;

fn invalid() -> RpcError {
    RpcError::invalid_parameters()
}

/// Unlike most methods, SPDK decodes `nvmf_create_transport` relaxed (transport-specific options
/// such as `no_srq` or `disable_mappable_bar0` are ignored by TCP), so unknown keys are accepted;
/// known keys are still type-checked.
#[derive(Debug, Deserialize)]
#[allow(dead_code)] // some keys are accepted for compatibility and have no effect here
struct CreateTransport {
    trtype: String,
    tgt_name: Option<String>,
    max_queue_depth: Option<u64>,
    max_qpairs_per_ctrlr: Option<u64>,
    max_io_qpairs_per_ctrlr: Option<u64>,
    in_capsule_data_size: Option<u64>,
    max_io_size: Option<u64>,
    io_unit_size: Option<u64>,
    max_aq_depth: Option<u64>,
    num_shared_buffers: Option<u64>,
    buf_cache_size: Option<u64>,
    dif_insert_or_strip: Option<bool>,
    zcopy: Option<bool>,
    c2h_success: Option<bool>,
    sock_priority: Option<u64>,
    abort_timeout_sec: Option<u64>,
    ack_timeout: Option<u64>,
    data_wr_pool_size: Option<u64>,
    no_wr_batching: Option<bool>,
    control_msg_num: Option<u64>,
    disable_command_passthru: Option<bool>,
}

/// `nvmf_create_transport {trtype: "TCP", ...}`.
///
/// # Errors
/// -32603 "Transport type '<trtype>' already exists"; -32602 "Invalid transport type
/// '<trtype>'" for other transport types (SPDK's messages echo `trtype` as given).
pub fn create_transport(t: &mut Target, params: Option<Value>) -> Result<J, RpcError> {
    let p: CreateTransport = decode(params, Decoder::Nvmf)?;
    if !p.trtype.eq_ignore_ascii_case("tcp") {
        return Err(RpcError::new(
            INVALID_PARAMS,
            format!("Invalid transport type '{}'", p.trtype),
        ));
    }
    if !t.transports.is_empty() {
        return Err(RpcError::new(
            INTERNAL_ERROR,
            format!("Transport type '{}' already exists", p.trtype),
        ));
    }
    let mut options = nvmf::tcp_defaults();
    let overrides: [(&str, Option<TransportValue>); 15] = [
        (
            "max_queue_depth",
            p.max_queue_depth.map(TransportValue::Num),
        ),
        (
            "max_io_qpairs_per_ctrlr",
            p.max_io_qpairs_per_ctrlr.map(TransportValue::Num),
        ),
        (
            "in_capsule_data_size",
            p.in_capsule_data_size.map(TransportValue::Num),
        ),
        ("max_io_size", p.max_io_size.map(TransportValue::Num)),
        ("io_unit_size", p.io_unit_size.map(TransportValue::Num)),
        ("max_aq_depth", p.max_aq_depth.map(TransportValue::Num)),
        (
            "num_shared_buffers",
            p.num_shared_buffers.map(TransportValue::Num),
        ),
        ("buf_cache_size", p.buf_cache_size.map(TransportValue::Num)),
        (
            "dif_insert_or_strip",
            p.dif_insert_or_strip.map(TransportValue::Flag),
        ),
        ("zcopy", p.zcopy.map(TransportValue::Flag)),
        ("c2h_success", p.c2h_success.map(TransportValue::Flag)),
        ("sock_priority", p.sock_priority.map(TransportValue::Num)),
        (
            "abort_timeout_sec",
            p.abort_timeout_sec.map(TransportValue::Num),
        ),
        ("ack_timeout", p.ack_timeout.map(TransportValue::Num)),
        (
            "data_wr_pool_size",
            p.data_wr_pool_size.map(TransportValue::Num),
        ),
    ];
    for (key, value) in overrides {
        if let (Some(v), Some(slot)) = (value, options.iter_mut().find(|(k, _)| k == key)) {
            slot.1 = v;
        }
    }
    t.transports.push(Transport {
        trtype: "TCP".to_owned(),
        options,
    });
    Ok(J::Bool(true))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // some keys are accepted for compatibility and have no effect here
struct GetTransports {
    trtype: Option<String>,
    tgt_name: Option<String>,
}

/// `nvmf_get_transports {trtype?}`.
///
/// # Errors
/// -32602 when the requested transport does not exist.
pub fn get_transports(t: &mut Target, params: Option<Value>) -> Result<J, RpcError> {
    let p: GetTransports = decode(params, Decoder::Nvmf)?;
    let list: Vec<J> = t
        .transports
        .iter()
        .filter(|tr| {
            p.trtype
                .as_deref()
                .is_none_or(|w| tr.trtype.eq_ignore_ascii_case(w))
        })
        .map(Transport::to_json)
        .collect();
    if p.trtype.is_some() && list.is_empty() {
        // "transport '<trtype>' does not exist" is only logged.
        return Err(RpcError::errno(errno::ENODEV));
    }
    Ok(J::Arr(list))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // some keys are accepted for compatibility and have no effect here
struct CreateSubsystem {
    nqn: String,
    serial_number: Option<String>,
    model_number: Option<String>,
    allow_any_host: Option<bool>,
    max_namespaces: Option<u32>,
    ana_reporting: Option<bool>,
    min_cntlid: Option<u16>,
    max_cntlid: Option<u16>,
    max_discard_size_kib: Option<u64>,
    max_write_zeroes_size_kib: Option<u64>,
    tgt_name: Option<String>,
}

/// `nvmf_create_subsystem`: a malformed or taken NQN is -32603 "Unable to create subsystem <nqn>".
///
/// # Errors
/// As described; -32602 "Invalid SN/MN ..." for bad serial/model numbers.
pub fn create_subsystem(t: &mut Target, params: Option<Value>) -> Result<J, RpcError> {
    let p: CreateSubsystem = decode(params, Decoder::Nvmf)?;
    let serial = p.serial_number.unwrap_or_else(|| DEFAULT_SERIAL.to_owned());
    let model = p.model_number.unwrap_or_else(|| DEFAULT_MODEL.to_owned());
    nvmf::check_serial(&serial)?;
    nvmf::check_model(&model)?;
    let min_cntlid = p.min_cntlid.unwrap_or(1);
    let max_cntlid = p.max_cntlid.unwrap_or(0xFFEF);
    let unable = || {
        RpcError::new(
            INTERNAL_ERROR,
            format!("Unable to create subsystem {}", p.nqn),
        )
    };
    if !nvmf::nqn_is_valid(&p.nqn) || p.nqn == DISCOVERY_NQN || t.subsystem(&p.nqn).is_some() {
        return Err(unable());
    }
    if min_cntlid == 0 || min_cntlid > max_cntlid || max_cntlid > 0xFFEF {
        return Err(invalid());
    }
    t.subsystems.push(Subsystem {
        nqn: p.nqn,
        serial_number: serial,
        model_number: model,
        allow_any_host: p.allow_any_host.unwrap_or(false),
        hosts: Vec::new(),
        max_namespaces: match p.max_namespaces {
            None | Some(0) => 32,
            Some(n) => n,
        },
        min_cntlid,
        max_cntlid,
        ana_reporting: p.ana_reporting.unwrap_or(false),
        namespaces: Vec::new(),
        listeners: Vec::new(),
        conns: Vec::new(),
        next_cntlid: min_cntlid,
    });
    Ok(J::Bool(true))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // some keys are accepted for compatibility and have no effect here
struct NqnOnly {
    nqn: String,
    tgt_name: Option<String>,
}

/// `nvmf_delete_subsystem {nqn}`: closes its connections and releases its bdevs.
///
/// # Errors
/// -32602 "Invalid parameters" for an unknown NQN.
pub fn delete_subsystem(t: &mut Target, params: Option<Value>) -> Result<J, RpcError> {
    let p: NqnOnly = decode(params, Decoder::Nvmf)?;
    let idx = t
        .subsystems
        .iter()
        .position(|s| s.nqn == p.nqn)
        .ok_or_else(invalid)?;
    let sub = t.subsystems.remove(idx);
    for ns in &sub.namespaces {
        t.set_claim(&ns.bdev, None);
    }
    drop(sub);
    t.prune_listeners();
    Ok(J::Bool(true))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // some keys are accepted for compatibility and have no effect here
struct NsParams {
    bdev_name: String,
    nsid: Option<u32>,
    #[serde(default, deserialize_with = "uuid_str::deserialize")]
    uuid: Option<Uuid>,
    nguid: Option<String>,
    eui64: Option<String>,
    anagrpid: Option<u32>,
    no_auto_visible: Option<bool>,
    ptpl_file: Option<String>,
    /// Sent (as `false`) by the `spdk==25.5` Python client.
    hide_metadata: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // some keys are accepted for compatibility and have no effect here
struct AddNs {
    nqn: String,
    namespace: NsParams,
    tgt_name: Option<String>,
}

/// `nvmf_subsystem_add_ns`: returns the NSID; claims the bdev.
///
/// # Errors
/// -32602 "Invalid parameters" for an unknown subsystem (SPDK only logs "Unable to find
/// subsystem"), an unknown or claimed bdev, an unusable NSID or a malformed NGUID.
pub fn add_ns(t: &mut Target, params: Option<Value>) -> Result<J, RpcError> {
    let p: AddNs = decode(params, Decoder::Nvmf)?;
    let sub = t.subsystem(&p.nqn).ok_or_else(invalid)?;
    let nguid = match p.namespace.nguid.as_deref() {
        None => None,
        Some(hex) => Some(Uuid::try_parse(hex).map_err(|_| invalid())?),
    };
    let nsid = match p.namespace.nsid {
        None | Some(0) => sub.free_nsid().ok_or_else(invalid)?,
        Some(n) if n <= sub.max_namespaces && sub.namespaces.iter().all(|ns| ns.nsid != n) => n,
        Some(_) => return Err(invalid()),
    };
    let bdev = t.bdev(&p.namespace.bdev_name).ok_or_else(invalid)?;
    if bdev.claim.is_some() {
        return Err(invalid());
    }
    let (bdev_name, uuid) = (bdev.name.clone(), p.namespace.uuid.unwrap_or(bdev.uuid));
    let nguid = nguid.unwrap_or(bdev.uuid);
    t.set_claim(&bdev_name, Some(Claimer::Nvmf(p.nqn.clone())));
    if let Some(sub) = t.subsystem_mut(&p.nqn) {
        sub.namespaces.push(Namespace {
            nsid,
            bdev: bdev_name,
            uuid,
            nguid,
        });
        sub.namespaces.sort_by_key(|n| n.nsid);
    }
    t.notify_hosts(&p.nqn);
    Ok(J::from(nsid))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // some keys are accepted for compatibility and have no effect here
struct RemoveNs {
    nqn: String,
    nsid: u32,
    tgt_name: Option<String>,
}

/// `nvmf_subsystem_remove_ns {nqn, nsid}`.
///
/// # Errors
/// -32602 for an unknown subsystem or NSID.
pub fn remove_ns(t: &mut Target, params: Option<Value>) -> Result<J, RpcError> {
    let p: RemoveNs = decode(params, Decoder::Nvmf)?;
    let sub = t.subsystem_mut(&p.nqn).ok_or_else(invalid)?;
    let idx = sub
        .namespaces
        .iter()
        .position(|n| n.nsid == p.nsid)
        .ok_or_else(invalid)?;
    let ns = sub.namespaces.remove(idx);
    t.set_claim(&ns.bdev, None);
    t.notify_hosts(&p.nqn);
    Ok(J::Bool(true))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // some keys are accepted for compatibility and have no effect here
struct ListenParams {
    trtype: String,
    adrfam: Option<String>,
    traddr: String,
    trsvcid: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // some keys are accepted for compatibility and have no effect here
struct Listener {
    nqn: String,
    listen_address: ListenParams,
    tgt_name: Option<String>,
    secure_channel: Option<bool>,
    ana_state: Option<String>,
    sock_impl: Option<String>,
}

fn listen_addr(p: &ListenParams) -> Result<ListenAddr, RpcError> {
    if !p.trtype.eq_ignore_ascii_case("tcp") {
        return Err(invalid());
    }
    let adrfam = match p.adrfam.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("ipv4") => "IPv4",
        Some("ipv6") => "IPv6",
        Some(_) => return Err(invalid()),
    };
    let trsvcid = p.trsvcid.clone().ok_or_else(invalid)?;
    Ok(ListenAddr {
        adrfam: adrfam.to_owned(),
        traddr: p.traddr.clone(),
        trsvcid,
    })
}

/// `nvmf_subsystem_add_listener`: opens (or shares) a real TCP listening socket.
///
/// # Errors
/// -32602 "Invalid parameters" for an unknown subsystem, no TCP transport, a duplicate listener,
/// or an address that cannot be bound (not local, port taken).
pub fn add_listener(
    shared: &Arc<Shared>,
    t: &mut Target,
    params: Option<Value>,
) -> Result<J, RpcError> {
    let p: Listener = decode(params, Decoder::Nvmf)?;
    let addr = listen_addr(&p.listen_address)?;
    let sub = t.subsystem(&p.nqn).ok_or_else(invalid)?;
    if t.transports.is_empty() || sub.listeners.contains(&addr) {
        return Err(invalid());
    }
    if !t.listeners.iter().any(|l| l.addr == addr) {
        let listener = start_listener(shared, &addr).map_err(|e| {
            eprintln!("spdk-sim: nvmf_subsystem_add_listener for {}: {e}", p.nqn);
            invalid()
        })?;
        t.listeners.push(listener);
    }
    if let Some(sub) = t.subsystem_mut(&p.nqn) {
        sub.listeners.push(addr);
    }
    Ok(J::Bool(true))
}

/// `nvmf_subsystem_remove_listener`: hosts connected through it are disconnected.
///
/// # Errors
/// -32602 for an unknown subsystem or listener.
pub fn remove_listener(t: &mut Target, params: Option<Value>) -> Result<J, RpcError> {
    let p: Listener = decode(params, Decoder::Nvmf)?;
    let addr = listen_addr(&p.listen_address)?;
    let sub = t.subsystem_mut(&p.nqn).ok_or_else(invalid)?;
    let idx = sub
        .listeners
        .iter()
        .position(|l| *l == addr)
        .ok_or_else(invalid)?;
    sub.listeners.remove(idx);
    sub.disconnect_where(|c| c.addr == addr);
    t.prune_listeners();
    Ok(J::Bool(true))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // some keys are accepted for compatibility and have no effect here
struct Host {
    nqn: String,
    host: String,
    tgt_name: Option<String>,
    psk: Option<String>,
    dhchap_key: Option<String>,
    dhchap_ctrlr_key: Option<String>,
}

/// `nvmf_subsystem_add_host {nqn, host}`.
///
/// # Errors
/// -32602 for an unknown subsystem; -32603 "Internal error" for a host already allowed.
pub fn add_host(t: &mut Target, params: Option<Value>) -> Result<J, RpcError> {
    let p: Host = decode(params, Decoder::Nvmf)?;
    let sub = t.subsystem_mut(&p.nqn).ok_or_else(invalid)?;
    if sub.hosts.contains(&p.host) {
        // spdk_nvmf_subsystem_add_host_ext: -EINVAL "is already allowed", answered as this.
        return Err(RpcError::new(INTERNAL_ERROR, "Internal error"));
    }
    sub.hosts.push(p.host);
    Ok(J::Bool(true))
}

/// `nvmf_subsystem_remove_host {nqn, host}`: the host's connections are closed.
///
/// # Errors
/// -32602 for an unknown subsystem.
pub fn remove_host(t: &mut Target, params: Option<Value>) -> Result<J, RpcError> {
    let p: Host = decode(params, Decoder::Nvmf)?;
    let sub = t.subsystem_mut(&p.nqn).ok_or_else(invalid)?;
    sub.hosts.retain(|h| *h != p.host);
    if !sub.allow_any_host {
        sub.disconnect_where(|c| c.hostnqn == p.host);
    }
    Ok(J::Bool(true))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // some keys are accepted for compatibility and have no effect here
struct AllowAny {
    nqn: String,
    allow_any_host: bool,
    tgt_name: Option<String>,
}

/// `nvmf_subsystem_allow_any_host {nqn, allow_any_host}`.
///
/// # Errors
/// -32602 for an unknown subsystem.
pub fn allow_any_host(t: &mut Target, params: Option<Value>) -> Result<J, RpcError> {
    let p: AllowAny = decode(params, Decoder::Nvmf)?;
    t.subsystem_mut(&p.nqn).ok_or_else(invalid)?.allow_any_host = p.allow_any_host;
    Ok(J::Bool(true))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // some keys are accepted for compatibility and have no effect here
struct GetSubsystems {
    nqn: Option<String>,
    tgt_name: Option<String>,
}

/// `nvmf_get_subsystems {nqn?}`: the discovery subsystem first, then the others.
///
/// # Errors
/// -19 "No such device" for an unknown NQN.
pub fn get_subsystems(t: &mut Target, params: Option<Value>) -> Result<J, RpcError> {
    let p: GetSubsystems = decode(params, Decoder::Nvmf)?;
    match p.nqn.as_deref() {
        None => {
            let mut list = vec![nvmf::discovery_json()];
            list.extend(t.subsystems.iter().map(Subsystem::to_json));
            Ok(J::Arr(list))
        }
        Some(DISCOVERY_NQN) => Ok(J::Arr(vec![nvmf::discovery_json()])),
        Some(nqn) => t
            .subsystem(nqn)
            .map(|s| J::Arr(vec![s.to_json()]))
            .ok_or_else(|| RpcError::errno(errno::ENODEV)),
    }
}

/// `nvmf_subsystem_get_controllers {nqn}`: the connected hosts.
///
/// # Errors
/// -32602 for an unknown subsystem.
pub fn get_controllers(t: &mut Target, params: Option<Value>) -> Result<J, RpcError> {
    let p: NqnOnly = decode(params, Decoder::Nvmf)?;
    let sub = t.subsystem(&p.nqn).ok_or_else(invalid)?;
    let list = sub
        .conns
        .iter()
        .map(|c| {
            J::obj()
                .with("cntlid", u32::from(c.cntlid))
                .with("hostnqn", c.hostnqn.as_str())
                .with("hostid", c.hostid.as_str())
                .with("num_io_qpairs", 1u64)
        })
        .collect();
    Ok(J::Arr(list))
}
