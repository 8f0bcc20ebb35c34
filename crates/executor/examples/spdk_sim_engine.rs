//! `spdk-sim` as an example of this package, so that `cargo test -p v2engine-executor`
//! builds an spdk_tgt stand-in the engine tests can start (`--spdk-tgt
//! target/debug/examples/spdk_sim_engine`): same flags as spdk_tgt (`-r -m -s --no-huge`),
//! SIGTERM/SIGINT stop it. Tests only; production runs a real spdk_tgt.

use std::process::ExitCode;

use spdk_sim::cli::{self, Command, USAGE};
use spdk_sim::server::serve;
use tokio::signal::unix::{SignalKind, signal};

fn main() -> ExitCode {
    let config = match cli::parse(std::env::args().skip(1)) {
        Ok(Command::Run(c)) => c,
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
            eprintln!("spdk-sim: ready, RPC socket {}", socket.display());
        })
        .await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spdk-sim: {e}");
            ExitCode::FAILURE
        }
    }
}
