//! Command line: the `spdk_tgt` flags v2engine uses, plus the simulator's own `--version-string`
//! and `--sim-rebuild-ms`. `-c FILE` is read when the simulator starts ([`crate::startup`]).

use crate::version::{DEFAULT_VERSION, SpdkVersion, VersionError};
use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;

/// SPDK's default RPC socket path.
pub const DEFAULT_SOCKET: &str = "/var/tmp/spdk.sock";

/// Default of [`Config::aio_file_block_size`].
pub const DEFAULT_AIO_FILE_BLOCK_SIZE: u32 = 512;

/// Default duration of a simulated raid rebuild.
pub const DEFAULT_REBUILD: Duration = Duration::from_millis(2000);

/// A command line that `spdk_tgt` would refuse too.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CliError {
    /// A flag spdk_tgt does not know.
    #[error("unrecognized option '{0}'")]
    UnknownOption(String),
    /// A flag that takes a value came last.
    #[error("option '{0}' requires an argument")]
    MissingValue(String),
    /// A positional argument (spdk_tgt takes none).
    #[error("unexpected argument '{0}'")]
    UnexpectedArgument(String),
    /// `-m` is not a hex mask or a core list, or selects no core.
    #[error(
        "invalid cpumask '{0}' (expected a hex mask such as 0x3 or a core list such as [0,2-3])"
    )]
    InvalidCpumask(String),
    /// `-s` is not a size.
    #[error("invalid memory size '{0}' for -s (expected MiB, optionally with a k/m/g suffix)")]
    InvalidMemSize(String),
    /// `--no-huge` without `-s`, which spdk_tgt refuses at start.
    #[error(
        "Disabling hugepages requires specifying how much memory will be allocated using -s parameter"
    )]
    NoHugeNeedsMemSize,
    /// `--version-string` does not look like an SPDK version.
    #[error("invalid --version-string: {0}")]
    Version(#[from] VersionError),
    /// A numeric flag with a non-numeric value.
    #[error("invalid value '{value}' for {flag}")]
    InvalidNumber {
        /// The flag.
        flag: String,
        /// What was given.
        value: String,
    },
}

/// What the simulator runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// RPC Unix socket path (`-r`).
    pub socket: PathBuf,
    /// Selected cores (`-m`), sorted.
    pub cores: Vec<u32>,
    /// Memory size in MiB (`-s`).
    pub mem_size_mib: Option<u64>,
    /// `--no-huge`.
    pub no_huge: bool,
    /// The version `spdk_get_version` reports.
    pub version: SpdkVersion,
    /// How long a raid rebuild takes when no bandwidth limit is set.
    pub rebuild_time: Duration,
    /// The block size `bdev_aio_create` without `block_size` assumes on a regular file, where
    /// SPDK cannot detect one and answers -22 (`None`: as SPDK). Defaults to 512, because
    /// v2engine's tests and lab put aio bdevs on sparse files and the executor sends no
    /// `block_size` (`--sim-aio-file-block-size none` answers as SPDK).
    pub aio_file_block_size: Option<u32>,
    /// The JSON configuration (`-c`, `--config`, `--json`), applied at start.
    pub json_config: Option<PathBuf>,
    /// `--msg-mempool-size`.
    pub msg_mempool_size: Option<u64>,
}

impl Config {
    /// Defaults of a plain `spdk_tgt` start, with the RPC socket at `socket`.
    #[must_use]
    pub fn with_socket(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
            cores: vec![0],
            mem_size_mib: None,
            no_huge: false,
            version: default_version(),
            rebuild_time: DEFAULT_REBUILD,
            aio_file_block_size: Some(DEFAULT_AIO_FILE_BLOCK_SIZE),
            json_config: None,
            msg_mempool_size: None,
        }
    }
}

fn default_version() -> SpdkVersion {
    SpdkVersion {
        text: DEFAULT_VERSION.to_owned(),
        major: 24,
        minor: 9,
        patch: 0,
        suffix: String::new(),
        commit: None,
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// Serve with this configuration.
    Run(Box<Config>),
    /// Print usage and exit successfully.
    Help,
}

/// Usage text.
pub const USAGE: &str = "\
spdk-sim [options]  (an spdk_tgt v24.09 stand-in)
 -r, --rpc-socket <path>   RPC listen address (default /var/tmp/spdk.sock)
 -m, --cpumask <mask>      core mask (hex such as 0x3, or a list such as [0,2-3])
 -s, --mem-size <size>     memory size in MiB (k/m/g suffixes accepted)
     --no-huge             run without hugepages (requires -s)
 -c, --config, --json <f>  JSON configuration: the *_set_options methods it knows are
                           checked as spdk_tgt checks them; a refused file ends the start
     --msg-mempool-size <n> message pool size (a positive count), no effect
 -u, --no-pci              accepted, no effect
     --disable-cpumask-locks  accepted, no effect
     --huge-dir <path>, -R, --huge-unlink  accepted, no effect
     --interrupt-mode      accepted, no effect (the simulator never polls)
 -L, --logflag <flag>      accepted, no effect
     --version-string <s>  version reported by spdk_get_version (default \"SPDK v24.09\")
     --sim-rebuild-ms <ms> duration of a simulated raid rebuild (default 2000)
     --sim-aio-file-block-size <n|none>
                           block size of an aio bdev on a regular file without block_size
                           (default 512; none: refused with -22, as SPDK does)
 -h, --help                this text";

/// Parses the arguments after the program name.
///
/// # Errors
/// [`CliError`] for anything spdk_tgt would refuse (unknown flag, bad mask, `--no-huge` without `-s`).
pub fn parse<I, S>(args: I) -> Result<Command, CliError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut cfg = Config::with_socket(DEFAULT_SOCKET);
    let mut args = args.into_iter().map(Into::into);
    while let Some(arg) = args.next() {
        let (flag, inline) = split_flag(&arg);
        let mut value = |name: &str| -> Result<String, CliError> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => args
                    .next()
                    .ok_or_else(|| CliError::MissingValue(name.to_owned())),
            }
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-r" | "--rpc-socket" => cfg.socket = PathBuf::from(value(&flag)?),
            "-m" | "--cpumask" => cfg.cores = parse_cpumask(&value(&flag)?)?,
            "-s" | "--mem-size" => cfg.mem_size_mib = Some(parse_mem_size(&value(&flag)?)?),
            "--no-huge" => cfg.no_huge = true,
            "-u"
            | "--no-pci"
            | "--interrupt-mode"
            | "--silence-noticelog"
            | "--disable-cpumask-locks"
            | "-R"
            | "--huge-unlink" => {}
            "-L" | "--logflag" | "--huge-dir" => {
                value(&flag)?;
            }
            "-c" | "--config" | "--json" => cfg.json_config = Some(PathBuf::from(value(&flag)?)),
            "--msg-mempool-size" => {
                let v = value(&flag)?;
                match v.parse::<u64>() {
                    Ok(n) if n > 0 => cfg.msg_mempool_size = Some(n),
                    _ => {
                        return Err(CliError::InvalidNumber {
                            flag: flag.clone(),
                            value: v,
                        });
                    }
                }
            }
            "--version-string" => cfg.version = SpdkVersion::parse(&value(&flag)?)?,
            "--sim-rebuild-ms" => {
                let v = value(&flag)?;
                let ms: u64 = v.parse().map_err(|_| CliError::InvalidNumber {
                    flag: flag.clone(),
                    value: v,
                })?;
                cfg.rebuild_time = Duration::from_millis(ms);
            }
            "--sim-aio-file-block-size" => {
                let v = value(&flag)?;
                cfg.aio_file_block_size = match v.as_str() {
                    "none" => None,
                    n => Some(n.parse().map_err(|_| CliError::InvalidNumber {
                        flag: flag.clone(),
                        value: v.clone(),
                    })?),
                };
            }
            other if other.starts_with('-') => return Err(CliError::UnknownOption(arg.clone())),
            _ => return Err(CliError::UnexpectedArgument(arg.clone())),
        }
    }
    if cfg.no_huge && cfg.mem_size_mib.is_none() {
        return Err(CliError::NoHugeNeedsMemSize);
    }
    Ok(Command::Run(Box::new(cfg)))
}

/// Splits `--flag=value` and `-xVALUE` into the flag and its inline value.
fn split_flag(arg: &str) -> (String, Option<String>) {
    if let Some(long) = arg.strip_prefix("--") {
        return match long.split_once('=') {
            Some((f, v)) => (format!("--{f}"), Some(v.to_owned())),
            None => (arg.to_owned(), None),
        };
    }
    let takes_value = ["-r", "-m", "-s", "-L", "-c"];
    if arg.len() > 2 && arg.is_char_boundary(2) && takes_value.contains(&&arg[..2]) {
        return (arg[..2].to_owned(), Some(arg[2..].to_owned()));
    }
    (arg.to_owned(), None)
}

/// Parses a core mask: hex (`0x3`, `3`) or a list (`[0,2-3]`). Returns the sorted cores.
///
/// # Errors
/// [`CliError::InvalidCpumask`] when the syntax is wrong or no core is selected.
pub fn parse_cpumask(mask: &str) -> Result<Vec<u32>, CliError> {
    let bad = || CliError::InvalidCpumask(mask.to_owned());
    let mut cores = Vec::new();
    if let Some(list) = mask.strip_prefix('[').and_then(|m| m.strip_suffix(']')) {
        for item in list.split(',') {
            let item = item.trim();
            let (lo, hi) = match item.split_once('-') {
                Some((a, b)) => (a.trim(), b.trim()),
                None => (item, item),
            };
            let lo: u32 = lo.parse().map_err(|_| bad())?;
            let hi: u32 = hi.parse().map_err(|_| bad())?;
            if lo > hi || hi >= 1024 {
                return Err(bad());
            }
            cores.extend(lo..=hi);
        }
    } else {
        let hex = mask
            .strip_prefix("0x")
            .or_else(|| mask.strip_prefix("0X"))
            .unwrap_or(mask);
        if hex.is_empty() || hex.len() > 256 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad());
        }
        for (pos, c) in hex.chars().rev().enumerate() {
            let nibble = c.to_digit(16).ok_or_else(bad)?;
            for bit in 0..4u32 {
                if nibble & (1 << bit) != 0 {
                    let core = u32::try_from(pos).map_err(|_| bad())? * 4 + bit;
                    cores.push(core);
                }
            }
        }
    }
    cores.sort_unstable();
    cores.dedup();
    if cores.is_empty() {
        return Err(bad());
    }
    Ok(cores)
}

/// Parses `-s`: MiB, or a number with a `k`/`m`/`g` suffix (optionally followed by `b`).
///
/// # Errors
/// [`CliError::InvalidMemSize`] when it is not such a number or is zero.
pub fn parse_mem_size(size: &str) -> Result<u64, CliError> {
    let bad = || CliError::InvalidMemSize(size.to_owned());
    let lower = size.to_ascii_lowercase();
    let trimmed = lower.strip_suffix('b').unwrap_or(&lower);
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let mib = match unit {
        "" | "m" => n,
        "k" => n / 1024,
        "g" => n.checked_mul(1024).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    if mib == 0 {
        return Err(bad());
    }
    Ok(mib)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Config {
        match parse(args.iter().copied()) {
            Ok(Command::Run(c)) => *c,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn defaults_are_spdk_tgt_defaults() {
        let c = run(&[]);
        assert_eq!(c.socket, PathBuf::from("/var/tmp/spdk.sock"));
        assert_eq!(c.cores, vec![0]);
        assert_eq!(c.version.text, "SPDK v24.09");
        assert!(!c.no_huge);
    }

    #[test]
    fn the_flags_v2engine_uses() {
        let c = run(&["-r", "/tmp/a.sock", "-m", "0x6", "-s", "1024", "--no-huge"]);
        assert_eq!(c.socket, PathBuf::from("/tmp/a.sock"));
        assert_eq!(c.cores, vec![1, 2]);
        assert_eq!(c.mem_size_mib, Some(1024));
        assert!(c.no_huge);
        let c = run(&[
            "--rpc-socket=/tmp/b.sock",
            "-m[0,2-3]",
            "-s2g",
            "--version-string",
            "SPDK v25.01",
        ]);
        assert_eq!(c.socket, PathBuf::from("/tmp/b.sock"));
        assert_eq!(c.cores, vec![0, 2, 3]);
        assert_eq!(c.mem_size_mib, Some(2048));
        assert_eq!(c.version.major, 25);
    }

    #[test]
    fn the_flags_the_executor_adds_for_small_memory() {
        let c = run(&[
            "-m",
            "0x1",
            "-s",
            "256",
            "-r",
            "/tmp/a.sock",
            "-c",
            "/var/lib/v2engine/engine.spdk.json",
            "--msg-mempool-size",
            "32767",
            "-u",
            "--disable-cpumask-locks",
            "--huge-dir",
            "/dev/hugepages",
            "-R",
        ]);
        assert_eq!(
            c.json_config,
            Some(PathBuf::from("/var/lib/v2engine/engine.spdk.json"))
        );
        assert_eq!(c.msg_mempool_size, Some(32767));
        assert_eq!(run(&["--json=/a.json"]).json_config, Some("/a.json".into()));
        assert_eq!(run(&["-c/b.json"]).json_config, Some("/b.json".into()));
        assert_eq!(
            run(&["--config", "/c.json"]).json_config,
            Some("/c.json".into())
        );
        assert_eq!(run(&[]).json_config, None);
        for bad in ["0", "-1", "lots"] {
            assert!(
                matches!(
                    parse(["--msg-mempool-size", bad]),
                    Err(CliError::InvalidNumber { .. })
                ),
                "{bad}"
            );
        }
        assert_eq!(
            parse(["-c"]).err(),
            Some(CliError::MissingValue("-c".into()))
        );
    }

    #[test]
    fn refuses_what_spdk_tgt_refuses() {
        assert_eq!(
            parse(["--bogus"]).err(),
            Some(CliError::UnknownOption("--bogus".into()))
        );
        assert_eq!(
            parse(["-r"]).err(),
            Some(CliError::MissingValue("-r".into()))
        );
        assert_eq!(
            parse(["--no-huge"]).err(),
            Some(CliError::NoHugeNeedsMemSize)
        );
        assert!(matches!(
            parse(["-m", "0x0"]),
            Err(CliError::InvalidCpumask(_))
        ));
        assert!(matches!(
            parse(["-m", "zz"]),
            Err(CliError::InvalidCpumask(_))
        ));
        assert!(matches!(
            parse(["-m", "[3-1]"]),
            Err(CliError::InvalidCpumask(_))
        ));
        assert!(matches!(
            parse(["-s", "lots"]),
            Err(CliError::InvalidMemSize(_))
        ));
        assert!(matches!(
            parse(["--version-string", "24.09"]),
            Err(CliError::Version(_))
        ));
        assert!(matches!(
            parse(["stray"]),
            Err(CliError::UnexpectedArgument(_))
        ));
    }

    #[test]
    fn help_and_sim_flags() {
        assert!(matches!(parse(["-h"]), Ok(Command::Help)));
        assert_eq!(
            run(&["--sim-rebuild-ms", "50"]).rebuild_time,
            Duration::from_millis(50)
        );
        assert!(matches!(
            parse(["--sim-rebuild-ms", "x"]),
            Err(CliError::InvalidNumber { .. })
        ));
    }

    #[test]
    fn hex_masks_beyond_64_cores() {
        let cores = parse_cpumask("0x10000000000000000").unwrap();
        assert_eq!(cores, vec![64]);
    }
}
