//! Which devices may become a v2engine disk (pure): the exclusion rules over collected
//! [`DeviceFacts`] and [`HostBlocks`].
//!
//! A device is refused when it is not a block device, is mounted or used as swap, holds
//! `/`, is a device-mapper device or is in use by one (holders), is an NVMe namespace that
//! SPDK itself exports, is read-only or empty, or — unless `force_format` — has partitions
//! or a foreign signature. An SPDK blobstore is not foreign: it is an lvstore to import.

use std::fmt;

use super::facts::{DeviceFacts, HostBlocks, Lookup};
use super::signature::Signature;

/// The model string of SPDK's NVMe-oF controllers.
pub const SPDK_MODEL: &str = "SPDK bdev Controller";
/// The same in udev's by-id names and `ID_MODEL`.
pub const SPDK_MODEL_ID: &str = "SPDK_bdev_Controller";

/// Why a device cannot be a v2engine disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exclusion {
    /// The path does not exist or cannot be inspected.
    Missing(String),
    /// Not a block device.
    NotBlockDevice(String),
    /// A block device sysfs does not list.
    UnknownToSysfs(String),
    /// Size 0 (e.g. a loop device without a backing file).
    Empty,
    /// Read-only.
    ReadOnly,
    /// It or one of its partitions is mounted: `(device, mount point)`.
    Mounted(Vec<(String, String)>),
    /// It or one of its partitions is active swap.
    Swap(Vec<String>),
    /// It holds the root filesystem.
    RootDisk,
    /// A device-mapper device.
    DeviceMapper(String),
    /// Other devices are built on it (dm, md, bcache).
    Holders(Vec<String>),
    /// An NVMe namespace exported by SPDK itself; the evidence.
    SpdkExport(String),
    /// It has partitions (overridable with `force_format`).
    Partitions(Vec<String>),
    /// It holds a foreign signature (overridable with `force_format`).
    Signature(Signature),
    /// Its first bytes cannot be read.
    Unreadable(String),
}

impl Exclusion {
    /// True when `force_format` lifts this exclusion.
    pub fn overridable(&self) -> bool {
        matches!(self, Self::Partitions(_) | Self::Signature(_))
    }
}

fn join(v: &[String]) -> String {
    v.join(", ")
}

impl fmt::Display for Exclusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing(r) => write!(f, "cannot be opened: {r}"),
            Self::NotBlockDevice(what) => write!(f, "is not a block device ({what})"),
            Self::UnknownToSysfs(dev) => {
                write!(
                    f,
                    "is block device {dev}, which /sys/class/block does not list"
                )
            }
            Self::Empty => f.write_str("has size 0"),
            Self::ReadOnly => f.write_str("is read-only"),
            Self::Mounted(m) => {
                let list: Vec<String> = m.iter().map(|(d, p)| format!("{d} on {p}")).collect();
                write!(f, "is mounted ({})", list.join(", "))
            }
            Self::Swap(d) => write!(f, "is in use as swap ({})", join(d)),
            Self::RootDisk => f.write_str("holds the root filesystem"),
            Self::DeviceMapper(n) => write!(f, "is a device-mapper device ({n})"),
            Self::Holders(h) => write!(f, "is in use by {}", join(h)),
            Self::SpdkExport(e) => {
                write!(f, "is an NVMe namespace exported by SPDK itself ({e})")
            }
            Self::Partitions(p) => write!(
                f,
                "has partitions ({}); set force_format to overwrite them",
                join(p)
            ),
            Self::Signature(s) => write!(f, "has {s}; set force_format to overwrite it"),
            Self::Unreadable(r) => write!(f, "cannot be read: {r}"),
        }
    }
}

/// Evidence that the device is an NVMe namespace of an SPDK NVMe-oF target.
pub fn spdk_export_evidence(dev: &DeviceFacts) -> Option<String> {
    let props = &dev.udev.properties;
    if let Some(m) = props.get("ID_MODEL")
        && (m.trim() == SPDK_MODEL || m.trim() == SPDK_MODEL_ID)
    {
        return Some(format!("udev ID_MODEL {:?}", m.trim()));
    }
    if let Some(m) = props.get("ID_MODEL_ENC")
        && super::facts::udev_unescape(m).trim() == SPDK_MODEL
    {
        return Some(format!("udev ID_MODEL {SPDK_MODEL:?}"));
    }
    if let Some(m) = dev.entry.as_ref().and_then(|e| e.model.as_deref())
        && m.trim() == SPDK_MODEL
    {
        return Some(format!("sysfs model {SPDK_MODEL:?}"));
    }
    let mut names = dev.udev.links.iter().chain(&dev.by_id);
    if let Some(l) = names.find(|l| l.contains(SPDK_MODEL_ID)) {
        return Some(format!("by-id name {l}"));
    }
    if dev.path.contains(SPDK_MODEL_ID) {
        return Some(format!("path {}", dev.path));
    }
    None
}

/// Every reason `dev` cannot be a disk. With `force_format`, partitions and signatures do
/// not count. Empty means the device may be used.
pub fn exclusions(dev: &DeviceFacts, host: &HostBlocks, force_format: bool) -> Vec<Exclusion> {
    let all = all_exclusions(dev, host);
    all.into_iter()
        .filter(|e| !(force_format && e.overridable()))
        .collect()
}

/// Every reason, overridable ones included.
pub fn all_exclusions(dev: &DeviceFacts, host: &HostBlocks) -> Vec<Exclusion> {
    let dn = match &dev.lookup {
        Lookup::Missing(r) => return vec![Exclusion::Missing(r.clone())],
        Lookup::NotBlock(what) => return vec![Exclusion::NotBlockDevice(what.clone())],
        Lookup::Block(d) => *d,
    };
    let Some(entry) = &dev.entry else {
        return vec![Exclusion::UnknownToSysfs(dn.to_string())];
    };
    let mut out = Vec::new();
    let mut family: Vec<&str> = vec![entry.name.as_str()];
    family.extend(entry.partitions.iter().map(String::as_str));
    let devs: Vec<_> = family
        .iter()
        .filter_map(|n| host.entries.get(*n).and_then(|e| e.dev))
        .chain([dn])
        .collect();

    if host.root_devices().contains(&entry.name) {
        out.push(Exclusion::RootDisk);
    }
    let mounted: Vec<(String, String)> = host
        .mounts
        .iter()
        .filter(|m| {
            devs.contains(&m.dev)
                || m.source_name
                    .as_deref()
                    .is_some_and(|s| family.contains(&s))
        })
        .map(|m| {
            let name = host
                .by_dev(m.dev)
                .map(|e| format!("/dev/{}", e.name))
                .unwrap_or_else(|| m.source.clone());
            (name, m.mount_point.clone())
        })
        .collect();
    if !mounted.is_empty() {
        out.push(Exclusion::Mounted(mounted));
    }
    let swaps: Vec<String> = family
        .iter()
        .filter(|n| host.swaps.contains(**n))
        .map(|n| format!("/dev/{n}"))
        .collect();
    if !swaps.is_empty() {
        out.push(Exclusion::Swap(swaps));
    }
    if let Some(dm) = &entry.dm_name {
        out.push(Exclusion::DeviceMapper(if dm.is_empty() {
            entry.name.clone()
        } else {
            format!("{}, {dm}", entry.name)
        }));
    }
    let mut holders: Vec<String> = family
        .iter()
        .filter_map(|n| host.entries.get(*n))
        .flat_map(|e| e.holders.iter().cloned())
        .collect();
    holders.extend(entry.holders.iter().cloned());
    holders.sort();
    holders.dedup();
    if !holders.is_empty() {
        out.push(Exclusion::Holders(holders));
    }
    if let Some(e) = spdk_export_evidence(dev) {
        out.push(Exclusion::SpdkExport(e));
    }
    if entry.size_bytes == 0 {
        out.push(Exclusion::Empty);
    }
    if entry.read_only {
        out.push(Exclusion::ReadOnly);
    }
    if !entry.partitions.is_empty() {
        out.push(Exclusion::Partitions(entry.partitions.clone()));
    }
    match &dev.signature {
        Some(Ok(s)) if s.is_foreign() => out.push(Exclusion::Signature(*s)),
        Some(Err(r)) => out.push(Exclusion::Unreadable(r.clone())),
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disks::facts::{BlockEntry, DevNum, MountEntry, UdevData};

    fn entry(name: &str, minor: u32) -> BlockEntry {
        BlockEntry {
            name: name.into(),
            dev: Some(DevNum::new(7, minor)),
            size_bytes: 64 << 20,
            ..Default::default()
        }
    }

    fn host(entries: Vec<BlockEntry>) -> HostBlocks {
        HostBlocks {
            entries: entries.into_iter().map(|e| (e.name.clone(), e)).collect(),
            ..Default::default()
        }
    }

    fn facts(h: &HostBlocks, name: &str) -> DeviceFacts {
        let e = h.entries[name].clone();
        DeviceFacts {
            path: format!("/dev/{name}"),
            canonical: Some(format!("/dev/{name}")),
            lookup: Lookup::Block(e.dev.unwrap_or(DevNum::new(0, 0))),
            entry: Some(e),
            udev: UdevData::default(),
            by_id: Vec::new(),
            signature: Some(Ok(Signature::None)),
        }
    }

    fn reasons(v: &[Exclusion]) -> Vec<String> {
        v.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_clean_device_is_accepted() {
        let h = host(vec![entry("loop3", 3)]);
        assert_eq!(exclusions(&facts(&h, "loop3"), &h, false), []);
        let mut f = facts(&h, "loop3");
        f.signature = Some(Ok(Signature::SpdkBlobstore));
        assert_eq!(exclusions(&f, &h, false), [], "an lvstore is imported");
    }

    #[test]
    fn missing_and_non_block_paths() {
        let h = host(vec![]);
        let f = DeviceFacts::missing("/dev/nope", "No such file or directory".into());
        assert_eq!(
            reasons(&exclusions(&f, &h, true)),
            ["cannot be opened: No such file or directory"]
        );
        let mut f = f.clone();
        f.lookup = Lookup::NotBlock("regular file".into());
        assert_eq!(
            reasons(&exclusions(&f, &h, true)),
            ["is not a block device (regular file)"]
        );
        f.lookup = Lookup::Block(DevNum::new(9, 9));
        assert_eq!(
            reasons(&exclusions(&f, &h, false)),
            ["is block device 9:9, which /sys/class/block does not list"]
        );
    }

    #[test]
    fn mounted_device_or_partition_is_refused_even_with_force() {
        let mut disk = entry("loop4", 4);
        disk.partitions = vec!["loop4p1".into()];
        let mut part = entry("loop4p1", 5);
        part.partition = true;
        let mut h = host(vec![disk, part]);
        h.mounts.push(MountEntry {
            dev: DevNum::new(7, 5),
            mount_point: "/mnt/data".into(),
            source: "/dev/loop4p1".into(),
            source_name: Some("loop4p1".into()),
        });
        let got = exclusions(&facts(&h, "loop4"), &h, true);
        assert_eq!(reasons(&got), ["is mounted (/dev/loop4p1 on /mnt/data)"]);
        let got = exclusions(&facts(&h, "loop4"), &h, false);
        assert_eq!(
            reasons(&got),
            [
                "is mounted (/dev/loop4p1 on /mnt/data)",
                "has partitions (loop4p1); set force_format to overwrite them",
            ]
        );
        // A mount found by its source only (btrfs reports an anonymous device number).
        let mut h2 = host(vec![entry("loop6", 6)]);
        h2.mounts.push(MountEntry {
            dev: DevNum::new(0, 44),
            mount_point: "/srv".into(),
            source: "/dev/loop6".into(),
            source_name: Some("loop6".into()),
        });
        assert_eq!(
            reasons(&exclusions(&facts(&h2, "loop6"), &h2, false)),
            ["is mounted (/dev/loop6 on /srv)"]
        );
    }

    #[test]
    fn partitions_and_signatures_yield_to_force_format() {
        let mut disk = entry("loop5", 5);
        disk.partitions = vec!["loop5p1".into(), "loop5p2".into()];
        let h = host(vec![disk]);
        let mut f = facts(&h, "loop5");
        f.signature = Some(Ok(Signature::PartitionTable("dos")));
        assert_eq!(
            reasons(&exclusions(&f, &h, false)),
            [
                "has partitions (loop5p1, loop5p2); set force_format to overwrite them",
                "has a partition table (dos); set force_format to overwrite it",
            ]
        );
        assert_eq!(exclusions(&f, &h, true), []);
        f.signature = Some(Err("Input/output error".into()));
        assert_eq!(
            reasons(&exclusions(&f, &h, true)),
            ["cannot be read: Input/output error"]
        );
    }

    #[test]
    fn root_disk_through_a_partition_and_lvm() {
        let mut sda = entry("sda", 0);
        sda.partitions = vec!["sda1".into()];
        let mut sda1 = entry("sda1", 1);
        sda1.partition = true;
        sda1.holders = vec!["dm-0".into()];
        let mut dm = entry("dm-0", 2);
        dm.dm_name = Some("vg-root".into());
        dm.slaves = vec!["sda1".into()];
        let mut h = host(vec![sda, sda1, dm, entry("sdb", 3)]);
        h.root_device = Some("dm-0".into());
        assert_eq!(
            reasons(&exclusions(&facts(&h, "sda"), &h, true)),
            ["holds the root filesystem", "is in use by dm-0"]
        );
        assert_eq!(
            reasons(&exclusions(&facts(&h, "dm-0"), &h, true)),
            [
                "holds the root filesystem",
                "is a device-mapper device (dm-0, vg-root)"
            ]
        );
        assert_eq!(exclusions(&facts(&h, "sdb"), &h, false), []);
    }

    #[test]
    fn swap_empty_and_read_only() {
        let mut z = entry("zram0", 0);
        z.read_only = true;
        let mut l = entry("loop9", 9);
        l.size_bytes = 0;
        let mut h = host(vec![z, l]);
        h.swaps.insert("zram0".into());
        assert_eq!(
            reasons(&exclusions(&facts(&h, "zram0"), &h, true)),
            ["is in use as swap (/dev/zram0)", "is read-only"]
        );
        assert_eq!(
            reasons(&exclusions(&facts(&h, "loop9"), &h, true)),
            ["has size 0"]
        );
    }

    #[test]
    fn spdk_exported_nvme_by_udev_sysfs_or_by_id() {
        let mut nvme = entry("nvme1n1", 1);
        nvme.dev = Some(DevNum::new(259, 1));
        let h = host(vec![nvme]);
        let base = facts(&h, "nvme1n1");

        let mut f = base.clone();
        f.udev = crate::disks::facts::parse_udev("E:ID_MODEL=SPDK bdev Controller\n");
        assert_eq!(
            reasons(&exclusions(&f, &h, true)),
            [
                "is an NVMe namespace exported by SPDK itself (udev ID_MODEL \"SPDK bdev Controller\")"
            ]
        );
        let mut f = base.clone();
        f.udev = crate::disks::facts::parse_udev(
            "E:ID_MODEL_ENC=SPDK\\x20bdev\\x20Controller\\x20\\x20\\x20\n",
        );
        assert!(spdk_export_evidence(&f).is_some());
        let mut f = base.clone();
        f.by_id = vec!["nvme-SPDK_bdev_Controller_SPDK00000000000001".into()];
        assert_eq!(
            spdk_export_evidence(&f).as_deref(),
            Some("by-id name nvme-SPDK_bdev_Controller_SPDK00000000000001")
        );
        let mut f = base.clone();
        if let Some(e) = f.entry.as_mut() {
            e.model = Some("SPDK bdev Controller                    ".into());
        }
        assert_eq!(
            spdk_export_evidence(&f).as_deref(),
            Some("sysfs model \"SPDK bdev Controller\"")
        );
        let mut f = base;
        f.udev = crate::disks::facts::parse_udev("E:ID_MODEL=Samsung SSD 980\n");
        assert_eq!(spdk_export_evidence(&f), None);
    }
}
