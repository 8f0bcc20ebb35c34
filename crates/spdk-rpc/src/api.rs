//! [`SpdkApi`]: the typed calls as an object-safe trait, so that the executor can hold an
//! `Arc<dyn SpdkApi>` and be tested with a fake.
//!
//! The methods return boxed futures ([`RpcFuture`]) rather than using `async fn` in the
//! trait: `async fn` in traits is not object-safe, and boxing by hand states the `Send` bound
//! in the signature (the executor runs calls on a multi-threaded runtime) without a proc-macro
//! dependency. The allocation per call is negligible next to spdk_tgt's ≥ 4 ms per call.
//!
//! Methods whose result is a bare `true` return `()`; a `false` answer (spdk_tgt reporting
//! that the operation did not take effect) becomes [`crate::Error::Refused`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;

use crate::client::SpdkClient;
use crate::error::Result;
use crate::trace::CallTrace;
use crate::types::bdev::{Bdev, BdevAioCreate, BdevAioDelete, BdevGetBdevs, BdevWaitForExamine};
use crate::types::lvol::{
    BdevLvolClone, BdevLvolCreate, BdevLvolCreateLvstore, BdevLvolDelete, BdevLvolDeleteLvstore,
    BdevLvolGetLvols, BdevLvolGetLvstores, BdevLvolResize, BdevLvolSetReadOnly, BdevLvolSnapshot,
    Lvol, Lvstore,
};
use crate::types::nvme::{
    BdevNvmeAttachController, BdevNvmeDetachController, BdevNvmeGetControllers, BdevNvmeSetOptions,
    NvmeController,
};
use crate::types::nvmf::{
    NvmfCreateSubsystem, NvmfCreateTransport, NvmfDeleteSubsystem, NvmfGetSubsystems,
    NvmfGetTransports, NvmfSubsystem, NvmfSubsystemAddHost, NvmfSubsystemAddListener,
    NvmfSubsystemAddNs, NvmfTransport,
};
use crate::types::raid::{
    BdevRaidAddBaseBdev, BdevRaidCreate, BdevRaidDelete, BdevRaidGetBdevs, BdevRaidRemoveBaseBdev,
    RaidBdev,
};
use crate::types::system::{FrameworkWaitInit, RpcGetMethods, SpdkGetVersion};
use crate::version::{SpdkVersion, VersionInfo};

/// The future every [`SpdkApi`] method returns.
pub type RpcFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// The typed calls of spdk_tgt used by v2engine. See each request type for its parameters,
/// answer and the errors SPDK gives.
pub trait SpdkApi: Send + Sync {
    /// Raw call; `params` must be absent, null or an object. Never resent once written.
    fn call<'a>(&'a self, method: &'a str, params: Option<Value>) -> RpcFuture<'a, Value>;
    /// The target's version, asked once per connection.
    fn version(&self) -> RpcFuture<'_, SpdkVersion>;
    /// `spdk_get_version`.
    fn spdk_get_version(&self) -> RpcFuture<'_, VersionInfo>;
    /// `rpc_get_methods`.
    fn rpc_get_methods(&self, req: RpcGetMethods) -> RpcFuture<'_, Vec<String>>;
    /// `framework_wait_init`.
    fn framework_wait_init(&self) -> RpcFuture<'_, ()>;

    /// `bdev_get_bdevs`.
    fn bdev_get_bdevs(&self, req: BdevGetBdevs) -> RpcFuture<'_, Vec<Bdev>>;
    /// `bdev_wait_for_examine`.
    fn bdev_wait_for_examine(&self) -> RpcFuture<'_, ()>;
    /// `bdev_aio_create`: the new bdev's name.
    fn bdev_aio_create(&self, req: BdevAioCreate) -> RpcFuture<'_, String>;
    /// `bdev_aio_delete`.
    fn bdev_aio_delete(&self, req: BdevAioDelete) -> RpcFuture<'_, ()>;

    /// `bdev_lvol_create_lvstore`: the lvstore UUID.
    fn bdev_lvol_create_lvstore(&self, req: BdevLvolCreateLvstore) -> RpcFuture<'_, String>;
    /// `bdev_lvol_get_lvstores`.
    fn bdev_lvol_get_lvstores(&self, req: BdevLvolGetLvstores) -> RpcFuture<'_, Vec<Lvstore>>;
    /// `bdev_lvol_delete_lvstore`.
    fn bdev_lvol_delete_lvstore(&self, req: BdevLvolDeleteLvstore) -> RpcFuture<'_, ()>;
    /// `bdev_lvol_create`: the lvol UUID (its bdev name).
    fn bdev_lvol_create(&self, req: BdevLvolCreate) -> RpcFuture<'_, String>;
    /// `bdev_lvol_get_lvols`.
    fn bdev_lvol_get_lvols(&self, req: BdevLvolGetLvols) -> RpcFuture<'_, Vec<Lvol>>;
    /// `bdev_lvol_resize`.
    fn bdev_lvol_resize(&self, req: BdevLvolResize) -> RpcFuture<'_, ()>;
    /// `bdev_lvol_snapshot`: the snapshot UUID.
    fn bdev_lvol_snapshot(&self, req: BdevLvolSnapshot) -> RpcFuture<'_, String>;
    /// `bdev_lvol_clone`: the clone UUID.
    fn bdev_lvol_clone(&self, req: BdevLvolClone) -> RpcFuture<'_, String>;
    /// `bdev_lvol_delete`.
    fn bdev_lvol_delete(&self, req: BdevLvolDelete) -> RpcFuture<'_, ()>;
    /// `bdev_lvol_set_read_only`.
    fn bdev_lvol_set_read_only(&self, req: BdevLvolSetReadOnly) -> RpcFuture<'_, ()>;

    /// `bdev_raid_create`.
    fn bdev_raid_create(&self, req: BdevRaidCreate) -> RpcFuture<'_, ()>;
    /// `bdev_raid_get_bdevs`.
    fn bdev_raid_get_bdevs(&self, req: BdevRaidGetBdevs) -> RpcFuture<'_, Vec<RaidBdev>>;
    /// `bdev_raid_delete`.
    fn bdev_raid_delete(&self, req: BdevRaidDelete) -> RpcFuture<'_, ()>;
    /// `bdev_raid_add_base_bdev` (starts a rebuild).
    fn bdev_raid_add_base_bdev(&self, req: BdevRaidAddBaseBdev) -> RpcFuture<'_, ()>;
    /// `bdev_raid_remove_base_bdev`.
    fn bdev_raid_remove_base_bdev(&self, req: BdevRaidRemoveBaseBdev) -> RpcFuture<'_, ()>;

    /// `nvmf_create_transport`.
    fn nvmf_create_transport(&self, req: NvmfCreateTransport) -> RpcFuture<'_, ()>;
    /// `nvmf_get_transports`.
    fn nvmf_get_transports(&self, req: NvmfGetTransports) -> RpcFuture<'_, Vec<NvmfTransport>>;
    /// `nvmf_create_subsystem`.
    fn nvmf_create_subsystem(&self, req: NvmfCreateSubsystem) -> RpcFuture<'_, ()>;
    /// `nvmf_subsystem_add_ns`: the namespace id.
    fn nvmf_subsystem_add_ns(&self, req: NvmfSubsystemAddNs) -> RpcFuture<'_, u32>;
    /// `nvmf_subsystem_add_listener`.
    fn nvmf_subsystem_add_listener(&self, req: NvmfSubsystemAddListener) -> RpcFuture<'_, ()>;
    /// `nvmf_subsystem_add_host`.
    fn nvmf_subsystem_add_host(&self, req: NvmfSubsystemAddHost) -> RpcFuture<'_, ()>;
    /// `nvmf_delete_subsystem`.
    fn nvmf_delete_subsystem(&self, req: NvmfDeleteSubsystem) -> RpcFuture<'_, ()>;
    /// `nvmf_get_subsystems`.
    fn nvmf_get_subsystems(&self, req: NvmfGetSubsystems) -> RpcFuture<'_, Vec<NvmfSubsystem>>;

    /// `bdev_nvme_set_options`.
    fn bdev_nvme_set_options(&self, req: BdevNvmeSetOptions) -> RpcFuture<'_, ()>;
    /// `bdev_nvme_attach_controller`: the names of the namespace bdevs.
    fn bdev_nvme_attach_controller(
        &self,
        req: BdevNvmeAttachController,
    ) -> RpcFuture<'_, Vec<String>>;
    /// `bdev_nvme_detach_controller`.
    fn bdev_nvme_detach_controller(&self, req: BdevNvmeDetachController) -> RpcFuture<'_, ()>;
    /// `bdev_nvme_get_controllers`.
    fn bdev_nvme_get_controllers(
        &self,
        req: BdevNvmeGetControllers,
    ) -> RpcFuture<'_, Vec<NvmeController>>;

    /// The same API recording every call it makes into `trace` (see [`crate::trace`]), or
    /// `None` when this implementation cannot trace (the default, e.g. for fakes).
    fn with_trace(&self, trace: &CallTrace) -> Option<Arc<dyn SpdkApi>> {
        let _ = trace;
        None
    }
}

/// A typed call returning its decoded result.
macro_rules! typed {
    ($self:ident, $req:expr) => {
        Box::pin(async move { $self.request(&$req).await })
    };
}

/// A typed call whose `true` result becomes `()`.
macro_rules! acked {
    ($self:ident, $req:expr) => {
        Box::pin(async move { $self.request_ack(&$req).await })
    };
}

impl SpdkApi for SpdkClient {
    fn with_trace(&self, trace: &CallTrace) -> Option<Arc<dyn SpdkApi>> {
        Some(Arc::new(self.traced(trace)))
    }
    fn call<'a>(&'a self, method: &'a str, params: Option<Value>) -> RpcFuture<'a, Value> {
        Box::pin(SpdkClient::call(self, method, params))
    }
    fn version(&self) -> RpcFuture<'_, SpdkVersion> {
        Box::pin(SpdkClient::version(self))
    }
    fn spdk_get_version(&self) -> RpcFuture<'_, VersionInfo> {
        typed!(self, SpdkGetVersion)
    }
    fn rpc_get_methods(&self, req: RpcGetMethods) -> RpcFuture<'_, Vec<String>> {
        typed!(self, req)
    }
    fn framework_wait_init(&self) -> RpcFuture<'_, ()> {
        acked!(self, FrameworkWaitInit)
    }
    fn bdev_get_bdevs(&self, req: BdevGetBdevs) -> RpcFuture<'_, Vec<Bdev>> {
        typed!(self, req)
    }
    fn bdev_wait_for_examine(&self) -> RpcFuture<'_, ()> {
        acked!(self, BdevWaitForExamine)
    }
    fn bdev_aio_create(&self, req: BdevAioCreate) -> RpcFuture<'_, String> {
        typed!(self, req)
    }
    fn bdev_aio_delete(&self, req: BdevAioDelete) -> RpcFuture<'_, ()> {
        acked!(self, req)
    }
    fn bdev_lvol_create_lvstore(&self, req: BdevLvolCreateLvstore) -> RpcFuture<'_, String> {
        typed!(self, req)
    }
    fn bdev_lvol_get_lvstores(&self, req: BdevLvolGetLvstores) -> RpcFuture<'_, Vec<Lvstore>> {
        typed!(self, req)
    }
    fn bdev_lvol_delete_lvstore(&self, req: BdevLvolDeleteLvstore) -> RpcFuture<'_, ()> {
        acked!(self, req)
    }
    fn bdev_lvol_create(&self, req: BdevLvolCreate) -> RpcFuture<'_, String> {
        typed!(self, req)
    }
    fn bdev_lvol_get_lvols(&self, req: BdevLvolGetLvols) -> RpcFuture<'_, Vec<Lvol>> {
        typed!(self, req)
    }
    fn bdev_lvol_resize(&self, req: BdevLvolResize) -> RpcFuture<'_, ()> {
        acked!(self, req)
    }
    fn bdev_lvol_snapshot(&self, req: BdevLvolSnapshot) -> RpcFuture<'_, String> {
        typed!(self, req)
    }
    fn bdev_lvol_clone(&self, req: BdevLvolClone) -> RpcFuture<'_, String> {
        typed!(self, req)
    }
    fn bdev_lvol_delete(&self, req: BdevLvolDelete) -> RpcFuture<'_, ()> {
        acked!(self, req)
    }
    fn bdev_lvol_set_read_only(&self, req: BdevLvolSetReadOnly) -> RpcFuture<'_, ()> {
        acked!(self, req)
    }
    fn bdev_raid_create(&self, req: BdevRaidCreate) -> RpcFuture<'_, ()> {
        acked!(self, req)
    }
    fn bdev_raid_get_bdevs(&self, req: BdevRaidGetBdevs) -> RpcFuture<'_, Vec<RaidBdev>> {
        typed!(self, req)
    }
    fn bdev_raid_delete(&self, req: BdevRaidDelete) -> RpcFuture<'_, ()> {
        acked!(self, req)
    }
    fn bdev_raid_add_base_bdev(&self, req: BdevRaidAddBaseBdev) -> RpcFuture<'_, ()> {
        acked!(self, req)
    }
    fn bdev_raid_remove_base_bdev(&self, req: BdevRaidRemoveBaseBdev) -> RpcFuture<'_, ()> {
        acked!(self, req)
    }
    fn nvmf_create_transport(&self, req: NvmfCreateTransport) -> RpcFuture<'_, ()> {
        acked!(self, req)
    }
    fn nvmf_get_transports(&self, req: NvmfGetTransports) -> RpcFuture<'_, Vec<NvmfTransport>> {
        typed!(self, req)
    }
    fn nvmf_create_subsystem(&self, req: NvmfCreateSubsystem) -> RpcFuture<'_, ()> {
        acked!(self, req)
    }
    fn nvmf_subsystem_add_ns(&self, req: NvmfSubsystemAddNs) -> RpcFuture<'_, u32> {
        typed!(self, req)
    }
    fn nvmf_subsystem_add_listener(&self, req: NvmfSubsystemAddListener) -> RpcFuture<'_, ()> {
        acked!(self, req)
    }
    fn nvmf_subsystem_add_host(&self, req: NvmfSubsystemAddHost) -> RpcFuture<'_, ()> {
        acked!(self, req)
    }
    fn nvmf_delete_subsystem(&self, req: NvmfDeleteSubsystem) -> RpcFuture<'_, ()> {
        acked!(self, req)
    }
    fn nvmf_get_subsystems(&self, req: NvmfGetSubsystems) -> RpcFuture<'_, Vec<NvmfSubsystem>> {
        typed!(self, req)
    }
    fn bdev_nvme_set_options(&self, req: BdevNvmeSetOptions) -> RpcFuture<'_, ()> {
        acked!(self, req)
    }
    fn bdev_nvme_attach_controller(
        &self,
        req: BdevNvmeAttachController,
    ) -> RpcFuture<'_, Vec<String>> {
        typed!(self, req)
    }
    fn bdev_nvme_detach_controller(&self, req: BdevNvmeDetachController) -> RpcFuture<'_, ()> {
        acked!(self, req)
    }
    fn bdev_nvme_get_controllers(
        &self,
        req: BdevNvmeGetControllers,
    ) -> RpcFuture<'_, Vec<NvmeController>> {
        typed!(self, req)
    }
}
