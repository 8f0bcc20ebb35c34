//! The hugepage baseline: the pool size a host had before v2engine first took hugepages,
//! kept in `STATE_DIR/hugepages-baseline` so that disabling gives exactly that back, even
//! after a restart or a reboot.

use std::path::{Path, PathBuf};

use crate::fsio::{self, FsError};

/// File name under the state directory.
pub const FILE_NAME: &str = "hugepages-baseline";

/// The baseline file is unreadable.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// Reading failed or the content is not a number.
    #[error("hugepage baseline {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Writing or removing failed.
    #[error("hugepage baseline: {0}")]
    Fs(#[from] FsError),
}

/// The baseline file of `state_dir`.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE_NAME)
}

/// The recorded baseline, `None` when v2engine holds no hugepages.
pub fn load(state_dir: &Path) -> Result<Option<u64>, BaselineError> {
    let p = path(state_dir);
    let bad = |reason: String| BaselineError::Read {
        path: p.clone(),
        reason,
    };
    match fsio::read_optional(&p).map_err(|e| bad(e.to_string()))? {
        None => Ok(None),
        Some(t) => t
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| bad(format!("{:?} is not a number", t.trim()))),
    }
}

/// Records `pages` as the baseline.
pub fn save(state_dir: &Path, pages: u64) -> Result<(), BaselineError> {
    Ok(fsio::write_atomic(
        &path(state_dir),
        format!("{pages}\n").as_bytes(),
        0o600,
    )?)
}

/// Forgets the baseline.
pub fn clear(state_dir: &Path) -> Result<(), BaselineError> {
    fsio::remove_durable(&path(state_dir))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(load(tmp.path()).unwrap(), None);
        save(tmp.path(), 12).unwrap();
        assert_eq!(load(tmp.path()).unwrap(), Some(12));
        clear(tmp.path()).unwrap();
        assert_eq!(load(tmp.path()).unwrap(), None);
        std::fs::write(path(tmp.path()), "x").unwrap();
        assert!(
            load(tmp.path())
                .unwrap_err()
                .to_string()
                .contains("not a number")
        );
    }
}
