//! Running the system tools the lab drives (`ip`, `losetup`, `ssh-keygen`, the executor's
//! one-shot commands) with explicit arguments, never through a shell.

use std::ffi::OsStr;
use std::process::{Command, Stdio};

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    /// The program could not be started.
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        /// The command line, for the message.
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The program exited unsuccessfully.
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        /// The command line, for the message.
        command: String,
        /// Exit status.
        status: std::process::ExitStatus,
        /// Its standard error, trimmed.
        stderr: String,
    },
}

impl CmdError {
    /// The standard error of a failed command ("" when it did not start).
    pub fn stderr(&self) -> &str {
        match self {
            CmdError::Failed { stderr, .. } => stderr,
            CmdError::Spawn { .. } => "",
        }
    }
}

/// The command line of `program args…`, for messages only.
pub fn display<P: AsRef<OsStr>, S: AsRef<OsStr>>(program: P, args: &[S]) -> String {
    let mut s = program.as_ref().to_string_lossy().into_owned();
    for a in args {
        s.push(' ');
        s.push_str(&a.as_ref().to_string_lossy());
    }
    s
}

/// Runs `program args…` to completion and returns its standard output.
pub fn run<P: AsRef<OsStr>, S: AsRef<OsStr>>(program: P, args: &[S]) -> Result<String, CmdError> {
    let command = display(&program, args);
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| CmdError::Spawn {
            command: command.clone(),
            source,
        })?;
    if !out.status.success() {
        return Err(CmdError::Failed {
            command,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_stdout() {
        assert_eq!(run("echo", &["a", "b c"]).unwrap(), "a b c\n");
    }

    #[test]
    fn failures_name_the_command_and_carry_stderr() {
        let err = run("ls", &["/nonexistent-v2engine-lab"]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("ls /nonexistent-v2engine-lab"), "{msg}");
        assert!(!err.stderr().is_empty());
        let err = run::<_, &str>("/nonexistent/program", &[]).unwrap_err();
        assert!(matches!(err, CmdError::Spawn { .. }));
        assert!(err.to_string().contains("/nonexistent/program"));
    }
}
