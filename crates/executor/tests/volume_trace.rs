//! The SPDK call trace of volume operations, against two executors with spdk-sim engines:
//! every JSON-RPC call an operation makes is listed in order (the reads that observe the
//! engine, then the changes its actions name, then the reads of the result), each with a
//! nonzero round trip and its outcome; an operation with nothing to do lists only its reads.
//! Also prints the benchmark figures of the issue: create+attach wall time against the sum
//! of the SPDK calls on its critical path (replicas in parallel, then the engine), and the
//! number of calls.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod engine_support;
mod vol_support;

use std::time::{Duration, Instant};

use engine_support::spdk_sim;
use proto::v1 as pb;
use vol_support::{VolNode, engine_req, local, remote, replica_req};

/// What `apply::observe` reads, in its order.
const OBSERVE: [&str; 7] = [
    "bdev_get_bdevs",
    "bdev_lvol_get_lvstores",
    "bdev_lvol_get_lvols",
    "nvmf_get_subsystems",
    "bdev_nvme_get_controllers",
    "bdev_raid_get_bdevs",
    "nvmf_get_transports",
];

const R1: &str = "tr-r-0000000a";
const R2: &str = "tr-r-0000000b";

fn methods(calls: &[pb::SpdkCall]) -> Vec<&str> {
    calls.iter().map(|c| c.method.as_str()).collect()
}

fn micros(calls: &[pb::SpdkCall]) -> u64 {
    calls.iter().map(|c| c.micros).sum()
}

/// Every call answered, with a nonzero time; the trace starts by observing the engine.
fn check_trace(what: &str, calls: &[pb::SpdkCall]) {
    assert!(
        calls.iter().all(|c| c.ok && c.micros > 0),
        "{what}: {calls:?}"
    );
    assert_eq!(methods(&calls[..OBSERVE.len()]), OBSERVE, "{what}");
}

/// Times a call made through `f`.
async fn timed<T>(f: impl std::future::Future<Output = T>) -> (T, Duration) {
    let t = Instant::now();
    let out = f.await;
    (out, t.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn volume_operations_report_every_spdk_call_in_order() {
    let bin = spdk_sim();
    let mut a = VolNode::start(&bin, "node-a", VolNode::sim()).await;
    let mut b = VolNode::start(&bin, "node-b", VolNode::sim()).await;
    a.disk().await;
    b.disk().await;

    // Create + attach, as the client does it: the replicas in parallel, then the engine.
    let started = Instant::now();
    let (ca, cb) = (a.client.clone(), b.client.clone());
    let ((r1, w1), (r2, w2)) = tokio::join!(
        timed(async move {
            let mut c = ca;
            c.ensure_replica(replica_req(R1, false)).await
        }),
        timed(async move {
            let mut c = cb;
            c.ensure_replica(replica_req(R2, true)).await
        }),
    );
    let (r1, r2) = (r1.unwrap().into_inner(), r2.unwrap().into_inner());
    let (eng, we) = timed(
        a.client
            .ensure_engine(engine_req("tr", vec![local(R1), remote(&r2)])),
    )
    .await;
    let eng = eng.unwrap().into_inner();
    let wall = started.elapsed();

    // The exported replica: observe, one call per action, observe the result.
    check_trace("EnsureReplica R2", &r2.spdk_calls);
    assert_eq!(
        methods(&r2.spdk_calls),
        [
            &OBSERVE[..],
            &[
                "bdev_lvol_create",
                // (the TCP transport came with the engine's start-up configuration)
                "nvmf_create_subsystem",
                "nvmf_subsystem_add_ns",
                "nvmf_subsystem_add_listener",
                "nvmf_subsystem_add_host",
            ],
            &OBSERVE[..],
        ]
        .concat(),
        "{:?}",
        r2.actions
    );
    assert_eq!(r2.actions.len(), 5, "{:?}", r2.actions);
    check_trace("EnsureReplica R1", &r1.spdk_calls);
    assert_eq!(
        methods(&r1.spdk_calls),
        [&OBSERVE[..], &["bdev_lvol_create"], &OBSERVE[..]].concat()
    );

    // The engine: the changes in the order of its actions.
    check_trace("EnsureEngine", &eng.spdk_calls);
    let n = eng.spdk_calls.len();
    assert_eq!(methods(&eng.spdk_calls[n - OBSERVE.len()..]), OBSERVE);
    let changes = methods(&eng.spdk_calls[OBSERVE.len()..n - OBSERVE.len()]);
    assert_eq!(
        changes.len(),
        eng.actions.len(),
        "{changes:?} {:?}",
        eng.actions
    );
    assert_eq!(
        changes[..3],
        [
            "bdev_nvme_set_options",
            "bdev_nvme_attach_controller",
            "bdev_raid_create"
        ],
        "{:?}",
        eng.actions
    );
    assert!(changes.contains(&"nvmf_create_subsystem"), "{changes:?}");
    assert_eq!(eng.engine.as_ref().unwrap().state, "healthy");

    // Each operation's calls fit in its wall time (they are made one after the other).
    for (what, calls, w) in [
        ("EnsureReplica R1", &r1.spdk_calls, w1),
        ("EnsureReplica R2", &r2.spdk_calls, w2),
        ("EnsureEngine", &eng.spdk_calls, we),
    ] {
        let sum = Duration::from_micros(micros(calls));
        assert!(sum <= w, "{what}: calls {sum:?} > wall {w:?}");
    }
    let critical = micros(&r1.spdk_calls).max(micros(&r2.spdk_calls)) + micros(&eng.spdk_calls);
    let critical_calls = r1.spdk_calls.len().max(r2.spdk_calls.len()) + eng.spdk_calls.len();
    let all_calls = r1.spdk_calls.len() + r2.spdk_calls.len() + eng.spdk_calls.len();
    eprintln!(
        "create+attach (2 replicas, spdk-sim): wall {:.2} ms; SPDK calls on the critical path \
         {critical_calls} taking {:.2} ms (ratio {:.2}); {all_calls} calls in all",
        wall.as_secs_f64() * 1e3,
        critical as f64 / 1e3,
        wall.as_secs_f64() * 1e6 / critical as f64,
    );

    // Nothing to do: only the reads.
    let again = a
        .client
        .ensure_engine(engine_req("tr", vec![local(R1), remote(&r2)]))
        .await
        .unwrap()
        .into_inner();
    assert!(again.actions.is_empty(), "{:?}", again.actions);
    assert_eq!(methods(&again.spdk_calls), OBSERVE);
    check_trace("EnsureEngine again", &again.spdk_calls);

    // A dry run reads and changes nothing.
    let dry = a
        .client
        .delete_engine(pb::DeleteEngineRequest {
            volume: "tr".into(),
            dry_run: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!dry.actions.is_empty());
    assert_eq!(methods(&dry.spdk_calls), OBSERVE);

    // Teardown, traced the same way.
    let del = a
        .client
        .delete_engine(pb::DeleteEngineRequest {
            volume: "tr".into(),
            dry_run: false,
        })
        .await
        .unwrap()
        .into_inner();
    check_trace("DeleteEngine", &del.spdk_calls);
    let m = methods(&del.spdk_calls);
    for (x, y) in [
        ("nvmf_delete_subsystem", "bdev_raid_delete"),
        ("bdev_raid_delete", "bdev_nvme_detach_controller"),
    ] {
        let (i, j) = (
            m.iter().position(|c| *c == x).unwrap(),
            m.iter().position(|c| *c == y).unwrap(),
        );
        assert!(i < j, "{m:?}");
    }
    for (node, replica) in [(&mut a, R1), (&mut b, R2)] {
        let out = node
            .client
            .delete_replica(pb::DeleteReplicaRequest {
                replica: replica.into(),
                dry_run: false,
            })
            .await
            .unwrap()
            .into_inner();
        check_trace("DeleteReplica", &out.spdk_calls);
        assert!(methods(&out.spdk_calls).contains(&"bdev_lvol_delete"));
    }
    a.shutdown().await;
    b.shutdown().await;
}
