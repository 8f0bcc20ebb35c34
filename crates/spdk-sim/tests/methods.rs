//! Strict decoding per module, and lvol / raid semantics beyond the recorded session.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::{Client, sparse, start, wait_for};

fn setup(c: &mut Client, disk: &str) {
    c.ok("bdev_aio_create", json!({"name": "aio0", "filename": disk}));
    c.ok(
        "bdev_lvol_create_lvstore",
        json!({"bdev_name": "aio0", "lvs_name": "lvs0"}),
    );
    for name in ["m0", "m1", "m2"] {
        c.ok("bdev_lvol_create", json!({"lvs_name": "lvs0", "lvol_name": name, "size_in_mib": 32, "thin_provision": true}));
    }
}

#[test]
fn decode_failures_carry_each_modules_code() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(dir.path(), "a");
    let mut c = Client::connect(sim.socket());
    let bdev = (-32603, "spdk_json_decode_object failed".to_owned());
    let raid = (-32700, "spdk_json_decode_object failed".to_owned());
    let nvmf = (-32602, "Invalid parameters".to_owned());
    assert_eq!(
        c.err(
            "bdev_aio_create",
            json!({"name": "a", "filename": "/x", "nowait": true})
        ),
        bdev
    );
    assert_eq!(c.err("bdev_aio_create", Value::Null), bdev);
    assert_eq!(
        c.err(
            "bdev_lvol_create",
            json!({"lvs_name": "l", "lvol_name": "t", "size_in_mib": 8, "thin_provision": "yes"})
        ),
        bdev
    );
    assert_eq!(
        c.err(
            "bdev_lvol_create",
            json!({"lvs_name": "l", "lvol_name": "t", "size_in_mib": 8.5})
        ),
        bdev
    );
    assert_eq!(c.err("bdev_get_bdevs", json!({"name": null})), bdev);
    assert_eq!(
        c.err(
            "bdev_nvme_attach_controller",
            json!({"name": "x", "trtype": "tcp", "traddr": "127.0.0.1", "bogus": 1})
        ),
        bdev
    );
    assert_eq!(
        c.err(
            "bdev_raid_create",
            json!({"name": "r", "raid_level": "raid1", "base_bdevs": ["a", "b"], "bogus": 1})
        ),
        raid
    );
    assert_eq!(c.err("bdev_raid_get_bdevs", Value::Null), raid);
    assert_eq!(c.err("bdev_raid_delete", json!({"nme": "r"})), raid);
    assert_eq!(
        c.err("bdev_raid_get_bdevs", json!({"category": "broken"})),
        (-22, "Invalid argument".into())
    );
    assert_eq!(
        c.err(
            "nvmf_create_subsystem",
            json!({"nqn": "nqn.2016-06.io.spdk:x", "bogus": 1})
        ),
        nvmf
    );
    assert_eq!(
        c.err(
            "nvmf_create_transport",
            json!({"trtype": "TCP", "max_queue_depth": -1})
        ),
        nvmf
    );
    assert_eq!(
        c.err(
            "nvmf_subsystem_add_ns",
            json!({"nqn": "nqn.2016-06.io.spdk:x", "namespace": {"bdev_name": "b", "bogus": 1}})
        ),
        nvmf
    );
    assert_eq!(
        c.err("spdk_get_version", json!({})),
        (
            -32602,
            "spdk_get_version method requires no parameters".into()
        )
    );
    assert_eq!(
        c.err("spdk_get_version", json!([])),
        (
            -32602,
            "spdk_get_version method requires no parameters".into()
        )
    );
    assert_eq!(
        c.err("bdev_wait_for_examine", json!({})),
        (
            -32602,
            "bdev_wait_for_examine requires no parameters".into()
        )
    );
    assert_eq!(
        c.ok("framework_wait_init", json!({})),
        json!(true),
        "SPDK's handler ignores params"
    );
    assert_eq!(
        c.err("no_such_method", json!({})),
        (-32601, "Method not found".into())
    );
    assert_eq!(
        c.err("save_config", Value::Null),
        (-32601, "Method not found".into())
    );
}

#[test]
fn version_string_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = spdk_sim::Config::with_socket(dir.path().join("v.sock"));
    cfg.version =
        spdk_sim::version::SpdkVersion::parse("SPDK v25.01.1-pre git sha1 0123abcd").unwrap();
    let sim = spdk_sim::Sim::spawn(cfg).unwrap();
    let mut c = Client::connect(sim.socket());
    assert_eq!(
        c.ok("spdk_get_version", Value::Null),
        json!({"version": "SPDK v25.01.1-pre git sha1 0123abcd", "fields": {"major": 25, "minor": 1, "patch": 1, "suffix": "-pre", "commit": "0123abcd"}})
    );
}

#[test]
fn a_configuring_raid_goes_online_when_its_member_appears() {
    let dir = tempfile::tempdir().unwrap();
    let disk = sparse(dir.path(), "d.img", 512 << 20);
    let sim = start(dir.path(), "a");
    let mut c = Client::connect(sim.socket());
    setup(&mut c, disk.to_str().unwrap());
    c.ok(
        "bdev_raid_create",
        json!({"name": "r", "raid_level": "raid1", "base_bdevs": "lvs0/m0 lvs0/later"}),
    );
    let r = &c.ok("bdev_raid_get_bdevs", json!({"category": "configuring"}))[0];
    assert_eq!(r["uuid"], json!("00000000-0000-0000-0000-000000000000"));
    assert_eq!(
        c.err("bdev_get_bdevs", json!({"name": "r"})),
        (-19, "No such device".into()),
        "not a bdev yet"
    );
    c.ok("bdev_lvol_create", json!({"lvs_name": "lvs0", "lvol_name": "later", "size_in_mib": 32, "thin_provision": true}));
    let r = &c.ok("bdev_raid_get_bdevs", json!({"category": "online"}))[0];
    assert_eq!(r["num_base_bdevs_discovered"], json!(2));
    assert_eq!(
        c.ok("bdev_get_bdevs", json!({"name": "r"}))[0]["num_blocks"],
        json!(32 * 2048)
    );
    // Waiting for a bdev with a timeout returns as soon as it exists.
    assert_eq!(
        c.ok("bdev_get_bdevs", json!({"name": "r", "timeout": 5000}))[0]["name"],
        json!("r")
    );
    assert_eq!(
        c.err("bdev_get_bdevs", json!({"name": "nope", "timeout": 50})),
        (-110, "Connection timed out".into())
    );
}

#[test]
fn rebuild_progress_advances_and_completes() {
    let dir = tempfile::tempdir().unwrap();
    let disk = sparse(dir.path(), "d.img", 512 << 20);
    let sim = start(dir.path(), "a");
    let mut c = Client::connect(sim.socket());
    setup(&mut c, disk.to_str().unwrap());
    c.ok(
        "bdev_raid_create",
        json!({"name": "r", "raid_level": "1", "base_bdevs": ["lvs0/m0", "lvs0/m1"]}),
    );
    c.ok("bdev_raid_remove_base_bdev", json!({"name": "lvs0/m1"}));
    assert_eq!(
        c.err(
            "bdev_raid_add_base_bdev",
            json!({"raid_bdev": "r", "base_bdev": "lvs0/none"})
        ),
        (
            -19,
            "Failed to add base bdev lvs0/none to RAID bdev r: No such device".into()
        )
    );
    c.ok(
        "bdev_raid_add_base_bdev",
        json!({"raid_bdev": "r", "base_bdev": "lvs0/m2"}),
    );
    let first = c.ok("bdev_raid_get_bdevs", json!({"category": "online"}))[0]["process"].clone();
    assert_eq!(first["type"], json!("rebuild"));
    assert_eq!(first["target"], json!("lvs0/m2"));
    let mut last_percent = first["progress"]["percent"].as_u64().unwrap();
    let done = wait_for(Duration::from_secs(10), || {
        let r = c.ok("bdev_raid_get_bdevs", json!({"category": "online"}))[0].clone();
        match r.get("process") {
            Some(p) => {
                let pct = p["progress"]["percent"].as_u64().unwrap();
                assert!(
                    pct >= last_percent && pct < 100,
                    "progress only moves forward: {pct}"
                );
                last_percent = pct;
                None
            }
            None => Some(r),
        }
    })
    .expect("the rebuild completes");
    assert_eq!(done["num_base_bdevs_discovered"], json!(2));
    assert_eq!(done["base_bdevs_list"][1]["name"], json!("lvs0/m2"));
}

#[test]
fn deleting_an_lvstore_under_a_raid_is_not_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (d0, d1) = (
        sparse(dir.path(), "d0.img", 256 << 20),
        sparse(dir.path(), "d1.img", 256 << 20),
    );
    let sim = start(dir.path(), "a");
    let mut c = Client::connect(sim.socket());
    setup(&mut c, d0.to_str().unwrap());
    c.ok(
        "bdev_aio_create",
        json!({"name": "aio1", "filename": d1.to_str().unwrap()}),
    );
    c.ok(
        "bdev_lvol_create_lvstore",
        json!({"bdev_name": "aio1", "lvs_name": "lvs1"}),
    );
    c.ok(
        "bdev_lvol_create",
        json!({"lvs_name": "lvs1", "lvol_name": "x", "size_in_mib": 32}),
    );
    c.ok(
        "bdev_raid_create",
        json!({"name": "r", "raid_level": "raid1", "base_bdevs": ["lvs0/m0", "lvs1/x"]}),
    );
    assert_eq!(
        c.ok("bdev_lvol_delete_lvstore", json!({"lvs_name": "lvs1"})),
        json!(true)
    );
    let r = &c.ok("bdev_raid_get_bdevs", json!({"category": "all"}))[0];
    assert_eq!(
        (r["state"].clone(), r["num_base_bdevs_discovered"].clone()),
        (json!("online"), json!(1))
    );
    // Deleting the last member lvol deletes the raid.
    c.ok("bdev_lvol_delete", json!({"name": "lvs0/m0"}));
    assert_eq!(
        c.ok("bdev_raid_get_bdevs", json!({"category": "all"})),
        json!([])
    );
}

#[test]
fn raid_create_errors() {
    let dir = tempfile::tempdir().unwrap();
    let disk = sparse(dir.path(), "d.img", 512 << 20);
    let sim = start(dir.path(), "a");
    let mut c = Client::connect(sim.socket());
    setup(&mut c, disk.to_str().unwrap());
    let create = |name: &str, base: Value, extra: Value| {
        let mut p = json!({"name": name, "raid_level": "raid1", "base_bdevs": base});
        if let (Value::Object(p), Value::Object(e)) = (&mut p, extra) {
            p.extend(e);
        }
        p
    };
    assert_eq!(
        c.err(
            "bdev_raid_create",
            create(
                "r",
                json!(["lvs0/m0", "lvs0/m1"]),
                json!({"strip_size_kb": 64})
            )
        ),
        (-22, "Failed to create RAID bdev r: Invalid argument".into())
    );
    assert_eq!(
        c.err(
            "bdev_raid_create",
            create("r", json!(["lvs0/m0"]), json!({}))
        ),
        (-22, "Failed to create RAID bdev r: Invalid argument".into()),
        "upstream raid1 needs two members"
    );
    assert_eq!(
        c.err(
            "bdev_raid_create",
            create("aio0", json!(["lvs0/m0", "lvs0/m1"]), json!({}))
        ),
        (-17, "Failed to create RAID bdev aio0: File exists".into())
    );
    assert_eq!(
        c.err(
            "bdev_raid_create",
            create("r", json!(["aio0", "lvs0/m1"]), json!({}))
        ),
        (
            -1,
            "Failed to create RAID bdev r: Operation not permitted".into()
        ),
        "aio0 is claimed by its lvstore"
    );
    c.ok(
        "bdev_raid_create",
        create("r", json!(["lvs0/m0", "lvs0/m1"]), json!({})),
    );
    assert_eq!(
        c.err(
            "bdev_nvme_set_options",
            json!({"ctrlr_loss_timeout_sec": 0, "reconnect_delay_sec": 3})
        ),
        (-22, "Invalid argument".into())
    );
    // A raid bdev can be exported, which claims it.
    c.ok("nvmf_create_transport", json!({"trtype": "tcp"}));
    c.ok(
        "nvmf_create_subsystem",
        json!({"nqn": "nqn.2026-11.io.v2engine:vol1", "allow_any_host": true}),
    );
    c.ok(
        "nvmf_subsystem_add_ns",
        json!({"nqn": "nqn.2026-11.io.v2engine:vol1", "namespace": {"bdev_name": "r"}}),
    );
    assert_eq!(
        c.ok("bdev_get_bdevs", json!({"name": "r"}))[0]["claim_type"],
        json!("exclusive_write")
    );
    c.ok("bdev_raid_delete", json!({"name": "r"}));
    let sub = &c.ok(
        "nvmf_get_subsystems",
        json!({"nqn": "nqn.2026-11.io.v2engine:vol1"}),
    )[0];
    assert_eq!(
        sub["namespaces"],
        json!([]),
        "the namespace goes with its bdev"
    );
    assert_eq!(
        c.err(
            "nvmf_get_subsystems",
            json!({"nqn": "nqn.2026-11.io.v2engine:none"})
        ),
        (-19, "No such device".into())
    );
}
