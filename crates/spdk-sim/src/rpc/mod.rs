//! Method table and dispatch.

pub mod bdev;
pub mod lvol;
pub mod nvme;
pub mod nvmf;
pub mod params;
pub mod raid;

use crate::json::J;
use crate::rpc_error::{INVALID_PARAMS, RpcError};
use crate::shared::Shared;
use params::{Decoder, decode, none};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

/// Every method the simulator implements (what `rpc_get_methods` lists).
pub const METHODS: &[&str] = &[
    "spdk_get_version",
    "rpc_get_methods",
    "framework_wait_init",
    "framework_start_init",
    "bdev_get_bdevs",
    "bdev_wait_for_examine",
    "bdev_aio_create",
    "bdev_aio_delete",
    "bdev_lvol_create_lvstore",
    "bdev_lvol_get_lvstores",
    "bdev_lvol_delete_lvstore",
    "bdev_lvol_create",
    "bdev_lvol_get_lvols",
    "bdev_lvol_resize",
    "bdev_lvol_snapshot",
    "bdev_lvol_clone",
    "bdev_lvol_delete",
    "bdev_lvol_set_read_only",
    "bdev_raid_create",
    "bdev_raid_get_bdevs",
    "bdev_raid_delete",
    "bdev_raid_add_base_bdev",
    "bdev_raid_remove_base_bdev",
    "bdev_raid_set_options",
    "nvmf_create_transport",
    "nvmf_get_transports",
    "nvmf_create_subsystem",
    "nvmf_delete_subsystem",
    "nvmf_get_subsystems",
    "nvmf_subsystem_add_ns",
    "nvmf_subsystem_remove_ns",
    "nvmf_subsystem_add_listener",
    "nvmf_subsystem_remove_listener",
    "nvmf_subsystem_add_host",
    "nvmf_subsystem_remove_host",
    "nvmf_subsystem_allow_any_host",
    "nvmf_subsystem_get_controllers",
    "bdev_nvme_set_options",
    "bdev_nvme_attach_controller",
    "bdev_nvme_detach_controller",
    "bdev_nvme_get_controllers",
];

/// Methods that `rpc_get_methods {"current": true}` leaves out at runtime (startup-only).
const STARTUP_ONLY: &[&str] = &["framework_start_init"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // some keys are accepted for compatibility and have no effect here
struct GetMethods {
    current: Option<bool>,
    include_aliases: Option<bool>,
}

fn get_methods(params: Option<Value>) -> Result<J, RpcError> {
    let p: GetMethods = decode(params, Decoder::Nvmf)?;
    let current = p.current.unwrap_or(false);
    let list = METHODS
        .iter()
        .filter(|m| !(current && STARTUP_ONLY.contains(m)))
        .map(|m| J::from(*m))
        .collect();
    Ok(J::Arr(list))
}

/// Runs one method.
///
/// # Errors
/// The method's error answer; -32601 "Method not found" for unknown methods.
pub async fn dispatch(
    shared: &Arc<Shared>,
    method: &str,
    params: Option<Value>,
) -> Result<J, RpcError> {
    type Sync = fn(&mut crate::state::Target, Option<Value>) -> Result<J, RpcError>;
    let sync: Option<Sync> = match method {
        "bdev_aio_create" => Some(bdev::aio_create),
        "bdev_aio_delete" => Some(bdev::aio_delete),
        "bdev_lvol_create_lvstore" => Some(lvol::create_lvstore),
        "bdev_lvol_get_lvstores" => Some(lvol::get_lvstores),
        "bdev_lvol_delete_lvstore" => Some(lvol::delete_lvstore),
        "bdev_lvol_create" => Some(lvol::create),
        "bdev_lvol_get_lvols" => Some(lvol::get_lvols),
        "bdev_lvol_resize" => Some(lvol::resize),
        "bdev_lvol_snapshot" => Some(lvol::snapshot),
        "bdev_lvol_clone" => Some(lvol::clone),
        "bdev_lvol_delete" => Some(lvol::delete),
        "bdev_lvol_set_read_only" => Some(lvol::set_read_only),
        "bdev_raid_create" => Some(raid::create),
        "bdev_raid_get_bdevs" => Some(raid::get_bdevs),
        "bdev_raid_delete" => Some(raid::delete),
        "bdev_raid_add_base_bdev" => Some(raid::add_base_bdev),
        "bdev_raid_remove_base_bdev" => Some(raid::remove_base_bdev),
        "bdev_raid_set_options" => Some(raid::set_options),
        "nvmf_create_transport" => Some(nvmf::create_transport),
        "nvmf_get_transports" => Some(nvmf::get_transports),
        "nvmf_create_subsystem" => Some(nvmf::create_subsystem),
        "nvmf_delete_subsystem" => Some(nvmf::delete_subsystem),
        "nvmf_get_subsystems" => Some(nvmf::get_subsystems),
        "nvmf_subsystem_add_ns" => Some(nvmf::add_ns),
        "nvmf_subsystem_remove_ns" => Some(nvmf::remove_ns),
        "nvmf_subsystem_remove_listener" => Some(nvmf::remove_listener),
        "nvmf_subsystem_add_host" => Some(nvmf::add_host),
        "nvmf_subsystem_remove_host" => Some(nvmf::remove_host),
        "nvmf_subsystem_allow_any_host" => Some(nvmf::allow_any_host),
        "nvmf_subsystem_get_controllers" => Some(nvmf::get_controllers),
        "bdev_nvme_set_options" => Some(nvme::set_options),
        "bdev_nvme_detach_controller" => Some(nvme::detach),
        "bdev_nvme_get_controllers" => Some(nvme::get_controllers),
        _ => None,
    };
    if let Some(handler) = sync {
        return shared.with(|t| handler(t, params));
    }
    match method {
        "spdk_get_version" => {
            none(method, params.as_ref())?;
            Ok(shared.read(|t| t.version.to_json()))
        }
        "rpc_get_methods" => get_methods(params),
        // SPDK's handler ignores params here.
        "framework_wait_init" => Ok(J::Bool(true)),
        "bdev_wait_for_examine" => {
            if params.is_some() {
                return Err(RpcError::new(
                    INVALID_PARAMS,
                    "bdev_wait_for_examine requires no parameters",
                ));
            }
            Ok(J::Bool(true))
        }
        // Rejected by the RPC layer's state check before its handler could look at params.
        "framework_start_init" => Err(RpcError::new(
            -1,
            "Method may only be called before framework is initialized. Use --wait-for-rpc command line parameter and then issue this RPC before the framework_start_init RPC.",
        )),
        "bdev_get_bdevs" => bdev::get_bdevs(shared, params).await,
        "nvmf_subsystem_add_listener" => {
            let s = Arc::clone(shared);
            shared.with(|t| nvmf::add_listener(&s, t, params))
        }
        "bdev_nvme_attach_controller" => nvme::attach(shared, params).await,
        _ => Err(RpcError::method_not_found()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_method_is_unique() {
        let mut sorted = METHODS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), METHODS.len());
    }

    #[test]
    fn current_leaves_out_startup_methods() {
        let all = get_methods(None).unwrap().to_compact();
        let current = get_methods(Some(serde_json::json!({"current": true})))
            .unwrap()
            .to_compact();
        assert!(all.contains("framework_start_init"));
        assert!(!current.contains("framework_start_init"));
        assert!(get_methods(Some(serde_json::json!({"bogus": 1}))).is_err());
    }
}
