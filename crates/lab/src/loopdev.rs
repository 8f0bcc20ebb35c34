//! Disks: sparse image files and the loop devices over them, through `losetup`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::cmd::{self, CmdError};

const LOSETUP: &str = "losetup";

/// Why a disk operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    /// The image file could not be made.
    #[error("disk image {path}: {source}")]
    Image {
        /// The image.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// losetup failed on an image.
    #[error("disk image {path}: {source}")]
    Attach {
        /// The image.
        path: PathBuf,
        /// The failed command.
        #[source]
        source: CmdError,
    },
    /// Detaching a loop device failed.
    #[error("loop device {device}: {source}")]
    Detach {
        /// The device.
        device: PathBuf,
        /// The failed command.
        #[source]
        source: CmdError,
    },
    /// Listing loop devices failed.
    #[error("cannot list loop devices: {source}")]
    List {
        /// The failed command.
        #[source]
        source: CmdError,
    },
    /// losetup printed something unexpected.
    #[error("cannot parse the loop device list printed by losetup: {source}")]
    Parse {
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// A loop device and the file behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoopDevice {
    /// `/dev/loopN`.
    pub device: PathBuf,
    /// The backing file (without losetup's ` (deleted)` suffix).
    pub back_file: Option<PathBuf>,
}

#[derive(Deserialize)]
struct LoopList {
    #[serde(default)]
    loopdevices: Vec<LoopEntry>,
}

#[derive(Deserialize)]
struct LoopEntry {
    name: String,
    #[serde(rename = "back-file", default)]
    back_file: Option<String>,
}

/// Parses `losetup -J -l -O NAME,BACK-FILE`.
fn parse_list(text: &str) -> Result<Vec<LoopDevice>, LoopError> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let list: LoopList =
        serde_json::from_str(text).map_err(|source| LoopError::Parse { source })?;
    Ok(list
        .loopdevices
        .into_iter()
        .map(|e| LoopDevice {
            device: e.name.into(),
            back_file: e.back_file.map(|b| {
                PathBuf::from(
                    b.strip_suffix(" (deleted)")
                        .unwrap_or(&b)
                        .trim_end()
                        .to_string(),
                )
            }),
        })
        .collect())
}

/// Creates `path` as a sparse file of `size_bytes` unless it exists (an existing image is
/// only grown, never truncated: it may hold a node's data).
pub fn ensure_image(path: &Path, size_bytes: u64) -> Result<(), LoopError> {
    let err = |source| LoopError::Image {
        path: path.into(),
        source,
    };
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(err)?;
    if f.metadata().map_err(err)?.len() < size_bytes {
        f.set_len(size_bytes).map_err(err)?;
    }
    Ok(())
}

/// Every loop device in use with its backing file.
pub fn list() -> Result<Vec<LoopDevice>, LoopError> {
    let out = cmd::run(LOSETUP, &["-J", "-l", "-O", "NAME,BACK-FILE"])
        .map_err(|source| LoopError::List { source })?;
    parse_list(&out)
}

/// Loop devices currently attached to `image`.
pub fn devices_for(image: &Path) -> Result<Vec<PathBuf>, LoopError> {
    let args = [
        "-J".as_ref(),
        "-l".as_ref(),
        "-O".as_ref(),
        "NAME,BACK-FILE".as_ref(),
        "-j".as_ref(),
        image.as_os_str(),
    ];
    let out = cmd::run(LOSETUP, &args).map_err(|source| LoopError::Attach {
        path: image.into(),
        source,
    })?;
    Ok(parse_list(&out)?.into_iter().map(|d| d.device).collect())
}

/// Attaches `image` to a free loop device and returns the device.
pub fn attach(image: &Path) -> Result<PathBuf, LoopError> {
    let args = ["--find".as_ref(), "--show".as_ref(), image.as_os_str()];
    let out = cmd::run(LOSETUP, &args).map_err(|source| LoopError::Attach {
        path: image.into(),
        source,
    })?;
    Ok(PathBuf::from(out.trim()))
}

/// Detaches `device`.
pub fn detach(device: &Path) -> Result<(), LoopError> {
    cmd::run(LOSETUP, &["-d".as_ref(), device.as_os_str()])
        .map(drop)
        .map_err(|source| LoopError::Detach {
            device: device.into(),
            source,
        })
}

/// The loop devices of `devices` whose backing file is under `dir`.
pub fn under_dir<'a>(devices: &'a [LoopDevice], dir: &Path) -> Vec<&'a LoopDevice> {
    devices
        .iter()
        .filter(|d| d.back_file.as_deref().is_some_and(|b| b.starts_with(dir)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_losetup_json_and_strips_deleted() {
        let text = r#"{"loopdevices": [
            {"name": "/dev/loop0", "back-file": "/lab/disks/node-1-disk-1.img"},
            {"name": "/dev/loop1", "back-file": "/lab/disks/node-1-disk-2.img (deleted)"},
            {"name": "/dev/loop2", "back-file": "/laboratory/x.img"},
            {"name": "/dev/loop3", "back-file": null}
        ]}"#;
        let devs = parse_list(text).unwrap();
        assert_eq!(
            devs[1].back_file.as_deref(),
            Some(Path::new("/lab/disks/node-1-disk-2.img"))
        );
        let mine: Vec<_> = under_dir(&devs, Path::new("/lab"))
            .iter()
            .map(|d| d.device.clone())
            .collect();
        assert_eq!(
            mine,
            [PathBuf::from("/dev/loop0"), PathBuf::from("/dev/loop1")]
        );
        assert!(parse_list("").unwrap().is_empty());
        assert!(parse_list("{").is_err());
    }

    #[test]
    fn images_are_sparse_and_never_shrunk() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.img");
        ensure_image(&p, 64 << 20).unwrap();
        let md = std::fs::metadata(&p).unwrap();
        assert_eq!(md.len(), 64 << 20);
        std::fs::write(&p, b"data").unwrap();
        ensure_image(&p, 1 << 20).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 1 << 20);
        assert_eq!(&std::fs::read(&p).unwrap()[..4], b"data");
        let err = ensure_image(Path::new("/nonexistent-dir/d.img"), 1).unwrap_err();
        assert!(err.to_string().contains("/nonexistent-dir/d.img"));
    }
}
