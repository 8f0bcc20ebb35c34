//! Framing as SPDK v24.09 does it: no delimiter needed, pipelining, invalid JSON closes,
//! batches rejected, envelope errors, the truncated answer to notifications.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::{Client, start};

fn parse(line: &str) -> Value {
    serde_json::from_str(line).unwrap()
}

#[test]
fn concatenated_requests_without_delimiter_are_answered_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(dir.path(), "a");
    let mut c = Client::connect(sim.socket());
    c.send_raw(br#"{"jsonrpc":"2.0","method":"spdk_get_version","id":1}{"jsonrpc":"2.0","method":"bdev_get_bdevs","id":"two"}{"method":"framework_wait_init","id":3.5}"#);
    let a = parse(&c.read_line());
    let b = parse(&c.read_line());
    let d = parse(&c.read_line());
    assert_eq!(a["id"], json!(1));
    assert_eq!(a["result"]["version"], json!("SPDK v24.09"));
    assert_eq!(b["id"], json!("two"));
    assert_eq!(b["result"], json!([]));
    assert_eq!(d["id"], json!(3.5));
    assert_eq!(d["result"], json!(true));
}

#[test]
fn a_partial_request_is_buffered_until_complete() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(dir.path(), "a");
    let mut c = Client::connect(sim.socket());
    c.send_raw(br#"{"jsonrpc":"2.0","method":"spdk_get_version","id":101"#);
    let nothing = c.read_for(Duration::from_millis(200));
    assert!(nothing.is_err(), "no answer to an incomplete request");
    c.send_raw(b"}");
    let line = c.read_line();
    assert!(
        line.starts_with(r#"{"jsonrpc":"2.0","id":101,"result":{"version":"SPDK v24.09""#),
        "{line}"
    );
}

#[test]
fn responses_are_compact_single_lines() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(dir.path(), "a");
    let mut c = Client::connect(sim.socket());
    c.send_raw(
        b"{\n  \"jsonrpc\": \"2.0\",\n  \"method\": \"spdk_get_version\",\n  \"id\": 7\n}\n",
    );
    assert_eq!(
        c.read_line(),
        "{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"version\":\"SPDK v24.09\",\"fields\":{\"major\":24,\"minor\":9,\"patch\":0,\"suffix\":\"\"}}}\n"
    );
}

#[test]
fn invalid_json_closes_the_connection_without_an_answer() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(dir.path(), "a");
    let mut c = Client::connect(sim.socket());
    c.send_raw(br#"{"jsonrpc":"2.0","method":"spdk_get_version","id":102,}"#);
    let got = c
        .read_for(Duration::from_secs(5))
        .expect("EOF, not a timeout");
    assert!(got.is_empty(), "EOF without any bytes, got {got:?}");
    // The server itself is fine.
    let mut fresh = Client::connect(sim.socket());
    assert_eq!(
        fresh.ok("spdk_get_version", Value::Null)["fields"]["major"],
        json!(24)
    );
}

#[test]
fn envelope_errors_match_the_transcripts() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(dir.path(), "a");
    let mut c = Client::connect(sim.socket());
    let invalid_null = "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32600,\"message\":\"Invalid request\"}}\n";
    for raw in [
        r#"[{"jsonrpc":"2.0","method":"spdk_get_version","id":107}]"#,
        r#"{"jsonrpc":"1.0","method":"spdk_get_version","id":104}"#,
        r#"{"jsonrpc":"2.0","id":105}"#,
        r#"{"jsonrpc":"2.0","method":"spdk_get_version","id":{"a":1}}"#,
    ] {
        c.send_raw(raw.as_bytes());
        assert_eq!(c.read_line(), invalid_null, "for {raw}");
    }
    c.send_raw(br#"{"jsonrpc":"2.0","method":"spdk_get_version","id":106,"params":"x"}"#);
    assert_eq!(
        c.read_line(),
        "{\"jsonrpc\":\"2.0\",\"id\":106,\"error\":{\"code\":-32600,\"message\":\"Invalid request\"}}\n"
    );
    c.send_raw(br#"{"method":"spdk_get_version","id":103}"#);
    assert_eq!(
        parse(&c.read_line())["id"],
        json!(103),
        "jsonrpc member may be omitted"
    );
}

#[test]
fn notifications_get_the_truncated_v24_09_answer() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(dir.path(), "a");
    for request in [
        &br#"{"jsonrpc":"2.0","method":"spdk_get_version"}"#[..],
        br#"{"jsonrpc":"2.0","method":"spdk_get_version","id":null}"#,
    ] {
        let mut c = Client::connect(sim.socket());
        c.send_raw(request);
        let got = c.read_for(Duration::from_secs(5)).unwrap();
        assert_eq!(
            String::from_utf8(got).unwrap(),
            r#"{"jsonrpc":"2.0","id":null,"result":{"version":"SPDK v24.09","fields":{"major":24,"minor":9,"patch":0,"suffix":""}}"#
        );
    }
}

#[test]
fn many_pipelined_requests_in_one_write() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(dir.path(), "a");
    let mut c = Client::connect(sim.socket());
    let mut batch = String::new();
    for id in 0..50 {
        batch.push_str(&format!(
            r#"{{"jsonrpc":"2.0","method":"rpc_get_methods","id":{id}}}"#
        ));
    }
    c.send_raw(batch.as_bytes());
    for id in 0..50 {
        let v = parse(&c.read_line());
        assert_eq!(v["id"], json!(id));
        assert!(
            v["result"]
                .as_array()
                .unwrap()
                .contains(&json!("bdev_raid_create"))
        );
    }
}
