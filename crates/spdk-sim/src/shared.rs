//! The state shared by the RPC connections and the background NVMe-oF tasks.

use crate::state::Target;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;
use tokio::sync::Notify;

/// The target behind a lock, and a notification for "something changed".
#[derive(Debug)]
pub struct Shared {
    target: Mutex<Target>,
    /// Woken after every mutation (used by `bdev_get_bdevs` with a timeout).
    pub changed: Notify,
}

impl Shared {
    /// Wraps a target.
    #[must_use]
    pub fn new(target: Target) -> Self {
        Self {
            target: Mutex::new(target),
            changed: Notify::new(),
        }
    }

    /// Runs a mutation (never across an await) and wakes waiters.
    pub fn with<R>(&self, f: impl FnOnce(&mut Target) -> R) -> R {
        let out = {
            let mut t = self.target.lock().unwrap_or_else(PoisonError::into_inner);
            t.tick(Instant::now());
            f(&mut t)
        };
        self.changed.notify_waiters();
        out
    }

    /// Reads without waking waiters.
    pub fn read<R>(&self, f: impl FnOnce(&Target) -> R) -> R {
        let mut t = self.target.lock().unwrap_or_else(PoisonError::into_inner);
        t.tick(Instant::now());
        f(&t)
    }
}
