//! spdk_tgt's JSON configuration (`-c FILE`), as far as the simulator knows it: the
//! start-up `*_set_options` methods that size SPDK's pools (`iobuf_set_options`,
//! `accel_set_options`, `bdev_set_options`, `iscsi_set_options`), decoded as SPDK decodes them (unknown keys and
//! wrong types refused) and checked as SPDK checks them; every other entry is called on the
//! new target in file order ([`run_calls`]: `bdev_aio_create`, `bdev_nvme_set_options`, ...;
//! a method the simulator does not have is "not found"). A configuration spdk_tgt refuses
//! makes the simulator exit non-zero with the message spdk_tgt logs, before it listens.
//!
//! Measured with spdk_tgt v24.09: a missing file, invalid JSON, a top level that is not an
//! object, an unknown method, an unknown key or a value out of range all end the start with
//! a non-zero exit; an unknown subsystem name and a file without `subsystems` are accepted.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;
use thiserror::Error;

use std::sync::Arc;

use crate::rpc::params::{Decoder, decode};
use crate::rpc_error::{METHOD_NOT_FOUND, RpcError, strerror};
use crate::shared::Shared;
use crate::version::SpdkVersion;

/// SPDK's smallest iobuf pools and buffer sizes (lib/thread/iobuf.c).
const IOBUF_MIN_SMALL_POOL: u64 = 64;
const IOBUF_MIN_LARGE_POOL: u64 = 8;
const IOBUF_MIN_SMALL_BUFSIZE: u32 = 4096;
const IOBUF_MIN_LARGE_BUFSIZE: u32 = 8192;
/// Threads when the configuration is applied (spdk_tgt's app thread): bdev_set_options
/// needs `bdev_io_pool_size >= bdev_io_cache_size * (threads + 1)`.
const THREADS_AT_STARTUP: u32 = 1;

/// Why spdk_tgt would not start with this configuration.
#[derive(Debug, Error)]
pub enum StartupError {
    /// The file cannot be read.
    #[error("Read JSON configuration file {path} failed: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// strerror of the cause.
        reason: String,
    },
    /// Not JSON.
    #[error("JSON configuration file {path}: Parsing JSON configuration failed (-2)")]
    Parse {
        /// The file.
        path: PathBuf,
    },
    /// JSON, but not an object (or `subsystems` / `config` of the wrong shape).
    #[error("JSON configuration file {path}: Invalid JSON configuration: {what}")]
    Shape {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// A method the target does not have.
    #[error("JSON configuration file {path}: Method '{method}' was not found")]
    MethodNotFound {
        /// The file.
        path: PathBuf,
        /// The method.
        method: String,
    },
    /// A method refused its parameters.
    #[error(
        "JSON configuration file {path}: {method}: error response: code {}, message {:?}",
        error.code, error.message
    )]
    Refused {
        /// The file.
        path: PathBuf,
        /// The method.
        method: String,
        /// SPDK's answer.
        error: RpcError,
    },
}

/// `iobuf_set_options`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct IobufV24 {
    small_pool_count: Option<u64>,
    large_pool_count: Option<u64>,
    small_bufsize: Option<u32>,
    large_bufsize: Option<u32>,
}

/// `iobuf_set_options` from v25.01 on (`enable_numa`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct IobufV25 {
    small_pool_count: Option<u64>,
    large_pool_count: Option<u64>,
    small_bufsize: Option<u32>,
    large_bufsize: Option<u32>,
    enable_numa: Option<bool>,
}

/// `bdev_set_options`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct BdevOpts {
    bdev_io_pool_size: Option<u32>,
    bdev_io_cache_size: Option<u32>,
    bdev_auto_examine: Option<bool>,
    iobuf_small_cache_size: Option<u32>,
    iobuf_large_cache_size: Option<u32>,
}

/// `accel_set_options` (the keys v24.09 and v26.05 decode).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // decoded for SPDK's checks; the simulator has no accel framework
struct AccelOpts {
    small_cache_size: Option<u32>,
    large_cache_size: Option<u32>,
    task_count: Option<u32>,
    sequence_count: Option<u32>,
    buf_count: Option<u32>,
}

/// `iscsi_set_options` (every key spdk_tgt v24.09 and v26.05 decode).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // decoded for SPDK's checks; the simulator has no iSCSI target
struct IscsiOpts {
    auth_file: Option<String>,
    node_base: Option<String>,
    nop_timeout: Option<i32>,
    nop_in_interval: Option<i32>,
    no_discovery_auth: Option<bool>,
    req_discovery_auth: Option<bool>,
    req_discovery_auth_mutual: Option<bool>,
    discovery_auth_group: Option<i32>,
    disable_chap: Option<bool>,
    require_chap: Option<bool>,
    mutual_chap: Option<bool>,
    chap_group: Option<i32>,
    max_sessions: Option<u32>,
    max_queue_depth: Option<u32>,
    max_connections_per_session: Option<u32>,
    default_time2wait: Option<u32>,
    default_time2retain: Option<u32>,
    first_burst_length: Option<u32>,
    immediate_data: Option<bool>,
    error_recovery_level: Option<u32>,
    allow_duplicated_isid: Option<bool>,
    max_large_datain_per_connection: Option<u32>,
    max_r2t_per_connection: Option<u32>,
    pdu_pool_size: Option<u32>,
    immediate_data_pool_size: Option<u32>,
    data_out_pool_size: Option<u32>,
}

/// The pool sizes a configuration set (SPDK's defaults where it said nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupOptions {
    /// iobuf small buffers.
    pub iobuf_small_pool_count: u64,
    /// iobuf large buffers.
    pub iobuf_large_pool_count: u64,
    /// bdev_io pool.
    pub bdev_io_pool_size: u32,
    /// bdev_io cache per thread.
    pub bdev_io_cache_size: u32,
    /// iSCSI sessions.
    pub iscsi_max_sessions: u32,
    /// Methods applied, in order.
    pub applied: Vec<String>,
}

/// A configuration file read: the pools it sets and the other calls it makes, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Startup {
    /// The pools.
    pub options: StartupOptions,
    /// Every other entry: method and parameters, for [`run_calls`].
    pub calls: Vec<(String, Option<Value>)>,
}

impl Default for StartupOptions {
    fn default() -> Self {
        Self {
            iobuf_small_pool_count: 8192,
            iobuf_large_pool_count: 1024,
            bdev_io_pool_size: 65_535,
            bdev_io_cache_size: 256,
            iscsi_max_sessions: 128,
            applied: Vec::new(),
        }
    }
}

fn einval() -> RpcError {
    RpcError::errno(22)
}

impl StartupOptions {
    /// Applies one method as spdk_tgt does during start-up.
    fn apply(
        &mut self,
        method: &str,
        params: Option<Value>,
        version: &SpdkVersion,
    ) -> Result<bool, RpcError> {
        let decode_failed = || RpcError::new(-32602, "spdk_json_decode_object failed");
        match method {
            "iobuf_set_options" => {
                let o: IobufV25 = if version.major >= 25 {
                    decode(params, Decoder::Nvmf).map_err(|_| decode_failed())?
                } else {
                    let o: IobufV24 = decode(params, Decoder::Nvmf).map_err(|_| decode_failed())?;
                    IobufV25 {
                        small_pool_count: o.small_pool_count,
                        large_pool_count: o.large_pool_count,
                        small_bufsize: o.small_bufsize,
                        large_bufsize: o.large_bufsize,
                        enable_numa: None,
                    }
                };
                let small = o.small_pool_count.unwrap_or(self.iobuf_small_pool_count);
                let large = o.large_pool_count.unwrap_or(self.iobuf_large_pool_count);
                if small < IOBUF_MIN_SMALL_POOL
                    || large < IOBUF_MIN_LARGE_POOL
                    || o.small_bufsize.is_some_and(|b| b < IOBUF_MIN_SMALL_BUFSIZE)
                    || o.large_bufsize.is_some_and(|b| b < IOBUF_MIN_LARGE_BUFSIZE)
                {
                    return Err(einval());
                }
                self.iobuf_small_pool_count = small;
                self.iobuf_large_pool_count = large;
            }
            "bdev_set_options" => {
                let o: BdevOpts = decode(params, Decoder::Nvmf)?;
                let pool = o.bdev_io_pool_size.unwrap_or(self.bdev_io_pool_size);
                let cache = o.bdev_io_cache_size.unwrap_or(self.bdev_io_cache_size);
                if u64::from(pool) < u64::from(cache) * u64::from(THREADS_AT_STARTUP + 1) {
                    return Err(RpcError::new(
                        -32602,
                        format!("Pool size {pool} too small for cache size {cache}"),
                    ));
                }
                self.bdev_io_pool_size = pool;
                self.bdev_io_cache_size = cache;
            }
            "accel_set_options" => {
                let _: AccelOpts = decode(params, Decoder::Nvmf)?;
            }
            "iscsi_set_options" => {
                let o: IscsiOpts = decode(params, Decoder::Nvmf)?;
                let sessions = o.max_sessions.unwrap_or(self.iscsi_max_sessions);
                // iscsi_opts_verify: checked when the iSCSI subsystem starts.
                let bad = sessions == 0
                    || sessions > 65_535
                    || o.max_connections_per_session
                        .is_some_and(|c| c == 0 || c > 65_535)
                    || o.max_queue_depth.is_some_and(|d| d == 0 || d > 256)
                    || o.pdu_pool_size == Some(0)
                    || o.immediate_data_pool_size == Some(0)
                    || o.data_out_pool_size == Some(0);
                if bad {
                    return Err(RpcError::new(-32603, "Init subsystem iscsi failed"));
                }
                self.iscsi_max_sessions = sessions;
            }
            _ => return Ok(false),
        }
        self.applied.push(method.to_owned());
        Ok(true)
    }
}

fn shape(path: &Path, what: &str) -> StartupError {
    StartupError::Shape {
        path: path.to_owned(),
        what: what.to_owned(),
    }
}

/// Reads and applies the configuration file `path` as spdk_tgt `version` would.
///
/// # Errors
/// [`StartupError`] where spdk_tgt would exit instead of serving.
pub fn load(path: &Path, version: &SpdkVersion) -> Result<Startup, StartupError> {
    let text = std::fs::read(path).map_err(|e| StartupError::Read {
        path: path.to_owned(),
        reason: e.raw_os_error().map_or_else(|| e.to_string(), strerror),
    })?;
    let value: Value = serde_json::from_slice(&text).map_err(|_| StartupError::Parse {
        path: path.to_owned(),
    })?;
    apply(path, value, version)
}

/// Applies a parsed configuration (see [`load`]).
///
/// # Errors
/// As [`load`].
pub fn apply(path: &Path, value: Value, version: &SpdkVersion) -> Result<Startup, StartupError> {
    let Value::Object(mut top) = value else {
        return Err(shape(path, "not enclosed in {}."));
    };
    let mut out = Startup::default();
    let subsystems = match top.remove("subsystems") {
        None => return Ok(out),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(shape(path, "'subsystems' should be an array.")),
    };
    for sub in subsystems {
        let Value::Object(mut sub) = sub else {
            return Err(shape(path, "subsystem entry is not an object."));
        };
        let entries = match sub.remove("config") {
            None | Some(Value::Null) => continue,
            Some(Value::Array(a)) => a,
            Some(_) => return Err(shape(path, "'config' should be an array.")),
        };
        for entry in entries {
            let Value::Object(mut entry) = entry else {
                return Err(shape(path, "config entry is not an object."));
            };
            let Some(Value::String(method)) = entry.remove("method") else {
                return Err(shape(path, "config entry without a method."));
            };
            let params = entry.remove("params");
            match out.options.apply(&method, params.clone(), version) {
                Ok(true) => {}
                Ok(false) => out.calls.push((method, params)),
                Err(error) => {
                    return Err(StartupError::Refused {
                        path: path.to_owned(),
                        method,
                        error,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Makes the configuration's other calls on the new target, in order, as spdk_tgt does
/// before it serves.
///
/// # Errors
/// The first call refused; a method the simulator does not have is
/// [`StartupError::MethodNotFound`].
pub async fn run_calls(
    shared: &Arc<Shared>,
    path: &Path,
    calls: Vec<(String, Option<Value>)>,
) -> Result<(), StartupError> {
    for (method, params) in calls {
        match crate::rpc::dispatch(shared, &method, params).await {
            Ok(_) => {}
            Err(e) if e.code == METHOD_NOT_FOUND => {
                return Err(StartupError::MethodNotFound {
                    path: path.to_owned(),
                    method,
                });
            }
            Err(error) => {
                return Err(StartupError::Refused {
                    path: path.to_owned(),
                    method,
                    error,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v24() -> SpdkVersion {
        SpdkVersion::parse("SPDK v24.09").unwrap()
    }

    fn run(v: Value) -> Result<StartupOptions, StartupError> {
        apply(Path::new("/x/c.json"), v, &v24()).map(|s| s.options)
    }

    fn one(method: &str, params: Value) -> Value {
        json!({"subsystems": [{"subsystem": "any", "config": [
            {"method": method, "params": params}]}]})
    }

    #[test]
    fn the_pools_the_executor_writes_are_applied() {
        let cfg = json!({"subsystems": [
            {"subsystem": "iobuf", "config": [{"method": "iobuf_set_options",
                "params": {"small_pool_count": 1024, "large_pool_count": 256}}]},
            {"subsystem": "accel", "config": [{"method": "accel_set_options",
                "params": {"small_cache_size": 21, "large_cache_size": 4}}]},
            {"subsystem": "bdev", "config": [{"method": "bdev_set_options",
                "params": {"bdev_io_pool_size": 4095, "bdev_io_cache_size": 64,
                    "iobuf_small_cache_size": 128, "iobuf_large_cache_size": 16}}]},
            {"subsystem": "iscsi", "config": [{"method": "iscsi_set_options",
                "params": {"max_sessions": 24, "max_connections_per_session": 2,
                    "immediate_data_pool_size": 1024, "data_out_pool_size": 512,
                    "pdu_pool_size": 4096}}]}]});
        let o = run(cfg).unwrap();
        assert_eq!(o.iobuf_small_pool_count, 1024);
        assert_eq!(o.iobuf_large_pool_count, 256);
        assert_eq!((o.bdev_io_pool_size, o.bdev_io_cache_size), (4095, 64));
        assert_eq!(o.iscsi_max_sessions, 24);
        assert_eq!(
            o.applied,
            [
                "iobuf_set_options",
                "accel_set_options",
                "bdev_set_options",
                "iscsi_set_options"
            ]
        );
        let bad = json!({"subsystems": [{"subsystem": "accel", "config": [
            {"method": "accel_set_options", "params": {"cache": 1}}]}]});
        assert!(
            run(bad).is_err(),
            "an unknown accel key is refused as SPDK does"
        );
    }

    #[test]
    fn other_methods_are_left_for_the_target_in_order() {
        let s = apply(
            Path::new("c.json"),
            json!({"subsystems": [{"subsystem": "bdev", "config": [
                {"method": "bdev_nvme_set_options", "params": {"timeout_us": 0}},
                {"method": "bdev_set_options", "params": {"bdev_io_pool_size": 4095}},
                {"method": "bdev_aio_create", "params": {"name": "a", "filename": "/f"}},
                {"method": "bdev_wait_for_examine"}]}]}),
            &v24(),
        )
        .unwrap();
        assert_eq!(s.options.applied, ["bdev_set_options"]);
        let methods: Vec<&str> = s.calls.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(
            methods,
            [
                "bdev_nvme_set_options",
                "bdev_aio_create",
                "bdev_wait_for_examine"
            ]
        );
        assert_eq!(s.calls[1].1, Some(json!({"name": "a", "filename": "/f"})));
        assert_eq!(s.calls[2].1, None);
    }

    #[test]
    fn what_spdk_tgt_accepts_without_effect() {
        assert_eq!(run(json!({})).unwrap(), StartupOptions::default());
        let o = run(json!({"subsystems": [{"subsystem": "nosuch", "config": []},
            {"subsystem": "bdev", "config": null}]}))
        .unwrap();
        assert!(o.applied.is_empty());
    }

    #[test]
    fn refused_like_spdk_tgt() {
        let e = run(json!([])).unwrap_err().to_string();
        assert!(
            e.ends_with("Invalid JSON configuration: not enclosed in {}."),
            "{e}"
        );
        // Unknown key and wrong type: -32602 "spdk_json_decode_object failed".
        for p in [
            json!({"small_pool_count": 1024, "bogus": 1}),
            json!({"small_pool_count": "x"}),
            json!({"enable_numa": true}),
        ] {
            match run(one("iobuf_set_options", p)) {
                Err(StartupError::Refused { error, .. }) => {
                    assert_eq!(
                        (error.code, error.message.as_str()),
                        (-32602, "spdk_json_decode_object failed")
                    );
                }
                other => panic!("{other:?}"),
            }
        }
        // Out of range: -22 "Invalid argument".
        match run(one("iobuf_set_options", json!({"small_pool_count": 10}))) {
            Err(StartupError::Refused { error, method, .. }) => {
                assert_eq!(method, "iobuf_set_options");
                assert_eq!(
                    (error.code, error.message.as_str()),
                    (-22, "Invalid argument")
                );
            }
            other => panic!("{other:?}"),
        }
        match run(one(
            "bdev_set_options",
            json!({"bdev_io_pool_size": 10, "bdev_io_cache_size": 64}),
        )) {
            Err(StartupError::Refused { error, .. }) => assert_eq!(
                (error.code, error.message.as_str()),
                (-32602, "Pool size 10 too small for cache size 64")
            ),
            other => panic!("{other:?}"),
        }
        assert!(run(one("bdev_set_options", json!({"nope": 1}))).is_err());
        assert!(run(one("iscsi_set_options", json!({"max_sessions": 0}))).is_err());
        assert!(run(one("iscsi_set_options", json!({"pdu_pool": 10}))).is_err());
    }

    #[test]
    fn newer_versions_know_newer_keys() {
        let v = SpdkVersion::parse("SPDK v26.05").unwrap();
        let o = apply(
            Path::new("c.json"),
            one("iobuf_set_options", json!({"enable_numa": false})),
            &v,
        )
        .unwrap();
        assert_eq!(o.options.applied, ["iobuf_set_options"]);
    }

    #[test]
    fn files_that_cannot_be_read_or_parsed() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("missing.json");
        let e = load(&missing, &v24()).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "Read JSON configuration file {} failed: No such file or directory",
                missing.display()
            )
        );
        let trunc = tmp.path().join("trunc.json");
        std::fs::write(&trunc, "{\"subsystems\": [").unwrap();
        let e = load(&trunc, &v24()).unwrap_err().to_string();
        assert!(e.ends_with("Parsing JSON configuration failed (-2)"), "{e}");
    }
}
