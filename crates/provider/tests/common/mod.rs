//! Acceptance harness: real executors (SimHost) on Unix sockets in a temp dir, and the
//! real `terraform` binary installing this provider from a filesystem mirror, offline.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The real terraform binary; the tests fail (never skip) without it.
pub fn terraform_bin() -> PathBuf {
    for p in ["/usr/local/bin/terraform", "/usr/bin/terraform"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!(
        "terraform is not installed (expected /usr/local/bin/terraform): the acceptance tests need the real binary"
    );
}

/// A binary built next to this test's provider binary (same target dir).
pub fn sibling_bin(name: &str) -> PathBuf {
    let provider = PathBuf::from(env!("CARGO_BIN_EXE_terraform-provider-v2engine"));
    let p = provider.parent().expect("target dir").join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        p.display()
    );
    p
}

/// One simulated node: its executor process and files.
pub struct Node {
    pub name: String,
    pub dir: PathBuf,
    pub socket: PathBuf,
    /// Extra `serve` flags (e.g. `--data-address`, `--nvmf-ports`).
    pub extra: Vec<String>,
    child: Option<Child>,
}

impl Node {
    fn args(&self) -> Vec<String> {
        let d = &self.dir;
        vec![
            "serve".into(),
            "--node".into(),
            self.name.clone(),
            "--socket".into(),
            self.socket.display().to_string(),
            "--state-dir".into(),
            d.join("state").display().to_string(),
            "--host-root".into(),
            d.join("root").display().to_string(),
            "--sim-host".into(),
            d.join("sim.json").display().to_string(),
            // The engine: spdk-sim standing in for spdk_tgt, as in the lab.
            "--spdk-tgt".into(),
            sibling_bin("spdk-sim").display().to_string(),
            "--spdk-socket".into(),
            d.join("spdk.sock").display().to_string(),
        ]
        .into_iter()
        .chain(self.extra.iter().cloned())
        .collect()
    }

    /// Starts the executor and waits until its socket exists (bounded).
    pub fn start(&mut self) {
        let log = std::fs::File::create(self.dir.join("executor.log")).unwrap();
        let child = Command::new(sibling_bin("v2engine-executor"))
            .args(self.args())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&self.socket).is_err() {
            assert!(
                Instant::now() < deadline,
                "executor of {} did not start",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the executor (SIGKILL by PID) and waits for it, then its engine (the
    /// spdk-sim serving this node's socket, found by its command line), as a power cut would.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        kill_matching(&self.dir.join("spdk.sock").display().to_string());
        let _ = std::fs::remove_file(&self.socket);
    }

    /// A simulated reboot: stop, apply the boot configuration, start.
    pub fn reboot(&mut self) {
        self.stop();
        let st = Command::new(sibling_bin("v2engine-executor"))
            .args(["sim-reboot", "--sim-host"])
            .arg(self.dir.join("sim.json"))
            .arg("--host-root")
            .arg(self.dir.join("root"))
            .status()
            .unwrap();
        assert!(st.success(), "sim-reboot of {} failed", self.name);
        self.start();
    }

    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.socket.display())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}

/// SIGKILLs every process whose command line contains `needle` (bounded wait for exit).
pub fn kill_matching(needle: &str) {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(needle) && !cmd.contains("executor serve") {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while std::path::Path::new(&format!("/proc/{pid}/cmdline")).exists()
                && std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// N simulated nodes; the last one's memory is fragmented.
pub struct SimFleet {
    pub dir: tempfile::TempDir,
    pub nodes: Vec<Node>,
}

impl SimFleet {
    pub fn new(n: usize) -> Self {
        Self::with_args(n, |_| vec![])
    }

    /// Like [`SimFleet::new`], with extra `serve` flags per node (numbered from 1).
    pub fn with_args(n: usize, extra: impl Fn(usize) -> Vec<String>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut nodes = Vec::new();
        for i in 1..=n {
            let nd = dir.path().join(format!("node-{i}"));
            std::fs::create_dir_all(&nd).unwrap();
            let mut init = Command::new(sibling_bin("v2engine-executor"));
            init.args(["sim-init", "--memory-mib", "8192", "--sim-host"])
                .arg(nd.join("sim.json"));
            if i == n {
                init.arg("--fragmented");
            }
            assert!(init.status().unwrap().success());
            let mut node = Node {
                name: format!("node-{i}"),
                socket: nd.join("executor.sock"),
                dir: nd,
                extra: extra(i),
                child: None,
            };
            node.start();
            nodes.push(node);
        }
        SimFleet { dir, nodes }
    }

    /// [`SimFleet::new`] whose executors export replicas over NVMe-oF on 127.0.0.1, node i
    /// on ports `first_port + 20 i` to `+ 19` (each test file picks its own range).
    pub fn exporting(n: usize, first_port: usize) -> Self {
        Self::with_args(n, |i| {
            let first = first_port + 20 * i;
            vec![
                "--data-address".into(),
                "127.0.0.1".into(),
                "--nvmf-ports".into(),
                format!("{first}-{}", first + 19),
            ]
        })
    }

    /// The provider block's `nodes` in HCL.
    pub fn nodes_hcl(&self) -> String {
        let mut s = String::from("{\n");
        for n in &self.nodes {
            s.push_str(&format!(
                "    \"{}\" = {{ endpoint = \"{}\" }}\n",
                n.name,
                n.endpoint()
            ));
        }
        s.push_str("  }");
        s
    }

    pub fn node(&mut self, name: &str) -> &mut Node {
        self.nodes.iter_mut().find(|n| n.name == name).unwrap()
    }

    /// Every record file under the nodes' state dirs, for "nothing changed" checks.
    pub fn records_snapshot(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        for n in &self.nodes {
            walk(&n.dir.join("state"), &mut out);
        }
        out.sort();
        out
    }
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap_or_default()));
        }
    }
}

/// A loop device over a 256 MiB sparse file; detached on drop.
pub struct Loop {
    pub dev: String,
}

impl Loop {
    pub fn new(img: &Path) -> Loop {
        let f = std::fs::File::create(img).unwrap();
        f.set_len(256 << 20).unwrap();
        let out = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(img)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "losetup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Loop {
            dev: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        }
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

/// A Terraform working directory using this provider offline.
pub struct Tf {
    pub dir: PathBuf,
    cli_config: PathBuf,
}

impl Tf {
    /// Installs the provider into a filesystem mirror under `root` and writes the CLI config.
    pub fn new(root: &Path, name: &str) -> Self {
        let mirror = root.join("plugins/registry.terraform.io/v2engine/v2engine/0.1.0/linux_amd64");
        std::fs::create_dir_all(&mirror).unwrap();
        let dst = mirror.join("terraform-provider-v2engine_v0.1.0");
        if !dst.exists() {
            std::fs::copy(env!("CARGO_BIN_EXE_terraform-provider-v2engine"), &dst).unwrap();
        }
        let cli_config = root.join("terraformrc");
        std::fs::write(
            &cli_config,
            format!(
                "provider_installation {{\n  filesystem_mirror {{\n    path = \"{}\"\n    include = [\"v2engine/v2engine\"]\n  }}\n  direct {{ exclude = [\"v2engine/v2engine\"] }}\n}}\n",
                root.join("plugins").display()
            ),
        )
        .unwrap();
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        Tf { dir, cli_config }
    }

    pub fn write(&self, main_tf: &str) {
        std::fs::write(self.dir.join("main.tf"), main_tf).unwrap();
    }

    /// Runs terraform with `args` (bounded to 5 minutes).
    pub fn run(&self, args: &[&str]) -> Output {
        let mut child = Command::new(terraform_bin())
            .args(args)
            .current_dir(&self.dir)
            .env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .env_remove("TF_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("terraform {args:?} did not finish in 5 minutes");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.wait_with_output().unwrap()
    }

    /// Runs terraform and asserts success; returns stdout + stderr.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(o.status.success(), "terraform {args:?} failed:\n{text}");
        text
    }

    /// Runs terraform and asserts failure; returns stdout + stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            !o.status.success(),
            "terraform {args:?} should have failed:\n{text}"
        );
        text
    }

    pub fn init(&self) {
        self.ok(&["init", "-input=false", "-no-color"]);
    }

    /// `terraform show -json FILE` parsed.
    pub fn show_json(&self, file: Option<&str>) -> serde_json::Value {
        let mut args = vec!["show", "-json", "-no-color"];
        args.extend(file);
        let o = self.run(&args);
        assert!(
            o.status.success(),
            "show failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).unwrap()
    }
}

/// `terraform { required_providers }` + the provider block.
pub fn header(nodes_hcl: &str) -> String {
    format!(
        "terraform {{\n  required_providers {{\n    v2engine = {{ source = \"v2engine/v2engine\" }}\n  }}\n}}\n\nprovider \"v2engine\" {{\n  nodes = {nodes_hcl}\n}}\n"
    )
}
