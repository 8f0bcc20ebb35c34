//! The target's in-memory state: the bdev registry and everything that hangs off it.
//!
//! Removing a bdev cascades the way SPDK's hot-remove does: a raid loses the member (and dies
//! with its last one), an lvstore on it is unloaded (not destroyed), an NVMe-oF namespace on it
//! is removed. Nothing refuses because of a consumer: SPDK does no reference checking.

pub mod bdev;
mod examine;
pub mod lvs;
pub mod nvme;
pub mod nvmf;
pub mod raid;
mod render;
mod resize;

use crate::disk::device;
use crate::fabric::proto::{NsInfo, ToHost};
use crate::rpc_error::{RpcError, errno};
use crate::version::SpdkVersion;
use bdev::{Bdev, BdevKind, Claimer, NvmeNs};
use lvs::LvStore;
use nvme::{Ctrlr, LossPolicy};
use nvmf::{Listener, Subsystem, Transport};
use raid::{Raid, RaidState, Superblock};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// `bdev_raid_set_options`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaidOptions {
    /// Rebuild window (KiB): progress advances in steps of this size.
    pub process_window_size_kb: u64,
    /// Rebuild bandwidth limit (MiB/s, 0 = none): sets the rebuild duration when non-zero.
    pub process_max_bandwidth_mb_sec: u64,
}

/// The whole target.
#[derive(Debug)]
pub struct Target {
    /// Registered bdevs in registration order.
    pub bdevs: Vec<Bdev>,
    /// Loaded lvstores.
    pub lvstores: Vec<LvStore>,
    /// Raids (including configuring ones, which are not bdevs).
    pub raids: Vec<Raid>,
    /// Raid options.
    pub raid_opts: RaidOptions,
    /// NVMe-oF transports.
    pub transports: Vec<Transport>,
    /// NVMe-oF subsystems (without the discovery subsystem).
    pub subsystems: Vec<Subsystem>,
    /// Open NVMe-oF listening sockets.
    pub listeners: Vec<Listener>,
    /// `bdev_nvme_set_options` path-loss defaults.
    pub nvme_defaults: LossPolicy,
    /// Attached NVMe-oF controllers.
    pub ctrlrs: Vec<Ctrlr>,
    /// Rebuild duration without a bandwidth limit.
    pub rebuild_time: Duration,
    /// This host's id (host NQN uuid).
    pub host_id: Uuid,
    /// The version this target reports.
    pub version: SpdkVersion,
    /// Raid superblocks on members that are not lvols (NVMe, aio, raid bdevs), by member UUID.
    /// Lvol members keep theirs in the lvstore metadata, on the device.
    pub sb_store: HashMap<Uuid, Superblock>,
    /// Lvstores being unloaded right now (their lvols get no superblock updates).
    unloading: Vec<Uuid>,
    next_id: u64,
    /// What `bdev_aio_create` without `block_size` assumes on a regular file (`None`: -22, as
    /// SPDK); see `Config::aio_file_block_size`.
    pub aio_file_block_size: Option<u32>,
}

impl Target {
    /// An empty target.
    #[must_use]
    pub fn new(version: SpdkVersion, rebuild_time: Duration) -> Self {
        Self {
            bdevs: Vec::new(),
            lvstores: Vec::new(),
            raids: Vec::new(),
            raid_opts: RaidOptions {
                process_window_size_kb: 1024,
                process_max_bandwidth_mb_sec: 0,
            },
            transports: Vec::new(),
            subsystems: Vec::new(),
            listeners: Vec::new(),
            nvme_defaults: LossPolicy {
                ctrlr_loss_timeout_sec: 0,
                reconnect_delay_sec: 0,
                fast_io_fail_timeout_sec: 0,
            },
            ctrlrs: Vec::new(),
            rebuild_time,
            host_id: Uuid::new_v4(),
            version,
            sb_store: HashMap::new(),
            unloading: Vec::new(),
            next_id: 1,
            aio_file_block_size: None,
        }
    }

    /// A process-unique id for connections and controllers.
    pub fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Finishes rebuilds whose time is up.
    pub fn tick(&mut self, now: Instant) {
        for r in &mut self.raids {
            r.tick(now);
        }
    }

    // ----- registry -------------------------------------------------------------------------

    /// The bdev named `name` (name, alias or UUID).
    #[must_use]
    pub fn bdev(&self, name: &str) -> Option<&Bdev> {
        self.bdevs
            .iter()
            .find(|b| b.name == name)
            .or_else(|| self.bdevs.iter().find(|b| b.matches(name)))
    }

    fn bdev_mut(&mut self, name: &str) -> Option<&mut Bdev> {
        let idx = self
            .bdevs
            .iter()
            .position(|b| b.name == name)
            .or_else(|| self.bdevs.iter().position(|b| b.matches(name)))?;
        self.bdevs.get_mut(idx)
    }

    /// Whether `name` is taken by a bdev name or alias.
    #[must_use]
    pub fn name_taken(&self, name: &str) -> bool {
        self.bdevs
            .iter()
            .any(|b| b.name == name || b.aliases.iter().any(|a| a == name))
    }

    /// Sets the claim on a bdev (by registry name).
    pub fn set_claim(&mut self, name: &str, claim: Option<Claimer>) {
        if let Some(b) = self.bdevs.iter_mut().find(|b| b.name == name) {
            b.claim = claim;
        }
    }

    /// Registers a bdev and runs examine on it.
    pub fn register(&mut self, bdev: Bdev) {
        let name = bdev.name.clone();
        self.bdevs.push(bdev);
        self.examine(&name);
    }

    /// Removes a bdev and cascades to its consumers (hot-remove).
    pub fn unregister(&mut self, name: &str) {
        let Some(idx) = self.bdevs.iter().position(|b| b.name == name) else {
            return;
        };
        let bdev = self.bdevs.remove(idx);
        match &bdev.claim {
            Some(Claimer::Raid(raid)) => self.remove_raid_member(&raid.clone(), &bdev.name),
            Some(Claimer::Lvstore(uuid)) => self.unload_lvstore(*uuid),
            Some(Claimer::Nvmf(nqn)) => self.remove_namespace_of(&nqn.clone(), &bdev.name),
            None => {}
        }
    }

    // ----- raid hot-remove / delete ---------------------------------------------------------

    /// A member of raid `raid_name` went away (hot-remove or `bdev_raid_remove_base_bdev`).
    pub fn remove_raid_member(&mut self, raid_name: &str, bdev_name: &str) {
        let Some(ri) = self.raids.iter().position(|r| r.name == raid_name) else {
            return;
        };
        let raid = &mut self.raids[ri];
        let Some(si) = raid.slot_of(bdev_name) else {
            return;
        };
        let online = raid.state != RaidState::Configuring;
        let slot = &mut raid.slots[si];
        slot.name = None;
        slot.bdev = None;
        slot.configured = false;
        if online {
            slot.uuid = None;
            slot.failed = true;
            slot.data_offset = 0;
            if raid.process.as_ref().is_some_and(|p| p.slot == si) {
                raid.process = None;
            }
        }
        if !online {
            return;
        }
        let level = raid.level;
        let left = raid.discovered();
        let superblock = raid.superblock;
        if left == 0 {
            self.delete_raid(raid_name);
        } else if level != raid::RaidLevel::Raid1 && self.raids[ri].state == RaidState::Online {
            self.raids[ri].state = RaidState::Offline;
            self.unregister(raid_name);
        } else if superblock {
            self.write_superblock(ri);
        }
    }

    /// Deletes a raid: releases its members (nothing is wiped) and removes its bdev.
    pub fn delete_raid(&mut self, name: &str) {
        let Some(ri) = self.raids.iter().position(|r| r.name == name) else {
            return;
        };
        let raid = self.raids.remove(ri);
        for slot in &raid.slots {
            if let Some(b) = &slot.bdev
                && self
                    .bdevs
                    .iter()
                    .any(|x| &x.name == b && x.claim == Some(Claimer::Raid(name.to_owned())))
            {
                self.set_claim(b, None);
            }
        }
        if raid.state == RaidState::Online {
            self.unregister(name);
        }
    }

    /// Rebuild duration for a raid of `num_blocks` blocks of `block_size` bytes.
    #[must_use]
    pub fn rebuild_duration(&self, num_blocks: u64, block_size: u32) -> Duration {
        match self.raid_opts.process_max_bandwidth_mb_sec {
            0 => self.rebuild_time,
            bw => {
                let bytes = num_blocks.saturating_mul(u64::from(block_size));
                #[allow(clippy::cast_precision_loss)]
                Duration::from_secs_f64(bytes as f64 / (bw as f64 * 1024.0 * 1024.0))
            }
        }
    }

    /// Rebuild window in blocks of `block_size`.
    #[must_use]
    pub fn window_blocks(&self, block_size: u32) -> u64 {
        self.raid_opts.process_window_size_kb * 1024 / u64::from(block_size.max(1))
    }

    // ----- lvstores -------------------------------------------------------------------------

    /// Index of an lvstore by UUID.
    #[must_use]
    pub fn lvs_index(&self, uuid: Uuid) -> Option<usize> {
        self.lvstores.iter().position(|l| l.uuid == uuid)
    }

    /// Applies `f` to a copy of an lvstore, persists the copy on its device, then keeps it.
    ///
    /// # Errors
    /// Whatever `f` returns, or the device error (as -errno) when persisting fails.
    pub fn with_lvs<R>(
        &mut self,
        uuid: Uuid,
        f: impl FnOnce(&mut LvStore) -> Result<R, RpcError>,
    ) -> Result<R, RpcError> {
        let idx = self
            .lvs_index(uuid)
            .ok_or_else(|| RpcError::errno(errno::ENODEV))?;
        let mut copy = self.lvstores[idx].clone();
        let out = f(&mut copy)?;
        persist(&copy)?;
        self.lvstores[idx] = copy;
        // A refused shrink is reported by `bdev_lvol_resize`, which checks the bdev's size.
        let _refused = self.refresh_lvol_sizes(uuid);
        Ok(out)
    }

    /// Unloads an lvstore (its base went away): lvol bdevs disappear, the device keeps the data.
    pub fn unload_lvstore(&mut self, uuid: Uuid) {
        let Some(idx) = self.lvs_index(uuid) else {
            return;
        };
        let lvs = self.lvstores.remove(idx);
        for lvol in &lvs.lvols {
            self.unregister(&lvol.uuid.to_string());
        }
        self.set_claim(&lvs.base_bdev, None);
    }

    /// Destroys an lvstore with its lvols, even ones used by a raid (as SPDK v24.09 does).
    ///
    /// # Errors
    /// The device error (as -errno) if the metadata cannot be wiped.
    pub fn destroy_lvstore(&mut self, uuid: Uuid) -> Result<(), RpcError> {
        let idx = self
            .lvs_index(uuid)
            .ok_or_else(|| RpcError::errno(errno::ENODEV))?;
        if let Some(path) = &self.lvstores[idx].backing {
            device::wipe(path).map_err(|e| RpcError::errno(e.errno()))?;
        }
        self.unload_lvstore(uuid);
        Ok(())
    }

    // ----- nvmf -----------------------------------------------------------------------------

    /// Subsystem by NQN.
    #[must_use]
    pub fn subsystem(&self, nqn: &str) -> Option<&Subsystem> {
        self.subsystems.iter().find(|s| s.nqn == nqn)
    }

    /// Mutable subsystem by NQN.
    pub fn subsystem_mut(&mut self, nqn: &str) -> Option<&mut Subsystem> {
        self.subsystems.iter_mut().find(|s| s.nqn == nqn)
    }

    /// What hosts see of a subsystem's namespaces.
    #[must_use]
    pub fn ns_infos(&self, nqn: &str) -> Vec<NsInfo> {
        let Some(sub) = self.subsystem(nqn) else {
            return Vec::new();
        };
        sub.namespaces
            .iter()
            .filter_map(|ns| {
                let b = self.bdevs.iter().find(|b| b.name == ns.bdev)?;
                Some(NsInfo {
                    nsid: ns.nsid,
                    uuid: ns.uuid,
                    block_size: b.block_size,
                    num_blocks: b.num_blocks,
                })
            })
            .collect()
    }

    /// Pushes the namespace list to every host connected to `nqn`.
    pub fn notify_hosts(&mut self, nqn: &str) {
        let infos = self.ns_infos(nqn);
        if let Some(sub) = self.subsystem_mut(nqn) {
            sub.conns.retain(|c| {
                c.tx.send(ToHost::Namespaces {
                    namespaces: infos.clone(),
                })
                .is_ok()
            });
        }
    }

    fn remove_namespace_of(&mut self, nqn: &str, bdev: &str) {
        if let Some(sub) = self.subsystem_mut(nqn) {
            sub.namespaces.retain(|ns| ns.bdev != bdev);
        }
        self.notify_hosts(nqn);
    }

    /// Closes listeners no subsystem uses any more.
    pub fn prune_listeners(&mut self) {
        let subsystems = &self.subsystems;
        self.listeners.retain(|l| {
            let used = subsystems.iter().any(|s| s.listeners.contains(&l.addr));
            if !used {
                l.task.abort();
            }
            used
        });
    }

    // ----- nvme host ------------------------------------------------------------------------

    /// Controller by name.
    #[must_use]
    pub fn ctrlr(&self, name: &str) -> Option<&Ctrlr> {
        self.ctrlrs.iter().find(|c| c.name == name)
    }

    /// Mutable controller by unique id.
    pub fn ctrlr_by_id(&mut self, id: u64) -> Option<&mut Ctrlr> {
        self.ctrlrs.iter_mut().find(|c| c.id == id)
    }

    /// Makes a controller's bdevs match the remote namespace list.
    pub fn apply_namespaces(&mut self, id: u64, namespaces: &[NsInfo]) {
        let Some(ctrlr) = self.ctrlrs.iter().find(|c| c.id == id) else {
            return;
        };
        let name = ctrlr.name.clone();
        let existing = ctrlr.bdevs.clone();
        for (nsid, bdev) in &existing {
            match namespaces.iter().find(|n| n.nsid == *nsid) {
                None => {
                    self.unregister(bdev);
                    if let Some(c) = self.ctrlr_by_id(id) {
                        c.bdevs.retain(|(n, _)| n != nsid);
                    }
                }
                Some(info) => {
                    // bdev_nvme: "NSID n is resized" → spdk_bdev_notify_blockcnt_change.
                    if let Err(e) = self.notify_blockcnt_change(bdev, info.num_blocks) {
                        eprintln!(
                            "spdk-sim: Could not change num blocks for nvme bdev: name {bdev}, errno: -{e}."
                        );
                    }
                }
            }
        }
        for info in namespaces {
            if existing.iter().any(|(n, _)| *n == info.nsid) {
                continue;
            }
            let bdev_name = format!("{name}n{}", info.nsid);
            if self.name_taken(&bdev_name) {
                eprintln!(
                    "spdk-sim: controller {name}: bdev {bdev_name} already exists, namespace {} skipped",
                    info.nsid
                );
                continue;
            }
            if let Some(c) = self.ctrlr_by_id(id) {
                c.bdevs.push((info.nsid, bdev_name.clone()));
            }
            self.register(Bdev {
                name: bdev_name,
                uuid: info.uuid,
                aliases: vec![info.uuid.to_string()],
                block_size: info.block_size,
                num_blocks: info.num_blocks,
                claim: None,
                kind: BdevKind::Nvme(NvmeNs {
                    ctrlr: name.clone(),
                    nsid: info.nsid,
                }),
                backing: None,
            });
        }
    }

    /// Deletes a controller and its bdevs (detach, or `ctrlr_loss_timeout_sec` expired).
    pub fn delete_ctrlr(&mut self, id: u64) {
        let Some(idx) = self.ctrlrs.iter().position(|c| c.id == id) else {
            return;
        };
        let ctrlr = self.ctrlrs.remove(idx);
        if let Some(task) = &ctrlr.task {
            task.abort();
        }
        for (_, bdev) in &ctrlr.bdevs {
            self.unregister(bdev);
        }
    }
}

/// Writes an lvstore's record to its device (no-op for stores without a backing file).
///
/// # Errors
/// The device error as -errno.
pub fn persist(lvs: &LvStore) -> Result<(), RpcError> {
    let Some(path) = &lvs.backing else {
        return Ok(());
    };
    let payload = lvs.to_payload().map_err(|_| RpcError::errno(errno::EIO))?;
    device::write_next(path, &payload).map_err(|e| {
        eprintln!("spdk-sim: persisting lvstore {}: {e}", lvs.name);
        RpcError::errno(e.errno())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Config;
    use nvmf::{Namespace, Subsystem};
    use raid::{RaidLevel, Slot};

    fn target() -> Target {
        let cfg = Config::with_socket("/unused");
        Target::new(cfg.version, Duration::from_secs(1))
    }

    fn plain(name: &str, blocks: u64) -> Bdev {
        Bdev {
            name: name.into(),
            uuid: Uuid::new_v4(),
            aliases: vec![],
            block_size: 512,
            num_blocks: blocks,
            claim: None,
            kind: BdevKind::Aio {
                filename: name.into(),
                block_size_override: false,
                readonly: false,
                fallocate: false,
            },
            backing: None,
        }
    }

    fn waiting_raid(name: &str, members: &[&str], superblock: bool) -> Raid {
        Raid {
            name: name.into(),
            uuid: superblock.then(Uuid::new_v4),
            level: RaidLevel::Raid1,
            strip_size_kb: 0,
            superblock,
            state: RaidState::Configuring,
            slots: members.iter().map(|m| Slot::waiting(m)).collect(),
            process: None,
            block_size: 0,
            num_blocks: 0,
            seq: 0,
        }
    }

    #[test]
    fn members_arriving_bring_a_raid_online_and_losing_them_degrades_then_deletes_it() {
        let mut t = target();
        t.raids.push(waiting_raid("r", &["a", "b"], false));
        t.register(plain("a", 1000));
        assert_eq!(t.raids[0].state, RaidState::Configuring);
        assert!(t.bdev("r").is_none());
        t.register(plain("b", 800));
        assert_eq!(t.raids[0].state, RaidState::Online);
        assert_eq!(t.bdev("r").map(|b| b.num_blocks), Some(800));
        assert_eq!(
            t.bdev("a").and_then(|b| b.claim.clone()),
            Some(Claimer::Raid("r".into()))
        );

        t.unregister("a");
        let r = &t.raids[0];
        assert_eq!(
            (r.state, r.discovered(), r.operational()),
            (RaidState::Online, 1, 1)
        );
        assert_eq!((r.slots[0].name.clone(), r.slots[0].uuid), (None, None));
        assert!(t.bdev("r").is_some(), "raid1 keeps running degraded");

        t.unregister("b");
        assert!(t.raids.is_empty());
        assert!(t.bdev("r").is_none());
    }

    #[test]
    fn unloading_an_lvstore_removes_its_lvols_from_their_consumers() {
        let mut t = target();
        t.register(plain("base", 1 << 20));
        let lvs = Uuid::new_v4();
        t.set_claim("base", Some(Claimer::Lvstore(lvs)));
        t.lvstores.push(LvStore {
            uuid: lvs,
            name: "lvs0".into(),
            cluster_size: lvs::DEFAULT_CLUSTER_SIZE,
            block_size: 512,
            total_data_clusters: 100,
            clear_method: "unmap".into(),
            lvols: vec![],
            base_bdev: "base".into(),
            backing: None,
        });
        let lvol = t
            .with_lvs(lvs, |s| s.create_lvol("l", 8, true, None))
            .unwrap();
        t.register_lvol_bdev(lvs, lvol);
        let lvol_name = lvol.to_string();
        t.subsystems.push(Subsystem {
            nqn: "nqn.2016-06.io.spdk:x".into(),
            serial_number: "s".into(),
            model_number: "m".into(),
            allow_any_host: true,
            hosts: vec![],
            max_namespaces: 32,
            min_cntlid: 1,
            max_cntlid: 10,
            ana_reporting: false,
            namespaces: vec![Namespace {
                nsid: 1,
                bdev: lvol_name.clone(),
                uuid: lvol,
                nguid: lvol,
            }],
            listeners: vec![],
            conns: vec![],
            next_cntlid: 1,
        });
        t.set_claim(
            &lvol_name,
            Some(Claimer::Nvmf("nqn.2016-06.io.spdk:x".into())),
        );
        assert_eq!(t.bdev("lvs0/l").map(|b| b.num_blocks), Some(2 * 8192));

        t.unregister("base");
        assert!(t.lvstores.is_empty());
        assert!(t.bdev("lvs0/l").is_none());
        assert!(
            t.subsystems[0].namespaces.is_empty(),
            "the namespace goes with the lvol"
        );
    }

    #[test]
    fn a_superblock_raid_comes_back_when_its_members_return() {
        let mut t = target();
        t.raids.push(waiting_raid("sb", &["a", "b"], true));
        let (a, b) = (plain("a", 4096), plain("b", 4096));
        let uuid = t.raids[0].uuid;
        t.register(a.clone());
        t.register(b.clone());
        assert_eq!(t.raids[0].state, RaidState::Online);
        assert_eq!(
            t.raids[0].slots[0].data_offset, 2048,
            "1 MiB reserved for the superblock"
        );
        t.delete_raid("sb");
        t.unregister("a");
        t.unregister("b");
        assert!(t.raids.is_empty());

        t.register(a.clone());
        assert_eq!(
            t.raids[0].state,
            RaidState::Configuring,
            "re-created from the superblock"
        );
        t.register(b.clone());
        assert_eq!(
            (t.raids[0].state, t.raids[0].uuid),
            (RaidState::Online, uuid)
        );
        assert_eq!(t.raids[0].slots[1].name.as_deref(), Some("b"));

        // A member lost while online is marked failed; when it returns it is re-added and rebuilt.
        t.unregister("b");
        assert_eq!(t.raids[0].discovered(), 1);
        t.register(b);
        assert_eq!(t.raids[0].discovered(), 2);
        assert_eq!(
            t.raids[0].process.as_ref().map(|p| p.target.as_str()),
            Some("b")
        );
    }
}
