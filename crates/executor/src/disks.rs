//! Block disks: a `block_disk` record becomes an aio bdev with an lvstore on it.
//!
//! Cut at the I/O boundaries:
//! - pure: [`signature`] (first bytes of a device), [`facts`] (types and parsers of
//!   sysfs, mountinfo, swaps, udev), [`rules`] (exclusions), [`plan`] (what to do with
//!   each record, given the facts and what the engine has);
//! - host I/O: [`inspect`] (sysfs/proc/udev under the host root, the device's first bytes
//!   at its real path);
//! - engine I/O: [`apply`] (SPDK calls).
//!
//! [`Disks`] ties them together for the executor: [`Disks::reconcile`],
//! [`Disks::predict`] and [`Disks::list`].

pub mod apply;
pub mod facts;
pub mod inspect;
pub mod plan;
pub mod rules;
pub mod signature;

use std::collections::BTreeMap;
use std::path::Path;

use model::{BlockDisk, Record, RecordKey, RecordKind};

use crate::engine::rpc::{RpcError, RpcHandle};
use apply::Applied;
use facts::{DeviceFacts, HostBlocks};
use inspect::{InspectError, Inspector};
use plan::{DiskAction, DiskPlan, DiskRecord, EngineDisks};

/// Why disk work could not be done at all (a single disk's problem is in its status).
#[derive(Debug, thiserror::Error)]
pub enum DisksError {
    /// Host facts could not be read.
    #[error("node {node}: block devices: {source}")]
    Inspect {
        /// The node.
        node: String,
        /// The cause.
        source: InspectError,
    },
    /// A stored block_disk record does not decode.
    #[error("node {node}: record block_disk/{record}: {reason}")]
    Record {
        /// The node.
        node: String,
        /// The record name.
        record: String,
        /// Why.
        reason: String,
    },
    /// The engine could not be asked what it has.
    #[error("node {node}: cannot read the engine's bdevs: {reason}")]
    Engine {
        /// The node.
        node: String,
        /// Why.
        reason: String,
    },
    /// The engine call did not complete.
    #[error("node {node}: {source}")]
    Rpc {
        /// The node.
        node: String,
        /// The cause.
        source: RpcError,
    },
}

/// The state of a disk, as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskState {
    /// The engine is not running; the disk is attached once it is.
    WaitingForEngine,
    /// (Prediction) the aio bdev will be created and the lvstore imported or created.
    Attach,
    /// (Prediction) the device carries an lvstore that will be imported.
    Import,
    /// The aio bdev and lvstore are in place.
    Ready,
    /// Refused; nothing changed. See the error.
    Refused,
    /// An SPDK call failed. See the error.
    Failed,
    /// (Prediction) the record is deleted: the aio bdev will be deleted.
    Remove,
    /// The record is deleted but lvols still live on the disk; removal refused.
    InUse,
}

impl DiskState {
    /// The API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WaitingForEngine => "waiting_for_engine",
            Self::Attach => "attach",
            Self::Import => "import",
            Self::Ready => "ready",
            Self::Refused => "refused",
            Self::Failed => "failed",
            Self::Remove => "remove",
            Self::InUse => "in_use",
        }
    }
}

/// One disk's status (after reconcile) or predicted outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskStatus {
    /// The record name, `node/disk`.
    pub name: String,
    /// The device path of the record.
    pub path: String,
    /// The state.
    pub state: DiskState,
    /// The aio bdev name.
    pub bdev: String,
    /// The lvstore's name, when there is one.
    pub lvstore: String,
    /// The lvstore's UUID.
    pub lvstore_uuid: String,
    /// Data capacity of the lvstore.
    pub capacity_bytes: u64,
    /// Free space of the lvstore.
    pub free_bytes: u64,
    /// Why the disk is refused, failed or in use; names the disk and the device.
    pub error: String,
}

impl DiskStatus {
    fn new(r: &DiskRecord, state: DiskState) -> Self {
        Self {
            name: r.key.clone(),
            path: r.spec.path.clone(),
            state,
            bdev: r.spec.bdev_name(),
            lvstore: String::new(),
            lvstore_uuid: String::new(),
            capacity_bytes: 0,
            free_bytes: 0,
            error: String::new(),
        }
    }

    fn with_lvstore(mut self, l: &spdk_rpc::types::lvol::Lvstore) -> Self {
        self.lvstore = l.name.clone();
        self.lvstore_uuid = l.uuid.clone();
        self.capacity_bytes = l.capacity_bytes();
        self.free_bytes = l.free_bytes();
        self
    }

    fn with_error(mut self, e: String) -> Self {
        self.error = e;
        self
    }

    /// True when the disk is refused, failed or in use.
    pub fn has_error(&self) -> bool {
        !self.error.is_empty()
    }
}

/// A block device offered by [`Disks::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// `/dev/<name>`, or the path as asked.
    pub path: String,
    /// `/dev/<kernel name>`, empty when unknown.
    pub device: String,
    /// Size.
    pub size_bytes: u64,
    /// A partition of another device.
    pub partition: bool,
    /// `/dev/disk/by-id` names of the device.
    pub by_id: Vec<String>,
    /// What the first bytes hold (`none`, `an SPDK blobstore (lvstore)`, ...), empty when
    /// not read.
    pub signature: String,
    /// Why it cannot be a disk (empty: it can).
    pub excluded: Vec<String>,
    /// The block_disk record of this node on this device, if any.
    pub disk: String,
}

fn refusal_text(r: &DiskRecord, reasons: &[String]) -> String {
    let list: Vec<String> = reasons
        .iter()
        .map(|x| format!("{} {x}", r.spec.path))
        .collect();
    format!("disk {}: {}", r.key, list.join("; "))
}

/// Block disk work for one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disks {
    node: String,
    inspector: Inspector,
}

impl Disks {
    /// Disks of `node`, with host files (sysfs, proc, udev) under `root`.
    pub fn new(node: &str, root: impl AsRef<Path>) -> Self {
        Self {
            node: node.to_string(),
            inspector: Inspector::new(root.as_ref()),
        }
    }

    /// The inspector.
    pub fn inspector(&self) -> &Inspector {
        &self.inspector
    }

    /// The block_disk records of this node (live and tombstones), decoded.
    pub fn records(
        &self,
        records: &BTreeMap<RecordKey, Record>,
    ) -> Result<Vec<DiskRecord>, DisksError> {
        let mut out = Vec::new();
        for r in records.values() {
            if r.key.kind != RecordKind::BlockDisk
                || r.key.name.split('/').next() != Some(self.node.as_str())
            {
                continue;
            }
            let spec = if r.deleted && r.spec.is_null() {
                // A tombstone without its spec: the names derive from the record name.
                let name = r.key.name.split_once('/').map_or("", |(_, d)| d);
                serde_json::json!({"node": self.node, "name": name, "path": ""})
            } else {
                r.spec.clone()
            };
            let spec: BlockDisk = serde_json::from_value(spec).map_err(|e| DisksError::Record {
                node: self.node.clone(),
                record: r.key.name.clone(),
                reason: e.to_string(),
            })?;
            out.push(DiskRecord {
                key: r.key.name.clone(),
                spec,
                deleted: r.deleted,
            });
        }
        Ok(out)
    }

    fn gather(
        &self,
        recs: &[DiskRecord],
    ) -> Result<(HostBlocks, BTreeMap<String, DeviceFacts>), DisksError> {
        let host = self
            .inspector
            .host()
            .map_err(|source| DisksError::Inspect {
                node: self.node.clone(),
                source,
            })?;
        let facts = recs
            .iter()
            .filter(|r| !r.deleted)
            .map(|r| {
                (
                    r.key.clone(),
                    self.inspector.device(&host, &r.spec.path, true),
                )
            })
            .collect();
        Ok((host, facts))
    }

    fn rpc_err(&self, source: RpcError) -> DisksError {
        DisksError::Rpc {
            node: self.node.clone(),
            source,
        }
    }

    /// What the engine has, device numbers resolved.
    pub fn engine_view(&self, rpc: &RpcHandle) -> Result<EngineDisks, DisksError> {
        let mut e = rpc
            .run(|api| async move { apply::read_engine(api.as_ref()).await })
            .map_err(|e| self.rpc_err(e))?
            .map_err(|e| DisksError::Engine {
                node: self.node.clone(),
                reason: e.to_string(),
            })?;
        for a in &mut e.aio {
            a.dev = inspect::dev_of(Path::new(&a.filename)).ok();
        }
        Ok(e)
    }

    /// Makes each disk record real (engine running) or reports it waiting; returns the
    /// status of every live disk and of tombstones that could not be removed.
    pub fn reconcile(
        &self,
        recs: &[DiskRecord],
        rpc: Option<&RpcHandle>,
    ) -> Result<Vec<DiskStatus>, DisksError> {
        if recs.is_empty() {
            return Ok(Vec::new());
        }
        let (host, facts) = self.gather(recs)?;
        let Some(rpc) = rpc else {
            let plans = plan::plan(recs, &facts, &host, None);
            return Ok(plans.iter().filter_map(|p| self.waiting(p)).collect());
        };
        let engine = self.engine_view(rpc)?;
        let plans = plan::plan(recs, &facts, &host, Some(&engine));
        let applied = {
            let plans = plans.clone();
            rpc.run(move |api| async move { apply::apply(api.as_ref(), &plans).await })
                .map_err(|e| self.rpc_err(e))?
        };
        // Capacity and free space as they are now.
        let after = self.engine_view(rpc).ok();
        Ok(plans
            .iter()
            .zip(applied)
            .filter_map(|(p, a)| self.outcome(p, a, after.as_ref()))
            .collect())
    }

    fn waiting(&self, p: &DiskPlan) -> Option<DiskStatus> {
        let r = &p.record;
        match &p.action {
            DiskAction::Refuse(reasons) => {
                Some(DiskStatus::new(r, DiskState::Refused).with_error(refusal_text(r, reasons)))
            }
            DiskAction::Absent => None,
            _ => Some(DiskStatus::new(r, DiskState::WaitingForEngine)),
        }
    }

    fn outcome(&self, p: &DiskPlan, a: Applied, after: Option<&EngineDisks>) -> Option<DiskStatus> {
        let r = &p.record;
        Some(match a {
            Applied::Ready { lvstore, .. } => {
                let current = after
                    .and_then(|e| e.lvstore_on(&r.spec.bdev_name()))
                    .unwrap_or(&lvstore);
                DiskStatus::new(r, DiskState::Ready).with_lvstore(current)
            }
            Applied::Removed | Applied::Absent => return None,
            Applied::Refused(reasons) => {
                DiskStatus::new(r, DiskState::Refused).with_error(refusal_text(r, &reasons))
            }
            Applied::InUse(reason) => {
                DiskStatus::new(r, DiskState::InUse).with_error(format!("disk {} {reason}", r.key))
            }
            Applied::Failed(e) => {
                DiskStatus::new(r, DiskState::Failed).with_error(format!("disk {}: {e}", r.key))
            }
        })
    }

    /// What reconcile would do with the disks, changing nothing. `engine_will_run`: the
    /// node is enabled and would be prepared, so waiting disks would be attached.
    pub fn predict(
        &self,
        recs: &[DiskRecord],
        rpc: Option<&RpcHandle>,
        engine_will_run: bool,
    ) -> Result<Vec<DiskStatus>, DisksError> {
        if recs.is_empty() {
            return Ok(Vec::new());
        }
        let (host, facts) = self.gather(recs)?;
        let engine = rpc.map(|r| self.engine_view(r)).transpose()?;
        let plans = plan::plan(recs, &facts, &host, engine.as_ref());
        Ok(plans
            .iter()
            .filter_map(|p| {
                let r = &p.record;
                let blob = facts.get(&r.key).and_then(|f| f.signature.clone())
                    == Some(Ok(signature::Signature::SpdkBlobstore));
                let attach = if blob {
                    DiskState::Import
                } else {
                    DiskState::Attach
                };
                Some(match &p.action {
                    DiskAction::Wait if engine_will_run => DiskStatus::new(r, attach),
                    DiskAction::Wait => DiskStatus::new(r, DiskState::WaitingForEngine),
                    DiskAction::Attach { expect_import } => DiskStatus::new(
                        r,
                        if *expect_import {
                            DiskState::Import
                        } else {
                            DiskState::Attach
                        },
                    ),
                    DiskAction::CreateLvstore => DiskStatus::new(r, DiskState::Attach),
                    DiskAction::Ready(l) => DiskStatus::new(r, DiskState::Ready).with_lvstore(l),
                    DiskAction::Refuse(reasons) => {
                        DiskStatus::new(r, DiskState::Refused).with_error(refusal_text(r, reasons))
                    }
                    DiskAction::Remove => DiskStatus::new(r, DiskState::Remove),
                    DiskAction::RemoveRefused(lvols) => DiskStatus::new(r, DiskState::InUse)
                        .with_error(format!(
                            "disk {} {}",
                            r.key,
                            apply::in_use_reason(&r.spec.lvstore_name(), lvols)
                        )),
                    DiskAction::Absent => return None,
                })
            })
            .collect())
    }

    /// Candidate block devices: every `/sys/class/block` entry as `/dev/<name>`, then each
    /// of `paths`, each with the reasons it cannot be a disk (force_format not applied) and
    /// the disk record already on it.
    pub fn list(
        &self,
        recs: &[DiskRecord],
        paths: &[String],
    ) -> Result<Vec<Candidate>, DisksError> {
        let host = self
            .inspector
            .host()
            .map_err(|source| DisksError::Inspect {
                node: self.node.clone(),
                source,
            })?;
        let claimed: Vec<(facts::DevNum, &str)> = recs
            .iter()
            .filter(|r| !r.deleted)
            .filter_map(|r| {
                inspect::dev_of(Path::new(&r.spec.path))
                    .ok()
                    .map(|d| (d, r.key.as_str()))
            })
            .collect();
        let mut wanted: Vec<String> = host.entries.keys().map(|n| format!("/dev/{n}")).collect();
        wanted.extend(paths.iter().cloned());
        Ok(wanted
            .iter()
            .map(|path| {
                let mut f = self.inspector.device(&host, path, false);
                let hard = rules::all_exclusions(&f, &host)
                    .iter()
                    .any(|e| !e.overridable());
                if !hard {
                    f = self.inspector.device(&host, path, true);
                }
                let excluded = rules::all_exclusions(&f, &host)
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                let entry = f.entry.clone().unwrap_or_default();
                Candidate {
                    path: path.clone(),
                    device: f.name().map(|n| format!("/dev/{n}")).unwrap_or_default(),
                    size_bytes: entry.size_bytes,
                    partition: entry.partition,
                    by_id: f.by_id.clone(),
                    signature: match &f.signature {
                        Some(Ok(s)) => s.to_string(),
                        _ => String::new(),
                    },
                    excluded,
                    disk: f
                        .dev()
                        .and_then(|d| claimed.iter().find(|(c, _)| *c == d))
                        .map(|(_, k)| (*k).to_string())
                        .unwrap_or_default(),
                }
            })
            .collect())
    }
}
