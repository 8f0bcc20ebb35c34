//! `client`: how the front-ends reach executors.
//!
//! - [`endpoint`]: the endpoint grammar (`unix:///path`, `ssh://user@host:port/socket`).
//! - [`transport`]: turning an endpoint into a gRPC channel.
//! - [`executor`]: one executor, typed calls with errors that name the node.
//! - [`fleet`]: many executors, called in parallel.

pub mod endpoint;
pub mod executor;
pub mod fleet;
pub mod transport;

pub use endpoint::{DEFAULT_EXECUTOR_SOCKET, Endpoint, EndpointError};
pub use executor::{ClientError, ExecutorClient};
pub use fleet::{Fleet, FleetError};
pub use proto::v1;
