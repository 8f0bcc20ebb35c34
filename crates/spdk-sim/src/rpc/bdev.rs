//! `bdev_get_bdevs`, `bdev_wait_for_examine`, `bdev_aio_create`, `bdev_aio_delete`.

use super::params::{Decoder, decode, uuid_str};
use crate::disk::device;
use crate::json::J;
use crate::rpc_error::{RpcError, errno};
use crate::shared::Shared;
use crate::state::Target;
use crate::state::bdev::{Bdev, BdevKind};
use serde::Deserialize;
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use uuid::Uuid;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GetBdevs {
    name: Option<String>,
    timeout: Option<u64>,
}

fn lookup(t: &Target, name: Option<&str>) -> Option<J> {
    let now = Instant::now();
    match name {
        None => Some(J::Arr(
            t.bdevs.iter().map(|b| t.bdev_json(b, now)).collect(),
        )),
        Some(n) => t.bdev(n).map(|b| J::Arr(vec![t.bdev_json(b, now)])),
    }
}

/// `bdev_get_bdevs {name?, timeout?}`: all bdevs, or one by name/alias/UUID, waiting up to
/// `timeout` ms for it to appear (then -110 "Connection timed out"; -19 without a timeout).
///
/// # Errors
/// As described, or the bdev module's decode failure.
pub async fn get_bdevs(shared: &Shared, params: Option<Value>) -> Result<J, RpcError> {
    let p: GetBdevs = decode(params, Decoder::Bdev)?;
    let timeout = Duration::from_millis(p.timeout.unwrap_or(0));
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let changed = shared.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        if let Some(found) = shared.read(|t| lookup(t, p.name.as_deref())) {
            return Ok(found);
        }
        if timeout.is_zero() {
            return Err(RpcError::errno(errno::ENODEV));
        }
        tokio::select! {
            () = changed => {}
            () = tokio::time::sleep_until(deadline) => return Err(RpcError::errno(errno::ETIMEDOUT)),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AioCreate {
    name: String,
    filename: String,
    block_size: Option<u32>,
    readonly: Option<bool>,
    fallocate: Option<bool>,
    #[serde(default, deserialize_with = "uuid_str::deserialize")]
    uuid: Option<Uuid>,
}

/// `bdev_aio_create`: opens the file or device (-errno when that fails: -2 for a missing path),
/// checks the block size (-22, also when none is given for a regular file, where SPDK cannot
/// detect one, unless `Config::aio_file_block_size` says what to assume), refuses a taken name
/// (-17, once everything else passed) but not a device already opened by
/// another aio bdev (SPDK takes no lock), then examines it: an lvstore persisted on the device
/// comes back with its lvols.
///
/// # Errors
/// As described, or the decode failure.
pub fn aio_create(t: &mut Target, params: Option<Value>) -> Result<J, RpcError> {
    let p: AioCreate = decode(params, Decoder::Bdev)?;
    let readonly = p.readonly.unwrap_or(false);
    let path = PathBuf::from(&p.filename);
    let info = device::probe(&path, readonly).map_err(|e| RpcError::errno(e.errno()))?;
    let detected = info.logical_block_size;
    let block_size = match p.block_size {
        // "Block size could not be auto-detected": SPDK on a regular file, unless the simulator
        // was told to assume a size there (`Config::aio_file_block_size`).
        None | Some(0) if detected == 0 => t
            .aio_file_block_size
            .ok_or_else(|| RpcError::errno(errno::EINVAL))?,
        None | Some(0) => detected,
        Some(bs) if bs.is_power_of_two() && bs >= 512 && bs >= detected => bs,
        Some(_) => return Err(RpcError::errno(errno::EINVAL)),
    };
    let num_blocks = info.size / u64::from(block_size);
    if num_blocks == 0 || info.size % u64::from(block_size) != 0 {
        return Err(RpcError::errno(errno::EINVAL));
    }
    // The name is checked last, when the bdev is registered (spdk_bdev_register: -17).
    if t.name_taken(&p.name) {
        return Err(RpcError::errno(errno::EEXIST));
    }
    let uuid = p.uuid.unwrap_or_else(Uuid::new_v4);
    t.register(Bdev {
        name: p.name.clone(),
        uuid,
        aliases: vec![uuid.to_string()],
        block_size,
        num_blocks,
        claim: None,
        kind: BdevKind::Aio {
            filename: p.filename,
            block_size_override: p.block_size.is_some_and(|b| b != 0),
            readonly,
            fallocate: p.fallocate.unwrap_or(false),
        },
        backing: Some(path),
    });
    Ok(J::from(p.name))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NameOnly {
    name: String,
}

/// `bdev_aio_delete {name}`: hot-removes the bdev (an lvstore on it is unloaded, not destroyed).
///
/// # Errors
/// -19 when there is no such aio bdev.
pub fn aio_delete(t: &mut Target, params: Option<Value>) -> Result<J, RpcError> {
    let p: NameOnly = decode(params, Decoder::Bdev)?;
    let name = match t.bdev(&p.name) {
        Some(b) if matches!(b.kind, BdevKind::Aio { .. }) => b.name.clone(),
        _ => return Err(RpcError::errno(errno::ENODEV)),
    };
    t.unregister(&name);
    Ok(J::Bool(true))
}
