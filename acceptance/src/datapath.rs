//! The data path, checked with SPDK's own tools: data written through an NVMe-oF/TCP
//! subsystem (a volume's frontend, a replica's export) and read back, compared block by block,
//! and the I/O rate measured.
//!
//! Every operation runs one of the SPDK build's applications ([`DataPath::new`] takes the
//! build directory, `$V2ENGINE_SPDK_DIR`) as a process of its own, optionally inside a
//! network namespace (`ip netns exec NS …`, argument vectors, no shell), with its own memory
//! (`--no-huge -s 512`), no PCI, no core locks, its own RPC socket in a temporary directory,
//! and a bounded time (the child is killed by its PID when the time is up):
//! - `spdk_dd` with a JSON bdev configuration attaching the target
//!   (`bdev_nvme_attach_controller`, presenting the caller's host NQN) writes and reads;
//! - `spdk_nvme_perf` (connecting by transport ID, `hostnqn:` in it) measures, and tells the
//!   namespace's geometry: asked for a 1-byte I/O, it refuses the namespace naming its size
//!   and block size, and does nothing else ([`DataPath::geometry`]).
//!
//! Writes use a pattern that is a pure function of (seed, block index) ([`pattern`]): every
//! block carries a header with the seed and its index, so a mismatch reports the first block
//! that differs and what was found there: the pattern of another seed (old data), zeros
//! (never written), or something else ([`Content`]).

pub mod rpc;

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The controller name spdk_dd's configuration gives the target; its bdev is `dpn1`.
const DD_CONTROLLER: &str = "dp";
/// The largest I/O unit spdk_dd is given.
const MAX_IO_UNIT: u64 = 1 << 20;
/// Magic at the start of every pattern block.
pub const PATTERN_MAGIC: [u8; 8] = *b"v2e-dp01";
/// Bytes of the per-block header: magic, seed, block index.
const HEADER: usize = 24;

/// An NVMe-oF/TCP subsystem to reach: IPv4 address, port and subsystem NQN.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// IPv4 address of the listener.
    pub address: String,
    /// TCP port of the listener.
    pub port: u16,
    /// Subsystem NQN.
    pub nqn: String,
}

impl Target {
    /// The subsystem `nqn` listening on `address:port`.
    pub fn new(address: impl Into<String>, port: u16, nqn: impl Into<String>) -> Target {
        Target {
            address: address.into(),
            port,
            nqn: nqn.into(),
        }
    }

    /// SPDK's transport ID string (`spdk_nvme_perf -r`), presenting `host_nqn`.
    pub fn transport_id(&self, host_nqn: &str) -> String {
        format!(
            "trtype:TCP adrfam:IPv4 traddr:{} trsvcid:{} subnqn:{} hostnqn:{host_nqn}",
            self.address, self.port, self.nqn
        )
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}:{}", self.nqn, self.address, self.port)
    }
}

/// A namespace's size and block size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Bytes in one block.
    pub block_size: u64,
    /// Bytes in the namespace.
    pub size: u64,
}

impl Geometry {
    /// Blocks in the namespace.
    pub fn blocks(&self) -> u64 {
        self.size / self.block_size
    }
}

/// What a block holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// The pattern of `seed` for block `block`.
    Pattern {
        /// The seed written.
        seed: u64,
        /// The block index the pattern was made for.
        block: u64,
    },
    /// Only zero bytes.
    Zeros,
    /// Neither: its first bytes, in hex.
    Other(String),
}

impl fmt::Display for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Content::Pattern { seed, block } => {
                write!(f, "the pattern of seed {seed} (block {block})")
            }
            Content::Zeros => write!(f, "zeros"),
            Content::Other(head) => write!(f, "unknown data starting {head}"),
        }
    }
}

/// What a read is expected to return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// The pattern of this seed ([`pattern`]).
    Seed(u64),
    /// Exactly these bytes.
    Bytes(Vec<u8>),
}

/// The first difference between what was expected and what was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The first block (index on the namespace) that differs.
    pub first_block: u64,
    /// How many blocks of the range differ.
    pub blocks: u64,
    /// What that block should hold.
    pub expected: Content,
    /// What it holds.
    pub found: Content,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} block(s) differ; the first, block {}, holds {} instead of {}",
            self.blocks, self.first_block, self.found, self.expected
        )
    }
}

/// An `spdk_nvme_perf` workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Random reads.
    RandRead,
    /// Random writes.
    RandWrite,
}

impl Workload {
    /// The `-w` value.
    pub fn as_str(&self) -> &'static str {
        match self {
            Workload::RandRead => "randread",
            Workload::RandWrite => "randwrite",
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `spdk_nvme_perf` run's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerfSpec {
    /// The I/O pattern.
    pub workload: Workload,
    /// Queue depth.
    pub queue_depth: u32,
    /// Bytes per I/O.
    pub io_size: u32,
    /// Duration of the measurement.
    pub seconds: u32,
}

/// What `spdk_nvme_perf` measured (its `Total` line and latency summary).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerfResult {
    /// I/O per second.
    pub iops: f64,
    /// MiB per second.
    pub mib_s: f64,
    /// Average latency, µs.
    pub avg_lat_us: f64,
    /// Minimum latency, µs.
    pub min_lat_us: f64,
    /// Maximum latency, µs.
    pub max_lat_us: f64,
    /// Median latency, µs (from `-L`'s summary, when printed).
    pub p50_us: Option<f64>,
    /// 99th percentile latency, µs (from `-L`'s summary, when printed).
    pub p99_us: Option<f64>,
}

/// Why a data-path operation failed. Every message names the tool and the target.
#[derive(Debug, thiserror::Error)]
pub enum DatapathError {
    /// The SPDK build lacks a tool.
    #[error("SPDK build {dir}: no executable bin/{tool}")]
    NoTool {
        /// The build directory.
        dir: PathBuf,
        /// The tool.
        tool: &'static str,
    },
    /// A local file could not be written or read.
    #[error("{what} {path}: {source}")]
    File {
        /// What the file is for.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The tool could not be started.
    #[error("{tool} for {target}: cannot start {program}: {source}")]
    Spawn {
        /// The tool.
        tool: &'static str,
        /// The target.
        target: String,
        /// The program run (`ip` inside a namespace).
        program: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The tool did not finish in time; it was killed.
    #[error("{tool} for {target}: no result within {secs} s, killed; its output ends:\n{tail}")]
    Timeout {
        /// The tool.
        tool: &'static str,
        /// The target.
        target: String,
        /// The time allowed.
        secs: u64,
        /// The end of its output.
        tail: String,
    },
    /// The subsystem refused the host NQN presented.
    #[error(
        "{tool} for {target}: the subsystem refused host {host_nqn} (INVALID HOST); its output ends:\n{tail}"
    )]
    HostRefused {
        /// The tool.
        tool: &'static str,
        /// The target.
        target: String,
        /// The host NQN presented.
        host_nqn: String,
        /// The end of its output.
        tail: String,
    },
    /// The tool failed.
    #[error("{tool} for {target}: {status}; its output ends:\n{tail}")]
    Failed {
        /// The tool.
        tool: &'static str,
        /// The target.
        target: String,
        /// How it ended.
        status: String,
        /// The end of its output.
        tail: String,
    },
    /// The tool's output lacks what was asked of it.
    #[error("{tool} for {target}: {what} not found in its output, which ends:\n{tail}")]
    Output {
        /// The tool.
        tool: &'static str,
        /// The target.
        target: String,
        /// What was looked for.
        what: &'static str,
        /// The end of its output.
        tail: String,
    },
    /// The range is not whole blocks, or not inside the namespace.
    #[error(
        "{target}: bytes {offset}..+{len} are not whole blocks inside the namespace ({size} bytes, blocks of {block_size})"
    )]
    Range {
        /// The target.
        target: String,
        /// First byte.
        offset: u64,
        /// Length.
        len: u64,
        /// The namespace's size.
        size: u64,
        /// Its block size.
        block_size: u64,
    },
    /// The data read back is not what was expected.
    #[error("{target}: bytes {offset}..+{len} read back wrong: {mismatch}")]
    Mismatch {
        /// The target.
        target: String,
        /// First byte of the range.
        offset: u64,
        /// Length of the range.
        len: u64,
        /// The first difference.
        mismatch: Mismatch,
    },
}

/// The SPDK tools of one build, run as one host (NQN), optionally inside a namespace.
#[derive(Debug)]
pub struct DataPath {
    spdk_dir: PathBuf,
    host_nqn: String,
    netns: Option<String>,
    mem_mib: u32,
    timeout: Duration,
    work: tempfile::TempDir,
}

impl DataPath {
    /// The tools of the SPDK build `spdk_dir` (holding `bin/spdk_dd` and
    /// `bin/spdk_nvme_perf`), presenting `host_nqn`. Runs in the current network namespace,
    /// each tool with 512 MiB and at most 120 s (plus the measurement time for perf).
    pub fn new(spdk_dir: &Path, host_nqn: &str) -> Result<DataPath, DatapathError> {
        for tool in ["spdk_dd", "spdk_nvme_perf"] {
            if !is_executable(&spdk_dir.join("bin").join(tool)) {
                return Err(DatapathError::NoTool {
                    dir: spdk_dir.to_path_buf(),
                    tool,
                });
            }
        }
        let work = tempfile::Builder::new()
            .prefix("v2e-datapath-")
            .tempdir()
            .map_err(|source| DatapathError::File {
                what: "work directory",
                path: std::env::temp_dir(),
                source,
            })?;
        Ok(DataPath {
            spdk_dir: spdk_dir.to_path_buf(),
            host_nqn: host_nqn.to_string(),
            netns: None,
            mem_mib: 512,
            timeout: Duration::from_secs(120),
            work,
        })
    }

    /// Runs the tools inside network namespace `ns` (`ip netns exec`).
    pub fn in_netns(mut self, ns: &str) -> DataPath {
        self.netns = Some(ns.to_string());
        self
    }

    /// Allows each tool run at most `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> DataPath {
        self.timeout = timeout;
        self
    }

    /// The host NQN presented.
    pub fn host_nqn(&self) -> &str {
        &self.host_nqn
    }

    /// The namespace's size and block size, as `spdk_nvme_perf` reports them.
    pub fn geometry(&self, target: &Target) -> Result<Geometry, DatapathError> {
        let tool = "spdk_nvme_perf";
        let args = self.perf_args(target, "read", 1, 1, 1);
        let out = self.run(tool, args, target, self.timeout)?;
        parse_geometry(&out.stdout)
            .or_else(|| parse_geometry(&out.stderr))
            .ok_or_else(|| DatapathError::Output {
                tool,
                target: target.to_string(),
                what: "the namespace's size and block size",
                tail: out.tail(),
            })
    }

    /// Writes the pattern of `seed` over bytes `offset..offset+len` (whole blocks).
    pub fn write_pattern(
        &self,
        target: &Target,
        offset: u64,
        len: u64,
        seed: u64,
    ) -> Result<(), DatapathError> {
        let g = self.geometry(target)?;
        check_range(target, &g, offset, len)?;
        let data = pattern(
            seed,
            offset / g.block_size,
            len / g.block_size,
            g.block_size,
        );
        self.write_checked(target, &g, offset, &data)
    }

    /// Writes `data` at `offset` (whole blocks).
    pub fn write_bytes(
        &self,
        target: &Target,
        offset: u64,
        data: &[u8],
    ) -> Result<(), DatapathError> {
        let g = self.geometry(target)?;
        check_range(target, &g, offset, data.len() as u64)?;
        self.write_checked(target, &g, offset, data)
    }

    /// Reads bytes `offset..offset+len` (whole blocks).
    pub fn read(&self, target: &Target, offset: u64, len: u64) -> Result<Vec<u8>, DatapathError> {
        let g = self.geometry(target)?;
        check_range(target, &g, offset, len)?;
        self.read_checked(target, &g, offset, len)
    }

    /// Reads bytes `offset..offset+len` (whole blocks) of a namespace whose geometry is
    /// already known, without probing it first.
    pub fn read_with(
        &self,
        target: &Target,
        geometry: &Geometry,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, DatapathError> {
        check_range(target, geometry, offset, len)?;
        self.read_checked(target, geometry, offset, len)
    }

    /// Reads the whole namespace.
    pub fn read_all(&self, target: &Target) -> Result<Vec<u8>, DatapathError> {
        let g = self.geometry(target)?;
        self.read_checked(target, &g, 0, g.size)
    }

    /// Reads bytes `offset..offset+len` and compares them with `expected`; a difference is
    /// [`DatapathError::Mismatch`], naming the first block that differs and what it holds.
    pub fn read_verify(
        &self,
        target: &Target,
        offset: u64,
        len: u64,
        expected: &Expected,
    ) -> Result<(), DatapathError> {
        let g = self.geometry(target)?;
        check_range(target, &g, offset, len)?;
        let found = self.read_checked(target, &g, offset, len)?;
        let first_block = offset / g.block_size;
        let want = match expected {
            Expected::Seed(seed) => pattern(*seed, first_block, len / g.block_size, g.block_size),
            Expected::Bytes(b) => b.clone(),
        };
        match compare(&want, &found, first_block, g.block_size) {
            None => Ok(()),
            Some(mismatch) => Err(DatapathError::Mismatch {
                target: target.to_string(),
                offset,
                len,
                mismatch,
            }),
        }
    }

    /// Runs `spdk_nvme_perf` against the target (with `-L`'s latency summary).
    pub fn perf(&self, target: &Target, spec: &PerfSpec) -> Result<PerfResult, DatapathError> {
        let tool = "spdk_nvme_perf";
        let args = self.perf_args(
            target,
            spec.workload.as_str(),
            spec.queue_depth,
            spec.io_size,
            spec.seconds,
        );
        let mut args = args;
        args.push("-L".into());
        let out = self.run(
            tool,
            args,
            target,
            self.timeout + Duration::from_secs(u64::from(spec.seconds)),
        )?;
        parse_perf(&out.stdout).ok_or_else(|| DatapathError::Output {
            tool,
            target: target.to_string(),
            what: "the Total line",
            tail: out.tail(),
        })
    }

    fn perf_args(
        &self,
        target: &Target,
        workload: &str,
        qd: u32,
        io_size: u32,
        seconds: u32,
    ) -> Vec<OsString> {
        [
            "--no-huge".to_string(),
            "-s".into(),
            self.mem_mib.to_string(),
            "-q".into(),
            qd.to_string(),
            "-o".into(),
            io_size.to_string(),
            "-w".into(),
            workload.into(),
            "-t".into(),
            seconds.to_string(),
            "-r".into(),
            target.transport_id(&self.host_nqn),
        ]
        .into_iter()
        .map(OsString::from)
        .collect()
    }

    fn write_checked(
        &self,
        target: &Target,
        g: &Geometry,
        offset: u64,
        data: &[u8],
    ) -> Result<(), DatapathError> {
        let dir = self.run_dir("write")?;
        let input = dir.join("data.bin");
        std::fs::write(&input, data).map_err(|source| DatapathError::File {
            what: "pattern file",
            path: input.clone(),
            source,
        })?;
        let unit = io_unit(g.block_size, offset, data.len() as u64);
        let mut args = self.dd_args(target, &dir)?;
        args.extend(os(&["--if"]));
        args.push(input.clone().into_os_string());
        args.extend(os(&[
            "--ob",
            &format!("{DD_CONTROLLER}n1"),
            "--bs",
            &unit.to_string(),
            "--seek",
            &(offset / unit).to_string(),
            "--count",
            &(data.len() as u64 / unit).to_string(),
        ]));
        self.run("spdk_dd", args, target, self.timeout)?;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }

    fn read_checked(
        &self,
        target: &Target,
        g: &Geometry,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, DatapathError> {
        let dir = self.run_dir("read")?;
        let output = dir.join("data.bin");
        let unit = io_unit(g.block_size, offset, len);
        let mut args = self.dd_args(target, &dir)?;
        args.extend(os(&["--ib", &format!("{DD_CONTROLLER}n1"), "--of"]));
        args.push(output.clone().into_os_string());
        args.extend(os(&[
            "--bs",
            &unit.to_string(),
            "--skip",
            &(offset / unit).to_string(),
            "--count",
            &(len / unit).to_string(),
        ]));
        self.run("spdk_dd", args, target, self.timeout)?;
        let data = std::fs::read(&output).map_err(|source| DatapathError::File {
            what: "data read back",
            path: output.clone(),
            source,
        })?;
        let _ = std::fs::remove_dir_all(&dir);
        if data.len() as u64 != len {
            return Err(DatapathError::Output {
                tool: "spdk_dd",
                target: target.to_string(),
                what: "the whole range (the output file is short)",
                tail: format!("{} of {len} bytes read", data.len()),
            });
        }
        Ok(data)
    }

    /// spdk_dd's application arguments and its bdev configuration, in `dir`.
    fn dd_args(&self, target: &Target, dir: &Path) -> Result<Vec<OsString>, DatapathError> {
        let config = dir.join("bdev.json");
        std::fs::write(
            &config,
            dd_config(target, &self.host_nqn, DD_CONTROLLER).to_string(),
        )
        .map_err(|source| DatapathError::File {
            what: "spdk_dd configuration",
            path: config.clone(),
            source,
        })?;
        let mut args = os(&[
            "--no-huge",
            "-s",
            &self.mem_mib.to_string(),
            "-u",
            "--disable-cpumask-locks",
            "-r",
        ]);
        args.push(dir.join("dd.sock").into_os_string());
        args.push("--json".into());
        args.push(config.into_os_string());
        args.extend(os(&["--qd", "8"]));
        Ok(args)
    }

    fn run_dir(&self, what: &str) -> Result<PathBuf, DatapathError> {
        tempfile::Builder::new()
            .prefix(what)
            .tempdir_in(self.work.path())
            .map(|d| d.keep())
            .map_err(|source| DatapathError::File {
                what: "work directory",
                path: self.work.path().to_path_buf(),
                source,
            })
    }

    /// Runs `tool` with `args` (inside the namespace, if any) for at most `limit`, its output
    /// in files (no pipe can fill up); kills it by PID when the time is up.
    fn run(
        &self,
        tool: &'static str,
        args: Vec<OsString>,
        target: &Target,
        limit: Duration,
    ) -> Result<ToolOutput, DatapathError> {
        let exe = self.spdk_dir.join("bin").join(tool);
        let (program, mut cmd) = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&exe);
                (PathBuf::from("ip"), c)
            }
            None => (exe.clone(), Command::new(&exe)),
        };
        cmd.args(&args);
        let dir = self.run_dir(tool)?;
        let file = |name: &str| {
            let p = dir.join(name);
            std::fs::File::create(&p)
                .map(|f| (p.clone(), f))
                .map_err(|source| DatapathError::File {
                    what: "tool output",
                    path: p,
                    source,
                })
        };
        let (out_path, out) = file("stdout")?;
        let (err_path, err) = file("stderr")?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let spawn = |source| DatapathError::Spawn {
            tool,
            target: target.to_string(),
            program: program.clone(),
            source,
        };
        let mut child = cmd.spawn().map_err(spawn)?;
        let deadline = Instant::now() + limit;
        let status: Option<ExitStatus> = loop {
            match child.try_wait().map_err(spawn)? {
                Some(s) => break Some(s),
                None if Instant::now() >= deadline => {
                    // Kill this child, by its PID, and reap it.
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                None => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        let output = ToolOutput {
            stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
            stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
        };
        let _ = std::fs::remove_dir_all(&dir);
        let target_s = target.to_string();
        let Some(status) = status else {
            return Err(DatapathError::Timeout {
                tool,
                target: target_s,
                secs: limit.as_secs(),
                tail: output.tail(),
            });
        };
        if output.host_refused() {
            return Err(DatapathError::HostRefused {
                tool,
                target: target_s,
                host_nqn: self.host_nqn.clone(),
                tail: output.tail(),
            });
        }
        if !status.success() {
            return Err(DatapathError::Failed {
                tool,
                target: target_s,
                status: status.to_string(),
                tail: output.tail(),
            });
        }
        Ok(output)
    }
}

struct ToolOutput {
    stdout: String,
    stderr: String,
}

impl ToolOutput {
    /// The last lines of stderr and of stdout.
    fn tail(&self) -> String {
        let last = |s: &str, n: usize| {
            let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        };
        let mut t = last(&self.stderr, 12);
        let o = last(&self.stdout, 6);
        if !o.is_empty() {
            if !t.is_empty() {
                t.push('\n');
            }
            t.push_str(&o);
        }
        t
    }

    /// The target answered the host's CONNECT with "invalid host" (status 1/0x84).
    fn host_refused(&self) -> bool {
        [&self.stdout, &self.stderr]
            .iter()
            .any(|s| s.contains("INVALID HOST") || s.contains("sct 1, sc 132"))
    }
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn check_range(target: &Target, g: &Geometry, offset: u64, len: u64) -> Result<(), DatapathError> {
    let whole =
        g.block_size > 0 && offset.is_multiple_of(g.block_size) && len.is_multiple_of(g.block_size);
    let inside = offset.checked_add(len).is_some_and(|end| end <= g.size);
    if whole && inside && len > 0 {
        Ok(())
    } else {
        Err(DatapathError::Range {
            target: target.to_string(),
            offset,
            len,
            size: g.size,
            block_size: g.block_size,
        })
    }
}

/// spdk_dd's JSON configuration: attach the target as controller `name` (bdev `<name>n1`),
/// presenting `host_nqn`, and wait for the bdev to be examined.
pub fn dd_config(target: &Target, host_nqn: &str, name: &str) -> Value {
    json!({
        "subsystems": [{
            "subsystem": "bdev",
            "config": [
                {
                    "method": "bdev_nvme_attach_controller",
                    "params": {
                        "name": name,
                        "trtype": "tcp",
                        "adrfam": "ipv4",
                        "traddr": target.address,
                        "trsvcid": target.port.to_string(),
                        "subnqn": target.nqn,
                        "hostnqn": host_nqn,
                    }
                },
                {"method": "bdev_wait_for_examine"}
            ]
        }]
    })
}

/// The largest I/O unit (a power-of-two multiple of the block size, at most 1 MiB) dividing
/// both `offset` and `len`.
pub fn io_unit(block_size: u64, offset: u64, len: u64) -> u64 {
    let mut unit = block_size.max(1);
    while unit * 2 <= MAX_IO_UNIT && offset.is_multiple_of(unit * 2) && len.is_multiple_of(unit * 2)
    {
        unit *= 2;
    }
    unit
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Block `block` of the pattern of `seed`: the magic, the seed and the block index (little
/// endian), then a pseudo-random stream that depends on both. `block_size` is a multiple of
/// 8 of at least 24 bytes (NVMe blocks are 512 or 4096).
pub fn pattern_block(seed: u64, block: u64, block_size: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(block_size as usize);
    out.extend_from_slice(&PATTERN_MAGIC);
    out.extend_from_slice(&seed.to_le_bytes());
    out.extend_from_slice(&block.to_le_bytes());
    let mut state = seed ^ block.wrapping_mul(0xd6e8_feb8_6659_fd93);
    while out.len() < block_size as usize {
        out.extend_from_slice(&splitmix64(&mut state).to_le_bytes());
    }
    out.truncate(block_size as usize);
    out
}

/// `blocks` blocks of the pattern of `seed`, starting at block `first_block`.
pub fn pattern(seed: u64, first_block: u64, blocks: u64, block_size: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity((blocks * block_size) as usize);
    for b in first_block..first_block + blocks {
        out.extend_from_slice(&pattern_block(seed, b, block_size));
    }
    out
}

/// What one block holds: a pattern block (whichever seed and index its header names, checked
/// against the whole block), zeros, or other data.
pub fn identify(block: &[u8]) -> Content {
    if block.iter().all(|b| *b == 0) {
        return Content::Zeros;
    }
    if block.len() >= HEADER && block[..8] == PATTERN_MAGIC {
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&block[i..i + 8]);
            u64::from_le_bytes(w)
        };
        let (seed, index) = (word(8), word(16));
        if pattern_block(seed, index, block.len() as u64) == block {
            return Content::Pattern { seed, block: index };
        }
    }
    let head: String = block.iter().take(16).map(|b| format!("{b:02x}")).collect();
    Content::Other(head)
}

/// Compares `found` with `expected` block by block (`first_block` is the index of the first);
/// None when they are equal.
pub fn compare(
    expected: &[u8],
    found: &[u8],
    first_block: u64,
    block_size: u64,
) -> Option<Mismatch> {
    let bs = block_size.max(1) as usize;
    let mut first: Option<(u64, Content, Content)> = None;
    let mut differing = 0u64;
    let n = expected.len().max(found.len()).div_ceil(bs);
    for i in 0..n {
        let range = |v: &[u8]| {
            let start = (i * bs).min(v.len());
            let end = ((i + 1) * bs).min(v.len());
            v[start..end].to_vec()
        };
        let (e, f) = (range(expected), range(found));
        if e != f {
            differing += 1;
            if first.is_none() {
                first = Some((first_block + i as u64, identify(&e), identify(&f)));
            }
        }
    }
    first.map(|(first_block, expected, found)| Mismatch {
        first_block,
        blocks: differing,
        expected,
        found,
    })
}

/// A short, stable digest of data (FNV-1a 64 and the length) for comparing replicas in
/// messages; equality of the bytes themselves is what tests assert.
pub fn digest(data: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}/{}", data.len())
}

/// The geometry `spdk_nvme_perf` reports when it refuses a namespace for an I/O size:
/// `… ns 1 has invalid ns size 67108864 / block size 4096 for I/O size 1`.
pub fn parse_geometry(output: &str) -> Option<Geometry> {
    output.lines().find_map(|l| {
        let rest = &l[l.find("has invalid ns size ")? + "has invalid ns size ".len()..];
        let mut words = rest.split_whitespace();
        let size = words.next()?.parse().ok()?;
        if words.next()? != "/" || words.next()? != "block" || words.next()? != "size" {
            return None;
        }
        let block_size = words.next()?.parse().ok()?;
        Some(Geometry { block_size, size })
    })
}

/// `spdk_nvme_perf`'s `Total` line (IOPS, MiB/s, average, min, max latency in µs) and, when
/// printed (`-L`), the 50th and 99th percentiles of its latency summary. v24.09 and v26.05
/// print the same table.
pub fn parse_perf(output: &str) -> Option<PerfResult> {
    let total = output
        .lines()
        .find(|l| l.trim_start().starts_with("Total") && l.contains(':'))?;
    let numbers: Vec<f64> = total
        .split_once(':')?
        .1
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let [iops, mib_s, avg, min, max] = numbers[..] else {
        return None;
    };
    let percentile = |p: &str| {
        output.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            if k.trim() != p {
                return None;
            }
            v.trim().strip_suffix("us")?.trim().parse::<f64>().ok()
        })
    };
    Some(PerfResult {
        iops,
        mib_s,
        avg_lat_us: avg,
        min_lat_us: min,
        max_lat_us: max,
        p50_us: percentile("50.00000%"),
        p99_us: percentile("99.00000%"),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const PERF_V2605: &str = "Initializing NVMe Controllers
Attached to NVMeoF Controller at TCP (addr:127.0.0.1 subnqn:nqn.2026-11.io.v2engine:test1)
Associating TCP (addr:127.0.0.1 subnqn:nqn.2026-11.io.v2engine:test1) NSID 1 with lcore 0
Initialization complete. Launching workers.
========================================================
                                                                                                                 Latency(us)
Device Information                                                           :       IOPS      MiB/s    Average        min        max
TCP (addr:127.0.0.1 subnqn:nqn.2026-11.io.v2engine:test1) NSID 1 from core  0:    2292.51       8.96   13957.86    3618.26   54715.87
========================================================
Total                                                                        :    2292.51       8.96   13957.86    3618.26   54715.87

Summary latency data for TCP (addr:127.0.0.1 subnqn:nqn.2026-11.io.v from core 0:
=================================================================================
  1.00000% :  4385.871us
 10.00000% :  7965.145us
 50.00000% : 12048.542us
 99.00000% : 37305.108us
 99.50000% : 44564.480us
";

    const PERF_V2409: &str = "Initializing NVMe Controllers
Attached to NVMe over Fabrics controller at 127.0.0.1:4520: nqn.2026-11.io.v2engine:test1
Associating TCP (addr:127.0.0.1 subnqn:nqn.2026-11.io.v2engine:test1) NSID 1 with lcore 0
Initialization complete. Launching workers.
========================================================
                                                                                                                 Latency(us)
Device Information                                                           :       IOPS      MiB/s    Average        min        max
TCP (addr:127.0.0.1 subnqn:nqn.2026-11.io.v2engine:test1) NSID 1 from core  0:    2532.01       9.89   12637.61    3890.27   44642.24
========================================================
Total                                                                        :    2532.01       9.89   12637.61    3890.27   44642.24
";

    #[test]
    fn perf_output_of_v26_05_parses_with_percentiles() {
        let r = parse_perf(PERF_V2605).unwrap();
        assert_eq!(r.iops, 2292.51);
        assert_eq!(r.mib_s, 8.96);
        assert_eq!(r.avg_lat_us, 13957.86);
        assert_eq!(r.min_lat_us, 3618.26);
        assert_eq!(r.max_lat_us, 54715.87);
        assert_eq!(r.p50_us, Some(12048.542));
        assert_eq!(r.p99_us, Some(37305.108));
    }

    #[test]
    fn perf_output_of_v24_09_parses_without_a_latency_summary() {
        let r = parse_perf(PERF_V2409).unwrap();
        assert_eq!(r.iops, 2532.01);
        assert_eq!(r.avg_lat_us, 12637.61);
        assert_eq!(r.p99_us, None);
    }

    #[test]
    fn perf_output_without_a_total_is_not_a_result() {
        assert_eq!(parse_perf("Initializing NVMe Controllers\n"), None);
        assert_eq!(parse_perf("Total : 1.0 2.0\n"), None);
    }

    #[test]
    fn geometry_comes_from_perfs_refusal_of_a_one_byte_io_in_both_versions() {
        let v = "WARNING: controller SPDK bdev Controller (00000000000000000000) ns 1 has invalid ns size 67108864 / block size 4096 for I/O size 1\n";
        let g = parse_geometry(v).unwrap();
        assert_eq!(
            g,
            Geometry {
                block_size: 4096,
                size: 64 << 20
            }
        );
        assert_eq!(g.blocks(), 16384);
        assert_eq!(parse_geometry("No valid NVMe controllers found\n"), None);
    }

    #[test]
    fn a_pattern_is_deterministic_per_seed_and_block() {
        assert_eq!(pattern_block(1, 7, 512), pattern_block(1, 7, 512));
        assert_ne!(pattern_block(1, 7, 512), pattern_block(2, 7, 512));
        assert_ne!(pattern_block(1, 7, 512), pattern_block(1, 8, 512));
        let run = pattern(3, 10, 4, 4096);
        assert_eq!(run.len(), 4 * 4096);
        assert_eq!(&run[4096..8192], &pattern_block(3, 11, 4096)[..]);
        // Not a constant fill: the body varies within a block.
        let b = pattern_block(3, 11, 4096);
        assert_ne!(b[100..108], b[200..208]);
    }

    #[test]
    fn a_block_tells_which_seed_it_belongs_to() {
        assert_eq!(
            identify(&pattern_block(9, 42, 512)),
            Content::Pattern { seed: 9, block: 42 }
        );
        assert_eq!(identify(&[0u8; 512]), Content::Zeros);
        let mut forged = pattern_block(9, 42, 512);
        forged[300] ^= 1;
        assert!(matches!(identify(&forged), Content::Other(_)));
    }

    #[test]
    fn compare_reports_the_first_differing_block_and_both_contents() {
        let bs = 512;
        let expected = pattern(2, 100, 8, bs);
        let mut found = expected.clone();
        // Blocks 103 and 105 still hold seed 1's data; 106 was never written.
        found[3 * 512..4 * 512].copy_from_slice(&pattern_block(1, 103, bs));
        found[5 * 512..6 * 512].copy_from_slice(&pattern_block(1, 105, bs));
        found[6 * 512..7 * 512].fill(0);
        let m = compare(&expected, &found, 100, bs).unwrap();
        assert_eq!(m.first_block, 103);
        assert_eq!(m.blocks, 3);
        assert_eq!(
            m.expected,
            Content::Pattern {
                seed: 2,
                block: 103
            }
        );
        assert_eq!(
            m.found,
            Content::Pattern {
                seed: 1,
                block: 103
            }
        );
        let text = m.to_string();
        assert!(text.contains("block 103"), "{text}");
        assert!(text.contains("seed 1") && text.contains("seed 2"), "{text}");
        assert_eq!(compare(&expected, &expected, 100, bs), None);
    }

    #[test]
    fn a_short_read_is_a_mismatch() {
        let expected = pattern(2, 0, 2, 512);
        let m = compare(&expected, &expected[..512], 0, 512).unwrap();
        assert_eq!(m.first_block, 1);
    }

    #[test]
    fn the_dd_config_attaches_the_target_presenting_the_host_nqn() {
        let t = Target::new("10.1.2.3", 4421, "nqn.2026-11.io.v2engine:vol");
        let c = dd_config(&t, "nqn.2026-11.io.v2engine:host-a", "dp");
        let sub = &c["subsystems"][0];
        assert_eq!(sub["subsystem"], "bdev");
        let attach = &sub["config"][0];
        assert_eq!(attach["method"], "bdev_nvme_attach_controller");
        let p = &attach["params"];
        assert_eq!(p["name"], "dp");
        assert_eq!(p["trtype"], "tcp");
        assert_eq!(p["traddr"], "10.1.2.3");
        assert_eq!(p["trsvcid"], "4421");
        assert_eq!(p["subnqn"], "nqn.2026-11.io.v2engine:vol");
        assert_eq!(p["hostnqn"], "nqn.2026-11.io.v2engine:host-a");
        assert_eq!(sub["config"][1]["method"], "bdev_wait_for_examine");
    }

    #[test]
    fn the_transport_id_carries_the_host_nqn() {
        let t = Target::new("127.0.0.1", 4420, "nqn.x:s");
        assert_eq!(
            t.transport_id("nqn.x:h"),
            "trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:4420 subnqn:nqn.x:s hostnqn:nqn.x:h"
        );
    }

    #[test]
    fn the_io_unit_is_the_largest_that_divides_offset_and_length() {
        assert_eq!(io_unit(4096, 0, 64 << 20), 1 << 20);
        assert_eq!(io_unit(4096, 4096, 64 << 20), 4096);
        assert_eq!(io_unit(512, 0, 3 * 512), 512);
        assert_eq!(io_unit(512, 8192, 16384), 8192);
    }

    #[test]
    fn ranges_must_be_whole_blocks_inside_the_namespace() {
        let t = Target::new("127.0.0.1", 4420, "nqn.x:s");
        let g = Geometry {
            block_size: 4096,
            size: 1 << 20,
        };
        assert!(check_range(&t, &g, 0, 1 << 20).is_ok());
        assert!(check_range(&t, &g, 512, 4096).is_err());
        assert!(check_range(&t, &g, 0, 1000).is_err());
        assert!(check_range(&t, &g, 4096, 1 << 20).is_err());
        assert!(check_range(&t, &g, 0, 0).is_err());
        let e = check_range(&t, &g, u64::MAX - 10, 4096)
            .unwrap_err()
            .to_string();
        assert!(e.contains("nqn.x:s at 127.0.0.1:4420"), "{e}");
    }

    #[test]
    fn a_build_without_the_tools_is_refused_naming_the_tool() {
        let d = tempfile::tempdir().unwrap();
        let e = DataPath::new(d.path(), "nqn.x:h").unwrap_err().to_string();
        assert!(e.contains("bin/spdk_dd"), "{e}");
    }

    #[test]
    fn a_tool_that_hangs_is_killed_and_named_with_its_target() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("bin")).unwrap();
        for tool in ["spdk_dd", "spdk_nvme_perf"] {
            let p = d.path().join("bin").join(tool);
            std::fs::write(&p, "#!/bin/sh\necho starting >&2\nexec sleep 30\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let dp = DataPath::new(d.path(), "nqn.x:h")
            .unwrap()
            .with_timeout(Duration::from_millis(300));
        let t = Target::new("127.0.0.1", 9, "nqn.x:s");
        let e = dp.geometry(&t).unwrap_err();
        assert!(matches!(e, DatapathError::Timeout { .. }), "{e}");
        let m = e.to_string();
        assert!(m.contains("spdk_nvme_perf") && m.contains("nqn.x:s"), "{m}");
        assert!(m.contains("starting"), "the output's tail is shown: {m}");
    }

    #[test]
    fn an_invalid_host_answer_is_a_refusal_naming_the_host() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("bin")).unwrap();
        for tool in ["spdk_dd", "spdk_nvme_perf"] {
            let p = d.path().join("bin").join(tool);
            std::fs::write(
                &p,
                "#!/bin/sh\necho '[x] Connect command completed with error: sct 1, sc 132' >&2\necho 'No valid NVMe controllers found' >&2\n",
            )
            .unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let dp = DataPath::new(d.path(), "nqn.x:intruder").unwrap();
        let e = dp
            .geometry(&Target::new("127.0.0.1", 9, "nqn.x:s"))
            .unwrap_err();
        assert!(matches!(e, DatapathError::HostRefused { .. }), "{e}");
        assert!(e.to_string().contains("nqn.x:intruder"), "{e}");
    }
}
