//! Real SPDK lane: the engine's memory follows the setting on this machine's own kernel.
//!
//! `LinuxHost` rooted at `/` (the real `/proc/sys/vm/nr_hugepages`), a hugetlbfs mount
//! (`/dev/hugepages`, or one mounted for the test at a temp dir) and a real spdk_tgt from
//! `V2ENGINE_SPDK_DIR`. For the smallest memory the model accepts and for the default, the
//! executor's own reconcile allocates the pages and starts the engine through its
//! supervisor (pools sized by a generated `-c` configuration where the memory needs it);
//! an aio bdev on a temp file gets an lvstore and the NVMe-oF TCP transport is created;
//! disabling stops the engine and gives the pages back. A guard restores the count of
//! pages found, kills the engine and unmounts what the test mounted, also on failure.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::rec;
use executor::engine::pools::pools_for;
use executor::engine::process::{EngineFiles, start_time};
use executor::engine::spec::{CONFIG_FILE, EngineOptions};
use executor::host::HostOs;
use executor::host::linux::LinuxHost;
use executor::node::{Node, NodeOptions};
use model::validate::MIN_HUGEPAGE_MIB;
use serde_json::json;
use spdk_rpc::types::bdev::BdevAioCreate;
use spdk_rpc::types::lvol::{BdevLvolCreateLvstore, BdevLvolGetLvstores};
use spdk_rpc::types::nvmf::{NvmfCreateTransport, NvmfGetTransports};
use spdk_rpc::{SpdkApi, SpdkClient};

/// `$V2ENGINE_SPDK_DIR/bin/spdk_tgt`; panics (fails the test) when it is not there.
fn spdk_tgt() -> PathBuf {
    let dir = std::env::var_os("V2ENGINE_SPDK_DIR").unwrap_or_else(|| {
        panic!("V2ENGINE_SPDK_DIR is not set: point it at an SPDK build (a directory with bin/spdk_tgt), e.g. /work/shared/spdk/real/v26.05")
    });
    let bin = Path::new(&dir).join("bin/spdk_tgt");
    assert!(
        bin.is_file(),
        "V2ENGINE_SPDK_DIR={}: {} does not exist",
        Path::new(&dir).display(),
        bin.display()
    );
    bin
}

/// The hugetlbfs mount point of 2 MiB pages: `/dev/hugepages` when mounted, else `None`.
fn mounted_hugetlbfs() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    mounts.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 3 && f[2] == "hugetlbfs" && f[1] == "/dev/hugepages" && !f[3].contains("1G"))
            .then(|| PathBuf::from(f[1]))
    })
}

fn meminfo(key: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{key} in /proc/meminfo"))
}

fn vm_rss_mib(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .unwrap_or(0)
        / 1024
}

fn cmdline(pid: u32) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    raw.split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// Restores what the test changed on the machine, in order: the engine (killed if still
/// running), the hugepage count found, the hugetlbfs the test mounted.
struct MachineGuard {
    host: LinuxHost,
    found: u64,
    state_dir: PathBuf,
    mounted: Option<PathBuf>,
}

impl Drop for MachineGuard {
    fn drop(&mut self) {
        let f = EngineFiles::new(&self.state_dir);
        if let Ok(t) = std::fs::read_to_string(f.pid_file())
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&t)
            && let Some(pid) = v["pid"].as_u64().and_then(|p| u32::try_from(p).ok())
        {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            let until = Instant::now() + Duration::from_secs(10);
            while start_time(pid).is_some() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        if let Err(e) = self.host.set_nr_hugepages(self.found) {
            eprintln!("cannot restore nr_hugepages to {}: {e}", self.found);
        }
        if let Some(dir) = &self.mounted {
            let _ = Command::new("umount").arg(dir).status();
        }
    }
}

fn setting(revision: u64, enabled: bool, mib: i64) -> executor::records::IncomingRecord {
    rec(
        "data_engine_setting",
        "cluster",
        revision,
        json!({"enabled": enabled, "hugepage_limit_mib": mib, "kernel_modules": []}),
    )
}

async fn reconcile(node: &Node) -> executor::daemon::NodeStatus {
    let exec = std::sync::Arc::clone(node.executor());
    tokio::task::spawn_blocking(move || exec.reconcile())
        .await
        .unwrap()
        .expect("reconcile")
}

/// One memory size: allocate, start, serve an lvstore, stop, release.
#[allow(clippy::too_many_arguments)]
async fn run_with_memory(
    node: &Node,
    host: &LinuxHost,
    found: u64,
    state_dir: &Path,
    socket: &Path,
    work: &Path,
    revision: u64,
    mib: i64,
) {
    let pages = u64::try_from(mib).unwrap() / 2;
    node.executor()
        .put_records(&[setting(revision, true, mib)])
        .unwrap();
    let st = reconcile(node).await;
    assert_eq!(
        (st.engine_state.as_str(), st.last_error.as_str()),
        ("running", ""),
        "{mib} MiB: the engine runs; log:\n{}",
        std::fs::read_to_string(Node::engine_log(state_dir)).unwrap_or_default()
    );
    assert!(!st.reboot_required, "{mib} MiB: {:?}", st.reboot_reasons);
    assert_eq!(st.hugepages_allocated, pages, "{mib} MiB");
    assert_eq!(
        host.hugepages().unwrap().total,
        pages,
        "{mib} MiB: nr_hugepages"
    );
    let used = meminfo("HugePages_Total:") - meminfo("HugePages_Free:");
    assert_eq!(
        used, pages,
        "{mib} MiB: spdk_tgt took all its memory (-s) from the hugepages"
    );

    let pid = node.supervisor().unwrap().snapshot().pid.unwrap();
    let argv = cmdline(pid);
    let config = state_dir.join(CONFIG_FILE);
    match pools_for(u64::try_from(mib).unwrap(), 1) {
        Some(pools) => {
            let at = argv
                .iter()
                .position(|a| a == "-c")
                .expect("-c on the command line");
            assert_eq!(Path::new(&argv[at + 1]), config);
            let written: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
            assert_eq!(written, pools.json_config());
            let m = argv.iter().position(|a| a == "--msg-mempool-size").unwrap();
            assert_eq!(argv[m + 1], pools.msg_mempool.to_string());
        }
        None => assert!(
            !argv.iter().any(|a| a == "-c" || a == "--msg-mempool-size"),
            "{mib} MiB runs with SPDK's defaults: {argv:?}"
        ),
    }

    // Serve: an aio bdev on a temp file, an lvstore on it, the NVMe-oF TCP transport.
    let file = work.join(format!("disk-{mib}.img"));
    std::fs::File::create(&file)
        .unwrap()
        .set_len(256 << 20)
        .unwrap();
    let spdk = SpdkClient::new(socket);
    spdk.bdev_aio_create(BdevAioCreate {
        name: "disk0".into(),
        filename: file.to_str().unwrap().into(),
        block_size: Some(4096),
        ..Default::default()
    })
    .await
    .expect("bdev_aio_create");
    let uuid = spdk
        .bdev_lvol_create_lvstore(BdevLvolCreateLvstore::new("disk0", "lvs0"))
        .await
        .expect("bdev_lvol_create_lvstore");
    let lvs = spdk
        .bdev_lvol_get_lvstores(BdevLvolGetLvstores::default())
        .await
        .unwrap();
    assert_eq!(lvs.len(), 1, "{lvs:?}");
    assert_eq!(
        (lvs[0].uuid.as_str(), lvs[0].name.as_str()),
        (uuid.as_str(), "lvs0")
    );
    assert!(lvs[0].total_data_clusters > 0, "{lvs:?}");
    // Below 1024 MiB the start-up configuration made the TCP transport with buffers that
    // fit the pools; with SPDK's defaults the executor creates it as usual.
    let has_tcp = |t: &[spdk_rpc::types::nvmf::NvmfTransport]| {
        t.iter().any(|t| t.trtype.eq_ignore_ascii_case("tcp"))
    };
    let before = spdk
        .nvmf_get_transports(NvmfGetTransports::default())
        .await
        .unwrap();
    if mib < 1024 {
        assert!(
            has_tcp(&before),
            "{mib} MiB: the configuration made the TCP transport"
        );
    } else {
        assert!(
            !has_tcp(&before),
            "{mib} MiB: no configuration, no transport yet"
        );
        spdk.nvmf_create_transport(NvmfCreateTransport::tcp())
            .await
            .expect("nvmf_create_transport TCP");
    }
    let version = spdk.spdk_get_version().await.unwrap().version;
    eprintln!(
        "{version}: hugepage_limit_mib {mib}: running, VmRSS {} MiB, {used} of {pages} hugepages in use, argv {argv:?}",
        vm_rss_mib(pid)
    );
    drop(spdk);

    // Disable: the engine stops, the pages go back to the count found.
    node.executor()
        .put_records(&[setting(revision + 1, false, mib)])
        .unwrap();
    let st = reconcile(node).await;
    assert_ne!(st.engine_state, "running", "{mib} MiB: stopped");
    assert!(
        start_time(pid).is_none(),
        "{mib} MiB: spdk_tgt {pid} exited"
    );
    assert_eq!(
        host.hugepages().unwrap().total,
        found,
        "{mib} MiB: the pages were released"
    );
    std::fs::remove_file(&file).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real SPDK lane: scripts/test.sh runs it with V2ENGINE_SPDK_DIR"]
async fn the_engine_starts_with_the_smallest_accepted_memory_and_the_default_on_real_hugepages() {
    let program = spdk_tgt();
    let host = LinuxHost::new("/");
    let found = host
        .hugepages()
        .expect("read this machine's 2 MiB pool")
        .total;
    let work = tempfile::tempdir().unwrap();
    let state_dir = work.path().join("state");
    let (huge_dir, mounted) = match mounted_hugetlbfs() {
        Some(d) => (d, None),
        None => {
            let d = work.path().join("hugepages");
            std::fs::create_dir_all(&d).unwrap();
            let ok = Command::new("mount")
                .args(["-t", "hugetlbfs", "-o", "pagesize=2M", "nodev"])
                .arg(&d)
                .status()
                .unwrap();
            assert!(ok.success(), "mount hugetlbfs at {} (root)", d.display());
            (d.clone(), Some(d))
        }
    };
    let _guard = MachineGuard {
        host: LinuxHost::new("/"),
        found,
        state_dir: state_dir.clone(),
        mounted,
    };

    let socket = work.path().join("run/spdk.sock");
    let mut opts = EngineOptions::new(&program, &socket);
    opts.ready_timeout = Duration::from_secs(60);
    opts.stop_timeout = Duration::from_secs(15);
    opts.args = vec![
        "-u".into(),
        "--disable-cpumask-locks".into(),
        "--huge-dir".into(),
        huge_dir.to_str().unwrap().into(),
        // Pages go back to the kernel when spdk_tgt exits, not when its files are removed.
        "--huge-unlink".into(),
    ];
    let node = Node::start(NodeOptions {
        node: "node-1".into(),
        state_dir: state_dir.clone(),
        host: Box::new(LinuxHost::new("/")),
        engine: Some(opts),
        device_root: PathBuf::from("/"),
        volumes: Default::default(),
    })
    .unwrap();
    // No boot files on this machine: the runtime allocation only.
    node.executor()
        .put_records(&[rec(
            "node_v2",
            "node-1",
            1,
            json!({"node": "node-1", "boot_persistence": "none"}),
        )])
        .unwrap();

    // The smallest memory the model accepts; one below it is refused at validation.
    assert!(
        model::validate::check_hugepage_mib(MIN_HUGEPAGE_MIB - 2).is_err(),
        "below the minimum is refused"
    );
    run_with_memory(
        &node,
        &host,
        found,
        &state_dir,
        &socket,
        work.path(),
        1,
        MIN_HUGEPAGE_MIB,
    )
    .await;
    // The default.
    let default = model::DataEngineSetting::default().hugepage_limit_mib;
    assert_eq!(default, 2048);
    run_with_memory(
        &node,
        &host,
        found,
        &state_dir,
        &socket,
        work.path(),
        3,
        default,
    )
    .await;
    node.shutdown(true).await.unwrap();
}
