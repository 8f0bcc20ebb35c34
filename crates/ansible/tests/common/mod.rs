//! Test harness: the collection staged with this build's module binary, the real
//! ansible-playbook / ansible-doc / ansible-galaxy from the venv, simulated executors on
//! Unix sockets and loop devices (stopped or detached on drop, also when a test fails). The
//! lab scenarios live in the top-level `acceptance/` suite (`tests/ansible.rs`).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The venv's bin directory; the tests fail (never skip) without ansible-core there.
pub fn venv_bin(tool: &str) -> PathBuf {
    let venv = std::env::var_os("V2ENGINE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv"));
    let p = venv.join("bin").join(tool);
    assert!(
        p.exists(),
        "{} is missing: the Ansible tests need ansible-core in the venv; run scripts/setup.sh",
        p.display()
    );
    p
}

/// This build's module binary.
pub fn module_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_v2engine-ansible"))
}

/// A binary built next to this crate's (same target dir).
pub fn sibling_bin(name: &str) -> PathBuf {
    let p = module_bin()
        .parent()
        .map(|d| d.join(name))
        .unwrap_or_default();
    // The binaries used here (v2engine-executor, spdk-sim) are named as their packages.
    assert!(
        p.exists(),
        "{} is missing: run `cargo build -p {name}` first",
        p.display()
    );
    p
}

fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap().flatten() {
        let from = e.path();
        let to = dst.join(e.file_name());
        let ft = e.file_type().unwrap();
        // A binary a developer installed into the source tree is not this build's.
        if e.file_name() == "v2engine-ansible" {
            continue;
        }
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from).unwrap(), &to).unwrap();
        } else if ft.is_dir() {
            copy_tree(&from, &to);
        } else {
            std::fs::copy(&from, &to).unwrap();
        }
    }
}

/// Copies the collection source `ansible/` to `root/ansible_collections/v2engine/storage`
/// and puts this build's binary into it (a hard link: cheap). Returns the collection's
/// directory.
pub fn stage_collection(root: &Path) -> PathBuf {
    let dst = root.join("ansible_collections/v2engine/storage");
    copy_tree(&repo_root().join("ansible"), &dst);
    ansible::collection::install_binary(&dst, &module_bin(), ansible::collection::Place::HardLink)
        .unwrap();
    dst
}

/// A stdout callback that prints every task's result per host, and the stats, as one JSON
/// document (ansible-core has no JSON stdout callback of its own; ansible.posix has).
const JSON_CALLBACK: &str = r#"
import json
import sys

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'stdout'
    CALLBACK_NAME = 'v2engine_test_json'

    def __init__(self):
        super().__init__()
        self.plays = []

    def v2_playbook_on_play_start(self, play):
        self.plays.append({'play': {'name': play.get_name()}, 'tasks': []})

    def v2_playbook_on_task_start(self, task, is_conditional):
        self.plays[-1]['tasks'].append({'task': {'name': task.get_name()}, 'hosts': {}})

    def _record(self, result, **extra):
        r = dict(result._result)
        r.update(extra)
        self.plays[-1]['tasks'][-1]['hosts'][result._host.get_name()] = r

    def v2_runner_on_ok(self, result):
        self._record(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, failed=True)

    def v2_runner_on_skipped(self, result):
        self._record(result, skipped=True)

    def v2_runner_on_unreachable(self, result):
        self._record(result, unreachable=True)

    def v2_playbook_on_stats(self, stats):
        hosts = sorted(stats.processed.keys())
        out = {'plays': self.plays, 'stats': {h: stats.summarize(h) for h in hosts}}
        sys.stdout.write(json.dumps(out, default=str) + '\n')
"#;

/// Runs an Ansible tool from the venv with a private, reproducible environment.
pub struct Ansible {
    /// Where the collection is installed (`ANSIBLE_COLLECTIONS_PATH`).
    pub collections: PathBuf,
    /// Scratch space (Ansible's temp dirs, playbooks).
    pub work: PathBuf,
}

/// One ansible-playbook run.
pub struct Run {
    /// Exit status code.
    pub code: Option<i32>,
    /// Everything printed.
    pub text: String,
    /// stdout parsed (json callback), or Null.
    pub json: Value,
}

impl Run {
    /// The result of task `name` on `host`.
    pub fn task(&self, name: &str, host: &str) -> &Value {
        let tasks = self.json["plays"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|p| p["tasks"].as_array().into_iter().flatten());
        for t in tasks {
            if t["task"]["name"] == name {
                return &t["hosts"][host];
            }
        }
        panic!("no task {name:?} in the run:\n{}", self.text)
    }

    /// `stats.<host>.<key>` (changed, failures, ok, ...).
    pub fn stat(&self, host: &str, key: &str) -> i64 {
        self.json["stats"][host][key].as_i64().unwrap_or(-1)
    }
}

impl Ansible {
    /// A private Ansible environment under `root` with the collection at `collections`.
    pub fn new(root: &Path, collections: &Path) -> Self {
        let work = root.join("ansible-work");
        std::fs::create_dir_all(work.join("callback_plugins")).unwrap();
        std::fs::write(
            work.join("callback_plugins/v2engine_test_json.py"),
            JSON_CALLBACK,
        )
        .unwrap();
        Ansible {
            collections: collections.to_path_buf(),
            work,
        }
    }

    /// A command for `tool` with the environment set.
    pub fn command(&self, tool: &str) -> Command {
        let mut c = Command::new(venv_bin(tool));
        c.current_dir(&self.work)
            .env("ANSIBLE_COLLECTIONS_PATH", &self.collections)
            .env("ANSIBLE_COLLECTIONS_SCAN_SYS_PATH", "false")
            .env("ANSIBLE_HOME", self.work.join("home"))
            .env("ANSIBLE_LOCAL_TEMP", self.work.join("tmp"))
            .env("ANSIBLE_REMOTE_TMP", self.work.join("remote-tmp"))
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_RETRY_FILES_ENABLED", "false")
            .env("ANSIBLE_DEPRECATION_WARNINGS", "false")
            .env("ANSIBLE_LOCALHOST_WARNING", "false")
            .env("ANSIBLE_INVENTORY_UNPARSED_WARNING", "false")
            .env_remove("ANSIBLE_CONFIG")
            .env_remove("ANSIBLE_INVENTORY")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Runs `tool args` (bounded to 5 minutes).
    pub fn output(&self, tool: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = self.command(tool);
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        wait_bounded(c.spawn().unwrap(), Duration::from_secs(300), tool)
    }

    /// Runs ansible-playbook with the JSON callback above.
    pub fn playbook(&self, args: &[&str]) -> Run {
        let o = self.output(
            "ansible-playbook",
            args,
            &[
                ("ANSIBLE_STDOUT_CALLBACK", "v2engine_test_json"),
                (
                    "ANSIBLE_CALLBACK_PLUGINS",
                    &self.work.join("callback_plugins").display().to_string(),
                ),
            ],
        );
        let stdout = String::from_utf8_lossy(&o.stdout).to_string();
        let stderr = String::from_utf8_lossy(&o.stderr).to_string();
        Run {
            code: o.status.code(),
            json: serde_json::from_str(&stdout).unwrap_or(Value::Null),
            text: format!("{stdout}\n{stderr}"),
        }
    }

    /// Runs ansible-playbook with the default (human) output.
    pub fn playbook_text(&self, args: &[&str]) -> (Option<i32>, String) {
        let o = self.output("ansible-playbook", args, &[]);
        (
            o.status.code(),
            format!(
                "{}\n{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        )
    }

    /// Writes a playbook into the work dir; returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.work.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

/// Waits for `child` at most `limit`, killing it after.
pub fn wait_bounded(mut child: Child, limit: Duration, what: &str) -> Output {
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish in {}s", limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    child.wait_with_output().unwrap()
}

/// Every file under `dirs` with its content, for "nothing changed" checks.
pub fn snapshot(dirs: &[PathBuf]) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for d in dirs {
        walk(d, &mut out);
    }
    out
}

fn walk(p: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
    if p.is_file() {
        out.insert(p.to_path_buf(), std::fs::read(p).unwrap_or_default());
        return;
    }
    let Ok(rd) = std::fs::read_dir(p) else {
        return;
    };
    for e in rd.flatten() {
        let path = e.path();
        // Sockets, pids and locks say nothing about the host's state.
        let name = e.file_name().to_string_lossy().to_string();
        if name.ends_with(".sock") || name.ends_with(".lock") || name.ends_with(".pid") {
            continue;
        }
        walk(&path, out);
    }
}

/// Names the files that differ between two snapshots.
pub fn changed_files(
    a: &BTreeMap<PathBuf, Vec<u8>>,
    b: &BTreeMap<PathBuf, Vec<u8>>,
) -> Vec<PathBuf> {
    let mut keys: Vec<&PathBuf> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

/// True when running as root.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// One simulated node: an executor over a SimHost on a Unix socket.
pub struct SimNode {
    /// Node name.
    pub name: String,
    /// Its files.
    pub dir: PathBuf,
    /// Its socket.
    pub socket: PathBuf,
    /// Extra `serve` flags (`--data-address`, `--nvmf-ports`).
    pub extra: Vec<String>,
    child: Option<Child>,
}

impl SimNode {
    /// Starts the executor (it starts its engine when the records ask for one).
    pub fn start(&mut self) {
        let log = std::fs::File::create(self.dir.join("executor.log")).unwrap();
        let d = &self.dir;
        let child = Command::new(sibling_bin("v2engine-executor"))
            .arg("serve")
            .args(["--node", &self.name, "--socket"])
            .arg(&self.socket)
            .arg("--state-dir")
            .arg(d.join("state"))
            .arg("--host-root")
            .arg(d.join("root"))
            .arg("--sim-host")
            .arg(d.join("sim.json"))
            // spdk-sim stands in for spdk_tgt; the engine stops with the executor.
            .arg("--spdk-tgt")
            .arg(sibling_bin("spdk-sim"))
            .arg("--spdk-socket")
            .arg(d.join("spdk.sock"))
            .arg("--stop-engine-on-exit")
            .args(&self.extra)
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

    /// The host's files: state dir, host root, simulated host.
    pub fn host_dirs(&self) -> Vec<PathBuf> {
        vec![
            self.dir.join("state"),
            self.dir.join("root"),
            self.dir.join("sim.json"),
        ]
    }

    /// `unix://` endpoint.
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// A node failure, as a power cut: the executor and then its engine SIGKILLed by PID,
    /// no clean-up. [`SimNode::start`] brings it back.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        kill_recorded_engine(&self.dir.join("state/engine.pid.json"), "spdk-sim");
        let _ = std::fs::remove_file(&self.socket);
    }
}

impl Drop for SimNode {
    /// Stops the executor (SIGTERM by pid, so it stops its engine; SIGKILL after 10 s),
    /// then the engine it recorded, should it still run. No panics: the test may be
    /// failing already.
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(c.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        kill_recorded_engine(&self.dir.join("state/engine.pid.json"), "spdk-sim");
    }
}

/// Kills the engine a pid file records, if that pid still runs `program`.
pub fn kill_recorded_engine(pid_file: &Path, program: &str) {
    let Some(pid) = std::fs::read(pid_file)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v["pid"].as_u64())
    else {
        return;
    };
    let runs_program = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains(program))
        .unwrap_or(false);
    if runs_program {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        // Gone (or a zombie, whose cmdline is empty) within a bounded wait.
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// N simulated nodes `node-1..N`; the last one's memory is fragmented.
pub struct SimFleet {
    /// The nodes.
    pub nodes: Vec<SimNode>,
}

impl SimFleet {
    /// Starts `n` executors under `root`.
    pub fn new(root: &Path, n: usize) -> Self {
        Self::with_args(root, n, |_| Vec::new())
    }

    /// Like [`SimFleet::new`], with extra `serve` flags per node (numbered from 1).
    pub fn with_args(root: &Path, n: usize, extra: impl Fn(usize) -> Vec<String>) -> Self {
        let mut nodes = Vec::new();
        for i in 1..=n {
            let dir = root.join(format!("node-{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            let mut init = Command::new(sibling_bin("v2engine-executor"));
            init.args(["sim-init", "--memory-mib", "8192", "--sim-host"])
                .arg(dir.join("sim.json"));
            if i == n {
                init.arg("--fragmented");
            }
            assert!(init.status().unwrap().success(), "sim-init failed");
            let mut node = SimNode {
                name: format!("node-{i}"),
                socket: dir.join("executor.sock"),
                dir,
                extra: extra(i),
                child: None,
            };
            node.start();
            nodes.push(node);
        }
        SimFleet { nodes }
    }

    /// `nodes` as module options (JSON, valid YAML).
    pub fn nodes_json(&self) -> String {
        let m: BTreeMap<&str, Value> = self
            .nodes
            .iter()
            .map(|n| {
                (
                    n.name.as_str(),
                    serde_json::json!({"endpoint": n.endpoint()}),
                )
            })
            .collect();
        serde_json::to_string(&m).unwrap()
    }

    /// Every node's host files.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        snapshot(
            &self
                .nodes
                .iter()
                .flat_map(SimNode::host_dirs)
                .collect::<Vec<_>>(),
        )
    }
}

/// A loop device over a sparse file; detached on drop (also when the test fails).
pub struct Loop {
    /// `/dev/loopN`.
    pub dev: String,
    /// The backing file.
    pub file: PathBuf,
}

impl Loop {
    /// Attaches a new sparse file of `mib` MiB at `file`.
    pub fn new(file: &Path, mib: u64) -> Loop {
        assert!(is_root(), "loop devices need root, as CI has");
        let f = std::fs::File::create(file).unwrap();
        f.set_len(mib << 20).unwrap();
        let out = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "losetup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Loop {
            dev: String::from_utf8_lossy(&out.stdout).trim().to_string(),
            file: file.to_path_buf(),
        }
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}
