//! `client`: how the front-ends reach executors.
//!
//! - [`endpoint`]: the endpoint grammar (`unix:///path`, `ssh://user@host:port/socket`,
//!   `https://host:port`).
//! - [`transport`]: turning an endpoint into a gRPC channel, with [`TransportOptions`].
//! - [`ssh`]: the SSH tunnel to the executor socket (russh, host keys from known_hosts,
//!   key file or agent).
//! - [`known_hosts`]: OpenSSH known_hosts parsing and matching (pure).
//! - [`tls`]: TCP with mutual TLS (rustls).
//! - [`executor`]: one executor, typed calls with errors that name the node.
//! - [`fleet`]: many executors, called in parallel.
//! - [`ops`]: the resource operations every front-end shares (plan, apply, read, delete).

pub mod endpoint;
pub mod executor;
pub mod fleet;
pub mod known_hosts;
pub mod ops;
pub mod ssh;
pub mod tls;
pub mod transport;

pub use endpoint::{DEFAULT_EXECUTOR_SOCKET, Endpoint, EndpointError};
pub use executor::{ClientError, ExecutorClient};
pub use fleet::{Fleet, FleetError};
pub use proto::v1;
pub use ssh::SshError;
pub use tls::TlsError;
pub use transport::{TransportError, TransportOptions};
