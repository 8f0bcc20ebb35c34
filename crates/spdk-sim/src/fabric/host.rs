//! Host side of the NVMe-oF stand-in: connect + CONNECT handshake, then a task that watches the
//! connection and applies SPDK's path-loss policy when it drops.

use super::proto::{self, NsInfo, ToHost, ToTarget};
use super::set_keepalive;
use crate::shared::Shared;
use crate::state::nvme::{CtrlrState, RemoteInfo, Trid};
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Default time allowed for TCP connect + CONNECT.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a connection attempt failed.
#[derive(Debug, Error)]
pub enum ConnectError {
    /// TCP connect failed (refused, unreachable).
    #[error("cannot connect to {traddr}:{trsvcid}: {source}")]
    Tcp {
        /// Address.
        traddr: String,
        /// Port.
        trsvcid: String,
        /// OS error.
        source: std::io::Error,
    },
    /// No answer in time.
    #[error("timed out connecting to {traddr}:{trsvcid}")]
    Timeout {
        /// Address.
        traddr: String,
        /// Port.
        trsvcid: String,
    },
    /// The target refused CONNECT.
    #[error("{subnqn} at {traddr}:{trsvcid} refused the connection: {reason}")]
    Rejected {
        /// Subsystem.
        subnqn: String,
        /// Address.
        traddr: String,
        /// Port.
        trsvcid: String,
        /// Target's reason.
        reason: String,
    },
    /// The target closed the connection or answered garbage.
    #[error("protocol error talking to {traddr}:{trsvcid}")]
    Protocol {
        /// Address.
        traddr: String,
        /// Port.
        trsvcid: String,
    },
}

/// An established controller connection.
#[derive(Debug)]
pub struct Connection {
    reader: BufReader<OwnedReadHalf>,
    /// Kept open: dropping it would half-close the connection.
    _writer: OwnedWriteHalf,
    /// What the target said about itself.
    pub remote: RemoteInfo,
    /// Namespaces at connect time.
    pub namespaces: Vec<NsInfo>,
}

/// Connects to `trid` and performs CONNECT as `hostnqn`.
///
/// # Errors
/// [`ConnectError`] when the target is unreachable, slow, or refuses.
pub async fn connect(
    trid: &Trid,
    hostnqn: &str,
    hostid: &str,
    timeout: Duration,
) -> Result<Connection, ConnectError> {
    let traddr = trid.traddr.clone();
    let trsvcid = trid.trsvcid.clone();
    let attempt = async {
        let port: u16 = trsvcid.parse().map_err(|_| ConnectError::Protocol {
            traddr: traddr.clone(),
            trsvcid: trsvcid.clone(),
        })?;
        let sock = TcpStream::connect((traddr.as_str(), port))
            .await
            .map_err(|source| ConnectError::Tcp {
                traddr: traddr.clone(),
                trsvcid: trsvcid.clone(),
                source,
            })?;
        set_keepalive(&sock);
        let (read, mut write) = sock.into_split();
        let hello = ToTarget::Connect {
            subnqn: trid.subnqn.clone(),
            hostnqn: hostnqn.to_owned(),
            hostid: hostid.to_owned(),
        };
        let protocol = || ConnectError::Protocol {
            traddr: traddr.clone(),
            trsvcid: trsvcid.clone(),
        };
        write
            .write_all(&proto::line(&hello))
            .await
            .map_err(|_| protocol())?;
        let mut reader = BufReader::new(read);
        let mut line = String::new();
        if reader.read_line(&mut line).await.map_err(|_| protocol())? == 0 {
            return Err(protocol());
        }
        match serde_json::from_str::<ToHost>(&line).map_err(|_| protocol())? {
            ToHost::Connected {
                cntlid,
                serial_number,
                model_number,
                firmware_revision,
                namespaces,
            } => Ok(Connection {
                reader,
                _writer: write,
                remote: RemoteInfo {
                    cntlid,
                    serial_number,
                    model_number,
                    firmware_revision,
                },
                namespaces,
            }),
            ToHost::Rejected { reason } => Err(ConnectError::Rejected {
                subnqn: trid.subnqn.clone(),
                traddr: traddr.clone(),
                trsvcid: trsvcid.clone(),
                reason,
            }),
            ToHost::Namespaces { .. } => Err(protocol()),
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err(ConnectError::Timeout {
            traddr: trid.traddr.clone(),
            trsvcid: trid.trsvcid.clone(),
        }),
    }
}

fn set_state(shared: &Shared, id: u64, state: CtrlrState) -> bool {
    shared.with(|t| match t.ctrlr_by_id(id) {
        Some(c) => {
            c.state = state;
            true
        }
        None => false,
    })
}

/// Watches controller `id` over `conn`; on loss, reconnects per its policy or deletes it (and
/// its bdevs, which degrades a raid using them) once `ctrlr_loss_timeout_sec` has expired.
pub async fn monitor(
    shared: Arc<Shared>,
    id: u64,
    mut conn: Connection,
    trid: Trid,
    hostnqn: String,
    hostid: String,
) {
    loop {
        let mut line = String::new();
        loop {
            line.clear();
            match conn.reader.read_line(&mut line).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if let Ok(ToHost::Namespaces { namespaces }) =
                        serde_json::from_str::<ToHost>(&line)
                    {
                        shared.with(|t| t.apply_namespaces(id, &namespaces));
                    }
                }
            }
        }
        let lost = Instant::now();
        let Some(policy) = shared.read(|t| t.ctrlrs.iter().find(|c| c.id == id).map(|c| c.policy))
        else {
            return;
        };
        conn = loop {
            if !set_state(&shared, id, CtrlrState::Resetting) {
                return;
            }
            match connect(&trid, &hostnqn, &hostid, DEFAULT_CONNECT_TIMEOUT).await {
                Ok(c) => break c,
                Err(e) => {
                    if policy.expired(lost.elapsed()) {
                        eprintln!(
                            "spdk-sim: controller path lost for good ({e}); deleting the controller"
                        );
                        shared.with(|t| t.delete_ctrlr(id));
                        return;
                    }
                    if !set_state(&shared, id, CtrlrState::ReconnectIsDelayed) {
                        return;
                    }
                    let delay = Duration::from_secs(policy.reconnect_delay_sec.max(1));
                    tokio::time::sleep(delay).await;
                }
            }
        };
        let remote = conn.remote.clone();
        let namespaces = conn.namespaces.clone();
        let alive = shared.with(|t| {
            let Some(c) = t.ctrlr_by_id(id) else {
                return false;
            };
            c.state = CtrlrState::Enabled;
            c.remote = remote;
            t.apply_namespaces(id, &namespaces);
            true
        });
        if !alive {
            return;
        }
    }
}
