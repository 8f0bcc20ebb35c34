//! The supervisor: one tokio task (the actor) owns the engine process and runs the
//! [`Machine`]; [`Supervisor`] is the handle the executor holds.
//!
//! The actor sleeps until something happens — a command, the process's exit (the child's
//! status, or a pidfd), the end of a start-up wait, a restart or SIGKILL timer — so an
//! idle executor uses no CPU. Reconcile talks to it from blocking threads
//! ([`Supervisor::desire_blocking`]) and is answered once the engine has settled (running,
//! failed, crashed or stopped), within a bound.
//!
//! The executor's own exit leaves the engine running (the data path outlives executor
//! restarts and upgrades); the next executor adopts it through the pid file. `serve
//! --stop-engine-on-exit` stops it instead ([`Supervisor::stop`]).

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use model::NodeConfig;
use nix::sys::signal::Signal;
use spdk_rpc::{SpdkApi, SpdkClient};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::machine::{Action, Event, Machine, Phase, Snapshot};
use super::process::{self, EngineFiles, EngineProcess};
use super::rpc::RpcHandle;
use super::spec::{CONFIG_FILE, EngineOptions, EngineSpec};
use super::{Engine, EngineError, EngineReport, HostReadiness};

/// Lines of the engine's log quoted when it dies.
const LOG_TAIL: usize = 8;
/// Slack added to the waits of [`Supervisor::desire_blocking`].
const MARGIN: Duration = Duration::from_secs(5);

/// The supervisor could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// The actor is gone (the executor is shutting down).
    #[error("engine supervisor of node {node} has stopped")]
    Gone {
        /// The node.
        node: String,
    },
    /// The engine did not settle in time.
    #[error("engine on node {node} did not settle within {waited:?} (state {state})")]
    Timeout {
        /// The node.
        node: String,
        /// How long we waited.
        waited: Duration,
        /// The state when we gave up.
        state: &'static str,
    },
}

/// How the actor answers a command.
enum Reply {
    Blocking(std::sync::mpsc::SyncSender<Snapshot>),
    Async(oneshot::Sender<Snapshot>),
}

impl Reply {
    fn send(self, s: Snapshot) {
        // The asker may have given up waiting; nothing to do then.
        match self {
            Self::Blocking(tx) => {
                let _ = tx.try_send(s);
            }
            Self::Async(tx) => {
                let _ = tx.send(s);
            }
        }
    }
}

struct Cmd {
    desire: Option<EngineSpec>,
    reply: Reply,
}

type ReadyFuture = Pin<Box<dyn Future<Output = Result<(SpdkClient, String), String>> + Send>>;

struct Running {
    process: EngineProcess,
    since: Instant,
    pid: u32,
}

struct Actor {
    node: String,
    opts: EngineOptions,
    files: EngineFiles,
    machine: Machine,
    proc: Option<Running>,
    ready: Option<ReadyFuture>,
    restart_at: Option<Instant>,
    kill_at: Option<Instant>,
    waiters: Vec<Reply>,
    cmds: mpsc::UnboundedReceiver<Cmd>,
    state: watch::Sender<Snapshot>,
    client: Arc<Mutex<Option<SpdkClient>>>,
}

enum Wake {
    Cmd(Option<Cmd>),
    Exited(String, Duration),
    Ready(Result<(SpdkClient, String), String>),
    RestartDue,
    Kill,
}

async fn exit_of(p: &mut Option<Running>) -> (String, Duration) {
    match p {
        Some(r) => {
            let status = r.process.wait().await;
            (status, r.since.elapsed())
        }
        None => std::future::pending().await,
    }
}

async fn ready_of(f: &mut Option<ReadyFuture>) -> Result<(SpdkClient, String), String> {
    match f {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

async fn at(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

impl Actor {
    async fn run(mut self) {
        loop {
            let wake = tokio::select! {
                c = self.cmds.recv() => Wake::Cmd(c),
                (s, d) = exit_of(&mut self.proc) => Wake::Exited(s, d),
                r = ready_of(&mut self.ready) => Wake::Ready(r),
                () = at(self.restart_at) => Wake::RestartDue,
                () = at(self.kill_at) => Wake::Kill,
            };
            match wake {
                Wake::Cmd(None) => {
                    tracing::debug!(node = %self.node, "engine supervisor ends; the engine keeps running");
                    return;
                }
                Wake::Cmd(Some(c)) => {
                    self.waiters.push(c.reply);
                    self.event(Event::Desire(c.desire));
                }
                Wake::Exited(status, ran_for) => self.exited(status, ran_for),
                Wake::Ready(r) => {
                    self.ready = None;
                    match r {
                        Ok((client, version)) => {
                            *self.client.lock().unwrap_or_else(PoisonError::into_inner) =
                                Some(client);
                            tracing::info!(node = %self.node, pid = ?self.proc.as_ref().map(|p| p.pid),
                                %version, "engine is running");
                            self.event(Event::Ready { version });
                        }
                        Err(e) => self.event(Event::NotReady(e)),
                    }
                }
                Wake::RestartDue => {
                    self.restart_at = None;
                    self.event(Event::RestartDue);
                }
                Wake::Kill => {
                    self.kill_at = None;
                    if let Some(p) = &self.proc {
                        tracing::warn!(node = %self.node, pid = p.pid,
                            "the engine ignored SIGTERM for {:?}; sending SIGKILL", self.opts.stop_timeout);
                        process::signal(p.pid, Signal::SIGKILL);
                    }
                }
            }
        }
    }

    fn exited(&mut self, status: String, ran_for: Duration) {
        let pid = self.proc.take().map_or(0, |p| p.pid);
        self.kill_at = None;
        self.ready = None;
        *self.client.lock().unwrap_or_else(PoisonError::into_inner) = None;
        self.files.clear_pid();
        let expected = self.machine.phase() == Phase::Stopping;
        let status = if expected {
            format!("spdk_tgt (pid {pid}) {status}")
        } else {
            tracing::error!(node = %self.node, pid, "the engine {status}");
            format!(
                "spdk_tgt (pid {pid}) {status}; last lines of {}:\n{}",
                self.files.log_file().display(),
                self.files.log_tail(LOG_TAIL)
            )
        };
        self.event(Event::Exited { status, ran_for });
    }

    /// Feeds `ev` (and what carrying out its actions produces) to the machine.
    fn event(&mut self, ev: Event) {
        let mut queue = vec![ev];
        while let Some(ev) = queue.pop() {
            for a in self.machine.step(ev) {
                if let Some(next) = self.act(a) {
                    queue.push(next);
                }
            }
        }
        self.publish();
    }

    fn act(&mut self, a: Action) -> Option<Event> {
        match a {
            Action::Spawn(spec) => match EngineProcess::spawn(&spec, &self.files) {
                Ok(p) => {
                    let pid = p.pid();
                    tracing::info!(node = %self.node, pid, argv = ?spec.argv(), "engine started");
                    self.proc = Some(Running {
                        process: p,
                        since: Instant::now(),
                        pid,
                    });
                    Some(Event::Spawned { pid })
                }
                Err(e) => {
                    tracing::error!(node = %self.node, "{e}");
                    Some(Event::SpawnFailed(e.to_string()))
                }
            },
            Action::WaitReady => {
                let snap = self.machine.snapshot();
                let socket = snap.spec.map(|s| s.socket).unwrap_or_default();
                let pid = snap.pid.unwrap_or(0);
                let timeout = self.opts.ready_timeout;
                let client = SpdkClient::new(&socket);
                self.ready = Some(Box::pin(async move {
                    let fail = |e: spdk_rpc::Error| {
                        format!(
                            "spdk_tgt (pid {pid}) did not answer on {} within {timeout:?}: {e}",
                            socket.display()
                        )
                    };
                    client.wait_ready(timeout).await.map_err(fail)?;
                    let v = SpdkApi::spdk_get_version(&client).await.map_err(fail)?;
                    Ok((client, v.version))
                }));
                None
            }
            Action::Terminate { pid } => {
                tracing::info!(node = %self.node, pid, "stopping the engine (SIGTERM)");
                self.ready = None;
                process::signal(pid, Signal::SIGTERM);
                self.kill_at = Some(Instant::now() + self.opts.stop_timeout);
                None
            }
            Action::ScheduleRestart(d) => {
                tracing::warn!(node = %self.node, delay = ?d, "restarting the engine after the delay");
                self.restart_at = Some(Instant::now() + d);
                None
            }
            Action::CancelRestart => {
                self.restart_at = None;
                None
            }
        }
    }

    fn publish(&mut self) {
        let snap = self.machine.snapshot();
        self.state.send_replace(snap.clone());
        if snap.phase.settled() {
            for w in self.waiters.drain(..) {
                w.send(snap.clone());
            }
        }
    }
}

/// The handle to a node's engine supervisor. Cheap to clone.
#[derive(Clone)]
pub struct Supervisor {
    node: String,
    opts: EngineOptions,
    cmds: mpsc::UnboundedSender<Cmd>,
    state: watch::Receiver<Snapshot>,
    client: Arc<Mutex<Option<SpdkClient>>>,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("node", &self.node)
            .field("opts", &self.opts)
            .field("phase", &self.state.borrow().phase)
            .finish_non_exhaustive()
    }
}

impl Supervisor {
    /// Starts the supervisor of `node` on the current tokio runtime. An engine a previous
    /// executor left running (pid file in `state_dir`) is adopted: watched and checked on
    /// its socket, not restarted. The pools' configuration goes into `state_dir` too.
    pub fn start(node: &str, mut opts: EngineOptions, state_dir: &Path) -> Self {
        opts.config_file = state_dir.join(CONFIG_FILE);
        let files = EngineFiles::new(state_dir);
        let (tx, rx) = mpsc::unbounded_channel();
        let machine = Machine::new(opts.backoff);
        let (state_tx, state_rx) = watch::channel(machine.snapshot());
        let client = Arc::new(Mutex::new(None));
        let found = files.find_running();
        let mut actor = Actor {
            node: node.to_string(),
            opts: opts.clone(),
            files,
            machine,
            proc: None,
            ready: None,
            restart_at: None,
            kill_at: None,
            waiters: Vec::new(),
            cmds: rx,
            state: state_tx,
            client: Arc::clone(&client),
        };
        let runtime = tokio::runtime::Handle::current();
        if let Some(rec) = found {
            match EngineProcess::adopt(rec.pid) {
                Ok(p) => {
                    tracing::info!(
                        node,
                        pid = rec.pid,
                        "adopting the engine left running by a previous executor"
                    );
                    actor.proc = Some(Running {
                        process: p,
                        since: Instant::now(),
                        pid: rec.pid,
                    });
                    actor.event(Event::Adopt {
                        pid: rec.pid,
                        spec: rec.spec,
                    });
                }
                Err(e) => {
                    tracing::error!(node, pid = rec.pid, "cannot watch the running engine: {e}");
                }
            }
        }
        runtime.spawn(actor.run());
        Self {
            node: node.to_string(),
            opts,
            cmds: tx,
            state: state_rx,
            client,
            runtime,
        }
    }

    /// The options.
    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// The current state.
    pub fn snapshot(&self) -> Snapshot {
        self.state.borrow().clone()
    }

    /// A receiver of every state change.
    pub fn subscribe(&self) -> watch::Receiver<Snapshot> {
        self.state.clone()
    }

    fn gone(&self) -> SupervisorError {
        SupervisorError::Gone {
            node: self.node.clone(),
        }
    }

    fn timeout(&self, waited: Duration) -> SupervisorError {
        SupervisorError::Timeout {
            node: self.node.clone(),
            waited,
            state: self.snapshot().phase.as_str(),
        }
    }

    /// Asks for `desire` and waits (from a blocking thread) until the engine has settled,
    /// at most `timeout`.
    pub fn desire_blocking(
        &self,
        desire: Option<EngineSpec>,
        timeout: Duration,
    ) -> Result<Snapshot, SupervisorError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.cmds
            .send(Cmd {
                desire,
                reply: Reply::Blocking(tx),
            })
            .map_err(|_| self.gone())?;
        match rx.recv_timeout(timeout) {
            Ok(s) => Ok(s),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(self.timeout(timeout)),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(self.gone()),
        }
    }

    /// Asks for `desire` and waits until the engine has settled, at most `timeout`.
    pub async fn desire(
        &self,
        desire: Option<EngineSpec>,
        timeout: Duration,
    ) -> Result<Snapshot, SupervisorError> {
        let (tx, rx) = oneshot::channel();
        self.cmds
            .send(Cmd {
                desire,
                reply: Reply::Async(tx),
            })
            .map_err(|_| self.gone())?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(_)) => Err(self.gone()),
            Err(_) => Err(self.timeout(timeout)),
        }
    }

    /// Stops the engine (SIGTERM, then SIGKILL after the stop timeout) and waits for it.
    pub async fn stop(&self) -> Result<Snapshot, SupervisorError> {
        self.desire(None, self.opts.stop_timeout + MARGIN).await
    }

    fn report(s: &Snapshot, state: Option<&str>) -> EngineReport {
        EngineReport {
            state: state.map(str::to_string),
            spdk_version: if s.phase == Phase::Running {
                s.version.clone()
            } else {
                String::new()
            },
            restarts: s.restarts,
            generation: s.generation,
        }
    }

    fn engine_err(&self, reason: String) -> EngineError {
        EngineError {
            node: self.node.clone(),
            reason,
        }
    }
}

impl Engine for Supervisor {
    fn after_prepare(
        &self,
        config: &NodeConfig,
        host: HostReadiness,
    ) -> Result<EngineReport, EngineError> {
        let wait = self.opts.stop_timeout + self.opts.ready_timeout + MARGIN;
        match host {
            HostReadiness::Disabled => {
                let s = self
                    .desire_blocking(None, self.opts.stop_timeout + MARGIN)
                    .map_err(|e| self.engine_err(e.to_string()))?;
                Ok(Self::report(&s, None))
            }
            HostReadiness::WaitingForReboot => Ok(Self::report(&self.snapshot(), None)),
            HostReadiness::Ready => {
                let spec = self.opts.spec_for(config);
                let s = self
                    .desire_blocking(Some(spec), wait)
                    .map_err(|e| self.engine_err(e.to_string()))?;
                match s.phase {
                    Phase::Running => Ok(Self::report(&s, Some(Phase::Running.as_str()))),
                    Phase::Crashed => Err(self.engine_err(format!(
                        "spdk_tgt crashed while starting: {}; next restart in {:?}",
                        s.last_error,
                        s.next_restart.unwrap_or_default()
                    ))),
                    _ => Err(self.engine_err(s.last_error)),
                }
            }
        }
    }

    fn live(&self) -> Option<EngineReport> {
        let s = self.snapshot();
        Some(Self::report(&s, Some(s.phase.as_str())))
    }

    fn rpc(&self) -> Option<RpcHandle> {
        let s = self.snapshot();
        if s.phase != Phase::Running {
            return None;
        }
        let client = self
            .client
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()?;
        let socket = client.socket().to_path_buf();
        let api: Arc<dyn SpdkApi> = Arc::new(client);
        Some(RpcHandle::new(
            api,
            self.runtime.clone(),
            socket,
            self.opts.rpc_timeout,
        ))
    }

    fn would_stop(&self, config: &NodeConfig, host: HostReadiness) -> bool {
        let s = self.snapshot();
        match host {
            HostReadiness::Disabled => {
                matches!(s.phase, Phase::Running | Phase::Starting | Phase::Crashed)
            }
            HostReadiness::Ready => {
                matches!(s.phase, Phase::Running | Phase::Starting)
                    && s.spec.as_ref() != Some(&self.opts.spec_for(config))
            }
            HostReadiness::WaitingForReboot => false,
        }
    }

    fn predicted_state(&self, host: HostReadiness) -> Option<&'static str> {
        (host == HostReadiness::Ready).then_some(Phase::Running.as_str())
    }
}
