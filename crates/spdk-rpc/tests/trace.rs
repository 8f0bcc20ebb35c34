//! Call traces against a fake spdk_tgt: a traced clone lists every request it wrote, in
//! order, with its round-trip time and outcome (errors, a timed-out call, the version query
//! the client makes on its own, a read resent after a lost connection), while untraced
//! clones of the same client, running at the same time, record nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use spdk_rpc::types::bdev::{BdevAioCreate, BdevGetBdevs, BdevWaitForExamine};
use spdk_rpc::types::lvol::BdevLvolDelete;
use spdk_rpc::{CallTrace, ClientConfig, SpdkApi, SpdkClient};
use support::{FakeServer, Reply, Seen, version_result};

fn outline(trace: &CallTrace) -> Vec<(String, bool)> {
    trace
        .calls()
        .into_iter()
        .map(|c| (c.method, c.ok))
        .collect()
}

fn bdevs() -> serde_json::Value {
    json!([{"name": "b", "aliases": [], "product_name": "AIO disk", "block_size": 512,
            "num_blocks": 8, "uuid": "u", "claimed": false, "driver_specific": {}}])
}

#[tokio::test]
async fn a_traced_clone_lists_its_calls_in_order_and_others_record_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spdk.sock");
    let server = FakeServer::start(&path, |seen: &Seen| match seen.method.as_str() {
        "spdk_get_version" => Reply::Result(version_result(24, 9)),
        "bdev_get_bdevs" => Reply::Delayed(Duration::from_millis(3), bdevs()),
        "bdev_lvol_delete" => Reply::Error(-19, "No such device".into()),
        "bdev_aio_create" => Reply::Result(json!("a")),
        _ => Reply::Result(json!(true)),
    });
    let client = SpdkClient::new(&path);
    let trace = CallTrace::new();
    let traced: Arc<dyn SpdkApi> = client.with_trace(&trace).unwrap();

    // Untraced calls on the same connection, at the same time.
    let other = client.clone();
    let background = tokio::spawn(async move {
        for _ in 0..20 {
            other.bdev_wait_for_examine().await.unwrap();
        }
    });
    traced.bdev_get_bdevs(BdevGetBdevs::all()).await.unwrap();
    traced.bdev_wait_for_examine().await.unwrap();
    let err = traced
        .bdev_lvol_delete(BdevLvolDelete {
            name: "lvs/x".into(),
        })
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    // A version-gated parameter: the client asks the version first, on its own.
    let mut aio = BdevAioCreate::new("a", "/dev/x");
    aio.nowait = Some(true);
    client.traced(&trace).request(&aio).await.unwrap();
    background.await.unwrap();

    assert_eq!(
        outline(&trace),
        [
            ("bdev_get_bdevs".to_string(), true),
            ("bdev_wait_for_examine".to_string(), true),
            ("bdev_lvol_delete".to_string(), false),
            ("spdk_get_version".to_string(), true),
            ("bdev_aio_create".to_string(), true),
        ]
    );
    let calls = trace.calls();
    assert!(calls.iter().all(|c| c.micros() > 0), "{calls:?}");
    assert!(calls[0].elapsed >= Duration::from_millis(3), "{calls:?}");
    // The server saw the 20 untraced calls too; none of them is in the trace.
    let seen = server.seen();
    assert_eq!(
        seen.iter()
            .filter(|s| s.method == "bdev_wait_for_examine")
            .count(),
        21
    );
    assert!(client.trace().is_none());
}

#[tokio::test]
async fn timeouts_and_resends_are_recorded_as_what_went_over_the_wire() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spdk.sock");
    let closed_once = Arc::new(AtomicBool::new(false));
    let server = {
        let closed_once = Arc::clone(&closed_once);
        FakeServer::start(&path, move |seen: &Seen| match seen.method.as_str() {
            "bdev_wait_for_examine" => Reply::Silent,
            // The first read is lost with its connection; the client resends it.
            "bdev_get_bdevs" if !closed_once.swap(true, Ordering::SeqCst) => Reply::Close,
            "bdev_get_bdevs" => Reply::Result(bdevs()),
            _ => Reply::Result(json!(true)),
        })
    };
    let client = SpdkClient::with_config(
        &path,
        ClientConfig {
            default_timeout: Duration::from_millis(200),
            ..ClientConfig::default()
        },
    );
    let trace = CallTrace::new();
    let traced = client.traced(&trace);
    let err = traced.request(&BdevWaitForExamine).await.unwrap_err();
    assert!(matches!(err, spdk_rpc::Error::Timeout { .. }), "{err}");
    traced.request(&BdevGetBdevs::all()).await.unwrap();
    assert_eq!(
        outline(&trace),
        [
            ("bdev_wait_for_examine".to_string(), false),
            ("bdev_get_bdevs".to_string(), false),
            ("bdev_get_bdevs".to_string(), true),
        ]
    );
    assert!(trace.calls()[0].elapsed >= Duration::from_millis(200));
    assert_eq!(server.connections(), 2);
}
