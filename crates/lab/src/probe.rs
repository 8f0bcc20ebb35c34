//! Is a node up? Its sshd (TCP connect and SSH banner) and its executor (a real gRPC call
//! through the `client` crate on the executor's Unix socket).

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use client::transport::TransportOptions;
use client::{Endpoint, ExecutorClient};
use proto::v1;

use crate::net::{self, NetError};

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// TCP connect or read failed.
    #[error("{addr}: {source}")]
    Tcp {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Something answered that is not an SSH server.
    #[error("{addr} answered {banner:?}, not an SSH banner")]
    NotSsh {
        /// The address.
        addr: SocketAddr,
        /// What it sent.
        banner: String,
    },
    /// The executor did not answer.
    #[error("executor of {node} at {socket}: {source}")]
    Executor {
        /// The node.
        node: String,
        /// The socket.
        socket: PathBuf,
        /// Why.
        #[source]
        source: Box<client::ClientError>,
    },
    /// The probe could not run inside the namespace.
    #[error("probing {addr} from namespace {namespace}: {source}")]
    Namespace {
        /// The address.
        addr: SocketAddr,
        /// The namespace.
        namespace: String,
        /// Why.
        #[source]
        source: Box<NetError>,
    },
    /// The executor did not answer in time.
    #[error("executor of {node} at {socket}: no answer within {after:?}")]
    Timeout {
        /// The node.
        node: String,
        /// The socket.
        socket: PathBuf,
        /// The time limit.
        after: Duration,
    },
}

/// True when something accepts TCP connections at `addr` within `timeout`.
pub fn tcp_accepts(addr: SocketAddr, timeout: Duration) -> bool {
    TcpStream::connect_timeout(&addr, timeout).is_ok()
}

/// Connects to `addr` and reads the SSH identification line (`SSH-2.0-…`).
pub fn ssh_banner(addr: SocketAddr, timeout: Duration) -> Result<String, ProbeError> {
    let tcp = |source| ProbeError::Tcp { addr, source };
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(tcp)?;
    s.set_read_timeout(Some(timeout)).map_err(tcp)?;
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while buf.len() < 255 && !buf.ends_with(b"\n") {
        match s.read(&mut byte).map_err(tcp)? {
            0 => break,
            _ => buf.push(byte[0]),
        }
    }
    let banner = String::from_utf8_lossy(&buf).trim_end().to_string();
    if banner.starts_with("SSH-2.0-") {
        Ok(banner)
    } else {
        Err(ProbeError::NotSsh { addr, banner })
    }
}

/// [`ssh_banner`] from inside `namespace` (e.g. the node's own, when the node is cut off
/// from the host).
pub fn ssh_banner_from(
    namespace: &str,
    addr: SocketAddr,
    timeout: Duration,
) -> Result<String, ProbeError> {
    net::in_namespace(namespace, move || ssh_banner(addr, timeout)).map_err(|source| {
        ProbeError::Namespace {
            addr,
            namespace: namespace.to_string(),
            source: Box::new(source),
        }
    })?
}

/// Asks the executor of `node` at `socket` for its status, within `timeout`.
pub async fn executor_status(
    node: &str,
    socket: &Path,
    timeout: Duration,
) -> Result<v1::NodeStatus, ProbeError> {
    let endpoint = Endpoint::Unix(socket.to_path_buf());
    let opts = TransportOptions {
        connect_timeout: timeout,
        request_timeout: timeout,
        ..Default::default()
    };
    let err = |source: client::ClientError| ProbeError::Executor {
        node: node.to_string(),
        socket: socket.to_path_buf(),
        source: Box::new(source),
    };
    let call = async {
        let mut c = ExecutorClient::connect_with(node, &endpoint, &opts)
            .await
            .map_err(err)?;
        c.node_status().await.map_err(err)
    };
    tokio::time::timeout(timeout, call)
        .await
        .unwrap_or_else(|_| {
            Err(ProbeError::Timeout {
                node: node.to_string(),
                socket: socket.to_path_buf(),
                after: timeout,
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    #[test]
    fn reads_an_ssh_banner_and_refuses_anything_else() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            for reply in [&b"SSH-2.0-OpenSSH_9.2 lab\r\n"[..], b"HTTP/1.1 400 Bad\r\n"] {
                let (mut c, _) = l.accept().unwrap();
                c.write_all(reply).unwrap();
            }
        });
        assert_eq!(
            ssh_banner(addr, Duration::from_secs(5)).unwrap(),
            "SSH-2.0-OpenSSH_9.2 lab"
        );
        let err = ssh_banner(addr, Duration::from_secs(5)).unwrap_err();
        assert!(matches!(err, ProbeError::NotSsh { .. }), "{err}");
        server.join().unwrap();
    }

    #[test]
    fn a_closed_port_is_not_up() {
        let addr = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        assert!(!tcp_accepts(addr, Duration::from_millis(500)));
        assert!(matches!(
            ssh_banner(addr, Duration::from_millis(500)),
            Err(ProbeError::Tcp { .. })
        ));
    }

    #[tokio::test]
    async fn a_missing_executor_socket_names_node_and_socket() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("executor.sock");
        let err = executor_status("node-7", &sock, Duration::from_secs(2))
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("node-7") && msg.contains("executor.sock"),
            "{msg}"
        );
    }
}
