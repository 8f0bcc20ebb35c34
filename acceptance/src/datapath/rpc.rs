//! A minimal synchronous JSON-RPC client for an spdk_tgt socket: what the data-path tests and
//! the benchmark need to set up (and take down) an export on a target they reach directly.
//!
//! Raw serde_json over a Unix socket, one request at a time, each with a numeric id and a
//! bounded wait. It sends only the parameters it is given, so it works with every SPDK
//! version (SPDK's PyPI client sends `hide_metadata` to `nvmf_subsystem_add_ns`, which v24.09
//! refuses).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The socket could not be reached (yet).
    #[error("SPDK socket {socket}: cannot connect: {source}")]
    Connect {
        /// The socket.
        socket: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing the socket failed.
    #[error("SPDK socket {socket}: {method}: {source}")]
    Io {
        /// The socket.
        socket: PathBuf,
        /// The method called.
        method: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No complete answer within the time allowed.
    #[error("SPDK socket {socket}: {method}: no answer within {secs} s")]
    Timeout {
        /// The socket.
        socket: PathBuf,
        /// The method called.
        method: String,
        /// The time allowed.
        secs: u64,
    },
    /// The answer is not JSON-RPC.
    #[error("SPDK socket {socket}: {method}: the answer is not JSON-RPC: {answer}")]
    Garbled {
        /// The socket.
        socket: PathBuf,
        /// The method called.
        method: String,
        /// What came back.
        answer: String,
    },
    /// SPDK answered with an error.
    #[error("SPDK socket {socket}: {method} {params}: error {code} {message:?}")]
    Spdk {
        /// The socket.
        socket: PathBuf,
        /// The method called.
        method: String,
        /// Its parameters.
        params: String,
        /// SPDK's code (JSON-RPC code or negative errno).
        code: i64,
        /// SPDK's message.
        message: String,
    },
}

impl RpcError {
    /// SPDK's error code, when SPDK answered with an error.
    pub fn code(&self) -> Option<i64> {
        match self {
            RpcError::Spdk { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// One spdk_tgt's socket.
#[derive(Debug, Clone)]
pub struct Rpc {
    socket: PathBuf,
    timeout: Duration,
}

impl Rpc {
    /// The target listening on `socket`; each call waits at most 30 s.
    pub fn new(socket: &Path) -> Rpc {
        Rpc {
            socket: socket.to_path_buf(),
            timeout: Duration::from_secs(30),
        }
    }

    /// The socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Waits (at most `within`) until the target answers `spdk_get_version`; its version.
    pub fn wait_ready(&self, within: Duration) -> Result<Value, RpcError> {
        let deadline = Instant::now() + within;
        loop {
            match self.call("spdk_get_version", None) {
                Ok(v) => return Ok(v),
                Err(e @ (RpcError::Connect { .. } | RpcError::Io { .. })) => {
                    if Instant::now() >= deadline {
                        return Err(e);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Calls `method` with `params` (None: no params); the `result`.
    pub fn call(&self, method: &str, params: Option<Value>) -> Result<Value, RpcError> {
        let io = |source| RpcError::Io {
            socket: self.socket.clone(),
            method: method.to_string(),
            source,
        };
        let mut stream = UnixStream::connect(&self.socket).map_err(|source| RpcError::Connect {
            socket: self.socket.clone(),
            source,
        })?;
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .map_err(io)?;
        let mut req = json!({"jsonrpc": "2.0", "id": 1, "method": method});
        if let Some(p) = &params {
            req["params"] = p.clone();
        }
        stream.write_all(req.to_string().as_bytes()).map_err(io)?;
        let deadline = Instant::now() + self.timeout;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 65536];
        let answer: Value = loop {
            if let Ok(v) = serde_json::from_slice::<Value>(&buf) {
                break v;
            }
            if Instant::now() >= deadline {
                return Err(RpcError::Timeout {
                    socket: self.socket.clone(),
                    method: method.to_string(),
                    secs: self.timeout.as_secs(),
                });
            }
            match stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(RpcError::Garbled {
                        socket: self.socket.clone(),
                        method: method.to_string(),
                        answer: format!(
                            "connection closed after {:?}",
                            String::from_utf8_lossy(&buf)
                        ),
                    });
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(io(e)),
            }
        };
        if let Some(err) = answer.get("error") {
            return Err(RpcError::Spdk {
                socket: self.socket.clone(),
                method: method.to_string(),
                params: params.map(|p| p.to_string()).unwrap_or_default(),
                code: err["code"].as_i64().unwrap_or(0),
                message: err["message"].as_str().unwrap_or("").to_string(),
            });
        }
        answer
            .get("result")
            .cloned()
            .ok_or_else(|| RpcError::Garbled {
                socket: self.socket.clone(),
                method: method.to_string(),
                answer: answer.to_string(),
            })
    }
}

/// The parameters of `nvmf_subsystem_add_listener` for NVMe/TCP on IPv4 `address:port`.
pub fn tcp_listener(nqn: &str, address: &str, port: u16) -> Value {
    json!({
        "nqn": nqn,
        "listen_address": {
            "trtype": "TCP",
            "adrfam": "IPv4",
            "traddr": address,
            "trsvcid": port.to_string(),
        }
    })
}

/// A host NQN allowed on a subsystem for a while: removed on [`HostGrant::close`] or drop,
/// unless it was allowed before.
///
/// On a volume's frontend this lasts only until the executor reconciles the volume again
/// (any apply that touches it, e.g. a grow or a heal): the executor sets the frontend's hosts
/// to the ones it knows and drops this one. Grant again after such an apply.
#[derive(Debug)]
pub struct HostGrant {
    rpc: Rpc,
    nqn: String,
    host: String,
    added: bool,
}

impl HostGrant {
    /// Allows `host` on subsystem `nqn` (nothing to do, and nothing undone later, when it
    /// already is).
    pub fn allow(rpc: &Rpc, nqn: &str, host: &str) -> Result<HostGrant, RpcError> {
        let subsystems = rpc.call("nvmf_get_subsystems", None)?;
        let already = subsystems
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["nqn"] == nqn)
            .flat_map(|s| s["hosts"].as_array().cloned().unwrap_or_default())
            .any(|h| h["nqn"] == host);
        if !already {
            rpc.call(
                "nvmf_subsystem_add_host",
                Some(json!({"nqn": nqn, "host": host})),
            )?;
        }
        Ok(HostGrant {
            rpc: rpc.clone(),
            nqn: nqn.to_string(),
            host: host.to_string(),
            added: !already,
        })
    }

    /// True when this grant added the host (and will remove it).
    pub fn added(&self) -> bool {
        self.added
    }

    /// Removes the host if this grant added it.
    pub fn close(mut self) -> Result<(), RpcError> {
        self.remove()
    }

    fn remove(&mut self) -> Result<(), RpcError> {
        if std::mem::take(&mut self.added) {
            self.rpc.call(
                "nvmf_subsystem_remove_host",
                Some(json!({"nqn": self.nqn, "host": self.host})),
            )?;
        }
        Ok(())
    }
}

impl Drop for HostGrant {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}

/// A temporary NVMe/TCP export of a bdev (optionally of a snapshot this export took, or of an
/// lvol it created): deleted, with what it created, on [`TempExport::close`] or drop.
///
/// A raid1 member cannot be exported (SPDK refuses a namespace on a claimed bdev); a snapshot
/// of it can: [`TempExport::snapshot_of`] reads a volume's local replica as it is.
#[derive(Debug)]
pub struct TempExport {
    rpc: Rpc,
    /// What to connect to.
    pub address: String,
    /// The listener's port.
    pub port: u16,
    /// The subsystem.
    pub nqn: String,
    /// The exported bdev.
    pub bdev: String,
    /// The lvol or snapshot this export created (deleted with it).
    created: Option<String>,
    open: bool,
}

impl TempExport {
    /// Exports `bdev` as subsystem `nqn` on `address`, on the first port from `port_from`
    /// (20 tried) that no listener of this target uses, allowing `host`.
    pub fn bdev(
        rpc: &Rpc,
        nqn: &str,
        bdev: &str,
        address: &str,
        port_from: u16,
        host: &str,
    ) -> Result<TempExport, RpcError> {
        let mut e = TempExport {
            rpc: rpc.clone(),
            address: address.to_string(),
            port: 0,
            nqn: nqn.to_string(),
            bdev: bdev.to_string(),
            created: None,
            open: false,
        };
        e.create(port_from, host)?;
        Ok(e)
    }

    /// Takes snapshot `snapshot` of lvol `lvol_alias` (`lvs/name`) and exports it.
    pub fn snapshot_of(
        rpc: &Rpc,
        lvol_alias: &str,
        snapshot: &str,
        nqn: &str,
        address: &str,
        port_from: u16,
        host: &str,
    ) -> Result<TempExport, RpcError> {
        rpc.call(
            "bdev_lvol_snapshot",
            Some(json!({"lvol_name": lvol_alias, "snapshot_name": snapshot})),
        )?;
        let lvs = lvol_alias.split_once('/').map_or("", |(l, _)| l);
        let alias = format!("{lvs}/{snapshot}");
        let mut e = TempExport {
            rpc: rpc.clone(),
            address: address.to_string(),
            port: 0,
            nqn: nqn.to_string(),
            bdev: alias.clone(),
            created: Some(alias),
            open: false,
        };
        e.create(port_from, host)?;
        Ok(e)
    }

    /// Creates thin lvol `name` of `size_mib` on lvstore `lvs` and exports it.
    #[allow(clippy::too_many_arguments)]
    pub fn new_lvol(
        rpc: &Rpc,
        lvs: &str,
        name: &str,
        size_mib: u64,
        nqn: &str,
        address: &str,
        port_from: u16,
        host: &str,
    ) -> Result<TempExport, RpcError> {
        rpc.call(
            "bdev_lvol_create",
            Some(json!({"lvol_name": name, "size_in_mib": size_mib, "lvs_name": lvs, "thin_provision": true})),
        )?;
        let alias = format!("{lvs}/{name}");
        let mut e = TempExport {
            rpc: rpc.clone(),
            address: address.to_string(),
            port: 0,
            nqn: nqn.to_string(),
            bdev: alias.clone(),
            created: Some(alias),
            open: false,
        };
        e.create(port_from, host)?;
        Ok(e)
    }

    fn create(&mut self, port_from: u16, host: &str) -> Result<(), RpcError> {
        let rpc = self.rpc.clone();
        rpc.call(
            "nvmf_create_subsystem",
            Some(json!({"nqn": self.nqn, "allow_any_host": false})),
        )?;
        self.open = true;
        rpc.call(
            "nvmf_subsystem_add_ns",
            Some(json!({"nqn": self.nqn, "namespace": {"bdev_name": self.bdev}})),
        )?;
        rpc.call(
            "nvmf_subsystem_add_host",
            Some(json!({"nqn": self.nqn, "host": host})),
        )?;
        let used: Vec<u16> = rpc
            .call("nvmf_get_subsystems", None)?
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| {
                s["listen_addresses"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|l| l["trsvcid"].as_str().and_then(|p| p.parse().ok()))
            .collect();
        let mut last = None;
        for port in (port_from..).take(20).filter(|p| !used.contains(p)) {
            match rpc.call(
                "nvmf_subsystem_add_listener",
                Some(tcp_listener(&self.nqn, &self.address, port)),
            ) {
                Ok(_) => {
                    self.port = port;
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| RpcError::Garbled {
            socket: rpc.socket().to_path_buf(),
            method: "nvmf_subsystem_add_listener".into(),
            answer: format!("every port from {port_from} is in use"),
        }))
    }

    /// Deletes the subsystem and what this export created; what it did, one line each.
    pub fn close(mut self) -> Result<Vec<String>, RpcError> {
        self.remove()
    }

    fn remove(&mut self) -> Result<Vec<String>, RpcError> {
        let mut done = Vec::new();
        if std::mem::take(&mut self.open) {
            self.rpc
                .call("nvmf_delete_subsystem", Some(json!({"nqn": self.nqn})))?;
            done.push(format!("deleted subsystem {}", self.nqn));
        }
        if let Some(b) = self.created.take() {
            self.rpc
                .call("bdev_lvol_delete", Some(json!({"name": b})))?;
            done.push(format!("deleted lvol {b}"));
        }
        Ok(done)
    }
}

impl Drop for TempExport {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A one-shot server answering the first request with `answer(request)`.
    fn serve(answer: impl Fn(Value) -> String + Send + 'static) -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let sock = d.path().join("s.sock");
        let l = UnixListener::bind(&sock).unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let req = loop {
                let n = s.read(&mut chunk).unwrap();
                buf.extend_from_slice(&chunk[..n]);
                if let Ok(v) = serde_json::from_slice::<Value>(&buf) {
                    break v;
                }
            };
            let a = answer(req);
            // Split the answer to check that partial reads are reassembled.
            let (x, y) = a.split_at(a.len() / 2);
            s.write_all(x.as_bytes()).unwrap();
            std::thread::sleep(Duration::from_millis(50));
            s.write_all(y.as_bytes()).unwrap();
        });
        (d, sock)
    }

    #[test]
    fn a_result_comes_back_and_the_request_carries_method_and_params() {
        let (_d, sock) = serve(|req| {
            assert_eq!(req["method"], "nvmf_subsystem_add_host");
            assert_eq!(req["params"]["host"], "nqn.x:h");
            assert!(req["id"].is_number(), "never a notification: {req}");
            r#"{"jsonrpc":"2.0","id":1,"result":true}"#.to_string() + "\n"
        });
        let r = Rpc::new(&sock)
            .call(
                "nvmf_subsystem_add_host",
                Some(json!({"nqn": "nqn.x:s", "host": "nqn.x:h"})),
            )
            .unwrap();
        assert_eq!(r, json!(true));
    }

    #[test]
    fn an_spdk_error_names_socket_method_code_and_message() {
        let (_d, sock) = serve(|_| {
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"Invalid parameters"}}"#
                .to_string()
        });
        let e = Rpc::new(&sock)
            .call("nvmf_create_subsystem", Some(json!({"nqn": "nqn.x:s"})))
            .unwrap_err();
        assert_eq!(e.code(), Some(-32602));
        let m = e.to_string();
        assert!(m.contains("nvmf_create_subsystem"), "{m}");
        assert!(m.contains("Invalid parameters"), "{m}");
        assert!(m.contains(&sock.display().to_string()), "{m}");
    }

    #[test]
    fn a_missing_socket_is_a_connect_error_naming_it() {
        let d = tempfile::tempdir().unwrap();
        let sock = d.path().join("absent.sock");
        let e = Rpc::new(&sock).call("spdk_get_version", None).unwrap_err();
        assert!(matches!(e, RpcError::Connect { .. }), "{e}");
        assert!(e.to_string().contains("absent.sock"), "{e}");
    }

    #[test]
    fn a_tcp_listener_is_ipv4_tcp_with_a_string_port() {
        let l = tcp_listener("nqn.x:s", "10.0.0.1", 4420);
        assert_eq!(l["listen_address"]["trsvcid"], "4420");
        assert_eq!(l["listen_address"]["trtype"], "TCP");
    }
}
