//! Crash-safe file writes.
//!
//! A file is replaced by writing a temporary file in the same directory, syncing it,
//! renaming it over the target and syncing the directory, so a crash leaves either the
//! old or the new content, never a half-written file. Temporary files start with `.` and
//! carry [`TEMP_MARKER`]; readers skip them (see [`is_temp_name`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Part of the name of every temporary file this module creates.
pub const TEMP_MARKER: &str = ".tmp-";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A failed file operation, naming the path.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// A directory could not be created.
    #[error("cannot create directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Writing, syncing or renaming the file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The file could not be removed.
    #[error("cannot remove {path}: {source}")]
    Remove {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The path has no parent directory or no file name.
    #[error("{path} is not a file path inside a directory")]
    NotAFilePath {
        /// The path.
        path: PathBuf,
    },
}

/// True for the names of temporary files left by an interrupted [`write_atomic`].
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(TEMP_MARKER)
}

/// Creates `dir` and its parents with `mode` for the directories it creates.
pub fn create_dir_all(dir: &Path, mode: u32) -> Result<(), FsError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .map_err(|source| FsError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })
}

/// Replaces `path` with `data` atomically and durably (temp file, fsync, rename, fsync of
/// the directory). Missing parent directories are created (mode 0755). The file gets `mode`.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), FsError> {
    let (dir, name) = split(path)?;
    create_dir_all(dir, 0o755)?;
    let seq = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}{TEMP_MARKER}{}-{seq}", std::process::id()));
    let werr = |source| FsError::Write {
        path: path.to_path_buf(),
        source,
    };
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(werr(e));
    }
    sync_dir(dir).map_err(werr)
}

/// Removes `path` durably. Returns whether it existed.
pub fn remove_durable(path: &Path) -> Result<bool, FsError> {
    let (dir, _) = split(path)?;
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(source) => {
            return Err(FsError::Remove {
                path: path.to_path_buf(),
                source,
            });
        }
    }
    sync_dir(dir).map_err(|source| FsError::Remove {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(true)
}

/// Reads `path` as UTF-8; `Ok(None)` when it does not exist.
pub fn read_optional(path: &Path) -> io::Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn split(path: &Path) -> Result<(&Path, &str), FsError> {
    let bad = || FsError::NotAFilePath {
        path: path.to_path_buf(),
    };
    let dir = path.parent().ok_or_else(bad)?;
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(bad)?;
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    Ok((dir, name))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_replaces_and_removes() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("a/b/file.json");
        write_atomic(&p, b"one", 0o600).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "one");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        write_atomic(&p, b"two", 0o644).unwrap();
        assert_eq!(read_optional(&p).unwrap().as_deref(), Some("two"));
        let names: Vec<_> = fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temp file is left behind");
        assert!(remove_durable(&p).unwrap());
        assert!(!remove_durable(&p).unwrap());
        assert_eq!(read_optional(&p).unwrap(), None);
    }

    #[test]
    fn temp_names_are_recognised() {
        assert!(is_temp_name(".x.json.tmp-12-0"));
        assert!(!is_temp_name("x.json"));
        assert!(!is_temp_name(".hidden"));
    }

    #[test]
    fn refuses_a_path_without_file_name() {
        assert!(matches!(
            write_atomic(Path::new("/"), b"", 0o600),
            Err(FsError::NotAFilePath { .. })
        ));
    }
}
