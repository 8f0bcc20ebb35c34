//! The engine side (async, over [`SpdkApi`]): reading what is there into [`Observed`],
//! and carrying out a plan's [`Action`]s in order.
//!
//! A call answered "not found" for something being removed, or "already exists" for the
//! TCP transport, counts as done: the engine is then as the plan wants it.
//!
//! [`Action::AwaitSize`] polls `bdev_get_bdevs` (and `bdev_raid_get_bdevs` for the members'
//! data offsets) with a growing pause, 10 ms to 200 ms, until the sizes are there or its
//! bound is reached: SPDK's JSON-RPC has no event for a size change to wait on.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use spdk_rpc::SpdkApi;
use spdk_rpc::types::bdev::{Bdev as SpdkBdev, BdevGetBdevs};
use spdk_rpc::types::lvol::{
    BdevLvolCreate, BdevLvolDelete, BdevLvolGetLvols, BdevLvolGetLvstores, BdevLvolResize, LvsRef,
};
use spdk_rpc::types::nvme::{
    BdevNvmeAttachController, BdevNvmeDetachController, BdevNvmeGetControllers,
};
use spdk_rpc::types::nvmf::{
    ListenAddress, NvmfCreateSubsystem, NvmfCreateTransport, NvmfDeleteSubsystem,
    NvmfGetSubsystems, NvmfGetTransports, NvmfNamespaceParams, NvmfSubsystemAddHost,
    NvmfSubsystemAddListener, NvmfSubsystemAddNs,
};
use spdk_rpc::types::raid::{
    BdevRaidAddBaseBdev, BdevRaidCreate, BdevRaidDelete, BdevRaidGetBdevs, BdevRaidRemoveBaseBdev,
    RaidBdev,
};

use super::names;
use super::observed::{
    Bdev, Controller, ControllerPath, Listener, Lvol, Lvstore, Observed, Raid, RaidSlot, Subsystem,
};
use super::plan::{Action, show_size};

const NIL_UUID: &str = "00000000-0000-0000-0000-000000000000";

/// Why an action failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyFailure {
    /// SPDK refused or did not answer a call.
    #[error(transparent)]
    Rpc(#[from] spdk_rpc::Error),
    /// A grown volume did not reach its size on this node in time.
    #[error(
        "volume {volume}: {bdev} is {} after {waited:?}, {} wanted{}{}",
        show_size(*have),
        show_size(*want),
        lagging_text(lagging),
        hint(lagging, *missing)
    )]
    SizeNotReached {
        /// The volume.
        volume: String,
        /// The bdev the frontend exports (raid, or the only member); `missing` when it is
        /// not there.
        bdev: String,
        /// Its size at the end (0 when missing).
        have: u64,
        /// The size wanted.
        want: u64,
        /// Members still smaller than wanted, with what they give the raid.
        lagging: Vec<(String, u64)>,
        /// The exported bdev does not exist.
        missing: bool,
        /// How long it waited.
        waited: Duration,
    },
}

fn lagging_text(lagging: &[(String, u64)]) -> String {
    if lagging.is_empty() {
        return String::new();
    }
    let each: Vec<String> = lagging
        .iter()
        .map(|(m, b)| format!("{m} has {}", show_size(*b)))
        .collect();
    format!("; members still smaller: {}", each.join(", "))
}

fn hint(lagging: &[(String, u64)], missing: bool) -> &'static str {
    if missing {
        " (the bdev does not exist)"
    } else if lagging.is_empty() {
        " (every member has the size but the raid did not grow: this SPDK's raid1 does not follow its members' size)"
    } else {
        " (a remote member's new size arrives with the target's namespace-changed event: is its replica grown and its controller connected?)"
    }
}

/// A call of a plan failed.
#[derive(Debug, thiserror::Error)]
#[error("{action}: {source}")]
pub struct ApplyError {
    /// The action that failed, as text.
    pub action: String,
    /// What was done before it.
    pub done: Vec<String>,
    /// The cause.
    pub source: ApplyFailure,
}

/// Reads the engine: bdevs, lvstores, lvols, subsystems, controllers, raids, transports.
pub async fn observe(api: &dyn SpdkApi) -> Result<Observed, spdk_rpc::Error> {
    let bdevs = api.bdev_get_bdevs(BdevGetBdevs::all()).await?;
    let lvstores = api
        .bdev_lvol_get_lvstores(BdevLvolGetLvstores::default())
        .await?;
    let lvols = api.bdev_lvol_get_lvols(BdevLvolGetLvols::default()).await?;
    let subsystems = api
        .nvmf_get_subsystems(NvmfGetSubsystems::default())
        .await?;
    let controllers = api
        .bdev_nvme_get_controllers(BdevNvmeGetControllers::default())
        .await?;
    let raids = api.bdev_raid_get_bdevs(BdevRaidGetBdevs::default()).await?;
    let transports = api
        .nvmf_get_transports(NvmfGetTransports::default())
        .await?;
    let size_of = |uuid: &str| {
        bdevs
            .iter()
            .find(|b| b.name == uuid || b.uuid.as_deref() == Some(uuid))
            .map_or(0, |b| b.size_bytes() >> 20)
    };
    let raids = raids_from(raids, &bdevs);
    Ok(Observed {
        lvols: lvols
            .iter()
            .map(|l| Lvol {
                name: l.name.clone(),
                lvs: l.lvs.name.clone(),
                uuid: l.uuid.clone(),
                thin: l.is_thin_provisioned,
                size_mib: size_of(&l.uuid),
            })
            .collect(),
        bdevs: bdevs_from(bdevs),
        lvstores: lvstores
            .into_iter()
            .map(|l| Lvstore {
                free_bytes: l.free_bytes(),
                name: l.name,
                uuid: l.uuid,
                cluster_size: l.cluster_size,
            })
            .collect(),
        subsystems: subsystems
            .into_iter()
            .map(|s| Subsystem {
                nqn: s.nqn,
                allow_any_host: s.allow_any_host,
                hosts: s.hosts.into_iter().map(|h| h.nqn).collect(),
                listeners: s
                    .listen_addresses
                    .into_iter()
                    .map(|l| Listener {
                        address: if l.trtype.eq_ignore_ascii_case("tcp") {
                            l.traddr
                        } else {
                            String::new()
                        },
                        port: l.trsvcid.unwrap_or_default(),
                    })
                    .collect(),
                namespaces: s.namespaces.into_iter().map(|n| n.bdev_name).collect(),
            })
            .collect(),
        controllers: controllers
            .into_iter()
            .filter(|c| !being_deleted(c))
            .map(|c| Controller {
                name: c.name,
                paths: c
                    .ctrlrs
                    .into_iter()
                    .map(|p| ControllerPath {
                        state: p.state,
                        address: p.trid.traddr,
                        port: p.trid.trsvcid.unwrap_or_default(),
                        subnqn: p.trid.subnqn.unwrap_or_default(),
                        hostnqn: p.host.map(|h| h.nqn).unwrap_or_default(),
                    })
                    .collect(),
            })
            .collect(),
        raids,
        tcp_transport: transports
            .iter()
            .any(|t| t.trtype.eq_ignore_ascii_case("tcp")),
    })
}

/// How long an I/O or admin command to a replica may stay unanswered before the attach
/// node resets that controller (µs).
pub const NVME_IO_TIMEOUT_US: u64 = 10_000_000;

/// The engine's NVMe initiator times out commands a replica does not answer and resets the
/// controller (`bdev_nvme_set_options`: `timeout_us`, `timeout_admin_us`,
/// `action_on_timeout: reset`). SPDK's default is no timeout: a replica node cut off the
/// network (its link down, no RST ever comes) left every write of the volume waiting on
/// TCP retransmission, and the raid1 never degraded (found on the real v26.05 lane). With
/// the timeout, the reset's reconnects fail, `fast_io_fail_timeout_sec` fails the queued
/// I/O, and the raid1 goes on with the other members.
///
/// The planner asks for it before the engine's first controller; SPDK refuses the options
/// once a controller exists ("RPC not permitted with nvme controllers already attached",
/// -1), e.g. one it is still deleting, which the planner does not count: the options were
/// set when that controller was attached.
async fn nvme_io_timeouts(api: &dyn SpdkApi) -> Result<(), spdk_rpc::Error> {
    let req = spdk_rpc::types::nvme::BdevNvmeSetOptions {
        action_on_timeout: Some("reset".into()),
        timeout_us: Some(NVME_IO_TIMEOUT_US),
        timeout_admin_us: Some(NVME_IO_TIMEOUT_US),
        ..Default::default()
    };
    match api.bdev_nvme_set_options(req).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == Some(spdk_rpc::ErrorKind::PermissionDenied) => Ok(()),
        Err(e) => Err(e),
    }
}

/// SPDK's state of a controller path it is deleting.
const DELETING: &str = "deleting";

/// True when SPDK is deleting every path of `c`: the controller is on its way out and the
/// planner treats it as gone (no detach planned again, its name not reused meanwhile since
/// replicas are renamed when replaced).
fn being_deleted(c: &spdk_rpc::types::nvme::NvmeController) -> bool {
    !c.ctrlrs.is_empty() && c.ctrlrs.iter().all(|p| p.state == DELETING)
}

/// `bdev_nvme_detach_controller name`, tolerating a controller already gone, and SPDK
/// v24.09's answer for a controller whose remote host does not answer: it starts the
/// deletion, waits 10 s for the path to disappear, and answers -110 "Connection timed out"
/// while the path stays `deleting` until its pending reconnect attempt ends (when the host
/// answers again: seen in the lab after `cut`, the deletion finished 8 s after `restore`).
/// The raid no longer uses it, so the deletion is left to SPDK; a controller in any other
/// state is still an error.
async fn detach_controller(api: &dyn SpdkApi, name: &str) -> Result<(), spdk_rpc::Error> {
    match api
        .bdev_nvme_detach_controller(BdevNvmeDetachController::new(name))
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) if e.kind() == Some(spdk_rpc::ErrorKind::Timeout) => {
            let left = api
                .bdev_nvme_get_controllers(BdevNvmeGetControllers::default())
                .await?;
            match left.iter().find(|c| c.name == name) {
                None => Ok(()),
                Some(c) if being_deleted(c) => {
                    tracing::warn!(
                        controller = name,
                        "SPDK is still deleting the controller (its host does not answer); the deletion completes when the pending reconnect attempt ends"
                    );
                    Ok(())
                }
                Some(_) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// The raids as the planner sees them; `bdevs` give each raid's size and block size (the
/// unit of the members' data offsets).
fn raids_from(raids: Vec<RaidBdev>, bdevs: &[SpdkBdev]) -> Vec<Raid> {
    raids
        .into_iter()
        .map(|r| {
            let own = bdevs.iter().find(|b| b.name == r.name);
            let block_size = own
                .map(|b| b.block_size)
                .or_else(|| {
                    r.base_bdevs_list.iter().find_map(|s| {
                        let n = s.name.as_deref()?;
                        bdevs
                            .iter()
                            .find(|b| b.name == n || b.aliases.iter().any(|a| a == n))
                            .map(|b| b.block_size)
                    })
                })
                .unwrap_or(512);
            Raid {
                state: r.state.as_str().to_string(),
                level: r.raid_level.as_str().to_string(),
                operational: r.num_base_bdevs_operational,
                slots: r
                    .base_bdevs_list
                    .into_iter()
                    .map(|s| RaidSlot {
                        name: s.name.filter(|n| !n.is_empty()),
                        uuid: s.uuid.filter(|u| u != NIL_UUID && !u.is_empty()),
                        configured: s.is_configured,
                        data_offset_bytes: s.data_offset.saturating_mul(u64::from(block_size)),
                    })
                    .collect(),
                rebuild: r.process.map(|p| (p.target, p.progress.percent)),
                size_bytes: own.map_or(0, SpdkBdev::size_bytes),
                name: r.name,
            }
        })
        .collect()
}

fn bdevs_from(bdevs: Vec<SpdkBdev>) -> Vec<Bdev> {
    bdevs
        .into_iter()
        .map(|b| Bdev {
            size_bytes: b.size_bytes(),
            name: b.name,
            aliases: b.aliases,
            uuid: b.uuid,
        })
        .collect()
}

fn listen_address(address: &str, port: u16) -> ListenAddress {
    let v6 = address.parse::<IpAddr>().is_ok_and(|a| a.is_ipv6());
    ListenAddress {
        trtype: "tcp".into(),
        adrfam: Some(if v6 { "ipv6" } else { "ipv4" }.into()),
        traddr: address.to_string(),
        trsvcid: Some(port.to_string()),
    }
}

/// Sizes as they are now: the exported bdev's (`None` when missing) and the members that
/// give the raid less than `want`.
async fn sizes_now(
    api: &dyn SpdkApi,
    bdev: &str,
    members: &[String],
    want: u64,
) -> Result<(Option<u64>, Vec<(String, u64)>), spdk_rpc::Error> {
    let raw = api.bdev_get_bdevs(BdevGetBdevs::all()).await?;
    let raid = if members.is_empty() {
        None
    } else {
        // The members' data offsets come from the raid.
        let raids = api.bdev_raid_get_bdevs(BdevRaidGetBdevs::default()).await?;
        raids_from(raids, &raw).into_iter().find(|r| r.name == bdev)
    };
    let obs = Observed {
        bdevs: bdevs_from(raw),
        ..Observed::default()
    };
    let have = obs.bdev(bdev).map(|b| b.size_bytes);
    let lagging = members
        .iter()
        .filter_map(|m| {
            obs.member_capacity(raid.as_ref(), m)
                .filter(|c| *c < want)
                .map(|c| (m.clone(), c))
        })
        .collect();
    Ok((have, lagging))
}

/// Waits until `bdev` has at least `want` bytes and every present member gives it at least
/// that much, polling with a growing pause; at most `timeout`.
async fn await_size(
    api: &dyn SpdkApi,
    volume: &str,
    bdev: &str,
    members: &[String],
    want: u64,
    timeout: Duration,
) -> Result<(), ApplyFailure> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(10);
    loop {
        let (have, lagging) = sizes_now(api, bdev, members, want).await?;
        if have.is_some_and(|h| h >= want) && lagging.is_empty() {
            tracing::info!(volume, bdev, bytes = want, waited = ?start.elapsed(), "volume size reached");
            return Ok(());
        }
        let waited = start.elapsed();
        if waited >= timeout {
            return Err(ApplyFailure::SizeNotReached {
                volume: volume.to_string(),
                bdev: bdev.to_string(),
                have: have.unwrap_or(0),
                want,
                lagging,
                missing: have.is_none(),
                waited,
            });
        }
        tokio::time::sleep(pause.min(timeout - waited)).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// Carries out one action; "not found" on removal and an existing transport are success.
async fn run(api: &dyn SpdkApi, a: &Action) -> Result<(), ApplyFailure> {
    if let Action::AwaitSize {
        volume,
        bdev,
        members,
        bytes,
        timeout,
    } = a
    {
        return await_size(api, volume, bdev, members, *bytes, *timeout).await;
    }
    Ok(call(api, a).await?)
}

/// Makes the SPDK call of `a` (any action but [`Action::AwaitSize`]).
async fn call(api: &dyn SpdkApi, a: &Action) -> Result<(), spdk_rpc::Error> {
    let gone_ok = |r: Result<(), spdk_rpc::Error>| match r {
        Err(e) if e.is_not_found() => Ok(()),
        other => other,
    };
    match a {
        Action::CreateLvol {
            lvs,
            name,
            size_mib,
            thin,
        } => {
            let mut req = BdevLvolCreate::new(LvsRef::Name(lvs.clone()), name, *size_mib);
            if *thin {
                req = req.thin();
            }
            api.bdev_lvol_create(req).await.map(|_| ())
        }
        Action::ResizeLvol { alias, size_mib } => {
            api.bdev_lvol_resize(BdevLvolResize {
                name: alias.clone(),
                size_in_mib: *size_mib,
            })
            .await
        }
        Action::DeleteLvol { alias } => gone_ok(
            api.bdev_lvol_delete(BdevLvolDelete {
                name: alias.clone(),
            })
            .await,
        ),
        Action::SetInitiatorTimeouts => nvme_io_timeouts(api).await,
        Action::CreateTransport => {
            match api.nvmf_create_transport(NvmfCreateTransport::tcp()).await {
                Err(e) if e.is_already_exists() => Ok(()),
                other => other,
            }
        }
        Action::CreateSubsystem { nqn } => {
            let mut req = NvmfCreateSubsystem::new(nqn);
            req.allow_any_host = Some(false);
            req.serial_number = Some(names::serial_number(nqn));
            req.model_number = Some("v2engine".into());
            api.nvmf_create_subsystem(req).await
        }
        Action::AddNamespace { nqn, bdev } => api
            .nvmf_subsystem_add_ns(NvmfSubsystemAddNs {
                nqn: nqn.clone(),
                namespace: NvmfNamespaceParams {
                    bdev_name: bdev.clone(),
                    ..NvmfNamespaceParams::default()
                },
            })
            .await
            .map(|_| ()),
        Action::AddListener { nqn, address, port } => {
            api.nvmf_subsystem_add_listener(NvmfSubsystemAddListener {
                nqn: nqn.clone(),
                listen_address: listen_address(address, *port),
            })
            .await
        }
        Action::AddHost { nqn, host } => {
            api.nvmf_subsystem_add_host(NvmfSubsystemAddHost {
                nqn: nqn.clone(),
                host: host.clone(),
                ..NvmfSubsystemAddHost::default()
            })
            .await
        }
        Action::DeleteSubsystem { nqn } => {
            // nvmf reports an unknown NQN as "Invalid parameters": read back instead.
            match api
                .nvmf_delete_subsystem(NvmfDeleteSubsystem { nqn: nqn.clone() })
                .await
            {
                Ok(()) => Ok(()),
                Err(e) => {
                    let still = api
                        .nvmf_get_subsystems(NvmfGetSubsystems::default())
                        .await?
                        .iter()
                        .any(|s| s.nqn == *nqn);
                    if still { Err(e) } else { Ok(()) }
                }
            }
        }
        Action::AttachController {
            name,
            address,
            port,
            subnqn,
            hostnqn,
            reconnect,
        } => {
            let mut req = BdevNvmeAttachController::tcp4(name, address, *port, subnqn);
            if address.parse::<IpAddr>().is_ok_and(|a| a.is_ipv6()) {
                req.adrfam = Some("ipv6".into());
            }
            req.hostnqn = Some(hostnqn.clone());
            req.reconnect_delay_sec = Some(reconnect.reconnect_delay_sec);
            req.ctrlr_loss_timeout_sec = Some(reconnect.ctrlr_loss_timeout_sec);
            req.fast_io_fail_timeout_sec = Some(reconnect.fast_io_fail_timeout_sec);
            api.bdev_nvme_attach_controller(req).await.map(|_| ())
        }
        Action::DetachController { name } => detach_controller(api, name).await,
        Action::CreateRaid { name, members } => {
            api.bdev_raid_create(BdevRaidCreate::raid1(name, members.clone()))
                .await
        }
        Action::AddRaidMember { raid, bdev } => {
            api.bdev_raid_add_base_bdev(BdevRaidAddBaseBdev {
                raid_bdev: raid.clone(),
                base_bdev: bdev.clone(),
            })
            .await
        }
        Action::RemoveRaidMember { bdev, .. } => gone_ok(
            api.bdev_raid_remove_base_bdev(BdevRaidRemoveBaseBdev { name: bdev.clone() })
                .await,
        ),
        Action::DeleteRaid { name } => gone_ok(
            api.bdev_raid_delete(BdevRaidDelete { name: name.clone() })
                .await,
        ),
        Action::AwaitSize { .. } => Ok(()),
    }
}

/// Carries out `actions` in order, stopping at the first failure; returns what was done.
pub async fn apply(api: &dyn SpdkApi, actions: &[Action]) -> Result<Vec<String>, ApplyError> {
    let mut done = Vec::with_capacity(actions.len());
    for a in actions {
        match run(api, a).await {
            Ok(()) => {
                tracing::info!(action = %a, "volume object changed");
                done.push(a.to_string());
            }
            Err(source) => {
                return Err(ApplyError {
                    action: a.to_string(),
                    done,
                    source,
                });
            }
        }
    }
    Ok(done)
}
