//! `cargo xtask <command>`: repository checks that need no extra tools.
//!
//! - `check-deps`: enforces the crate dependency rules of ARCHITECTURE.md from
//!   `cargo metadata` (normal dependencies, transitively).
//! - `gen-docs` / `check-docs`: the Terraform registry docs under docs/, generated from the
//!   model (through the provider schema) and examples/.

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
        _ => {
            eprintln!("usage: cargo xtask check-deps | gen-docs | check-docs");
            ExitCode::from(2)
        }
    }
}
