//! Target side of the NVMe-oF stand-in: real TCP listening sockets and one task per connected host.

use super::proto::{self, ToHost, ToTarget};
use super::set_keepalive;
use crate::shared::Shared;
use crate::state::Target;
use crate::state::nvmf::{HostConn, ListenAddr, Listener};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// How long a new connection may take to send CONNECT.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A listener that cannot be opened.
#[derive(Debug, Error)]
pub enum ListenError {
    /// The address is not an IP address or the port is not a number.
    #[error("invalid listen address {traddr}:{trsvcid}")]
    Address {
        /// Address.
        traddr: String,
        /// Port.
        trsvcid: String,
    },
    /// bind(2) failed (address not local, port in use, ...).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Socket address.
        addr: SocketAddr,
        /// OS error.
        source: std::io::Error,
    },
}

/// Parses a listen address into a socket address.
///
/// # Errors
/// [`ListenError::Address`] when it is not `ip` + numeric port.
pub fn socket_addr(addr: &ListenAddr) -> Result<SocketAddr, ListenError> {
    let bad = || ListenError::Address {
        traddr: addr.traddr.clone(),
        trsvcid: addr.trsvcid.clone(),
    };
    let ip: std::net::IpAddr = addr.traddr.parse().map_err(|_| bad())?;
    let port: u16 = addr.trsvcid.parse().map_err(|_| bad())?;
    Ok(SocketAddr::new(ip, port))
}

/// Binds a TCP listener on `addr` and starts accepting hosts. Must run inside the runtime.
///
/// # Errors
/// [`ListenError`] when the socket cannot be bound.
pub fn start_listener(shared: &Arc<Shared>, addr: &ListenAddr) -> Result<Listener, ListenError> {
    let sa = socket_addr(addr)?;
    let bind = |source| ListenError::Bind { addr: sa, source };
    let std_listener = std::net::TcpListener::bind(sa).map_err(bind)?;
    std_listener.set_nonblocking(true).map_err(bind)?;
    let listener = tokio::net::TcpListener::from_std(std_listener).map_err(bind)?;
    let shared = Arc::clone(shared);
    let listen_addr = addr.clone();
    let task = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((sock, _peer)) => {
                    set_keepalive(&sock);
                    tokio::spawn(serve_host(Arc::clone(&shared), sock, listen_addr.clone()));
                }
                Err(e) => {
                    eprintln!("spdk-sim: accept on {sa}: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(Listener {
        addr: addr.clone(),
        task: task.abort_handle(),
    })
}

/// Admits or refuses a CONNECT; on success the connection is registered with `tx`.
fn admit(
    t: &mut Target,
    addr: &ListenAddr,
    subnqn: &str,
    hostnqn: &str,
    hostid: &str,
    tx: mpsc::UnboundedSender<ToHost>,
) -> Result<(u64, ToHost), String> {
    let id = t.next_id();
    let namespaces = t.ns_infos(subnqn);
    let firmware_revision = t.version.firmware_revision();
    let sub = t
        .subsystem_mut(subnqn)
        .ok_or_else(|| format!("subsystem {subnqn} does not exist"))?;
    if !sub.listeners.contains(addr) {
        return Err(format!(
            "subsystem {subnqn} does not listen on {}:{}",
            addr.traddr, addr.trsvcid
        ));
    }
    if !sub.host_allowed(hostnqn) {
        return Err(format!(
            "host {hostnqn} is not allowed to connect to {subnqn}"
        ));
    }
    let cntlid = sub.alloc_cntlid();
    sub.conns.push(HostConn {
        id,
        cntlid,
        hostnqn: hostnqn.to_owned(),
        hostid: hostid.to_owned(),
        addr: addr.clone(),
        tx,
    });
    let reply = ToHost::Connected {
        cntlid,
        serial_number: sub.serial_number.clone(),
        model_number: sub.model_number.clone(),
        firmware_revision,
        namespaces,
    };
    Ok((id, reply))
}

async fn serve_host(shared: Arc<Shared>, sock: TcpStream, addr: ListenAddr) {
    let (read, mut write) = sock.into_split();
    let mut reader = BufReader::new(read);
    let mut line = String::new();
    let got = tokio::time::timeout(CONNECT_TIMEOUT, reader.read_line(&mut line)).await;
    let Ok(Ok(n)) = got else { return };
    if n == 0 {
        return;
    }
    let Ok(ToTarget::Connect {
        subnqn,
        hostnqn,
        hostid,
    }) = serde_json::from_str::<ToTarget>(&line)
    else {
        return;
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let admitted = shared.with(|t| admit(t, &addr, &subnqn, &hostnqn, &hostid, tx));
    let (id, reply) = match admitted {
        Ok(ok) => ok,
        Err(reason) => {
            let _ = write
                .write_all(&proto::line(&ToHost::Rejected { reason }))
                .await;
            return;
        }
    };
    if write.write_all(&proto::line(&reply)).await.is_ok() {
        let mut scratch = [0u8; 256];
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(m) => if write.write_all(&proto::line(&m)).await.is_err() { break },
                    None => break,
                },
                r = reader.read(&mut scratch) => match r {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                },
            }
        }
    }
    shared.with(|t| {
        if let Some(sub) = t.subsystem_mut(&subnqn) {
            sub.conns.retain(|c| c.id != id);
        }
    });
}
