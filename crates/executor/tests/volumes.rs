//! Volumes across three in-process executors, each with its own spdk-sim engine (separate
//! processes, NVMe-oF between them over 127.0.0.1 on disjoint port ranges): replicas on
//! two nodes, exported; the engine on one; every object checked through SPDK's own calls;
//! a second call changes nothing; the remote engine stopped → degraded; a replacement
//! replica → rebuilding → healthy; teardown leaves nothing of ours.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod engine_support;
mod vol_support;

use std::path::Path;
use std::time::Duration;

use engine_support::{TestNode, rec, setting, spdk_sim, until};
use proto::v1 as pb;
use spdk_rpc::SpdkApi;
use spdk_rpc::types::bdev::{BdevAioCreate, BdevGetBdevs};
use spdk_rpc::types::lvol::BdevLvolGetLvols;
use spdk_rpc::types::nvme::BdevNvmeGetControllers;
use spdk_rpc::types::nvmf::NvmfGetSubsystems;
use spdk_rpc::types::raid::{BdevRaidGetBdevs, RaidState};
use vol_support::{HOST_NQN, Setup, VolNode, local, remote, replica_req};

const PREFIX: &str = "nqn.2026-11.io.v2engine:";

/// A node with an engine (spdk-sim) whose rebuilds take 1.5 s (so "rebuilding" can be
/// seen) and six export ports.
async fn vol_node(program: &Path, name: &str) -> VolNode {
    VolNode::start_with(
        program,
        name,
        VolNode::sim(),
        Setup {
            engine_args: vec!["--sim-rebuild-ms".into(), "1500".into()],
            ports: 6,
        },
    )
    .await
}

/// What these tests ask of a node, besides what [`VolNode`] has.
trait VolOps {
    /// The disk after an engine restart: the aio bdev again; examine loads the lvstore.
    async fn disk_again(&self);
    async fn ensure_replica(&mut self, replica: &str, export: bool) -> pb::ReplicaResult;
    async fn ensure_engine(&mut self, members: Vec<pb::EngineReplica>) -> pb::EngineResult;
    async fn list(&mut self) -> pb::ListVolumeObjectsResponse;
    /// Every name of ours the engine still has: bdevs (names and aliases), subsystems,
    /// controllers, raids.
    async fn our_names(&self) -> Vec<String>;
}

impl VolOps for VolNode {
    async fn disk_again(&self) {
        let file = self.dir.path().join("d1.img");
        let api = self.spdk();
        api.bdev_aio_create(BdevAioCreate::new("v2e-d1", file.display().to_string()))
            .await
            .unwrap();
        api.bdev_wait_for_examine().await.unwrap();
    }

    async fn ensure_replica(&mut self, replica: &str, export: bool) -> pb::ReplicaResult {
        self.client
            .ensure_replica(replica_req(replica, export))
            .await
            .unwrap_or_else(|e| panic!("{}: EnsureReplica {replica}: {e}", self.name))
            .into_inner()
    }

    async fn ensure_engine(&mut self, members: Vec<pb::EngineReplica>) -> pb::EngineResult {
        self.client
            .ensure_engine(engine_req(members))
            .await
            .unwrap_or_else(|e| panic!("{}: EnsureEngine: {e}", self.name))
            .into_inner()
    }

    async fn list(&mut self) -> pb::ListVolumeObjectsResponse {
        self.client
            .list_volume_objects(pb::ListVolumeObjectsRequest {})
            .await
            .unwrap()
            .into_inner()
    }

    async fn our_names(&self) -> Vec<String> {
        let api = self.spdk();
        let ours = |n: &str| n.contains("-r-") || n.ends_with("-raid") || n.starts_with(PREFIX);
        let mut out: Vec<String> = Vec::new();
        for b in api.bdev_get_bdevs(BdevGetBdevs::all()).await.unwrap() {
            out.extend(std::iter::once(b.name).chain(b.aliases).filter(|n| ours(n)));
        }
        for s in api
            .nvmf_get_subsystems(NvmfGetSubsystems::default())
            .await
            .unwrap()
        {
            if ours(&s.nqn) {
                out.push(s.nqn);
            }
        }
        for c in api
            .bdev_nvme_get_controllers(BdevNvmeGetControllers::default())
            .await
            .unwrap()
        {
            out.push(c.name);
        }
        for r in api
            .bdev_raid_get_bdevs(BdevRaidGetBdevs::default())
            .await
            .unwrap()
        {
            out.push(r.name);
        }
        out
    }
}

fn engine_req(members: Vec<pb::EngineReplica>) -> pb::EnsureEngineRequest {
    pb::EnsureEngineRequest {
        reconnect: Some(pb::ReconnectPolicy {
            reconnect_delay_sec: 1,
            ctrlr_loss_timeout_sec: 2,
            fast_io_fail_timeout_sec: 1,
        }),
        ..vol_support::engine_req("vol1", members)
    }
}

const R1: &str = "vol1-r-0000000a";
const R2: &str = "vol1-r-0000000b";
const R3: &str = "vol1-r-0000000c";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_exports_engine_degrade_rebuild_and_teardown() {
    let bin = spdk_sim();
    let mut a = vol_node(&bin, "node-a").await;
    let mut b = vol_node(&bin, "node-b").await;
    let mut c = vol_node(&bin, "node-c").await;
    for n in [&a, &b, &c] {
        n.disk_of(512).await;
    }

    // Replicas: local on the attach node (not exported), exported on node-b.
    let r1 = a.ensure_replica(R1, false).await;
    assert_eq!(
        r1.actions,
        ["create lvol v2e-lvs-d1/vol1-r-0000000a (64 MiB, thin)"]
    );
    let st = r1.replica.as_ref().unwrap();
    assert_eq!(
        (st.state.as_str(), st.size_mib, st.thin),
        ("healthy", 64, true)
    );
    assert!(st.export.is_none());
    let r2 = b.ensure_replica(R2, true).await;
    // lvol, subsystem, ns, listener, host (the TCP transport came with the start-up configuration)
    assert_eq!(r2.actions.len(), 5, "{:?}", r2.actions);
    let e2 = r2.replica.as_ref().unwrap().export.clone().unwrap();
    assert_eq!(e2.nqn, format!("{PREFIX}{R2}"));
    assert_eq!(e2.address, "127.0.0.1");
    assert!(b.ports.contains(&u16::try_from(e2.port).unwrap()));
    assert_eq!(e2.hosts, [HOST_NQN]);
    // Twice: nothing changes, same port.
    let again = b.ensure_replica(R2, true).await;
    assert!(again.actions.is_empty(), "{:?}", again.actions);
    assert_eq!(again.replica.unwrap().export.unwrap(), e2);
    assert!(a.ensure_replica(R1, false).await.actions.is_empty());

    // What SPDK on node-b has: the lvol, the subsystem open only to the fleet's host.
    let subs = b
        .spdk()
        .nvmf_get_subsystems(NvmfGetSubsystems::default())
        .await
        .unwrap();
    let s = subs.iter().find(|s| s.nqn == e2.nqn).unwrap();
    assert!(!s.allow_any_host);
    assert_eq!(s.hosts.len(), 1);
    assert_eq!(s.hosts[0].nqn, HOST_NQN);
    assert_eq!(s.namespaces.len(), 1);
    assert_eq!(
        s.listen_addresses[0].trsvcid.as_deref(),
        Some(e2.port.to_string().as_str())
    );
    let lvols = b
        .spdk()
        .bdev_lvol_get_lvols(BdevLvolGetLvols::default())
        .await
        .unwrap();
    assert!(lvols.iter().any(|l| l.name == R2 && l.is_thin_provisioned));

    // The engine on node-a.
    let t = std::time::Instant::now();
    let eng = a.ensure_engine(vec![local(R1), remote(&r2)]).await;
    eprintln!("EnsureEngine (attach + raid + frontend): {:?}", t.elapsed());
    assert_eq!(
        eng.actions[..3],
        [
            "set the NVMe initiator's command timeouts".to_string(),
            format!(
                "attach controller {R2} to {PREFIX}{R2} at 127.0.0.1:{}",
                e2.port
            ),
            format!("create raid1 vol1-raid over v2e-lvs-d1/{R1}, {R2}n1"),
        ]
    );
    let es = eng.engine.as_ref().unwrap();
    assert_eq!(es.state, "healthy", "{es:?}");
    assert_eq!(es.raid, "vol1-raid");
    assert!(es.members.iter().all(|m| m.state == "healthy"), "{es:?}");
    let front = es.frontend.clone().unwrap();
    assert_eq!(front.nqn, format!("{PREFIX}vol1"));
    assert!(a.ports.contains(&u16::try_from(front.port).unwrap()));
    let again = a.ensure_engine(vec![local(R1), remote(&r2)]).await;
    assert!(again.actions.is_empty(), "{:?}", again.actions);

    // Through SPDK on node-a: controller, raid1 online 2 of 2, frontend on the raid.
    let api = a.spdk();
    let ctrls = api
        .bdev_nvme_get_controllers(BdevNvmeGetControllers::default())
        .await
        .unwrap();
    assert_eq!(ctrls.len(), 1);
    assert_eq!(ctrls[0].name, R2);
    assert_eq!(ctrls[0].ctrlrs[0].state, "enabled");
    assert_eq!(ctrls[0].ctrlrs[0].host.as_ref().unwrap().nqn, HOST_NQN);
    let raids = api
        .bdev_raid_get_bdevs(BdevRaidGetBdevs::default())
        .await
        .unwrap();
    assert_eq!(raids.len(), 1);
    assert_eq!(raids[0].name, "vol1-raid");
    assert_eq!(raids[0].state, RaidState::Online);
    assert_eq!(
        (raids[0].num_base_bdevs, raids[0].num_base_bdevs_operational),
        (2, 2)
    );
    let subs = api
        .nvmf_get_subsystems(NvmfGetSubsystems::default())
        .await
        .unwrap();
    let f = subs.iter().find(|s| s.nqn == front.nqn).unwrap();
    let raid_bdev = &api
        .bdev_get_bdevs(BdevGetBdevs::named("vol1-raid"))
        .await
        .unwrap()[0];
    assert!(
        f.namespaces[0].bdev_name == raid_bdev.name
            || raid_bdev.aliases.contains(&f.namespaces[0].bdev_name)
    );
    assert!(!f.allow_any_host);

    // The engine may not stop while it serves the volume (no record needed to know).
    let p = a
        .client
        .predict(pb::PredictRequest {
            overlay: vec![setting(2, false, 256)],
        })
        .await
        .unwrap()
        .into_inner();
    let want = format!(
        "while volumes use it: vol1 (replica lvol {R1} on lvstore v2e-lvs-d1; its engine runs on node node-a)"
    );
    assert!(p.errors.iter().any(|e| e.contains(&want)), "{:?}", p.errors);
    // Orphans: no volume record yet, so everything is one; with the record, nothing is.
    let inv = a.list().await;
    let kinds: Vec<(&str, bool)> = inv
        .objects
        .iter()
        .map(|o| (o.kind.as_str(), o.orphan))
        .collect();
    assert_eq!(
        kinds,
        [
            ("lvol", true),
            ("frontend_subsystem", true),
            ("raid", true),
            ("controller", true)
        ]
    );
    a.client
        .put_records(pb::PutRecordsRequest {
            records: vec![rec(
                "volume",
                "vol1",
                1,
                serde_json::json!({"name": "vol1", "size": "64Mi", "storage_class": "c", "attach_node": "node-a"}),
            )],
        })
        .await
        .unwrap();
    let inv = a.list().await;
    assert!(inv.objects.iter().all(|o| !o.orphan), "{:?}", inv.objects);
    assert_eq!(inv.engines.len(), 1);
    assert_eq!(inv.engines[0].state, "healthy");
    assert_eq!(inv.replicas.len(), 1);

    // Refused while in use, nothing changed.
    let e = a
        .client
        .delete_replica(pb::DeleteReplicaRequest {
            replica: R1.into(),
            dry_run: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    assert!(
        e.message().contains("is a member of raid vol1-raid"),
        "{}",
        e.message()
    );

    // node-b goes away (executor and engine): degraded at once (the path is down, the
    // controller reconnects), then the controller is lost after 2 s and the raid runs on
    // one member.
    b.shutdown().await;
    let mut client = a.client.clone();
    let watcher = client.clone();
    let engine_where = |want: fn(&pb::EngineState) -> bool| {
        let client = watcher.clone();
        move || {
            let mut c = client.clone();
            async move {
                let inv = c
                    .list_volume_objects(pb::ListVolumeObjectsRequest {})
                    .await
                    .ok()?
                    .into_inner();
                inv.engines.into_iter().find(&want)
            }
        }
    };
    let member = |e: &pb::EngineState, r: &str| {
        e.members
            .iter()
            .find(|m| m.replica == r)
            .unwrap()
            .state
            .clone()
    };
    let t = std::time::Instant::now();
    let reconnecting = until(
        Duration::from_secs(10),
        "the engine is degraded",
        engine_where(|e| e.state == "degraded"),
    )
    .await;
    eprintln!("remote engine stopped → degraded: {:?}", t.elapsed());
    assert!(
        ["reconnecting", "missing"].contains(&member(&reconnecting, R2).as_str()),
        "{reconnecting:?}"
    );
    let degraded = until(
        Duration::from_secs(20),
        "the lost controller leaves the raid",
        engine_where(|e| e.state == "degraded" && e.members.iter().any(|m| m.state == "missing")),
    )
    .await;
    eprintln!("remote engine stopped → controller lost: {:?}", t.elapsed());
    assert_eq!(member(&degraded, R2), "missing", "{degraded:?}");
    assert_eq!(member(&degraded, R1), "healthy");
    assert_eq!(degraded.raid_state, "online");
    let raid = &a
        .spdk()
        .bdev_raid_get_bdevs(BdevRaidGetBdevs::default())
        .await
        .unwrap()[0];
    assert!(raid.is_degraded(), "{raid:?}");
    assert!(
        a.spdk()
            .bdev_nvme_get_controllers(BdevNvmeGetControllers::default())
            .await
            .unwrap()
            .is_empty()
    );

    // A replacement replica on node-c joins and is rebuilt (no controller is left, so the
    // initiator's timeouts are set again before the attach).
    let r3 = c.ensure_replica(R3, true).await;
    let eng = a.ensure_engine(vec![local(R1), remote(&r3)]).await;
    assert_eq!(
        eng.actions,
        [
            "set the NVMe initiator's command timeouts".to_string(),
            format!(
                "attach controller {R3} to {PREFIX}{R3} at 127.0.0.1:{}",
                r3.replica.as_ref().unwrap().export.as_ref().unwrap().port
            ),
            format!("add {R3}n1 to raid vol1-raid (rebuild)"),
        ]
    );
    let es = eng.engine.unwrap();
    assert_eq!(es.state, "rebuilding", "{es:?}");
    let rb = es.rebuild.unwrap();
    assert_eq!(rb.target, format!("{R3}n1"));
    assert!(rb.percent < 100);
    assert_eq!(
        es.members.iter().find(|m| m.replica == R3).unwrap().state,
        "rebuilding"
    );
    let healthy = until(
        Duration::from_secs(20),
        "the rebuild completes",
        engine_where(|e| e.state == "healthy"),
    )
    .await;
    assert!(healthy.rebuild.is_none());
    assert!(
        healthy.members.iter().all(|m| m.state == "healthy"),
        "{healthy:?}"
    );
    assert!(
        a.ensure_engine(vec![local(R1), remote(&r3)])
            .await
            .actions
            .is_empty()
    );

    // Teardown in reverse; twice changes nothing; nothing of ours is left.
    let del = client
        .delete_engine(pb::DeleteEngineRequest {
            volume: "vol1".into(),
            dry_run: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        del.actions,
        [
            format!("delete subsystem {PREFIX}vol1"),
            "delete raid vol1-raid".to_string(),
            format!("detach controller {R3}"),
        ]
    );
    assert_eq!(del.engine.unwrap().state, "absent");
    for (n, r) in [(&mut a, R1), (&mut c, R3)] {
        let d = n
            .client
            .delete_replica(pb::DeleteReplicaRequest {
                replica: r.into(),
                dry_run: false,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(!d.actions.is_empty());
        assert_eq!(d.replica.unwrap().state, "missing");
        let d = n
            .client
            .delete_replica(pb::DeleteReplicaRequest {
                replica: r.into(),
                dry_run: false,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(d.actions.is_empty(), "{:?}", d.actions);
    }
    let again = client
        .delete_engine(pb::DeleteEngineRequest {
            volume: "vol1".into(),
            dry_run: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(again.actions.is_empty());
    assert_eq!(a.our_names().await, Vec::<String>::new());
    assert_eq!(c.our_names().await, Vec::<String>::new());
    let inv = a.list().await;
    assert!(inv.objects.is_empty() && inv.engines.is_empty(), "{inv:?}");
    a.shutdown().await;
    c.shutdown().await;
}

#[tokio::test]
async fn bad_requests_and_missing_prerequisites_are_refused_before_anything() {
    // No engine running, no data address.
    let mut n = TestNode::start(&spdk_sim()).await;
    let invalid = |e: tonic::Status, field: &str| {
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e}");
        assert!(e.message().starts_with(field), "{}", e.message());
    };
    let mut bad = replica_req("vol1", true);
    invalid(
        n.client.ensure_replica(bad.clone()).await.unwrap_err(),
        "replica:",
    );
    bad.replica = R1.into();
    bad.size_mib = 0;
    invalid(n.client.ensure_replica(bad).await.unwrap_err(), "size_mib:");
    let mut e = engine_req(vec![local(R1)]);
    e.replicas.push(pb::EngineReplica {
        replica: R2.into(),
        address: "node-b".into(),
        port: 4420,
        ..Default::default()
    });
    invalid(
        n.client.ensure_engine(e).await.unwrap_err(),
        "replicas[1].address:",
    );
    let e = n
        .client
        .ensure_replica(replica_req(R1, true))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    assert!(e.message().contains("--data-address"), "{}", e.message());
    let e = n
        .client
        .ensure_replica(replica_req(R1, false))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    assert!(
        e.message().contains("engine is not running"),
        "{}",
        e.message()
    );
    n.shutdown(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_replica_engine_gets_its_export_back_and_the_raid_never_degrades() {
    let bin = spdk_sim();
    let mut a = vol_node(&bin, "node-a").await;
    let mut b = vol_node(&bin, "node-b").await;
    a.disk_of(512).await;
    b.disk_of(512).await;
    a.ensure_replica(R1, false).await;
    let r2 = b.ensure_replica(R2, true).await;
    let port = r2.replica.as_ref().unwrap().export.as_ref().unwrap().port;
    // A dry run says what it would do and does nothing.
    let mut dry = replica_req(R3, true);
    dry.dry_run = true;
    let d = b.client.ensure_replica(dry).await.unwrap().into_inner();
    // lvol, subsystem, namespace, listener, host (the transport exists).
    assert_eq!(d.actions.len(), 5, "{:?}", d.actions);
    assert_eq!(d.replica.unwrap().state, "missing");
    assert!(b.list().await.replicas.iter().all(|r| r.replica != R3));
    // Growing a replica.
    let mut grow = replica_req(R2, true);
    grow.size_mib = 128;
    let g = b.client.ensure_replica(grow).await.unwrap().into_inner();
    assert_eq!(
        g.actions,
        [format!("resize lvol v2e-lvs-d1/{R2} to 128 MiB")]
    );
    assert_eq!(g.replica.unwrap().size_mib, 128);
    let mut shrink = replica_req(R2, true);
    shrink.size_mib = 64;
    let e = b.client.ensure_replica(shrink).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    assert!(e.message().contains("shrinking"), "{}", e.message());

    let mut req = engine_req(vec![local(R1), remote(&r2)]);
    req.reconnect = Some(pb::ReconnectPolicy {
        reconnect_delay_sec: 1,
        ctrlr_loss_timeout_sec: 30,
        fast_io_fail_timeout_sec: 5,
    });
    let eng = a.client.ensure_engine(req).await.unwrap().into_inner();
    assert_eq!(eng.engine.unwrap().state, "healthy");

    // spdk_tgt on node-b dies; the supervisor restarts it, empty.
    let pid = b
        .node
        .as_ref()
        .unwrap()
        .supervisor()
        .unwrap()
        .snapshot()
        .pid
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let bc = b.client.clone();
    until(Duration::from_secs(20), "node-b's engine is back", || {
        let mut c = bc.clone();
        async move {
            let st = c
                .get_node_status(pb::GetNodeStatusRequest {})
                .await
                .ok()?
                .into_inner();
            (st.engine_restarts == 1 && st.engine_state == "running").then_some(())
        }
    })
    .await;
    // Meanwhile node-a's controller tries to reconnect: degraded, the member still in.
    let inv = a.list().await;
    assert_eq!(inv.engines[0].state, "degraded", "{inv:?}");
    assert_eq!(inv.engines[0].members[1].state, "reconnecting");
    // Its disk comes back (what the block_disk reconcile does: aio bdev, examine), then a
    // reconcile restores the export on the same port.
    b.disk_again().await;
    b.client.reconcile(pb::ReconcileRequest {}).await.unwrap();
    let inv = b.list().await;
    let back = inv.replicas.iter().find(|r| r.replica == R2).unwrap();
    assert_eq!(back.export.as_ref().unwrap().port, port);
    // node-a's controller reconnects; the raid kept both members all along.
    let ac = a.client.clone();
    let healthy = until(Duration::from_secs(20), "the controller reconnects", || {
        let mut c = ac.clone();
        async move {
            let inv = c
                .list_volume_objects(pb::ListVolumeObjectsRequest {})
                .await
                .ok()?
                .into_inner();
            inv.engines.into_iter().find(|e| e.state == "healthy")
        }
    })
    .await;
    assert!(healthy.rebuild.is_none());
    let raid = &a
        .spdk()
        .bdev_raid_get_bdevs(BdevRaidGetBdevs::default())
        .await
        .unwrap()[0];
    assert_eq!(raid.num_base_bdevs_operational, 2);
    a.shutdown().await;
    b.shutdown().await;
}

#[test]
fn serve_takes_a_data_address_and_a_port_range() {
    use clap::Parser;
    use executor::cli::Cli;
    let serve = |extra: &[&str]| {
        let mut args = vec!["v2engine-executor", "serve", "--node", "n1"];
        args.extend_from_slice(extra);
        Cli::try_parse_from(args)
    };
    assert!(serve(&[]).is_ok(), "both are optional");
    assert!(serve(&["--data-address", "10.0.0.7", "--nvmf-ports", "4420-4429"]).is_ok());
    assert!(serve(&["--data-address", "fd00::7", "--nvmf-ports", "4420"]).is_ok());
    let e = serve(&["--data-address", "node-1"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("--data-address"), "{e}");
    let e = serve(&["--nvmf-ports", "4499-4420"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("the first port is above the last"), "{e}");
    let e = serve(&["--nvmf-ports", "0-10"]).unwrap_err().to_string();
    assert!(e.contains("is not a port"), "{e}");
}
