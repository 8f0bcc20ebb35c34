//! A node's processes: its sshd and its executor, started inside the node's namespace,
//! found again after a crash, stopped, and waited for until they answer.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use crate::argv;
use crate::cmd::{self, CmdError};
use crate::net::{self, NetError};
use crate::plan::{NodePaths, SSH_PORT};
use crate::probe;
use crate::proc::{self, ProcError};
use crate::state::{LabState, NodeState, ProcessRecord};

/// How long `up` and `reboot` wait for sshd and the executor to answer.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a process gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(10);
/// Lines of a log shown when a process fails to start.
const LOG_TAIL: usize = 15;

/// Which of a node's processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// The node's sshd.
    Sshd,
    /// The node's v2engine-executor.
    Executor,
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Service::Sshd => "sshd",
            Service::Executor => "executor",
        })
    }
}

/// Why a node's process could not be started, stopped or reached.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Starting or stopping a process failed.
    #[error("{service} of {node}: {source}")]
    Proc {
        /// The node.
        node: String,
        /// The process.
        service: Service,
        /// Why.
        #[source]
        source: ProcError,
    },
    /// Listing the namespace's processes failed.
    #[error("{node}: {source}")]
    Net {
        /// The node.
        node: String,
        /// Why.
        #[source]
        source: NetError,
    },
    /// `sshd -t` refused the configuration.
    #[error("sshd configuration {path} of {node} is invalid: {source}")]
    SshdConfig {
        /// The node.
        node: String,
        /// The sshd_config.
        path: PathBuf,
        /// The failed check.
        #[source]
        source: CmdError,
    },
    /// A one-shot executor command (sim-init, sim-reboot) failed.
    #[error("executor {command} for {node}: {source}")]
    Executor {
        /// The node.
        node: String,
        /// The subcommand.
        command: &'static str,
        /// Why.
        #[source]
        source: CmdError,
    },
    /// A file of the node could not be removed.
    #[error("{node}: cannot remove {path}: {source}")]
    File {
        /// The node.
        node: String,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The process exited while we waited for it.
    #[error("{service} of {node} (pid {pid}) exited during start-up{status}; {log}")]
    Exited {
        /// The node.
        node: String,
        /// The process.
        service: Service,
        /// Its pid.
        pid: u32,
        /// `: exit status …` when known.
        status: String,
        /// The log file and its last lines.
        log: String,
    },
    /// The process did not answer in time.
    #[error("{service} of {node} (pid {pid}) did not answer within {waited:?}: {last}; {log}")]
    NotReady {
        /// The node.
        node: String,
        /// The process.
        service: Service,
        /// Its pid.
        pid: u32,
        /// How long we waited.
        waited: Duration,
        /// The last probe error.
        last: String,
        /// The log file and its last lines.
        log: String,
    },
}

fn log_excerpt(log: &Path) -> String {
    format!(
        "last lines of {}:\n{}",
        log.display(),
        proc::tail(log, LOG_TAIL)
    )
}

/// A process that was started or found and must answer before `up` returns.
#[derive(Debug)]
pub struct Starting {
    node: String,
    service: Service,
    pid: u32,
    child: Option<Child>,
    log: PathBuf,
    probe: Probe,
}

#[derive(Debug)]
enum Probe {
    /// sshd's banner from the host.
    Ssh(SocketAddr),
    /// sshd's banner from inside the node's namespace (the node is cut off from the host).
    SshInside(String, SocketAddr),
    Executor(PathBuf),
}

impl Starting {
    fn exited(&mut self) -> Option<String> {
        match &mut self.child {
            Some(c) => match c.try_wait() {
                Ok(Some(status)) => Some(format!(": {status}")),
                Ok(None) => None,
                Err(_) => (!proc::is_alive(self.pid)).then(String::new),
            },
            None => (!proc::is_alive(self.pid)).then(String::new),
        }
    }
}

fn proc_err(node: &NodeState, service: Service) -> impl FnOnce(ProcError) -> ServiceError {
    let node = node.name.clone();
    move |source| ServiceError::Proc {
        node,
        service,
        source,
    }
}

fn net_err(node: &NodeState) -> impl FnOnce(NetError) -> ServiceError {
    let node = node.name.clone();
    move |source| ServiceError::Net { node, source }
}

/// The pid of a running process with exactly `argv`: the recorded one, the one in
/// `pid_file`, or one found in the namespace (after a crash lost lab.json).
fn find_running(
    node: &NodeState,
    recorded: Option<&ProcessRecord>,
    argv: &[String],
    pid_file: Option<&Path>,
) -> Result<Option<u32>, ServiceError> {
    let mut candidates: Vec<u32> = recorded.map(|r| r.pid).into_iter().collect();
    candidates.extend(pid_file.and_then(proc::read_pid_file));
    candidates.extend(net::namespace_pids(&node.namespace).map_err(net_err(node))?);
    Ok(candidates.into_iter().find(|p| proc::runs(*p, argv)))
}

/// Stops processes in the node's namespace whose command line mentions `marker` (an earlier
/// instance with other arguments that would hold the port or socket).
fn stop_strays(node: &NodeState, service: Service, marker: &str) -> Result<(), ServiceError> {
    let strays: Vec<u32> = net::namespace_pids(&node.namespace)
        .map_err(net_err(node))?
        .into_iter()
        .filter(|p| proc::mentions(*p, marker))
        .collect();
    proc::terminate_all(&strays, STOP_GRACE).map_err(proc_err(node, service))
}

fn start(
    node: &NodeState,
    service: Service,
    argv: Vec<String>,
    log: &Path,
) -> Result<(ProcessRecord, Child), ServiceError> {
    let what = format!("{service} of {}", node.name);
    let child = proc::spawn_in_namespace(&node.namespace, &argv, log, &what)
        .map_err(proc_err(node, service))?;
    tracing::info!(node = %node.name, pid = child.id(), "started {service}");
    Ok((
        ProcessRecord {
            pid: child.id(),
            argv,
        },
        child,
    ))
}

/// Makes sure the node's sshd runs: keeps a running one with the right command line,
/// otherwise checks the configuration and starts one. Records it in `node.sshd`. It is
/// waited for from the host, or from inside the node's namespace when `reachable` is false
/// (its link is cut).
pub fn ensure_sshd(
    node: &mut NodeState,
    paths: &NodePaths,
    reachable: bool,
) -> Result<Starting, ServiceError> {
    let argv = argv::sshd(paths);
    let addr = SocketAddr::from((node.address, SSH_PORT));
    let probe = if reachable {
        Probe::Ssh(addr)
    } else {
        Probe::SshInside(node.namespace.clone(), addr)
    };
    // sshd writes its own messages to its -E log; its stdout/stderr go to sshd.out.
    let log = paths.sshd_log();
    if let Some(pid) = find_running(node, node.sshd.as_ref(), &argv, Some(&paths.sshd_pid()))? {
        node.sshd = Some(ProcessRecord { pid, argv });
        return Ok(Starting {
            node: node.name.clone(),
            service: Service::Sshd,
            pid,
            child: None,
            log,
            probe,
        });
    }
    stop_strays(
        node,
        Service::Sshd,
        &paths.sshd_config().display().to_string(),
    )?;
    cmd::run(argv::SSHD, &argv::sshd_test(paths)).map_err(|source| ServiceError::SshdConfig {
        node: node.name.clone(),
        path: paths.sshd_config(),
        source,
    })?;
    let (rec, child) = start(node, Service::Sshd, argv, &paths.sshd_output())?;
    let pid = rec.pid;
    node.sshd = Some(rec);
    Ok(Starting {
        node: node.name.clone(),
        service: Service::Sshd,
        pid,
        child: Some(child),
        log,
        probe,
    })
}

/// Makes sure the node's executor runs (as [`ensure_sshd`] does for sshd).
pub fn ensure_executor(
    lab: &LabState,
    node: &mut NodeState,
    paths: &NodePaths,
) -> Result<Starting, ServiceError> {
    let argv = argv::executor_serve(lab, node, paths);
    let socket = paths.executor_socket();
    let log = paths.executor_log();
    if let Some(pid) = find_running(node, node.executor.as_ref(), &argv, None)? {
        node.executor = Some(ProcessRecord { pid, argv });
        return Ok(Starting {
            node: node.name.clone(),
            service: Service::Executor,
            pid,
            child: None,
            log,
            probe: Probe::Executor(socket),
        });
    }
    stop_strays(node, Service::Executor, &socket.display().to_string())?;
    // Nobody serves the socket now; a leftover file would only confuse the readiness probe.
    match std::fs::remove_file(&socket) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(ServiceError::File {
                node: node.name.clone(),
                path: socket,
                source,
            });
        }
    }
    let (rec, child) = start(node, Service::Executor, argv, &log)?;
    let pid = rec.pid;
    node.executor = Some(rec);
    Ok(Starting {
        node: node.name.clone(),
        service: Service::Executor,
        pid,
        child: Some(child),
        log,
        probe: Probe::Executor(socket),
    })
}

/// Waits (at most `timeout`) until every process answers: sshd with an SSH banner, the
/// executor to a `GetNodeStatus` call. Fails at once when one exits.
pub async fn wait_ready(mut pending: Vec<Starting>, timeout: Duration) -> Result<(), ServiceError> {
    let started = Instant::now();
    let mut last: Vec<String> = vec![String::new(); pending.len()];
    loop {
        let mut still = Vec::new();
        let mut still_last = Vec::new();
        for (mut s, _) in pending.into_iter().zip(last) {
            if let Some(status) = s.exited() {
                return Err(ServiceError::Exited {
                    log: log_excerpt(&s.log),
                    node: s.node,
                    service: s.service,
                    pid: s.pid,
                    status,
                });
            }
            let res = match &s.probe {
                Probe::Ssh(addr) => probe::ssh_banner(*addr, Duration::from_secs(1))
                    .map(drop)
                    .map_err(|e| e.to_string()),
                Probe::SshInside(ns, addr) => {
                    probe::ssh_banner_from(ns, *addr, Duration::from_secs(1))
                        .map(drop)
                        .map_err(|e| e.to_string())
                }
                Probe::Executor(socket) => {
                    probe::executor_status(&s.node, socket, Duration::from_secs(3))
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string())
                }
            };
            if let Err(e) = res {
                still.push(s);
                still_last.push(e);
            }
        }
        if still.is_empty() {
            return Ok(());
        }
        if started.elapsed() >= timeout {
            let s = still.swap_remove(0);
            return Err(ServiceError::NotReady {
                log: log_excerpt(&s.log),
                node: s.node,
                service: s.service,
                pid: s.pid,
                waited: timeout,
                last: still_last.swap_remove(0),
            });
        }
        pending = still;
        last = still_last;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Stops everything running in the node's namespace, as a reboot would: the executor first
/// (by its recorded pid, after checking its command line, so it can stop its engine), then
/// every other process in the namespace, sshd and its sessions included.
pub fn stop_node(node: &mut NodeState) -> Result<(), ServiceError> {
    if let Some(rec) = node
        .executor
        .as_ref()
        .filter(|r| proc::runs(r.pid, &r.argv))
    {
        proc::terminate_all(&[rec.pid], STOP_GRACE).map_err(proc_err(node, Service::Executor))?;
    }
    let rest = net::namespace_pids(&node.namespace).map_err(net_err(node))?;
    proc::terminate_all(&rest, STOP_GRACE).map_err(proc_err(node, Service::Sshd))?;
    node.executor = None;
    node.sshd = None;
    Ok(())
}

fn run_executor(
    lab: &LabState,
    node: &NodeState,
    command: &'static str,
    args: &[String],
) -> Result<(), ServiceError> {
    let out = cmd::run(&lab.executor, args).map_err(|source| ServiceError::Executor {
        node: node.name.clone(),
        command,
        source,
    })?;
    if !out.trim().is_empty() {
        tracing::info!(node = %node.name, "executor {command}: {}", out.trim());
    }
    Ok(())
}

/// Creates the node's simulated host (`sim-init`) unless it exists: it holds the node's
/// memory state, which survives `up` and `reboot`.
pub fn sim_init(lab: &LabState, node: &NodeState, paths: &NodePaths) -> Result<bool, ServiceError> {
    if paths.sim_host().exists() {
        return Ok(false);
    }
    run_executor(
        lab,
        node,
        "sim-init",
        &argv::executor_sim_init(lab, node, paths),
    )?;
    Ok(true)
}

/// Simulates the node's reboot (`sim-reboot`): boot configuration takes effect.
pub fn sim_reboot(lab: &LabState, node: &NodeState, paths: &NodePaths) -> Result<(), ServiceError> {
    run_executor(lab, node, "sim-reboot", &argv::executor_sim_reboot(paths))
}
