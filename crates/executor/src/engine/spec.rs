//! How the engine is started (pure): the options given to the executor and the command
//! line `spdk_tgt -m <cpu_mask> -s <MiB> -r <socket> [-c <file> --msg-mempool-size <n>]
//! [--interrupt-mode] [args...]` derived from them and a node's effective configuration.
//! `-c` names the JSON configuration sizing SPDK's pools to the memory
//! ([`super::pools`]); it is left out where SPDK's defaults fit.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use model::{CpuMask, HUGEPAGE_SIZE_MIB, NodeConfig};
use serde::{Deserialize, Serialize};

use super::backoff::Backoff;
use super::pools::{SpdkPools, pools_for};

/// Where spdk_tgt is installed unless `--spdk-tgt` says otherwise.
pub const DEFAULT_SPDK_TGT: &str = "/usr/local/bin/spdk_tgt";
/// spdk_tgt's default RPC socket.
pub const DEFAULT_SPDK_SOCKET: &str = spdk_rpc::DEFAULT_SOCKET;
/// The pools' JSON configuration, in the executor's state directory.
pub const CONFIG_FILE: &str = "engine.spdk.json";
/// Where the configuration goes unless the supervisor places it in its state directory.
pub const DEFAULT_CONFIG_PATH: &str = "/var/lib/v2engine/engine.spdk.json";

/// How the executor runs the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineOptions {
    /// The spdk_tgt binary (or a stand-in with the same flags).
    pub program: PathBuf,
    /// Its RPC socket (`-r`).
    pub socket: PathBuf,
    /// Extra arguments, after the ones derived from the configuration.
    pub args: Vec<String>,
    /// Where the pools' JSON configuration is written (`-c`); the supervisor puts it in
    /// its state directory ([`CONFIG_FILE`]).
    pub config_file: PathBuf,
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
            config_file: PathBuf::from(DEFAULT_CONFIG_PATH),
            ready_timeout: Duration::from_secs(30),
            stop_timeout: Duration::from_secs(10),
            rpc_timeout: Duration::from_secs(60),
            backoff: Backoff::default(),
        }
    }

    /// The spec for `cfg`: its memory and cores size the pools.
    pub fn spec_for(&self, cfg: &NodeConfig) -> EngineSpec {
        let memory_mib = cfg.hugepages.saturating_mul(HUGEPAGE_SIZE_MIB);
        // The configuration was validated; a mask that does not parse counts as one core.
        let cores = CpuMask::parse(&cfg.cpu_mask).map_or(1, |m| m.cores().len() as u64);
        EngineSpec {
            program: self.program.clone(),
            socket: self.socket.clone(),
            cpu_mask: cfg.cpu_mask.clone(),
            memory_mib,
            interrupt_mode: cfg.interrupt_mode,
            pools: pools_for(memory_mib, cores).map(|pools| {
                Box::new(PoolsConfig {
                    file: self.config_file.clone(),
                    pools,
                })
            }),
            args: self.args.clone(),
        }
    }
}

/// SPDK's pools and the file their JSON configuration is written to before a start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolsConfig {
    /// The file (`-c`).
    pub file: PathBuf,
    /// The pools.
    pub pools: SpdkPools,
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
    /// `-c FILE --msg-mempool-size N`: pools sized to the memory; `None` keeps SPDK's
    /// defaults (absent from the pid files of older executors).
    #[serde(default)]
    pub pools: Option<Box<PoolsConfig>>,
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
        if let Some(p) = &self.pools {
            v.push("-c".into());
            v.push(p.file.clone().into());
            v.push("--msg-mempool-size".into());
            v.push(p.pools.msg_mempool.to_string().into());
        }
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
            hugepages: 1024,
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
                "2048",
                "-r",
                "/run/spdk.sock",
                "--no-huge"
            ]
            .map(OsString::from)
        );
        assert_eq!(
            s.pools, None,
            "SPDK's defaults fit 2048 MiB: no configuration"
        );
        let mut c = cfg();
        c.interrupt_mode = true;
        c.hugepages = 128;
        o.config_file = "/var/lib/x/engine.spdk.json".into();
        let s2 = o.spec_for(&c);
        assert_eq!(s2.memory_mib, 256);
        assert_eq!(
            s2.argv(),
            [
                "/opt/spdk_tgt",
                "-m",
                "0x3",
                "-s",
                "256",
                "-r",
                "/run/spdk.sock",
                "-c",
                "/var/lib/x/engine.spdk.json",
                "--msg-mempool-size",
                "32767",
                "--interrupt-mode",
                "--no-huge"
            ]
            .map(OsString::from)
        );
        assert_eq!(s2.pools.as_ref().map(|p| p.pools), pools_for(256, 2));
        assert_ne!(s, s2, "another memory size is another spec");
        c.hugepages = 130;
        assert_ne!(o.spec_for(&c), s2, "other pools are another spec");
    }

    #[test]
    fn pid_files_of_older_executors_still_read() {
        let old = r#"{"program":"/opt/spdk_tgt","socket":"/run/spdk.sock","cpu_mask":"0x1",
            "memory_mib":2048,"interrupt_mode":false,"args":[]}"#;
        let s: EngineSpec = serde_json::from_str(old).unwrap();
        assert_eq!(s.pools, None);
        let o = EngineOptions::new("/opt/spdk_tgt", "/run/spdk.sock");
        let mut c = cfg();
        c.cpu_mask = "0x1".into();
        assert_eq!(
            o.spec_for(&c),
            s,
            "the same engine at 2048 MiB is adopted as it is"
        );
    }
}
