//! Growing lvols under raids and NVMe-oF namespaces, as SPDK propagates it: lvol → bdev →
//! namespace → (fabric) → host's nvme bdev → raid1 → the raid's own namespace → its host.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::{Client, free_port, sparse, start, wait_for};

const HOST: &str = "nqn.2014-08.org.nvmexpress:uuid:7f2c7d6a-8d3b-4a51-9f0e-0b7d4c1e2a33";
const MIB: u64 = 2048; // 512-byte blocks per MiB

fn num_blocks(c: &mut Client, name: &str) -> u64 {
    c.ok("bdev_get_bdevs", json!({"name": name}))[0]["num_blocks"]
        .as_u64()
        .unwrap()
}

fn raid(c: &mut Client, name: &str) -> Value {
    c.ok("bdev_raid_get_bdevs", json!({"category": "all"}))
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == json!(name))
        .cloned()
        .unwrap()
}

fn data_sizes(r: &Value) -> Vec<u64> {
    r["base_bdevs_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["data_size"].as_u64().unwrap())
        .collect()
}

/// An lvstore `lvs` on a fresh sparse file.
fn lvstore(c: &mut Client, dir: &std::path::Path, lvs: &str) {
    let disk = sparse(dir, &format!("{lvs}.img"), 512 << 20);
    c.ok(
        "bdev_aio_create",
        json!({"name": format!("aio-{lvs}"), "filename": disk.to_str().unwrap()}),
    );
    c.ok(
        "bdev_lvol_create_lvstore",
        json!({"bdev_name": format!("aio-{lvs}"), "lvs_name": lvs}),
    );
}

fn lvol(c: &mut Client, lvs: &str, name: &str, mib: u64) {
    c.ok(
        "bdev_lvol_create",
        json!({"lvs_name": lvs, "lvol_name": name, "size_in_mib": mib, "thin_provision": true}),
    );
}

fn resize(c: &mut Client, alias: &str, mib: u64) {
    assert_eq!(
        c.ok(
            "bdev_lvol_resize",
            json!({"name": alias, "size_in_mib": mib})
        ),
        json!(true)
    );
}

/// Exports `bdev` as `nqn` on 127.0.0.1:`port` to [`HOST`].
fn export(c: &mut Client, nqn: &str, bdev: &str, port: u16) {
    let _ = c.request("nvmf_create_transport", Some(json!({"trtype": "TCP"})));
    c.ok(
        "nvmf_create_subsystem",
        json!({"nqn": nqn, "allow_any_host": false}),
    );
    c.ok(
        "nvmf_subsystem_add_ns",
        json!({"nqn": nqn, "namespace": {"bdev_name": bdev}}),
    );
    c.ok(
        "nvmf_subsystem_add_listener",
        json!({"nqn": nqn, "listen_address": {"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": port.to_string()}}),
    );
    c.ok("nvmf_subsystem_add_host", json!({"nqn": nqn, "host": HOST}));
}

fn attach(c: &mut Client, name: &str, nqn: &str, port: u16) {
    c.ok(
        "bdev_nvme_attach_controller",
        json!({"name": name, "trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1",
               "trsvcid": port.to_string(), "subnqn": nqn, "hostnqn": HOST}),
    );
}

fn eventually(c: &mut Client, name: &str, blocks: u64) -> bool {
    wait_for(Duration::from_secs(10), || {
        (num_blocks(c, name) == blocks).then_some(())
    })
    .is_some()
}

#[test]
fn a_local_raid1_over_lvols_grows_once_both_lvols_grew() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(dir.path(), "a");
    let mut c = Client::connect(sim.socket());
    lvstore(&mut c, dir.path(), "lvs0");
    lvol(&mut c, "lvs0", "m0", 64);
    lvol(&mut c, "lvs0", "m1", 64);
    c.ok(
        "bdev_raid_create",
        json!({"name": "r0", "raid_level": "raid1", "base_bdevs": ["lvs0/m0", "lvs0/m1"]}),
    );
    assert_eq!(num_blocks(&mut c, "r0"), 64 * MIB);

    // One member grows: the raid keeps the smaller member's size.
    resize(&mut c, "lvs0/m0", 128);
    assert_eq!(num_blocks(&mut c, "lvs0/m0"), 128 * MIB);
    assert_eq!(num_blocks(&mut c, "r0"), 64 * MIB);
    assert_eq!(data_sizes(&raid(&mut c, "r0")), [64 * MIB, 64 * MIB]);

    // The other one too: the raid grows, in both views.
    resize(&mut c, "lvs0/m1", 128);
    assert_eq!(num_blocks(&mut c, "r0"), 128 * MIB);
    let r = raid(&mut c, "r0");
    assert_eq!(data_sizes(&r), [128 * MIB, 128 * MIB]);
    let driver = &c.ok("bdev_get_bdevs", json!({"name": "r0"}))[0]["driver_specific"]["raid"];
    assert_eq!(data_sizes(driver), [128 * MIB, 128 * MIB]);

    // A member in use cannot shrink: the blob does, the bdev (and the raid) do not.
    assert_eq!(
        c.err(
            "bdev_lvol_resize",
            json!({"name": "lvs0/m1", "size_in_mib": 32})
        ),
        (-32602, "Device or resource busy".into())
    );
    assert_eq!(num_blocks(&mut c, "lvs0/m1"), 128 * MIB);
    assert_eq!(num_blocks(&mut c, "r0"), 128 * MIB);
    // Growing it back to its bdev's size is fine again.
    resize(&mut c, "lvs0/m1", 128);
}

#[test]
fn a_superblock_raid1_records_its_new_size() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(dir.path(), "a");
    let mut c = Client::connect(sim.socket());
    lvstore(&mut c, dir.path(), "lvs0");
    lvol(&mut c, "lvs0", "m0", 64);
    lvol(&mut c, "lvs0", "m1", 64);
    c.ok(
        "bdev_raid_create",
        json!({"name": "r0", "raid_level": "raid1", "superblock": true,
               "base_bdevs": ["lvs0/m0", "lvs0/m1"]}),
    );
    // 4 MiB clusters: 8192 blocks reserved at the start of each member.
    assert_eq!(num_blocks(&mut c, "r0"), 64 * MIB - 8192);
    resize(&mut c, "lvs0/m0", 128);
    resize(&mut c, "lvs0/m1", 128);
    assert_eq!(num_blocks(&mut c, "r0"), 128 * MIB - 8192);
    // Deleted and re-assembled from the superblock: the new size is kept.
    c.ok("bdev_raid_delete", json!({"name": "r0"}));
    c.ok("bdev_aio_delete", json!({"name": "aio-lvs0"}));
    let disk = dir.path().join("lvs0.img");
    c.ok(
        "bdev_aio_create",
        json!({"name": "aio-lvs0", "filename": disk.to_str().unwrap()}),
    );
    c.ok("bdev_wait_for_examine", Value::Null);
    assert_eq!(num_blocks(&mut c, "r0"), 128 * MIB - 8192);
    assert_eq!(
        data_sizes(&raid(&mut c, "r0")),
        [128 * MIB - 8192, 128 * MIB - 8192]
    );
}

/// Node A exports a replica; node B mirrors its local lvol with A's over NVMe-oF and exports
/// the raid as a frontend, to which node C is connected.
#[test]
fn growing_both_replicas_grows_the_remote_nvme_bdev_the_raid_and_the_frontend() {
    let dir = tempfile::tempdir().unwrap();
    let (sim_a, sim_b, sim_c) = (
        start(dir.path(), "a"),
        start(dir.path(), "b"),
        start(dir.path(), "c"),
    );
    let mut a = Client::connect(sim_a.socket());
    let mut b = Client::connect(sim_b.socket());
    let mut c = Client::connect(sim_c.socket());
    let (replica_port, frontend_port) = (free_port(), free_port());
    let replica_nqn = "nqn.2026-11.io.v2engine:vol1-r-0000000a";
    let frontend_nqn = "nqn.2026-11.io.v2engine:vol1";

    lvstore(&mut a, dir.path(), "lvsA");
    lvol(&mut a, "lvsA", "remote", 64);
    export(&mut a, replica_nqn, "lvsA/remote", replica_port);

    lvstore(&mut b, dir.path(), "lvsB");
    lvol(&mut b, "lvsB", "local", 64);
    attach(&mut b, "rA", replica_nqn, replica_port);
    assert_eq!(num_blocks(&mut b, "rAn1"), 64 * MIB);
    b.ok(
        "bdev_raid_create",
        json!({"name": "vol1-raid", "raid_level": "raid1", "base_bdevs": ["lvsB/local", "rAn1"]}),
    );
    export(&mut b, frontend_nqn, "vol1-raid", frontend_port);
    attach(&mut c, "front", frontend_nqn, frontend_port);
    assert_eq!(num_blocks(&mut c, "frontn1"), 64 * MIB);

    // The local member grows first: the raid waits for the remote one.
    resize(&mut b, "lvsB/local", 128);
    assert_eq!(num_blocks(&mut b, "vol1-raid"), 64 * MIB);

    // The remote replica grows on node A: the namespace change reaches node B's nvme
    // bdev, the raid grows, and the frontend's host sees the new size.
    let t = std::time::Instant::now();
    resize(&mut a, "lvsA/remote", 128);
    assert!(
        eventually(&mut b, "rAn1", 128 * MIB),
        "node B's nvme bdev follows the remote lvol"
    );
    assert!(
        eventually(&mut b, "vol1-raid", 128 * MIB),
        "the raid grows once both members did"
    );
    assert_eq!(
        data_sizes(&raid(&mut b, "vol1-raid")),
        [128 * MIB, 128 * MIB]
    );
    assert!(
        eventually(&mut c, "frontn1", 128 * MIB),
        "the frontend's host sees the bigger namespace"
    );
    eprintln!("remote grow → raid and frontend host: {:?}", t.elapsed());

    // A remote member cannot shrink under the raid: node A refuses to shrink the bdev
    // under its namespace, nothing travels.
    assert_eq!(
        a.err(
            "bdev_lvol_resize",
            json!({"name": "lvsA/remote", "size_in_mib": 32})
        )
        .0,
        -32602
    );
    assert_eq!(num_blocks(&mut a, "lvsA/remote"), 128 * MIB);
    assert_eq!(num_blocks(&mut b, "rAn1"), 128 * MIB);
}

#[test]
fn a_host_that_reconnects_learns_the_size_it_missed() {
    let dir = tempfile::tempdir().unwrap();
    let (sim_a, sim_b) = (start(dir.path(), "a"), start(dir.path(), "b"));
    let mut a = Client::connect(sim_a.socket());
    let mut b = Client::connect(sim_b.socket());
    let port = free_port();
    let nqn = "nqn.2026-11.io.v2engine:vol2-r-0000000b";
    lvstore(&mut a, dir.path(), "lvsA");
    lvol(&mut a, "lvsA", "r", 64);
    export(&mut a, nqn, "lvsA/r", port);
    b.ok(
        "bdev_nvme_attach_controller",
        json!({"name": "rA", "trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1",
               "trsvcid": port.to_string(), "subnqn": nqn, "hostnqn": HOST,
               "reconnect_delay_sec": 1, "ctrlr_loss_timeout_sec": 30}),
    );
    // The listener goes away (the host loses its path), the lvol grows meanwhile, the
    // listener comes back: the reconnected controller has the new size.
    let listen = json!({"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": port.to_string()});
    a.ok(
        "nvmf_subsystem_remove_listener",
        json!({"nqn": nqn, "listen_address": listen}),
    );
    let down = wait_for(Duration::from_secs(10), || {
        let st = b.ok("bdev_nvme_get_controllers", json!({"name": "rA"}))[0]["ctrlrs"][0]["state"]
            .clone();
        (st != json!("enabled")).then_some(())
    });
    assert!(down.is_some(), "the host notices the lost path");
    resize(&mut a, "lvsA/r", 96);
    assert_eq!(
        num_blocks(&mut b, "rAn1"),
        64 * MIB,
        "nothing reached the host"
    );
    a.ok(
        "nvmf_subsystem_add_listener",
        json!({"nqn": nqn, "listen_address": listen}),
    );
    assert!(
        eventually(&mut b, "rAn1", 96 * MIB),
        "the reconnected controller reads the namespace again"
    );
}
