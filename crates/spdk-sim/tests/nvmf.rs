//! NVMe-oF between two simulators on 127.0.0.1: attach, failures, path loss, raid degradation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::{Client, free_port, sparse, start, wait_for};

const NQN: &str = "nqn.2026-11.io.v2engine:vol1-r-0a1b2c3d";
const HOST_B: &str = "nqn.2014-08.org.nvmexpress:uuid:7f2c7d6a-8d3b-4a51-9f0e-0b7d4c1e2a33";

/// Target side: an lvol exported on 127.0.0.1:`port`; returns the lvol's UUID.
fn export(c: &mut Client, disk: &str, port: u16, allow_any_host: bool) -> String {
    c.ok("bdev_aio_create", json!({"name": "aio0", "filename": disk}));
    c.ok(
        "bdev_lvol_create_lvstore",
        json!({"bdev_name": "aio0", "lvs_name": "lvsA"}),
    );
    let uuid = c.ok(
        "bdev_lvol_create",
        json!({"lvs_name": "lvsA", "lvol_name": "r0", "size_in_mib": 64, "thin_provision": true}),
    );
    c.ok("nvmf_create_transport", json!({"trtype": "TCP"}));
    c.ok(
        "nvmf_create_subsystem",
        json!({"nqn": NQN, "serial_number": "V2E0001", "allow_any_host": allow_any_host}),
    );
    assert_eq!(
        c.ok(
            "nvmf_subsystem_add_ns",
            json!({"nqn": NQN, "namespace": {"bdev_name": "lvsA/r0"}})
        ),
        json!(1)
    );
    let listen = json!({"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": port.to_string()});
    c.ok(
        "nvmf_subsystem_add_listener",
        json!({"nqn": NQN, "listen_address": listen}),
    );
    uuid.as_str().unwrap().to_owned()
}

fn attach_params(port: u16, extra: Value) -> Value {
    let mut p = json!({"name": "rA", "trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": port.to_string(), "subnqn": NQN, "hostnqn": HOST_B});
    if let (Value::Object(p), Value::Object(extra)) = (&mut p, extra) {
        p.extend(extra);
    }
    p
}

/// Host side: a local lvol and a raid1 over it and the remote bdev.
fn local_mirror(c: &mut Client, disk: &str) {
    c.ok("bdev_aio_create", json!({"name": "aioB", "filename": disk}));
    c.ok(
        "bdev_lvol_create_lvstore",
        json!({"bdev_name": "aioB", "lvs_name": "lvsB"}),
    );
    c.ok("bdev_lvol_create", json!({"lvs_name": "lvsB", "lvol_name": "local", "size_in_mib": 64, "thin_provision": true}));
    c.ok(
        "bdev_raid_create",
        json!({"name": "mirror0", "raid_level": "raid1", "base_bdevs": ["lvsB/local", "rAn1"]}),
    );
}

fn raid(c: &mut Client) -> Value {
    c.ok("bdev_raid_get_bdevs", json!({"category": "all"}))[0].clone()
}

#[test]
fn attach_a_remote_namespace_and_detach_it() {
    let dir = tempfile::tempdir().unwrap();
    let disk_a = sparse(dir.path(), "a.img", 256 << 20);
    let (sim_a, sim_b) = (start(dir.path(), "a"), start(dir.path(), "b"));
    let (mut a, mut b) = (
        Client::connect(sim_a.socket()),
        Client::connect(sim_b.socket()),
    );
    let port = free_port();
    let lvol_uuid = export(&mut a, disk_a.to_str().unwrap(), port, false);
    a.ok(
        "nvmf_subsystem_add_host",
        json!({"nqn": NQN, "host": HOST_B}),
    );

    assert_eq!(
        b.ok(
            "bdev_nvme_attach_controller",
            attach_params(port, json!({}))
        ),
        json!(["rAn1"])
    );
    let bdev = &b.ok("bdev_get_bdevs", json!({"name": "rAn1"}))[0];
    assert_eq!(bdev["num_blocks"], json!(64 * 2048));
    assert_eq!(bdev["uuid"], json!(lvol_uuid));
    assert_eq!(bdev["product_name"], json!("NVMe disk"));
    assert_eq!(
        bdev["driver_specific"]["nvme"][0]["ctrlr_data"]["serial_number"],
        json!("V2E0001")
    );
    let ctrlrs = b.ok("bdev_nvme_get_controllers", json!({"name": "rA"}));
    assert_eq!(ctrlrs[0]["ctrlrs"][0]["state"], json!("enabled"));
    assert_eq!(ctrlrs[0]["ctrlrs"][0]["host"]["nqn"], json!(HOST_B));
    let seen = a.ok("nvmf_subsystem_get_controllers", json!({"nqn": NQN}));
    assert_eq!(seen[0]["hostnqn"], json!(HOST_B));

    assert_eq!(
        b.err(
            "bdev_nvme_attach_controller",
            attach_params(port, json!({}))
        ),
        (
            -114,
            "A controller named rA already exists with the specified network path".into()
        )
    );
    // The namespace list follows the target: a second namespace shows up on the host.
    a.ok(
        "bdev_lvol_create",
        json!({"lvs_name": "lvsA", "lvol_name": "r1", "size_in_mib": 8, "thin_provision": true}),
    );
    assert_eq!(
        a.ok(
            "nvmf_subsystem_add_ns",
            json!({"nqn": NQN, "namespace": {"bdev_name": "lvsA/r1"}})
        ),
        json!(2)
    );
    let n2 = wait_for(Duration::from_secs(10), || {
        b.ok("bdev_get_bdevs", Value::Null)
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == json!("rAn2"))
            .cloned()
    });
    assert_eq!(n2.expect("rAn2 appears")["num_blocks"], json!(8 * 2048));
    // A resize on the target is seen by the host.
    a.ok(
        "bdev_lvol_resize",
        json!({"name": "lvsA/r0", "size_in_mib": 128}),
    );
    let grown = wait_for(Duration::from_secs(10), || {
        let n = b.ok("bdev_get_bdevs", json!({"name": "rAn1"}))[0]["num_blocks"].clone();
        (n == json!(128 * 2048)).then_some(n)
    });
    assert!(grown.is_some(), "rAn1 grows with the remote lvol");

    assert_eq!(
        b.ok("bdev_nvme_detach_controller", json!({"name": "rA"})),
        json!(true)
    );
    assert_eq!(
        b.err("bdev_get_bdevs", json!({"name": "rAn1"})),
        (-19, "No such device".into())
    );
    assert_eq!(
        b.err("bdev_nvme_detach_controller", json!({"name": "rA"})),
        (-19, "No such device".into())
    );
    let gone = wait_for(Duration::from_secs(10), || {
        (a.ok("nvmf_subsystem_get_controllers", json!({"nqn": NQN})) == json!([])).then_some(())
    });
    assert!(gone.is_some(), "the target sees the host go");
}

#[test]
fn attach_fails_like_spdk_when_the_path_subsystem_or_host_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let disk_a = sparse(dir.path(), "a.img", 256 << 20);
    let (sim_a, sim_b) = (start(dir.path(), "a"), start(dir.path(), "b"));
    let (mut a, mut b) = (
        Client::connect(sim_a.socket()),
        Client::connect(sim_b.socket()),
    );
    let port = free_port();
    export(&mut a, disk_a.to_str().unwrap(), port, false);
    // As measured on real v24.09 (tests/differential.rs): nothing listening fails the probe
    // (-19); a listener that rejects the CONNECT fails with -5.
    let enodev = (-19, "No such device".to_owned());
    let eio = (-5, "Input/output error".to_owned());
    // Nothing listens there.
    assert_eq!(
        b.err(
            "bdev_nvme_attach_controller",
            attach_params(free_port(), json!({}))
        ),
        enodev
    );
    // No such subsystem.
    let mut p = attach_params(port, json!({}));
    p["subnqn"] = json!("nqn.2026-11.io.v2engine:nope");
    assert_eq!(b.err("bdev_nvme_attach_controller", p), eio);
    // Host not allowed (allow_any_host false, no add_host).
    assert_eq!(
        b.err(
            "bdev_nvme_attach_controller",
            attach_params(port, json!({}))
        ),
        eio
    );
    assert_eq!(b.ok("bdev_nvme_get_controllers", Value::Null), json!([]));
    // Inconsistent path-loss options.
    let bad = attach_params(
        port,
        json!({"ctrlr_loss_timeout_sec": 5, "reconnect_delay_sec": 0}),
    );
    assert_eq!(
        b.err("bdev_nvme_attach_controller", bad),
        (-22, "Invalid argument".into())
    );
    // Listener errors on the target are all -32602 "Invalid parameters".
    let invalid = (-32602, "Invalid parameters".to_owned());
    let dup = json!({"nqn": NQN, "listen_address": {"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": port.to_string()}});
    assert_eq!(a.err("nvmf_subsystem_add_listener", dup), invalid);
    let foreign = json!({"nqn": NQN, "listen_address": {"trtype": "tcp", "adrfam": "ipv4", "traddr": "192.0.2.99", "trsvcid": "4420"}});
    assert_eq!(a.err("nvmf_subsystem_add_listener", foreign), invalid);
}

#[test]
fn the_listener_is_a_real_tcp_socket_that_closes_with_the_subsystem() {
    let dir = tempfile::tempdir().unwrap();
    let disk_a = sparse(dir.path(), "a.img", 256 << 20);
    let sim_a = start(dir.path(), "a");
    let mut a = Client::connect(sim_a.socket());
    let port = free_port();
    export(&mut a, disk_a.to_str().unwrap(), port, true);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        "listening after add_listener"
    );
    a.ok("nvmf_delete_subsystem", json!({"nqn": NQN}));
    let closed = wait_for(Duration::from_secs(5), || {
        std::net::TcpStream::connect(("127.0.0.1", port))
            .is_err()
            .then_some(())
    });
    assert!(
        closed.is_some(),
        "port closed once no subsystem listens on it"
    );
    assert_eq!(
        a.err("nvmf_delete_subsystem", json!({"nqn": NQN})),
        (-32602, "Invalid parameters".into())
    );
    assert_eq!(
        a.ok("bdev_get_bdevs", json!({"name": "lvsA/r0"}))[0]["claimed"],
        json!(false)
    );
}

#[test]
fn raid1_degrades_when_the_remote_simulator_stops() {
    let dir = tempfile::tempdir().unwrap();
    let (disk_a, disk_b) = (
        sparse(dir.path(), "a.img", 256 << 20),
        sparse(dir.path(), "b.img", 256 << 20),
    );
    let (sim_a, sim_b) = (start(dir.path(), "a"), start(dir.path(), "b"));
    let (mut a, mut b) = (
        Client::connect(sim_a.socket()),
        Client::connect(sim_b.socket()),
    );
    let port = free_port();
    export(&mut a, disk_a.to_str().unwrap(), port, true);
    b.ok(
        "bdev_nvme_attach_controller",
        attach_params(port, json!({})),
    );
    local_mirror(&mut b, disk_b.to_str().unwrap());
    assert_eq!(raid(&mut b)["num_base_bdevs_discovered"], json!(2));

    drop(a);
    sim_a.stop().unwrap();

    // Default ctrlr_loss_timeout_sec (0): one failed reconnect and the controller is gone.
    let degraded = wait_for(Duration::from_secs(15), || {
        let r = raid(&mut b);
        (r["num_base_bdevs_discovered"] == json!(1)).then_some(r)
    })
    .expect("the raid loses the remote member");
    assert_eq!(degraded["state"], json!("online"));
    assert_eq!(degraded["num_base_bdevs_operational"], json!(1));
    assert_eq!(degraded["base_bdevs_list"][1]["name"], Value::Null);
    assert_eq!(
        degraded["base_bdevs_list"][1]["is_configured"],
        json!(false)
    );
    assert_eq!(
        b.err("bdev_get_bdevs", json!({"name": "rAn1"})),
        (-19, "No such device".into())
    );
    assert_eq!(b.ok("bdev_nvme_get_controllers", Value::Null), json!([]));
    assert_eq!(
        b.ok("bdev_get_bdevs", json!({"name": "mirror0"}))[0]["num_blocks"],
        json!(64 * 2048)
    );
}

#[test]
fn ctrlr_loss_timeout_keeps_the_bdev_until_it_expires() {
    let dir = tempfile::tempdir().unwrap();
    let (disk_a, disk_b) = (
        sparse(dir.path(), "a.img", 256 << 20),
        sparse(dir.path(), "b.img", 256 << 20),
    );
    let (sim_a, sim_b) = (start(dir.path(), "a"), start(dir.path(), "b"));
    let (mut a, mut b) = (
        Client::connect(sim_a.socket()),
        Client::connect(sim_b.socket()),
    );
    let port = free_port();
    export(&mut a, disk_a.to_str().unwrap(), port, true);
    let policy = json!({"ctrlr_loss_timeout_sec": 4, "reconnect_delay_sec": 1, "fast_io_fail_timeout_sec": 2});
    b.ok("bdev_nvme_attach_controller", attach_params(port, policy));
    local_mirror(&mut b, disk_b.to_str().unwrap());

    // Cut the path (the target drops its listener) and watch the controller try to reconnect.
    let listen = json!({"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": port.to_string()});
    a.ok(
        "nvmf_subsystem_remove_listener",
        json!({"nqn": NQN, "listen_address": listen}),
    );
    let state = wait_for(Duration::from_secs(10), || {
        let s = b.ok("bdev_nvme_get_controllers", json!({"name": "rA"}))[0]["ctrlrs"][0]["state"]
            .clone();
        (s != json!("enabled")).then_some(s)
    })
    .expect("the controller notices the loss");
    assert!(
        state == json!("resetting") || state == json!("reconnect_is_delayed"),
        "{state}"
    );
    assert_eq!(
        b.ok("bdev_get_bdevs", json!({"name": "rAn1"}))[0]["name"],
        json!("rAn1"),
        "kept while reconnecting"
    );

    // Give the path back before the timeout: reconnected, nothing lost.
    a.ok(
        "nvmf_subsystem_add_listener",
        json!({"nqn": NQN, "listen_address": listen}),
    );
    let back = wait_for(Duration::from_secs(10), || {
        let c = b.ok("bdev_nvme_get_controllers", json!({"name": "rA"}))[0]["ctrlrs"][0].clone();
        (c["state"] == json!("enabled")).then_some(c)
    })
    .expect("reconnects");
    assert_eq!(
        back["cntlid"],
        json!(2),
        "a new controller id after reconnecting"
    );
    assert_eq!(raid(&mut b)["num_base_bdevs_discovered"], json!(2));

    // Cut it for good: after ctrlr_loss_timeout_sec the controller and its bdev are deleted.
    drop(a);
    sim_a.stop().unwrap();
    let degraded = wait_for(Duration::from_secs(20), || {
        let r = raid(&mut b);
        (r["num_base_bdevs_discovered"] == json!(1)).then_some(r)
    });
    assert!(
        degraded.is_some(),
        "member removed once the controller is given up"
    );
    assert_eq!(b.ok("bdev_nvme_get_controllers", Value::Null), json!([]));
}

#[test]
fn deleting_the_subsystem_disconnects_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let disk_a = sparse(dir.path(), "a.img", 256 << 20);
    let (sim_a, sim_b) = (start(dir.path(), "a"), start(dir.path(), "b"));
    let (mut a, mut b) = (
        Client::connect(sim_a.socket()),
        Client::connect(sim_b.socket()),
    );
    let port = free_port();
    export(&mut a, disk_a.to_str().unwrap(), port, true);
    b.ok(
        "bdev_nvme_attach_controller",
        attach_params(port, json!({})),
    );
    a.ok("nvmf_delete_subsystem", json!({"nqn": NQN}));
    let gone = wait_for(Duration::from_secs(15), || {
        (b.ok("bdev_nvme_get_controllers", Value::Null) == json!([])).then_some(())
    });
    assert!(
        gone.is_some(),
        "the host's controller goes away with the subsystem"
    );
    assert_eq!(
        b.err("bdev_get_bdevs", json!({"name": "rAn1"})),
        (-19, "No such device".into())
    );
}
