//! What reconcile would do with each block disk (pure): from the disk records, the device
//! facts and what the engine has (aio bdevs, lvstores, lvols), one [`DiskAction`] per
//! record. The same plan serves Predict (without an engine: `Wait`) and Reconcile.
//!
//! Guards SPDK does not have: the same device twice (two records, or a foreign aio bdev,
//! on one device number) is refused; a bdev of ours on another device than the record's is
//! refused; a removal is refused while lvols live on the disk's lvstore; a device whose
//! blobstore examine did not load is not overwritten without `force_format`.

use std::collections::BTreeMap;

use model::BlockDisk;
use model::block_disk::DiskDriver;
use spdk_rpc::types::lvol::Lvstore;

use super::facts::{DevNum, DeviceFacts, HostBlocks};
use super::rules;
use super::signature::Signature;

/// A block disk record of this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskRecord {
    /// The record name, `node/disk`.
    pub key: String,
    /// The spec (a tombstone keeps its last spec).
    pub spec: BlockDisk,
    /// Tombstone.
    pub deleted: bool,
}

/// An aio bdev of the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AioBdev {
    /// Bdev name.
    pub name: String,
    /// The file it opened.
    pub filename: String,
    /// The device number of that file, when it resolves to a block device.
    pub dev: Option<DevNum>,
}

/// An lvol of the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LvolRef {
    /// Lvol name (without the lvstore).
    pub name: String,
    /// Its lvstore's name.
    pub lvs_name: String,
    /// Its lvstore's UUID.
    pub lvs_uuid: String,
}

/// What the running engine has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineDisks {
    /// aio bdevs.
    pub aio: Vec<AioBdev>,
    /// lvstores.
    pub lvstores: Vec<Lvstore>,
    /// lvols.
    pub lvols: Vec<LvolRef>,
}

impl EngineDisks {
    /// The lvstore on `bdev`.
    pub fn lvstore_on(&self, bdev: &str) -> Option<&Lvstore> {
        self.lvstores.iter().find(|l| l.base_bdev == bdev)
    }

    /// The lvols of lvstore `uuid`, by name.
    pub fn lvols_of(&self, uuid: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .lvols
            .iter()
            .filter(|l| l.lvs_uuid == uuid)
            .map(|l| l.name.clone())
            .collect();
        v.sort();
        v
    }
}

/// What to do with one disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskAction {
    /// The engine is not running; the device passed validation.
    Wait,
    /// Create the aio bdev, wait for examine, then import the lvstore found or create one.
    /// `expect_import`: the device carries an SPDK blobstore signature.
    Attach {
        /// The device carries an SPDK blobstore signature.
        expect_import: bool,
    },
    /// The aio bdev exists without an lvstore: create one.
    CreateLvstore,
    /// The aio bdev and its lvstore exist.
    Ready(Lvstore),
    /// Refused; nothing changes. Each reason is a phrase about the device.
    Refuse(Vec<String>),
    /// A tombstone whose aio bdev exists and carries no lvols: delete the aio bdev (the
    /// lvstore stays on the device).
    Remove,
    /// A tombstone whose lvstore still holds these lvols: refused.
    RemoveRefused(Vec<String>),
    /// A tombstone with nothing left in the engine.
    Absent,
}

/// The plan for one disk record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskPlan {
    /// The record.
    pub record: DiskRecord,
    /// What to do.
    pub action: DiskAction,
}

fn refusal(v: Vec<rules::Exclusion>) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
}

/// Plans every disk record. `facts` holds the facts of each live record's path (by record
/// key); `engine` is `None` when the engine is not running.
pub fn plan(
    records: &[DiskRecord],
    facts: &BTreeMap<String, DeviceFacts>,
    host: &HostBlocks,
    engine: Option<&EngineDisks>,
) -> Vec<DiskPlan> {
    records
        .iter()
        .map(|r| DiskPlan {
            record: r.clone(),
            action: if r.deleted {
                plan_removal(r, engine)
            } else {
                plan_live(r, records, facts, host, engine)
            },
        })
        .collect()
}

fn plan_removal(r: &DiskRecord, engine: Option<&EngineDisks>) -> DiskAction {
    let Some(e) = engine else {
        return DiskAction::Absent;
    };
    let bdev = r.spec.bdev_name();
    if !e.aio.iter().any(|a| a.name == bdev) {
        return DiskAction::Absent;
    }
    match e.lvstore_on(&bdev) {
        Some(lvs) => {
            let lvols = e.lvols_of(&lvs.uuid);
            if lvols.is_empty() {
                DiskAction::Remove
            } else {
                DiskAction::RemoveRefused(lvols)
            }
        }
        None => DiskAction::Remove,
    }
}

fn plan_live(
    r: &DiskRecord,
    records: &[DiskRecord],
    facts: &BTreeMap<String, DeviceFacts>,
    host: &HostBlocks,
    engine: Option<&EngineDisks>,
) -> DiskAction {
    let Some(f) = facts.get(&r.key) else {
        return DiskAction::Refuse(vec!["was not inspected".into()]);
    };
    let bdev = r.spec.bdev_name();
    let force = r.spec.force_format;
    if r.spec.driver == DiskDriver::Nvme {
        return DiskAction::Refuse(vec![
            "asks for driver nvme (SPDK's userspace NVMe driver), which is not supported yet; use driver aio or auto".into(),
        ]);
    }
    if let Some(e) = engine
        && let Some(existing) = e.aio.iter().find(|a| a.name == bdev)
    {
        if existing.dev.is_none() || existing.dev != f.dev() {
            return DiskAction::Refuse(vec![format!(
                "is not the device bdev {bdev} has open ({}); remove the disk before pointing it at another device",
                existing.filename
            )]);
        }
        if let Some(lvs) = e.lvstore_on(&bdev) {
            return DiskAction::Ready(lvs.clone());
        }
        return match lvstore_refusal(f, host, force) {
            Some(reasons) => DiskAction::Refuse(reasons),
            None => DiskAction::CreateLvstore,
        };
    }
    let mut reasons = refusal(rules::exclusions(f, host, force));
    if let Some(dev) = f.dev() {
        let mut others: Vec<&str> = records
            .iter()
            .filter(|o| !o.deleted && o.key != r.key)
            .filter(|o| facts.get(&o.key).and_then(DeviceFacts::dev) == Some(dev))
            .map(|o| o.key.as_str())
            .collect();
        others.sort_unstable();
        if !others.is_empty() {
            reasons.push(format!(
                "is also claimed by disk {} (device {dev})",
                others.join(", ")
            ));
        }
        if let Some(e) = engine
            && let Some(a) = e.aio.iter().find(|a| a.dev == Some(dev))
        {
            reasons.push(format!(
                "is already open in the engine as bdev {} ({})",
                a.name, a.filename
            ));
        }
    }
    if !reasons.is_empty() {
        return DiskAction::Refuse(reasons);
    }
    if engine.is_none() {
        return DiskAction::Wait;
    }
    DiskAction::Attach {
        expect_import: f.signature == Some(Ok(Signature::SpdkBlobstore)),
    }
}

/// Why an lvstore must not be created on the device (the bdev exists, examine found none).
pub fn lvstore_refusal(f: &DeviceFacts, host: &HostBlocks, force: bool) -> Option<Vec<String>> {
    if !force && f.signature == Some(Ok(Signature::SpdkBlobstore)) {
        return Some(vec![
            "holds an SPDK blobstore that examine did not load as an lvstore; set force_format to create a new lvstore".into(),
        ]);
    }
    let reasons = refusal(rules::exclusions(f, host, force));
    (!reasons.is_empty()).then_some(reasons)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disks::facts::{BlockEntry, Lookup, UdevData};

    fn disk(name: &str, path: &str) -> DiskRecord {
        DiskRecord {
            key: format!("node-1/{name}"),
            spec: serde_json::from_value(serde_json::json!({
                "node": "node-1", "name": name, "path": path
            }))
            .unwrap(),
            deleted: false,
        }
    }

    fn host() -> HostBlocks {
        let mut h = HostBlocks::default();
        for (n, minor) in [("loop3", 3), ("loop4", 4)] {
            h.entries.insert(
                n.into(),
                BlockEntry {
                    name: n.into(),
                    dev: Some(DevNum::new(7, minor)),
                    size_bytes: 1 << 30,
                    ..Default::default()
                },
            );
        }
        h
    }

    fn facts_of(h: &HostBlocks, recs: &[(&DiskRecord, &str)]) -> BTreeMap<String, DeviceFacts> {
        recs.iter()
            .map(|(r, name)| {
                let e = h.entries[*name].clone();
                (
                    r.key.clone(),
                    DeviceFacts {
                        path: r.spec.path.clone(),
                        canonical: Some(format!("/dev/{name}")),
                        lookup: Lookup::Block(e.dev.unwrap()),
                        entry: Some(e),
                        udev: UdevData::default(),
                        by_id: vec![],
                        signature: Some(Ok(Signature::None)),
                    },
                )
            })
            .collect()
    }

    fn lvs(uuid: &str, bdev: &str) -> Lvstore {
        Lvstore {
            uuid: uuid.into(),
            name: format!("v2e-lvs-{}", bdev.trim_start_matches("v2e-")),
            base_bdev: bdev.into(),
            total_data_clusters: 100,
            free_clusters: 90,
            block_size: 512,
            cluster_size: 1 << 20,
        }
    }

    fn aio(name: &str, minor: u32) -> AioBdev {
        AioBdev {
            name: name.into(),
            filename: format!("/dev/loop{minor}"),
            dev: Some(DevNum::new(7, minor)),
        }
    }

    #[test]
    fn without_an_engine_valid_disks_wait_and_bad_ones_are_refused() {
        let h = host();
        let (a, b) = (disk("a", "/dev/loop3"), disk("b", "/dev/loop4"));
        let mut f = facts_of(&h, &[(&a, "loop3"), (&b, "loop4")]);
        f.get_mut("node-1/b").unwrap().signature = Some(Ok(Signature::Filesystem("ext4")));
        let p = plan(&[a, b], &f, &h, None);
        assert_eq!(p[0].action, DiskAction::Wait);
        assert_eq!(
            p[1].action,
            DiskAction::Refuse(vec![
                "has a filesystem signature (ext4); set force_format to overwrite it".into()
            ])
        );
    }

    #[test]
    fn attach_then_ready_and_blobstores_expect_import() {
        let h = host();
        let a = disk("a", "/dev/loop3");
        let mut f = facts_of(&h, &[(&a, "loop3")]);
        let e = EngineDisks::default();
        let p = plan(std::slice::from_ref(&a), &f, &h, Some(&e));
        assert_eq!(
            p[0].action,
            DiskAction::Attach {
                expect_import: false
            }
        );
        f.get_mut("node-1/a").unwrap().signature = Some(Ok(Signature::SpdkBlobstore));
        let p = plan(std::slice::from_ref(&a), &f, &h, Some(&e));
        assert_eq!(
            p[0].action,
            DiskAction::Attach {
                expect_import: true
            }
        );
        let e = EngineDisks {
            aio: vec![aio("v2e-a", 3)],
            lvstores: vec![lvs("u1", "v2e-a")],
            lvols: vec![],
        };
        let p = plan(std::slice::from_ref(&a), &f, &h, Some(&e));
        assert_eq!(p[0].action, DiskAction::Ready(lvs("u1", "v2e-a")));
        // The bdev without its lvstore: a blobstore that examine did not load is kept.
        let e = EngineDisks {
            aio: vec![aio("v2e-a", 3)],
            ..Default::default()
        };
        let p = plan(std::slice::from_ref(&a), &f, &h, Some(&e));
        assert!(
            matches!(&p[0].action, DiskAction::Refuse(r) if r[0].contains("examine did not load")),
            "{p:?}"
        );
        f.get_mut("node-1/a").unwrap().signature = Some(Ok(Signature::None));
        let p = plan(&[a], &f, &h, Some(&e));
        assert_eq!(p[0].action, DiskAction::CreateLvstore);
    }

    #[test]
    fn the_same_device_twice_is_refused_unless_already_attached() {
        let h = host();
        let (a, b) = (disk("a", "/dev/loop3"), disk("b", "/dev/disk/by-id/x"));
        let f = facts_of(&h, &[(&a, "loop3"), (&b, "loop3")]);
        let e = EngineDisks::default();
        let p = plan(&[a.clone(), b.clone()], &f, &h, Some(&e));
        assert_eq!(
            p[0].action,
            DiskAction::Refuse(vec!["is also claimed by disk node-1/b (device 7:3)".into()])
        );
        assert_eq!(
            p[1].action,
            DiskAction::Refuse(vec!["is also claimed by disk node-1/a (device 7:3)".into()])
        );
        // a is attached already: it stays, b is refused (also for the open bdev).
        let e = EngineDisks {
            aio: vec![aio("v2e-a", 3)],
            lvstores: vec![lvs("u1", "v2e-a")],
            lvols: vec![],
        };
        let p = plan(&[a, b], &f, &h, Some(&e));
        assert!(matches!(p[0].action, DiskAction::Ready(_)));
        assert_eq!(
            p[1].action,
            DiskAction::Refuse(vec![
                "is also claimed by disk node-1/a (device 7:3)".into(),
                "is already open in the engine as bdev v2e-a (/dev/loop3)".into(),
            ])
        );
    }

    #[test]
    fn the_nvme_driver_is_refused_for_now() {
        let h = host();
        let mut a = disk("a", "/dev/loop3");
        a.spec.driver = DiskDriver::Nvme;
        let f = facts_of(&h, &[(&a, "loop3")]);
        let p = plan(&[a], &f, &h, None);
        assert!(
            matches!(&p[0].action, DiskAction::Refuse(r) if r[0].starts_with("asks for driver nvme")),
            "{p:?}"
        );
    }

    #[test]
    fn a_bdev_on_another_device_is_refused() {
        let h = host();
        let a = disk("a", "/dev/loop4");
        let f = facts_of(&h, &[(&a, "loop4")]);
        let e = EngineDisks {
            aio: vec![aio("v2e-a", 3)],
            ..Default::default()
        };
        let p = plan(&[a], &f, &h, Some(&e));
        assert!(
            matches!(&p[0].action, DiskAction::Refuse(r) if r[0].contains("bdev v2e-a has open (/dev/loop3)")),
            "{p:?}"
        );
    }

    #[test]
    fn removal_is_refused_while_lvols_live_on_the_disk() {
        let h = host();
        let mut a = disk("a", "/dev/loop3");
        a.deleted = true;
        let f = BTreeMap::new();
        let mut e = EngineDisks {
            aio: vec![aio("v2e-a", 3)],
            lvstores: vec![lvs("u1", "v2e-a")],
            lvols: vec![
                LvolRef {
                    name: "vol1-r-0a1b2c3d".into(),
                    lvs_name: "v2e-lvs-a".into(),
                    lvs_uuid: "u1".into(),
                },
                LvolRef {
                    name: "other".into(),
                    lvs_name: "x".into(),
                    lvs_uuid: "u2".into(),
                },
            ],
        };
        let p = plan(std::slice::from_ref(&a), &f, &h, Some(&e));
        assert_eq!(
            p[0].action,
            DiskAction::RemoveRefused(vec!["vol1-r-0a1b2c3d".into()])
        );
        e.lvols.remove(0);
        let p = plan(std::slice::from_ref(&a), &f, &h, Some(&e));
        assert_eq!(p[0].action, DiskAction::Remove);
        let p = plan(
            std::slice::from_ref(&a),
            &f,
            &h,
            Some(&EngineDisks::default()),
        );
        assert_eq!(p[0].action, DiskAction::Absent);
        let p = plan(&[a], &f, &h, None);
        assert_eq!(p[0].action, DiskAction::Absent);
    }
}
