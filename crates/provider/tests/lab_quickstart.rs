//! The quickstart over SSH against the lab (network namespaces, a real sshd per node, the
//! executors): the README demo's path, as a test. Needs root, as CI has.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Tf, sibling_bin};

/// Brings a lab up in `dir`; tears it down on drop, even when the test fails.
struct Lab {
    dir: PathBuf,
}

impl Lab {
    fn up(dir: &Path, nodes: usize) -> Lab {
        assert!(
            nix_is_root(),
            "the lab test needs root (network namespaces, loop devices)"
        );
        let lab = Lab {
            dir: dir.to_path_buf(),
        };
        let out = Command::new(sibling_bin("v2engine-lab"))
            .args([
                "up",
                "--nodes",
                &nodes.to_string(),
                "--disk-size-mib",
                "64",
                "--dir",
            ])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "lab up failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        lab
    }

    fn cmd(&self, args: &[&str]) {
        let out = Command::new(sibling_bin("v2engine-lab"))
            .args(args)
            .arg("--dir")
            .arg(&self.dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "lab {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new(sibling_bin("v2engine-lab"))
            .arg("down")
            .arg("--dir")
            .arg(&self.dir)
            .output();
    }
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

#[test]
fn quickstart_over_ssh_plans_reboot_applies_and_refreshes_after_reboot() {
    let tmp = tempfile::tempdir().unwrap();
    let lab_dir = tmp.path().join("lab");
    let lab = Lab::up(&lab_dir, 3);
    let vars = format!(
        "-var-file={}",
        lab_dir.join("terraform.tfvars.json").display()
    );

    let tf = Tf::new(tmp.path(), "quickstart");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart");
    for f in ["main.tf", "variables.tf"] {
        std::fs::copy(root.join(f), tf.dir.join(f)).unwrap();
    }
    tf.init();
    let out = tf.ok(&["plan", "-input=false", "-no-color", &vars, "-out=plan.bin"]);
    assert!(out.contains("Node node-3 will need a reboot"), "{out}");
    let plan = tf.show_json(Some("plan.bin"));
    let setting = plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == "v2engine_data_engine_setting.this")
        .unwrap();
    assert_eq!(
        setting["change"]["after"]["reboot_required_nodes"],
        serde_json::json!(["node-3"])
    );

    tf.ok(&["apply", "-input=false", "-no-color", "plan.bin"]);
    let o = tf.run(&[
        "plan",
        "-input=false",
        "-no-color",
        "-detailed-exitcode",
        &vars,
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "second plan not empty:\n{}",
        String::from_utf8_lossy(&o.stdout)
    );

    lab.cmd(&["reboot", "node-3"]);
    tf.ok(&[
        "apply",
        "-refresh-only",
        "-auto-approve",
        "-input=false",
        "-no-color",
        &vars,
    ]);
    let state = tf.show_json(None);
    let outputs = &state["values"]["outputs"];
    assert_eq!(
        outputs["reboot_required_nodes"]["value"],
        serde_json::json!([])
    );
    assert_eq!(
        outputs["nodes"]["value"]["node-3"]["engine_state"],
        "running"
    );

    tf.ok(&[
        "destroy",
        "-auto-approve",
        "-input=false",
        "-no-color",
        &vars,
    ]);
}
