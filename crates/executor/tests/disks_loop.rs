//! Block disks on real loop devices (needs root), with spdk-sim as spdk_tgt, in process
//! over gRPC: an ext4 device, a mounted one and one with a partition table are refused
//! with their reasons and left byte-for-byte untouched; a clean one becomes an aio bdev
//! with an lvstore; the lvstore survives an engine crash (restart, aio bdev re-created,
//! examine) with the same UUID; removal is refused while a replica lives on it, and
//! afterwards leaves the lvstore on the device to be imported again.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod engine_support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use engine_support::{TestNode, disk, setting, spdk_sim, tombstone, until};
use proto::v1 as pb;
use spdk_rpc::types::bdev::BdevGetBdevs;
use spdk_rpc::types::lvol::{BdevLvolCreate, BdevLvolDelete, BdevLvolGetLvols, LvsRef};
use spdk_rpc::{SpdkApi, SpdkClient};

fn run(prog: &str, args: &[&str]) -> String {
    let out = Command::new(prog).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{prog} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A loop device over a sparse file; detached on drop.
struct Loop {
    dev: String,
}

impl Loop {
    fn new(dir: &Path, name: &str, partscan: bool) -> Self {
        let file = dir.join(format!("{name}.img"));
        std::fs::File::create(&file)
            .unwrap()
            .set_len(64 << 20)
            .unwrap();
        let f = file.display().to_string();
        let mut args = vec!["--find", "--show"];
        if partscan {
            args.push("--partscan");
        }
        args.push(&f);
        Self {
            dev: run("losetup", &args),
        }
    }

    fn name(&self) -> &str {
        self.dev.trim_start_matches("/dev/")
    }

    /// The first MiB.
    fn head(&self) -> Vec<u8> {
        let mut buf = vec![0u8; 1 << 20];
        std::fs::File::open(&self.dev)
            .unwrap()
            .read_exact(&mut buf)
            .unwrap();
        buf
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

/// A mount; unmounted on drop.
struct Mounted {
    dir: PathBuf,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

async fn spdk_bdevs(api: &SpdkClient) -> Vec<String> {
    let mut v: Vec<String> = api
        .bdev_get_bdevs(BdevGetBdevs::all())
        .await
        .unwrap()
        .into_iter()
        .filter(|b| b.driver_specific.aio.is_some())
        .map(|b| b.name)
        .collect();
    v.sort();
    v
}

fn disk_status<'a>(st: &'a pb::NodeStatus, name: &str) -> &'a pb::DiskStatus {
    st.disks
        .iter()
        .find(|d| d.name == format!("node-1/{name}"))
        .unwrap_or_else(|| panic!("no disk {name} in {:?}", st.disks))
}

#[tokio::test]
async fn loop_devices_become_disks_or_are_refused_untouched() {
    assert!(
        is_root(),
        "this test needs root (loop devices, mount); CI runs as root"
    );
    let tmp = tempfile::tempdir().unwrap();
    let ext = Loop::new(tmp.path(), "ext", false);
    let mnt = Loop::new(tmp.path(), "mnt", false);
    let part = Loop::new(tmp.path(), "part", true);
    let good = Loop::new(tmp.path(), "good", false);
    // No lazy initialisation: otherwise the kernel's ext4lazyinit thread keeps writing
    // inode tables of the mounted filesystem in the background, and its bytes change
    // under the "left untouched" check for reasons that are not ours.
    let eager = "lazy_itable_init=0,lazy_journal_init=0";
    run("mkfs.ext4", &["-q", "-F", "-E", eager, &ext.dev]);
    run("mkfs.ext4", &["-q", "-F", "-E", eager, &mnt.dev]);
    let mount_dir = tmp.path().join("mnt");
    std::fs::create_dir(&mount_dir).unwrap();
    // Read-only: a read-write ext4 mount has the kernel itself update the superblock at
    // times of its choosing, which would make "left untouched" fail for reasons not ours.
    // A read-only mount is still a mount, and must be refused all the same.
    run(
        "mount",
        &["-o", "ro", &mnt.dev, &mount_dir.display().to_string()],
    );
    let _mounted = Mounted {
        dir: mount_dir.clone(),
    };
    let mut sfdisk = Command::new("sfdisk")
        .args(["-q", &part.dev])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    sfdisk
        .stdin
        .take()
        .unwrap()
        .write_all(b"label: dos\n,16M,L\n")
        .unwrap();
    assert!(sfdisk.wait().unwrap().success());
    // Some kernels ignore the re-read sfdisk asks for on a loop device; add the
    // partitions explicitly so sysfs lists them.
    if !Path::new(&format!("/sys/class/block/{}p1", part.name())).exists() {
        run("partx", &["-a", &part.dev]);
    }
    let before: Vec<Vec<u8>> = [&ext, &mnt, &part].iter().map(|l| l.head()).collect();

    let mut n = TestNode::start(&spdk_sim()).await;
    n.put(vec![setting(1, true, 256)]).await;
    n.reconcile().await.unwrap();
    let records = vec![
        disk(2, "ext", &ext.dev),
        disk(2, "mnt", &mnt.dev),
        disk(2, "part", &part.dev),
        disk(2, "good", &good.dev),
    ];

    // Plan time: errors name the disk, the device and the reason; nothing changes.
    let p = n.predict(records.clone()).await;
    let has = |errors: &[String], want: &str| errors.iter().any(|e| e.contains(want));
    let want_ext = format!(
        "disk node-1/ext: {} has a filesystem signature (ext4); set force_format to overwrite it",
        ext.dev
    );
    let want_mnt = format!(
        "disk node-1/mnt: {} is mounted ({} on {})",
        mnt.dev,
        mnt.dev,
        mount_dir.display()
    );
    let want_part = format!(
        "disk node-1/part: {} has partitions ({}p1); set force_format to overwrite them; {} has a partition table (dos)",
        part.dev,
        part.name(),
        part.dev
    );
    for w in [&want_ext, &want_mnt, &want_part] {
        assert!(has(&p.errors, w), "{w} not in {:#?}", p.errors);
    }
    let states: Vec<(&str, &str)> = p
        .disks
        .iter()
        .map(|d| (d.name.as_str(), d.state.as_str()))
        .collect();
    assert_eq!(
        states,
        [
            ("node-1/ext", "refused"),
            ("node-1/good", "attach"),
            ("node-1/mnt", "refused"),
            ("node-1/part", "refused"),
        ]
    );
    // force_format lifts the signature, never the mount.
    let mut forced = records.clone();
    for r in &mut forced {
        let mut spec: serde_json::Value = serde_json::from_str(&r.spec_json).unwrap();
        spec["force_format"] = true.into();
        r.spec_json = spec.to_string();
    }
    let p = n.predict(forced).await;
    assert_eq!(p.errors.len(), 1, "{:#?}", p.errors);
    assert!(p.errors[0].contains("is mounted"));

    // ListDisks: every device with its reasons.
    let paths: Vec<String> = [&ext, &mnt, &part, &good]
        .iter()
        .map(|l| l.dev.clone())
        .collect();
    let list = n
        .client
        .list_disks(pb::ListDisksRequest {
            paths: paths.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let cand = |dev: &str| {
        list.candidates
            .iter()
            .rfind(|c| c.path == dev)
            .unwrap_or_else(|| panic!("{dev} not listed"))
            .clone()
    };
    assert_eq!(cand(&good.dev).excluded, Vec::<String>::new());
    assert_eq!(cand(&good.dev).size_bytes, 64 << 20);
    assert_eq!(cand(&ext.dev).signature, "a filesystem signature (ext4)");
    assert!(cand(&mnt.dev).excluded[0].starts_with("is mounted"));
    assert_eq!(cand(&part.dev).excluded.len(), 2);
    let root = list
        .candidates
        .iter()
        .find(|c| c.excluded.iter().any(|e| e == "holds the root filesystem"));
    eprintln!("root disk: {:?}", root.map(|c| &c.path));

    // Apply: the good disk becomes an aio bdev with an lvstore, the others are refused.
    n.put(records).await;
    let e = n.reconcile().await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    for w in [&want_ext, &want_mnt, &want_part] {
        assert!(
            e.message().contains(w.as_str()),
            "{w} not in {}",
            e.message()
        );
    }
    let st = n.status().await;
    let g = disk_status(&st, "good").clone();
    assert_eq!(g.state, "ready", "{g:?}");
    assert_eq!(
        (g.bdev.as_str(), g.lvstore.as_str()),
        ("v2e-good", "v2e-lvs-good")
    );
    assert!(!g.lvstore_uuid.is_empty());
    assert!(
        g.capacity_bytes > 32 << 20 && g.free_bytes == g.capacity_bytes,
        "{g:?}"
    );
    for name in ["ext", "mnt", "part"] {
        assert_eq!(disk_status(&st, name).state, "refused");
    }
    let api = SpdkClient::new(&n.spdk_socket);
    assert_eq!(spdk_bdevs(&api).await, ["v2e-good"]);

    // The same device under another name is refused while the first keeps it.
    let link = tmp.path().join("twin-link");
    std::os::unix::fs::symlink(&good.dev, &link).unwrap();
    let link_s = link.display().to_string();
    n.put(vec![
        disk(3, "twin", &link_s),
        tombstone("block_disk", "node-1/ext", 3),
        tombstone("block_disk", "node-1/mnt", 3),
        tombstone("block_disk", "node-1/part", 3),
    ])
    .await;
    let e = n.reconcile().await.unwrap_err();
    assert!(
        e.message().contains(&format!(
            "disk node-1/twin: {link_s} is also claimed by disk node-1/good"
        )) && e.message().contains(&format!(
            "is already open in the engine as bdev v2e-good ({})",
            good.dev
        )),
        "{}",
        e.message()
    );
    assert_eq!(disk_status(&n.status().await, "good").state, "ready");
    n.put(vec![tombstone("block_disk", "node-1/twin", 4)]).await;
    let st = n.reconcile().await.unwrap();
    assert_eq!(st.disks.len(), 1);

    // A replica on the disk; the engine crashes; the executor restarts it and the lvstore
    // (with the replica) comes back by itself under the same UUID.
    api.bdev_lvol_create(
        BdevLvolCreate::new(LvsRef::Name("v2e-lvs-good".into()), "vol1-r-0a1b2c3d", 8).thin(),
    )
    .await
    .unwrap();
    let pid = n.engine_pid().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let c = n.client.clone();
    let uuid = g.lvstore_uuid.clone();
    let st = until(Duration::from_secs(20), "engine and lvstore back", || {
        let mut c = c.clone();
        let uuid = uuid.clone();
        async move {
            let st = c
                .get_node_status(pb::GetNodeStatusRequest {})
                .await
                .ok()?
                .into_inner();
            let ok = st.engine_state == "running"
                && st.engine_restarts == 1
                && st
                    .disks
                    .iter()
                    .any(|d| d.state == "ready" && d.lvstore_uuid == uuid);
            ok.then_some(st)
        }
    })
    .await;
    assert!(st.last_error.is_empty(), "{}", st.last_error);
    assert_ne!(n.engine_pid(), Some(pid));
    let lvols = api
        .bdev_lvol_get_lvols(BdevLvolGetLvols::default())
        .await
        .unwrap();
    assert_eq!(
        lvols.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
        ["vol1-r-0a1b2c3d"]
    );

    // Disabling is refused while the replica lives on the node.
    n.put(vec![setting(5, false, 256)]).await;
    let e = n.reconcile().await.unwrap_err();
    assert!(
        e.message()
            .contains("vol1 (replica lvol vol1-r-0a1b2c3d on lvstore v2e-lvs-good)"),
        "{}",
        e.message()
    );
    n.put(vec![setting(6, true, 256)]).await;

    // Removing the disk is refused while the replica lives on it...
    n.put(vec![tombstone("block_disk", "node-1/good", 7)]).await;
    let p = n.predict(vec![]).await;
    assert!(has(
        &p.errors,
        "disk node-1/good cannot be removed while lvols live on its lvstore v2e-lvs-good: vol1-r-0a1b2c3d"
    ));
    let e = n.reconcile().await.unwrap_err();
    assert!(e.message().contains("cannot be removed while lvols live"));
    assert_eq!(disk_status(&n.status().await, "good").state, "in_use");
    assert_eq!(spdk_bdevs(&api).await, ["v2e-good"]);
    // ... and once it is gone only the aio bdev goes; the lvstore stays on the device and
    // is imported again, same UUID, when the disk comes back.
    api.bdev_lvol_delete(BdevLvolDelete {
        name: "v2e-lvs-good/vol1-r-0a1b2c3d".into(),
    })
    .await
    .unwrap();
    let st = n.reconcile().await.unwrap();
    assert!(st.disks.is_empty());
    assert_eq!(spdk_bdevs(&api).await, Vec::<String>::new());
    n.put(vec![disk(8, "good", &good.dev)]).await;
    let st = n.reconcile().await.unwrap();
    assert_eq!(disk_status(&st, "good").lvstore_uuid, g.lvstore_uuid);

    // Disable: the engine stops.
    n.put(vec![
        tombstone("block_disk", "node-1/good", 9),
        setting(10, false, 256),
    ])
    .await;
    let st = n.reconcile().await.unwrap();
    assert_eq!(st.engine_state, "disabled");
    let last = n.engine_pid();
    assert_eq!(last, None);
    n.shutdown(true).await;

    // The refused devices were never written to.
    let after: Vec<Vec<u8>> = [&ext, &mnt, &part].iter().map(|l| l.head()).collect();
    for (i, name) in ["ext", "mnt", "part"].iter().enumerate() {
        assert!(before[i] == after[i], "the first MiB of {name} changed");
    }
}
