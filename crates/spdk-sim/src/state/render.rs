//! `bdev_get_bdevs` objects.

use super::Target;
use super::bdev::{self, Bdev, BdevKind, IoTypes};
use crate::json::J;
use std::time::Instant;
use uuid::Uuid;

impl Target {
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
