//! The supervisor's state machine (pure): events in, actions out.
//!
//! ```text
//!            Desire(spec)            Ready
//!  Stopped ───────────────► Starting ─────► Running
//!     ▲  ▲      SpawnFailed │   ▲ │ NotReady/exit     │ exit (unexpected)
//!     │  └──── Failed ◄─────┘   │ └──────► Crashed ◄──┘
//!     │                         └──RestartDue─┘ (after the backoff delay)
//!     └── Stopping ◄── Desire(none), or Desire(other spec) (then Starting again)
//! ```
//!
//! The actor ([`super::supervisor`]) carries out the actions (spawn, SIGTERM then SIGKILL,
//! timers) and feeds back what happened. A phase other than `Starting` and `Stopping` is
//! *settled*: a caller waiting for its desire to take effect is answered then.

use std::time::Duration;

use super::backoff::Backoff;
use super::spec::EngineSpec;

/// Where the engine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not running, and not wanted (or never started).
    Stopped,
    /// Spawned (or found), waiting until its socket answers.
    Starting,
    /// Answering on its socket.
    Running,
    /// Died unexpectedly; a restart is scheduled.
    Crashed,
    /// Could not be started (binary missing, socket taken); retried at the next reconcile.
    Failed,
    /// SIGTERM sent, waiting for the exit.
    Stopping,
}

impl Phase {
    /// The API's name (`engine_state`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stopped => "stopped",
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Crashed => "crashed",
            Self::Failed => "failed",
            Self::Stopping => "stopping",
        }
    }

    /// True when nothing is in flight.
    pub fn settled(self) -> bool {
        !matches!(self, Self::Starting | Self::Stopping)
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The executor wants this spec running, or nothing.
    Desire(Option<EngineSpec>),
    /// An engine left running by a previous executor was found.
    Adopt {
        /// Its pid.
        pid: u32,
        /// How it was started.
        spec: EngineSpec,
    },
    /// The process was spawned.
    Spawned {
        /// Its pid.
        pid: u32,
    },
    /// The process could not be spawned.
    SpawnFailed(String),
    /// Its socket answered.
    Ready {
        /// `spdk_get_version`.
        version: String,
    },
    /// Its socket did not answer in time (the process still runs).
    NotReady(String),
    /// The process exited.
    Exited {
        /// How (exit status, signal, last log lines).
        status: String,
        /// How long it ran.
        ran_for: Duration,
    },
    /// The backoff delay is over.
    RestartDue,
}

/// What the actor must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Spawn the engine with this spec.
    Spawn(EngineSpec),
    /// Wait until the current process answers on its socket.
    WaitReady,
    /// SIGTERM the process, SIGKILL it after the grace period.
    Terminate {
        /// The pid.
        pid: u32,
    },
    /// Send [`Event::RestartDue`] after this delay.
    ScheduleRestart(Duration),
    /// Forget a scheduled restart.
    CancelRestart,
}

/// Why the current process is being terminated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exit {
    /// Stopped (or replaced) on purpose: not a crash.
    Requested,
    /// Given up because it did not answer: a crash.
    Abandoned,
}

/// The supervisor's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    backoff: Backoff,
    desired: Option<EngineSpec>,
    phase: Phase,
    current: Option<EngineSpec>,
    pid: Option<u32>,
    version: String,
    restarts: u32,
    failures: u32,
    last_error: String,
    exiting: Option<Exit>,
    restarting: bool,
    generation: u64,
    after_crash: bool,
}

/// A copy of the state for readers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The phase.
    pub phase: Phase,
    /// The pid of the live process.
    pub pid: Option<u32>,
    /// Its version while running.
    pub version: String,
    /// Restarts after crashes since the executor started.
    pub restarts: u32,
    /// The last failure (empty after a successful start).
    pub last_error: String,
    /// The spec of the live process.
    pub spec: Option<EngineSpec>,
    /// Counts the times the engine reached `Running`.
    pub generation: u64,
    /// Whether the last time was a restart after a crash (nobody asked for it).
    pub after_crash: bool,
    /// The next restart's delay, while crashed.
    pub next_restart: Option<Duration>,
}

impl Machine {
    /// A stopped engine.
    pub fn new(backoff: Backoff) -> Self {
        Self {
            backoff,
            desired: None,
            phase: Phase::Stopped,
            current: None,
            pid: None,
            version: String::new(),
            restarts: 0,
            failures: 0,
            last_error: String::new(),
            exiting: None,
            restarting: false,
            generation: 0,
            after_crash: false,
        }
    }

    /// The phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The state for readers.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            phase: self.phase,
            pid: self.pid,
            version: self.version.clone(),
            restarts: self.restarts,
            last_error: self.last_error.clone(),
            spec: self.current.clone(),
            generation: self.generation,
            after_crash: self.after_crash,
            next_restart: (self.phase == Phase::Crashed && self.desired.is_some())
                .then(|| self.backoff.delay(self.failures)),
        }
    }

    fn start(&mut self, spec: EngineSpec) -> Vec<Action> {
        self.phase = Phase::Starting;
        self.current = Some(spec.clone());
        self.pid = None;
        self.version.clear();
        vec![Action::Spawn(spec)]
    }

    fn terminate(&mut self, exit: Exit) -> Vec<Action> {
        self.exiting = Some(exit);
        match self.pid {
            Some(pid) => {
                if exit == Exit::Requested {
                    self.phase = Phase::Stopping;
                }
                vec![Action::Terminate { pid }]
            }
            None => Vec::new(),
        }
    }

    /// Applies `ev`; returns what to do.
    pub fn step(&mut self, ev: Event) -> Vec<Action> {
        match ev {
            Event::Desire(d) => self.desire(d),
            Event::Adopt { pid, spec } => {
                self.phase = Phase::Starting;
                self.current = Some(spec);
                self.pid = Some(pid);
                vec![Action::WaitReady]
            }
            Event::Spawned { pid } => {
                self.pid = Some(pid);
                vec![Action::WaitReady]
            }
            Event::SpawnFailed(reason) => {
                self.phase = Phase::Failed;
                self.current = None;
                self.pid = None;
                self.restarting = false;
                self.last_error = reason;
                Vec::new()
            }
            Event::Ready { version } => {
                if self.phase != Phase::Starting || self.exiting.is_some() {
                    return Vec::new();
                }
                self.phase = Phase::Running;
                self.version = version;
                self.last_error.clear();
                self.generation += 1;
                self.after_crash = std::mem::take(&mut self.restarting);
                Vec::new()
            }
            Event::NotReady(reason) => {
                if self.phase != Phase::Starting || self.exiting.is_some() {
                    return Vec::new();
                }
                self.last_error = reason;
                self.terminate(Exit::Abandoned)
            }
            Event::Exited { status, ran_for } => self.exited(status, ran_for),
            Event::RestartDue => match (&self.desired, self.phase) {
                (Some(spec), Phase::Crashed) => {
                    let spec = spec.clone();
                    self.restarts = self.restarts.saturating_add(1);
                    self.restarting = true;
                    self.start(spec)
                }
                _ => Vec::new(),
            },
        }
    }

    fn desire(&mut self, d: Option<EngineSpec>) -> Vec<Action> {
        self.desired = d.clone();
        match (d, self.phase) {
            (_, Phase::Stopping) => Vec::new(), // decided when it has exited
            (None, Phase::Running | Phase::Starting) => self.terminate(Exit::Requested),
            (None, Phase::Crashed) => {
                self.phase = Phase::Stopped;
                vec![Action::CancelRestart]
            }
            (None, _) => {
                self.phase = Phase::Stopped;
                Vec::new()
            }
            (Some(s), Phase::Stopped | Phase::Failed) => {
                self.restarting = false;
                self.start(s)
            }
            (Some(s), Phase::Crashed) => {
                // Asked for explicitly: start now rather than after the delay.
                self.restarting = false;
                let mut a = vec![Action::CancelRestart];
                a.extend(self.start(s));
                a
            }
            (Some(s), Phase::Running | Phase::Starting) => {
                if self.current.as_ref() == Some(&s) {
                    Vec::new()
                } else {
                    self.terminate(Exit::Requested)
                }
            }
        }
    }

    fn exited(&mut self, status: String, ran_for: Duration) -> Vec<Action> {
        let exit = self.exiting.take();
        self.pid = None;
        self.current = None;
        self.version.clear();
        if exit == Some(Exit::Requested) {
            return match self.desired.clone() {
                Some(s) => {
                    self.restarting = false;
                    self.start(s)
                }
                None => {
                    self.phase = Phase::Stopped;
                    Vec::new()
                }
            };
        }
        if exit != Some(Exit::Abandoned) {
            self.last_error = status;
        } else {
            self.last_error = format!("{}; {status}", self.last_error);
        }
        self.failures = self.backoff.next_failures(self.failures, ran_for);
        if self.desired.is_none() {
            self.phase = Phase::Stopped;
            return Vec::new();
        }
        self.phase = Phase::Crashed;
        vec![Action::ScheduleRestart(self.backoff.delay(self.failures))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(mask: &str) -> EngineSpec {
        EngineSpec {
            program: "/bin/spdk_tgt".into(),
            socket: "/tmp/s.sock".into(),
            cpu_mask: mask.into(),
            memory_mib: 1024,
            interrupt_mode: false,
            pools: None,
            args: vec![],
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn started(m: &mut Machine, s: EngineSpec, pid: u32) {
        assert_eq!(m.step(Event::Desire(Some(s.clone()))), [Action::Spawn(s)]);
        assert_eq!(m.step(Event::Spawned { pid }), [Action::WaitReady]);
        assert_eq!(
            m.step(Event::Ready {
                version: "SPDK v24.09".into()
            }),
            []
        );
        assert_eq!(m.phase(), Phase::Running);
    }

    #[test]
    fn start_run_and_stop() {
        let mut m = Machine::new(Backoff::default());
        started(&mut m, spec("0x1"), 10);
        let s = m.snapshot();
        assert_eq!(
            (s.pid, s.version.as_str(), s.generation),
            (Some(10), "SPDK v24.09", 1)
        );
        assert!(!s.after_crash);
        assert_eq!(
            m.step(Event::Desire(Some(spec("0x1")))),
            [],
            "same spec: nothing"
        );
        assert_eq!(m.step(Event::Desire(None)), [Action::Terminate { pid: 10 }]);
        assert_eq!(m.phase(), Phase::Stopping);
        assert!(!m.phase().settled());
        let a = m.step(Event::Exited {
            status: "signal: 15".into(),
            ran_for: ms(5000),
        });
        assert_eq!(a, []);
        assert_eq!(m.phase(), Phase::Stopped);
        assert_eq!(m.snapshot().restarts, 0, "a requested stop is no crash");
        assert_eq!(m.snapshot().last_error, "");
    }

    #[test]
    fn crashes_restart_with_growing_delays_and_count() {
        let mut m = Machine::new(Backoff::default());
        started(&mut m, spec("0x1"), 10);
        let mut delays = Vec::new();
        for pid in 11..15 {
            let a = m.step(Event::Exited {
                status: "signal: 9 (SIGKILL)".into(),
                ran_for: ms(100),
            });
            let [Action::ScheduleRestart(d)] = a.as_slice() else {
                panic!("{a:?}")
            };
            delays.push(d.as_millis());
            assert_eq!(m.phase(), Phase::Crashed);
            assert!(m.phase().settled());
            assert_eq!(m.snapshot().last_error, "signal: 9 (SIGKILL)");
            assert_eq!(m.step(Event::RestartDue), [Action::Spawn(spec("0x1"))]);
            m.step(Event::Spawned { pid });
            m.step(Event::Ready {
                version: "v".into(),
            });
            assert!(m.snapshot().after_crash);
        }
        assert_eq!(delays, [500, 1000, 2000, 4000]);
        assert_eq!(m.snapshot().restarts, 4);
        // A long run forgives: the next crash waits the initial delay again.
        let a = m.step(Event::Exited {
            status: "exit status: 1".into(),
            ran_for: Duration::from_secs(3600),
        });
        assert_eq!(a, [Action::ScheduleRestart(ms(500))]);
    }

    #[test]
    fn a_new_spec_replaces_the_process_after_it_exits() {
        let mut m = Machine::new(Backoff::default());
        started(&mut m, spec("0x1"), 10);
        assert_eq!(
            m.step(Event::Desire(Some(spec("0x3")))),
            [Action::Terminate { pid: 10 }]
        );
        assert_eq!(
            m.step(Event::Exited {
                status: "exit status: 0".into(),
                ran_for: ms(1)
            }),
            [Action::Spawn(spec("0x3"))]
        );
        assert_eq!(m.phase(), Phase::Starting);
        assert_eq!(m.snapshot().restarts, 0);
    }

    #[test]
    fn spawn_failure_is_final_until_asked_again() {
        let mut m = Machine::new(Backoff::default());
        m.step(Event::Desire(Some(spec("0x1"))));
        assert_eq!(
            m.step(Event::SpawnFailed(
                "spdk_tgt binary /nope does not exist".into()
            )),
            []
        );
        assert_eq!(m.phase(), Phase::Failed);
        assert!(m.snapshot().last_error.contains("/nope"));
        assert_eq!(m.step(Event::RestartDue), [], "no retry by timer");
        assert_eq!(
            m.step(Event::Desire(Some(spec("0x1")))),
            [Action::Spawn(spec("0x1"))]
        );
    }

    #[test]
    fn not_ready_in_time_terminates_and_counts_as_a_crash() {
        let mut m = Machine::new(Backoff::default());
        m.step(Event::Desire(Some(spec("0x1"))));
        m.step(Event::Spawned { pid: 7 });
        assert_eq!(
            m.step(Event::NotReady("no answer within 30s".into())),
            [Action::Terminate { pid: 7 }]
        );
        assert_eq!(m.phase(), Phase::Starting);
        let a = m.step(Event::Exited {
            status: "signal: 15".into(),
            ran_for: Duration::from_secs(30),
        });
        assert_eq!(a, [Action::ScheduleRestart(ms(500))]);
        assert_eq!(m.snapshot().last_error, "no answer within 30s; signal: 15");
        assert_eq!(
            m.snapshot().next_restart,
            Some(ms(500)),
            "the delay is reported while crashed"
        );
    }

    #[test]
    fn exit_during_start_is_a_crash_and_desire_restarts_at_once() {
        let mut m = Machine::new(Backoff::default());
        m.step(Event::Desire(Some(spec("0x1"))));
        m.step(Event::Spawned { pid: 7 });
        m.step(Event::Exited {
            status: "exit status: 1".into(),
            ran_for: ms(20),
        });
        assert_eq!(m.phase(), Phase::Crashed);
        assert_eq!(
            m.step(Event::Desire(Some(spec("0x1")))),
            [Action::CancelRestart, Action::Spawn(spec("0x1"))]
        );
        // Disabled while crashed: the restart is cancelled.
        m.step(Event::Exited {
            status: "exit status: 1".into(),
            ran_for: ms(20),
        });
        assert_eq!(m.step(Event::Desire(None)), [Action::CancelRestart]);
        assert_eq!(m.phase(), Phase::Stopped);
        assert_eq!(m.step(Event::RestartDue), []);
    }

    #[test]
    fn an_adopted_engine_is_checked_then_kept() {
        let mut m = Machine::new(Backoff::default());
        assert_eq!(
            m.step(Event::Adopt {
                pid: 99,
                spec: spec("0x1")
            }),
            [Action::WaitReady]
        );
        m.step(Event::Ready {
            version: "v".into(),
        });
        assert_eq!(m.phase(), Phase::Running);
        assert_eq!(m.step(Event::Desire(Some(spec("0x1")))), []);
        assert_eq!(m.snapshot().pid, Some(99));
    }

    #[test]
    fn late_events_are_ignored() {
        let mut m = Machine::new(Backoff::default());
        started(&mut m, spec("0x1"), 10);
        m.step(Event::Desire(None));
        assert_eq!(m.step(Event::NotReady("late".into())), []);
        assert_eq!(
            m.step(Event::Ready {
                version: "late".into()
            }),
            []
        );
        assert_eq!(m.phase(), Phase::Stopping);
        // Desires while stopping are decided at the exit.
        assert_eq!(m.step(Event::Desire(Some(spec("0x1")))), []);
        assert_eq!(
            m.step(Event::Exited {
                status: "exit status: 0".into(),
                ran_for: ms(1)
            }),
            [Action::Spawn(spec("0x1"))]
        );
    }
}
