//! The `spdk-sim` process: parse spdk_tgt's command line, serve until SIGTERM/SIGINT.
//! Shared by the `spdk-sim` binary and by packages that build the stand-in for their own
//! tests (the executor's `spdk_sim_engine` example).

use std::process::ExitCode;

use tokio::signal::unix::{SignalKind, signal};

use crate::cli::{self, Command, USAGE};
use crate::server::serve;

/// Runs the simulator with `args` (the command line without the program name).
pub fn main(args: impl IntoIterator<Item = String>) -> ExitCode {
    let config = match cli::parse(args) {
        Ok(Command::Run(c)) => *c,
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("spdk-sim: {e}\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("spdk-sim: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let socket = config.socket.clone();
    let version = config.version.text.clone();
    let result = runtime.block_on(async move {
        let (mut term, mut int) = match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(t), Ok(i)) => (t, i),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("spdk-sim: cannot install signal handlers: {e}");
                return Ok(());
            }
        };
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        };
        serve(config, shutdown, || {
            eprintln!(
                "spdk-sim: {version} stand-in ready, RPC socket {}",
                socket.display()
            )
        })
        .await
    });
    drop(runtime);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spdk-sim: {e}");
            ExitCode::FAILURE
        }
    }
}
