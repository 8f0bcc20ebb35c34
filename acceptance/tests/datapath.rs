//! The data-path checker against real SPDK on loopback: two spdk_tgt processes, a "replica"
//! target exporting an lvol on an aio file, and a "frontend" target attaching that export
//! over NVMe/TCP and exporting it again, as a volume's attach node does. Data written through
//! the frontend reads back through it and through the replica's own export; a wrong seed is
//! detected; a host NQN not allowed on the subsystem is refused.
//!
//! Real SPDK lane: `V2ENGINE_SPDK_DIR=/work/shared/spdk/real/v26.05 cargo test -p
//! v2engine-acceptance --test datapath -- --ignored --test-threads=1`.

#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use acceptance::datapath::rpc::{HostGrant, Rpc, TempExport, tcp_listener};
use acceptance::datapath::{
    Content, DataPath, DatapathError, Expected, PerfSpec, Target, Workload,
};
use serde_json::json;

const HOST: &str = "nqn.2026-11.io.v2engine:host:datapath-test";
const FRONTEND_HOST: &str = "nqn.2026-11.io.v2engine:host:frontend-node";
const INTRUDER: &str = "nqn.2026-11.io.v2engine:host:intruder";
const REPLICA_NQN: &str = "nqn.2026-11.io.v2engine:dp-r-00000001";
const FRONT_NQN: &str = "nqn.2026-11.io.v2engine:dp";
const MIB: u64 = 1 << 20;

fn spdk_dir() -> PathBuf {
    let Some(dir) = std::env::var_os("V2ENGINE_SPDK_DIR") else {
        panic!(
            "V2ENGINE_SPDK_DIR is not set: this real-SPDK test needs a build directory with bin/spdk_tgt, bin/spdk_dd and bin/spdk_nvme_perf (e.g. /work/shared/spdk/real/v26.05)"
        );
    };
    let dir = PathBuf::from(dir);
    assert!(
        dir.join("bin/spdk_tgt").is_file(),
        "V2ENGINE_SPDK_DIR={}: no bin/spdk_tgt there",
        dir.display()
    );
    dir
}

/// An spdk_tgt of this test, killed by its PID on drop.
struct Tgt {
    child: Child,
    rpc: Rpc,
    log: PathBuf,
}

impl Tgt {
    fn start(spdk: &Path, dir: &Path, name: &str) -> Tgt {
        let sock = dir.join(format!("{name}.sock"));
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(spdk.join("bin/spdk_tgt"))
            .args([
                "--no-huge",
                "-s",
                "1024",
                "-u",
                "--disable-cpumask-locks",
                "-r",
            ])
            .arg(&sock)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.join(format!("{name}.err"))).unwrap())
            .spawn()
            .expect("start spdk_tgt");
        let t = Tgt {
            child,
            rpc: Rpc::new(&sock),
            log,
        };
        if let Err(e) = t.rpc.wait_ready(Duration::from_secs(30)) {
            panic!("{name}: spdk_tgt did not answer: {e}\n{}", t.log_tail());
        }
        t
    }

    fn call(&self, method: &str, params: serde_json::Value) -> serde_json::Value {
        self.rpc
            .call(method, Some(params))
            .unwrap_or_else(|e| panic!("{e}\n{}", self.log_tail()))
    }

    fn log_tail(&self) -> String {
        let s = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Subsystem `nqn` with namespace `bdev`, listening on 127.0.0.1:`port`, allowing `hosts`.
    fn export(&self, nqn: &str, bdev: &str, port: u16, hosts: &[&str]) {
        self.call(
            "nvmf_create_subsystem",
            json!({"nqn": nqn, "allow_any_host": false, "serial_number": "V2E0000000000000001"}),
        );
        self.call(
            "nvmf_subsystem_add_ns",
            json!({"nqn": nqn, "namespace": {"bdev_name": bdev}}),
        );
        self.call(
            "nvmf_subsystem_add_listener",
            tcp_listener(nqn, "127.0.0.1", port),
        );
        for h in hosts {
            self.call("nvmf_subsystem_add_host", json!({"nqn": nqn, "host": h}));
        }
    }
}

impl Drop for Tgt {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
#[ignore = "real SPDK lane: scripts/test.sh runs it with V2ENGINE_SPDK_DIR"]
fn data_written_through_a_frontend_reads_back_there_and_on_the_replica() {
    let spdk = spdk_dir();
    let dir = tempfile::tempdir().unwrap();

    // The replica node: an lvol on an aio file, exported.
    let replica = Tgt::start(&spdk, dir.path(), "replica");
    let disk = dir.path().join("disk.img");
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(64 * MIB)
        .unwrap();
    replica.call(
        "bdev_aio_create",
        json!({"filename": disk, "name": "aio0", "block_size": 4096}),
    );
    replica.call(
        "bdev_lvol_create_lvstore",
        json!({"bdev_name": "aio0", "lvs_name": "lvs0"}),
    );
    replica.call(
        "bdev_lvol_create",
        json!({"lvol_name": "dp-r-00000001", "size_in_mib": 16, "lvs_name": "lvs0", "thin_provision": true}),
    );
    replica.call("nvmf_create_transport", json!({"trtype": "TCP"}));
    let replica_port = free_port();
    replica.export(
        REPLICA_NQN,
        "lvs0/dp-r-00000001",
        replica_port,
        &[FRONTEND_HOST, HOST],
    );

    // The attach node: the replica's export attached over NVMe/TCP, exported again.
    let front = Tgt::start(&spdk, dir.path(), "frontend");
    front.call("nvmf_create_transport", json!({"trtype": "TCP"}));
    front.call(
        "bdev_nvme_attach_controller",
        json!({"name": "rep", "trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1",
               "trsvcid": replica_port.to_string(), "subnqn": REPLICA_NQN, "hostnqn": FRONTEND_HOST}),
    );
    let front_port = free_port();
    front.export(FRONT_NQN, "repn1", front_port, &[HOST]);

    let dp = DataPath::new(&spdk, HOST).unwrap();
    let volume = Target::new("127.0.0.1", front_port, FRONT_NQN);
    let replica_export = Target::new("127.0.0.1", replica_port, REPLICA_NQN);

    let g = dp.geometry(&volume).unwrap();
    assert_eq!(g.size, 16 * MIB, "{g:?}");
    assert!(g.block_size == 512 || g.block_size == 4096, "{g:?}");

    // Seed 1 over everything, seed 2 over [1 MiB, 3 MiB).
    dp.write_pattern(&volume, 0, g.size, 1).unwrap();
    dp.read_verify(&volume, 0, g.size, &Expected::Seed(1))
        .unwrap();
    dp.write_pattern(&volume, MIB, 2 * MIB, 2).unwrap();
    let mut expected = acceptance::datapath::pattern(1, 0, g.blocks(), g.block_size);
    let second =
        acceptance::datapath::pattern(2, MIB / g.block_size, 2 * MIB / g.block_size, g.block_size);
    expected[MIB as usize..3 * MIB as usize].copy_from_slice(&second);
    dp.read_verify(&volume, 0, g.size, &Expected::Bytes(expected.clone()))
        .unwrap();

    // A wrong expectation is detected, naming the block and the seed found.
    let e = dp
        .read_verify(&volume, 0, 2 * MIB, &Expected::Seed(2))
        .unwrap_err();
    match &e {
        DatapathError::Mismatch { mismatch, .. } => {
            assert_eq!(mismatch.first_block, 0, "{e}");
            assert_eq!(mismatch.blocks, MIB / g.block_size, "{e}");
            assert_eq!(
                mismatch.found,
                Content::Pattern { seed: 1, block: 0 },
                "{e}"
            );
        }
        other => panic!("expected a mismatch, got {other}"),
    }
    assert!(e.to_string().contains(FRONT_NQN), "{e}");

    // The replica's own export holds the same bytes.
    let through_front = dp.read_all(&volume).unwrap();
    let on_replica = dp.read_all(&replica_export).unwrap();
    assert_eq!(through_front, expected);
    assert!(
        on_replica == through_front,
        "replica {} vs frontend {}",
        acceptance::datapath::digest(&on_replica),
        acceptance::datapath::digest(&through_front)
    );

    // A host NQN not allowed on the subsystem is refused, by both tools.
    let intruder = DataPath::new(&spdk, INTRUDER).unwrap();
    let e = intruder.geometry(&volume).unwrap_err();
    assert!(matches!(e, DatapathError::HostRefused { .. }), "{e}");
    // spdk_dd, given the geometry (no probe first), is refused at attach.
    let e = intruder.read_with(&volume, &g, 0, 4096).unwrap_err();
    assert!(matches!(e, DatapathError::HostRefused { .. }), "{e}");
    assert!(e.to_string().contains("spdk_dd"), "{e}");
    assert!(e.to_string().contains(INTRUDER), "{e}");

    // A grant lets the intruder in for a while, and only for a while.
    let grant = HostGrant::allow(&front.rpc, FRONT_NQN, INTRUDER).unwrap();
    assert!(grant.added());
    assert_eq!(
        intruder.read_with(&volume, &g, 0, MIB).unwrap(),
        expected[..MIB as usize]
    );
    grant.close().unwrap();
    let e = intruder.read_with(&volume, &g, 0, 4096).unwrap_err();
    assert!(matches!(e, DatapathError::HostRefused { .. }), "{e}");
    // An already allowed host is left allowed.
    HostGrant::allow(&front.rpc, FRONT_NQN, HOST)
        .unwrap()
        .close()
        .unwrap();
    dp.read_with(&volume, &g, 0, 4096).unwrap();

    // A snapshot of the replica lvol, exported for a while, holds the same bytes; closing
    // deletes the subsystem and the snapshot.
    let snap = TempExport::snapshot_of(
        &replica.rpc,
        "lvs0/dp-r-00000001",
        "dp-snap",
        "nqn.2026-11.io.v2engine:dp-snap",
        "127.0.0.1",
        free_port(),
        HOST,
    )
    .unwrap();
    let snap_target = Target::new(snap.address.clone(), snap.port, snap.nqn.clone());
    assert_eq!(dp.read_all(&snap_target).unwrap(), expected);
    assert_eq!(snap.close().unwrap().len(), 2);
    let lvols = replica.rpc.call("bdev_lvol_get_lvols", None).unwrap();
    assert!(
        !lvols.to_string().contains("dp-snap"),
        "the snapshot is deleted: {lvols}"
    );
    let subs = replica.rpc.call("nvmf_get_subsystems", None).unwrap();
    assert!(!subs.to_string().contains("dp-snap"), "{subs}");

    // spdk_nvme_perf measures through the frontend.
    let r = dp
        .perf(
            &volume,
            &PerfSpec {
                workload: Workload::RandRead,
                queue_depth: 8,
                io_size: 4096,
                seconds: 1,
            },
        )
        .unwrap();
    assert!(r.iops > 0.0 && r.avg_lat_us > 0.0, "{r:?}");
}
