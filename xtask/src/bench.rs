//! `cargo xtask bench-plan`: the provider's overhead, measured with the real terraform.
//!
//! Brings up a lab of N nodes, applies K v2engine resources over SSH, then times
//! `terraform plan` (refresh of all K + plan) against the same plan over K built-in
//! `terraform_data` resources, in the same run. Reports medians and the ratio.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// What can go wrong benchmarking.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A command failed.
    #[error("{what} failed: {detail}")]
    Command {
        /// The command.
        what: String,
        /// Its stderr or the spawn error.
        detail: String,
    },
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Bad arguments.
    #[error("{0}")]
    Usage(String),
}

/// Settings of one benchmark run.
#[derive(Debug, Clone)]
pub struct PlanBench {
    /// Lab nodes.
    pub nodes: usize,
    /// Resources per configuration.
    pub resources: usize,
    /// Timed plans per configuration.
    pub runs: usize,
    /// Directory with the built binaries (target/debug or target/release).
    pub bin_dir: PathBuf,
}

impl PlanBench {
    /// Parses `--nodes N --resources K --runs R --bin-dir DIR`.
    pub fn from_args(args: &[String], root: &Path) -> Result<Self, BenchError> {
        let mut b = PlanBench {
            nodes: 10,
            resources: 200,
            runs: 5,
            bin_dir: root.join("target/debug"),
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let v = it
                .next()
                .ok_or_else(|| BenchError::Usage(format!("{a} needs a value")))?;
            let num = || {
                v.parse::<usize>()
                    .map_err(|_| BenchError::Usage(format!("{a}: {v:?} is not a number")))
            };
            match a.as_str() {
                "--nodes" => b.nodes = num()?,
                "--resources" => b.resources = num()?,
                "--runs" => b.runs = num()?.max(1),
                "--bin-dir" => b.bin_dir = PathBuf::from(v),
                other => return Err(BenchError::Usage(format!("unknown option {other}"))),
            }
        }
        Ok(b)
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<String, BenchError> {
    let out = cmd.output().map_err(|e| BenchError::Command {
        what: what.into(),
        detail: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(BenchError::Command {
            what: what.into(),
            detail: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn write(path: &Path, content: &str) -> Result<(), BenchError> {
    std::fs::write(path, content).map_err(|source| BenchError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn terraform(dir: &Path, cli_config: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("terraform");
    c.arg(format!("-chdir={}", dir.display()))
        .args(args)
        .env("TF_CLI_CONFIG_FILE", cli_config)
        .env("TF_IN_AUTOMATION", "1")
        .env("CHECKPOINT_DISABLE", "1");
    c
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The v2engine configuration: the setting, a node_v2 per node, and storage classes up to K.
pub fn v2engine_config(nodes: usize, k: usize) -> String {
    let mut s = String::from(
        "terraform {\n  required_providers {\n    v2engine = { source = \"v2engine/v2engine\" }\n  }\n}\n\
         variable \"nodes\" {\n  type = map(object({ endpoint = string }))\n}\n\
         variable \"disks\" {\n  type    = map(list(string))\n  default = {}\n}\n\
         variable \"ssh_private_key_file\" { type = string }\n\
         variable \"ssh_known_hosts_file\" { type = string }\n\
         provider \"v2engine\" {\n  nodes = var.nodes\n  ssh_private_key_file = var.ssh_private_key_file\n  ssh_known_hosts_file = var.ssh_known_hosts_file\n}\n\
         resource \"v2engine_data_engine_setting\" \"this\" {\n  enabled = true\n  hugepage_limit_mib = 256\n}\n",
    );
    let per_node = nodes.min(k.saturating_sub(1));
    for i in 1..=per_node {
        s.push_str(&format!("resource \"v2engine_node_v2\" \"n{i}\" {{\n  node = \"node-{i}\"\n  depends_on = [v2engine_data_engine_setting.this]\n}}\n"));
    }
    for i in 0..k.saturating_sub(1 + per_node) {
        s.push_str(&format!("resource \"v2engine_storage_class\" \"c{i}\" {{\n  name = \"c{i}\"\n  number_of_replicas = 2\n}}\n"));
    }
    s
}

/// The baseline: K `terraform_data` resources.
pub fn baseline_config(k: usize) -> String {
    (0..k)
        .map(|i| format!("resource \"terraform_data\" \"d{i}\" {{\n  input = \"c{i}\"\n}}\n"))
        .collect()
}

/// Runs the benchmark; returns the report.
pub fn plan_bench(b: &PlanBench) -> Result<String, BenchError> {
    let tmp = std::env::temp_dir().join(format!("v2engine-bench-{}", std::process::id()));
    let lab_dir = tmp.join("lab");
    let lab = b.bin_dir.join("v2engine-lab");
    let result = (|| {
        run(
            Command::new(&lab)
                .args([
                    "up",
                    "--nodes",
                    &b.nodes.to_string(),
                    "--disk-size-mib",
                    "64",
                    "--dir",
                ])
                .arg(&lab_dir),
            "v2engine-lab up",
        )?;
        let cli = lab_dir.join("terraformrc");
        let vars = format!(
            "-var-file={}",
            lab_dir.join("terraform.tfvars.json").display()
        );
        let mut report = format!(
            "plan benchmark: {} resources, {} lab nodes, {} runs each\n",
            b.resources, b.nodes, b.runs
        );
        let mut medians = Vec::new();
        for (name, config, with_vars) in [
            ("terraform_data", baseline_config(b.resources), false),
            ("v2engine", v2engine_config(b.nodes, b.resources), true),
        ] {
            let dir = tmp.join(name);
            std::fs::create_dir_all(&dir).map_err(|source| BenchError::Io {
                path: dir.clone(),
                source,
            })?;
            write(&dir.join("main.tf"), &config)?;
            let extra: Vec<&str> = if with_vars {
                vec![vars.as_str()]
            } else {
                vec![]
            };
            run(
                &mut terraform(&dir, &cli, &["init", "-input=false", "-no-color"]),
                "terraform init",
            )?;
            let mut apply = vec![
                "apply",
                "-auto-approve",
                "-input=false",
                "-no-color",
                "-parallelism=10",
            ];
            apply.extend(&extra);
            run(&mut terraform(&dir, &cli, &apply), "terraform apply")?;
            let mut plan = vec!["plan", "-input=false", "-no-color", "-detailed-exitcode"];
            plan.extend(&extra);
            let mut times = Vec::new();
            for _ in 0..b.runs {
                let t = Instant::now();
                run(&mut terraform(&dir, &cli, &plan), "terraform plan")?;
                times.push(t.elapsed());
            }
            let m = median(times.clone());
            report.push_str(&format!(
                "  {name:15} median {:7.1} ms  (runs: {})\n",
                m.as_secs_f64() * 1000.0,
                times
                    .iter()
                    .map(|t| format!("{:.0}", t.as_secs_f64() * 1000.0))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            medians.push(m);
        }
        let ratio = medians[1].as_secs_f64() / medians[0].as_secs_f64();
        report.push_str(&format!(
            "  ratio v2engine / terraform_data = {ratio:.2} (target <= 1.5)\n"
        ));
        Ok(report)
    })();
    let _ = Command::new(&lab)
        .arg("down")
        .arg("--dir")
        .arg(&lab_dir)
        .output();
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

/// `cargo xtask bench-volume`: a 3-node lab (no fragmented node), then the client's
/// `bench_volume` example (`<bin-dir>/examples/bench_volume`) over SSH: volume create+attach
/// wall time against the SPDK time on its critical path, and the number of SPDK calls.
pub fn volume_bench(runs: usize, bin_dir: &Path) -> Result<String, BenchError> {
    let tmp = std::env::temp_dir().join(format!("v2engine-bench-volume-{}", std::process::id()));
    let lab_dir = tmp.join("lab");
    let lab = bin_dir.join("v2engine-lab");
    let example = bin_dir.join("examples/bench_volume");
    if !example.exists() {
        return Err(BenchError::Usage(format!(
            "{} is missing: cargo build [--release] -p v2engine-client --example bench_volume",
            example.display()
        )));
    }
    let result = (|| {
        run(
            Command::new(&lab)
                .args([
                    "up",
                    "--nodes",
                    "3",
                    "--fragmented-nodes",
                    "none",
                    "--disk-size-mib",
                    "256",
                    "--dir",
                ])
                .arg(&lab_dir),
            "v2engine-lab up",
        )?;
        run(
            Command::new(&example)
                .arg("--tfvars")
                .arg(lab_dir.join("terraform.tfvars.json"))
                .args(["--runs", &runs.to_string()]),
            "bench_volume",
        )
    })();
    let _ = Command::new(&lab)
        .arg("down")
        .arg("--dir")
        .arg(&lab_dir)
        .output();
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_have_k_resources() {
        let v = v2engine_config(10, 200);
        assert_eq!(
            v.matches("\nresource \"").count() + usize::from(v.starts_with("resource")),
            200
        );
        assert_eq!(
            baseline_config(200)
                .matches("resource \"terraform_data\"")
                .count(),
            200
        );
        assert_eq!(v.matches("v2engine_node_v2").count(), 10);
    }
}
