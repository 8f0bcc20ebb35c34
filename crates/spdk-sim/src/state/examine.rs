//! Examine: what happens when a bdev appears (lvstore load from the device, raid superblock
//! re-assembly, configuring raids waiting for a member by name), and raid superblock I/O.

use super::Target;
use super::bdev::{Bdev, BdevKind, Claimer};
use super::lvs::LvStore;
use super::raid::{self, Raid, RaidState, SbState, Superblock};
use crate::disk::device;
use std::time::Instant;
use uuid::Uuid;

impl Target {
    // ----- examine --------------------------------------------------------------------------

    pub(super) fn examine(&mut self, name: &str) {
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
}
