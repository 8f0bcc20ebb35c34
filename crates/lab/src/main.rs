//! `v2engine-lab`: builds, inspects, reboots, partitions and removes a lab of v2engine nodes.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use lab::lab::{self as cmds, UpOptions};
use lab::plan::{DEFAULT_DISK_SIZE_MIB, LabPaths};
use lab::report;
use lab::state::{LabState, SpdkOptions};

/// Several v2engine hosts in network namespaces on one machine.
#[derive(Debug, Parser)]
#[command(name = "v2engine-lab", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct DirArg {
    /// The lab directory: lab.json, keys, disks, logs and the generated files live here.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Builds the lab, or makes sure an existing one is complete and running.
    Up {
        #[command(flatten)]
        dir: DirArg,
        /// Number of nodes (node-1 … node-N); default: the existing lab's, or 3.
        #[arg(long, value_name = "N")]
        nodes: Option<usize>,
        /// Nodes whose simulated memory is fragmented, so enabling the engine there needs a
        /// reboot: comma-separated names or numbers, or "none". Default: the last node.
        #[arg(long, value_name = "LIST")]
        fragmented_nodes: Option<String>,
        /// Size of each of the two disks per node.
        #[arg(long, value_name = "MIB", default_value_t = DEFAULT_DISK_SIZE_MIB)]
        disk_size_mib: u64,
        /// The v2engine-executor binary (default: next to v2engine-lab).
        #[arg(long, value_name = "PATH")]
        executor: Option<PathBuf>,
        /// The nodes' engine: `sim` (spdk-sim, the default for a new lab), a real SPDK build
        /// by version name (`v24.09`, `v26.05`, `v26.05-crypto`: looked up in
        /// $V2ENGINE_SPDK_REAL, else ../shared/spdk/real beside the checkout), or a path (a
        /// build directory with bin/spdk_tgt, or an spdk_tgt binary). Real targets run with
        /// --no-huge -u --disable-cpumask-locks.
        #[arg(long, value_name = "ENGINE", conflicts_with = "spdk_tgt")]
        spdk: Option<String>,
        /// spdk_tgt (or spdk-sim) binary for the nodes' engines, taken as given (stored in
        /// lab.json); `--spdk` is the usual way.
        #[arg(long, value_name = "PATH")]
        spdk_tgt: Option<PathBuf>,
        /// An argument for spdk_tgt (repeat for several).
        #[arg(long = "spdk-arg", value_name = "ARG", allow_hyphen_values = true)]
        spdk_args: Vec<String>,
    },
    /// Removes every process, namespace, link and loop device of the lab.
    Down {
        #[command(flatten)]
        dir: DirArg,
        /// Also remove the lab's files (keys, disks, logs, generated files, lab.json).
        #[arg(long)]
        purge: bool,
    },
    /// Reboots one node: stops its processes, boots its simulated host, starts them again.
    Reboot {
        /// The node, e.g. node-3.
        node: String,
        #[command(flatten)]
        dir: DirArg,
    },
    /// Cuts a node's link (its bridge port goes down): the host and the other nodes no longer
    /// reach it, nor it them, while its processes keep running. Simulates a node failure or a
    /// network partition; `restore` undoes it.
    Cut {
        /// The node, e.g. node-2 (or 2).
        node: String,
        #[command(flatten)]
        dir: DirArg,
    },
    /// Restores a node's link after `cut` and waits briefly until its sshd answers again.
    Restore {
        /// The node, e.g. node-2 (or 2).
        node: String,
        #[command(flatten)]
        dir: DirArg,
    },
    /// Shows every node: link, reachability, engine state, reboot reasons, hugepages, disks.
    Status {
        #[command(flatten)]
        dir: DirArg,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn print_summary(lab: &LabState) {
    let paths = LabPaths::new(&lab.dir);
    println!(
        "lab {} in {} (subnet {}, bridge {} at {})",
        lab.id,
        lab.dir.display(),
        lab.subnet,
        lab.bridge.name,
        lab.bridge.address
    );
    for n in &lab.nodes {
        let disks: Vec<String> = n
            .disks
            .iter()
            .map(|d| d.path().display().to_string())
            .collect();
        println!(
            "  {:<8} {:<15} ns {}  sshd pid {}  executor pid {}  disks {}{}",
            n.name,
            n.address.to_string(),
            n.namespace,
            n.sshd
                .as_ref()
                .map_or_else(|| "-".into(), |p| p.pid.to_string()),
            n.executor
                .as_ref()
                .map_or_else(|| "-".into(), |p| p.pid.to_string()),
            disks.join(","),
            if n.fragmented {
                "  (fragmented memory)"
            } else {
                ""
            },
        );
    }
    println!("files:");
    for f in [
        paths.tfvars(),
        paths.terraformrc(),
        paths.inventory(),
        paths.lab_env(),
        paths.known_hosts(),
        paths.client_key(),
    ] {
        println!("  {}", f.display());
    }
    for note in &lab.notes {
        println!("note: {note}");
    }
}

fn run(cli: Cli) -> Result<(), cmds::LabError> {
    match cli.command {
        Command::Up {
            dir,
            nodes,
            fragmented_nodes,
            disk_size_mib,
            executor,
            spdk,
            spdk_tgt,
            spdk_args,
        } => {
            let spdk = match spdk {
                Some(choice) => cmds::spdk_options(&choice, spdk_args)?,
                None => SpdkOptions {
                    tgt: spdk_tgt,
                    args: spdk_args,
                },
            };
            let lab = cmds::up(&UpOptions {
                dir: dir.dir,
                nodes,
                fragmented: fragmented_nodes,
                disk_size_mib,
                executor,
                spdk,
            })?;
            print_summary(&lab);
        }
        Command::Down { dir, purge } => {
            let r = cmds::down(&dir.dir, purge)?;
            println!(
                "stopped {} processes, deleted {} namespaces and {} links, detached {} loop devices{}",
                r.stopped.len(),
                r.namespaces.len(),
                r.links.len(),
                r.loop_devices.len(),
                if r.purged {
                    ", removed the lab's files"
                } else {
                    ""
                }
            );
            for note in &r.notes {
                println!("note: {note}");
            }
        }
        Command::Reboot { node, dir } => {
            cmds::reboot(&dir.dir, &node)?;
            println!("{node} rebooted");
        }
        Command::Cut { node, dir } => {
            println!("{}", cmds::cut(&dir.dir, &node)?.message());
        }
        Command::Restore { node, dir } => {
            let change = cmds::restore(&dir.dir, &node)?;
            println!("{}", change.message());
        }
        Command::Status { dir, json } => {
            let reports = cmds::status(&dir.dir)?;
            if json {
                let text = serde_json::to_string_pretty(&reports).unwrap_or_default();
                println!("{text}");
            } else {
                print!("{}", report::table(&reports));
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut msg = format!("v2engine-lab: {e}");
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                let s_text = s.to_string();
                if !msg.contains(&s_text) {
                    msg.push_str(&format!(": {s_text}"));
                }
                src = s.source();
            }
            eprintln!("{msg}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("v2engine-lab").chain(args.iter().copied()))
            .map(|c| c.command)
    }

    #[test]
    fn cut_and_restore_take_a_node_and_the_lab_dir() {
        match parse(&["cut", "node-2", "--dir", "/l"]).unwrap() {
            Command::Cut { node, dir } => {
                assert_eq!(node, "node-2");
                assert_eq!(dir.dir, PathBuf::from("/l"));
            }
            other => panic!("{other:?}"),
        }
        match parse(&["restore", "--dir", "/l", "2"]).unwrap() {
            Command::Restore { node, dir } => {
                assert_eq!(node, "2");
                assert_eq!(dir.dir, PathBuf::from("/l"));
            }
            other => panic!("{other:?}"),
        }
        // Both are required.
        assert!(parse(&["cut", "--dir", "/l"]).is_err());
        assert!(parse(&["restore", "node-2"]).is_err());
        assert!(parse(&["cut", "node-1", "node-2", "--dir", "/l"]).is_err());
    }

    #[test]
    fn status_still_parses() {
        assert!(matches!(
            parse(&["status", "--dir", "/l", "--json"]).unwrap(),
            Command::Status { json: true, .. }
        ));
    }
}
