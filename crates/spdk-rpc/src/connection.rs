//! One Unix-socket connection to spdk_tgt: a writer task, a reader task, and the table of
//! requests waiting for their answer.
//!
//! Requests are handed whole to the writer task, so a caller that gives up (timeout, dropped
//! future) can never leave half a request in the stream. The reader task decodes answers as
//! they come, in any order, and hands each to the waiter with the same id; answers nobody waits
//! for any more (late answers after a timeout) are dropped. When the stream ends or turns
//! invalid, every waiter is told, and the connection refuses new requests: the client then
//! opens a new one.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::error::Error;
use crate::framing::Decoder;
use crate::protocol::{Response, decode_response, encode_request};

/// Why a connection stopped working.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Broken {
    /// spdk_tgt closed it (or reading/writing failed).
    Closed(String),
    /// spdk_tgt sent bytes that are not a JSON-RPC answer we can match.
    Corrupt(String),
}

type Waiter = oneshot::Sender<Result<Response, Broken>>;

#[derive(Default)]
struct State {
    waiting: HashMap<u64, Waiter>,
    broken: Option<Broken>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The lock is never held across a panic-prone section; recover anyway.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn broken(&self) -> Option<Broken> {
        self.lock().broken.clone()
    }

    /// Marks the connection broken (the first reason wins) and tells every waiter.
    fn break_with(&self, reason: Broken) {
        let waiters: Vec<Waiter> = {
            let mut state = self.lock();
            if state.broken.is_none() {
                state.broken = Some(reason);
            }
            state.waiting.drain().map(|(_, w)| w).collect()
        };
        let reason = self.broken().unwrap_or(Broken::Closed(String::new()));
        for waiter in waiters {
            // The waiter may have gone away; nothing to tell then.
            let _ = waiter.send(Err(reason.clone()));
        }
    }

    fn deliver(&self, response: Response) {
        let waiter = self.lock().waiting.remove(&response.id);
        match waiter {
            Some(w) => {
                let _ = w.send(Ok(response));
            }
            None => tracing::debug!(id = response.id, "discarding answer nobody waits for"),
        }
    }
}

struct WriteJob {
    bytes: Vec<u8>,
    written: oneshot::Sender<io::Result<()>>,
}

/// A request that was not written to the socket: spdk_tgt cannot have executed it.
#[derive(Debug)]
pub(crate) struct NotSent(pub Broken);

/// A live connection.
pub(crate) struct Connection {
    jobs: mpsc::UnboundedSender<WriteJob>,
    shared: Arc<Shared>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}

impl Connection {
    /// Connects to `socket` within `timeout`.
    pub(crate) async fn open(
        socket: &Path,
        timeout: Duration,
        max_value_bytes: usize,
    ) -> Result<Self, Error> {
        let stream = match tokio::time::timeout(timeout, UnixStream::connect(socket)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::SocketMissing {
                    socket: socket.to_owned(),
                });
            }
            Ok(Err(source)) => {
                return Err(Error::Connect {
                    socket: socket.to_owned(),
                    source,
                });
            }
            Err(_) => {
                return Err(Error::Connect {
                    socket: socket.to_owned(),
                    source: io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no connection within {timeout:?}"),
                    ),
                });
            }
        };
        let (read_half, write_half) = stream.into_split();
        let shared = Arc::new(Shared::default());
        let (jobs, job_rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_loop(read_half, Arc::clone(&shared), max_value_bytes));
        let writer = tokio::spawn(write_loop(write_half, job_rx, Arc::clone(&shared)));
        Ok(Self {
            jobs,
            shared,
            reader,
            writer,
        })
    }

    /// Whether the connection stopped working.
    pub(crate) fn is_broken(&self) -> bool {
        self.shared.broken().is_some()
    }

    /// Takes the next id from `ids`, registers it and writes the request. Ids are taken and
    /// requests queued under one lock, so they reach the socket in increasing id order. On
    /// success the request is in the socket and the returned [`Pending`] yields its answer.
    pub(crate) async fn send(
        &self,
        ids: &AtomicU64,
        method: &str,
        params: Option<&Map<String, Value>>,
    ) -> Result<Pending, NotSent> {
        let (answer_tx, answer_rx) = oneshot::channel();
        let (written_tx, written_rx) = oneshot::channel();
        let pending = {
            let mut state = self.shared.lock();
            if let Some(reason) = &state.broken {
                return Err(NotSent(reason.clone()));
            }
            let id = ids.fetch_add(1, Ordering::SeqCst);
            let job = WriteJob {
                bytes: encode_request(id, method, params),
                written: written_tx,
            };
            if self.jobs.send(job).is_err() {
                return Err(NotSent(Broken::Closed("writer stopped".into())));
            }
            state.waiting.insert(id, answer_tx);
            // From here on the guard unregisters `id` if the caller goes away.
            Pending {
                id,
                shared: Arc::clone(&self.shared),
                answer: answer_rx,
            }
        };
        match written_rx.await {
            Ok(Ok(())) => Ok(pending),
            Ok(Err(e)) => Err(NotSent(Broken::Closed(e.to_string()))),
            Err(_) => Err(NotSent(
                self.shared
                    .broken()
                    .unwrap_or_else(|| Broken::Closed("writer stopped".into())),
            )),
        }
    }
}

/// A request written to the socket, waiting for its answer.
pub(crate) struct Pending {
    id: u64,
    shared: Arc<Shared>,
    answer: oneshot::Receiver<Result<Response, Broken>>,
}

impl Pending {
    /// The answer, or why none will come.
    pub(crate) async fn answer(&mut self) -> Result<Response, Broken> {
        match (&mut self.answer).await {
            Ok(result) => result,
            Err(_) => Err(self
                .shared
                .broken()
                .unwrap_or_else(|| Broken::Closed("connection dropped".into()))),
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.shared.lock().waiting.remove(&self.id);
    }
}

async fn write_loop(
    mut write_half: OwnedWriteHalf,
    mut jobs: mpsc::UnboundedReceiver<WriteJob>,
    shared: Arc<Shared>,
) {
    while let Some(job) = jobs.recv().await {
        if let Some(reason) = shared.broken() {
            let _ = job
                .written
                .send(Err(io::Error::other(format!("{reason:?}"))));
            continue;
        }
        match write_half.write_all(&job.bytes).await {
            Ok(()) => {
                let _ = job.written.send(Ok(()));
            }
            Err(e) => {
                shared.break_with(Broken::Closed(format!("write failed: {e}")));
                let _ = job.written.send(Err(e));
            }
        }
    }
}

async fn read_loop(mut read_half: OwnedReadHalf, shared: Arc<Shared>, max_value_bytes: usize) {
    let mut decoder = Decoder::new(max_value_bytes);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match read_half.read(&mut buf).await {
            Ok(0) => {
                let detail = if decoder.buffered() > 0 {
                    "closed in the middle of an answer"
                } else {
                    "closed by spdk_tgt"
                };
                shared.break_with(Broken::Closed(detail.into()));
                return;
            }
            Ok(n) => n,
            Err(e) => {
                shared.break_with(Broken::Closed(format!("read failed: {e}")));
                return;
            }
        };
        decoder.push(&buf[..n]);
        loop {
            match decoder.next_value() {
                Ok(Some(value)) => match decode_response(value) {
                    Ok(response) => shared.deliver(response),
                    Err(e) => {
                        shared.break_with(Broken::Corrupt(e.to_string()));
                        return;
                    }
                },
                Ok(None) => break,
                Err(e) => {
                    shared.break_with(Broken::Corrupt(e.to_string()));
                    return;
                }
            }
        }
    }
}
