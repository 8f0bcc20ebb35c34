//! Growing a volume: replicas grown on their nodes (EnsureReplica with a larger size), then
//! EnsureEngine on the attach node, which sees the raid1 (and the frontend namespace on it)
//! reach the new size, waiting a bounded time when the remote replica's namespace change has
//! not come through yet; and, with a short bound, the error when it never does.
//!
//! Two executors with their own spdk-sim engines (NVMe-oF between them on 127.0.0.1), and
//! the volume planner/applier driven directly against two in-process simulators.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod engine_support;
mod vol_support;

use std::path::Path;
use std::time::{Duration, Instant};

use engine_support::spdk_sim;
use executor::volumes::apply::{self, ApplyFailure};
use executor::volumes::plan::{self, Action};
use executor::volumes::spec::{EngineSpec, Listen, MemberSpec, Reconnect, ReplicaSpec};
use executor::volumes::state;
use proto::v1 as pb;
use spdk_rpc::types::bdev::{BdevAioCreate, BdevGetBdevs};
use spdk_rpc::types::lvol::BdevLvolCreateLvstore;
use spdk_rpc::types::raid::BdevRaidGetBdevs;
use spdk_rpc::{SpdkApi, SpdkClient};
use vol_support::{HOST_NQN, VolNode, free_range, local, remote, replica_req};

const R1: &str = "vol1-r-0000000a";
const R2: &str = "vol1-r-0000000b";
const MIB: u64 = 1 << 20;

/// An executor with an engine (spdk-sim), data address 127.0.0.1, served in process, with
/// a 1 GiB disk `d1` (room to grow).
async fn grow_node(program: &Path, name: &str) -> VolNode {
    let n = VolNode::start(program, name, VolNode::sim()).await;
    n.disk_of(1024).await;
    n
}

/// What the grow tests ask of a node.
trait Grow {
    /// EnsureReplica of `replica` on d1 with `size_mib`, exported to the fleet when `export`.
    async fn ensure_replica(
        &mut self,
        replica: &str,
        size_mib: u64,
        export: bool,
    ) -> pb::ReplicaResult;
    /// Size of bdev `name` on this node's engine.
    async fn size(&self, name: &str) -> u64;
}

impl Grow for VolNode {
    async fn ensure_replica(
        &mut self,
        replica: &str,
        size_mib: u64,
        export: bool,
    ) -> pb::ReplicaResult {
        self.client
            .ensure_replica(pb::EnsureReplicaRequest {
                size_mib,
                ..replica_req(replica, export)
            })
            .await
            .unwrap_or_else(|e| panic!("{}: EnsureReplica {replica}: {e}", self.name))
            .into_inner()
    }

    async fn size(&self, name: &str) -> u64 {
        self.spdk()
            .bdev_get_bdevs(BdevGetBdevs::named(name))
            .await
            .unwrap()[0]
            .size_bytes()
    }
}

fn engine_req(members: Vec<pb::EngineReplica>) -> pb::EnsureEngineRequest {
    pb::EnsureEngineRequest {
        reconnect: Some(pb::ReconnectPolicy {
            reconnect_delay_sec: 1,
            ctrlr_loss_timeout_sec: 5,
            fast_io_fail_timeout_sec: 1,
        }),
        ..vol_support::engine_req("vol1", members)
    }
}

fn members(r2: &pb::ReplicaResult) -> Vec<pb::EngineReplica> {
    vec![local(R1), remote(r2)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn growing_both_replicas_grows_the_engine_raid_and_it_says_so() {
    let bin = spdk_sim();
    let mut a = grow_node(&bin, "node-a").await;
    let mut b = grow_node(&bin, "node-b").await;
    a.ensure_replica(R1, 64, false).await;
    let r2 = b.ensure_replica(R2, 64, true).await;
    let eng = a
        .client
        .ensure_engine(engine_req(members(&r2)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(eng.engine.unwrap().state, "healthy");
    assert_eq!(a.size("vol1-raid").await, 64 * MIB);

    // The front-end grows both replicas (in parallel), then ensures the engine.
    let t = Instant::now();
    let (ga, gb) = tokio::join!(
        a.ensure_replica(R1, 128, false),
        b.ensure_replica(R2, 128, true)
    );
    assert_eq!(
        ga.actions,
        [format!("resize lvol v2e-lvs-d1/{R1} to 128 MiB")]
    );
    assert_eq!(
        gb.actions,
        [format!("resize lvol v2e-lvs-d1/{R2} to 128 MiB")]
    );
    let eng = a
        .client
        .ensure_engine(engine_req(members(&r2)))
        .await
        .unwrap()
        .into_inner();
    eprintln!(
        "grow both replicas + EnsureEngine: {:?} ({:?})",
        t.elapsed(),
        eng.actions
    );
    assert_eq!(eng.engine.unwrap().state, "healthy");
    // Through SPDK on the attach node: the remote nvme bdev, the raid and its members.
    assert_eq!(a.size(&format!("{R2}n1")).await, 128 * MIB);
    assert_eq!(a.size("vol1-raid").await, 128 * MIB);
    let raid = &a
        .spdk()
        .bdev_raid_get_bdevs(BdevRaidGetBdevs::default())
        .await
        .unwrap()[0];
    assert!(
        raid.base_bdevs_list
            .iter()
            .all(|s| s.data_size * 512 == 128 * MIB),
        "{raid:?}"
    );
    // What the front-end reads: the raid's size in the inventory.
    let inv = a
        .client
        .list_volume_objects(pb::ListVolumeObjectsRequest {})
        .await
        .unwrap()
        .into_inner();
    let detail = &inv
        .objects
        .iter()
        .find(|o| o.kind == "raid")
        .unwrap()
        .detail;
    assert!(detail.ends_with(", 128 MiB"), "{detail}");

    // The local replica grows first and the engine is ensured before the remote one has
    // grown: EnsureEngine waits for the namespace change to come through and the raid to
    // follow, then returns.
    a.ensure_replica(R1, 192, false).await;
    let mut ac = a.client.clone();
    let req = engine_req(members(&r2));
    let t = Instant::now();
    let pending = tokio::spawn(async move { ac.ensure_engine(req).await });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        !pending.is_finished(),
        "EnsureEngine waits for the remote member"
    );
    assert_eq!(a.size("vol1-raid").await, 128 * MIB);
    b.ensure_replica(R2, 192, true).await;
    let eng = pending.await.unwrap().unwrap().into_inner();
    let waited = t.elapsed();
    eprintln!("EnsureEngine waiting for the remote grow: {waited:?}");
    assert_eq!(
        eng.actions,
        ["wait until raid vol1-raid and its members reach 192 MiB"]
    );
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert_eq!(a.size("vol1-raid").await, 192 * MIB);
    // And then there is nothing left to do.
    let again = a
        .client
        .ensure_engine(engine_req(members(&r2)))
        .await
        .unwrap()
        .into_inner();
    assert!(again.actions.is_empty(), "{:?}", again.actions);

    a.shutdown().await;
    b.shutdown().await;
}

/// Two in-process simulators: `a` exports R2, `b` has R1 and the engine.
struct Pair {
    _dir: tempfile::TempDir,
    _sims: (spdk_sim::Sim, spdk_sim::Sim),
    a: SpdkClient,
    b: SpdkClient,
    spec: EngineSpec,
    r1: ReplicaSpec,
    r2: ReplicaSpec,
}

async fn pair() -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let start =
        |n: &str| spdk_sim::Sim::spawn(spdk_sim::Config::with_socket(dir.path().join(n))).unwrap();
    let (sa, sb) = (start("a.sock"), start("b.sock"));
    let (a, b) = (SpdkClient::new(sa.socket()), SpdkClient::new(sb.socket()));
    for (api, f) in [(&a, "a.img"), (&b, "b.img")] {
        let file = dir.path().join(f);
        std::fs::File::create(&file)
            .unwrap()
            .set_len(1 << 30)
            .unwrap();
        api.bdev_aio_create(BdevAioCreate::new("v2e-d1", file.display().to_string()))
            .await
            .unwrap();
        api.bdev_lvol_create_lvstore(BdevLvolCreateLvstore::new("v2e-d1", "v2e-lvs-d1"))
            .await
            .unwrap();
    }
    let port = free_range(1).into_inner().0;
    let r2 = ReplicaSpec {
        replica: R2.into(),
        disk: "d1".into(),
        size_mib: 64,
        thin: true,
        export: Some(Listen {
            address: "127.0.0.1".into(),
            port,
            hosts: vec![HOST_NQN.into()],
        }),
    };
    let r1 = ReplicaSpec {
        replica: R1.into(),
        disk: "d1".into(),
        size_mib: 64,
        thin: true,
        export: None,
    };
    let spec = EngineSpec {
        volume: "vol1".into(),
        host_nqn: HOST_NQN.into(),
        members: vec![
            MemberSpec::Local {
                replica: R1.into(),
                disk: "d1".into(),
            },
            MemberSpec::Remote {
                replica: R2.into(),
                address: "127.0.0.1".into(),
                port,
            },
        ],
        frontend: Listen {
            address: "127.0.0.1".into(),
            port: free_range(1).into_inner().0,
            hosts: vec![HOST_NQN.into()],
        },
        reconnect: Reconnect::default(),
    };
    let p = Pair {
        _dir: dir,
        _sims: (sa, sb),
        a,
        b,
        spec,
        r1,
        r2,
    };
    ensure_replica(&p.a, &p.r2).await;
    ensure_replica(&p.b, &p.r1).await;
    let obs = apply::observe(&p.b).await.unwrap();
    apply::apply(&p.b, &plan::plan_engine(&p.spec, &obs).unwrap())
        .await
        .unwrap();
    p
}

async fn ensure_replica(api: &SpdkClient, spec: &ReplicaSpec) -> Vec<String> {
    let obs = apply::observe(api).await.unwrap();
    apply::apply(api, &plan::plan_replica(spec, &obs).unwrap())
        .await
        .unwrap()
}

async fn raid_size(api: &SpdkClient) -> u64 {
    api.bdev_get_bdevs(BdevGetBdevs::named("vol1-raid"))
        .await
        .unwrap()[0]
        .size_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wait_ends_when_the_namespace_change_arrives_or_fails_naming_the_sizes() {
    let mut p = pair().await;
    assert_eq!(raid_size(&p.b).await, 64 * MIB);

    // The local replica grows: the planner wants the raid and its members at 128 MiB.
    p.r1.size_mib = 128;
    ensure_replica(&p.b, &p.r1).await;
    let obs = apply::observe(&p.b).await.unwrap();
    let status = state::engine_status("vol1", Some(&p.spec), &obs);
    assert_eq!(status.size_bytes, 64 * MIB);
    let sizes: Vec<u64> = status.members.iter().map(|m| m.size_bytes).collect();
    assert_eq!(sizes, [128 * MIB, 64 * MIB]);
    let actions = plan::plan_engine(&p.spec, &obs).unwrap();
    assert!(
        matches!(actions.as_slice(), [Action::AwaitSize { bytes, .. }] if *bytes == 128 * MIB),
        "{actions:?}"
    );

    // The remote replica grows 300 ms into the wait: the wait ends soon after.
    let t = Instant::now();
    let b = p.b.clone();
    let waiting = tokio::spawn(async move { apply::apply(&b, &actions).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    p.r2.size_mib = 128;
    ensure_replica(&p.a, &p.r2).await;
    let done = waiting.await.unwrap().unwrap();
    let waited = t.elapsed();
    eprintln!("wait for a remote grow made 300 ms in: {waited:?}");
    assert_eq!(
        done,
        ["wait until raid vol1-raid and its members reach 128 MiB"]
    );
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    assert_eq!(raid_size(&p.b).await, 128 * MIB);
    let obs = apply::observe(&p.b).await.unwrap();
    assert_eq!(plan::plan_engine(&p.spec, &obs).unwrap(), vec![]);
    assert_eq!(
        state::engine_status("vol1", Some(&p.spec), &obs).size_bytes,
        128 * MIB
    );

    // The local replica grows again, the remote one never does: a bounded wait, then an
    // error naming the volume, the raid, the sizes and the member behind.
    p.r1.size_mib = 192;
    ensure_replica(&p.b, &p.r1).await;
    let obs = apply::observe(&p.b).await.unwrap();
    let wait = plan::size_wait(&p.spec, &obs, None, Duration::from_millis(500)).unwrap();
    let t = Instant::now();
    let e = apply::apply(&p.b, &[wait]).await.unwrap_err();
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(500) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    assert!(e.done.is_empty());
    assert!(matches!(
        &e.source,
        ApplyFailure::SizeNotReached { have, want, lagging, .. }
            if *have == 128 * MIB && *want == 192 * MIB
                && lagging == &vec![(format!("{R2}n1"), 128 * MIB)]
    ));
    let msg = e.to_string();
    eprintln!("{msg}");
    for part in [
        "wait until raid vol1-raid and its members reach 192 MiB",
        "volume vol1: vol1-raid is 128 MiB after",
        "192 MiB wanted",
        &format!("{R2}n1 has 128 MiB"),
    ] {
        assert!(msg.contains(part), "{part:?} not in {msg}");
    }
    // The size given by the caller counts as well, e.g. an engine without a local replica.
    let obs = apply::observe(&p.b).await.unwrap();
    assert!(plan::size_wait(&p.spec, &obs, Some(128 * MIB), Duration::from_secs(1)).is_none());
}
