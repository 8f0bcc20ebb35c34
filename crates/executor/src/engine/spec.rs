//! How the engine is started (pure): the options given to the executor and the command
//! line `spdk_tgt -m <cpu_mask> -s <MiB> -r <socket> [--interrupt-mode] [args...]` derived
//! from them and a node's effective configuration.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use model::{HUGEPAGE_SIZE_MIB, NodeConfig};
use serde::{Deserialize, Serialize};

use super::backoff::Backoff;

/// Where spdk_tgt is installed unless `--spdk-tgt` says otherwise.
pub const DEFAULT_SPDK_TGT: &str = "/usr/local/bin/spdk_tgt";
/// spdk_tgt's default RPC socket.
pub const DEFAULT_SPDK_SOCKET: &str = spdk_rpc::DEFAULT_SOCKET;

/// How the executor runs the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineOptions {
    /// The spdk_tgt binary (or a stand-in with the same flags).
    pub program: PathBuf,
    /// Its RPC socket (`-r`).
    pub socket: PathBuf,
    /// Extra arguments, after the ones derived from the configuration.
    pub args: Vec<String>,
    /// How long a start may take until the socket answers.
    pub ready_timeout: Duration,
    /// How long a stop may take between SIGTERM and SIGKILL.
    pub stop_timeout: Duration,
    /// Bound of one batch of engine calls made by reconcile.
    pub rpc_timeout: Duration,
    /// Restart schedule after crashes.
    pub backoff: Backoff,
}

impl EngineOptions {
    /// Options with the given binary and socket and default timings.
    pub fn new(program: impl Into<PathBuf>, socket: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            socket: socket.into(),
            args: Vec::new(),
            ready_timeout: Duration::from_secs(30),
            stop_timeout: Duration::from_secs(10),
            rpc_timeout: Duration::from_secs(60),
            backoff: Backoff::default(),
        }
    }

    /// The spec for `cfg`.
    pub fn spec_for(&self, cfg: &NodeConfig) -> EngineSpec {
        EngineSpec {
            program: self.program.clone(),
            socket: self.socket.clone(),
            cpu_mask: cfg.cpu_mask.clone(),
            memory_mib: cfg.hugepages.saturating_mul(HUGEPAGE_SIZE_MIB),
            interrupt_mode: cfg.interrupt_mode,
            args: self.args.clone(),
        }
    }
}

/// One way of running the engine; a different spec means a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineSpec {
    /// The binary.
    pub program: PathBuf,
    /// The RPC socket.
    pub socket: PathBuf,
    /// `-m`.
    pub cpu_mask: String,
    /// `-s`, from the hugepages of the configuration.
    pub memory_mib: u64,
    /// `--interrupt-mode`.
    pub interrupt_mode: bool,
    /// Extra arguments.
    pub args: Vec<String>,
}

impl EngineSpec {
    /// The arguments after the program.
    pub fn args(&self) -> Vec<OsString> {
        let mut v: Vec<OsString> = vec![
            "-m".into(),
            self.cpu_mask.clone().into(),
            "-s".into(),
            self.memory_mib.to_string().into(),
            "-r".into(),
            self.socket.clone().into(),
        ];
        if self.interrupt_mode {
            v.push("--interrupt-mode".into());
        }
        v.extend(self.args.iter().map(OsString::from));
        v
    }

    /// The whole command line, program first (as `/proc/PID/cmdline` shows it).
    pub fn argv(&self) -> Vec<OsString> {
        let mut v = vec![self.program.clone().into_os_string()];
        v.extend(self.args());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::BootPersistence;

    fn cfg() -> NodeConfig {
        NodeConfig {
            node: "node-1".into(),
            enabled: true,
            hugepages: 512,
            cpu_mask: "0x3".into(),
            log_level: "notice".into(),
            interrupt_mode: false,
            kernel_modules: vec![],
            boot_persistence: BootPersistence::Auto,
        }
    }

    #[test]
    fn command_line_from_the_configuration() {
        let mut o = EngineOptions::new("/opt/spdk_tgt", "/run/spdk.sock");
        o.args = vec!["--no-huge".into()];
        let s = o.spec_for(&cfg());
        assert_eq!(
            s.argv(),
            [
                "/opt/spdk_tgt",
                "-m",
                "0x3",
                "-s",
                "1024",
                "-r",
                "/run/spdk.sock",
                "--no-huge"
            ]
            .map(OsString::from)
        );
        let mut c = cfg();
        c.interrupt_mode = true;
        c.hugepages = 8;
        let s2 = o.spec_for(&c);
        assert!(s2.args().contains(&OsString::from("--interrupt-mode")));
        assert_eq!(s2.memory_mib, 16);
        assert_ne!(s, s2, "another memory size is another spec");
    }
}
