//! The executor's gRPC API, `v2engine.executor.v1`.
//!
//! Generated from `proto/executor.proto` at build time. Both the executor (server) and
//! `client` (the front-ends' side) use these types; nothing else is defined here.

#![allow(missing_docs, clippy::all, clippy::pedantic, unreachable_pub)]

/// `v2engine.executor.v1`.
pub mod v1 {
    tonic::include_proto!("v2engine.executor.v1");
}
