//! spdk-sim: a stand-in for SPDK's `spdk_tgt` (v24.09) for the lab, the demo and CI.
//!
//! It speaks SPDK's JSON-RPC on a Unix socket with SPDK's framing, parameter names, result
//! shapes, error codes and messages (as recorded from a real v24.09 target in
//! `fixtures/spdk/`), keeps lvstores on the backing device so they survive a restart, opens real
//! TCP listeners for NVMe-oF subsystems and connects them between simulators with a small
//! protocol of its own. It has no data path.
//!
//! Use [`server::Sim`] to run one in-process (tests), or the `spdk-sim` binary.

pub mod cli;
pub mod disk;
pub mod entry;
pub mod fabric;
pub mod json;
pub mod jsonrpc;
pub mod rpc;
pub mod rpc_error;
pub mod server;
pub mod shared;
pub mod startup;
pub mod state;
pub mod version;

pub use cli::Config;
pub use server::{ServeError, Sim};
