//! The `spdk-sim` binary: spdk_tgt's flags, stale socket handling, SIGTERM, SIGKILL + restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::{Client, sparse, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_spdk-sim");

fn spawn(socket: &Path, extra: &[&str]) -> Child {
    let child = Command::new(BIN)
        .args([
            "-r",
            socket.to_str().unwrap(),
            "-m",
            "0x1",
            "-s",
            "1024",
            "--no-huge",
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn spdk-sim");
    let ready = wait_for(Duration::from_secs(10), || {
        std::os::unix::net::UnixStream::connect(socket).ok()
    });
    assert!(ready.is_some(), "spdk-sim accepts on {}", socket.display());
    child
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn refuses_what_spdk_tgt_refuses() {
    for (args, needle) in [
        (vec!["--bogus"], "unrecognized option '--bogus'"),
        (
            vec!["--no-huge"],
            "Disabling hugepages requires specifying how much memory will be allocated using -s parameter",
        ),
        (vec!["-m", "0xZ"], "invalid cpumask '0xZ'"),
        (vec!["-r"], "option '-r' requires an argument"),
    ] {
        let out = Command::new(BIN).args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?} must fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

#[test]
fn sigterm_stops_it_and_removes_the_socket_and_a_stale_socket_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("spdk.sock");
    // A socket file left behind by a dead process.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let mut child = spawn(&socket, &["--version-string", "SPDK v25.01"]);
    let mut c = Client::connect(&socket);
    assert_eq!(
        c.ok("spdk_get_version", Value::Null)["fields"]["major"],
        json!(25)
    );
    signal(&child, "-TERM");
    let status = child.wait().unwrap();
    assert!(status.success(), "clean exit on SIGTERM: {status}");
    assert!(!socket.exists(), "socket removed on exit");
}

#[test]
fn sigkill_and_restart_keeps_the_lvstore_on_the_device() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("spdk.sock");
    let disk = sparse(dir.path(), "disk.img", 256 << 20);
    let disk = disk.to_str().unwrap();
    let mut child = spawn(&socket, &[]);
    let lvol = {
        let mut c = Client::connect(&socket);
        c.ok("bdev_aio_create", json!({"name": "aio0", "filename": disk}));
        c.ok(
            "bdev_lvol_create_lvstore",
            json!({"bdev_name": "aio0", "lvs_name": "lvs0"}),
        );
        c.ok(
            "bdev_lvol_create",
            json!({"lvs_name": "lvs0", "lvol_name": "crash1", "size_in_mib": 8}),
        )
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let mut child = spawn(&socket, &[]);
    let mut c = Client::connect(&socket);
    assert_eq!(c.ok("bdev_get_bdevs", Value::Null), json!([]));
    c.ok("bdev_aio_create", json!({"name": "aio0", "filename": disk}));
    c.ok("bdev_wait_for_examine", Value::Null);
    assert_eq!(
        c.ok("bdev_get_bdevs", json!({"name": "lvs0/crash1"}))[0]["name"],
        lvol
    );
    signal(&child, "-INT");
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_json_configuration_is_applied_at_start_and_a_bad_one_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("spdk.sock");
    let good = dir.path().join("pools.json");
    let backing = dir.path().join("backing.img");
    std::fs::File::create(&backing)
        .unwrap()
        .set_len(16 << 20)
        .unwrap();
    std::fs::write(
        &good,
        json!({"subsystems": [
            {"subsystem": "iobuf", "config": [{"method": "iobuf_set_options",
                "params": {"small_pool_count": 1024, "large_pool_count": 256}}]},
            {"subsystem": "bdev", "config": [{"method": "bdev_set_options",
                "params": {"bdev_io_pool_size": 4095, "bdev_io_cache_size": 64}},
                {"method": "bdev_aio_create",
                    "params": {"name": "aio0", "filename": backing.to_str().unwrap()}}]},
            {"subsystem": "iscsi", "config": [{"method": "iscsi_set_options",
                "params": {"max_sessions": 24, "pdu_pool_size": 4096}}]}]})
        .to_string(),
    )
    .unwrap();
    let good_arg = good.to_str().unwrap();
    let mut child = spawn(
        &socket,
        &[
            "-c",
            good_arg,
            "--msg-mempool-size",
            "32767",
            "-u",
            "--disable-cpumask-locks",
        ],
    );
    let mut c = Client::connect(&socket);
    assert_eq!(
        c.ok("spdk_get_version", Value::Null)["version"],
        "SPDK v24.09"
    );
    signal(&child, "-TERM");
    assert!(child.wait().unwrap().success());

    let bad = dir.path().join("bad.json");
    for (text, needle) in [
        ("{\"subsystems\": [", "Parsing JSON configuration failed"),
        ("[]", "not enclosed in {}"),
        (
            r#"{"subsystems":[{"subsystem":"iobuf","config":[{"method":"iobuf_set_options","params":{"small_pool_count":1024,"bogus":1}}]}]}"#,
            "spdk_json_decode_object failed",
        ),
        (
            r#"{"subsystems":[{"subsystem":"iobuf","config":[{"method":"iobuf_set_options","params":{"small_pool_count":10}}]}]}"#,
            "Invalid argument",
        ),
        (
            r#"{"subsystems":[{"subsystem":"bdev","config":[{"method":"no_such_method"}]}]}"#,
            "Method 'no_such_method' was not found",
        ),
        (
            r#"{"subsystems":[{"subsystem":"bdev","config":[{"method":"bdev_aio_create","params":{"name":"a","filename":"/nonexistent/x"}}]}]}"#,
            "bdev_aio_create: error response: code -2",
        ),
    ] {
        std::fs::write(&bad, text).unwrap();
        let out = Command::new(BIN)
            .args(["-r", socket.to_str().unwrap(), "-c", bad.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{text} must fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{text}: {stderr}");
        assert!(!socket.exists(), "{text}: no socket for a refused start");
    }
    let out = Command::new(BIN)
        .args(["-c", dir.path().join("none.json").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("No such file or directory"));
}
