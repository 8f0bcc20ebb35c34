//! `volume`: a cluster record plus the replicas, exports and engine that make it real.
//!
//! Placement happens at plan time ([`plan`]): the class's filters and sort run over the
//! observed fleet (engine state, node tags, disks with their records' scheduling flags and
//! the space the replicas already there take), keeping the volume's healthy replicas where
//! they are. [`apply`] writes the record to every node, ensures the replicas on their nodes
//! in parallel (lvol, and an NVMe-oF export when the engine reaches them over the network),
//! then the engine on the attach node. [`delete`] tears down in reverse and writes a
//! tombstone. Replica names are derived from volume, node and disk, so a retried apply
//! finds what an interrupted one made.

use std::collections::BTreeMap;

use futures::future::join_all;
use model::placement::{DiskCandidate, ExistingReplica, NodeCandidate, PlacementRequest, place};
use model::status::{ReplicaStatus, VolumeStatus};
use model::{
    BlockDisk, NQN_PREFIX, NodeV2, RecordKey, RecordKind, StorageClass, Volume,
    storage_class::Frontend,
};

use super::objects;
use super::session::{Observed, Session};
use super::{OpsError, Outcome, Warning, json_of, spec_of};
use crate::v1;

/// The record key: `volume/<name>`.
pub fn key(name: &str) -> RecordKey {
    RecordKey::new(RecordKind::Volume, name)
}

/// The frontend NQN of a volume.
pub fn volume_nqn(volume: &str) -> String {
    format!("{NQN_PREFIX}{volume}")
}

/// The host NQN the attach node presents to the replicas' exports.
pub fn host_nqn(attach_node: &str) -> String {
    format!("{NQN_PREFIX}host-{attach_node}")
}

/// FNV-1a, 64 bits (stable across runs and platforms).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The replica name `<volume>-r-<8 hex>`, derived from volume, node and disk so that a
/// retried apply names the same replica.
pub fn replica_name(volume: &str, node: &str, disk: &str) -> String {
    let h = fnv1a(format!("{volume}\0{node}\0{disk}").as_bytes());
    format!("{volume}-r-{:08x}", (h ^ (h >> 32)) & 0xffff_ffff)
}

/// The volume's objects found on the nodes (one `ListVolumeObjects` per node).
#[derive(Debug, Default, Clone)]
pub struct Inventory {
    /// Node → its replicas (of every volume).
    pub replicas: BTreeMap<String, Vec<v1::ReplicaState>>,
    /// Node → its engines (of every volume).
    pub engines: BTreeMap<String, Vec<v1::EngineState>>,
    /// Nodes whose objects could not be listed, with why.
    pub unlisted: BTreeMap<String, String>,
    /// Node → what its `ListVolumeObjects` answered: its objects (orphans marked), or why
    /// not, classified (see `ops::objects`).
    pub answers: BTreeMap<String, super::objects::Answer>,
}

impl Inventory {
    /// The replicas of `volume`, with their nodes.
    pub fn replicas_of<'a>(
        &'a self,
        volume: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a v1::ReplicaState)> + 'a {
        self.replicas.iter().flat_map(move |(n, rs)| {
            rs.iter()
                .filter(move |r| r.volume == volume)
                .map(move |r| (n.as_str(), r))
        })
    }

    /// The engines of `volume`, with their nodes.
    pub fn engines_of<'a>(
        &'a self,
        volume: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a v1::EngineState)> + 'a {
        self.engines.iter().flat_map(move |(n, es)| {
            es.iter()
                .filter(move |e| e.volume == volume && e.state != "absent")
                .map(move |e| (n.as_str(), e))
        })
    }
}

/// The volume inventory for plans and reads: fetched once per run and kept until something
/// is written (so refresh stays one `ListVolumeObjects` per node, not per volume).
pub async fn inventory(s: &Session) -> std::sync::Arc<Inventory> {
    let mut cache = s.inventory_cache().lock().await;
    if let Some(inv) = cache.as_ref() {
        return inv.clone();
    }
    let inv = std::sync::Arc::new(fetch_inventory(s).await);
    *cache = Some(inv.clone());
    inv
}

/// Lists the volume objects of every node in parallel; a node that fails is recorded in
/// `unlisted` (placement then leaves it out, naming why). The run's observation comes
/// first, so that a node found down there is not dialled again.
pub async fn fetch_inventory(s: &Session) -> Inventory {
    let obs = s.observed().await.ok();
    let futs = s.fleet.nodes().map(|node| {
        let obs = obs.clone();
        async move {
            let state = obs
                .as_ref()
                .and_then(|o| o.status(node))
                .map(|st| st.engine_state.clone());
            let r = match s.fleet.client(node).await {
                Ok(mut c) => c
                    .list_volume_objects()
                    .await
                    .map_err(|e| (e.detail(), objects::classify(&e, state.as_deref()))),
                Err(e) => Err((e.to_string(), objects::fleet_answer(e, state.as_deref()))),
            };
            (node.to_string(), r)
        }
    });
    let mut inv = Inventory::default();
    for (node, r) in join_all(futs).await {
        match r {
            Ok(l) => {
                inv.replicas.insert(node.clone(), l.replicas);
                inv.engines.insert(node.clone(), l.engines);
                inv.answers.insert(node, objects::Answer::Listed(l.objects));
            }
            Err((text, answer)) => {
                inv.unlisted.insert(node.clone(), text);
                inv.answers.insert(node, answer);
            }
        }
    }
    inv
}

fn class_of(obs: &Observed, spec: &Volume) -> Result<StorageClass, OpsError> {
    let rec = obs
        .live(&super::storage_class::key(&spec.storage_class))
        .ok_or_else(|| OpsError::Invalid {
            attribute: "storage_class".into(),
            reason: format!(
                "storage class {:?} is not stored on the nodes (declare it, or apply it first)",
                spec.storage_class
            ),
        })?;
    spec_of(rec)
}

fn size_of(spec: &Volume) -> Result<u64, OpsError> {
    spec.size_bytes().map_err(|reason| OpsError::Invalid {
        attribute: "size".into(),
        reason,
    })
}

/// Sizes of the volumes named by live records (for the space replicas take).
fn volume_sizes(obs: &Observed) -> BTreeMap<String, u64> {
    obs.merged
        .records
        .values()
        .filter(|r| r.key.kind == RecordKind::Volume && !r.deleted)
        .filter_map(|r| serde_json::from_value::<Volume>(r.spec.clone()).ok())
        .filter_map(|v| v.size_bytes().ok().map(|b| (v.name, b)))
        .collect()
}

/// The fleet as placement sees it.
pub fn candidates(obs: &Observed, inv: &Inventory) -> Vec<NodeCandidate> {
    let sizes = volume_sizes(obs);
    let mut out = Vec::new();
    for (node, o) in &obs.nodes {
        let status = o.observation.status.as_ref();
        let tags = obs
            .live(&super::node_v2::key(node))
            .and_then(|r| serde_json::from_value::<NodeV2>(r.spec.clone()).ok())
            .map(|n| n.tags)
            .unwrap_or_default();
        let replicas = inv.replicas.get(node).map(Vec::as_slice).unwrap_or(&[]);
        let disks = status
            .map(|st| st.disks.as_slice())
            .unwrap_or(&[])
            .iter()
            .filter(|d| d.state == "ready" || d.state == "in_use")
            .filter_map(|d| {
                let (_, name) = d.name.split_once('/')?;
                let rec = obs.live(&super::block_disk::key(node, name))?;
                let bd: BlockDisk = serde_json::from_value(rec.spec.clone()).ok()?;
                let provisioned = replicas
                    .iter()
                    .filter(|r| r.disk == name)
                    .map(|r| {
                        sizes
                            .get(&r.volume)
                            .copied()
                            .unwrap_or(r.size_mib.saturating_mul(1 << 20))
                    })
                    .sum();
                Some(DiskCandidate {
                    name: name.to_string(),
                    allow_scheduling: bd.allow_scheduling,
                    eviction_requested: bd.eviction_requested,
                    tags: bd.tags,
                    capacity_bytes: d.capacity_bytes,
                    free_bytes: d.free_bytes,
                    reserved_bytes: u64::try_from(bd.storage_reserved_bytes).unwrap_or(0),
                    provisioned_bytes: provisioned,
                })
            })
            .collect();
        out.push(NodeCandidate {
            name: node.clone(),
            // The executor answered; its objects are listed only while its engine runs.
            reachable: status.is_some(),
            engine_running: status.is_some_and(|st| st.engine_state == "running")
                && !inv.unlisted.contains_key(node),
            tags,
            disks,
        });
    }
    // Nodes that are down are candidates too, so that placement says why they are out.
    for node in obs.down.keys() {
        out.push(NodeCandidate {
            name: node.clone(),
            reachable: false,
            engine_running: false,
            tags: vec![],
            disks: vec![],
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The replica state as the resource shows it.
fn shown_state(r: &v1::ReplicaState) -> String {
    match r.state.as_str() {
        "healthy" => "healthy".into(),
        "" | "missing" => "failed".into(),
        other => other.into(),
    }
}

/// A planned placement: each replica with its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The status the plan shows.
    pub status: VolumeStatus,
    /// Replica names, in the order of `status.replicas`.
    pub names: Vec<String>,
}

/// Plans `spec` over the fleet without changing anything: the storage class must exist,
/// shrinking is refused, and the replicas are placed (kept where healthy ones exist). A
/// placement failure names why each node was left out.
///
/// `known` are the replicas the caller last saw (Terraform's prior state): a replica on a
/// node that is down now cannot be listed, so it is only known from there; it is shown as
/// `unreachable` and replaced.
pub async fn plan(
    s: &Session,
    spec: &Volume,
    prior: Option<&Volume>,
    known: &[ReplicaStatus],
) -> Result<Outcome<VolumeStatus>, OpsError> {
    let (p, warnings) = place_volume(s, spec, prior, known).await?;
    Ok(Outcome {
        value: p.status,
        warnings,
    })
}

/// The volume as it will be stored: the frontend resolved from the class.
pub async fn resolved(s: &Session, spec: &Volume) -> Result<Volume, OpsError> {
    let obs = s.observed().await?;
    let class = class_of(&obs, spec)?;
    Ok(Volume {
        frontend: Some(spec.frontend.unwrap_or(class.frontend)),
        ..spec.clone()
    })
}

/// The replicas of `volume` as placement sees them: listed ones (healthy unless missing,
/// failed in the engine, or left out of an engine that exists) and, from `known`, those
/// on nodes that could not be listed (not healthy). Engine members come first, so that
/// placement keeps what the raid holds.
fn existing_replicas(
    volume: &str,
    attach: Option<&str>,
    inv: &Inventory,
    known: &[ReplicaStatus],
) -> Vec<(ExistingReplica, String, String)> {
    let engine = attach.and_then(|a| {
        inv.engines.get(a).and_then(|es| {
            es.iter()
                .find(|e| e.volume == volume && e.state != "absent")
        })
    });
    let mut out = Vec::new();
    for (node, r) in inv.replicas_of(volume) {
        let member = engine.map(|e| e.members.iter().find(|m| m.replica == r.replica));
        // Only a running raid tells a failed member from a healthy one: without it (the
        // attach node's engine restarted) the engine needs rebuilding, not the replicas.
        let raid_runs = engine.is_some_and(|e| !e.raid.is_empty() && !e.raid_state.is_empty());
        let state = match member {
            // The engine exists and does not use it: left over from a replacement.
            Some(None) => "stale".to_string(),
            Some(Some(m)) if m.state == "missing" && raid_runs => "failed".to_string(),
            _ => shown_state(r),
        };
        let healthy = state == "healthy";
        out.push((
            ExistingReplica {
                node: node.to_string(),
                disk: r.disk.clone(),
                healthy,
            },
            r.replica.clone(),
            state,
        ));
    }
    for k in known {
        let listed = out
            .iter()
            .any(|(e, _, _)| e.node == k.node && e.disk == k.disk);
        if listed || !inv.unlisted.contains_key(&k.node) || k.state == "planned" {
            continue;
        }
        out.push((
            ExistingReplica {
                node: k.node.clone(),
                disk: k.disk.clone(),
                healthy: false,
            },
            replica_name(volume, &k.node, &k.disk),
            "unreachable".to_string(),
        ));
    }
    let is_member =
        |name: &str| engine.is_some_and(|e| e.members.iter().any(|m| m.replica == name));
    out.sort_by_key(|(e, name, _)| (!e.healthy, !is_member(name), e.node.clone()));
    out
}

/// Refuses a frontend the attach node cannot provide, from its host facts: `block` needs
/// nvme-cli and the nvme_tcp module; `ublk` is not supported.
fn check_frontend(obs: &Observed, spec: &Volume, class: &StorageClass) -> Result<(), OpsError> {
    let frontend = spec.frontend.unwrap_or(class.frontend);
    let Some(a) = spec.attach_node.as_deref() else {
        return Ok(());
    };
    let invalid = |reason: String| OpsError::Invalid {
        attribute: "frontend".into(),
        reason,
    };
    match frontend {
        Frontend::Nvmf => Ok(()),
        Frontend::Ublk => Err(invalid(format!(
            "volume {}: frontend ublk is not supported yet; use nvmf or block",
            spec.name
        ))),
        Frontend::Block => {
            let Some(f) = obs.facts(a) else {
                return Ok(());
            };
            let mut missing = Vec::new();
            if !f.tools.iter().any(|t| t.name == "nvme" && t.present) {
                missing.push("nvme-cli (the nvme command) is not installed".to_string());
            }
            let usable = f.modules.iter().any(|m| {
                m.name == "nvme_tcp"
                    && matches!(
                        v1::ModuleState::try_from(m.state),
                        Ok(v1::ModuleState::Loaded
                            | v1::ModuleState::Builtin
                            | v1::ModuleState::Loadable)
                    )
            });
            if !usable {
                missing.push("the nvme_tcp kernel module is not available".to_string());
            }
            if missing.is_empty() {
                Ok(())
            } else {
                Err(invalid(format!(
                    "volume {}: frontend block needs a kernel NVMe/TCP initiator on attach node {a}, but {}{}; use frontend nvmf there",
                    spec.name,
                    missing.join(" and "),
                    if f.simulated {
                        " (a simulated lab host has no kernel initiator)"
                    } else {
                        ""
                    }
                )))
            }
        }
    }
}

async fn place_volume(
    s: &Session,
    spec: &Volume,
    prior: Option<&Volume>,
    known: &[ReplicaStatus],
) -> Result<(Placement, Vec<Warning>), OpsError> {
    let size = size_of(spec)?;
    if let Some(a) = &spec.attach_node {
        s.check_node("attach_node", a)?;
    }
    let obs = s.observed().await?;
    if let Some(a) = &spec.attach_node {
        obs.require(a)?;
    }
    let class = match class_of(&obs, spec) {
        Err(OpsError::Invalid { attribute, reason })
            if s.is_planned(&super::storage_class::key(&spec.storage_class))
                .await =>
        {
            return Err(OpsError::Deferred { attribute, reason });
        }
        other => other?,
    };
    check_frontend(&obs, spec, &class)?;
    // A class change replaces the volume: the old replicas are not this volume's.
    let same_volume = prior.is_some_and(|p| p.storage_class == spec.storage_class);
    if let Some(p) = prior.filter(|_| same_volume)
        && let Ok(old) = p.size_bytes()
        && size < old
    {
        return Err(OpsError::Invalid {
            attribute: "size".into(),
            reason: format!(
                "volume {} cannot shrink from {old} to {size} bytes; only growing is supported",
                spec.name
            ),
        });
    }
    let inv = inventory(s).await;
    let mut existing = Vec::new();
    let mut names: BTreeMap<(String, String), (String, String)> = BTreeMap::new();
    if same_volume || prior.is_none() {
        for (e, name, state) in
            existing_replicas(&spec.name, spec.attach_node.as_deref(), &inv, known)
        {
            names.insert((e.node.clone(), e.disk.clone()), (name, state));
            existing.push(e);
        }
    }
    let nodes = candidates(&obs, &inv);
    let req = PlacementRequest {
        volume: &spec.name,
        size_bytes: size,
        class: &class,
        attach_node: spec.attach_node.as_deref(),
        existing: &existing,
        over_provisioning_percent: s.over_provisioning_percent,
    };
    let placed = match place(&req, &nodes) {
        Ok(p) => p,
        // Disks or the class change in this run: apply places it with them in place.
        Err(e)
            if prior.is_none()
                && (s.plans_kind(RecordKind::BlockDisk).await
                    || s.is_planned(&super::storage_class::key(&spec.storage_class))
                        .await) =>
        {
            return Err(OpsError::Deferred {
                attribute: "storage_class".into(),
                reason: e.to_string(),
            });
        }
        Err(e) => {
            return Err(OpsError::Invalid {
                attribute: "storage_class".into(),
                reason: e.to_string(),
            });
        }
    };
    let mut replicas = Vec::new();
    let mut rnames = Vec::new();
    for p in &placed {
        let (name, state) = match names.get(&(p.node.clone(), p.disk.clone())) {
            Some((n, st)) if p.existing => (n.clone(), st.clone()),
            _ => (
                replica_name(&spec.name, &p.node, &p.disk),
                "planned".to_string(),
            ),
        };
        replicas.push(ReplicaStatus {
            node: p.node.clone(),
            disk: p.disk.clone(),
            state,
        });
        rnames.push(name);
    }
    // Shown (and used as raid slots) in node order, as a read reports them.
    let mut pairs: Vec<(ReplicaStatus, String)> = replicas.into_iter().zip(rnames).collect();
    pairs.sort_by(|a, b| (&a.0.node, &a.0.disk).cmp(&(&b.0.node, &b.0.disk)));
    let (replicas, rnames): (Vec<_>, Vec<_>) = pairs.into_iter().unzip();
    let mut warnings = Vec::new();
    let lost: Vec<String> = names
        .iter()
        .filter(|((n, d), (_, st))| {
            st != "healthy"
                && !placed
                    .iter()
                    .any(|p| p.existing && p.node == *n && p.disk == *d)
        })
        .map(|((n, d), (_, st))| format!("{n}/{d} ({st})"))
        .collect();
    let failed = names
        .values()
        .filter(|(_, st)| st != "healthy" && st != "stale")
        .count();
    let new_ones: Vec<String> = placed
        .iter()
        .filter(|p| !p.existing)
        .map(|p| format!("{}/{}", p.node, p.disk))
        .collect();
    let state = if spec.attach_node.is_none() {
        "detached"
    } else if failed > 0 {
        "degraded"
    } else {
        "healthy"
    };
    if !lost.is_empty() {
        warnings.push(Warning {
            summary: format!("Volume {} is {state}", spec.name),
            detail: format!(
                "replicas {} are left out{}",
                lost.join(", "),
                if new_ones.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; apply builds {} and adds it to the raid (rebuild)",
                        new_ones.join(", ")
                    )
                }
            ),
        });
    }
    // Nodes without a running engine cannot list objects; placement says so already.
    if let Some(w) = inv
        .unlisted
        .iter()
        .find(|(n, _)| obs.status(n).is_some_and(|st| st.engine_state == "running"))
    {
        warnings.push(Warning {
            summary: format!("Node {} left out of placement", w.0),
            detail: format!("its volume objects could not be listed: {}", w.1),
        });
    }
    Ok((
        Placement {
            status: VolumeStatus {
                id: spec.name.clone(),
                replicas,
                state: state.into(),
                nqn: volume_nqn(&spec.name),
                device_path: String::new(),
                out_of_sync_nodes: vec![],
            },
            names: rnames,
        },
        warnings,
    ))
}

fn node_err(node: &str, e: impl std::fmt::Display) -> OpsError {
    OpsError::Nodes(vec![(node.to_string(), e.to_string())])
}

async fn client(s: &Session, node: &str) -> Result<crate::ExecutorClient, OpsError> {
    s.fleet
        .client(node)
        .await
        .map_err(|e| OpsError::fleet(format!("cannot reach node {node}"), e))
}

/// Runs one call per item in parallel; every failure is collected, naming its node.
async fn all_or_errors<T, Fut>(futs: Vec<Fut>) -> Result<Vec<T>, OpsError>
where
    Fut: std::future::Future<Output = Result<T, OpsError>>,
{
    let mut out = Vec::new();
    let mut errs = Vec::new();
    for r in join_all(futs).await {
        match r {
            Ok(v) => out.push(v),
            Err(OpsError::Nodes(es)) => errs.extend(es),
            Err(e) => errs.push(("(fleet)".to_string(), e.to_string())),
        }
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(OpsError::Nodes(errs))
    }
}

/// The SPDK calls one apply made, as the executors traced them: replicas (in parallel, one
/// node each), then the engine on the attach node.
#[derive(Debug, Clone, Default)]
pub struct CallReport {
    /// Per replica: its node and the calls its `EnsureReplica` made, in order.
    pub replicas: Vec<(String, Vec<v1::SpdkCall>)>,
    /// The attach node and the calls its `EnsureEngine` made.
    pub engine: Option<(String, Vec<v1::SpdkCall>)>,
}

impl CallReport {
    /// Every call made.
    pub fn calls(&self) -> usize {
        self.replicas.iter().map(|(_, c)| c.len()).sum::<usize>()
            + self.engine.as_ref().map_or(0, |(_, c)| c.len())
    }

    /// The SPDK time on the critical path: the slowest node's replica calls (nodes work in
    /// parallel, one node's calls in sequence), then the engine's.
    pub fn critical_path(&self) -> std::time::Duration {
        let mut per_node: BTreeMap<&str, u64> = BTreeMap::new();
        for (n, calls) in &self.replicas {
            *per_node.entry(n.as_str()).or_default() += calls.iter().map(|c| c.micros).sum::<u64>();
        }
        let replicas = per_node.values().copied().max().unwrap_or(0);
        let engine: u64 = self
            .engine
            .as_ref()
            .map_or(0, |(_, c)| c.iter().map(|c| c.micros).sum());
        std::time::Duration::from_micros(replicas.saturating_add(engine))
    }
}

/// Creates or updates the volume: the record on every node, the replicas on their nodes in
/// parallel, then the engine on the attach node (after removing it from `prior`'s attach
/// node when that changed). Without an attach node only the replicas exist ("detached").
/// `planned` is the placement a plan showed (placed again when absent).
/// `known`: the replicas last seen, as for [`plan`].
pub async fn apply(
    s: &Session,
    spec: &Volume,
    prior: Option<&Volume>,
    planned: Option<&VolumeStatus>,
    known: &[ReplicaStatus],
) -> Result<Outcome<VolumeStatus>, OpsError> {
    apply_with_report(s, spec, prior, planned, known)
        .await
        .map(|(out, _)| out)
}

/// [`apply`], with the SPDK calls it made (for benchmarks).
pub async fn apply_with_report(
    s: &Session,
    spec: &Volume,
    prior: Option<&Volume>,
    planned: Option<&VolumeStatus>,
    known: &[ReplicaStatus],
) -> Result<(Outcome<VolumeStatus>, CallReport), OpsError> {
    // Place against what the nodes hold now, not a view cached earlier in the run.
    s.invalidate().await;
    let mut report = CallReport::default();
    let r = apply_inner(s, spec, prior, planned, known, &mut report).await;
    // SPDK changed on the nodes: later plans and reads of this run look again.
    s.invalidate().await;
    r.map(|out| (out, report))
}

async fn apply_inner(
    s: &Session,
    spec: &Volume,
    prior: Option<&Volume>,
    planned: Option<&VolumeStatus>,
    known: &[ReplicaStatus],
    report: &mut CallReport,
) -> Result<Outcome<VolumeStatus>, OpsError> {
    let spec = resolved(s, spec).await?;
    let (mut placement, mut warnings) = place_volume(s, &spec, prior, known).await?;
    if let Some(p) = planned.filter(|p| !p.replicas.is_empty()) {
        // Keep the placement the plan promised; names follow from it.
        let known: BTreeMap<(String, String), String> = placement
            .status
            .replicas
            .iter()
            .zip(&placement.names)
            .map(|(r, n)| ((r.node.clone(), r.disk.clone()), n.clone()))
            .collect();
        placement.names = p
            .replicas
            .iter()
            .map(|r| {
                known
                    .get(&(r.node.clone(), r.disk.clone()))
                    .cloned()
                    .unwrap_or_else(|| replica_name(&spec.name, &r.node, &r.disk))
            })
            .collect();
        placement.status.replicas = p.replicas.clone();
    }
    let obs = s.observed().await?;
    let class = class_of(&obs, &spec)?;
    let size_mib = size_of(&spec)? >> 20;
    // What the nodes held when placing (the observation and inventory are fresh: `apply`
    // invalidated them): replicas of this volume that the placement leaves out are removed
    // at the end. Only this apply makes replicas of the volume meanwhile, all placed ones.
    let before = inventory(s).await;
    // The record goes to every node that answers; one that is down catches up later (its
    // replica of this volume, if any, is replaced below).
    let (_, down) = s
        .write_reachable(key(&spec.name), json_of(&key(&spec.name), &spec)?, false)
        .await?;
    for (n, why) in &down {
        warnings.push(Warning {
            summary: format!("Node {n} is unreachable"),
            detail: format!(
                "volume {} was stored on the other nodes; {n} gets it at the next apply ({why})",
                spec.name
            ),
        });
    }

    // The engine leaves its old node first (attach_node changed or removed).
    if let Some(old) = prior
        .and_then(|p| p.attach_node.as_deref())
        .filter(|old| spec.attach_node.as_deref() != Some(*old))
    {
        let mut c = client(s, old).await?;
        c.delete_engine(v1::DeleteEngineRequest {
            volume: spec.name.clone(),
            dry_run: false,
        })
        .await
        .map_err(|e| node_err(old, e.detail()))?;
    }

    let attach = spec.attach_node.clone();
    let futs: Vec<_> = placement
        .status
        .replicas
        .iter()
        .zip(&placement.names)
        .map(|(r, name)| {
            // The attach node's own replica is used directly (an exported lvol is claimed
            // by its subsystem, and a raid could not take it).
            let export = attach.as_deref().is_some_and(|a| a != r.node);
            let req = v1::EnsureReplicaRequest {
                replica: name.clone(),
                disk: r.disk.clone(),
                size_mib,
                thick: !class.thin_provision,
                export,
                host_nqn: if export {
                    attach.as_deref().map(host_nqn).unwrap_or_default()
                } else {
                    String::new()
                },
                dry_run: false,
            };
            let node = r.node.clone();
            async move {
                let mut c = client(s, &node).await?;
                let res = c
                    .ensure_replica(req)
                    .await
                    .map_err(|e| node_err(&node, e.detail()))?;
                Ok((node, res))
            }
        })
        .collect();
    let results = all_or_errors(futs).await?;
    report.replicas = results
        .iter()
        .map(|(n, res)| (n.clone(), res.spdk_calls.clone()))
        .collect();
    s.invalidate().await;

    let mut status = placement.status.clone();
    for (r, (_, res)) in status.replicas.iter_mut().zip(&results) {
        if let Some(st) = &res.replica {
            r.state = shown_state(st);
        }
    }
    match &attach {
        None => status.state = "detached".into(),
        Some(a) => {
            let members = status
                .replicas
                .iter()
                .zip(&placement.names)
                .zip(&results)
                .map(|((r, name), (_, res))| {
                    if r.node == *a {
                        Ok(v1::EngineReplica {
                            replica: name.clone(),
                            disk: r.disk.clone(),
                            ..Default::default()
                        })
                    } else {
                        let ex = res
                            .replica
                            .as_ref()
                            .and_then(|st| st.export.as_ref())
                            .ok_or_else(|| {
                                node_err(&r.node, format!("replica {name} has no export"))
                            })?;
                        Ok(v1::EngineReplica {
                            replica: name.clone(),
                            address: ex.address.clone(),
                            port: ex.port,
                            ..Default::default()
                        })
                    }
                })
                .collect::<Result<Vec<_>, OpsError>>()?;
            let mut c = client(s, a).await?;
            let res = c
                .ensure_engine(v1::EnsureEngineRequest {
                    volume: spec.name.clone(),
                    host_nqn: host_nqn(a),
                    replicas: members,
                    frontend_hosts: vec![],
                    reconnect: None,
                    dry_run: false,
                    frontend: spec.frontend.unwrap_or(class.frontend).as_str().to_string(),
                    size_mib,
                })
                .await
                .map_err(|e| node_err(a, e.detail()))?;
            report.engine = Some((a.clone(), res.spdk_calls.clone()));
            if let Some(e) = &res.engine {
                status.device_path = e.device_path.clone();
            }
            status.state = res
                .engine
                .map(|e| e.state)
                .unwrap_or_else(|| "healthy".into());
            if status.state != "healthy" {
                warnings.push(Warning {
                    summary: format!("Volume {} is {}", spec.name, status.state),
                    detail: format!("the engine on {a} reports {}", status.state),
                });
            }
        }
    }

    // Replicas the placement no longer uses (replaced failed ones) are removed.
    let inv = before;
    let keep: Vec<&String> = placement.names.iter().collect();
    let stale: Vec<(String, String)> = inv
        .replicas_of(&spec.name)
        .filter(|(_, r)| !keep.contains(&&r.replica))
        .map(|(n, r)| (n.to_string(), r.replica.clone()))
        .collect();
    for e in delete_replicas(s, &stale).await {
        warnings.push(Warning {
            summary: format!("A replaced replica of volume {} was not removed", spec.name),
            detail: e,
        });
    }
    for k in known.iter().filter(|k| inv.unlisted.contains_key(&k.node)) {
        let name = replica_name(&spec.name, &k.node, &k.disk);
        if !keep.contains(&&name) {
            warnings.push(Warning {
                summary: format!("A replaced replica of volume {} was not removed", spec.name),
                detail: format!(
                    "node {}: replica {name} cannot be reached; once the node answers it shows as stale and the next apply removes it",
                    k.node
                ),
            });
        }
    }
    Ok(Outcome {
        value: status,
        warnings,
    })
}

/// Deletes replicas in parallel; returns the failures as messages naming node and replica.
async fn delete_replicas(s: &Session, replicas: &[(String, String)]) -> Vec<String> {
    let futs = replicas.iter().map(|(node, replica)| async move {
        let r = match s.fleet.client(node).await {
            Ok(mut c) => c
                .delete_replica(v1::DeleteReplicaRequest {
                    replica: replica.clone(),
                    dry_run: false,
                })
                .await
                .map(|_| ())
                .map_err(|e| e.detail()),
            Err(e) => Err(e.to_string()),
        };
        r.map_err(|e| format!("node {node}: replica {replica}: {e}"))
    });
    join_all(futs)
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect()
}

/// Deletes the volume: its engine (wherever one is found), then its replicas in parallel,
/// then a tombstone on every node.
pub async fn delete(s: &Session, prior: &Volume) -> Result<(), OpsError> {
    let r = delete_inner(s, prior).await;
    // SPDK changed on the nodes: later plans and reads of this run look again.
    s.invalidate().await;
    r
}

async fn delete_inner(s: &Session, prior: &Volume) -> Result<(), OpsError> {
    // With a node down its replica could not be removed: refuse before removing anything.
    s.observed().await?.require_all(&format!(
        "deleting volume {} (its replicas may live there)",
        prior.name
    ))?;
    let inv = fetch_inventory(s).await;
    let mut engine_nodes: Vec<String> = inv
        .engines_of(&prior.name)
        .map(|(n, _)| n.to_string())
        .collect();
    if let Some(a) = &prior.attach_node
        && !engine_nodes.contains(a)
        && s.fleet.check_node(a).is_ok()
    {
        engine_nodes.push(a.clone());
    }
    let futs: Vec<_> = engine_nodes
        .iter()
        .map(|node| async move {
            let mut c = client(s, node).await?;
            c.delete_engine(v1::DeleteEngineRequest {
                volume: prior.name.clone(),
                dry_run: false,
            })
            .await
            .map_err(|e| node_err(node, e.detail()))
        })
        .collect();
    all_or_errors(futs).await?;
    let replicas: Vec<(String, String)> = inv
        .replicas_of(&prior.name)
        .map(|(n, r)| (n.to_string(), r.replica.clone()))
        .collect();
    let errs = delete_replicas(s, &replicas).await;
    if !errs.is_empty() {
        return Err(OpsError::Nodes(
            errs.into_iter()
                .map(|e| match e.split_once(": ") {
                    Some((n, m)) => (n.trim_start_matches("node ").to_string(), m.to_string()),
                    None => (String::new(), e),
                })
                .collect(),
        ));
    }
    // A node whose engine is not running cannot list (or hold live) objects; its lvols,
    // if any, show up as orphans once it runs again.
    let obs = s.observed().await?;
    let unlisted: Vec<_> = inv
        .unlisted
        .iter()
        .filter(|(n, _)| obs.status(n).is_some_and(|st| st.engine_state == "running"))
        .collect();
    if !unlisted.is_empty() {
        return Err(OpsError::Nodes(
            unlisted
                .into_iter()
                .map(|(n, e)| {
                    (
                        n.clone(),
                        format!("cannot list the volume objects of {}: {e}", prior.name),
                    )
                })
                .collect(),
        ));
    }
    s.write_all(key(&prior.name), json_of(&key(&prior.name), prior)?, true)
        .await?;
    Ok(())
}

/// The status of `spec` from the nodes' objects. Replicas in `known` on nodes that could
/// not be listed are shown `unreachable`; replicas an existing engine does not use are
/// `stale` (a replacement left them; the next apply removes them).
pub fn status_from(spec: &Volume, inv: &Inventory, known: &[ReplicaStatus]) -> VolumeStatus {
    let engine = spec.attach_node.as_deref().and_then(|a| {
        inv.engines
            .get(a)
            .and_then(|es| es.iter().find(|e| e.volume == spec.name))
    });
    let mut replicas: Vec<ReplicaStatus> =
        existing_replicas(&spec.name, spec.attach_node.as_deref(), inv, known)
            .into_iter()
            .map(|(e, name, state)| {
                let rebuilding = engine.is_some_and(|en| {
                    en.members
                        .iter()
                        .any(|m| m.replica == name && m.state == "rebuilding")
                });
                ReplicaStatus {
                    node: e.node,
                    disk: e.disk,
                    state: if rebuilding {
                        "rebuilding".into()
                    } else {
                        state
                    },
                }
            })
            .collect();
    replicas.sort_by(|a, b| (&a.node, &a.disk).cmp(&(&b.node, &b.disk)));
    let state = match (&spec.attach_node, engine) {
        (None, _) => "detached".to_string(),
        (Some(a), _) if inv.unlisted.contains_key(a) => "unknown".to_string(),
        // The engine may not have noticed yet (its keep-alive runs), but a replica it
        // needs is gone or left over: the volume is degraded.
        (Some(_), Some(e))
            if e.state == "healthy"
                && replicas
                    .iter()
                    .any(|r| r.state == "unreachable" || r.state == "failed") =>
        {
            "degraded".to_string()
        }
        // The engine exports less than the volume's size: a grow did not finish (the
        // front-end was killed after the record was written, say). Not healthy, so the next
        // plan repairs it (found on SPDK v24.09: the plan stayed empty at the old size).
        (Some(_), Some(e))
            if e.state == "healthy"
                && e.size_bytes > 0
                && spec.size_bytes().is_ok_and(|want| e.size_bytes < want) =>
        {
            "degraded".to_string()
        }
        (Some(_), Some(e)) => e.state.clone(),
        (Some(_), None) => "absent".to_string(),
    };
    VolumeStatus {
        id: spec.name.clone(),
        replicas,
        state,
        nqn: volume_nqn(&spec.name),
        device_path: engine.map(|e| e.device_path.clone()).unwrap_or_default(),
        out_of_sync_nodes: vec![],
    }
}

/// The stored volume (if any) with its observed status; `known` as for [`plan`].
pub async fn read(
    s: &Session,
    name: &str,
    known: &[ReplicaStatus],
) -> Result<Option<(Volume, VolumeStatus)>, OpsError> {
    let obs = s.observed().await?;
    let Some(rec) = obs.live(&key(name)) else {
        return Ok(None);
    };
    let spec: Volume = spec_of(rec)?;
    let inv = inventory(s).await;
    let status = VolumeStatus {
        out_of_sync_nodes: obs.drift(&key(name)),
        ..status_from(&spec, &inv, known)
    };
    Ok(Some((spec, status)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_names_are_stable_and_distinct() {
        let a = replica_name("v1", "node-1", "d1");
        assert_eq!(a, replica_name("v1", "node-1", "d1"));
        assert_ne!(a, replica_name("v1", "node-2", "d1"));
        assert_ne!(a, replica_name("v1", "node-1", "d2"));
        let hex = a.strip_prefix("v1-r-").unwrap();
        assert_eq!(hex.len(), 8);
        assert!(
            hex.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }

    #[test]
    fn an_engine_smaller_than_the_volume_is_not_healthy() {
        let spec = Volume {
            name: "v1".into(),
            size: "40Mi".into(),
            storage_class: "c".into(),
            attach_node: Some("node-1".into()),
            frontend: None,
        };
        let engine = |mib: u64| v1::EngineState {
            volume: "v1".into(),
            state: "healthy".into(),
            size_bytes: mib << 20,
            ..Default::default()
        };
        let mut inv = Inventory::default();
        inv.engines.insert("node-1".into(), vec![engine(32)]);
        assert_eq!(status_from(&spec, &inv, &[]).state, "degraded");
        inv.engines.insert("node-1".into(), vec![engine(40)]);
        assert_eq!(status_from(&spec, &inv, &[]).state, "healthy");
    }

    #[test]
    fn nqns() {
        assert_eq!(volume_nqn("v1"), "nqn.2026-11.io.v2engine:v1");
        assert_eq!(host_nqn("node-1"), "nqn.2026-11.io.v2engine:host-node-1");
    }
}
