//! Drives the simulator with SPDK's own Python client (`spdk-rpc` from PyPI `spdk==25.5`).
//!
//! The venv is `$V2ENGINE_VENV`, or `<workspace root>/.venv`. When it or the package is missing
//! the test fails and says how to create it: it is never skipped silently.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use support::{free_port, sparse, start};

fn spdk_rpc() -> PathBuf {
    let venv = std::env::var_os("V2ENGINE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv"));
    let bin = venv.join("bin/spdk-rpc");
    assert!(
        bin.exists(),
        "SPDK's Python client not found at {}: create the venv with \
         `python3 -m venv .venv && .venv/bin/pip install spdk==25.5 ansible-core` in the workspace root \
         (or point V2ENGINE_VENV at a venv that has `spdk==25.5`)",
        bin.display()
    );
    bin
}

struct Rpc {
    bin: PathBuf,
    socket: PathBuf,
}

impl Rpc {
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(&self.bin)
            .arg("-s")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run spdk-rpc");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.run(args);
        assert!(ok, "spdk-rpc {args:?} failed: {stdout} {stderr}");
        stdout
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(args);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("spdk-rpc {args:?} printed non-JSON ({e}): {out}"))
    }
}

#[test]
fn spdk_rpc_from_pypi_drives_a_full_flow() {
    let bin = spdk_rpc();
    let dir = tempfile::tempdir().unwrap();
    let disk = sparse(dir.path(), "disk.img", 512 << 20);
    let sim = start(dir.path(), "a");
    let rpc = Rpc {
        bin,
        socket: sim.socket().to_owned(),
    };

    assert_eq!(
        rpc.json(&["spdk_get_version"])["version"],
        json!("SPDK v24.09")
    );
    assert_eq!(
        rpc.ok(&["bdev_aio_create", disk.to_str().unwrap(), "aio0"]),
        "aio0"
    );
    let lvs = rpc.ok(&["bdev_lvol_create_lvstore", "aio0", "lvs0"]);
    assert_eq!(lvs.len(), 36, "an lvstore UUID: {lvs}");
    let l0 = rpc.ok(&["bdev_lvol_create", "-l", "lvs0", "-t", "lvol0", "16"]);
    let l1 = rpc.ok(&["bdev_lvol_create", "-l", "lvs0", "lvol1", "16"]);
    assert_ne!(l0, l1);
    let bdevs = rpc.json(&["bdev_get_bdevs"]);
    assert_eq!(bdevs.as_array().unwrap().len(), 3);
    let one = rpc.json(&["bdev_get_bdevs", "-b", "lvs0/lvol0"]);
    assert_eq!(one[0]["name"], json!(l0));
    assert_eq!(
        one[0]["driver_specific"]["lvol"]["thin_provision"],
        json!(true)
    );
    let stores = rpc.json(&["bdev_lvol_get_lvstores", "-l", "lvs0"]);
    assert_eq!(
        stores[0]["free_clusters"],
        json!(stores[0]["total_data_clusters"].as_u64().unwrap() - 4)
    );
    assert_eq!(
        rpc.json(&["bdev_lvol_get_lvols"]).as_array().unwrap().len(),
        2
    );

    rpc.ok(&[
        "bdev_raid_create",
        "-n",
        "r0",
        "-r",
        "raid1",
        "-b",
        "lvs0/lvol0 lvs0/lvol1",
    ]);
    let raids = rpc.json(&["bdev_raid_get_bdevs", "all"]);
    assert_eq!(raids[0]["name"], json!("r0"));
    assert_eq!(raids[0]["num_base_bdevs_discovered"], json!(2));

    let nqn = "nqn.2026-11.io.v2engine:vol-r0";
    let port = free_port().to_string();
    rpc.ok(&["nvmf_create_transport", "-t", "TCP"]);
    rpc.ok(&[
        "nvmf_create_subsystem",
        nqn,
        "-a",
        "-s",
        "V2E00000000000000001",
    ]);
    // The `spdk.rpc` package itself, for a result the command line does not print.
    let script = "import json, sys\nfrom spdk.rpc.client import JSONRPCClient\nimport spdk.rpc.nvmf as nvmf\n\
                  c = JSONRPCClient(sys.argv[1])\nprint(json.dumps(nvmf.nvmf_subsystem_add_ns(c, nqn=sys.argv[2], bdev_name='r0')))";
    let python = rpc.bin.with_file_name("python3");
    let out = Command::new(&python)
        .args(["-c", script])
        .arg(&rpc.socket)
        .arg(nqn)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "1",
        "the namespace id"
    );
    rpc.ok(&[
        "nvmf_subsystem_add_listener",
        nqn,
        "-t",
        "tcp",
        "-a",
        "127.0.0.1",
        "-s",
        &port,
        "-f",
        "ipv4",
    ]);
    let subs = rpc.json(&["nvmf_get_subsystems"]);
    assert_eq!(subs[1]["nqn"], json!(nqn));
    assert_eq!(subs[1]["listen_addresses"][0]["trsvcid"], json!(port));
    assert_eq!(subs[1]["namespaces"][0]["bdev_name"], json!("r0"));

    // Errors come back the way rpc.py reports SPDK's: code and message, non-zero exit.
    let (ok, stdout, stderr) = rpc.run(&["bdev_lvol_create_lvstore", "aio0", "lvsX"]);
    assert!(!ok);
    let report = format!("{stdout}{stderr}");
    assert!(
        report.contains("Operation not permitted") && report.contains("-1"),
        "{report}"
    );
}
