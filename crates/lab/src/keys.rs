//! SSH keys made with `ssh-keygen`: the lab's client key and one host key per node.

use std::path::{Path, PathBuf};

use crate::cmd::{self, CmdError};

const SSH_KEYGEN: &str = "ssh-keygen";

/// Why a key could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// ssh-keygen failed.
    #[error("ssh key {path}: {source}")]
    Keygen {
        /// The private key file.
        path: PathBuf,
        /// The failed command.
        #[source]
        source: CmdError,
    },
    /// Reading or writing a key file failed.
    #[error("ssh key {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The public key file of private key `key`.
pub fn public_path(key: &Path) -> PathBuf {
    let mut s = key.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

/// Makes an unencrypted ed25519 key pair at `key` unless one is there, and returns the
/// public key line. An existing key is kept (a lab keeps its identity across `up`s).
pub fn ensure_key(key: &Path, comment: &str) -> Result<String, KeyError> {
    let public = public_path(key);
    if !key.exists() {
        // A stale public half would make ssh-keygen ask before overwriting.
        match std::fs::remove_file(&public) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(KeyError::Io {
                    path: public,
                    source,
                });
            }
        }
        let args = [
            "-q".as_ref(),
            "-t".as_ref(),
            "ed25519".as_ref(),
            "-N".as_ref(),
            "".as_ref(),
            "-C".as_ref(),
            comment.as_ref(),
            "-f".as_ref(),
            key.as_os_str(),
        ];
        cmd::run(SSH_KEYGEN, &args).map_err(|source| KeyError::Keygen {
            path: key.into(),
            source,
        })?;
    }
    if !public.exists() {
        let line = cmd::run(SSH_KEYGEN, &["-y".as_ref(), "-f".as_ref(), key.as_os_str()]).map_err(
            |source| KeyError::Keygen {
                path: key.into(),
                source,
            },
        )?;
        std::fs::write(&public, line).map_err(|source| KeyError::Io {
            path: public.clone(),
            source,
        })?;
    }
    std::fs::read_to_string(&public).map_err(|source| KeyError::Io {
        path: public,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn makes_a_key_once_and_restores_a_missing_public_half() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id_ed25519");
        let first = ensure_key(&key, "test key").unwrap();
        assert!(first.starts_with("ssh-ed25519 "), "{first}");
        assert!(first.trim_end().ends_with("test key"));
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(ensure_key(&key, "other").unwrap(), first);
        std::fs::remove_file(public_path(&key)).unwrap();
        let again = ensure_key(&key, "other").unwrap();
        let fields = |s: &str| s.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
        assert_eq!(fields(&again), fields(&first));
    }

    #[test]
    fn errors_name_the_key() {
        let err = ensure_key(Path::new("/nonexistent-dir/key"), "x").unwrap_err();
        assert!(err.to_string().contains("/nonexistent-dir/key"), "{err}");
    }
}
