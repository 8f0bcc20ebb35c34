//! Lvstores live on the device: a restarted simulator gets them back from `bdev_aio_create`,
//! like spdk_tgt's examine, and a torn metadata write falls back to the previous record.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use spdk_sim::disk::meta::{self, HEADER_LEN, SLOT_SIZE};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use support::{Client, sparse, start};

fn lvstores(c: &mut Client) -> Value {
    c.ok("bdev_lvol_get_lvstores", Value::Null)
}

fn lvols(c: &mut Client) -> Value {
    c.ok("bdev_lvol_get_lvols", Value::Null)
}

#[test]
fn a_restart_brings_the_lvstore_and_its_lvols_back() {
    let dir = tempfile::tempdir().unwrap();
    let disk = sparse(dir.path(), "disk.img", 512 << 20);
    let disk = disk.to_str().unwrap();
    let (before_lvs, before_lvols, thick_bdev, clone_bdev) = {
        let sim = start(dir.path(), "a");
        let mut c = Client::connect(sim.socket());
        c.ok("bdev_aio_create", json!({"name": "aio0", "filename": disk}));
        c.ok(
            "bdev_lvol_create_lvstore",
            json!({"bdev_name": "aio0", "lvs_name": "lvs0"}),
        );
        c.ok(
            "bdev_lvol_create",
            json!({"lvs_name": "lvs0", "lvol_name": "thick", "size_in_mib": 40}),
        );
        c.ok("bdev_lvol_create", json!({"lvs_name": "lvs0", "lvol_name": "thin", "size_in_mib": 4000, "thin_provision": true}));
        c.ok(
            "bdev_lvol_resize",
            json!({"name": "lvs0/thin", "size_in_mib": 6000}),
        );
        c.ok(
            "bdev_lvol_snapshot",
            json!({"lvol_name": "lvs0/thick", "snapshot_name": "snap"}),
        );
        c.ok(
            "bdev_lvol_clone",
            json!({"snapshot_name": "lvs0/snap", "clone_name": "clone"}),
        );
        let out = (
            lvstores(&mut c),
            lvols(&mut c),
            c.ok("bdev_get_bdevs", json!({"name": "lvs0/thick"})),
            c.ok("bdev_get_bdevs", json!({"name": "lvs0/clone"})),
        );
        sim.stop().unwrap();
        out
    };
    assert_eq!(
        before_lvs[0]["free_clusters"],
        json!(before_lvs[0]["total_data_clusters"].as_u64().unwrap() - 10)
    );

    let sim = start(dir.path(), "a");
    let mut c = Client::connect(sim.socket());
    assert_eq!(
        c.ok("bdev_get_bdevs", Value::Null),
        json!([]),
        "no configuration survives a restart"
    );
    assert_eq!(lvstores(&mut c), json!([]));
    c.ok("bdev_aio_create", json!({"name": "aio0", "filename": disk}));
    assert_eq!(
        lvstores(&mut c),
        before_lvs,
        "visible right after bdev_aio_create"
    );
    assert_eq!(c.ok("bdev_wait_for_examine", Value::Null), json!(true));
    assert_eq!(lvols(&mut c), before_lvols);
    assert_eq!(
        c.ok("bdev_get_bdevs", json!({"name": "lvs0/thick"})),
        thick_bdev
    );
    assert_eq!(
        c.ok("bdev_get_bdevs", json!({"name": "lvs0/clone"})),
        clone_bdev
    );
    let thin = c.ok("bdev_get_bdevs", json!({"name": "lvs0/thin"}));
    assert_eq!(thin[0]["num_blocks"], json!(6000u64 * 2048));
    // The store is writable again and the snapshot rules still hold.
    assert_eq!(
        c.err("bdev_lvol_delete", json!({"name": "lvs0/snap"})),
        (-32603, "Operation not permitted".into())
    );
    c.ok(
        "bdev_lvol_create",
        json!({"lvs_name": "lvs0", "lvol_name": "after", "size_in_mib": 4}),
    );
}

#[test]
fn deleting_the_lvstore_is_permanent() {
    let dir = tempfile::tempdir().unwrap();
    let disk = sparse(dir.path(), "disk.img", 128 << 20);
    let disk = disk.to_str().unwrap();
    {
        let sim = start(dir.path(), "a");
        let mut c = Client::connect(sim.socket());
        c.ok("bdev_aio_create", json!({"name": "aio0", "filename": disk}));
        c.ok(
            "bdev_lvol_create_lvstore",
            json!({"bdev_name": "aio0", "lvs_name": "lvs0"}),
        );
        c.ok(
            "bdev_lvol_create",
            json!({"lvs_name": "lvs0", "lvol_name": "l", "size_in_mib": 8}),
        );
        c.ok("bdev_lvol_delete_lvstore", json!({"lvs_name": "lvs0"}));
        assert_eq!(
            c.err("bdev_get_bdevs", json!({"name": "lvs0/l"})),
            (-19, "No such device".into())
        );
        sim.stop().unwrap();
    }
    let sim = start(dir.path(), "a");
    let mut c = Client::connect(sim.socket());
    c.ok("bdev_aio_create", json!({"name": "aio0", "filename": disk}));
    assert_eq!(lvstores(&mut c), json!([]));
    let aio = c.ok("bdev_get_bdevs", json!({"name": "aio0"}));
    assert_eq!(aio[0]["claimed"], json!(false));
}

fn newest_slot(path: &Path) -> (u64, u64) {
    let mut f = std::fs::File::open(path).unwrap();
    let mut best = (0, 0);
    for slot in 0..2u64 {
        let mut buf = vec![0u8; usize::try_from(SLOT_SIZE).unwrap()];
        f.seek(SeekFrom::Start(slot * SLOT_SIZE)).unwrap();
        f.read_exact(&mut buf).unwrap();
        if let Ok(rec) = meta::decode(&buf)
            && rec.generation >= best.1
        {
            best = (slot, rec.generation);
        }
    }
    best
}

#[test]
fn a_torn_metadata_write_falls_back_to_the_previous_record() {
    let dir = tempfile::tempdir().unwrap();
    let disk_path = sparse(dir.path(), "disk.img", 128 << 20);
    let disk = disk_path.to_str().unwrap();
    {
        let sim = start(dir.path(), "a");
        let mut c = Client::connect(sim.socket());
        c.ok("bdev_aio_create", json!({"name": "aio0", "filename": disk}));
        c.ok(
            "bdev_lvol_create_lvstore",
            json!({"bdev_name": "aio0", "lvs_name": "lvs0"}),
        );
        c.ok(
            "bdev_lvol_create",
            json!({"lvs_name": "lvs0", "lvol_name": "first", "size_in_mib": 8}),
        );
        c.ok(
            "bdev_lvol_create",
            json!({"lvs_name": "lvs0", "lvol_name": "second", "size_in_mib": 8}),
        );
        sim.stop().unwrap();
    }
    // Simulate a crash in the middle of writing the newest record: damage its payload.
    let (slot, generation) = newest_slot(&disk_path);
    assert!(generation >= 3, "one record per metadata change");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&disk_path)
        .unwrap();
    f.seek(SeekFrom::Start(slot * SLOT_SIZE + HEADER_LEN as u64 + 5))
        .unwrap();
    f.write_all(b"garbage").unwrap();
    drop(f);

    let sim = start(dir.path(), "a");
    let mut c = Client::connect(sim.socket());
    c.ok("bdev_aio_create", json!({"name": "aio0", "filename": disk}));
    let names: Vec<String> = lvols(&mut c)
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        vec!["first".to_owned()],
        "the last complete record wins"
    );
}

#[test]
fn a_second_aio_bdev_on_the_same_device_is_accepted_and_loads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let disk = sparse(dir.path(), "disk.img", 128 << 20);
    let disk = disk.to_str().unwrap();
    let sim = start(dir.path(), "a");
    let mut c = Client::connect(sim.socket());
    c.ok("bdev_aio_create", json!({"name": "aio0", "filename": disk}));
    c.ok(
        "bdev_lvol_create_lvstore",
        json!({"bdev_name": "aio0", "lvs_name": "lvs0"}),
    );
    assert_eq!(
        c.ok("bdev_aio_create", json!({"name": "aioY", "filename": disk})),
        json!("aioY")
    );
    assert_eq!(lvstores(&mut c).as_array().unwrap().len(), 1);
    assert_eq!(
        c.ok("bdev_get_bdevs", json!({"name": "aioY"}))[0]["claimed"],
        json!(false)
    );
    // aio_delete of the base unloads the store; re-creating brings it back in-process too.
    c.ok("bdev_aio_delete", json!({"name": "aioY"}));
    c.ok("bdev_aio_delete", json!({"name": "aio0"}));
    assert_eq!(lvstores(&mut c), json!([]));
    c.ok("bdev_aio_create", json!({"name": "aio0", "filename": disk}));
    assert_eq!(lvstores(&mut c)[0]["name"], json!("lvs0"));
}

#[test]
fn lvstore_on_a_block_size_4096_file_uses_1_mib_clusters_like_spdk() {
    let dir = tempfile::tempdir().unwrap();
    let disk = sparse(dir.path(), "disk.img", 2 << 30);
    let sim = start(dir.path(), "a");
    let mut c = Client::connect(sim.socket());
    c.ok(
        "bdev_aio_create",
        json!({"name": "aiof", "filename": disk.to_str().unwrap(), "block_size": 4096}),
    );
    c.ok("bdev_lvol_create_lvstore", json!({"bdev_name": "aiof", "lvs_name": "lvs1", "cluster_sz": 1_048_576, "clear_method": "none"}));
    let l = &lvstores(&mut c)[0];
    assert_eq!(
        (l["total_data_clusters"].as_u64(), l["block_size"].as_u64()),
        (Some(2039), Some(4096))
    );
}
