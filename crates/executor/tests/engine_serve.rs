//! The `serve` binary with an engine (spdk-sim as `--spdk-tgt`): the engine starts on
//! reconcile, the idle executor uses no CPU, SIGTERM leaves the engine running, the next
//! executor adopts it, and `--stop-engine-on-exit` stops it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod engine_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use engine_support::{EngineGuard, alive, connect, setting, spdk_sim, try_connect, until};
use executor::host::sim::{SimHost, SimState};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use proto::v1 as pb;

const BIN: &str = env!("CARGO_BIN_EXE_v2engine-executor");

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Paths {
    dir: tempfile::TempDir,
}

impl Paths {
    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }
    fn socket(&self) -> PathBuf {
        self.dir.path().join("run/executor.sock")
    }
    fn spdk_socket(&self) -> PathBuf {
        self.dir.path().join("run/spdk.sock")
    }
}

fn serve(p: &Paths, extra: &[&str]) -> Daemon {
    let child = Command::new(BIN)
        .args(["serve", "--node", "node-1", "--socket"])
        .arg(p.socket())
        .arg("--state-dir")
        .arg(p.state())
        .arg("--host-root")
        .arg(p.dir.path().join("root"))
        .arg("--sim-host")
        .arg(p.dir.path().join("sim.json"))
        .arg("--spdk-tgt")
        .arg(spdk_sim())
        .arg("--spdk-socket")
        .arg(p.spdk_socket())
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Daemon(child)
}

async fn status_when(socket: &Path, what: &str, f: fn(&pb::NodeStatus) -> bool) -> pb::NodeStatus {
    let socket = socket.to_path_buf();
    until(Duration::from_secs(20), what, || {
        let socket = socket.clone();
        async move {
            if !socket.exists() {
                return None;
            }
            let mut c = try_connect(&socket).await.ok()?;
            let st = c
                .get_node_status(pb::GetNodeStatusRequest {})
                .await
                .ok()?
                .into_inner();
            f(&st).then_some(st)
        }
    })
    .await
}

fn engine_pid(state: &Path) -> u32 {
    let t = std::fs::read_to_string(state.join("engine.pid.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&t).unwrap();
    u32::try_from(v["pid"].as_u64().unwrap()).unwrap()
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn sigterm_and_wait(mut d: Daemon) -> String {
    let pid = Pid::from_raw(i32::try_from(d.0.id()).unwrap());
    kill(pid, Signal::SIGTERM).unwrap();
    let child = std::mem::replace(&mut d.0, Command::new("true").spawn().unwrap());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    stderr
}

#[tokio::test]
async fn serve_runs_the_engine_leaves_it_on_sigterm_and_adopts_it() {
    let p = Paths {
        dir: tempfile::tempdir().unwrap(),
    };
    std::fs::create_dir_all(p.dir.path().join("root")).unwrap();
    SimHost::new(p.dir.path().join("sim.json"), p.dir.path().join("root"))
        .save(&SimState::new(
            4096,
            false,
            vec![
                "vfio_pci".into(),
                "uio_pci_generic".into(),
                "nvme_tcp".into(),
            ],
        ))
        .unwrap();
    let _guard = EngineGuard(Some(p.state()));

    let d = serve(&p, &[]);
    status_when(&p.socket(), "the executor answers", |_| true).await;
    let mut c = connect(&p.socket()).await;
    c.put_records(pb::PutRecordsRequest {
        records: vec![setting(1, true, 256)],
    })
    .await
    .unwrap();
    let st = c
        .reconcile(pb::ReconcileRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(st.engine_state, "running");
    let pid = engine_pid(&p.state());
    assert!(alive(pid));

    // Idle: the executor sleeps (it waits on the child; nothing polls).
    let exec_pid = d.0.id();
    let before = cpu_ticks(exec_pid);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = cpu_ticks(exec_pid) - before;
    eprintln!("executor CPU over 2 s idle with a running engine: {used} ticks");
    assert!(
        used <= 1,
        "the idle executor used {used} clock ticks in 2 s"
    );

    // SIGTERM: the executor exits, the engine keeps running.
    drop(c);
    let t = std::time::Instant::now();
    // (Waited for in a blocking task, so this runtime closes the client's connection.)
    tokio::task::spawn_blocking(move || sigterm_and_wait(d))
        .await
        .unwrap();
    eprintln!("first executor exited after {:?}", t.elapsed());
    assert!(alive(pid), "the engine outlives the executor");

    // The next executor adopts it (same pid) and, asked to, stops it on exit.
    let t = std::time::Instant::now();
    let d = serve(&p, &["--stop-engine-on-exit"]);
    let st = status_when(&p.socket(), "the engine is adopted", |s| {
        s.engine_state == "running"
    })
    .await;
    eprintln!("second executor adopted the engine after {:?}", t.elapsed());
    assert_eq!(st.spdk_version, "SPDK v24.09");
    assert_eq!(engine_pid(&p.state()), pid, "adopted, not restarted");
    let stderr = tokio::task::spawn_blocking(move || sigterm_and_wait(d))
        .await
        .unwrap();
    assert!(stderr.contains("stopping the engine on exit"), "{stderr}");
    assert!(!alive(pid), "stopped with the executor");
    assert!(!p.state().join("engine.pid.json").exists());
}
