//! Test helpers: simulators on temp sockets, a raw client, sparse files, free ports.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use spdk_sim::{Config, Sim};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Starts a simulator on `<dir>/<name>.sock` with a short rebuild.
pub fn start(dir: &Path, name: &str) -> Sim {
    let mut cfg = Config::with_socket(dir.join(format!("{name}.sock")));
    cfg.rebuild_time = Duration::from_millis(300);
    Sim::spawn(cfg).expect("simulator starts")
}

/// Creates a sparse file of `size` bytes.
pub fn sparse(dir: &Path, name: &str, size: u64) -> PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p).unwrap().set_len(size).unwrap();
    p
}

/// A TCP port that is free right now on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A blocking JSON-RPC client speaking raw bytes.
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
}

impl Client {
    pub fn connect(path: &Path) -> Self {
        let s = UnixStream::connect(path).expect("connect to simulator");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Self {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
            next_id: 1,
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    /// Reads one newline-terminated response line.
    pub fn read_line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read response");
        line
    }

    /// Reads whatever arrives within `wait` (used for responses without newline, or to see EOF).
    pub fn read_for(&mut self, wait: Duration) -> Result<Vec<u8>, std::io::Error> {
        self.writer.set_read_timeout(Some(wait)).unwrap();
        let mut buf = vec![0u8; 65536];
        let r = self.reader.read(&mut buf).map(|n| buf[..n].to_vec());
        self.writer
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        r
    }

    /// Sends `{method, params?}` and returns the whole response object.
    pub fn request(&mut self, method: &str, params: Option<Value>) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut req = json!({"jsonrpc": "2.0", "method": method, "id": id});
        if let Some(p) = params {
            req["params"] = p;
        }
        self.send_raw(serde_json::to_string(&req).unwrap().as_bytes());
        let line = self.read_line();
        assert!(
            line.ends_with('\n'),
            "response to {method} must end with a newline: {line:?}"
        );
        let v: Value = serde_json::from_str(&line).expect("response is JSON");
        assert_eq!(v["id"], json!(id), "response id for {method}");
        v
    }

    /// Calls and expects success.
    pub fn ok(&mut self, method: &str, params: Value) -> Value {
        let params = if params.is_null() { None } else { Some(params) };
        let v = self.request(method, params);
        assert!(v.get("error").is_none(), "{method} failed: {v}");
        v["result"].clone()
    }

    /// Calls and expects an error; returns (code, message).
    pub fn err(&mut self, method: &str, params: Value) -> (i64, String) {
        let params = if params.is_null() { None } else { Some(params) };
        let v = self.request(method, params);
        let e = v
            .get("error")
            .unwrap_or_else(|| panic!("{method} should fail: {v}"));
        (
            e["code"].as_i64().unwrap(),
            e["message"].as_str().unwrap().to_owned(),
        )
    }
}

/// Polls `f` every 50 ms for at most `limit` until it returns `Some`.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
