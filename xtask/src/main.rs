//! `cargo xtask <command>`: repository checks that need no extra tools.
//!
//! - `check-deps`: enforces the crate dependency rules of ARCHITECTURE.md from
//!   `cargo metadata` (normal dependencies, transitively).
//! - `bench-plan`: `terraform plan` over K v2engine resources on an N-node lab against K
//!   `terraform_data` resources (needs root and built binaries).
//! - `bench-volume`: volume create+attach on a 3-node lab through `client::ops` (the client's
//!   `bench_volume` example): wall time, SPDK time on the critical path, SPDK calls.
//! - `gen-docs` / `check-docs`: the Terraform registry docs under docs/, generated from the
//!   model (through the provider schema) and examples/.

mod bench;
mod deps;
mod docs;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("check-deps") => match deps::check_workspace() {
            Ok(report) => {
                println!("{report}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("check-deps: {e}");
                ExitCode::FAILURE
            }
        },
        Some("gen-docs") => match docs::write(&docs::repo_root()) {
            Ok(n) => {
                println!("wrote {n} docs files");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("gen-docs: {e}");
                ExitCode::FAILURE
            }
        },
        Some("check-docs") => match docs::check(&docs::repo_root()) {
            Ok(n) => {
                println!("{n} docs files are up to date");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("check-docs: {e}");
                ExitCode::FAILURE
            }
        },
        Some("bench-plan") => {
            let run = bench::PlanBench::from_args(&args[1..], &docs::repo_root())
                .and_then(|b| bench::plan_bench(&b));
            match run {
                Ok(report) => {
                    print!("{report}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("bench-plan: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some("bench-volume") => {
            let run = bench::PlanBench::from_args(&args[1..], &docs::repo_root())
                .and_then(|b| bench::volume_bench(b.runs, &b.bin_dir));
            match run {
                Ok(report) => {
                    print!("{report}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("bench-volume: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        _ => {
            eprintln!(
                "usage: cargo xtask check-deps | gen-docs | check-docs | bench-plan [--nodes N] [--resources K] [--runs R] [--bin-dir DIR] | bench-volume [--runs R] [--bin-dir DIR]"
            );
            ExitCode::from(2)
        }
    }
}
