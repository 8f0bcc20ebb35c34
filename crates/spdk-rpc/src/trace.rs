//! A per-operation record of the JSON-RPC calls a client made: method, round-trip time and
//! whether spdk_tgt answered with a result.
//!
//! A [`CallTrace`] is made by whoever wants to know what one operation cost (the executor
//! makes one per volume request) and handed to a clone of the client with
//! [`SpdkClient::traced`](crate::SpdkClient::traced) or, through the trait,
//! [`SpdkApi::with_trace`](crate::SpdkApi::with_trace). Only that clone records; the
//! connection is shared, so other operations running at the same time on other clones
//! neither record into this trace nor pay for it. There is no global state.
//!
//! What is recorded is every request written to the socket, at the wire, in the order the
//! answers came (one after the other for sequential calls): a typed call is one entry, a
//! `spdk_get_version` the client asks on its own before a version-gated request is an entry
//! of its own, and a read resent after a lost connection is two (the lost one with
//! `ok = false`). A call that times out or is cancelled is recorded too, with `ok = false`
//! and the time it waited. Connecting is not a call and is not counted.
//!
//! Cost: an untraced client checks one `Option` per call. A traced call reads the clock
//! twice, allocates the method name and pushes under an uncontended mutex (about 0.1 µs;
//! `cargo run --release -p v2engine-spdk-rpc --example pipeline_throughput` measures it),
//! against spdk_tgt's ≥ 4 ms per call.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// One JSON-RPC call as a [`CallTrace`] saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpdkCall {
    /// The JSON-RPC method.
    pub method: String,
    /// From handing the request to the connection to receiving its answer (or giving up).
    pub elapsed: Duration,
    /// spdk_tgt answered with a result (not an error; not lost, timed out or cancelled).
    pub ok: bool,
}

impl SpdkCall {
    /// The round-trip time in whole microseconds (saturating).
    pub fn micros(&self) -> u64 {
        u64::try_from(self.elapsed.as_micros()).unwrap_or(u64::MAX)
    }
}

/// The calls of one operation, in order. Cheap to clone: clones share the record.
#[derive(Debug, Clone, Default)]
pub struct CallTrace {
    calls: Arc<Mutex<Vec<SpdkCall>>>,
}

impl CallTrace {
    /// An empty trace.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<SpdkCall>> {
        // Nothing panics while the lock is held; recover anyway.
        self.calls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The calls recorded so far.
    pub fn calls(&self) -> Vec<SpdkCall> {
        self.lock().clone()
    }

    /// The calls recorded so far, leaving the trace empty.
    pub fn take(&self) -> Vec<SpdkCall> {
        std::mem::take(&mut *self.lock())
    }

    /// How many calls were recorded.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no call was recorded.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Appends a call.
    pub fn push(&self, call: SpdkCall) {
        self.lock().push(call);
    }

    /// Starts timing a call of `method`; the call is recorded when the returned guard is
    /// finished or dropped (a dropped guard records a failure: the caller gave up).
    pub fn start<'a>(&'a self, method: &'a str) -> CallTimer<'a> {
        CallTimer {
            trace: self,
            method,
            started: Instant::now(),
            finished: false,
        }
    }
}

/// A call being timed; see [`CallTrace::start`].
#[derive(Debug)]
#[must_use = "a timer records when finished or dropped"]
pub struct CallTimer<'a> {
    trace: &'a CallTrace,
    method: &'a str,
    started: Instant,
    finished: bool,
}

impl CallTimer<'_> {
    /// Records the call with its outcome.
    pub fn finish(mut self, ok: bool) {
        self.record(ok);
    }

    fn record(&mut self, ok: bool) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        self.trace.push(SpdkCall {
            method: self.method.to_owned(),
            elapsed: self.started.elapsed(),
            ok,
        });
    }
}

impl Drop for CallTimer<'_> {
    fn drop(&mut self) {
        self.record(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_in_order_with_outcomes_and_dropped_timers_as_failures() {
        let trace = CallTrace::new();
        let shared = trace.clone();
        trace.start("bdev_get_bdevs").finish(true);
        std::thread::sleep(Duration::from_millis(2));
        let t = trace.start("bdev_raid_create");
        std::thread::sleep(Duration::from_millis(2));
        t.finish(false);
        drop(trace.start("nvmf_create_subsystem"));
        let calls = shared.calls();
        let got: Vec<(&str, bool)> = calls.iter().map(|c| (c.method.as_str(), c.ok)).collect();
        assert_eq!(
            got,
            [
                ("bdev_get_bdevs", true),
                ("bdev_raid_create", false),
                ("nvmf_create_subsystem", false)
            ]
        );
        assert!(calls[1].micros() >= 2000, "{calls:?}");
        assert_eq!(shared.take().len(), 3);
        assert!(trace.is_empty());
    }

    #[test]
    fn micros_saturate() {
        let c = SpdkCall {
            method: "m".into(),
            elapsed: Duration::MAX,
            ok: true,
        };
        assert_eq!(c.micros(), u64::MAX);
    }
}
