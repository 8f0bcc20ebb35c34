//! `cargo xtask <command>`: repository checks that need no extra tools.
//!
//! - `check-deps`: enforces the crate dependency rules of ARCHITECTURE.md from
//!   `cargo metadata` (normal dependencies, transitively).

mod deps;

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
        _ => {
            eprintln!("usage: cargo xtask check-deps");
            ExitCode::from(2)
        }
    }
}
