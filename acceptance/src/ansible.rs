//! The real `ansible-playbook` / `ansible-galaxy` of the venv against a lab: the collection
//! staged with this build's module binary (`v2engine-ansible`), a private and reproducible
//! Ansible environment, a stdout callback that prints every task's result as JSON, and
//! snapshots of the lab's host files for "nothing changed" checks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::bins;
use crate::lab::Lab;

/// How long one Ansible tool run may take.
const TOOL_LIMIT: Duration = Duration::from_secs(300);

fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap_or_else(|e| panic!("create {}: {e}", dst.display()));
    let entries = std::fs::read_dir(src).unwrap_or_else(|e| panic!("read {}: {e}", src.display()));
    for e in entries.flatten() {
        let from = e.path();
        let to = dst.join(e.file_name());
        // A binary a developer installed into the source tree is not this build's.
        if e.file_name() == "v2engine-ansible" {
            continue;
        }
        let ft = e
            .file_type()
            .unwrap_or_else(|err| panic!("type of {}: {err}", from.display()));
        if ft.is_symlink() {
            let target = std::fs::read_link(&from)
                .unwrap_or_else(|err| panic!("read link {}: {err}", from.display()));
            std::os::unix::fs::symlink(target, &to)
                .unwrap_or_else(|err| panic!("symlink {}: {err}", to.display()));
        } else if ft.is_dir() {
            copy_tree(&from, &to);
        } else {
            std::fs::copy(&from, &to)
                .unwrap_or_else(|err| panic!("copy {}: {err}", from.display()));
        }
    }
}

/// Copies the collection source `ansible/` to `root/ansible_collections/v2engine/storage`
/// and puts this build's module binary into it (a hard link: cheap). Returns the
/// collection's directory.
pub fn stage_collection(root: &Path) -> PathBuf {
    let dst = root.join("ansible_collections/v2engine/storage");
    copy_tree(&bins::repo_root().join("ansible"), &dst);
    ansible::collection::install_binary(
        &dst,
        &bins::bin("v2engine-ansible"),
        ansible::collection::Place::HardLink,
    )
    .unwrap_or_else(|e| panic!("install the module binary into {}: {e}", dst.display()));
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

/// Runs an Ansible tool of the venv with a private, reproducible environment.
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
    /// stdout parsed (the JSON callback), or Null.
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

    /// `stats.<host>.<key>` (changed, failures, ok, ...); -1 when absent.
    pub fn stat(&self, host: &str, key: &str) -> i64 {
        self.json["stats"][host][key].as_i64().unwrap_or(-1)
    }
}

impl Ansible {
    /// A private Ansible environment under `root` with the collection at `collections`.
    pub fn new(root: &Path, collections: &Path) -> Self {
        let work = root.join("ansible-work");
        let callbacks = work.join("callback_plugins");
        std::fs::create_dir_all(&callbacks)
            .unwrap_or_else(|e| panic!("create {}: {e}", callbacks.display()));
        std::fs::write(callbacks.join("v2engine_test_json.py"), JSON_CALLBACK)
            .unwrap_or_else(|e| panic!("write the callback into {}: {e}", callbacks.display()));
        Ansible {
            collections: collections.to_path_buf(),
            work,
        }
    }

    /// A command for the venv's `tool` with the environment set.
    pub fn command(&self, tool: &str) -> Command {
        let mut c = Command::new(bins::venv_bin(tool));
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

    /// Runs `tool args` with `env` added (bounded to 5 minutes).
    pub fn output(&self, tool: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = self.command(tool);
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let child = c.spawn().unwrap_or_else(|e| panic!("start {tool}: {e}"));
        wait_bounded(child, TOOL_LIMIT, tool)
    }

    /// Runs ansible-playbook with the JSON callback.
    pub fn playbook(&self, args: &[&str]) -> Run {
        let callbacks = self.work.join("callback_plugins").display().to_string();
        let o = self.output(
            "ansible-playbook",
            args,
            &[
                ("ANSIBLE_STDOUT_CALLBACK", "v2engine_test_json"),
                ("ANSIBLE_CALLBACK_PLUGINS", &callbacks),
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

    /// Runs ansible-playbook with its default (human) output: exit code and everything
    /// printed.
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

    /// Writes a playbook into the work directory; returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.work.join(name);
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        p
    }
}

/// Waits for `child` at most `limit`, killing it after (and failing, naming `what`).
pub fn wait_bounded(mut child: Child, limit: Duration, what: &str) -> Output {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) => {}
            Err(e) => panic!("wait for {what}: {e}"),
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish in {}s", limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("output of {what}: {e}"))
}

/// The Ansible inventory `v2engine-lab up` wrote.
pub fn inventory(lab: &Lab) -> PathBuf {
    lab.dir.join("inventory.yml")
}

/// Node `name`'s directory in the lab.
pub fn node_dir(lab: &Lab, name: &str) -> PathBuf {
    lab.dir.join("nodes").join(name)
}

/// The host files of nodes `node-1..=nodes` (executor state, host root, the simulated host's
/// memory and modules), for "nothing changed" checks.
///
/// The engine's output, `state/engine.log` (and its rotated `engine.log.1`), is kept on
/// spdk-sim, which prints one ready line at start and nothing else unless something fails,
/// so the log must not change; a
/// real spdk_tgt prints notices and rate-limited deprecation warnings for read-only calls
/// too, so on the real lanes the log is left out: it says what the engine process did, not
/// what state the host is in.
pub fn host_snapshot(lab: &Lab, nodes: usize) -> BTreeMap<PathBuf, Vec<u8>> {
    let dirs: Vec<PathBuf> = (1..=nodes)
        .flat_map(|i| {
            let d = node_dir(lab, &format!("node-{i}"));
            [d.join("state"), d.join("root"), d.join("sim-host.json")]
        })
        .collect();
    let mut s = snapshot(&dirs);
    if lab.lane.is_real() {
        s.retain(|p, _| !is_engine_log(p));
    }
    s
}

/// True for the engine's log (`engine.log`, `engine.log.1`).
pub fn is_engine_log(p: &Path) -> bool {
    p.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("engine.log"))
}

/// `node`'s engine log (what the engine printed), empty when there is none.
pub fn engine_log(lab: &Lab, node: &str) -> String {
    std::fs::read_to_string(node_dir(lab, node).join("state/engine.log")).unwrap_or_default()
}

/// Every file under `dirs` with its content (sockets, locks and pid files left out: they say
/// nothing about the host's state).
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
        let name = e.file_name().to_string_lossy().to_string();
        if name.ends_with(".sock") || name.ends_with(".lock") || name.ends_with(".pid") {
            continue;
        }
        walk(&e.path(), out);
    }
}

/// The files that differ between two snapshots.
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn changed_files_names_added_removed_and_modified_files_only() {
        let p = |s: &str| PathBuf::from(s);
        let a = BTreeMap::from([
            (p("/same"), b"x".to_vec()),
            (p("/modified"), b"1".to_vec()),
            (p("/removed"), b"r".to_vec()),
        ]);
        let b = BTreeMap::from([
            (p("/same"), b"x".to_vec()),
            (p("/modified"), b"2".to_vec()),
            (p("/added"), b"a".to_vec()),
        ]);
        assert_eq!(
            changed_files(&a, &b),
            [p("/added"), p("/modified"), p("/removed")]
        );
        assert!(changed_files(&a, &a).is_empty());
    }

    #[test]
    fn a_snapshot_leaves_out_sockets_locks_and_pid_files() {
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("state");
        std::fs::create_dir_all(&sub).unwrap();
        for f in ["record.json", "engine.sock", "store.lock", "x.pid"] {
            std::fs::write(sub.join(f), f).unwrap();
        }
        let s = snapshot(&[d.path().to_path_buf(), d.path().join("absent")]);
        assert_eq!(
            s.keys().cloned().collect::<Vec<_>>(),
            [sub.join("record.json")]
        );
    }
}
