//! Block-count changes and how they travel up the bdev stack, as in SPDK:
//!
//! * `spdk_bdev_notify_blockcnt_change` (lib/bdev/bdev.c) sets the new size and sends
//!   `SPDK_BDEV_EVENT_RESIZE` to every open descriptor; it refuses to **shrink** a bdev that
//!   has open descriptors (-EBUSY), the size then stays as it was.
//! * An lvol (`bdev_lvol_resize`, module/bdev/lvol/vbdev_lvol.c `_vbdev_lvol_resize_cb`): the
//!   blob is resized first, then the bdev is notified; a refused notification fails the RPC
//!   (-32602 with the errno text) with the blob already resized.
//! * An NVMe-oF namespace on the bdev (lib/nvmf/subsystem.c `nvmf_ns_event` → `nvmf_ns_resize`
//!   → `nvmf_subsystem_ns_changed`): every connected controller gets a "namespace attribute
//!   changed" asynchronous event. Here: the namespace list with the new size is pushed to every
//!   connected host over the fabric (`fabric::proto::ToHost::Namespaces`).
//! * The host (module/bdev/nvme/bdev_nvme.c `aer_cb` → `nvme_ctrlr_populate_namespaces`):
//!   re-reads the namespace and, when `num_sectors` differs, notifies its nvme bdev
//!   ("NSID n is resized"). Here: [`Target::apply_namespaces`] when the list arrives.
//! * A raid member (module/bdev/raid/bdev_raid.c `raid_bdev_resize_base_bdev` → the level's
//!   `resize`): raid1 (`raid1_resize`) becomes the smallest present member minus its data
//!   offset, so it grows only once **every** present member has grown (a missing member is
//!   skipped); raid0 (`raid0_resize`) becomes that minimum rounded down to the strip size times
//!   the member count; concat has no `resize` and keeps its size. When the size changed, every
//!   slot's `data_size` is updated and a superblock raid rewrites its superblock.
//! * An lvstore on the bdev does not grow by itself (`bdev_lvol_grow_lvstore`, not simulated).

use super::Target;
use super::bdev::Claimer;
use super::raid::{RaidLevel, RaidState};
use crate::rpc_error::errno;
use uuid::Uuid;

impl Target {
    /// `spdk_bdev_notify_blockcnt_change(name, blocks)` and the resize event to its consumer.
    ///
    /// # Errors
    /// The positive errno: `ENODEV` for an unknown bdev, `EBUSY` when shrinking a bdev that
    /// has consumers (open descriptors); nothing changes then.
    pub fn notify_blockcnt_change(&mut self, name: &str, blocks: u64) -> Result<(), i32> {
        let Some(b) = self.bdev_mut(name) else {
            return Err(errno::ENODEV);
        };
        if b.num_blocks == blocks {
            return Ok(());
        }
        if blocks < b.num_blocks && b.claim.is_some() {
            return Err(errno::EBUSY);
        }
        b.num_blocks = blocks;
        let registry_name = b.name.clone();
        match b.claim.clone() {
            Some(Claimer::Raid(raid)) => self.raid_base_resized(&raid, &registry_name),
            Some(Claimer::Nvmf(nqn)) => self.notify_hosts(&nqn),
            Some(Claimer::Lvstore(_)) | None => {}
        }
        Ok(())
    }

    /// Makes the bdevs of lvstore `uuid`'s lvols as large as their blobs; returns the lvols
    /// whose bdev could not follow (a shrink refused with `EBUSY`).
    pub(super) fn refresh_lvol_sizes(&mut self, uuid: Uuid) -> Vec<(Uuid, i32)> {
        let Some(idx) = self.lvs_index(uuid) else {
            return Vec::new();
        };
        let lvs = &self.lvstores[idx];
        let wanted: Vec<(Uuid, u64)> = lvs
            .lvols
            .iter()
            .map(|l| (l.uuid, lvs.blocks(l.num_clusters)))
            .collect();
        let mut refused = Vec::new();
        for (lvol, blocks) in wanted {
            match self.notify_blockcnt_change(&lvol.to_string(), blocks) {
                Ok(()) | Err(errno::ENODEV) => {}
                Err(e) => {
                    eprintln!(
                        "spdk-sim: Could not change num blocks for bdev lvol {lvol} with error no: -{e}."
                    );
                    refused.push((lvol, e));
                }
            }
        }
        refused
    }

    /// `raid_bdev_resize_base_bdev`: member `member` (registry name) of raid `raid` was resized.
    fn raid_base_resized(&mut self, raid: &str, member: &str) {
        let Some(ri) = self.raids.iter().position(|r| r.name == raid) else {
            return;
        };
        let size_of = |t: &Self, bdev: &Option<String>| {
            bdev.as_deref()
                .and_then(|b| t.bdevs.iter().find(|x| x.name == b))
                .map(|b| b.num_blocks)
        };
        let r = &self.raids[ri];
        let Some(si) = r.slot_of(member) else {
            return;
        };
        match r.state {
            RaidState::Online => {}
            RaidState::Configuring => {
                // Not a bdev yet: it takes the member's size when it goes online.
                let blocks = size_of(self, &r.slots[si].bdev).unwrap_or(0);
                let slot = &mut self.raids[ri].slots[si];
                slot.data_size = blocks.saturating_sub(slot.data_offset);
                return;
            }
            RaidState::Offline => return,
        }
        // Smallest present member (raid1 skips missing ones; raid0 has all of them).
        let Some(min) = r
            .slots
            .iter()
            .filter(|s| s.configured)
            .filter_map(|s| size_of(self, &s.bdev).map(|n| n.saturating_sub(s.data_offset)))
            .min()
        else {
            return;
        };
        let (per_member, total) = match r.level {
            RaidLevel::Raid1 => (min, min),
            RaidLevel::Raid0 => {
                let strip = u64::from(r.strip_size_kb) * 1024 / u64::from(r.block_size.max(1));
                let per = min.checked_div(strip).map_or(min, |n| n * strip);
                (per, per * r.slots.len() as u64)
            }
            // concat has no resize callback: the base's new size is noted, the raid stays.
            RaidLevel::Concat => return,
        };
        if total == r.num_blocks {
            return;
        }
        let old = r.num_blocks;
        let (name, superblock) = (r.name.clone(), r.superblock);
        if let Err(e) = self.notify_blockcnt_change(&name, total) {
            eprintln!(
                "spdk-sim: raid bdev '{name}': failed to notify blockcount change {old} -> {total} (errno {e})"
            );
            return;
        }
        let r = &mut self.raids[ri];
        r.num_blocks = total;
        for s in &mut r.slots {
            s.data_size = per_member;
        }
        if superblock {
            self.write_superblock(ri);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::bdev::{Bdev, BdevKind};
    use super::super::raid::{Raid, Slot};
    use super::*;
    use crate::cli::Config;
    use std::time::Duration;

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

    fn raid_over(t: &mut Target, level: RaidLevel, strip_size_kb: u32, members: &[&str]) {
        t.raids.push(Raid {
            name: "r".into(),
            uuid: None,
            level,
            strip_size_kb,
            superblock: false,
            state: RaidState::Configuring,
            slots: members.iter().map(|m| Slot::waiting(m)).collect(),
            process: None,
            block_size: 0,
            num_blocks: 0,
            seq: 0,
        });
        let ri = t.raids.len() - 1;
        for m in members {
            let b = t.bdev(m).cloned().unwrap();
            let si = t.raids[ri]
                .slots
                .iter()
                .position(|s| s.name.as_deref() == Some(m));
            t.configure_slot(ri, si.unwrap(), &b);
        }
        t.maybe_online(ri);
    }

    fn raid_size(t: &Target) -> (u64, u64, Vec<u64>) {
        let r = &t.raids[0];
        (
            t.bdev("r").map_or(0, |b| b.num_blocks),
            r.num_blocks,
            r.slots.iter().map(|s| s.data_size).collect(),
        )
    }

    #[test]
    fn raid1_grows_to_the_smallest_member_once_every_member_grew() {
        let mut t = target();
        t.register(plain("a", 1000));
        t.register(plain("b", 1000));
        raid_over(&mut t, RaidLevel::Raid1, 0, &["a", "b"]);
        assert_eq!(raid_size(&t), (1000, 1000, vec![1000, 1000]));
        t.notify_blockcnt_change("a", 2000).unwrap();
        assert_eq!(
            raid_size(&t),
            (1000, 1000, vec![1000, 1000]),
            "b is still small"
        );
        t.notify_blockcnt_change("b", 1500).unwrap();
        assert_eq!(raid_size(&t), (1500, 1500, vec![1500, 1500]));
        t.notify_blockcnt_change("b", 2500).unwrap();
        assert_eq!(raid_size(&t), (2000, 2000, vec![2000, 2000]));
        // A claimed member cannot shrink (open descriptor).
        assert_eq!(t.notify_blockcnt_change("a", 100), Err(errno::EBUSY));
        assert_eq!(t.bdev("a").map(|b| b.num_blocks), Some(2000));
    }

    #[test]
    fn a_degraded_raid1_follows_its_remaining_member() {
        let mut t = target();
        t.register(plain("a", 1000));
        t.register(plain("b", 1000));
        raid_over(&mut t, RaidLevel::Raid1, 0, &["a", "b"]);
        t.unregister("b");
        t.notify_blockcnt_change("a", 3000).unwrap();
        assert_eq!(raid_size(&t), (3000, 3000, vec![3000, 3000]));
    }

    #[test]
    fn raid0_grows_by_whole_strips_and_concat_does_not_grow() {
        let mut t = target();
        t.register(plain("a", 1024));
        t.register(plain("b", 1024));
        raid_over(&mut t, RaidLevel::Raid0, 64, &["a", "b"]);
        assert_eq!(raid_size(&t).0, 2048);
        t.notify_blockcnt_change("a", 1500).unwrap();
        assert_eq!(raid_size(&t).0, 2048);
        t.notify_blockcnt_change("b", 1500).unwrap();
        // min 1500 rounded down to 128-block strips = 1408 per member.
        assert_eq!(raid_size(&t), (2816, 2816, vec![1408, 1408]));

        let mut t = target();
        t.register(plain("a", 1000));
        t.register(plain("b", 1000));
        raid_over(&mut t, RaidLevel::Concat, 64, &["a", "b"]);
        let before = raid_size(&t).0;
        t.notify_blockcnt_change("a", 4000).unwrap();
        t.notify_blockcnt_change("b", 4000).unwrap();
        assert_eq!(raid_size(&t).0, before);
    }

    #[test]
    fn unclaimed_bdevs_may_shrink_and_unknown_ones_are_enodev() {
        let mut t = target();
        t.register(plain("a", 1000));
        t.notify_blockcnt_change("a", 10).unwrap();
        assert_eq!(t.bdev("a").map(|b| b.num_blocks), Some(10));
        assert_eq!(t.notify_blockcnt_change("zz", 10), Err(errno::ENODEV));
    }
}
