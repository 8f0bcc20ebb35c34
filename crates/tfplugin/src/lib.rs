//! A server for Terraform's plugin protocol 6, for providers written in Rust.
//!
//! A provider implements [`Provider`] (schemas plus plan/apply/read/import
//! and friends, working on decoded [`Value`]s) and calls [`serve()`] from
//! `main`:
//!
//! ```no_run
//! # use tfplugin::{Provider, ProviderSchema, Diagnostics, provider::*};
//! # struct MyProvider;
//! # impl Provider for MyProvider {
//! #     fn schema(&self) -> ProviderSchema { ProviderSchema::default() }
//! #     async fn configure(&self, _: ConfigureRequest) -> Diagnostics { Diagnostics::new() }
//! #     async fn read_resource(&self, r: ReadRequest) -> Result<ReadResponse, Diagnostics> { unimplemented!() }
//! #     async fn plan_resource_change(&self, r: PlanRequest) -> Result<PlanResponse, Diagnostics> { unimplemented!() }
//! #     async fn apply_resource_change(&self, r: ApplyRequest) -> Result<ApplyResponse, Diagnostics> { unimplemented!() }
//! # }
//! fn main() -> std::process::ExitCode {
//!     tfplugin::serve(MyProvider)
//! }
//! ```
//!
//! [`serve()`] does go-plugin's part: the magic cookie check, protocol
//! negotiation, a unix socket with automatic mutual TLS, the handshake line,
//! the controller/stdio/broker/health services, and exit on `Shutdown`.
//! The crate speaks protocol 6.8 (Terraform 1.11).

#![warn(missing_docs)]

pub mod diag;
pub mod goplugin;
pub mod handshake;
pub mod json;
pub mod logging;
pub mod msgpack;
pub mod path;
pub mod proto;
pub mod provider;
pub mod schema;
pub mod serve;
pub mod server;
pub mod tls;
pub mod types;
pub mod value;

pub use diag::{Diagnostic, Diagnostics, Severity};
pub use path::{AttributePath, PathStep};
pub use provider::Provider;
pub use schema::{
    Attribute, AttributeKind, AttributeMode, Block, BlockNesting, NestedAttributes, NestedBlock,
    ObjectNesting, ProviderSchema, Schema,
};
pub use serve::serve;
pub use types::Type;
pub use value::{Number, Unknown, Value};
