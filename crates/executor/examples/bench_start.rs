//! Start-to-ready time, idle RSS and idle CPU of the `v2engine-executor` binary.
//!
//! `cargo build -p v2engine-executor --examples && target/debug/examples/bench_start [RUNS]`
//! (set `V2ENGINE_EXECUTOR_BIN` to measure another build, e.g. a release one). Each run
//! spawns `serve` on a temp socket and times until the socket answers GetNodeStatus, then
//! reads VmRSS from /proc/PID/status and the CPU ticks spent during 2 s of idleness.
//! Runs with SimHost and with LinuxHost on this machine (no records, so nothing changes).
//! Targets (docs/design.md): ready ≤ 100 ms, idle RSS ≤ 10 MiB, zero CPU when idle.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use proto::v1 as pb;
use tonic::transport::Endpoint;

type Error = Box<dyn std::error::Error>;

fn binary() -> Result<PathBuf, Error> {
    if let Ok(p) = std::env::var("V2ENGINE_EXECUTOR_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("no target directory")?;
    Ok(dir.join("v2engine-executor"))
}

async fn status(socket: &Path) -> Result<pb::NodeStatus, Error> {
    let path = socket.to_path_buf();
    let ch = Endpoint::from_static("http://executor.local")
        .connect_with_connector(tower::service_fn(move |_: http::Uri| {
            let p = path.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(p).await?,
                ))
            }
        }))
        .await?;
    let mut c = pb::executor_client::ExecutorClient::new(ch);
    Ok(c.get_node_status(pb::GetNodeStatusRequest {})
        .await?
        .into_inner())
}

fn proc_field(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state is field 3; utime and stime are fields 14 and 15.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

struct Run {
    ready: Duration,
    rss_kib: u64,
    anon_kib: u64,
    threads: u64,
    idle_ticks: u64,
}

async fn one(bin: &Path, sim: bool) -> Result<Run, Error> {
    let tmp = tempfile::tempdir()?;
    let socket = tmp.path().join("executor.sock");
    let state_file = tmp.path().join("sim.json");
    let mut cmd = Command::new(bin);
    cmd.args(["serve", "--node", "bench", "--socket"])
        .arg(&socket);
    cmd.arg("--state-dir").arg(tmp.path().join("state"));
    if sim {
        let ok = Command::new(bin)
            .args(["sim-init", "--sim-host"])
            .arg(&state_file)
            .stderr(Stdio::null())
            .status()?;
        if !ok.success() {
            return Err("sim-init failed".into());
        }
        cmd.arg("--host-root")
            .arg(tmp.path().join("root"))
            .arg("--sim-host")
            .arg(&state_file);
    }
    cmd.env("V2ENGINE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let start = Instant::now();
    let mut child = cmd.spawn()?;
    let pid = child.id();
    let mut ready = None;
    for _ in 0..5000 {
        if status(&socket).await.is_ok() {
            ready = Some(start.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let result = match ready {
        None => Err("the executor never answered".into()),
        Some(ready) => {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let t0 = cpu_ticks(pid).ok_or("no /proc/PID/stat")?;
            tokio::time::sleep(Duration::from_secs(2)).await;
            let t1 = cpu_ticks(pid).ok_or("no /proc/PID/stat")?;
            let rss_kib = proc_field(pid, "VmRSS:").ok_or("no VmRSS")?;
            let anon_kib = proc_field(pid, "RssAnon:").unwrap_or(0);
            let threads = proc_field(pid, "Threads:").unwrap_or(0);
            Ok(Run {
                ready,
                rss_kib,
                anon_kib,
                threads,
                idle_ticks: t1 - t0,
            })
        }
    };
    kill(Pid::from_raw(i32::try_from(pid)?), Signal::SIGTERM)?;
    let st = child.wait()?;
    if !st.success() {
        return Err(format!("executor exited with {st}").into());
    }
    result
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

fn main() -> Result<(), Error> {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(5);
    let bin = binary()?;
    println!("binary: {}", bin.display());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    for (label, sim) in [("SimHost", true), ("LinuxHost /", false)] {
        let mut ready = Vec::new();
        let mut rss = Vec::new();
        let mut anon = Vec::new();
        let mut threads = 0;
        let mut ticks = 0;
        for _ in 0..runs {
            let r = rt.block_on(one(&bin, sim))?;
            ready.push(u64::try_from(r.ready.as_micros())?);
            rss.push(r.rss_kib);
            anon.push(r.anon_kib);
            threads = threads.max(r.threads);
            ticks += r.idle_ticks;
        }
        println!(
            "{label:12} runs {runs}: ready median {:.1} ms (min {:.1}, max {:.1}); idle RSS median {:.1} MiB (max {:.1}; anonymous {:.1}); threads {threads}; CPU ticks while idle 2 s: {ticks} in total",
            median(ready.clone()) as f64 / 1000.0,
            ready.iter().min().copied().unwrap_or(0) as f64 / 1000.0,
            ready.iter().max().copied().unwrap_or(0) as f64 / 1000.0,
            median(rss.clone()) as f64 / 1024.0,
            rss.iter().max().copied().unwrap_or(0) as f64 / 1024.0,
            median(anon.clone()) as f64 / 1024.0,
        );
    }
    Ok(())
}
