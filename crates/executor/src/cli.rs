//! The command line: `serve`, `sim-init`, `sim-reboot`.
//!
//! Logs go to stderr (filter from `V2ENGINE_LOG`, default `info`); nothing is printed to
//! stdout. `serve` runs on a single-threaded tokio runtime (host work runs in a few
//! blocking threads) to keep the daemon small and idle at zero CPU. It serves at once and
//! reconciles beside (starting the engine `--spdk-tgt` when the node is enabled and
//! prepared); on SIGTERM it leaves the engine running unless `--stop-engine-on-exit`.
//! With `--listen-tcp` it serves the same API on TCP with mutual TLS as well; that
//! listener is checked ([`tls::check_listener`]), its files read and its port bound
//! before anything else happens, so a refusal changes nothing.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use model::validate::check_module_name;

use crate::daemon::ExecutorError;
use crate::engine::spec::{DEFAULT_SPDK_SOCKET, DEFAULT_SPDK_TGT, EngineOptions};
use crate::engine::supervisor::SupervisorError;
use crate::host::linux::LinuxHost;
use crate::host::sim::{self, SimHost, SimState};
use crate::host::{HostError, HostOs};
use crate::node::{Node, NodeOptions};
use crate::server::{self, ServerError};
use crate::tls::{self, TlsError, TlsFlags, TlsListener};

/// `v2engine-executor`: the v2engine host daemon.
#[derive(Debug, Parser)]
#[command(name = "v2engine-executor", version, about = "v2engine host daemon")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the gRPC API on a Unix socket, and optionally on TCP with mutual TLS
    /// (reconciles once at start).
    Serve(Box<ServeArgs>),
    /// Write a fresh simulated host state.
    SimInit(SimInitArgs),
    /// Apply a simulated reboot to a stopped node.
    SimReboot(SimRebootArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// This node's name.
    #[arg(long)]
    node: String,
    /// The Unix socket to serve on (created 0600).
    #[arg(long, default_value = "/run/v2engine/executor.sock")]
    socket: PathBuf,
    /// Where records and the hugepage baseline live.
    #[arg(long, default_value = "/var/lib/v2engine")]
    state_dir: PathBuf,
    /// Prefix of every host path (/proc, /sys, /etc, /oem, /lib/modules, ...).
    #[arg(long, default_value = "/")]
    host_root: PathBuf,
    /// Use the simulated host with this state file (boot files still go under --host-root).
    #[arg(long, value_name = "STATE_FILE")]
    sim_host: Option<PathBuf>,
    /// The spdk_tgt binary the node's engine runs (or a stand-in with its flags).
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SPDK_TGT)]
    spdk_tgt: PathBuf,
    /// The engine's RPC socket (spdk_tgt -r).
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SPDK_SOCKET)]
    spdk_socket: PathBuf,
    /// An extra argument for spdk_tgt, e.g. --spdk-arg=--no-huge (repeat for several).
    #[arg(long = "spdk-arg", value_name = "ARG", allow_hyphen_values = true)]
    spdk_args: Vec<String>,
    /// Stop the engine when the executor exits (default: leave it running; the next
    /// executor adopts it).
    #[arg(long)]
    stop_engine_on_exit: bool,
    /// The address replica exports and volume frontends listen on (NVMe-oF TCP): this
    /// node's address on the storage network. Without it, exporting is refused.
    #[arg(long, value_name = "IP")]
    data_address: Option<std::net::IpAddr>,
    /// Ports for NVMe-oF listeners; each subsystem gets one, chosen once and kept.
    #[arg(long, value_name = "FIRST-LAST", default_value = "4420-4499",
        value_parser = crate::volumes::parse_port_range)]
    nvmf_ports: std::ops::RangeInclusive<u16>,
    /// Also serve on TCP at IP:PORT (e.g. 0.0.0.0:7443, [::1]:7443), always with mutual
    /// TLS: requires --tls-cert, --tls-key and --tls-client-ca, on loopback too.
    #[arg(long, value_name = "IP:PORT")]
    listen_tcp: Option<String>,
    /// The TCP listener's certificate chain (PEM).
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1; unencrypted).
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// CA certificates (PEM) that clients' certificates must chain to (required).
    #[arg(long, value_name = "FILE")]
    tls_client_ca: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct SimInitArgs {
    /// The state file to write.
    #[arg(long, value_name = "STATE_FILE")]
    sim_host: PathBuf,
    /// Total memory of the simulated host.
    #[arg(long, default_value_t = 8192)]
    memory_mib: u64,
    /// Start with fragmented memory (only a few 2 MiB pages allocatable until a reboot).
    #[arg(long)]
    fragmented: bool,
    /// Kernel modules available to modprobe.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "vfio_pci,uio_pci_generic,nvme_tcp"
    )]
    modules: Vec<String>,
}

#[derive(Debug, Args)]
struct SimRebootArgs {
    /// The state file.
    #[arg(long, value_name = "STATE_FILE")]
    sim_host: PathBuf,
    /// The root whose boot files the boot applies.
    #[arg(long)]
    host_root: PathBuf,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// An argument is invalid.
    #[error("{arg}: {reason}")]
    BadArg {
        /// The argument.
        arg: &'static str,
        /// Why.
        reason: String,
    },
    /// The executor failed.
    #[error(transparent)]
    Executor(#[from] ExecutorError),
    /// The server failed.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// The TCP listener is refused or cannot start.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The engine could not be stopped on exit.
    #[error(transparent)]
    Engine(#[from] SupervisorError),
    /// The (simulated) host failed.
    #[error(transparent)]
    Host(#[from] HostError),
    /// The async runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

/// Parses the command line, runs the command, and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("V2ENGINE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .init();
}

/// Runs a parsed command.
pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Serve(a) => serve(*a),
        Command::SimInit(a) => sim_init(a),
        Command::SimReboot(a) => sim_reboot(a),
    }
}

/// Checks `--listen-tcp` and the TLS flags, reads the files and binds the port; `None`
/// without `--listen-tcp`.
fn tcp_listener(a: &ServeArgs) -> Result<Option<TlsListener>, CliError> {
    let flags = TlsFlags {
        cert: a.tls_cert.clone(),
        key: a.tls_key.clone(),
        client_ca: a.tls_client_ca.clone(),
    };
    let Some(config) = tls::check_listener(a.listen_tcp.as_deref(), &flags)? else {
        return Ok(None);
    };
    Ok(Some(TlsListener::bind(&config)?))
}

fn serve(a: ServeArgs) -> Result<(), CliError> {
    // Before anything changes (lock, state, socket): a refused listener changes nothing.
    let tcp = tcp_listener(&a)?;
    let tcp_addr = tcp.as_ref().map(|t| t.local_addr().to_string());
    let (host, device_root, _lock): (Box<dyn HostOs>, PathBuf, _) = match &a.sim_host {
        Some(state) => {
            let lock = sim::lock_state(state)?;
            let host = SimHost::new(state, &a.host_root);
            host.load()?;
            // The simulated host's disks are real block devices: read the real sysfs.
            (Box::new(host), PathBuf::from("/"), Some(lock))
        }
        None => (
            Box::new(LinuxHost::new(&a.host_root)),
            a.host_root.clone(),
            None,
        ),
    };
    let mut engine = EngineOptions::new(&a.spdk_tgt, &a.spdk_socket);
    engine.args = a.spdk_args.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(4)
        .build()
        .map_err(CliError::Runtime)?;
    let result = rt.block_on(async {
        let node = Node::start(NodeOptions {
            node: a.node.clone(),
            state_dir: a.state_dir.clone(),
            host,
            engine: Some(engine),
            device_root,
            volumes: crate::volumes::VolumeOptions {
                data_address: a.data_address,
                ports: a.nvmf_ports.clone(),
            },
        })?;
        let listener = server::bind(&a.socket)?;
        let stop = server::shutdown_signal()?;
        // Serve at once; the start-up reconcile (which may start the engine) runs beside.
        node.reconcile_in_background();
        tracing::info!(node = %a.node, socket = %a.socket.display(),
            tcp_mtls = tcp_addr.as_deref().unwrap_or("off"),
            spdk_tgt = %a.spdk_tgt.display(), spdk_socket = %a.spdk_socket.display(), "serving");
        let exec = Arc::clone(node.executor());
        let served = server::serve_with_tcp(exec, listener, &a.socket, tcp, stop).await;
        let stopped = node.shutdown(a.stop_engine_on_exit).await;
        served?;
        stopped?;
        Ok::<(), CliError>(())
    });
    // A reconcile still waiting for the engine must not hold the exit up.
    rt.shutdown_timeout(Duration::from_secs(2));
    result
}

fn sim_init(a: SimInitArgs) -> Result<(), CliError> {
    let modules: Vec<String> = a.modules.into_iter().filter(|m| !m.is_empty()).collect();
    for m in &modules {
        check_module_name(m).map_err(|reason| CliError::BadArg {
            arg: "--modules",
            reason,
        })?;
    }
    if a.memory_mib < 64 {
        return Err(CliError::BadArg {
            arg: "--memory-mib",
            reason: format!("{} MiB is too small for a host (at least 64)", a.memory_mib),
        });
    }
    let _lock = sim::lock_state(&a.sim_host)?;
    let host = SimHost::new(&a.sim_host, "/");
    host.save(&SimState::new(a.memory_mib, a.fragmented, modules))?;
    tracing::info!(state = %a.sim_host.display(), memory_mib = a.memory_mib,
        fragmented = a.fragmented, "simulated host initialised");
    Ok(())
}

fn sim_reboot(a: SimRebootArgs) -> Result<(), CliError> {
    let _lock = sim::lock_state(&a.sim_host)?;
    let host = SimHost::new(&a.sim_host, &a.host_root);
    let (state, warnings) = host.reboot()?;
    for w in warnings {
        tracing::warn!(state = %a.sim_host.display(), "{w}");
    }
    tracing::info!(state = %a.sim_host.display(), boots = state.boots,
        nr_hugepages = state.nr_hugepages, modules = ?state.loaded_modules, "simulated reboot done");
    Ok(())
}
