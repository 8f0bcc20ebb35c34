//! Files and block devices behind aio bdevs: size, logical block size, metadata slots.

use super::meta::{self, HEADER_LEN, Record, SLOT_SIZE};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// An I/O failure on a device, naming the device.
#[derive(Debug, Error)]
pub enum DeviceError {
    /// Opening failed (missing path, permissions, ...).
    #[error("cannot open {path}: {source}")]
    Open {
        /// The device or file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Reading, writing, seeking or syncing failed.
    #[error("I/O on {path}: {source}")]
    Io {
        /// The device or file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The metadata payload does not fit its slot.
    #[error("metadata for {path} too large: {source}")]
    Encode {
        /// The device or file.
        path: PathBuf,
        /// Why.
        source: meta::MetaError,
    },
}

impl DeviceError {
    /// The errno SPDK would report for this failure.
    #[must_use]
    pub fn errno(&self) -> i32 {
        match self {
            DeviceError::Open { source, .. } | DeviceError::Io { source, .. } => source
                .raw_os_error()
                .unwrap_or(crate::rpc_error::errno::EIO),
            DeviceError::Encode { .. } => crate::rpc_error::errno::ENOSPC,
        }
    }
}

/// What `bdev_aio_create` learns about a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Size in bytes (seek to the end).
    pub size: u64,
    /// Logical block size: from sysfs for block devices, 0 (unknown) for regular files.
    pub logical_block_size: u32,
    /// Whether the path is a block device.
    pub is_block_device: bool,
}

/// Opens `path` the way the aio module does (read-write unless `readonly`) and measures it.
///
/// # Errors
/// [`DeviceError::Open`] when the path cannot be opened, [`DeviceError::Io`] when it cannot be measured.
pub fn probe(path: &Path, readonly: bool) -> Result<DeviceInfo, DeviceError> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(!readonly)
        .open(path)
        .map_err(|source| DeviceError::Open {
            path: path.to_owned(),
            source,
        })?;
    let io = |source| DeviceError::Io {
        path: path.to_owned(),
        source,
    };
    let size = file.seek(SeekFrom::End(0)).map_err(io)?;
    let md = file.metadata().map_err(io)?;
    let is_block_device = md.file_type().is_block_device();
    // SPDK asks the kernel (BLKSSZGET), which only block devices answer: 0 for a regular file.
    let logical_block_size = if is_block_device {
        sysfs_block_size(md.rdev()).unwrap_or(512)
    } else {
        0
    };
    Ok(DeviceInfo {
        size,
        logical_block_size,
        is_block_device,
    })
}

/// Splits a Linux `dev_t` into (major, minor) (glibc's encoding).
#[must_use]
pub fn major_minor(dev: u64) -> (u64, u64) {
    let major = ((dev >> 32) & 0xFFFF_F000) | ((dev >> 8) & 0x0FFF);
    let minor = ((dev >> 12) & 0xFFFF_FF00) | (dev & 0x00FF);
    (major, minor)
}

fn sysfs_block_size(rdev: u64) -> Option<u32> {
    let (major, minor) = major_minor(rdev);
    let base = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    [
        base.join("queue/logical_block_size"),
        base.join("../queue/logical_block_size"),
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok())
    .and_then(|s| s.trim().parse().ok())
}

fn read_slot(
    file: &mut File,
    index: u64,
    path: &Path,
) -> Result<Result<Record, meta::MetaError>, DeviceError> {
    let io = |source| DeviceError::Io {
        path: path.to_owned(),
        source,
    };
    file.seek(SeekFrom::Start(index * SLOT_SIZE)).map_err(io)?;
    let mut header = vec![0u8; HEADER_LEN];
    let got = read_up_to(file, &mut header).map_err(io)?;
    header.truncate(got);
    let len = match meta::decode(&header) {
        Err(meta::MetaError::Length(len)) if len + (HEADER_LEN as u64) <= SLOT_SIZE => len,
        Ok(rec) => return Ok(Ok(rec)),
        Err(e) => return Ok(Err(e)),
    };
    let total = usize::try_from(len).unwrap_or(0) + HEADER_LEN;
    let mut whole = vec![0u8; total];
    file.seek(SeekFrom::Start(index * SLOT_SIZE)).map_err(io)?;
    let got = read_up_to(file, &mut whole).map_err(io)?;
    whole.truncate(got);
    Ok(meta::decode(&whole))
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Reads both metadata slots: the newest valid record (if any) and the slot to write next.
///
/// # Errors
/// [`DeviceError`] when the device cannot be opened or read.
pub fn read_record(path: &Path) -> Result<(Option<Record>, usize), DeviceError> {
    let mut file = File::open(path).map_err(|source| DeviceError::Open {
        path: path.to_owned(),
        source,
    })?;
    let a = read_slot(&mut file, 0, path)?;
    let b = read_slot(&mut file, 1, path)?;
    Ok(meta::newest([a, b]))
}

/// Writes `payload` as the next record (generation after the newest valid one) and fsyncs.
///
/// # Errors
/// [`DeviceError`] when the device cannot be read or written, or the payload is too large.
pub fn write_next(path: &Path, payload: &[u8]) -> Result<u64, DeviceError> {
    let (current, slot) = read_record(path)?;
    let generation = current.map_or(1, |r| r.generation + 1);
    let bytes = meta::encode(generation, payload).map_err(|source| DeviceError::Encode {
        path: path.to_owned(),
        source,
    })?;
    let mut file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|source| DeviceError::Open {
            path: path.to_owned(),
            source,
        })?;
    let io = |source| DeviceError::Io {
        path: path.to_owned(),
        source,
    };
    file.seek(SeekFrom::Start(slot as u64 * SLOT_SIZE))
        .map_err(io)?;
    file.write_all(&bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(generation)
}

/// Makes both slots unreadable (an lvstore destroyed by `bdev_lvol_delete_lvstore`).
///
/// # Errors
/// [`DeviceError`] when the device cannot be written.
pub fn wipe(path: &Path) -> Result<(), DeviceError> {
    let mut file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|source| DeviceError::Open {
            path: path.to_owned(),
            source,
        })?;
    let io = |source| DeviceError::Io {
        path: path.to_owned(),
        source,
    };
    for slot in 0..2u64 {
        file.seek(SeekFrom::Start(slot * SLOT_SIZE)).map_err(io)?;
        file.write_all(&[0u8; HEADER_LEN]).map_err(io)?;
    }
    file.sync_all().map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sparse(size: u64) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.img");
        File::create(&path).unwrap().set_len(size).unwrap();
        (dir, path)
    }

    #[test]
    fn probes_size_of_a_sparse_file() {
        let (_d, path) = sparse(64 << 20);
        let info = probe(&path, false).unwrap();
        assert_eq!(
            info,
            DeviceInfo {
                size: 64 << 20,
                logical_block_size: 0,
                is_block_device: false
            }
        );
    }

    #[test]
    fn missing_path_is_enoent() {
        let err = probe(Path::new("/nonexistent/spdk-sim/disk.img"), false).unwrap_err();
        assert_eq!(err.errno(), 2);
        assert!(err.to_string().contains("/nonexistent/spdk-sim/disk.img"));
    }

    #[test]
    fn records_alternate_slots_and_survive_a_torn_write() {
        let (_d, path) = sparse(8 << 20);
        assert_eq!(read_record(&path).unwrap().0, None);
        assert_eq!(write_next(&path, b"one").unwrap(), 1);
        assert_eq!(write_next(&path, b"two").unwrap(), 2);
        let (rec, next) = read_record(&path).unwrap();
        assert_eq!(rec.unwrap().payload, b"two");
        assert_eq!(next, 0);
        // Tear the newest record (slot 1): the previous one is still there.
        let mut f = OpenOptions::new().write(true).open(&path).unwrap();
        f.seek(SeekFrom::Start(SLOT_SIZE + 41)).unwrap();
        f.write_all(b"X").unwrap();
        drop(f);
        assert_eq!(read_record(&path).unwrap().0.unwrap().payload, b"one");
        wipe(&path).unwrap();
        assert_eq!(read_record(&path).unwrap().0, None);
    }

    #[test]
    fn dev_t_split() {
        // 7:0 (loop0) and 259:1 (an nvme partition) in glibc encoding.
        assert_eq!(major_minor(0x0700), (7, 0));
        assert_eq!(major_minor((259 << 8) | 1), (259, 1));
    }
}
