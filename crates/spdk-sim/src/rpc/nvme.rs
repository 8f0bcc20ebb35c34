//! `bdev_nvme_*`: attaching remote NVMe-oF namespaces as bdevs.

use super::params::{Decoder, decode};
use crate::fabric::host::{self, DEFAULT_CONNECT_TIMEOUT};
use crate::json::J;
use crate::rpc_error::{RpcError, errno};
use crate::shared::Shared;
use crate::state::Target;
use crate::state::nvme::{Ctrlr, CtrlrState, LossPolicy, Trid, host_nqn};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct SetOptions {
    action_on_timeout: Option<String>,
    timeout_us: Option<u64>,
    timeout_admin_us: Option<u64>,
    keep_alive_timeout_ms: Option<u32>,
    retry_count: Option<u32>,
    arbitration_burst: Option<u32>,
    low_priority_weight: Option<u32>,
    medium_priority_weight: Option<u32>,
    high_priority_weight: Option<u32>,
    nvme_adminq_poll_period_us: Option<u64>,
    nvme_ioq_poll_period_us: Option<u64>,
    io_queue_requests: Option<u32>,
    delay_cmd_submit: Option<bool>,
    transport_retry_count: Option<u32>,
    bdev_retry_count: Option<i32>,
    transport_ack_timeout: Option<u8>,
    ctrlr_loss_timeout_sec: Option<i32>,
    reconnect_delay_sec: Option<u32>,
    fast_io_fail_timeout_sec: Option<u32>,
    disable_auto_failback: Option<bool>,
    generate_uuids: Option<bool>,
    transport_tos: Option<u8>,
    nvme_error_stat: Option<bool>,
    rdma_srq_size: Option<u32>,
    io_path_stat: Option<bool>,
    allow_accel_sequence: Option<bool>,
    rdma_max_cq_size: Option<u32>,
    rdma_cm_event_timeout_ms: Option<u16>,
    dhchap_digests: Option<Vec<String>>,
    dhchap_dhgroups: Option<Vec<String>>,
}

/// `bdev_nvme_set_options`: only the path-loss options have an effect in the simulator.
///
/// # Errors
/// -1 "RPC not permitted with nvme controllers already attached" once a controller is
/// attached (as SPDK), -22 for inconsistent path-loss options.
pub fn set_options(t: &mut Target, params: Option<Value>) -> Result<J, RpcError> {
    let p: SetOptions = decode(params, Decoder::Bdev)?;
    if !t.ctrlrs.is_empty() {
        return Err(RpcError::new(
            -i64::from(errno::EPERM),
            "RPC not permitted with nvme controllers already attached",
        ));
    }
    let policy = LossPolicy {
        ctrlr_loss_timeout_sec: p
            .ctrlr_loss_timeout_sec
            .map_or(t.nvme_defaults.ctrlr_loss_timeout_sec, i64::from),
        reconnect_delay_sec: p
            .reconnect_delay_sec
            .map_or(t.nvme_defaults.reconnect_delay_sec, u64::from),
        fast_io_fail_timeout_sec: p
            .fast_io_fail_timeout_sec
            .map_or(t.nvme_defaults.fast_io_fail_timeout_sec, u64::from),
    };
    if !policy.is_valid() {
        return Err(RpcError::errno(errno::EINVAL));
    }
    t.nvme_defaults = policy;
    Ok(J::Bool(true))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Attach {
    name: String,
    trtype: String,
    traddr: String,
    adrfam: Option<String>,
    trsvcid: Option<String>,
    priority: Option<String>,
    subnqn: Option<String>,
    hostnqn: Option<String>,
    hostaddr: Option<String>,
    hostsvcid: Option<String>,
    prchk_reftag: Option<bool>,
    prchk_guard: Option<bool>,
    hdgst: Option<bool>,
    ddgst: Option<bool>,
    fabrics_connect_timeout_us: Option<u64>,
    multipath: Option<String>,
    num_io_queues: Option<u32>,
    ctrlr_loss_timeout_sec: Option<i32>,
    reconnect_delay_sec: Option<u32>,
    fast_io_fail_timeout_sec: Option<u32>,
    psk: Option<String>,
    max_bdevs: Option<u32>,
    dhchap_key: Option<String>,
    dhchap_ctrlr_key: Option<String>,
    allow_unrecognized_csi: Option<bool>,
}

fn name_conflict(t: &Target, name: &str, trid: &Trid) -> Result<(), RpcError> {
    match t.ctrlr(name) {
        None => Ok(()),
        Some(c)
            if c.trid.traddr == trid.traddr
                && c.trid.trsvcid == trid.trsvcid
                && c.trid.subnqn == trid.subnqn =>
        {
            Err(RpcError::new(
                -i64::from(errno::EALREADY),
                format!("A controller named {name} already exists with the specified network path"),
            ))
        }
        Some(_) => Err(RpcError::new(
            -i64::from(errno::EALREADY),
            format!("A controller named {name} already exists and multipath is disabled"),
        )),
    }
}

/// `bdev_nvme_attach_controller`: connects over TCP and creates `<name>n<nsid>` per namespace.
/// Unreachable address, missing subsystem or a host that is not allowed are all -19 "No such
/// device" (SPDK's probe fails the same way for each); same name and path again is -114.
///
/// # Errors
/// As described; -22 for inconsistent path-loss options or unsupported transports.
pub async fn attach(shared: &Arc<Shared>, params: Option<Value>) -> Result<J, RpcError> {
    let p: Attach = decode(params, Decoder::Bdev)?;
    match p.trtype.to_ascii_lowercase().as_str() {
        "tcp" => {}
        "rdma" | "pcie" | "fc" | "vfiouser" => return Err(RpcError::errno(errno::ENODEV)),
        _ => return Err(RpcError::errno(errno::EINVAL)),
    }
    let adrfam = match p.adrfam.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("ipv4") => "IPv4",
        Some("ipv6") => "IPv6",
        Some(_) => return Err(RpcError::errno(errno::EINVAL)),
    };
    let trid = Trid {
        adrfam: adrfam.to_owned(),
        traddr: p.traddr.clone(),
        trsvcid: p.trsvcid.clone().unwrap_or_default(),
        subnqn: p
            .subnqn
            .clone()
            .unwrap_or_else(|| crate::state::nvmf::DISCOVERY_NQN.to_owned()),
    };
    let (policy, host_id) = shared.read(|t| {
        let d = t.nvme_defaults;
        let policy = LossPolicy {
            ctrlr_loss_timeout_sec: p
                .ctrlr_loss_timeout_sec
                .map_or(d.ctrlr_loss_timeout_sec, i64::from),
            reconnect_delay_sec: p
                .reconnect_delay_sec
                .map_or(d.reconnect_delay_sec, u64::from),
            fast_io_fail_timeout_sec: p
                .fast_io_fail_timeout_sec
                .map_or(d.fast_io_fail_timeout_sec, u64::from),
        };
        name_conflict(t, &p.name, &trid).map(|()| (policy, t.host_id))
    })?;
    if !policy.is_valid() {
        return Err(RpcError::errno(errno::EINVAL));
    }
    let hostnqn = p.hostnqn.clone().unwrap_or_else(|| host_nqn(host_id));
    let hostid = hostnqn
        .rsplit_once("uuid:")
        .map_or_else(|| host_id.to_string(), |(_, u)| u.to_owned());
    let timeout = match p.fabrics_connect_timeout_us {
        Some(us) if us > 0 => Duration::from_micros(us),
        _ => DEFAULT_CONNECT_TIMEOUT,
    };
    let v26_05 = shared.read(|t| t.version.answers_as_v26_05());
    let conn = host::connect(&trid, &hostnqn, &hostid, timeout)
        .await
        .map_err(|e| {
            eprintln!("spdk-sim: bdev_nvme_attach_controller {}: {e}", p.name);
            // A refused connection or a timeout fails the probe (-19); a listener that answers
            // but rejects the CONNECT (unknown subsystem, host not allowed) fails the fabric
            // connect command, which SPDK reports as -5.
            // From v26.05 on, a refused TCP connection is -5 as well.
            match e {
                host::ConnectError::Rejected { .. } => RpcError::errno(errno::EIO),
                host::ConnectError::Tcp { .. } if v26_05 => RpcError::errno(errno::EIO),
                _ => RpcError::errno(errno::ENODEV),
            }
        })?;
    let monitor_shared = Arc::clone(shared);
    shared.with(|t| {
        name_conflict(t, &p.name, &trid)?;
        let id = t.next_id();
        let namespaces = conn.namespaces.clone();
        t.ctrlrs.push(Ctrlr {
            id,
            name: p.name.clone(),
            trid: trid.clone(),
            hostnqn: hostnqn.clone(),
            state: CtrlrState::Enabled,
            policy,
            remote: conn.remote.clone(),
            bdevs: Vec::new(),
            task: None,
        });
        t.apply_namespaces(id, &namespaces);
        let task = tokio::spawn(host::monitor(
            monitor_shared,
            id,
            conn,
            trid,
            hostnqn,
            hostid,
        ));
        let ctrlr = t
            .ctrlr_by_id(id)
            .ok_or_else(|| RpcError::errno(errno::ENODEV))?;
        ctrlr.task = Some(task.abort_handle());
        let names: Vec<J> = ctrlr
            .bdevs
            .iter()
            .map(|(_, b)| J::from(b.as_str()))
            .collect();
        Ok(J::Arr(names))
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Detach {
    name: String,
    trtype: Option<String>,
    traddr: Option<String>,
    adrfam: Option<String>,
    trsvcid: Option<String>,
    subnqn: Option<String>,
    hostaddr: Option<String>,
    hostsvcid: Option<String>,
}

/// `bdev_nvme_detach_controller {name}`: deletes its bdevs (a raid using one degrades).
///
/// # Errors
/// -19 for an unknown controller or a path filter that does not match.
pub fn detach(t: &mut Target, params: Option<Value>) -> Result<J, RpcError> {
    let p: Detach = decode(params, Decoder::Bdev)?;
    let ctrlr = t
        .ctrlr(&p.name)
        .ok_or_else(|| RpcError::errno(errno::ENODEV))?;
    let filter_ok = p.traddr.as_ref().is_none_or(|a| *a == ctrlr.trid.traddr)
        && p.trsvcid.as_ref().is_none_or(|s| *s == ctrlr.trid.trsvcid)
        && p.subnqn.as_ref().is_none_or(|n| *n == ctrlr.trid.subnqn);
    if !filter_ok {
        return Err(RpcError::errno(errno::ENODEV));
    }
    let id = ctrlr.id;
    t.delete_ctrlr(id);
    Ok(J::Bool(true))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GetControllers {
    name: Option<String>,
}

/// `bdev_nvme_get_controllers {name?}`.
///
/// # Errors
/// "Controller <name> does not exist" for an unknown name: code +22 on v24.09 (SPDK sent a
/// positive EINVAL), -22 from v26.05 on.
pub fn get_controllers(t: &mut Target, params: Option<Value>) -> Result<J, RpcError> {
    let p: GetControllers = decode(params, Decoder::Bdev)?;
    let code = if t.version.answers_as_v26_05() {
        -i64::from(errno::EINVAL)
    } else {
        i64::from(errno::EINVAL)
    };
    match p.name {
        None => Ok(J::Arr(t.ctrlrs.iter().map(Ctrlr::to_json).collect())),
        Some(n) => t
            .ctrlr(&n)
            .map(|c| J::Arr(vec![c.to_json()]))
            .ok_or_else(|| RpcError::new(code, format!("Controller {n} does not exist"))),
    }
}
