//! [`SpdkClient`]: calls over one pipelined connection, with timeouts, reconnection and
//! version-aware parameters.
//!
//! # Lost connections
//!
//! spdk_tgt keeps no state across a restart and closes every connection when it stops. The
//! client notices a closed connection and opens a new one for the next call. A call that was
//! in flight when the connection was lost is handled by what is known about it:
//!
//! * not yet written to the socket: spdk_tgt cannot have executed it, so it is sent again on
//!   a new connection, whatever the method;
//! * written, no answer yet, and a pure read ([`RpcRequest::IDEMPOTENT`]): it is sent once
//!   more on a new connection, transparently;
//! * written, no answer yet, and a write (or a raw [`SpdkClient::call`], which the client
//!   cannot judge): the caller gets [`Error::ConnectionLost`] with `sent: true`. Whether the
//!   write took effect is unknown (spdk_tgt may have executed it and then died, or restarted
//!   and lost it anyway): read the state back before retrying. The client never resends a
//!   write by itself.
//!
//! * spdk_tgt sent bytes that are not an answer we can match (invalid JSON, a null id): the
//!   connection is dropped like a lost one; a read is sent once more, a write gets
//!   [`Error::InvalidResponse`] (outcome unknown).
//!
//! A call that times out ([`Error::Timeout`]) is not resent either; the connection stays
//! open and a late answer is discarded.
//!
//! # Versions
//!
//! Before a request carrying a version-gated parameter ([`crate::version::PARAM_GATES`]) is
//! sent, the client asks `spdk_get_version` on the connection that will carry it (once per
//! connection) and drops or refuses the keys that version does not know. A target restarted
//! as another version is therefore asked again.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::connection::{Broken, Connection};
use crate::error::{Error, Result, RpcError, UnsupportedParam};
use crate::framing::DEFAULT_MAX_VALUE_BYTES;
use crate::protocol::{object_of, params_object};
use crate::request::RpcRequest;
use crate::trace::CallTrace;
use crate::types::system::{FrameworkWaitInit, SpdkGetVersion};
use crate::version::{SpdkVersion, VersionInfo, apply_gates, needs_version};

/// The socket spdk_tgt listens on unless started with `-r`.
pub const DEFAULT_SOCKET: &str = "/var/tmp/spdk.sock";

/// Settings of a [`SpdkClient`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Timeout of a call that gives none (covers connecting, sending and the answer).
    pub default_timeout: Duration,
    /// Upper bound for opening a connection.
    pub connect_timeout: Duration,
    /// How often [`SpdkClient::wait_ready`] polls.
    pub ready_poll_interval: Duration,
    /// Largest answer accepted; a larger one breaks the connection.
    pub max_response_bytes: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            default_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            ready_poll_interval: Duration::from_millis(50),
            max_response_bytes: DEFAULT_MAX_VALUE_BYTES,
        }
    }
}

/// A typed async client of one spdk_tgt. Cheap to clone: clones share the connection.
///
/// Calls may run concurrently; they are pipelined on one connection and their answers are
/// matched by id. Ids are increasing `u64`s, never reused, never null.
#[derive(Clone)]
pub struct SpdkClient {
    inner: Arc<Inner>,
    /// Where this clone records its calls ([`SpdkClient::traced`]); `None` records nothing.
    trace: Option<CallTrace>,
}

impl std::fmt::Debug for SpdkClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpdkClient")
            .field("socket", &self.inner.socket)
            .field("traced", &self.trace.is_some())
            .finish_non_exhaustive()
    }
}

struct Inner {
    socket: PathBuf,
    config: ClientConfig,
    next_id: AtomicU64,
    /// The current connection and its generation (bumped for every new connection).
    connection: tokio::sync::Mutex<Option<(Arc<Connection>, u64)>>,
    generation: AtomicU64,
    /// The version answered on connection `.0`.
    version: Mutex<Option<(u64, SpdkVersion)>>,
}

/// Whether a call may be resent after the connection was lost once it was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resend {
    /// Pure read: resend once.
    Once,
    /// Write or unknown: never.
    Never,
}

/// What happened to one request on one connection.
enum Exchange {
    /// spdk_tgt answered: a result or an error `(code, message)`.
    Answered(Result<Value, (i64, String)>),
    /// The connection was lost; `sent` tells whether the request had been written.
    Lost { sent: bool, reason: Broken },
}

impl SpdkClient {
    /// A client for the socket at `socket`; connects on first use.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self::with_config(socket, ClientConfig::default())
    }

    /// A client with explicit settings; connects on first use.
    pub fn with_config(socket: impl Into<PathBuf>, config: ClientConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                socket: socket.into(),
                config,
                next_id: AtomicU64::new(1),
                connection: tokio::sync::Mutex::new(None),
                generation: AtomicU64::new(0),
                version: Mutex::new(None),
            }),
            trace: None,
        }
    }

    /// A clone sharing this client's connection that records every request it writes to
    /// the socket into `trace` (see [`crate::trace`]). Other clones record nothing.
    pub fn traced(&self, trace: &CallTrace) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            trace: Some(trace.clone()),
        }
    }

    /// The trace this clone records into, if any.
    pub fn trace(&self) -> Option<&CallTrace> {
        self.trace.as_ref()
    }

    /// A client connected now (fails with [`Error::SocketMissing`] / [`Error::Connect`]).
    pub async fn connect(socket: impl Into<PathBuf>) -> Result<Self> {
        let client = Self::new(socket);
        client.connection().await?;
        Ok(client)
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.inner.socket
    }

    /// The settings.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Raw call with the default timeout. `params` must be absent, null or a JSON object.
    /// A raw call is never resent after it was written (see the module docs).
    pub async fn call(&self, method: &str, params: Option<Value>) -> Result<Value> {
        self.call_with_timeout(method, params, self.inner.config.default_timeout)
            .await
    }

    /// Raw call with its own timeout.
    pub async fn call_with_timeout(
        &self,
        method: &str,
        params: Option<Value>,
        timeout: Duration,
    ) -> Result<Value> {
        let params = params_object(method, params).map_err(|e| Error::Encode {
            method: method.to_owned(),
            detail: e.to_string(),
        })?;
        self.call_map(method, params, timeout, Resend::Never).await
    }

    /// Typed call with the default timeout (plus the request's own server-side wait).
    pub async fn request<R: RpcRequest>(&self, request: &R) -> Result<R::Response> {
        let timeout = self.inner.config.default_timeout + request.server_wait().unwrap_or_default();
        self.request_with_timeout(request, timeout).await
    }

    /// Typed call with its own timeout.
    pub async fn request_with_timeout<R: RpcRequest>(
        &self,
        request: &R,
        timeout: Duration,
    ) -> Result<R::Response> {
        let params = request_params(request)?;
        let resend = if R::IDEMPOTENT {
            Resend::Once
        } else {
            Resend::Never
        };
        let result = self.call_map(R::METHOD, params, timeout, resend).await?;
        serde_json::from_value(result).map_err(|source| Error::Decode {
            socket: self.inner.socket.clone(),
            method: R::METHOD.to_owned(),
            source,
        })
    }

    /// Typed call of a method answering `true` on success; `false` becomes
    /// [`Error::Refused`].
    pub async fn request_ack<R: RpcRequest<Response = bool>>(&self, request: &R) -> Result<()> {
        if self.request(request).await? {
            return Ok(());
        }
        let object = request_params(request)
            .ok()
            .flatten()
            .and_then(|p| object_of(Some(&p)));
        Err(Error::Refused {
            socket: self.inner.socket.clone(),
            method: R::METHOD.to_owned(),
            object,
        })
    }

    /// The version of the connected spdk_tgt, asked once per connection.
    pub async fn version(&self) -> Result<SpdkVersion> {
        self.version_within(self.inner.config.default_timeout, true)
            .await
    }

    /// The version last seen and the number of the connection it was seen on (connections
    /// are numbered from 1, a new number after every reconnect).
    pub fn cached_version(&self) -> Option<(u64, SpdkVersion)> {
        self.lock_version().clone()
    }

    /// Waits until spdk_tgt answers: polls for the socket, then `spdk_get_version`, then
    /// waits for `framework_wait_init`, all within `timeout`. For use right after starting
    /// spdk_tgt (first answer after ~0.5 s). An error answer is returned at once; transport
    /// failures are retried until the deadline, then reported as [`Error::NotReady`] with the
    /// last failure.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<SpdkVersion> {
        let started = Instant::now();
        let deadline = started + timeout;
        let poll = self.inner.config.ready_poll_interval;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let attempt = if self.inner.socket.exists() {
                self.version_within(remaining.min(Duration::from_secs(1)).max(poll), false)
                    .await
            } else {
                Err(Error::SocketMissing {
                    socket: self.inner.socket.clone(),
                })
            };
            match attempt {
                Ok(version) => {
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    self.request_with_timeout(&FrameworkWaitInit, remaining.max(poll))
                        .await?;
                    return Ok(version);
                }
                Err(e @ Error::Rpc(_)) => return Err(e),
                Err(last) => {
                    if Instant::now() + poll >= deadline {
                        return Err(Error::NotReady {
                            socket: self.inner.socket.clone(),
                            waited: started.elapsed(),
                            last: Box::new(last),
                        });
                    }
                    tokio::time::sleep(poll).await;
                }
            }
        }
    }

    /// The version within `timeout`, from the cache when `cached` and it belongs to the
    /// current connection.
    async fn version_within(&self, timeout: Duration, cached: bool) -> Result<SpdkVersion> {
        let method = SpdkGetVersion::METHOD;
        let attempts = async {
            let mut attempts_left = 2;
            loop {
                attempts_left -= 1;
                let (conn, generation) = self.connection().await?;
                match self.version_on(&conn, generation, cached).await? {
                    Ok(version) => return Ok(version),
                    Err((sent, reason)) => {
                        if let Some(error) =
                            self.lost_error(method, sent, &reason, Resend::Once, attempts_left)
                        {
                            return Err(error);
                        }
                    }
                }
            }
        };
        self.within(method, timeout, attempts).await
    }

    /// The version of the target behind `conn`; `Ok(Err(..))` when the connection was lost.
    async fn version_on(
        &self,
        conn: &Connection,
        generation: u64,
        cached: bool,
    ) -> Result<Result<SpdkVersion, (bool, Broken)>> {
        let method = SpdkGetVersion::METHOD;
        if cached
            && let Some((seen, version)) = self.cached_version()
            && seen == generation
        {
            return Ok(Ok(version));
        }
        let result = match self.exchange(conn, method, None).await {
            Exchange::Lost { sent, reason } => return Ok(Err((sent, reason))),
            Exchange::Answered(Err((code, message))) => {
                return Err(RpcError::new(method, None, code, message).into());
            }
            Exchange::Answered(Ok(result)) => result,
        };
        let info: VersionInfo = serde_json::from_value(result).map_err(|source| Error::Decode {
            socket: self.inner.socket.clone(),
            method: method.to_owned(),
            source,
        })?;
        let version = info.parsed().ok_or_else(|| Error::InvalidResponse {
            socket: self.inner.socket.clone(),
            method: method.to_owned(),
            detail: format!("unparseable version {:?}", info.version),
        })?;
        *self.lock_version() = Some((generation, version.clone()));
        Ok(Ok(version))
    }

    fn lock_version(&self) -> std::sync::MutexGuard<'_, Option<(u64, SpdkVersion)>> {
        self.inner
            .version
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The current connection and its generation, or a new one if there is none or it broke.
    async fn connection(&self) -> Result<(Arc<Connection>, u64)> {
        let mut slot = self.inner.connection.lock().await;
        if let Some((conn, generation)) = slot.as_ref().filter(|(c, _)| !c.is_broken()) {
            return Ok((Arc::clone(conn), *generation));
        }
        // Drop the broken one first so its socket closes.
        *slot = None;
        let conn = Arc::new(
            Connection::open(
                &self.inner.socket,
                self.inner.config.connect_timeout,
                self.inner.config.max_response_bytes,
            )
            .await?,
        );
        let generation = self.inner.generation.fetch_add(1, Ordering::SeqCst) + 1;
        *slot = Some((Arc::clone(&conn), generation));
        Ok((conn, generation))
    }

    /// Runs `fut`, turning an expired `timeout` into [`Error::Timeout`].
    async fn within<T>(
        &self,
        method: &str,
        timeout: Duration,
        fut: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        tokio::time::timeout(timeout, fut)
            .await
            .unwrap_or_else(|_| {
                Err(Error::Timeout {
                    socket: self.inner.socket.clone(),
                    method: method.to_owned(),
                    timeout,
                })
            })
    }

    async fn call_map(
        &self,
        method: &str,
        params: Option<Map<String, Value>>,
        timeout: Duration,
        resend: Resend,
    ) -> Result<Value> {
        let object = object_of(params.as_ref());
        let attempts = self.call_attempts(method, params.as_ref(), resend);
        match self.within(method, timeout, attempts).await? {
            Ok(value) => Ok(value),
            Err((code, message)) => Err(RpcError::new(method, object, code, message).into()),
        }
    }

    /// Sends the request, resending as the module docs describe; at most two attempts.
    /// Version-gated params are decided against the version of the connection that carries
    /// them, so a target that restarted as another version between calls is asked again.
    async fn call_attempts(
        &self,
        method: &str,
        params: Option<&Map<String, Value>>,
        resend: Resend,
    ) -> Result<Result<Value, (i64, String)>> {
        let gated = params.is_some_and(|p| needs_version(method, p));
        let mut attempts_left = 2;
        loop {
            attempts_left -= 1;
            let (conn, generation) = self.connection().await?;
            let mut gated_params = None;
            if gated {
                match self.version_on(&conn, generation, true).await? {
                    Ok(version) => gated_params = self.gate(method, params, &version)?,
                    Err((_, reason)) => {
                        // Only the version query was lost: the request was not sent.
                        if let Some(error) =
                            self.lost_error(method, false, &reason, resend, attempts_left)
                        {
                            return Err(error);
                        }
                        continue;
                    }
                }
            }
            let to_send = if gated { gated_params.as_ref() } else { params };
            match self.exchange(&conn, method, to_send).await {
                Exchange::Answered(outcome) => return Ok(outcome),
                Exchange::Lost { sent, reason } => {
                    if let Some(error) =
                        self.lost_error(method, sent, &reason, resend, attempts_left)
                    {
                        return Err(error);
                    }
                }
            }
            tracing::debug!(method, "connection lost, sending again");
        }
    }

    /// The error to return after a lost connection, or `None` to try again.
    fn lost_error(
        &self,
        method: &str,
        sent: bool,
        reason: &Broken,
        resend: Resend,
        attempts_left: u32,
    ) -> Option<Error> {
        if let Broken::Corrupt(detail) = reason
            && sent
            && resend == Resend::Never
        {
            return Some(Error::InvalidResponse {
                socket: self.inner.socket.clone(),
                method: method.to_owned(),
                detail: detail.clone(),
            });
        }
        let may_resend = !sent || resend == Resend::Once;
        if may_resend && attempts_left > 0 {
            return None;
        }
        Some(match reason {
            Broken::Corrupt(detail) if sent => Error::InvalidResponse {
                socket: self.inner.socket.clone(),
                method: method.to_owned(),
                detail: detail.clone(),
            },
            _ => Error::ConnectionLost {
                socket: self.inner.socket.clone(),
                method: method.to_owned(),
                sent,
            },
        })
    }

    /// `params` with the keys `version` does not know removed, or the refusal.
    fn gate(
        &self,
        method: &str,
        params: Option<&Map<String, Value>>,
        version: &SpdkVersion,
    ) -> Result<Option<Map<String, Value>>> {
        let Some(params) = params else {
            return Ok(None);
        };
        let mut params = params.clone();
        apply_gates(method, &mut params, version).map_err(|gate| {
            Error::Unsupported(Box::new(UnsupportedParam {
                socket: self.inner.socket.clone(),
                method: method.to_owned(),
                param: gate.param.to_owned(),
                required: gate.since.clone(),
                connected: version.clone(),
            }))
        })?;
        Ok(Some(params))
    }

    /// One request on `conn`, recorded when this clone is traced (a timed-out or dropped
    /// exchange is recorded as failed by the timer's drop).
    async fn exchange(
        &self,
        conn: &Connection,
        method: &str,
        params: Option<&Map<String, Value>>,
    ) -> Exchange {
        let Some(trace) = &self.trace else {
            return self.exchange_untraced(conn, method, params).await;
        };
        let timer = trace.start(method);
        let exchange = self.exchange_untraced(conn, method, params).await;
        timer.finish(matches!(exchange, Exchange::Answered(Ok(_))));
        exchange
    }

    async fn exchange_untraced(
        &self,
        conn: &Connection,
        method: &str,
        params: Option<&Map<String, Value>>,
    ) -> Exchange {
        match conn.send(&self.inner.next_id, method, params).await {
            Err(not_sent) => Exchange::Lost {
                sent: false,
                reason: not_sent.0,
            },
            Ok(mut pending) => match pending.answer().await {
                Ok(response) => Exchange::Answered(response.outcome),
                Err(reason) => Exchange::Lost { sent: true, reason },
            },
        }
    }
}

/// The params object of a typed request; `None` when it has no field set (spdk_tgt refuses
/// even `{}` for methods without params).
fn request_params<R: RpcRequest>(request: &R) -> Result<Option<Map<String, Value>>> {
    let value = serde_json::to_value(request).map_err(|e| Error::Encode {
        method: R::METHOD.to_owned(),
        detail: e.to_string(),
    })?;
    let params = params_object(R::METHOD, Some(value)).map_err(|e| Error::Encode {
        method: R::METHOD.to_owned(),
        detail: e.to_string(),
    })?;
    Ok(params.filter(|m| !m.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::bdev::{BdevAioCreate, BdevGetBdevs};
    use crate::types::lvol::{BdevLvolCreate, BdevLvolGetLvstores, LvsRef};
    use crate::types::raid::BdevRaidGetBdevs;
    use serde_json::json;

    #[test]
    fn empty_requests_send_no_params() {
        assert_eq!(request_params(&SpdkGetVersion).unwrap(), None);
        assert_eq!(request_params(&BdevGetBdevs::all()).unwrap(), None);
        assert_eq!(
            request_params(&BdevLvolGetLvstores::default()).unwrap(),
            None
        );
    }

    #[test]
    fn requests_send_only_set_keys() {
        let p = request_params(&BdevAioCreate::new("aio0", "/dev/loop0")).unwrap();
        assert_eq!(
            Value::Object(p.unwrap()),
            json!({"name": "aio0", "filename": "/dev/loop0"})
        );
        let p = request_params(&BdevLvolCreate::new(LvsRef::Name("lvs0".into()), "t", 8).thin())
            .unwrap();
        assert_eq!(
            Value::Object(p.unwrap()),
            json!({"lvol_name": "t", "size_in_mib": 8, "lvs_name": "lvs0", "thin_provision": true})
        );
        let p = request_params(&BdevRaidGetBdevs::default()).unwrap();
        assert_eq!(Value::Object(p.unwrap()), json!({"category": "all"}));
    }
}
