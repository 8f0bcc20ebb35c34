//! The target's in-memory state: the bdev registry and everything that hangs off it.
//!
//! Removing a bdev cascades the way SPDK's hot-remove does: a raid loses the member (and dies
//! with its last one), an lvstore on it is unloaded (not destroyed), an NVMe-oF namespace on it
//! is removed. Nothing refuses because of a consumer: SPDK does no reference checking.

pub mod bdev;
pub mod lvs;
pub mod nvme;
pub mod nvmf;
pub mod raid;

use crate::disk::device;
use crate::fabric::proto::{NsInfo, ToHost};
use crate::json::J;
use crate::rpc_error::{RpcError, errno};
use crate::version::SpdkVersion;
use bdev::{Bdev, BdevKind, Claimer, IoTypes, NvmeNs};
use lvs::LvStore;
use nvme::{Ctrlr, LossPolicy};
use nvmf::{Listener, Subsystem, Transport};
use raid::{Raid, RaidState, SbState, Superblock};
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

    // ----- examine --------------------------------------------------------------------------

    fn examine(&mut self, name: &str) {
        let backing = self
            .bdevs
            .iter()
            .find(|b| b.name == name)
            .and_then(|b| b.backing.clone());
        if let Some(path) = backing {
            self.examine_lvstore(name, &path);
        }
        self.examine_superblock(name);
        self.examine_raids(name);
    }

    fn examine_lvstore(&mut self, name: &str, path: &std::path::Path) {
        let record = match device::read_record(path) {
            Ok((Some(rec), _)) => rec,
            Ok((None, _)) => return,
            Err(e) => {
                eprintln!("spdk-sim: examine of {name}: {e}");
                return;
            }
        };
        let lvs = match LvStore::from_payload(&record.payload, name, path.to_owned()) {
            Ok(l) => l,
            Err(e) => {
                eprintln!(
                    "spdk-sim: examine of {name}: unreadable lvstore metadata in {}: {e}",
                    path.display()
                );
                return;
            }
        };
        let claimed = self.bdev(name).is_some_and(|b| b.claim.is_some());
        if claimed
            || self
                .lvstores
                .iter()
                .any(|l| l.uuid == lvs.uuid || l.name == lvs.name)
        {
            // Same store already loaded through another bdev on the same device: SPDK gives up silently.
            return;
        }
        let uuid = lvs.uuid;
        self.set_claim(name, Some(Claimer::Lvstore(uuid)));
        let lvols: Vec<Uuid> = lvs.lvols.iter().map(|l| l.uuid).collect();
        self.lvstores.push(lvs);
        for lvol in lvols {
            self.register_lvol_bdev(uuid, lvol);
        }
    }

    /// Registers the bdev of an lvol.
    pub fn register_lvol_bdev(&mut self, lvs_uuid: Uuid, lvol_uuid: Uuid) {
        let Some(lvs) = self.lvstores.iter().find(|l| l.uuid == lvs_uuid) else {
            return;
        };
        let Some(lvol) = lvs.get(lvol_uuid) else {
            return;
        };
        let bdev = Bdev {
            name: lvol_uuid.to_string(),
            uuid: lvol_uuid,
            aliases: vec![format!("{}/{}", lvs.name, lvol.name)],
            block_size: lvs.block_size,
            num_blocks: lvs.blocks(lvol.num_clusters),
            claim: None,
            kind: BdevKind::Lvol { lvs: lvs_uuid },
            backing: None,
        };
        self.register(bdev);
    }

    fn examine_raids(&mut self, name: &str) {
        let Some(bdev) = self.bdevs.iter().find(|b| b.name == name).cloned() else {
            return;
        };
        if bdev.claim.is_some() {
            return;
        }
        let found = self.raids.iter().enumerate().find_map(|(ri, r)| {
            (r.state == RaidState::Configuring)
                .then(|| {
                    r.slots.iter().position(|s| {
                        !s.configured && s.name.as_deref().is_some_and(|n| bdev.matches(n))
                    })
                })
                .flatten()
                .map(|si| (ri, si))
        });
        if let Some((ri, si)) = found {
            self.configure_slot(ri, si, &bdev);
            self.maybe_online(ri);
        }
    }

    /// Claims `bdev` for slot `si` of raid `ri`.
    pub fn configure_slot(&mut self, ri: usize, si: usize, bdev: &Bdev) {
        let geometry = self.geometry(bdev);
        let raid_name = self.raids[ri].name.clone();
        let raid = &mut self.raids[ri];
        if raid.block_size == 0 {
            raid.block_size = bdev.block_size;
        }
        let data_offset = if raid.superblock {
            raid::superblock_data_offset(geometry)
        } else {
            0
        };
        let slot = &mut raid.slots[si];
        slot.bdev = Some(bdev.name.clone());
        slot.uuid = Some(bdev.uuid);
        slot.sb_uuid = Some(bdev.uuid);
        slot.configured = true;
        slot.failed = false;
        slot.data_offset = data_offset;
        slot.sb_offset = data_offset;
        slot.data_size = bdev.num_blocks.saturating_sub(data_offset);
        self.set_claim(&bdev.name, Some(Claimer::Raid(raid_name)));
    }

    /// Geometry of a bdev as a raid member.
    #[must_use]
    pub fn geometry(&self, bdev: &Bdev) -> raid::MemberGeometry {
        let boundary = match &bdev.kind {
            BdevKind::Lvol { lvs } => self
                .lvstores
                .iter()
                .find(|l| l.uuid == *lvs)
                .map_or(0, |l| l.cluster_size / u64::from(l.block_size.max(1))),
            _ => 0,
        };
        raid::MemberGeometry {
            block_size: bdev.block_size,
            num_blocks: bdev.num_blocks,
            optimal_io_boundary: boundary,
        }
    }

    /// Brings a configuring raid online when all its members are present.
    pub fn maybe_online(&mut self, ri: usize) {
        let raid = &mut self.raids[ri];
        if raid.state != RaidState::Configuring
            || raid.discovered() == 0
            || raid.discovered() < raid.required()
        {
            return;
        }
        raid.state = RaidState::Online;
        let uuid = *raid.uuid.get_or_insert_with(Uuid::new_v4);
        raid.compute_geometry();
        let superblock = raid.superblock;
        let bdev = Bdev {
            name: raid.name.clone(),
            uuid,
            aliases: vec![uuid.to_string()],
            block_size: raid.block_size,
            num_blocks: raid.num_blocks,
            claim: None,
            kind: BdevKind::Raid,
            backing: None,
        };
        if superblock {
            self.write_superblock(ri);
        }
        self.register(bdev);
    }

    // ----- raid superblocks -----------------------------------------------------------------

    /// The raid superblock found on `bdev`, if any.
    #[must_use]
    pub fn read_superblock(&self, bdev: &Bdev) -> Option<Superblock> {
        match &bdev.kind {
            BdevKind::Lvol { lvs } => {
                let store = self.lvstores.iter().find(|l| l.uuid == *lvs)?;
                let sb = store.get(bdev.uuid)?.raid_sb.clone()?;
                serde_json::from_value(sb).ok()
            }
            _ => self.sb_store.get(&bdev.uuid).cloned(),
        }
    }

    /// Writes raid `ri`'s superblock (next sequence number) on every present member.
    pub fn write_superblock(&mut self, ri: usize) {
        let raid = &mut self.raids[ri];
        raid.seq += 1;
        let Some(sb) = raid.superblock() else { return };
        let members: Vec<String> = raid.slots.iter().filter_map(|s| s.bdev.clone()).collect();
        for name in members {
            let Some(b) = self.bdevs.iter().find(|b| b.name == name) else {
                continue;
            };
            let uuid = b.uuid;
            match b.kind {
                BdevKind::Lvol { lvs } if self.unloading.contains(&lvs) => {}
                BdevKind::Lvol { lvs } => {
                    let value = serde_json::to_value(&sb).ok();
                    if let Err(e) = self.with_lvs(lvs, |s| s.set_raid_sb(uuid, value)) {
                        eprintln!(
                            "spdk-sim: writing the superblock of raid {} on {name}: {e}",
                            sb.name
                        );
                    }
                }
                _ => {
                    self.sb_store.insert(uuid, sb.clone());
                }
            }
        }
    }

    /// Examine: a bdev carrying a raid superblock re-assembles (or re-joins) its raid.
    fn examine_superblock(&mut self, name: &str) {
        let Some(bdev) = self.bdevs.iter().find(|b| b.name == name).cloned() else {
            return;
        };
        if bdev.claim.is_some() {
            return;
        }
        let Some(sb) = self.read_superblock(&bdev) else {
            return;
        };
        match self.raids.iter().position(|r| r.uuid == Some(sb.raid_uuid)) {
            Some(ri) => self.rejoin(ri, &bdev, &sb),
            None => self.assemble(&bdev, &sb),
        }
    }

    fn rejoin(&mut self, ri: usize, bdev: &Bdev, sb: &Superblock) {
        let raid = &self.raids[ri];
        let Some(si) = raid.slots.iter().position(|s| s.sb_uuid == Some(bdev.uuid)) else {
            return;
        };
        if raid.slots[si].configured || sb.seq > raid.seq {
            return;
        }
        match raid.state {
            RaidState::Configuring if !raid.slots[si].failed => {
                self.raids[ri].slots[si].name = Some(bdev.name.clone());
                self.configure_slot(ri, si, bdev);
                self.maybe_online(ri);
            }
            RaidState::Online => {
                // "Re-adding bdev <name> to raid bdev <raid>": the member comes back and is rebuilt.
                self.raids[ri].slots[si].name = Some(bdev.name.clone());
                self.configure_slot(ri, si, bdev);
                let duration =
                    self.rebuild_duration(self.raids[ri].num_blocks, self.raids[ri].block_size);
                let raid = &mut self.raids[ri];
                raid.slots[si].data_size = raid.num_blocks;
                raid.process = Some(raid::Rebuild {
                    target: bdev.name.clone(),
                    slot: si,
                    started: Instant::now(),
                    duration,
                });
                self.write_superblock(ri);
            }
            _ => {}
        }
    }

    fn assemble(&mut self, bdev: &Bdev, found: &Superblock) {
        // The newest copy among the present, unclaimed members decides.
        let mut sb = found.clone();
        for slot in &found.slots {
            let Some(uuid) = slot.uuid else { continue };
            let Some(other) = self
                .bdevs
                .iter()
                .find(|b| b.uuid == uuid && b.claim.is_none())
            else {
                continue;
            };
            if let Some(theirs) = self.read_superblock(other)
                && theirs.raid_uuid == found.raid_uuid
                && theirs.seq > sb.seq
            {
                sb = theirs;
            }
        }
        if self.name_taken(&sb.name) || self.raids.iter().any(|r| r.name == sb.name) {
            eprintln!(
                "spdk-sim: examine of {}: raid {} already exists",
                bdev.name, sb.name
            );
            return;
        }
        let Some(raid) = Raid::from_superblock(&sb) else {
            return;
        };
        self.raids.push(raid);
        let ri = self.raids.len() - 1;
        for (si, slot) in sb.slots.iter().enumerate() {
            let Some(uuid) = slot.uuid else { continue };
            if slot.state != SbState::Configured {
                continue;
            }
            let Some(member) = self
                .bdevs
                .iter()
                .find(|b| b.uuid == uuid && b.claim.is_none())
                .cloned()
            else {
                continue;
            };
            let same_raid = self
                .read_superblock(&member)
                .is_some_and(|m| m.raid_uuid == sb.raid_uuid);
            if same_raid {
                self.raids[ri].slots[si].name = Some(member.name.clone());
                self.configure_slot(ri, si, &member);
            }
        }
        self.maybe_online(ri);
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
        self.refresh_lvol_sizes(uuid);
        Ok(out)
    }

    fn refresh_lvol_sizes(&mut self, uuid: Uuid) {
        let Some(idx) = self.lvs_index(uuid) else {
            return;
        };
        let lvs = &self.lvstores[idx];
        let mut changed_ns = Vec::new();
        for b in &mut self.bdevs {
            if let BdevKind::Lvol { lvs: l } = b.kind
                && l == uuid
                && let Some(lvol) = lvs.get(b.uuid)
            {
                let blocks = lvs.blocks(lvol.num_clusters);
                if b.num_blocks != blocks {
                    b.num_blocks = blocks;
                    if let Some(Claimer::Nvmf(nqn)) = &b.claim {
                        changed_ns.push(nqn.clone());
                    }
                }
            }
        }
        for nqn in changed_ns {
            self.notify_hosts(&nqn);
        }
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
                    if let Some(b) = self.bdev_mut(bdev) {
                        b.num_blocks = info.num_blocks;
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

    // ----- JSON -----------------------------------------------------------------------------

    /// The `bdev_get_bdevs` object of `b`.
    #[must_use]
    pub fn bdev_json(&self, b: &Bdev, now: Instant) -> J {
        let (io, driver) = match &b.kind {
            BdevKind::Aio {
                filename,
                block_size_override,
                readonly,
                fallocate,
            } => (
                IoTypes::aio(),
                J::obj().with(
                    "aio",
                    J::obj()
                        .with("filename", filename.as_str())
                        .with("block_size_override", *block_size_override)
                        .with("readonly", *readonly)
                        .with("fallocate", *fallocate),
                ),
            ),
            BdevKind::Lvol { lvs } => self.lvol_json(b, *lvs),
            BdevKind::Raid => {
                let info = self
                    .raids
                    .iter()
                    .find(|r| r.name == b.name)
                    .map_or(J::obj(), |r| {
                        r.info_json(now, self.window_blocks(r.block_size))
                    });
                (IoTypes::raid(), J::obj().with("raid", info))
            }
            BdevKind::Nvme(ns) => (
                IoTypes::nvme(),
                self.ctrlr(&ns.ctrlr)
                    .map_or(J::obj(), |c| c.bdev_driver_specific(ns.nsid)),
            ),
        };
        let mut j = J::obj()
            .with("name", b.name.as_str())
            .with("aliases", b.aliases.clone())
            .with("product_name", b.product_name())
            .with("block_size", b.block_size)
            .with("num_blocks", b.num_blocks)
            .with("uuid", b.uuid.to_string());
        if matches!(b.kind, BdevKind::Nvme(_)) {
            j = j.with("numa_id", -1i64);
        }
        j = j
            .with("assigned_rate_limits", bdev::rate_limits())
            .with("claimed", b.claim.is_some());
        if let Some(c) = &b.claim {
            j = j.with("claim_type", c.claim_type());
        }
        j = j
            .with("zoned", false)
            .with("supported_io_types", io.to_json());
        if self.has_memory_domains(b) {
            j = j.with(
                "memory_domains",
                vec![
                    J::obj()
                        .with("dma_device_id", "system")
                        .with("dma_device_type", 1u64),
                ],
            );
        }
        j.with("driver_specific", driver)
    }

    /// NVMe bdevs report a memory domain, and so does a raid with an NVMe member.
    fn has_memory_domains(&self, b: &Bdev) -> bool {
        match &b.kind {
            BdevKind::Nvme(_) => true,
            BdevKind::Raid => self.raids.iter().filter(|r| r.name == b.name).any(|r| {
                r.slots.iter().filter_map(|s| s.bdev.as_deref()).any(|m| {
                    self.bdevs
                        .iter()
                        .any(|x| x.name == m && self.has_memory_domains(x))
                })
            }),
            _ => false,
        }
    }

    fn lvol_json(&self, b: &Bdev, lvs_uuid: Uuid) -> (IoTypes, J) {
        let Some(lvs) = self.lvstores.iter().find(|l| l.uuid == lvs_uuid) else {
            return (IoTypes::lvol(false), J::obj());
        };
        let Some(lvol) = lvs.get(b.uuid) else {
            return (IoTypes::lvol(false), J::obj());
        };
        let mut j = J::obj()
            .with("lvol_store_uuid", lvs.uuid.to_string())
            .with("base_bdev", lvs.base_bdev.as_str())
            .with("thin_provision", lvol.thin)
            .with("num_allocated_clusters", lvol.allocated)
            .with("snapshot", lvol.snapshot)
            .with("clone", lvol.parent.is_some());
        if let Some(parent) = lvol.parent.and_then(|p| lvs.get(p)) {
            j = j.with("base_snapshot", parent.name.as_str());
        }
        if lvol.snapshot {
            j = j.with("clones", lvs.clones_of(lvol.uuid));
        }
        j = j.with("esnap_clone", false);
        (IoTypes::lvol(lvol.read_only), J::obj().with("lvol", j))
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
