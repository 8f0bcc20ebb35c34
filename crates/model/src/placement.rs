//! Replica placement: a chain of named filters and a sort, each a small pure function.
//!
//! Nodes pass the node filters (engine running, node selector, locality, one replica per
//! node); each surviving node's disks pass the disk filters (scheduling allowed, not
//! evicting, disk selector, space). The sort prefers the attach node for `best-effort`
//! locality, then emptier disks, then names (so placement is deterministic). Existing
//! healthy replicas never move: they are kept first and only the shortfall is placed.
//! When not every replica can be placed, the error says per node why it was left out.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::size::format_size;
use crate::storage_class::{DataLocality, StorageClass};

/// A disk as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskCandidate {
    /// Disk name on its node.
    pub name: String,
    /// `allow_scheduling`.
    pub allow_scheduling: bool,
    /// `eviction_requested`.
    pub eviction_requested: bool,
    /// Disk tags.
    pub tags: Vec<String>,
    /// lvstore capacity in bytes.
    pub capacity_bytes: u64,
    /// Unallocated bytes in the lvstore.
    pub free_bytes: u64,
    /// `storage_reserved_bytes`.
    pub reserved_bytes: u64,
    /// Sum of the sizes of the replicas already on this disk (thin ones count whole).
    pub provisioned_bytes: u64,
}

/// A node as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCandidate {
    /// Node name.
    pub name: String,
    /// The executor answered.
    pub reachable: bool,
    /// Engine enabled and running.
    pub engine_running: bool,
    /// Node tags.
    pub tags: Vec<String>,
    /// Its disks.
    pub disks: Vec<DiskCandidate>,
}

/// A replica the volume already has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingReplica {
    /// Node.
    pub node: String,
    /// Disk.
    pub disk: String,
    /// Healthy replicas are kept; others are replaced.
    pub healthy: bool,
}

/// What to place.
#[derive(Debug, Clone)]
pub struct PlacementRequest<'a> {
    /// Volume name (for messages).
    pub volume: &'a str,
    /// Volume size.
    pub size_bytes: u64,
    /// The volume's class.
    pub class: &'a StorageClass,
    /// Where the volume is attached, if anywhere.
    pub attach_node: Option<&'a str>,
    /// Replicas that exist already.
    pub existing: &'a [ExistingReplica],
    /// Thin over-provisioning limit: provisioned ≤ (capacity − reserved) × percent / 100.
    pub over_provisioning_percent: u64,
}

/// One placed replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedReplica {
    /// Node.
    pub node: String,
    /// Disk.
    pub disk: String,
    /// True for an existing healthy replica that stays where it is.
    pub existing: bool,
}

/// Placement failed: how many were needed and why each node was left out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PlacementError {
    /// Volume name.
    pub volume: String,
    /// Replicas wanted.
    pub wanted: usize,
    /// Replicas that could be placed (kept + new).
    pub placeable: usize,
    /// Node → why it takes no (further) replica.
    pub excluded: BTreeMap<String, String>,
}

impl fmt::Display for PlacementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot place {} replicas of volume {}: only {} eligible",
            self.wanted, self.volume, self.placeable
        )?;
        for (node, why) in &self.excluded {
            write!(f, "; {node}: {why}")?;
        }
        Ok(())
    }
}

/// A node filter: `Err(reason)` excludes the node.
pub type NodeFilter = fn(&PlacementRequest<'_>, &NodeCandidate) -> Result<(), String>;
/// A disk filter: `Err(reason)` excludes the disk.
pub type DiskFilter = fn(&PlacementRequest<'_>, &DiskCandidate) -> Result<(), String>;

/// Node filters, in order.
pub const NODE_FILTERS: &[(&str, NodeFilter)] = &[
    ("reachable", node_reachable),
    ("engine_running", node_engine_running),
    ("node_selector", node_selector),
    ("strict_local", node_strict_local),
];

/// Disk filters, in order.
pub const DISK_FILTERS: &[(&str, DiskFilter)] = &[
    ("allow_scheduling", disk_allow_scheduling),
    ("not_evicting", disk_not_evicting),
    ("disk_selector", disk_selector),
    ("space", disk_space),
];

/// The executor answered.
pub fn node_reachable(_: &PlacementRequest<'_>, n: &NodeCandidate) -> Result<(), String> {
    if n.reachable {
        Ok(())
    } else {
        Err("unreachable".into())
    }
}

/// The engine is enabled and running.
pub fn node_engine_running(_: &PlacementRequest<'_>, n: &NodeCandidate) -> Result<(), String> {
    if n.engine_running {
        Ok(())
    } else {
        Err("V2 engine not running".into())
    }
}

/// Node tags ⊇ the class's node_selector.
pub fn node_selector(r: &PlacementRequest<'_>, n: &NodeCandidate) -> Result<(), String> {
    let missing: Vec<&String> = r
        .class
        .node_selector
        .iter()
        .filter(|t| !n.tags.contains(t))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("lacks node tags {missing:?} of node_selector"))
    }
}

/// `strict-local` places only on the attach node.
pub fn node_strict_local(r: &PlacementRequest<'_>, n: &NodeCandidate) -> Result<(), String> {
    if r.class.data_locality != DataLocality::StrictLocal {
        return Ok(());
    }
    match r.attach_node {
        Some(a) if a == n.name => Ok(()),
        Some(a) => Err(format!(
            "data_locality strict-local requires the attach node {a}"
        )),
        None => Err("data_locality strict-local requires an attach_node".into()),
    }
}

/// `allow_scheduling`.
pub fn disk_allow_scheduling(_: &PlacementRequest<'_>, d: &DiskCandidate) -> Result<(), String> {
    if d.allow_scheduling {
        Ok(())
    } else {
        Err("scheduling disabled".into())
    }
}

/// Not `eviction_requested`.
pub fn disk_not_evicting(_: &PlacementRequest<'_>, d: &DiskCandidate) -> Result<(), String> {
    if d.eviction_requested {
        Err("eviction requested".into())
    } else {
        Ok(())
    }
}

/// Disk tags ⊇ the class's disk_selector.
pub fn disk_selector(r: &PlacementRequest<'_>, d: &DiskCandidate) -> Result<(), String> {
    let missing: Vec<&String> = r
        .class
        .disk_selector
        .iter()
        .filter(|t| !d.tags.contains(t))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("lacks disk tags {missing:?} of disk_selector"))
    }
}

/// Thick: free − reserved ≥ size. Thin: provisioned + size ≤ (capacity − reserved) × limit.
pub fn disk_space(r: &PlacementRequest<'_>, d: &DiskCandidate) -> Result<(), String> {
    let usable = d.capacity_bytes.saturating_sub(d.reserved_bytes);
    if r.class.thin_provision {
        let limit = usable.saturating_mul(r.over_provisioning_percent) / 100;
        let after = d.provisioned_bytes.saturating_add(r.size_bytes);
        if after <= limit {
            Ok(())
        } else {
            Err(format!(
                "thin provisioning limit: {} provisioned + {} > {} ({}% of {} usable)",
                format_size(d.provisioned_bytes),
                format_size(r.size_bytes),
                format_size(limit),
                r.over_provisioning_percent,
                format_size(usable)
            ))
        }
    } else {
        let free = d.free_bytes.saturating_sub(d.reserved_bytes);
        if free >= r.size_bytes {
            Ok(())
        } else {
            Err(format!(
                "{} free after reservation, needs {}",
                format_size(free),
                format_size(r.size_bytes)
            ))
        }
    }
}

/// Score for the sort: lower is better.
fn sort_key<'n>(
    r: &PlacementRequest<'_>,
    n: &'n NodeCandidate,
    d: &'n DiskCandidate,
) -> (u8, u64, &'n str, &'n str) {
    let local = match (r.class.data_locality, r.attach_node) {
        (DataLocality::BestEffort, Some(a)) if a == n.name => 0,
        _ => 1,
    };
    let free_after = d
        .capacity_bytes
        .saturating_sub(d.reserved_bytes)
        .saturating_sub(d.provisioned_bytes);
    (local, u64::MAX - free_after, &n.name, &d.name)
}

/// Places `class.number_of_replicas` replicas of the volume on `nodes`.
pub fn place(
    req: &PlacementRequest<'_>,
    nodes: &[NodeCandidate],
) -> Result<Vec<PlacedReplica>, PlacementError> {
    let wanted = usize::try_from(req.class.number_of_replicas).unwrap_or(0);
    let mut excluded: BTreeMap<String, String> = BTreeMap::new();
    let by_name: BTreeMap<&str, &NodeCandidate> =
        nodes.iter().map(|n| (n.name.as_str(), n)).collect();

    // Keep healthy existing replicas on nodes that are still usable.
    let mut placed: Vec<PlacedReplica> = Vec::new();
    let mut used: BTreeSet<String> = BTreeSet::new();
    for e in req.existing {
        if !e.healthy || used.contains(&e.node) {
            continue;
        }
        let alive = by_name.get(e.node.as_str()).is_some_and(|n| n.reachable);
        if alive && placed.len() < wanted {
            used.insert(e.node.clone());
            placed.push(PlacedReplica {
                node: e.node.clone(),
                disk: e.disk.clone(),
                existing: true,
            });
        }
    }
    for n in &used {
        excluded.insert(n.clone(), "already holds a replica of this volume".into());
    }
    // A node with an unhealthy replica of this volume is not reused for its replacement.
    for e in req.existing.iter().filter(|e| !e.healthy) {
        if !used.contains(&e.node) {
            excluded.insert(
                e.node.clone(),
                "holds a failed replica of this volume".into(),
            );
        }
    }

    let mut choices: Vec<(&NodeCandidate, &DiskCandidate)> = Vec::new();
    for n in nodes {
        if excluded.contains_key(&n.name) {
            continue;
        }
        if let Some(why) = NODE_FILTERS.iter().find_map(|(_, f)| f(req, n).err()) {
            excluded.insert(n.name.clone(), why);
            continue;
        }
        let mut disk_reasons = Vec::new();
        let mut best: Option<&DiskCandidate> = None;
        for d in &n.disks {
            match DISK_FILTERS.iter().find_map(|(_, f)| f(req, d).err()) {
                Some(why) => disk_reasons.push(format!("disk {}: {why}", d.name)),
                None => {
                    if best.is_none_or(|b| sort_key(req, n, d) < sort_key(req, n, b)) {
                        best = Some(d);
                    }
                }
            }
        }
        match best {
            Some(d) => choices.push((n, d)),
            None if n.disks.is_empty() => {
                excluded.insert(n.name.clone(), "has no disks".into());
            }
            None => {
                excluded.insert(
                    n.name.clone(),
                    format!("no disk fits ({})", disk_reasons.join(", ")),
                );
            }
        }
    }
    choices.sort_by(|a, b| sort_key(req, a.0, a.1).cmp(&sort_key(req, b.0, b.1)));

    let missing = wanted.saturating_sub(placed.len());
    if choices.len() < missing {
        return Err(PlacementError {
            volume: req.volume.to_string(),
            wanted,
            placeable: placed.len() + choices.len(),
            excluded,
        });
    }
    placed.extend(
        choices
            .into_iter()
            .take(missing)
            .map(|(n, d)| PlacedReplica {
                node: n.name.clone(),
                disk: d.name.clone(),
                existing: false,
            }),
    );
    Ok(placed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GIB: u64 = 1 << 30;

    fn disk(name: &str, cap_gib: u64) -> DiskCandidate {
        DiskCandidate {
            name: name.into(),
            allow_scheduling: true,
            eviction_requested: false,
            tags: vec![],
            capacity_bytes: cap_gib * GIB,
            free_bytes: cap_gib * GIB,
            reserved_bytes: 0,
            provisioned_bytes: 0,
        }
    }

    fn node(name: &str, disks: Vec<DiskCandidate>) -> NodeCandidate {
        NodeCandidate {
            name: name.into(),
            reachable: true,
            engine_running: true,
            tags: vec![],
            disks,
        }
    }

    fn class(replicas: i64) -> StorageClass {
        StorageClass {
            number_of_replicas: replicas,
            ..StorageClass::named("c")
        }
    }

    fn req<'a>(c: &'a StorageClass, existing: &'a [ExistingReplica]) -> PlacementRequest<'a> {
        PlacementRequest {
            volume: "v1",
            size_bytes: GIB,
            class: c,
            attach_node: Some("node-1"),
            existing,
            over_provisioning_percent: 100,
        }
    }

    #[test]
    fn distinct_nodes_and_emptier_disks_first() {
        let c = class(2);
        let nodes = vec![
            node("node-1", vec![disk("a", 10)]),
            node("node-2", vec![disk("a", 20), disk("b", 50)]),
            node("node-3", vec![disk("a", 30)]),
        ];
        let p = place(&req(&c, &[]), &nodes).unwrap();
        assert_eq!(
            p,
            vec![
                PlacedReplica {
                    node: "node-2".into(),
                    disk: "b".into(),
                    existing: false
                },
                PlacedReplica {
                    node: "node-3".into(),
                    disk: "a".into(),
                    existing: false
                },
            ]
        );
    }

    #[test]
    fn best_effort_prefers_the_attach_node() {
        let c = StorageClass {
            data_locality: DataLocality::BestEffort,
            ..class(2)
        };
        let nodes = vec![
            node("node-1", vec![disk("a", 1)]),
            node("node-2", vec![disk("a", 50)]),
            node("node-3", vec![disk("a", 40)]),
        ];
        let p = place(&req(&c, &[]), &nodes).unwrap();
        assert_eq!(p[0].node, "node-1");
        assert_eq!(p[1].node, "node-2");
    }

    #[test]
    fn strict_local_requires_the_attach_node() {
        let c = StorageClass {
            data_locality: DataLocality::StrictLocal,
            ..class(1)
        };
        let nodes = vec![node("node-1", vec![]), node("node-2", vec![disk("a", 50)])];
        let e = place(&req(&c, &[]), &nodes).unwrap_err();
        assert_eq!(e.excluded["node-1"], "has no disks");
        assert!(e.excluded["node-2"].contains("strict-local requires the attach node node-1"));
    }

    #[test]
    fn existing_healthy_replicas_stay_and_failed_ones_are_replaced() {
        let c = class(2);
        let existing = vec![
            ExistingReplica {
                node: "node-3".into(),
                disk: "a".into(),
                healthy: true,
            },
            ExistingReplica {
                node: "node-2".into(),
                disk: "a".into(),
                healthy: false,
            },
        ];
        let mut nodes = vec![
            node("node-1", vec![disk("a", 10)]),
            node("node-2", vec![disk("a", 99)]),
            node("node-3", vec![disk("a", 1)]),
        ];
        nodes[1].reachable = false;
        let p = place(&req(&c, &existing), &nodes).unwrap();
        assert_eq!(
            p[0],
            PlacedReplica {
                node: "node-3".into(),
                disk: "a".into(),
                existing: true
            }
        );
        assert_eq!(
            p[1],
            PlacedReplica {
                node: "node-1".into(),
                disk: "a".into(),
                existing: false
            }
        );
    }

    #[test]
    fn error_says_why_each_node_is_excluded() {
        let c = StorageClass {
            thin_provision: false,
            node_selector: vec!["ssd".into()],
            ..class(3)
        };
        let mut n1 = node(
            "node-1",
            vec![DiskCandidate {
                allow_scheduling: false,
                ..disk("a", 10)
            }],
        );
        n1.tags = vec!["ssd".into()];
        let mut n2 = node("node-2", vec![disk("a", 10)]);
        n2.engine_running = false;
        let n3 = node("node-3", vec![disk("a", 10)]);
        let mut n4 = node(
            "node-4",
            vec![DiskCandidate {
                free_bytes: GIB / 2,
                ..disk("a", 10)
            }],
        );
        n4.tags = vec!["ssd".into()];
        let e = place(&req(&c, &[]), &[n1, n2, n3, n4]).unwrap_err();
        assert_eq!(e.placeable, 0);
        assert_eq!(
            e.excluded["node-1"],
            "no disk fits (disk a: scheduling disabled)"
        );
        assert_eq!(e.excluded["node-2"], "V2 engine not running");
        assert!(e.excluded["node-3"].contains("node_selector"));
        assert!(
            e.excluded["node-4"].contains("512Mi free after reservation, needs 1Gi"),
            "{}",
            e.excluded["node-4"]
        );
        let msg = e.to_string();
        assert!(
            msg.starts_with("cannot place 3 replicas of volume v1: only 0 eligible; node-1: "),
            "{msg}"
        );
    }

    #[test]
    fn thin_over_provisioning_limit() {
        let c = class(1);
        let d = DiskCandidate {
            provisioned_bytes: 10 * GIB,
            ..disk("a", 10)
        };
        let r = PlacementRequest {
            over_provisioning_percent: 100,
            ..req(&c, &[])
        };
        assert!(
            disk_space(&r, &d)
                .unwrap_err()
                .contains("thin provisioning limit")
        );
        let r = PlacementRequest {
            over_provisioning_percent: 200,
            ..req(&c, &[])
        };
        assert!(disk_space(&r, &d).is_ok());
    }

    fn arb_node(i: usize) -> impl Strategy<Value = NodeCandidate> {
        (
            any::<bool>(),
            any::<bool>(),
            proptest::collection::vec((1u64..100, any::<bool>(), 0u64..50), 0..3),
        )
            .prop_map(move |(reach, run, disks)| NodeCandidate {
                name: format!("node-{i}"),
                reachable: reach,
                engine_running: run,
                tags: vec![],
                disks: disks
                    .into_iter()
                    .enumerate()
                    .map(|(j, (cap, sched, prov))| DiskCandidate {
                        name: format!("d{j}"),
                        allow_scheduling: sched,
                        provisioned_bytes: prov * GIB,
                        ..disk("x", cap)
                    })
                    .collect(),
            })
    }

    fn arb_nodes() -> impl Strategy<Value = Vec<NodeCandidate>> {
        (1usize..7).prop_flat_map(|n| (0..n).map(arb_node).collect::<Vec<_>>())
    }

    proptest! {
        #[test]
        fn placement_invariants(nodes in arb_nodes(), replicas in 1i64..5, keep in proptest::option::of(0usize..6)) {
            let c = class(replicas);
            let existing: Vec<ExistingReplica> = keep
                .and_then(|k| nodes.get(k))
                .and_then(|n| n.disks.first().map(|d| ExistingReplica { node: n.name.clone(), disk: d.name.clone(), healthy: true }))
                .into_iter()
                .collect();
            let r = req(&c, &existing);
            match place(&r, &nodes) {
                Ok(p) => {
                    prop_assert_eq!(p.len() as i64, replicas);
                    let distinct: BTreeSet<&String> = p.iter().map(|x| &x.node).collect();
                    prop_assert_eq!(distinct.len(), p.len());
                    for x in p.iter().filter(|x| !x.existing) {
                        let n = nodes.iter().find(|n| n.name == x.node).unwrap();
                        prop_assert!(NODE_FILTERS.iter().all(|(_, f)| f(&r, n).is_ok()));
                        let d = n.disks.iter().find(|d| d.name == x.disk).unwrap();
                        prop_assert!(DISK_FILTERS.iter().all(|(_, f)| f(&r, d).is_ok()));
                    }
                    for e in &existing {
                        let alive = nodes.iter().any(|n| n.name == e.node && n.reachable);
                        if alive {
                            prop_assert!(p.iter().any(|x| x.existing && x.node == e.node && x.disk == e.disk));
                        }
                    }
                    // Deterministic.
                    prop_assert_eq!(place(&r, &nodes).unwrap(), p);
                }
                Err(e) => {
                    prop_assert!(e.placeable < replicas as usize);
                    // Every node not used is explained.
                    for n in &nodes {
                        let eligible = NODE_FILTERS.iter().all(|(_, f)| f(&r, n).is_ok())
                            && n.disks.iter().any(|d| DISK_FILTERS.iter().all(|(_, f)| f(&r, d).is_ok()))
                            && !existing.iter().any(|x| x.node == n.name);
                        if !eligible {
                            prop_assert!(e.excluded.contains_key(&n.name), "{} unexplained", n.name);
                        }
                    }
                }
            }
        }
    }
}
