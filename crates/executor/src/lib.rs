//! v2engine-executor: the host daemon of one node.
//!
//! It prepares the host for SPDK's V2 data engine (boot persistence, kernel modules,
//! hugepages), keeps the cluster's revisioned records, predicts what a change would do,
//! and serves all of it over the gRPC API `v2engine.executor.v1` on a root-only Unix
//! socket (and, with `--listen-tcp`, on TCP with mutual TLS). The engine supervisor
//! plugs in through [`engine::Engine`].
//!
//! Modules, cut at I/O boundaries:
//! - pure logic: [`plan`] (what reconcile would do), [`boot`] (backends, file contents,
//!   what a boot applies), [`host::buddyinfo`], [`host::modules`], [`host::procfs`],
//!   record validation in [`records`];
//! - host I/O: [`host`] ([`host::HostOs`], [`host::linux::LinuxHost`],
//!   [`host::sim::SimHost`]);
//! - state I/O: [`fsio`] (crash-safe writes), [`records`] (the store), [`baseline`];
//! - block disks: [`disks`] (device signatures, exclusion rules, plan — pure; sysfs and
//!   device inspection, SPDK calls — I/O);
//! - orchestration: [`daemon`] (the node's executor), [`engine`] (the seam, and the
//!   supervisor of spdk_tgt), [`node`] (a serving node: executor, supervisor, resync);
//! - volumes: [`volumes`] (replicas, exports, engines: names, plan, state — pure; SPDK
//!   calls, state files — I/O);
//! - API: [`service`] (the only place errors become `tonic::Status`), [`server`] (Unix
//!   socket), [`tls`] (the TCP listener with mutual TLS), [`cli`].

pub mod baseline;
pub mod boot;
pub mod cli;
pub mod daemon;
pub mod disks;
pub mod engine;
pub mod fsio;
pub mod host;
pub mod node;
pub mod plan;
pub mod records;
pub mod server;
pub mod service;
pub mod tls;
pub mod volumes;

pub use daemon::{Executor, ExecutorError, NodeStatus};
