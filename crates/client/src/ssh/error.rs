//! What can go wrong opening an SSH tunnel; every message names the host and the file
//! or path involved.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::known_hosts::HostKeyStatus;

/// Why an SSH tunnel to an executor could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// No known_hosts file is configured; host keys are never trusted on first use.
    #[error(
        "ssh to {addr}: no known_hosts file configured (ssh_known_hosts_file); \
         v2engine never trusts an unknown host key"
    )]
    NoKnownHostsFile {
        /// `host:port`.
        addr: String,
    },
    /// The known_hosts file could not be read.
    #[error("ssh to {addr}: cannot read known_hosts file {path}: {source}")]
    KnownHostsFile {
        /// `host:port`.
        addr: String,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TCP connection failed: the node is unreachable.
    #[error("node unreachable: cannot open a TCP connection to {addr}: {source}")]
    Unreachable {
        /// `host:port`.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TCP connection did not complete in time: the node is unreachable.
    #[error("node unreachable: no TCP connection to {addr} within {after:?}")]
    ConnectTimeout {
        /// `host:port`.
        addr: String,
        /// The connect timeout.
        after: Duration,
    },
    /// The host is not listed with a key of the type it offered.
    #[error(
        "ssh to {addr}: host key {offered} is not in known_hosts file {file}{others}; check \
         the key out of band and add it (e.g. from ssh-keyscan)"
    )]
    HostKeyUnknown {
        /// `host:port`.
        addr: String,
        /// The known_hosts file.
        file: PathBuf,
        /// The key the server offered.
        offered: Box<OfferedKey>,
        /// A note on other key types recorded for the host, or empty.
        others: String,
    },
    /// The host is listed with a different key: a possible man-in-the-middle.
    #[error(
        "ssh to {addr}: HOST KEY MISMATCH: the server offered {offered}, but known_hosts file \
         {file} (line {lines}) records a different key; someone may be intercepting the \
         connection, or the host was reinstalled"
    )]
    HostKeyChanged {
        /// `host:port`.
        addr: String,
        /// The known_hosts file.
        file: PathBuf,
        /// The key the server offered.
        offered: Box<OfferedKey>,
        /// Lines recording the host's key, comma-separated.
        lines: String,
    },
    /// The offered key is marked `@revoked`.
    #[error(
        "ssh to {addr}: host key {offered} is marked @revoked in known_hosts file {file} line \
         {line}"
    )]
    HostKeyRevoked {
        /// `host:port`.
        addr: String,
        /// The known_hosts file.
        file: PathBuf,
        /// The key the server offered.
        offered: Box<OfferedKey>,
        /// The `@revoked` line.
        line: usize,
    },
    /// The SSH handshake failed (protocol, algorithms, connection closed).
    #[error("ssh to {addr}: handshake failed: {source}")]
    Handshake {
        /// `host:port`.
        addr: String,
        /// Why.
        #[source]
        source: russh::Error,
    },
    /// Handshake and authentication did not finish in time.
    #[error("ssh to {addr}: handshake and authentication did not finish within {after:?}")]
    HandshakeTimeout {
        /// `host:port`.
        addr: String,
        /// The connect timeout.
        after: Duration,
    },
    /// The private key file could not be read or decoded.
    #[error("ssh to {addr}: cannot use private key file {path}: {reason}")]
    KeyFile {
        /// `host:port`.
        addr: String,
        /// The key file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The private key file is protected by a passphrase.
    #[error(
        "ssh to {addr}: private key file {path} is encrypted with a passphrase; use an \
         unencrypted key, or add it to ssh-agent and leave ssh_private_key_file unset"
    )]
    KeyEncrypted {
        /// `host:port`.
        addr: String,
        /// The key file.
        path: PathBuf,
    },
    /// No key file was given and the ssh-agent cannot be used.
    #[error(
        "ssh to {addr}: no ssh_private_key_file configured and the ssh-agent cannot be used: \
         {reason}"
    )]
    Agent {
        /// `host:port`.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The server refused every key offered.
    #[error(
        "ssh to {addr}: authentication as {user:?} failed: the server refused {method} \
         (is the public key in {user}'s authorized_keys?)"
    )]
    AuthFailed {
        /// `host:port`.
        addr: String,
        /// Login user.
        user: String,
        /// What was offered (key file and fingerprint, or the agent's keys).
        method: String,
    },
    /// The server would not forward to the executor socket.
    #[error("ssh to {addr}: the server refused to forward to executor socket {path}: {reason}")]
    ForwardRefused {
        /// `host:port`.
        addr: String,
        /// The executor socket on that host.
        path: PathBuf,
        /// Why, with the likely cause.
        reason: String,
    },
    /// Opening the forwarding channel did not finish in time.
    #[error("ssh to {addr}: forwarding to executor socket {path} not confirmed within {after:?}")]
    ForwardTimeout {
        /// `host:port`.
        addr: String,
        /// The executor socket on that host.
        path: PathBuf,
        /// The connect timeout.
        after: Duration,
    },
    /// The SSH connection failed after it was established.
    #[error("ssh to {addr}: connection failed: {source}")]
    Session {
        /// `host:port`.
        addr: String,
        /// Why.
        #[source]
        source: russh::Error,
    },
}

impl SshError {
    /// True when the node could not be reached at all (TCP failed or timed out).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            SshError::Unreachable { .. } | SshError::ConnectTimeout { .. }
        )
    }

    /// True when the node (or its executor) is down rather than misconfigured: unreachable,
    /// timed out, or sshd up but the executor's socket refused the forward.
    pub fn is_node_down(&self) -> bool {
        self.is_unreachable()
            || matches!(
                self,
                SshError::HandshakeTimeout { .. }
                    | SshError::ForwardRefused { .. }
                    | SshError::ForwardTimeout { .. }
            )
    }

    /// True when the host key was refused (unknown, changed or revoked).
    pub fn is_host_key(&self) -> bool {
        matches!(
            self,
            SshError::HostKeyUnknown { .. }
                | SshError::HostKeyChanged { .. }
                | SshError::HostKeyRevoked { .. }
        )
    }
}

/// A host key a server offered, as the errors show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedKey {
    /// The known_hosts name looked up (`host`, or `[host]:port` off port 22).
    pub name: String,
    /// Its type (`ssh-ed25519`).
    pub key_type: String,
    /// Its SHA256 fingerprint, as `ssh-keygen -l` shows it.
    pub fingerprint: String,
}

impl std::fmt::Display for OfferedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} of {}", self.key_type, self.fingerprint, self.name)
    }
}

/// Why a host key was refused, recorded by the handler for the caller.
#[derive(Debug, Clone)]
pub(super) struct Rejection {
    pub(super) status: HostKeyStatus,
    pub(super) key_type: String,
    pub(super) fingerprint: String,
}

pub(super) fn host_key_error(r: &Rejection, addr: &str, name: &str, file: &Path) -> SshError {
    let (addr, file) = (addr.to_string(), file.to_path_buf());
    let offered = Box::new(OfferedKey {
        name: name.to_string(),
        key_type: r.key_type.clone(),
        fingerprint: r.fingerprint.clone(),
    });
    match &r.status {
        HostKeyStatus::Changed { lines } => SshError::HostKeyChanged {
            addr,
            file,
            offered,
            lines: lines
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        },
        HostKeyStatus::Revoked { line } => SshError::HostKeyRevoked {
            addr,
            file,
            offered,
            line: *line,
        },
        HostKeyStatus::Unknown { other_types } if !other_types.is_empty() => {
            SshError::HostKeyUnknown {
                addr,
                file,
                offered,
                others: format!(
                    " (it records only {})",
                    other_types
                        .iter()
                        .map(|(line, t)| format!("{t} on line {line}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        }
        // `Trusted` is never recorded as a rejection; kept total for the compiler.
        HostKeyStatus::Unknown { .. } | HostKeyStatus::Trusted { .. } => SshError::HostKeyUnknown {
            addr,
            file,
            offered,
            others: String::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_key_errors_name_host_and_file() {
        let r = Rejection {
            status: HostKeyStatus::Changed { lines: vec![3, 7] },
            key_type: "ssh-ed25519".into(),
            fingerprint: "SHA256:abc".into(),
        };
        let e = host_key_error(&r, "10.0.0.1:22", "10.0.0.1", Path::new("/etc/kh"));
        let msg = e.to_string();
        assert!(e.is_host_key());
        for part in ["10.0.0.1", "/etc/kh", "line 3, 7", "SHA256:abc", "MISMATCH"] {
            assert!(msg.contains(part), "{msg} lacks {part}");
        }
        let r = Rejection {
            status: HostKeyStatus::Unknown {
                other_types: vec![(2, "ssh-rsa".into())],
            },
            ..r
        };
        let msg = host_key_error(&r, "h:22", "h", Path::new("/kh")).to_string();
        assert!(msg.contains("not in known_hosts file /kh"), "{msg}");
        assert!(msg.contains("ssh-rsa on line 2"), "{msg}");
    }
}
