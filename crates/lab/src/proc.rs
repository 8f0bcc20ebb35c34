//! Processes the lab starts: detached inside a namespace (own process group, output to a log
//! file), recognised later by their /proc command line, stopped by pid with bounded waits.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::os::unix::process::CommandExt;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::{Pid, getpgid};

/// How often process state is polled while waiting.
const POLL: Duration = Duration::from_millis(50);
/// How long a process may take to die after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Why a process operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    /// The log file could not be opened.
    #[error("cannot open log {path} for {what}: {source}")]
    Log {
        /// The process, e.g. "sshd of node-1".
        what: String,
        /// The log file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The process could not be started.
    #[error("cannot start {what} in namespace {namespace}: {source}")]
    Spawn {
        /// The process.
        what: String,
        /// The namespace.
        namespace: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A signal could not be sent.
    #[error("cannot send {signal} to pid {pid}: {source}")]
    Signal {
        /// The pid (negative: a process group).
        pid: i32,
        /// The signal.
        signal: Signal,
        /// Why.
        #[source]
        source: nix::Error,
    },
    /// The process survived SIGKILL.
    #[error("pid {pid} is still running {waited:?} after SIGKILL")]
    Stuck {
        /// The pid.
        pid: u32,
        /// How long we waited.
        waited: Duration,
    },
}

/// Starts `argv` inside `namespace` (`ip netns exec NAMESPACE argv…`), in its own process
/// group, stdin from /dev/null, stdout and stderr appended to `log`. `ip` execs the program,
/// so the child's pid is the program's.
pub fn spawn_in_namespace(
    namespace: &str,
    argv: &[String],
    log: &Path,
    what: &str,
) -> Result<Child, ProcError> {
    let open = || {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|source| ProcError::Log {
                what: what.to_string(),
                path: log.to_path_buf(),
                source,
            })
    };
    let (out, err) = (open()?, open()?);
    Command::new("ip")
        .args(["netns", "exec", namespace])
        .args(argv)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|source| ProcError::Spawn {
            what: what.to_string(),
            namespace: namespace.to_string(),
            source,
        })
}

/// The state letter of /proc/PID/stat (`R`, `S`, `Z`, …), `None` when there is no such process.
pub fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ...": comm may contain spaces and parentheses.
    let after = &stat[stat.rfind(')')? + 1..];
    after.trim_start().chars().next()
}

/// True when `pid` exists and is neither a zombie nor dead.
pub fn is_alive(pid: u32) -> bool {
    state(pid).is_some_and(|s| s != 'Z' && s != 'X')
}

/// The command line of `pid`, `None` when it is gone or a zombie.
pub fn cmdline(pid: u32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    if raw.is_empty() {
        return None;
    }
    let raw = raw.strip_suffix(b"\0").unwrap_or(&raw);
    Some(
        raw.split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

/// True when a /proc command line `actual` is that of a process started as `argv`: the
/// same words, or the title a daemon rewrote it to, as sshd does
/// (`sshd: /usr/sbin/sshd -D -f CONFIG -E LOG [listener] 0 of 100-200 startups`).
pub fn cmdline_matches(actual: &[String], argv: &[String]) -> bool {
    if actual == argv {
        return true;
    }
    let [title] = actual else { return false };
    let Some(program) = argv.first() else {
        return false;
    };
    let name = program.rsplit('/').next().unwrap_or(program);
    let expected = format!("{name}: {}", argv.join(" "));
    title
        .strip_prefix(&expected)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
}

/// True when `pid` is alive and still runs `argv` (see [`cmdline_matches`]): only then is
/// it ours to signal.
pub fn runs(pid: u32, argv: &[String]) -> bool {
    is_alive(pid) && cmdline(pid).is_some_and(|c| cmdline_matches(&c, argv))
}

/// True when `pid`'s command line has `word` as one of its space-separated words.
pub fn mentions(pid: u32, word: &str) -> bool {
    cmdline(pid).is_some_and(|c| c.iter().flat_map(|a| a.split(' ')).any(|w| w == word))
}

/// Reads a pid file; `None` when absent or not a pid.
pub fn read_pid_file(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn to_pid(pid: u32) -> Pid {
    Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX))
}

fn signal(pid: u32, sig: Signal) -> Result<(), ProcError> {
    let p = to_pid(pid);
    // Signal the whole group when the process leads one (as the ones we start do), so that
    // whatever it started without a group of its own goes too.
    let leads_group = getpgid(Some(p)).is_ok_and(|g| g == p);
    let (res, shown) = if leads_group {
        (killpg(p, sig), -p.as_raw())
    } else {
        (kill(p, sig), p.as_raw())
    };
    match res {
        Ok(()) | Err(nix::Error::ESRCH) => Ok(()),
        Err(source) => Err(ProcError::Signal {
            pid: shown,
            signal: sig,
            source,
        }),
    }
}

fn wait_dead(pids: &[u32], within: Duration) -> Vec<u32> {
    let deadline = Instant::now() + within;
    loop {
        let alive: Vec<u32> = pids.iter().copied().filter(|p| is_alive(*p)).collect();
        if alive.is_empty() || Instant::now() >= deadline {
            return alive;
        }
        std::thread::sleep(POLL);
    }
}

/// Stops `pids`: SIGTERM (to each one's process group when it leads one), up to `grace` to
/// exit, then SIGKILL and a bounded wait. Callers check that the pids are ours first.
pub fn terminate_all(pids: &[u32], grace: Duration) -> Result<(), ProcError> {
    let alive: Vec<u32> = pids.iter().copied().filter(|p| is_alive(*p)).collect();
    for p in &alive {
        signal(*p, Signal::SIGTERM)?;
    }
    let left = wait_dead(&alive, grace);
    for p in &left {
        signal(*p, Signal::SIGKILL)?;
    }
    match wait_dead(&left, KILL_WAIT).first() {
        Some(p) => Err(ProcError::Stuck {
            pid: *p,
            waited: KILL_WAIT,
        }),
        None => Ok(()),
    }
}

/// The last `lines` lines of `path` (for error messages), "" when unreadable.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_process() {
        let me = std::process::id();
        assert!(is_alive(me));
        let argv = cmdline(me).unwrap();
        assert!(runs(me, &argv));
        assert!(!runs(me, &["something-else".to_string()]));
        assert_eq!(state(u32::MAX), None);
        assert!(!is_alive(u32::MAX));
        assert_eq!(cmdline(u32::MAX), None);
    }

    #[test]
    fn terminates_a_process_group_and_reaps_nothing_else() {
        let mut child = Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id();
        assert!(is_alive(pid));
        // Our own child turns into a zombie, which counts as dead.
        terminate_all(&[pid], Duration::from_secs(5)).unwrap();
        assert!(!is_alive(pid));
        assert!(child.wait().is_ok());
        assert!(is_alive(std::process::id()));
    }

    #[test]
    fn command_lines_match_exactly_or_as_a_rewritten_title() {
        let argv: Vec<String> = ["/usr/sbin/sshd", "-D", "-f", "/l/sshd_config"]
            .map(String::from)
            .into();
        assert!(cmdline_matches(&argv, &argv));
        let title = |t: &str| vec![t.to_string()];
        assert!(cmdline_matches(
            &title("sshd: /usr/sbin/sshd -D -f /l/sshd_config [listener] 0 of 100-200 startups"),
            &argv
        ));
        assert!(cmdline_matches(
            &title("sshd: /usr/sbin/sshd -D -f /l/sshd_config"),
            &argv
        ));
        assert!(!cmdline_matches(
            &title("sshd: /usr/sbin/sshd -D -f /l/sshd_config2"),
            &argv
        ));
        assert!(!cmdline_matches(&title("sshd: root@pts/0"), &argv));
        assert!(!cmdline_matches(&argv[..3], &argv));
        assert!(!cmdline_matches(&title("x"), &[]));
    }

    #[test]
    fn tails_and_pid_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        std::fs::write(&p, "a\nb\nc\n").unwrap();
        assert_eq!(tail(&p, 2), "b\nc");
        assert_eq!(tail(&dir.path().join("none"), 2), "");
        std::fs::write(&p, "1234\n").unwrap();
        assert_eq!(read_pid_file(&p), Some(1234));
        assert_eq!(read_pid_file(&dir.path().join("none")), None);
    }
}
