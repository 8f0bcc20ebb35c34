//! The engine process (I/O): spawning spdk_tgt with its output appended to a log file,
//! the pid file that lets a restarted executor find (adopt) an engine it left running,
//! waiting for an exit without polling (the child's status, or a pidfd for an adopted
//! process), and signals by pid.

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tokio::io::unix::AsyncFd;

use super::spec::EngineSpec;
use crate::fsio;

/// The pid file in the state directory.
pub const PID_FILE: &str = "engine.pid.json";
/// The engine's log in the state directory.
pub const LOG_FILE: &str = "engine.log";
/// A log larger than this is moved to `engine.log.1` at the next start.
pub const LOG_ROTATE_BYTES: u64 = 8 << 20;

/// Why the engine process could not be started or signalled.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The binary is not there.
    #[error("spdk_tgt binary {path} does not exist")]
    Missing {
        /// The binary.
        path: PathBuf,
    },
    /// The binary is not an executable file.
    #[error("spdk_tgt binary {path} is not an executable file")]
    NotExecutable {
        /// The binary.
        path: PathBuf,
    },
    /// Another process answers on the socket.
    #[error(
        "spdk_tgt socket {path} is answered by a process this executor did not start; stop it or choose another --spdk-socket"
    )]
    SocketTaken {
        /// The socket.
        path: PathBuf,
    },
    /// A file of the engine could not be written.
    #[error("engine file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The socket's directory or the pid file could not be written.
    #[error(transparent)]
    Fs(#[from] fsio::FsError),
    /// spawn failed.
    #[error("cannot start spdk_tgt {path}: {source}")]
    Spawn {
        /// The binary.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// What the pid file records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidRecord {
    /// The pid.
    pub pid: u32,
    /// Field 22 of `/proc/PID/stat` (start time in clock ticks since boot), so a reused
    /// pid is not mistaken for the engine.
    pub start_time: u64,
    /// The spec it was started with.
    pub spec: EngineSpec,
}

/// The start time of `pid` from `/proc/PID/stat`; `None` when it is gone or a zombie.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_start(&stat)
}

/// Field 22 of a `/proc/PID/stat` line, `None` for a zombie or dead process (pure).
pub fn parse_stat_start(stat: &str) -> Option<u64> {
    // "pid (comm) S ppid ...": comm may contain spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if matches!(fields.first(), Some(&"Z" | &"X")) {
        return None;
    }
    // fields[0] is field 3 (state); field 22 is fields[19].
    fields.get(19)?.parse().ok()
}

/// The command line of `pid`.
fn cmdline(pid: u32) -> Option<Vec<OsString>> {
    use std::os::unix::ffi::OsStrExt;
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let raw = raw.strip_suffix(b"\0").unwrap_or(&raw);
    Some(
        raw.split(|b| *b == 0)
            .map(|a| std::ffi::OsStr::from_bytes(a).to_os_string())
            .collect(),
    )
}

/// The engine's files in the state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineFiles {
    dir: PathBuf,
}

impl EngineFiles {
    /// Files under `state_dir`.
    pub fn new(state_dir: &Path) -> Self {
        Self {
            dir: state_dir.to_path_buf(),
        }
    }

    /// The pid file.
    pub fn pid_file(&self) -> PathBuf {
        self.dir.join(PID_FILE)
    }

    /// The log file.
    pub fn log_file(&self) -> PathBuf {
        self.dir.join(LOG_FILE)
    }

    /// Records the running engine.
    pub fn save_pid(&self, rec: &PidRecord) -> Result<(), ProcessError> {
        let data = serde_json::to_vec_pretty(rec).map_err(|e| ProcessError::File {
            path: self.pid_file(),
            source: std::io::Error::other(e),
        })?;
        Ok(fsio::write_atomic(&self.pid_file(), &data, 0o600)?)
    }

    /// Forgets the engine (the process has exited).
    pub fn clear_pid(&self) {
        if let Err(e) = fs::remove_file(self.pid_file())
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(file = %self.pid_file().display(), "cannot remove the engine pid file: {e}");
        }
    }

    /// The engine a previous executor left running, if the pid file names a live process
    /// with the recorded start time and command line. A stale pid file is removed.
    pub fn find_running(&self) -> Option<PidRecord> {
        let text = fs::read_to_string(self.pid_file()).ok()?;
        let rec: Option<PidRecord> = serde_json::from_str(&text).ok();
        let alive = rec.filter(|r| {
            start_time(r.pid) == Some(r.start_time) && cmdline(r.pid) == Some(r.spec.argv())
        });
        if alive.is_none() {
            tracing::info!(file = %self.pid_file().display(), "removing a stale engine pid file");
            self.clear_pid();
        }
        alive
    }

    /// The last `n` lines of the log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = fs::read(self.log_file()).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    fn open_log(&self) -> Result<fs::File, ProcessError> {
        let log = self.log_file();
        let ferr = |source| ProcessError::File {
            path: log.clone(),
            source,
        };
        if fs::metadata(&log).is_ok_and(|m| m.len() > LOG_ROTATE_BYTES) {
            let mut old = log.clone().into_os_string();
            old.push(".1");
            fs::rename(&log, PathBuf::from(old)).map_err(ferr)?;
        }
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(ferr)
    }
}

/// Checks the binary and the socket before a start.
pub fn preflight(spec: &EngineSpec) -> Result<(), ProcessError> {
    let meta = fs::metadata(&spec.program).map_err(|_| ProcessError::Missing {
        path: spec.program.clone(),
    })?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(ProcessError::NotExecutable {
            path: spec.program.clone(),
        });
    }
    if std::os::unix::net::UnixStream::connect(&spec.socket).is_ok() {
        return Err(ProcessError::SocketTaken {
            path: spec.socket.clone(),
        });
    }
    if let Some(dir) = spec.socket.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        fsio::create_dir_all(dir, 0o755)?;
    }
    Ok(())
}

/// Writes the JSON configuration `spec` passes with `-c` (0600: the state directory is
/// private), replacing an older one atomically.
pub fn write_config(spec: &EngineSpec) -> Result<(), ProcessError> {
    let Some(p) = &spec.pools else {
        return Ok(());
    };
    let data =
        serde_json::to_vec_pretty(&p.pools.json_config()).map_err(|e| ProcessError::File {
            path: p.file.clone(),
            source: std::io::Error::other(e),
        })?;
    Ok(fsio::write_atomic(&p.file, &data, 0o600)?)
}

/// A live engine process.
#[derive(Debug)]
pub enum EngineProcess {
    /// Started by this executor.
    Child(tokio::process::Child),
    /// Started by a previous executor, watched through a pidfd.
    Adopted {
        /// Its pid.
        pid: u32,
        /// Readable once it has exited.
        fd: AsyncFd<OwnedFd>,
    },
}

impl EngineProcess {
    /// Spawns `spec` in its own process group (so a signal to the executor's group does
    /// not reach it), output appended to the log, and records it in the pid file. The
    /// pools' JSON configuration is written (atomically) first.
    pub fn spawn(spec: &EngineSpec, files: &EngineFiles) -> Result<Self, ProcessError> {
        preflight(spec)?;
        write_config(spec)?;
        let log = files.open_log()?;
        let log2 = log.try_clone().map_err(|source| ProcessError::File {
            path: files.log_file(),
            source,
        })?;
        let child = tokio::process::Command::new(&spec.program)
            .args(spec.args())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0)
            .spawn()
            .map_err(|source| ProcessError::Spawn {
                path: spec.program.clone(),
                source,
            })?;
        let p = Self::Child(child);
        let pid = p.pid();
        match start_time(pid) {
            Some(start_time) => files.save_pid(&PidRecord {
                pid,
                start_time,
                spec: spec.clone(),
            })?,
            None => tracing::warn!(pid, "the engine exited before its pid file was written"),
        }
        Ok(p)
    }

    /// Watches `pid` (not a child of this executor) until it exits.
    pub fn adopt(pid: u32) -> std::io::Result<Self> {
        let raw = i32::try_from(pid).map_err(std::io::Error::other)?;
        let rpid = rustix::process::Pid::from_raw(raw)
            .ok_or_else(|| std::io::Error::other(format!("invalid pid {pid}")))?;
        let fd = rustix::process::pidfd_open(rpid, rustix::process::PidfdFlags::empty())?;
        // `AsyncFd::new` is deprecated because a `T` may close its descriptor behind the
        // registration's back; an `OwnedFd` moved into the `AsyncFd` cannot, which is the
        // contract the (unsafe) replacement `register` asks the caller to uphold.
        #[allow(deprecated)]
        let fd = AsyncFd::new(fd)?;
        Ok(Self::Adopted { pid, fd })
    }

    /// The pid.
    pub fn pid(&self) -> u32 {
        match self {
            Self::Child(c) => c.id().unwrap_or(0),
            Self::Adopted { pid, .. } => *pid,
        }
    }

    /// Waits for the exit (no polling); describes how it ended.
    pub async fn wait(&mut self) -> String {
        match self {
            Self::Child(c) => match c.wait().await {
                Ok(s) => match s.signal() {
                    Some(sig) => format!(
                        "killed by signal {}",
                        Signal::try_from(sig).map_or_else(|_| sig.to_string(), |s| s.to_string())
                    ),
                    None => format!("exited with status {}", s.code().unwrap_or(-1)),
                },
                Err(e) => format!("cannot be waited for: {e}"),
            },
            Self::Adopted { fd, .. } => match fd.readable().await {
                Ok(_) => "exited (adopted from a previous executor: exit status unknown)".into(),
                Err(e) => format!("cannot be watched: {e}"),
            },
        }
    }
}

/// Sends `sig` to `pid`; a process that is already gone is not an error.
pub fn signal(pid: u32, sig: Signal) {
    let Ok(raw) = i32::try_from(pid) else { return };
    match kill(Pid::from_raw(raw), sig) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(e) => tracing::warn!(pid, signal = %sig, "cannot signal the engine: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_start_time_and_zombies() {
        let line = "1234 (spdk (tgt)) S 1 1234 1234 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 3 0 987654 1000 50";
        assert_eq!(parse_stat_start(line), Some(987_654));
        let z = line.replace(") S ", ") Z ");
        assert_eq!(parse_stat_start(&z), None);
        assert_eq!(parse_stat_start("garbage"), None);
        assert!(start_time(std::process::id()).is_some());
    }

    #[test]
    fn preflight_names_the_binary() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = EngineSpec {
            program: tmp.path().join("spdk_tgt"),
            socket: tmp.path().join("run/spdk.sock"),
            cpu_mask: "0x1".into(),
            memory_mib: 64,
            interrupt_mode: false,
            pools: None,
            args: vec![],
        };
        let e = preflight(&spec).unwrap_err().to_string();
        assert_eq!(
            e,
            format!("spdk_tgt binary {} does not exist", spec.program.display())
        );
        fs::write(&spec.program, "").unwrap();
        let e = preflight(&spec).unwrap_err().to_string();
        assert!(e.ends_with("is not an executable file"), "{e}");
        fs::set_permissions(&spec.program, fs::Permissions::from_mode(0o755)).unwrap();
        preflight(&spec).unwrap();
        assert!(
            tmp.path().join("run").is_dir(),
            "the socket directory is made"
        );
        let _l = std::os::unix::net::UnixListener::bind(&spec.socket).unwrap();
        let e = preflight(&spec).unwrap_err().to_string();
        assert!(e.contains("did not start"), "{e}");
    }

    #[test]
    fn the_pools_configuration_is_written_where_the_command_line_names_it() {
        let tmp = tempfile::tempdir().unwrap();
        let mut o = super::super::spec::EngineOptions::new("/opt/spdk_tgt", "/run/x.sock");
        o.config_file = tmp.path().join("state/engine.spdk.json");
        let mut cfg = model::NodeConfig {
            node: "node-1".into(),
            enabled: true,
            hugepages: 128,
            cpu_mask: "0x1".into(),
            log_level: "notice".into(),
            interrupt_mode: false,
            kernel_modules: vec![],
            boot_persistence: model::BootPersistence::Auto,
        };
        let spec = o.spec_for(&cfg);
        write_config(&spec).unwrap();
        let text = fs::read_to_string(&o.config_file).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let pools = spec.pools.as_ref().unwrap().pools;
        assert_eq!(v, pools.json_config());
        let mode = fs::metadata(&o.config_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let argv = spec.argv();
        let at = argv.iter().position(|a| a == "-c").unwrap();
        assert_eq!(argv[at + 1], o.config_file.as_os_str());
        // Full memory: no configuration, nothing written.
        fs::remove_file(&o.config_file).unwrap();
        cfg.hugepages = 1024;
        write_config(&o.spec_for(&cfg)).unwrap();
        assert!(!o.config_file.exists());
    }

    #[test]
    fn stale_pid_files_are_removed_and_tails_are_bounded() {
        let tmp = tempfile::tempdir().unwrap();
        let f = EngineFiles::new(tmp.path());
        let spec = EngineSpec {
            program: "/nonexistent".into(),
            socket: "/tmp/x.sock".into(),
            cpu_mask: "0x1".into(),
            memory_mib: 64,
            interrupt_mode: false,
            pools: None,
            args: vec![],
        };
        f.save_pid(&PidRecord {
            pid: std::process::id(),
            start_time: start_time(std::process::id()).unwrap(),
            spec,
        })
        .unwrap();
        assert_eq!(
            f.find_running(),
            None,
            "our own pid has another command line"
        );
        assert!(!f.pid_file().exists());
        fs::write(f.log_file(), "a\nb\nc\n").unwrap();
        assert_eq!(f.log_tail(2), "b\nc");
        assert_eq!(f.log_tail(10), "a\nb\nc");
    }
}
