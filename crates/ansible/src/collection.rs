//! Puts the module binary into a collection tree: the program at `bin/v2engine-ansible`,
//! and `plugins/modules/<name>` a relative symlink to it for each of the five modules.
//!
//! One binary, not five copies: ansible-core follows the symlink, copies the program to
//! where a task runs and passes the module's name in the arguments
//! (`_ansible_module_name`); `ansible-galaxy collection build` keeps symlinks that stay
//! inside the collection and `install` recreates them. (ansible-core 2.18's
//! `ansible-doc -l` lists neither symlinked nor binary module files — a symlink is taken
//! for an alias, and a binary file cannot be read for its short description — while
//! `ansible-doc <module>` documents each from its sidecar.)

use std::path::{Path, PathBuf};

use crate::module::Module;

/// The binary inside the collection.
pub const BINARY: &str = "bin/v2engine-ansible";

/// What can go wrong placing the binary.
#[derive(Debug, thiserror::Error)]
pub enum CollectionError {
    /// `root` is not a collection tree.
    #[error("{0} is not the collection's tree (no galaxy.yml there)")]
    NotACollection(PathBuf),
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// How the binary gets into the collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// An independent copy (for a collection to build and ship).
    Copy,
    /// A hard link (cheap staging on one filesystem; a copy where linking fails).
    HardLink,
}

/// The symlink target of every module file.
pub fn link_target() -> PathBuf {
    Path::new("../..").join(BINARY)
}

/// The module file of `m` under the collection root `root`.
pub fn module_path(root: &Path, m: Module) -> PathBuf {
    root.join("plugins/modules").join(m.name())
}

/// Makes the module symlinks under `root` (idempotent). Returns the ones (re)written.
pub fn link_modules(root: &Path) -> Result<Vec<PathBuf>, CollectionError> {
    let mut out = Vec::new();
    for m in Module::ALL {
        let link = module_path(root, m);
        if std::fs::read_link(&link).ok() == Some(link_target()) {
            continue;
        }
        match std::fs::remove_file(&link) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(CollectionError::Io {
                    path: link,
                    source: e,
                });
            }
            _ => {}
        }
        std::os::unix::fs::symlink(link_target(), &link).map_err(|source| CollectionError::Io {
            path: link.clone(),
            source,
        })?;
        out.push(link);
    }
    Ok(out)
}

/// Puts the program at `binary` into the collection at `root` as [`BINARY`] and makes
/// the module symlinks. Returns the binary's path in the collection.
pub fn install_binary(root: &Path, binary: &Path, how: Place) -> Result<PathBuf, CollectionError> {
    if !root.join("galaxy.yml").is_file() {
        return Err(CollectionError::NotACollection(root.to_path_buf()));
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CollectionError::Io { path, source }
    };
    let dst = root.join(BINARY);
    if let Some(dir) = dst.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let tmp = dst.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let linked = how == Place::HardLink && std::fs::hard_link(binary, &tmp).is_ok();
    if !linked {
        std::fs::copy(binary, &tmp).map_err(io(&tmp))?;
        set_executable(&tmp).map_err(io(&tmp))?;
    }
    // A rename, so that a module running from the old binary is never torn.
    std::fs::rename(&tmp, &dst).map_err(io(&dst))?;
    link_modules(root)?;
    Ok(dst)
}

fn set_executable(p: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_file_leads_to_the_binary() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("storage");
        std::fs::create_dir_all(root.join("plugins/modules")).unwrap();
        let bin = dir.path().join("prog");
        std::fs::write(&bin, b"\x7fELF...").unwrap();
        assert!(matches!(
            install_binary(&root, &bin, Place::Copy),
            Err(CollectionError::NotACollection(_))
        ));
        std::fs::write(root.join("galaxy.yml"), "namespace: v2engine\n").unwrap();
        // A stale regular file where a link belongs is replaced.
        std::fs::write(module_path(&root, Module::Volume), b"old").unwrap();
        for how in [Place::Copy, Place::HardLink, Place::Copy] {
            let b = install_binary(&root, &bin, how).unwrap();
            assert_eq!(b, root.join(BINARY));
            for m in Module::ALL {
                let p = module_path(&root, m);
                assert!(p.is_symlink());
                assert_eq!(std::fs::read(&p).unwrap(), b"\x7fELF...");
            }
        }
        assert!(link_modules(&root).unwrap().is_empty());
    }
}
