//! The v2engine model: what users declare and the pure logic around it.
//!
//! Everything here is free of I/O so that the same code serves the Terraform provider, the
//! Ansible modules, the executor and the docs generator. A resource spec is a serde struct
//! that also derives `schemars::JsonSchema`; that one definition feeds the Terraform schema,
//! the Ansible argument spec and the documentation.
//!
//! Modules:
//! - [`validate`]: the validation error type with attribute paths, and field checks.
//! - [`cpu_mask`]: SPDK's core mask (`-m`), parsed and checked.
//! - [`setting`]: the cluster-wide `data_engine_setting`.
//! - [`node`]: the per-node override `node_v2`.
//! - [`config`]: a node's effective configuration derived from the two above.
//! - [`storage_class`], [`block_disk`], [`volume`]: the other three resources.
//! - [`size`]: sizes as users write them (`10Gi`).
//! - [`status`]: computed attributes; [`schema`]: resource schemas derived from both.
//! - [`placement`]: replica placement as filter and sort chains.
//! - [`record`]: revisioned records as stored on every executor, and "highest revision wins".

pub mod block_disk;
pub mod config;
pub mod cpu_mask;
pub mod node;
pub mod placement;
pub mod record;
pub mod schema;
pub mod setting;
pub mod size;
pub mod status;
pub mod storage_class;
pub mod validate;
pub mod volume;

pub use block_disk::BlockDisk;
pub use config::{BootPersistence, NodeConfig, effective_config};
pub use cpu_mask::CpuMask;
pub use node::NodeV2;
pub use record::{Record, RecordKey, RecordKind};
pub use setting::DataEngineSetting;
pub use storage_class::StorageClass;
pub use validate::{ValidationError, ValidationErrors};
pub use volume::Volume;

/// Size of one SPDK hugepage on x86_64: 2 MiB.
pub const HUGEPAGE_SIZE_BYTES: u64 = 2 * 1024 * 1024;
/// Size of one SPDK hugepage in MiB.
pub const HUGEPAGE_SIZE_MIB: u64 = 2;
/// The NQN prefix of every NVMe-oF subsystem v2engine creates.
pub const NQN_PREFIX: &str = "nqn.2026-11.io.v2engine:";
