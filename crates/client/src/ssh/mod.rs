//! The `ssh://` transport: an SSH connection to the executor's host and, over it, one
//! `direct-streamlocal@openssh.com` channel per gRPC connection to the executor's Unix
//! socket (what `ssh -L local:/run/v2engine/executor.sock` does).
//!
//! - The host key must be listed in the configured known_hosts file
//!   ([`crate::known_hosts`]); an unknown, changed or revoked key is refused, never
//!   trusted on first use.
//! - Authentication uses the configured private key file (OpenSSH or PEM; an encrypted
//!   key is refused with advice), or else every key of the ssh-agent.
//! - One SSH connection per [`SshTunnel`]; new channels reuse it, and it is re-opened
//!   only when it has closed.
//!
//! Every step is bounded by the connect timeout, and each failure has its own
//! [`SshError`] variant naming the host, file or path involved.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use russh::client::{self, Handle, Msg};
use russh::keys::agent::client::AgentClient;
use russh::keys::{Algorithm, HashAlg, PrivateKeyWithHashAlg, PublicKey};
use russh::{ChannelOpenFailure, ChannelStream};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::known_hosts::{self, HostKeyStatus, KnownHosts};

mod error;
mod key_file;
mod quickack;

pub use error::{OfferedKey, SshError};
use error::{Rejection, host_key_error};
use key_file::{key_fingerprint, load_private_key};

/// Where an SSH tunnel leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    /// Login user.
    pub user: String,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// SSH port.
    pub port: u16,
    /// Executor socket path on that host.
    pub socket: PathBuf,
}

impl SshTarget {
    /// `host:port`, with an IPv6 host in brackets.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// How an [`SshTunnel`] authenticates and verifies.
#[derive(Debug, Clone, Default)]
pub struct SshAuth {
    /// known_hosts file (required).
    pub known_hosts_file: Option<PathBuf>,
    /// Private key file; `None` uses the agent.
    pub private_key_file: Option<PathBuf>,
    /// The agent's socket; `None` reads `SSH_AUTH_SOCK`.
    pub agent_socket: Option<PathBuf>,
    /// Bound on the TCP connect, on handshake plus authentication, and on opening a channel.
    pub connect_timeout: Duration,
}

/// One SSH connection to a host, opening forwarding channels to the executor socket.
pub struct SshTunnel {
    target: SshTarget,
    auth: SshAuth,
    session: tokio::sync::Mutex<Option<Handle<HostKeyCheck>>>,
    connections: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for SshTunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshTunnel")
            .field("target", &self.target)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl SshTunnel {
    /// A tunnel to `target`; nothing is opened until [`SshTunnel::open_stream`].
    pub fn new(target: SshTarget, auth: SshAuth) -> Self {
        Self {
            target,
            auth,
            session: tokio::sync::Mutex::new(None),
            connections: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Where this tunnel leads.
    pub fn target(&self) -> &SshTarget {
        &self.target
    }

    /// How many SSH connections this tunnel has opened so far.
    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A new byte stream to the executor socket. Reuses the SSH connection while it is
    /// open; connects (again) when there is none or it has closed.
    pub async fn open_stream(&self) -> Result<ChannelStream<Msg>, SshError> {
        let mut slot = self.session.lock().await;
        if let Some(handle) = slot.as_ref().filter(|h| !h.is_closed()) {
            match self.open_channel(handle).await {
                Ok(s) => return Ok(s),
                Err(e @ SshError::ForwardRefused { .. }) => return Err(e),
                // The connection is broken in some other way: start a new one below.
                Err(_) => {}
            }
        }
        *slot = None;
        let handle = self.connect().await?;
        let stream = self.open_channel(&handle).await?;
        *slot = Some(handle);
        Ok(stream)
    }

    async fn open_channel(
        &self,
        handle: &Handle<HostKeyCheck>,
    ) -> Result<ChannelStream<Msg>, SshError> {
        let path = self.target.socket.to_string_lossy().into_owned();
        let after = self.auth.connect_timeout;
        let opened = timeout(after, handle.channel_open_direct_streamlocal(path)).await;
        match opened {
            Ok(Ok(channel)) => Ok(channel.into_stream()),
            Ok(Err(russh::Error::ChannelOpenFailure(why))) => Err(SshError::ForwardRefused {
                addr: self.target.addr(),
                path: self.target.socket.clone(),
                reason: refusal_reason(&why).to_string(),
            }),
            Ok(Err(source)) => Err(SshError::Session {
                addr: self.target.addr(),
                source,
            }),
            Err(_) => Err(SshError::ForwardTimeout {
                addr: self.target.addr(),
                path: self.target.socket.clone(),
                after,
            }),
        }
    }

    /// TCP, handshake with host key check, authentication.
    async fn connect(&self) -> Result<Handle<HostKeyCheck>, SshError> {
        let addr = self.target.addr();
        let after = self.auth.connect_timeout;
        let file = self
            .auth
            .known_hosts_file
            .clone()
            .ok_or_else(|| SshError::NoKnownHostsFile { addr: addr.clone() })?;
        let text =
            tokio::fs::read_to_string(&file)
                .await
                .map_err(|source| SshError::KnownHostsFile {
                    addr: addr.clone(),
                    path: file.clone(),
                    source,
                })?;
        let known = KnownHosts::parse(&text);
        let name = known_hosts::host_name(&self.target.host, self.target.port);

        let tcp = match timeout(
            after,
            TcpStream::connect((self.target.host.as_str(), self.target.port)),
        )
        .await
        {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(source)) => return Err(SshError::Unreachable { addr, source }),
            Err(_) => return Err(SshError::ConnectTimeout { addr, after }),
        };
        // Small gRPC frames: do not wait to coalesce them.
        let _ = tcp.set_nodelay(true);
        self.connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);

        let mut config = client::Config {
            keepalive_interval: Some(Duration::from_secs(15)),
            keepalive_max: 3,
            nodelay: true,
            ..Default::default()
        };
        config.preferred.key =
            prefer_known_types(&config.preferred.key, &known.key_types_for(&name)).into();

        let rejection = Arc::new(OnceLock::new());
        let check = HostKeyCheck {
            known,
            name: name.clone(),
            rejection: rejection.clone(),
        };
        let handshake = async {
            let stream = quickack::QuickAckStream::new(tcp);
            let mut handle = client::connect_stream(Arc::new(config), stream, check)
                .await
                .map_err(|source| match rejection.get() {
                    Some(r) => host_key_error(r, &addr, &name, &file),
                    None => SshError::Handshake {
                        addr: addr.clone(),
                        source,
                    },
                })?;
            self.authenticate(&mut handle).await?;
            Ok(handle)
        };
        timeout(after, handshake)
            .await
            .map_err(|_| SshError::HandshakeTimeout {
                addr: addr.clone(),
                after,
            })?
    }

    async fn authenticate(&self, handle: &mut Handle<HostKeyCheck>) -> Result<(), SshError> {
        let addr = self.target.addr();
        let user = self.target.user.clone();
        let session_err = |source| SshError::Session {
            addr: addr.clone(),
            source,
        };
        let failed = |method: String| SshError::AuthFailed {
            addr: addr.clone(),
            user: user.clone(),
            method,
        };
        if let Some(path) = &self.auth.private_key_file {
            let key = load_private_key(path, &addr).await?;
            let method = format!(
                "private key file {} ({} {})",
                path.display(),
                key.algorithm().as_str(),
                key_fingerprint(key.public_key())
            );
            let hash = rsa_hash(handle, key.algorithm())
                .await
                .map_err(session_err)?;
            let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
            let result = handle
                .authenticate_publickey(user.clone(), key)
                .await
                .map_err(session_err)?;
            return if result.success() {
                Ok(())
            } else {
                Err(failed(method))
            };
        }

        let agent_err = |reason: String| SshError::Agent {
            addr: addr.clone(),
            reason,
        };
        let socket = match &self.auth.agent_socket {
            Some(p) => p.clone(),
            None => std::env::var_os("SSH_AUTH_SOCK")
                .map(PathBuf::from)
                .ok_or_else(|| agent_err("SSH_AUTH_SOCK is not set".into()))?,
        };
        let mut agent = AgentClient::connect_uds(&socket)
            .await
            .map_err(|e| agent_err(format!("cannot connect to {}: {e}", socket.display())))?;
        let keys = agent
            .request_identities()
            .await
            .map_err(|e| agent_err(format!("agent at {} failed: {e}", socket.display())))?;
        if keys.is_empty() {
            return Err(agent_err(format!(
                "the agent at {} holds no keys",
                socket.display()
            )));
        }
        let mut offered = Vec::new();
        for key in keys {
            offered.push(format!(
                "{} {}",
                key.algorithm().as_str(),
                key_fingerprint(&key)
            ));
            let hash = rsa_hash(handle, key.algorithm())
                .await
                .map_err(session_err)?;
            let result = handle
                .authenticate_publickey_with(user.clone(), key, hash, &mut agent)
                .await
                .map_err(|e| agent_err(format!("agent at {} failed: {e}", socket.display())))?;
            if result.success() {
                return Ok(());
            }
        }
        Err(failed(format!(
            "the agent's keys at {} ({})",
            socket.display(),
            offered.join(", ")
        )))
    }
}

/// The hash to sign with for an RSA key: the best the server announced (RFC 8308), or
/// SHA-256 when it announced nothing; `None` for other key types.
async fn rsa_hash(
    handle: &Handle<HostKeyCheck>,
    algorithm: Algorithm,
) -> Result<Option<HashAlg>, russh::Error> {
    if !matches!(algorithm, Algorithm::Rsa { .. }) {
        return Ok(None);
    }
    Ok(handle
        .best_supported_rsa_hash()
        .await?
        .unwrap_or(Some(HashAlg::Sha256)))
}

/// What a channel-open refusal most likely means for an executor socket.
fn refusal_reason(why: &ChannelOpenFailure) -> &'static str {
    match why {
        // OpenSSH answers "connect failed" both when nothing listens at the path and when
        // its forwarding rules deny the request; its log tells which.
        ChannelOpenFailure::ConnectFailed => {
            "connect failed: nothing listens at that path (is the executor running on that \
             host?), or sshd's forwarding rules deny it (AllowStreamLocalForwarding, \
             AllowTcpForwarding, DisableForwarding, or restrict/no-port-forwarding in \
             authorized_keys); sshd's log says which"
        }
        ChannelOpenFailure::AdministrativelyProhibited => {
            "administratively prohibited: the server does not allow Unix socket forwarding \
             (sshd_config: AllowStreamLocalForwarding yes) or the user may not use that socket"
        }
        ChannelOpenFailure::UnknownChannelType => {
            "the server does not support direct-streamlocal@openssh.com (OpenSSH 6.7 or later \
             does)"
        }
        ChannelOpenFailure::ResourceShortage => "the server is short of resources",
        _ => "refused",
    }
}

/// The host key algorithms to offer: `defaults`, with those of key types already recorded
/// for the host first (as OpenSSH orders them), so a host known by its RSA key is not
/// asked for an unknown Ed25519 key.
pub fn prefer_known_types(defaults: &[Algorithm], known_types: &[String]) -> Vec<Algorithm> {
    let known = |a: &Algorithm| known_types.iter().any(|t| t == key_type_of(a));
    let mut out: Vec<Algorithm> = defaults.iter().filter(|a| known(a)).cloned().collect();
    out.extend(defaults.iter().filter(|a| !known(a)).cloned());
    out
}

/// The key type (as known_hosts writes it) that a signature algorithm uses.
fn key_type_of(a: &Algorithm) -> &str {
    match a {
        Algorithm::Rsa { .. } => "ssh-rsa",
        other => other.as_str(),
    }
}

/// The client handler: checks the server's host key against known_hosts.
pub(crate) struct HostKeyCheck {
    known: KnownHosts,
    name: String,
    rejection: Arc<OnceLock<Rejection>>,
}

impl client::Handler for HostKeyCheck {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKey) -> Result<bool, Self::Error> {
        let blob = key.to_bytes()?;
        let key_type = key.algorithm().as_str().to_string();
        let status = self.known.check(&self.name, &key_type, &blob);
        if matches!(status, HostKeyStatus::Trusted { .. }) {
            return Ok(true);
        }
        let _ = self.rejection.set(Rejection {
            status,
            key_type,
            fingerprint: known_hosts::fingerprint(&blob),
        });
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::EcdsaCurve;

    #[test]
    fn known_key_types_go_first_in_order() {
        let defaults = russh::Preferred::DEFAULT.key.to_vec();
        let out = prefer_known_types(&defaults, &["ssh-rsa".to_string()]);
        assert!(matches!(out[0], Algorithm::Rsa { .. }));
        assert!(matches!(out[1], Algorithm::Rsa { .. }));
        assert_eq!(out.len(), defaults.len());
        assert!(out.contains(&Algorithm::Ed25519));

        let out = prefer_known_types(&defaults, &["ecdsa-sha2-nistp256".to_string()]);
        assert_eq!(
            out[0],
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP256
            }
        );
        assert_eq!(prefer_known_types(&defaults, &[]), defaults);
    }

    #[test]
    fn refusals_name_the_likely_cause() {
        assert!(refusal_reason(&ChannelOpenFailure::ConnectFailed).contains("executor running"));
        assert!(
            refusal_reason(&ChannelOpenFailure::AdministrativelyProhibited)
                .contains("AllowStreamLocalForwarding")
        );
    }

    #[test]
    fn target_addresses_bracket_ipv6() {
        let t = SshTarget {
            user: "root".into(),
            host: "::1".into(),
            port: 2222,
            socket: "/run/x.sock".into(),
        };
        assert_eq!(t.addr(), "[::1]:2222");
    }
}
