//! Volume create+attach benchmark over a running lab (or any fleet described the same way).
//!
//! ```sh
//! target/debug/v2engine-lab up --dir /tmp/bl --fragmented-nodes none
//! cargo run --release -p v2engine-client --example bench_volume -- \
//!     --tfvars /tmp/bl/terraform.tfvars.json --runs 10
//! ```
//!
//! (`cargo xtask bench-volume` does all of it, lab included.) It enables the engine, hands
//! node-1 and node-2 their first disk, defines a 2-replica class, then creates and deletes a
//! volume attached to node-1 `--runs` times through `client::ops::volume` (what Terraform
//! and Ansible call). Per run it reports the wall time of create+attach, the SPDK time on
//! the critical path (the slowest node's replica calls, then the engine's, as the executors
//! traced them) and the number of SPDK calls.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use client::ops::{self, Session};
use client::{Endpoint, Fleet, TransportOptions};
use serde_json::{Value, json};

#[derive(Debug, thiserror::Error)]
enum BenchError {
    #[error("usage: bench_volume --tfvars PATH [--runs N] [--size QUANTITY]: {0}")]
    Usage(String),
    #[error("{path}: {reason}")]
    Tfvars { path: PathBuf, reason: String },
    #[error("{what}: {source}")]
    Ops { what: String, source: ops::OpsError },
    #[error("{what}: {reason}")]
    Spec { what: String, reason: String },
}

struct Args {
    tfvars: PathBuf,
    runs: usize,
    size: String,
}

fn parse_args() -> Result<Args, BenchError> {
    let mut tfvars = None;
    let mut runs = 10usize;
    let mut size = "64Mi".to_string();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| BenchError::Usage(format!("{name} needs a value")))
        };
        match a.as_str() {
            "--tfvars" => tfvars = Some(PathBuf::from(value("--tfvars")?)),
            "--runs" => {
                runs = value("--runs")?
                    .parse()
                    .map_err(|e| BenchError::Usage(format!("--runs: {e}")))?;
            }
            "--size" => size = value("--size")?,
            other => return Err(BenchError::Usage(format!("unknown argument {other:?}"))),
        }
    }
    let tfvars = tfvars.ok_or_else(|| BenchError::Usage("--tfvars is required".into()))?;
    if runs == 0 {
        return Err(BenchError::Usage("--runs must be at least 1".into()));
    }
    Ok(Args { tfvars, runs, size })
}

/// The fleet and node-1/node-2's first disks from a lab's terraform.tfvars.json.
fn fleet_from(path: &PathBuf) -> Result<(Fleet, BTreeMap<String, String>), BenchError> {
    let bad = |reason: String| BenchError::Tfvars {
        path: path.clone(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let mut endpoints = BTreeMap::new();
    for (node, n) in v["nodes"]
        .as_object()
        .ok_or_else(|| bad("no nodes map".into()))?
    {
        let ep = n["endpoint"]
            .as_str()
            .ok_or_else(|| bad(format!("node {node}: no endpoint")))?;
        let ep: Endpoint = ep.parse().map_err(|e| bad(format!("node {node}: {e}")))?;
        endpoints.insert(node.clone(), ep);
    }
    let opts = TransportOptions {
        ssh_private_key_file: v["ssh_private_key_file"].as_str().map(PathBuf::from),
        ssh_known_hosts_file: v["ssh_known_hosts_file"].as_str().map(PathBuf::from),
        ..TransportOptions::default()
    };
    let mut disks = BTreeMap::new();
    for node in ["node-1", "node-2"] {
        let d = v["disks"][node][0]
            .as_str()
            .ok_or_else(|| bad(format!("no disk for {node}")))?;
        disks.insert(node.to_string(), d.to_string());
    }
    Ok((Fleet::new(endpoints, opts), disks))
}

fn spec<T: serde::de::DeserializeOwned>(what: &str, v: Value) -> Result<T, BenchError> {
    serde_json::from_value(v).map_err(|e| BenchError::Spec {
        what: what.into(),
        reason: e.to_string(),
    })
}

fn ops_err(what: impl Into<String>) -> impl FnOnce(ops::OpsError) -> BenchError {
    let what = what.into();
    move |source| BenchError::Ops { what, source }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

struct Run {
    wall: Duration,
    critical: Duration,
    calls: usize,
    per_method: BTreeMap<String, (usize, u64)>,
}

async fn bench(a: Args) -> Result<String, BenchError> {
    let (fleet, disks) = fleet_from(&a.tfvars)?;
    let s = Session::new(fleet, 100);
    let setting: model::DataEngineSetting = spec(
        "setting",
        json!({"enabled": true, "hugepage_limit_mib": 256}),
    )?;
    ops::setting::apply(&s, &setting)
        .await
        .map_err(ops_err("enabling the engine"))?;
    let mut bds = Vec::new();
    for (node, path) in &disks {
        let bd: model::BlockDisk = spec(
            "block disk",
            json!({"node": node, "name": "bench", "path": path}),
        )?;
        ops::block_disk::apply(&s, &bd)
            .await
            .map_err(ops_err(format!("attaching {path} on {node}")))?;
        bds.push(bd);
    }
    let class: model::StorageClass = spec(
        "storage class",
        json!({"name": "bench", "number_of_replicas": 2}),
    )?;
    ops::storage_class::apply(&s, &class)
        .await
        .map_err(ops_err("storing the class"))?;

    let mut runs = Vec::new();
    for i in 0..a.runs {
        let v: model::Volume = spec(
            "volume",
            json!({"name": format!("bench-{i}"), "size": a.size, "storage_class": "bench",
                   "attach_node": "node-1"}),
        )?;
        let t = Instant::now();
        let (out, report) = ops::volume::apply_with_report(&s, &v, None, None, &[])
            .await
            .map_err(ops_err(format!("creating volume {}", v.name)))?;
        let wall = t.elapsed();
        if out.value.state != "healthy" {
            return Err(BenchError::Spec {
                what: format!("volume {}", v.name),
                reason: format!("created {}, not healthy", out.value.state),
            });
        }
        let mut per_method: BTreeMap<String, (usize, u64)> = BTreeMap::new();
        for c in report
            .replicas
            .iter()
            .flat_map(|(_, c)| c)
            .chain(report.engine.iter().flat_map(|(_, c)| c))
        {
            let e = per_method.entry(c.method.clone()).or_default();
            e.0 += 1;
            e.1 += c.micros;
        }
        runs.push(Run {
            wall,
            critical: report.critical_path(),
            calls: report.calls(),
            per_method,
        });
        ops::volume::delete(&s, &v)
            .await
            .map_err(ops_err(format!("deleting volume {}", v.name)))?;
    }

    ops::storage_class::delete(&s, &class)
        .await
        .map_err(ops_err("deleting the class"))?;
    for bd in &bds {
        ops::block_disk::delete(&s, bd)
            .await
            .map_err(ops_err(format!("removing disk {}", bd.id())))?;
    }

    let wall = median(runs.iter().map(|r| r.wall).collect());
    let critical = median(runs.iter().map(|r| r.critical).collect());
    let mut out = format!(
        "volume create+attach: 2 replicas (node-1 local, node-2 over NVMe-oF), {} of {}, {} runs\n",
        a.size, "raid1", a.runs
    );
    for (i, r) in runs.iter().enumerate() {
        out.push_str(&format!(
            "  run {i:2}: wall {:7.1} ms  SPDK critical path {:6.1} ms  calls {}\n",
            ms(r.wall),
            ms(r.critical),
            r.calls
        ));
    }
    out.push_str(&format!(
        "  median wall {:.1} ms, median SPDK critical path {:.1} ms ({:.0}% of wall), {} calls per create+attach\n",
        ms(wall),
        ms(critical),
        100.0 * critical.as_secs_f64() / wall.as_secs_f64().max(f64::MIN_POSITIVE),
        runs[0].calls
    ));
    out.push_str("  calls of the first run by method (count, total ms):\n");
    for (m, (n, us)) in &runs[0].per_method {
        out.push_str(&format!("    {m:32} {n:3} {:7.2}\n", *us as f64 / 1000.0));
    }
    Ok(out)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench_volume: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench_volume: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(bench(args)) {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench_volume: {e}");
            ExitCode::FAILURE
        }
    }
}
