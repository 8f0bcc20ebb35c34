//! What the front-ends are told (pure): each replica's and engine's state, and the
//! inventory of every object with our naming, orphans marked.

use std::collections::BTreeSet;

use super::names::{self, SubsystemRole};
use super::observed::Observed;
use super::plan::show_size;
use super::spec::{EngineSpec, MemberSpec};

/// An export as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportStatus {
    /// Subsystem NQN.
    pub nqn: String,
    /// Listener address.
    pub address: String,
    /// Listener port.
    pub port: u16,
    /// Allowed hosts.
    pub hosts: Vec<String>,
}

/// A replica on this node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// Replica name.
    pub replica: String,
    /// Its volume.
    pub volume: String,
    /// Its disk (from the lvstore name), empty when missing.
    pub disk: String,
    /// The lvol's UUID.
    pub uuid: String,
    /// Size.
    pub size_mib: u64,
    /// Thin.
    pub thin: bool,
    /// `healthy` (the lvol exists, exported when wanted), `missing`.
    pub state: String,
    /// The export, when there is one.
    pub export: Option<ExportStatus>,
}

/// One member of an engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberStatus {
    /// Replica.
    pub replica: String,
    /// The bdev used.
    pub bdev: String,
    /// True for a replica on this node.
    pub local: bool,
    /// `healthy`, `rebuilding`, `reconnecting` (controller path down, still a member),
    /// `waiting` (a configuring raid waits for it), `missing`.
    pub state: String,
    /// The NVMe controller's state (remote members), e.g. `enabled`, `resetting`.
    pub controller_state: String,
    /// What the member gives the engine: its bdev's size on this node less the raid's data
    /// offset (a remote member's shows a grow once its namespace-changed event arrived);
    /// 0 when missing.
    pub size_bytes: u64,
}

/// A volume's engine on this node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineStatus {
    /// Volume.
    pub volume: String,
    /// `healthy`, `degraded`, `rebuilding`, `failed` (no usable data path), `absent`.
    pub state: String,
    /// The raid, when there is one.
    pub raid: String,
    /// The raid's state (`online`, `configuring`, `offline`), empty without.
    pub raid_state: String,
    /// Rebuild target and percent done.
    pub rebuild: Option<(String, u32)>,
    /// Members.
    pub members: Vec<MemberStatus>,
    /// The frontend subsystem.
    pub frontend: Option<ExportStatus>,
    /// The size the volume has on this node: the bdev the frontend exports (the raid,
    /// which SPDK's raid1 sizes to its smallest present member, or the only replica); 0
    /// when there is none.
    pub size_bytes: u64,
}

/// The export of subsystem `nqn`, when it exists.
pub fn export_status(obs: &Observed, nqn: &str) -> Option<ExportStatus> {
    let s = obs.subsystem(nqn)?;
    let l = s.listeners.first();
    Some(ExportStatus {
        nqn: nqn.to_string(),
        address: l.map(|l| l.address.clone()).unwrap_or_default(),
        port: l.and_then(|l| l.port.parse().ok()).unwrap_or(0),
        hosts: s.hosts.clone(),
    })
}

/// Replica `replica` as it is on this node.
pub fn replica_status(replica: &str, obs: &Observed) -> ReplicaStatus {
    let volume = names::replica_volume(replica)
        .unwrap_or_default()
        .to_string();
    let export = export_status(obs, &names::replica_nqn(replica));
    match obs.lvols_named(replica).next() {
        Some(l) => ReplicaStatus {
            replica: replica.to_string(),
            volume,
            disk: l.lvs.strip_prefix("v2e-lvs-").unwrap_or(&l.lvs).to_string(),
            uuid: l.uuid.clone(),
            size_mib: l.size_mib,
            thin: l.thin,
            state: "healthy".into(),
            export,
        },
        None => ReplicaStatus {
            replica: replica.to_string(),
            volume,
            state: "missing".into(),
            export,
            ..ReplicaStatus::default()
        },
    }
}

/// The members an engine has without a spec: the raid's slots and the volume's
/// controllers.
fn observed_members(volume: &str, obs: &Observed) -> Vec<MemberSpec> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    if let Some(r) = obs.raid(&names::raid_name(volume)) {
        for name in r.slots.iter().filter_map(|s| s.name.as_ref()) {
            let lvol = obs
                .lvols
                .iter()
                .find(|l| obs.identities(&l.alias()).contains(name));
            let m = match lvol {
                Some(l) => MemberSpec::Local {
                    replica: l.name.clone(),
                    disk: l.lvs.strip_prefix("v2e-lvs-").unwrap_or(&l.lvs).to_string(),
                },
                None => MemberSpec::Remote {
                    replica: name.strip_suffix("n1").unwrap_or(name).to_string(),
                    address: String::new(),
                    port: 0,
                },
            };
            seen.insert(m.replica().to_string());
            out.push(m);
        }
    }
    for c in &obs.controllers {
        if names::owner_of_controller(&c.name).is_some_and(|(_, v)| v == volume)
            && seen.insert(c.name.clone())
        {
            out.push(MemberSpec::Remote {
                replica: c.name.clone(),
                address: String::new(),
                port: 0,
            });
        }
    }
    out
}

/// Volume `volume`'s engine as it is, judged against `spec` when known (else against
/// what is there).
pub fn engine_status(volume: &str, spec: Option<&EngineSpec>, obs: &Observed) -> EngineStatus {
    let raid_name = names::raid_name(volume);
    let raid = obs.raid(&raid_name);
    let members = match spec {
        Some(s) => s.members.clone(),
        None => observed_members(volume, obs),
    };
    let frontend = export_status(obs, &names::volume_nqn(volume));
    let rebuild = raid.and_then(|r| r.rebuild.clone());
    let mut statuses = Vec::new();
    for m in &members {
        let bdev = m.bdev();
        let ids = obs.identities(&bdev);
        let ctrl = match m {
            MemberSpec::Remote { replica, .. } => obs
                .controller(&names::controller_name(replica))
                .map(|c| c.state().to_string()),
            MemberSpec::Local { .. } => None,
        };
        let exists = obs.bdev(&bdev).is_some();
        let slot = raid.and_then(|r| {
            r.slots.iter().find(|s| {
                s.name.as_ref().is_some_and(|n| ids.contains(n))
                    || s.uuid.as_ref().is_some_and(|u| ids.contains(u))
            })
        });
        let state = match (raid, slot) {
            (Some(_), Some(s)) if s.configured => {
                if rebuild.as_ref().is_some_and(|(t, _)| ids.contains(t)) {
                    "rebuilding"
                } else if ctrl.as_deref().is_some_and(|c| c != "enabled") {
                    "reconnecting"
                } else {
                    "healthy"
                }
            }
            (Some(_), Some(_)) => "waiting",
            (Some(_), None) => "missing",
            (None, _) if !exists => "missing",
            (None, _) if ctrl.as_deref().is_some_and(|c| c != "enabled") => "reconnecting",
            (None, _) => "healthy",
        };
        let size_bytes = obs.member_capacity(raid, &bdev).unwrap_or(0);
        statuses.push(MemberStatus {
            replica: m.replica().to_string(),
            bdev,
            local: matches!(m, MemberSpec::Local { .. }),
            state: state.into(),
            controller_state: ctrl.unwrap_or_default(),
            size_bytes,
        });
    }
    let all_healthy = statuses.iter().all(|m| m.state == "healthy");
    let any_healthy = statuses.iter().any(|m| m.state == "healthy");
    let state = match raid {
        _ if members.is_empty() && frontend.is_none() && raid.is_none() => "absent",
        Some(r) if r.state == "offline" => "failed",
        Some(_) if rebuild.is_some() => "rebuilding",
        Some(r) if r.state == "online" => {
            let full = usize::try_from(r.operational).unwrap_or(0) >= r.slots.len();
            if full && all_healthy {
                "healthy"
            } else {
                "degraded"
            }
        }
        Some(_) if any_healthy => "degraded",
        Some(_) => "failed",
        None if members.len() >= 2 => "failed",
        None if all_healthy && !statuses.is_empty() => "healthy",
        None => "failed",
    };
    // What the frontend exports: the raid; else its namespace's bdev; else the only member.
    let exported = match raid {
        Some(r) => Some(r.size_bytes),
        None => obs
            .subsystem(&names::volume_nqn(volume))
            .and_then(|s| s.namespaces.first())
            .and_then(|n| obs.bdev(n))
            .or_else(|| match members.as_slice() {
                [one] => obs.bdev(&one.bdev()),
                _ => None,
            })
            .map(|b| b.size_bytes),
    };
    EngineStatus {
        size_bytes: exported.unwrap_or(0),
        volume: volume.to_string(),
        state: state.into(),
        raid: raid.map(|r| r.name.clone()).unwrap_or_default(),
        raid_state: raid.map(|r| r.state.clone()).unwrap_or_default(),
        rebuild,
        members: statuses,
        frontend,
    }
}

/// Kind of an object with our naming.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ObjectKind {
    /// A replica lvol.
    Lvol,
    /// A replica export.
    ReplicaSubsystem,
    /// A volume frontend.
    FrontendSubsystem,
    /// A raid1.
    Raid,
    /// An NVMe controller to a remote replica.
    Controller,
}

impl ObjectKind {
    /// The API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lvol => "lvol",
            Self::ReplicaSubsystem => "replica_subsystem",
            Self::FrontendSubsystem => "frontend_subsystem",
            Self::Raid => "raid",
            Self::Controller => "controller",
        }
    }
}

/// An object of the engine with our naming.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct VolumeObject {
    /// Volume it belongs to by its name.
    pub volume: String,
    /// Kind.
    pub kind: ObjectKind,
    /// Name (lvol `lvs/name`, NQN, raid, controller).
    pub name: String,
    /// No live volume record names its volume.
    pub orphan: bool,
    /// A short description (size, state, listener).
    pub detail: String,
}

/// Every object with our naming, sorted by volume; `volumes` are the live volume
/// records' names.
pub fn inventory(obs: &Observed, volumes: &BTreeSet<String>) -> Vec<VolumeObject> {
    let mut out = Vec::new();
    let mut push = |volume: &str, kind, name: String, detail: String| {
        out.push(VolumeObject {
            volume: volume.to_string(),
            kind,
            name,
            orphan: !volumes.contains(volume),
            detail,
        });
    };
    for l in &obs.lvols {
        if let Some(v) = names::owner_of_lvol(&l.name) {
            let thin = if l.thin { "thin" } else { "thick" };
            push(
                v,
                ObjectKind::Lvol,
                l.alias(),
                format!("{} MiB {thin}", l.size_mib),
            );
        }
    }
    for s in &obs.subsystems {
        let Some(role) = names::subsystem_role(&s.nqn) else {
            continue;
        };
        let kind = match role {
            SubsystemRole::Replica { .. } => ObjectKind::ReplicaSubsystem,
            SubsystemRole::Frontend { .. } => ObjectKind::FrontendSubsystem,
        };
        let listeners: Vec<String> = s
            .listeners
            .iter()
            .map(|l| format!("{}:{}", l.address, l.port))
            .collect();
        push(
            role.volume(),
            kind,
            s.nqn.clone(),
            format!(
                "namespaces [{}], listeners [{}]",
                s.namespaces.join(", "),
                listeners.join(", ")
            ),
        );
    }
    for r in &obs.raids {
        if let Some(v) = names::owner_of_raid(&r.name) {
            push(
                v,
                ObjectKind::Raid,
                r.name.clone(),
                if r.state == "online" {
                    format!(
                        "{} {}, {} of {} members operational, {}",
                        r.level,
                        r.state,
                        r.operational,
                        r.slots.len(),
                        show_size(r.size_bytes)
                    )
                } else {
                    format!(
                        "{} {}, {} of {} members operational",
                        r.level,
                        r.state,
                        r.operational,
                        r.slots.len()
                    )
                },
            );
        }
    }
    for c in &obs.controllers {
        if let Some((_, v)) = names::owner_of_controller(&c.name) {
            let at: Vec<String> = c
                .paths
                .iter()
                .map(|p| format!("{}:{} {}", p.address, p.port, p.subnqn))
                .collect();
            push(
                v,
                ObjectKind::Controller,
                c.name.clone(),
                format!("{} ({})", c.state(), at.join(", ")),
            );
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volumes::observed::{
        Bdev, Controller, ControllerPath, Lvol, Raid, RaidSlot, Subsystem,
    };
    use crate::volumes::spec::{Listen, Reconnect};

    fn obs() -> Observed {
        Observed {
            lvols: vec![
                Lvol {
                    name: "v1-r-00000001".into(),
                    lvs: "v2e-lvs-d1".into(),
                    uuid: "u1".into(),
                    thin: true,
                    size_mib: 64,
                },
                Lvol {
                    name: "gone-r-00000009".into(),
                    lvs: "v2e-lvs-d1".into(),
                    uuid: "u9".into(),
                    thin: true,
                    size_mib: 8,
                },
                Lvol {
                    name: "scratch".into(),
                    lvs: "v2e-lvs-d1".into(),
                    uuid: "u0".into(),
                    thin: false,
                    size_mib: 8,
                },
            ],
            bdevs: vec![
                Bdev {
                    name: "u1".into(),
                    aliases: vec!["v2e-lvs-d1/v1-r-00000001".into()],
                    uuid: Some("u1".into()),
                    size_bytes: 64 << 20,
                },
                Bdev {
                    name: "v1-r-00000002n1".into(),
                    aliases: vec![],
                    uuid: Some("u2".into()),
                    size_bytes: 64 << 20,
                },
            ],
            subsystems: vec![
                Subsystem {
                    nqn: "nqn.2014-08.org.nvmexpress.discovery".into(),
                    ..Subsystem::default()
                },
                Subsystem {
                    nqn: names::volume_nqn("v1"),
                    namespaces: vec!["v1-raid".into()],
                    ..Subsystem::default()
                },
            ],
            controllers: vec![Controller {
                name: "v1-r-00000002".into(),
                paths: vec![ControllerPath {
                    state: "enabled".into(),
                    ..ControllerPath::default()
                }],
            }],
            raids: vec![Raid {
                name: "v1-raid".into(),
                state: "online".into(),
                level: "raid1".into(),
                operational: 2,
                slots: vec![
                    RaidSlot {
                        name: Some("v2e-lvs-d1/v1-r-00000001".into()),
                        uuid: Some("u1".into()),
                        configured: true,
                        data_offset_bytes: 0,
                    },
                    RaidSlot {
                        name: Some("v1-r-00000002n1".into()),
                        uuid: Some("u2".into()),
                        configured: true,
                        data_offset_bytes: 0,
                    },
                ],
                rebuild: None,
                size_bytes: 64 << 20,
            }],
            ..Observed::default()
        }
    }

    #[test]
    fn healthy_degraded_rebuilding() {
        let mut o = obs();
        let st = engine_status("v1", None, &o);
        assert_eq!(st.state, "healthy", "{st:?}");
        assert_eq!(st.members.len(), 2);
        assert!(st.members[0].local);
        // Sizes: the raid's, and what each member gives it.
        assert_eq!(st.size_bytes, 64 << 20);
        let sizes: Vec<u64> = st.members.iter().map(|m| m.size_bytes).collect();
        assert_eq!(sizes, [64 << 20, 64 << 20]);
        // A grown local replica shows before the raid (waiting for the remote one) does.
        o.bdevs[0].size_bytes = 128 << 20;
        let st = engine_status("v1", None, &o);
        assert_eq!(
            (
                st.size_bytes,
                st.members[0].size_bytes,
                st.members[1].size_bytes
            ),
            (64 << 20, 128 << 20, 64 << 20)
        );
        o.bdevs[0].size_bytes = 64 << 20;
        // The remote member's controller is lost: its slot empties.
        o.controllers.clear();
        o.bdevs.retain(|b| b.name != "v1-r-00000002n1");
        o.raids[0].slots[1] = RaidSlot::default();
        o.raids[0].operational = 1;
        let spec = EngineSpec {
            volume: "v1".into(),
            host_nqn: "nqn.x".into(),
            members: vec![
                MemberSpec::Local {
                    replica: "v1-r-00000001".into(),
                    disk: "d1".into(),
                },
                MemberSpec::Remote {
                    replica: "v1-r-00000002".into(),
                    address: "a".into(),
                    port: 1,
                },
            ],
            frontend: Listen {
                address: "a".into(),
                port: 2,
                hosts: vec![],
            },
            reconnect: Reconnect::default(),
        };
        let st = engine_status("v1", Some(&spec), &o);
        assert_eq!(st.state, "degraded");
        assert_eq!(st.members[1].state, "missing");
        // A replacement joins and rebuilds.
        o.raids[0].slots[1] = RaidSlot {
            name: Some("v1-r-00000003n1".into()),
            configured: true,
            ..RaidSlot::default()
        };
        o.raids[0].operational = 2;
        o.raids[0].rebuild = Some(("v1-r-00000003n1".into(), 40));
        let st = engine_status("v1", None, &o);
        assert_eq!(st.state, "rebuilding");
        assert_eq!(st.rebuild, Some(("v1-r-00000003n1".into(), 40)));
        assert_eq!(st.members[1].state, "rebuilding");
        assert_eq!(engine_status("v9", None, &o).state, "absent");
    }

    #[test]
    fn the_inventory_marks_orphans() {
        let inv = inventory(&obs(), &BTreeSet::from(["v1".to_string()]));
        let got: Vec<(&str, &str, bool)> = inv
            .iter()
            .map(|o| (o.kind.as_str(), o.name.as_str(), o.orphan))
            .collect();
        assert_eq!(
            got,
            [
                ("lvol", "v2e-lvs-d1/gone-r-00000009", true),
                ("lvol", "v2e-lvs-d1/v1-r-00000001", false),
                ("frontend_subsystem", "nqn.2026-11.io.v2engine:v1", false),
                ("raid", "v1-raid", false),
                ("controller", "v1-r-00000002", false),
            ]
        );
        let raid = inv.iter().find(|o| o.kind == ObjectKind::Raid).unwrap();
        assert_eq!(
            raid.detail,
            "raid1 online, 2 of 2 members operational, 64 MiB"
        );
        assert_eq!(replica_status("v1-r-00000001", &obs()).state, "healthy");
        assert_eq!(replica_status("v1-r-00000005", &obs()).state, "missing");
    }
}
