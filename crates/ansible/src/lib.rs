//! The Ansible collection `v2engine.storage`: the five v2engine resources as binary
//! modules, built from the same model and the same operations as the Terraform provider.
//!
//! One binary, `v2engine-ansible`, is every module: each `plugins/modules/<name>` of the
//! collection is a symlink to it ([`collection`]); ansible-core runs it as
//! `MODULE ARGS_FILE` and names the module in the arguments (`_ansible_module_name`).
//!
//! - [`module`]: the five modules.
//! - [`argspec`]: options and return values generated from `model::schema::resources()`;
//!   [`common_options`]: `state` and the connection options.
//! - [`params`]: the arguments file, checked as `AnsibleModule` checks it, then validated
//!   by the model.
//! - [`connection`]: `nodes` / ssh files / `executor_socket` → endpoints and transport.
//! - [`change`]: what a task does (pure) and how it is reported.
//! - [`exec`]: the task against the fleet, through `client::ops`.
//! - [`result`]: the JSON ansible-core reads.
//! - [`run`]: one module run, end to end.
//! - [`docs`], [`examples`], [`yaml`]: the generated sidecar docs and `meta/runtime.yml`.
//! - [`collection`]: the binary placed into the collection, the modules linked to it.

pub mod argspec;
pub mod change;
pub mod collection;
pub mod common_options;
pub mod connection;
pub mod docs;
pub mod examples;
pub mod exec;
pub mod module;
pub mod params;
pub mod result;
pub mod run;
pub mod yaml;

pub use module::Module;
pub use result::ModuleResult;
