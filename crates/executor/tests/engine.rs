//! Engine supervision in process over gRPC, with spdk-sim as spdk_tgt: start on enable,
//! the version in the status, refusal to stop while volumes use the node, stop on
//! disable, restart after a crash, adoption by a restarted executor, a missing binary.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod engine_support;

use std::path::Path;
use std::time::{Duration, Instant};

use engine_support::{TestNode, alive, rec, setting, spdk_sim, tombstone, until};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use spdk_rpc::types::bdev::BdevAioCreate;
use spdk_rpc::types::lvol::{BdevLvolCreate, BdevLvolCreateLvstore, BdevLvolDelete, LvsRef};
use spdk_rpc::{SpdkApi, SpdkClient};

fn sigkill(pid: u32) {
    kill(Pid::from_raw(i32::try_from(pid).unwrap()), Signal::SIGKILL).unwrap();
}

fn cmdline(pid: u32) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    raw.split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

#[tokio::test]
async fn enable_runs_the_engine_and_disable_stops_it_unless_volumes_use_it() {
    let bin = spdk_sim();
    let mut n = TestNode::start(&bin).await;
    n.put(vec![setting(1, true, 256)]).await;
    assert_eq!(n.predict(vec![]).await.engine_state, "running");

    let t = Instant::now();
    let st = n.reconcile().await.unwrap();
    eprintln!("reconcile with engine start (spdk-sim): {:?}", t.elapsed());
    assert_eq!(st.engine_state, "running", "{st:?}");
    assert_eq!(st.spdk_version, "SPDK v24.09");
    assert_eq!(st.engine_restarts, 0);
    let pid = n.engine_pid().unwrap();
    assert!(alive(pid));
    let socket = n.spdk_socket.display().to_string();
    let config = n.state_dir.join("engine.spdk.json").display().to_string();
    assert_eq!(
        cmdline(pid)[1..],
        [
            "-m",
            "0x1",
            "-s",
            "256",
            "-r",
            socket.as_str(),
            "-c",
            config.as_str(),
            "--msg-mempool-size",
            "32767"
        ],
        "256 MiB: the pools' configuration is passed to the engine"
    );
    assert!(
        std::fs::read_to_string(&config)
            .unwrap()
            .contains("iobuf_set_options"),
        "and written to the state directory"
    );
    // Reconciling again keeps the same process.
    n.reconcile().await.unwrap();
    assert_eq!(n.engine_pid(), Some(pid));

    // A replica-named lvol on an lvstore of the engine.
    let api = SpdkClient::new(&n.spdk_socket);
    let file = n.dir.path().join("backing.img");
    std::fs::File::create(&file)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    api.bdev_aio_create(BdevAioCreate::new("scratch", file.display().to_string()))
        .await
        .unwrap();
    api.bdev_lvol_create_lvstore(BdevLvolCreateLvstore::new("scratch", "lvs-scratch"))
        .await
        .unwrap();
    api.bdev_lvol_create(
        BdevLvolCreate::new(LvsRef::Name("lvs-scratch".into()), "v1-r-0a1b2c3d", 8).thin(),
    )
    .await
    .unwrap();

    // Disabling is refused, at plan time and at apply time; nothing changes.
    n.put(vec![setting(2, false, 256)]).await;
    let want = "refusing to stop the engine (disable) while volumes use it: \
                v1 (replica lvol v1-r-0a1b2c3d on lvstore lvs-scratch)";
    let p = n.predict(vec![]).await;
    assert!(p.errors.iter().any(|e| e.contains(want)), "{:?}", p.errors);
    let e = n.reconcile().await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    assert!(e.message().contains(want), "{}", e.message());
    assert!(alive(pid), "the engine still runs");
    let st = n.status().await;
    assert_eq!(st.engine_state, "running");
    assert!(st.last_error.contains(want));
    assert!(!st.boot_files.is_empty(), "boot files kept");

    // A volume record attached here is a user too.
    api.bdev_lvol_delete(BdevLvolDelete {
        name: "lvs-scratch/v1-r-0a1b2c3d".into(),
    })
    .await
    .unwrap();
    let vol = rec(
        "volume",
        "v2",
        3,
        serde_json::json!({"name": "v2", "size": "1Gi", "storage_class": "c", "attach_node": "node-1"}),
    );
    n.put(vec![vol]).await;
    let e = n.reconcile().await.unwrap_err();
    assert!(
        e.message()
            .contains("while volumes use it: v2 (attached to node node-1)"),
        "{}",
        e.message()
    );
    assert!(alive(pid));

    // Without users the engine stops: SIGTERM, reaped, state disabled.
    n.put(vec![tombstone("volume", "v2", 4)]).await;
    let st = n.reconcile().await.unwrap();
    assert_eq!(st.engine_state, "disabled");
    assert_eq!(st.spdk_version, "");
    assert!(!alive(pid), "the engine is stopped");
    assert_eq!(n.engine_pid(), None);
    assert_eq!(n.status().await.engine_state, "disabled");
    n.shutdown(true).await;
}

#[tokio::test]
async fn a_crashed_engine_is_restarted_with_backoff_and_counted() {
    let mut n = TestNode::start(&spdk_sim()).await;
    n.put(vec![setting(1, true, 256)]).await;
    n.reconcile().await.unwrap();
    let first = n.engine_pid().unwrap();
    let t = Instant::now();
    sigkill(first);
    let client = n.client.clone();
    let st = until(Duration::from_secs(20), "the engine is restarted", || {
        let mut c = client.clone();
        async move {
            let st = c
                .get_node_status(proto::v1::GetNodeStatusRequest {})
                .await
                .ok()?
                .into_inner();
            (st.engine_restarts == 1 && st.engine_state == "running").then_some(st)
        }
    })
    .await;
    let restarted = t.elapsed();
    eprintln!("SIGKILL to running again: {restarted:?}");
    assert!(
        restarted >= Duration::from_millis(450),
        "the first delay is 0.5 s"
    );
    assert_eq!(st.spdk_version, "SPDK v24.09");
    let second = n.engine_pid().unwrap();
    assert_ne!(first, second);
    assert!(alive(second));
    // The engine's log tells what happened.
    let log = std::fs::read_to_string(n.state_dir.join("engine.log")).unwrap();
    assert!(log.contains("ready"), "{log}");
    n.shutdown(true).await;
    assert!(!alive(second));
}

#[tokio::test]
async fn a_restarted_executor_adopts_the_running_engine() {
    let bin = spdk_sim();
    let mut n = TestNode::start(&bin).await;
    n.put(vec![setting(1, true, 256)]).await;
    n.reconcile().await.unwrap();
    let pid = n.engine_pid().unwrap();
    let (state_dir, socket) = (n.state_dir.clone(), n.spdk_socket.clone());
    let dir = n.shutdown(false).await;
    assert!(alive(pid), "the executor's exit leaves the engine running");

    let mut n = TestNode::start_in(dir, state_dir, socket, &bin).await;
    let st = n.reconcile().await.unwrap();
    assert_eq!(st.engine_state, "running");
    assert_eq!(n.engine_pid(), Some(pid), "adopted, not restarted");
    // The adopted engine is watched (pidfd): its death is noticed and it is restarted.
    sigkill(pid);
    let c = n.client.clone();
    until(
        Duration::from_secs(20),
        "the adopted engine is restarted",
        || {
            let mut c = c.clone();
            async move {
                let st = c
                    .get_node_status(proto::v1::GetNodeStatusRequest {})
                    .await
                    .ok()?
                    .into_inner();
                (st.engine_restarts == 1 && st.engine_state == "running").then_some(())
            }
        },
    )
    .await;
    let new = n.engine_pid().unwrap();
    assert_ne!(new, pid);
    n.shutdown(true).await;
    assert!(!alive(new));
}

#[tokio::test]
async fn a_new_cpu_mask_restarts_the_engine() {
    let mut n = TestNode::start(&spdk_sim()).await;
    n.put(vec![setting(1, true, 256)]).await;
    n.reconcile().await.unwrap();
    let pid = n.engine_pid().unwrap();
    n.put(vec![rec(
        "node_v2",
        "node-1",
        2,
        serde_json::json!({"node": "node-1", "cpu_mask": "0x3"}),
    )])
    .await;
    let st = n.reconcile().await.unwrap();
    assert_eq!(st.engine_state, "running");
    let new = n.engine_pid().unwrap();
    assert_ne!(new, pid);
    assert!(!alive(pid));
    assert_eq!(&cmdline(new)[1..3], ["-m", "0x3"]);
    assert_eq!(st.engine_restarts, 0, "a requested restart is no crash");
    n.shutdown(true).await;
}

#[tokio::test]
async fn a_missing_binary_is_an_error_naming_it() {
    let missing = Path::new("/nonexistent/v2engine/spdk_tgt");
    let mut n = TestNode::start(missing).await;
    n.put(vec![setting(1, true, 256)]).await;
    let e = n.reconcile().await.unwrap_err();
    assert!(
        e.message().contains(
            "engine on node node-1: spdk_tgt binary /nonexistent/v2engine/spdk_tgt does not exist"
        ),
        "{}",
        e.message()
    );
    let st = n.status().await;
    assert_eq!(st.engine_state, "failed");
    assert!(st.last_error.contains("/nonexistent/v2engine/spdk_tgt"));
    n.shutdown(true).await;
}

#[tokio::test]
async fn waiting_for_a_reboot_does_not_start_the_engine() {
    let mut n = TestNode::start(&spdk_sim()).await;
    // A fragmented simulated host: only 3 pages now.
    let host =
        executor::host::sim::SimHost::new(n.dir.path().join("sim.json"), n.dir.path().join("root"));
    host.save(&executor::host::sim::SimState::new(
        8192,
        true,
        vec![
            "vfio_pci".into(),
            "uio_pci_generic".into(),
            "nvme_tcp".into(),
        ],
    ))
    .unwrap();
    n.put(vec![setting(1, true, 256)]).await;
    assert_eq!(n.predict(vec![]).await.engine_state, "waiting_for_reboot");
    let st = n.reconcile().await.unwrap();
    assert_eq!(st.engine_state, "waiting_for_reboot");
    assert_eq!(n.engine_pid(), None);
    assert!(!n.spdk_socket.exists());
    n.shutdown(true).await;
}

#[tokio::test]
async fn block_disks_are_stored_only_on_their_own_node() {
    let mut n = TestNode::start(&spdk_sim()).await;
    let other = rec(
        "block_disk",
        "node-2/d1",
        1,
        serde_json::json!({"node": "node-2", "name": "d1", "path": "/dev/loop9"}),
    );
    let e = n
        .client
        .put_records(proto::v1::PutRecordsRequest {
            records: vec![other],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(
        e.message()
            .contains("record block_disk/node-2/d1: a block disk is stored only on its own node; this is node node-1"),
        "{}",
        e.message()
    );
    // Without an engine a valid disk waits; a path that is no block device is refused.
    let file = n.dir.path().join("plain-file");
    std::fs::write(&file, "x").unwrap();
    let p = n
        .predict(vec![engine_support::disk(
            1,
            "d1",
            &file.display().to_string(),
        )])
        .await;
    assert_eq!(
        p.errors,
        [format!(
            "disk node-1/d1: {} is not a block device (regular file)",
            file.display()
        )]
    );
    assert_eq!(p.disks[0].state, "refused");
    n.shutdown(true).await;
}
