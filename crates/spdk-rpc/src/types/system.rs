//! `spdk_get_version`, `rpc_get_methods`, `framework_wait_init`.

use serde::{Deserialize, Serialize};

use crate::request::rpc_request;
use crate::version::VersionInfo;

/// `spdk_get_version`: no params (any params, even `{}`, are refused by spdk_tgt).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpdkGetVersion;
rpc_request!(SpdkGetVersion => "spdk_get_version", VersionInfo, read);

/// `rpc_get_methods`: the names of the methods the target offers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpcGetMethods {
    /// Only the methods callable in the current state (after init: the runtime ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<bool>,
    /// Include deprecated aliases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_aliases: Option<bool>,
}
rpc_request!(RpcGetMethods => "rpc_get_methods", Vec<String>, read);

/// `framework_wait_init`: answers `true` once the subsystems are initialised.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameworkWaitInit;
rpc_request!(FrameworkWaitInit => "framework_wait_init", bool, read);
