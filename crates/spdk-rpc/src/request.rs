//! The link between a typed request and its method, answer type and retry policy.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A typed request: serialises to the method's `params` object (or to nothing when it has
/// no fields set), and names the type its `result` decodes into.
pub trait RpcRequest: Serialize + Send + Sync {
    /// The JSON-RPC method.
    const METHOD: &'static str;
    /// True for pure reads, which the client resends once, transparently, when the connection
    /// is lost before the answer arrives. Writes are never resent: their caller gets
    /// [`crate::Error::ConnectionLost`] with `sent: true` (outcome unknown).
    const IDEMPOTENT: bool;
    /// The type of `result`.
    type Response: DeserializeOwned + Send + 'static;

    /// How long spdk_tgt itself may wait before answering (e.g. `bdev_get_bdevs` with a
    /// `timeout`); the client adds it to the call's timeout.
    fn server_wait(&self) -> Option<Duration> {
        None
    }
}

/// Implements [`RpcRequest`] for a request type.
macro_rules! rpc_request {
    ($ty:ty => $method:literal, $resp:ty, read) => {
        impl $crate::request::RpcRequest for $ty {
            const METHOD: &'static str = $method;
            const IDEMPOTENT: bool = true;
            type Response = $resp;
        }
    };
    ($ty:ty => $method:literal, $resp:ty, write) => {
        impl $crate::request::RpcRequest for $ty {
            const METHOD: &'static str = $method;
            const IDEMPOTENT: bool = false;
            type Response = $resp;
        }
    };
}
pub(crate) use rpc_request;
