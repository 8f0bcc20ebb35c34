//! A lab for one scenario: `v2engine-lab up` on the run's lane, torn down on drop (even when
//! the scenario fails), and SPDK's own view of each node's engine.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::bins;
use crate::lane::Lane;

/// A running lab in `dir`.
pub struct Lab {
    /// The lab's directory (lab.json, terraformrc, terraform.tfvars.json, nodes/…).
    pub dir: PathBuf,
    /// The engine the nodes run.
    pub lane: Lane,
}

impl Lab {
    /// Brings up `nodes` nodes with 64 MiB disks in `dir` on `lane`.
    pub fn up(dir: &Path, nodes: usize, lane: &Lane) -> Lab {
        assert!(
            bins::is_root(),
            "the lab needs root (network namespaces, loop devices)"
        );
        let lab = Lab {
            dir: dir.to_path_buf(),
            lane: lane.clone(),
        };
        let out = Command::new(bins::bin("v2engine-lab"))
            .args(["up", "--nodes", &nodes.to_string(), "--disk-size-mib", "64"])
            .args(lane.lab_args())
            .arg("--dir")
            .arg(dir)
            .output()
            .expect("run v2engine-lab up");
        assert!(
            out.status.success(),
            "lab up on {} failed: {}",
            lane.name(),
            String::from_utf8_lossy(&out.stderr)
        );
        lab
    }

    /// `v2engine-lab ARGS --dir DIR`, asserting success; returns stdout.
    pub fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new(bins::bin("v2engine-lab"))
            .args(args)
            .arg("--dir")
            .arg(&self.dir)
            .output()
            .expect("run v2engine-lab");
        assert!(
            out.status.success(),
            "lab {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `-var-file=<lab>/terraform.tfvars.json`.
    pub fn tfvars_arg(&self) -> String {
        format!(
            "-var-file={}",
            self.dir.join("terraform.tfvars.json").display()
        )
    }

    /// The lab's Terraform CLI configuration (the provider from the lab's mirror).
    pub fn terraformrc(&self) -> PathBuf {
        self.dir.join("terraformrc")
    }

    /// `node`'s engine socket.
    pub fn spdk_socket(&self, node: &str) -> PathBuf {
        self.dir.join("nodes").join(node).join("run/spdk.sock")
    }

    /// SPDK's own Python client (`spdk-rpc` of the venv, PyPI `spdk`) calling `method` on
    /// `node`'s engine socket; its JSON answer.
    pub fn spdk(&self, node: &str, method: &[&str]) -> serde_json::Value {
        self.try_spdk(node, method)
            .unwrap_or_else(|e| panic!("spdk-rpc {method:?} on {node}: {e}"))
    }

    /// [`Lab::spdk`], the failure returned (an engine still starting, say).
    pub fn try_spdk(&self, node: &str, method: &[&str]) -> Result<serde_json::Value, String> {
        let out = Command::new(bins::venv_bin("spdk-rpc"))
            .arg("-s")
            .arg(self.spdk_socket(node))
            .args(method)
            .output()
            .map_err(|e| format!("cannot run spdk-rpc: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        if out.stdout.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&out.stdout).map_err(|e| {
            format!(
                "printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// `node`'s volume objects as SPDK lists them: `lvol <lvs/name>`, `subsystem <nqn>`
    /// (discovery left out), `raid <name>`, `controller <name>`.
    pub fn objects(&self, node: &str) -> Vec<String> {
        let mut out = Vec::new();
        let list = |v: serde_json::Value| v.as_array().cloned().unwrap_or_default();
        for l in list(self.spdk(node, &["bdev_lvol_get_lvols"])) {
            out.push(format!("lvol {}", l["alias"].as_str().unwrap_or("?")));
        }
        for s in list(self.spdk(node, &["nvmf_get_subsystems"])) {
            let nqn = s["nqn"].as_str().unwrap_or("?");
            if nqn != "nqn.2014-08.org.nvmexpress.discovery" {
                out.push(format!("subsystem {nqn}"));
            }
        }
        for r in list(self.spdk(node, &["bdev_raid_get_bdevs", "all"])) {
            out.push(format!("raid {}", r["name"].as_str().unwrap_or("?")));
        }
        for c in list(self.spdk(node, &["bdev_nvme_get_controllers"])) {
            out.push(format!("controller {}", c["name"].as_str().unwrap_or("?")));
        }
        out
    }

    /// Waits (bounded: 60 s) until `node`'s engine answers with `n` lvstores: after a reboot
    /// the executor restarts the engine and re-attaches its disks on its own.
    pub fn wait_for_lvstores(&self, node: &str, n: usize) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if let Ok(l) = self.try_spdk(node, &["bdev_lvol_get_lvstores"])
                && l.as_array().map_or(0, Vec::len) == n
            {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{node} did not come back with {n} lvstores within 60 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    /// Waits (bounded by `within`) until raid `raid` on `node` has `n` members in use.
    pub fn wait_for_raid_members(&self, node: &str, raid: &str, n: u64, within: Duration) {
        let deadline = std::time::Instant::now() + within;
        loop {
            let found = self
                .try_spdk(node, &["bdev_raid_get_bdevs", "all"])
                .ok()
                .and_then(|v| {
                    v.as_array()?
                        .iter()
                        .find(|r| r["name"] == raid)
                        .and_then(|r| r["num_base_bdevs_discovered"].as_u64())
                });
            if found == Some(n) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "raid {raid} on {node} did not come to {n} members within {within:?} (has {found:?})"
            );
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    }

    /// Asserts that SPDK lists no volume object (lvol, subsystem, raid, controller) on any
    /// of `nodes`: what a destroy must leave.
    pub fn assert_no_objects(&self, nodes: &[&str]) {
        for n in nodes {
            assert_eq!(self.objects(n), Vec::<String>::new(), "{n}");
        }
    }

    /// The lab's state (lab.json).
    pub fn state(&self) -> lab::state::LabState {
        lab::state::load(&self.dir.join("lab.json"))
            .expect("read lab.json")
            .expect("the lab has a lab.json")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Ok(exe) = std::panic::catch_unwind(|| bins::bin("v2engine-lab")) {
            let _ = Command::new(exe)
                .arg("down")
                .arg("--dir")
                .arg(&self.dir)
                .output();
        }
    }
}

/// True when `objects` has one starting with `prefix`.
pub fn has(objects: &[String], prefix: &str) -> bool {
    objects.iter().any(|o| o.starts_with(prefix))
}
