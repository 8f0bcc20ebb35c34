//! Data survives (real SPDK lanes): a pattern written over the whole volume through its
//! frontend; a replica node cut; a second pattern written over part of the volume while it
//! is degraded; plan/apply replaces the replica and the raid1 rebuilds it; everything reads
//! back exactly as last written, through the frontend and from each replica on its own (the
//! replacement through its export, the attach node's local replica through a snapshot of
//! it); the volume grown: the old data intact, the new space readable and writable.
//!
//! spdk-sim moves no data, so this scenario needs a real build: run by `scripts/test.sh`'s
//! real lanes (`V2ENGINE_SPDK_DIR`); asked for on spdk-sim it fails, saying so.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::time::Duration;

use acceptance::datapath::rpc::{HostGrant, Rpc, TempExport};
use acceptance::datapath::{DataPath, Expected, Target, pattern};
use acceptance::lab::Lab;
use acceptance::lane::Lane;
use acceptance::tf::Tf;

/// The host NQN this test presents; the executor admits only its own hosts, so the test
/// grants itself access for each read or write (an apply resets the hosts it allows).
const HOST: &str = "nqn.2026-11.io.v2engine:host:acceptance-data";
const MIB: u64 = 1 << 20;
const APPLY: [&str; 4] = ["apply", "-auto-approve", "-input=false", "-no-color"];

/// The TCP listener of subsystem `nqn` on `node`.
fn target(lab: &Lab, node: &str, nqn: &str) -> Target {
    let subs = lab.spdk(node, &["nvmf_get_subsystems"]);
    let s = subs
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["nqn"] == nqn)
        .unwrap_or_else(|| panic!("{node} exports no {nqn}: {subs}"));
    let l = &s["listen_addresses"][0];
    Target::new(
        l["traddr"].as_str().unwrap(),
        l["trsvcid"].as_str().unwrap().parse().unwrap(),
        nqn,
    )
}

/// Allows this test's host on `nqn` of `node` until the grant is dropped.
fn grant(lab: &Lab, node: &str, nqn: &str) -> HostGrant {
    HostGrant::allow(&Rpc::new(&lab.spdk_socket(node)), nqn, HOST)
        .unwrap_or_else(|e| panic!("allow {HOST} on {nqn} of {node}: {e}"))
}

/// The pattern of seed 2 over the first `half` blocks and of seed 1 after them.
fn expected(blocks: u64, half: u64, bs: u64) -> Vec<u8> {
    let mut want = pattern(2, 0, half, bs);
    want.extend(pattern(1, half, blocks - half, bs));
    want
}

#[test]
#[ignore = "real SPDK lane: scripts/test.sh runs it with V2ENGINE_SPDK_DIR"]
fn data_written_through_the_frontend_survives_a_lost_replica_a_rebuild_and_a_grow() {
    let lane = Lane::from_env().unwrap();
    let Some(spdk_dd) = lane.tool("spdk_dd") else {
        panic!(
            "the data scenario needs a real SPDK lane (V2ENGINE_SPDK_DIR); spdk-sim moves no data"
        );
    };
    let spdk_dir = spdk_dd.parent().and_then(|b| b.parent()).unwrap();
    let io = DataPath::new(spdk_dir, HOST)
        .unwrap()
        .with_timeout(Duration::from_secs(120));

    let tmp = tempfile::tempdir().unwrap();
    let lab = Lab::up(&tmp.path().join("lab"), 3, &lane);
    let vars = lab.tfvars_arg();
    let tf = Tf::new(tmp.path(), "quickstart", &lab.terraformrc());
    tf.copy_example("quickstart");
    tf.init();
    let apply = |extra: &[&str]| {
        let mut a = APPLY.to_vec();
        a.push(&vars);
        a.extend_from_slice(extra);
        tf.ok(&a)
    };
    apply(&[]);
    // node-3 reboots into its hugepages: it will hold the replacement replica.
    lab.cmd(&["reboot", "node-3"]);
    lab.wait_for_lvstores("node-3", 2);
    apply(&[]);
    let v = tf.output("volume");
    assert_eq!(v["state"], "healthy", "{v}");
    let nqn = v["nqn"].as_str().unwrap().to_string();

    // Seed 1 over the whole volume, through the frontend on node-1.
    let front = target(&lab, "node-1", &nqn);
    let g = {
        let _g = grant(&lab, "node-1", &nqn);
        let g = io.geometry(&front).unwrap();
        assert_eq!(g.size, 32 * MIB, "{g:?}");
        io.write_pattern(&front, 0, g.size, 1).unwrap();
        io.read_verify(&front, 0, g.size, &Expected::Seed(1))
            .unwrap();
        g
    };
    let (bs, blocks) = (g.block_size, g.blocks());
    let half = blocks / 2;

    // node-2 (the other replica) is cut; seed 2 over the first half while degraded.
    lab.cmd(&["cut", "node-2"]);
    {
        let _g = grant(&lab, "node-1", &nqn);
        io.write_pattern(&front, 0, half * bs, 2).unwrap();
        io.read_verify(
            &front,
            0,
            g.size,
            &Expected::Bytes(expected(blocks, half, bs)),
        )
        .unwrap();
    }

    // The plan replaces node-2's replica with one on node-3; apply builds it and the raid1
    // rebuilds onto it.
    apply(&[]);
    let v = tf.refresh_until(&[&vars], "volume", "healthy", Duration::from_secs(120));
    let replicas: Vec<&str> = v["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["node"].as_str().unwrap())
        .collect();
    assert_eq!(replicas, ["node-1", "node-3"], "{v}");
    let want = Expected::Bytes(expected(blocks, half, bs));
    {
        let _g = grant(&lab, "node-1", &nqn);
        io.read_verify(&front, 0, g.size, &want).unwrap();
    }

    // Each replica on its own: node-3's through its export, node-1's (used by the raid
    // directly, not exported) through a snapshot of it, exported for the read.
    let subs = lab.spdk("node-3", &["nvmf_get_subsystems"]);
    let r3 = subs
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["nqn"].as_str().unwrap().to_string())
        .find(|n| n.starts_with(&format!("{nqn}-r-")))
        .unwrap_or_else(|| panic!("node-3 exports no replica of {nqn}: {subs}"));
    {
        let _g = grant(&lab, "node-3", &r3);
        io.read_verify(&target(&lab, "node-3", &r3), 0, g.size, &want)
            .unwrap();
    }
    let lvols = lab.spdk("node-1", &["bdev_lvol_get_lvols"]);
    let local = lvols.as_array().unwrap()[0]["alias"]
        .as_str()
        .unwrap()
        .to_string();
    let address = front.address.clone();
    let snap = TempExport::snapshot_of(
        &Rpc::new(&lab.spdk_socket("node-1")),
        &local,
        "acceptance-data-snap",
        "nqn.2026-11.io.v2engine:acceptance-data-snap",
        &address,
        front.port + 100,
        HOST,
    )
    .unwrap();
    let snap_target = Target::new(snap.address.clone(), snap.port, snap.nqn.clone());
    io.read_verify(&snap_target, 0, g.size, &want).unwrap();
    snap.close().unwrap();

    // node-2 comes back; its stale replica is removed by the next apply.
    lab.cmd(&["restore", "node-2"]);
    apply(&[]);

    // Grown to 48 MiB: the old data is intact, the new space reads and takes writes.
    apply(&["-var=volume_size=48Mi"]);
    let _g = grant(&lab, "node-1", &nqn);
    let g48 = io.geometry(&front).unwrap();
    assert_eq!(g48.size, 48 * MIB, "{g48:?}");
    io.read_verify(&front, 0, g.size, &want).unwrap();
    let new = g48.size - g.size;
    io.read(&front, g.size, new).unwrap();
    io.write_pattern(&front, g.size, new, 3).unwrap();
    io.read_verify(&front, g.size, new, &Expected::Seed(3))
        .unwrap();
    io.read_verify(&front, 0, g.size, &want).unwrap();
    drop(_g);

    tf.ok(&[
        "destroy",
        "-auto-approve",
        "-input=false",
        "-no-color",
        &vars,
        "-var=volume_size=48Mi",
        "-target=v2engine_volume.data",
    ]);
    lab.assert_no_objects(&["node-1", "node-2", "node-3"]);
}
