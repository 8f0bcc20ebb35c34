//! The client against what a real spdk_tgt v24.09 answered (fixtures/spdk/raw.jsonl and
//! error_table.md): every successful answer of a typed method parses into its typed result,
//! every error answer maps to the right kind with code and message kept, every request SPDK
//! accepted can be expressed by the typed request structs with the same keys, and a replay of
//! the transcript through a fake server gives the recorded outcome.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;
use spdk_rpc::protocol::{decode_response, object_of};
use spdk_rpc::types::bdev::*;
use spdk_rpc::types::lvol::*;
use spdk_rpc::types::nvme::*;
use spdk_rpc::types::nvmf::*;
use spdk_rpc::types::raid::*;
use spdk_rpc::types::system::*;
use spdk_rpc::{Error, ErrorKind, RpcError, RpcRequest, SpdkClient, classify};
use support::{Exchange, FakeServer, Reply, load_exchanges, rewrite_id, spdk_fixtures_dir};

/// How a typed request relates to a recorded exchange.
#[derive(Debug, PartialEq)]
enum Fit {
    /// The typed request serialises to the recorded params, or to the same keys with values
    /// meaning the same (e.g. raid_level "1" is sent as "raid1"); holds what it sends.
    Expressible(Option<Value>),
    /// The typed request cannot say this (unknown key, wrong type, both/neither selector).
    NotExpressible(String),
}

/// Deserialises recorded params into `R` and checks it serialises back to the same params;
/// checks a recorded result parses into `R::Response`.
fn check<R: RpcRequest + DeserializeOwned + PartialEq>(
    params: Option<&Value>,
    result: Option<&Value>,
) -> Result<Fit, String> {
    if let Some(result) = result {
        serde_json::from_value::<R::Response>(result.clone())
            .map_err(|e| format!("result does not parse: {e}"))?;
    }
    let parsed: Result<R, _> = match params {
        Some(p) => serde_json::from_value(p.clone()),
        None => serde_json::from_value(Value::Null)
            .or_else(|_| serde_json::from_value(Value::Object(Default::default()))),
    };
    let request = match parsed {
        Ok(r) => r,
        Err(e) => return Ok(Fit::NotExpressible(e.to_string())),
    };
    let back = serde_json::to_value(&request).map_err(|e| e.to_string())?;
    let back = match back {
        Value::Null => None,
        Value::Object(m) if m.is_empty() => None,
        other => Some(other),
    };
    let same_keys = match (&back, params) {
        (Some(Value::Object(b)), Some(Value::Object(p))) => b.keys().eq(p.keys()),
        (None, None) => true,
        _ => false,
    };
    let same_meaning = || {
        let again: Option<R> = serde_json::from_value(back.clone().unwrap_or(Value::Null)).ok();
        again.as_ref() == Some(&request)
    };
    if back.as_ref() == params || (same_keys && same_meaning()) {
        Ok(Fit::Expressible(back))
    } else {
        Ok(Fit::NotExpressible(format!("serialises to {back:?}")))
    }
}

/// Dispatches on the method names this crate types; `None` for other methods.
fn check_method(
    method: &str,
    params: Option<&Value>,
    result: Option<&Value>,
) -> Option<Result<Fit, String>> {
    let r = match method {
        "spdk_get_version" => check::<SpdkGetVersion>(params, result),
        "rpc_get_methods" => check::<RpcGetMethods>(params, result),
        "framework_wait_init" => check::<FrameworkWaitInit>(params, result),
        "bdev_get_bdevs" => check::<BdevGetBdevs>(params, result),
        "bdev_wait_for_examine" => check::<BdevWaitForExamine>(params, result),
        "bdev_aio_create" => check::<BdevAioCreate>(params, result),
        "bdev_aio_delete" => check::<BdevAioDelete>(params, result),
        "bdev_lvol_create_lvstore" => check::<BdevLvolCreateLvstore>(params, result),
        "bdev_lvol_get_lvstores" => check::<BdevLvolGetLvstores>(params, result),
        "bdev_lvol_delete_lvstore" => check::<BdevLvolDeleteLvstore>(params, result),
        "bdev_lvol_create" => check::<BdevLvolCreate>(params, result),
        "bdev_lvol_get_lvols" => check::<BdevLvolGetLvols>(params, result),
        "bdev_lvol_resize" => check::<BdevLvolResize>(params, result),
        "bdev_lvol_snapshot" => check::<BdevLvolSnapshot>(params, result),
        "bdev_lvol_clone" => check::<BdevLvolClone>(params, result),
        "bdev_lvol_delete" => check::<BdevLvolDelete>(params, result),
        "bdev_lvol_set_read_only" => check::<BdevLvolSetReadOnly>(params, result),
        "bdev_raid_create" => check::<BdevRaidCreate>(params, result),
        "bdev_raid_get_bdevs" => check::<BdevRaidGetBdevs>(params, result),
        "bdev_raid_delete" => check::<BdevRaidDelete>(params, result),
        "bdev_raid_add_base_bdev" => check::<BdevRaidAddBaseBdev>(params, result),
        "bdev_raid_remove_base_bdev" => check::<BdevRaidRemoveBaseBdev>(params, result),
        "nvmf_create_transport" => check::<NvmfCreateTransport>(params, result),
        "nvmf_get_transports" => check::<NvmfGetTransports>(params, result),
        "nvmf_create_subsystem" => check::<NvmfCreateSubsystem>(params, result),
        "nvmf_subsystem_add_ns" => check::<NvmfSubsystemAddNs>(params, result),
        "nvmf_subsystem_add_listener" => check::<NvmfSubsystemAddListener>(params, result),
        "nvmf_subsystem_add_host" => check::<NvmfSubsystemAddHost>(params, result),
        "nvmf_delete_subsystem" => check::<NvmfDeleteSubsystem>(params, result),
        "nvmf_get_subsystems" => check::<NvmfGetSubsystems>(params, result),
        "bdev_nvme_set_options" => check::<BdevNvmeSetOptions>(params, result),
        "bdev_nvme_attach_controller" => check::<BdevNvmeAttachController>(params, result),
        "bdev_nvme_detach_controller" => check::<BdevNvmeDetachController>(params, result),
        "bdev_nvme_get_controllers" => check::<BdevNvmeGetControllers>(params, result),
        _ => return None,
    };
    Some(r)
}

/// Exchanges with a method we type and a well-formed answer.
fn typed_exchanges() -> Vec<Exchange> {
    load_exchanges()
        .into_iter()
        .filter(|x| {
            x.method
                .as_deref()
                .is_some_and(|m| check_method(m, None, None).is_some())
                && x.response().is_some_and(|r| r["id"].is_u64())
        })
        .collect()
}

#[test]
fn every_successful_answer_parses_into_its_typed_result() {
    let mut per_method: BTreeMap<String, usize> = BTreeMap::new();
    for x in typed_exchanges() {
        let Some(result) = x.result() else { continue };
        let method = x.method.clone().unwrap();
        let fit = check_method(&method, x.params(), Some(&result)).unwrap();
        if let Err(e) = fit {
            panic!("line {} {method}: {e}\n{}", x.line, x.response_raw);
        }
        *per_method.entry(method).or_default() += 1;
    }
    // The transcript exercises these; a change in the data or the filter shows up here.
    for method in [
        "spdk_get_version",
        "rpc_get_methods",
        "framework_wait_init",
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
        "bdev_raid_create",
        "bdev_raid_get_bdevs",
        "bdev_raid_delete",
        "bdev_raid_add_base_bdev",
        "bdev_raid_remove_base_bdev",
        "nvmf_create_transport",
        "nvmf_get_transports",
        "nvmf_create_subsystem",
        "nvmf_subsystem_add_ns",
        "nvmf_subsystem_add_listener",
        "nvmf_delete_subsystem",
        "nvmf_get_subsystems",
        "bdev_nvme_attach_controller",
        "bdev_nvme_detach_controller",
        "bdev_nvme_get_controllers",
    ] {
        assert!(
            per_method.get(method).is_some_and(|n| *n > 0),
            "no successful {method} parsed"
        );
    }
}

#[test]
fn every_accepted_request_is_expressible_by_the_typed_structs() {
    let mut expressible = 0;
    for x in typed_exchanges() {
        let method = x.method.clone().unwrap();
        let fit = check_method(&method, x.params(), None).unwrap().unwrap();
        match (&fit, x.error()) {
            (Fit::Expressible(_), _) => expressible += 1,
            // Only requests that SPDK itself refused as malformed may be inexpressible.
            (Fit::NotExpressible(why), Some((code, message))) => {
                let kind = classify(code, &message);
                assert_eq!(
                    kind,
                    ErrorKind::InvalidParams,
                    "line {} {method}: inexpressible ({why}) but SPDK answered {code} {message}",
                    x.line
                );
            }
            (Fit::NotExpressible(why), None) => {
                panic!(
                    "line {} {method}: SPDK accepted {:?} but {why}",
                    x.line,
                    x.params()
                )
            }
        }
    }
    assert!(expressible > 200, "only {expressible} expressible requests");
}

/// Every (code, message) SPDK v24.09 sent, with the kind it must map to.
const EXPECTED_KINDS: &[(i64, &str, ErrorKind)] = &[
    (
        -1,
        "Failed to create RAID bdev raidX: Operation not permitted",
        ErrorKind::PermissionDenied,
    ),
    (
        -1,
        "Method may only be called before framework is initialized. Use --wait-for-rpc command line parameter and then issue this RPC before the framework_start_init RPC.",
        ErrorKind::PermissionDenied,
    ),
    (-1, "Operation not permitted", ErrorKind::PermissionDenied),
    (-2, "No such file or directory", ErrorKind::NotFound),
    (-12, "Cannot allocate memory", ErrorKind::Other),
    (
        -17,
        "Failed to create RAID bdev br0: File exists",
        ErrorKind::AlreadyExists,
    ),
    (
        -17,
        "Failed to create RAID bdev raid1a: File exists",
        ErrorKind::AlreadyExists,
    ),
    (-17, "File exists", ErrorKind::AlreadyExists),
    (
        -19,
        "Failed to remove base bdev from raid bdev",
        ErrorKind::NotFound,
    ),
    (-19, "No such device", ErrorKind::NotFound),
    (-19, "raid bdev mirror0 not found", ErrorKind::NotFound),
    (
        -19,
        "raid bdev nope is not found in config",
        ErrorKind::NotFound,
    ),
    (-19, "raid bdev nope not found", ErrorKind::NotFound),
    (-19, "raid bdev raid1a not found", ErrorKind::NotFound),
    (
        -22,
        "Failed to add base bdev lvs0/r1c to RAID bdev raid1a: Invalid argument",
        ErrorKind::InvalidParams,
    ),
    (
        -22,
        "Failed to create RAID bdev raid1a: Invalid argument",
        ErrorKind::InvalidParams,
    ),
    (-22, "Invalid argument", ErrorKind::InvalidParams),
    (-110, "Connection timed out", ErrorKind::Timeout),
    (
        -114,
        "A controller named rA already exists with the specified network path",
        ErrorKind::AlreadyExists,
    ),
    (-32600, "Invalid request", ErrorKind::Other),
    (-32601, "Method not found", ErrorKind::MethodNotFound),
    (-32602, "File exists", ErrorKind::AlreadyExists),
    (-32602, "Invalid argument", ErrorKind::InvalidParams),
    (-32602, "Invalid parameters", ErrorKind::InvalidParams),
    (-32602, "No space left on device", ErrorKind::NoSpace),
    (
        -32602,
        "spdk_get_version method requires no parameters",
        ErrorKind::InvalidParams,
    ),
    (
        -32603,
        "Operation not permitted",
        ErrorKind::PermissionDenied,
    ),
    (
        -32603,
        "Transport type 'TCP' already exists",
        ErrorKind::AlreadyExists,
    ),
    (
        -32603,
        "Unable to create subsystem nqn.2016-06.io.spdk:spdklab-a1",
        ErrorKind::Other,
    ),
    (
        -32603,
        "Unable to create subsystem not-an-nqn",
        ErrorKind::Other,
    ),
    (
        -32603,
        "spdk_json_decode_object failed",
        ErrorKind::InvalidParams,
    ),
    (
        -32700,
        "spdk_json_decode_object failed",
        ErrorKind::InvalidParams,
    ),
];

fn expected_kind(code: i64, message: &str) -> ErrorKind {
    EXPECTED_KINDS
        .iter()
        .find(|(c, m, _)| *c == code && *m == message)
        .map(|(_, _, k)| *k)
        .unwrap_or_else(|| panic!("no expected kind for {code} {message:?}: add it to the table"))
}

#[test]
fn every_recorded_error_maps_to_its_kind_keeping_code_and_message() {
    let mut checked = 0;
    for x in load_exchanges() {
        let Some((code, message)) = x.error() else {
            continue;
        };
        let kind = expected_kind(code, &message);
        assert_eq!(
            classify(code, &message),
            kind,
            "line {}: {code} {message}",
            x.line
        );
        // Through the decoding path the client uses, when the answer can be matched.
        let response = x.response().unwrap();
        if !response["id"].is_u64() {
            // SPDK answers an invalid request with id null: nobody could wait for it.
            assert!(decode_response(response).is_err(), "line {}", x.line);
            continue;
        }
        let decoded = decode_response(response).unwrap();
        let (c, m) = decoded.outcome.unwrap_err();
        let method = x.method.clone().unwrap_or_default();
        let params = x.params().and_then(Value::as_object);
        let err = RpcError::new(method.clone(), object_of(params), c, m);
        assert_eq!(
            (err.code, err.message.as_str(), err.kind),
            (code, message.as_str(), kind)
        );
        assert_eq!(err.method, method);
        let text = err.to_string();
        assert!(text.contains(&method) && text.contains(&message), "{text}");
        checked += 1;
    }
    assert!(checked >= 60, "only {checked} error answers checked");
}

#[test]
fn every_row_of_the_error_table_maps_to_its_kind() {
    let path = spdk_fixtures_dir().join("error_table.md");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mut rows = 0;
    for line in text
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| method"))
    {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        let Some(code) = cells
            .get(cells.len().wrapping_sub(2))
            .and_then(|c| c.parse::<i64>().ok())
        else {
            continue;
        };
        let message = cells[cells.len() - 1];
        assert_eq!(
            classify(code, message),
            expected_kind(code, message),
            "{line}"
        );
        rows += 1;
    }
    assert!(rows >= 60, "only {rows} rows");
}

#[test]
fn raid_answers_carry_a_duplicate_uuid_that_a_strict_struct_rejects() {
    // Why answers are decoded through serde_json::Value: a derived struct that names `uuid`
    // rejects the duplicate key SPDK sends in every bdev_raid_get_bdevs object.
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Strict {
        name: String,
        uuid: String,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct StrictAnswer {
        result: Vec<Strict>,
    }
    let x = load_exchanges()
        .into_iter()
        .find(|x| {
            x.method.as_deref() == Some("bdev_raid_get_bdevs")
                && x.response_raw.contains("\"base_bdevs_list\"")
        })
        .expect("a raid answer with objects");
    let err = serde_json::from_str::<StrictAnswer>(&x.response_raw).unwrap_err();
    assert!(err.to_string().contains("duplicate field `uuid`"), "{err}");
    // Once through a Value (the client's path) the duplicate is gone.
    let value: Value = serde_json::from_str(&x.response_raw).unwrap();
    assert!(serde_json::from_str::<StrictAnswer>(&value.to_string()).is_ok());
    let raids: Vec<RaidBdev> = serde_json::from_value(value["result"].clone()).unwrap();
    assert!(raids.iter().all(|r| r.uuid.is_some()));
}

#[test]
fn rebuild_progress_and_missing_members_are_visible() {
    let mut saw_rebuild = false;
    let mut saw_missing = false;
    for x in load_exchanges() {
        if x.method.as_deref() != Some("bdev_raid_get_bdevs") {
            continue;
        }
        let Some(result) = x.result() else { continue };
        let raids: Vec<RaidBdev> = serde_json::from_value(result).unwrap();
        for raid in raids {
            if let Some(p) = &raid.process {
                assert_eq!(p.process_type, "rebuild");
                assert!(p.progress.percent <= 100);
                assert!(
                    raid.base_bdevs_list
                        .iter()
                        .any(|b| b.name.as_deref() == Some(&p.target))
                );
                saw_rebuild = true;
            }
            if raid.base_bdevs_list.iter().any(|b| b.name.is_none()) {
                assert!(raid.num_base_bdevs_discovered < raid.num_base_bdevs);
                assert!(raid.is_degraded() || raid.state != RaidState::Online);
                saw_missing = true;
            }
            if raid.state == RaidState::Configuring {
                assert!(raid.num_base_bdevs_discovered < raid.num_base_bdevs);
            }
        }
    }
    assert!(saw_rebuild && saw_missing);
}

#[test]
fn bdev_driver_specific_details_parse() {
    let mut kinds = BTreeMap::new();
    for x in load_exchanges() {
        if x.method.as_deref() != Some("bdev_get_bdevs") {
            continue;
        }
        let Some(result) = x.result() else { continue };
        let bdevs: Vec<Bdev> = serde_json::from_value(result).unwrap();
        for b in bdevs {
            let ds = &b.driver_specific;
            if let Some(aio) = &ds.aio {
                assert!(!aio.filename.is_empty());
                kinds.insert("aio", b.product_name.clone());
            }
            if let Some(lvol) = &ds.lvol {
                assert!(!lvol.lvol_store_uuid.is_empty());
                assert!(b.aliases.iter().any(|a| a.contains('/')));
                kinds.insert("lvol", b.product_name.clone());
            }
            if let Some(raid) = &ds.raid {
                assert_eq!(raid.raid_level, RaidLevel::Raid1);
                kinds.insert("raid", b.product_name.clone());
            }
            if let Some(paths) = &ds.nvme {
                assert_eq!(paths[0].trid.trtype, "TCP");
                assert!(ds.other.contains_key("mp_policy"));
                kinds.insert("nvme", b.product_name.clone());
            }
            assert!(b.size_bytes() > 0);
        }
    }
    assert_eq!(kinds.len(), 4, "{kinds:?}");
}

/// Builds the typed request from recorded params and calls it through the client; `Ok(None)`
/// when the typed struct cannot express the params.
async fn typed_call(
    client: &SpdkClient,
    method: &str,
    params: Option<&Value>,
) -> Option<Result<(), Error>> {
    async fn go<R: RpcRequest + DeserializeOwned + PartialEq>(
        client: &SpdkClient,
        params: Option<&Value>,
    ) -> Option<Result<(), Error>> {
        let req: R = match params {
            Some(p) => serde_json::from_value(p.clone()).ok()?,
            None => serde_json::from_value(Value::Null)
                .or_else(|_| serde_json::from_value(Value::Object(Default::default())))
                .ok()?,
        };
        Some(client.request(&req).await.map(|_| ()))
    }
    match method {
        "spdk_get_version" => go::<SpdkGetVersion>(client, params).await,
        "rpc_get_methods" => go::<RpcGetMethods>(client, params).await,
        "framework_wait_init" => go::<FrameworkWaitInit>(client, params).await,
        "bdev_get_bdevs" => go::<BdevGetBdevs>(client, params).await,
        "bdev_wait_for_examine" => go::<BdevWaitForExamine>(client, params).await,
        "bdev_aio_create" => go::<BdevAioCreate>(client, params).await,
        "bdev_aio_delete" => go::<BdevAioDelete>(client, params).await,
        "bdev_lvol_create_lvstore" => go::<BdevLvolCreateLvstore>(client, params).await,
        "bdev_lvol_get_lvstores" => go::<BdevLvolGetLvstores>(client, params).await,
        "bdev_lvol_delete_lvstore" => go::<BdevLvolDeleteLvstore>(client, params).await,
        "bdev_lvol_create" => go::<BdevLvolCreate>(client, params).await,
        "bdev_lvol_get_lvols" => go::<BdevLvolGetLvols>(client, params).await,
        "bdev_lvol_resize" => go::<BdevLvolResize>(client, params).await,
        "bdev_lvol_snapshot" => go::<BdevLvolSnapshot>(client, params).await,
        "bdev_lvol_clone" => go::<BdevLvolClone>(client, params).await,
        "bdev_lvol_delete" => go::<BdevLvolDelete>(client, params).await,
        "bdev_raid_create" => go::<BdevRaidCreate>(client, params).await,
        "bdev_raid_get_bdevs" => go::<BdevRaidGetBdevs>(client, params).await,
        "bdev_raid_delete" => go::<BdevRaidDelete>(client, params).await,
        "bdev_raid_add_base_bdev" => go::<BdevRaidAddBaseBdev>(client, params).await,
        "bdev_raid_remove_base_bdev" => go::<BdevRaidRemoveBaseBdev>(client, params).await,
        "nvmf_create_transport" => go::<NvmfCreateTransport>(client, params).await,
        "nvmf_get_transports" => go::<NvmfGetTransports>(client, params).await,
        "nvmf_create_subsystem" => go::<NvmfCreateSubsystem>(client, params).await,
        "nvmf_subsystem_add_ns" => go::<NvmfSubsystemAddNs>(client, params).await,
        "nvmf_subsystem_add_listener" => go::<NvmfSubsystemAddListener>(client, params).await,
        "nvmf_delete_subsystem" => go::<NvmfDeleteSubsystem>(client, params).await,
        "nvmf_get_subsystems" => go::<NvmfGetSubsystems>(client, params).await,
        "bdev_nvme_attach_controller" => go::<BdevNvmeAttachController>(client, params).await,
        "bdev_nvme_detach_controller" => go::<BdevNvmeDetachController>(client, params).await,
        "bdev_nvme_get_controllers" => go::<BdevNvmeGetControllers>(client, params).await,
        _ => None,
    }
}

#[tokio::test]
async fn replaying_the_transcript_through_a_fake_target_gives_the_recorded_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spdk.sock");
    // The exchanges a typed call can reproduce, in recorded order.
    // Each with the params the typed request sends.
    let script: Vec<(Exchange, Option<Value>)> = typed_exchanges()
        .into_iter()
        .filter_map(
            |x| match check_method(x.method.as_deref().unwrap(), x.params(), None) {
                Some(Ok(Fit::Expressible(sent))) => Some((x, sent)),
                _ => None,
            },
        )
        .collect();
    let queue = std::sync::Arc::new(std::sync::Mutex::new(script.clone()));
    let mismatches = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let server = {
        let (queue, mismatches) = (queue.clone(), mismatches.clone());
        FakeServer::start(&path, move |seen| {
            let mut q = queue.lock().unwrap();
            if q.is_empty() {
                return Reply::Error(-32603, "script exhausted".into());
            }
            let (x, sent) = q.remove(0);
            if Some(seen.method.as_str()) != x.method.as_deref() || seen.params != sent {
                mismatches.lock().unwrap().push(format!(
                    "line {}: expected {:?} {:?}, got {} {:?}",
                    x.line, x.method, sent, seen.method, seen.params
                ));
            }
            // The recorded bytes, duplicate keys and all, with our id.
            Reply::Raw(rewrite_id(&x.response_raw, seen.id).into_bytes())
        })
    };
    let client = SpdkClient::new(&path);
    for (x, _) in &script {
        let method = x.method.as_deref().unwrap();
        let outcome = tokio::time::timeout(
            Duration::from_secs(10),
            typed_call(&client, method, x.params()),
        )
        .await
        .expect("call finished")
        .expect("expressible");
        match (outcome, x.error()) {
            (Ok(()), None) => {}
            (Err(Error::Rpc(e)), Some((code, message))) => {
                assert_eq!(
                    (e.code, e.message.as_str()),
                    (code, message.as_str()),
                    "line {}",
                    x.line
                );
                assert_eq!(e.method, method);
                assert_eq!(e.kind, expected_kind(code, &message));
            }
            (other, expected) => panic!(
                "line {} {method}: got {other:?}, recorded {expected:?}",
                x.line
            ),
        }
    }
    assert!(
        mismatches.lock().unwrap().is_empty(),
        "{:?}",
        mismatches.lock().unwrap()
    );
    assert!(server.violations().is_empty(), "{:?}", server.violations());
    assert_eq!(server.seen().len(), script.len());
    assert_eq!(server.connections(), 1);
}
