//! Desired versus observed → the SPDK calls that make up the difference (pure).
//!
//! Every plan is empty when the engine already matches, so calling an operation twice
//! changes nothing the second time. Problems that would make the calls fail or lose data
//! are found here, before anything changes ([`PlanError`]).

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use super::names;
use super::observed::{Observed, Subsystem};
use super::spec::{EngineSpec, Listen, MemberSpec, Reconnect, ReplicaSpec};

/// One SPDK call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `bdev_lvol_create`.
    CreateLvol {
        /// Lvstore name.
        lvs: String,
        /// Lvol name.
        name: String,
        /// Size.
        size_mib: u64,
        /// Thin.
        thin: bool,
    },
    /// `bdev_lvol_resize` (grow).
    ResizeLvol {
        /// `lvs/lvol`.
        alias: String,
        /// New size.
        size_mib: u64,
    },
    /// `bdev_lvol_delete`.
    DeleteLvol {
        /// `lvs/lvol`.
        alias: String,
    },
    /// `nvmf_create_transport` TCP.
    CreateTransport,
    /// `bdev_nvme_set_options`: the initiator times out commands a replica does not answer
    /// and resets the controller (SPDK takes it only before the engine's first controller).
    SetInitiatorTimeouts,
    /// `nvmf_create_subsystem` (allow_any_host false).
    CreateSubsystem {
        /// NQN.
        nqn: String,
    },
    /// `nvmf_subsystem_add_ns`.
    AddNamespace {
        /// NQN.
        nqn: String,
        /// The bdev.
        bdev: String,
    },
    /// `nvmf_subsystem_add_listener` TCP/IPv4.
    AddListener {
        /// NQN.
        nqn: String,
        /// Address.
        address: String,
        /// Port.
        port: u16,
    },
    /// `nvmf_subsystem_add_host`.
    AddHost {
        /// NQN.
        nqn: String,
        /// Host NQN.
        host: String,
    },
    /// `nvmf_delete_subsystem`.
    DeleteSubsystem {
        /// NQN.
        nqn: String,
    },
    /// `bdev_nvme_attach_controller` TCP/IPv4.
    AttachController {
        /// Controller name.
        name: String,
        /// Target address.
        address: String,
        /// Target port.
        port: u16,
        /// Subsystem.
        subnqn: String,
        /// Host NQN presented.
        hostnqn: String,
        /// Path-loss policy.
        reconnect: Reconnect,
    },
    /// `bdev_nvme_detach_controller`.
    DetachController {
        /// Controller name.
        name: String,
    },
    /// `bdev_raid_create` raid1, no strip size.
    CreateRaid {
        /// Raid name.
        name: String,
        /// Members.
        members: Vec<String>,
    },
    /// `bdev_raid_add_base_bdev` (starts a rebuild on an online raid).
    AddRaidMember {
        /// Raid.
        raid: String,
        /// Member.
        bdev: String,
    },
    /// `bdev_raid_remove_base_bdev`.
    RemoveRaidMember {
        /// Raid.
        raid: String,
        /// Member.
        bdev: String,
    },
    /// `bdev_raid_delete`.
    DeleteRaid {
        /// Raid.
        name: String,
    },
    /// Waits (bounded, reading `bdev_get_bdevs`) until the bdev the frontend exports and
    /// the raid's members reach a size: after a grow, the attach node learns a remote
    /// replica's new size only when SPDK's namespace-changed event has come through, and
    /// raid1 grows only once every present member has (see [`size_wait`]).
    AwaitSize {
        /// The volume.
        volume: String,
        /// The bdev the frontend exports: the raid, or the only member.
        bdev: String,
        /// The raid's members (empty without a raid); a missing one is not waited for,
        /// as SPDK's raid1 skips it.
        members: Vec<String>,
        /// The size to reach (a member: what it gives the raid, i.e. less its data offset).
        bytes: u64,
        /// How long to wait at most.
        timeout: Duration,
    },
}

/// How long an engine waits for a grown volume to reach its size on the attach node.
///
/// The change travels: `bdev_lvol_resize` on the replica's node → its NVMe-oF target sends
/// "namespace attribute changed" → the attach node's `bdev_nvme` reads the namespace again
/// and resizes its bdev → raid1 takes the smallest member. Milliseconds on a working path;
/// a path that is reconnecting delivers it when it is back.
pub const GROW_WAIT: Duration = Duration::from_secs(10);

/// `bytes` as `N MiB` when whole, else `N bytes`.
pub fn show_size(bytes: u64) -> String {
    if bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CreateLvol {
                lvs,
                name,
                size_mib,
                thin,
            } => write!(
                f,
                "create lvol {lvs}/{name} ({size_mib} MiB, {})",
                if *thin { "thin" } else { "thick" }
            ),
            Self::ResizeLvol { alias, size_mib } => {
                write!(f, "resize lvol {alias} to {size_mib} MiB")
            }
            Self::DeleteLvol { alias } => write!(f, "delete lvol {alias}"),
            Self::CreateTransport => write!(f, "create the NVMe-oF TCP transport"),
            Self::SetInitiatorTimeouts => {
                write!(f, "set the NVMe initiator's command timeouts")
            }
            Self::CreateSubsystem { nqn } => write!(f, "create subsystem {nqn}"),
            Self::AddNamespace { nqn, bdev } => write!(f, "add namespace {bdev} to {nqn}"),
            Self::AddListener { nqn, address, port } => {
                write!(f, "add listener {address}:{port} to {nqn}")
            }
            Self::AddHost { nqn, host } => write!(f, "allow host {host} on {nqn}"),
            Self::DeleteSubsystem { nqn } => write!(f, "delete subsystem {nqn}"),
            Self::AttachController {
                name,
                address,
                port,
                subnqn,
                ..
            } => write!(
                f,
                "attach controller {name} to {subnqn} at {address}:{port}"
            ),
            Self::DetachController { name } => write!(f, "detach controller {name}"),
            Self::CreateRaid { name, members } => {
                write!(f, "create raid1 {name} over {}", members.join(", "))
            }
            Self::AddRaidMember { raid, bdev } => {
                write!(f, "add {bdev} to raid {raid} (rebuild)")
            }
            Self::RemoveRaidMember { raid, bdev } => write!(f, "remove {bdev} from raid {raid}"),
            Self::DeleteRaid { name } => write!(f, "delete raid {name}"),
            Self::AwaitSize {
                bdev,
                members,
                bytes,
                ..
            } => {
                if members.is_empty() {
                    write!(f, "wait until {bdev} reaches {}", show_size(*bytes))
                } else {
                    write!(
                        f,
                        "wait until raid {bdev} and its members reach {}",
                        show_size(*bytes)
                    )
                }
            }
        }
    }
}

/// Why a wanted state cannot be reached; nothing has changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The replica's disk has no lvstore on this node.
    #[error(
        "replica {replica}: disk {disk} has no lvstore {lvstore} on this node (is the block disk ready?)"
    )]
    NoLvstore {
        /// Replica.
        replica: String,
        /// Disk.
        disk: String,
        /// Expected lvstore.
        lvstore: String,
    },
    /// An lvol of that name lives on another lvstore.
    #[error(
        "replica {replica}: an lvol of that name already lives on lvstore {lvstore}, not on disk {disk}"
    )]
    ReplicaElsewhere {
        /// Replica.
        replica: String,
        /// Where it is.
        lvstore: String,
        /// Where it was wanted.
        disk: String,
    },
    /// Shrinking is refused.
    #[error("replica {replica}: is {have_mib} MiB; shrinking to {want_mib} MiB is refused")]
    Shrink {
        /// Replica.
        replica: String,
        /// Current size.
        have_mib: u64,
        /// Wanted size.
        want_mib: u64,
    },
    /// Thin/thick cannot change.
    #[error("replica {replica}: exists {have}-provisioned; it cannot become {want}-provisioned")]
    Provisioning {
        /// Replica.
        replica: String,
        /// Current.
        have: &'static str,
        /// Wanted.
        want: &'static str,
    },
    /// A raid of this node uses the replica.
    #[error(
        "replica {replica}: is a member of raid {raid} on this node; delete that volume's engine first"
    )]
    ReplicaInUse {
        /// Replica.
        replica: String,
        /// Raid.
        raid: String,
    },
    /// A local member's lvol is missing.
    #[error(
        "volume {volume}: local replica {replica} has no lvol {alias} on this node (ensure the replica first)"
    )]
    NoLocalReplica {
        /// Volume.
        volume: String,
        /// Replica.
        replica: String,
        /// Expected alias.
        alias: String,
    },
    /// The raid has no free slot for another member.
    #[error(
        "volume {volume}: raid {raid} has {slots} member slots and no free one for {member} (upstream raid1 cannot grow its member count); remove a member first"
    )]
    RaidFull {
        /// Volume.
        volume: String,
        /// Raid.
        raid: String,
        /// Slots.
        slots: usize,
        /// Member to add.
        member: String,
    },
    /// The raid is offline.
    #[error("volume {volume}: raid {raid} is {state}; it cannot be repaired in place")]
    RaidUnusable {
        /// Volume.
        volume: String,
        /// Raid.
        raid: String,
        /// State.
        state: String,
    },
    /// Between one replica (no raid) and several (raid1) while attached.
    #[error("volume {volume}: {reason}")]
    Layout {
        /// Volume.
        volume: String,
        /// Why.
        reason: String,
    },
}

/// A subsystem as wanted.
struct WantSubsystem<'a> {
    nqn: String,
    bdev: String,
    listen: &'a Listen,
}

fn listens_as_wanted(s: &Subsystem, want: &Listen) -> bool {
    s.listeners
        .iter()
        .any(|l| l.address == want.address && l.port == want.port.to_string())
}

/// Plans a subsystem: created when missing; repaired in place when something is only
/// missing (namespace, listener, host); deleted and created again when it has anything
/// else (another namespace, listener or host, or allow_any_host).
fn plan_subsystem(want: &WantSubsystem<'_>, obs: &Observed, out: &mut Vec<Action>) {
    let ids = obs.identities(&want.bdev);
    let nqn = &want.nqn;
    let create = |out: &mut Vec<Action>| {
        if !obs.tcp_transport && !out.contains(&Action::CreateTransport) {
            out.push(Action::CreateTransport);
        }
        out.push(Action::CreateSubsystem { nqn: nqn.clone() });
        out.push(Action::AddNamespace {
            nqn: nqn.clone(),
            bdev: want.bdev.clone(),
        });
        out.push(Action::AddListener {
            nqn: nqn.clone(),
            address: want.listen.address.clone(),
            port: want.listen.port,
        });
        for h in &want.listen.hosts {
            out.push(Action::AddHost {
                nqn: nqn.clone(),
                host: h.clone(),
            });
        }
    };
    let Some(s) = obs.subsystem(nqn) else {
        create(out);
        return;
    };
    let wanted_hosts: BTreeSet<&String> = want.listen.hosts.iter().collect();
    let foreign_ns = s.namespaces.iter().any(|n| !ids.contains(n));
    let foreign_listener = s
        .listeners
        .iter()
        .any(|l| !(l.address == want.listen.address && l.port == want.listen.port.to_string()));
    let foreign_host = s.hosts.iter().any(|h| !wanted_hosts.contains(h));
    if s.allow_any_host || foreign_ns || foreign_listener || foreign_host {
        out.push(Action::DeleteSubsystem { nqn: nqn.clone() });
        create(out);
        return;
    }
    if s.namespaces.is_empty() {
        out.push(Action::AddNamespace {
            nqn: nqn.clone(),
            bdev: want.bdev.clone(),
        });
    }
    if !listens_as_wanted(s, want.listen) {
        out.push(Action::AddListener {
            nqn: nqn.clone(),
            address: want.listen.address.clone(),
            port: want.listen.port,
        });
    }
    for h in &want.listen.hosts {
        if !s.hosts.contains(h) {
            out.push(Action::AddHost {
                nqn: nqn.clone(),
                host: h.clone(),
            });
        }
    }
}

fn round_up(mib: u64, cluster_bytes: u64) -> u64 {
    let c = (cluster_bytes >> 20).max(1);
    mib.div_ceil(c).saturating_mul(c)
}

fn provisioning(thin: bool) -> &'static str {
    if thin { "thin" } else { "thick" }
}

/// The calls that make replica `spec` (lvol, and export when wanted) real.
pub fn plan_replica(spec: &ReplicaSpec, obs: &Observed) -> Result<Vec<Action>, PlanError> {
    let lvs_name = names::lvstore_of(&spec.disk);
    let Some(lvs) = obs.lvstore(&lvs_name) else {
        return Err(PlanError::NoLvstore {
            replica: spec.replica.clone(),
            disk: spec.disk.clone(),
            lvstore: lvs_name,
        });
    };
    let mut out = Vec::new();
    if let Some(other) = obs.lvols_named(&spec.replica).find(|l| l.lvs != lvs_name) {
        return Err(PlanError::ReplicaElsewhere {
            replica: spec.replica.clone(),
            lvstore: other.lvs.clone(),
            disk: spec.disk.clone(),
        });
    }
    match obs.lvols_named(&spec.replica).next() {
        None => out.push(Action::CreateLvol {
            lvs: lvs_name,
            name: spec.replica.clone(),
            size_mib: spec.size_mib,
            thin: spec.thin,
        }),
        Some(l) => {
            if l.thin != spec.thin {
                return Err(PlanError::Provisioning {
                    replica: spec.replica.clone(),
                    have: provisioning(l.thin),
                    want: provisioning(spec.thin),
                });
            }
            if l.size_mib > round_up(spec.size_mib, lvs.cluster_size) {
                return Err(PlanError::Shrink {
                    replica: spec.replica.clone(),
                    have_mib: l.size_mib,
                    want_mib: spec.size_mib,
                });
            }
            if l.size_mib < spec.size_mib {
                out.push(Action::ResizeLvol {
                    alias: l.alias(),
                    size_mib: spec.size_mib,
                });
            }
        }
    }
    let nqn = names::replica_nqn(&spec.replica);
    match &spec.export {
        Some(listen) => plan_subsystem(
            &WantSubsystem {
                nqn,
                bdev: spec.alias(),
                listen,
            },
            obs,
            &mut out,
        ),
        None => {
            if obs.subsystem(&nqn).is_some() {
                out.push(Action::DeleteSubsystem { nqn });
            }
        }
    }
    Ok(out)
}

/// The calls that remove replica `replica`: its export, then its lvol (on any lvstore).
/// Refused while a raid of this node uses the lvol.
pub fn plan_replica_delete(replica: &str, obs: &Observed) -> Result<Vec<Action>, PlanError> {
    let lvols: Vec<_> = obs.lvols_named(replica).collect();
    for l in &lvols {
        let ids = obs.identities(&l.alias());
        if let Some(r) = obs.raids_using(&ids).next() {
            return Err(PlanError::ReplicaInUse {
                replica: replica.to_string(),
                raid: r.name.clone(),
            });
        }
    }
    let mut out = Vec::new();
    let nqn = names::replica_nqn(replica);
    if obs.subsystem(&nqn).is_some() {
        out.push(Action::DeleteSubsystem { nqn });
    }
    out.extend(
        lvols
            .iter()
            .map(|l| Action::DeleteLvol { alias: l.alias() }),
    );
    Ok(out)
}

fn controller_matches(obs: &Observed, m: &MemberSpec, host_nqn: &str) -> Option<bool> {
    let MemberSpec::Remote {
        replica,
        address,
        port,
    } = m
    else {
        return None;
    };
    let c = obs.controller(&names::controller_name(replica))?;
    let subnqn = names::replica_nqn(replica);
    Some(c.paths.iter().any(|p| {
        p.address == *address
            && p.port == port.to_string()
            && p.subnqn == subnqn
            && (p.hostnqn.is_empty() || p.hostnqn == host_nqn)
    }))
}

/// The calls that make volume `spec.volume`'s engine real on this node: a controller per
/// remote replica, raid1 over the members (none for one replica), the frontend subsystem,
/// and, after a grow, a bounded wait for the size to come through ([`size_wait`] with the
/// local replica's size as the size wanted).
pub fn plan_engine(spec: &EngineSpec, obs: &Observed) -> Result<Vec<Action>, PlanError> {
    plan_engine_sized(spec, obs, None)
}

/// [`plan_engine`] for a volume of `size_bytes` when the caller knows it (a front-end that
/// has just grown the replicas): the engine then also waits for remote members when this
/// node has no replica of the volume.
pub fn plan_engine_sized(
    spec: &EngineSpec,
    obs: &Observed,
    size_bytes: Option<u64>,
) -> Result<Vec<Action>, PlanError> {
    let mut out = plan_engine_objects(spec, obs)?;
    if let Some(wait) = size_wait(spec, obs, size_bytes, GROW_WAIT) {
        out.push(wait);
    }
    Ok(out)
}

/// The wait for the engine's size, when it is not there yet.
///
/// The size wanted is `size_bytes` if given, else what this node's own replica gives the
/// raid (its lvol is resized synchronously, so it is the first to know of a grow; remote
/// members follow when SPDK's namespace-changed event arrives). Without either there is
/// nothing to wait for. No wait is planned when the exported bdev and every present member
/// already have the size, nor while the raid is not a bdev (configuring, offline).
pub fn size_wait(
    spec: &EngineSpec,
    obs: &Observed,
    size_bytes: Option<u64>,
    timeout: Duration,
) -> Option<Action> {
    let target = spec.target_bdev();
    let multi = spec.members.len() >= 2;
    let raid = obs.raid(&names::raid_name(&spec.volume));
    if multi && raid.is_some_and(|r| r.state != "online") {
        return None;
    }
    let members: Vec<String> = if multi {
        spec.members.iter().map(MemberSpec::bdev).collect()
    } else {
        Vec::new()
    };
    let capacity = |m: &str| obs.member_capacity(raid, m);
    let bytes = match size_bytes {
        Some(b) => b,
        None => spec
            .members
            .iter()
            .filter(|m| matches!(m, MemberSpec::Local { .. }))
            .filter_map(|m| capacity(&m.bdev()))
            .min()?,
    };
    let short_member = members
        .iter()
        .any(|m| capacity(m).is_some_and(|c| c < bytes));
    // The exported bdev: the raid's size once it is a bdev; a raid still to be created here
    // takes its members' size, so only they count then.
    let short_target = match obs.bdev(&target) {
        Some(b) => b.size_bytes < bytes,
        None => !multi && size_bytes.is_some(),
    };
    (short_member || short_target).then(|| Action::AwaitSize {
        volume: spec.volume.clone(),
        bdev: target,
        members,
        bytes,
        timeout,
    })
}

fn plan_engine_objects(spec: &EngineSpec, obs: &Observed) -> Result<Vec<Action>, PlanError> {
    let volume = &spec.volume;
    let raid_name = names::raid_name(volume);
    let raid = obs.raid(&raid_name);
    let frontend_nqn = names::volume_nqn(volume);
    // Local members must exist.
    for m in &spec.members {
        if let MemberSpec::Local { replica, disk } = m {
            let alias = names::lvol_alias(disk, replica);
            if obs.bdev(&alias).is_none() {
                return Err(PlanError::NoLocalReplica {
                    volume: volume.clone(),
                    replica: replica.clone(),
                    alias,
                });
            }
        }
    }
    let multi = spec.members.len() >= 2;
    if !multi && raid.is_some() {
        return Err(PlanError::Layout {
            volume: volume.clone(),
            reason: format!(
                "raid {raid_name} exists but one replica is wanted; going from a raid1 to a single replica in place is not supported (delete the engine first)"
            ),
        });
    }
    if let Some(r) = raid
        && r.state == "offline"
    {
        return Err(PlanError::RaidUnusable {
            volume: volume.clone(),
            raid: raid_name,
            state: r.state.clone(),
        });
    }
    let frontend_ns = obs
        .subsystem(&frontend_nqn)
        .map(|s| s.namespaces.clone())
        .unwrap_or_default();
    if multi && raid.is_none() && !frontend_ns.is_empty() {
        return Err(PlanError::Layout {
            volume: volume.clone(),
            reason: format!(
                "the frontend exports a single replica; creating raid1 {raid_name} under it in place would not rebuild the new members (delete the engine first)"
            ),
        });
    }

    let mut out = Vec::new();
    // Members present now (raid slots), matched to the wanted ones.
    let member_ids: Vec<(usize, Vec<String>)> = spec
        .members
        .iter()
        .enumerate()
        .map(|(i, m)| (i, obs.identities(&m.bdev())))
        .collect();
    let wanted_of = |slot_name: Option<&String>, slot_uuid: Option<&String>| {
        member_ids.iter().find_map(|(i, ids)| {
            (slot_name.is_some_and(|n| ids.contains(n))
                || slot_uuid.is_some_and(|u| ids.contains(u)))
            .then_some(*i)
        })
    };
    // Controllers to (re)attach.
    let reattach: Vec<usize> = spec
        .members
        .iter()
        .enumerate()
        .filter(|(_, m)| controller_matches(obs, m, &spec.host_nqn) == Some(false))
        .map(|(i, _)| i)
        .collect();
    let mut in_raid: BTreeSet<usize> = BTreeSet::new();
    let mut waiting: BTreeSet<usize> = BTreeSet::new();
    let mut free_slots = 0usize;
    if let Some(r) = raid {
        for s in &r.slots {
            match (s.configured, wanted_of(s.name.as_ref(), s.uuid.as_ref())) {
                (true, Some(i)) if reattach.contains(&i) => free_slots += 1,
                (true, Some(i)) => {
                    in_raid.insert(i);
                }
                (true, None) => {
                    if let Some(n) = &s.name {
                        out.push(Action::RemoveRaidMember {
                            raid: raid_name.clone(),
                            bdev: n.clone(),
                        });
                    }
                    free_slots += 1;
                }
                (false, Some(i)) if s.name.is_some() => {
                    waiting.insert(i);
                }
                (false, _) if s.name.is_some() => {
                    // A configuring raid waits for a member that is no longer wanted: the
                    // slot cannot be freed in place.
                }
                (false, _) => free_slots += 1,
            }
        }
    }
    // Controllers of this volume that are not wanted.
    let wanted_ctrls: BTreeSet<String> = spec
        .members
        .iter()
        .filter(|m| matches!(m, MemberSpec::Remote { .. }))
        .map(|m| names::controller_name(m.replica()))
        .collect();
    for c in &obs.controllers {
        if names::owner_of_controller(&c.name).is_some_and(|(_, v)| v == volume)
            && !wanted_ctrls.contains(&c.name)
        {
            out.push(Action::DetachController {
                name: c.name.clone(),
            });
        }
    }
    for m in &spec.members {
        let MemberSpec::Remote {
            replica,
            address,
            port,
        } = m
        else {
            continue;
        };
        let name = names::controller_name(replica);
        let attach = match controller_matches(obs, m, &spec.host_nqn) {
            Some(true) => false,
            Some(false) => {
                out.push(Action::DetachController { name: name.clone() });
                true
            }
            None => true,
        };
        if attach {
            // Before the engine's first controller: SPDK refuses the options afterwards.
            if obs.controllers.is_empty() && !out.contains(&Action::SetInitiatorTimeouts) {
                out.push(Action::SetInitiatorTimeouts);
            }
            out.push(Action::AttachController {
                name,
                address: address.clone(),
                port: *port,
                subnqn: names::replica_nqn(replica),
                hostnqn: spec.host_nqn.clone(),
                reconnect: spec.reconnect,
            });
        }
    }
    if multi {
        match raid {
            None => out.push(Action::CreateRaid {
                name: raid_name.clone(),
                members: spec.members.iter().map(MemberSpec::bdev).collect(),
            }),
            Some(r) => {
                for (i, m) in spec.members.iter().enumerate() {
                    if in_raid.contains(&i) || waiting.contains(&i) {
                        continue;
                    }
                    if free_slots == 0 {
                        return Err(PlanError::RaidFull {
                            volume: volume.clone(),
                            raid: raid_name,
                            slots: r.slots.len(),
                            member: m.bdev(),
                        });
                    }
                    free_slots -= 1;
                    out.push(Action::AddRaidMember {
                        raid: raid_name.clone(),
                        bdev: m.bdev(),
                    });
                }
            }
        }
    }
    plan_subsystem(
        &WantSubsystem {
            nqn: frontend_nqn,
            bdev: spec.target_bdev(),
            listen: &spec.frontend,
        },
        obs,
        &mut out,
    );
    Ok(out)
}

/// The calls that remove volume `volume`'s engine from this node, in reverse: frontend
/// subsystem, raid, controllers.
pub fn plan_engine_delete(volume: &str, obs: &Observed) -> Vec<Action> {
    let mut out = Vec::new();
    let nqn = names::volume_nqn(volume);
    if obs.subsystem(&nqn).is_some() {
        out.push(Action::DeleteSubsystem { nqn });
    }
    let raid = names::raid_name(volume);
    if obs.raid(&raid).is_some() {
        out.push(Action::DeleteRaid { name: raid });
    }
    for c in &obs.controllers {
        if names::owner_of_controller(&c.name).is_some_and(|(_, v)| v == volume) {
            out.push(Action::DetachController {
                name: c.name.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volumes::observed::{
        Bdev, Controller, ControllerPath, Listener, Lvol, Lvstore, Raid, RaidSlot,
    };

    const HOST: &str = "nqn.2026-11.io.v2engine:host:fleet";
    const R1: &str = "v1-r-00000001";
    const R2: &str = "v1-r-00000002";
    const R3: &str = "v1-r-00000003";
    /// What a remote replica's namespace has when a controller attaches in [`simulate`].
    const REMOTE_MIB: u64 = 64;

    fn listen(port: u16) -> Listen {
        Listen {
            address: "10.0.0.1".into(),
            port,
            hosts: vec![HOST.into()],
        }
    }

    fn replica(size_mib: u64) -> ReplicaSpec {
        ReplicaSpec {
            replica: R1.into(),
            disk: "d1".into(),
            size_mib,
            thin: true,
            export: Some(listen(4420)),
        }
    }

    fn with_lvstore() -> Observed {
        Observed {
            lvstores: vec![Lvstore {
                name: "v2e-lvs-d1".into(),
                uuid: "lvs-uuid".into(),
                cluster_size: 4 << 20,
                free_bytes: 1 << 30,
            }],
            ..Observed::default()
        }
    }

    fn lvol(obs: &mut Observed, name: &str, size_mib: u64) {
        let uuid = format!("uuid-{name}");
        obs.lvols.push(Lvol {
            name: name.into(),
            lvs: "v2e-lvs-d1".into(),
            uuid: uuid.clone(),
            thin: true,
            size_mib,
        });
        obs.bdevs.push(Bdev {
            name: uuid.clone(),
            aliases: vec![format!("v2e-lvs-d1/{name}")],
            uuid: Some(uuid),
            size_bytes: size_mib << 20,
        });
    }

    fn exported(obs: &mut Observed, nqn: &str, bdev: &str, port: u16) {
        obs.tcp_transport = true;
        obs.subsystems.push(Subsystem {
            nqn: nqn.into(),
            allow_any_host: false,
            hosts: vec![HOST.into()],
            listeners: vec![Listener {
                address: "10.0.0.1".into(),
                port: port.to_string(),
            }],
            namespaces: vec![bdev.into()],
        });
    }

    /// Applies a plan to the observed state the way SPDK would (enough for idempotence).
    fn simulate(obs: &mut Observed, plan: &[Action]) {
        for a in plan {
            match a {
                Action::CreateLvol { name, size_mib, .. } => lvol(obs, name, *size_mib),
                Action::ResizeLvol { alias, size_mib } => {
                    for l in &mut obs.lvols {
                        if l.alias() == *alias {
                            l.size_mib = *size_mib;
                        }
                    }
                    for b in &mut obs.bdevs {
                        if b.is_named(alias) {
                            b.size_bytes = size_mib << 20;
                        }
                    }
                }
                Action::DeleteLvol { alias } => obs.lvols.retain(|l| l.alias() != *alias),
                Action::CreateTransport => obs.tcp_transport = true,
                Action::SetInitiatorTimeouts => {}
                Action::CreateSubsystem { nqn } => obs.subsystems.push(Subsystem {
                    nqn: nqn.clone(),
                    ..Subsystem::default()
                }),
                Action::AddNamespace { nqn, bdev } => {
                    let id = obs.bdev(bdev).map_or(bdev.clone(), |b| b.name.clone());
                    for s in obs.subsystems.iter_mut().filter(|s| s.nqn == *nqn) {
                        s.namespaces.push(id.clone());
                    }
                }
                Action::AddListener { nqn, address, port } => {
                    for s in obs.subsystems.iter_mut().filter(|s| s.nqn == *nqn) {
                        s.listeners.push(Listener {
                            address: address.clone(),
                            port: port.to_string(),
                        });
                    }
                }
                Action::AddHost { nqn, host } => {
                    for s in obs.subsystems.iter_mut().filter(|s| s.nqn == *nqn) {
                        s.hosts.push(host.clone());
                    }
                }
                Action::DeleteSubsystem { nqn } => obs.subsystems.retain(|s| s.nqn != *nqn),
                Action::AttachController {
                    name,
                    address,
                    port,
                    subnqn,
                    hostnqn,
                    ..
                } => {
                    obs.controllers.push(Controller {
                        name: name.clone(),
                        paths: vec![ControllerPath {
                            state: "enabled".into(),
                            address: address.clone(),
                            port: port.to_string(),
                            subnqn: subnqn.clone(),
                            hostnqn: hostnqn.clone(),
                        }],
                    });
                    obs.bdevs.push(Bdev {
                        name: format!("{name}n1"),
                        size_bytes: REMOTE_MIB << 20,
                        ..Bdev::default()
                    });
                }
                Action::DetachController { name } => {
                    obs.controllers.retain(|c| c.name != *name);
                    let b = format!("{name}n1");
                    obs.bdevs.retain(|x| x.name != b);
                    for r in &mut obs.raids {
                        for s in &mut r.slots {
                            if s.name.as_deref() == Some(b.as_str()) {
                                *s = RaidSlot::default();
                                r.operational -= 1;
                            }
                        }
                    }
                }
                Action::CreateRaid { name, members } => {
                    let size_bytes = members
                        .iter()
                        .filter_map(|m| obs.bdev(m).map(|b| b.size_bytes))
                        .min()
                        .unwrap_or(0);
                    obs.bdevs.push(Bdev {
                        name: name.clone(),
                        size_bytes,
                        ..Bdev::default()
                    });
                    obs.raids.push(Raid {
                        name: name.clone(),
                        state: "online".into(),
                        level: "raid1".into(),
                        operational: u32::try_from(members.len()).unwrap(),
                        slots: members
                            .iter()
                            .map(|m| RaidSlot {
                                name: Some(m.clone()),
                                configured: true,
                                ..RaidSlot::default()
                            })
                            .collect(),
                        rebuild: None,
                        size_bytes,
                    });
                }
                Action::AddRaidMember { raid, bdev } => {
                    let r = obs.raids.iter_mut().find(|r| r.name == *raid).unwrap();
                    let s = r.slots.iter_mut().find(|s| s.name.is_none()).unwrap();
                    *s = RaidSlot {
                        name: Some(bdev.clone()),
                        configured: true,
                        ..RaidSlot::default()
                    };
                    r.operational += 1;
                    r.rebuild = Some((bdev.clone(), 0));
                }
                Action::RemoveRaidMember { raid, bdev } => {
                    let r = obs.raids.iter_mut().find(|r| r.name == *raid).unwrap();
                    for s in &mut r.slots {
                        if s.name.as_deref() == Some(bdev.as_str()) {
                            *s = RaidSlot::default();
                            r.operational -= 1;
                        }
                    }
                }
                Action::DeleteRaid { name } => {
                    obs.raids.retain(|r| r.name != *name);
                    obs.bdevs.retain(|b| b.name != *name);
                }
                Action::AwaitSize { .. } => {}
            }
        }
    }

    #[test]
    fn a_new_replica_is_created_exported_and_then_left_alone() {
        let mut obs = with_lvstore();
        let spec = replica(64);
        let p = plan_replica(&spec, &obs).unwrap();
        let nqn = names::replica_nqn(R1);
        assert_eq!(
            p,
            vec![
                Action::CreateLvol {
                    lvs: "v2e-lvs-d1".into(),
                    name: R1.into(),
                    size_mib: 64,
                    thin: true
                },
                Action::CreateTransport,
                Action::CreateSubsystem { nqn: nqn.clone() },
                Action::AddNamespace {
                    nqn: nqn.clone(),
                    bdev: "v2e-lvs-d1/v1-r-00000001".into()
                },
                Action::AddListener {
                    nqn: nqn.clone(),
                    address: "10.0.0.1".into(),
                    port: 4420
                },
                Action::AddHost {
                    nqn,
                    host: HOST.into()
                },
            ]
        );
        simulate(&mut obs, &p);
        assert_eq!(plan_replica(&spec, &obs).unwrap(), vec![]);
    }

    #[test]
    fn replicas_grow_never_shrink_and_keep_their_provisioning() {
        let mut obs = with_lvstore();
        lvol(&mut obs, R1, 64);
        let mut spec = replica(64);
        spec.export = None;
        assert_eq!(plan_replica(&spec, &obs).unwrap(), vec![]);
        spec.size_mib = 62; // rounds up to the 64 MiB the lvol has
        assert_eq!(plan_replica(&spec, &obs).unwrap(), vec![]);
        spec.size_mib = 128;
        assert_eq!(
            plan_replica(&spec, &obs).unwrap(),
            vec![Action::ResizeLvol {
                alias: "v2e-lvs-d1/v1-r-00000001".into(),
                size_mib: 128
            }]
        );
        spec.size_mib = 32;
        assert!(matches!(
            plan_replica(&spec, &obs),
            Err(PlanError::Shrink { have_mib: 64, .. })
        ));
        spec.size_mib = 64;
        spec.thin = false;
        assert!(matches!(
            plan_replica(&spec, &obs),
            Err(PlanError::Provisioning { .. })
        ));
        spec.disk = "d2".into();
        assert!(matches!(
            plan_replica(&spec, &obs),
            Err(PlanError::NoLvstore { .. })
        ));
    }

    #[test]
    fn a_wrong_export_is_recreated_and_a_missing_host_only_added() {
        let mut obs = with_lvstore();
        lvol(&mut obs, R1, 64);
        let nqn = names::replica_nqn(R1);
        exported(&mut obs, &nqn, "uuid-v1-r-00000001", 4421);
        let spec = replica(64);
        let p = plan_replica(&spec, &obs).unwrap();
        assert_eq!(p[0], Action::DeleteSubsystem { nqn: nqn.clone() });
        assert!(p.contains(&Action::AddListener {
            nqn: nqn.clone(),
            address: "10.0.0.1".into(),
            port: 4420
        }));
        simulate(&mut obs, &p);
        assert_eq!(plan_replica(&spec, &obs).unwrap(), vec![]);
        obs.subsystems[0].hosts.clear();
        assert_eq!(
            plan_replica(&spec, &obs).unwrap(),
            vec![Action::AddHost {
                nqn: nqn.clone(),
                host: HOST.into()
            }]
        );
        obs.subsystems[0].allow_any_host = true;
        assert_eq!(
            plan_replica(&spec, &obs).unwrap()[0],
            Action::DeleteSubsystem { nqn: nqn.clone() }
        );
        // Not exported any more.
        let mut unexported = spec.clone();
        unexported.export = None;
        assert_eq!(
            plan_replica(&unexported, &obs).unwrap(),
            vec![Action::DeleteSubsystem { nqn }]
        );
    }

    fn engine(members: Vec<MemberSpec>) -> EngineSpec {
        EngineSpec {
            volume: "v1".into(),
            host_nqn: HOST.into(),
            members,
            frontend: listen(4430),
            reconnect: Reconnect::default(),
        }
    }

    fn local(r: &str) -> MemberSpec {
        MemberSpec::Local {
            replica: r.into(),
            disk: "d1".into(),
        }
    }

    fn remote(r: &str, port: u16) -> MemberSpec {
        MemberSpec::Remote {
            replica: r.into(),
            address: "10.0.0.2".into(),
            port,
        }
    }

    #[test]
    fn an_engine_attaches_remotes_builds_raid1_and_exports_it_once() {
        let mut obs = with_lvstore();
        lvol(&mut obs, R1, 64);
        let spec = engine(vec![local(R1), remote(R2, 4420)]);
        let p = plan_engine(&spec, &obs).unwrap();
        let kinds: Vec<String> = p.iter().map(ToString::to_string).collect();
        assert_eq!(
            kinds,
            [
                "set the NVMe initiator's command timeouts",
                "attach controller v1-r-00000002 to nqn.2026-11.io.v2engine:v1-r-00000002 at 10.0.0.2:4420",
                "create raid1 v1-raid over v2e-lvs-d1/v1-r-00000001, v1-r-00000002n1",
                "create the NVMe-oF TCP transport",
                "create subsystem nqn.2026-11.io.v2engine:v1",
                "add namespace v1-raid to nqn.2026-11.io.v2engine:v1",
                "add listener 10.0.0.1:4430 to nqn.2026-11.io.v2engine:v1",
                "allow host nqn.2026-11.io.v2engine:host:fleet on nqn.2026-11.io.v2engine:v1",
            ]
        );
        simulate(&mut obs, &p);
        assert_eq!(plan_engine(&spec, &obs).unwrap(), vec![]);

        // The remote replica's controller was lost: replaced by R3 on another node. With no
        // controller left the timeouts are asked for again (SPDK takes them, or refuses them
        // while it still deletes the old one, which was attached with them).
        simulate(&mut obs, &[Action::DetachController { name: R2.into() }]);
        let replaced = engine(vec![local(R1), remote(R3, 4425)]);
        let p = plan_engine(&replaced, &obs).unwrap();
        assert_eq!(
            p,
            vec![
                Action::SetInitiatorTimeouts,
                Action::AttachController {
                    name: R3.into(),
                    address: "10.0.0.2".into(),
                    port: 4425,
                    subnqn: names::replica_nqn(R3),
                    hostnqn: HOST.into(),
                    reconnect: Reconnect::default()
                },
                Action::AddRaidMember {
                    raid: "v1-raid".into(),
                    bdev: "v1-r-00000003n1".into()
                },
            ]
        );
        simulate(&mut obs, &p);
        assert_eq!(plan_engine(&replaced, &obs).unwrap(), vec![]);

        // A member still present but no longer wanted is removed before the new one joins.
        let swapped = engine(vec![local(R1), remote(R2, 4420)]);
        let p = plan_engine(&swapped, &obs).unwrap();
        assert_eq!(
            p[..2],
            [
                Action::RemoveRaidMember {
                    raid: "v1-raid".into(),
                    bdev: "v1-r-00000003n1".into()
                },
                Action::DetachController { name: R3.into() },
            ]
        );
        assert_eq!(
            p[3],
            Action::AddRaidMember {
                raid: "v1-raid".into(),
                bdev: "v1-r-00000002n1".into()
            }
        );

        // Teardown in reverse, then nothing left to do.
        let t = plan_engine_delete("v1", &obs);
        assert_eq!(
            t,
            vec![
                Action::DeleteSubsystem {
                    nqn: names::volume_nqn("v1")
                },
                Action::DeleteRaid {
                    name: "v1-raid".into()
                },
                Action::DetachController { name: R3.into() },
            ]
        );
        simulate(&mut obs, &t);
        assert_eq!(plan_engine_delete("v1", &obs), vec![]);
    }

    #[test]
    fn a_moved_export_is_reattached_and_rebuilt() {
        let mut obs = with_lvstore();
        lvol(&mut obs, R1, 64);
        let spec = engine(vec![local(R1), remote(R2, 4420)]);
        let p = plan_engine(&spec, &obs).unwrap();
        simulate(&mut obs, &p);
        let moved = engine(vec![local(R1), remote(R2, 4421)]);
        let p = plan_engine(&moved, &obs).unwrap();
        assert_eq!(p[0], Action::DetachController { name: R2.into() });
        assert!(matches!(&p[1], Action::AttachController { port: 4421, .. }));
        assert!(matches!(&p[2], Action::AddRaidMember { .. }));
    }

    #[test]
    fn engine_refusals_change_nothing() {
        let mut obs = with_lvstore();
        // Local replica missing.
        let spec = engine(vec![local(R1), remote(R2, 4420)]);
        assert!(matches!(
            plan_engine(&spec, &obs),
            Err(PlanError::NoLocalReplica { .. })
        ));
        lvol(&mut obs, R1, 64);
        let p = plan_engine(&spec, &obs).unwrap();
        simulate(&mut obs, &p);
        // A third member needs a slot raid1 does not have.
        let three = engine(vec![local(R1), remote(R2, 4420), remote(R3, 4421)]);
        assert!(matches!(
            plan_engine(&three, &obs),
            Err(PlanError::RaidFull { slots: 2, .. })
        ));
        // raid1 → single replica in place.
        assert!(matches!(
            plan_engine(&engine(vec![local(R1)]), &obs),
            Err(PlanError::Layout { .. })
        ));
        obs.raids[0].state = "offline".into();
        assert!(matches!(
            plan_engine(&spec, &obs),
            Err(PlanError::RaidUnusable { .. })
        ));
        // Deleting a replica a raid uses is refused.
        obs.raids[0].state = "online".into();
        assert!(matches!(
            plan_replica_delete(R1, &obs),
            Err(PlanError::ReplicaInUse { .. })
        ));
    }

    #[test]
    fn a_single_replica_volume_exports_the_replica_directly() {
        let mut obs = with_lvstore();
        lvol(&mut obs, R1, 64);
        let spec = engine(vec![local(R1)]);
        let p = plan_engine(&spec, &obs).unwrap();
        assert!(!p.iter().any(|a| matches!(a, Action::CreateRaid { .. })));
        assert!(p.contains(&Action::AddNamespace {
            nqn: names::volume_nqn("v1"),
            bdev: "v2e-lvs-d1/v1-r-00000001".into()
        }));
        simulate(&mut obs, &p);
        assert_eq!(plan_engine(&spec, &obs).unwrap(), vec![]);
        // Growing to raid1 under an exported single replica is refused.
        assert!(matches!(
            plan_engine(&engine(vec![local(R1), remote(R2, 4420)]), &obs),
            Err(PlanError::Layout { .. })
        ));
    }

    fn set_size(obs: &mut Observed, bdev: &str, mib: u64) {
        for b in &mut obs.bdevs {
            if b.is_named(bdev) {
                b.size_bytes = mib << 20;
            }
        }
        for r in &mut obs.raids {
            if r.name == bdev {
                r.size_bytes = mib << 20;
            }
        }
    }

    #[test]
    fn a_grown_local_replica_makes_the_engine_wait_for_the_remote_one_and_the_raid() {
        let mut obs = with_lvstore();
        lvol(&mut obs, R1, 64);
        let spec = engine(vec![local(R1), remote(R2, 4420)]);
        let p = plan_engine(&spec, &obs).unwrap();
        assert!(!p.iter().any(|a| matches!(a, Action::AwaitSize { .. })));
        simulate(&mut obs, &p);
        assert_eq!(obs.raid("v1-raid").unwrap().size_bytes, 64 << 20);

        // The local replica grew (EnsureReplica); the remote bdev has not heard yet.
        simulate(
            &mut obs,
            &[Action::ResizeLvol {
                alias: "v2e-lvs-d1/v1-r-00000001".into(),
                size_mib: 128,
            }],
        );
        let wait = Action::AwaitSize {
            volume: "v1".into(),
            bdev: "v1-raid".into(),
            members: vec!["v2e-lvs-d1/v1-r-00000001".into(), "v1-r-00000002n1".into()],
            bytes: 128 << 20,
            timeout: GROW_WAIT,
        };
        assert_eq!(
            plan_engine(&spec, &obs).unwrap(),
            std::slice::from_ref(&wait)
        );
        assert_eq!(
            wait.to_string(),
            "wait until raid v1-raid and its members reach 128 MiB"
        );
        // The remote bdev has the new size, the raid not yet: still waiting.
        set_size(&mut obs, "v1-r-00000002n1", 128);
        assert_eq!(plan_engine(&spec, &obs).unwrap(), [wait]);
        // raid1 grew: nothing to do.
        set_size(&mut obs, "v1-raid", 128);
        assert_eq!(plan_engine(&spec, &obs).unwrap(), vec![]);

        // A remote member larger than the local one is no grow in progress: the raid
        // stays at the local size without waiting.
        set_size(&mut obs, "v1-r-00000002n1", 256);
        assert_eq!(plan_engine(&spec, &obs).unwrap(), vec![]);

        // A configuring raid is not a bdev: nothing to wait for.
        simulate(
            &mut obs,
            &[Action::ResizeLvol {
                alias: "v2e-lvs-d1/v1-r-00000001".into(),
                size_mib: 512,
            }],
        );
        obs.raids[0].state = "configuring".into();
        assert_eq!(size_wait(&spec, &obs, None, GROW_WAIT), None);
    }

    #[test]
    fn a_given_size_is_waited_for_without_a_local_replica_and_offsets_count() {
        let mut obs = with_lvstore();
        let spec = engine(vec![remote(R2, 4420), remote(R3, 4421)]);
        let p = plan_engine(&spec, &obs).unwrap();
        simulate(&mut obs, &p);
        // No local replica: without a size nothing tells this node of a grow.
        assert_eq!(size_wait(&spec, &obs, None, GROW_WAIT), None);
        let want = Some(128 << 20);
        let p = plan_engine_sized(&spec, &obs, want).unwrap();
        assert!(matches!(
            p.as_slice(),
            [Action::AwaitSize { bytes, .. }] if *bytes == 128 << 20
        ));
        set_size(&mut obs, "v1-r-00000002n1", 128);
        set_size(&mut obs, "v1-r-00000003n1", 128);
        set_size(&mut obs, "v1-raid", 128);
        assert_eq!(plan_engine_sized(&spec, &obs, want).unwrap(), vec![]);

        // With a superblock the members give the raid their size less the data offset.
        for s in &mut obs.raids[0].slots {
            s.data_offset_bytes = 1 << 20;
        }
        assert!(size_wait(&spec, &obs, want, GROW_WAIT).is_some());
        assert_eq!(size_wait(&spec, &obs, Some(127 << 20), GROW_WAIT), None);

        // One replica, remote, exported directly: its bdev is what must grow.
        let mut obs = with_lvstore();
        let one = engine(vec![remote(R2, 4420)]);
        let p = plan_engine(&one, &obs).unwrap();
        simulate(&mut obs, &p);
        let w = size_wait(&one, &obs, want, Duration::from_secs(1)).unwrap();
        assert_eq!(w.to_string(), "wait until v1-r-00000002n1 reaches 128 MiB");
    }

    #[test]
    fn replica_delete_removes_export_then_lvol() {
        let mut obs = with_lvstore();
        lvol(&mut obs, R1, 64);
        let nqn = names::replica_nqn(R1);
        exported(&mut obs, &nqn, "uuid-v1-r-00000001", 4420);
        let p = plan_replica_delete(R1, &obs).unwrap();
        assert_eq!(
            p,
            vec![
                Action::DeleteSubsystem { nqn },
                Action::DeleteLvol {
                    alias: "v2e-lvs-d1/v1-r-00000001".into()
                }
            ]
        );
        simulate(&mut obs, &p);
        assert_eq!(plan_replica_delete(R1, &obs).unwrap(), vec![]);
    }
}
