//! Terraform plugin protocol 6 server.
pub mod diag;
pub mod handshake;
pub mod json;
pub mod msgpack;
pub mod path;
pub mod proto;
pub mod provider;
pub mod schema;
pub mod server;
pub mod types;
pub mod value;
