//! The lab's commands: `up`, `reboot`, `cut`, `restore`, `status` and `down`, built from the
//! planning, rendering and I/O modules.
//!
//! `up` records its plan in lab.json before it makes anything and saves again after every
//! step that starts a process or attaches a device, so `down` can always undo it.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::engine;
use crate::keys::{self, KeyError};
use crate::link::{self, LinkChange, LinkCommand, LinkError, LinkState, LinkStep};
use crate::loopdev::{self, LoopError};
use crate::net::{self, NetError};
use crate::plan::{self, LabPaths, LabRequest, PlanError, SSH_PORT};
use crate::probe;
use crate::render::{self, RenderError};
use crate::report::NodeReport;
use crate::services::{self, READY_TIMEOUT, ServiceError};
use crate::state::{self, LabState, SpdkOptions, StateError};
use crate::teardown::{self, DownReport, TeardownError};

/// File name of the executor binary looked for next to v2engine-lab.
pub const EXECUTOR_BIN: &str = "v2engine-executor";
/// File name of the spdk_tgt stand-in looked for next to v2engine-lab.
pub const SPDK_SIM_BIN: &str = "spdk-sim";
/// File name of the Terraform provider binary looked for next to v2engine-lab.
pub const PROVIDER_BIN: &str = "terraform-provider-v2engine";
/// Default node count of a new lab.
pub const DEFAULT_NODES: usize = 3;
/// How long a command waits for another one on the same lab to finish.
const LOCK_TIMEOUT: Duration = Duration::from_secs(120);
/// Directory sshd needs for privilege separation.
const SSHD_PRIVSEP_DIR: &str = "/run/sshd";
/// How long `restore` waits for the node's sshd to answer from the host again.
pub const RESTORE_WAIT: Duration = Duration::from_secs(10);

/// Why a lab command failed.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The command needs root.
    #[error(
        "v2engine-lab {command} needs root (network namespaces, loop devices, sshd); running as uid {uid}"
    )]
    NotRoot {
        /// The subcommand.
        command: &'static str,
        /// Our effective uid.
        uid: u32,
    },
    /// There is no lab in the directory.
    #[error("no lab in {dir} (no lab.json there); run `v2engine-lab up --dir {dir}` first")]
    NoLab {
        /// The directory.
        dir: PathBuf,
    },
    /// The node is not part of the lab.
    #[error("the lab in {dir} has no node {node:?} (it has {nodes})")]
    UnknownNode {
        /// The directory.
        dir: PathBuf,
        /// The name given.
        node: String,
        /// The lab's nodes.
        nodes: String,
    },
    /// `up --nodes` differs from the existing lab.
    #[error(
        "the lab in {dir} has {existing} nodes, not {requested}; run `v2engine-lab down --purge --dir {dir}` to rebuild it"
    )]
    NodeCount {
        /// The directory.
        dir: PathBuf,
        /// Nodes of the existing lab.
        existing: usize,
        /// Nodes asked for.
        requested: usize,
    },
    /// The executor binary is missing.
    #[error(
        "executor binary {path} not found: build it with `cargo build -p v2engine-executor` or pass --executor PATH"
    )]
    ExecutorMissing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The engine binary (spdk-sim, or the spdk_tgt given) is missing.
    #[error(
        "engine binary {path} not found: build spdk-sim with `cargo build -p spdk-sim` or pass --spdk-tgt PATH"
    )]
    SpdkTgtMissing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// `--spdk` names no usable engine.
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    /// A file or directory could not be made, read or written.
    #[error("{path}: {source}")]
    File {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Another command holds the lab's lock.
    #[error(
        "another v2engine-lab command is working on this lab (it holds {path}); gave up after {waited:?}"
    )]
    Busy {
        /// The lock file.
        path: PathBuf,
        /// How long we waited.
        waited: Duration,
    },
    /// The async runtime could not be built.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// Planning failed.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// lab.json failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// A network operation failed.
    #[error(transparent)]
    Net(#[from] NetError),
    /// A node's link cannot be cut or restored.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// A disk operation failed.
    #[error(transparent)]
    Loop(#[from] LoopError),
    /// A key could not be made.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A file could not be rendered.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// A node's process failed.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// `down` left something behind.
    #[error(transparent)]
    Teardown(#[from] TeardownError),
}

/// What `up` is asked for.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// Lab directory (created when missing).
    pub dir: PathBuf,
    /// Node count; `None`: the existing lab's, or [`DEFAULT_NODES`] for a new one.
    pub nodes: Option<usize>,
    /// `--fragmented-nodes` (default: the last node). Fixed when a node is first made.
    pub fragmented: Option<String>,
    /// Size of each disk image.
    pub disk_size_mib: u64,
    /// The executor binary; default: next to this program.
    pub executor: Option<PathBuf>,
    /// spdk_tgt binary and arguments, stored for the executor.
    pub spdk: SpdkOptions,
}

fn require_root(command: &'static str) -> Result<(), LabError> {
    let uid = nix::unistd::geteuid();
    if uid.is_root() {
        Ok(())
    } else {
        Err(LabError::NotRoot {
            command,
            uid: uid.as_raw(),
        })
    }
}

fn file_err(path: &Path) -> impl FnOnce(std::io::Error) -> LabError + '_ {
    move |source| LabError::File {
        path: path.to_path_buf(),
        source,
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, LabError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(LabError::Runtime)
}

/// `dir` as an absolute path, canonical when it exists.
pub fn absolute_dir(dir: &Path) -> Result<PathBuf, LabError> {
    let abs = std::path::absolute(dir).map_err(file_err(dir))?;
    Ok(std::fs::canonicalize(&abs).unwrap_or(abs))
}

/// A file next to the running v2engine-lab binary.
pub fn sibling_binary(name: &str) -> Result<PathBuf, LabError> {
    let exe = std::env::current_exe().map_err(file_err(Path::new("/proc/self/exe")))?;
    Ok(exe
        .parent()
        .map_or_else(|| PathBuf::from(name), |d| d.join(name)))
}

fn resolve_executor(given: Option<&Path>) -> Result<PathBuf, LabError> {
    let path = match given {
        Some(p) => std::path::absolute(p).map_err(file_err(p))?,
        None => sibling_binary(EXECUTOR_BIN)?,
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(LabError::ExecutorMissing { path })
    }
}

/// What `--spdk CHOICE` (with `extra` arguments after the lab's own) stores for the nodes'
/// engines: spdk-sim next to this program, or a real spdk_tgt with the arguments several
/// targets on one machine need (see [`engine`]).
pub fn spdk_options(choice: &str, extra: Vec<String>) -> Result<SpdkOptions, LabError> {
    let exe = std::env::current_exe().ok();
    let cwd = std::env::current_dir().ok();
    let roots = engine::real_roots(
        std::env::var_os(engine::REAL_DIR_VAR).map(PathBuf::from),
        exe.as_deref(),
        cwd.as_deref(),
    );
    let chosen = engine::resolve(choice, &roots, Path::is_file)?;
    let mut args = chosen.args();
    args.extend(extra);
    let tgt = match chosen {
        engine::Engine::Sim => sibling_binary(SPDK_SIM_BIN)?,
        engine::Engine::Real(p) => std::path::absolute(&p).map_err(file_err(&p))?,
    };
    Ok(SpdkOptions {
        tgt: Some(tgt),
        args,
    })
}

/// The nodes' engine: the spdk_tgt given (absolute), else spdk-sim next to this program.
fn resolve_spdk_tgt(given: Option<&Path>) -> Result<PathBuf, LabError> {
    let path = match given {
        Some(p) => std::path::absolute(p).map_err(file_err(p))?,
        None => sibling_binary(SPDK_SIM_BIN)?,
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(LabError::SpdkTgtMissing { path })
    }
}

/// Takes the lab's lock (one `up`, `reboot` or `down` at a time per directory), waiting a
/// bounded time for a command already running.
fn lock_lab(dir: &Path) -> Result<Flock<File>, LabError> {
    let path = LabPaths::new(dir).lock_file();
    let deadline = Instant::now() + LOCK_TIMEOUT;
    loop {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(file_err(&path))?;
        match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((_, Errno::EWOULDBLOCK)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200));
            }
            Err((_, Errno::EWOULDBLOCK)) => {
                return Err(LabError::Busy {
                    path,
                    waited: LOCK_TIMEOUT,
                });
            }
            Err((_, e)) => {
                return Err(LabError::File {
                    path,
                    source: e.into(),
                });
            }
        }
    }
}

fn load_lab(dir: &Path) -> Result<LabState, LabError> {
    state::load(&LabPaths::new(dir).lab_json())?.ok_or_else(|| LabError::NoLab {
        dir: dir.to_path_buf(),
    })
}

fn save(lab: &LabState) -> Result<(), LabError> {
    Ok(state::save(&LabPaths::new(&lab.dir).lab_json(), lab)?)
}

fn mkdir(path: &Path) -> Result<(), LabError> {
    std::fs::create_dir_all(path).map_err(file_err(path))
}

fn write_file(lab: &mut LabState, path: PathBuf, contents: &str) -> Result<(), LabError> {
    std::fs::write(&path, contents).map_err(file_err(&path))?;
    if !lab.files.contains(&path) {
        lab.files.push(path);
    }
    Ok(())
}

/// The lab state to build: the existing one (options updated) or a new plan.
fn lab_for(opts: &UpOptions, dir: &Path, executor: PathBuf) -> Result<LabState, LabError> {
    if let Some(mut lab) = state::load(&LabPaths::new(dir).lab_json())? {
        if let Some(requested) = opts.nodes.filter(|n| *n != lab.nodes.len()) {
            return Err(LabError::NodeCount {
                dir: dir.to_path_buf(),
                existing: lab.nodes.len(),
                requested,
            });
        }
        lab.notes.clear();
        let wanted = plan::parse_fragmented(opts.fragmented.as_deref(), lab.nodes.len())?;
        let have: BTreeSet<usize> = lab
            .nodes
            .iter()
            .filter(|n| n.fragmented)
            .map(|n| n.index)
            .collect();
        if opts.fragmented.is_some() && wanted != have {
            lab.notes.push(
                "--fragmented-nodes is fixed when a lab is first built; kept the existing choice \
                 (down --purge to change it)"
                    .into(),
            );
        }
        lab.executor = executor;
        if opts.spdk.tgt.is_some() || !opts.spdk.args.is_empty() {
            lab.spdk = opts.spdk.clone();
        }
        return Ok(lab);
    }
    // Addresses on this lab's own links (left by a crashed run) do not count as taken.
    let id = plan::LabId::for_dir(dir);
    let used = plan::used_octets(
        net::root_ipv4_addresses()?
            .into_iter()
            .filter(|(l, _)| !l.starts_with(&id.link_prefix()))
            .map(|(_, a)| a),
    );
    let req = LabRequest {
        dir: dir.to_path_buf(),
        nodes: opts.nodes.unwrap_or(DEFAULT_NODES),
        fragmented: opts.fragmented.clone(),
        disk_size_mib: opts.disk_size_mib,
        executor,
        spdk: opts.spdk.clone(),
    };
    Ok(plan::plan_lab(&req, &used)?)
}

/// Builds the lab, or makes sure an existing one is complete and running. Returns its state.
pub fn up(opts: &UpOptions) -> Result<LabState, LabError> {
    require_root("up")?;
    mkdir(&opts.dir)?;
    let dir = absolute_dir(&opts.dir)?;
    plan::check_dir(&dir)?;
    let _lock = lock_lab(&dir)?;
    let executor = resolve_executor(opts.executor.as_deref())?;
    let mut lab = lab_for(opts, &dir, executor)?;
    lab.spdk.tgt = Some(resolve_spdk_tgt(lab.spdk.tgt.as_deref())?);
    save(&lab)?;
    let paths = LabPaths::new(&dir);
    tracing::info!(dir = %dir.display(), id = %lab.id, subnet = %lab.subnet, "bringing the lab up");

    make_dirs(&lab, &paths)?;
    write_ssh_files(&mut lab, &paths)?;
    save(&lab)?;
    let cut = cut_nodes(&lab)?;
    build_network(&lab)?;
    restored_by_up(&mut lab, &cut);
    save(&lab)?;
    attach_disks(&mut lab, &paths)?;
    save(&lab)?;
    for node in &lab.nodes {
        services::sim_init(&lab, node, &paths.node(&node.name))?;
    }
    start_nodes(&mut lab, &paths, None)?;
    write_frontend_files(&mut lab, &paths)?;
    save(&lab)?;
    Ok(lab)
}

fn make_dirs(lab: &LabState, paths: &LabPaths) -> Result<(), LabError> {
    mkdir(&paths.ssh_dir())?;
    mkdir(&paths.disks_dir())?;
    mkdir(&paths.plugins_dir())?;
    mkdir(Path::new(SSHD_PRIVSEP_DIR))?;
    for n in &lab.nodes {
        let np = paths.node(&n.name);
        for d in [np.run_dir(), np.state_dir(), np.host_root()] {
            mkdir(&d)?;
        }
    }
    Ok(())
}

/// Keys (kept across runs), authorized_keys, known_hosts and every sshd_config.
fn write_ssh_files(lab: &mut LabState, paths: &LabPaths) -> Result<(), LabError> {
    let client_pub = keys::ensure_key(&paths.client_key(), "v2engine-lab client")?;
    for p in [paths.client_key(), paths.client_key_pub()] {
        if !lab.files.contains(&p) {
            lab.files.push(p);
        }
    }
    write_file(
        lab,
        paths.authorized_keys(),
        &render::authorized_keys(&client_pub)?,
    )?;
    let mut host_keys = Vec::new();
    for n in &lab.nodes {
        let np = paths.node(&n.name);
        let line = keys::ensure_key(&np.host_key(), &format!("v2engine-lab {}", n.name))?;
        host_keys.push((n.name.clone(), n.address, line));
    }
    let known = render::known_hosts(
        host_keys
            .iter()
            .map(|(n, a, l)| (n.as_str(), *a, l.as_str())),
    )?;
    write_file(lab, paths.known_hosts(), &known)?;
    let configs: Vec<(PathBuf, String)> = lab
        .nodes
        .iter()
        .map(|n| {
            (
                paths.node(&n.name).sshd_config(),
                render::sshd_config(n, paths),
            )
        })
        .collect();
    for (path, text) in configs {
        write_file(lab, path, &text)?;
    }
    Ok(())
}

/// The nodes whose link is cut: recorded in lab.json, or found down or off the bridge.
fn cut_nodes(lab: &LabState) -> Result<Vec<usize>, LabError> {
    let ports = net::port_statuses()?;
    Ok(lab
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| {
            let state = link::link_state(ports.get(&n.veth_host), &lab.bridge.name);
            n.cut || matches!(state, LinkState::Cut | LinkState::Detached)
        })
        .map(|(i, _)| i)
        .collect())
}

/// `up` brought the links of `cut` back (building the network sets every bridge port up on
/// the bridge): clears their cut and says so.
fn restored_by_up(lab: &mut LabState, cut: &[usize]) {
    for &i in cut {
        let n = &mut lab.nodes[i];
        n.cut = false;
        let note = format!(
            "{}'s link was cut; up restored it (bridge port {} is up on the bridge again; \
             `v2engine-lab cut {} --dir {}` cuts it again)",
            n.name,
            n.veth_host,
            n.name,
            lab.dir.display()
        );
        tracing::warn!("{note}");
        lab.notes.push(note);
    }
}

fn build_network(lab: &LabState) -> Result<(), LabError> {
    let br = &lab.bridge;
    net::ensure_bridge(&br.name, br.address, br.prefix_len)?;
    for n in &lab.nodes {
        net::ensure_namespace(&n.namespace)?;
        net::ensure_veth(&n.veth_host, &n.namespace, &n.iface, &br.name)?;
        net::configure_node_iface(&n.namespace, &n.iface, n.address, br.prefix_len, br.address)?;
        tracing::info!(node = %n.name, namespace = %n.namespace, address = %n.address, "network ready");
    }
    Ok(())
}

/// Sparse images, each on a loop device when one can be had (the file itself otherwise).
fn attach_disks(lab: &mut LabState, paths: &LabPaths) -> Result<(), LabError> {
    mkdir(&paths.disks_dir())?;
    let size = lab.disk_size_mib.saturating_mul(1024 * 1024);
    let mut notes = Vec::new();
    for n in &mut lab.nodes {
        for d in &mut n.disks {
            loopdev::ensure_image(&d.image, size)?;
            d.loop_device = match loopdev::devices_for(&d.image)?.into_iter().next() {
                Some(dev) => Some(dev),
                None => match loopdev::attach(&d.image) {
                    Ok(dev) => Some(dev),
                    Err(e) => {
                        notes.push(format!(
                            "{}: no loop device ({e}); the node uses the file itself",
                            n.name
                        ));
                        None
                    }
                },
            };
        }
    }
    lab.notes.extend(notes);
    Ok(())
}

/// Starts (or keeps) sshd and the executor of every node, or only of `only`, and waits
/// until all of them answer.
///
/// The sshd of a node whose link is cut is waited for from inside the node's namespace.
fn start_nodes(lab: &mut LabState, paths: &LabPaths, only: Option<&str>) -> Result<(), LabError> {
    let ports = net::port_statuses()?;
    let mut starting = Vec::new();
    for i in 0..lab.nodes.len() {
        if only.is_some_and(|o| o != lab.nodes[i].name) {
            continue;
        }
        let mut node = lab.nodes[i].clone();
        let np = paths.node(&node.name);
        let reachable = !node.cut
            && link::link_state(ports.get(&node.veth_host), &lab.bridge.name) == LinkState::Up;
        let sshd = services::ensure_sshd(&mut node, &np, reachable);
        lab.nodes[i] = node.clone();
        save(lab)?;
        starting.push(sshd?);
        let exec = services::ensure_executor(lab, &mut node, &np);
        lab.nodes[i] = node;
        save(lab)?;
        starting.push(exec?);
    }
    runtime()?.block_on(services::wait_ready(starting, READY_TIMEOUT))?;
    Ok(())
}

/// terraform.tfvars.json, terraformrc (and the provider in its mirror), inventory.yml, lab.env.
fn write_frontend_files(lab: &mut LabState, paths: &LabPaths) -> Result<(), LabError> {
    let tfvars = render::tfvars(lab);
    write_file(lab, paths.tfvars(), &tfvars)?;
    write_file(
        lab,
        paths.terraformrc(),
        &render::terraformrc(&paths.plugins_dir()),
    )?;
    let inventory = render::inventory(lab);
    write_file(lab, paths.inventory(), &inventory)?;
    let env = render::lab_env(lab);
    write_file(lab, paths.lab_env(), &env)?;
    let provider = sibling_binary(PROVIDER_BIN)?;
    let target = paths.provider_binary(&plan::terraform_platform());
    if provider.is_file() {
        if let Some(parent) = target.parent() {
            mkdir(parent)?;
        }
        std::fs::copy(&provider, &target).map_err(file_err(&target))?;
        if !lab.files.contains(&target) {
            lab.files.push(target);
        }
    } else {
        lab.notes.push(format!(
            "{} not found: terraform cannot install the provider until it is built \
             (`cargo build -p terraform-provider-v2engine`) and `up` runs again",
            provider.display()
        ));
    }
    Ok(())
}

/// Reboots `node`: stops every process in its namespace, lets the simulated host boot
/// (`sim-reboot`), starts sshd and the executor again and waits until they answer.
pub fn reboot(dir: &Path, node: &str) -> Result<LabState, LabError> {
    require_root("reboot")?;
    let dir = absolute_dir(dir)?;
    load_lab(&dir)?; // a clear error when there is no lab, before the lock file is made
    let _lock = lock_lab(&dir)?;
    let mut lab = load_lab(&dir)?;
    let paths = LabPaths::new(&dir);
    let i = find_node(&lab, &dir, node)?;
    let node = lab.nodes[i].name.clone();
    let node = node.as_str();
    tracing::info!(node, "stopping every process of the node");
    let stopped = services::stop_node(&mut lab.nodes[i]);
    save(&lab)?;
    stopped?;
    services::sim_reboot(&lab, &lab.nodes[i], &paths.node(node))?;
    start_nodes(&mut lab, &paths, Some(node))?;
    save(&lab)?;
    settle(node, &paths.node(node).executor_socket());
    tracing::info!(node, "node is back");
    Ok(lab)
}

/// How long a rebooted node may take to finish its start-up reconcile.
pub const SETTLE_WAIT: Duration = Duration::from_secs(30);

/// Waits (at most [`SETTLE_WAIT`]) until the executor at `socket` is past its start-up
/// reconcile (its engine state is no longer `preparing` or `starting`), as a host that has
/// finished booting is; only warns when it is not, since its status says why.
fn settle(node: &str, socket: &Path) {
    let Ok(rt) = runtime() else { return };
    let deadline = Instant::now() + SETTLE_WAIT;
    loop {
        let state = rt
            .block_on(probe::executor_status(node, socket, Duration::from_secs(2)))
            .map(|s| s.engine_state)
            .unwrap_or_default();
        if !state.is_empty() && state != "preparing" && state != "starting" {
            return;
        }
        if Instant::now() >= deadline {
            tracing::warn!(node, state, "the node has not finished starting up");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The position of the node `node` names (`node-2` or `2`) in the lab in `dir`.
pub fn find_node(lab: &LabState, dir: &Path, node: &str) -> Result<usize, LabError> {
    lab.node_position(node)
        .ok_or_else(|| LabError::UnknownNode {
            dir: dir.to_path_buf(),
            node: node.to_string(),
            nodes: lab.node_names(),
        })
}

/// Cuts `node` off: its bridge port goes down, so neither the host nor any other node reaches
/// it (and it reaches nothing) while its processes keep running; recorded in lab.json. See
/// [`link`] for the mechanism. Cutting a cut node changes nothing.
pub fn cut(dir: &Path, node: &str) -> Result<LinkChange, LabError> {
    change_link(dir, node, LinkCommand::Cut)
}

/// Brings `node`'s link back (see [`cut`]) and waits, at most [`RESTORE_WAIT`], until its
/// sshd answers from the host.
pub fn restore(dir: &Path, node: &str) -> Result<LinkChange, LabError> {
    change_link(dir, node, LinkCommand::Restore)
}

fn change_link(dir: &Path, node: &str, command: LinkCommand) -> Result<LinkChange, LabError> {
    let name = match command {
        LinkCommand::Cut => "cut",
        LinkCommand::Restore => "restore",
    };
    require_root(name)?;
    let dir = absolute_dir(dir)?;
    let existing = load_lab(&dir)?; // a clear error when there is no lab, before the lock
    find_node(&existing, &dir, node)?; // and for a node that is not there
    let _lock = lock_lab(&dir)?;
    let mut lab = load_lab(&dir)?;
    let i = find_node(&lab, &dir, node)?;
    let n = &lab.nodes[i];
    let port = net::port_status(&n.veth_host)?;
    let before = link::link_state(port.as_ref(), &lab.bridge.name);
    let steps = match command {
        LinkCommand::Cut => link::cut_steps(n, port.as_ref(), &dir)?,
        LinkCommand::Restore => link::restore_steps(n, port.as_ref(), &lab.bridge.name, &dir)?,
    };
    for step in &steps {
        match step {
            LinkStep::Down => net::set_link_up(&n.veth_host, false)?,
            LinkStep::Attach => net::attach_to_bridge(&n.veth_host, &lab.bridge.name)?,
            LinkStep::Up => net::set_link_up(&n.veth_host, true)?,
        }
    }
    let mut change = LinkChange {
        command,
        dir: dir.clone(),
        node: n.name.clone(),
        address: n.address,
        link: n.veth_host.clone(),
        before,
        steps,
        ssh_answers: None,
    };
    let cut = command == LinkCommand::Cut;
    if lab.nodes[i].cut != cut {
        lab.nodes[i].cut = cut;
        save(&lab)?;
    }
    tracing::info!(node = %change.node, link = %change.link, steps = ?change.steps, "{name}");
    if !cut && !change.steps.is_empty() {
        change.ssh_answers = Some(wait_for_ssh(
            SocketAddr::from((change.address, SSH_PORT)),
            RESTORE_WAIT,
        ));
    }
    Ok(change)
}

/// Whether sshd at `addr` answers with its banner from the host within `timeout`.
fn wait_for_ssh(addr: SocketAddr, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if probe::ssh_banner(addr, Duration::from_secs(1)).is_ok() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The status of every node: sshd and executor reachability, and what the executor says.
pub fn status(dir: &Path) -> Result<Vec<NodeReport>, LabError> {
    let dir = absolute_dir(dir)?;
    let lab = load_lab(&dir)?;
    let paths = LabPaths::new(&dir);
    // The links as the root namespace shows them; unknown when they cannot be listed.
    let ports = net::port_statuses().ok();
    let rt = runtime()?;
    let mut reports = Vec::new();
    let mut probes = tokio::task::JoinSet::new();
    for (i, n) in lab.nodes.iter().enumerate() {
        let (name, socket) = (n.name.clone(), paths.node(&n.name).executor_socket());
        probes.spawn_on(
            async move {
                (
                    i,
                    probe::executor_status(&name, &socket, Duration::from_secs(5)).await,
                )
            },
            rt.handle(),
        );
        reports.push(NodeReport {
            name: n.name.clone(),
            address: n.address.to_string(),
            namespace: n.namespace.clone(),
            link: ports.as_ref().map_or(LinkState::Unknown, |p| {
                link::link_state(p.get(&n.veth_host), &lab.bridge.name)
            }),
            link_cut_recorded: n.cut,
            ssh_up: probe::ssh_banner(
                SocketAddr::from((n.address, SSH_PORT)),
                Duration::from_secs(2),
            )
            .is_ok(),
            disks: n
                .disks
                .iter()
                .map(|d| d.path().display().to_string())
                .collect(),
            ..Default::default()
        });
    }
    let results = rt.block_on(probes.join_all());
    for (i, res) in results {
        let r = &mut reports[i];
        match res {
            Ok(s) => {
                r.executor_up = true;
                r.engine_state = Some(s.engine_state);
                r.reboot_required = Some(s.reboot_required);
                r.reboot_reasons = s.reboot_reasons;
                r.hugepages_allocated = Some(s.hugepages_allocated);
                r.hugepages_target = Some(s.hugepages_target);
                r.last_error = Some(s.last_error).filter(|e| !e.is_empty());
            }
            Err(e) => r.executor_error = Some(e.to_string()),
        }
    }
    Ok(reports)
}

/// Removes the lab in `dir` (see [`teardown::down`]).
pub fn down(dir: &Path, purge: bool) -> Result<DownReport, LabError> {
    require_root("down")?;
    let dir = absolute_dir(dir)?;
    let paths = LabPaths::new(&dir);
    let is_lab = paths.lab_json().exists() || paths.nodes_dir().exists();
    let _lock = if is_lab { Some(lock_lab(&dir)?) } else { None };
    Ok(teardown::down(&dir, purge)?)
}
