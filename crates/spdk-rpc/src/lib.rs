//! Typed async client for spdk_tgt's JSON-RPC over its Unix socket.
//!
//! [`SpdkClient`] pipelines calls on one connection and matches answers by id (they may come
//! in any order, split or concatenated: the stream is decoded as JSON values, not lines). It
//! never sends a notification or a batch, applies a timeout to every call, reconnects after
//! spdk_tgt restarts (resending only what is safe, see [`client`]), and sends only the
//! parameters the connected SPDK version knows (see [`version`]). Errors keep SPDK's code and
//! message and classify them into an [`ErrorKind`], by code *and* message because SPDK's
//! modules disagree on codes (see [`error`]).
//!
//! [`SpdkApi`] is the same set of typed calls as an object-safe trait, for fakes in tests.
//!
//! A [`CallTrace`] records the calls of one operation (method, round-trip time, outcome)
//! made through a traced clone of the client ([`SpdkClient::traced`],
//! [`SpdkApi::with_trace`]); see [`trace`].
//!
//! ```no_run
//! # async fn demo() -> spdk_rpc::Result<()> {
//! use std::time::Duration;
//! use spdk_rpc::{SpdkApi, SpdkClient, types::bdev::BdevAioCreate};
//!
//! let client = SpdkClient::new(spdk_rpc::DEFAULT_SOCKET);
//! let version = client.wait_ready(Duration::from_secs(10)).await?;
//! let name = client.bdev_aio_create(BdevAioCreate::new("aio0", "/dev/loop0")).await?;
//! client.bdev_wait_for_examine().await?;
//! # let _ = (version, name);
//! # Ok(())
//! # }
//! ```

pub mod api;
pub mod client;
mod connection;
pub mod error;
pub mod framing;
pub mod protocol;
pub mod request;
pub mod trace;
pub mod types;
pub mod version;

pub use api::{RpcFuture, SpdkApi};
pub use client::{ClientConfig, DEFAULT_SOCKET, SpdkClient};
pub use error::{Error, ErrorKind, Result, RpcError, UnsupportedParam, classify};
pub use request::RpcRequest;
pub use trace::{CallTrace, SpdkCall};
pub use version::{SpdkVersion, VersionInfo};
