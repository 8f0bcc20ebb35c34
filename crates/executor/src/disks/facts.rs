//! Facts about block devices, as collected by [`super::inspect`], and the pure parsers of
//! the kernel and udev files they come from (`/sys/class/block/*/dev`, `mountinfo`,
//! `/proc/swaps`, `/run/udev/data/b<maj>:<min>`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::signature::Signature;

/// A device number, `major:minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DevNum {
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
}

impl DevNum {
    /// `major:minor`.
    pub const fn new(major: u32, minor: u32) -> Self {
        Self { major, minor }
    }

    /// Parses `8:16` (trailing whitespace allowed).
    pub fn parse(text: &str) -> Option<Self> {
        let (a, b) = text.trim().split_once(':')?;
        Some(Self::new(a.parse().ok()?, b.parse().ok()?))
    }
}

impl fmt::Display for DevNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

/// One entry of `/sys/class/block`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockEntry {
    /// Kernel name (`sda`, `loop3`, `nvme0n1p1`, `dm-0`).
    pub name: String,
    /// Its device number.
    pub dev: Option<DevNum>,
    /// Size in bytes (`size` × 512).
    pub size_bytes: u64,
    /// A partition of another entry.
    pub partition: bool,
    /// Its partitions (entries below it with a `partition` file).
    pub partitions: Vec<String>,
    /// Devices built on it (`holders/`: dm, md, bcache).
    pub holders: Vec<String>,
    /// Devices it is built on (`slaves/`).
    pub slaves: Vec<String>,
    /// `Some(dm name)` for a device-mapper device (`dm/` exists).
    pub dm_name: Option<String>,
    /// `ro` is 1.
    pub read_only: bool,
    /// `device/model`, trimmed (the NVMe controller's model).
    pub model: Option<String>,
}

/// A line of `mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// Field 3, `major:minor` of the mounted device.
    pub dev: DevNum,
    /// Where it is mounted (octal escapes decoded).
    pub mount_point: String,
    /// The mount source (`/dev/sda1`, `overlay`, ...).
    pub source: String,
    /// The kernel name the source resolves to, filled in by the inspector.
    pub source_name: Option<String>,
}

/// The udev database entry of a device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UdevData {
    /// `E:KEY=VALUE` properties.
    pub properties: BTreeMap<String, String>,
    /// `S:` symlinks (relative to /dev).
    pub links: Vec<String>,
}

/// What the host looks like as far as block devices go; read once per request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostBlocks {
    /// `/sys/class/block`, by kernel name.
    pub entries: BTreeMap<String, BlockEntry>,
    /// `mountinfo`.
    pub mounts: Vec<MountEntry>,
    /// Kernel names of the block devices in `/proc/swaps`.
    pub swaps: BTreeSet<String>,
    /// Kernel name of the device holding `/`, when it is a block device.
    pub root_device: Option<String>,
    /// `/dev/disk/by-id` names by the kernel name they point at.
    pub by_id: BTreeMap<String, Vec<String>>,
}

impl HostBlocks {
    /// The entry with device number `dev`.
    pub fn by_dev(&self, dev: DevNum) -> Option<&BlockEntry> {
        self.entries.values().find(|e| e.dev == Some(dev))
    }

    /// The disk a partition belongs to.
    pub fn parent_of(&self, name: &str) -> Option<&BlockEntry> {
        self.entries
            .values()
            .find(|e| e.partitions.iter().any(|p| p == name))
    }

    /// The devices whose loss would take `/` with it: the root device, the disk it is a
    /// partition of, and everything it is built on (dm/md slaves), recursively.
    pub fn root_devices(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut todo: Vec<String> = self.root_device.iter().cloned().collect();
        while let Some(n) = todo.pop() {
            if !out.insert(n.clone()) {
                continue;
            }
            if let Some(p) = self.parent_of(&n) {
                todo.push(p.name.clone());
            }
            if let Some(e) = self.entries.get(&n) {
                todo.extend(e.slaves.iter().cloned());
            }
        }
        out
    }
}

/// How the path of a disk resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The path does not exist or cannot be inspected.
    Missing(String),
    /// Not a block device; says what it is.
    NotBlock(String),
    /// A block device.
    Block(DevNum),
}

/// Everything the exclusion rules look at for one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceFacts {
    /// The path as given.
    pub path: String,
    /// The path with symlinks resolved.
    pub canonical: Option<String>,
    /// What the path is.
    pub lookup: Lookup,
    /// Its `/sys/class/block` entry.
    pub entry: Option<BlockEntry>,
    /// Its udev database entry.
    pub udev: UdevData,
    /// `/dev/disk/by-id` names pointing at it.
    pub by_id: Vec<String>,
    /// Its first bytes: `None` when not read, `Some(Err)` when unreadable.
    pub signature: Option<Result<Signature, String>>,
}

impl DeviceFacts {
    /// Facts of a path that could not be resolved.
    pub fn missing(path: &str, reason: String) -> Self {
        Self {
            path: path.to_string(),
            canonical: None,
            lookup: Lookup::Missing(reason),
            entry: None,
            udev: UdevData::default(),
            by_id: Vec::new(),
            signature: None,
        }
    }

    /// The device number, for block devices.
    pub fn dev(&self) -> Option<DevNum> {
        match self.lookup {
            Lookup::Block(d) => Some(d),
            _ => None,
        }
    }

    /// The kernel name, when sysfs knows the device.
    pub fn name(&self) -> Option<&str> {
        self.entry.as_ref().map(|e| e.name.as_str())
    }
}

/// Decodes mountinfo's octal escapes (`\040` is a space).
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `/proc/self/mountinfo`; malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let f: Vec<&str> = pre.split(' ').collect();
            let dev = DevNum::parse(f.get(2)?)?;
            let mount_point = unescape(f.get(4)?);
            let source = unescape(post.split(' ').nth(1)?);
            Some(MountEntry {
                dev,
                mount_point,
                source,
                source_name: None,
            })
        })
        .collect()
}

/// The paths of `/proc/swaps` (header skipped).
pub fn parse_swaps(text: &str) -> Vec<String> {
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(unescape)
        .collect()
}

/// Parses a udev database file (`E:KEY=VALUE`, `S:link` lines).
pub fn parse_udev(text: &str) -> UdevData {
    let mut d = UdevData::default();
    for line in text.lines() {
        if let Some(kv) = line.strip_prefix("E:") {
            if let Some((k, v)) = kv.split_once('=') {
                d.properties.insert(k.to_string(), v.to_string());
            }
        } else if let Some(link) = line.strip_prefix("S:") {
            d.links.push(link.to_string());
        }
    }
    d
}

/// Decodes udev's `\xNN` escapes (as in `ID_MODEL_ENC`).
pub fn udev_unescape(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && b.get(i + 1) == Some(&b'x')
            && let Some(v) = s
                .get(i + 2..i + 4)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devnums() {
        assert_eq!(DevNum::parse("8:16\n"), Some(DevNum::new(8, 16)));
        assert_eq!(DevNum::parse("8"), None);
        assert_eq!(DevNum::new(7, 3).to_string(), "7:3");
    }

    #[test]
    fn mountinfo_lines() {
        let t = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n\
                 90 27 7:3 / /tmp/with\\040space rw shared:5 - ext4 /dev/loop3 rw\n\
                 garbage\n";
        let m = parse_mountinfo(t);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].dev, DevNum::new(254, 0));
        assert_eq!(
            (m[0].mount_point.as_str(), m[0].source.as_str()),
            ("/", "/dev/vda")
        );
        assert_eq!(m[1].mount_point, "/tmp/with space");
        assert_eq!(m[1].source, "/dev/loop3");
    }

    #[test]
    fn swaps_and_udev() {
        let s = "Filename\tType\tSize\tUsed\tPriority\n/dev/zram0 partition 100 0 100\n";
        assert_eq!(parse_swaps(s), ["/dev/zram0"]);
        let u = parse_udev(
            "S:disk/by-id/nvme-SPDK_bdev_Controller_SPDK0\nE:ID_MODEL=SPDK_bdev_Controller\nE:ID_MODEL_ENC=SPDK\\x20bdev\\x20Controller\\x20\\x20\nI:123\n",
        );
        assert_eq!(u.links, ["disk/by-id/nvme-SPDK_bdev_Controller_SPDK0"]);
        assert_eq!(u.properties["ID_MODEL"], "SPDK_bdev_Controller");
        assert_eq!(
            udev_unescape(&u.properties["ID_MODEL_ENC"]).trim(),
            "SPDK bdev Controller"
        );
        assert_eq!(udev_unescape("a\\xzz"), "a\\xzz");
    }

    #[test]
    fn root_devices_follow_partitions_and_slaves() {
        let mut h = HostBlocks::default();
        let e = |name: &str, partitions: &[&str], slaves: &[&str]| BlockEntry {
            name: name.into(),
            partitions: partitions.iter().map(|s| s.to_string()).collect(),
            slaves: slaves.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        for b in [
            e("sda", &["sda1", "sda2"], &[]),
            e("sda2", &[], &[]),
            e("sdb", &[], &[]),
            e("dm-0", &[], &["sda2", "sdc"]),
            e("sdc", &[], &[]),
        ] {
            h.entries.insert(b.name.clone(), b);
        }
        assert!(h.root_devices().is_empty());
        h.root_device = Some("dm-0".into());
        let r: Vec<String> = h.root_devices().into_iter().collect();
        assert_eq!(r, ["dm-0", "sda", "sda2", "sdc"]);
    }
}
