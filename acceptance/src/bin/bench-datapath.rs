//! bench-datapath: the cost of the replication path, measured with spdk_nvme_perf on a
//! running lab. See `HELP`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use acceptance::datapath::rpc::{HostGrant, Rpc, RpcError, TempExport};
use acceptance::datapath::{DataPath, DatapathError, PerfResult, PerfSpec, Target, Workload};
use serde_json::{Value, json};

const HELP: &str = "\
bench-datapath: the cost of the replication path of a v2engine volume, on a running lab.

USAGE:
    bench-datapath --lab-dir DIR --volume NAME [OPTIONS]

For the volume NAME of the lab in DIR (lab.json; engines at DIR/nodes/<node>/run/spdk.sock),
it finds the attach node (the node whose engine exports the frontend subsystem
nqn.2026-11.io.v2engine:NAME) and runs SPDK's spdk_nvme_perf, 4 KiB random reads and random
writes at queue depth 32 for a few seconds each, in the same run, in rounds alternating the
two paths, against:
  (a) replicated: the volume's frontend (raid1 over the local replica lvol and the remote
      replicas over NVMe/TCP);
  (b) bare: an lvol of the same size on the same lvstore (same disk, same engine) as the
      volume's local replica, exported bare on the attach node by a temporary subsystem
      nqn.2026-11.io.v2engine:bench-bare-NAME. (The replica lvol itself cannot be exported
      while it is a raid1 member: SPDK refuses a namespace on a claimed bdev, and writes
      beside the raid would make the replicas diverge.)
Both are filled first with a pattern through spdk_dd (thin lvols would otherwise answer reads
of unallocated clusters without touching the disk). It prints IOPS, MiB/s, average and p99
latency of each (medians over the rounds), and the ratio replicated/bare.

THE VOLUME'S DATA IS OVERWRITTEN (pattern fill and random writes): bench a scratch volume.

The frontend admits only allowed host NQNs: the bench adds its own host NQN to the frontend
subsystem through SPDK's RPC for the run and removes it afterwards (unless it was already
allowed); it says so in its output. Do not apply the volume while the bench runs: the
executor resets the frontend's hosts to its own list when it reconciles the volume. The bare subsystem and lvol are deleted afterwards, also
when a measurement fails.

OPTIONS:
    --lab-dir DIR        the lab's directory (required)
    --volume NAME        the volume (required)
    --spdk-dir DIR       SPDK build with bin/spdk_nvme_perf and bin/spdk_dd
                         (default: $V2ENGINE_SPDK_DIR, else the build the lab's engines run)
    --seconds N          seconds per measurement (default 5)
    --rounds N           measurements per path and workload, alternating the two paths;
                         the table shows the median of each figure (default 3)
    --queue-depth N      queue depth (default 32)
    --io-size BYTES      I/O size (default 4096)
    --host-nqn NQN       host NQN the tools present
                         (default nqn.2026-11.io.v2engine:host:bench-datapath)
    --netns NS           run the tools inside network namespace NS (default: the current
                         one, which reaches the lab's bridge)
    --no-fill            skip the pattern fill
    -h, --help           this text
";

const NQN_PREFIX: &str = "nqn.2026-11.io.v2engine:";

#[derive(Debug, thiserror::Error)]
enum BenchError {
    #[error("{0}\n\n{HELP}")]
    Usage(String),
    #[error("lab {dir}: {message}")]
    Lab { dir: PathBuf, message: String },
    #[error("volume {volume}: {message}")]
    Volume { volume: String, message: String },
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error(transparent)]
    Datapath(#[from] DatapathError),
}

#[derive(Debug)]
struct Args {
    lab_dir: PathBuf,
    volume: String,
    spdk_dir: Option<PathBuf>,
    seconds: u32,
    rounds: u32,
    queue_depth: u32,
    io_size: u32,
    host_nqn: String,
    netns: Option<String>,
    fill: bool,
}

fn parse_args(argv: &[String]) -> Result<Option<Args>, BenchError> {
    let mut lab_dir = None;
    let mut volume = None;
    let mut a = Args {
        lab_dir: PathBuf::new(),
        volume: String::new(),
        spdk_dir: None,
        seconds: 5,
        rounds: 3,
        queue_depth: 32,
        io_size: 4096,
        host_nqn: format!("{NQN_PREFIX}host:bench-datapath"),
        netns: None,
        fill: true,
    };
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| BenchError::Usage(format!("{flag} needs a value")))
        };
        let number = |v: String| {
            v.parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| BenchError::Usage(format!("{flag}: {v:?} is not a positive number")))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--lab-dir" => lab_dir = Some(PathBuf::from(value()?)),
            "--volume" => volume = Some(value()?),
            "--spdk-dir" => a.spdk_dir = Some(PathBuf::from(value()?)),
            "--seconds" => a.seconds = number(value()?)?,
            "--rounds" => a.rounds = number(value()?)?,
            "--queue-depth" => a.queue_depth = number(value()?)?,
            "--io-size" => a.io_size = number(value()?)?,
            "--host-nqn" => a.host_nqn = value()?,
            "--netns" => a.netns = Some(value()?),
            "--no-fill" => a.fill = false,
            other => return Err(BenchError::Usage(format!("unknown argument {other:?}"))),
        }
    }
    a.lab_dir = lab_dir.ok_or_else(|| BenchError::Usage("--lab-dir is required".into()))?;
    a.volume = volume.ok_or_else(|| BenchError::Usage("--volume is required".into()))?;
    Ok(Some(a))
}

/// A node of the lab: its name, address and engine.
struct Node {
    name: String,
    rpc: Rpc,
}

/// What the bench found of the volume on its attach node.
struct Found {
    node: Node,
    frontend: Target,
    /// The local replica's lvol alias (`lvs/name`).
    replica_alias: String,
    /// Its size in MiB.
    size_mib: u64,
}

fn list(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

fn find(lab_dir: &Path, volume: &str) -> Result<Found, BenchError> {
    let lab_err = |message: String| BenchError::Lab {
        dir: lab_dir.to_path_buf(),
        message,
    };
    let state = lab::state::load(&lab_dir.join("lab.json"))
        .map_err(|e| lab_err(e.to_string()))?
        .ok_or_else(|| lab_err("no lab.json: is the lab up?".into()))?;
    let nqn = format!("{NQN_PREFIX}{volume}");
    let vol_err = |message: String| BenchError::Volume {
        volume: volume.to_string(),
        message,
    };
    for n in &state.nodes {
        let rpc = Rpc::new(&lab_dir.join("nodes").join(&n.name).join("run/spdk.sock"));
        let subsystems = match rpc.call("nvmf_get_subsystems", None) {
            Ok(s) => s,
            // A node whose engine is not running exports nothing.
            Err(RpcError::Connect { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let Some(sub) = list(&subsystems).into_iter().find(|s| s["nqn"] == nqn) else {
            continue;
        };
        let la = list(&sub["listen_addresses"]);
        let l = la
            .first()
            .ok_or_else(|| vol_err(format!("frontend {nqn} on {} has no listener", n.name)))?;
        let port = l["trsvcid"]
            .as_str()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| vol_err(format!("frontend {nqn}: listener without a port: {l}")))?;
        let frontend = Target::new(l["traddr"].as_str().unwrap_or_default(), port, &nqn);
        // The local replica: the raid1 member that is an lvol of this node.
        let raids = rpc.call("bdev_raid_get_bdevs", Some(json!({"category": "all"})))?;
        let raid_name = format!("{volume}-raid");
        let members: Vec<String> = list(&raids)
            .iter()
            .filter(|r| r["name"] == raid_name.as_str())
            .flat_map(|r| list(&r["base_bdevs_list"]))
            .flat_map(|m| {
                [m["name"].as_str(), m["uuid"].as_str()]
                    .into_iter()
                    .flatten()
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .collect();
        let lvols = rpc.call("bdev_lvol_get_lvols", None)?;
        let local = list(&lvols).into_iter().find(|l| {
            ["alias", "uuid", "name"].iter().any(|k| {
                l[*k]
                    .as_str()
                    .is_some_and(|v| members.iter().any(|m| m == v))
            })
        });
        let local = local.ok_or_else(|| {
            vol_err(format!(
                "attach node {}: no lvol of this node is a member of {raid_name} (members {members:?})",
                n.name
            ))
        })?;
        let alias = local["alias"]
            .as_str()
            .ok_or_else(|| vol_err(format!("lvol without an alias: {local}")))?
            .to_string();
        let bdevs = rpc.call("bdev_get_bdevs", Some(json!({"name": alias})))?;
        let b = list(&bdevs)
            .into_iter()
            .next()
            .ok_or_else(|| vol_err(format!("bdev {alias} not found")))?;
        let size = b["num_blocks"].as_u64().unwrap_or(0) * b["block_size"].as_u64().unwrap_or(0);
        return Ok(Found {
            node: Node {
                name: n.name.clone(),
                rpc,
            },
            frontend,
            replica_alias: alias,
            size_mib: size.div_ceil(1 << 20),
        });
    }
    Err(vol_err(format!(
        "no node's engine exports the frontend {nqn}"
    )))
}

/// Exports a fresh lvol beside the local replica (same lvstore, same size).
fn make_bare(found: &Found, volume: &str, host_nqn: &str) -> Result<TempExport, BenchError> {
    let lvs = found
        .replica_alias
        .split_once('/')
        .map(|(l, _)| l.to_string())
        .ok_or_else(|| BenchError::Volume {
            volume: volume.to_string(),
            message: format!("lvol alias {} has no lvstore", found.replica_alias),
        })?;
    Ok(TempExport::new_lvol(
        &found.node.rpc,
        &lvs,
        &format!("bench-bare-{volume}"),
        found.size_mib,
        &format!("{NQN_PREFIX}bench-bare-{volume}"),
        &found.frontend.address,
        found.frontend.port.saturating_add(1000),
        host_nqn,
    )?)
}

fn spdk_dir(args: &Args) -> Result<PathBuf, BenchError> {
    if let Some(d) = &args.spdk_dir {
        return Ok(d.clone());
    }
    if let Some(d) = std::env::var_os("V2ENGINE_SPDK_DIR").filter(|d| !d.is_empty() && d != "sim") {
        return Ok(PathBuf::from(d));
    }
    let lab_err = |message: String| BenchError::Lab {
        dir: args.lab_dir.clone(),
        message,
    };
    let state = lab::state::load(&args.lab_dir.join("lab.json"))
        .map_err(|e| lab_err(e.to_string()))?
        .ok_or_else(|| lab_err("no lab.json: is the lab up?".into()))?;
    state
        .spdk
        .tgt
        .as_deref()
        .and_then(|t| t.parent())
        .and_then(|bin| bin.parent())
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            lab_err(
                "its engines run no real SPDK build; give --spdk-dir or V2ENGINE_SPDK_DIR".into(),
            )
        })
}

/// The median of each figure over the rounds (rounds > 0).
fn median(runs: &[PerfResult]) -> PerfResult {
    let med = |f: &dyn Fn(&PerfResult) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        match v.len() {
            0 => 0.0,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    };
    let p99 = if runs.iter().all(|r| r.p99_us.is_some()) {
        Some(med(&|r| r.p99_us.unwrap_or(0.0)))
    } else {
        None
    };
    PerfResult {
        iops: med(&|r| r.iops),
        mib_s: med(&|r| r.mib_s),
        avg_lat_us: med(&|r| r.avg_lat_us),
        min_lat_us: med(&|r| r.min_lat_us),
        max_lat_us: med(&|r| r.max_lat_us),
        p50_us: None,
        p99_us: p99,
    }
}

fn row(workload: Workload, path: &str, r: &PerfResult) -> String {
    format!(
        "{:<10} {:<11} {:>10.0} {:>8.2} {:>10.1} {:>10}",
        workload.as_str(),
        path,
        r.iops,
        r.mib_s,
        r.avg_lat_us,
        r.p99_us
            .map(|p| format!("{p:.1}"))
            .unwrap_or_else(|| "-".into())
    )
}

fn ratio_row(workload: Workload, rep: &PerfResult, bare: &PerfResult) -> String {
    let p99 = match (rep.p99_us, bare.p99_us) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "-".into(),
    };
    format!(
        "{:<10} {:<11} {:>10.2} {:>8.2} {:>10.2} {:>10}",
        workload.as_str(),
        "ratio r/b",
        rep.iops / bare.iops,
        rep.mib_s / bare.mib_s,
        rep.avg_lat_us / bare.avg_lat_us,
        p99
    )
}

fn run(args: &Args) -> Result<(), BenchError> {
    let spdk = spdk_dir(args)?;
    let found = find(&args.lab_dir, &args.volume)?;
    println!(
        "volume {}: frontend {} on {} (local replica {}, {} MiB); SPDK tools of {}",
        args.volume,
        found.frontend,
        found.node.name,
        found.replica_alias,
        found.size_mib,
        spdk.display()
    );
    let grant = HostGrant::allow(&found.node.rpc, &found.frontend.nqn, &args.host_nqn)?;
    if grant.added() {
        println!(
            "added host {} to {} for the run (removed afterwards)",
            args.host_nqn, found.frontend.nqn
        );
    } else {
        println!(
            "host {} is already allowed on {}: left so",
            args.host_nqn, found.frontend.nqn
        );
    }
    let export = make_bare(&found, &args.volume, &args.host_nqn)?;
    let bare = Target::new(export.address.clone(), export.port, export.nqn.clone());
    println!("bare export: {bare} (lvol {})", export.bdev);
    let measured = measure(args, &spdk, &found.frontend, &bare);
    // Undo before reporting a failure too.
    for line in export.close()? {
        println!("cleanup: {line}");
    }
    if grant.added() {
        grant.close()?;
        println!(
            "cleanup: removed host {} from {}",
            args.host_nqn, found.frontend.nqn
        );
    }
    measured
}

fn measure(args: &Args, spdk: &Path, frontend: &Target, bare: &Target) -> Result<(), BenchError> {
    let mut dp = DataPath::new(spdk, &args.host_nqn)?.with_timeout(Duration::from_secs(300));
    if let Some(ns) = &args.netns {
        dp = dp.in_netns(ns);
    }
    if args.fill {
        for t in [frontend, bare] {
            let g = dp.geometry(t)?;
            dp.write_pattern(t, 0, g.size, 1)?;
            println!("filled {t} ({} MiB)", g.size >> 20);
        }
    }
    println!(
        "\nspdk_nvme_perf: {} B I/O, queue depth {}, {} s each; median of {} rounds alternating the paths\n",
        args.io_size, args.queue_depth, args.seconds, args.rounds
    );
    println!(
        "{:<10} {:<11} {:>10} {:>8} {:>10} {:>10}",
        "workload", "path", "IOPS", "MiB/s", "avg µs", "p99 µs"
    );
    for workload in [Workload::RandRead, Workload::RandWrite] {
        let spec = PerfSpec {
            workload,
            queue_depth: args.queue_depth,
            io_size: args.io_size,
            seconds: args.seconds,
        };
        // Rounds alternate the two paths so that both see the same machine.
        let (mut reps, mut bares) = (Vec::new(), Vec::new());
        for _ in 0..args.rounds {
            reps.push(dp.perf(frontend, &spec)?);
            bares.push(dp.perf(bare, &spec)?);
        }
        let (rep, b) = (median(&reps), median(&bares));
        println!("{}", row(workload, "replicated", &rep));
        println!("{}", row(workload, "bare", &b));
        println!("{}", ratio_row(workload, &rep, &b));
        let iops = |v: &[PerfResult]| {
            v.iter()
                .map(|r| format!("{:.0}", r.iops))
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!(
            "{:<10} per round IOPS: replicated {} | bare {}",
            "",
            iops(&reps),
            iops(&bares)
        );
    }
    println!();
    Ok(())
}

fn main() -> std::process::ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse_args(&argv) {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{HELP}");
            return std::process::ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("bench-datapath: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-datapath: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn arguments_have_defaults_and_required_ones_are_named() {
        let a = parse_args(&argv(&["--lab-dir", "/tmp/l", "--volume", "data"]))
            .unwrap()
            .unwrap();
        assert_eq!(a.lab_dir, PathBuf::from("/tmp/l"));
        assert_eq!((a.seconds, a.queue_depth, a.io_size), (5, 32, 4096));
        assert!(a.fill);
        let e = parse_args(&argv(&["--volume", "data"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--lab-dir is required"), "{e}");
        let e = parse_args(&argv(&[
            "--lab-dir",
            "x",
            "--volume",
            "v",
            "--seconds",
            "0",
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("--seconds"), "{e}");
        assert!(parse_args(&argv(&["--help"])).unwrap().is_none());
    }

    #[test]
    fn the_median_is_taken_per_figure() {
        let r = |iops: f64, p99: Option<f64>| PerfResult {
            iops,
            mib_s: iops / 256.0,
            avg_lat_us: 1e6 / iops,
            min_lat_us: 1.0,
            max_lat_us: 2.0,
            p50_us: None,
            p99_us: p99,
        };
        let m = median(&[
            r(300.0, Some(9.0)),
            r(100.0, Some(1.0)),
            r(200.0, Some(5.0)),
        ]);
        assert_eq!(m.iops, 200.0);
        assert_eq!(m.p99_us, Some(5.0));
        assert_eq!(median(&[r(100.0, None), r(300.0, Some(1.0))]).iops, 200.0);
        assert_eq!(median(&[r(100.0, None), r(300.0, Some(1.0))]).p99_us, None);
    }

    #[test]
    fn the_ratio_row_divides_replicated_by_bare() {
        let r = |iops, lat| PerfResult {
            iops,
            mib_s: iops * 4096.0 / 1048576.0,
            avg_lat_us: lat,
            min_lat_us: 1.0,
            max_lat_us: 2.0,
            p50_us: None,
            p99_us: Some(lat * 2.0),
        };
        let line = ratio_row(Workload::RandRead, &r(500.0, 200.0), &r(1000.0, 100.0));
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            cols,
            ["randread", "ratio", "r/b", "0.50", "0.50", "2.00", "2.00"]
        );
    }
}
