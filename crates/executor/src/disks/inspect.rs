//! Collecting block-device facts (I/O): `/sys/class/block`, `mountinfo`, `/proc/swaps`,
//! the udev database and `/dev/disk/by-id` are read under a root prefix (fixtures in
//! tests); the devices themselves are opened at their real paths, read-only, and only
//! their first [`SIGNATURE_BYTES`] are read.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::facts::{
    BlockEntry, DevNum, DeviceFacts, HostBlocks, Lookup, UdevData, parse_mountinfo, parse_swaps,
    parse_udev,
};
use super::signature::{SIGNATURE_BYTES, detect};

/// A host file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// Reading a file or directory under the root failed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file, root included.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Reads block-device facts; host files under `root`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspector {
    root: PathBuf,
}

fn optional(path: &Path) -> Result<Option<String>, InspectError> {
    match fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(None)
        }
        Err(source) => Err(InspectError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn dir_names(path: &Path) -> Result<Vec<String>, InspectError> {
    let rd = match fs::read_dir(path) {
        Ok(rd) => rd,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(Vec::new());
        }
        Err(source) => {
            return Err(InspectError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let mut out: Vec<String> = rd
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    out.sort();
    Ok(out)
}

/// What a path that is not a block device is.
fn describe(ft: fs::FileType) -> &'static str {
    if ft.is_file() {
        "regular file"
    } else if ft.is_dir() {
        "directory"
    } else if ft.is_char_device() {
        "character device"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_fifo() {
        "fifo"
    } else {
        "not a device"
    }
}

/// The device number of the block device at the real `path` (symlinks followed).
pub fn dev_of(path: &Path) -> Result<DevNum, String> {
    let m = fs::metadata(path).map_err(|e| e.to_string())?;
    if !m.file_type().is_block_device() {
        return Err(format!(
            "is not a block device ({})",
            describe(m.file_type())
        ));
    }
    let rdev = m.rdev();
    let major = u32::try_from(nix::sys::stat::major(rdev)).map_err(|e| e.to_string())?;
    let minor = u32::try_from(nix::sys::stat::minor(rdev)).map_err(|e| e.to_string())?;
    Ok(DevNum::new(major, minor))
}

/// Alignment (and length granularity) of the executor's direct reads: the largest logical
/// block size in use.
const DIRECT_ALIGN: usize = 4096;

/// Reads up to `limit` bytes from the start of the real `path` without leaving them in the
/// kernel's page cache.
///
/// Why: SPDK's aio bdev (v24.09 always, later versions with `nowait`) writes to block
/// devices with `O_DIRECT` and `RWF_NOWAIT`. A direct write over pages the device's page
/// cache holds must invalidate them, which `RWF_NOWAIT` forbids: the kernel answers
/// `EAGAIN`, SPDK retries it as "no memory", forever, and every metadata update of the
/// lvstore hangs (seen on v24.09 with lvol creation after this read). So a block device is
/// read with `O_DIRECT` (the cache is never filled); where the file refuses `O_DIRECT`
/// (a regular file on tmpfs, in tests) the read is buffered and its pages dropped.
pub fn read_head(path: &Path, limit: usize) -> Result<Vec<u8>, String> {
    match read_direct(path, limit) {
        Ok(b) => Ok(b),
        Err(e) if e.raw_os_error() == Some(nix::libc::EINVAL) => {
            let f = fs::File::open(path).map_err(|e| e.to_string())?;
            let mut buf = Vec::with_capacity(limit);
            (&f).take(limit as u64)
                .read_to_end(&mut buf)
                .map_err(|e| e.to_string())?;
            drop_cached(&f);
            Ok(buf)
        }
        Err(e) => Err(e.to_string()),
    }
}

/// `limit` bytes (fewer at the end of the device) read with `O_DIRECT` into an aligned
/// buffer.
fn read_direct(path: &Path, limit: usize) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECT)
        .open(path)?;
    let len = limit.div_ceil(DIRECT_ALIGN) * DIRECT_ALIGN;
    let mut raw = vec![0u8; len + DIRECT_ALIGN];
    let off = raw.as_ptr().align_offset(DIRECT_ALIGN);
    let buf = raw
        .get_mut(off..off + len)
        .ok_or_else(|| std::io::Error::other("aligned buffer out of range"))?;
    let mut got = 0;
    while got < len {
        let n = f.read(buf.get_mut(got..).unwrap_or_default())?;
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(buf.get(..got.min(limit)).unwrap_or_default().to_vec())
}

/// Drops the clean pages the kernel caches for `f` (a block device or a file); see
/// [`read_head`] for why. Best effort: failing leaves the cache as it was.
fn drop_cached(f: &fs::File) {
    use nix::fcntl::{PosixFadviseAdvice, posix_fadvise};
    let _ = posix_fadvise(f, 0, 0, PosixFadviseAdvice::POSIX_FADV_DONTNEED);
}

/// Drops what the page cache holds of the block device at `path` (pages other readers
/// such as udev's blkid left), so SPDK's direct `RWF_NOWAIT` writes cannot stall on them.
pub fn forget_cached_pages(path: &Path) {
    if let Ok(f) = fs::File::open(path) {
        drop_cached(&f);
    }
}

impl Inspector {
    /// Host files under `root` (`/` in production).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root prefix.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn p(&self, host_path: &str) -> PathBuf {
        self.root.join(host_path.trim_start_matches('/'))
    }

    fn entry(&self, name: &str) -> Result<BlockEntry, InspectError> {
        let dir = self.p(&format!("/sys/class/block/{name}"));
        let read = |f: &str| optional(&dir.join(f));
        let mut partitions = Vec::new();
        for n in dir_names(&dir)? {
            if dir.join(&n).join("partition").is_file() {
                partitions.push(n);
            }
        }
        let dm_name = if dir.join("dm").is_dir() {
            Some(read("dm/name")?.unwrap_or_default().trim().to_string())
        } else {
            None
        };
        Ok(BlockEntry {
            name: name.to_string(),
            dev: read("dev")?.as_deref().and_then(DevNum::parse),
            size_bytes: read("size")?
                .and_then(|s| s.trim().parse::<u64>().ok())
                .map_or(0, |s| s.saturating_mul(512)),
            partition: dir.join("partition").is_file(),
            partitions,
            holders: dir_names(&dir.join("holders"))?,
            slaves: dir_names(&dir.join("slaves"))?,
            dm_name,
            read_only: read("ro")?.is_some_and(|s| s.trim() == "1"),
            model: read("device/model")?.map(|s| s.trim().to_string()),
        })
    }

    /// The kernel name a `/dev/...` path resolves to, if it is a known block device.
    fn name_of(&self, entries: &BTreeMap<String, BlockEntry>, path: &str) -> Option<String> {
        let base = |p: &Path| {
            p.file_name()
                .and_then(|n| n.to_str())
                .map(str::to_string)
                .filter(|n| entries.contains_key(n))
        };
        if !path.starts_with("/dev/") {
            return None;
        }
        fs::canonicalize(self.p(path))
            .ok()
            .and_then(|c| base(&c))
            .or_else(|| base(Path::new(path)))
    }

    /// Reads the host-wide facts: block devices, mounts, swaps, by-id names, the root
    /// device.
    pub fn host(&self) -> Result<HostBlocks, InspectError> {
        let mut entries = BTreeMap::new();
        for name in dir_names(&self.p("/sys/class/block"))? {
            let e = self.entry(&name)?;
            entries.insert(name, e);
        }
        let mut mounts =
            parse_mountinfo(&optional(&self.p("/proc/self/mountinfo"))?.unwrap_or_default());
        for m in &mut mounts {
            m.source_name = self.name_of(&entries, &m.source);
        }
        let swaps = parse_swaps(&optional(&self.p("/proc/swaps"))?.unwrap_or_default())
            .iter()
            .filter_map(|p| self.name_of(&entries, p))
            .collect();
        let mut h = HostBlocks {
            entries,
            mounts,
            swaps,
            root_device: None,
            by_id: BTreeMap::new(),
        };
        if let Some(m) = h.mounts.iter().rev().find(|m| m.mount_point == "/") {
            h.root_device = h
                .by_dev(m.dev)
                .map(|e| e.name.clone())
                .or_else(|| m.source_name.clone());
        }
        let by_id_dir = self.p("/dev/disk/by-id");
        for link in dir_names(&by_id_dir)? {
            if let Ok(target) = fs::read_link(by_id_dir.join(&link))
                && let Some(name) = target.file_name().and_then(|n| n.to_str())
            {
                h.by_id.entry(name.to_string()).or_default().push(link);
            }
        }
        Ok(h)
    }

    fn udev(&self, dev: DevNum) -> UdevData {
        optional(&self.p(&format!("/run/udev/data/b{dev}")))
            .ok()
            .flatten()
            .map(|t| parse_udev(&t))
            .unwrap_or_default()
    }

    /// The facts of the device at `path` (a real path), reading its first bytes when
    /// `read_signature`.
    pub fn device(&self, host: &HostBlocks, path: &str, read_signature: bool) -> DeviceFacts {
        let real = Path::new(path);
        let meta = match fs::metadata(real) {
            Ok(m) => m,
            Err(e) => return DeviceFacts::missing(path, e.to_string()),
        };
        let canonical = fs::canonicalize(real).ok().map(|c| c.display().to_string());
        let mut f = DeviceFacts::missing(path, String::new());
        f.canonical = canonical;
        if !meta.file_type().is_block_device() {
            f.lookup = Lookup::NotBlock(describe(meta.file_type()).to_string());
            return f;
        }
        let dev = match dev_of(real) {
            Ok(d) => d,
            Err(r) => {
                f.lookup = Lookup::Missing(r);
                return f;
            }
        };
        f.lookup = Lookup::Block(dev);
        forget_cached_pages(real);
        f.entry = host.by_dev(dev).cloned();
        f.udev = self.udev(dev);
        if let Some(name) = f.name() {
            f.by_id = host.by_id.get(name).cloned().unwrap_or_default();
        }
        let size = f.entry.as_ref().map_or(0, |e| e.size_bytes);
        if read_signature && size > 0 {
            let limit = usize::try_from(size)
                .unwrap_or(usize::MAX)
                .min(SIGNATURE_BYTES);
            f.signature = Some(read_head(real, limit).map(|b| detect(&b)));
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disks::rules;

    fn write(root: &Path, p: &str, content: &str) {
        let path = root.join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    /// A sysfs tree laid out like the kernel's: class links into /sys/devices.
    fn fixture() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        let dev = |name: &str, parent: Option<&str>, devnum: &str, sectors: &str| {
            let dir = match parent {
                Some(p) => format!("sys/devices/virtual/block/{p}/{name}"),
                None => format!("sys/devices/virtual/block/{name}"),
            };
            write(r, &format!("{dir}/dev"), &format!("{devnum}\n"));
            write(r, &format!("{dir}/size"), &format!("{sectors}\n"));
            write(r, &format!("{dir}/ro"), "0\n");
            fs::create_dir_all(r.join(&dir).join("holders")).unwrap();
            fs::create_dir_all(r.join(&dir).join("slaves")).unwrap();
            if parent.is_some() {
                write(r, &format!("{dir}/partition"), "1\n");
            }
            fs::create_dir_all(r.join("sys/class/block")).unwrap();
            std::os::unix::fs::symlink(
                format!("../../{dir}").replace("sys/", ""),
                r.join("sys/class/block").join(name),
            )
            .unwrap();
        };
        dev("vda", None, "254:0", "2097152");
        dev("vda1", Some("vda"), "254:1", "2097000");
        dev("loop3", None, "7:3", "131072");
        dev("dm-0", None, "253:0", "1000");
        write(r, "sys/devices/virtual/block/dm-0/dm/name", "vg-data\n");
        fs::create_dir_all(r.join("sys/devices/virtual/block/loop3/holders/dm-0")).unwrap();
        write(
            r,
            "proc/self/mountinfo",
            "27 1 254:1 / / rw - ext4 /dev/vda1 rw\n90 27 253:0 / /data rw - xfs /dev/mapper/vg-data rw\n",
        );
        write(r, "proc/swaps", "Filename Type Size Used Priority\n");
        fs::create_dir_all(r.join("dev/disk/by-id")).unwrap();
        std::os::unix::fs::symlink("../../loop3", r.join("dev/disk/by-id/virtio-abc")).unwrap();
        write(r, "run/udev/data/b7:3", "E:ID_MODEL=SPDK_bdev_Controller\n");
        t
    }

    #[test]
    fn host_facts_from_a_sysfs_fixture() {
        let t = fixture();
        let h = Inspector::new(t.path()).host().unwrap();
        assert_eq!(
            h.entries.keys().collect::<Vec<_>>(),
            ["dm-0", "loop3", "vda", "vda1"]
        );
        let vda = &h.entries["vda"];
        assert_eq!(vda.partitions, ["vda1"]);
        assert_eq!(vda.size_bytes, 1 << 30);
        assert!(h.entries["vda1"].partition);
        assert_eq!(h.entries["loop3"].holders, ["dm-0"]);
        assert_eq!(h.entries["dm-0"].dm_name.as_deref(), Some("vg-data"));
        assert_eq!(h.root_device.as_deref(), Some("vda1"));
        assert_eq!(
            h.root_devices().into_iter().collect::<Vec<_>>(),
            ["vda", "vda1"]
        );
        assert_eq!(h.by_id["loop3"], ["virtio-abc"]);
        assert_eq!(
            h.mounts[1].source_name, None,
            "no /dev/mapper in the fixture"
        );
    }

    #[test]
    fn device_facts_of_a_non_device_and_a_missing_path() {
        let t = fixture();
        let ins = Inspector::new(t.path());
        let h = ins.host().unwrap();
        let file = t.path().join("plain");
        fs::write(&file, "x").unwrap();
        let f = ins.device(&h, &file.display().to_string(), true);
        assert_eq!(f.lookup, Lookup::NotBlock("regular file".into()));
        let f = ins.device(&h, "/dev/definitely-not-here", true);
        assert!(matches!(f.lookup, Lookup::Missing(_)));
        let r = rules::exclusions(&f, &h, false);
        assert!(r[0].to_string().starts_with("cannot be opened:"), "{r:?}");
    }

    #[test]
    fn an_empty_root_gives_no_devices() {
        let t = tempfile::tempdir().unwrap();
        let h = Inspector::new(t.path()).host().unwrap();
        assert!(h.entries.is_empty() && h.mounts.is_empty() && h.root_device.is_none());
    }
}
