//! `v2engine-ansible`: every module of the `v2engine.storage` collection, and the tool
//! that generates the collection's docs.
//!
//! ```text
//! v2engine-ansible ARGS_FILE               run as a module (how ansible-core calls it)
//! v2engine-ansible install-binary [DIR]    copy this binary into DIR/bin, link the modules to it
//! v2engine-ansible gen-docs [DIR]          write the generated files of the collection at DIR
//! v2engine-ansible check-docs [DIR]        fail when they are out of date
//! ```
//!
//! DIR is the collection's tree, `ansible` (from the repository root) by default.

use std::path::PathBuf;
use std::process::ExitCode;

fn collection_dir(arg: Option<&String>) -> PathBuf {
    arg.map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("ansible"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("gen-docs") => match ansible::docs::write(&collection_dir(args.get(2))) {
            Ok(n) => {
                println!("wrote {n} generated files");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("gen-docs: {e}");
                ExitCode::FAILURE
            }
        },
        Some("check-docs") => match ansible::docs::check(&collection_dir(args.get(2))) {
            Ok(n) => {
                println!("{n} generated files are up to date");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("check-docs: {e}");
                ExitCode::FAILURE
            }
        },
        Some("install-binary") => {
            let root = collection_dir(args.get(2));
            let placed = std::env::current_exe()
                .map_err(|e| e.to_string())
                .and_then(|exe| {
                    ansible::collection::install_binary(
                        &root,
                        &exe,
                        ansible::collection::Place::Copy,
                    )
                    .map_err(|e| e.to_string())
                });
            match placed {
                Ok(bin) => {
                    println!("{}", bin.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("install-binary: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some("--version") => {
            println!("v2engine-ansible {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some(path) if args.len() == 2 && !path.starts_with('-') => {
            let result = match std::fs::read_to_string(path) {
                Ok(text) => ansible::run::run(&text, args.first().map(String::as_str)),
                Err(e) => ansible::ModuleResult::fail(format!(
                    "cannot read the module arguments file {path}: {e}"
                )),
            };
            println!("{}", result.to_json());
            if result.exit_code() == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        _ => {
            eprintln!(
                "usage: v2engine-ansible ARGS_FILE | install-binary [DIR] | gen-docs [DIR] | check-docs [DIR]\n\
                 (a binary Ansible module of the v2engine.storage collection)"
            );
            ExitCode::from(2)
        }
    }
}
