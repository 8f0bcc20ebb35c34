//! The client against a fake spdk_tgt that misbehaves on purpose: answers out of order and
//! concatenated, in pieces, never, half and then closes, restarts, sends garbage. Every test
//! also checks the fake saw no protocol violation (no notification, no batch, increasing
//! numeric ids, object params).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use spdk_rpc::types::bdev::{BdevAioCreate, BdevAioDelete, BdevGetBdevs, BdevWaitForExamine};
use spdk_rpc::types::lvol::{BdevLvolCreate, BdevLvolCreateLvstore, BdevLvolDelete, LvsRef};
use spdk_rpc::types::raid::BdevRaidGetBdevs;
use spdk_rpc::{ClientConfig, Error, ErrorKind, SpdkApi, SpdkClient, SpdkVersion};
use support::{FakeServer, Reply, Seen, v24_09, version_result};
use tempfile::TempDir;

fn socket() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spdk.sock");
    (dir, path)
}

fn quick_client(path: &Path) -> SpdkClient {
    SpdkClient::with_config(
        path,
        ClientConfig {
            default_timeout: Duration::from_secs(10),
            ..ClientConfig::default()
        },
    )
}

fn methods(server: &FakeServer) -> Vec<String> {
    server.seen().into_iter().map(|s| s.method).collect()
}

fn assert_clean(server: &FakeServer) {
    assert!(server.violations().is_empty(), "{:?}", server.violations());
}

fn bdev(name: &str) -> Value {
    json!([{"name": name, "aliases": [], "product_name": "AIO disk", "block_size": 512,
            "num_blocks": 8, "uuid": "u", "claimed": false, "driver_specific": {}}])
}

#[tokio::test]
async fn pipelined_calls_get_their_own_answers_out_of_order_and_concatenated() {
    const N: usize = 10;
    let (_dir, path) = socket();
    let count = Arc::new(AtomicUsize::new(0));
    let server = {
        let count = Arc::clone(&count);
        FakeServer::start(&path, move |seen: &Seen| {
            let name = seen.params.as_ref().unwrap()["name"]
                .as_str()
                .unwrap()
                .to_owned();
            // Hold the first N-1 answers; then answer all in reverse, in one write.
            if count.fetch_add(1, Ordering::SeqCst) + 1 < N {
                Reply::Defer(bdev(&name))
            } else {
                Reply::Release(bdev(&name))
            }
        })
    };
    let client = quick_client(&path);
    let api: Arc<dyn SpdkApi> = Arc::new(client);
    let calls = (0..N).map(|i| {
        let api = Arc::clone(&api);
        tokio::spawn(async move {
            let name = format!("bdev{i}");
            let got = api
                .bdev_get_bdevs(BdevGetBdevs::named(&name))
                .await
                .unwrap();
            assert_eq!(got[0].name, name);
        })
    });
    for call in calls.collect::<Vec<_>>() {
        tokio::time::timeout(Duration::from_secs(10), call)
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(server.seen().len(), N);
    assert_eq!(server.connections(), 1);
    assert_clean(&server);
}

#[tokio::test]
async fn answers_arriving_in_small_pieces_are_reassembled() {
    let (_dir, path) = socket();
    let server = FakeServer::start(&path, |_seen: &Seen| Reply::Chunks(7, bdev("aio0")));
    let client = quick_client(&path);
    let got = client
        .bdev_get_bdevs(BdevGetBdevs::named("aio0"))
        .await
        .unwrap();
    assert_eq!(got[0].name, "aio0");
    assert_eq!(got[0].size_bytes(), 4096);
    assert_clean(&server);
}

#[tokio::test]
async fn error_answers_keep_method_object_code_and_message() {
    let (_dir, path) = socket();
    let server = FakeServer::start(&path, |_seen: &Seen| {
        Reply::Error(-19, "No such device".into())
    });
    let client = quick_client(&path);
    let err = client
        .bdev_lvol_delete(BdevLvolDelete {
            name: "lvs0/nope".into(),
        })
        .await
        .unwrap_err();
    let rpc = err.rpc().expect("an SPDK answer");
    assert_eq!(rpc.kind, ErrorKind::NotFound);
    assert_eq!((rpc.code, rpc.message.as_str()), (-19, "No such device"));
    assert_eq!(rpc.method, "bdev_lvol_delete");
    assert_eq!(rpc.object.as_deref(), Some("lvs0/nope"));
    assert!(err.is_not_found() && !err.is_transport());
    assert!(
        err.to_string().contains("bdev_lvol_delete lvs0/nope"),
        "{err}"
    );
    assert_clean(&server);
}

#[tokio::test]
async fn a_write_whose_answer_is_cut_off_reports_an_unknown_outcome_and_is_not_resent() {
    let (_dir, path) = socket();
    let server = FakeServer::start(&path, |seen: &Seen| match seen.method.as_str() {
        "bdev_lvol_create" => Reply::HalfThenClose(json!("c2bbba13-12d2-4cf1-bc72-9f2f65bb8975")),
        _ => Reply::Result(json!([])),
    });
    let client = quick_client(&path);
    let err = client
        .bdev_lvol_create(BdevLvolCreate::new(LvsRef::Name("lvs0".into()), "v-r-1", 8).thin())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::ConnectionLost { sent: true, method, socket } if method == "bdev_lvol_create" && *socket == path),
        "{err:?}"
    );
    assert!(err.outcome_unknown());
    assert!(err.to_string().contains("unknown"), "{err}");
    assert_eq!(methods(&server), ["bdev_lvol_create"]);
    // The next call reconnects by itself.
    let lvols = client
        .bdev_lvol_get_lvols(Default::default())
        .await
        .unwrap();
    assert!(lvols.is_empty());
    assert_eq!(server.connections(), 2);
    assert_clean(&server);
}

#[tokio::test]
async fn a_read_whose_answer_is_cut_off_is_resent_once_on_a_new_connection() {
    let (_dir, path) = socket();
    let server = FakeServer::start(&path, |seen: &Seen| {
        if seen.conn == 0 {
            Reply::HalfThenClose(bdev("aio0"))
        } else {
            Reply::Result(bdev("aio0"))
        }
    });
    let client = quick_client(&path);
    let got = client
        .bdev_get_bdevs(BdevGetBdevs::named("aio0"))
        .await
        .unwrap();
    assert_eq!(got[0].name, "aio0");
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!((seen[0].conn, seen[1].conn), (0, 1));
    assert!(seen[1].id > seen[0].id);
    assert_clean(&server);
}

#[tokio::test]
async fn a_read_is_resent_only_once() {
    let (_dir, path) = socket();
    let server = FakeServer::start(&path, |_seen: &Seen| Reply::Close);
    let client = quick_client(&path);
    let err = client
        .bdev_raid_get_bdevs(BdevRaidGetBdevs::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::ConnectionLost { sent: true, .. }),
        "{err:?}"
    );
    assert_eq!(
        methods(&server),
        ["bdev_raid_get_bdevs", "bdev_raid_get_bdevs"]
    );
    assert_clean(&server);
}

#[tokio::test]
async fn an_unanswered_call_times_out_and_its_late_answer_is_discarded() {
    let (_dir, path) = socket();
    let server = FakeServer::start(&path, |seen: &Seen| match seen.method.as_str() {
        "bdev_wait_for_examine" => Reply::Defer(json!(true)),
        "spdk_get_version" => Reply::Release(version_result(24, 9)),
        _ => Reply::Silent,
    });
    let client = quick_client(&path);
    let err = client
        .request_with_timeout(&BdevWaitForExamine, Duration::from_millis(200))
        .await
        .unwrap_err();
    match &err {
        Error::Timeout {
            socket,
            method,
            timeout,
        } => {
            assert_eq!(socket, &path);
            assert_eq!(method, "bdev_wait_for_examine");
            assert_eq!(*timeout, Duration::from_millis(200));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.outcome_unknown());
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    // The late answer to bdev_wait_for_examine arrives together with this one.
    let version = client.version().await.unwrap();
    assert_eq!(version, SpdkVersion::new(24, 9, 0));
    // Never answered at all.
    let err = client
        .call_with_timeout("framework_wait_init", None, Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert_eq!(server.connections(), 1);
    assert_clean(&server);
}

#[tokio::test]
async fn a_server_side_wait_extends_the_call_timeout() {
    let (_dir, path) = socket();
    let server = FakeServer::start(&path, |_seen: &Seen| {
        Reply::Delayed(Duration::from_millis(600), bdev("late"))
    });
    let client = SpdkClient::with_config(
        &path,
        ClientConfig {
            default_timeout: Duration::from_millis(200),
            ..ClientConfig::default()
        },
    );
    let req = BdevGetBdevs {
        name: Some("late".into()),
        timeout: Some(2000),
    };
    let got = client.request(&req).await.unwrap();
    assert_eq!(got[0].name, "late");
    assert_eq!(
        server.seen()[0].params,
        Some(json!({"name": "late", "timeout": 2000}))
    );
    assert_clean(&server);
}

#[tokio::test]
async fn a_restarted_target_is_reconnected_and_its_version_asked_again() {
    let (_dir, path) = socket();
    let first = FakeServer::start(&path, |seen: &Seen| match seen.method.as_str() {
        "spdk_get_version" => Reply::Result(version_result(24, 9)),
        _ => Reply::Result(json!("aio0")),
    });
    let client = quick_client(&path);
    let aio = BdevAioCreate {
        nowait: Some(true),
        ..BdevAioCreate::new("aio0", "/dev/loop0")
    };
    assert_eq!(client.bdev_aio_create(aio.clone()).await.unwrap(), "aio0");
    let sent = first.seen();
    let sent_methods: Vec<&str> = sent.iter().map(|s| s.method.as_str()).collect();
    assert_eq!(sent_methods, ["spdk_get_version", "bdev_aio_create"]);
    // v24.09 does not know `nowait`: left out.
    assert_eq!(
        sent[1].params,
        Some(json!({"name": "aio0", "filename": "/dev/loop0"}))
    );

    // The target restarts as a newer version on the same socket.
    let second = FakeServer::restart(first, |seen: &Seen| match seen.method.as_str() {
        "spdk_get_version" => Reply::Result(version_result(26, 1)),
        _ => Reply::Result(json!("aio0")),
    });
    let name = client.bdev_aio_create(aio).await.unwrap();
    assert_eq!(name, "aio0");
    let sent = second.seen();
    assert_eq!(sent.len(), 4, "{sent:?}");
    assert_eq!(sent[2].method, "spdk_get_version");
    assert_eq!(
        sent[3].params,
        Some(json!({"name": "aio0", "filename": "/dev/loop0", "nowait": true}))
    );
    assert_eq!(second.connections(), 1);
    assert_clean(&second);
}

#[tokio::test]
async fn a_layout_changing_param_is_refused_on_an_old_target_without_sending() {
    let (_dir, path) = socket();
    let server = FakeServer::start(&path, v24_09);
    let client = quick_client(&path);
    let req = BdevLvolCreateLvstore {
        md_page_size: Some(4096),
        ..BdevLvolCreateLvstore::new("aio0", "lvs0")
    };
    let err = client.bdev_lvol_create_lvstore(req).await.unwrap_err();
    match &err {
        Error::Unsupported(u) => {
            assert_eq!(
                (u.method.as_str(), u.param.as_str()),
                ("bdev_lvol_create_lvstore", "md_page_size")
            );
            assert_eq!(u.connected, SpdkVersion::new(24, 9, 0));
        }
        other => panic!("{other:?}"),
    }
    // A second gated call does not ask the version again.
    let _ = client
        .bdev_aio_create(BdevAioCreate {
            nowait: Some(false),
            ..BdevAioCreate::new("a", "/f")
        })
        .await;
    assert_eq!(methods(&server), ["spdk_get_version", "bdev_aio_create"]);
    assert_clean(&server);
}

const GARBAGE: [&[u8]; 3] = [
    b"{\"jsonrpc\":\"2.0\",\"id\":1,,}\n",
    b"{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32600,\"message\":\"Invalid request\"}}\n",
    b"42\n",
];

/// A server that sends `garbage` on its first connection and `true` on later ones.
fn garbage_then_true(path: &Path, garbage: &'static [u8]) -> FakeServer {
    FakeServer::start(path, move |seen: &Seen| {
        if seen.conn == 0 {
            Reply::Raw(garbage.to_vec())
        } else {
            Reply::Result(json!(true))
        }
    })
}

#[tokio::test]
async fn garbage_from_the_target_fails_a_write_and_the_next_call_reconnects() {
    for garbage in GARBAGE {
        let (_dir, path) = socket();
        let server = garbage_then_true(&path, garbage);
        let client = quick_client(&path);
        let err = client
            .bdev_aio_delete(BdevAioDelete::new("aio0"))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidResponse { method, .. } if method == "bdev_aio_delete"),
            "{err:?}"
        );
        assert!(err.outcome_unknown());
        assert_eq!(methods(&server), ["bdev_aio_delete"]);
        client.bdev_wait_for_examine().await.unwrap();
        assert_eq!(server.connections(), 2);
        assert_clean(&server);
    }
}

#[tokio::test]
async fn garbage_from_the_target_makes_a_read_go_again_on_a_new_connection() {
    for garbage in GARBAGE {
        let (_dir, path) = socket();
        let server = garbage_then_true(&path, garbage);
        let client = quick_client(&path);
        client.bdev_wait_for_examine().await.unwrap();
        assert_eq!(
            methods(&server),
            ["bdev_wait_for_examine", "bdev_wait_for_examine"]
        );
        assert_eq!(server.connections(), 2);
        assert_clean(&server);
    }
}

#[tokio::test]
async fn a_false_answer_is_reported_as_refused() {
    let (_dir, path) = socket();
    let server = FakeServer::start(&path, |_seen: &Seen| Reply::Result(json!(false)));
    let client = quick_client(&path);
    let err = client
        .bdev_aio_delete(BdevAioDelete::new("aio0"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Refused { method, object, .. } if method == "bdev_aio_delete" && object.as_deref() == Some("aio0")),
        "{err:?}"
    );
    assert_clean(&server);
}

#[tokio::test]
async fn raw_calls_refuse_non_object_params_without_sending() {
    let (_dir, path) = socket();
    let server = FakeServer::start(&path, v24_09);
    let client = quick_client(&path);
    let err = client
        .call("bdev_lvol_create", Some(json!(["lvs0", "t", 8])))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Encode { .. }), "{err:?}");
    let err = client
        .call("spdk_get_version", Some(json!("x")))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Encode { .. }), "{err:?}");
    assert!(server.seen().is_empty());
    // Null params are the same as none.
    let v = client
        .call("spdk_get_version", Some(Value::Null))
        .await
        .unwrap();
    assert_eq!(v["fields"]["major"], 24);
    assert_eq!(server.seen()[0].params, None);
    assert_clean(&server);
}

#[tokio::test]
async fn a_missing_socket_and_a_stale_socket_are_named() {
    let (dir, path) = socket();
    let client = quick_client(&path);
    let err = client.call("spdk_get_version", None).await.unwrap_err();
    assert!(
        matches!(&err, Error::SocketMissing { socket } if *socket == path),
        "{err:?}"
    );
    assert!(err.to_string().contains(&path.display().to_string()));

    // A socket file nobody listens on (spdk_tgt crashed).
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let err = SpdkClient::connect(&stale).await.unwrap_err();
    assert!(
        matches!(&err, Error::Connect { socket, .. } if *socket == stale),
        "{err:?}"
    );
    assert!(err.is_transport());
}

#[tokio::test]
async fn wait_ready_polls_until_the_target_listens() {
    let (_dir, path) = socket();
    let late_path = path.clone();
    let starter = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        FakeServer::start(&late_path, v24_09)
    });
    let client = quick_client(&path);
    let version = client.wait_ready(Duration::from_secs(10)).await.unwrap();
    assert_eq!(version, SpdkVersion::new(24, 9, 0));
    let server = starter.await.unwrap();
    assert_eq!(
        methods(&server),
        ["spdk_get_version", "framework_wait_init"]
    );
    assert_clean(&server);
}

#[tokio::test]
async fn wait_ready_gives_up_with_the_last_failure() {
    let (_dir, path) = socket();
    let client = quick_client(&path);
    let err = client
        .wait_ready(Duration::from_millis(200))
        .await
        .unwrap_err();
    match err {
        Error::NotReady { socket, last, .. } => {
            assert_eq!(socket, path);
            assert!(matches!(*last, Error::SocketMissing { .. }), "{last:?}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn wait_ready_returns_an_error_answer_at_once() {
    let (_dir, path) = socket();
    let server = FakeServer::start(&path, |_seen: &Seen| {
        Reply::Error(-32601, "Method not found".into())
    });
    let client = quick_client(&path);
    let err = client
        .wait_ready(Duration::from_secs(10))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::MethodNotFound));
    assert_eq!(server.seen().len(), 1);
    assert_clean(&server);
}

#[tokio::test]
async fn a_raw_call_is_never_resent_once_written() {
    let (_dir, path) = socket();
    let server = FakeServer::start(&path, |_seen: &Seen| Reply::HalfThenClose(json!(true)));
    let client = quick_client(&path);
    let err = client
        .call("bdev_get_bdevs", Some(json!({"name": "aio0"})))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::ConnectionLost { sent: true, .. }),
        "{err:?}"
    );
    assert_eq!(methods(&server), ["bdev_get_bdevs"]);
    assert_clean(&server);
}

#[tokio::test]
async fn every_read_in_flight_when_the_connection_drops_is_resent() {
    const N: usize = 5;
    let (_dir, path) = socket();
    let count = Arc::new(AtomicUsize::new(0));
    let server = {
        let count = Arc::clone(&count);
        FakeServer::start(&path, move |seen: &Seen| {
            let name = seen.params.as_ref().unwrap()["name"]
                .as_str()
                .unwrap()
                .to_owned();
            if seen.conn > 0 {
                return Reply::Result(bdev(&name));
            }
            // Hold N-1 answers on the first connection, then drop it with all of them.
            if count.fetch_add(1, Ordering::SeqCst) + 1 < N {
                Reply::Defer(bdev(&name))
            } else {
                Reply::Close
            }
        })
    };
    let client = quick_client(&path);
    let calls: Vec<_> = (0..N)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                let name = format!("b{i}");
                let got = client
                    .bdev_get_bdevs(BdevGetBdevs::named(&name))
                    .await
                    .unwrap();
                assert_eq!(got[0].name, name);
            })
        })
        .collect();
    for call in calls {
        tokio::time::timeout(Duration::from_secs(10), call)
            .await
            .unwrap()
            .unwrap();
    }
    let seen = server.seen();
    assert_eq!(seen.iter().filter(|s| s.conn == 0).count(), N);
    assert_eq!(seen.iter().filter(|s| s.conn > 0).count(), N);
    assert_clean(&server);
}
