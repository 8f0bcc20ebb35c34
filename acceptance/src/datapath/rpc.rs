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
