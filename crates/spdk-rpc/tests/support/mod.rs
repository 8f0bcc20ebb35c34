//! Test support: the recorded exchanges of fixtures/spdk/raw.jsonl, and a tiny fake spdk_tgt
//! on a Unix socket in a temp dir.
//!
//! The fake server decodes requests with serde_json's own stream deserializer (not the
//! crate's decoder), records them, and checks the protocol rules the client must follow:
//! every request is a JSON object with `"jsonrpc":"2.0"`, an unsigned integer id that is
//! larger than every id seen before (never a notification, never null), `params` absent or
//! an object, and never a batch array.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

/// The recorded SPDK answers: the repository's `fixtures/spdk/` (what a real spdk_tgt v24.09
/// answered; see its README.md).
pub fn spdk_fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/spdk")
}

/// One recorded exchange.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// Line number in raw.jsonl (1-based).
    pub line: usize,
    /// `A` or `B`.
    pub target: String,
    /// The method, if the request named one.
    pub method: Option<String>,
    /// The request as sent (None when it was not valid JSON).
    pub request: Option<Value>,
    /// The answer exactly as received.
    pub response_raw: String,
}

impl Exchange {
    /// The request's params, if any.
    pub fn params(&self) -> Option<&Value> {
        self.request.as_ref().and_then(|r| r.get("params"))
    }

    /// The answer parsed tolerantly (as a `Value`), if it is one complete JSON object.
    pub fn response(&self) -> Option<Value> {
        serde_json::from_str(&self.response_raw).ok()
    }

    /// `Some((code, message))` for an error answer.
    pub fn error(&self) -> Option<(i64, String)> {
        let r = self.response()?;
        let e = r.get("error")?;
        Some((
            e.get("code")?.as_i64()?,
            e.get("message")?.as_str()?.to_owned(),
        ))
    }

    /// The `result` of a successful answer.
    pub fn result(&self) -> Option<Value> {
        self.response()?.get("result").cloned()
    }
}

/// Every exchange of raw.jsonl.
pub fn load_exchanges() -> Vec<Exchange> {
    let path = spdk_fixtures_dir().join("raw.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let v: Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("line {}: {e}", i + 1));
            let request = v["request"]
                .as_str()
                .and_then(|r| serde_json::from_str(r).ok());
            Exchange {
                line: i + 1,
                target: v["target"].as_str().unwrap_or_default().to_owned(),
                method: v["method"].as_str().map(str::to_owned),
                request,
                response_raw: v["response_raw"].as_str().unwrap_or_default().to_owned(),
            }
        })
        .collect()
}

/// Replaces the id of a raw answer (`"id":N`) by `id`, keeping every other byte.
pub fn rewrite_id(raw: &str, id: u64) -> String {
    let start = raw.find("\"id\":").expect("answer has an id") + 5;
    let end = raw[start..]
        .find([',', '}'])
        .map(|e| start + e)
        .expect("id ends");
    format!("{}{}{}", &raw[..start], id, &raw[end..])
}

/// One request as the fake server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Connection number (0 for the first accepted connection).
    pub conn: usize,
    /// The request's id.
    pub id: u64,
    /// The method.
    pub method: String,
    /// The params, if present.
    pub params: Option<Value>,
}

/// What the fake server does with a request.
pub enum Reply {
    /// `{"jsonrpc":"2.0","id":..,"result":..}` + `\n`.
    Result(Value),
    /// `{"jsonrpc":"2.0","id":..,"error":{code,message}}` + `\n`.
    Error(i64, String),
    /// These bytes as they are.
    Raw(Vec<u8>),
    /// Keep the result back until a [`Reply::Release`].
    Defer(Value),
    /// Answer this request, then every deferred one in reverse order, all in one write and
    /// without newlines.
    Release(Value),
    /// Write the first half of the result's answer, then close the connection.
    HalfThenClose(Value),
    /// Close the connection without answering.
    Close,
    /// The answer in pieces of `n` bytes, one write each, with a short pause between.
    Chunks(usize, Value),
    /// The answer after a pause (holding back later requests of the connection).
    Delayed(std::time::Duration, Value),
    /// Never answer.
    Silent,
}

type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

/// A fake spdk_tgt on a Unix socket.
pub struct FakeServer {
    /// The socket path.
    pub path: PathBuf,
    seen: Arc<Mutex<Vec<Seen>>>,
    violations: Arc<Mutex<Vec<String>>>,
    connections: Arc<AtomicUsize>,
    accept: JoinHandle<()>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.accept.abort();
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Answers `spdk_get_version` as v24.09 and everything else with `true`.
pub fn v24_09(seen: &Seen) -> Reply {
    match seen.method.as_str() {
        "spdk_get_version" => Reply::Result(version_result(24, 9)),
        _ => Reply::Result(json!(true)),
    }
}

/// A `spdk_get_version` result.
pub fn version_result(major: u32, minor: u32) -> Value {
    json!({
        "version": format!("SPDK v{major}.{minor:02}"),
        "fields": {"major": major, "minor": minor, "patch": 0, "suffix": ""}
    })
}

impl FakeServer {
    /// Starts a server at `path` answering with `handler`.
    pub fn start(path: &Path, handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Self {
        Self::start_with(path, Arc::new(handler), Arc::default(), Arc::default())
    }

    /// Stops `previous` (closing its connections, as a dying spdk_tgt does) and starts a new
    /// server on the same path sharing its request log and protocol checks: a restart.
    pub fn restart(
        previous: FakeServer,
        handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let path = previous.path.clone();
        let (seen, violations) = (Arc::clone(&previous.seen), Arc::clone(&previous.violations));
        drop(previous);
        Self::start_with(&path, Arc::new(handler), seen, violations)
    }

    fn start_with(
        path: &Path,
        handler: Handler,
        seen: Arc<Mutex<Vec<Seen>>>,
        violations: Arc<Mutex<Vec<String>>>,
    ) -> Self {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).expect("bind fake spdk socket");
        let connections = Arc::new(AtomicUsize::new(0));
        let tasks: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = {
            let (seen, violations, connections, tasks) = (
                Arc::clone(&seen),
                Arc::clone(&violations),
                Arc::clone(&connections),
                Arc::clone(&tasks),
            );
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let conn = connections.fetch_add(1, Ordering::SeqCst);
                    let task = tokio::spawn(serve(
                        stream,
                        conn,
                        Arc::clone(&handler),
                        Arc::clone(&seen),
                        Arc::clone(&violations),
                    ));
                    tasks.lock().unwrap().push(task);
                }
            })
        };
        Self {
            path: path.to_owned(),
            seen,
            violations,
            connections,
            accept,
            tasks,
        }
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Protocol rules the client broke.
    pub fn violations(&self) -> Vec<String> {
        self.violations.lock().unwrap().clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

fn answer(id: u64, result: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": id, "result": result})).unwrap()
}

async fn serve(
    mut stream: UnixStream,
    conn: usize,
    handler: Handler,
    seen: Arc<Mutex<Vec<Seen>>>,
    violations: Arc<Mutex<Vec<String>>>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut deferred: VecDeque<Vec<u8>> = VecDeque::new();
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        // Take every complete value from the buffer.
        let mut values = Vec::new();
        {
            let mut iter = serde_json::Deserializer::from_slice(&buf).into_iter::<Value>();
            loop {
                match iter.next() {
                    Some(Ok(v)) => values.push(v),
                    Some(Err(e)) if e.is_eof() => break,
                    Some(Err(e)) => {
                        violations
                            .lock()
                            .unwrap()
                            .push(format!("invalid JSON from client: {e}"));
                        return;
                    }
                    None => break,
                }
            }
            let consumed = iter.byte_offset();
            buf.drain(..consumed);
        }
        for value in values {
            let Some(request) = check_request(&value, &seen, &violations, conn) else {
                continue;
            };
            let id = request.id;
            let bytes = match handler(&request) {
                Reply::Result(v) => [answer(id, &v), b"\n".to_vec()].concat(),
                Reply::Error(code, message) => [
                    serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}))
                        .unwrap(),
                    b"\n".to_vec(),
                ]
                .concat(),
                Reply::Raw(bytes) => bytes,
                Reply::Defer(v) => {
                    deferred.push_front(answer(id, &v));
                    continue;
                }
                Reply::Release(v) => {
                    let mut all = answer(id, &v);
                    for d in deferred.drain(..) {
                        all.extend(d);
                    }
                    all
                }
                Reply::HalfThenClose(v) => {
                    let full = answer(id, &v);
                    let _ = stream.write_all(&full[..full.len() / 2]).await;
                    return;
                }
                Reply::Close => return,
                Reply::Chunks(n, v) => {
                    let full = [answer(id, &v), b"\n".to_vec()].concat();
                    for piece in full.chunks(n.max(1)) {
                        if stream.write_all(piece).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                    }
                    continue;
                }
                Reply::Delayed(pause, v) => {
                    tokio::time::sleep(pause).await;
                    [answer(id, &v), b"\n".to_vec()].concat()
                }
                Reply::Silent => continue,
            };
            if stream.write_all(&bytes).await.is_err() {
                return;
            }
        }
    }
}

fn check_request(
    value: &Value,
    seen: &Mutex<Vec<Seen>>,
    violations: &Mutex<Vec<String>>,
    conn: usize,
) -> Option<Seen> {
    let bad = |msg: String| violations.lock().unwrap().push(msg);
    let Some(obj) = value.as_object() else {
        bad(format!("not an object (batch?): {value}"));
        return None;
    };
    if obj.get("jsonrpc") != Some(&json!("2.0")) {
        bad(format!("jsonrpc is not \"2.0\": {value}"));
    }
    let Some(id) = obj.get("id").and_then(Value::as_u64) else {
        bad(format!("notification or non-integer id: {value}"));
        return None;
    };
    let method = obj
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if method.is_empty() {
        bad(format!("no method: {value}"));
    }
    let params = obj.get("params").cloned();
    if let Some(p) = &params
        && !p.is_object()
    {
        bad(format!("params not an object: {value}"));
    }
    let mut seen = seen.lock().unwrap();
    if let Some(last) = seen.last()
        && id <= last.id
    {
        bad(format!("id {id} not above previous {}", last.id));
    }
    let s = Seen {
        conn,
        id,
        method,
        params,
    };
    seen.push(s.clone());
    Some(s)
}
