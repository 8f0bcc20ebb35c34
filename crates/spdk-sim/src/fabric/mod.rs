//! A small TCP protocol standing in for NVMe/TCP between simulators: it carries only what the
//! control plane can observe (connect, namespaces, sizes, connection loss), no data.

pub mod host;
pub mod proto;
pub mod target;

use std::time::Duration;
use tokio::net::TcpStream;

/// Turns on TCP keep-alive (1 s idle, 1 s interval, 3 probes) so that a silently cut link is
/// noticed in seconds by both sides, without any polling in user space.
pub fn set_keepalive(sock: &TcpStream) {
    let ka = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(1))
        .with_interval(Duration::from_secs(1))
        .with_retries(3);
    if let Err(e) = socket2::SockRef::from(sock).set_tcp_keepalive(&ka) {
        eprintln!("spdk-sim: cannot enable TCP keep-alive: {e}");
    }
}
